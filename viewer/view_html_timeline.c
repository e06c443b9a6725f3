/* view_html_timeline.c - a run's timeline in the HTML report: lane
 * labels, the whole-run overview, and detail windows of at most max_tasks
 * rectangles, each a <rect class="task" data-kind=K> with a tooltip. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "view.h"
#include "view_page.h"

static void write_lane_labels(FILE *f, const struct view_timeline *t, double y0,
                              double lane_h, double gap)
{
	for (unsigned l = 0; l < t->n_lanes; l++) {
		char buf[32];

		fprintf(f, "<text class=\"lane\" x=\"4\" y=\"%.1f\">",
		        y0 + l * (lane_h + gap) + lane_h / 2 + 4);
		view_put_html(f, lane_name(t->run, l, buf, sizeof buf));
		fputs("</text>", f);
	}
}

/* Whole run: per lane and column the dominant busy kind, shaded by how
 * busy the column is; detail windows outlined and numbered. */
static void write_overview(FILE *f, const struct view_timeline *t)
{
	const double pw = TL_WIDTH - TL_GUTTER - TL_RIGHT;
	const double gap = 4, top = 14;
	const double h = top + t->n_lanes * (OV_LANE_H + gap) + 16;
	const double bin_w = t->t_end / VIEW_OV_BINS;
	const double px = pw / VIEW_OV_BINS;

	fprintf(f, "<svg class=\"overview\" viewBox=\"0 0 %.0f %.0f\">",
	        TL_WIDTH, h);
	write_lane_labels(f, t, top, OV_LANE_H, gap);
	for (unsigned l = 0; l < t->n_lanes; l++) {
		const double y = top + l * (OV_LANE_H + gap);
		int run_k = -1, run_q = 0;
		size_t run_b = 0;

		fprintf(f,
		        "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
		        "height=\"%.0f\" fill=\"#f0f2f4\"/>",
		        TL_GUTTER, y, pw, OV_LANE_H);
		for (size_t b = 0; b <= VIEW_OV_BINS; b++) {
			int k = -1, q = 0;

			if (b < VIEW_OV_BINS) {
				const double *v =
				        &t->ov[((size_t)l * VIEW_OV_BINS + b) *
				               VIEW_KIND_COUNT];
				double busy = 0, best = 0;

				for (int i = 0; i < VIEW_KIND_COUNT; i++) {
					busy += v[i];
					if (v[i] > best) {
						best = v[i];
						k = i;
					}
				}
				q = (int)ceil(fmin(1, busy / bin_w) * 5);
				if (q == 0)
					k = -1;
			}
			if (b > 0 && (k != run_k || q != run_q)) {
				if (run_k >= 0)
					fprintf(f,
					        "<rect class=\"ov\" "
					        "x=\"%.2f\" y=\"%.1f\" "
					        "width=\"%.2f\" "
					        "height=\"%.0f\" "
					        "fill=\"%s\" fill-opacity="
					        "\"%.2f\"/>",
					        TL_GUTTER + run_b * px, y,
					        (b - run_b) * px, OV_LANE_H,
					        kind_colour[run_k],
					        0.25 + 0.15 * run_q);
				run_b = b;
			}
			run_k = k;
			run_q = q;
		}
	}
	/* The windows, outlined and numbered. Windows too narrow to tell
	 * apart (their numbers would overlap) share one outline and one
	 * label, "1-4". */
	for (unsigned w = 0; w < t->n_win;) {
		const double yb = top + t->n_lanes * (OV_LANE_H + gap) - gap;
		const double x0 = TL_GUTTER + t->win[w].a / t->t_end * pw;
		unsigned e = w + 1;
		double x1;

		if (t->n_win == 1 && t->win_s >= t->t_end)
			break;
		/* the next window joins the group while its number would
		 * start inside the group's label (about 8 units a
		 * character, "1" or "1-3") */
		while (e < t->n_win) {
			const int chars =
			        snprintf(NULL, 0, "%u", w + 1) +
			        (e - w > 1 ? 1 + snprintf(NULL, 0, "%u", e)
			                   : 0);

			if (TL_GUTTER + t->win[e].a / t->t_end * pw - x0 >=
			    8.0 * chars + 6)
				break;
			e++;
		}
		x1 = TL_GUTTER +
		     fmin(t->win[e - 1].b, t->t_end) / t->t_end * pw;
		if (e - w == 1) {
			fprintf(f,
			        "<rect class=\"winbox\" x=\"%.2f\" y=\"%.1f\" "
			        "width=\"%.2f\" height=\"%.1f\" fill=\"none\" "
			        "stroke=\"#24292f\" stroke-width=\"1\"/>"
			        "<text x=\"%.2f\" y=\"11\" class=\"muted\">%u"
			        "</text>",
			        x0, top - 2, fmax(x1 - x0, 1.5), yb - top + 4,
			        x0 + 2, w + 1);
		} else {
			fprintf(f,
			        "<rect class=\"winbox\" x=\"%.2f\" y=\"%.1f\" "
			        "width=\"%.2f\" height=\"%.1f\" fill=\"none\" "
			        "stroke=\"#24292f\" stroke-width=\"1\"/>"
			        "<text x=\"%.2f\" y=\"11\" class=\"muted\">"
			        "%u\xe2\x80\x93%u</text>",
			        x0, top - 2, fmax(x1 - x0, 1.5), yb - top + 4,
			        x0, w + 1, e);
		}
		w = e;
	}
	fprintf(f,
	        "<text class=\"muted\" x=\"%.1f\" y=\"%.1f\" "
	        "text-anchor=\"end\">",
	        TL_WIDTH - TL_RIGHT, h - 3);
	put_time(f, t->t_end, t->t_end);
	fprintf(f,
	        "</text><text class=\"muted\" x=\"%.1f\" y=\"%.1f\">0"
	        "</text></svg>\n",
	        TL_GUTTER, h - 3);
}

static void put_task_title(FILE *f, const struct view_tl_ev *e, double scale)
{
	fputs("<title>", f);
	view_put_html(f, e->kind_name);
	fprintf(f, " \xc2\xb7 %u token%s \xc2\xb7 seq %lld", e->tokens,
	        e->tokens == 1 ? "" : "s", (long long)e->seq);
	if (e->batch)
		fprintf(f, " \xc2\xb7 batch %lld", (long long)e->batch);
	if (strcmp(e->outcome, "none") != 0 && *e->outcome) {
		fputs(" \xc2\xb7 ", f);
		view_put_html(f, e->outcome);
	}
	fputs(" \xc2\xb7 ", f);
	put_time(f, e->t0, scale);
	fputs(" \xe2\x80\x93 ", f);
	put_time(f, e->t1, scale);
	fputs("</title>", f);
}

static void write_window(FILE *f, const struct view_timeline *t, unsigned w,
                         const struct view_html_opts *o)
{
	const struct view_tl_win *win = &t->win[w];
	const double pw = TL_WIDTH - TL_GUTTER - TL_RIGHT;
	const double span = win->b - win->a;
	const double lanes_h = t->n_lanes * (TL_LANE_H + TL_LANE_GAP);
	const double h = TL_TOP + lanes_h + TL_AXIS;
	const double step = view_nice_ceil(span / 8);
	unsigned marks = 0;
	double label_end = -1;

	fprintf(f, "<div class=\"win\" data-window=\"%u\"><h4>", w + 1);
	if (t->n_win > 1 || t->win_s < t->t_end)
		fprintf(f, "Window %u: ", w + 1);
	put_time(f, win->a, span);
	fputs(" \xe2\x80\x93 ", f);
	put_time(f, win->b, span);
	fputs(" \xc2\xb7 ", f);
	put_count(f, win->total);
	fputs(win->total == 1 ? " task</h4>\n" : " tasks</h4>\n", f);
	if ((int64_t)win->n < win->total) {
		fprintf(f,
		        "<p class=\"warn\" data-capped=\"1\">Capped: showing "
		        "the first %zu of ",
		        win->n);
		put_count(f, win->total);
		fputs(" tasks in this window (<code>--max-tasks</code>, or a "
		      "shorter <code>--window-s</code>).</p>\n",
		      f);
	}
	fprintf(f, "<svg class=\"timeline\" viewBox=\"0 0 %.0f %.0f\">",
	        TL_WIDTH, h);
	write_lane_labels(f, t, TL_TOP, TL_LANE_H, TL_LANE_GAP);
	for (unsigned l = 0; l < t->n_lanes; l++)
		fprintf(f,
		        "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
		        "height=\"%.0f\" fill=\"#f6f8fa\"/>",
		        TL_GUTTER, TL_TOP + l * (TL_LANE_H + TL_LANE_GAP), pw,
		        TL_LANE_H);
	/* Axis ticks and grid. */
	for (double k = ceil(win->a / step - 1e-9);; k++) {
		const double at = fabs(k) < 0.5 ? 0 : k * step;
		const double x = TL_GUTTER + (at - win->a) / span * pw;
		const char *anchor = x < TL_GUTTER + 20        ? "start"
		                     : x > TL_GUTTER + pw - 20 ? "end"
		                                               : "middle";

		if (at > win->b + step * 1e-6)
			break;
		fprintf(f,
		        "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.0f\" "
		        "y2=\"%.1f\" stroke=\"#d8dee4\"/>"
		        "<text class=\"muted\" x=\"%.1f\" y=\"%.1f\" "
		        "text-anchor=\"%s\">",
		        x, x, TL_TOP - 2, TL_TOP + lanes_h, x,
		        TL_TOP + lanes_h + 12, anchor);
		put_time(f, at, span);
		fputs("</text>", f);
	}
	/* Sequence boundaries; a label that would run into the one before
	 * it is left out (the line stays). */
	for (size_t i = 0; i < t->n_seq && marks < MAX_SEQ_MARKS; i++) {
		const double at = t->seq_start[i];
		const double x = TL_GUTTER + (at - win->a) / span * pw;

		if (at < win->a || at >= win->b)
			continue;
		marks++;
		fprintf(f,
		        "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"2\" y2=\"%.1f\" "
		        "stroke=\"#57606a\" stroke-dasharray=\"3 3\"/>",
		        x, x, TL_TOP + lanes_h);
		if (x < label_end)
			continue;
		fprintf(f,
		        "<text class=\"muted\" x=\"%.1f\" y=\"11\">seq %lld"
		        "</text>",
		        x + 3, (long long)t->seq_id[i]);
		label_end = x + 3 +
		            6.5 * (4 + snprintf(NULL, 0, "%lld",
		                                (long long)t->seq_id[i]));
	}
	for (size_t i = 0; i < win->n; i++) {
		const struct view_tl_ev *e = &win->ev[i];
		const double t0 = fmax(e->t0, win->a), t1 = fmin(e->t1, win->b);
		const double x = TL_GUTTER + (t0 - win->a) / span * pw;
		const double wd = fmax((t1 - t0) / span * pw, 0.8);
		double y = TL_TOP + e->lane * (TL_LANE_H + TL_LANE_GAP);
		double hh = TL_LANE_H;

		if (e->kind == VIEW_KIND_IDLE) {
			y += TL_LANE_H * 0.35;
			hh = TL_LANE_H * 0.3;
		} else if (e->kind == VIEW_KIND_SWITCH ||
		           e->kind == VIEW_KIND_TRANSFER) {
			y += TL_LANE_H * 0.2;
			hh = TL_LANE_H * 0.6;
		}
		fputs("<rect class=\"task\" data-kind=\"", f);
		view_put_html(f, e->kind_name);
		fputs("\" data-outcome=\"", f);
		view_put_html(f, e->outcome);
		fprintf(f,
		        "\" x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" "
		        "height=\"%.1f\" fill=\"%s\">",
		        x, y, wd, hh, kind_colour[e->kind]);
		put_task_title(f, e, span);
		fputs("</rect>", f);
		if (wd >= 16 && e->tokens && e->kind != VIEW_KIND_IDLE)
			fprintf(f,
			        "<text class=\"tl\" x=\"%.1f\" y=\"%.1f\" "
			        "text-anchor=\"middle\">%u</text>",
			        x + wd / 2, y + hh / 2 + 3, e->tokens);
		fputc('\n', f);
	}
	(void)o;
	fputs("</svg></div>\n", f);
}

static void put_chip_time(FILE *f, const char *name, double v)
{
	fprintf(f, "<span class=\"chip\">%s <b>", name);
	put_time(f, v, 0);
	fputs("</b></span>", f);
}

static void put_chip_num(FILE *f, const char *name, double v, const char *unit)
{
	fprintf(f, "<span class=\"chip\">%s <b>", name);
	put_num(f, v);
	fprintf(f, "%s</b></span>", unit);
}

static void write_run_head(FILE *f, const struct view_run *r)
{
	fprintf(f, "<h3>Run #%lld: <span style=\"color:%s\">", (long long)r->id,
	        policy_col(r->policy));
	view_put_html(f, r->policy);
	fputs("</span>", f);
	if (r->label && *r->label) {
		fputs(" \xe2\x80\x94 ", f);
		view_put_html(f, r->label);
	}
	fputs("</h3>\n<p class=\"note\">", f);
	put_group_title(f, r);
	fputs("</p>\n<div class=\"chips\">", f);
	put_chip_num(f, "committed", r->committed, " tokens");
	put_chip_time(f, "simulated", r->time_s);
	put_chip_num(f, "throughput", r->tokens_per_s, " tok/s");
	put_chip_num(f, "efficiency", r->tokens_per_j, " tok/J");
	fputs("<span class=\"chip\">acceptance <b>", f);
	put_pct(f, r->acceptance_rate);
	fputs("</b></span>", f);
	for (unsigned d = 0; d < r->n_dev; d++) {
		char buf[32];

		fputs("<span class=\"chip\">", f);
		view_put_html(f, lane_name(r, d, buf, sizeof buf));
		fputs(" busy <b>", f);
		put_pct(f, dev_util(r, d));
		fputs("</b></span>", f);
	}
	fputs("</div>\n", f);
}

int write_timeline(sqlite3 *h, FILE *f, const struct view_run *r,
                   const struct view_html_opts *o, char *err, size_t errlen)
{
	struct view_timeline t;
	int ret;

	memset(&t, 0, sizeof t);
	t.run = r;
	fprintf(f, "<article class=\"run\" id=\"run-%lld\" data-run=\"%lld\">",
	        (long long)r->id, (long long)r->id);
	write_run_head(f, r);
	if (r->n_events == 0) {
		fputs("<p class=\"warn\" data-no-events=\"1\">No events "
		      "recorded; rerun with <code>ahasd-replay --events</code> "
		      "to see this run's timeline.</p></article>\n",
		      f);
		return 0;
	}
	ret = view_timeline_load(h, &t, o->windows, o->window_s, o->max_tasks,
	                         err, errlen);
	if (ret < 0)
		goto error;
	fputs("<p class=\"note\">Whole run (", f);
	put_count(f, r->n_events);
	fputs(" tasks): colour is the busiest task kind, shade how busy the "
	      "device is",
	      f);
	if (t.n_win > 1 || t.win_s < t.t_end) {
		fprintf(f, ". Below, the first %u window%s of ", t.n_win,
		        t.n_win == 1 ? "" : "s");
		put_time(f, t.win_s, t.win_s);
		fprintf(f, " (boxes 1\xe2\x80\xa6%u above)", t.n_win);
	}
	fprintf(f,
	        ". Hover a task for details. Whole run in Perfetto: "
	        "<code>ahasd-view DB --perfetto %lld -o run%lld.json</code>."
	        "</p>\n",
	        (long long)r->id, (long long)r->id);
	if (r->events_dropped > 0) {
		fputs("<p class=\"warn\">The event bound was hit: ", f);
		put_count(f, (int64_t)r->events_dropped);
		fputs(" later events were not stored, so the timeline stops "
		      "early.</p>\n",
		      f);
	}
	if (t.off_lane > 0) {
		fputs("<p class=\"warn\">", f);
		put_count(f, t.off_lane);
		fprintf(f,
		        " events on devices past the first %d are not "
		        "drawn.</p>\n",
		        VIEW_MAX_DEV);
	}
	write_overview(f, &t);
	for (unsigned w = 0; w < t.n_win; w++)
		write_window(f, &t, w, o);
	fputs("</article>\n", f);
error:
	view_timeline_free(&t);
	return ret;
}
