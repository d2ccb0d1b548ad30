-- Who submitted each job (a later tenant check filters on it), and when a job's Bundle was
-- purged under the retention rule. A purged job keeps its row (hashes, per-target results);
-- its bundle column then holds an empty blob.
ALTER TABLE jobs ADD COLUMN caller TEXT;
ALTER TABLE jobs ADD COLUMN purged_at TEXT;
CREATE INDEX IF NOT EXISTS jobs_by_caller ON jobs (caller, seq);
-- Finished jobs whose Bundle is still held, by age: exactly what the retention purge scans.
CREATE INDEX IF NOT EXISTS jobs_unpurged ON jobs (updated_at) WHERE purged_at IS NULL AND status IN ('delivered', 'failed', 'dead');
