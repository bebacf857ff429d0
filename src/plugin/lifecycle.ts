/**
 * A plugin's lifecycle as an operator changes it: enabled, disabled,
 * reloaded from its folder, and the enabled states restored at start.
 * Each change is made under the plugin's lock (reload) or checked against
 * its dependants (disable), saved, audited and shared with the cluster.
 */

import { createError } from '../errors.ts';
import type { ManagerCore } from './core.ts';
import type { PluginInfo } from './types.ts';
import { refusedByVersionGuard } from './version-guard.ts';

/** Who asked for a change, for the audit log (`cli:alice`, `api`, `embed`). */
export interface ActorOption {
  actor?: string;
}

export interface ForceOption {
  /** Do it even though enabled plugins depend on the target. */
  force?: boolean;
}

/** Enables or disables a plugin, persistently; a disable is refused while enabled plugins depend on it, unless forced. */
export async function setEnabled(
  core: ManagerCore,
  id: string,
  enabled: boolean,
  options: ActorOption & ForceOption,
): Promise<PluginInfo> {
  const action = enabled ? 'enable' : 'disable';
  const actor = options.actor ?? 'embed';
  let info: PluginInfo;
  try {
    await core.store().ping();
    info = core.registry.setEnabled(id, enabled, { force: options.force });
  } catch (err) {
    return core.audit.refusal(actor, action, id, err);
  }
  await core.store().savePluginState(id, { enabled, version: info.version });
  await core.audit.ok(actor, action, id, options.force ? { force: true } : null);
  core.log.info({ plugin: id, actor }, `plugin ${action}d`);
  await core.share(() => core.cluster()?.changed(action, id), id);
  return info;
}

/** Validates and loads a plugin's files again; when they fail, the loaded version keeps serving. */
export function reload(core: ManagerCore, id: string, options: ActorOption): Promise<PluginInfo> {
  const actor = options.actor ?? 'embed';
  return core.withLock(id, async () => {
    if (core.registry.get(id).source === 'builtin') throw createError('PLUGIN_BUILTIN', { id, action: 'reload' });
    try {
      await core.externals().reload(id);
    } catch (err) {
      await refusedByVersionGuard(core, id, actor);
      return core.audit.refusal(actor, 'reload', id, err);
    }
    await core.audit.ok(actor, 'reload', id);
    await core.share(() => core.cluster()?.changed('reload', id), id);
    return core.registry.get(id);
  });
}

/** The enabled state the operator set for each plugin, from the store (dependencies not checked: it was so before). */
export async function restoreEnabledStates(core: ManagerCore): Promise<void> {
  for (const state of await core.store().listPluginStates()) {
    if (core.registry.has(state.id)) core.registry.setEnabled(state.id, state.enabled, { force: true });
  }
}
