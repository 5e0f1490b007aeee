// The three ways of serving the classifier that the course compares. A strategy decides how the pods are
// reached and who sets their number; everything else (resources, probes, image) is the same for all three,
// so that a load test compares the strategies and nothing else.

export type ServiceType = 'NodePort' | 'LoadBalancer' | 'ClusterIP';

export interface Strategy {
  readonly summary: string;
  /** Used when `serviceType` is `auto`. */
  readonly serviceType: ServiceType;
  /** An HPA owns `spec.replicas`; the Deployment must then leave it unset. */
  readonly autoscaled: boolean;
}

export const STRATEGIES = {
  k8s: {
    summary: 'a fixed number of pods (1 in the k8s stack) reached on a node port, as the course did',
    serviceType: 'NodePort',
    autoscaled: false,
  },
  lb: {
    summary: 'a fixed pool of pods (5 in the lb stack) behind a cloud load balancer',
    serviceType: 'LoadBalancer',
    autoscaled: false,
  },
  hpa: {
    summary: 'pods behind a cloud load balancer, their number set by a HorizontalPodAutoscaler on CPU',
    serviceType: 'LoadBalancer',
    autoscaled: true,
  },
} as const satisfies Record<string, Strategy>;

export type StrategyName = keyof typeof STRATEGIES;
export const STRATEGY_NAMES = Object.keys(STRATEGIES) as [StrategyName, ...StrategyName[]];
