/* db.c - results database (SQLite). See db.h and db/SCHEMA.md.
 *
 * Opening checks the file before anything is written to it: not SQLite,
 * another application's database and a newer schema are refused with the
 * file left byte-for-byte unchanged (the header is read in one statement,
 * so from one snapshot). Only then is WAL switched on and the pending
 * migrations applied, all in one BEGIN IMMEDIATE transaction together with
 * PRAGMA user_version, after the header has been read and checked again
 * under that lock.
 *
 * A run takes its id at db_run_begin() (a moment's lock on run_ids), keeps
 * its rows in struct db (memory up to rec_max records, an unlinked spill
 * file past that) and writes them all at db_run_commit() in one BEGIN
 * IMMEDIATE transaction; any error rolls it back. Between the two the
 * file is not locked.
 */
#include "db.h"
#include "db_config.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#define DB_DEFAULT_BUSY_MS      120000
#define DB_DEFAULT_MAX_EVENTS   1000000u
#define DB_DEFAULT_BUFFER_BYTES (4u << 20)
#define DB_MAX_DEV_NAME         63

/* Migrations 1 to 4 are db/schema.sql verbatim, migrations 1, 3 and 4 split
 * in parts only because ISO C limits a string literal to 4095 characters
 * (tests/test_db.c checks that a database made here, and one upgraded from
 * version 1, have exactly the objects schema.sql creates; run_table aside,
 * which db.c makes again as configuration keys appear). A released
 * migration is never edited. */
static const char *const schema_v1[] = {
	"-- ahasd-replay results schema, version 1 (PRAGMA user_version = 1,\n"
	"-- PRAGMA application_id = 0x41485344). db.c applies this as "
	"migration 1.\n"
	"-- Times in simulated seconds, energy in joules.\n"
	"\n"
	"CREATE TABLE runs (\n"
	"  id              INTEGER PRIMARY KEY,\n"
	"  created         TEXT NOT NULL,      -- ISO-8601 UTC\n"
	"  tool_version    TEXT NOT NULL,\n"
	"  label           TEXT,               -- optional configuration name\n"
	"  policy          TEXT NOT NULL,\n"
	"  policy_version  TEXT NOT NULL,\n"
	"  policy_params   TEXT NOT NULL,      -- \"k=v;k=v\", defaults filled "
	"in\n"
	"  policy_path     TEXT NOT NULL,\n"
	"  drafter         TEXT NOT NULL,\n"
	"  drafter_version TEXT NOT NULL,\n"
	"  drafter_params  TEXT NOT NULL,\n"
	"  drafter_path    TEXT NOT NULL,\n"
	"  hw_preset       TEXT NOT NULL,\n"
	"  hw_config       TEXT NOT NULL,      -- every constant, \"key = "
	"value\" lines\n"
	"  trace_path      TEXT NOT NULL,\n"
	"  trace_sha256    TEXT NOT NULL,\n"
	"  draft_model     TEXT NOT NULL,\n"
	"  target_model    TEXT NOT NULL,\n"
	"  retargeted_from TEXT,               -- \"draft:target\" of the "
	"trace, or NULL\n"
	"  sampled         INTEGER NOT NULL,\n"
	"  seed            INTEGER NOT NULL,\n"
	"  queue_capacity  INTEGER NOT NULL,\n"
	"  max_draft       INTEGER NOT NULL,\n"
	"  wall_s          REAL                -- wall-clock seconds of the "
	"replay\n"
	");\n"
	"\n"
	"-- Every metric of a run by name (standard ones and plugin "
	"counters).\n"
	"CREATE TABLE metrics (\n"
	"  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,\n"
	"  name   TEXT NOT NULL,\n"
	"  value  REAL NOT NULL,\n"
	"  PRIMARY KEY (run_id, name)\n"
	") WITHOUT ROWID;\n"
	"\n",
	"CREATE TABLE devices (\n"
	"  run_id   INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,\n"
	"  idx      INTEGER NOT NULL,\n"
	"  name     TEXT NOT NULL,\n"
	"  busy_s   REAL NOT NULL,\n"
	"  idle_s   REAL NOT NULL,\n"
	"  energy_j REAL NOT NULL,\n"
	"  PRIMARY KEY (run_id, idx)\n"
	") WITHOUT ROWID;\n"
	"\n"
	"CREATE TABLE sequences (\n"
	"  run_id        INTEGER NOT NULL REFERENCES runs(id) ON DELETE "
	"CASCADE,\n"
	"  seq           INTEGER NOT NULL,\n"
	"  prompt_len    INTEGER NOT NULL,\n"
	"  committed     INTEGER NOT NULL,\n"
	"  time_s        REAL NOT NULL,\n"
	"  energy_j      REAL NOT NULL,\n"
	"  drafted       INTEGER NOT NULL,\n"
	"  accepted      INTEGER NOT NULL,\n"
	"  wasted        INTEGER NOT NULL,\n"
	"  preverified   INTEGER NOT NULL,\n"
	"  batches       INTEGER NOT NULL,\n"
	"  verifications INTEGER NOT NULL,\n"
	"  PRIMARY KEY (run_id, seq)\n"
	") WITHOUT ROWID;\n"
	"\n"
	"-- Optional per-task events (ahasd-replay --events), for timelines.\n"
	"CREATE TABLE events (\n"
	"  run_id  INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,\n"
	"  idx     INTEGER NOT NULL,           -- order of recording\n"
	"  device  INTEGER NOT NULL,           -- devices.idx\n"
	"  kind    TEXT NOT NULL,              -- "
	"draft|verify|preverify|switch|transfer|idle\n"
	"  start_s REAL NOT NULL,\n"
	"  end_s   REAL NOT NULL,\n"
	"  tokens  INTEGER NOT NULL,\n"
	"  seq     INTEGER NOT NULL,\n"
	"  batch   INTEGER NOT NULL,\n"
	"  outcome TEXT NOT NULL,              -- "
	"none|accepted|rejected|wasted\n"
	"  PRIMARY KEY (run_id, idx)\n"
	") WITHOUT ROWID;\n"
	"\n",
	"-- One row per run with the headline metrics as columns.\n"
	"CREATE VIEW run_summary AS\n"
	"SELECT r.id AS run_id, r.label, r.policy, r.drafter, r.hw_preset,\n"
	"       r.draft_model || ':' || r.target_model AS models, "
	"r.trace_path,\n"
	"       (SELECT value FROM metrics WHERE run_id = r.id AND name = "
	"'committed')    AS committed,\n"
	"       (SELECT value FROM metrics WHERE run_id = r.id AND name = "
	"'time_s')       AS time_s,\n"
	"       (SELECT value FROM metrics WHERE run_id = r.id AND name = "
	"'tokens_per_s') AS tokens_per_s,\n"
	"       (SELECT value FROM metrics WHERE run_id = r.id AND name = "
	"'energy_j')     AS energy_j,\n"
	"       (SELECT value FROM metrics WHERE run_id = r.id AND name = "
	"'tokens_per_j') AS tokens_per_j,\n"
	"       (SELECT value FROM metrics WHERE run_id = r.id AND name = "
	"'acceptance_rate') AS acceptance_rate,\n"
	"       (SELECT value FROM metrics WHERE run_id = r.id AND name = "
	"'mean_draft_len')  AS mean_draft_len\n"
	"FROM runs r;\n"
	"\n"
	"-- Throughput and energy efficiency of each run relative to the "
	"sync-policy\n"
	"-- run on the same trace, drafter, models and hardware preset (most "
	"recent).\n"
	"CREATE VIEW speedup_vs_sync AS\n"
	"SELECT s.run_id, s.policy, s.drafter, s.hw_preset, s.models,\n"
	"       s.tokens_per_s / b.tokens_per_s AS speedup,\n"
	"       s.tokens_per_j / b.tokens_per_j AS energy_gain\n"
	"FROM run_summary s\n"
	"JOIN run_summary b\n"
	"  ON b.run_id = (SELECT max(run_id) FROM run_summary x\n"
	"                 WHERE x.policy = 'sync' AND x.drafter = s.drafter\n"
	"                   AND x.hw_preset = s.hw_preset AND x.models = "
	"s.models\n"
	"                   AND x.trace_path = s.trace_path);\n"
	"\n"
	"-- Mean per policy x drafter x preset.\n"
	"CREATE VIEW policy_summary AS\n"
	"SELECT policy, drafter, hw_preset, count(*) AS runs,\n"
	"       avg(tokens_per_s) AS tokens_per_s, avg(tokens_per_j) AS "
	"tokens_per_j,\n"
	"       avg(acceptance_rate) AS acceptance_rate\n"
	"FROM run_summary GROUP BY policy, drafter, hw_preset;\n",
	NULL
};

static const char *const schema_v2[] = {
	"-- Schema version 2: run ids handed out before a run is written, and\n"
	"-- the runs that failed.\n"
	"\n"
	"-- The last run id db_run_begin handed out (one row, id 1). A run's "
	"rows\n"
	"-- are written in one transaction when it ends; its id is taken here "
	"when\n"
	"-- it begins, so ids never repeat, even for runs that were rolled "
	"back.\n"
	"CREATE TABLE run_ids (\n"
	"  id   INTEGER PRIMARY KEY CHECK (id = 1),\n"
	"  last INTEGER NOT NULL\n"
	");\n"
	"INSERT INTO run_ids (id, last) VALUES (1, (SELECT coalesce(max(id), "
	"0) FROM runs));\n"
	"\n"
	"-- One row per run that failed (db_record_failure): a sweep records "
	"it and\n"
	"-- goes on with the next configuration.\n"
	"CREATE TABLE failures (\n"
	"  id         INTEGER PRIMARY KEY,\n"
	"  created    TEXT NOT NULL,         -- ISO-8601 UTC\n"
	"  run_id     INTEGER,               -- id db_run_begin gave it, or "
	"NULL; never in runs\n"
	"  label      TEXT,                  -- configuration name\n"
	"  trace_path TEXT,\n"
	"  hw_preset  TEXT,\n"
	"  policy     TEXT,                  -- policy plugin (name or path)\n"
	"  drafter    TEXT,                  -- drafter plugin (name or path)\n"
	"  config     TEXT,                  -- the rest of the configuration, "
	"free text\n"
	"  plugin     TEXT,                  -- the plugin at fault, or NULL\n"
	"  hook       TEXT,                  -- the hook it was in, or NULL\n"
	"  signal     INTEGER,               -- the signal that ended the run, "
	"or NULL\n"
	"  message    TEXT NOT NULL\n"
	");\n",
	NULL
};

/* Migration 3 ends with run_table as db_config.h defines it, with no
 * configuration column; dbc_backfill then fills config and run_match for
 * the runs already stored and makes run_table again. */
static const char *const schema_v3[] = {
	"\n"
	"-- Schema version 3: every run's configuration as rows, each run's\n"
	"-- baseline matched on all of it, and 95% bootstrap intervals\n"
	"-- (db/SCHEMA.md: Configuration, Baselines, Intervals).\n"
	"\n"
	"-- A sequence's drafted tokens in the batches it closed; NULL in "
	"rows\n"
	"-- written before version 3.\n"
	"ALTER TABLE sequences ADD COLUMN batch_tokens INTEGER;\n"
	"\n"
	"-- A run's resolved configuration, one row per key: policy, "
	"policy.K,\n"
	"-- drafter, drafter.K, hw.preset, hw.K, model.draft, model.target,\n"
	"-- model.retargeted_from, trace.path, trace.sha256, seed, "
	"queue_capacity,\n"
	"-- max_draft. The value is INTEGER, REAL or TEXT, as it reads.\n"
	"CREATE TABLE config (\n"
	"  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,\n"
	"  key    TEXT NOT NULL,\n"
	"  value,\n"
	"  PRIMARY KEY (run_id, key)\n"
	") WITHOUT ROWID;\n"
	"\n"
	"-- Every key a run has had: the configuration columns of run_table.\n"
	"CREATE TABLE config_keys (\n"
	"  key TEXT PRIMARY KEY\n"
	") WITHOUT ROWID;\n"
	"\n"
	"-- What a baseline is matched on: SHA-256 of the run's \"key=value\" "
	"lines\n"
	"-- in key order, of every row but policy and policy.* (match_key) and "
	"of\n"
	"-- those (policy_key).\n"
	"CREATE TABLE run_match (\n"
	"  run_id     INTEGER PRIMARY KEY REFERENCES runs(id) ON DELETE "
	"CASCADE,\n"
	"  policy     TEXT NOT NULL,\n"
	"  match_key  TEXT NOT NULL,\n"
	"  policy_key TEXT NOT NULL\n"
	");\n"
	"CREATE INDEX run_match_by_key ON run_match (match_key, policy);\n"
	"\n"
	"-- The policies runs are compared with (the comparisons view); sync "
	"always\n"
	"-- is. A policy added here gets paired intervals from then on.\n"
	"CREATE TABLE baselines (\n"
	"  policy TEXT PRIMARY KEY\n"
	") WITHOUT ROWID;\n"
	"INSERT INTO baselines (policy) VALUES ('sync');\n"
	"\n"
	"-- 95% bootstrap intervals of a run's headline metrics "
	"(tokens_per_s,\n"
	"-- tokens_per_j, acceptance_rate, mean_draft_len), over its "
	"sequences.\n"
	"CREATE TABLE intervals (\n"
	"  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,\n"
	"  name   TEXT NOT NULL,\n"
	"  lo     REAL NOT NULL,\n"
	"  hi     REAL NOT NULL,\n"
	"  PRIMARY KEY (run_id, name)\n"
	") WITHOUT ROWID;\n"
	"\n"
	"-- 95% paired bootstrap intervals of a run's metric over its "
	"baseline's,\n"
	"-- the same sequences resampled for both.\n"
	"CREATE TABLE paired_intervals (\n"
	"  run_id          INTEGER NOT NULL REFERENCES runs(id) ON DELETE "
	"CASCADE,\n"
	"  baseline_run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE "
	"CASCADE,\n"
	"  name            TEXT NOT NULL,\n"
	"  ratio           REAL NOT NULL,\n"
	"  lo              REAL NOT NULL,\n"
	"  hi              REAL NOT NULL,\n"
	"  PRIMARY KEY (run_id, baseline_run_id, name)\n"
	") WITHOUT ROWID;\n"
	"CREATE INDEX paired_intervals_by_baseline ON paired_intervals "
	"(baseline_run_id);\n"
	"\n"
	"DROP VIEW speedup_vs_sync;\n"
	"DROP VIEW policy_summary;\n"
	"DROP VIEW run_summary;\n",
	"\n"
	"-- One row per run with the headline metrics and their intervals.\n"
	"CREATE VIEW run_summary AS\n"
	"SELECT r.id AS run_id, r.label, r.policy, r.drafter, r.hw_preset,\n"
	"       r.draft_model || ':' || r.target_model AS models, "
	"r.trace_path,\n"
	"       (SELECT value FROM metrics WHERE run_id = r.id AND name = "
	"'committed')    AS committed,\n"
	"       (SELECT value FROM metrics WHERE run_id = r.id AND name = "
	"'time_s')       AS time_s,\n"
	"       (SELECT value FROM metrics WHERE run_id = r.id AND name = "
	"'tokens_per_s') AS tokens_per_s,\n"
	"       (SELECT value FROM metrics WHERE run_id = r.id AND name = "
	"'energy_j')     AS energy_j,\n"
	"       (SELECT value FROM metrics WHERE run_id = r.id AND name = "
	"'tokens_per_j') AS tokens_per_j,\n"
	"       (SELECT value FROM metrics WHERE run_id = r.id AND name = "
	"'acceptance_rate') AS acceptance_rate,\n"
	"       (SELECT value FROM metrics WHERE run_id = r.id AND name = "
	"'mean_draft_len')  AS mean_draft_len,\n"
	"       (SELECT lo FROM intervals WHERE run_id = r.id AND name = "
	"'tokens_per_s')    AS tokens_per_s_lo,\n"
	"       (SELECT hi FROM intervals WHERE run_id = r.id AND name = "
	"'tokens_per_s')    AS tokens_per_s_hi,\n"
	"       (SELECT lo FROM intervals WHERE run_id = r.id AND name = "
	"'tokens_per_j')    AS tokens_per_j_lo,\n"
	"       (SELECT hi FROM intervals WHERE run_id = r.id AND name = "
	"'tokens_per_j')    AS tokens_per_j_hi,\n"
	"       (SELECT lo FROM intervals WHERE run_id = r.id AND name = "
	"'acceptance_rate') AS acceptance_rate_lo,\n"
	"       (SELECT hi FROM intervals WHERE run_id = r.id AND name = "
	"'acceptance_rate') AS acceptance_rate_hi,\n"
	"       (SELECT lo FROM intervals WHERE run_id = r.id AND name = "
	"'mean_draft_len')  AS mean_draft_len_lo,\n"
	"       (SELECT hi FROM intervals WHERE run_id = r.id AND name = "
	"'mean_draft_len')  AS mean_draft_len_hi\n"
	"FROM runs r;\n"
	"\n"
	"-- For every run and every baseline policy (the baselines table, and\n"
	"-- sync), the run it is compared with: the latest run of that policy "
	"with\n"
	"-- the same match_key, or NULL when there is none or when such runs "
	"differ\n"
	"-- in the policy's own parameters (the answer would depend on "
	"which).\n"
	"CREATE VIEW baseline_runs AS\n"
	"SELECT m.run_id, b.policy AS baseline_policy,\n"
	"       CASE WHEN (SELECT count(DISTINCT x.policy_key) FROM run_match "
	"x\n"
	"                  WHERE x.match_key = m.match_key AND x.policy = "
	"b.policy) = 1\n"
	"            THEN (SELECT max(x.run_id) FROM run_match x\n"
	"                  WHERE x.match_key = m.match_key AND x.policy = "
	"b.policy)\n"
	"       END AS baseline_run_id\n"
	"FROM run_match m\n"
	"CROSS JOIN (SELECT policy FROM baselines UNION SELECT 'sync') b;\n",
	"\n"
	"-- Every run against every baseline policy: ratios of tokens/s "
	"(speedup)\n"
	"-- and tokens/J (energy_gain) with their paired 95% intervals; "
	"*_differs is\n"
	"-- 1 when the interval excludes 1, 0 when the two are not "
	"distinguishable,\n"
	"-- NULL without an interval. NULL throughout when there is no "
	"baseline.\n"
	"CREATE VIEW comparisons AS\n"
	"SELECT s.run_id, s.policy, s.drafter, s.hw_preset, s.models,\n"
	"       bp.policy AS baseline_policy, m.baseline_run_id,\n"
	"       s.tokens_per_s / b.tokens_per_s AS speedup,\n"
	"       ps.lo AS speedup_lo, ps.hi AS speedup_hi,\n"
	"       CASE WHEN ps.lo IS NULL THEN NULL\n"
	"            WHEN ps.lo > 1 OR ps.hi < 1 THEN 1 ELSE 0 END AS "
	"speedup_differs,\n"
	"       s.tokens_per_j / b.tokens_per_j AS energy_gain,\n"
	"       pe.lo AS energy_gain_lo, pe.hi AS energy_gain_hi,\n"
	"       CASE WHEN pe.lo IS NULL THEN NULL\n"
	"            WHEN pe.lo > 1 OR pe.hi < 1 THEN 1 ELSE 0 END AS "
	"energy_gain_differs\n"
	"FROM run_summary s\n"
	"CROSS JOIN (SELECT policy FROM baselines UNION SELECT 'sync') bp\n"
	"LEFT JOIN baseline_runs m\n"
	"  ON m.run_id = s.run_id AND m.baseline_policy = bp.policy\n"
	"LEFT JOIN run_summary b ON b.run_id = m.baseline_run_id\n"
	"LEFT JOIN paired_intervals ps\n"
	"  ON ps.run_id = s.run_id AND ps.baseline_run_id = m.baseline_run_id\n"
	" AND ps.name = 'tokens_per_s'\n"
	"LEFT JOIN paired_intervals pe\n"
	"  ON pe.run_id = s.run_id AND pe.baseline_run_id = m.baseline_run_id\n"
	" AND pe.name = 'tokens_per_j';\n"
	"\n"
	"-- Every run against the sync run of the same configuration.\n"
	"CREATE VIEW speedup_vs_sync AS\n"
	"SELECT run_id, policy, drafter, hw_preset, models, speedup, "
	"energy_gain,\n"
	"       baseline_run_id, speedup_lo, speedup_hi, speedup_differs,\n"
	"       energy_gain_lo, energy_gain_hi, energy_gain_differs\n"
	"FROM comparisons WHERE baseline_policy = 'sync';\n"
	"\n"
	"-- Mean per policy x drafter x preset.\n"
	"CREATE VIEW policy_summary AS\n"
	"SELECT policy, drafter, hw_preset, count(*) AS runs,\n"
	"       avg(tokens_per_s) AS tokens_per_s, avg(tokens_per_j) AS "
	"tokens_per_j,\n"
	"       avg(acceptance_rate) AS acceptance_rate\n"
	"FROM run_summary GROUP BY policy, drafter, hw_preset;\n"
	"\n"
	"-- One row per run: its configuration keys as columns (db.c makes "
	"this\n"
	"-- view again, one column per key of config_keys, whenever a run "
	"brings a\n"
	"-- new key; here, with none), headline metrics, intervals and the\n"
	"-- comparison with sync.\n" DBC_RUN_TABLE_HEAD DBC_RUN_TABLE_TAIL,
	NULL
};

/* Migration 4: area_costs, run_area and pareto (db/SCHEMA.md: Area,
 * Pareto fronts); views over what is stored, so nothing to fill in. */
static const char *const schema_v4[] = {
	"\n"
	"-- Schema version 4: the silicon area a configuration adds, and the\n"
	"-- Pareto front of every study (db/SCHEMA.md: Area, Pareto fronts).\n"
	"\n"
	"-- What a configuration adds in area, by its configuration rows: a "
	"run\n"
	"-- whose config has this key with this value counts mm2. The rows "
	"here\n"
	"-- are AHASD's units at 28 nm as the paper gives them (Ma et al., "
	"\"AHASD\",\n"
	"-- DAC 2026: EDC 0.05 mm2, TVC 0.03, queues 0.01, AAU 1.25; 2.68% of "
	"the\n"
	"-- DRAM die): the AAU in the PIM, EDC and TVC when the policy has "
	"them on,\n"
	"-- and the queues between the devices of the task-level policies. "
	"Rows\n"
	"-- for units of one's own are added the same way.\n"
	"CREATE TABLE area_costs (\n"
	"  key    TEXT NOT NULL,       -- a configuration key (config.key)\n"
	"  value  NOT NULL,            -- the value that costs, as config "
	"stores it\n"
	"  unit   TEXT NOT NULL,       -- what the area is of\n"
	"  mm2    REAL NOT NULL,\n"
	"  source TEXT,                -- where the number comes from\n"
	"  PRIMARY KEY (key, value)\n"
	") WITHOUT ROWID;\n"
	"INSERT INTO area_costs (key, value, unit, mm2, source) VALUES\n"
	"  ('hw.aau', 1, 'AAU', 1.25, 'AHASD paper (DAC 2026), 28 nm'),\n"
	"  ('policy.edc', 1, 'EDC', 0.05, 'AHASD paper (DAC 2026), 28 nm'),\n"
	"  ('policy.tvc', 1, 'TVC', 0.03, 'AHASD paper (DAC 2026), 28 nm'),\n"
	"  ('policy', 'ahasd', 'queues', 0.01, 'AHASD paper (DAC 2026), 28 "
	"nm'),\n"
	"  ('policy', 'async', 'queues', 0.01, 'AHASD paper (DAC 2026), 28 "
	"nm');\n"
	"\n"
	"-- Every run's area: area_costs summed over its configuration rows "
	"(0\n"
	"-- when none applies).\n"
	"CREATE VIEW run_area AS\n"
	"SELECT r.id AS run_id,\n"
	"       (SELECT coalesce(sum(a.mm2), 0) FROM area_costs a\n"
	"        JOIN config c ON c.run_id = r.id AND c.key = a.key\n"
	"                     AND c.value = a.value) AS area_mm2\n"
	"FROM runs r;\n"
	"\n",
	"-- The Pareto front of throughput against energy efficiency in every\n"
	"-- study (the runs of one label; the runs without a label are one "
	"study\n"
	"-- too). on_front is 1 when no run of the study has at least the "
	"run's\n"
	"-- tokens_per_s and tokens_per_j and more of one of them (equal runs "
	"are\n"
	"-- on it together); on_front_area is the same with area_mm2 as a "
	"third\n"
	"-- cost, to be no larger (smaller counts as better too). Runs "
	"without\n"
	"-- both metrics are left out.\n"
	"CREATE VIEW pareto AS\n"
	"WITH p AS (\n"
	"  SELECT s.run_id, s.label AS study, s.policy, s.tokens_per_s,\n"
	"         s.tokens_per_j, a.area_mm2\n"
	"  FROM run_summary s JOIN run_area a ON a.run_id = s.run_id\n"
	"  WHERE s.tokens_per_s IS NOT NULL AND s.tokens_per_j IS NOT NULL\n"
	"),\n"
	"-- by the best tokens_per_j of the runs faster than it and of the "
	"runs\n"
	"-- as fast, in the study and in its runs of the same area\n"
	"w AS (\n"
	"  SELECT p.*,\n"
	"         max(tokens_per_j) OVER (PARTITION BY study ORDER BY "
	"tokens_per_s DESC\n"
	"           GROUPS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS "
	"faster_j,\n"
	"         max(tokens_per_j) OVER (PARTITION BY study, tokens_per_s) AS "
	"same_j,\n"
	"         max(tokens_per_j) OVER (PARTITION BY study, area_mm2\n"
	"           ORDER BY tokens_per_s DESC\n"
	"           GROUPS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS "
	"faster_j_a,\n"
	"         max(tokens_per_j) OVER (PARTITION BY study, area_mm2, "
	"tokens_per_s)\n"
	"           AS same_j_a\n"
	"  FROM p\n"
	"),\n"
	"f AS (\n"
	"  SELECT run_id, study, policy, tokens_per_s, tokens_per_j, "
	"area_mm2,\n"
	"         (faster_j IS NULL OR tokens_per_j > faster_j)\n"
	"           AND tokens_per_j = same_j AS on_front,\n"
	"         (faster_j_a IS NULL OR tokens_per_j > faster_j_a)\n"
	"           AND tokens_per_j = same_j_a AS in_class\n"
	"  FROM w\n"
	"),\n"
	"-- a run beaten by a smaller one is beaten by one on the front of "
	"its\n"
	"-- own area, so those are the only ones to look at\n"
	"c AS (\n"
	"  SELECT study, area_mm2, tokens_per_s, tokens_per_j FROM f WHERE "
	"in_class\n"
	")\n"
	"SELECT run_id, study, policy, tokens_per_s, tokens_per_j, area_mm2,\n"
	"       on_front,\n"
	"       in_class AND NOT EXISTS (\n"
	"         SELECT 1 FROM c WHERE c.study IS f.study\n"
	"           AND c.area_mm2 < f.area_mm2\n"
	"           AND c.tokens_per_s >= f.tokens_per_s\n"
	"           AND c.tokens_per_j >= f.tokens_per_j) AS on_front_area\n"
	"FROM f;\n",
	NULL
};

static int migrate_v3(struct db *d, char *err, size_t errlen);

static const struct migration {
	int version;
	const char *const *sql; /* parts, NULL-terminated, run in order */
	/* then, in the same transaction, what SQL alone cannot do, or NULL */
	int (*fn)(struct db *d, char *err, size_t errlen);
} migrations[] = {
	{ 1, schema_v1, NULL },
	{ 2, schema_v2, NULL },
	{ 3, schema_v3, migrate_v3 },
	{ 4, schema_v4, NULL },
};
_Static_assert(sizeof migrations / sizeof migrations[0] == DB_SCHEMA_VERSION,
               "one migration per schema version, in order");

/* Event kinds and outcomes as stored, in the enum order of results.h. */
static const char *const kind_names[] = {
	"draft", "verify", "preverify", "switch", "transfer", "idle", "offload",
};
_Static_assert(sizeof kind_names / sizeof kind_names[0] == REPLAY_EV_KIND_COUNT,
               "one name per replay_event_kind");
static const char *const outcome_names[] = {
	"none",
	"accepted",
	"rejected",
	"wasted",
};
_Static_assert(sizeof outcome_names / sizeof outcome_names[0] ==
                       REPLAY_OUT_WASTED + 1,
               "one name per replay_outcome");

enum stmt {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_RESERVE,
	ST_RUN,
	ST_SEQUENCE,
	ST_EVENT,
	ST_METRIC,
	ST_DEVICE,
	ST_FAILURE,
	ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	/* the next run id: one past the last handed out and past every run
	 * stored (should a run have been inserted by other means) */
	[ST_RESERVE] =
	        "INSERT INTO run_ids (id, last) "
	        "VALUES (1, (SELECT coalesce(max(id), 0) FROM runs) + 1) "
	        "ON CONFLICT (id) DO UPDATE SET last = "
	        "max(last, (SELECT coalesce(max(id), 0) FROM runs)) + 1 "
	        "RETURNING last",
	[ST_RUN] =
	        "INSERT INTO runs (id, created, tool_version, label, policy, "
	        "policy_version, policy_params, policy_path, drafter, "
	        "drafter_version, drafter_params, drafter_path, hw_preset, "
	        "hw_config, trace_path, trace_sha256, draft_model, "
	        "target_model, "
	        "retargeted_from, sampled, seed, queue_capacity, max_draft, "
	        "wall_s) "
	        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, "
	        "?13, "
	        "?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24)",
	[ST_SEQUENCE] =
	        "INSERT INTO sequences (run_id, seq, prompt_len, committed, "
	        "time_s, energy_j, drafted, accepted, wasted, preverified, "
	        "batches, verifications, batch_tokens) "
	        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, "
	        "?13)",
	[ST_EVENT] = "INSERT INTO events (run_id, idx, device, kind, start_s, "
	             "end_s, "
	             "tokens, seq, batch, outcome) "
	             "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
	[ST_METRIC] =
	        "INSERT INTO metrics (run_id, name, value) VALUES (?1, ?2, ?3)",
	[ST_DEVICE] =
	        ("INSERT INTO devices (run_id, idx, name, busy_s, idle_s, "
	         "energy_j) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
	[ST_FAILURE] =
	        "INSERT INTO failures (created, run_id, label, trace_path, "
	        "hw_preset, policy, drafter, config, plugin, hook, signal, "
	        "message) "
	        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
};

/* One buffered row of the open run, a sequence or an event, in the order
 * the caller gave them. Spilled as raw bytes and read back by the same
 * process. */
struct run_rec {
	enum { REC_SEQUENCE, REC_EVENT } type;
	union {
		struct replay_seq_result seq;
		struct replay_event ev;
	} u;
};

/* The string members of struct db_run_info, copied at db_run_begin. */
static const size_t info_strings[] = {
	offsetof(struct db_run_info, tool_version),
	offsetof(struct db_run_info, label),
	offsetof(struct db_run_info, policy),
	offsetof(struct db_run_info, policy_version),
	offsetof(struct db_run_info, policy_params),
	offsetof(struct db_run_info, policy_path),
	offsetof(struct db_run_info, drafter),
	offsetof(struct db_run_info, drafter_version),
	offsetof(struct db_run_info, drafter_params),
	offsetof(struct db_run_info, drafter_path),
	offsetof(struct db_run_info, hw_preset),
	offsetof(struct db_run_info, hw_config),
	offsetof(struct db_run_info, trace_path),
	offsetof(struct db_run_info, trace_sha256),
	offsetof(struct db_run_info, draft_model),
	offsetof(struct db_run_info, target_model),
	offsetof(struct db_run_info, retargeted_from),
};

struct db {
	sqlite3 *h;
	char *path;
	int readonly;
	int busy_ms;
	sqlite3_stmt *st[ST_COUNT];
	uint64_t max_events;
	size_t rec_max; /* records held in memory before a spill */
	/* the open run, run_id 0 when none: nothing of it is in the file
	 * until db_run_commit */
	int64_t run_id;
	char created[48];
	struct db_run_info info; /* strings point into info_strs */
	char *info_strs;
	uint64_t n_events, dropped;
	unsigned n_dev;
	char dev_name[RESULT_MAX_DEV][DB_MAX_DEV_NAME + 1];
	struct run_rec *rec; /* newest records, n_rec of cap_rec */
	size_t n_rec, cap_rec;
	FILE *spill; /* older records, oldest first, or NULL */
	struct stats_interval iv[STATS_N_METRICS]; /* db_run_intervals */
	int has_iv;
	/* the open run's sequences as the bootstrap takes them, for its
	 * paired intervals before the commit's lock (dbc_pairs_prepare) */
	struct own_seq *own;
	size_t n_own, cap_own;
};

struct own_seq {
	int64_t seq;
	struct stats_seq s;
};

static int errno_of(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED: return -EBUSY;
	case SQLITE_READONLY: return -EROFS;
	case SQLITE_NOMEM: return -ENOMEM;
	case SQLITE_FULL: return -ENOSPC;
	case SQLITE_PERM:
	case SQLITE_AUTH: return -EACCES;
	case SQLITE_NOTADB:
	case SQLITE_CORRUPT:
	case SQLITE_CONSTRAINT:
	case SQLITE_MISMATCH: return -EINVAL;
	default: return -EIO;
	}
}

/* "PATH: WHAT: sqlite message" with a hint for the cases users meet. */
static int sql_err(const struct db *d, int rc, const char *what, char *err,
                   size_t errlen)
{
	const char *msg = d->h ? sqlite3_errmsg(d->h) : sqlite3_errstr(rc);

	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		util_set_err(err, errlen,
		             "%s: %s: database is locked by another connection "
		             "(busy for longer than the %d ms busy timeout)",
		             d->path, what, d->busy_ms);
		break;
	case SQLITE_READONLY:
		util_set_err(err, errlen, "%s: %s: database is read-only (%s)",
		             d->path, what, msg);
		break;
	case SQLITE_CANTOPEN:
	case SQLITE_IOERR: {
		const int sys = d->h ? sqlite3_system_errno(d->h) : 0;

		util_set_err(err, errlen, "%s: %s: %s (%s)", d->path, what, msg,
		             sys ? strerror(sys) : "no system error");
		break;
	}
	default:
		util_set_err(err, errlen, "%s: %s: %s", d->path, what, msg);
		break;
	}
	return errno_of(rc);
}

static int exec_sql(struct db *d, const char *sql, const char *what, char *err,
                    size_t errlen)
{
	const int rc = sqlite3_exec(d->h, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : sql_err(d, rc, what, err, errlen);
}

struct header {
	int64_t app_id, user_version, objects;
};

/* The three header fields in one statement, so from one snapshot of the
 * file: read in separate queries, a reader could see application_id from
 * before another process's migration committed and the table list from
 * after it (issue 15, defect 2). */
static int read_header(struct db *d, struct header *hd, char *err,
                       size_t errlen)
{
	static const char sql[] =
	        "SELECT (SELECT application_id FROM pragma_application_id), "
	        "(SELECT user_version FROM pragma_user_version), "
	        "(SELECT count(*) FROM sqlite_master)";
	sqlite3_stmt *s = NULL;
	int rc = sqlite3_prepare_v2(d->h, sql, -1, &s, NULL);

	if (rc == SQLITE_OK) {
		rc = sqlite3_step(s);
		if (rc == SQLITE_ROW) {
			hd->app_id = sqlite3_column_int64(s, 0);
			hd->user_version = sqlite3_column_int64(s, 1);
			hd->objects = sqlite3_column_int64(s, 2);
			rc = SQLITE_OK;
		}
	}
	sqlite3_finalize(s);
	if (rc == SQLITE_OK)
		return 0;
	if ((rc & 0xff) == SQLITE_NOTADB) {
		util_set_err(
		        err, errlen,
		        "%s: not an SQLite database (file is not a database)",
		        d->path);
		return -EINVAL;
	}
	return sql_err(d, rc, "reading the database header", err, errlen);
}

/* Refuse another application's database or a newer schema. */
static int check_header(const struct db *d, const struct header *hd, char *err,
                        size_t errlen)
{
	if (hd->app_id != 0 && hd->app_id != DB_APPLICATION_ID) {
		util_set_err(err, errlen,
		             "%s: not an ahasd-replay database (application_id "
		             "0x%08llx, expected 0x%08x)",
		             d->path, (unsigned long long)(uint32_t)hd->app_id,
		             (unsigned)DB_APPLICATION_ID);
		return -EINVAL;
	}
	if (hd->app_id == 0 && (hd->user_version != 0 || hd->objects != 0)) {
		util_set_err(
		        err, errlen,
		        "%s: not an ahasd-replay database (application_id 0, "
		        "user_version %lld, %lld schema objects)",
		        d->path, (long long)hd->user_version,
		        (long long)hd->objects);
		return -EINVAL;
	}
	if (hd->app_id == DB_APPLICATION_ID && hd->user_version == 0 &&
	    hd->objects != 0) {
		/* migration 1 would fail with "table runs already exists" */
		util_set_err(
		        err, errlen,
		        "%s: an ahasd-replay database (application_id 0x%08x, "
		        "%lld schema objects) with user_version 0: its schema "
		        "version was reset, so its tables cannot be told apart "
		        "from a half-made schema; set PRAGMA user_version to "
		        "the "
		        "version its tables have (%d for this tool's) or use a "
		        "new "
		        "file",
		        d->path, (unsigned)DB_APPLICATION_ID,
		        (long long)hd->objects, DB_SCHEMA_VERSION);
		return -EINVAL;
	}
	if (hd->user_version > DB_SCHEMA_VERSION) {
		util_set_err(err, errlen,
		             "%s: schema version %lld is newer than this "
		             "tool's (%d); "
		             "upgrade ahasd-replay",
		             d->path, (long long)hd->user_version,
		             DB_SCHEMA_VERSION);
		return -EPROTONOSUPPORT;
	}
	return 0;
}

/* Bring the schema to DB_SCHEMA_VERSION in one BEGIN IMMEDIATE
 * transaction. The header is read and checked again under that lock: two
 * processes that found the same fresh file both get here, and the second
 * finds the first one's whole schema, never a part of it. */
static int apply_migrations(struct db *d, char *err, size_t errlen)
{
	const char *what = "creating or upgrading the schema";
	struct header hd;
	char sql[96];
	int r;

	r = exec_sql(d, "BEGIN IMMEDIATE", what, err, errlen);
	if (r < 0)
		return r;
	r = read_header(d, &hd, err, errlen);
	if (r == 0)
		r = check_header(d, &hd, err, errlen);
	if (r < 0)
		goto error;
	for (size_t i = 0; i < sizeof migrations / sizeof migrations[0]; i++) {
		const struct migration *m = &migrations[i];

		if (m->version <= hd.user_version)
			continue;
		for (const char *const *part = m->sql; *part; part++) {
			r = exec_sql(d, *part, what, err, errlen);
			if (r < 0)
				goto error;
		}
		if (m->fn) {
			r = m->fn(d, err, errlen);
			if (r < 0)
				goto error;
		}
	}
	if (hd.user_version < DB_SCHEMA_VERSION) {
		snprintf(sql, sizeof sql,
		         "PRAGMA user_version = %d; PRAGMA application_id = %d",
		         DB_SCHEMA_VERSION, DB_APPLICATION_ID);
		r = exec_sql(d, sql, what, err, errlen);
		if (r < 0)
			goto error;
	}
	r = exec_sql(d, "COMMIT", what, err, errlen);
	if (r < 0)
		goto error;
	return 0;

error:
	if (!sqlite3_get_autocommit(d->h))
		sqlite3_exec(d->h, "ROLLBACK", NULL, NULL, NULL);
	return r;
}

static int migrate_v3(struct db *d, char *err, size_t errlen)
{
	return dbc_backfill(d->h, d->path, err, errlen);
}

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Switch the file to WAL. The switch needs the file to itself for a
 * moment; SQLite answers SQLITE_BUSY at once (without the busy handler)
 * or leaves the old mode when another process holds it, which happens
 * when several processes open a new file together. Retry for up to the
 * busy timeout. */
static int set_wal(struct db *d, char *err, size_t errlen)
{
	const struct timespec nap = { 0, 10 * 1000000L };
	const double until = mono_s() + d->busy_ms * 1e-3;
	const char *what = "switching to WAL mode";

	for (;;) {
		sqlite3_stmt *s = NULL;
		int rc = sqlite3_prepare_v2(d->h, "PRAGMA journal_mode = WAL",
		                            -1, &s, NULL);
		int wal = 0;

		if (rc == SQLITE_OK) {
			rc = sqlite3_step(s);
			if (rc == SQLITE_ROW) {
				const unsigned char *m = sqlite3_column_text(s,
				                                             0);

				wal = m && strcmp((const char *)m, "wal") == 0;
				rc = SQLITE_OK;
			}
		}
		sqlite3_finalize(s);
		if (rc == SQLITE_OK && wal)
			return 0;
		if (rc != SQLITE_OK && (rc & 0xff) != SQLITE_BUSY &&
		    (rc & 0xff) != SQLITE_LOCKED)
			return sql_err(d, rc, what, err, errlen);
		if (mono_s() >= until)
			return sql_err(d, SQLITE_BUSY, what, err, errlen);
		nanosleep(&nap, NULL);
	}
}

static int busy_ms_from_env(int *out, char *err, size_t errlen)
{
	const char *s = getenv("AHASD_DB_BUSY_MS");
	char *end = NULL;
	long v;

	*out = DB_DEFAULT_BUSY_MS;
	if (!s || !*s)
		return 0;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < 0 || v > INT_MAX) {
		util_set_err(
		        err, errlen,
		        "AHASD_DB_BUSY_MS: '%s' is not a time in milliseconds",
		        s);
		return -EINVAL;
	}
	*out = (int)v;
	return 0;
}

/* Checks on the file system for a clearer message than SQLite's
 * "unable to open database file". */
static int check_path(const char *path, int readonly, char *err, size_t errlen)
{
	struct stat st;
	char *dir = NULL;
	char *slash;
	int r = 0;

	if (stat(path, &st) == 0) {
		if (S_ISDIR(st.st_mode)) {
			util_set_err(err, errlen, "%s: is a directory", path);
			return -EISDIR;
		}
		if (!readonly && access(path, R_OK | W_OK) != 0) {
			r = -errno;
			util_set_err(err, errlen,
			             "%s: cannot open for writing: %s", path,
			             strerror(errno));
			return r;
		}
		if (readonly && access(path, R_OK) != 0) {
			r = -errno;
			util_set_err(err, errlen,
			             "%s: cannot open for reading: %s", path,
			             strerror(errno));
			return r;
		}
	} else if (errno != ENOENT || readonly) {
		r = -errno;
		util_set_err(err, errlen, "%s: %s", path, strerror(errno));
		return r;
	}

	if (readonly)
		return 0;
	/* The directory must exist and be writable: the database is created
	 * there, and WAL mode keeps PATH-wal and PATH-shm beside it. */
	dir = strdup(path);
	if (!dir) {
		util_set_err(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	slash = strrchr(dir, '/');
	if (!slash)
		strcpy(dir, ".");
	else if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	if (stat(dir, &st) != 0) {
		r = -errno;
		if (errno == ENOENT)
			util_set_err(
			        err, errlen,
			        "%s: cannot create database: directory '%s' "
			        "does not exist",
			        path, dir);
		else
			util_set_err(err, errlen,
			             "%s: cannot create database: directory "
			             "'%s': %s",
			             path, dir, strerror(errno));
		goto error;
	}
	if (!S_ISDIR(st.st_mode)) {
		util_set_err(
		        err, errlen,
		        "%s: cannot create database: '%s' is not a directory",
		        path, dir);
		r = -ENOTDIR;
		goto error;
	}
	if (access(dir, W_OK | X_OK) != 0) {
		r = -errno;
		util_set_err(
		        err, errlen,
		        "%s: cannot write: directory '%s' is not writable (%s)",
		        path, dir, strerror(errno));
		goto error;
	}

error:
	free(dir);
	return r;
}

static int prepare_all(struct db *d, char *err, size_t errlen)
{
	for (int i = 0; i < ST_COUNT; i++) {
		const int rc = sqlite3_prepare_v3(d->h, stmt_sql[i], -1,
		                                  SQLITE_PREPARE_PERSISTENT,
		                                  &d->st[i], NULL);

		if (rc != SQLITE_OK)
			return sql_err(d, rc, "preparing statements", err,
			               errlen);
	}
	return 0;
}

static int open_common(struct db **out, const char *path, int readonly,
                       char *err, size_t errlen)
{
	struct db *d = NULL;
	struct header hd;
	int r, rc;

	if (!out || !path || !*path) {
		util_set_err(err, errlen, "db_open: no path given");
		return -EINVAL;
	}
	*out = NULL;
	r = check_path(path, readonly, err, errlen);
	if (r < 0)
		return r;
	d = calloc(1, sizeof *d);
	if (!d || !(d->path = strdup(path))) {
		util_set_err(err, errlen, "%s: out of memory", path);
		r = -ENOMEM;
		goto error;
	}
	d->readonly = readonly;
	d->max_events = DB_DEFAULT_MAX_EVENTS;
	d->rec_max = DB_DEFAULT_BUFFER_BYTES / sizeof(struct run_rec);
	r = busy_ms_from_env(&d->busy_ms, err, errlen);
	if (r < 0)
		goto error;

	rc = sqlite3_open_v2(path, &d->h,
	                     readonly ? SQLITE_OPEN_READONLY
	                              : SQLITE_OPEN_READWRITE |
	                                        SQLITE_OPEN_CREATE,
	                     NULL);
	if (rc != SQLITE_OK) {
		const int sys = d->h ? sqlite3_system_errno(d->h) : 0;

		util_set_err(err, errlen, "%s: cannot %s database: %s%s%s%s",
		             path, access(path, F_OK) == 0 ? "open" : "create",
		             d->h ? sqlite3_errmsg(d->h) : sqlite3_errstr(rc),
		             sys ? " (" : "", sys ? strerror(sys) : "",
		             sys ? ")" : "");
		r = sys ? -sys : errno_of(rc);
		goto error;
	}
	sqlite3_extended_result_codes(d->h, 1);
	sqlite3_busy_timeout(d->h, d->busy_ms);
	if (!readonly && sqlite3_db_readonly(d->h, "main") == 1) {
		util_set_err(err, errlen,
		             "%s: database can only be opened read-only", path);
		r = -EROFS;
		goto error;
	}

	/* Nothing below writes before these checks pass. */
	r = read_header(d, &hd, err, errlen);
	if (r == 0)
		r = check_header(d, &hd, err, errlen);
	if (r < 0)
		goto error;

	if (readonly) {
		if (hd.user_version == 0) {
			util_set_err(
			        err, errlen,
			        "%s: empty database, no ahasd-replay results",
			        path);
			r = -EINVAL;
			goto error;
		}
		if (hd.user_version < DB_SCHEMA_VERSION) {
			util_set_err(
			        err, errlen,
			        "%s: schema version %lld is older than this "
			        "tool's (%d); open it once read-write with "
			        "ahasd-replay to upgrade",
			        path, (long long)hd.user_version,
			        DB_SCHEMA_VERSION);
			r = -EPROTONOSUPPORT;
			goto error;
		}
		r = exec_sql(d, "PRAGMA foreign_keys = ON", "setting pragmas",
		             err, errlen);
		if (r < 0)
			goto error;
		*out = d;
		return 0;
	}

	r = set_wal(d, err, errlen);
	if (r < 0)
		goto error;
	r = exec_sql(d, "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON",
	             "setting pragmas", err, errlen);
	if (r < 0)
		goto error;
	if (hd.user_version < DB_SCHEMA_VERSION) {
		r = apply_migrations(d, err, errlen);
		if (r < 0)
			goto error;
	}
	r = prepare_all(d, err, errlen);
	if (r < 0)
		goto error;
	*out = d;
	return 0;

error:
	db_close(&d);
	return r;
}

int db_open(struct db **out, const char *path, char *err, size_t errlen)
{
	return open_common(out, path, 0, err, errlen);
}

int db_open_readonly(struct db **out, const char *path, char *err,
                     size_t errlen)
{
	return open_common(out, path, 1, err, errlen);
}

/* Forget the open run: its buffered rows, its spill file, its info. */
static void run_clear(struct db *d)
{
	d->run_id = 0;
	d->created[0] = '\0';
	memset(&d->info, 0, sizeof d->info);
	free(d->info_strs);
	d->info_strs = NULL;
	d->n_events = 0;
	d->dropped = 0;
	d->n_dev = 0;
	memset(d->dev_name, 0, sizeof d->dev_name);
	d->n_rec = 0;
	if (d->spill)
		fclose(d->spill);
	d->spill = NULL;
	d->has_iv = 0;
	free(d->own);
	d->own = NULL;
	d->n_own = d->cap_own = 0;
}

/* End a write transaction that failed half-way, if one is open. */
static void tx_rollback(struct db *d)
{
	if (!d->h || sqlite3_get_autocommit(d->h))
		return;
	if (d->st[ST_ROLLBACK]) {
		sqlite3_step(d->st[ST_ROLLBACK]);
		sqlite3_reset(d->st[ST_ROLLBACK]);
	} else {
		sqlite3_exec(d->h, "ROLLBACK", NULL, NULL, NULL);
	}
}

void db_run_rollback(struct db *d)
{
	if (!d || !d->h)
		return;
	tx_rollback(d);
	run_clear(d);
}

void db_close(struct db **pd)
{
	struct db *d;

	if (!pd || !*pd)
		return;
	d = *pd;
	db_run_rollback(d); /* an unfinished run leaves no trace */
	free(d->rec);
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(d->st[i]);
	/* _v2: statements the viewer still holds keep the handle alive. */
	sqlite3_close_v2(d->h);
	free(d->path);
	free(d);
	*pd = NULL;
}

struct sqlite3 *db_handle(struct db *d)
{
	return d ? d->h : NULL;
}

const char *db_path(const struct db *d)
{
	return d ? d->path : NULL;
}

int db_set_max_events(struct db *d, uint64_t max_events)
{
	if (!d)
		return -EINVAL;
	d->max_events = max_events;
	return 0;
}

int db_set_buffer_bytes(struct db *d, size_t bytes)
{
	if (!d)
		return -EINVAL;
	if (d->run_id != 0)
		return -EBUSY;
	d->rec_max = bytes / sizeof(struct run_rec);
	if (d->rec_max == 0)
		d->rec_max = 1;
	free(d->rec);
	d->rec = NULL;
	d->cap_rec = 0;
	return 0;
}

/* Step a prepared write statement to completion, then reset it. */
static int step_done(struct db *d, enum stmt which, const char *what, char *err,
                     size_t errlen)
{
	sqlite3_stmt *s = d->st[which];
	const int rc = sqlite3_step(s);
	int r = 0;

	if (rc != SQLITE_DONE)
		r = sql_err(d, rc, what, err, errlen);
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return r;
}

static int bind_text(sqlite3_stmt *s, int i, const char *v)
{
	return v ? sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT)
	         : sqlite3_bind_null(s, i);
}

/* Refuse a call on a run that is not the one open. */
static int check_run(struct db *d, int64_t run_id, const char *fn, char *err,
                     size_t errlen)
{
	if (!d) {
		util_set_err(err, errlen, "%s: no database", fn);
		return -EINVAL;
	}
	if (d->run_id == 0) {
		util_set_err(err, errlen,
		             "%s: %s: no run open (db_run_begin first)",
		             d->path, fn);
		return -EINVAL;
	}
	if (run_id != d->run_id) {
		util_set_err(err, errlen,
		             "%s: %s: run %lld is not the open run %lld",
		             d->path, fn, (long long)run_id,
		             (long long)d->run_id);
		db_run_rollback(d);
		return -EINVAL;
	}
	return 0;
}

static int check_info(const struct db *d, const struct db_run_info *in,
                      char *err, size_t errlen)
{
	const struct {
		const char *name, *value;
	} req[] = {
		{ "tool_version", in->tool_version },
		{ "policy", in->policy },
		{ "policy_version", in->policy_version },
		{ "policy_params", in->policy_params },
		{ "policy_path", in->policy_path },
		{ "drafter", in->drafter },
		{ "drafter_version", in->drafter_version },
		{ "drafter_params", in->drafter_params },
		{ "drafter_path", in->drafter_path },
		{ "hw_preset", in->hw_preset },
		{ "hw_config", in->hw_config },
		{ "trace_path", in->trace_path },
		{ "trace_sha256", in->trace_sha256 },
		{ "draft_model", in->draft_model },
		{ "target_model", in->target_model },
	};

	for (size_t i = 0; i < sizeof req / sizeof req[0]; i++) {
		if (!req[i].value) {
			util_set_err(err, errlen, "%s: run info: %s is missing",
			             d->path, req[i].name);
			return -EINVAL;
		}
	}
	if (in->n_dev > RESULT_MAX_DEV) {
		util_set_err(err, errlen,
		             "%s: run info: %u devices (at most %d)", d->path,
		             in->n_dev, RESULT_MAX_DEV);
		return -EINVAL;
	}
	for (unsigned i = 0; i < in->n_dev; i++) {
		const char *n = in->device_names[i];

		if (!n || !*n || strlen(n) > DB_MAX_DEV_NAME) {
			util_set_err(
			        err, errlen,
			        "%s: run info: device %u needs a name of 1..%d "
			        "characters",
			        d->path, i, DB_MAX_DEV_NAME);
			return -EINVAL;
		}
		for (unsigned j = 0; j < i; j++) {
			if (strcmp(n, in->device_names[j]) == 0) {
				util_set_err(
				        err, errlen,
				        "%s: run info: device name '%s' used "
				        "twice",
				        d->path, n);
				return -EINVAL;
			}
		}
	}
	return 0;
}

/* Keep a copy of the run info's strings until the commit: the caller's
 * may be gone by then. */
static int copy_info(struct db *d, const struct db_run_info *in, char *err,
                     size_t errlen)
{
	const size_t n = sizeof info_strings / sizeof info_strings[0];
	size_t total = 0;
	char *p;

	for (size_t i = 0; i < n; i++) {
		const char *v = *(const char *const *)((const char *)in +
		                                       info_strings[i]);

		if (v)
			total += strlen(v) + 1;
	}
	d->info = *in;
	d->info_strs = p = malloc(total ? total : 1);
	if (!p) {
		util_set_err(err, errlen, "%s: out of memory", d->path);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		const char **dst = (const char **)((char *)&d->info +
		                                   info_strings[i]);
		const size_t len = *dst ? strlen(*dst) + 1 : 0;

		if (!*dst)
			continue;
		memcpy(p, *dst, len);
		*dst = p;
		p += len;
	}
	for (unsigned i = 0; i < RESULT_MAX_DEV; i++)
		d->info.device_names[i] = NULL;
	return 0;
}

static void utc_now(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	char sec[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(sec, sizeof sec, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%03ldZ", sec, ts.tv_nsec / 1000000L);
}

/* Hand out the next run id in a transaction of its own: a moment's lock,
 * and the id is the run's for good, whether it is committed or not. */
static int reserve_run_id(struct db *d, int64_t *id, char *err, size_t errlen)
{
	sqlite3_stmt *s = d->st[ST_RESERVE];
	int r, rc;

	r = step_done(d, ST_BEGIN, "starting a run", err, errlen);
	if (r < 0)
		return r;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*id = sqlite3_column_int64(s, 0);
		rc = sqlite3_step(s);
	}
	if (rc != SQLITE_DONE)
		r = sql_err(d, rc, "taking a run id", err, errlen);
	sqlite3_reset(s);
	if (r == 0)
		r = step_done(d, ST_COMMIT, "taking a run id", err, errlen);
	if (r < 0)
		tx_rollback(d);
	return r;
}

int db_run_begin(struct db *d, const struct db_run_info *info, int64_t *run_id,
                 char *err, size_t errlen)
{
	int64_t id = 0;
	int r;

	if (!d || !info || !run_id) {
		util_set_err(err, errlen, "db_run_begin: invalid arguments");
		return -EINVAL;
	}
	if (d->readonly) {
		util_set_err(err, errlen, "%s: opened read-only", d->path);
		return -EROFS;
	}
	if (d->run_id != 0) {
		util_set_err(err, errlen, "%s: run %lld is still open", d->path,
		             (long long)d->run_id);
		return -EBUSY;
	}
	r = check_info(d, info, err, errlen);
	if (r < 0)
		return r;
	r = reserve_run_id(d, &id, err, errlen);
	if (r < 0)
		return r;

	run_clear(d);
	r = copy_info(d, info, err, errlen);
	if (r < 0) {
		run_clear(d);
		return r;
	}
	utc_now(d->created, sizeof d->created);
	d->n_dev = info->n_dev;
	for (unsigned i = 0; i < info->n_dev; i++)
		strcpy(d->dev_name[i], info->device_names[i]);
	d->run_id = id;
	*run_id = id;
	return 0;
}

/* A temporary file for the rows past the memory bound, unlinked at once
 * so that nothing is left behind, whatever ends the process: in $TMPDIR,
 * else /tmp, else beside the database. */
static int spill_open(struct db *d, char *err, size_t errlen)
{
	const char *tmpdir = getenv("TMPDIR");
	char *dir = strdup(d->path);
	const char *dirs[3];
	char *slash;
	char tmpl[4096];
	int saved = 0, r = 0;

	if (!dir) {
		util_set_err(err, errlen, "%s: out of memory", d->path);
		return -ENOMEM;
	}
	slash = strrchr(dir, '/');
	if (!slash)
		strcpy(dir, ".");
	else if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	dirs[0] = tmpdir && *tmpdir ? tmpdir : NULL;
	dirs[1] = "/tmp";
	dirs[2] = dir;
	for (size_t i = 0; i < 3 && !d->spill; i++) {
		int fd;

		if (!dirs[i] || (size_t)snprintf(tmpl, sizeof tmpl,
		                                 "%s/ahasd-db-spill-XXXXXX",
		                                 dirs[i]) >= sizeof tmpl)
			continue;
		fd = mkostemp(tmpl, O_CLOEXEC);
		if (fd < 0) {
			saved = errno;
			continue;
		}
		unlink(tmpl);
		d->spill = fdopen(fd, "w+b");
		if (!d->spill) {
			saved = errno;
			close(fd);
		}
	}
	if (!d->spill) {
		util_set_err(
		        err, errlen,
		        "%s: run %lld: cannot make a temporary file for the "
		        "run's rows in $TMPDIR, /tmp or '%s': %s",
		        d->path, (long long)d->run_id, dir,
		        strerror(saved ? saved : EIO));
		r = saved ? -saved : -EIO;
	}
	free(dir);
	return r;
}

/* Move the records held in memory to the spill file. */
static int spill_records(struct db *d, char *err, size_t errlen)
{
	int r;

	if (!d->spill) {
		r = spill_open(d, err, errlen);
		if (r < 0)
			return r;
	}
	if (fwrite(d->rec, sizeof *d->rec, d->n_rec, d->spill) != d->n_rec) {
		const int e = errno ? errno : EIO;

		util_set_err(
		        err, errlen,
		        "%s: run %lld: writing the run's rows to a temporary "
		        "file: %s",
		        d->path, (long long)d->run_id, strerror(e));
		return -e;
	}
	d->n_rec = 0;
	return 0;
}

/* Keep one record of the open run: in memory up to rec_max records, the
 * older ones in the spill file past that. */
static int run_add(struct db *d, const struct run_rec *rec, char *err,
                   size_t errlen)
{
	int r;

	if (d->n_rec == d->rec_max) {
		r = spill_records(d, err, errlen);
		if (r < 0)
			return r;
	}
	if (d->n_rec == d->cap_rec) {
		size_t cap = d->cap_rec ? 2 * d->cap_rec : 64;
		struct run_rec *p;

		if (cap > d->rec_max)
			cap = d->rec_max;
		p = realloc(d->rec, cap * sizeof *p);
		if (!p) {
			util_set_err(err, errlen, "%s: out of memory", d->path);
			return -ENOMEM;
		}
		d->rec = p;
		d->cap_rec = cap;
	}
	d->rec[d->n_rec++] = *rec;
	return 0;
}

int db_run_sequence(struct db *d, int64_t run_id,
                    const struct replay_seq_result *q, char *err, size_t errlen)
{
	struct run_rec rec;
	int r = check_run(d, run_id, "db_run_sequence", err, errlen);

	if (r < 0)
		return r;
	if (!q) {
		util_set_err(err, errlen, "%s: db_run_sequence: no result",
		             d->path);
		r = -EINVAL;
		goto error;
	}
	memset(&rec, 0, sizeof rec);
	rec.type = REC_SEQUENCE;
	rec.u.seq = *q;
	r = run_add(d, &rec, err, errlen);
	if (r < 0)
		goto error;
	/* as load_seqs (db_config.c) will read it back: the columns only */
	if (d->n_own == d->cap_own) {
		const size_t c = d->cap_own ? 2 * d->cap_own : 64;
		struct own_seq *o = realloc(d->own, c * sizeof *o);
		if (!o) {
			util_set_err(err, errlen, "%s: out of memory", d->path);
			r = -ENOMEM;
			goto error;
		}
		d->own = o;
		d->cap_own = c;
	}
	{
		struct replay_seq_result col = { 0 };
		col.committed = q->committed;
		col.time_s = q->time_s;
		col.energy_j = q->energy_j;
		col.drafted = q->drafted;
		col.accepted = q->accepted;
		col.batches = q->batches;
		col.batch_tokens = q->batch_tokens;
		d->own[d->n_own].seq = q->seq;
		stats_seq_from(&col, &d->own[d->n_own].s);
		d->n_own++;
	}
	return 0;

error:
	db_run_rollback(d);
	return r;
}

int db_run_event(struct db *d, int64_t run_id, const struct replay_event *ev,
                 char *err, size_t errlen)
{
	struct run_rec rec;
	int r = check_run(d, run_id, "db_run_event", err, errlen);

	if (r < 0)
		return r;
	if (!ev) {
		util_set_err(err, errlen, "%s: db_run_event: no event",
		             d->path);
		r = -EINVAL;
		goto error;
	}
	if (d->n_events >= d->max_events) {
		d->dropped++;
		return 0;
	}
	if ((unsigned)ev->kind >= REPLAY_EV_KIND_COUNT ||
	    (unsigned)ev->outcome > REPLAY_OUT_WASTED || ev->device < 0 ||
	    (unsigned)ev->device >= d->n_dev) {
		util_set_err(
		        err, errlen,
		        "%s: db_run_event: invalid event (kind %d, outcome %d, "
		        "device %d of %u)",
		        d->path, (int)ev->kind, (int)ev->outcome, ev->device,
		        d->n_dev);
		r = -EINVAL;
		goto error;
	}
	memset(&rec, 0, sizeof rec);
	rec.type = REC_EVENT;
	rec.u.ev = *ev;
	r = run_add(d, &rec, err, errlen);
	if (r < 0)
		goto error;
	d->n_events++;
	return 1;

error:
	db_run_rollback(d);
	return r;
}

static int put_sequence(struct db *d, const struct replay_seq_result *q,
                        char *err, size_t errlen)
{
	sqlite3_stmt *s = d->st[ST_SEQUENCE];
	int rc, r = 0;

	sqlite3_bind_int64(s, 1, d->run_id);
	sqlite3_bind_int64(s, 2, q->seq);
	sqlite3_bind_int64(s, 3, q->prompt_len);
	sqlite3_bind_int64(s, 4, q->committed);
	sqlite3_bind_double(s, 5, q->time_s);
	sqlite3_bind_double(s, 6, q->energy_j);
	sqlite3_bind_int64(s, 7, (sqlite3_int64)q->drafted);
	sqlite3_bind_int64(s, 8, (sqlite3_int64)q->accepted);
	sqlite3_bind_int64(s, 9, (sqlite3_int64)q->wasted);
	sqlite3_bind_int64(s, 10, (sqlite3_int64)q->preverified);
	sqlite3_bind_int64(s, 11, (sqlite3_int64)q->batches);
	sqlite3_bind_int64(s, 12, (sqlite3_int64)q->verifications);
	sqlite3_bind_int64(s, 13, (sqlite3_int64)q->batch_tokens);
	rc = sqlite3_step(s);
	if (rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
		util_set_err(err, errlen,
		             "%s: run %lld: sequence %u given twice", d->path,
		             (long long)d->run_id, (unsigned)q->seq);
		r = -EINVAL;
	} else if (rc != SQLITE_DONE) {
		r = sql_err(d, rc, "inserting a sequence", err, errlen);
	}
	sqlite3_reset(s);
	return r;
}

static int put_event(struct db *d, uint64_t idx, const struct replay_event *ev,
                     char *err, size_t errlen)
{
	sqlite3_stmt *s = d->st[ST_EVENT];

	sqlite3_bind_int64(s, 1, d->run_id);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)idx);
	sqlite3_bind_int(s, 3, ev->device);
	sqlite3_bind_text(s, 4, kind_names[ev->kind], -1, SQLITE_STATIC);
	sqlite3_bind_double(s, 5, ev->start_s);
	sqlite3_bind_double(s, 6, ev->end_s);
	sqlite3_bind_int64(s, 7, ev->tokens);
	sqlite3_bind_int64(s, 8, ev->seq);
	sqlite3_bind_int64(s, 9, (sqlite3_int64)ev->batch);
	sqlite3_bind_text(s, 10, outcome_names[ev->outcome], -1, SQLITE_STATIC);
	return step_done(d, ST_EVENT, "inserting an event", err, errlen);
}

/* Insert n buffered records; events are numbered from *idx on, in the
 * order they were recorded. */
static int put_records(struct db *d, const struct run_rec *rec, size_t n,
                       uint64_t *idx, char *err, size_t errlen)
{
	for (size_t i = 0; i < n; i++) {
		const int r = rec[i].type == REC_SEQUENCE
		                      ? put_sequence(d, &rec[i].u.seq, err,
		                                     errlen)
		                      : put_event(d, (*idx)++, &rec[i].u.ev,
		                                  err, errlen);

		if (r < 0)
			return r;
	}
	return 0;
}

/* Every buffered record, the spilled ones first. */
static int put_all_records(struct db *d, char *err, size_t errlen)
{
	uint64_t idx = 0;
	size_t got;
	int r;

	if (!d->spill)
		return put_records(d, d->rec, d->n_rec, &idx, err, errlen);
	/* the newest go after the rest; then read it all back in chunks of
	 * the buffer's size (full, since it spilled) */
	r = spill_records(d, err, errlen);
	if (r < 0)
		return r;
	if (fflush(d->spill) != 0 || fseek(d->spill, 0, SEEK_SET) != 0)
		goto io_error;
	while ((got = fread(d->rec, sizeof *d->rec, d->cap_rec, d->spill)) >
	       0) {
		r = put_records(d, d->rec, got, &idx, err, errlen);
		if (r < 0)
			return r;
	}
	if (ferror(d->spill))
		goto io_error;
	return 0;

io_error:
	r = errno ? errno : EIO;
	util_set_err(
	        err, errlen,
	        "%s: run %lld: reading the run's rows back from a temporary "
	        "file: %s",
	        d->path, (long long)d->run_id, strerror(r));
	return -r;
}

static int put_run(struct db *d, double wall_s, char *err, size_t errlen)
{
	const struct db_run_info *info = &d->info;
	sqlite3_stmt *s = d->st[ST_RUN];
	int rc, r = 0;

	sqlite3_bind_int64(s, 1, d->run_id);
	bind_text(s, 2, d->created);
	bind_text(s, 3, info->tool_version);
	bind_text(s, 4, info->label);
	bind_text(s, 5, info->policy);
	bind_text(s, 6, info->policy_version);
	bind_text(s, 7, info->policy_params);
	bind_text(s, 8, info->policy_path);
	bind_text(s, 9, info->drafter);
	bind_text(s, 10, info->drafter_version);
	bind_text(s, 11, info->drafter_params);
	bind_text(s, 12, info->drafter_path);
	bind_text(s, 13, info->hw_preset);
	bind_text(s, 14, info->hw_config);
	bind_text(s, 15, info->trace_path);
	bind_text(s, 16, info->trace_sha256);
	bind_text(s, 17, info->draft_model);
	bind_text(s, 18, info->target_model);
	bind_text(s, 19, info->retargeted_from);
	sqlite3_bind_int(s, 20, info->sampled != 0);
	/* INTEGER is signed 64-bit: seeds >= 2^63 read back negative. */
	sqlite3_bind_int64(s, 21, (sqlite3_int64)info->seed);
	sqlite3_bind_int64(s, 22, info->queue_capacity);
	sqlite3_bind_int64(s, 23, info->max_draft);
	sqlite3_bind_double(s, 24, wall_s);
	rc = sqlite3_step(s);
	if (rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
		util_set_err(err, errlen,
		             "%s: run id %lld is taken by a run stored outside "
		             "db_run_begin",
		             d->path, (long long)d->run_id);
		r = -EEXIST;
	} else if (rc != SQLITE_DONE) {
		r = sql_err(d, rc, "inserting the run", err, errlen);
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return r;
}

static int put_metric(struct db *d, int64_t run_id, const char *name,
                      double value, char *err, size_t errlen)
{
	sqlite3_stmt *s = d->st[ST_METRIC];
	int rc, r = 0;

	if (!name || !*name) {
		util_set_err(err, errlen, "%s: a metric has no name", d->path);
		return -EINVAL;
	}
	if (isnan(value)) {
		/* SQLite would store NULL and fail the NOT NULL constraint. */
		util_set_err(err, errlen, "%s: metric '%s' is NaN", d->path,
		             name);
		return -EINVAL;
	}
	sqlite3_bind_int64(s, 1, run_id);
	sqlite3_bind_text(s, 2, name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_double(s, 3, value);
	rc = sqlite3_step(s);
	if (rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
		util_set_err(err, errlen, "%s: metric '%s' given twice",
		             d->path, name);
		r = -EINVAL;
	} else if (rc != SQLITE_DONE) {
		r = sql_err(d, rc, "storing a metric", err, errlen);
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return r;
}

static double ratio(double num, double den)
{
	return den > 0.0 ? num / den : 0.0;
}

/* Metrics, per-device rows and the extra named values of the run. */
static int put_metrics(struct db *d, int64_t run_id,
                       const struct replay_metrics *m,
                       const char *const *extra_names,
                       const double *extra_values, size_t n_extra, char *err,
                       size_t errlen)
{
	/* the larger of the engine's count and ours */
	struct replay_metrics mm = *m;
	int r;

	if (d->dropped > mm.events_dropped)
		mm.events_dropped = d->dropped;
	for (size_t i = 0; i < metric_defs_count; i++) {
		const double v = metric_defs[i].value(&mm);

		if (isnan(v))
			continue; /* does not apply to this run */
		r = put_metric(d, run_id, metric_defs[i].name, v, err, errlen);
		if (r < 0)
			return r;
	}
	for (unsigned i = 0; i < d->n_dev; i++) {
		static const char *const suffix[] = { "busy_s", "idle_s",
			                              "utilisation" };
		const double v[] = { m->busy_s[i], m->idle_s[i],
			             ratio(m->busy_s[i], m->time_s) };
		sqlite3_stmt *s = d->st[ST_DEVICE];
		char name[DB_MAX_DEV_NAME + 16];

		for (size_t k = 0; k < 3; k++) {
			snprintf(name, sizeof name, "%s.%s", d->dev_name[i],
			         suffix[k]);
			r = put_metric(d, run_id, name, v[k], err, errlen);
			if (r < 0)
				return r;
		}
		sqlite3_bind_int64(s, 1, run_id);
		sqlite3_bind_int(s, 2, (int)i);
		sqlite3_bind_text(s, 3, d->dev_name[i], -1, SQLITE_TRANSIENT);
		sqlite3_bind_double(s, 4, m->busy_s[i]);
		sqlite3_bind_double(s, 5, m->idle_s[i]);
		sqlite3_bind_double(s, 6, m->dev_energy_j[i]);
		r = step_done(d, ST_DEVICE, "inserting a device", err, errlen);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < n_extra; i++) {
		r = put_metric(d, run_id, extra_names[i], extra_values[i], err,
		               errlen);
		if (r < 0)
			return r;
	}
	return 0;
}

int db_match_keys(const struct db_run_info *info, char match[65],
                  char policy[65], char *err, size_t errlen)
{
	struct dbc_rows rows;
	int r = dbc_rows_make(info, &rows, err, errlen);

	if (r == 0)
		dbc_match_keys(&rows, match, policy);
	dbc_rows_free(&rows);
	return r;
}

int db_run_intervals(struct db *d, int64_t run_id,
                     const struct stats_interval iv[STATS_N_METRICS], char *err,
                     size_t errlen)
{
	int r = check_run(d, run_id, "db_run_intervals", err, errlen);

	if (r < 0)
		return r;
	if (!iv) {
		util_set_err(err, errlen, "%s: db_run_intervals: no intervals",
		             d->path);
		db_run_rollback(d);
		return -EINVAL;
	}
	memcpy(d->iv, iv, sizeof d->iv);
	d->has_iv = 1;
	return 0;
}

/* The intervals db_run_intervals kept. */
static int put_intervals(struct db *d, char *err, size_t errlen)
{
	sqlite3_stmt *s = NULL;
	int r = 0;

	if (!d->has_iv)
		return 0;
	if (sqlite3_prepare_v2(d->h,
	                       "INSERT INTO intervals (run_id, name, "
	                       "lo, hi) VALUES (?1, ?2, ?3, ?4)",
	                       -1, &s, NULL) != SQLITE_OK)
		return sql_err(d, sqlite3_errcode(d->h), "storing intervals",
		               err, errlen);
	for (int m = 0; m < STATS_N_METRICS && r == 0; m++) {
		int rc;

		if (!isfinite(d->iv[m].lo) || !isfinite(d->iv[m].hi))
			continue;
		sqlite3_bind_int64(s, 1, d->run_id);
		sqlite3_bind_text(s, 2, stats_metric_name[m], -1,
		                  SQLITE_STATIC);
		sqlite3_bind_double(s, 3, d->iv[m].lo);
		sqlite3_bind_double(s, 4, d->iv[m].hi);
		rc = sqlite3_step(s);
		if (rc != SQLITE_DONE)
			r = sql_err(d, rc, "storing intervals", err, errlen);
		sqlite3_reset(s);
	}
	sqlite3_finalize(s);
	return r;
}

/* The run's configuration rows and match hashes; run_table again when
 * the run brings a key no run had. */
static int put_config(struct db *d, char *err, size_t errlen)
{
	struct dbc_rows rows;
	unsigned added = 0;
	int r = dbc_rows_make(&d->info, &rows, err, errlen);

	if (r == 0)
		r = dbc_store(d->h, d->path, d->run_id, d->info.policy, &rows,
		              &added, err, errlen);
	dbc_rows_free(&rows);
	if (r == 0 && added)
		r = dbc_rebuild_run_table(d->h, d->path, err, errlen);
	return r;
}

static int cmp_own(const void *a, const void *b)
{
	const int64_t x = ((const struct own_seq *)a)->seq;
	const int64_t y = ((const struct own_seq *)b)->seq;
	return (x > y) - (x < y);
}

/* The paired intervals the commit will store, worked out before it
 * takes the write lock (dbc_pairs_prepare); empty when that fails: the
 * commit computes them then. */
static void prepare_pairs(struct db *d, struct dbc_pairs *pre)
{
	struct dbc_rows rows = { 0 };
	char match[65], policy[65], err[256];
	struct stats_seq *s = NULL;
	int64_t *ids = NULL;

	memset(pre, 0, sizeof *pre);
	if (dbc_rows_make(&d->info, &rows, err, sizeof err) < 0)
		goto out;
	dbc_match_keys(&rows, match, policy);
	if (d->n_own)
		qsort(d->own, d->n_own, sizeof *d->own, cmp_own);
	s = malloc((d->n_own ? d->n_own : 1) * sizeof *s);
	ids = malloc((d->n_own ? d->n_own : 1) * sizeof *ids);
	if (!s || !ids)
		goto out;
	for (size_t i = 0; i < d->n_own; i++) {
		s[i] = d->own[i].s;
		ids[i] = d->own[i].seq;
	}
	dbc_pairs_prepare(d->h, d->path, d->run_id, d->info.policy, match,
	                  policy, s, ids, d->n_own, pre, err, sizeof err);
out:
	dbc_rows_free(&rows);
	free(s);
	free(ids);
}

int db_run_commit(struct db *d, int64_t run_id, const struct replay_metrics *m,
                  double wall_s, const char *const *extra_names,
                  const double *extra_values, size_t n_extra, char *err,
                  size_t errlen)
{
	int r = check_run(d, run_id, "db_run_commit", err, errlen);

	if (r < 0)
		return r;
	if (!m || (n_extra && (!extra_names || !extra_values))) {
		util_set_err(err, errlen,
		             "%s: db_run_commit: invalid arguments", d->path);
		r = -EINVAL;
		goto error;
	}
	/* The bootstrap of its paired intervals first, without a lock; then
	 * the run's one write transaction: everything buffered since
	 * db_run_begin, then the metrics. */
	struct dbc_pairs pre;
	prepare_pairs(d, &pre);
	r = step_done(d, ST_BEGIN, "committing the run", err, errlen);
	if (r < 0) {
		dbc_pairs_free(&pre);
		goto error;
	}
	r = put_run(d, wall_s, err, errlen);
	if (r == 0)
		r = put_all_records(d, err, errlen);
	if (r == 0)
		r = put_metrics(d, run_id, m, extra_names, extra_values,
		                n_extra, err, errlen);
	if (r == 0)
		r = put_config(d, err, errlen);
	if (r == 0)
		r = put_intervals(d, err, errlen);
	if (r == 0)
		r = dbc_compare_run(d->h, d->path, d->run_id, d->info.policy,
		                    &pre, err, errlen);
	dbc_pairs_free(&pre);
	if (r == 0)
		r = step_done(d, ST_COMMIT, "committing the run", err, errlen);
	if (r < 0)
		goto error;
	run_clear(d);
	return 0;

error:
	db_run_rollback(d);
	return r;
}

int db_record_failure(struct db *d, const struct db_failure *f, char *err,
                      size_t errlen)
{
	sqlite3_stmt *s;
	char created[48];
	int r;

	if (!d || !f || !f->message || !*f->message) {
		util_set_err(
		        err, errlen,
		        "db_record_failure: invalid arguments (a message is "
		        "required)");
		return -EINVAL;
	}
	if (d->readonly) {
		util_set_err(err, errlen, "%s: opened read-only", d->path);
		return -EROFS;
	}
	utc_now(created, sizeof created);
	r = step_done(d, ST_BEGIN, "recording a failure", err, errlen);
	if (r < 0)
		return r;
	s = d->st[ST_FAILURE];
	bind_text(s, 1, created);
	if (f->run_id > 0)
		sqlite3_bind_int64(s, 2, f->run_id);
	else
		sqlite3_bind_null(s, 2);
	bind_text(s, 3, f->label);
	bind_text(s, 4, f->trace_path);
	bind_text(s, 5, f->hw_preset);
	bind_text(s, 6, f->policy);
	bind_text(s, 7, f->drafter);
	bind_text(s, 8, f->config);
	bind_text(s, 9, f->plugin);
	bind_text(s, 10, f->hook);
	if (f->signal > 0)
		sqlite3_bind_int(s, 11, f->signal);
	else
		sqlite3_bind_null(s, 11);
	bind_text(s, 12, f->message);
	r = step_done(d, ST_FAILURE, "recording a failure", err, errlen);
	if (r == 0)
		r = step_done(d, ST_COMMIT, "recording a failure", err, errlen);
	if (r < 0)
		tx_rollback(d);
	return r;
}

int db_add_baseline(struct db *d, const char *policy, char *err, size_t errlen)
{
	sqlite3_stmt *s = NULL;
	int r, rc;

	if (!d || !policy || !*policy) {
		util_set_err(err, errlen, "db_add_baseline: invalid arguments");
		return -EINVAL;
	}
	if (d->readonly) {
		util_set_err(err, errlen, "%s: opened read-only", d->path);
		return -EROFS;
	}
	r = step_done(d, ST_BEGIN, "adding a baseline", err, errlen);
	if (r < 0)
		return r;
	rc = sqlite3_prepare_v2(d->h,
	                        "INSERT OR IGNORE INTO baselines "
	                        "(policy) VALUES (?1)",
	                        -1, &s, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(s, 1, policy, -1, SQLITE_TRANSIENT);
		rc = sqlite3_step(s);
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE && rc != SQLITE_OK)
		r = sql_err(d, rc, "adding a baseline", err, errlen);
	else if (sqlite3_changes(d->h) > 0)
		r = dbc_add_baseline(d->h, d->path, policy, err, errlen);
	if (r == 0)
		r = step_done(d, ST_COMMIT, "adding a baseline", err, errlen);
	if (r < 0)
		tx_rollback(d);
	return r;
}

int db_compare(struct db *d, int64_t run_id, const char *baseline,
               struct db_comparison *out, char *err, size_t errlen)
{
	sqlite3_stmt *s = NULL;
	int rc, r = 0;

	if (!d || !baseline || !out) {
		util_set_err(err, errlen, "db_compare: invalid arguments");
		return -EINVAL;
	}
	rc = sqlite3_prepare_v2(
	        d->h,
	        "SELECT baseline_run_id, speedup, energy_gain, speedup_lo, "
	        "speedup_hi, energy_gain_lo, energy_gain_hi FROM comparisons "
	        "WHERE run_id = ?1 AND baseline_policy = ?2",
	        -1, &s, NULL);
	if (rc != SQLITE_OK)
		return sql_err(d, rc, "reading a comparison", err, errlen);
	sqlite3_bind_int64(s, 1, run_id);
	sqlite3_bind_text(s, 2, baseline, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		double *const v[] = {
			&out->speedup,        &out->energy_gain,
			&out->speedup_lo,     &out->speedup_hi,
			&out->energy_gain_lo, &out->energy_gain_hi
		};

		out->baseline_run_id = sqlite3_column_int64(s, 0);
		for (int i = 0; i < 6; i++)
			*v[i] = sqlite3_column_type(s, i + 1) == SQLITE_NULL
			                ? NAN
			                : sqlite3_column_double(s, i + 1);
	} else if (rc == SQLITE_DONE) {
		util_set_err(err, errlen,
		             "%s: run %lld has no comparison with "
		             "'%s' (not a run, or not a baseline policy)",
		             d->path, (long long)run_id, baseline);
		r = -ENOENT;
	} else {
		r = sql_err(d, rc, "reading a comparison", err, errlen);
	}
	sqlite3_finalize(s);
	return r;
}
