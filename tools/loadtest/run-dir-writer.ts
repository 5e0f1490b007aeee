import {
  createWriteStream,
  existsSync,
  mkdirSync,
  appendFileSync,
  writeFileSync,
  type WriteStream,
} from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'csv-stringify/sync';
import { formatSiegeRow, SIEGE_LOG_HEADER } from '../shared/siege-log';
import { RUN_FILES } from '../shared/run-files';
import { LATENCY_COLUMNS, type LatencyRow, type RequestOutcome, type StageTally } from './stage-tally';
import { BadTargetError } from './target';

const csvCast = { number: (n: number) => (Number.isFinite(n) ? String(n) : '') };

/** Writes a run directory's files (tools/shared/run-files.ts) as the run goes. */
export class RunDirWriter {
  private readonly requests: WriteStream;

  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
    if (existsSync(join(dir, RUN_FILES.siegeLog))) {
      throw new BadTargetError(
        `${dir} already holds a load-test run; pick a new --out so runs are not mixed`,
      );
    }
    writeFileSync(join(dir, RUN_FILES.siegeLog), SIEGE_LOG_HEADER);
    writeFileSync(
      join(dir, RUN_FILES.latency),
      stringify([], { header: true, columns: [...LATENCY_COLUMNS] }),
    );
    this.requests = createWriteStream(join(dir, RUN_FILES.requests));
    this.requests.write('stage,sent_at,latency_ms,status,bytes,error\n');
  }

  request(stage: number, outcome: RequestOutcome): void {
    const { sentAt, latencyMs, status, bytes, error } = outcome;
    this.requests.write(
      `${stage},${new Date(sentAt).toISOString()},${latencyMs.toFixed(1)},${status ?? ''},${bytes},${error ?? ''}\n`,
    );
  }

  // Appended as each stage ends, so Ctrl-C or a crash keeps every finished stage.
  stage(tally: StageTally, startedAt: number, endedAt: number, interrupted: boolean): LatencyRow {
    appendFileSync(join(this.dir, RUN_FILES.siegeLog), formatSiegeRow(tally.siegeRow(startedAt, endedAt)));
    const row = tally.latencyRow(startedAt, endedAt, interrupted);
    appendFileSync(
      join(this.dir, RUN_FILES.latency),
      stringify([row], { columns: [...LATENCY_COLUMNS], cast: csvCast }),
    );
    return row;
  }

  liveAccuracy(report: unknown): void {
    writeFileSync(join(this.dir, RUN_FILES.liveAccuracy), JSON.stringify(report, null, 2) + '\n');
  }

  meta(meta: object): void {
    writeFileSync(join(this.dir, RUN_FILES.meta), JSON.stringify(meta, null, 2) + '\n');
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.requests.end(resolve));
  }
}
