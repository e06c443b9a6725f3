/* view_html.c - the HTML report: comparison charts, the trade-off and
 * sweep plots (view_html_tradeoff.c, view_html_sweep.c), timelines, run
 * table.
 *
 * One self-contained file: inline CSS and SVG, one small inline script
 * (the sweep chart's selects; the page works without it), no network.
 * Every task drawn in a timeline is <rect class="task" data-kind=K ...>
 * with a <title> tooltip; output stays bounded by drawing at most
 * max_tasks rectangles per window and max_timelines timelines, and saying
 * so in the page when a cap is hit.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "config.h"
#include "view.h"
#include "view_page.h"

#define MAX_CHART_ROWS 240

static const char *const kind_label[VIEW_KIND_COUNT] = {
	"draft",    "verify", "pre-verify", "switch",
	"transfer", "idle",   "offload",    "other",
};

static const char css[] =
        "*{box-sizing:border-box}"
        "body{margin:0;background:#f4f5f7;color:#1f2328;"
        "font:14px/1.45 system-ui,-apple-system,'Segoe UI','DejaVu Sans',"
        "'Liberation Sans',sans-serif}"
        "main{max-width:1200px;margin:0 auto;padding:12px 22px 40px}"
        "header{padding:6px 0 2px}"
        "h1{font-size:22px;margin:6px 0 2px}"
        "h2{font-size:17px;margin:0 0 8px}"
        "h3{font-size:15px;margin:14px 0 4px}"
        ".sub{color:#57606a;margin:0}"
        "nav a{margin-right:14px;color:#0969da;text-decoration:none}"
        "section{background:#fff;border:1px solid #d8dee4;border-radius:8px;"
        "padding:12px 16px;margin:14px 0}"
        "svg{display:block;width:100%;height:auto}"
        "svg text{font:11px system-ui,'DejaVu Sans','Liberation Sans',"
        "sans-serif;fill:#24292f}"
        "svg .muted{fill:#6e7781}"
        "svg .head{font-weight:600;font-size:12px}"
        "svg .grp{font-weight:600;fill:#57606a}"
        "svg .lane{font-weight:600;font-size:12px;text-transform:uppercase}"
        "svg .tl{font-size:9px;fill:#fff;pointer-events:none}"
        ".task[data-outcome=wasted]{fill-opacity:.38}"
        ".task[data-outcome=rejected]{stroke:#b3261e;stroke-width:1.6}"
        ".task:hover{stroke:#000;stroke-width:1.4}"
        ".legend{display:flex;flex-wrap:wrap;gap:4px 16px;margin:4px 0 8px;"
        "font-size:13px}"
        ".legend span{display:inline-flex;align-items:center;gap:5px}"
        ".sw{display:inline-block;width:14px;height:11px;border-radius:2px}"
        ".sw.rej{background:#fff;border:2px solid #b3261e}"
        ".sw.waste{opacity:.38}"
        ".chips{display:flex;flex-wrap:wrap;gap:6px;margin:4px 0 6px}"
        ".chip{background:#eef1f4;border-radius:12px;padding:1px 10px;"
        "font-size:13px}"
        ".chip b{font-weight:600}"
        ".note{color:#57606a;font-size:13px;margin:2px 0 6px}"
        ".warn{background:#fff8c5;border:1px solid #d4a72c;border-radius:6px;"
        "padding:4px 10px;font-size:13px;margin:6px 0}"
        "article{border-top:1px solid #d8dee4;padding-top:8px;margin-top:12px}"
        "article:first-of-type{border-top:0;margin-top:0}"
        ".win{margin:6px 0 10px}"
        ".win h4{font-size:13px;font-weight:600;margin:4px 0 0;color:#444c56}"
        ".tablewrap{overflow-x:auto}"
        "table{border-collapse:collapse;font-size:12.5px;width:100%}"
        "th,td{padding:3px 7px;border-bottom:1px solid #e5e8eb;"
        "text-align:left;vertical-align:top;white-space:nowrap}"
        "th{background:#f0f2f4;position:sticky;top:0}"
        "td.n{text-align:right;font-variant-numeric:tabular-nums}"
        "td small{color:#6e7781;display:block;white-space:normal;"
        "max-width:220px;overflow-wrap:anywhere}"
        "code{font-size:12px;background:#eef1f4;padding:0 4px;"
        "border-radius:4px}"
        ".errbar line{stroke:#1f2328;stroke-width:1.3}"
        "td:first-child,th:first-child{position:sticky;left:0;z-index:1}"
        "td:first-child{background:#fff}"
        "th{z-index:2}"
        "td small.kv{display:block;white-space:normal;overflow-wrap:normal;"
        "min-width:15em;max-width:24em}"
        ".kv span{white-space:nowrap}"
        "figure{margin:10px 0 4px}"
        "figcaption{font-size:13px;margin:0 0 2px}"
        "svg .grid{stroke:#e5e8eb}"
        "svg .axt{font-size:12px;fill:#57606a}"
        "svg .pt{fill-opacity:.8;stroke:#fff;stroke-width:.8}"
        "svg .pt.on{fill-opacity:1;stroke:#111;stroke-width:1.6}"
        "svg .pt:hover{stroke:#000;stroke-width:2}"
        "svg .front{fill:none;stroke:#111;stroke-width:1.2;"
        "stroke-dasharray:5 4}"
        "svg .band{fill-opacity:.16;stroke:none}"
        "svg .line{fill:none;stroke-width:2}"
        "svg .line.flat{stroke-width:1.4}"
        "svg.key{display:inline-block;width:28px;height:10px}"
        "table.front{width:auto;margin:2px 0 12px}"
        ".pick{margin:6px 0;font-size:13px}"
        ".pick select{font:inherit;margin:0 10px 0 4px;padding:1px 4px}";

/* ---- the comparison chart ---- */

struct chart_col {
	const char *title, *unit;
	int kind; /* 0 value, 1 fraction, 2 utilisation per device */
	double (*get)(const struct view_run *r);
	/* its 95% interval (NAN ends: none), drawn as an error bar */
	void (*ci)(const struct view_run *r, double *lo, double *hi);
};

static double get_tps(const struct view_run *r)
{
	return r->tokens_per_s;
}
static double get_tpj(const struct view_run *r)
{
	return r->tokens_per_j;
}
static double get_acc(const struct view_run *r)
{
	return r->acceptance_rate;
}
static double get_speedup(const struct view_run *r)
{
	return r->speedup;
}

static void ci_tps(const struct view_run *r, double *lo, double *hi)
{
	*lo = r->tokens_per_s_lo;
	*hi = r->tokens_per_s_hi;
}

static void ci_tpj(const struct view_run *r, double *lo, double *hi)
{
	*lo = r->tokens_per_j_lo;
	*hi = r->tokens_per_j_hi;
}

static void ci_acc(const struct view_run *r, double *lo, double *hi)
{
	*lo = r->acceptance_rate_lo;
	*hi = r->acceptance_rate_hi;
}

/* The paired interval; none for the sync run the others are compared
 * with (itself: exactly 1). */
static void ci_speedup(const struct view_run *r, double *lo, double *hi)
{
	const int own = r->sync_run_id == r->id;

	*lo = own ? NAN : r->speedup_lo;
	*hi = own ? NAN : r->speedup_hi;
}

/* The speed-up's paired interval holds 1: not distinguishable from sync. */
static int speedup_same(const struct view_run *r)
{
	double lo, hi;

	ci_speedup(r, &lo, &hi);
	return isfinite(lo) && isfinite(hi) && lo <= 1.0 && 1.0 <= hi;
}

static int models_cmp(const struct view_run *a, const struct view_run *b)
{
	int c = strcmp(a->draft_model, b->draft_model);

	return c ? c : strcmp(a->target_model, b->target_model);
}

static int group_cmp(const struct view_run *a, const struct view_run *b)
{
	int c = models_cmp(a, b);

	if (!c)
		c = strcmp(a->hw_preset, b->hw_preset);
	if (!c)
		c = strcmp(a->drafter, b->drafter);
	if (!c)
		c = strcmp(view_base_name(a->trace_path),
		           view_base_name(b->trace_path));
	return c;
}

static int row_cmp(const void *pa, const void *pb)
{
	const struct view_run *a = *(const struct view_run *const *)pa;
	const struct view_run *b = *(const struct view_run *const *)pb;
	int c = group_cmp(a, b);

	if (!c)
		c = strcmp(a->policy, b->policy);
	if (!c)
		c = (a->id > b->id) - (a->id < b->id);
	return c;
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int policies_collect(const struct view_runs *rs, struct policies *p)
{
	p->n = 0;
	p->name = calloc(rs->n ? rs->n : 1, sizeof *p->name);
	if (!p->name)
		return -ENOMEM;
	for (size_t i = 0; i < rs->n; i++) {
		size_t j = 0;

		while (j < p->n && strcmp(p->name[j], rs->v[i].policy) != 0)
			j++;
		if (j == p->n)
			p->name[p->n++] = rs->v[i].policy;
	}
	qsort(p->name, p->n, sizeof *p->name, str_cmp);
	return 0;
}

/* A 95% interval as an error bar across the end of a bar, centred on y,
 * from x0 + xl to x0 + xh (clamped at the axis), with its numbers in a
 * tooltip. @return where it ends, from x0. */
static double put_errbar(FILE *f, size_t metric, double x0, double y, double xl,
                         double xh, int fraction, double lo, double hi)
{
	if (xl < 0)
		xl = 0;
	if (xh < xl)
		xh = xl;
	fprintf(f,
	        "<g class=\"errbar\" data-metric=\"%zu\" "
	        "data-lo=\"%.17g\" data-hi=\"%.17g\"><title>95%% interval: ",
	        metric, lo, hi);
	if (fraction) {
		put_pct(f, lo);
		fputs(" to ", f);
		put_pct(f, hi);
	} else {
		put_num(f, lo);
		fputs(" to ", f);
		put_num(f, hi);
	}
	fputs(metric == 4 ? " (paired with the sync run)"
	                  : " (bootstrap over sequences)",
	      f);
	fprintf(f,
	        "</title><line x1=\"%.2f\" x2=\"%.2f\" y1=\"%.1f\" "
	        "y2=\"%.1f\"/><line x1=\"%.2f\" x2=\"%.2f\" y1=\"%.1f\" "
	        "y2=\"%.1f\"/><line x1=\"%.2f\" x2=\"%.2f\" y1=\"%.1f\" "
	        "y2=\"%.1f\"/></g>",
	        x0 + xl, x0 + xh, y, y, x0 + xl, x0 + xl, y - 4, y + 4, x0 + xh,
	        x0 + xh, y - 4, y + 4);
	return xh;
}

static int write_charts(FILE *f, const struct view_runs *rs,
                        const struct policies *pol)
{
	const struct view_run **row = NULL;
	struct chart_col cols[5] = {
		{ "Throughput", "tokens/s", 0, get_tps, ci_tps },
		{ "Energy efficiency", "tokens/J", 0, get_tpj, ci_tpj },
		{ "Acceptance rate", "accepted/drafted", 1, get_acc, ci_acc },
		{ "Device utilisation", "busy/simulated time", 2, NULL, NULL },
		{ "Speed-up", "vs sync run", 0, get_speedup, ci_speedup },
	};
	size_t n_cols = 4, n_rows = rs->n, n_groups = 0;
	unsigned max_dev = 0;
	double colmax[5] = { 0 };
	const double label_w = 250, row_h = 20, grp_h = 22, head_h = 34;
	double colw, y, height;

	if (n_rows > MAX_CHART_ROWS)
		n_rows = MAX_CHART_ROWS;
	row = malloc((rs->n ? rs->n : 1) * sizeof *row);
	if (!row)
		return -ENOMEM;
	for (size_t i = 0; i < rs->n; i++) {
		row[i] = &rs->v[i];
		if (isfinite(rs->v[i].speedup))
			n_cols = 5;
	}
	qsort(row, rs->n, sizeof *row, row_cmp);
	for (size_t i = 0; i < n_rows; i++) {
		if (i == 0 || group_cmp(row[i - 1], row[i]) != 0)
			n_groups++;
		if (row[i]->n_dev > max_dev)
			max_dev = row[i]->n_dev;
	}

	/* Legend: policies (bar colour) and devices (utilisation bars). */
	fputs("<div class=\"legend\"><span><b>Policy:</b></span>", f);
	for (size_t i = 0; i < pol->n; i++) {
		fprintf(f, "<span><i class=\"sw\" style=\"background:%s\"></i>",
		        policy_col(pol->name[i]));
		view_put_html(f, pol->name[i]);
		fputs("</span>", f);
	}
	if (max_dev) {
		const struct view_run *first = NULL;

		for (size_t i = 0; i < n_rows && !first; i++)
			if (row[i]->n_dev == max_dev)
				first = row[i];
		fputs("<span style=\"margin-left:18px\"><b>Utilisation:"
		      "</b></span>",
		      f);
		for (unsigned d = 0; d < max_dev; d++) {
			char buf[32];

			fprintf(f,
			        "<span><i class=\"sw\" style=\"background:"
			        "%s\"></i>",
			        dev_colour[d]);
			view_put_html(f, lane_name(first, d, buf, sizeof buf));
			fputs("</span>", f);
		}
	}
	fputs("</div>\n", f);
	fputs("<p class=\"note\">One row per run, grouped by model pair, "
	      "hardware preset, drafter and trace; bar colour is the policy. "
	      "Longer is better; throughput, efficiency and speed-up bars "
	      "are scaled within each group. Error bars: 95% intervals by a "
	      "bootstrap over the run's sequences; the speed-up's is paired "
	      "with its sync run (the same sequences resampled for both), "
	      "and <b>~</b> marks a speed-up it cannot tell from 1.",
	      f);
	if (rs->n > n_rows) {
		fprintf(f,
		        " <b>Showing %zu of %zu runs</b>; pick runs with "
		        "<code>--run</code>.",
		        n_rows, rs->n);
	}
	fputs("</p>\n", f);

	colw = (TL_WIDTH - label_w) / (double)n_cols;
	height = head_h + (double)n_groups * grp_h + (double)n_rows * row_h + 6;
	fprintf(f,
	        "<svg class=\"chart\" viewBox=\"0 0 %.0f %.0f\" "
	        "role=\"img\" aria-label=\"comparison of runs\">\n",
	        TL_WIDTH, height);
	for (size_t c = 0; c < n_cols; c++) {
		const double x0 = label_w + (double)c * colw;

		fprintf(f, "<text class=\"head\" x=\"%.1f\" y=\"14\">%s</text>",
		        x0 + 4, cols[c].title);
		fprintf(f,
		        "<text class=\"muted\" x=\"%.1f\" y=\"28\">%s"
		        "</text>",
		        x0 + 4, cols[c].unit);
		fprintf(f,
		        "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.0f\" "
		        "y2=\"%.0f\" stroke=\"#d0d7de\"/>\n",
		        x0, x0, head_h - 2, height);
	}
	y = head_h;
	for (size_t i = 0; i < n_rows; i++) {
		const struct view_run *r = row[i];

		if (i == 0 || group_cmp(row[i - 1], r) != 0) {
			/* Bars scale within the group: the policies compared
			 * on one configuration; fractions stay 0..100%. */
			memset(colmax, 0, sizeof colmax);
			for (size_t j = i;
			     j < n_rows && group_cmp(row[j], r) == 0; j++) {
				for (size_t c = 0; c < n_cols; c++) {
					double v = cols[c].get
					                   ? cols[c].get(row[j])
					                   : 1,
					       lo, hi;

					if (cols[c].ci) {
						cols[c].ci(row[j], &lo, &hi);
						if (isfinite(hi) && hi > v)
							v = hi;
					}
					if (isfinite(v) && v > colmax[c])
						colmax[c] = v;
				}
			}
			colmax[2] = colmax[2] > 1 ? colmax[2] : 1;
			colmax[3] = 1;
			colmax[4] = colmax[4] > 1 ? colmax[4] : 1;
			fprintf(f,
			        "<rect x=\"0\" y=\"%.1f\" width=\"%.0f\" "
			        "height=\"%.0f\" fill=\"#f3f5f7\"/>",
			        y, TL_WIDTH, grp_h - 2);
			fprintf(f, "<text class=\"grp\" x=\"4\" y=\"%.1f\">",
			        y + 14);
			put_group_title(f, r);
			fputs("</text>\n", f);
			y += grp_h;
		}
		fprintf(f,
		        "<g class=\"row\" data-run=\"%lld\"><text x=\"14\" "
		        "y=\"%.1f\"><title>run %lld: ",
		        (long long)r->id, y + 14, (long long)r->id);
		view_put_html(f, r->policy);
		fputs(" ", f);
		view_put_html(f, r->policy_params);
		fputs("</title>", f);
		fprintf(f, "<tspan font-weight=\"600\" fill=\"%s\">",
		        policy_col(r->policy));
		put_html_cut(f, r->policy, 22);
		fprintf(f, "</tspan> <tspan class=\"muted\">#%lld",
		        (long long)r->id);
		if (r->label && *r->label) {
			fputs(" ", f);
			put_html_cut(f, r->label, 22);
		}
		fputs("</tspan></text>", f);
		for (size_t c = 0; c < n_cols; c++) {
			const double x0 = label_w + (double)c * colw + 4;
			const double bw = colw - 66;

			if (cols[c].kind == 2) {
				const unsigned nd = r->n_dev ? r->n_dev : 1;
				const double bh = (row_h - 5) / nd;

				for (unsigned d = 0; d < r->n_dev; d++) {
					const double u = dev_util(r, d);
					char buf[32];

					fprintf(f,
					        "<rect class=\"bar\" "
					        "data-metric=\"util\" "
					        "x=\"%.1f\" "
					        "y=\"%.1f\" width=\"%.1f\" "
					        "height=\"%.1f\" fill=\"%s\">"
					        "<title>",
					        x0, y + 2 + d * bh,
					        isfinite(u) ? fmax(0, u) * bw
					                    : 0,
					        bh - 0.5, dev_colour[d]);
					view_put_html(f, lane_name(r, d, buf,
					                           sizeof buf));
					fputs(" ", f);
					put_pct(f, u);
					fputs("</title></rect>", f);
				}
				fprintf(f, "<text x=\"%.1f\" y=\"%.1f\">",
				        x0 + bw + 4, y + 14);
				for (unsigned d = 0; d < r->n_dev; d++) {
					if (d)
						fputs(" / ", f);
					if (isfinite(dev_util(r, d)))
						fprintf(f, "%.0f",
						        100 * dev_util(r, d));
					else
						fputs("\xe2\x80\x93", f);
				}
				fputs(r->n_dev ? "%</text>" : "</text>", f);
			} else {
				const double v = cols[c].get(r);
				const double w = isfinite(v) && v > 0 &&
				                                 colmax[c] > 0
				                         ? v / colmax[c] * bw
				                         : 0;
				double lo, hi, end = w;

				fprintf(f,
				        "<rect class=\"bar\" "
				        "data-metric=\"%zu\" x=\"%.1f\" "
				        "y=\"%.1f\" "
				        "width=\"%.1f\" height=\"%.1f\" "
				        "fill=\"%s\"/>",
				        c, x0, y + 3, w, row_h - 6,
				        policy_col(r->policy));
				cols[c].ci(r, &lo, &hi);
				if (isfinite(lo) && isfinite(hi) &&
				    colmax[c] > 0 && isfinite(v)) {
					end = put_errbar(f, c, x0,
					                 y + row_h / 2,
					                 lo / colmax[c] * bw,
					                 hi / colmax[c] * bw,
					                 cols[c].kind, lo, hi);
					if (end < w)
						end = w;
				}
				fprintf(f, "<text x=\"%.1f\" y=\"%.1f\">",
				        x0 + end + 4, y + 14);
				if (cols[c].kind == 1)
					put_pct(f, v);
				else if (c == 4 && isfinite(v))
					fprintf(f, "%.2f\xc3\x97%s", v,
					        speedup_same(r) ? " ~" : "");
				else
					put_num(f, v);
				fputs("</text>", f);
			}
		}
		fputs("</g>\n", f);
		y += row_h;
	}
	fputs("</svg>\n", f);
	free(row);
	return 0;
}

/* ---- the table of runs ---- */

static void td_num(FILE *f, double v)
{
	fputs("<td class=\"n\">", f);
	put_num(f, v);
	fputs("</td>", f);
}

/* An interval under a number in the table: [lo, hi] with decimals digits
 * (0: as put_num), nothing when there is none. */
static void put_ci_small(FILE *f, double lo, double hi, int decimals)
{
	if (!isfinite(lo) || !isfinite(hi))
		return;
	fputs("<small class=\"ci\">[", f);
	if (decimals)
		fprintf(f, "%.*f, %.*f", decimals, lo, decimals, hi);
	else {
		put_num(f, lo);
		fputs(", ", f);
		put_num(f, hi);
	}
	fputs("]</small>", f);
}

/* "k=v;k=v" as a block that wraps between parameters, never inside one. */
static void put_params(FILE *f, const char *params)
{
	if (!params || !*params)
		return;
	fputs("<small class=\"kv\">", f);
	for (const char *p = params; *p;) {
		const size_t l = strcspn(p, ";");
		char buf[256];

		if (l) {
			snprintf(buf, sizeof buf, "%.*s", (int)l, p);
			fputs(p == params ? "<span>" : " <span>", f);
			view_put_html(f, buf);
			fputs("</span>", f);
		}
		p += l + (p[l] == ';');
	}
	fputs("</small>", f);
}

/* Results first, then what produced them: the columns a reader compares
 * stay in view when the table scrolls sideways. "Swept" is the run's
 * value of every key the runs shown differ in (view_sweep.c). */
static void write_table(FILE *f, const struct view_runs *rs,
                        const struct view_sweep *sw)
{
	static const char *const head[] = {
		"Run",        "Label",    "Policy",   "Drafter",   "Preset",
		"Swept",      "Tokens/s", "Tokens/J", "vs sync",   "Accept",
		"Mean draft", "Sim time", "Energy",   "Committed", "Seqs",
		"Models",     "Trace",    "Mode",     "Queue",     "Max draft",
		"Events",     "Wall",     "Created",
	};
	const int swept = sw && sw->n_keys && sw->n_runs == rs->n;

	fputs("<div class=\"tablewrap\"><table id=\"runs-table\"><thead><tr>",
	      f);
	for (size_t i = 0; i < sizeof head / sizeof head[0]; i++)
		if (swept || strcmp(head[i], "Swept"))
			fprintf(f, "<th>%s</th>", head[i]);
	fputs("</tr></thead><tbody>\n", f);
	for (size_t i = 0; i < rs->n; i++) {
		const struct view_run *r = &rs->v[i];
		int any = 0;

		fprintf(f,
		        "<tr id=\"row-%lld\" data-run=\"%lld\">"
		        "<td class=\"n\">%lld</td><td>",
		        (long long)r->id, (long long)r->id, (long long)r->id);
		view_put_html(f, r->label ? r->label : "");
		fputs("</td><td>", f);
		view_put_html(f, r->policy);
		put_params(f, r->policy_params);
		fputs("</td><td>", f);
		view_put_html(f, r->drafter);
		put_params(f, r->drafter_params);
		fputs("</td><td>", f);
		view_put_html(f, r->hw_preset);
		if (swept)
			fputs("</td><td><small class=\"kv\">", f);
		for (size_t k = 0; swept && k < sw->n_keys; k++) {
			const char *t = sw->text[i * sw->n_keys + k];

			if (!t)
				continue;
			fputs(any++ ? " <span>" : "<span>", f);
			view_put_html(f, sw->key[k].name);
			fputs("=", f);
			view_put_html(f, t);
			fputs("</span>", f);
		}
		fputs(swept ? "</small></td><td class=\"n\">"
		            : "</td><td class=\"n\">",
		      f);
		put_num(f, r->tokens_per_s);
		put_ci_small(f, r->tokens_per_s_lo, r->tokens_per_s_hi, 0);
		fputs("</td><td class=\"n\">", f);
		put_num(f, r->tokens_per_j);
		put_ci_small(f, r->tokens_per_j_lo, r->tokens_per_j_hi, 0);
		fputs("</td><td class=\"n\">", f);
		if (isfinite(r->speedup))
			fprintf(f, "%.2f\xc3\x97%s", r->speedup,
			        speedup_same(r) ? " ~" : "");
		else
			fputs("\xe2\x80\x93", f);
		if (r->sync_run_id != r->id)
			put_ci_small(f, r->speedup_lo, r->speedup_hi, 3);
		fputs("</td><td class=\"n\">", f);
		put_pct(f, r->acceptance_rate);
		fputs("</td>", f);
		td_num(f, r->mean_draft_len);
		fputs("<td class=\"n\">", f);
		put_time(f, r->time_s, 0);
		fputs("</td><td class=\"n\">", f);
		put_num(f, r->energy_j);
		fputs(" J</td>", f);
		td_num(f, r->committed);
		fprintf(f, "<td class=\"n\">%lld</td><td>",
		        (long long)r->n_seq);
		view_put_html(f, r->draft_model);
		fputs(" \xe2\x86\x92 ", f);
		view_put_html(f, r->target_model);
		if (r->retargeted_from) {
			fputs("<small>retargeted from ", f);
			view_put_html(f, r->retargeted_from);
			fputs("</small>", f);
		}
		fputs("</td><td title=\"", f);
		view_put_html(f, r->trace_path);
		fputs("\">", f);
		view_put_html(f, view_base_name(r->trace_path));
		fprintf(f, "</td><td>%s<small>seed %lld</small></td>",
		        r->sampled ? "sampled" : "greedy", (long long)r->seed);
		fprintf(f, "<td class=\"n\">%lld</td><td class=\"n\">%lld</td>",
		        (long long)r->queue_capacity, (long long)r->max_draft);
		fputs("<td class=\"n\">", f);
		put_count(f, r->n_events);
		if (r->events_dropped > 0) {
			fputs("<small>+", f);
			put_count(f, (int64_t)r->events_dropped);
			fputs(" dropped</small>", f);
		}
		fputs("</td><td class=\"n\">", f);
		put_time(f, r->wall_s, 0);
		fputs("</td><td>", f);
		view_put_html(f, r->created);
		fputs("</td></tr>\n", f);
	}
	fputs("</tbody></table></div>\n", f);
}

/* ---- timelines ---- */

static void write_kind_legend(FILE *f)
{
	fputs("<div class=\"legend\">", f);
	for (int k = 0; k < VIEW_KIND_OTHER; k++)
		fprintf(f,
		        "<span><i class=\"sw\" style=\"background:%s\">"
		        "</i>%s</span>",
		        kind_colour[k], kind_label[k]);
	fprintf(f,
	        "<span><i class=\"sw rej\"></i>rejected inside</span>"
	        "<span><i class=\"sw waste\" style=\"background:%s\"></i>"
	        "wasted (discarded draft)</span>"
	        "<span>number = tokens</span></div>\n",
	        kind_colour[VIEW_KIND_DRAFT]);
}

int view_write_html(sqlite3 *h, const struct view_runs *rs,
                    const struct view_html_opts *o, FILE *f, char *err,
                    size_t errlen)
{
	struct policies pol = { NULL, 0 };
	struct view_sweep sw;
	size_t with_events = 0, drawn = 0, skipped = 0;
	int ret = 0;

	memset(&sw, 0, sizeof sw);
	ret = policies_collect(rs, &pol);
	if (ret < 0) {
		view_set_err(err, errlen, "out of memory");
		goto error;
	}
	ret = view_sweep_load(h, rs, &sw, err, errlen);
	if (ret < 0)
		goto error;
	for (size_t i = 0; i < rs->n; i++)
		with_events += rs->v[i].n_events > 0;

	fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset="
	      "\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-"
	      "width,initial-scale=1\">\n<title>ahasd-replay report: ",
	      f);
	view_put_html(f, o->db_name);
	fprintf(f, "</title>\n<style>%s</style></head>\n<body><main>\n", css);
	fputs("<header><h1>ahasd-replay report</h1><p class=\"sub\">", f);
	view_put_html(f, o->db_name);
	fprintf(f,
	        " \xc2\xb7 %zu run%s, %zu with timelines \xc2\xb7 "
	        "ahasd-view " AHASD_VERSION "</p>\n",
	        rs->n, rs->n == 1 ? "" : "s", with_events);
	fputs("<nav><a href=\"#compare\">Comparison</a><a href=\"#tradeoff\">"
	      "Trade-off</a><a href=\"#sweep\">Sweep</a><a href=\"#timelines\">"
	      "Timelines</a><a href=\"#runs\">Runs</a></nav></header>\n",
	      f);

	if (rs->n == 0) {
		fputs("<section><p>This database holds no runs yet.</p>"
		      "</section>\n",
		      f);
		goto done;
	}
	fputs("<section id=\"compare\"><h2>Comparison</h2>\n", f);
	ret = write_charts(f, rs, &pol);
	if (ret < 0) {
		view_set_err(err, errlen, "out of memory");
		goto error;
	}
	fputs("</section>\n", f);

	fputs("<section id=\"tradeoff\"><h2>Trade-off: throughput against "
	      "energy efficiency</h2>\n",
	      f);
	ret = write_tradeoff(f, rs, &sw, o->max_studies);
	if (ret < 0) {
		view_set_err(err, errlen, "out of memory");
		goto error;
	}
	fputs("</section>\n<section id=\"sweep\"><h2>Sweep: a metric over a "
	      "swept key</h2>\n",
	      f);
	ret = write_sweep_charts(f, rs, &sw, o->metrics, o->max_points);
	if (ret < 0) {
		view_set_err(err, errlen, "out of memory");
		goto error;
	}
	fputs("</section>\n", f);

	fputs("<section id=\"timelines\"><h2>Timelines</h2>\n", f);
	write_kind_legend(f);
	for (size_t i = 0; i < rs->n; i++) {
		const struct view_run *r = &rs->v[i];

		/* Runs without events get a line each only when few. */
		if (r->n_events == 0 && rs->n > o->max_timelines)
			continue;
		if (drawn == o->max_timelines) {
			skipped += r->n_events > 0;
			continue;
		}
		ret = write_timeline(h, f, r, o, err, errlen);
		if (ret < 0)
			goto error;
		drawn++;
	}
	if (skipped) {
		fprintf(f,
		        "<p class=\"warn\">%zu more run%s with events not "
		        "drawn (at most %u timelines; see "
		        "<code>--max-timelines</code> and <code>--run</code>)."
		        "</p>\n",
		        skipped, skipped == 1 ? "" : "s", o->max_timelines);
	}
	if (rs->n > o->max_timelines && with_events < rs->n) {
		size_t shown = 0;

		fputs("<p class=\"note\">No events recorded for run", f);
		fputs(rs->n - with_events == 1 ? " " : "s ", f);
		for (size_t i = 0; i < rs->n; i++) {
			if (rs->v[i].n_events)
				continue;
			if (shown == 40) {
				fputs(", \xe2\x80\xa6", f);
				break;
			}
			fprintf(f,
			        "%s<a href=\"#row-%lld\" "
			        "data-no-events=\"%lld\">"
			        "#%lld</a>",
			        shown ? ", " : "", (long long)rs->v[i].id,
			        (long long)rs->v[i].id, (long long)rs->v[i].id);
			shown++;
		}
		fputs("; rerun with <code>ahasd-replay --events</code> to see "
		      "their timelines.</p>\n",
		      f);
	}
	fputs("</section>\n", f);

	fputs("<section id=\"runs\"><h2>Runs</h2>\n", f);
	write_table(f, rs, &sw);
	fputs("</section>\n", f);
	fputs(sweep_script, f);
done:
	fputs("</main></body></html>\n", f);
error:
	view_sweep_free(&sw);
	free(pol.name);
	return ret;
}
