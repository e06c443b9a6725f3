/* db_config.c - a run's configuration as rows, its match hashes and the
 * pivoted view run_table. See db_config.h and db/SCHEMA.md.
 *
 * The rows are made from struct db_run_info alone, so a run written now
 * and a run of an older file (migration 3 reads the same fields back from
 * its runs row) get the same rows for the same configuration.
 */
#include "db_config.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "sha256.h"
#include "util.h"

void dbc_rows_free(struct dbc_rows *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++) {
		free(r->row[i].key);
		free(r->row[i].text);
	}
	free(r->row);
	r->row = NULL;
	r->n = r->cap = 0;
}

/* ^[-+]?digits$ */
static int is_int_text(const char *s)
{
	if (*s == '-' || *s == '+')
		s++;
	if (!*s)
		return 0;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return 0;
	return 1;
}

/* ^[-+]?(digits[.digits]|.digits)([eE][-+]?digits)?$ */
static int is_real_text(const char *s)
{
	size_t digits = 0;

	if (*s == '-' || *s == '+')
		s++;
	for (; *s >= '0' && *s <= '9'; s++)
		digits++;
	if (*s == '.')
		for (s++; *s >= '0' && *s <= '9'; s++)
			digits++;
	if (!digits)
		return 0;
	if (*s == 'e' || *s == 'E') {
		s++;
		if (*s == '-' || *s == '+')
			s++;
		if (*s < '0' || *s > '9')
			return 0;
		while (*s >= '0' && *s <= '9')
			s++;
	}
	return *s == '\0';
}

/* A value typed as it reads: an integer (or a real with an integral value
 * below 2^53) is INTEGER, another number REAL, anything else TEXT (an
 * integer past int64 too, so that two large seeds stay apart). */
static int row_set(struct dbc_row *row, const char *v)
{
	char buf[UTIL_NUM_LEN];

	row->type = DBC_TEXT;
	if (is_int_text(v)) {
		char *end;
		long long x;

		errno = 0;
		x = strtoll(v, &end, 10);
		if (errno == 0 && !*end) {
			row->type = DBC_INT;
			row->i = x;
		}
	} else if (is_real_text(v)) {
		const double x = strtod(v, NULL);

		if (isfinite(x) && x == floor(x) &&
		    fabs(x) < 9007199254740992.0) {
			row->type = DBC_INT;
			row->i = (int64_t)x;
		} else if (isfinite(x)) {
			row->type = DBC_REAL;
			row->d = x;
		}
	}
	if (row->type == DBC_INT) {
		snprintf(buf, sizeof buf, "%" PRId64, row->i);
		row->text = strdup(buf);
	} else if (row->type == DBC_REAL) {
		row->text = strdup(util_fmt_double(buf, row->d));
	} else {
		row->text = strdup(v);
	}
	return row->text ? 0 : -ENOMEM;
}

/* Append PREFIX KEY = VALUE (key of klen bytes, value of vlen). */
static int rows_add(struct dbc_rows *r, const char *prefix, const char *key,
                    size_t klen, const char *value, size_t vlen)
{
	struct dbc_row *row;
	char *v;
	int rc;

	if (r->n == r->cap) {
		const size_t cap = r->cap ? 2 * r->cap : 128;
		struct dbc_row *p = realloc(r->row, cap * sizeof *p);

		if (!p)
			return -ENOMEM;
		r->row = p;
		r->cap = cap;
	}
	row = &r->row[r->n];
	memset(row, 0, sizeof *row);
	row->key = malloc(strlen(prefix) + klen + 1);
	v = malloc(vlen + 1);
	if (!row->key || !v) {
		free(row->key);
		free(v);
		return -ENOMEM;
	}
	snprintf(row->key, strlen(prefix) + klen + 1, "%s%.*s", prefix,
	         (int)klen, key);
	memcpy(v, value, vlen);
	v[vlen] = '\0';
	rc = row_set(row, v);
	free(v);
	if (rc < 0) {
		free(row->key);
		return rc;
	}
	r->n++;
	return 0;
}

static int rows_add_str(struct dbc_rows *r, const char *key, const char *v)
{
	return rows_add(r, "", key, strlen(key), v, strlen(v));
}

static int rows_add_u64(struct dbc_rows *r, const char *key, uint64_t v)
{
	char buf[32];

	snprintf(buf, sizeof buf, "%" PRIu64, v);
	return rows_add_str(r, key, buf);
}

/* "k=v;k=v" (a plugin's parameters, defaults filled in) as PREFIX.k rows;
 * a piece without '=' is a key with an empty value. */
static int rows_add_params(struct dbc_rows *r, const char *prefix,
                           const char *params)
{
	for (const char *p = params; *p;) {
		const size_t len = strcspn(p, ";");
		const char *eq = memchr(p, '=', len);
		int rc = 0;

		if (len)
			rc = eq ? rows_add(r, prefix, p, (size_t)(eq - p),
			                   eq + 1, len - (size_t)(eq - p) - 1)
			        : rows_add(r, prefix, p, len, "", 0);
		if (rc < 0)
			return rc;
		p += len + (p[len] == ';');
	}
	return 0;
}

/* hw_config's "key = value" lines as hw.key rows, but for its name (the
 * preset is hw.preset). */
static int rows_add_hw(struct dbc_rows *r, const char *cfg)
{
	for (const char *p = cfg; *p;) {
		const size_t len = strcspn(p, "\n");
		const char *sep = NULL;
		int rc = 0;

		for (size_t i = 0; i + 3 <= len; i++)
			if (!memcmp(p + i, " = ", 3)) {
				sep = p + i;
				break;
			}
		if (sep && !(sep - p == 4 && !memcmp(p, "name", 4)))
			rc = rows_add(r, "hw.", p, (size_t)(sep - p), sep + 3,
			              len - (size_t)(sep - p) - 3);
		else if (!sep && len)
			rc = rows_add(r, "hw.", p, len, "", 0);
		if (rc < 0)
			return rc;
		p += len + (p[len] == '\n');
	}
	return 0;
}

static int row_cmp(const void *a, const void *b)
{
	return strcmp(((const struct dbc_row *)a)->key,
	              ((const struct dbc_row *)b)->key);
}

int dbc_rows_make(const struct db_run_info *in, struct dbc_rows *out, char *err,
                  size_t errlen)
{
	int rc;

	memset(out, 0, sizeof *out);
	rc = rows_add_str(out, "policy", in->policy);
	if (rc == 0)
		rc = rows_add_params(out, "policy.", in->policy_params);
	if (rc == 0)
		rc = rows_add_str(out, "drafter", in->drafter);
	if (rc == 0)
		rc = rows_add_params(out, "drafter.", in->drafter_params);
	if (rc == 0)
		rc = rows_add_str(out, "hw.preset", in->hw_preset);
	if (rc == 0)
		rc = rows_add_hw(out, in->hw_config);
	if (rc == 0)
		rc = rows_add_str(out, "model.draft", in->draft_model);
	if (rc == 0)
		rc = rows_add_str(out, "model.target", in->target_model);
	if (rc == 0 && in->retargeted_from)
		rc = rows_add_str(out, "model.retargeted_from",
		                  in->retargeted_from);
	if (rc == 0)
		rc = rows_add_str(out, "trace.path", in->trace_path);
	if (rc == 0)
		rc = rows_add_str(out, "trace.sha256", in->trace_sha256);
	if (rc == 0)
		rc = rows_add_u64(out, "seed", in->seed);
	if (rc == 0)
		rc = rows_add_u64(out, "queue_capacity", in->queue_capacity);
	if (rc == 0)
		rc = rows_add_u64(out, "max_draft", in->max_draft);
	if (rc < 0) {
		util_set_err(err, errlen, "run configuration: out of memory");
		dbc_rows_free(out);
		return rc;
	}
	qsort(out->row, out->n, sizeof *out->row, row_cmp);
	for (size_t i = 1; i < out->n; i++) {
		if (strcmp(out->row[i - 1].key, out->row[i].key) == 0) {
			util_set_err(err, errlen,
			             "run configuration: key '%s' "
			             "twice",
			             out->row[i].key);
			dbc_rows_free(out);
			return -EINVAL;
		}
	}
	return 0;
}

static int is_policy_key(const char *key)
{
	return !strcmp(key, "policy") || !strncmp(key, "policy.", 7);
}

void dbc_match_keys(const struct dbc_rows *r, char match[65], char policy[65])
{
	struct sha256_ctx cm, cp;
	unsigned char dm[32], dp[32];

	sha256_init(&cm);
	sha256_init(&cp);
	for (size_t i = 0; i < r->n; i++) {
		struct sha256_ctx *c = is_policy_key(r->row[i].key) ? &cp : &cm;

		sha256_update(c, r->row[i].key, strlen(r->row[i].key));
		sha256_update(c, "=", 1);
		sha256_update(c, r->row[i].text, strlen(r->row[i].text));
		sha256_update(c, "\n", 1);
	}
	sha256_final(&cm, dm);
	sha256_final(&cp, dp);
	for (int i = 0; i < 32; i++) {
		snprintf(match + 2 * i, 3, "%02x", dm[i]);
		snprintf(policy + 2 * i, 3, "%02x", dp[i]);
	}
}

static int sql_fail(sqlite3 *h, const char *path, const char *what, char *err,
                    size_t errlen)
{
	util_set_err(err, errlen, "%s: %s: %s", path, what, sqlite3_errmsg(h));
	return (sqlite3_errcode(h) & 0xff) == SQLITE_BUSY ? -EBUSY : -EIO;
}

int dbc_store(sqlite3 *h, const char *path, int64_t run_id, const char *policy,
              const struct dbc_rows *r, unsigned *new_keys, char *err,
              size_t errlen)
{
	static const char *const sql[] = {
		"INSERT INTO config (run_id, key, value) VALUES (?1, ?2, ?3)",
		"INSERT OR IGNORE INTO config_keys (key) VALUES (?1)",
		"INSERT INTO run_match (run_id, policy, match_key, policy_key) "
		"VALUES (?1, ?2, ?3, ?4)",
	};
	sqlite3_stmt *st[3] = { NULL, NULL, NULL };
	char match[65], pol[65];
	int ret = 0;

	*new_keys = 0;
	for (int i = 0; i < 3; i++)
		if (sqlite3_prepare_v2(h, sql[i], -1, &st[i], NULL) !=
		    SQLITE_OK) {
			ret = sql_fail(h, path, "storing the configuration",
			               err, errlen);
			goto out;
		}
	for (size_t i = 0; i < r->n; i++) {
		const struct dbc_row *row = &r->row[i];

		sqlite3_bind_int64(st[0], 1, run_id);
		sqlite3_bind_text(st[0], 2, row->key, -1, SQLITE_STATIC);
		if (row->type == DBC_INT)
			sqlite3_bind_int64(st[0], 3, row->i);
		else if (row->type == DBC_REAL)
			sqlite3_bind_double(st[0], 3, row->d);
		else
			sqlite3_bind_text(st[0], 3, row->text, -1,
			                  SQLITE_STATIC);
		sqlite3_bind_text(st[1], 1, row->key, -1, SQLITE_STATIC);
		if (sqlite3_step(st[0]) != SQLITE_DONE ||
		    sqlite3_step(st[1]) != SQLITE_DONE) {
			ret = sql_fail(h, path, "storing the configuration",
			               err, errlen);
			goto out;
		}
		*new_keys += (unsigned)sqlite3_changes(h);
		sqlite3_reset(st[0]);
		sqlite3_reset(st[1]);
	}
	dbc_match_keys(r, match, pol);
	sqlite3_bind_int64(st[2], 1, run_id);
	sqlite3_bind_text(st[2], 2, policy, -1, SQLITE_STATIC);
	sqlite3_bind_text(st[2], 3, match, -1, SQLITE_STATIC);
	sqlite3_bind_text(st[2], 4, pol, -1, SQLITE_STATIC);
	if (sqlite3_step(st[2]) != SQLITE_DONE)
		ret = sql_fail(h, path, "storing the configuration", err,
		               errlen);
out:
	for (int i = 0; i < 3; i++)
		sqlite3_finalize(st[i]);
	return ret;
}

/* A growing string. */
struct sbuf {
	char *p;
	size_t n, cap;
	int oom;
};

static void sb_put(struct sbuf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->n + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *p;

		while (cap < b->n + n + 1)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p) {
			b->oom = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = '\0';
}

static void sb_str(struct sbuf *b, const char *s)
{
	sb_put(b, s, strlen(s));
}

/* s with every q doubled (SQL quoting). */
static void sb_quoted(struct sbuf *b, const char *s, char q)
{
	for (; *s; s++) {
		sb_put(b, s, 1);
		if (*s == q)
			sb_put(b, s, 1);
	}
}

int dbc_rebuild_run_table(sqlite3 *h, const char *path, char *err,
                          size_t errlen)
{
	struct sbuf b = { 0 };
	sqlite3_stmt *s = NULL;
	int rc, ret = 0;

	sb_str(&b, "DROP VIEW IF EXISTS run_table;\n" DBC_RUN_TABLE_HEAD);
	if (sqlite3_prepare_v2(h, "SELECT key FROM config_keys ORDER BY key",
	                       -1, &s, NULL) != SQLITE_OK)
		return sql_fail(h, path, "making run_table", err, errlen);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *key = (const char *)sqlite3_column_text(s, 0);

		sb_str(&b,
		       "       (SELECT value FROM config WHERE run_id = r.id "
		       "AND key = '");
		sb_quoted(&b, key, '\'');
		sb_str(&b, "') AS \"");
		sb_quoted(&b, key, '"');
		sb_str(&b, "\",\n");
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE) {
		free(b.p);
		return sql_fail(h, path, "making run_table", err, errlen);
	}
	sb_str(&b, DBC_RUN_TABLE_TAIL);
	if (b.oom) {
		free(b.p);
		util_set_err(err, errlen, "%s: making run_table: out of memory",
		             path);
		return -ENOMEM;
	}
	if (sqlite3_exec(h, b.p, NULL, NULL, NULL) != SQLITE_OK)
		ret = sql_fail(h, path, "making run_table", err, errlen);
	free(b.p);
	return ret;
}

/* Column i as text, "" for NULL. */
static const char *col(sqlite3_stmt *s, int i)
{
	const unsigned char *t = sqlite3_column_text(s, i);

	return t ? (const char *)t : "";
}

int dbc_backfill(sqlite3 *h, const char *path, char *err, size_t errlen)
{
	sqlite3_stmt *s = NULL;
	unsigned added = 0;
	int rc, ret = 0;

	if (sqlite3_prepare_v2(
	            h,
	            "SELECT id, policy, policy_params, drafter, "
	            "drafter_params, "
	            "hw_preset, hw_config, trace_path, trace_sha256, "
	            "draft_model, "
	            "target_model, retargeted_from, seed, queue_capacity, "
	            "max_draft FROM runs ORDER BY id",
	            -1, &s, NULL) != SQLITE_OK)
		return sql_fail(h, path, "migration 3", err, errlen);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const struct db_run_info in = {
			.policy = col(s, 1),
			.policy_params = col(s, 2),
			.drafter = col(s, 3),
			.drafter_params = col(s, 4),
			.hw_preset = col(s, 5),
			.hw_config = col(s, 6),
			.trace_path = col(s, 7),
			.trace_sha256 = col(s, 8),
			.draft_model = col(s, 9),
			.target_model = col(s, 10),
			.retargeted_from = sqlite3_column_type(s, 11) ==
			                                   SQLITE_NULL
			                           ? NULL
			                           : col(s, 11),
			/* stored signed: the same bits */
			.seed = (uint64_t)sqlite3_column_int64(s, 12),
			.queue_capacity = (uint32_t)sqlite3_column_int64(s, 13),
			.max_draft = (uint32_t)sqlite3_column_int64(s, 14),
		};
		const int64_t id = sqlite3_column_int64(s, 0);
		struct dbc_rows rows;
		unsigned n = 0;

		ret = dbc_rows_make(&in, &rows, err, errlen);
		if (ret == 0)
			ret = dbc_store(h, path, id, in.policy, &rows, &n, err,
			                errlen);
		dbc_rows_free(&rows);
		if (ret < 0)
			goto out;
		added += n;
	}
	if (rc != SQLITE_DONE) {
		ret = sql_fail(h, path, "migration 3", err, errlen);
		goto out;
	}
	if (added)
		ret = dbc_rebuild_run_table(h, path, err, errlen);
out:
	sqlite3_finalize(s);
	return ret;
}
