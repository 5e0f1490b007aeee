import fs from 'node:fs';
import path from 'node:path';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { PGlite } from '@electric-sql/pglite';
import { runScript, serviceScript } from '../process/threads';

/**
 * The embedded PostgreSQL (PGlite) in a thread of its own. PGlite is PostgreSQL compiled to WebAssembly: every
 * statement runs synchronously inside the thread that calls it, and creating a fresh database folder (initdb)
 * takes seconds. On the main thread that would stall every request, probes included (6 s measured at first start
 * on a loaded 2-CPU machine), so database.ts talks to it here by messages, and a slow statement only delays the
 * labels that wait for it.
 *
 * Its memory is bounded in two ways (issue 24; bench/REPORT.md has the measurements):
 * - A fresh folder is created by this same file run as a process of its own (`node embedded-thread.js <dir>`):
 *   PGlite's initdb runs a second PostgreSQL and initdb's own wasm beside the one that serves, and their wasm
 *   memories (~600 MB resident; WebAssembly memory never shrinks) would stay with the service until a garbage
 *   collection that may never come. An exiting process hands all of it back at once.
 * - PostgreSQL's own page cache lives in the wasm memory and would all become resident as tables are read;
 *   EMBEDDED_SHARED_BUFFERS bounds it. The operating system's page cache still holds the files.
 */

export type EmbeddedRequest =
  | { id: number; kind: 'query'; sql: string; params?: unknown[] }
  | { id: number; kind: 'script'; sql: string }
  | { id: number; kind: 'close' };

export type EmbeddedReply = { id: number; rows: unknown[] } | { id: number; error: string };

/**
 * PostgreSQL's shared_buffers inside PGlite (its default is 128 MB, all of it resident once touched). The store
 * is written in batches and read by id, a tally and a sweep: a few MB of hot pages serve it.
 */
export const EMBEDDED_SHARED_BUFFERS = '16MB';

/** How long creating a fresh store may take (initdb: 5–13 s on a loaded 2-CPU machine). */
const CREATE_TIMEOUT_MS = 120_000;

const startParams = () => [...PGlite.defaultStartParams, '-c', `shared_buffers=${EMBEDDED_SHARED_BUFFERS}`];

/** Whether the folder holds a database (initdb writes PG_VERSION among its first files and renames last). */
const created = (dir: string) => fs.existsSync(path.join(dir, 'PG_VERSION'));

/**
 * Creates the database folder: into a staging folder renamed when complete, so a creation cut short (a killed
 * process) is started again rather than opened half made.
 */
async function create(dir: string): Promise<void> {
  const staging = `${dir}.creating`;
  fs.rmSync(staging, { recursive: true, force: true });
  const db = new PGlite(staging, { startParams: startParams() });
  await db.waitReady;
  await db.close();
  fs.renameSync(staging, dir);
}

/** Opens the folder, having it created first by a process of its own when it is new. */
async function open(dir: string): Promise<PGlite> {
  if (!created(dir)) {
    await runScript(serviceScript('labels/embedded-thread'), [dir], CREATE_TIMEOUT_MS);
  }
  const db = new PGlite(dir, { startParams: startParams() });
  await db.waitReady;
  return db;
}

function serve(dir: string, port: NonNullable<typeof parentPort>): void {
  const opening = open(dir);
  // Statements run one at a time, in the order they were sent (a migration's BEGIN … COMMIT stays together).
  let chain: Promise<unknown> = opening.catch(() => undefined);
  port.on('message', (request: EmbeddedRequest) => {
    chain = chain.then(async () => {
      try {
        const db = await opening;
        if (request.kind === 'query') {
          const result = await db.query(request.sql, request.params);
          port.postMessage({ id: request.id, rows: result.rows } satisfies EmbeddedReply);
        } else if (request.kind === 'script') {
          await db.exec(request.sql);
          port.postMessage({ id: request.id, rows: [] } satisfies EmbeddedReply);
        } else {
          await db.close();
          port.postMessage({ id: request.id, rows: [] } satisfies EmbeddedReply);
        }
      } catch (err) {
        port.postMessage({ id: request.id, error: (err as Error).message } satisfies EmbeddedReply);
      }
    });
  });
}

if (!isMainThread && parentPort) {
  serve((workerData as { dir: string }).dir, parentPort);
} else if (require.main === module) {
  const dir = process.argv[2];
  if (!dir) {
    console.error('usage: embedded-thread <database folder>');
    process.exit(2);
  }
  create(dir).then(
    () => process.exit(0),
    (err: Error) => {
      console.error(`creating the embedded labels store in ${dir} failed: ${err.message}`);
      process.exit(1);
    },
  );
}
