-- Tenants: every job and ledger row belongs to the tenant of the caller that sent it, and only
-- that tenant reads, lists or replays it. An episode id is unique per tenant, so the ledger is
-- keyed by tenant too.
--
-- Rows from before tenancy: a job belongs to the tenant named after its recorded caller (each
-- caller's default tenant), or to the default tenant `local` when no caller was recorded; a
-- ledger row belongs to the tenant of the job whose content it records, else `local`.
ALTER TABLE jobs ADD COLUMN tenant TEXT NOT NULL DEFAULT 'local';
UPDATE jobs SET tenant = caller WHERE caller IS NOT NULL AND caller <> '';
CREATE INDEX IF NOT EXISTS jobs_by_tenant ON jobs (tenant, seq);
CREATE INDEX IF NOT EXISTS jobs_by_tenant_status ON jobs (tenant, status, seq);

-- SQLite cannot change a primary key in place: a new table, the rows copied, then renamed.
CREATE TABLE ledger_by_tenant (
  tenant      TEXT NOT NULL,
  episode_key TEXT NOT NULL,
  target      TEXT NOT NULL,
  record      TEXT NOT NULL,  -- LedgerRecord as JSON, encrypted (compact JWE) when written since
  PRIMARY KEY (tenant, episode_key, target)
);
INSERT INTO ledger_by_tenant (tenant, episode_key, target, record)
  SELECT COALESCE((SELECT j.tenant FROM jobs j WHERE j.seq = json_extract(l.record, '$.seq')), 'local'), l.episode_key, l.target, l.record
  FROM ledger l;
DROP TABLE ledger;
ALTER TABLE ledger_by_tenant RENAME TO ledger;
