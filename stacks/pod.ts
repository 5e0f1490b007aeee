// What every GourmetGram pod shares, serving or training: the hardening the policy pack checks, and the one
// writable place a read-only root filesystem leaves.

import type * as k8s from '@pulumi/kubernetes';

/** The image's `node` user (uid 1000). Numeric, because runAsNonRoot cannot verify a user given by name. */
export const APP_UID = 1000;

/**
 * A pod run as one non-root uid, whose volumes (the model PVC, the database's claim) become writable by that uid's
 * group.
 */
export function podSecurityContextFor(uid: number): k8s.types.input.core.v1.PodSecurityContext {
  return {
    runAsNonRoot: true,
    runAsUser: uid,
    runAsGroup: uid,
    fsGroup: uid,
    seccompProfile: { type: 'RuntimeDefault' },
  };
}

export const podSecurityContext = podSecurityContextFor(APP_UID);

export const containerSecurityContext: k8s.types.input.core.v1.SecurityContext = {
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  privileged: false,
  capabilities: { drop: ['ALL'] },
};

/** The root filesystem is read-only; whatever needs scratch space (TF.js, sharp, npm's cache) writes here. */
export const TMP_DIR = '/tmp';
export const TMP_SIZE = '512Mi';
export const tmpVolume: k8s.types.input.core.v1.Volume = { name: 'tmp', emptyDir: { sizeLimit: TMP_SIZE } };
export const tmpMount: k8s.types.input.core.v1.VolumeMount = { name: 'tmp', mountPath: TMP_DIR };

/** The home directory is read-only too: whatever writes under $HOME (npm's cache, say) gets the writable /tmp. */
export const WRITABLE_DIRS_ENV: Record<string, string> = { HOME: TMP_DIR };
export const writableDirsEnv: k8s.types.input.core.v1.EnvVar[] = Object.entries(WRITABLE_DIRS_ENV).map(
  ([name, value]) => ({ name, value }),
);
