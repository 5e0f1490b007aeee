import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openDatabase, type Database } from '../../service/src/labels/database';
import { migrate, MIGRATIONS } from '../../service/src/labels/migrations';
import { newPredictionId } from '../../service/src/labels/prediction-id';
import { LabelStore, type PendingPrediction } from '../../service/src/labels/store';
import { postgresMissing, startPostgres, type PostgresServer } from '../helpers/postgres';

// The labels store's SQL against both engines it runs on: a real PostgreSQL server and the embedded PGlite.

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

function pending(overrides: Partial<PendingPrediction> = {}, at = Date.now()): PendingPrediction {
  return {
    id: newPredictionId(at),
    createdAt: new Date(at),
    heldOut: true,
    modelName: 'gourmetgram-food11',
    modelVersion: '3',
    predicted: 'Soup',
    probabilities: { Soup: 0.9, Bread: 0.1 },
    timings: { decodeMs: 1, queueMs: 0, inferenceMs: 2, totalMs: 3 },
    photo: Uint8Array.from([0xff, 0xd8, 0xff, 1, 2, 3]),
    ...overrides,
  };
}

function storeTests(name: string, open: () => Promise<{ db: Database; reopen: () => Database }>) {
  describe(`labels store on ${name}`, () => {
    let db: Database;
    let reopen: () => Database;
    let store: LabelStore;
    before(async () => {
      ({ db, reopen } = await open());
      assert.deepEqual(await migrate(db), [MIGRATIONS.at(-1)!.version]);
      store = new LabelStore(db);
    });
    after(async () => {
      await db.close();
    });

    it('labels a pending prediction once; a second label replaces it and is not counted twice', async () => {
      const p = pending({ predicted: 'Soup' });
      await store.savePending([p]);
      await store.savePending([p]); // a retried batch changes nothing
      const first = await store.label(p.id, 'Bread', new Date(), HOUR);
      assert.equal(first.status, 'labelled');
      assert.ok(first.status === 'labelled' && first.prediction.first && first.prediction.heldOut);
      const second = await store.label(p.id, 'Soup', new Date(), HOUR);
      assert.ok(second.status === 'labelled' && !second.prediction.first);
      assert.equal(second.status === 'labelled' && second.prediction.previousLabel, 'Bread');
      const mine = (await store.tally()).filter((r) => r.predicted === 'Soup' && r.heldOut);
      assert.deepEqual(
        mine.map((r) => [r.label, r.count]),
        [['Soup', 1]],
      );
    });

    it('tells an unknown id from an expired one', async () => {
      assert.deepEqual(await store.label(newPredictionId(), 'Soup', new Date(), HOUR), { status: 'unknown' });
      const old = pending({}, Date.now() - 2 * HOUR);
      await store.savePending([old]);
      assert.deepEqual(await store.label(old.id, 'Soup', new Date(), HOUR), { status: 'expired' });
    });

    it('labels the same prediction from many connections at once: one label, counted as first once', async () => {
      const p = pending({ heldOut: false, predicted: 'Egg' });
      await store.savePending([p]);
      const labels = ['Egg', 'Rice', 'Meat', 'Bread', 'Soup', 'Dessert', 'Seafood', 'Rice'];
      const outcomes = await Promise.all(labels.map((l) => store.label(p.id, l, new Date(), HOUR)));
      const firsts = outcomes.filter((o) => o.status === 'labelled' && o.prediction.first);
      assert.equal(firsts.length, 1);
      const rows = (await store.tally()).filter((r) => r.predicted === 'Egg' && !r.heldOut);
      assert.equal(
        rows.reduce((n, r) => n + r.count, 0),
        1,
      );
    });

    it('sweeps unlabelled predictions past the pending window and labelled ones past retention', async () => {
      const now = Date.now();
      const stale = pending({}, now - 2 * HOUR);
      const fresh = pending({}, now);
      const keptLabel = pending({}, now - 10 * DAY);
      const oldLabel = pending({}, now - 400 * DAY);
      await store.savePending([stale, fresh, keptLabel, oldLabel]);
      await store.label(keptLabel.id, 'Rice', new Date(now - 10 * DAY + 1000), HOUR);
      await store.label(oldLabel.id, 'Rice', new Date(now - 400 * DAY + 1000), HOUR);
      const swept = await store.sweep(new Date(now), HOUR, 365 * DAY);
      assert.ok(swept.pending >= 1 && swept.labelled >= 1, JSON.stringify(swept));
      assert.deepEqual(await store.label(stale.id, 'Rice', new Date(now), HOUR), { status: 'unknown' });
      assert.deepEqual(await store.label(oldLabel.id, 'Rice', new Date(now), 1000 * DAY), {
        status: 'unknown',
      });
      assert.equal((await store.label(fresh.id, 'Rice', new Date(now), HOUR)).status, 'labelled');
      const ids: string[] = [];
      for await (const photo of store.labelledPhotos(['heldout'], 2)) ids.push(photo.id);
      assert.ok(ids.includes(keptLabel.id) && ids.includes(fresh.id));
    });

    it('exports labelled photos page by page, of the kinds asked for, with their bytes', async () => {
      const photos = Array.from({ length: 5 }, (_, i) =>
        pending({ heldOut: i % 2 === 0, photo: Uint8Array.from([0xff, 0xd8, i]) }),
      );
      await store.savePending(photos);
      for (const p of photos) await store.label(p.id, 'Dessert', new Date(), HOUR);
      const seen = new Map<string, Uint8Array>();
      for await (const e of store.labelledPhotos(['correction'], 2)) seen.set(e.id, e.photo);
      for (const p of photos.filter((x) => !x.heldOut)) {
        assert.deepEqual([...seen.get(p.id)!], [...p.photo]);
      }
      assert.ok(photos.filter((x) => x.heldOut).every((p) => !seen.has(p.id)));
    });

    it('applies no migration twice, even when several replicas start at once', async () => {
      const others = [reopen(), reopen(), reopen()];
      try {
        const applied = await Promise.all(others.map((o) => migrate(o)));
        assert.deepEqual(applied, [[], [], []]);
      } finally {
        await Promise.all(others.map((o) => o.close()));
      }
    });
  });
}

const skipPostgres = postgresMissing();
describe('PostgreSQL server', { skip: skipPostgres }, () => {
  let server: PostgresServer;
  after(() => server?.destroy());
  storeTests('a PostgreSQL server', async () => {
    server = await startPostgres();
    return {
      db: openDatabase({ url: server.url, dataDir: 'unused' }),
      reopen: () => openDatabase({ url: server.url, dataDir: 'unused' }),
    };
  });

  it('migrates a fresh database exactly once when replicas race to start', async () => {
    const fresh = await startPostgres();
    try {
      const replicas = Array.from({ length: 4 }, () => openDatabase({ url: fresh.url, dataDir: 'unused' }));
      const applied = await Promise.all(replicas.map((r) => migrate(r)));
      assert.deepEqual(applied.flat(), [1]);
      await Promise.all(replicas.map((r) => r.close()));
    } finally {
      fresh.destroy();
    }
  });
});

describe('embedded PGlite', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gg-pglite-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  // PGlite is one process's: "other replicas" are the same folder opened again after this one is closed,
  // so the migration test below reopens it in turn rather than at once.
  storeTests('embedded PGlite', async () => {
    const db = openDatabase({ dataDir: dir });
    return { db, reopen: () => ({ ...db, close: async () => undefined }) };
  });

  it('refuses a second process on the same folder, with a message saying what to do', () => {
    const lock = path.join(dir, 'second');
    fs.mkdirSync(lock, { recursive: true });
    // this process's parent stands for "another live process"
    fs.writeFileSync(path.join(lock, 'gourmetgram.lock'), String(process.ppid));
    assert.throws(() => openDatabase({ dataDir: lock }), /in use by process \d+.*DATABASE_URL/);
  });
});
