/**
 * What the API shows of one plugin beyond its registry entry: how its
 * loaded release is signed, and its statistics with its sandbox's state.
 */

import type { ResourceLimits } from '../sandbox/limits.ts';
import type { ResourceMonitor, UsageSample } from '../sandbox/monitor.ts';
import type { SandboxHost } from '../sandbox/sandbox-host.ts';
import type { ExternalRecord } from './external.ts';
import type { FindingCode } from './findings.ts';
import type { SandboxIsolation } from './isolation.ts';
import type { PluginStatistics } from './plugin-stats.ts';
import type { PluginInfo, SignatureInfo } from './types.ts';

/** Findings that mean a release's signature or checksums do not hold. */
const INVALID_SIGNATURE_CODES: readonly FindingCode[] = [
  'SIGNATURE_INVALID',
  'KEY_REVOKED',
  'NAMESPACE_FORBIDDEN',
  'CHECKSUM_MISMATCH',
  'FILE_MISSING',
  'FILE_UNLISTED',
];

/** How a plugin's loaded release is signed, from its last validation (`record`). */
export function signatureOf(plugin: PluginInfo, record: ExternalRecord | undefined): SignatureInfo {
  if (plugin.source === 'builtin') return { state: 'builtin', publisher: null, keyId: null };
  const codes = new Set((record?.findings ?? []).map((f) => f.code));
  const signer = record?.signer ?? null;
  const base = { publisher: signer?.publisher ?? null, keyId: signer?.keyId ?? null };
  if (INVALID_SIGNATURE_CODES.some((c) => codes.has(c))) return { state: 'invalid', ...base };
  const accepted = record?.acceptedUnsigned ? { acceptedUnsigned: record.acceptedUnsigned } : {};
  if (codes.has('SIGNATURE_MISSING') || !record) return { state: 'unsigned', ...base, ...accepted };
  if (codes.has('PUBLISHER_UNTRUSTED') || !signer) return { state: 'untrusted', ...base, ...accepted };
  return { state: 'trusted', ...base };
}

/** A running sandbox as the API shows it. */
export interface SandboxReport {
  mode: string;
  state: string;
  limits: ResourceLimits;
  restarts: number;
  crashes: number;
  timeouts: number;
  lastCrash: string | null;
  usage: UsageSample | null;
  history: UsageSample[];
  isolation: SandboxIsolation;
}

/** A plugin's statistics and, when it runs in a sandbox, that sandbox. */
export interface PluginReport {
  stats: PluginStatistics;
  sandbox: SandboxReport | null;
}

export function sandboxReport(
  s: SandboxHost,
  monitor: ResourceMonitor | undefined,
  isolation: SandboxIsolation,
): SandboxReport {
  return {
    mode: s.mode,
    state: s.state,
    limits: s.limits,
    restarts: s.stats.restarts,
    crashes: s.stats.crashes,
    timeouts: s.stats.timeouts,
    lastCrash: s.stats.lastCrash,
    usage: monitor?.latest(s.namespace) ?? null,
    history: monitor?.history(s.namespace) ?? [],
    isolation,
  };
}
