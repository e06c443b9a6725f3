/* view_sweep.c - what the runs shown vary in (their swept configuration
 * keys), every metric they have with its interval, and Pareto fronts. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "view.h"

/* Metrics a chart offers first, in this order; the rest follow by name. */
static const char *const headline[] = {
	"tokens_per_s",   "tokens_per_j", "speedup",  "acceptance_rate",
	"mean_draft_len", "time_s",       "energy_j", "energy_per_token_j",
};
#define N_HEADLINE (sizeof headline / sizeof *headline)

/* Keys a swept key may merely follow (one value of the key for each of
 * theirs): then it is left out, as the choice of preset, trace or drafter
 * says it already. */
static const char *const primaries[] = { "hw.preset", "trace.path", "drafter" };
#define N_PRIMARIES (sizeof primaries / sizeof *primaries)

static int sql_fail(sqlite3 *h, const char *what, char *err, size_t errlen)
{
	view_set_err(err, errlen, "reading %s: %s", what, sqlite3_errmsg(h));
	return -EIO;
}

void view_sweep_free(struct view_sweep *s)
{
	if (!s)
		return;
	for (size_t k = 0; s->key && k < s->n_keys; k++)
		free(s->key[k].name);
	for (size_t i = 0; s->text && i < s->n_runs * s->n_keys; i++)
		free(s->text[i]);
	for (size_t m = 0; s->metric && m < s->n_metrics; m++)
		free(s->metric[m].name);
	free(s->key);
	free(s->text);
	free(s->num);
	free(s->metric);
	free(s->val);
	free(s->lo);
	free(s->hi);
	free(s->area);
	memset(s, 0, sizeof *s);
}

long view_sweep_metric(const struct view_sweep *s, const char *name)
{
	for (size_t m = 0; m < s->n_metrics; m++)
		if (!strcmp(s->metric[m].name, name))
			return (long)m;
	return -1;
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every name column 0 of sql gives, sorted, in *names. */
static int load_names(sqlite3 *h, const char *sql, char ***names, size_t *n,
                      char *err, size_t errlen)
{
	sqlite3_stmt *s = NULL;
	size_t cap = 0;
	int rc;

	*names = NULL;
	*n = 0;
	if (sqlite3_prepare_v2(h, sql, -1, &s, NULL) != SQLITE_OK)
		return sql_fail(h, "names", err, errlen);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const unsigned char *t = sqlite3_column_text(s, 0);

		if (!t)
			continue;
		if (*n == cap) {
			char **p = realloc(*names,
			                   (cap ? 2 * cap : 64) * sizeof *p);
			if (!p)
				goto nomem;
			*names = p;
			cap = cap ? 2 * cap : 64;
		}
		if (!((*names)[*n] = strdup((const char *)t)))
			goto nomem;
		(*n)++;
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return sql_fail(h, "names", err, errlen);
	qsort(*names, *n, sizeof **names, str_cmp);
	return 0;
nomem:
	sqlite3_finalize(s);
	view_set_err(err, errlen, "out of memory");
	return -ENOMEM;
}

static void names_free(char **names, size_t n)
{
	for (size_t i = 0; names && i < n; i++)
		free(names[i]);
	free(names);
}

static long find_name(char *const *names, size_t n, const char *name)
{
	char *const *p = bsearch(&name, names, n, sizeof *names, str_cmp);

	return p ? (long)(p - names) : -1;
}

struct by_text {
	const char *t;
	size_t i;
};

static int by_text_cmp(const void *pa, const void *pb)
{
	const struct by_text *a = pa, *b = pb;
	const int c = strcmp(a->t, b->t);

	return c ? c : (a->i > b->i) - (a->i < b->i);
}

/* Whether key k only follows key p: runs with the same value of p have
 * the same value of k (or all lack it). ord: the runs that have p, n of
 * them, in order of its value. */
static int follows(char **text, size_t n_all, const struct by_text *ord,
                   size_t n, size_t k)
{
	for (size_t j = 1; j < n; j++) {
		const char *a = text[ord[j - 1].i * n_all + k];
		const char *b = text[ord[j].i * n_all + k];

		if (strcmp(ord[j - 1].t, ord[j].t))
			continue;
		if (!a != !b || (a && strcmp(a, b)))
			return 0;
	}
	return 1;
}

/* The configuration rows of every run, then the keys that vary. */
static int load_config(sqlite3 *h, const struct view_runs *rs,
                       struct view_sweep *s, char *err, size_t errlen)
{
	char **names = NULL, **text = NULL;
	double *num = NULL;
	unsigned char *numeric = NULL, *keep = NULL;
	size_t n_names = 0, *n_values = NULL;
	struct by_text *ord = NULL;
	sqlite3_stmt *st = NULL;
	int ret;

	ret = load_names(h, "SELECT key FROM config_keys", &names, &n_names,
	                 err, errlen);
	if (ret < 0)
		goto out;
	text = calloc(rs->n * n_names + 1, sizeof *text);
	num = malloc((rs->n * n_names + 1) * sizeof *num);
	numeric = calloc(n_names + 1, 1);
	keep = calloc(n_names + 1, 1);
	n_values = calloc(n_names + 1, sizeof *n_values);
	if (!text || !num || !numeric || !keep || !n_values)
		goto nomem;
	for (size_t i = 0; i < rs->n * n_names; i++)
		num[i] = NAN;
	if (sqlite3_prepare_v2(h,
	                       "SELECT key, value FROM config "
	                       "WHERE run_id = ?1",
	                       -1, &st, NULL) != SQLITE_OK) {
		ret = sql_fail(h, "config", err, errlen);
		goto out;
	}
	for (size_t i = 0; i < rs->n; i++) {
		int rc;

		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, rs->v[i].id);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			const char *key = (const char *)sqlite3_column_text(st,
			                                                    0);
			const unsigned char *v = sqlite3_column_text(st, 1);
			const int type = sqlite3_column_type(st, 1);
			const long k = key ? find_name(names, n_names, key)
			                   : -1;

			if (k < 0 || !v)
				continue;
			if (!(text[i * n_names + k] = strdup((const char *)v)))
				goto nomem;
			if (type == SQLITE_INTEGER || type == SQLITE_FLOAT)
				num[i * n_names + k] = sqlite3_column_double(st,
				                                             1);
		}
		if (rc != SQLITE_DONE) {
			ret = sql_fail(h, "config", err, errlen);
			goto out;
		}
	}
	/* distinct values, and whether all are numbers */
	s->n_runs = rs->n;
	ord = malloc((rs->n + 1) * sizeof *ord);
	if (!ord)
		goto nomem;
	for (size_t k = 0; k < n_names; k++) {
		size_t n = 0;

		numeric[k] = 1;
		for (size_t i = 0; i < rs->n; i++) {
			const char *t = text[i * n_names + k];

			if (!t)
				continue;
			if (isnan(num[i * n_names + k]))
				numeric[k] = 0;
			ord[n++] = (struct by_text){ t, i };
		}
		qsort(ord, n, sizeof *ord, by_text_cmp);
		for (size_t j = 0; j < n; j++)
			n_values[k] += j == 0 || strcmp(ord[j - 1].t, ord[j].t);
		keep[k] = n_values[k] > 1 && strcmp(names[k], "policy") &&
		          strcmp(names[k], "trace.sha256");
	}
	for (size_t p = 0; p < N_PRIMARIES; p++) {
		const long pk = find_name(names, n_names, primaries[p]);
		size_t n = 0;

		if (pk < 0 || n_values[pk] < 2)
			continue;
		for (size_t i = 0; i < rs->n; i++)
			if (text[i * n_names + pk])
				ord[n++] = (struct by_text){
					text[i * n_names + pk], i
				};
		qsort(ord, n, sizeof *ord, by_text_cmp);
		for (size_t k = 0; k < n_names; k++)
			if (keep[k] && k != (size_t)pk &&
			    follows(text, n_names, ord, n, k))
				keep[k] = 0;
	}
	for (size_t k = 0; k < n_names; k++)
		s->n_keys += keep[k];
	s->key = calloc(s->n_keys + 1, sizeof *s->key);
	s->text = calloc(rs->n * s->n_keys + 1, sizeof *s->text);
	s->num = malloc((rs->n * s->n_keys + 1) * sizeof *s->num);
	if (!s->key || !s->text || !s->num)
		goto nomem;
	for (size_t k = 0, o = 0; k < n_names; k++) {
		if (!keep[k])
			continue;
		s->key[o].name = names[k];
		names[k] = NULL;
		s->key[o].numeric = numeric[k];
		s->key[o].n_values = n_values[k];
		for (size_t i = 0; i < rs->n; i++) {
			s->text[i * s->n_keys + o] = text[i * n_names + k];
			text[i * n_names + k] = NULL;
			s->num[i * s->n_keys + o] = num[i * n_names + k];
		}
		o++;
	}
	/* a chart starts with the numeric key (a swept constant or
	 * parameter) of the most values, the first by name of those; else
	 * the first key */
	s->default_key = 0;
	for (size_t k = 0; k < s->n_keys; k++) {
		const struct view_key *d = &s->key[s->default_key];

		if (s->key[k].numeric &&
		    (!d->numeric || s->key[k].n_values > d->n_values))
			s->default_key = k;
	}
	ret = 0;
	goto out;
nomem:
	view_set_err(err, errlen, "out of memory");
	ret = -ENOMEM;
out:
	sqlite3_finalize(st);
	for (size_t i = 0; text && i < rs->n * n_names; i++)
		free(text[i]);
	free(text);
	free(num);
	free(numeric);
	free(keep);
	free(n_values);
	free(ord);
	names_free(names, n_names);
	return ret;
}

static int metric_rank(const char *name)
{
	for (size_t i = 0; i < N_HEADLINE; i++)
		if (!strcmp(headline[i], name))
			return (int)i;
	return (int)N_HEADLINE;
}

static int metric_cmp(const void *pa, const void *pb)
{
	const struct view_metric *a = pa, *b = pb;
	const int ra = metric_rank(a->name), rb = metric_rank(b->name);

	return ra != rb ? ra - rb : strcmp(a->name, b->name);
}

/* A metric and its column among all the names, while they are sorted. */
struct metric_col {
	struct view_metric m;
	size_t col;
};

static int metric_col_cmp(const void *a, const void *b)
{
	return metric_cmp(&((const struct metric_col *)a)->m,
	                  &((const struct metric_col *)b)->m);
}

/* Every metric any of the runs has, with its values and intervals, read
 * in one pass over the runs into a column per name of the database
 * (speedup from the runs themselves: speedup_vs_sync), then the columns
 * the runs have kept, headline metrics first. */
static int load_metrics(sqlite3 *h, const struct view_runs *rs,
                        struct view_sweep *s, char *err, size_t errlen)
{
	char **names = NULL;
	size_t n_names = 0;
	double *val = NULL, *lo = NULL, *hi = NULL;
	unsigned char *seen = NULL, *ci = NULL;
	struct metric_col *mc = NULL;
	sqlite3_stmt *q[2] = { NULL, NULL };
	long sp;
	int ret;

	ret = load_names(h,
	                 "SELECT DISTINCT name FROM metrics UNION "
	                 "SELECT 'speedup'",
	                 &names, &n_names, err, errlen);
	if (ret < 0)
		goto out;
	sp = find_name(names, n_names, "speedup");
	seen = calloc(n_names + 1, 1);
	ci = calloc(n_names + 1, 1);
	mc = calloc(n_names + 1, sizeof *mc);
	val = malloc((rs->n * n_names + 1) * sizeof *val);
	lo = malloc((rs->n * n_names + 1) * sizeof *lo);
	hi = malloc((rs->n * n_names + 1) * sizeof *hi);
	if (!seen || !ci || !mc || !val || !lo || !hi)
		goto nomem;
	for (size_t i = 0; i < rs->n * n_names; i++)
		val[i] = lo[i] = hi[i] = NAN;
	if (sqlite3_prepare_v2(h,
	                       "SELECT name, value FROM metrics WHERE "
	                       "run_id = ?1",
	                       -1, &q[0], NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(h,
	                       "SELECT name, lo, hi FROM intervals WHERE "
	                       "run_id = ?1",
	                       -1, &q[1], NULL) != SQLITE_OK) {
		ret = sql_fail(h, "metrics", err, errlen);
		goto out;
	}
	for (size_t i = 0; i < rs->n; i++) {
		const struct view_run *r = &rs->v[i];
		const size_t row = i * n_names;

		val[row + (size_t)sp] = r->speedup;
		seen[sp] |= isfinite(r->speedup);
		if (r->sync_run_id != r->id) {
			lo[row + (size_t)sp] = r->speedup_lo;
			hi[row + (size_t)sp] = r->speedup_hi;
			ci[sp] |= isfinite(r->speedup_lo);
		}
		for (int pass = 0; pass < 2; pass++) {
			int rc;

			sqlite3_reset(q[pass]);
			sqlite3_bind_int64(q[pass], 1, r->id);
			while ((rc = sqlite3_step(q[pass])) == SQLITE_ROW) {
				const char *nm = (const char *)
				        sqlite3_column_text(q[pass], 0);
				const long k =
				        nm ? find_name(names, n_names, nm) : -1;

				if (k < 0)
					continue;
				if (!pass) {
					val[row + (size_t)k] =
					        sqlite3_column_double(q[0], 1);
					seen[k] = 1;
				} else {
					lo[row + (size_t)k] =
					        sqlite3_column_double(q[1], 1);
					hi[row + (size_t)k] =
					        sqlite3_column_double(q[1], 2);
					ci[k] = 1;
				}
			}
			if (rc != SQLITE_DONE) {
				ret = sql_fail(h, "metrics", err, errlen);
				goto out;
			}
		}
	}
	/* the names the runs have, in the order a chart offers them */
	for (size_t k = 0; k < n_names; k++)
		if (seen[k])
			mc[s->n_metrics++] =
			        (struct metric_col){ { names[k], ci[k] }, k };
	qsort(mc, s->n_metrics, sizeof *mc, metric_col_cmp);
	s->metric = calloc(s->n_metrics + 1, sizeof *s->metric);
	s->val = malloc((rs->n * s->n_metrics + 1) * sizeof *s->val);
	s->lo = malloc((rs->n * s->n_metrics + 1) * sizeof *s->lo);
	s->hi = malloc((rs->n * s->n_metrics + 1) * sizeof *s->hi);
	if (!s->metric || !s->val || !s->lo || !s->hi) {
		s->n_metrics = 0;
		goto nomem;
	}
	for (size_t m = 0; m < s->n_metrics; m++) {
		s->metric[m] = mc[m].m;
		names[mc[m].col] = NULL; /* the name is s->metric's now */
		for (size_t i = 0; i < rs->n; i++) {
			const size_t from = i * n_names + mc[m].col;
			const size_t to = i * s->n_metrics + m;

			s->val[to] = val[from];
			s->lo[to] = lo[from];
			s->hi[to] = hi[from];
		}
	}
	ret = 0;
	goto out;
nomem:
	view_set_err(err, errlen, "out of memory");
	ret = -ENOMEM;
out:
	sqlite3_finalize(q[0]);
	sqlite3_finalize(q[1]);
	free(seen);
	free(ci);
	free(mc);
	free(val);
	free(lo);
	free(hi);
	names_free(names, n_names);
	return ret;
}

/* run_area (schema 4) when the database has it. */
static int load_area(sqlite3 *h, const struct view_runs *rs,
                     struct view_sweep *s, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;

	s->area = malloc((rs->n + 1) * sizeof *s->area);
	if (!s->area) {
		view_set_err(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < rs->n; i++)
		s->area[i] = NAN;
	if (sqlite3_prepare_v2(h,
	                       "SELECT area_mm2 FROM run_area WHERE "
	                       "run_id = ?1",
	                       -1, &st, NULL) != SQLITE_OK)
		return 0; /* an older schema: no area */
	for (size_t i = 0; i < rs->n; i++) {
		int rc;

		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, rs->v[i].id);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW &&
		    sqlite3_column_type(st, 0) != SQLITE_NULL)
			s->area[i] = sqlite3_column_double(st, 0);
		else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
			sqlite3_finalize(st);
			return sql_fail(h, "run_area", err, errlen);
		}
	}
	sqlite3_finalize(st);
	return 0;
}

int view_sweep_load(sqlite3 *h, const struct view_runs *runs,
                    struct view_sweep *out, char *err, size_t errlen)
{
	int ret;

	memset(out, 0, sizeof *out);
	ret = load_config(h, runs, out, err, errlen);
	if (ret == 0)
		ret = load_metrics(h, runs, out, err, errlen);
	if (ret == 0)
		ret = load_area(h, runs, out, err, errlen);
	if (ret < 0)
		view_sweep_free(out);
	return ret;
}

/* ---- Pareto fronts ---- */

struct pt {
	double x, y;
	size_t i;
};

/* x descending, then y descending. */
static int pt_cmp(const void *pa, const void *pb)
{
	const struct pt *a = pa, *b = pb;

	if (a->x != b->x)
		return a->x < b->x ? 1 : -1;
	if (a->y != b->y)
		return a->y < b->y ? 1 : -1;
	return (a->i > b->i) - (a->i < b->i);
}

/* In order of x descending, a group of equal x at a time: a point is on
 * the front when its y is the group's largest (nothing with the same x
 * beats it) and above every y of a larger x (nothing faster is at least
 * as good). The rule of the pareto view (db/SCHEMA.md). */
size_t view_pareto(const double *x, const double *y, size_t n,
                   unsigned char *on)
{
	struct pt *p = malloc((n ? n : 1) * sizeof *p);
	size_t m = 0, count = 0;
	double best = -INFINITY;

	memset(on, 0, n);
	if (!p)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isnan(x[i]) && !isnan(y[i]))
			p[m++] = (struct pt){ x[i], y[i], i };
	qsort(p, m, sizeof *p, pt_cmp);
	for (size_t g = 0; g < m;) {
		const double gmax = p[g].y; /* the group's first: its largest */
		size_t e = g;

		while (e < m && p[e].x == p[g].x)
			e++;
		for (size_t j = g; j < e; j++)
			if (p[j].y == gmax && gmax > best) {
				on[p[j].i] = 1;
				count++;
			}
		if (gmax > best)
			best = gmax;
		g = e;
	}
	free(p);
	return count;
}
