// Pulumi.yaml's config block and the README's config table are written from stacks/config-keys.ts: a key
// changed there and not regenerated fails here, with the command that fixes it.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { it } from 'node:test';
import { generatedConfigDocs } from '../../stacks/config-docs';
import { ROOT } from './harness';

for (const [file, expected] of Object.entries(generatedConfigDocs(ROOT))) {
  it(`${file} says what stacks/config-keys.ts says`, () => {
    const committed = fs.readFileSync(path.join(ROOT, file), 'utf8');
    assert.ok(committed === expected, `${file} is stale: run npm run docs:config`);
  });
}
