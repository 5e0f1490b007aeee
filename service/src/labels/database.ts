import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { serviceScript, startThread } from '../process/threads';
import type { EmbeddedReply, EmbeddedRequest } from './embedded-thread';

/**
 * The two PostgreSQLs the labels store runs on, behind one small interface: a server named by DATABASE_URL
 * (through `pg`'s pool, which any number of replicas may share), or the embedded PGlite in a folder (one
 * process). Only store.ts and migrations.ts write SQL; nothing else sees a connection.
 */

export type Row = Record<string, unknown>;

/** Runs one statement with $1… parameters. */
export type Query = <R extends Row = Row>(sql: string, params?: unknown[]) => Promise<R[]>;

/** One connection held for a while (migrations under an advisory lock). */
export interface Session {
  query: Query;
  /** several statements, no parameters (a migration's script) */
  script(sql: string): Promise<void>;
}

export interface Database {
  query: Query;
  /** runs `work` on one connection of its own, given back afterwards */
  withSession<T>(work: (session: Session) => Promise<T>): Promise<T>;
  close(): Promise<void>;
  /** where the data is, for the log: never the password */
  readonly where: string;
}

export interface DatabaseOptions {
  /** a postgres:// URL; absent: the embedded store in dataDir */
  url?: string;
  dataDir: string;
  /** a connection attempt or a statement taking longer fails, so a slow server never holds a request */
  timeoutMs?: number;
  /** pg's pool reports a dropped idle connection here (without a listener it would crash the process) */
  onIdleError?(err: Error): void;
}

export function openDatabase(options: DatabaseOptions): Database {
  return options.url ? serverDatabase(options.url, options) : embeddedDatabase(options.dataDir);
}

/** The URL without its password, for logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://…';
  }
}

function serverDatabase(url: string, options: DatabaseOptions): Database {
  const timeoutMs = options.timeoutMs ?? 5000;
  const pool = new pg.Pool({
    connectionString: url,
    max: 4,
    connectionTimeoutMillis: timeoutMs,
    query_timeout: timeoutMs,
    idleTimeoutMillis: 30_000,
  });
  pool.on('error', (err) => options.onIdleError?.(err));
  const query: Query = async <R extends Row>(sql: string, params?: unknown[]) =>
    (await pool.query(sql, params)).rows as R[];
  return {
    query,
    async withSession(work) {
      const client = await pool.connect();
      let broken = false;
      try {
        return await work({
          query: async <R extends Row>(sql: string, params?: unknown[]) =>
            (await client.query(sql, params)).rows as R[],
          script: async (sql) => {
            await client.query(sql);
          },
        });
      } catch (err) {
        // A connection that failed mid-work may still hold a lock or an open transaction: never reuse it.
        broken = true;
        throw err;
      } finally {
        client.release(broken);
      }
    },
    close: () => pool.end(),
    where: `PostgreSQL at ${redactUrl(url)}`,
  };
}

/**
 * PGlite keeps its files in a folder that only one process may open: a second one would corrupt it. A lock file
 * with the owner's pid refuses a second process with a message saying what to do; a lock left by a process that
 * died is taken over.
 */
function lockFolder(dataDir: string): () => void {
  fs.mkdirSync(dataDir, { recursive: true });
  const lockFile = path.join(dataDir, 'gourmetgram.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(lockFile, String(process.pid), { flag: 'wx' });
      return () => fs.rmSync(lockFile, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = Number(fs.readFileSync(lockFile, 'utf8').trim());
      if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && isAlive(owner)) {
        throw new Error(
          `The embedded labels store in ${dataDir} is in use by process ${owner}. Only one process may open it: ` +
            'stop that one, give this one another LABEL_DATA_DIR, or share a PostgreSQL server through DATABASE_URL.',
        );
      }
      fs.rmSync(lockFile, { force: true });
    }
  }
  throw new Error(`Could not lock ${lockFile}.`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

type Call =
  { kind: 'query'; sql: string; params?: unknown[] } | { kind: 'script'; sql: string } | { kind: 'close' };

function embeddedDatabase(dataDir: string): Database {
  const folder = path.resolve(dataDir);
  const unlock = lockFolder(folder);
  // PGlite runs in a thread of its own (embedded-thread.ts): its statements and its start never block requests.
  const thread = startThread(serviceScript('labels/embedded-thread'), { dir: path.join(folder, 'pgdata') });
  const waiting = new Map<number, { resolve(rows: unknown[]): void; reject(err: Error): void }>();
  let failed: Error | undefined;
  let next = 0;
  const failAll = (err: Error) => {
    failed ??= err;
    for (const w of waiting.values()) w.reject(err);
    waiting.clear();
  };
  thread.on('message', (reply: EmbeddedReply) => {
    const w = waiting.get(reply.id);
    waiting.delete(reply.id);
    if ('error' in reply) w?.reject(new Error(reply.error));
    else w?.resolve(reply.rows);
  });
  thread.on('error', failAll);
  thread.on('exit', (code) => failAll(new Error(`the embedded labels store's thread exited (code ${code})`)));
  const call = (request: Call) =>
    new Promise<unknown[]>((resolve, reject) => {
      if (failed) {
        reject(failed);
        return;
      }
      const id = ++next;
      waiting.set(id, { resolve, reject });
      thread.postMessage({ ...request, id } as EmbeddedRequest);
    });
  const query: Query = async <R extends Row>(sql: string, params?: unknown[]) =>
    (await call({ kind: 'query', sql, params })) as R[];
  // One connection in all, whose statements the thread runs in order: a session is the database itself.
  const session: Session = {
    query,
    script: async (sql) => {
      await call({ kind: 'script', sql });
    },
  };
  return {
    query,
    withSession: (work) => work(session),
    async close() {
      try {
        if (!failed) await call({ kind: 'close' });
      } finally {
        await thread.terminate();
        unlock();
      }
    },
    where: `embedded PostgreSQL (PGlite) in ${folder}`,
  };
}
