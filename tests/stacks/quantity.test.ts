import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseCpu, parseMemory, parseQuantity } from '../../stacks/quantity';

// One grammar, two readers: the monitor takes whatever the API server writes, the config only the plain forms.
describe('Kubernetes quantities, one parser for the Pulumi program and the monitor', () => {
  it('any form the API server writes, in cores or bytes', () => {
    assert.equal(parseQuantity('500m'), 0.5);
    assert.equal(parseQuantity('1500u'), 0.0015);
    assert.equal(parseQuantity('2Ei'), 2 * 2 ** 60);
    assert.equal(parseQuantity('1E'), 1e18);
    assert.equal(parseQuantity('.5'), 0.5);
    assert.equal(parseQuantity(' 1e3 '), 1000);
    for (const text of ['', 'lots', '1K', '1Mb', 'constructor', '1 Gi'])
      assert.equal(parseQuantity(text), undefined);
  });

  it('CPU in the config: a plain number of cores, or of millicores', () => {
    assert.equal(parseCpu('500m'), 0.5);
    assert.equal(parseCpu('1.5'), 1.5);
    assert.equal(parseCpu('3m'), 0.003);
    for (const text of ['1Gi', '1k', '1e3', '.5', '+1', '-1', '1.', ' 1', 'one'])
      assert.equal(parseCpu(text), undefined, text);
  });

  it('memory in the config: a plain number of bytes with a decimal or binary suffix up to T', () => {
    assert.equal(parseMemory('384Mi'), 384 * 2 ** 20);
    assert.equal(parseMemory('512M'), 512e6);
    assert.equal(parseMemory('2K'), 2000);
    assert.equal(parseMemory('1.5Gi'), 1.5 * 2 ** 30);
    for (const text of ['500m', '1Pi', '1e9', '-1Gi', '1Gb', ''])
      assert.equal(parseMemory(text), undefined, text);
  });
});
