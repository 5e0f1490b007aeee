import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { PGlite } from '@electric-sql/pglite';

/**
 * The embedded PostgreSQL (PGlite) in a thread of its own. PGlite is PostgreSQL compiled to WebAssembly: every
 * statement runs synchronously inside the thread that calls it, and creating a fresh database folder (initdb)
 * takes seconds. On the main thread that would stall every request, probes included (6 s measured at first start
 * on a loaded 2-CPU machine), so database.ts talks to it here by messages, and a slow statement only delays the
 * labels that wait for it.
 */

export type EmbeddedRequest =
  | { id: number; kind: 'query'; sql: string; params?: unknown[] }
  | { id: number; kind: 'script'; sql: string }
  | { id: number; kind: 'close' };

export type EmbeddedReply = { id: number; rows: unknown[] } | { id: number; error: string };

if (!isMainThread && parentPort) {
  const port = parentPort;
  const { dir } = workerData as { dir: string };
  const db = new PGlite(dir);
  // Statements run one at a time, in the order they were sent (a migration's BEGIN … COMMIT stays together).
  let chain: Promise<void> = db.waitReady.then(() => undefined);
  port.on('message', (request: EmbeddedRequest) => {
    chain = chain.then(async () => {
      try {
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
