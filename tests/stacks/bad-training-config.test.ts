// Training with a prebuilt service image but no training image stops the program with the fix.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { runStack } from './harness';

it('a prebuilt service image with training asks for a prebuilt training image', async () => {
  await assert.rejects(
    runStack('dev', {
      trainingEnabled: true,
      modelSource: 'volume',
      image: 'ghcr.io/example/gourmetgram:v1',
    }),
    (error: Error) => {
      assert.match(error.message, /gourmetgram:trainingImage/);
      assert.match(error.message, /pulumi config set trainingImage/);
      return true;
    },
  );
});
