-- ahasd-replay results schema, version 4 (PRAGMA user_version = 4,
-- PRAGMA application_id = 0x41485344): what a new file holds. db.c makes
-- it with migration 1 (everything up to the views), migration 2 (from
-- "Schema version 2"), migration 3 (from "Schema version 3") and
-- migration 4 (from "Schema version 4" to the end), each verbatim.
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

-- Schema version 3: every run's configuration as rows, each run's
-- baseline matched on all of it, and 95% bootstrap intervals
-- (db/SCHEMA.md: Configuration, Baselines, Intervals).

-- A sequence's drafted tokens in the batches it closed; NULL in rows
-- written before version 3.
ALTER TABLE sequences ADD COLUMN batch_tokens INTEGER;

-- A run's resolved configuration, one row per key: policy, policy.K,
-- drafter, drafter.K, hw.preset, hw.K, model.draft, model.target,
-- model.retargeted_from, trace.path, trace.sha256, seed, queue_capacity,
-- max_draft. The value is INTEGER, REAL or TEXT, as it reads.
CREATE TABLE config (
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  key    TEXT NOT NULL,
  value,
  PRIMARY KEY (run_id, key)
) WITHOUT ROWID;

-- Every key a run has had: the configuration columns of run_table.
CREATE TABLE config_keys (
  key TEXT PRIMARY KEY
) WITHOUT ROWID;

-- What a baseline is matched on: SHA-256 of the run's "key=value" lines
-- in key order, of every row but policy and policy.* (match_key) and of
-- those (policy_key).
CREATE TABLE run_match (
  run_id     INTEGER PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
  policy     TEXT NOT NULL,
  match_key  TEXT NOT NULL,
  policy_key TEXT NOT NULL
);
CREATE INDEX run_match_by_key ON run_match (match_key, policy);

-- The policies runs are compared with (the comparisons view); sync always
-- is. A policy added here gets paired intervals from then on.
CREATE TABLE baselines (
  policy TEXT PRIMARY KEY
) WITHOUT ROWID;
INSERT INTO baselines (policy) VALUES ('sync');

-- 95% bootstrap intervals of a run's headline metrics (tokens_per_s,
-- tokens_per_j, acceptance_rate, mean_draft_len), over its sequences.
CREATE TABLE intervals (
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  name   TEXT NOT NULL,
  lo     REAL NOT NULL,
  hi     REAL NOT NULL,
  PRIMARY KEY (run_id, name)
) WITHOUT ROWID;

-- 95% paired bootstrap intervals of a run's metric over its baseline's,
-- the same sequences resampled for both.
CREATE TABLE paired_intervals (
  run_id          INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  baseline_run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  name            TEXT NOT NULL,
  ratio           REAL NOT NULL,
  lo              REAL NOT NULL,
  hi              REAL NOT NULL,
  PRIMARY KEY (run_id, baseline_run_id, name)
) WITHOUT ROWID;
CREATE INDEX paired_intervals_by_baseline ON paired_intervals (baseline_run_id);

DROP VIEW speedup_vs_sync;
DROP VIEW policy_summary;
DROP VIEW run_summary;

-- One row per run with the headline metrics and their intervals.
CREATE VIEW run_summary AS
SELECT r.id AS run_id, r.label, r.policy, r.drafter, r.hw_preset,
       r.draft_model || ':' || r.target_model AS models, r.trace_path,
       (SELECT value FROM metrics WHERE run_id = r.id AND name = 'committed')    AS committed,
       (SELECT value FROM metrics WHERE run_id = r.id AND name = 'time_s')       AS time_s,
       (SELECT value FROM metrics WHERE run_id = r.id AND name = 'tokens_per_s') AS tokens_per_s,
       (SELECT value FROM metrics WHERE run_id = r.id AND name = 'energy_j')     AS energy_j,
       (SELECT value FROM metrics WHERE run_id = r.id AND name = 'tokens_per_j') AS tokens_per_j,
       (SELECT value FROM metrics WHERE run_id = r.id AND name = 'acceptance_rate') AS acceptance_rate,
       (SELECT value FROM metrics WHERE run_id = r.id AND name = 'mean_draft_len')  AS mean_draft_len,
       (SELECT lo FROM intervals WHERE run_id = r.id AND name = 'tokens_per_s')    AS tokens_per_s_lo,
       (SELECT hi FROM intervals WHERE run_id = r.id AND name = 'tokens_per_s')    AS tokens_per_s_hi,
       (SELECT lo FROM intervals WHERE run_id = r.id AND name = 'tokens_per_j')    AS tokens_per_j_lo,
       (SELECT hi FROM intervals WHERE run_id = r.id AND name = 'tokens_per_j')    AS tokens_per_j_hi,
       (SELECT lo FROM intervals WHERE run_id = r.id AND name = 'acceptance_rate') AS acceptance_rate_lo,
       (SELECT hi FROM intervals WHERE run_id = r.id AND name = 'acceptance_rate') AS acceptance_rate_hi,
       (SELECT lo FROM intervals WHERE run_id = r.id AND name = 'mean_draft_len')  AS mean_draft_len_lo,
       (SELECT hi FROM intervals WHERE run_id = r.id AND name = 'mean_draft_len')  AS mean_draft_len_hi
FROM runs r;

-- For every run and every baseline policy (the baselines table, and
-- sync), the run it is compared with: the latest run of that policy with
-- the same match_key, or NULL when there is none or when such runs differ
-- in the policy's own parameters (the answer would depend on which).
CREATE VIEW baseline_runs AS
SELECT m.run_id, b.policy AS baseline_policy,
       CASE WHEN (SELECT count(DISTINCT x.policy_key) FROM run_match x
                  WHERE x.match_key = m.match_key AND x.policy = b.policy) = 1
            THEN (SELECT max(x.run_id) FROM run_match x
                  WHERE x.match_key = m.match_key AND x.policy = b.policy)
       END AS baseline_run_id
FROM run_match m
CROSS JOIN (SELECT policy FROM baselines UNION SELECT 'sync') b;

-- Every run against every baseline policy: ratios of tokens/s (speedup)
-- and tokens/J (energy_gain) with their paired 95% intervals; *_differs is
-- 1 when the interval excludes 1, 0 when the two are not distinguishable,
-- NULL without an interval. NULL throughout when there is no baseline.
CREATE VIEW comparisons AS
SELECT s.run_id, s.policy, s.drafter, s.hw_preset, s.models,
       bp.policy AS baseline_policy, m.baseline_run_id,
       s.tokens_per_s / b.tokens_per_s AS speedup,
       ps.lo AS speedup_lo, ps.hi AS speedup_hi,
       CASE WHEN ps.lo IS NULL THEN NULL
            WHEN ps.lo > 1 OR ps.hi < 1 THEN 1 ELSE 0 END AS speedup_differs,
       s.tokens_per_j / b.tokens_per_j AS energy_gain,
       pe.lo AS energy_gain_lo, pe.hi AS energy_gain_hi,
       CASE WHEN pe.lo IS NULL THEN NULL
            WHEN pe.lo > 1 OR pe.hi < 1 THEN 1 ELSE 0 END AS energy_gain_differs
FROM run_summary s
CROSS JOIN (SELECT policy FROM baselines UNION SELECT 'sync') bp
LEFT JOIN baseline_runs m
  ON m.run_id = s.run_id AND m.baseline_policy = bp.policy
LEFT JOIN run_summary b ON b.run_id = m.baseline_run_id
LEFT JOIN paired_intervals ps
  ON ps.run_id = s.run_id AND ps.baseline_run_id = m.baseline_run_id
 AND ps.name = 'tokens_per_s'
LEFT JOIN paired_intervals pe
  ON pe.run_id = s.run_id AND pe.baseline_run_id = m.baseline_run_id
 AND pe.name = 'tokens_per_j';

-- Every run against the sync run of the same configuration.
CREATE VIEW speedup_vs_sync AS
SELECT run_id, policy, drafter, hw_preset, models, speedup, energy_gain,
       baseline_run_id, speedup_lo, speedup_hi, speedup_differs,
       energy_gain_lo, energy_gain_hi, energy_gain_differs
FROM comparisons WHERE baseline_policy = 'sync';

-- Mean per policy x drafter x preset.
CREATE VIEW policy_summary AS
SELECT policy, drafter, hw_preset, count(*) AS runs,
       avg(tokens_per_s) AS tokens_per_s, avg(tokens_per_j) AS tokens_per_j,
       avg(acceptance_rate) AS acceptance_rate
FROM run_summary GROUP BY policy, drafter, hw_preset;

-- One row per run: its configuration keys as columns (db.c makes this
-- view again, one column per key of config_keys, whenever a run brings a
-- new key; here, with none), headline metrics, intervals and the
-- comparison with sync.
CREATE VIEW run_table AS
SELECT r.id AS run_id, r.label, r.created,
       s.committed, s.time_s,
       s.tokens_per_s, s.tokens_per_s_lo, s.tokens_per_s_hi,
       s.energy_j,
       s.tokens_per_j, s.tokens_per_j_lo, s.tokens_per_j_hi,
       s.acceptance_rate, s.acceptance_rate_lo, s.acceptance_rate_hi,
       s.mean_draft_len, s.mean_draft_len_lo, s.mean_draft_len_hi,
       v.baseline_run_id AS sync_run_id,
       v.speedup, v.speedup_lo, v.speedup_hi, v.speedup_differs,
       v.energy_gain, v.energy_gain_lo, v.energy_gain_hi, v.energy_gain_differs
FROM runs r
JOIN run_summary s ON s.run_id = r.id
LEFT JOIN speedup_vs_sync v ON v.run_id = r.id;

-- Schema version 4: the silicon area a configuration adds, and the
-- Pareto front of every study (db/SCHEMA.md: Area, Pareto fronts).

-- What a configuration adds in area, by its configuration rows: a run
-- whose config has this key with this value counts mm2. The rows here
-- are AHASD's units at 28 nm as the paper gives them (Ma et al., "AHASD",
-- DAC 2026: EDC 0.05 mm2, TVC 0.03, queues 0.01, AAU 1.25; 2.68% of the
-- DRAM die): the AAU in the PIM, EDC and TVC when the policy has them on,
-- and the queues between the devices of the task-level policies. Rows
-- for units of one's own are added the same way.
CREATE TABLE area_costs (
  key    TEXT NOT NULL,       -- a configuration key (config.key)
  value  NOT NULL,            -- the value that costs, as config stores it
  unit   TEXT NOT NULL,       -- what the area is of
  mm2    REAL NOT NULL,
  source TEXT,                -- where the number comes from
  PRIMARY KEY (key, value)
) WITHOUT ROWID;
INSERT INTO area_costs (key, value, unit, mm2, source) VALUES
  ('hw.aau', 1, 'AAU', 1.25, 'AHASD paper (DAC 2026), 28 nm'),
  ('policy.edc', 1, 'EDC', 0.05, 'AHASD paper (DAC 2026), 28 nm'),
  ('policy.tvc', 1, 'TVC', 0.03, 'AHASD paper (DAC 2026), 28 nm'),
  ('policy', 'ahasd', 'queues', 0.01, 'AHASD paper (DAC 2026), 28 nm'),
  ('policy', 'async', 'queues', 0.01, 'AHASD paper (DAC 2026), 28 nm');

-- Every run's area: area_costs summed over its configuration rows (0
-- when none applies).
CREATE VIEW run_area AS
SELECT r.id AS run_id,
       (SELECT coalesce(sum(a.mm2), 0) FROM area_costs a
        JOIN config c ON c.run_id = r.id AND c.key = a.key
                     AND c.value = a.value) AS area_mm2
FROM runs r;

-- The Pareto front of throughput against energy efficiency in every
-- study (the runs of one label; the runs without a label are one study
-- too). on_front is 1 when no run of the study has at least the run's
-- tokens_per_s and tokens_per_j and more of one of them (equal runs are
-- on it together); on_front_area is the same with area_mm2 as a third
-- cost, to be no larger (smaller counts as better too). Runs without
-- both metrics are left out.
CREATE VIEW pareto AS
WITH p AS (
  SELECT s.run_id, s.label AS study, s.policy, s.tokens_per_s,
         s.tokens_per_j, a.area_mm2
  FROM run_summary s JOIN run_area a ON a.run_id = s.run_id
  WHERE s.tokens_per_s IS NOT NULL AND s.tokens_per_j IS NOT NULL
),
-- by the best tokens_per_j of the runs faster than it and of the runs
-- as fast, in the study and in its runs of the same area
w AS (
  SELECT p.*,
         max(tokens_per_j) OVER (PARTITION BY study ORDER BY tokens_per_s DESC
           GROUPS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS faster_j,
         max(tokens_per_j) OVER (PARTITION BY study, tokens_per_s) AS same_j,
         max(tokens_per_j) OVER (PARTITION BY study, area_mm2
           ORDER BY tokens_per_s DESC
           GROUPS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS faster_j_a,
         max(tokens_per_j) OVER (PARTITION BY study, area_mm2, tokens_per_s)
           AS same_j_a
  FROM p
),
f AS (
  SELECT run_id, study, policy, tokens_per_s, tokens_per_j, area_mm2,
         (faster_j IS NULL OR tokens_per_j > faster_j)
           AND tokens_per_j = same_j AS on_front,
         (faster_j_a IS NULL OR tokens_per_j > faster_j_a)
           AND tokens_per_j = same_j_a AS in_class
  FROM w
),
-- a run beaten by a smaller one is beaten by one on the front of its
-- own area, so those are the only ones to look at
c AS (
  SELECT study, area_mm2, tokens_per_s, tokens_per_j FROM f WHERE in_class
)
SELECT run_id, study, policy, tokens_per_s, tokens_per_j, area_mm2,
       on_front,
       in_class AND NOT EXISTS (
         SELECT 1 FROM c WHERE c.study IS f.study
           AND c.area_mm2 < f.area_mm2
           AND c.tokens_per_s >= f.tokens_per_s
           AND c.tokens_per_j >= f.tokens_per_j) AS on_front_area
FROM f;
