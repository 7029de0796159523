// Where words go and when they are coloured: the rules of cli/streams.ts at their edges.

import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { colourOn, formatOf, formatOption, paintRed, paintVerdicts, streamsFor, stripColour } from '../cli/streams.js';

function sink(isTTY: boolean) {
  const chunks: string[] = [];
  return { isTTY, write: (t: string) => chunks.push(t), text: () => chunks.join('') };
}

describe('colourOn', () => {
  it.each([
    ['a terminal', { isTTY: true }, {}, true],
    ['a pipe', { isTTY: false }, {}, false],
    ['NO_COLOR=1 on a terminal', { isTTY: true }, { NO_COLOR: '1' }, false],
    ['NO_COLOR set but empty (no-color.org: ignored)', { isTTY: true }, { NO_COLOR: '' }, true],
    ['TERM=dumb', { isTTY: true }, { TERM: 'dumb' }, false],
    ['FORCE_COLOR=1 on a pipe', { isTTY: false }, { FORCE_COLOR: '1' }, true],
    ['FORCE_COLOR=0 on a terminal', { isTTY: true }, { FORCE_COLOR: '0' }, false],
    ['FORCE_COLOR=1 with NO_COLOR=1', { isTTY: false }, { FORCE_COLOR: '1', NO_COLOR: '1' }, false],
    ['FORCE_COLOR set but empty on a pipe (ignored)', { isTTY: false }, { FORCE_COLOR: '' }, false],
    ['FORCE_COLOR set but empty on a terminal (ignored)', { isTTY: true }, { FORCE_COLOR: '' }, true],
    ['FORCE_COLOR=0 on a pipe', { isTTY: false }, { FORCE_COLOR: '0' }, false],
    ['FORCE_COLOR=1 on a dumb terminal', { isTTY: true }, { FORCE_COLOR: '1', TERM: 'dumb' }, true],
    ['a terminal with TERM=xterm', { isTTY: true }, { TERM: 'xterm' }, true],
    ['a stream that does not say', {}, {}, false],
  ])('%s: %s', (_name, stream, env, on) => {
    expect(colourOn(stream, env)).toBe(on);
  });
});

describe('streamsFor', () => {
  it('table: words on stdout (verdicts coloured on a terminal), progress on stderr, no JSON', () => {
    const out = sink(true);
    const err = sink(false);
    const io = streamsFor('table', out, err, {});
    io.say('VALIDATION PASSED; gate FAILED\n');
    io.json({ a: 1 });
    io.progress.write('[stage1] 1/2 done\n');
    expect(out.text()).toBe('VALIDATION \x1b[1m\x1b[32mPASSED\x1b[0m; gate \x1b[1m\x1b[31mFAILED\x1b[0m\n');
    expect(err.text()).toBe('[stage1] 1/2 done\n');
  });

  it('json: stdout holds the document only; the words go to stderr, uncoloured on a pipe', () => {
    const out = sink(false);
    const err = sink(false);
    const io = streamsFor('json', out, err, {});
    io.say('STOPPED at 2022-01-12\n');
    io.json({ exitCode: 1 });
    expect(JSON.parse(out.text())).toEqual({ exitCode: 1 });
    expect(err.text()).toBe('STOPPED at 2022-01-12\n');
  });

  it('failed rows of a table in red, the header and the rule never', () => {
    const out = sink(true);
    const io = streamsFor('table', out, sink(false), {});
    io.sayFailedRows('date        error\n----------  -----\n2022-01-12  boom\n2022-01-13  ok\n', (l) =>
      l.includes('boom'),
    );
    const lines = out.text().split('\n');
    expect(lines[0]).toBe('date        error');
    expect(lines[2]).toBe('\x1b[31m2022-01-12  boom\x1b[0m');
    expect(lines[3]).toBe('2022-01-13  ok');
    expect(stripColour(out.text())).toBe('date        error\n----------  -----\n2022-01-12  boom\n2022-01-13  ok\n');
  });

  it('paints whole words only: "PASSEDX" and "unFAILED" stay plain', () => {
    expect(paintVerdicts('PASSEDX unFAILED')).toBe('PASSEDX unFAILED');
  });

  it('every row may be failed: the header, its rule and empty lines still never red; rows counted from 0', () => {
    const out = sink(true);
    const seen: [string, number][] = [];
    streamsFor('table', out, sink(false), {}).sayFailedRows('h\n-\na\n\nb\n', (l, i) => {
      seen.push([l, i]);
      return true;
    });
    expect(out.text()).toBe(`h\n-\n${paintRed('a')}\n\n${paintRed('b')}\n`);
    expect(seen).toEqual([
      ['a', 0],
      ['b', 2],
    ]);
  });

  it('failed rows uncoloured on a pipe, and in json format on stderr', () => {
    const table = 'h\n-\nboom\n';
    const out = sink(false);
    streamsFor('table', out, sink(true), {}).sayFailedRows(table, () => true);
    expect(out.text()).toBe(table);
    const jsonOut = sink(true);
    const jsonErr = sink(true);
    streamsFor('json', jsonOut, jsonErr, {}).sayFailedRows(table, (l) => l === 'boom');
    expect(jsonOut.text()).toBe('');
    expect(jsonErr.text()).toBe(`h\n-\n${paintRed('boom')}\n`);
  });

  it('the table format by default; its words uncoloured on a pipe', () => {
    const out = sink(false);
    const io = streamsFor(undefined, out, sink(false), {});
    expect(io.format).toBe('table');
    io.say('PASSED\n');
    io.json({ a: 1 });
    expect(out.text()).toBe('PASSED\n');
  });

  it('paints every verdict word, each in its colour', () => {
    expect(paintVerdicts('PASSED FAILED STOPPED INTERRUPTED STALE PASSED')).toBe(
      [
        '\x1b[1m\x1b[32mPASSED\x1b[0m',
        '\x1b[1m\x1b[31mFAILED\x1b[0m',
        '\x1b[1m\x1b[31mSTOPPED\x1b[0m',
        '\x1b[1m\x1b[31mINTERRUPTED\x1b[0m',
        '\x1b[1m\x1b[31mSTALE\x1b[0m',
        '\x1b[1m\x1b[32mPASSED\x1b[0m',
      ].join(' '),
    );
    expect(stripColour(paintVerdicts('a FAILED b'))).toBe('a FAILED b');
    expect(stripColour('\x1b[1;31mx\x1b[0m')).toBe('x');
  });
});

describe('--format', () => {
  it('formatOf: json when given json, else table', () => {
    expect(formatOf({ format: 'json' })).toBe('json');
    expect(formatOf({ format: 'table' })).toBe('table');
    expect(formatOf({})).toBe('table');
  });

  it('formatOption: table or json, table by default', () => {
    const parse = (args: string[]) => {
      const cmd = new Command()
        .exitOverride()
        .configureOutput({ writeErr: () => {} })
        .addOption(formatOption());
      cmd.parse(args, { from: 'user' });
      return cmd.opts().format as string;
    };
    expect(parse([])).toBe('table');
    expect(parse(['--format', 'json'])).toBe('json');
    expect(() => parse(['--format', 'yaml'])).toThrow(/table, json/);
    expect(formatOption().flags).toBe('--format <format>');
    expect(formatOption().description).toMatch(/^table \(for people\) or json/);
  });
});
