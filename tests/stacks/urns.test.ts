// The components' type tokens and names, which every child's URN is derived from: a change here would make
// `pulumi up` replace the resources of every stack already deployed (unless the component gains an alias).
// The hpa stack declares the Deployment component with all its children; the GKE and image components too.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { stackUnderTest } from './harness';

describe('component URNs (stack hpa)', () => {
  const run = stackUnderTest('hpa', { gcpProject: 'test-project' });

  it('keeps the type tokens and names existing stacks were deployed with', () => {
    const components = run.resources.filter((r) => !r.custom).map((r) => `${r.type}::${r.name}`);
    assert.deepEqual(components.sort(), [
      'gourmetgram:app:Classifier::classifier',
      'gourmetgram:app:ClassifierImage::classifier-image',
      'gourmetgram:app:LabelDatabase::label-database',
      'gourmetgram:infra:GkeCluster::gourmetgram-hpa',
    ]);
  });

  it("keeps the database component's children and their names: a new name would replace the database", () => {
    const children = run.resources
      .filter((r) => r.custom && r.name.startsWith('label-database'))
      .map((r) => `${r.type}::${r.name}`)
      .sort();
    assert.deepEqual(children, [
      'kubernetes:apps/v1:StatefulSet::label-database',
      'kubernetes:core/v1:Secret::label-database',
      'kubernetes:core/v1:Service::label-database',
      'random:index/randomPassword:RandomPassword::label-database-password',
    ]);
  });

  it("keeps the Deployment component's children and their names", () => {
    const children = run.resources
      .filter((r) => r.custom && r.name === 'classifier')
      .map((r) => r.type)
      .sort();
    assert.deepEqual(children, [
      'kubernetes:apps/v1:Deployment',
      'kubernetes:autoscaling/v2:HorizontalPodAutoscaler',
      'kubernetes:core/v1:Service',
      'kubernetes:policy/v1:PodDisruptionBudget',
    ]);
  });
});
