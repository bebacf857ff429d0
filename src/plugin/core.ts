/**
 * What the plugin manager's jobs (installing, the watcher, auto-rollback,
 * the revocation watch, the version guard) share of it. @internal
 */

import type { Alert, AlertInput, AlertListener } from '../alerts.ts';
import type { PinoLogger } from '../log.ts';
import type { StateStore } from '../store/types.ts';
import type { AuditTrail } from './audit.ts';
import type { ClusterNode } from './cluster.ts';
import type { PluginManagerConfig } from './config.ts';
import type { ExternalPlugins } from './external.ts';
import type { PluginRegistry } from './registry.ts';

export interface ManagerCore {
  readonly config: PluginManagerConfig;
  readonly registry: PluginRegistry;
  readonly log: PinoLogger;
  readonly audit: AuditTrail;
  store(): StateStore;
  /** The loader of external plugins; throws MANAGER_SHUT_DOWN before start and after shutdown. */
  externals(): ExternalPlugins;
  /** Runs `fn` when no other change to the same plugin is under way. */
  withLock<T>(id: string, fn: () => Promise<T>): Promise<T>;
  /** This node's place in a cluster, or null on its own. */
  cluster(): ClusterNode | null;
  /** Tells the cluster of a change made here; a failure is logged, the change stands. */
  share(fn: () => Promise<void> | undefined, target: string): Promise<void>;
  raiseAlert(alert: AlertInput): Alert;
  onAlert(listener: AlertListener): () => void;
  /** Started and not yet shut down. */
  isReady(): boolean;
  isClosed(): boolean;
}
