/**
 * npm run report -- <run dir>... [--out <dir>] [--model-card <metadata.json>]
 *
 * Reads the run directories (one per strategy: k8s, lb, hpa), prints the side-by-side table, and writes
 * comparison.md, comparison.csv, resources.png and latency.png into --out.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { stringify } from 'csv-stringify/sync';
import { readLiveAccuracy, readModelAccuracy } from './accuracy';
import { latencyChartSpec, renderPng, resourcesChartSpec } from './charts';
import { readRun, type Run } from './read-run';
import { RUN_FILES } from '../shared/run-files';
import { markdownTable, SUMMARY_COLUMNS, summariseRun, type RunSummary } from './summary';

export interface ReportOptions {
  runDirs: string[];
  outDir: string;
  modelCard: string;
  log?: (message: string) => void;
}

export interface ReportFiles {
  markdown: string;
  csv: string;
  charts: string[];
}

/** What a reader must know to trust the table: missing files, runs that cannot be compared, no accuracy. */
function runNotes(runs: Run[], summaries: RunSummary[], modelCard: string): string[] {
  const notes: string[] = [];
  for (const [i, run] of runs.entries()) {
    const summary = summaries[i]!;
    if (!run.resources) notes.push(`${run.name}: no resources.csv (monitor not run) → resource figures n/a`);
    else if (summary.samples === 0)
      notes.push(`${run.name}: no monitor sample falls inside the load test's time window`);
    if (!run.okLatenciesMs) notes.push(`${run.name}: no requests.csv → p50/p99 n/a`);
  }
  const shapes = new Set(runs.map((r) => r.stages.map((s) => `${s.users}/${s.delaySeconds}`).join(',')));
  if (shapes.size > 1) {
    notes.push('the runs did not use the same load profile (stages differ): compare their figures with care');
  }
  for (const s of summaries) {
    if (!Number.isFinite(s.live_accuracy)) {
      notes.push(
        `${s.run}: live accuracy n/a (no ${RUN_FILES.liveAccuracy} with held-out labels for the version that ran)`,
      );
    }
  }
  if (summaries.every((s) => !Number.isFinite(s.accuracy))) {
    notes.push(`accuracy n/a: no accuracy figure in ${modelCard}`);
  }
  return notes;
}

function comparisonMarkdown(summaries: RunSummary[], notes: string[]): string {
  return (
    '# Deployment strategy comparison\n\n' +
    markdownTable(summaries) +
    '\nTransaction rate = ΣOKAY / Σ elapsed; response time = Σ(OKAY × Resp Time) / ΣOKAY (siege log). ' +
    'p50/p99 over every successful request; errors = failed / all requests; resource figures are means over ' +
    'the monitor samples taken while the load ran. Accuracy from the model card ' +
    `(${summaries.map((s) => `${s.run}: ${s.accuracy_source || 'n/a'}`).join(', ')}); live accuracy: the ` +
    "service's GET /accuracy as the load test ended (users' held-out labels for the version that ran, " +
    '95 % Wilson interval).\n' +
    (notes.length ? `\n${notes.map((n) => `- ${n}`).join('\n')}\n` : '') +
    '\n![replicas and CPU](resources.png)\n\n![latency per stage](latency.png)\n'
  );
}

function comparisonCsv(summaries: RunSummary[]): string {
  return stringify(summaries, {
    header: true,
    columns: SUMMARY_COLUMNS as string[],
    cast: { number: (n) => (Number.isFinite(n) ? String(Number(n.toPrecision(6))) : '') },
  });
}

/** resources.png when any run has monitor samples, latency.png always; returns the files written. */
async function writeCharts(runs: Run[], outDir: string, log: (message: string) => void): Promise<string[]> {
  const charts: string[] = [];
  const resourcesSpec = resourcesChartSpec(runs);
  if (resourcesSpec) {
    const file = join(outDir, 'resources.png');
    await renderPng(resourcesSpec, file);
    charts.push(file);
  } else {
    log('no monitor samples in any run: resources.png not drawn');
  }
  const latencyFile = join(outDir, 'latency.png');
  await renderPng(latencyChartSpec(runs), latencyFile);
  charts.push(latencyFile);
  return charts;
}

export async function writeReport(options: ReportOptions): Promise<ReportFiles> {
  const log = options.log ?? (() => undefined);
  const runs: Run[] = options.runDirs.map(readRun);
  const names = runs.map((r) => r.name);
  const duplicate = names.find((n, i) => names.indexOf(n) !== i);
  if (duplicate)
    throw new Error(`two run directories are both named "${duplicate}"; the table needs distinct names`);

  const summaries = runs.map((run) =>
    summariseRun(
      run,
      readModelAccuracy(options.modelCard, run.modelInfo),
      readLiveAccuracy(join(run.dir, RUN_FILES.liveAccuracy), run.modelInfo),
    ),
  );
  mkdirSync(options.outDir, { recursive: true });
  const notes = runNotes(runs, summaries, options.modelCard);
  const markdown = comparisonMarkdown(summaries, notes);
  writeFileSync(join(options.outDir, 'comparison.md'), markdown);
  const csvFile = join(options.outDir, 'comparison.csv');
  writeFileSync(csvFile, comparisonCsv(summaries));
  const charts = await writeCharts(runs, options.outDir, log);
  for (const note of notes) log(note);
  return { markdown, csv: csvFile, charts };
}

async function main(): Promise<void> {
  const program = new Command('report')
    .description('Compares load-test runs of the deployment strategies: one table, PNG charts')
    .argument('<run dirs...>', 'run directories written by npm run loadtest (and the monitor)')
    .option('--out <dir>', 'where to write the report', join('runs', 'report'))
    .option(
      '--model-card <file>',
      'model metadata with the accuracy figures',
      join('model', 'shipped', 'metadata.json'),
    )
    .parse();
  const opts = program.opts<{ out: string; modelCard: string }>();
  const files = await writeReport({
    runDirs: program.args,
    outDir: opts.out,
    modelCard: opts.modelCard,
    log: (m) => console.error(`report: ${m}`),
  });
  process.stdout.write(files.markdown.split('\n![')[0] + '\n');
  console.error(`report: wrote ${[join(opts.out, 'comparison.md'), files.csv, ...files.charts].join(', ')}`);
}

if (require.main === module) {
  main().catch((err: Error) => {
    console.error(`report: ${err.message}`);
    process.exit(2);
  });
}
