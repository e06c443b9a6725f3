/* db_pairs.c - paired intervals of runs against their baselines
 * (db/SCHEMA.md, Intervals and Baselines): computed in the commit's
 * transaction (dbc_compare_run), or before it on a snapshot of the file
 * and only stored in it (dbc_pairs_prepare), and for a policy made a
 * baseline (dbc_add_baseline). Declared in db_config.h.
 */
#include "db_config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "stats.h"
#include "util.h"

static int sql_fail(sqlite3 *h, const char *path, const char *what, char *err,
                    size_t errlen)
{
	util_set_err(err, errlen, "%s: %s: %s", path, what, sqlite3_errmsg(h));
	return (sqlite3_errcode(h) & 0xff) == SQLITE_BUSY ? -EBUSY : -EIO;
}

/* ---- paired intervals (db/SCHEMA.md, Intervals) ---- */

/* A run's sequences in seq order, as the bootstrap takes them; *ids their
 * numbers. A NULL batch_tokens (a row older than version 3) leaves the
 * draft length unknown. */
static int load_seqs(sqlite3 *h, const char *path, int64_t run_id,
                     struct stats_seq **out, int64_t **ids, size_t *n,
                     char *err, size_t errlen)
{
	sqlite3_stmt *s = NULL;
	size_t cap = 0;
	int rc, ret = 0;

	*out = NULL;
	*ids = NULL;
	*n = 0;
	if (sqlite3_prepare_v2(
	            h,
	            "SELECT seq, committed, time_s, energy_j, drafted, "
	            "accepted, "
	            "batches, batch_tokens FROM sequences WHERE run_id = ?1 "
	            "ORDER BY seq",
	            -1, &s, NULL) != SQLITE_OK)
		return sql_fail(h, path, "reading sequences", err, errlen);
	sqlite3_bind_int64(s, 1, run_id);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct replay_seq_result r = { 0 };

		if (*n == cap) {
			const size_t c = cap ? 2 * cap : 64;
			struct stats_seq *p = realloc(*out, c * sizeof *p);
			int64_t *q = p ? realloc(*ids, c * sizeof *q) : NULL;

			if (p)
				*out = p;
			if (!p || !q) {
				util_set_err(err, errlen, "%s: out of memory",
				             path);
				ret = -ENOMEM;
				goto out;
			}
			*ids = q;
			cap = c;
		}
		(*ids)[*n] = sqlite3_column_int64(s, 0);
		r.committed = (uint32_t)sqlite3_column_int64(s, 1);
		r.time_s = sqlite3_column_double(s, 2);
		r.energy_j = sqlite3_column_double(s, 3);
		r.drafted = (uint64_t)sqlite3_column_int64(s, 4);
		r.accepted = (uint64_t)sqlite3_column_int64(s, 5);
		r.batches = (uint64_t)sqlite3_column_int64(s, 6);
		r.batch_tokens = (uint64_t)sqlite3_column_int64(s, 7);
		stats_seq_from(&r, &(*out)[*n]);
		if (sqlite3_column_type(s, 7) == SQLITE_NULL)
			(*out)[*n].num[STATS_MEAN_DRAFT_LEN] = NAN;
		(*n)++;
	}
	if (rc != SQLITE_DONE)
		ret = sql_fail(h, path, "reading sequences", err, errlen);
out:
	sqlite3_finalize(s);
	if (ret < 0) {
		free(*out);
		free(*ids);
		*out = NULL;
		*ids = NULL;
		*n = 0;
	}
	return ret;
}

/* The paired intervals of sequences sa over sb (numbered ia, ib): *none
 * when they are not the same sequences. */
static int pair_compute(const char *path, const struct stats_seq *sa,
                        const int64_t *ia, size_t na,
                        const struct stats_seq *sb, const int64_t *ib,
                        size_t nb, int *none,
                        struct stats_interval iv[STATS_N_METRICS], char *err,
                        size_t errlen)
{
	*none = na == 0 || na != nb || memcmp(ia, ib, na * sizeof *ia) != 0;
	if (*none)
		return 0;
	if (stats_paired(sa, sb, na, iv) < 0) {
		util_set_err(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	return 0;
}

static const struct dbc_pair *pair_find(const struct dbc_pairs *pre, int64_t a,
                                        int64_t b)
{
	for (size_t i = 0; pre && i < pre->n; i++)
		if (pre->v[i].a == a && pre->v[i].b == b)
			return &pre->v[i];
	return NULL;
}

/* Paired intervals of run a over run b, when they replayed the same
 * sequences (else none): from pre when it has them. */
static int pair(sqlite3 *h, const char *path, int64_t a, int64_t b,
                const struct dbc_pairs *pre, char *err, size_t errlen)
{
	struct stats_seq *sa = NULL, *sb = NULL;
	int64_t *ia = NULL, *ib = NULL;
	struct stats_interval ivbuf[STATS_N_METRICS];
	const struct stats_interval *iv = ivbuf;
	sqlite3_stmt *s = NULL;
	size_t na = 0, nb = 0;
	int ret = 0, none = 0;
	const struct dbc_pair *p = pair_find(pre, a, b);

	if (p) {
		none = p->none;
		iv = p->iv;
	} else {
		ret = load_seqs(h, path, a, &sa, &ia, &na, err, errlen);
		if (ret == 0)
			ret = load_seqs(h, path, b, &sb, &ib, &nb, err, errlen);
		if (ret == 0)
			ret = pair_compute(path, sa, ia, na, sb, ib, nb, &none,
			                   ivbuf, err, errlen);
	}
	if (ret < 0 || none)
		goto out;
	if (sqlite3_prepare_v2(h,
	                       "INSERT OR REPLACE INTO paired_intervals "
	                       "(run_id, baseline_run_id, name, ratio, lo, hi) "
	                       "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	                       -1, &s, NULL) != SQLITE_OK) {
		ret = sql_fail(h, path, "storing paired intervals", err,
		               errlen);
		goto out;
	}
	for (int m = 0; m < STATS_N_METRICS; m++) {
		if (!isfinite(iv[m].value) || !isfinite(iv[m].lo) ||
		    !isfinite(iv[m].hi))
			continue;
		sqlite3_bind_int64(s, 1, a);
		sqlite3_bind_int64(s, 2, b);
		sqlite3_bind_text(s, 3, stats_metric_name[m], -1,
		                  SQLITE_STATIC);
		sqlite3_bind_double(s, 4, iv[m].value);
		sqlite3_bind_double(s, 5, iv[m].lo);
		sqlite3_bind_double(s, 6, iv[m].hi);
		if (sqlite3_step(s) != SQLITE_DONE) {
			ret = sql_fail(h, path, "storing paired intervals", err,
			               errlen);
			goto out;
		}
		sqlite3_reset(s);
	}
out:
	sqlite3_finalize(s);
	free(sa);
	free(sb);
	free(ia);
	free(ib);
	return ret;
}

/* Run ids from a query, ?1 (text) and ?2 (integer) bound where it has
 * them, in a malloc'd array. */
static int query_ids(sqlite3 *h, const char *path, const char *sql,
                     const char *t1, int64_t i2, int64_t **ids, size_t *n,
                     char *err, size_t errlen)
{
	sqlite3_stmt *s = NULL;
	size_t cap = 0;
	int rc;

	*ids = NULL;
	*n = 0;
	if (sqlite3_prepare_v2(h, sql, -1, &s, NULL) != SQLITE_OK)
		return sql_fail(h, path, "finding baselines", err, errlen);
	sqlite3_bind_text(s, 1, t1, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, i2);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (*n == cap) {
			const size_t c = cap ? 2 * cap : 16;
			int64_t *p = realloc(*ids, c * sizeof *p);

			if (!p) {
				sqlite3_finalize(s);
				util_set_err(err, errlen, "%s: out of memory",
				             path);
				return -ENOMEM;
			}
			*ids = p;
			cap = c;
		}
		(*ids)[(*n)++] = sqlite3_column_int64(s, 0);
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return sql_fail(h, path, "finding baselines", err, errlen);
	return 0;
}

/* The baseline of policy P for the runs with run ?2's match_key (the rule
 * of baseline_runs): the latest run of P among them, none when such runs
 * differ in P's own parameters. */
#define BASELINE_OF                                                        \
	"SELECT CASE WHEN count(DISTINCT x.policy_key) = 1 "               \
	"THEN max(x.run_id) END FROM run_match x WHERE x.policy = ?1 AND " \
	"x.match_key = (SELECT match_key FROM run_match WHERE run_id = ?2)"

int dbc_compare_run(sqlite3 *h, const char *path, int64_t run_id,
                    const char *policy, const struct dbc_pairs *pre, char *err,
                    size_t errlen)
{
	int64_t *ids = NULL, *base = NULL;
	size_t n = 0, nb = 0;
	char **pols = NULL;
	size_t npols = 0;
	sqlite3_stmt *s = NULL;
	int rc, ret = 0;

	/* the run against each baseline policy */
	if (sqlite3_prepare_v2(h,
	                       "SELECT policy FROM baselines UNION "
	                       "SELECT 'sync'",
	                       -1, &s, NULL) != SQLITE_OK)
		return sql_fail(h, path, "finding baselines", err, errlen);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		char **p = realloc(pols, (npols + 1) * sizeof *p);

		if (!p || !(p[npols] = strdup(
		                    (const char *)sqlite3_column_text(s, 0)))) {
			if (p)
				pols = p;
			rc = SQLITE_NOMEM;
			break;
		}
		pols = p;
		npols++;
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE) {
		ret = rc == SQLITE_NOMEM
		              ? (util_set_err(err, errlen, "%s: out of memory",
		                              path),
		                 -ENOMEM)
		              : sql_fail(h, path, "finding baselines", err,
		                         errlen);
		goto out;
	}
	for (size_t i = 0; i < npols && ret == 0; i++) {
		ret = query_ids(h, path, BASELINE_OF, pols[i], run_id, &base,
		                &nb, err, errlen);
		if (ret == 0 && nb == 1 && base[0] > 0)
			ret = pair(h, path, run_id, base[0], pre, err, errlen);
		free(base);
		base = NULL;
	}
	if (ret < 0)
		goto out;
	/* the run as the baseline of the others of its configuration, when
	 * its policy is a baseline policy and it is their baseline */
	for (size_t i = 0; i < npols; i++) {
		if (strcmp(pols[i], policy))
			continue;
		ret = query_ids(h, path, BASELINE_OF, policy, run_id, &base,
		                &nb, err, errlen);
		if (ret < 0 || nb != 1 || base[0] != run_id)
			break;
		ret = query_ids(
		        h, path,
		        "SELECT run_id FROM run_match WHERE run_id <> ?2 AND "
		        "match_key = (SELECT match_key FROM run_match WHERE "
		        "run_id = ?2)",
		        policy, run_id, &ids, &n, err, errlen);
		for (size_t j = 0; ret == 0 && j < n; j++)
			ret = pair(h, path, ids[j], run_id, pre, err, errlen);
		break;
	}
out:
	for (size_t i = 0; i < npols; i++)
		free(pols[i]);
	free(pols);
	free(ids);
	free(base);
	return ret;
}

int dbc_add_baseline(sqlite3 *h, const char *path, const char *policy,
                     char *err, size_t errlen)
{
	int64_t *ids = NULL, *base = NULL;
	size_t n = 0, nb = 0;
	int ret;

	/* every run that has a run of policy in its configuration */
	ret = query_ids(
	        h, path,
	        "SELECT x.run_id FROM run_match x WHERE EXISTS (SELECT 1 FROM "
	        "run_match y WHERE y.match_key = x.match_key AND y.policy = "
	        "?1) "
	        "ORDER BY x.run_id",
	        policy, 0, &ids, &n, err, errlen);
	for (size_t i = 0; ret == 0 && i < n; i++) {
		ret = query_ids(h, path, BASELINE_OF, policy, ids[i], &base,
		                &nb, err, errlen);
		if (ret == 0 && nb == 1 && base[0] > 0)
			ret = pair(h, path, ids[i], base[0], NULL, err, errlen);
		free(base);
		base = NULL;
	}
	free(ids);
	return ret;
}

/* ---- pairs worked out before the write transaction ---- */

void dbc_pairs_free(struct dbc_pairs *p)
{
	free(p->v);
	memset(p, 0, sizeof *p);
}

/* Work out run a over run b, one of them the run being written (its
 * sequences own[] / ids[]), the other loaded from the file. */
static int prepare_one(sqlite3 *h, const char *path, int64_t a, int64_t b,
                       int64_t self, const struct stats_seq *own,
                       const int64_t *ids, size_t n, struct dbc_pairs *out,
                       char *err, size_t errlen)
{
	struct stats_seq *so = NULL;
	int64_t *io = NULL;
	size_t no = 0;
	int ret;

	if (pair_find(out, a, b))
		return 0;
	if (out->n == out->cap) {
		const size_t c = out->cap ? 2 * out->cap : 8;
		struct dbc_pair *v = realloc(out->v, c * sizeof *v);
		if (!v) {
			util_set_err(err, errlen, "%s: out of memory", path);
			return -ENOMEM;
		}
		out->v = v;
		out->cap = c;
	}
	if (a != self || b != self) {
		ret = load_seqs(h, path, a == self ? b : a, &so, &io, &no, err,
		                errlen);
		if (ret < 0)
			return ret;
	}
	struct dbc_pair *p = &out->v[out->n];
	p->a = a;
	p->b = b;
	if (a == self && b == self)
		ret = pair_compute(path, own, ids, n, own, ids, n, &p->none,
		                   p->iv, err, errlen);
	else if (a == self)
		ret = pair_compute(path, own, ids, n, so, io, no, &p->none,
		                   p->iv, err, errlen);
	else
		ret = pair_compute(path, so, io, no, own, ids, n, &p->none,
		                   p->iv, err, errlen);
	free(so);
	free(io);
	if (ret == 0)
		out->n++;
	return ret;
}

/* The baseline of policy P for a configuration once run self (policy,
 * policy_key) is in it: the rule of BASELINE_OF with the run counted. */
#define BASELINE_WITH                                                     \
	"SELECT CASE WHEN count(DISTINCT pk) = 1 THEN max(id) END FROM (" \
	"SELECT policy_key AS pk, run_id AS id FROM run_match WHERE "     \
	"match_key = ?1 AND policy = ?2 AND run_id <> ?3 UNION ALL "      \
	"SELECT ?4, ?3 WHERE ?5 = ?2)"

int dbc_pairs_prepare(sqlite3 *h, const char *path, int64_t run_id,
                      const char *policy, const char *match_key,
                      const char *policy_key, const struct stats_seq *own,
                      const int64_t *ids, size_t n, struct dbc_pairs *out,
                      char *err, size_t errlen)
{
	sqlite3_stmt *pols = NULL, *base = NULL, *others = NULL;
	int rc, ret = 0;

	memset(out, 0, sizeof *out);
	if (sqlite3_prepare_v2(h,
	                       "SELECT policy FROM baselines UNION SELECT "
	                       "'sync'",
	                       -1, &pols, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(h, BASELINE_WITH, -1, &base, NULL) !=
	            SQLITE_OK ||
	    sqlite3_prepare_v2(h,
	                       "SELECT run_id FROM run_match WHERE "
	                       "match_key = ?1 AND run_id <> ?2 ORDER BY "
	                       "run_id",
	                       -1, &others, NULL) != SQLITE_OK) {
		ret = sql_fail(h, path, "finding baselines", err, errlen);
		goto out;
	}
	/* one read transaction: one snapshot of the file */
	if (sqlite3_exec(h, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
		ret = sql_fail(h, path, "finding baselines", err, errlen);
		goto out;
	}
	while (ret == 0 && (rc = sqlite3_step(pols)) == SQLITE_ROW) {
		const char *bp = (const char *)sqlite3_column_text(pols, 0);
		sqlite3_reset(base);
		sqlite3_bind_text(base, 1, match_key, -1, SQLITE_STATIC);
		sqlite3_bind_text(base, 2, bp, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(base, 3, run_id);
		sqlite3_bind_text(base, 4, policy_key, -1, SQLITE_STATIC);
		sqlite3_bind_text(base, 5, policy, -1, SQLITE_STATIC);
		if (sqlite3_step(base) != SQLITE_ROW) {
			ret = sql_fail(h, path, "finding baselines", err,
			               errlen);
			break;
		}
		const int64_t b = sqlite3_column_type(base, 0) == SQLITE_NULL
		                          ? 0
		                          : sqlite3_column_int64(base, 0);
		if (b > 0 && b != run_id) {
			/* the run against its baseline */
			ret = prepare_one(h, path, run_id, b, run_id, own, ids,
			                  n, out, err, errlen);
		} else if (b == run_id && !strcmp(bp, policy)) {
			/* the run as its own baseline (a ratio of 1), and as
			 * the baseline of its configuration */
			ret = prepare_one(h, path, run_id, run_id, run_id, own,
			                  ids, n, out, err, errlen);
			sqlite3_reset(others);
			sqlite3_bind_text(others, 1, match_key, -1,
			                  SQLITE_STATIC);
			sqlite3_bind_int64(others, 2, run_id);
			while (ret == 0 &&
			       (rc = sqlite3_step(others)) == SQLITE_ROW)
				ret = prepare_one(
				        h, path,
				        sqlite3_column_int64(others, 0), run_id,
				        run_id, own, ids, n, out, err, errlen);
			if (ret == 0 && rc != SQLITE_DONE)
				ret = sql_fail(h, path, "finding baselines",
				               err, errlen);
		}
	}
	if (ret == 0 && rc != SQLITE_DONE)
		ret = sql_fail(h, path, "finding baselines", err, errlen);
out:
	sqlite3_finalize(pols);
	sqlite3_finalize(base);
	sqlite3_finalize(others);
	/* the read transaction ends whatever happened: the commit's own
	 * BEGIN IMMEDIATE follows on this connection */
	if (!sqlite3_get_autocommit(h) &&
	    sqlite3_exec(h, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		sqlite3_exec(h, "ROLLBACK", NULL, NULL, NULL);
	if (ret < 0)
		dbc_pairs_free(out);
	return ret;
}
