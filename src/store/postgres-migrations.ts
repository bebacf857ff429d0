/**
 * The PostgreSQL schema, as an ordered list of migrations: the SQLite
 * tables (same columns, so the same row readers serve both) plus what a
 * cluster shares: bundles and nodes. `databridge_schema` records how many
 * have run; each runs in its own transaction under an advisory lock, so
 * nodes starting together migrate once. Never edit a shipped migration.
 */

export const POSTGRES_MIGRATIONS: readonly string[] = [
  `CREATE TABLE plugin_state (
     id TEXT PRIMARY KEY,
     enabled BOOLEAN NOT NULL DEFAULT TRUE,
     version TEXT,
     highest_version TEXT,
     highest_digest TEXT,
     updated_at TEXT NOT NULL
   );
   CREATE TABLE install_history (
     seq BIGSERIAL PRIMARY KEY,
     plugin_id TEXT NOT NULL,
     version TEXT NOT NULL,
     digest TEXT,
     action TEXT NOT NULL,
     actor TEXT NOT NULL,
     at TEXT NOT NULL
   );
   CREATE INDEX install_history_plugin ON install_history (plugin_id, seq);
   CREATE TABLE audit_log (
     seq BIGSERIAL PRIMARY KEY,
     at TEXT NOT NULL,
     actor TEXT NOT NULL,
     action TEXT NOT NULL,
     target TEXT NOT NULL,
     result TEXT NOT NULL,
     details TEXT
   );
   CREATE INDEX audit_log_target ON audit_log (target, seq);
   CREATE TABLE namespaces (
     name TEXT PRIMARY KEY,
     display_name TEXT NOT NULL,
     limits TEXT NOT NULL,
     created_at TEXT NOT NULL,
     updated_at TEXT NOT NULL
   );
   CREATE TABLE trusted_keys (
     key_id TEXT PRIMARY KEY,
     publisher TEXT NOT NULL,
     public_key TEXT NOT NULL,
     namespaces TEXT NOT NULL,
     added_at TEXT NOT NULL,
     revoked_at TEXT,
     revoked_reason TEXT
   );
   CREATE INDEX trusted_keys_publisher ON trusted_keys (publisher);
   CREATE TABLE revoked_releases (
     plugin_id TEXT NOT NULL,
     version TEXT NOT NULL,
     reason TEXT NOT NULL,
     at TEXT NOT NULL,
     PRIMARY KEY (plugin_id, version)
   );
   CREATE TABLE scan_cache (
     sha256 TEXT NOT NULL,
     scanner TEXT NOT NULL,
     result TEXT NOT NULL,
     PRIMARY KEY (sha256, scanner)
   );`,
  `CREATE TABLE bundles (
     plugin_id TEXT PRIMARY KEY,
     version TEXT NOT NULL,
     digest TEXT NOT NULL,
     bytes BYTEA NOT NULL,
     origin TEXT NOT NULL,
     at TEXT NOT NULL
   );
   CREATE TABLE nodes (
     id TEXT PRIMARY KEY,
     address TEXT,
     version TEXT NOT NULL,
     started_at TEXT NOT NULL,
     heartbeat_at TEXT NOT NULL,
     plugins TEXT NOT NULL
   );`,
  // API tokens: the secret's sha256 only, never the secret
  `CREATE TABLE api_tokens (
     name TEXT PRIMARY KEY,
     role TEXT NOT NULL,
     hash TEXT NOT NULL UNIQUE,
     created_at TEXT NOT NULL,
     created_by TEXT NOT NULL,
     last_used_at TEXT
   );`,
];

/** The LISTEN/NOTIFY channel nodes tell each other their changes on. */
export const CHANNEL = 'databridge_changes';
