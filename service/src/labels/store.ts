import type { Database } from './database';

/**
 * Every statement the labels store runs (the schema is in migrations.ts): predictions waiting for a label, the
 * label itself, the tallies /accuracy is computed from, the sweep that enforces the pending window and the
 * retention period, and the labelled photos an export reads. Times come from the caller's clock, so every
 * replica judges "expired" the same way the id's own timestamp does.
 */

export type LabelKind = 'heldout' | 'correction';

/** A prediction as it waits for its label. */
export interface PendingPrediction {
  id: string;
  createdAt: Date;
  heldOut: boolean;
  modelName: string;
  modelVersion: string;
  /** class id */
  predicted: string;
  /** class id → probability */
  probabilities: Record<string, number>;
  timings: Record<string, number>;
  /** JPEG, at most 512 px */
  photo: Uint8Array;
}

export interface LabelledPrediction {
  id: string;
  heldOut: boolean;
  modelName: string;
  modelVersion: string;
  predicted: string;
  probabilities: Record<string, number>;
  label: string;
  /** true for the first label of this prediction; false when it replaced an earlier one */
  first: boolean;
  previousLabel: string | null;
}

export type LabelOutcome =
  { status: 'labelled'; prediction: LabelledPrediction } | { status: 'unknown' } | { status: 'expired' };

/** How many labelled predictions share a model version, a kind, a predicted class and a label. */
export interface TallyRow {
  modelName: string;
  modelVersion: string;
  heldOut: boolean;
  predicted: string;
  label: string;
  count: number;
}

export interface ExportedPhoto {
  id: string;
  label: string;
  heldOut: boolean;
  photo: Uint8Array;
}

const PREDICTION_COLUMNS = 11;

export class LabelStore {
  constructor(private readonly db: Database) {}

  /** Writes predictions waiting for a label; one already there (a retried batch) is left as it is. */
  async savePending(records: PendingPrediction[]): Promise<void> {
    if (records.length === 0) return;
    const values: unknown[] = [];
    const rows = records.map((r, i) => {
      values.push(
        r.id,
        r.createdAt,
        r.heldOut,
        r.modelName,
        r.modelVersion,
        r.predicted,
        JSON.stringify(r.probabilities),
        JSON.stringify(r.timings),
        r.photo,
        null,
        null,
      );
      const at = i * PREDICTION_COLUMNS;
      return `(${Array.from({ length: PREDICTION_COLUMNS }, (_, k) => `$${at + k + 1}`).join(', ')})`;
    });
    await this.db.query(
      `INSERT INTO predictions (id, created_at, held_out, model_name, model_version, predicted, probabilities,
         timings, photo, label, labelled_at)
       VALUES ${rows.join(', ')}
       ON CONFLICT (id) DO NOTHING`,
      values,
    );
  }

  /**
   * Labels a prediction still inside its pending window (or replaces its label). One statement, so two replicas
   * labelling the same id at once leave one label, and the prediction counts once.
   */
  async label(id: string, label: string, now: Date, pendingMs: number): Promise<LabelOutcome> {
    const notBefore = new Date(now.getTime() - pendingMs);
    // Twice at most: a prediction another replica writes between the UPDATE and the look-up is labelled then.
    for (let attempt = 0; attempt < 2; attempt++) {
      const labelled = await this.updateLabel(id, label, now, notBefore);
      if (labelled) return { status: 'labelled', prediction: labelled };
      const found = await this.db.query<{ created_at: Date }>(
        'SELECT created_at FROM predictions WHERE id = $1',
        [id],
      );
      if (found.length === 0) return { status: 'unknown' };
      if (found[0]!.created_at < notBefore) return { status: 'expired' };
    }
    return { status: 'unknown' };
  }

  private async updateLabel(
    id: string,
    label: string,
    now: Date,
    notBefore: Date,
  ): Promise<LabelledPrediction | undefined> {
    const rows = await this.db.query<{
      id: string;
      held_out: boolean;
      model_name: string;
      model_version: string;
      predicted: string;
      probabilities: Record<string, number>;
      label: string;
      previous_label: string | null;
    }>(
      `UPDATE predictions p SET label = $2, labelled_at = $3, label_requests = p.label_requests + 1
       FROM (SELECT id, label AS previous_label FROM predictions WHERE id = $1 FOR UPDATE) old
       WHERE p.id = old.id AND p.created_at >= $4
       RETURNING p.id, p.held_out, p.model_name, p.model_version, p.predicted, p.probabilities, p.label,
         old.previous_label`,
      [id, label, now, notBefore],
    );
    const row = rows[0];
    if (!row) return undefined;
    return {
      id: row.id,
      heldOut: row.held_out,
      modelName: row.model_name,
      modelVersion: row.model_version,
      predicted: row.predicted,
      probabilities: row.probabilities,
      label: row.label,
      first: row.previous_label === null,
      previousLabel: row.previous_label,
    };
  }

  /** The labelled predictions, counted by model version, kind, predicted class and label (a few hundred rows). */
  async tally(): Promise<TallyRow[]> {
    const rows = await this.db.query<{
      model_name: string;
      model_version: string;
      held_out: boolean;
      predicted: string;
      label: string;
      n: number;
    }>(
      `SELECT model_name, model_version, held_out, predicted, label, count(*)::int AS n
       FROM predictions WHERE label IS NOT NULL
       GROUP BY model_name, model_version, held_out, predicted, label
       ORDER BY model_name, model_version, held_out, predicted, label`,
    );
    return rows.map((r) => ({
      modelName: r.model_name,
      modelVersion: r.model_version,
      heldOut: r.held_out,
      predicted: r.predicted,
      label: r.label,
      count: r.n,
    }));
  }

  /**
   * Deletes what may no longer be kept: predictions nobody labelled within the pending window (their photos
   * were never the user's to give) and labelled ones older than the retention period.
   */
  async sweep(
    now: Date,
    pendingMs: number,
    retentionMs: number,
  ): Promise<{ pending: number; labelled: number }> {
    const pending = await this.db.query(
      'DELETE FROM predictions WHERE label IS NULL AND created_at < $1 RETURNING 1',
      [new Date(now.getTime() - pendingMs)],
    );
    const labelled = await this.db.query(
      'DELETE FROM predictions WHERE label IS NOT NULL AND labelled_at < $1 RETURNING 1',
      [new Date(now.getTime() - retentionMs)],
    );
    return { pending: pending.length, labelled: labelled.length };
  }

  /** The labelled photos of the given kinds, a page at a time in id order (an export of any size stays small). */
  async *labelledPhotos(kinds: readonly LabelKind[], pageSize = 100): AsyncGenerator<ExportedPhoto> {
    const heldOut = kinds.map((k) => k === 'heldout');
    let after = '00000000-0000-0000-0000-000000000000';
    for (;;) {
      const rows = await this.db.query<{ id: string; label: string; held_out: boolean; photo: Uint8Array }>(
        `SELECT id, label, held_out, photo FROM predictions
         WHERE label IS NOT NULL AND held_out = ANY($1::boolean[]) AND id > $2
         ORDER BY id LIMIT $3`,
        [heldOut, after, pageSize],
      );
      for (const r of rows) yield { id: r.id, label: r.label, heldOut: r.held_out, photo: r.photo };
      if (rows.length < pageSize) return;
      after = rows[rows.length - 1]!.id;
    }
  }
}
