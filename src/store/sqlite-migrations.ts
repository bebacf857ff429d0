/**
 * The SQLite schema, as an ordered list of migrations. `PRAGMA user_version`
 * records how many have been applied; each runs in its own transaction, so a
 * crash mid-way leaves the previous version whole. Never edit a migration
 * that has shipped: add one.
 */

export const SQLITE_MIGRATIONS: readonly string[] = [
  `CREATE TABLE plugin_state (
     id TEXT PRIMARY KEY,
     enabled INTEGER NOT NULL DEFAULT 1,
     version TEXT,
     highest_version TEXT,
     highest_digest TEXT,
     updated_at TEXT NOT NULL
   ) STRICT;
   CREATE TABLE install_history (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     plugin_id TEXT NOT NULL,
     version TEXT NOT NULL,
     digest TEXT,
     action TEXT NOT NULL,
     actor TEXT NOT NULL,
     at TEXT NOT NULL
   ) STRICT;
   CREATE INDEX install_history_plugin ON install_history (plugin_id, seq);
   CREATE TABLE audit_log (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     at TEXT NOT NULL,
     actor TEXT NOT NULL,
     action TEXT NOT NULL,
     target TEXT NOT NULL,
     result TEXT NOT NULL,
     details TEXT
   ) STRICT;
   CREATE INDEX audit_log_target ON audit_log (target, seq);
   CREATE TABLE namespaces (
     name TEXT PRIMARY KEY,
     display_name TEXT NOT NULL,
     limits TEXT NOT NULL,
     created_at TEXT NOT NULL,
     updated_at TEXT NOT NULL
   ) STRICT;`,
  `CREATE TABLE trusted_keys (
     key_id TEXT PRIMARY KEY,
     publisher TEXT NOT NULL,
     public_key TEXT NOT NULL,
     namespaces TEXT NOT NULL,
     added_at TEXT NOT NULL,
     revoked_at TEXT,
     revoked_reason TEXT
   ) STRICT;
   CREATE INDEX trusted_keys_publisher ON trusted_keys (publisher);
   CREATE TABLE revoked_releases (
     plugin_id TEXT NOT NULL,
     version TEXT NOT NULL,
     reason TEXT NOT NULL,
     at TEXT NOT NULL,
     PRIMARY KEY (plugin_id, version)
   ) STRICT;`,
  `CREATE TABLE scan_cache (
     sha256 TEXT NOT NULL,
     scanner TEXT NOT NULL,
     result TEXT NOT NULL,
     PRIMARY KEY (sha256, scanner)
   ) STRICT;`,
  // API tokens: the secret's sha256 only, never the secret
  `CREATE TABLE api_tokens (
     name TEXT PRIMARY KEY,
     role TEXT NOT NULL,
     hash TEXT NOT NULL UNIQUE,
     created_at TEXT NOT NULL,
     created_by TEXT NOT NULL,
     last_used_at TEXT
   ) STRICT;`,
];

/** Marks a database as DataBridge's own ("DBrg"), to tell it from another program's. */
export const APPLICATION_ID = 0x44427267;
