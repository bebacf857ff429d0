/** Every alert code the host raises; docs/errors.md lists them and a test keeps the two in step. */
export const ALERT_CODES = [
  'PROCESSOR_FAILED',
  'PROCESSOR_INIT_FAILED',
  'PROCESSOR_STOP_FAILED',
  'REPORTING_TASK_FAILED',
  'PLUGIN_UNAVAILABLE',
  'RELOAD_FAILED',
  'SANDBOX_CRASHED',
  'SANDBOX_PROTOCOL_VIOLATION',
  'MEMORY_LIMIT',
  'EXECUTION_TIMEOUT',
  'CPU_LIMIT',
  'FILE_HANDLES',
  'SANDBOX_FAILED',
  'AUTO_ROLLBACK',
  'CLUSTER_SYNC_FAILED',
  'KEY_REVOKED',
  'RELEASE_REVOKED',
  'VERSION_ROLLBACK',
  'VERSION_CONFLICT',
] as const;

export type AlertCode = (typeof ALERT_CODES)[number];
