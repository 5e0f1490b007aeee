import type { ClassLabel } from '../src';

export interface ClassReport {
  id: string;
  name: string;
  support: number;
  predicted: number;
  precision: number | null;
  recall: number | null;
}

export interface Report {
  total: number;
  accuracy: number;
  /** Mean recall over the classes that have examples: each present class counts the same. */
  macroAccuracy: number;
  classes: ClassReport[];
  /** confusion[true][predicted] */
  confusion: number[][];
  labels: string[];
}

export function confusionMatrix(
  truth: ArrayLike<number>,
  predicted: ArrayLike<number>,
  numClasses: number,
): number[][] {
  if (truth.length !== predicted.length) throw new Error('truth and predictions differ in length');
  const m = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
  for (let i = 0; i < truth.length; i++) m[truth[i]!]![predicted[i]!]!++;
  return m;
}

export function reportFromConfusion(confusion: number[][], labels: ClassLabel[]): Report {
  const n = labels.length;
  const total = confusion.reduce((a, row) => a + row.reduce((b, v) => b + v, 0), 0);
  let correct = 0;
  const classes: ClassReport[] = labels.map((l, c) => {
    const support = confusion[c]!.reduce((a, v) => a + v, 0);
    let predicted = 0;
    for (let r = 0; r < n; r++) predicted += confusion[r]![c]!;
    const tp = confusion[c]![c]!;
    correct += tp;
    return {
      id: l.id,
      name: l.name,
      support,
      predicted,
      precision: predicted > 0 ? tp / predicted : null,
      recall: support > 0 ? tp / support : null,
    };
  });
  const recalls = classes.map((c) => c.recall).filter((r): r is number => r !== null);
  return {
    total,
    accuracy: total > 0 ? correct / total : 0,
    macroAccuracy: recalls.length > 0 ? recalls.reduce((a, b) => a + b, 0) / recalls.length : 0,
    classes,
    confusion,
    labels: labels.map((l) => l.id),
  };
}

const pct = (v: number | null): string => (v === null ? '—' : `${(v * 100).toFixed(1)} %`);

export function reportToMarkdown(report: Report, title: string): string {
  const lines = [
    `### ${title}`,
    '',
    `${report.total} photos · accuracy **${pct(report.accuracy)}** · macro accuracy (mean per-class recall) ` +
      `**${pct(report.macroAccuracy)}**`,
    '',
    '| class | photos | precision | recall |',
    '|---|---:|---:|---:|',
    ...report.classes
      .filter((c) => c.support > 0 || c.predicted > 0)
      .map((c) => `| ${c.name} | ${c.support} | ${pct(c.precision)} | ${pct(c.recall)} |`),
    '',
    'Confusion matrix (rows: true class, columns: predicted):',
    '',
    `| true \\ predicted | ${report.labels.join(' | ')} |`,
    `|---|${report.labels.map(() => '---:').join('|')}|`,
    ...report.confusion
      .map((row, i) => ({ row, i }))
      .filter(({ row }) => row.some((v) => v > 0))
      .map(({ row, i }) => `| ${report.labels[i]} | ${row.join(' | ')} |`),
    '',
  ];
  return lines.join('\n');
}
