// The result formats of `backfill query` (cli/output.ts) and the adapters' exact-number and instant rules
// (core/adapters/resultValues.ts), as pure functions.

import { describe, expect, it } from 'vitest';
import { refusalMessage } from '../cli/commands/query.js';
import {
  csvCell,
  formatCsv,
  formatJson,
  formatTable,
  type Grid,
  jsonValue,
  renderCsv,
  renderJson,
  renderTable,
  tableCell,
} from '../cli/output.js';
import { exactDecimal, exactInteger, isoInstant } from '../core/adapters/resultValues.js';

describe('tableCell: one line of text a value', () => {
  it.each([
    ['NULL as the text asked for', null, 'NULL', 'NULL'],
    ['undefined as NULL too', undefined, 'NULL', 'NULL'],
    ["NULL as '' by default (the commands' own tables)", null, undefined, ''],
    ['a newline, a carriage return and a tab escaped', 'a\nb\rc\td', 'NULL', 'a\\nb\\rc\\td'],
    ['another control character as \\u', 'bell\x07', 'NULL', 'bell\\u0007'],
    ['a STRUCT as its JSON', { a: 1, b: 'x' }, 'NULL', '{"a":1,"b":"x"}'],
    ['a LIST as its JSON, NULL inside as null', [1, null], 'NULL', '[1,null]'],
    ['a newline inside a STRUCT escaped by its JSON', { t: 'a\nb' }, 'NULL', '{"t":"a\\nb"}'],
    ['a bigint', 12n, 'NULL', '12'],
    ['a Date as ISO 8601', new Date(Date.UTC(2021, 9, 19, 23, 15)), 'NULL', '2021-10-19T23:15:00.000Z'],
    ['a boolean', false, 'NULL', 'false'],
    ['the string NULL as it is', 'NULL', 'NULL', 'NULL'],
  ])('%s', (_name, value, nullText, expected) => {
    expect(tableCell(value, nullText)).toBe(expected);
  });
});

describe('csvCell: RFC 4180, NULL and empty string kept apart', () => {
  it.each([
    ['NULL is the empty field', null, ''],
    ['an empty string is quoted', '', '""'],
    ['a comma quotes', 'a,b', '"a,b"'],
    ['a quote is doubled', 'say "hi"', '"say ""hi"""'],
    ['a newline stays, quoted', 'a\nb', '"a\nb"'],
    ['a STRUCT as quoted JSON', { a: 1 }, '"{""a"":1}"'],
    ['a LIST as quoted JSON', [1, 2], '"[1,2]"'],
    ['a plain number', 1.5, '1.5'],
  ])('%s', (_name, value, expected) => {
    expect(csvCell(value)).toBe(expected);
  });
});

describe('jsonValue', () => {
  it.each([
    ['a safe bigint as a number', 42n, 42],
    ['a bigint past 2^53 as its text', 9007199254740993n, '9007199254740993'],
    ['NaN as its text (JSON would write null)', Number.NaN, 'NaN'],
    ['undefined as null', undefined, null],
    ['nested values converted', { a: [1n, undefined] }, { a: [1, null] }],
  ])('%s', (_name, value, expected) => {
    expect(jsonValue(value)).toEqual(expected);
  });
});

describe('rendering a grid', () => {
  const grid: Grid = {
    columns: ['id', 'note', 'tags'],
    rows: [
      [1, 'two\nlines', ['x']],
      [22, null, null],
    ],
  };

  it('a table: aligned, a row a line, NULL as asked', () => {
    expect(renderTable(grid, { nullText: 'NULL' })).toBe(
      'id  note        tags\n--  ----------  -----\n1   two\\nlines  ["x"]\n22  NULL        NULL\n',
    );
  });

  it('an empty table: the header, its rule and (no rows); no columns at all: (no rows)', () => {
    expect(renderTable({ columns: ['a', 'bb'], rows: [] })).toBe('a  bb\n-  --\n(no rows)\n');
    expect(renderTable({ columns: [], rows: [] })).toBe('(no rows)\n');
  });

  it('CSV: the header also for no rows, nothing for no columns', () => {
    expect(renderCsv(grid)).toBe('id,note,tags\n1,"two\nlines","[""x""]"\n22,,\n');
    expect(renderCsv({ columns: ['a'], rows: [] })).toBe('a\n');
    expect(renderCsv({ columns: [], rows: [] })).toBe('');
  });

  it('JSON: an object a row, values as JSON holds them', () => {
    expect(JSON.parse(renderJson(grid))).toEqual([
      { id: 1, note: 'two\nlines', tags: ['x'] },
      { id: 22, note: null, tags: null },
    ]);
    expect(renderJson({ columns: ['a'], rows: [] })).toBe('[]\n');
  });
});

describe('the record forms the other commands use', () => {
  const records = [
    { processor: 'a', lookback: null },
    { processor: 'bb', lookback: 10 },
  ];

  it("formatTable keeps NULL blank unless asked, and takes the first record's keys", () => {
    expect(formatTable(records)).toBe('processor  lookback\n---------  --------\na\nbb         10\n');
    expect(formatTable(records, ['processor'], { nullText: 'NULL' })).toBe('processor\n---------\na\nbb\n');
  });

  it('formatCsv and formatJson', () => {
    expect(formatCsv(records)).toBe('processor,lookback\na,\nbb,10\n');
    expect(JSON.parse(formatJson([{ a: 1 }, { b: 2n }]))).toEqual([{ a: 1 }, { b: 2 }]);
  });
});

describe('exact numbers and instants from the engines', () => {
  it.each([
    ['a small integer', '42', 42],
    ['2^53 - 1, the largest a double holds exactly', '9007199254740991', 9007199254740991],
    ['2^53 + 1 as text', '9007199254740993', '9007199254740993'],
    ['a negative one past the bound as text', '-9007199254740993', '-9007199254740993'],
  ])('exactInteger: %s', (_name, text, expected) => {
    expect(exactInteger(text)).toBe(expected);
    expect(exactInteger(BigInt(text))).toBe(expected);
  });

  it.each([
    ['a DECIMAL(5,2)', '1.50', 1.5],
    ['a negative one', '-0.25', -0.25],
    ['15 significant digits', '123456789.012345', 123456789.012345],
    ['leading and trailing zeros are not significant', '0.000000000000001000', 1e-15],
    ['16 significant digits as text', '1234567890.123456', '1234567890.123456'],
    ['a DECIMAL(38,2) as text', '12345678901234567890.12', '12345678901234567890.12'],
    ['something else as it is', '1e5', '1e5'],
  ])('exactDecimal: %s', (_name, text, expected) => {
    expect(exactDecimal(text)).toBe(expected);
  });

  it.each([
    ['milliseconds', 1634685300123000n, '2021-10-19T23:15:00.123Z'],
    ['microseconds', 1634685300123456n, '2021-10-19T23:15:00.123456Z'],
    ['before 1970', -1n, '1969-12-31T23:59:59.999999Z'],
  ])('isoInstant: %s', (_name, micros, expected) => {
    expect(isoInstant(micros)).toBe(expected);
  });

  it('isoInstant: undefined past the years a Date holds', () => {
    expect(isoInstant(9_000_000_000_000_000_000n)).toBeUndefined();
  });
});

describe('refusalMessage', () => {
  it.each([
    [
      { statementType: 'INSERT' },
      'query: INSERT may change the warehouse; `backfill query` is read-only unless you pass --write',
    ],
    [{ statementType: 'DELETE', statementNumber: 2 }, 'query: DELETE (statement 2) may change the warehouse;'],
    [{ statementType: 'SCRIPT', detail: 'why' }, 'query: SCRIPT may change the warehouse (why);'],
  ])('%o', (refused, expected) => {
    expect(refusalMessage(refused)).toContain(expected);
  });
});
