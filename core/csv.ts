// A small RFC 4180 CSV reader: quoted fields, doubled quotes, \n or \r\n line ends.

export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else field += c;
  }
  if (field !== '' || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

/** Header row plus records, each checked to have as many fields as the header. */
export function parseCsvRecords(text: string, source: string): { headers: string[]; records: string[][] } {
  const [headers, ...records] = parseCsv(text);
  if (!headers) throw new Error(`${source}: empty CSV`);
  records.forEach((r, i) => {
    if (r.length !== headers.length) {
      throw new Error(`${source}: line ${i + 2} has ${r.length} fields, the header has ${headers.length}`);
    }
  });
  return { headers, records };
}
