import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { REPO_ROOT } from '../../tools/shared/service-process';

// The main thread serves HTTP and never runs a model: TF.js belongs to the inference workers alone. Loaded there
// anyway (through a configuration constant), it held ~15 MB of the main thread's heap in every process (issue 24).

describe('the main thread', () => {
  it('loads no TF.js with the modules that make the service', () => {
    const script = `
      require('./service/src/http/app');
      require('./service/src/config');
      require('./service/src/inference/engine');
      require('./service/src/labels');
      require('./service/src/process/internal-server');
      require('./service/src/process/shutdown');
      const loaded = Object.keys(require.cache).filter((f) => f.includes('@tensorflow'));
      console.log(JSON.stringify(loaded));
    `;
    const out = execFileSync(process.execPath, ['--import', 'tsx', '-e', script], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
    });
    assert.deepEqual(JSON.parse(out.trim().split('\n').at(-1)!), []);
  });
});
