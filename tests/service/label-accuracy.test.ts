import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { accuracyReport, wilsonInterval } from '../../service/src/labels/accuracy';
import { isUuid, newPredictionId, predictionIdTime } from '../../service/src/labels/prediction-id';
import type { TallyRow } from '../../service/src/labels/store';

const close = (a: number, b: number, what: string) =>
  assert.ok(Math.abs(a - b) < 5e-4, `${what}: ${a} ≠ ${b}`);

describe('live accuracy arithmetic', () => {
  it('the Wilson interval matches published values', () => {
    // 8 of 10: 0.490–0.943; 41 of 50: 0.692–0.902 (Newcombe 1998's method 3 / any statistics table)
    const a = wilsonInterval(8, 10)!;
    close(a.low, 0.4902, 'low 8/10');
    close(a.high, 0.9433, 'high 8/10');
    const b = wilsonInterval(41, 50)!;
    close(b.low, 0.692, 'low 41/50');
    close(b.high, 0.9023, 'high 41/50');
    // at the edges it stays inside [0, 1] and is not empty, unlike p ± 1.96·se
    const none = wilsonInterval(0, 10)!;
    assert.equal(none.low, 0);
    close(none.high, 0.2775, 'high 0/10');
    assert.equal(wilsonInterval(0, 0), null);
  });

  it('per model version: held-out accuracy, recall, confusion; corrections apart', () => {
    const row = (
      version: string,
      heldOut: boolean,
      predicted: string,
      label: string,
      count: number,
    ): TallyRow => ({
      modelName: 'm',
      modelVersion: version,
      heldOut,
      predicted,
      label,
      count,
    });
    const report = accuracyReport(
      [
        row('3', true, 'Soup', 'Soup', 6),
        row('3', true, 'Soup', 'Rice', 2),
        row('3', true, 'Rice', 'Rice', 2),
        row('3', false, 'Soup', 'Egg', 5),
        row('2', true, 'Egg', 'Egg', 1),
      ],
      ['Egg', 'Rice', 'Soup'],
    );
    assert.equal(report.labelsTotal, 16);
    assert.equal(report.heldOutTotal, 11);
    assert.equal(report.correctionsTotal, 5);
    const v3 = report.models.find((m) => m.version === '3')!;
    assert.equal(v3.heldOut.n, 10);
    assert.equal(v3.heldOut.correct, 8);
    assert.equal(v3.heldOut.accuracy, 0.8);
    assert.deepEqual(v3.heldOut.ci95, wilsonInterval(8, 10));
    assert.deepEqual(
      v3.heldOut.perClass.map((c) => [c.class, c.n, c.recall]),
      [
        ['Egg', 0, null],
        ['Rice', 4, 0.5],
        ['Soup', 6, 1],
      ],
    );
    // rows: the users' labels; columns: the model's answers
    assert.deepEqual(v3.heldOut.confusion.matrix, [
      [0, 0, 0],
      [0, 2, 2],
      [0, 0, 6],
    ]);
    assert.equal(v3.corrections.n, 5);
    assert.equal(v3.corrections.agreed, 0);
    assert.equal(v3.corrections.confusion.matrix[0]![2], 5);
    assert.equal(report.models.find((m) => m.version === '2')!.heldOut.accuracy, 1);
  });
});

describe('prediction ids', () => {
  it('are UUID version 7 carrying the time they were made, and unguessable', () => {
    const at = Date.UTC(2026, 11, 5, 4, 0, 0, 123);
    const id = newPredictionId(at);
    assert.ok(isUuid(id));
    assert.equal(id[14], '7');
    assert.match(id[19]!, /[89ab]/);
    assert.equal(predictionIdTime(id), at);
    assert.notEqual(newPredictionId(at), id);
    assert.equal(
      predictionIdTime('3f2b8c1e-4d5a-4b6c-8d7e-9f0a1b2c3d4e'),
      undefined,
      'a v4 UUID has no time',
    );
  });
});
