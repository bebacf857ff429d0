/**
 * Findings: what validation says about a plugin, each with a stable code,
 * a severity, the file and JSON pointer it concerns, and a message.
 */

export const FINDING_CODES = [
  'MANIFEST_INVALID',
  'STRUCTURE_INVALID',
  'FILE_MISSING',
  'FILE_UNLISTED',
  'CHECKSUM_MISMATCH',
  'CHECKSUM_MISSING',
  'SIGNATURE_MISSING',
  'SIGNATURE_INVALID',
  'PUBLISHER_UNTRUSTED',
  'KEY_REVOKED',
  'RELEASE_REVOKED',
  'NAMESPACE_FORBIDDEN',
  'VERSION_ROLLBACK',
  'VERSION_CONFLICT',
  'ENGINE_INCOMPATIBLE',
  'DEPENDENCY_MISSING',
  'DEPENDENT_BROKEN',
  'COMPONENT_CONFLICT',
  'PERMISSION_UNDECLARED',
  'IMPORT_DYNAMIC',
  'ARCHIVE_UNSAFE',
  'ARCHIVE_TOO_LARGE',
  'SCANNER_FAILED',
  'SCANNER_FINDING',
  'LOAD_FAILED',
  'ISOLATION_UNAVAILABLE',
  'PATH_INVALID',
  'PATH_FORBIDDEN',
  'PATH_SYMLINK',
  'PATH_NOT_ACCESSIBLE',
] as const;

export type FindingCode = (typeof FINDING_CODES)[number];

export interface Finding {
  code: FindingCode;
  severity: 'error' | 'warning';
  /** The file concerned, relative to the plugin folder (or the bundle), when there is one. */
  path: string | null;
  /** JSON pointer inside that file, when there is one. */
  pointer: string | null;
  message: string;
}

export function finding(
  code: FindingCode,
  message: string,
  where: { path?: string | null; pointer?: string | null; severity?: 'error' | 'warning' } = {},
): Finding {
  return {
    code,
    severity: where.severity ?? 'error',
    path: where.path ?? null,
    pointer: where.pointer ?? null,
    message,
  };
}

export function hasErrors(findings: readonly Finding[]): boolean {
  return findings.some((f) => f.severity === 'error');
}

/** The codes of the error findings, each once, in the order first found. */
export function errorCodes(findings: readonly Finding[]): FindingCode[] {
  return [...new Set(findings.filter((f) => f.severity === 'error').map((f) => f.code))];
}
