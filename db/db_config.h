/* db_config.h - inside db/: a run's configuration as (key, value) rows,
 * the hashes its baseline is matched on, and the pivoted view run_table
 * (db/SCHEMA.md, "Configuration"). Not a public header: db.c calls it
 * within its own transactions.
 */
#ifndef AHASD_DB_CONFIG_H
#define AHASD_DB_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "db.h"

struct sqlite3;

enum dbc_type { DBC_INT, DBC_REAL, DBC_TEXT };

/* One row: the key, and the value as stored (typed as it reads) and as
 * hashed (canonical text: integers in decimal, reals in the fewest digits
 * that read back exactly, text as is). */
struct dbc_row {
	char *key;
	char *text;
	enum dbc_type type;
	int64_t i;
	double d;
};

struct dbc_rows {
	struct dbc_row *row; /* sorted by key */
	size_t n, cap;
};

/** The rows of the run info's configuration (the keys: db/SCHEMA.md).
 * @return 0, -ENOMEM or -EINVAL (a key twice) with a message. */
int dbc_rows_make(const struct db_run_info *in, struct dbc_rows *out, char *err,
                  size_t errlen);
void dbc_rows_free(struct dbc_rows *r);

/** SHA-256 (hex) of the "key=text\n" lines, in key order: match over every
 * row except policy and policy.*, policy over those. */
void dbc_match_keys(const struct dbc_rows *r, char match[65], char policy[65]);

/** Store the rows and the hashes of run run_id; count the keys no run
 * had before in *new_keys. In the caller's transaction. */
int dbc_store(struct sqlite3 *h, const char *path, int64_t run_id,
              const char *policy, const struct dbc_rows *r, unsigned *new_keys,
              char *err, size_t errlen);

/** Make run_table again with one column per key of config_keys. */
int dbc_rebuild_run_table(struct sqlite3 *h, const char *path, char *err,
                          size_t errlen);

/** Migration 3: the rows and hashes of every run stored before it, from
 * the runs table's own columns, then run_table. */
int dbc_backfill(struct sqlite3 *h, const char *path, char *err, size_t errlen);

/* ---- paired intervals (db_pairs.c) ---- */

/* Paired intervals worked out before the write transaction that stores
 * them (dbc_pairs_prepare): the bootstrap is the costly part of a commit,
 * and other writers need not wait for it. */
struct dbc_pair {
	int64_t a, b; /* run a over run b */
	int none;     /* not the same sequences: no rows */
	struct stats_interval iv[STATS_N_METRICS];
};
struct dbc_pairs {
	struct dbc_pair *v;
	size_t n, cap;
};

/** Before run run_id (policy, match and policy keys as dbc_match_keys
 * makes them; its sequences own[], numbered ids[], in seq order) is
 * written: the pairs dbc_compare_run will want for it, as the file is
 * now, computed outside any transaction. Whatever the file becomes in
 * between, dbc_compare_run stores the same rows: a pair it finds here
 * is the same two runs' sequences (runs never change), and one it does
 * not find it computes. @return 0, or negative (out is then empty: an
 * optimisation only). */
int dbc_pairs_prepare(struct sqlite3 *h, const char *path, int64_t run_id,
                      const char *policy, const char *match_key,
                      const char *policy_key, const struct stats_seq *own,
                      const int64_t *ids, size_t n, struct dbc_pairs *out,
                      char *err, size_t errlen);
void dbc_pairs_free(struct dbc_pairs *p);

/** Paired intervals of run run_id (of policy policy, just stored) against
 * its baseline under every baseline policy, and of the runs of its
 * configuration against it when it is now their baseline; those in pre
 * (or NULL) are taken from there. */
int dbc_compare_run(struct sqlite3 *h, const char *path, int64_t run_id,
                    const char *policy, const struct dbc_pairs *pre, char *err,
                    size_t errlen);

/** Paired intervals of every run against its baseline of policy policy
 * (a policy just made a baseline). */
int dbc_add_baseline(struct sqlite3 *h, const char *path, const char *policy,
                     char *err, size_t errlen);

/* The head and tail of run_table's definition; the config columns go
 * between them. Migration 3 creates it with none. */
#define DBC_RUN_TABLE_HEAD           \
	"CREATE VIEW run_table AS\n" \
	"SELECT r.id AS run_id, r.label, r.created,\n"
#define DBC_RUN_TABLE_TAIL                                                     \
	"       s.committed, s.time_s,\n"                                      \
	"       s.tokens_per_s, s.tokens_per_s_lo, s.tokens_per_s_hi,\n"       \
	"       s.energy_j,\n"                                                 \
	"       s.tokens_per_j, s.tokens_per_j_lo, s.tokens_per_j_hi,\n"       \
	"       s.acceptance_rate, s.acceptance_rate_lo, "                     \
	"s.acceptance_rate_hi,\n"                                              \
	"       s.mean_draft_len, s.mean_draft_len_lo, s.mean_draft_len_hi,\n" \
	"       v.baseline_run_id AS sync_run_id,\n"                           \
	"       v.speedup, v.speedup_lo, v.speedup_hi, v.speedup_differs,\n"   \
	"       v.energy_gain, v.energy_gain_lo, v.energy_gain_hi, "           \
	"v.energy_gain_differs\n"                                              \
	"FROM runs r\n"                                                        \
	"JOIN run_summary s ON s.run_id = r.id\n"                              \
	"LEFT JOIN speedup_vs_sync v ON v.run_id = r.id;\n"

#endif
