import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  confusionMatrix,
  reportFromConfusion,
  reportToMarkdown,
} from '../../model/train/classification-metrics';
import { argmax } from '../../model/train/scoring';

const labels = ['A', 'B', 'C'].map((id, index) => ({ index, id, name: `${id} name` }));

describe('evaluation arithmetic', () => {
  // truth A: 8 → A, 2 → B;  truth B: 1 → A, 4 → B;  truth C: none.
  const truth = [...Array(10).fill(0), ...Array(5).fill(1)];
  const predicted = [...Array(8).fill(0), 1, 1, 0, 1, 1, 1, 1];

  it('builds the confusion matrix rows = truth, columns = prediction', () => {
    assert.deepEqual(confusionMatrix(truth, predicted, 3), [
      [8, 2, 0],
      [1, 4, 0],
      [0, 0, 0],
    ]);
  });

  it('computes accuracy, macro accuracy over present classes, and per-class precision/recall', () => {
    const r = reportFromConfusion(confusionMatrix(truth, predicted, 3), labels);
    assert.equal(r.total, 15);
    assert.equal(r.accuracy, 12 / 15);
    // Mean recall of A (0.8) and B (0.8); C has no photos and does not count.
    assert.equal(r.macroAccuracy, (8 / 10 + 4 / 5) / 2);
    assert.equal(r.classes[0]!.precision, 8 / 9);
    assert.equal(r.classes[1]!.precision, 4 / 6);
    assert.equal(r.classes[0]!.recall, 0.8);
    assert.equal(r.classes[2]!.recall, null);
    assert.equal(r.classes[2]!.precision, null);
  });

  it('macro accuracy differs from accuracy when classes are unbalanced', () => {
    const r = reportFromConfusion(
      [
        [90, 0],
        [5, 5],
      ],
      labels.slice(0, 2),
    );
    assert.equal(r.accuracy, 0.95);
    assert.equal(r.macroAccuracy, 0.75);
  });

  it('renders markdown with the numbers and the matrix', () => {
    const md = reportToMarkdown(reportFromConfusion(confusionMatrix(truth, predicted, 3), labels), 'test');
    assert.match(md, /accuracy \*\*80\.0 %\*\*/);
    assert.match(md, /\| A name \| 10 \| 88\.9 % \| 80\.0 % \|/);
    assert.match(md, /\| A \| 8 \| 2 \| 0 \|/);
    assert.doesNotMatch(md, /\| C \| 0 \| 0 \| 0 \|/);
  });

  it('picks the largest probability per row', () => {
    const rows = [Float32Array.from([0.1, 0.7, 0.2]), Float32Array.from([0.5, 0.2, 0.3])];
    assert.deepEqual(rows.map(argmax), [1, 0]);
  });
});
