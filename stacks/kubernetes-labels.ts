// The labels docs/interfaces.md promises: tools/monitor finds the pods by them, so they are a contract.

export const APP_NAME = 'gourmetgram';

export type Component = 'classifier' | 'training' | 'database';

/** Labels for every object of one stack; `component` tells serving pods from the training Job's and the database's. */
export function appLabels(stack: string, component: Component = 'classifier'): Record<string, string> {
  return { ...selectorLabels(stack, component), 'app.kubernetes.io/managed-by': 'pulumi' };
}

/**
 * The subset a selector uses. A Deployment's selector is immutable, so it holds only labels that never
 * change, and `component` keeps the Service from routing requests to a training pod.
 */
export function selectorLabels(stack: string, component: Component = 'classifier'): Record<string, string> {
  return {
    'app.kubernetes.io/name': APP_NAME,
    'app.kubernetes.io/instance': stack,
    'app.kubernetes.io/component': component,
  };
}
