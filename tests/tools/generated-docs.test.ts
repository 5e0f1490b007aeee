// Pulumi.yaml's config block, docs/configuration.md's config and environment tables and docs/interfaces.md's environment
// table are written from the code that defines them (npm run docs): a key or variable changed there and not
// regenerated fails here, with the command that fixes it.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { it } from 'node:test';
import { loadConfig } from '../../service/src/config';
import { generatedDocs } from '../../tools/docs/generated-docs';
import { environmentTable } from '../../tools/docs/service-env';

const ROOT = path.join(__dirname, '..', '..');

for (const [file, expected] of Object.entries(generatedDocs(ROOT))) {
  it(`${file} says what the code that defines its tables says`, () => {
    const committed = fs.readFileSync(path.join(ROOT, file), 'utf8');
    assert.ok(committed === expected, `${file} is stale: run npm run docs`);
  });
}

it('lists every environment variable with the default loadConfig applies', () => {
  const config = loadConfig({}) as unknown as Record<string, unknown>;
  const table = environmentTable();
  assert.match(table, new RegExp(`\\| \`PORT\` \\| \`${String(config.port)}\` \\|`));
  assert.match(table, new RegExp(`\\| \`QUEUE_MAX_WAIT_MS\` \\| \`${String(config.queueMaxWaitMs)}\` \\|`));
  assert.match(table, /\| `WORKERS` \| — \|/);
  assert.match(table, /\| `DATABASE_URL` \| — \|/);
  assert.match(table, /\| `LABEL_SAMPLE_RATE` \| `0\.05` \|/);
  assert.equal(table.split('\n').length - 2, 31);
});
