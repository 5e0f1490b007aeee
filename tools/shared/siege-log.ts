import { parse } from 'csv-parse/sync';

/** One line of siege's log (`siege --log`), the course's per-stage record. */
export interface SiegeRow {
  /** local time the stage ended, as siege writes it */
  dateTime: Date;
  /** siege's "hits": responses with a status below 500 */
  trans: number;
  elapsedSeconds: number;
  /** MiB received (siege writes whole MiB; we keep two decimals so small JSON answers do not read as 0) */
  dataMiB: number;
  /** mean response time of those transactions, seconds */
  respTimeSeconds: number;
  transRate: number;
  throughputMiBps: number;
  /** mean number of requests in flight: Σ response time / elapsed */
  concurrent: number;
  /** responses below 400 */
  okay: number;
  /** what siege counts as failures: 5xx answers (503 shed included) and requests with no answer */
  failed: number;
}

// siege's own header and printf widths (siege's log.c), so a notebook written for siege.log reads ours unchanged.
export const SIEGE_LOG_HEADER =
  '      Date & Time,  Trans,  Elap Time,  Data Trans,  Resp Time,  Trans Rate,  Throughput,  Concurrent,    OKAY,   Failed\n';

const pad2 = (n: number) => String(n).padStart(2, '0');

/** siege's strftime("%Y-%m-%d %H:%M:%S") in local time */
export function siegeDate(date: Date): string {
  return (
    `${date.getFullYear()}-${pad2(date.getMonth() + 1)}-${pad2(date.getDate())} ` +
    `${pad2(date.getHours())}:${pad2(date.getMinutes())}:${pad2(date.getSeconds())}`
  );
}

const int = (n: number, width: number) => String(Math.round(n)).padStart(width);
const fixed = (n: number, width: number) => n.toFixed(2).padStart(width);

export function formatSiegeRow(row: SiegeRow): string {
  return (
    [
      siegeDate(row.dateTime),
      int(row.trans, 7),
      fixed(row.elapsedSeconds, 11),
      fixed(row.dataMiB, 12),
      fixed(row.respTimeSeconds, 11),
      fixed(row.transRate, 12),
      fixed(row.throughputMiBps, 12),
      fixed(row.concurrent, 12),
      int(row.okay, 8),
      int(row.failed, 8),
    ].join(',') + '\n'
  );
}

/** The columns the course's analysis uses, parsed from our log or a real siege log. */
export interface SiegeLogEntry {
  dateTime: string;
  trans: number;
  elapsedSeconds: number;
  respTimeSeconds: number;
  okay: number;
  failed: number;
}

export function parseSiegeLog(text: string, source: string): SiegeLogEntry[] {
  // siege writes "**** <mark> ****" lines between runs when called with -m
  const lines = text.split(/\r?\n/).filter((line) => line.trim() !== '' && !line.startsWith('****'));
  const records = parse(lines.join('\n'), { columns: true, trim: true }) as Record<string, string>[];
  return records.map((r, i) => {
    const num = (column: string) => {
      const value = Number(r[column]);
      if (r[column] === undefined || r[column] === '' || !Number.isFinite(value)) {
        throw new Error(`${source}: row ${i + 1} has no number in column "${column}"`);
      }
      return value;
    };
    return {
      dateTime: r['Date & Time'] ?? '',
      trans: num('Trans'),
      elapsedSeconds: num('Elap Time'),
      respTimeSeconds: num('Resp Time'),
      okay: num('OKAY'),
      failed: num('Failed'),
    };
  });
}
