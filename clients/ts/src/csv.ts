// RFC 4180 CSV with a header line; each record keeps the line it starts on, for messages.
import { CleanroomError } from "./errors.js";

export interface CsvRecord { line: number; cells: string[] }
export interface Csv { header: string[]; records: CsvRecord[] }

export function parseCsv(text: string, file: string, delimiter = ","): Csv {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const records: CsvRecord[] = [];
  let cells: string[] = [];
  let cell = "";
  let line = 1;
  let start = 1;
  let quoted = false;
  let wasQuoted = false;
  let i = 0;
  const endCell = (): void => { cells.push(cell); cell = ""; wasQuoted = false; };
  const endRecord = (): void => {
    endCell();
    if (!(cells.length === 1 && cells[0] === "" && !wasQuoted)) records.push({ line: start, cells });
    cells = [];
  };
  while (i < text.length) {
    const c = text[i];
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') { cell += '"'; i += 2; continue; }
        quoted = false; i++; continue;
      }
      if (c === "\n") line++;
      cell += c; i++; continue;
    }
    if (c === '"') {
      if (cell !== "") throw new CleanroomError("invalid_input", `${file}: line ${line}: a quote inside an unquoted cell`);
      quoted = true; wasQuoted = true; i++; continue;
    }
    if (c === delimiter) { endCell(); i++; continue; }
    if (c === "\r" && text[i + 1] === "\n") i++;
    if (c === "\n" || c === "\r") { endRecord(); line++; start = line; i++; continue; }
    cell += c; i++;
  }
  if (quoted) throw new CleanroomError("invalid_input", `${file}: line ${start}: a quoted cell is not closed`);
  if (cell !== "" || cells.length) endRecord();
  const head = records.shift();
  if (!head) throw new CleanroomError("invalid_input", `${file}: no header line`);
  for (const r of records) {
    if (r.cells.length !== head.cells.length) {
      throw new CleanroomError("invalid_input", `${file}: line ${r.line}: ${r.cells.length} cells, the header has ${head.cells.length}`);
    }
  }
  return { header: head.cells.map((h) => h.trim()), records };
}
