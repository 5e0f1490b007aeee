import type { ClassLabel } from '../src';

interface ClassReport {
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
  const matrix = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
  for (let i = 0; i < truth.length; i++) matrix[truth[i]!]![predicted[i]!]!++;
  return matrix;
}

export function reportFromConfusion(confusion: number[][], labels: ClassLabel[]): Report {
  const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
  const total = sum(confusion.map(sum));
  let correct = 0;
  const classes: ClassReport[] = labels.map((label, cls) => {
    const support = sum(confusion[cls]!);
    const predicted = sum(confusion.map((row) => row[cls]!));
    const truePositives = confusion[cls]![cls]!;
    correct += truePositives;
    return {
      id: label.id,
      name: label.name,
      support,
      predicted,
      precision: predicted > 0 ? truePositives / predicted : null,
      recall: support > 0 ? truePositives / support : null,
    };
  });
  const recalls = classes.map((c) => c.recall).filter((recall): recall is number => recall !== null);
  return {
    total,
    accuracy: total > 0 ? correct / total : 0,
    macroAccuracy: recalls.length > 0 ? sum(recalls) / recalls.length : 0,
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
