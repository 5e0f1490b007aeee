// The tables of the service's environment variables in README.md and docs/interfaces.md, written from
// config.ts's schema so that every default and meaning has one source. `npm run docs:env` rewrites both between
// their markers; tests/service/env-docs.test.ts fails while either differs. Not part of the server: main.ts
// never imports it.

import fs from 'node:fs';
import path from 'node:path';
import { environmentVariables } from './config';

export const ENV_TABLE_MARKERS = {
  begin:
    '<!-- Generated from service/src/config.ts by `npm run docs:env`: change a variable there, not here. -->',
  end: '<!-- End of the generated table. -->',
};

const REPO_ROOT = path.join(__dirname, '..', '..');
/** The documents that carry the table, relative to the repository's root. */
export const ENV_TABLE_DOCS = ['README.md', 'docs/interfaces.md'].map((doc) => path.join(REPO_ROOT, doc));

export function environmentTable(): string {
  const rows = environmentVariables().map(
    (v) => `| \`${v.name}\` | ${v.default !== undefined ? `\`${v.default}\`` : '—'} | ${v.meaning} |`,
  );
  return ['| variable | default | meaning |', '|---|---|---|', ...rows].join('\n');
}

/** The document with its table replaced by what the schema says now. */
export function withEnvironmentTable(doc: string, name: string): string {
  const begin = doc.indexOf(ENV_TABLE_MARKERS.begin);
  const end = doc.indexOf(ENV_TABLE_MARKERS.end);
  if (begin < 0 || end < begin)
    throw new Error(`${name} lacks the markers ${JSON.stringify(ENV_TABLE_MARKERS)}`);
  return `${doc.slice(0, begin + ENV_TABLE_MARKERS.begin.length)}\n${environmentTable()}\n${doc.slice(end)}`;
}

if (require.main === module) {
  for (const file of ENV_TABLE_DOCS) {
    const name = path.relative(REPO_ROOT, file);
    fs.writeFileSync(file, withEnvironmentTable(fs.readFileSync(file, 'utf8'), name));
    console.log(`wrote the environment table of ${name}`);
  }
}
