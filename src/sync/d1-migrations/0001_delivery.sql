-- Delivery jobs and the per-episode, per-target ledger.
CREATE TABLE IF NOT EXISTS jobs (
  seq         INTEGER PRIMARY KEY AUTOINCREMENT,
  id          TEXT NOT NULL UNIQUE,
  episode_key TEXT NOT NULL,
  parent_key  TEXT NOT NULL,
  status      TEXT NOT NULL,
  job         TEXT NOT NULL,  -- the Job as JSON (no personal data beyond keys)
  bundle      BLOB NOT NULL,  -- gzip of the transaction Bundle JSON
  created_at  TEXT NOT NULL,
  updated_at  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, seq);
CREATE INDEX IF NOT EXISTS jobs_by_episode ON jobs (episode_key, seq);

CREATE TABLE IF NOT EXISTS ledger (
  episode_key TEXT NOT NULL,
  target      TEXT NOT NULL,
  record      TEXT NOT NULL,  -- LedgerRecord as JSON
  PRIMARY KEY (episode_key, target)
);
