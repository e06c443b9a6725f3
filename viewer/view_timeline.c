/* view_timeline.c - a run's timeline read from the database: lanes, an
 * overview of busy time per device and kind, and detail windows holding at
 * most max_tasks events each. The HTML writer draws it. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "view.h"

#define TL_TARGET 90 /* tasks per lane in an automatic window */

void view_timeline_free(struct view_timeline *t)
{
	for (unsigned w = 0; t->win && w < t->n_win; w++)
		free(t->win[w].ev);
	free(t->win);
	free(t->ov);
	free(t->seq_start);
	free(t->seq_id);
	memset(t, 0, sizeof *t);
}

static int events_fail(sqlite3 *h, const struct view_run *r, char *err,
                       size_t errlen)
{
	view_set_err(err, errlen, "reading events of run %lld: %s",
	             (long long)r->id, sqlite3_errmsg(h));
	return -EIO;
}

int view_timeline_load(sqlite3 *h, struct view_timeline *t, unsigned windows,
                       double window_s, unsigned max_tasks, char *err,
                       size_t errlen)
{
	const struct view_run *r = t->run;
	sqlite3_stmt *s = NULL;
	int64_t n_max = 0;
	int rc, ret = 0;

	/* Lanes, per-lane counts and the end of the run. */
	rc = sqlite3_prepare_v2(h,
	                        "SELECT device, count(*), max(end_s), "
	                        "max(start_s) FROM events WHERE run_id = ?1 "
	                        "GROUP BY device ORDER BY device",
	                        -1, &s, NULL);
	if (rc != SQLITE_OK)
		goto sql_error;
	sqlite3_bind_int64(s, 1, r->id);
	t->n_lanes = r->n_dev;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const int64_t dev = sqlite3_column_int64(s, 0);
		const int64_t cnt = sqlite3_column_int64(s, 1);
		const double e = fmax(sqlite3_column_double(s, 2),
		                      sqlite3_column_double(s, 3));

		if (dev < 0 || dev >= VIEW_MAX_DEV) {
			t->off_lane += cnt;
			continue;
		}
		if ((unsigned)dev + 1 > t->n_lanes)
			t->n_lanes = (unsigned)dev + 1;
		t->lane_events[dev] = cnt;
		if (cnt > n_max)
			n_max = cnt;
		if (e > t->t_end)
			t->t_end = e;
	}
	if (rc != SQLITE_DONE)
		goto sql_error;
	sqlite3_finalize(s);
	s = NULL;

	/* Window length: about TL_TARGET tasks on the busiest lane. */
	if (!(t->t_end > 0))
		t->t_end = 1e-9;
	if (window_s > 0) {
		t->win_s = window_s;
	} else {
		const double raw = t->t_end * TL_TARGET /
		                   (double)(n_max ? n_max : 1);

		t->win_s = raw >= t->t_end ? t->t_end : view_nice_ceil(raw);
		if (t->win_s >= t->t_end)
			t->win_s = t->t_end;
	}
	{
		const double nw = ceil(t->t_end / t->win_s - 1e-9);

		t->n_win = nw < 1 ? 1 : nw > windows ? windows : (unsigned)nw;
	}
	t->win = calloc(t->n_win, sizeof *t->win);
	t->ov = calloc((size_t)(t->n_lanes ? t->n_lanes : 1) * VIEW_OV_BINS *
	                       VIEW_KIND_COUNT,
	               sizeof *t->ov);
	if (!t->win || !t->ov)
		goto oom;
	for (unsigned w = 0; w < t->n_win; w++) {
		t->win[w].a = w * t->win_s;
		t->win[w].b = (w + 1) * t->win_s;
		t->win[w].cap = max_tasks;
		t->win[w].ev = malloc((max_tasks ? max_tasks : 1) *
		                      sizeof *t->win[w].ev);
		if (!t->win[w].ev)
			goto oom;
	}

	/* Sequence boundaries: sequences run back to back from 0. */
	rc = sqlite3_prepare_v2(h,
	                        "SELECT seq, time_s FROM sequences "
	                        "WHERE run_id = ?1 ORDER BY seq",
	                        -1, &s, NULL);
	if (rc != SQLITE_OK)
		goto sql_error;
	sqlite3_bind_int64(s, 1, r->id);
	{
		double at = 0;
		size_t cap = 0;

		while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
			if (at > t->win[t->n_win - 1].b)
				continue;
			if (t->n_seq == cap) {
				const size_t nc = cap ? 2 * cap : 64;
				double *ns = realloc(t->seq_start,
				                     nc * sizeof *ns);
				int64_t *ni;

				if (!ns)
					goto oom;
				t->seq_start = ns;
				ni = realloc(t->seq_id, nc * sizeof *ni);
				if (!ni)
					goto oom;
				t->seq_id = ni;
				cap = nc;
			}
			t->seq_start[t->n_seq] = at;
			t->seq_id[t->n_seq] = sqlite3_column_int64(s, 0);
			t->n_seq++;
			at += sqlite3_column_double(s, 1);
		}
	}
	if (rc != SQLITE_DONE)
		goto sql_error;
	sqlite3_finalize(s);
	s = NULL;

	/* One pass over the events: overview bins and window buffers. */
	rc = sqlite3_prepare_v2(h,
	                        "SELECT device, kind, start_s, end_s, tokens, "
	                        "seq, batch, outcome FROM events "
	                        "WHERE run_id = ?1 ORDER BY idx",
	                        -1, &s, NULL);
	if (rc != SQLITE_OK)
		goto sql_error;
	sqlite3_bind_int64(s, 1, r->id);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const int64_t dev = sqlite3_column_int64(s, 0);
		const char *kind = (const char *)sqlite3_column_text(s, 1);
		const double t0 = sqlite3_column_double(s, 2);
		const double t1 = fmax(t0, sqlite3_column_double(s, 3));
		const enum view_kind k = view_kind_parse(kind);
		const char *outc = (const char *)sqlite3_column_text(s, 7);
		const double bin_w = t->t_end / VIEW_OV_BINS;

		if (dev < 0 || dev >= VIEW_MAX_DEV)
			continue;
		if (k != VIEW_KIND_IDLE && t1 > t0) {
			size_t b = (size_t)fmax(0, floor(t0 / bin_w));

			for (; b < VIEW_OV_BINS; b++) {
				const double lo = fmax(t0, b * bin_w);
				const double hi = fmin(t1, (b + 1) * bin_w);

				if (hi <= lo) {
					if (b * bin_w >= t1)
						break;
					continue;
				}
				t->ov[((size_t)dev * VIEW_OV_BINS + b) *
				              VIEW_KIND_COUNT +
				      k] += hi - lo;
			}
		}
		for (unsigned w = 0; w < t->n_win; w++) {
			struct view_tl_win *win = &t->win[w];
			const int in = t1 > t0 ? (t0 < win->b && t1 > win->a)
			                       : (t0 >= win->a && t0 < win->b);
			struct view_tl_ev *e;

			if (!in)
				continue;
			win->total++;
			if (win->n == win->cap)
				continue;
			e = &win->ev[win->n++];
			e->t0 = t0;
			e->t1 = t1;
			e->lane = (unsigned)dev;
			e->kind = k;
			e->tokens = (uint32_t)sqlite3_column_int64(s, 4);
			e->seq = sqlite3_column_int64(s, 5);
			e->batch = sqlite3_column_int64(s, 6);
			snprintf(e->kind_name, sizeof e->kind_name, "%s",
			         kind ? kind : "");
			snprintf(e->outcome, sizeof e->outcome, "%s",
			         outc ? outc : "");
		}
	}
	if (rc != SQLITE_DONE)
		goto sql_error;
	sqlite3_finalize(s);
	return 0;

oom:
	view_set_err(err, errlen, "out of memory drawing run %lld",
	             (long long)r->id);
	ret = -ENOMEM;
	sqlite3_finalize(s);
	return ret;
sql_error:
	ret = events_fail(h, r, err, errlen);
	sqlite3_finalize(s);
	return ret;
}
