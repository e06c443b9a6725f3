-- ahasd-replay results schema, version 2 (PRAGMA user_version = 2,
-- PRAGMA application_id = 0x41485344): what a new file holds. db.c makes
-- it with migration 1 (everything up to the views) and migration 2 (from
-- "Schema version 2" to the end), each verbatim.
-- Times in simulated seconds, energy in joules.

CREATE TABLE runs (
  id              INTEGER PRIMARY KEY,
  created         TEXT NOT NULL,      -- ISO-8601 UTC
  tool_version    TEXT NOT NULL,
  label           TEXT,               -- optional configuration name
  policy          TEXT NOT NULL,
  policy_version  TEXT NOT NULL,
  policy_params   TEXT NOT NULL,      -- "k=v;k=v", defaults filled in
  policy_path     TEXT NOT NULL,
  drafter         TEXT NOT NULL,
  drafter_version TEXT NOT NULL,
  drafter_params  TEXT NOT NULL,
  drafter_path    TEXT NOT NULL,
  hw_preset       TEXT NOT NULL,
  hw_config       TEXT NOT NULL,      -- every constant, "key = value" lines
  trace_path      TEXT NOT NULL,
  trace_sha256    TEXT NOT NULL,
  draft_model     TEXT NOT NULL,
  target_model    TEXT NOT NULL,
  retargeted_from TEXT,               -- "draft:target" of the trace, or NULL
  sampled         INTEGER NOT NULL,
  seed            INTEGER NOT NULL,
  queue_capacity  INTEGER NOT NULL,
  max_draft       INTEGER NOT NULL,
  wall_s          REAL                -- wall-clock seconds of the replay
);

-- Every metric of a run by name (standard ones and plugin counters).
CREATE TABLE metrics (
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  name   TEXT NOT NULL,
  value  REAL NOT NULL,
  PRIMARY KEY (run_id, name)
) WITHOUT ROWID;

CREATE TABLE devices (
  run_id   INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  idx      INTEGER NOT NULL,
  name     TEXT NOT NULL,
  busy_s   REAL NOT NULL,
  idle_s   REAL NOT NULL,
  energy_j REAL NOT NULL,
  PRIMARY KEY (run_id, idx)
) WITHOUT ROWID;

CREATE TABLE sequences (
  run_id        INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  seq           INTEGER NOT NULL,
  prompt_len    INTEGER NOT NULL,
  committed     INTEGER NOT NULL,
  time_s        REAL NOT NULL,
  energy_j      REAL NOT NULL,
  drafted       INTEGER NOT NULL,
  accepted      INTEGER NOT NULL,
  wasted        INTEGER NOT NULL,
  preverified   INTEGER NOT NULL,
  batches       INTEGER NOT NULL,
  verifications INTEGER NOT NULL,
  PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;

-- Optional per-task events (ahasd-replay --events), for timelines.
CREATE TABLE events (
  run_id  INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  idx     INTEGER NOT NULL,           -- order of recording
  device  INTEGER NOT NULL,           -- devices.idx
  kind    TEXT NOT NULL,              -- draft|verify|preverify|switch|transfer|idle
  start_s REAL NOT NULL,
  end_s   REAL NOT NULL,
  tokens  INTEGER NOT NULL,
  seq     INTEGER NOT NULL,
  batch   INTEGER NOT NULL,
  outcome TEXT NOT NULL,              -- none|accepted|rejected|wasted
  PRIMARY KEY (run_id, idx)
) WITHOUT ROWID;

-- One row per run with the headline metrics as columns.
CREATE VIEW run_summary AS
SELECT r.id AS run_id, r.label, r.policy, r.drafter, r.hw_preset,
       r.draft_model || ':' || r.target_model AS models, r.trace_path,
       (SELECT value FROM metrics WHERE run_id = r.id AND name = 'committed')    AS committed,
       (SELECT value FROM metrics WHERE run_id = r.id AND name = 'time_s')       AS time_s,
       (SELECT value FROM metrics WHERE run_id = r.id AND name = 'tokens_per_s') AS tokens_per_s,
       (SELECT value FROM metrics WHERE run_id = r.id AND name = 'energy_j')     AS energy_j,
       (SELECT value FROM metrics WHERE run_id = r.id AND name = 'tokens_per_j') AS tokens_per_j,
       (SELECT value FROM metrics WHERE run_id = r.id AND name = 'acceptance_rate') AS acceptance_rate,
       (SELECT value FROM metrics WHERE run_id = r.id AND name = 'mean_draft_len')  AS mean_draft_len
FROM runs r;

-- Throughput and energy efficiency of each run relative to the sync-policy
-- run on the same trace, drafter, models and hardware preset (most recent).
CREATE VIEW speedup_vs_sync AS
SELECT s.run_id, s.policy, s.drafter, s.hw_preset, s.models,
       s.tokens_per_s / b.tokens_per_s AS speedup,
       s.tokens_per_j / b.tokens_per_j AS energy_gain
FROM run_summary s
JOIN run_summary b
  ON b.run_id = (SELECT max(run_id) FROM run_summary x
                 WHERE x.policy = 'sync' AND x.drafter = s.drafter
                   AND x.hw_preset = s.hw_preset AND x.models = s.models
                   AND x.trace_path = s.trace_path);

-- Mean per policy x drafter x preset.
CREATE VIEW policy_summary AS
SELECT policy, drafter, hw_preset, count(*) AS runs,
       avg(tokens_per_s) AS tokens_per_s, avg(tokens_per_j) AS tokens_per_j,
       avg(acceptance_rate) AS acceptance_rate
FROM run_summary GROUP BY policy, drafter, hw_preset;

-- Schema version 2: run ids handed out before a run is written, and
-- the runs that failed.

-- The last run id db_run_begin handed out (one row, id 1). A run's rows
-- are written in one transaction when it ends; its id is taken here when
-- it begins, so ids never repeat, even for runs that were rolled back.
CREATE TABLE run_ids (
  id   INTEGER PRIMARY KEY CHECK (id = 1),
  last INTEGER NOT NULL
);
INSERT INTO run_ids (id, last) VALUES (1, (SELECT coalesce(max(id), 0) FROM runs));

-- One row per run that failed (db_record_failure): a sweep records it and
-- goes on with the next configuration.
CREATE TABLE failures (
  id         INTEGER PRIMARY KEY,
  created    TEXT NOT NULL,         -- ISO-8601 UTC
  run_id     INTEGER,               -- id db_run_begin gave it, or NULL; never in runs
  label      TEXT,                  -- configuration name
  trace_path TEXT,
  hw_preset  TEXT,
  policy     TEXT,                  -- policy plugin (name or path)
  drafter    TEXT,                  -- drafter plugin (name or path)
  config     TEXT,                  -- the rest of the configuration, free text
  plugin     TEXT,                  -- the plugin at fault, or NULL
  hook       TEXT,                  -- the hook it was in, or NULL
  signal     INTEGER,               -- the signal that ended the run, or NULL
  message    TEXT NOT NULL
);
