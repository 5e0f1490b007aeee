// The classifier's container image, always handed on as `repository@sha256:<digest>`: a Deployment that names
// a digest rolls out when the image changes and stays put when a tag is merely pushed again, and a node can
// never run a different image than the one Pulumi recorded.

import * as path from 'node:path';
import * as docker from '@pulumi/docker';
import * as gcp from '@pulumi/gcp';
import * as pulumi from '@pulumi/pulumi';
import type { ImageConfig } from './config';
import { APP_NAME } from './labels';

/** The repository root: the Dockerfile copies model/ and service/ from it. */
const BUILD_CONTEXT = path.join(__dirname, '..');
const DOCKERFILE = path.join(BUILD_CONTEXT, 'service', 'Dockerfile');

export interface ClassifierImageArgs {
  image: ImageConfig;
  stack: string;
  /** Set on GKE: without a configured registry, an Artifact Registry repository is created in it. */
  gcp?: { provider: gcp.Provider; project: string; region: string };
}

/** `registry/repo:tag` → `registry/repo` (a port in the registry host is not a tag). */
export function withoutTag(ref: string): string {
  const name = ref.split('@')[0] ?? ref;
  const lastSlash = name.lastIndexOf('/');
  const lastColon = name.lastIndexOf(':');
  return lastColon > lastSlash ? name.slice(0, lastColon) : name;
}

export class ClassifierImage extends pulumi.ComponentResource {
  /** `repository@sha256:…`, what the Deployment and the training Job run. */
  readonly ref: pulumi.Output<string>;

  constructor(name: string, args: ClassifierImageArgs, opts?: pulumi.ComponentResourceOptions) {
    super('gourmetgram:app:ClassifierImage', name, {}, opts);
    const { image } = args;

    if (image.prebuilt) {
      this.ref = image.prebuilt.includes('@sha256:')
        ? pulumi.output(image.prebuilt)
        : // A tag is resolved to its digest now, so the Deployment still pins what was there at deploy time.
          docker
            .getRegistryImageOutput({ name: image.prebuilt }, { parent: this })
            .apply((found) => `${withoutTag(image.prebuilt)}@${found.sha256Digest}`);
      this.registerOutputs({ ref: this.ref });
      return;
    }

    let repository: pulumi.Output<string>;
    let registryAuth: docker.types.input.Registry | undefined;
    if (!image.registry && args.gcp) {
      const { provider, project, region } = args.gcp;
      const registry = new gcp.artifactregistry.Repository(
        `${name}-registry`,
        {
          // One repository per stack: the strategy stacks may share a project and region.
          repositoryId: `${APP_NAME}-${args.stack}`.toLowerCase().replace(/[^a-z0-9-]/g, '-'),
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
      repository = pulumi.interpolate`${host}/${project}/${registry.repositoryId}/${image.repository}`;
      // The caller's own gcloud credentials, as a short-lived token: nothing to configure in Docker first.
      registryAuth = {
        server: host,
        username: 'oauth2accesstoken',
        password: gcp.organizations.getClientConfigOutput({ provider, parent: this }).accessToken,
      };
    } else {
      repository = pulumi.output(`${image.registry.replace(/\/+$/, '')}/${image.repository}`);
    }

    const built = new docker.Image(
      name,
      {
        imageName: pulumi.interpolate`${repository}:${image.tag}`,
        build: {
          context: BUILD_CONTEXT,
          dockerfile: DOCKERFILE,
          platform: image.platform,
          // The Dockerfile's cache mounts (RUN --mount=type=cache) exist only in BuildKit.
          builderVersion: 'BuilderBuildKit',
        },
        registry: registryAuth,
      },
      { parent: this },
    );
    this.ref = built.repoDigest;
    this.registerOutputs({ ref: this.ref });
  }
}
