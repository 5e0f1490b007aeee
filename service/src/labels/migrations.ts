import type { Database } from './database';

/**
 * The labels store's schema, as numbered migrations applied in order at start-up. A migration is never edited
 * once released: a change is a new one at the end. Replicas that start together take turns through a
 * session-level advisory lock, so each migration runs exactly once, in its own transaction.
 */

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'predictions',
    sql: `
      CREATE TABLE predictions (
        id uuid PRIMARY KEY,
        created_at timestamptz NOT NULL,
        -- held out: the user named the class before seeing the model's answer (an unbiased sample);
        -- otherwise a label is a correction the user chose to make
        held_out boolean NOT NULL,
        model_name text NOT NULL,
        model_version text NOT NULL,
        -- class ids (Dairy-product), as model/shipped/metadata.json names them
        predicted text NOT NULL,
        probabilities jsonb NOT NULL,
        timings jsonb NOT NULL,
        -- the photo scaled to at most 512 px, JPEG: enough to retrain on
        photo bytea NOT NULL,
        label text,
        labelled_at timestamptz,
        -- how many label requests it took; replacing a label does not count the prediction twice
        label_requests integer NOT NULL DEFAULT 0,
        CHECK ((label IS NULL) = (labelled_at IS NULL))
      );
      -- a JPEG does not compress: storing it as it is spares the server a useless compression pass per photo
      ALTER TABLE predictions ALTER COLUMN photo SET STORAGE EXTERNAL;
      -- what the sweeper deletes: unlabelled predictions past the pending window, labelled ones past retention
      CREATE INDEX predictions_pending ON predictions (created_at) WHERE label IS NULL;
      CREATE INDEX predictions_labelled ON predictions (labelled_at) WHERE label IS NOT NULL;
    `,
  },
];

/** Any fixed number: all replicas must use the same one. */
const MIGRATION_LOCK = 2_020_000_020;

/** Applies the migrations this database lacks; returns the versions it applied. */
export async function migrate(db: Database): Promise<number[]> {
  return db.withSession(async ({ query, script }) => {
    await query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    try {
      await script(`CREATE TABLE IF NOT EXISTS schema_migrations (
        version integer PRIMARY KEY,
        name text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
      )`);
      const done = new Set(
        (await query<{ version: number }>('SELECT version FROM schema_migrations')).map((r) => r.version),
      );
      const applied: number[] = [];
      for (const m of MIGRATIONS) {
        if (done.has(m.version)) continue;
        await script('BEGIN');
        try {
          await script(m.sql);
          await query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
          await script('COMMIT');
        } catch (err) {
          await script('ROLLBACK').catch(() => undefined);
          throw new Error(`migration ${m.version} (${m.name}) failed: ${(err as Error).message}`, {
            cause: err,
          });
        }
        applied.push(m.version);
      }
      return applied;
    } finally {
      await query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined);
    }
  });
}
