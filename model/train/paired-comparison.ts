import type { ClassLabel } from '../src';
import { confusionMatrix, reportFromConfusion } from './classification-metrics';
import { percentile } from './latency';
import { mulberry32 } from './random';

/**
 * Two models scored on the same photos, compared photo by photo (the promotion gate of `npm run evaluate
 * --baseline`). Two separate means would mix the models' difference with how hard each photo is; on the same
 * photos, only the photos the models disagree on say which is better. Accuracy: McNemar's exact test (the photos
 * one model gets right and the other wrong, as a fair coin would split them). Mean per-class recall: a paired
 * bootstrap that resamples photos within each class, so every resample keeps each class's count and the mean
 * over classes stays the one the reports give; or, with `clusters`, resamples a class's clusters (its dishes),
 * then the photos within each drawn cluster. Photos of one dish, or shots of one banana from the side and the top,
 * are not independent: counted one by one, a single dish can look like a significant change of its source.
 */

/** The two-sided interval every comparison reports. */
export const INTERVAL_LEVEL = 0.95;

export interface BootstrapOptions {
  /** How many resamples: 2,000 keep the 2.5th and 97.5th percentiles steady to a few tenths of a point. */
  resamples: number;
  /** The same seed draws the same resamples: a gate's verdict must not change when it is run again. */
  seed: number;
}

export const DEFAULT_BOOTSTRAP: BootstrapOptions = { resamples: 2000, seed: 1 };

/** What the bootstrap draws within a class: single photos, or dishes and then photos within each dish. */
export const RESAMPLE_UNITS = ['photos', 'dishes'] as const;
export type ResampleUnit = (typeof RESAMPLE_UNITS)[number];

/** One measure of both models, its difference (candidate − baseline) and the photos they disagree on. */
export interface PairedMeasure {
  baseline: number;
  candidate: number;
  difference: number;
  /** Photos the baseline gets right and the candidate wrong. */
  onlyBaseline: number;
  /** Photos the candidate gets right and the baseline wrong. */
  onlyCandidate: number;
  /** McNemar's exact two-sided p for "both are right equally often" (1 when they never disagree). */
  p: number;
  /** The bootstrap interval of `difference` (INTERVAL_LEVEL). */
  interval: [number, number];
}

export interface ClassComparison extends PairedMeasure {
  index: number;
  id: string;
  name: string;
  /** This class's photos; baseline and candidate are its recall. */
  photos: number;
}

export interface GroupComparison {
  photos: number;
  /** Share of photos answered right. Its interval is the same bootstrap's, for the table only. */
  accuracy: PairedMeasure;
  /** Mean per-class recall over the classes with photos (classification-metrics' macroAccuracy). */
  meanRecall: Omit<PairedMeasure, 'onlyBaseline' | 'onlyCandidate' | 'p'>;
  /** Every class with photos here, in label order. */
  classes: ClassComparison[];
}

/**
 * McNemar's exact test: of the n = b + c photos exactly one model gets right, how unlikely a split this uneven
 * or more is when each is as likely to be the one (a binomial of n halves). Two-sided, capped at 1.
 */
export function mcnemarExactP(onlyBaseline: number, onlyCandidate: number): number {
  for (const count of [onlyBaseline, onlyCandidate]) {
    if (!Number.isInteger(count) || count < 0)
      throw new RangeError(`a discordant count must be a whole number ≥ 0, got ${count}`);
  }
  const n = onlyBaseline + onlyCandidate;
  const k = Math.min(onlyBaseline, onlyCandidate);
  if (n === 0) return 1;
  // P(X ≤ k) for X ~ Binomial(n, ½), summed in logs from the largest term (k ≤ n/2, so term k), so that thousands
  // of discordant photos neither overflow the binomial coefficients nor lose the tail to underflow.
  const logTerms: number[] = [n * Math.log(0.5)];
  for (let i = 0; i < k; i++) logTerms.push(logTerms[i]! + Math.log(n - i) - Math.log(i + 1));
  const largest = logTerms[k]!;
  const tail = Math.exp(largest) * logTerms.reduce((sum, t) => sum + Math.exp(t - largest), 0);
  return Math.min(1, 2 * tail);
}

/** A class's photos gathered by cluster: each cluster's photos' paired outcomes. */
type Clustered = number[][];

/**
 * Compares the candidate's predictions with the baseline's on the same photos: accuracy, mean per-class recall and
 * each class's recall, with McNemar's p and a paired bootstrap interval for every difference. With `clusters` (a
 * key per photo), the bootstrap draws a class's clusters, then photos within each; without, each photo is a
 * cluster of its own. McNemar's p still counts photos, so a loss is significant only where the interval says so
 * too (`isWorse`).
 */
export function comparePaired(
  truth: ArrayLike<number>,
  baseline: ArrayLike<number>,
  candidate: ArrayLike<number>,
  labels: ClassLabel[],
  options: BootstrapOptions = DEFAULT_BOOTSTRAP,
  clusters?: ArrayLike<string>,
): GroupComparison {
  if (
    truth.length !== baseline.length ||
    truth.length !== candidate.length ||
    (clusters && clusters.length !== truth.length)
  ) {
    throw new Error(
      `paired comparison needs one prediction per photo from each model: ${truth.length} photos, ` +
        `${baseline.length} and ${candidate.length} predictions` +
        (clusters ? `, ${clusters.length} clusters` : ''),
    );
  }
  if (!Number.isInteger(options.resamples) || options.resamples < 1) {
    throw new RangeError(`resamples must be a whole number ≥ 1, got ${options.resamples}`);
  }
  const n = truth.length;
  const base = reportFromConfusion(confusionMatrix(truth, baseline, labels.length), labels);
  const cand = reportFromConfusion(confusionMatrix(truth, candidate, labels.length), labels);

  // Each photo's paired outcome: +1 only the candidate is right, −1 only the baseline, 0 they agree on it; kept
  // by cluster, in order of each cluster's first photo.
  const byClass: Clustered[] = labels.map(() => []);
  const clusterAt = labels.map(() => new Map<string, number>());
  const discordant = labels.map(() => ({ onlyBaseline: 0, onlyCandidate: 0 }));
  for (let i = 0; i < n; i++) {
    const t = truth[i]!;
    const d = Number(candidate[i] === t) - Number(baseline[i] === t);
    const own = byClass[t]!;
    const key = clusters?.[i];
    let at = key === undefined ? undefined : clusterAt[t]!.get(key);
    if (at === undefined) {
      at = own.push([]) - 1;
      if (key !== undefined) clusterAt[t]!.set(key, at);
    }
    own[at]!.push(d);
    if (d < 0) discordant[t]!.onlyBaseline++;
    if (d > 0) discordant[t]!.onlyCandidate++;
  }
  const present = labels.map((_, c) => c).filter((c) => byClass[c]!.length > 0);
  const photosOf = (c: number) => byClass[c]!.reduce((a, cluster) => a + cluster.length, 0);

  const random = mulberry32(options.seed);
  const R = options.resamples;
  const classDiffs = present.map(() => new Float64Array(R));
  const accuracyDiffs = new Float64Array(R);
  const meanRecallDiffs = new Float64Array(R);
  for (let r = 0; r < R; r++) {
    let recallSum = 0;
    let correctSum = 0;
    let photoSum = 0;
    present.forEach((c, j) => {
      // Two stages: the class's clusters with replacement, then each drawn cluster's photos with replacement. A
      // class of one dish then varies as its photos do, where drawing dishes alone would call it certain.
      const clustersOfClass = byClass[c]!;
      const m = clustersOfClass.length;
      let s = 0;
      let drawn = 0;
      for (let draw = 0; draw < m; draw++) {
        const cluster = clustersOfClass[Math.floor(random() * m)]!;
        // A photo of its own is itself: no second draw, so single photos draw exactly as without clusters.
        if (cluster.length === 1) s += cluster[0]!;
        else for (let p = 0; p < cluster.length; p++) s += cluster[Math.floor(random() * cluster.length)]!;
        drawn += cluster.length;
      }
      classDiffs[j]![r] = s / drawn;
      recallSum += s / drawn;
      correctSum += s;
      photoSum += drawn;
    });
    accuracyDiffs[r] = photoSum > 0 ? correctSum / photoSum : 0;
    meanRecallDiffs[r] = present.length > 0 ? recallSum / present.length : 0;
  }

  const sum = (key: 'onlyBaseline' | 'onlyCandidate') => discordant.reduce((a, d) => a + d[key], 0);
  const onlyBaseline = sum('onlyBaseline');
  const onlyCandidate = sum('onlyCandidate');
  return {
    photos: n,
    accuracy: {
      baseline: base.accuracy,
      candidate: cand.accuracy,
      difference: cand.accuracy - base.accuracy,
      onlyBaseline,
      onlyCandidate,
      p: mcnemarExactP(onlyBaseline, onlyCandidate),
      interval: interval(accuracyDiffs),
    },
    meanRecall: {
      baseline: base.macroAccuracy,
      candidate: cand.macroAccuracy,
      difference: cand.macroAccuracy - base.macroAccuracy,
      interval: interval(meanRecallDiffs),
    },
    classes: present.map((c, j) => {
      const b = base.classes[c]!.recall!;
      const k = cand.classes[c]!.recall!;
      return {
        index: c,
        id: labels[c]!.id,
        name: labels[c]!.name,
        photos: photosOf(c),
        baseline: b,
        candidate: k,
        difference: k - b,
        ...discordant[c]!,
        p: mcnemarExactP(discordant[c]!.onlyBaseline, discordant[c]!.onlyCandidate),
        interval: interval(classDiffs[j]!),
      };
    }),
  };
}

/** The percentile interval of bootstrap differences (nearest rank, as every percentile here). */
function interval(diffs: Float64Array): [number, number] {
  const sorted = Array.from(diffs).sort((a, b) => a - b);
  const tail = ((1 - INTERVAL_LEVEL) / 2) * 100;
  return [percentile(sorted, tail), percentile(sorted, 100 - tail)];
}

// ---------------------------------------------------------------------------------------------------------
// The verdict

/** The groups a candidate must be better on: the photos nearest to a user's, food and kitchens it never saw. */
export const MUST_IMPROVE = ['unseen dishes', 'unseen sources'] as const;

export interface GateCheck {
  group: string;
  /** 'better': the interval's lower end above the margin; 'not worse': not significantly worse (isWorse). */
  rule: 'better' | 'not worse';
  passed: boolean;
  difference: number;
  interval: [number, number];
  /** McNemar's p of the group's accuracy: with the interval, it says whether a loss is significant. */
  p: number;
}

/** McNemar's p below which a loss counts, together with the interval (INTERVAL_LEVEL's two-sided level). */
const SIGNIFICANT_P = 1 - INTERVAL_LEVEL;

/**
 * Significantly worse: the interval's upper end below 0, and McNemar's test agreeing on the photos (more of them
 * lost than won, p < 0.05). The interval alone is not enough on a small group: resampling within a class of one
 * photo always draws that photo, so one lost photo gives an interval of zero width below 0.
 */
function isWorse(m: Pick<PairedMeasure, 'interval' | 'onlyBaseline' | 'onlyCandidate' | 'p'>): boolean {
  return m.interval[1] < 0 && m.onlyBaseline > m.onlyCandidate && m.p < SIGNIFICANT_P;
}

export interface Verdict {
  promoted: boolean;
  /** The least improvement (in mean per-class recall, as a fraction) the 'better' groups' interval must clear. */
  margin: number;
  checks: GateCheck[];
  /**
   * Classes significantly worse (isWorse) in the groups that must improve and in all photos, as `group: class`:
   * they do not decide, but a promoted model that loses a class should say so.
   */
  worseClasses: string[];
}

/**
 * The promotion rule, on mean per-class recall: better on the unseen dishes and the unseen sources (those of them
 * that were scored; where neither was, photos scored whole, on all of them), the difference above 0 and its
 * interval's lower end above `margin`; and significantly worse (isWorse) on no other group.
 * With `mustImprove` false (a second look at the same photos, e.g. as phone photos) every group need only be no worse.
 */
export function promotionVerdict(
  groups: Record<string, GroupComparison>,
  margin: number,
  options: { mustImprove: boolean } = { mustImprove: true },
): Verdict {
  const names = Object.keys(groups);
  if (names.length === 0) throw new Error('no groups to decide on');
  const unseen = MUST_IMPROVE.filter((g) => g in groups) as string[];
  const fallback = unseen.length > 0 ? unseen : [names.includes('all') ? 'all' : names[0]!];
  const mustImprove = options.mustImprove ? fallback : [];
  const checks = names.map((group): GateCheck => {
    const { meanRecall, accuracy } = groups[group]!;
    const { difference, interval } = meanRecall;
    const better = mustImprove.includes(group);
    return {
      group,
      rule: better ? 'better' : 'not worse',
      passed: better ? difference > 0 && interval[0] > margin : !isWorse({ ...accuracy, interval }),
      difference,
      interval,
      p: accuracy.p,
    };
  });
  // The groups that must improve lead, so the verdict reads in the order it was decided.
  checks.sort((a, b) => Number(b.rule === 'better') - Number(a.rule === 'better'));
  const worseClasses = [...new Set([...fallback, 'all'])]
    .filter((group) => group in groups)
    .flatMap((group) => groups[group]!.classes.filter(isWorse).map((k) => `${group}: ${k.name}`));
  return { promoted: checks.every((c) => c.passed), margin, checks, worseClasses };
}

const points = (v: number) => `${v >= 0 ? '+' : '-'}${Math.abs(v * 100).toFixed(1)}`;
const pct = (v: number) => `${(v * 100).toFixed(1)} %`;
const pValue = (p: number) => (p < 0.001 ? '< 0.001' : p.toFixed(3));
const range = ([lo, hi]: [number, number]) => `${points(lo)} to ${points(hi)}`;

/** One row per group: both models' accuracy and mean per-class recall, the differences and their tests. */
export function groupsTable(
  groups: Record<string, GroupComparison>,
  names: { baseline: string; candidate: string },
): string {
  const { baseline: b, candidate: c } = names;
  return [
    `| group | photos | accuracy ${b} → ${c} | Δ points | right only by ${b} / ${c} | McNemar p | ` +
      `mean per-class recall ${b} → ${c} | Δ points | ${INTERVAL_LEVEL * 100} % interval |`,
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...Object.entries(groups).map(
      ([group, g]) =>
        `| ${group} | ${g.photos} | ${pct(g.accuracy.baseline)} → ${pct(g.accuracy.candidate)} | ` +
        `${points(g.accuracy.difference)} | ${g.accuracy.onlyBaseline} / ${g.accuracy.onlyCandidate} | ` +
        `${pValue(g.accuracy.p)} | ${pct(g.meanRecall.baseline)} → ${pct(g.meanRecall.candidate)} | ` +
        `${points(g.meanRecall.difference)} | ${range(g.meanRecall.interval)} |`,
    ),
  ].join('\n');
}

/** One row per class of a group: both models' recall, the difference, McNemar's p and the interval. */
export function classesTable(group: GroupComparison, names: { baseline: string; candidate: string }): string {
  const { baseline: b, candidate: c } = names;
  return [
    `| class | photos | recall ${b} → ${c} | Δ points | right only by ${b} / ${c} | McNemar p | ` +
      `${INTERVAL_LEVEL * 100} % interval |`,
    '|---|---:|---:|---:|---:|---:|---:|',
    ...group.classes.map(
      (k) =>
        `| ${k.name} | ${k.photos} | ${pct(k.baseline)} → ${pct(k.candidate)} | ${points(k.difference)} | ` +
        `${k.onlyBaseline} / ${k.onlyCandidate} | ${pValue(k.p)} | ${range(k.interval)} |`,
    ),
  ].join('\n');
}

/** The verdict and every check behind it, as a person reads it. */
export function verdictToMarkdown(verdict: Verdict, names: { baseline: string; candidate: string }): string {
  // A further look of the same photos decides nothing alone: it can only hold the candidate back.
  const decides = verdict.checks.some((c) => c.rule === 'better');
  const head = !decides
    ? verdict.promoted
      ? `**This look: ${names.candidate} is significantly worse nowhere**, so it holds nothing back.`
      : `**This look: ${names.candidate} is significantly worse; do not promote it**; keep ${names.baseline}.`
    : verdict.promoted
      ? `**Verdict: promote ${names.candidate}** over ${names.baseline}.`
      : `**Verdict: do not promote ${names.candidate}**; keep ${names.baseline}.`;
  const line = (c: GateCheck) => {
    const mark = c.passed ? 'pass' : 'FAIL';
    const rule =
      c.rule === 'better'
        ? `must be better (Δ > 0, interval's lower end > ${points(verdict.margin)})`
        : `must not be significantly worse (interval's upper end < 0 and McNemar p < ${SIGNIFICANT_P.toFixed(2)})`;
    return (
      `- ${mark}: ${c.group} ${rule}: mean per-class recall ${points(c.difference)} points ` +
      `(${range(c.interval)}), McNemar p ${pValue(c.p)}.`
    );
  };
  // Every source is a group, so the groups that merely held their ground are one line; what decided is one each.
  const held = verdict.checks.filter((c) => c.rule === 'not worse' && c.passed);
  const heldLine =
    held.length > 0 ? [`- pass: not significantly worse on ${held.map((c) => c.group).join(', ')}.`] : [];
  const worse =
    verdict.worseClasses.length > 0
      ? ['', `Classes significantly worse (they do not decide): ${verdict.worseClasses.join('; ')}.`]
      : [];
  const decided = verdict.checks.filter((c) => !held.includes(c)).map(line);
  return [head, '', ...decided, ...heldLine, ...worse].join('\n');
}

/** One dish's photos and how many of them each model gets right (scoring.ts's dishComparisons). */
export interface DishComparison {
  label: string;
  dish: string;
  photos: number;
  baselineRight: number;
  candidateRight: number;
}

/** The dishes left out, each model's right answers on each, as a person reads them. */
export function dishesTable(
  dishes: DishComparison[],
  names: { baseline: string; candidate: string },
): string {
  const { baseline: b, candidate: c } = names;
  return [
    `| class | dish | photos | right by ${b} → ${c} | Δ points |`,
    '|---|---|---:|---:|---:|',
    ...dishes.map(
      (d) =>
        `| ${d.label} | ${d.dish} | ${d.photos} | ${d.baselineRight} → ${d.candidateRight} | ` +
        `${points((d.candidateRight - d.baselineRight) / d.photos)} |`,
    ),
  ].join('\n');
}
