-- TEN-6: the workspace schema version of each tenant database, as last recorded by Havre. The
-- truth is `havre_meta.schema_version` inside the tenant database (changed in the same transaction
-- as the migrations); this copy lets the control plane find who needs an upgrade without
-- connecting to every database, and is written after each successful upgrade.
ALTER TABLE tenant_databases ADD COLUMN schema_version int NOT NULL DEFAULT 0 CHECK (schema_version >= 0);
CREATE INDEX tenant_databases_schema_idx ON tenant_databases (schema_version) WHERE state IN ('pooled', 'assigned');
