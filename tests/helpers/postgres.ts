import { postgresInstalled } from '../../tools/shared/postgres-server';

export { startPostgres, type PostgresServer } from '../../tools/shared/postgres-server';

/**
 * Why the PostgreSQL tests cannot run here, or undefined when they can: they skip with this message on a machine
 * without Debian's postgresql, but under CI (CI=true, which .ci/run sets after installing it) that is a failure.
 */
export function postgresMissing(): string | undefined {
  if (postgresInstalled()) return undefined;
  const why = 'PostgreSQL is not installed (apt-get install postgresql; .ci/run does it)';
  if (process.env.CI === 'true') throw new Error(`${why}: under CI the PostgreSQL tests must run.`);
  return why;
}
