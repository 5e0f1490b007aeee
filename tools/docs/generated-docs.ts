// The tables and declarations written from the code that defines them, so that every default and description
// has one source: Pulumi.yaml's `config:` block and docs/configuration.md's config table from stacks/config-keys.ts,
// the environment tables of docs/configuration.md and docs/interfaces.md from service/src/config.ts. `npm run docs` rewrites
// each between its markers; tests/tools/generated-docs.test.ts fails while a file differs from what this writes.

import fs from 'node:fs';
import path from 'node:path';
import {
  PROJECT_CONFIG_MARKERS,
  README_TABLE_MARKERS,
  projectConfigBlock,
  readmeConfigTable,
} from './pulumi-config';
import { ENV_TABLE_MARKERS, environmentTable } from './service-env';

interface Markers {
  begin: string;
  end: string;
}

/** `text` with whatever stands between the two marker lines replaced by `body`. */
export function replaceBetweenMarkers(text: string, markers: Markers, body: string): string {
  const begin = text.indexOf(markers.begin);
  const end = text.indexOf(markers.end);
  if (begin < 0 || end < begin) throw new Error(`markers not found: ${markers.begin} … ${markers.end}`);
  return `${text.slice(0, begin + markers.begin.length)}\n${body}\n${text.slice(end)}`;
}

/** Each generated part: the file it stands in (from the repository root), its markers, what it holds. */
const PARTS: { file: string; markers: Markers; body: () => string }[] = [
  { file: 'Pulumi.yaml', markers: PROJECT_CONFIG_MARKERS, body: projectConfigBlock },
  { file: 'docs/configuration.md', markers: ENV_TABLE_MARKERS, body: environmentTable },
  { file: 'docs/configuration.md', markers: README_TABLE_MARKERS, body: readmeConfigTable },
  { file: 'docs/interfaces.md', markers: ENV_TABLE_MARKERS, body: environmentTable },
];

/** The generated files as they should read, keyed by their path from the repository root. */
export function generatedDocs(root: string): Record<string, string> {
  const files: Record<string, string> = {};
  for (const { file, markers, body } of PARTS) {
    files[file] ??= fs.readFileSync(path.join(root, file), 'utf8');
    files[file] = replaceBetweenMarkers(files[file], markers, body());
  }
  return files;
}

if (require.main === module) {
  const root = path.join(__dirname, '..', '..');
  for (const [file, text] of Object.entries(generatedDocs(root))) {
    fs.writeFileSync(path.join(root, file), text);
    console.log(`wrote ${file}`);
  }
}
