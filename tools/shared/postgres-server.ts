import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './service-process';

/**
 * A throwaway PostgreSQL server on loopback for the labels tests and the labels benchmark: Debian's `postgresql`
 * package (.ci/run installs it), a cluster made with initdb in a temporary folder, started and stopped with
 * pg_ctl. PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres` user the package
 * creates. It lives with the tools, beside service-process.ts, because the benchmark uses it too.
 */

export interface PostgresServer {
  url: string;
  port: number;
  /** pg_ctl stop -m fast: connections are cut, as in a crash or a failover */
  stop(): void;
  start(): void;
  /** stops the server and removes its folder */
  destroy(): void;
}

function findBinaries(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!fs.existsSync(root)) return undefined;
  const versions = fs
    .readdirSync(root)
    .filter((v) => fs.existsSync(path.join(root, v, 'bin', 'pg_ctl')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] ? path.join(root, versions[0], 'bin') : undefined;
}

export const postgresInstalled = () => findBinaries() !== undefined;

export async function startPostgres(): Promise<PostgresServer> {
  const bin = findBinaries();
  if (!bin) throw new Error('PostgreSQL binaries not found under /usr/lib/postgresql');
  const asRoot = process.getuid?.() === 0;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gg-postgres-'));
  const data = path.join(dir, 'data');
  if (asRoot) execFileSync('chown', ['postgres:postgres', dir]);
  const run = (cmd: string, args: string[]) => {
    const [file, argv] = asRoot
      ? ['runuser', ['-u', 'postgres', '--', path.join(bin, cmd), ...args]]
      : [path.join(bin, cmd), args];
    const result = spawnSync(file, argv, { encoding: 'utf8', cwd: dir });
    if (result.status !== 0) {
      throw new Error(`${cmd} ${args.join(' ')} failed: ${result.stderr || result.stdout}`);
    }
  };
  run('initdb', ['-D', data, '-U', 'gourmetgram', '-A', 'trust', '--no-sync', '-E', 'UTF8']);
  const port = await freePort();
  // Only loopback, a socket in the cluster's own folder, and no fsync: a test server, fast and private.
  const options = `-h 127.0.0.1 -p ${port} -k ${dir} -F -c max_connections=50`;
  const start = () => run('pg_ctl', ['-D', data, '-o', options, '-l', path.join(dir, 'log'), '-w', 'start']);
  const stop = () => run('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']);
  start();
  run('createdb', ['-h', '127.0.0.1', '-p', String(port), '-U', 'gourmetgram', 'labels']);
  let destroyed = false;
  return {
    url: `postgres://gourmetgram@127.0.0.1:${port}/labels`,
    port,
    stop,
    start,
    destroy() {
      if (destroyed) return;
      destroyed = true;
      try {
        stop();
      } catch {
        // already stopped
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
