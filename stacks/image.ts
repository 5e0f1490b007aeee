// The classifier's container image, always handed on as `repository@sha256:<digest>`: a Deployment that names
// a digest rolls out when the image changes and stays put when a tag is merely pushed again, and a node can
// never run a different image than the one Pulumi recorded.

import * as path from 'node:path';
import * as docker from '@pulumi/docker';
import * as gcp from '@pulumi/gcp';
import * as pulumi from '@pulumi/pulumi';
import { gcpName } from './cluster';
import type { ImageConfig } from './config';
import { APP_NAME } from './kubernetes-labels';

/** The repository root: the Dockerfile copies model/ and service/ from it. */
const BUILD_CONTEXT = path.join(__dirname, '..');
const DOCKERFILE = path.join(BUILD_CONTEXT, 'service', 'Dockerfile');
/** The training image: the same code plus PyTorch, which must never land in the service image. */
const TRAINING_DOCKERFILE = path.join(BUILD_CONTEXT, 'model', 'Dockerfile');

export interface ClassifierImageArgs {
  image: ImageConfig;
  stack: string;
  /** Set on GKE: without a configured registry, an Artifact Registry repository is created in it. */
  gcp?: { provider: gcp.Provider; project: string; region: string };
  /** Also build (or resolve) the training image, into the same registry: set when the training Job runs. */
  training?: { prebuilt: string };
}

/** A prebuilt reference, pinned: a tag is resolved to its digest now, so what runs is what was there at deploy. */
export function pinned(ref: string, parent: pulumi.Resource): pulumi.Output<string> {
  return ref.includes('@sha256:')
    ? pulumi.output(ref)
    : docker
        .getRegistryImageOutput({ name: ref }, { parent })
        .apply((found) => `${withoutTag(ref)}@${found.sha256Digest}`);
}

/** `registry/repo:tag` → `registry/repo` (a port in the registry host is not a tag). */
export function withoutTag(ref: string): string {
  const name = ref.split('@')[0] ?? ref;
  const lastSlash = name.lastIndexOf('/');
  const lastColon = name.lastIndexOf(':');
  return lastColon > lastSlash ? name.slice(0, lastColon) : name;
}

/** Where built images are pushed, and the credentials for it where the registry needs them. */
interface PushTarget {
  repository: pulumi.Output<string>;
  registryAuth?: docker.types.input.Registry;
}

export class ClassifierImage extends pulumi.ComponentResource {
  /** `repository@sha256:…`, what the Deployment (or container, or predictor) runs. */
  readonly ref: pulumi.Output<string>;
  /** `repository@sha256:…` of the training image, when asked for: what the training Job runs. */
  readonly trainingRef: pulumi.Output<string> | undefined;

  constructor(name: string, args: ClassifierImageArgs, opts?: pulumi.ComponentResourceOptions) {
    super('gourmetgram:app:ClassifierImage', name, {}, opts);
    const { image, training } = args;

    // Created by the first build only: a stack whose images are all prebuilt needs no registry.
    let target: PushTarget | undefined;
    const build = (suffix: string, dockerfile: string) => {
      target ??= this.pushTarget(name, args);
      return new docker.Image(
        `${name}${suffix}`,
        {
          imageName: pulumi.interpolate`${target.repository}${suffix}:${image.tag}`,
          build: {
            context: BUILD_CONTEXT,
            dockerfile,
            platform: image.platform,
            // The Dockerfile's cache mounts (RUN --mount=type=cache) exist only in BuildKit.
            builderVersion: 'BuilderBuildKit',
          },
          registry: target.registryAuth,
        },
        { parent: this },
      ).repoDigest;
    };
    // The same rule for both images: a prebuilt one is pinned, anything else is built.
    const resolve = (prebuilt: string, suffix: string, dockerfile: string) =>
      prebuilt ? pinned(prebuilt, this) : build(suffix, dockerfile);
    this.ref = resolve(image.prebuilt, '', DOCKERFILE);
    this.trainingRef = training ? resolve(training.prebuilt, '-train', TRAINING_DOCKERFILE) : undefined;
    this.registerOutputs({ ref: this.ref, trainingRef: this.trainingRef });
  }

  /** Where the build is pushed: a new Artifact Registry repository on GKE, else the configured registry. */
  private pushTarget(name: string, args: ClassifierImageArgs): PushTarget {
    const { image } = args;
    if (image.registry || !args.gcp) {
      return { repository: pulumi.output(`${image.registry.replace(/\/+$/, '')}/${image.repository}`) };
    }
    const { provider, project, region } = args.gcp;
    const registry = new gcp.artifactregistry.Repository(
      `${name}-registry`,
      {
        // One repository per stack: the strategy stacks may share a project and region.
        repositoryId: gcpName(`${APP_NAME}-${args.stack}`),
        location: region,
        format: 'DOCKER',
        description: 'GourmetGram classifier images',
        // Every build is a few hundred MB; keep the recent ones, not all of them, at storage prices.
        cleanupPolicies: [
          { id: 'keep-recent', action: 'KEEP', mostRecentVersions: { keepCount: 5 } },
          { id: 'delete-older', action: 'DELETE', condition: { olderThan: '2592000s' } },
        ],
      },
      { parent: this, provider },
    );
    const host = `${region}-docker.pkg.dev`;
    return {
      repository: pulumi.interpolate`${host}/${project}/${registry.repositoryId}/${image.repository}`,
      // The caller's own gcloud credentials, as a short-lived token: nothing to configure in Docker first.
      registryAuth: {
        server: host,
        username: 'oauth2accesstoken',
        password: gcp.organizations.getClientConfigOutput({ provider, parent: this }).accessToken,
      },
    };
  }
}
