// Runs the policy pack over a recorded stack the way the Pulumi engine would: every resource policy on every
// resource, every stack policy on all of them.
import type { PolicyResource, ResourceValidationPolicy, StackValidationPolicy } from '@pulumi/policy';
import { policies } from '../../policy/rules';
import { revealed, type RecordedResource } from '../stacks/harness';

export function asPolicyResource(r: RecordedResource): PolicyResource {
  return {
    type: r.type,
    // The policy engine sees secrets as plain values, as a provider does.
    props: revealed(structuredClone(r.inputs)),
    urn: `urn:pulumi:test::gourmetgram::${r.type}::${r.name}`,
    name: r.name,
    opts: {},
  } as unknown as PolicyResource;
}

export async function violationsOf(
  policy: ResourceValidationPolicy,
  resource: PolicyResource,
): Promise<string[]> {
  const found: string[] = [];
  const validate = policy.validateResource;
  if (!validate) throw new Error(`${policy.name} validates no resource`);
  for (const fn of Array.isArray(validate) ? validate : [validate]) {
    await fn(resource as never, (message) => found.push(message));
  }
  return found;
}

export async function stackViolationsOf(
  policy: StackValidationPolicy,
  resources: PolicyResource[],
): Promise<string[]> {
  const found: string[] = [];
  await policy.validateStack({ resources } as never, (message) => found.push(message));
  return found;
}

/** Every violation of every policy, as `policy: resource: message`. */
export async function allViolations(resources: PolicyResource[]): Promise<string[]> {
  const found: string[] = [];
  for (const policy of policies) {
    if ('validateStack' in policy) {
      for (const m of await stackViolationsOf(policy, resources)) found.push(`${policy.name}: ${m}`);
    } else {
      for (const resource of resources) {
        for (const m of await violationsOf(policy, resource))
          found.push(`${policy.name}: ${resource.name}: ${m}`);
      }
    }
  }
  return found;
}
