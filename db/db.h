/* db.h - results database (SQLite). Schema: db/SCHEMA.md.
 *
 * Knows nothing of msgpack or of the engine's internals beyond the plain
 * result structs in replay/results.h. One run is written in one transaction:
 * db_run_begin() .. db_run_commit(); db_run_rollback() leaves no trace of it.
 * Any error from db_run_sequence/_event/_commit rolls the open run back, and
 * db_close() rolls back a run still open. Busy timeout: AHASD_DB_BUSY_MS
 * (milliseconds) overrides the 10 s default.
 */
#ifndef AHASD_DB_H
#define AHASD_DB_H

#include <stddef.h>
#include <stdint.h>

#include "results.h"

#define DB_SCHEMA_VERSION 2
#define DB_APPLICATION_ID 0x41485344 /* "AHSD" */

struct db;

struct db_run_info {
	const char *tool_version;
	const char *label;            /* optional, e.g. a configuration name */
	const char *policy, *policy_version, *policy_params, *policy_path;
	const char *drafter, *drafter_version, *drafter_params, *drafter_path;
	const char *hw_preset;        /* platform name */
	const char *hw_config;        /* full "key = value" dump */
	const char *trace_path, *trace_sha256;
	const char *draft_model, *target_model;
	const char *retargeted_from;  /* NULL unless --models was used */
	int sampled;
	uint64_t seed;
	uint32_t queue_capacity, max_draft;
	const char *device_names[RESULT_MAX_DEV];
	unsigned n_dev;
};

/** Open or create; apply migrations; WAL, busy timeout 10 s.
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

/** BEGIN IMMEDIATE and insert the run row. */
int db_run_begin(struct db *d, const struct db_run_info *info,
                 int64_t *run_id, char *err, size_t errlen);
int db_run_sequence(struct db *d, int64_t run_id,
                    const struct replay_seq_result *s, char *err,
                    size_t errlen);
/** Bound on events stored per run (default 1,000,000); events past it are
 * counted, not stored, and the count is kept as metric events_dropped.
 * @return 0 or -EINVAL. */
int db_set_max_events(struct db *d, uint64_t max_events);
/** Record one event; returns 1 when stored, 0 when past max_events. */
int db_run_event(struct db *d, int64_t run_id, const struct replay_event *ev,
                 char *err, size_t errlen);
/** Store metrics (standard ones, per-device rows, and extra named values
 * such as plugin counters) and COMMIT. */
int db_run_commit(struct db *d, int64_t run_id,
                  const struct replay_metrics *m, double wall_s,
                  const char *const *extra_names, const double *extra_values,
                  size_t n_extra, char *err, size_t errlen);
void db_run_rollback(struct db *d);

#endif
