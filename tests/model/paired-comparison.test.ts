import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { confusionMatrix, reportFromConfusion } from '../../model/train/classification-metrics';
import {
  classesTable,
  comparePaired,
  DEFAULT_BOOTSTRAP,
  groupsTable,
  mcnemarExactP,
  promotionVerdict,
  verdictToMarkdown,
  type GroupComparison,
} from '../../model/train/paired-comparison';
import { mulberry32 } from '../../model/train/random';

const labels = ['A', 'B', 'C'].map((id, index) => ({ index, id, name: `${id} name` }));
const wrong = (t: number) => (t + 1) % labels.length;

/**
 * `perClass` photos of each class; `right(model, class, i)` says whether that model answers photo i of the class
 * right (a wrong answer is the next class).
 */
function predictions(
  perClass: number,
  right: (model: 'baseline' | 'candidate', c: number, i: number) => boolean,
) {
  const truth: number[] = [];
  const baseline: number[] = [];
  const candidate: number[] = [];
  for (let c = 0; c < labels.length; c++) {
    for (let i = 0; i < perClass; i++) {
      truth.push(c);
      baseline.push(right('baseline', c, i) ? c : wrong(c));
      candidate.push(right('candidate', c, i) ? c : wrong(c));
    }
  }
  return { truth, baseline, candidate };
}

/** Baseline right on half of each class, candidate on those and 40 % more: a clear win. */
const win = predictions(100, (m, _c, i) => i < (m === 'baseline' ? 50 : 90));
/** The same, the models swapped. */
const loss = predictions(100, (m, _c, i) => i < (m === 'candidate' ? 50 : 90));
/** Both right on about 70 % of each class, each on its own random photos. */
const noise = (() => {
  const random = mulberry32(7);
  return predictions(100, () => random() < 0.7);
})();

const compare = (p: { truth: number[]; baseline: number[]; candidate: number[] }, seed = 1) =>
  comparePaired(p.truth, p.baseline, p.candidate, labels, { resamples: 2000, seed });

describe("McNemar's exact test", () => {
  it('gives the binomial tail for known discordant counts', () => {
    // 10 photos split 0 / 10: 2 × ½¹⁰.
    assert.equal(mcnemarExactP(0, 10), 2 / 1024);
    // 2 / 8: 2 × (C(10,0) + C(10,1) + C(10,2)) / 2¹⁰ = 2 × 56 / 1024.
    assert.ok(Math.abs(mcnemarExactP(2, 8) - 112 / 1024) < 1e-12, String(mcnemarExactP(2, 8)));
    assert.ok(Math.abs(mcnemarExactP(1, 20) - (2 * 22) / 2 ** 21) < 1e-15);
  });

  it('is symmetric, 1 for an even split or no disagreement, and capped at 1', () => {
    assert.equal(mcnemarExactP(8, 2), mcnemarExactP(2, 8));
    assert.equal(mcnemarExactP(5, 5), 1);
    assert.equal(mcnemarExactP(0, 0), 1);
    assert.equal(mcnemarExactP(6, 5), 1);
  });

  it('stays finite for thousands of discordant photos (near the normal approximation)', () => {
    // z = (|b − c| − 1) / √(b + c) = 199 / √8200 = 2.198: two-sided p ≈ 0.028.
    const p = mcnemarExactP(4000, 4200);
    assert.ok(p > 0.025 && p < 0.031, String(p));
    assert.ok(mcnemarExactP(0, 5000) === 0 || mcnemarExactP(0, 5000) < 1e-300);
  });

  it('refuses a count that is not a whole number ≥ 0', () => {
    assert.throws(() => mcnemarExactP(-1, 3), /whole number/);
    assert.throws(() => mcnemarExactP(1.5, 3), /whole number/);
  });
});

describe('paired comparison of two models on the same photos', () => {
  it('a clear win: +40 points, every discordant photo the candidate’s, the interval well above 0', () => {
    const g = compare(win);
    assert.equal(g.photos, 300);
    assert.ok(Math.abs(g.accuracy.difference - 0.4) < 1e-12);
    assert.equal(g.accuracy.onlyBaseline, 0);
    assert.equal(g.accuracy.onlyCandidate, 120);
    assert.equal(g.accuracy.p, mcnemarExactP(0, 120));
    assert.ok(Math.abs(g.meanRecall.difference - 0.4) < 1e-12);
    assert.ok(
      g.meanRecall.interval[0] > 0.3 && g.meanRecall.interval[1] < 0.5,
      String(g.meanRecall.interval),
    );
    assert.ok(
      g.meanRecall.interval[0] <= g.meanRecall.difference &&
        g.meanRecall.difference <= g.meanRecall.interval[1],
    );
    for (const k of g.classes) {
      assert.equal(k.photos, 100);
      assert.equal(k.baseline, 0.5);
      assert.equal(k.candidate, 0.9);
      assert.ok(k.p < 1e-10 && k.interval[0] > 0.25, `${k.name}: ${k.p} ${k.interval}`);
    }
  });

  it('a clear loss: the same numbers with the sign turned', () => {
    const g = compare(loss);
    assert.ok(Math.abs(g.meanRecall.difference + 0.4) < 1e-12);
    assert.equal(g.accuracy.onlyBaseline, 120);
    assert.ok(g.meanRecall.interval[1] < -0.3, String(g.meanRecall.interval));
  });

  it('a tie with noise: hundreds of disagreements, nothing significant', () => {
    const g = compare(noise);
    assert.ok(g.accuracy.onlyBaseline + g.accuracy.onlyCandidate > 80, JSON.stringify(g.accuracy));
    assert.ok(g.accuracy.p > 0.05, String(g.accuracy.p));
    assert.ok(g.meanRecall.interval[0] < 0 && g.meanRecall.interval[1] > 0, String(g.meanRecall.interval));
    assert.ok(Math.abs(g.meanRecall.difference) < 0.06, String(g.meanRecall.difference));
  });

  it('draws the same resamples for the same seed, other ones for another', () => {
    assert.deepEqual(compare(noise, 3), compare(noise, 3));
    assert.notDeepEqual(compare(noise, 3).meanRecall.interval, compare(noise, 4).meanRecall.interval);
  });

  it('weighs classes equally in mean recall, as the reports do, and resamples within each class', () => {
    // A: 1,000 photos both get right; B: 10 photos only the candidate gets right.
    const truth = [...Array(1000).fill(0), ...Array(10).fill(1)];
    const baseline = [...Array(1000).fill(0), ...Array(10).fill(2)];
    const candidate = [...truth];
    const g = comparePaired(truth, baseline, candidate, labels, { resamples: 500, seed: 1 });
    const report = reportFromConfusion(confusionMatrix(truth, baseline, 3), labels);
    assert.equal(g.meanRecall.baseline, report.macroAccuracy);
    assert.equal(g.meanRecall.difference, 0.5);
    assert.ok(Math.abs(g.accuracy.difference - 10 / 1010) < 1e-12);
    // Every resample keeps B's 10 photos, all of them won: the interval cannot move off +50 points.
    assert.deepEqual(g.meanRecall.interval, [0.5, 0.5]);
    assert.deepEqual(g.classes[0]!.interval, [0, 0]);
    assert.deepEqual(
      g.classes.map((k) => k.id),
      ['A', 'B'],
      'C has no photos and is left out',
    );
  });

  it('refuses predictions that are not one per photo', () => {
    assert.throws(() => comparePaired([0, 1], [0], [0, 1], labels), /one prediction per photo/);
    assert.throws(
      () => comparePaired([0, 1], [0, 1], [0, 1], labels, DEFAULT_BOOTSTRAP, ['a']),
      /one prediction per photo from each model: 2 photos, 2 and 2 predictions, 1 clusters/,
    );
  });
});

describe('resampling whole dishes (clusters)', () => {
  it('draws exactly what single photos draw when every photo is a cluster of its own', () => {
    const own = noise.truth.map((_, i) => `photo ${i}`);
    const options = { resamples: 2000, seed: 3 };
    assert.deepEqual(
      comparePaired(noise.truth, noise.baseline, noise.candidate, labels, options, own),
      comparePaired(noise.truth, noise.baseline, noise.candidate, labels, options),
    );
  });

  // Class A: 10 dishes of 10 photos each, both models right on all but dish 0, which only the baseline gets.
  // Counted photo by photo, the 10 lost photos are a significant loss of A; drawn by dish, a third of the resamples
  // leave dish 0 out altogether (0.9¹⁰), so nothing says the next dish would go the same way.
  const truth = Array(100).fill(0) as number[];
  const baseline = [...truth];
  const candidate = truth.map((t, i) => (i < 10 ? 1 : t));
  const dishes = truth.map((_, i) => `dish ${Math.floor(i / 10)}`);

  it('a loss on one dish is significant photo by photo, and not dish by dish', () => {
    const byPhoto = comparePaired(truth, baseline, candidate, labels, DEFAULT_BOOTSTRAP);
    const byDish = comparePaired(truth, baseline, candidate, labels, DEFAULT_BOOTSTRAP, dishes);
    for (const g of [byPhoto, byDish]) {
      assert.ok(Math.abs(g.meanRecall.difference + 0.1) < 1e-12);
      assert.equal(g.accuracy.onlyBaseline, 10);
      assert.equal(g.classes[0]!.photos, 100);
    }
    assert.ok(byPhoto.meanRecall.interval[1] < 0, String(byPhoto.meanRecall.interval));
    assert.equal(byDish.meanRecall.interval[1], 0, String(byDish.meanRecall.interval));
    // McNemar counts photos either way: the verdict's "worse" needs the interval too, and by dish it is not.
    const verdictOf = (g: GroupComparison) => promotionVerdict({ kitchen: g }, 0, { mustImprove: false });
    assert.equal(verdictOf(byPhoto).promoted, false);
    assert.equal(verdictOf(byDish).promoted, true);
  });

  it('a class of one dish varies as its photos do, not certain because no other dish can be drawn', () => {
    // One dish of 100 photos: 20 only the candidate gets, 10 only the baseline.
    const one = Array(100).fill(0) as number[];
    const b = one.map((t, i) => (i >= 20 && i < 30 ? t : i < 20 ? 1 : t));
    const k = one.map((t, i) => (i >= 20 && i < 30 ? 1 : t));
    const g = comparePaired(one, b, k, labels, DEFAULT_BOOTSTRAP, Array(100).fill('dish') as string[]);
    assert.ok(Math.abs(g.meanRecall.difference - 0.1) < 1e-12);
    const [low, high] = g.meanRecall.interval;
    assert.ok(low < 0.05 && high > 0.15, String(g.meanRecall.interval));
  });

  it('gathers a dish by its key wherever its photos are, and keeps dishes of one name apart by class', () => {
    // The same ten photos, dish 0's spread through the list: the same clusters, the same draws.
    const order = truth.map((_, i) => (i * 37) % 100);
    const spread = comparePaired(
      order.map((i) => truth[i]!),
      order.map((i) => baseline[i]!),
      order.map((i) => candidate[i]!),
      labels,
      DEFAULT_BOOTSTRAP,
      order.map((i) => dishes[i]!),
    );
    assert.equal(spread.meanRecall.interval[1], 0);
    // 'dish 0' in class B too: a class's resample draws only its own photos.
    const both = comparePaired(
      [...truth, 1, 1],
      [...baseline, 1, 1],
      [...candidate, 1, 1],
      labels,
      DEFAULT_BOOTSTRAP,
      [...dishes, 'dish 0', 'dish 0'],
    );
    assert.equal(both.classes[1]!.photos, 2);
    assert.deepEqual(both.classes[1]!.interval, [0, 0]);
  });
});

describe('the promotion verdict', () => {
  const w = compare(win);
  const l = compare(loss);
  const n = compare(noise);
  const decide = (groups: Record<string, GroupComparison>, margin = 0) => promotionVerdict(groups, margin);

  it('promotes a candidate better on the unseen dishes and sources and no worse elsewhere', () => {
    const v = decide({ lowres: n, 'unseen dishes': w, 'unseen sources': w, all: w });
    assert.equal(v.promoted, true);
    assert.deepEqual(
      v.checks.map((c) => [c.group, c.rule, c.passed]),
      [
        ['unseen dishes', 'better', true],
        ['unseen sources', 'better', true],
        ['lowres', 'not worse', true],
        ['all', 'not worse', true],
      ],
    );
  });

  it('does not promote one that is only as good on an unseen group', () => {
    const v = decide({ 'unseen dishes': w, 'unseen sources': n, all: w });
    assert.equal(v.promoted, false);
    assert.equal(v.checks.find((c) => c.group === 'unseen sources')!.passed, false);
  });

  it('does not promote one that is significantly worse on another group', () => {
    const v = decide({ lowres: l, 'unseen dishes': w, all: w });
    assert.equal(v.promoted, false);
    assert.deepEqual(
      v.checks.filter((c) => !c.passed).map((c) => c.group),
      ['lowres'],
    );
  });

  it('asks only "not worse" of every group in a further look', () => {
    const v = promotionVerdict({ 'unseen dishes': n, all: n }, 0, { mustImprove: false });
    assert.equal(v.promoted, true);
    assert.deepEqual(
      v.checks.map((c) => c.rule),
      ['not worse', 'not worse'],
    );
    assert.equal(promotionVerdict({ 'unseen dishes': l }, 0, { mustImprove: false }).promoted, false);
  });

  it('counts a loss only when McNemar agrees with the interval: one lost photo is not significant', () => {
    // The lost photo is its class's only one: every resample draws it, so the interval is −50 to −50 points.
    const one = comparePaired([0, 1, 1, 1], [0, 1, 1, 1], [2, 1, 1, 1], labels);
    assert.deepEqual(one.meanRecall.interval, [-0.5, -0.5]);
    assert.equal(one.accuracy.p, 1);
    const kept = decide({ 'unseen dishes': w, tiny: one });
    assert.equal(kept.promoted, true);
    assert.equal(kept.checks.find((c) => c.group === 'tiny')!.p, 1);
    // Six of six lost: 2 × ½⁶ = 0.031, and the interval is as sure.
    const six = comparePaired(Array(6).fill(0), Array(6).fill(0), Array(6).fill(1), labels);
    assert.equal(decide({ 'unseen dishes': w, small: six }).promoted, false);
    assert.deepEqual(decide({ 'unseen dishes': six }).worseClasses, ['unseen dishes: A name']);
  });

  it('asks the improvement to clear the margin', () => {
    assert.equal(decide({ 'unseen dishes': w }, 0.2).promoted, true);
    assert.equal(decide({ 'unseen dishes': w }, 0.45).promoted, false);
  });

  it('without unseen dishes or sources, the candidate must be better on all photos', () => {
    const v = decide({ full: w, all: n });
    assert.equal(v.promoted, false);
    assert.deepEqual(
      v.checks.map((c) => [c.group, c.rule]),
      [
        ['all', 'better'],
        ['full', 'not worse'],
      ],
    );
    assert.equal(decide({ only: w }).promoted, true);
  });

  it('names the classes that got significantly worse without letting them decide', () => {
    const mixed = predictions(100, (m, c, i) =>
      c === 2 ? i < (m === 'baseline' ? 90 : 50) : i < (m === 'baseline' ? 30 : 95),
    );
    const v = decide({ 'unseen dishes': compare(mixed) });
    assert.equal(v.promoted, true);
    assert.deepEqual(v.worseClasses, ['unseen dishes: C name']);
  });

  it('prints the tables and the verdict with both models named', () => {
    const names = { baseline: 'v4', candidate: 'v5' };
    const groups = { 'unseen dishes': w, lowres: l };
    assert.match(
      groupsTable(groups, names),
      /\| unseen dishes \| 300 \| 50\.0 % → 90\.0 % \| \+40\.0 \| 0 \/ 120 \| < 0\.001 \| 50\.0 % → 90\.0 % \| \+40\.0 \| \+\d+\.\d to \+\d+\.\d \|/,
    );
    assert.match(
      classesTable(w, names),
      /\| A name \| 100 \| 50\.0 % → 90\.0 % \| \+40\.0 \| 0 \/ 40 \| < 0\.001 \|/,
    );
    const md = verdictToMarkdown(decide(groups), names);
    assert.match(md, /\*\*Verdict: do not promote v5\*\*; keep v4\./);
    assert.match(
      md,
      /- FAIL: lowres must not be significantly worse .*: mean per-class recall -40\.0 points/,
    );
    const passed = verdictToMarkdown(decide({ 'unseen dishes': w, lowres: n, all: w }), names);
    assert.match(passed, /\*\*Verdict: promote v5\*\* over v4\./);
    assert.match(passed, /- pass: unseen dishes must be better .*: mean per-class recall \+40\.0 points/);
    assert.match(passed, /- pass: not significantly worse on lowres, all\.$/m);
    // A further look (the same photos as phone photos) asks only "not worse", and says so.
    const further = (g: Record<string, GroupComparison>) =>
      verdictToMarkdown(promotionVerdict(g, 0, { mustImprove: false }), names);
    assert.match(
      further({ 'unseen dishes': n, all: n }),
      /\*\*This look: v5 is significantly worse nowhere\*\*/,
    );
    assert.doesNotMatch(further({ 'unseen dishes': n, all: n }), /Verdict: promote/);
    assert.match(
      further({ 'unseen dishes': l }),
      /\*\*This look: v5 is significantly worse; do not promote it\*\*; keep v4\./,
    );
  });
});
