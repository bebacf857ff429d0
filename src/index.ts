/**
 * `databridge`: the host API for programs that embed DataBridge.
 */

export type { Alert, AlertCode, AlertInput, AlertListener } from './alerts.ts';
export { ALERT_CODES, AlertBus } from './alerts.ts';
export type {
  CatalogInfo,
  CatalogInstallResult,
  CatalogServiceOptions,
  CatalogSettings,
  OutdatedPlugin,
} from './catalog/catalog.ts';
export { Catalog, createCatalog } from './catalog/catalog.ts';
export type { SearchHit } from './catalog/client.ts';
export type { PluginSpec as CatalogSpec } from './catalog/names.ts';
export { packageName, parseSpec, pluginIdOf } from './catalog/names.ts';
export type { ErrorCode } from './errors.ts';
export { createError, DataBridgeError, ERRORS, isDataBridgeError } from './errors.ts';
export type { BackPressure, ConnectionStats } from './flow/connection.ts';
export type {
  ConnectionConfig,
  FlowControllerOptions,
  FlowStats,
  ProcessorConfig,
  ProcessorSummary,
  ScheduleConfig,
} from './flow/controller.ts';
export { createFlowController, FlowController } from './flow/controller.ts';
export type { FlowDefinition, FlowFinding, FlowFindingCode, LoadFlowOptions } from './flow/flow-definition.ts';
export { FLOW_FINDING_CODES, loadFlow, readFlowFile, validateFlow } from './flow/flow-definition.ts';
export type { ProcessorStats } from './flow/processor-node.ts';
export type { BundleLimits } from './plugin/bundle.ts';
export { DEFAULT_BUNDLE_LIMITS } from './plugin/bundle.ts';
export type { PluginManagerConfig, PluginManagerOptions } from './plugin/config.ts';
export type { ExternalRecord } from './plugin/external.ts';
export type { Finding, FindingCode } from './plugin/findings.ts';
export { FINDING_CODES } from './plugin/findings.ts';
export type { InstallOutcome } from './plugin/installer.ts';
export type { ActorOption, ForceOption } from './plugin/manager.ts';
export { createPluginManager, PluginManager } from './plugin/manager.ts';
export type { PluginManifest, PluginPermissions } from './plugin/manifest.ts';
export type { RegistryListener } from './plugin/registry.ts';
export { PluginRegistry } from './plugin/registry.ts';
export type { ScannerHook } from './plugin/scanner.ts';
export type { DsseEnvelope, KeyPair, ReleaseStatement } from './plugin/signing.ts';
export { generateSigningKey, keyIdOf } from './plugin/signing.ts';
export type { TrustStore } from './plugin/trust.ts';
export type {
  ComponentEntry,
  PluginInfo,
  PluginQuery,
  PluginRegistration,
  PluginSource,
  PluginStatus,
  PluginType,
  RegistryEvent,
  RegistryStats,
  SandboxMode,
} from './plugin/types.ts';
export type { TrustPolicy, ValidationReport } from './plugin/validator.ts';
export type { BuiltInProcessor } from './processors/index.ts';
export { BUILTIN_PROCESSORS } from './processors/index.ts';
export type { ResourceLimits } from './sandbox/limits.ts';
export { DEFAULT_LIMITS } from './sandbox/limits.ts';
export type { CompiledExpression } from './session/expression.ts';
export { compileExpression } from './session/expression.ts';
export { openSqliteStore } from './store/sqlite.ts';
export type {
  AuditEntry,
  AuditQuery,
  InstallRecord,
  NamespaceRecord,
  PluginStateRecord,
  RevokedRelease,
  StateStore,
  TrustedKey,
} from './store/types.ts';
export { VERSION } from './version.ts';
