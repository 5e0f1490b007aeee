import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startServer, type RunningServer } from '../../tools/shared/service-process';
import { makeJpeg } from '../helpers/images';
import {
  accuracy,
  CLASS_IDS,
  labelsOpen,
  labelWithRetry,
  postLabel,
  predictJson,
} from '../helpers/labels-client';
import { postgresMissing, startPostgres, type PostgresServer } from '../helpers/postgres';

// Two service processes (replicas) sharing one real PostgreSQL server: labels taken by either replica for
// predictions made by the other, none lost with 8 clients at once, none lost when the database restarts
// mid-run (503 + Retry-After, then success), and the labels outlive a replica killed outright.

const CLIENTS = 8;
const ROUNDS = 5;

describe('labels with two replicas on one PostgreSQL', { skip: postgresMissing() }, () => {
  let db: PostgresServer;
  const replicas: RunningServer[] = [];
  const envFor = () => ({ LABELS: 'on', DATABASE_URL: db.url });

  before(async () => {
    db = await startPostgres();
    replicas.push(...(await Promise.all([startServer({ env: envFor() }), startServer({ env: envFor() })])));
    await Promise.all(replicas.map((r) => labelsOpen(r.url)));
  });
  after(async () => {
    await Promise.all(replicas.map((r) => r.stop()));
    db?.destroy();
  });

  it('classifies while the database is down, answers a label 503 + Retry-After, and recovers by itself', async () => {
    const [a, b] = replicas as [RunningServer, RunningServer];
    const photo = await makeJpeg(320, 240, 101);
    db.stop();
    try {
      const held = await predictJson(a.url, photo, true);
      assert.ok(held.id, 'a prediction made while the database is down still has an id (its record waits)');
      assert.equal((await fetch(`${a.url}/readyz`)).status, 200);
      const refused = await postLabel(b.url, held.id, 'Soup');
      assert.equal(refused.status, 503);
      assert.ok(Number(refused.headers.get('retry-after')) >= 1);
      const accuracyRefused = await fetch(`${a.url}/accuracy`);
      assert.equal(accuracyRefused.status, 503);
    } finally {
      db.start();
    }
    // once the database is back, the waiting record is written and the label taken, by either replica
    const before = (await accuracy(a.url)).labelsTotal;
    const held = await predictJson(a.url, photo, true);
    const { answer } = await labelWithRetry(b.url, held.id!, 'Soup');
    assert.equal(answer.kind, 'heldout');
    assert.equal((await accuracy(b.url)).labelsTotal, before + 1);
    const metrics = await (await fetch(`${a.metricsUrl}/metrics`)).text();
    assert.match(metrics, /^label_store_up 1$/m);
  });

  it(`loses no label: ${CLIENTS} clients against 2 replicas, the database restarted mid-run`, async () => {
    const start = await accuracy(replicas[0]!.url);
    const expected = new Map<string, string>();
    let labelsDone = 0;
    let retries = 0;
    const photos = await Promise.all(Array.from({ length: CLIENTS }, (_, c) => makeJpeg(240, 180, 200 + c)));
    let restarted!: () => void;
    const restartDone = new Promise<void>((resolve) => (restarted = resolve));
    // The database goes down once a third of the labels are in, and comes back a second later.
    const restartWhenDue = (async () => {
      while (labelsDone < (CLIENTS * ROUNDS) / 3) await new Promise((r) => setTimeout(r, 20));
      db.stop();
      await new Promise((r) => setTimeout(r, 1000));
      db.start();
      restarted();
    })();
    await Promise.all(
      Array.from({ length: CLIENTS }, async (_, c) => {
        for (let round = 0; round < ROUNDS; round++) {
          // predict on one replica, label on the other
          const predictOn = replicas[(c + round) % 2]!;
          const labelOn = replicas[(c + round + 1) % 2]!;
          const held = await predictJson(predictOn.url, photos[c]!, true);
          assert.ok(held.id);
          const label = CLASS_IDS[(c * ROUNDS + round) % CLASS_IDS.length]!;
          const outcome = await labelWithRetry(labelOn.url, held.id, label);
          retries += outcome.retries;
          assert.equal(outcome.answer.labelId, label);
          expected.set(held.id, label);
          labelsDone++;
        }
      }),
    );
    await restartWhenDue;
    await restartDone;
    assert.equal(expected.size, CLIENTS * ROUNDS);
    const end = await accuracy(replicas[1]!.url);
    assert.equal(end.labelsTotal - start.labelsTotal, CLIENTS * ROUNDS, 'every label stored, none twice');
    // per class, the users' labels in the confusion matrix's rows add up to what the clients sent
    const rows = end.models[0]!.heldOut.confusion;
    const startRows = start.models[0]?.heldOut.confusion;
    for (const cls of CLASS_IDS) {
      const i = rows.classes.indexOf(cls);
      const sent = [...expected.values()].filter((l) => l === cls).length;
      const had = startRows
        ? startRows.matrix[startRows.classes.indexOf(cls)]!.reduce((a, b) => a + b, 0)
        : 0;
      assert.equal(rows.matrix[i]!.reduce((a, b) => a + b, 0) - had, sent, cls);
    }
    console.log(`# ${CLIENTS * ROUNDS} labels, ${retries} retries after 503s while the database restarted`);
  });

  it('keeps every label when a replica is killed outright, and the restarted replica sees them', async () => {
    const [a, b] = replicas as [RunningServer, RunningServer];
    const before = await accuracy(b.url);
    const held = await predictJson(a.url, await makeJpeg(200, 200, 300), true);
    await labelWithRetry(a.url, held.id!, 'Meat');
    await a.stop('SIGKILL');
    const survivor = await accuracy(b.url);
    assert.equal(survivor.labelsTotal, before.labelsTotal + 1);
    replicas[0] = await startServer({ env: envFor() });
    await labelsOpen(replicas[0].url);
    assert.equal((await accuracy(replicas[0].url)).labelsTotal, survivor.labelsTotal);
  });
});
