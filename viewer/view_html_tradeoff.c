/* view_html_tradeoff.c - the report's trade-off plots: per study,
 * tokens/s against tokens/J, the Pareto front (view_pareto) outlined,
 * joined by its staircase and listed with its runs' swept keys and
 * area. Every point is <circle class="pt" data-run=ID data-front=0|1
 * data-x data-y> (%.17g), so a test can hold the page to the database.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "view.h"
#include "view_page.h"

#define SC_H 420.0 /* plot height */

/* ---- the trade-off: tokens/s against tokens/J, per study ---- */

static void put_ci_cell(FILE *f, double v, double lo, double hi)
{
	fputs("<td class=\"n\">", f);
	put_num(f, v);
	if (isfinite(lo) && isfinite(hi)) {
		fputs("<small class=\"ci\">[", f);
		put_num(f, lo);
		fputs(", ", f);
		put_num(f, hi);
		fputs("]</small>", f);
	}
	fputs("</td>", f);
}

/* The front's runs, fastest first. */
static void write_front_table(FILE *f, const struct view_runs *rs,
                              const struct view_sweep *sw, const char *study,
                              const size_t *sel, size_t n,
                              const unsigned char *on, const size_t *keys,
                              size_t nk)
{
	size_t *fr = malloc((n ? n : 1) * sizeof *fr), nf = 0;
	int area = 0;

	if (!fr)
		return;
	for (size_t j = 0; j < n; j++)
		if (on[j]) {
			size_t p = nf++;

			/* insertion by tokens/s, descending */
			while (p > 0 && rs->v[sel[fr[p - 1]]].tokens_per_s <
			                        rs->v[sel[j]].tokens_per_s) {
				fr[p] = fr[p - 1];
				p--;
			}
			fr[p] = j;
			area |= sw->area[sel[j]] > 0; /* NAN: no run_area */
		}
	fputs("<div class=\"tablewrap\"><table class=\"front\" data-study=\"",
	      f);
	view_put_html(f, study);
	fputs("\"><thead><tr><th>Run</th><th>Policy</th><th>Drafter</th>"
	      "<th>Preset</th>",
	      f);
	for (size_t j = 0; j < nk; j++) {
		fputs("<th>", f);
		view_put_html(f, sw->key[keys[j]].name);
		fputs("</th>", f);
	}
	fputs("<th>Tokens/s</th><th>Tokens/J</th>", f);
	if (area)
		fputs("<th title=\"run_area: the AAU, EDC, TVC and queues the "
		      "configuration has (db/SCHEMA.md)\">Area mm\xc2\xb2</th>",
		      f);
	fputs("</tr></thead><tbody>\n", f);
	for (size_t q = 0; q < nf; q++) {
		const size_t i = sel[fr[q]];
		const struct view_run *r = &rs->v[i];

		fprintf(f,
		        "<tr data-run=\"%lld\"><td class=\"n\"><a href=\"#row-"
		        "%lld\">%lld</a></td><td><b style=\"color:%s\">",
		        (long long)r->id, (long long)r->id, (long long)r->id,
		        policy_col(r->policy));
		view_put_html(f, r->policy);
		fputs("</b></td><td>", f);
		view_put_html(f, r->drafter);
		fputs("</td><td>", f);
		view_put_html(f, r->hw_preset);
		fputs("</td>", f);
		for (size_t j = 0; j < nk; j++) {
			const char *t = sw->text[i * sw->n_keys + keys[j]];

			fputs("<td>", f);
			view_put_html(f, t ? t : "\xe2\x80\x93");
			fputs("</td>", f);
		}
		put_ci_cell(f, r->tokens_per_s, r->tokens_per_s_lo,
		            r->tokens_per_s_hi);
		put_ci_cell(f, r->tokens_per_j, r->tokens_per_j_lo,
		            r->tokens_per_j_hi);
		if (area) {
			fputs("<td class=\"n\">", f);
			if (isfinite(sw->area[i]))
				fprintf(f, "%.2f", sw->area[i]);
			else
				fputs("\xe2\x80\x93", f);
			fputs("</td>", f);
		}
		fputs("</tr>\n", f);
	}
	fputs("</tbody></table></div>\n", f);
	free(fr);
}

/* The policies of the runs in sel, each once, in their colours. */
static void put_policy_legend(FILE *f, const struct view_runs *rs,
                              const size_t *sel, size_t n)
{
	fputs("<div class=\"legend\">", f);
	for (size_t j = 0; j < n; j++) {
		const char *p = rs->v[sel[j]].policy;
		size_t q = 0;

		while (q < j && strcmp(rs->v[sel[q]].policy, p))
			q++;
		if (q < j)
			continue;
		fprintf(f, "<span><i class=\"sw\" style=\"background:%s\"></i>",
		        policy_col(p));
		view_put_html(f, p);
		fputs("</span>", f);
	}
	fputs("<span><svg class=\"key\" viewBox=\"0 0 28 10\"><circle "
	      "cx=\"14\" cy=\"5\" r=\"4\" fill=\"#fff\" stroke=\"#111\" "
	      "stroke-width=\"1.6\"/></svg>on the front</span></div>\n",
	      f);
}

static int write_scatter(FILE *f, const struct view_runs *rs,
                         const struct view_sweep *sw, const char *study,
                         const size_t *sel, size_t n)
{
	double *x = malloc((n ? n : 1) * sizeof *x);
	double *y = malloc((n ? n : 1) * sizeof *y);
	unsigned char *on = malloc(n ? n : 1);
	size_t *keys = malloc((sw->n_keys + 1) * sizeof *keys), nk, n_on;
	size_t *fr = malloc((n ? n : 1) * sizeof *fr), nf = 0;
	double xmn = INFINITY, xmx = -INFINITY, ymn = INFINITY, ymx = -INFINITY;
	struct plot_axis ax, ay;
	const double pb = SC_H - PLOT_BOTTOM;
	int ret = 0;

	if (!x || !y || !on || !keys || !fr) {
		ret = -ENOMEM;
		goto out;
	}
	for (size_t j = 0; j < n; j++) {
		x[j] = rs->v[sel[j]].tokens_per_s;
		y[j] = rs->v[sel[j]].tokens_per_j;
		if (isfinite(x[j]) && isfinite(y[j])) {
			xmn = fmin(xmn, x[j]);
			xmx = fmax(xmx, x[j]);
			ymn = fmin(ymn, y[j]);
			ymx = fmax(ymx, y[j]);
		}
	}
	n_on = view_pareto(x, y, n, on);
	nk = plot_keys_varying(sw, sel, n, SIZE_MAX, keys);
	{
		/* the table has columns of their own for these */
		size_t o = 0;

		for (size_t k = 0; k < nk; k++)
			if (strcmp(sw->key[keys[k]].name, "hw.preset") &&
			    strcmp(sw->key[keys[k]].name, "drafter"))
				keys[o++] = keys[k];
		nk = o;
	}
	/* a margin of 4% so no point sits on the frame; decades (a log
	 * scale) when the values span more than a factor of 20 */
	if (xmn > 0 && xmx / xmn > 20)
		plot_axis_fit(&ax, xmn, xmx, 1, PLOT_LEFT, PLOT_W - PLOT_RIGHT);
	else
		plot_axis_fit(&ax, xmn - 0.04 * (xmx - xmn),
		              xmx + 0.04 * (xmx - xmn), 0, PLOT_LEFT,
		              PLOT_W - PLOT_RIGHT);
	if (ymn > 0 && ymx / ymn > 20)
		plot_axis_fit(&ay, ymn, ymx, 1, pb, PLOT_TOP);
	else
		plot_axis_fit(&ay, ymn - 0.04 * (ymx - ymn),
		              ymx + 0.04 * (ymx - ymn), 0, pb, PLOT_TOP);

	fputs("<figure class=\"scatter\" data-study=\"", f);
	view_put_html(f, study);
	fputs("\"><figcaption>", f);
	if (*study) {
		fputs("Study <b>", f);
		view_put_html(f, study);
		fputs("</b>", f);
	} else {
		fputs("Runs without a label", f);
	}
	fprintf(f, ": %zu run%s, %zu on the front</figcaption>\n", n,
	        n == 1 ? "" : "s", n_on);
	put_policy_legend(f, rs, sel, n);
	fprintf(f,
	        "<svg class=\"plot\" viewBox=\"0 0 %.0f %.0f\" role=\"img\" "
	        "aria-label=\"tokens per second against tokens per joule\">",
	        PLOT_W, SC_H);
	plot_put_axis(f, &ay, 1, PLOT_LEFT, PLOT_W - PLOT_RIGHT);
	plot_put_axis(f, &ax, 0, PLOT_TOP, pb);
	plot_put_titles(f,
	                ax.log ? "throughput (tokens/s, log scale) "
	                         "\xe2\x86\x92"
	                       : "throughput (tokens/s) \xe2\x86\x92",
	                ay.log ? "energy efficiency (tokens/J, log scale) "
	                         "\xe2\x86\x92"
	                       : "energy efficiency (tokens/J) \xe2\x86\x92",
	                SC_H);
	/* the front as a staircase: the edge of what it dominates */
	for (size_t j = 0; j < n; j++)
		if (on[j]) {
			size_t p = nf++;

			while (p > 0 && x[fr[p - 1]] > x[j]) {
				fr[p] = fr[p - 1];
				p--;
			}
			fr[p] = j;
		}
	if (nf) {
		fputs("<path class=\"front\" d=\"", f);
		for (size_t q = 0; q < nf; q++) {
			const double px = plot_at(&ax, x[fr[q]]);
			const double py = plot_at(&ay, y[fr[q]]);

			if (q == 0)
				fprintf(f, "M%.2f %.2f", px, py);
			else
				fprintf(f, "V%.2fH%.2f", py, px);
		}
		fputs("\"/>", f);
	}
	/* points off the front first, so the front is drawn on top */
	for (int pass = 0; pass < 2; pass++)
		for (size_t j = 0; j < n; j++) {
			const struct view_run *r = &rs->v[sel[j]];

			if (!isfinite(x[j]) || !isfinite(y[j]) || on[j] != pass)
				continue;
			fprintf(f,
			        "<circle class=\"pt%s\" data-run=\"%lld\" "
			        "data-front=\"%d\" data-x=\"%.17g\" "
			        "data-y=\"%.17g\" cx=\"%.2f\" cy=\"%.2f\" "
			        "r=\"%s\" fill=\"%s\"><title>run %lld: ",
			        pass ? " on" : "", (long long)r->id, pass, x[j],
			        y[j], plot_at(&ax, x[j]), plot_at(&ay, y[j]),
			        pass ? "6" : "4", policy_col(r->policy),
			        (long long)r->id);
			view_put_html(f, r->policy);
			fputs(" ", f);
			plot_put_key_values(f, sw, sel[j], keys, nk);
			fputs(" \xc2\xb7 ", f);
			put_num(f, x[j]);
			fputs(" tok/s \xc2\xb7 ", f);
			put_num(f, y[j]);
			fputs(pass ? " tok/J \xc2\xb7 on the front</title>"
			             "</circle>\n"
			           : " tok/J</title></circle>\n",
			      f);
		}
	fputs("</svg></figure>\n", f);
	write_front_table(f, rs, sw, study, sel, n, on, keys, nk);
out:
	free(x);
	free(y);
	free(on);
	free(keys);
	free(fr);
	return ret;
}

static int label_eq(const char *a, const char *b)
{
	return !strcmp(a ? a : "", b ? b : "");
}

int write_tradeoff(FILE *f, const struct view_runs *rs,
                   const struct view_sweep *sw, unsigned max_studies)
{
	size_t *sel = malloc((rs->n ? rs->n : 1) * sizeof *sel);
	unsigned char *done = calloc(rs->n ? rs->n : 1, 1);
	size_t drawn = 0, skipped = 0;
	int ret = 0;

	if (!sel || !done) {
		ret = -ENOMEM;
		goto out;
	}
	fputs("<p class=\"note\">Each study (the runs of one label: "
	      "<code>ahasd-search --study</code>, <code>ahasd-replay "
	      "--label</code>) on its own. A run is <b>on the front</b> "
	      "(outlined, joined by the dashed staircase, listed below) when "
	      "no other run of its study is at least as fast and as "
	      "efficient and better in one; up and right is better. The same "
	      "front is in SQL: <code>SELECT * FROM pareto WHERE "
	      "on_front</code>"
	      ". Colour is the policy.</p>\n",
	      f);
	for (size_t i = 0; i < rs->n; i++) {
		const char *study = rs->v[i].label ? rs->v[i].label : "";
		size_t n = 0, with = 0;

		if (done[i])
			continue;
		for (size_t j = i; j < rs->n; j++)
			if (!done[j] && label_eq(rs->v[j].label, study)) {
				done[j] = 1;
				sel[n++] = j;
				with += isfinite(rs->v[j].tokens_per_s) &&
				        isfinite(rs->v[j].tokens_per_j);
			}
		if (with < 2)
			continue;
		if (drawn == max_studies) {
			skipped++;
			continue;
		}
		ret = write_scatter(f, rs, sw, study, sel, n);
		if (ret < 0)
			goto out;
		drawn++;
	}
	if (!drawn)
		fputs("<p class=\"note\">No study has two runs to compare."
		      "</p>\n",
		      f);
	if (skipped)
		fprintf(f,
		        "<p class=\"warn\">%zu more stud%s not drawn (at most "
		        "%u; pick one with <code>--study</code>).</p>\n",
		        skipped, skipped == 1 ? "y" : "ies", max_studies);
out:
	free(sel);
	free(done);
	return ret;
}
