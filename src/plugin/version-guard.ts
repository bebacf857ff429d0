/**
 * The version guard's alerts: a release refused for VERSION_ROLLBACK or
 * VERSION_CONFLICT where it was found in the plugin directory (a folder
 * swapped by hand) is what an attacker with write access to the folder
 * would do, so it is alerted and audited, and a release that served stops
 * once its files are no longer on disk.
 */

import type { ManagerCore } from './core.ts';
import type { Finding } from './findings.ts';

/** The error findings of the version guard among a release's findings. */
export function versionGuardFindings(findings: readonly Finding[]): Finding[] {
  return findings.filter(
    (f) => f.severity === 'error' && (f.code === 'VERSION_ROLLBACK' || f.code === 'VERSION_CONFLICT'),
  );
}

/** Raises one alert per version-guard finding. */
export function alertVersionGuard(core: ManagerCore, id: string, findings: readonly Finding[]): void {
  for (const f of versionGuardFindings(findings)) {
    if (f.code !== 'VERSION_ROLLBACK' && f.code !== 'VERSION_CONFLICT') continue;
    core.raiseAlert({ code: f.code, plugin: id, processor: null, message: `${id}: ${f.message}` });
  }
}

/**
 * A reload (watcher or API) refused the plugin folder for the version
 * guard. The release that serves keeps serving only while its files are
 * still on disk: swapped out, a restart of its sandbox could not load it
 * again, so it stops now, in `error` saying what was found. True when it
 * stopped it.
 */
export async function refusedByVersionGuard(core: ManagerCore, id: string, actor: string): Promise<boolean> {
  const external = core.externals();
  const record = external.get(id);
  const findings = versionGuardFindings(record?.findings ?? []);
  if (findings.length === 0) return false;
  alertVersionGuard(core, id, findings);
  const running = external.running().find((r) => r.id === id);
  if (!running || (record?.digest && record.digest === running.digest)) return false;
  const why = findings.map((f) => ({
    ...f,
    message: `${f.message}; ${running.version}, which served, is no longer on disk and was stopped`,
  }));
  if (!(await external.withdraw(id, why))) return false;
  await core.audit.ok(actor, 'withdraw', id, {
    version: running.version,
    codes: why.map((f) => f.code),
    reason: why[0]!.message,
  });
  return true;
}

/** Alerts and audits each plugin the start refused for the version guard, and still holds in `error`. */
export async function alertRefusedAtStart(core: ManagerCore): Promise<void> {
  for (const plugin of core.registry.list()) {
    if (plugin.source !== 'external' || plugin.status !== 'error') continue;
    const findings = versionGuardFindings(core.externals().get(plugin.id)?.findings ?? []);
    if (findings.length === 0) continue;
    alertVersionGuard(core, plugin.id, findings);
    await core.audit.refused('start', 'load', plugin.id, {
      codes: findings.map((f) => f.code),
      version: plugin.version,
      message: findings[0]!.message,
    });
  }
}
