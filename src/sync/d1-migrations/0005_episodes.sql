-- The latest version of each episode per tenant, which the coordination summary is built from
-- (src/sync/episodes.ts). `episode` is the parsed episode as JSON, encrypted (compact JWE bound to
-- its tenant and episode key). In clear only what finds a row: tenant, episode key
-- ({clinic org number}/{episodeId}), episode id, the parent's person key (an HMAC pseudonym of the
-- national id), when it was stored, and until when it is kept before its retention period starts
-- (NULL: kept, while the episode runs or its consent is valid without an expiry).
CREATE TABLE IF NOT EXISTS episodes (
  tenant      TEXT NOT NULL,
  episode_key TEXT NOT NULL,
  episode_id  TEXT NOT NULL,
  person_key  TEXT NOT NULL,
  stored_at   TEXT NOT NULL,
  kept_until  TEXT,
  episode     TEXT NOT NULL,
  PRIMARY KEY (tenant, episode_key)
);
CREATE INDEX IF NOT EXISTS episodes_by_person ON episodes (person_key);
CREATE INDEX IF NOT EXISTS episodes_by_id ON episodes (tenant, episode_id);
-- Exactly what the retention purge scans: episodes no longer kept, by when they stopped being.
CREATE INDEX IF NOT EXISTS episodes_expiring ON episodes (kept_until) WHERE kept_until IS NOT NULL;
