// What every PostgreSQL server this stack creates shares, on a cluster, on Cloud SQL or on a Docker host: the
// role and database the service uses, the generated password, the DATABASE_URL built from them, the official
// image's user and folders, and the readiness check.

import * as pulumi from '@pulumi/pulumi';
import * as random from '@pulumi/random';

export const DATABASE_USER = 'gourmetgram';
export const DATABASE_NAME = 'gourmetgram';
export const DATABASE_PORT = 5432;

/** The `postgres` user of the official (Debian) image. Numeric, so runAsNonRoot can verify it. */
export const POSTGRES_UID = 999;
/**
 * The data folder of the official images up to PostgreSQL 17 (18 moved it under /var/lib/postgresql/18/): a
 * databaseImage of another major version needs these changed with it, and a dump and restore of the data.
 */
export const POSTGRES_DATA_MOUNT = '/var/lib/postgresql/data';
/** A folder inside the volume: a fresh volume's root may hold lost+found, and initdb wants an empty folder. */
export const PGDATA = `${POSTGRES_DATA_MOUNT}/pgdata`;
/** The unix socket's folder: the root filesystem is read-only, and the entrypoint's first start uses it. */
export const POSTGRES_SOCKET_DIR = '/var/run/postgresql';

/** The official image's settings: the role and database its first start creates, and where the data goes. */
export const POSTGRES_ENV: Record<string, string> = {
  POSTGRES_USER: DATABASE_USER,
  POSTGRES_DB: DATABASE_NAME,
  PGDATA,
};

/** Over TCP, so the entrypoint's first, socket-only start does not count as ready. */
export const PG_ISREADY = [
  'pg_isready',
  '--host=127.0.0.1',
  `--port=${DATABASE_PORT}`,
  `--username=${DATABASE_USER}`,
  `--dbname=${DATABASE_NAME}`,
];

/**
 * A password the URL needs no escaping for (letters and digits only), long enough not to need other
 * characters. `protect` keeps it as long as the data it opens: a server whose volume survives keeps the
 * password it was initialised with, and a new one would lock the classifier out.
 */
export function databasePassword(
  name: string,
  protect: boolean,
  parent: pulumi.Resource,
): random.RandomPassword {
  return new random.RandomPassword(name, { length: 32, special: false }, { parent, protect });
}

/** postgres://user:password@host:port/db, a secret; the password escaped as a URL requires. */
export function postgresUrl(
  password: pulumi.Input<string>,
  host: pulumi.Input<string>,
): pulumi.Output<string> {
  const escaped = pulumi.output(password).apply(encodeURIComponent);
  return pulumi.secret(
    pulumi.interpolate`postgres://${DATABASE_USER}:${escaped}@${host}:${DATABASE_PORT}/${DATABASE_NAME}`,
  );
}

/** `postgres://user:pw@host:5432/db` → `host`: the part of an existing server's URL that may be shown. */
export function databaseUrlHost(url: string): string {
  try {
    return new URL(url).hostname;
  } catch {
    return '';
  }
}
