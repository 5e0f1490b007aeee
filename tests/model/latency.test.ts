import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { median, percentile, timeRuns } from '../../model/train/latency';

describe('nearest-rank percentile', () => {
  it('returns a value that occurred, the smallest with p% at or below it', () => {
    const v = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100];
    assert.equal(percentile(v, 50), 50);
    assert.equal(percentile(v, 90), 90);
    assert.equal(percentile(v, 99), 100);
    assert.equal(percentile(v, 0), 10);
    assert.equal(percentile([7], 99), 7);
    assert.ok(Number.isNaN(percentile([], 50)));
  });
});

describe('median and timeRuns', () => {
  it('the median is the nearest-rank 50th percentile: a value that occurred, the lower middle of an even count', () => {
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([40, 10, 30, 20]), 20);
    assert.ok(Number.isNaN(median([])));
  });

  it('times every run after the warm-up ones, which are not measured', async () => {
    let calls = 0;
    const times = await timeRuns(3, 2, async () => {
      calls++;
    });
    assert.equal(calls, 5);
    assert.equal(times.length, 3);
    assert.ok(times.every((t) => t >= 0));
  });
});
