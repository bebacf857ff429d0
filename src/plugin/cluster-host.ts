/**
 * What a cluster node applies here of the other nodes' changes, made of
 * the manager's parts: replicas installed, uninstalls, enables, reloads,
 * trust changes and namespace limits.
 */

import type { ClusterHost } from './cluster.ts';
import type { ManagerCore } from './core.ts';
import type { Installing } from './installing.ts';
import type { RevocationWatch } from './revocations.ts';

export function clusterHost(core: ManagerCore, installs: Installing, revocations: RevocationWatch): ClusterHost {
  const { registry, config } = core;
  return {
    registry,
    store: core.store(),
    log: core.log,
    pluginDir: config.pluginDir,
    digestOf: (id) =>
      registry.has(id) && registry.get(id).status !== 'error' ? (core.externals().get(id)?.digest ?? null) : null,
    applyRelease: (bytes) => installs.replicate(bytes, `cluster:${core.cluster()?.id ?? 'node'}`),
    applyUninstall: (id) => installs.removeReplica(id),
    applyEnabled: async (id, enabled) => {
      registry.setEnabled(id, enabled, { force: true });
    },
    applyReload: (id) => core.externals().reload(id),
    applyTrust: (origin) => revocations.check(`cluster:${origin}`),
    applyNamespace: async (name) => {
      const record = await core.store().getNamespace(name);
      core.externals().applyLimits(name, record?.limits ?? config.defaultLimits);
    },
    withLock: (id, fn) => core.withLock(id, fn),
    alert: (plugin, message) => void core.raiseAlert({ code: 'CLUSTER_SYNC_FAILED', plugin, processor: null, message }),
  };
}
