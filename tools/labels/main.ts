/**
 * npm run labels -- export --out <dir> [--kind all|heldout|corrections] [--database-url <url>] [--data-dir <dir>]
 *
 * The data flywheel's first step: writes the photos users labelled as <dir>/<Class>/<id>.jpg (class folders
 * named by the class ids, Dairy-product…), the layout `npm run train -- --data <dir>` and
 * `npm run evaluate -- --data <dir>` read as it is. `--kind heldout` is the unbiased sample to score a candidate
 * model on; corrections over-represent the model's mistakes, which makes them training data, not a test set.
 * The store is the service's own (service/src/labels: the SQL stays there): DATABASE_URL, or the embedded one in
 * LABEL_DATA_DIR (default .data/labels), which the service must not have open at the same time.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Command, Option } from 'commander';
import { openDatabase, redactUrl } from '../../service/src/labels/database';
import { migrate } from '../../service/src/labels/migrations';
import { LabelStore, type LabelKind } from '../../service/src/labels/store';

export type ExportKind = 'all' | 'heldout' | 'corrections';

export interface ExportOptions {
  out: string;
  kind: ExportKind;
  databaseUrl?: string;
  dataDir: string;
}

export interface ExportSummary {
  photos: number;
  byClass: Record<string, number>;
  where: string;
}

const KINDS: Record<ExportKind, LabelKind[]> = {
  all: ['heldout', 'correction'],
  heldout: ['heldout'],
  corrections: ['correction'],
};

/** A class id as a folder name: the store only holds validated ids, but a path must never escape --out. */
const SAFE_CLASS = /^[A-Za-z][A-Za-z-]*$/;

export async function exportLabels(options: ExportOptions): Promise<ExportSummary> {
  const db = openDatabase({ url: options.databaseUrl, dataDir: options.dataDir });
  try {
    await migrate(db);
    const store = new LabelStore(db);
    fs.mkdirSync(options.out, { recursive: true });
    const byClass: Record<string, number> = {};
    let photos = 0;
    for await (const photo of store.labelledPhotos(KINDS[options.kind])) {
      if (!SAFE_CLASS.test(photo.label)) throw new Error(`unexpected class '${photo.label}' in the store`);
      // A photo relabelled since an earlier export into the same folder moves: it is in one class only.
      for (const other of fs.readdirSync(options.out)) {
        const stale = path.join(options.out, other, `${photo.id}.jpg`);
        if (other !== photo.label && fs.existsSync(stale)) fs.rmSync(stale);
      }
      const dir = path.join(options.out, photo.label);
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, `${photo.id}.jpg`), photo.photo);
      byClass[photo.label] = (byClass[photo.label] ?? 0) + 1;
      photos++;
    }
    return { photos, byClass, where: db.where };
  } finally {
    await db.close();
  }
}

if (require.main === module) {
  const program = new Command('labels').description('The labels users gave: export them for training.');
  program
    .command('export')
    .description('write the labelled photos as <out>/<Class>/<id>.jpg')
    .requiredOption('--out <dir>', 'where to write the class folders')
    .addOption(
      new Option('--kind <kind>', 'which labels').choices(['all', 'heldout', 'corrections']).default('all'),
    )
    .option('--database-url <url>', 'the PostgreSQL server (default: $DATABASE_URL)')
    .option(
      '--data-dir <dir>',
      'the embedded store when no database URL is given (default: $LABEL_DATA_DIR or .data/labels)',
    )
    .action(async (opts: { out: string; kind: ExportKind; databaseUrl?: string; dataDir?: string }) => {
      const databaseUrl = opts.databaseUrl ?? (process.env.DATABASE_URL || undefined);
      const summary = await exportLabels({
        out: opts.out,
        kind: opts.kind,
        databaseUrl,
        dataDir: opts.dataDir ?? (process.env.LABEL_DATA_DIR || '.data/labels'),
      });
      const classes = Object.entries(summary.byClass)
        .map(([c, n]) => `${c} ${n}`)
        .join(', ');
      console.log(
        `${summary.photos} labelled photos (${opts.kind}) from ${databaseUrl ? `PostgreSQL at ${redactUrl(databaseUrl)}` : summary.where} → ${opts.out}` +
          (classes ? `: ${classes}` : ''),
      );
    });
  program.parseAsync().catch((err: Error) => {
    console.error(`labels: ${process.env.DEBUG ? err.stack : err.message}`);
    process.exit(1);
  });
}
