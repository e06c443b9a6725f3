/* db.h - results database (SQLite). Schema: db/SCHEMA.md.
 *
 * Knows nothing of msgpack or of the engine's internals beyond the plain
 * result structs in replay/results.h.
 *
 * A run is written in one short transaction at its end: db_run_begin()
 * takes the run's id (a moment's lock) and keeps the run info;
 * db_run_sequence() and db_run_event() keep rows in memory, up to a bound,
 * and in an unlinked temporary file past it; db_run_commit() writes all of
 * it and the metrics in one BEGIN IMMEDIATE transaction. The replay between
 * them holds no lock, so parallel sweeps sharing a file wait for each
 * other's commits only. Other connections see all of a run or none of it;
 * db_run_rollback() leaves no trace of it but its id, which is never
 * handed out again. Any error from db_run_sequence/_event/_commit rolls
 * the open run back, and db_close() rolls back a run still open.
 *
 * Busy timeout: 120 s, or AHASD_DB_BUSY_MS (milliseconds); db/SCHEMA.md
 * says why.
 */
#ifndef AHASD_DB_H
#define AHASD_DB_H

#include <stddef.h>
#include <stdint.h>

#include "results.h"
#include "stats.h"

#define DB_SCHEMA_VERSION 4
#define DB_APPLICATION_ID 0x41485344 /* "AHSD" */

struct db;

struct db_run_info {
	const char *tool_version;
	const char *label; /* optional, e.g. a configuration name */
	const char *policy, *policy_version, *policy_params, *policy_path;
	const char *drafter, *drafter_version, *drafter_params, *drafter_path;
	const char *hw_preset; /* platform name */
	const char *hw_config; /* full "key = value" dump */
	const char *trace_path, *trace_sha256;
	const char *draft_model, *target_model;
	const char *retargeted_from; /* NULL unless --models was used */
	int sampled;
	uint64_t seed;
	uint32_t queue_capacity, max_draft;
	const char *device_names[RESULT_MAX_DEV];
	unsigned n_dev;
};

/** The two hashes of a run's configuration rows that db_run_commit stores
 * (db/SCHEMA.md, run_match), without a database: runs with the same match
 * differ only in the policy and its parameters. @return 0, or negative
 * with a message. */
int db_match_keys(const struct db_run_info *info, char match[65],
                  char policy[65], char *err, size_t errlen);

/** Open or create; apply migrations; WAL, busy timeout 120 s (see top).
 * Safe against other processes opening the same new file at once.
 * Refuses a file that is not SQLite, a SQLite file of another application,
 * or a schema newer than DB_SCHEMA_VERSION. @return 0 or negative. */
int db_open(struct db **out, const char *path, char *err, size_t errlen);
/** Open an existing database read-only (viewer); same checks, no
 * migration. */
int db_open_readonly(struct db **out, const char *path, char *err,
                     size_t errlen);
void db_close(struct db **d);
/** Underlying handle, for readers such as the viewer. */
struct sqlite3 *db_handle(struct db *d);
/** The path the database was opened with. */
const char *db_path(const struct db *d);

/** Open a run: take its id (final, unique in the file, increasing in the
 * order runs begin) and copy the run info; nothing else is written until
 * db_run_commit. One run at a time per handle. @return 0, -EBUSY when the
 * file stays locked past the busy timeout or a run is already open,
 * -EROFS, -EINVAL. */
int db_run_begin(struct db *d, const struct db_run_info *info, int64_t *run_id,
                 char *err, size_t errlen);
/** Keep one sequence's result; stored at db_run_commit (a sequence number
 * given twice fails the commit). */
int db_run_sequence(struct db *d, int64_t run_id,
                    const struct replay_seq_result *s, char *err,
                    size_t errlen);
/** Bound on events stored per run (default 1,000,000); events past it are
 * counted, not stored, and the count is kept as metric events_dropped.
 * @return 0 or -EINVAL. */
int db_set_max_events(struct db *d, uint64_t max_events);
/** Memory for a run's buffered rows before they go to a temporary file
 * (in $TMPDIR, else /tmp, else beside the database; unlinked at once).
 * Default 4 MiB; at least one row is kept. Not while a run is open.
 * @return 0, -EINVAL or -EBUSY. */
int db_set_buffer_bytes(struct db *d, size_t bytes);
/** Record one event; returns 1 when kept for the commit, 0 when past
 * max_events (counted in events_dropped), negative on error. */
int db_run_event(struct db *d, int64_t run_id, const struct replay_event *ev,
                 char *err, size_t errlen);
/** Keep the run's bootstrap intervals (stats.h: the headline metrics over
 * its sequences) for db_run_commit; an interval with a NAN end is not
 * stored. */
int db_run_intervals(struct db *d, int64_t run_id,
                     const struct stats_interval iv[STATS_N_METRICS], char *err,
                     size_t errlen);
/** Write the run: its row, the kept sequences and events, metrics
 * (standard ones, per-device rows and extra named values such as plugin
 * counters), its configuration as rows with the hashes its baseline is
 * matched on (made from the run info: db/SCHEMA.md, config), the intervals
 * kept by db_run_intervals, and paired intervals against its baselines
 * (and of the runs it is the baseline of), in one BEGIN IMMEDIATE
 * transaction. */
int db_run_commit(struct db *d, int64_t run_id, const struct replay_metrics *m,
                  double wall_s, const char *const *extra_names,
                  const double *extra_values, size_t n_extra, char *err,
                  size_t errlen);
void db_run_rollback(struct db *d);

/** Make policy a baseline (db/SCHEMA.md, Baselines): the comparisons
 * view covers it from now on, and the runs already stored get paired
 * intervals against it. sync always is one. @return 0 or negative. */
int db_add_baseline(struct db *d, const char *policy, char *err, size_t errlen);

/* A run against its baseline (the comparisons view). */
struct db_comparison {
	int64_t baseline_run_id;       /* 0: no baseline */
	double speedup, energy_gain;   /* ratios of tokens/s, tokens/J; NAN
	                                * without a baseline */
	double speedup_lo, speedup_hi; /* paired 95% interval, NAN if none */
	double energy_gain_lo, energy_gain_hi;
};

/** Run run_id against baseline policy baseline (one of the baselines
 * table, or sync). @return 0, -ENOENT when the run or the baseline policy
 * is unknown, or negative with a message. */
int db_compare(struct db *d, int64_t run_id, const char *baseline,
               struct db_comparison *out, char *err, size_t errlen);

/* A run that failed, for a sweep that records it and goes on. Every field
 * but message may be NULL (0 for the numbers). */
struct db_failure {
	const char *label; /* configuration name */
	const char *trace_path;
	const char *hw_preset;
	const char *policy;  /* policy plugin, name or path */
	const char *drafter; /* drafter plugin, name or path */
	const char *config;  /* the rest of the configuration, free text */
	const char *plugin;  /* the plugin at fault */
	const char *hook;    /* the hook it was in */
	int signal;          /* the signal that ended the run, 0 if none */
	const char *message; /* what went wrong; required */
	int64_t run_id;      /* the id db_run_begin gave it, 0 if none */
};

/* What db_merge brought in. */
struct db_merge_result {
	size_t runs, failures;
	int64_t first_id, last_id; /* the merged runs' new ids, 0 if none */
};

/** Merge every run of the results database at in_path, with every row
 * that belongs to it (metrics, devices, sequences, events, configuration,
 * intervals, failures, ...), into d, in one transaction: run ids are
 * renumbered after d's last, all else kept as it is (provenance: created,
 * tool version, trace path and SHA-256, plugin paths, wall time); then
 * the merged runs get their paired intervals against their baselines in
 * d. Refuses (nothing merged) a file that is not a results database of
 * this schema version, and an input whose runs or failures d already
 * holds (merged before). on_run, when given, is called after each run's
 * pairing with the count done and the input's runs. db/db_merge.c,
 * db/SCHEMA.md ("Merging"). @return 0, or negative with a message. */
int db_merge(struct db *d, const char *in_path,
             void (*on_run)(void *ctx, size_t done, size_t total), void *ctx,
             struct db_merge_result *res, char *err, size_t errlen);

/** Add a row to the failures table, in a transaction of its own (a run
 * open on the same handle is not touched). @return 0 or negative. */
int db_record_failure(struct db *d, const struct db_failure *f, char *err,
                      size_t errlen);

/* ---- studies and their Pareto fronts (db/db_study.c; db/SCHEMA.md,
 * "Pareto fronts") ---- */

/* A run of the pareto view. */
struct db_front_row {
	int64_t run_id;
	char policy[64], drafter[64], preset[64];
	double tokens_per_s, tokens_per_j, area_mm2;
	double tokens_per_s_lo, tokens_per_s_hi; /* NAN: no interval */
	double tokens_per_j_lo, tokens_per_j_hi;
	int on_front;      /* of tokens/s against tokens/J */
	int on_front_area; /* with area as a third cost */
};

/** Runs labelled study (NULL: the runs without a label) in *n. */
int db_study_runs(struct db *d, const char *study, int64_t *n, char *err,
                  size_t errlen);

/** The runs of study (NULL: without a label) on its front (and, with
 * area, those on its front with area as a third cost), fastest first,
 * in *rows (malloc'd, *n of them; free()). @return 0, or negative with a
 * message. */
int db_pareto_front(struct db *d, const char *study, int area,
                    struct db_front_row **rows, size_t *n, char *err,
                    size_t errlen);

/** Run run_id's configuration value of key (the config table) as text
 * in buf. @return 0, -ENOENT when the run has no such key, or negative
 * with a message. */
int db_config_value(struct db *d, int64_t run_id, const char *key, char *buf,
                    size_t len, char *err, size_t errlen);

#endif
