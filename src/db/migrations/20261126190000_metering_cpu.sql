-- MET-1: CPU spent by Havre's own processes on a tenant's requests (attributed, see
-- src/modules/metering/cpu-attribution.ts), added per Paris day by each node.
ALTER TABLE usage_days ADD COLUMN havre_cpu_ms double precision NOT NULL DEFAULT 0 CHECK (havre_cpu_ms >= 0);
