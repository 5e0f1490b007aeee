import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../model/src/index';

function tfjsNodeLoads(): boolean {
  try {
    require.resolve('@tensorflow/tfjs-node');
    return true;
  } catch {
    return false;
  }
}

describe('initBackend', () => {
  it('runs wasm in Node (its .wasm files found) and computes with it', async () => {
    assert.equal(await initBackend('wasm'), 'wasm');
    const y = tf.tidy(() =>
      tf.conv2d(tf.ones([1, 4, 4, 1]) as tf.Tensor4D, tf.ones([3, 3, 1, 1]) as tf.Tensor4D, 1, 'same').sum(),
    );
    // A 3×3 'same' convolution of ones over a 4×4 image of ones: 4 corners × 4 + 8 edges × 6 + 4 inner × 9.
    assert.equal((await y.data())[0], 100);
    y.dispose();
  });

  it('switches to cpu and reports it', async () => {
    assert.equal(await initBackend('cpu'), 'cpu');
    assert.equal(tf.getBackend(), 'cpu');
  });

  it("'auto' prefers tfjs-node and otherwise runs wasm", async () => {
    assert.equal(await initBackend('auto'), tfjsNodeLoads() ? 'tensorflow' : 'wasm');
  });

  it(
    "'tensorflow' without tfjs-node fails with what to do",
    { skip: tfjsNodeLoads() && 'tfjs-node is installed' },
    async () => {
      await assert.rejects(initBackend('tensorflow'), /tfjs-node cannot be loaded.*'wasm' or 'cpu'/);
    },
  );
});
