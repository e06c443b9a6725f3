/* db_study.c - a study's runs and its Pareto fronts, read from the
 * pareto view (db.h; db/SCHEMA.md, "Pareto fronts"). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "db.h"
#include "util.h"

static int fail(struct db *d, const char *what, char *err, size_t errlen)
{
	util_set_err(err, errlen, "%s: %s: %s", db_path(d), what,
	             sqlite3_errmsg(db_handle(d)));
	return -EIO;
}

static double col_real(sqlite3_stmt *s, int i)
{
	return sqlite3_column_type(s, i) == SQLITE_NULL
	               ? NAN
	               : sqlite3_column_double(s, i);
}

static void col_text(sqlite3_stmt *s, int i, char *buf, size_t len)
{
	const unsigned char *t = sqlite3_column_text(s, i);

	snprintf(buf, len, "%s", t ? (const char *)t : "");
}

int db_study_runs(struct db *d, const char *study, int64_t *n, char *err,
                  size_t errlen)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if (sqlite3_prepare_v2(db_handle(d),
	                       "SELECT count(*) FROM runs "
	                       "WHERE label IS ?1",
	                       -1, &s, NULL) != SQLITE_OK)
		return fail(d, "counting a study's runs", err, errlen);
	if (study)
		sqlite3_bind_text(s, 1, study, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	*n = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
	sqlite3_finalize(s);
	return rc == SQLITE_ROW
	               ? 0
	               : fail(d, "counting a study's runs", err, errlen);
}

int db_pareto_front(struct db *d, const char *study, int area,
                    struct db_front_row **rows, size_t *n, char *err,
                    size_t errlen)
{
	static const char sql[] =
	        "SELECT p.run_id, r.policy, r.drafter, r.hw_preset, "
	        "p.tokens_per_s, p.tokens_per_j, p.area_mm2, p.on_front, "
	        "p.on_front_area, s.tokens_per_s_lo, s.tokens_per_s_hi, "
	        "s.tokens_per_j_lo, s.tokens_per_j_hi "
	        "FROM pareto p JOIN runs r ON r.id = p.run_id "
	        "JOIN run_summary s ON s.run_id = p.run_id "
	        "WHERE p.study IS ?1 AND (p.on_front OR (?2 AND "
	        "p.on_front_area)) "
	        "ORDER BY p.tokens_per_s DESC, p.tokens_per_j DESC, p.run_id";
	sqlite3_stmt *s = NULL;
	size_t cap = 0;
	int rc;

	*rows = NULL;
	*n = 0;
	if (sqlite3_prepare_v2(db_handle(d), sql, -1, &s, NULL) != SQLITE_OK)
		return fail(d, "reading the pareto view", err, errlen);
	if (study)
		sqlite3_bind_text(s, 1, study, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 2, area != 0);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct db_front_row *f;

		if (*n == cap) {
			const size_t c = cap ? 2 * cap : 16;
			f = realloc(*rows, c * sizeof *f);
			if (!f) {
				sqlite3_finalize(s);
				free(*rows);
				*rows = NULL;
				*n = 0;
				util_set_err(err, errlen, "out of memory");
				return -ENOMEM;
			}
			*rows = f;
			cap = c;
		}
		f = &(*rows)[(*n)++];
		f->run_id = sqlite3_column_int64(s, 0);
		col_text(s, 1, f->policy, sizeof f->policy);
		col_text(s, 2, f->drafter, sizeof f->drafter);
		col_text(s, 3, f->preset, sizeof f->preset);
		f->tokens_per_s = col_real(s, 4);
		f->tokens_per_j = col_real(s, 5);
		f->area_mm2 = col_real(s, 6);
		f->on_front = sqlite3_column_int(s, 7);
		f->on_front_area = sqlite3_column_int(s, 8);
		f->tokens_per_s_lo = col_real(s, 9);
		f->tokens_per_s_hi = col_real(s, 10);
		f->tokens_per_j_lo = col_real(s, 11);
		f->tokens_per_j_hi = col_real(s, 12);
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE) {
		free(*rows);
		*rows = NULL;
		*n = 0;
		return fail(d, "reading the pareto view", err, errlen);
	}
	return 0;
}

int db_config_value(struct db *d, int64_t run_id, const char *key, char *buf,
                    size_t len, char *err, size_t errlen)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if (sqlite3_prepare_v2(db_handle(d),
	                       "SELECT value FROM config WHERE "
	                       "run_id = ?1 AND key = ?2",
	                       -1, &s, NULL) != SQLITE_OK)
		return fail(d, "reading a run's configuration", err, errlen);
	sqlite3_bind_int64(s, 1, run_id);
	sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		col_text(s, 0, buf, len);
	sqlite3_finalize(s);
	if (rc == SQLITE_ROW)
		return 0;
	if (rc == SQLITE_DONE)
		return -ENOENT;
	return fail(d, "reading a run's configuration", err, errlen);
}
