// The program itself stops on bad configuration before declaring anything, as a RunError (Pulumi prints its
// message without a stack trace).
import assert from 'node:assert/strict';
import { it } from 'node:test';
import * as pulumi from '@pulumi/pulumi';
import { runStack } from './harness';

it('hpa without a GCP project ends the program with the fix in the message', async () => {
  await assert.rejects(runStack('hpa'), (error: Error) => {
    assert.ok(pulumi.RunError.isInstance(error), `a RunError, got ${error.constructor.name}`);
    assert.match(error.message, /gourmetgram:gcpProject/);
    assert.match(error.message, /pulumi config set gcpProject <project-id>/);
    return true;
  });
});
