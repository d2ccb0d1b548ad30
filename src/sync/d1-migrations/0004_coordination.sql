-- The bridge's coordination requests (Task) on primary treatment servers, as last read back
-- after a delivery: per tenant, episode ({clinic org number}/{episodeId}) and target
-- (primary.<org number>). `requests` is JSON of occasion, identifier value, status, priority,
-- due date, authoredOn and lastModified of each Task: no personal data, so kept in clear.
CREATE TABLE IF NOT EXISTS coordination (
  tenant      TEXT NOT NULL,
  episode_key TEXT NOT NULL,
  target      TEXT NOT NULL,
  read_at     TEXT NOT NULL,
  requests    TEXT NOT NULL,
  PRIMARY KEY (tenant, episode_key, target)
);
