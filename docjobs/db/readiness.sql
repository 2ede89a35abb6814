-- Start-up checks of the long-running commands, in the same block format as queries.sql.
-- Only docjobs.db.readiness reads them.

-- schema_ledger_exists --
-- Whether this database holds docjobs' ledger of applied migrations (absent: never migrated).
SELECT to_regclass('docjobs_migration') IS NOT NULL AS present;

-- schema_versions_applied --
-- The versions of docjobs' migrations applied to this database.
SELECT version FROM docjobs_migration;
