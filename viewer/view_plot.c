/* view_plot.c - what the report's plots share: axes at round numbers
 * (linear, or logarithmic past a factor of 20) with their grid, ticks
 * and titles, and the swept keys that vary among a set of runs. */
#include <math.h>
#include <string.h>

#include "view.h"
#include "view_page.h"

/* ---- axes ---- */

/* A span holding [mn, mx] with about 5 ticks at round numbers; log when
 * allowed and the values span more than a factor of 20. */
void plot_axis_fit(struct plot_axis *a, double mn, double mx, int allow_log,
                   double p0, double p1)
{
	a->p0 = p0;
	a->p1 = p1;
	a->log = allow_log && mn > 0 && mx / mn > 20;
	if (a->log) {
		a->lo = floor(log10(mn));
		a->hi = ceil(log10(mx));
		if (a->hi <= a->lo)
			a->hi = a->lo + 1;
		a->step = ceil((a->hi - a->lo) / 6);
		return;
	}
	if (!isfinite(mn) || !isfinite(mx)) {
		mn = 0;
		mx = 1;
	}
	if (mx <= mn) {
		const double d = mn != 0 ? fabs(mn) * 0.1 : 1;

		mn -= d;
		mx += d;
	}
	a->step = view_nice_ceil((mx - mn) / 5);
	a->lo = floor(mn / a->step) * a->step;
	a->hi = ceil(mx / a->step) * a->step;
	if (a->hi <= a->lo)
		a->hi = a->lo + a->step;
}

double plot_at(const struct plot_axis *a, double v)
{
	double t;

	if (a->log)
		t = (log10(v) - a->lo) / (a->hi - a->lo);
	else
		t = (v - a->lo) / (a->hi - a->lo);
	return a->p0 + t * (a->p1 - a->p0);
}

/* A tick label: up to four significant digits; when the axis reaches
 * 10^4 (scale: its largest magnitude), every label of it takes the SI
 * prefix of that, so 9500 and 10000 read 9.5k and 10k. */
static void put_tick(FILE *f, double v, double scale)
{
	static const struct {
		double mul;
		const char *p;
	} si[] = {
		{ 1e12, "T" },
		{ 1e9, "G" },
		{ 1e6, "M" },
		{ 1e3, "k" },
	};
	const double av = fabs(v);

	if (v == 0) {
		fputs("0", f);
		return;
	}
	if (scale >= 1e4)
		for (size_t i = 0; i < sizeof si / sizeof *si; i++)
			if (scale >= si[i].mul) {
				fprintf(f, "%.4g%s", v / si[i].mul, si[i].p);
				return;
			}
	fprintf(f, av >= 1 ? "%.4g" : av >= 1e-2 ? "%.3g" : "%.2g", v);
}

/* Grid lines and labels of the y axis (horizontal lines) or the x axis. */
void plot_put_axis(FILE *f, const struct plot_axis *a, int vertical,
                   double other0, double other1)
{
	const double scale = a->log ? pow(10, a->hi)
	                            : fmax(fabs(a->lo), fabs(a->hi));

	for (double k = a->lo; k <= a->hi + a->step * 1e-6; k += a->step) {
		const double v = a->log ? pow(10, k)
		                        : (fabs(k) < a->step * 1e-9 ? 0 : k);
		const double p = plot_at(a, v);

		if (vertical) {
			fprintf(f,
			        "<line class=\"grid\" x1=\"%.1f\" x2=\"%.1f\" "
			        "y1=\"%.1f\" y2=\"%.1f\"/><text "
			        "class=\"muted\" "
			        "x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">",
			        other0, other1, p, p, other0 - 6, p + 4);
		} else {
			fprintf(f,
			        "<line class=\"grid\" x1=\"%.1f\" x2=\"%.1f\" "
			        "y1=\"%.1f\" y2=\"%.1f\"/><text "
			        "class=\"muted\" "
			        "x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">",
			        p, p, other0, other1, p, other1 + 16);
		}
		put_tick(f, v, scale);
		fputs("</text>", f);
	}
}

void plot_put_titles(FILE *f, const char *xt, const char *yt, double h)
{
	fprintf(f,
	        "<text class=\"axt\" x=\"%.1f\" y=\"%.1f\" "
	        "text-anchor=\"middle\">",
	        PLOT_LEFT + (PLOT_W - PLOT_LEFT - PLOT_RIGHT) / 2, h - 6);
	view_put_html(f, xt);
	fprintf(f,
	        "</text><text class=\"axt\" x=\"14\" y=\"%.1f\" "
	        "text-anchor=\"middle\" transform=\"rotate(-90 14 %.1f)\">",
	        (PLOT_TOP + h - PLOT_BOTTOM) / 2,
	        (PLOT_TOP + h - PLOT_BOTTOM) / 2);
	view_put_html(f, yt);
	fputs("</text>", f);
}

/* ---- what the runs vary in ---- */

/* The swept keys (indices into sw->key) that take two values or more
 * among the runs in sel (n of them), but for skip. @return how many. */
size_t plot_keys_varying(const struct view_sweep *sw, const size_t *sel,
                         size_t n, size_t skip, size_t *out)
{
	size_t m = 0;

	for (size_t k = 0; k < sw->n_keys; k++) {
		const char *first = NULL;
		int varies = 0;

		if (k == skip)
			continue;
		for (size_t j = 0; j < n && !varies; j++) {
			const char *t = sw->text[sel[j] * sw->n_keys + k];

			if (!t)
				continue;
			if (!first)
				first = t;
			else if (strcmp(first, t))
				varies = 1;
		}
		if (varies)
			out[m++] = k;
	}
	return m;
}

/* "k=v k=v" of run i over the keys given. */
void plot_put_key_values(FILE *f, const struct view_sweep *sw, size_t i,
                         const size_t *keys, size_t nk)
{
	int any = 0;

	for (size_t j = 0; j < nk; j++) {
		const char *t = sw->text[i * sw->n_keys + keys[j]];

		if (!t)
			continue;
		if (any++)
			fputs(" ", f);
		view_put_html(f, sw->key[keys[j]].name);
		fputs("=", f);
		view_put_html(f, t);
	}
}
