// The ways of serving the classifier that the course and its seeds compare. A strategy decides where the
// container runs (a Deployment, a KServe InferenceService, a plain Docker host), how it is reached and who
// sets the number of copies; everything else (resources, probes, image) is the same for all of them
// (stacks/workload.ts), so that a load test compares the strategies and nothing else.

export type ServiceType = 'NodePort' | 'LoadBalancer' | 'ClusterIP';

/** What the strategy declares: a Deployment (and Service), an InferenceService, or a Docker container. */
export type Workload = 'deployment' | 'inferenceService' | 'dockerContainer';

export interface Strategy {
  readonly summary: string;
  readonly workload: Workload;
  /** Used when `serviceType` is `auto` (a Deployment's Service; the other workloads bring their own). */
  readonly serviceType: ServiceType;
  /** An HPA owns `spec.replicas`; the Deployment must then leave it unset. */
  readonly autoscaled: boolean;
}

export const STRATEGIES = {
  k8s: {
    workload: 'deployment',
    summary: 'a fixed number of pods (1 in the k8s stack) reached on a node port, as the course did',
    serviceType: 'NodePort',
    autoscaled: false,
  },
  lb: {
    workload: 'deployment',
    summary: 'a fixed pool of pods (5 in the lb stack) behind a cloud load balancer',
    serviceType: 'LoadBalancer',
    autoscaled: false,
  },
  hpa: {
    workload: 'deployment',
    summary: 'pods behind a cloud load balancer, their number set by a HorizontalPodAutoscaler on CPU',
    serviceType: 'LoadBalancer',
    autoscaled: true,
  },
  kserve: {
    workload: 'inferenceService',
    summary:
      'a KServe InferenceService: RawDeployment (Deployment + HPA) or Serverless (Knative: scale to zero, canaries)',
    serviceType: 'ClusterIP',
    // KServe's own autoscaler (the HPA it creates, or Knative's) owns the count, within
    // kserveMinReplicas..kserveMaxReplicas; the program declares no HPA of its own.
    autoscaled: false,
  },
  docker: {
    workload: 'dockerContainer',
    summary: "one container on a Docker host, its port published, as the course's first exercise ran it",
    serviceType: 'NodePort',
    autoscaled: false,
  },
} as const satisfies Record<string, Strategy>;

export type StrategyName = keyof typeof STRATEGIES;
export const STRATEGY_NAMES = Object.keys(STRATEGIES) as [StrategyName, ...StrategyName[]];

/** What each KServe mode can scale on, the first being its default. */
export const KSERVE_METRICS = {
  Serverless: ['concurrency', 'rps'],
  RawDeployment: ['cpu', 'memory'],
} as const;
/**
 * Per pod: one inference worker serves one request at a time, so two in flight keep it busy without a long
 * queue; the CPU figure is the hpa strategy's.
 */
export const KSERVE_DEFAULT_TARGET = { concurrency: 2, rps: 20, cpu: 70, memory: 80 } as const;
export type KServeScaleMetric = keyof typeof KSERVE_DEFAULT_TARGET;
