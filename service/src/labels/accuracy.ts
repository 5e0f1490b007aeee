import type { TallyRow } from './store';

/**
 * Live accuracy from the labels' tallies: per model version, the held-out sample (users named the class before
 * seeing the model's answer, so it estimates accuracy on GourmetGram's real uploads) with a 95 % Wilson interval,
 * recall per class and the confusion matrix; corrections apart (users chose to fix a result they saw, so they
 * over-represent mistakes and must not be mixed into the estimate).
 */

export interface ClassRecall {
  class: string;
  /** held-out photos the users put in this class */
  n: number;
  /** the share of them the model also put there; null when n is 0 */
  recall: number | null;
}

export interface Confusion {
  /** class ids, the order of the matrix's rows (the users' labels) and columns (the model's predictions) */
  classes: string[];
  matrix: number[][];
}

export interface HeldOutAccuracy {
  n: number;
  correct: number;
  accuracy: number | null;
  /** 95 % Wilson score interval; null when n is 0 */
  ci95: { low: number; high: number } | null;
  perClass: ClassRecall[];
  confusion: Confusion;
}

export interface Corrections {
  n: number;
  /** corrections that named the class the model had given (a user confirming it) */
  agreed: number;
  confusion: Confusion;
}

export interface ModelAccuracy {
  name: string;
  version: string;
  heldOut: HeldOutAccuracy;
  corrections: Corrections;
}

export interface AccuracyReport {
  /** every labelled prediction, held-out and corrections (a replaced label counts once) */
  labelsTotal: number;
  heldOutTotal: number;
  correctionsTotal: number;
  models: ModelAccuracy[];
}

const Z95 = 1.959963984540054;

/** The Wilson score interval for k successes in n trials (good at small n and near 0 or 1, unlike p ± z·se). */
export function wilsonInterval(k: number, n: number, z = Z95): { low: number; high: number } | null {
  if (n === 0) return null;
  const p = k / n;
  const z2 = z * z;
  const centre = (p + z2 / (2 * n)) / (1 + z2 / n);
  const margin = (z / (1 + z2 / n)) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  return { low: Math.max(0, centre - margin), high: Math.min(1, centre + margin) };
}

function confusion(rows: TallyRow[], classes: string[]): Confusion {
  const index = new Map(classes.map((c, i) => [c, i]));
  const matrix = classes.map(() => classes.map(() => 0));
  for (const r of rows) {
    const i = index.get(r.label);
    const j = index.get(r.predicted);
    if (i !== undefined && j !== undefined) matrix[i]![j]! += r.count;
  }
  return { classes, matrix };
}

/** Rows and columns: the model's classes first, in its order, then any other class a row names. */
function classesOf(rows: TallyRow[], known: readonly string[]): string[] {
  const extra = new Set<string>();
  for (const r of rows) for (const c of [r.label, r.predicted]) if (!known.includes(c)) extra.add(c);
  return [...known, ...[...extra].sort()];
}

export function accuracyReport(rows: TallyRow[], knownClasses: readonly string[]): AccuracyReport {
  const byModel = new Map<string, TallyRow[]>();
  for (const r of rows) {
    const key = JSON.stringify([r.modelName, r.modelVersion]);
    byModel.set(key, [...(byModel.get(key) ?? []), r]);
  }
  const models = [...byModel.values()].map((modelRows): ModelAccuracy => {
    const classes = classesOf(modelRows, knownClasses);
    const heldOut = modelRows.filter((r) => r.heldOut);
    const corrections = modelRows.filter((r) => !r.heldOut);
    const n = sum(heldOut);
    const correct = sum(heldOut.filter((r) => r.label === r.predicted));
    return {
      name: modelRows[0]!.modelName,
      version: modelRows[0]!.modelVersion,
      heldOut: {
        n,
        correct,
        accuracy: n > 0 ? correct / n : null,
        ci95: wilsonInterval(correct, n),
        perClass: classes.map((c) => {
          const mine = heldOut.filter((r) => r.label === c);
          const total = sum(mine);
          return {
            class: c,
            n: total,
            recall: total > 0 ? sum(mine.filter((r) => r.predicted === c)) / total : null,
          };
        }),
        confusion: confusion(heldOut, classes),
      },
      corrections: {
        n: sum(corrections),
        agreed: sum(corrections.filter((r) => r.label === r.predicted)),
        confusion: confusion(corrections, classes),
      },
    };
  });
  const heldOutTotal = sum(rows.filter((r) => r.heldOut));
  const correctionsTotal = sum(rows.filter((r) => !r.heldOut));
  return { labelsTotal: heldOutTotal + correctionsTotal, heldOutTotal, correctionsTotal, models };
}

const sum = (rows: TallyRow[]) => rows.reduce((total, r) => total + r.count, 0);
