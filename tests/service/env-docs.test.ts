// The environment tables in README.md and docs/interfaces.md are what `npm run docs:env` writes from the schema.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig } from '../../service/src/config';
import { ENV_TABLE_DOCS, environmentTable, withEnvironmentTable } from '../../service/src/env-docs';

describe('environment variable docs', () => {
  for (const file of ENV_TABLE_DOCS) {
    const name = path.basename(path.dirname(file)) + '/' + path.basename(file);
    it(`${name} carries the table the schema writes (else run npm run docs:env)`, () => {
      const doc = fs.readFileSync(file, 'utf8');
      assert.equal(doc, withEnvironmentTable(doc, name));
    });
  }

  it('lists every variable with the default loadConfig applies', () => {
    const config = loadConfig({}) as unknown as Record<string, unknown>;
    const table = environmentTable();
    assert.match(table, new RegExp(`\\| \`PORT\` \\| \`${String(config.port)}\` \\|`));
    assert.match(table, new RegExp(`\\| \`QUEUE_MAX_WAIT_MS\` \\| \`${String(config.queueMaxWaitMs)}\` \\|`));
    assert.match(table, /\| `WORKERS` \| — \|/);
    assert.equal(table.split('\n').length - 2, 21);
  });
});
