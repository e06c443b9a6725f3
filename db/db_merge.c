/* db_merge.c - db_merge(): the runs of another results database, with
 * every row that belongs to them, into this one (db.h; db/SCHEMA.md,
 * "Merging").
 *
 * The input is checked as db_open_readonly() checks a file (SQLite, this
 * application, this schema version), then attached to the output's
 * connection, and everything below happens in one BEGIN IMMEDIATE
 * transaction: the input is merged whole or not at all.
 *
 * Run ids: every id the input handed out (its runs, and the ids of its
 * failed runs in the failures table) gets a new one after the output's
 * last (run_ids), in the same order. Tables are copied by what their
 * columns say rather than by a list: a column run_id, or one ending in
 * _run_id (paired_intervals.baseline_run_id), is a run id and is
 * renumbered; runs.id is too; failures.id is given afresh; config_keys,
 * baselines and area_costs are sets (union; the output's area of a unit
 * stays when the input's differs); run_ids is the counter. A table with
 * none of these that holds rows is refused by name (a table a later
 * schema adds must say how it merges). Every other column is copied as
 * it is: the provenance of a run (created, tool_version, trace_path,
 * trace_sha256, plugin paths and versions, wall_s) stays.
 *
 * Then what depends on the runs together: run_table is made again when a
 * configuration key is new to the output, and every merged run gets its
 * paired intervals against its baselines in the output (a shard's run
 * and its sync run may come from two inputs), as db_run_commit would
 * have given them.
 *
 * Merging the same input twice is refused: a run of the input whose
 * configuration (run_match), creation time (to the millisecond) and wall
 * time equal a run's of the output is taken as already there, and so is
 * a failure with the same time, configuration and message.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "db.h"
#include "db_config.h"
#include "util.h"

static int fail(sqlite3 *h, const char *path, const char *what, char *err,
                size_t errlen)
{
	util_set_err(err, errlen, "%s: %s: %s", path, what, sqlite3_errmsg(h));
	return (sqlite3_errcode(h) & 0xff) == SQLITE_BUSY ? -EBUSY : -EIO;
}

static int exec(sqlite3 *h, const char *path, const char *sql, const char *what,
                char *err, size_t errlen)
{
	return sqlite3_exec(h, sql, NULL, NULL, NULL) == SQLITE_OK
	               ? 0
	               : fail(h, path, what, err, errlen);
}

/* The first column of the first row of sql (an integer), ?1 bound to t
 * when given. */
static int q_int(sqlite3 *h, const char *path, const char *sql, const char *t,
                 int64_t *v, char *err, size_t errlen)
{
	sqlite3_stmt *s = NULL;
	if (sqlite3_prepare_v2(h, sql, -1, &s, NULL) != SQLITE_OK)
		return fail(h, path, "reading the input", err, errlen);
	if (t)
		sqlite3_bind_text(s, 1, t, -1, SQLITE_STATIC);
	int rc = sqlite3_step(s);
	*v = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
	sqlite3_finalize(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return fail(h, path, "reading the input", err, errlen);
	return 0;
}

/* A growing string. */
struct buf {
	char *s;
	size_t n, cap;
	int oom;
};

static void put(struct buf *b, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
static void put(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	for (;;) {
		va_start(ap, fmt);
		const int k = vsnprintf(b->s ? b->s + b->n : NULL,
		                        b->s ? b->cap - b->n : 0, fmt, ap);
		va_end(ap);
		if (k < 0) {
			b->oom = 1;
			return;
		}
		if (b->s && b->n + (size_t)k < b->cap) {
			b->n += (size_t)k;
			return;
		}
		const size_t cap = (b->cap + (size_t)k + 1) * 2;
		char *p = realloc(b->s, cap);
		if (!p) {
			b->oom = 1;
			return;
		}
		b->s = p;
		b->cap = cap;
	}
}

enum how {
	AS_RUN_TABLE,
	AS_COUNTER,
	AS_FAILURES,
	AS_SET,
	AS_RUN_ROWS,
	AS_UNKNOWN
};

/* How table name merges, from its name and columns (see the top). */
static enum how how_of(const char *name, int has_run_col)
{
	if (!strcmp(name, "runs"))
		return AS_RUN_TABLE;
	if (!strcmp(name, "run_ids"))
		return AS_COUNTER;
	if (!strcmp(name, "failures"))
		return AS_FAILURES;
	if (!strcmp(name, "config_keys") || !strcmp(name, "baselines") ||
	    !strcmp(name, "area_costs"))
		return AS_SET;
	return has_run_col ? AS_RUN_ROWS : AS_UNKNOWN;
}

static int is_run_col(const char *table, const char *col)
{
	const size_t l = strlen(col);
	return !strcmp(col, "run_id") ||
	       (l > 7 && !strcmp(col + l - 7, "_run_id")) ||
	       (!strcmp(table, "runs") && !strcmp(col, "id"));
}

/* Copy table name of the input (schema src) into the output. */
static int copy_table(sqlite3 *h, const char *out_path, const char *in_path,
                      const char *name, char *err, size_t errlen)
{
	sqlite3_stmt *s = NULL;
	struct buf cols = { 0 }, vals = { 0 }, sql = { 0 };
	int has_run_col = 0, ret = 0, n_out = 0;
	int64_t rows = 0, n_cols_out = 0;

	/* the columns of the input's table, each in the output's too */
	if (sqlite3_prepare_v2(h,
	                       "SELECT name FROM pragma_table_info(?1, "
	                       "'src')",
	                       -1, &s, NULL) != SQLITE_OK)
		return fail(h, out_path, "reading the input's tables", err,
		            errlen);
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	int rc, n_in = 0;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *c = (const char *)sqlite3_column_text(s, 0);
		has_run_col |= is_run_col(name, c);
		n_in++;
	}
	sqlite3_finalize(s);
	s = NULL;
	if (rc != SQLITE_DONE)
		return fail(h, out_path, "reading the input's tables", err,
		            errlen);
	const enum how how = how_of(name, has_run_col);
	if (how == AS_COUNTER)
		return 0;
	{
		struct buf q = { 0 };
		put(&q, "SELECT count(*) FROM src.\"%s\"", name);
		if (q.oom)
			return -ENOMEM;
		ret = q_int(h, in_path, q.s, NULL, &rows, err, errlen);
		free(q.s);
		if (ret < 0)
			return ret;
	}
	if (rows == 0)
		return 0;
	if (how == AS_UNKNOWN) {
		util_set_err(err, errlen,
		             "%s: table %s (%lld rows) holds no run "
		             "ids, and this version of ahasd-db does not know "
		             "how to merge it",
		             in_path, name, (long long)rows);
		return -ENOTSUP;
	}
	if (sqlite3_prepare_v2(h,
	                       "SELECT name FROM pragma_table_info(?1, "
	                       "'main') WHERE name IN (SELECT name FROM "
	                       "pragma_table_info(?1, 'src'))",
	                       -1, &s, NULL) != SQLITE_OK)
		return fail(h, out_path, "reading the tables", err, errlen);
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *c = (const char *)sqlite3_column_text(s, 0);
		n_out++;
		if (how == AS_FAILURES && !strcmp(c, "id"))
			continue; /* a new one */
		put(&cols, "%s\"%s\"", cols.n ? ", " : "", c);
		if (is_run_col(name, c))
			put(&vals,
			    "%s(SELECT new FROM temp.merge_ids WHERE old "
			    "= x.\"%s\")",
			    vals.n ? ", " : "", c);
		else
			put(&vals, "%sx.\"%s\"", vals.n ? ", " : "", c);
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE) {
		ret = fail(h, out_path, "reading the tables", err, errlen);
		goto out;
	}
	{
		struct buf q = { 0 };
		put(&q, "SELECT count(*) FROM pragma_table_info('%s', 'main')",
		    name);
		ret = q.oom ? -ENOMEM
		            : q_int(h, out_path, q.s, NULL, &n_cols_out, err,
		                    errlen);
		free(q.s);
		if (ret < 0)
			goto out;
	}
	if (n_out != n_in || n_cols_out != n_in) {
		util_set_err(err, errlen,
		             "%s: table %s has columns the output "
		             "%s does not have, or lacks some of its own (the "
		             "same schema version, yet not the same tables)",
		             in_path, name, out_path);
		ret = -EPROTO;
		goto out;
	}
	put(&sql, "INSERT %sINTO main.\"%s\" (%s) SELECT %s FROM src.\"%s\" x",
	    how == AS_SET ? "OR IGNORE " : "", name, cols.s, vals.s, name);
	if (how == AS_RUN_TABLE || how == AS_FAILURES)
		put(&sql, " ORDER BY x.id");
	if (cols.oom || vals.oom || sql.oom) {
		util_set_err(err, errlen, "out of memory");
		ret = -ENOMEM;
		goto out;
	}
	if (sqlite3_exec(h, sql.s, NULL, NULL, NULL) != SQLITE_OK) {
		char what[160];
		snprintf(what, sizeof what, "copying table %s", name);
		ret = fail(h, out_path, what, err, errlen);
	}
out:
	free(cols.s);
	free(vals.s);
	free(sql.s);
	return ret;
}

/* Runs and failures of the input already in the output. */
#define ALREADY_RUNS                                                           \
	"SELECT count(*) FROM src.runs r JOIN src.run_match m ON m.run_id = "  \
	"r.id WHERE EXISTS (SELECT 1 FROM main.run_match om JOIN main.runs o " \
	"ON o.id = om.run_id WHERE om.match_key = m.match_key AND "            \
	"om.policy = m.policy AND om.policy_key = m.policy_key AND "           \
	"o.created = r.created AND o.wall_s IS r.wall_s)"
#define ALREADY_FAILURES                                                     \
	"SELECT count(*) FROM src.failures f WHERE EXISTS (SELECT 1 FROM "   \
	"main.failures o WHERE o.created = f.created AND o.message = "       \
	"f.message AND o.policy IS f.policy AND o.drafter IS f.drafter AND " \
	"o.config IS f.config AND o.trace_path IS f.trace_path)"

/* Everything of the input, attached as src, in the caller's transaction. */
static int merge_attached(sqlite3 *h, const char *out_path, const char *in_path,
                          struct db_merge_result *res,
                          void (*on_run)(void *, size_t, size_t), void *ctx,
                          char *err, size_t errlen)
{
	int64_t v = 0, n_runs = 0, n_fail = 0, last = 0, keys0 = 0, keys1 = 0;
	int ret;

	/* the same schema, checked again under the lock */
	ret = q_int(h, in_path, "PRAGMA src.application_id", NULL, &v, err,
	            errlen);
	if (ret == 0 && (uint32_t)v != DB_APPLICATION_ID) {
		util_set_err(err, errlen,
		             "%s: not an ahasd-replay database "
		             "(application_id 0x%08llx)",
		             in_path, (unsigned long long)(uint32_t)v);
		return -EINVAL;
	}
	if (ret == 0)
		ret = q_int(h, in_path, "PRAGMA src.user_version", NULL, &v,
		            err, errlen);
	if (ret == 0 && v != DB_SCHEMA_VERSION) {
		util_set_err(err, errlen,
		             "%s: schema version %lld, the output's "
		             "is %d: refused (a merge needs the same schema)",
		             in_path, (long long)v, DB_SCHEMA_VERSION);
		return -EPROTONOSUPPORT;
	}
	if (ret == 0)
		ret = q_int(h, in_path, "SELECT count(*) FROM src.runs", NULL,
		            &n_runs, err, errlen);
	if (ret == 0)
		ret = q_int(h, in_path, "SELECT count(*) FROM src.failures",
		            NULL, &n_fail, err, errlen);
	if (ret < 0)
		return ret;
	/* merged before? */
	ret = q_int(h, in_path, ALREADY_RUNS, NULL, &v, err, errlen);
	if (ret == 0 && v > 0) {
		util_set_err(
		        err, errlen,
		        "%s: %lld of its %lld runs are in %s "
		        "already (the same configuration, creation time and "
		        "wall time): it was merged before; nothing merged",
		        in_path, (long long)v, (long long)n_runs, out_path);
		return -EEXIST;
	}
	if (ret == 0)
		ret = q_int(h, in_path, ALREADY_FAILURES, NULL, &v, err,
		            errlen);
	if (ret == 0 && v > 0) {
		util_set_err(err, errlen,
		             "%s: %lld of its %lld failures are in "
		             "%s already (the same time, configuration and "
		             "message): it was merged before; nothing merged",
		             in_path, (long long)v, (long long)n_fail,
		             out_path);
		return -EEXIST;
	}
	if (ret < 0)
		return ret;
	/* the new ids, after the output's last, in the input's order */
	ret = q_int(h, out_path, "SELECT last FROM main.run_ids WHERE id = 1",
	            NULL, &last, err, errlen);
	if (ret == 0)
		ret = exec(
		        h, out_path,
		        "CREATE TEMP TABLE merge_ids (old INTEGER PRIMARY KEY, "
		        "new INTEGER NOT NULL)",
		        "renumbering runs", err, errlen);
	if (ret < 0)
		return ret;
	{
		sqlite3_stmt *s = NULL;
		if (sqlite3_prepare_v2(h,
		                       "INSERT INTO temp.merge_ids (old, new) "
		                       "SELECT old, ?1 + "
		                       "row_number() OVER (ORDER BY old) FROM "
		                       "(SELECT id AS old "
		                       "FROM src.runs UNION SELECT run_id FROM "
		                       "src.failures "
		                       "WHERE run_id IS NOT NULL)",
		                       -1, &s, NULL) != SQLITE_OK)
			return fail(h, out_path, "renumbering runs", err,
			            errlen);
		sqlite3_bind_int64(s, 1, last);
		const int rc = sqlite3_step(s);
		sqlite3_finalize(s);
		if (rc != SQLITE_DONE)
			return fail(h, out_path, "renumbering runs", err,
			            errlen);
	}
	ret = exec(h, out_path,
	           "UPDATE main.run_ids SET last = max(last, "
	           "(SELECT coalesce(max(new), 0) FROM temp.merge_ids)) "
	           "WHERE id = 1",
	           "renumbering runs", err, errlen);
	if (ret == 0)
		ret = q_int(h, out_path,
		            "SELECT count(*) FROM main.config_keys", NULL,
		            &keys0, err, errlen);
	if (ret < 0)
		return ret;
	/* the new baseline policies, before the baselines table is merged */
	char **newbase = NULL;
	size_t n_newbase = 0;
	{
		sqlite3_stmt *s = NULL;
		if (sqlite3_prepare_v2(
		            h,
		            "SELECT policy FROM src.baselines "
		            "WHERE policy NOT IN (SELECT policy FROM "
		            "main.baselines) ORDER BY policy",
		            -1, &s, NULL) != SQLITE_OK)
			return fail(h, in_path, "reading baselines", err,
			            errlen);
		int rc;
		while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
			char **p = realloc(newbase,
			                   (n_newbase + 1) * sizeof *p);
			if (!p || !(p[n_newbase] = strdup(
			                    (const char *)sqlite3_column_text(
			                            s, 0)))) {
				if (p)
					newbase = p;
				ret = -ENOMEM;
				break;
			}
			newbase = p;
			n_newbase++;
		}
		sqlite3_finalize(s);
		if (ret == 0 && rc != SQLITE_DONE)
			ret = fail(h, in_path, "reading baselines", err,
			           errlen);
		if (ret == -ENOMEM)
			util_set_err(err, errlen, "out of memory");
	}
	/* runs first (the others refer to them), then every other table */
	if (ret == 0)
		ret = copy_table(h, out_path, in_path, "runs", err, errlen);
	if (ret == 0) {
		sqlite3_stmt *s = NULL;
		if (sqlite3_prepare_v2(h,
		                       "SELECT name FROM src.sqlite_master "
		                       "WHERE type = 'table' AND name NOT LIKE "
		                       "'sqlite_%' AND name <> 'runs' ORDER BY "
		                       "name",
		                       -1, &s, NULL) != SQLITE_OK)
			ret = fail(h, in_path, "reading its tables", err,
			           errlen);
		int rc = SQLITE_DONE;
		while (ret == 0 && (rc = sqlite3_step(s)) == SQLITE_ROW) {
			char name[256];
			snprintf(name, sizeof name, "%s",
			         (const char *)sqlite3_column_text(s, 0));
			ret = copy_table(h, out_path, in_path, name, err,
			                 errlen);
		}
		sqlite3_finalize(s);
		if (ret == 0 && rc != SQLITE_DONE)
			ret = fail(h, in_path, "reading its tables", err,
			           errlen);
	}
	/* run_table's columns, when a key is new */
	if (ret == 0)
		ret = q_int(h, out_path,
		            "SELECT count(*) FROM main.config_keys", NULL,
		            &keys1, err, errlen);
	if (ret == 0 && keys1 != keys0)
		ret = dbc_rebuild_run_table(h, out_path, err, errlen);
	/* paired intervals: against a policy that is a baseline now, then
	 * every merged run against its baselines */
	for (size_t i = 0; ret == 0 && i < n_newbase; i++)
		ret = dbc_add_baseline(h, out_path, newbase[i], err, errlen);
	for (size_t i = 0; i < n_newbase; i++)
		free(newbase[i]);
	free(newbase);
	if (ret == 0) {
		sqlite3_stmt *s = NULL;
		if (sqlite3_prepare_v2(h,
		                       "SELECT m.new, r.policy FROM "
		                       "temp.merge_ids m JOIN main.runs r ON "
		                       "r.id = m.new ORDER BY m.new",
		                       -1, &s, NULL) != SQLITE_OK)
			ret = fail(h, out_path, "pairing runs", err, errlen);
		int rc = SQLITE_DONE;
		size_t done = 0;
		while (ret == 0 && (rc = sqlite3_step(s)) == SQLITE_ROW) {
			char policy[256];
			const int64_t id = sqlite3_column_int64(s, 0);
			snprintf(policy, sizeof policy, "%s",
			         (const char *)sqlite3_column_text(s, 1));
			ret = dbc_compare_run(h, out_path, id, policy, NULL,
			                      err, errlen);
			if (ret == 0 && !res->first_id)
				res->first_id = id;
			res->last_id = id;
			if (on_run)
				on_run(ctx, ++done, (size_t)n_runs);
		}
		sqlite3_finalize(s);
		if (ret == 0 && rc != SQLITE_DONE)
			ret = fail(h, out_path, "pairing runs", err, errlen);
	}
	if (ret == 0) {
		res->runs = (size_t)n_runs;
		res->failures = (size_t)n_fail;
	}
	return ret;
}

int db_merge(struct db *d, const char *in_path,
             void (*on_run)(void *ctx, size_t done, size_t total), void *ctx,
             struct db_merge_result *res, char *err, size_t errlen)
{
	sqlite3 *h = db_handle(d);
	const char *out_path = db_path(d);
	struct db *in = NULL;
	sqlite3_stmt *s = NULL;
	int ret;

	memset(res, 0, sizeof *res);
	/* SQLite, ours, this schema version: as a reader would find it */
	ret = db_open_readonly(&in, in_path, err, errlen);
	db_close(&in);
	if (ret < 0)
		return ret;
	if (sqlite3_prepare_v2(h, "ATTACH DATABASE ?1 AS src", -1, &s, NULL) !=
	    SQLITE_OK)
		return fail(h, out_path, "attaching the input", err, errlen);
	sqlite3_bind_text(s, 1, in_path, -1, SQLITE_STATIC);
	const int rc = sqlite3_step(s);
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE) {
		util_set_err(err, errlen, "%s: cannot attach it to %s: %s",
		             in_path, out_path, sqlite3_errmsg(h));
		return -EIO;
	}
	ret = exec(h, out_path, "BEGIN IMMEDIATE", "merging", err, errlen);
	if (ret == 0)
		ret = merge_attached(h, out_path, in_path, res, on_run, ctx,
		                     err, errlen);
	if (ret == 0)
		ret = exec(h, out_path, "COMMIT", "merging", err, errlen);
	if (ret < 0 && !sqlite3_get_autocommit(h))
		sqlite3_exec(h, "ROLLBACK", NULL, NULL, NULL);
	if (ret < 0)
		memset(res, 0, sizeof *res);
	sqlite3_exec(h, "DROP TABLE IF EXISTS temp.merge_ids", NULL, NULL,
	             NULL);
	sqlite3_exec(h, "DETACH DATABASE src", NULL, NULL, NULL);
	return ret;
}
