/* view_html_sweep.c - the report's sweep charts: a metric over a swept
 * key, one line per policy (and per value of the other swept keys) with
 * the 95% intervals of its points as a band. Every chart is written, all
 * but one hidden; two selects and a small script pick the one shown.
 * Every point is <circle class="pt" data-run=ID data-x data-y data-lo
 * data-hi> and every band <path class="band" data-runs="ID,...">, so a
 * test can hold the page to the database.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "view.h"
#include "view_page.h"

#define LC_H       360.0 /* chart height */
#define MAX_SERIES 24    /* lines drawn per chart */

/* ---- line charts: a metric over a swept key ---- */

struct lpoint {
	size_t run; /* index into the runs */
	double x;   /* position on the axis (a category's index) */
	double v, lo, hi;
};

struct series {
	const char *policy;
	char *rest;   /* the other swept keys' values, "" if none */
	size_t first; /* index of its first run */
	int flat;     /* the runs lack the key: a level line */
	size_t dash;  /* which of the policy's series it is */
	struct lpoint *pt;
	size_t n;
};

static const char *const dashes[] = {
	"", "7 4", "2 3", "10 3 2 3", "4 4", "1 2"
};
#define N_DASHES (sizeof dashes / sizeof *dashes)

/* The text of run i's values of every swept key but skip. */
static char *rest_text(const struct view_sweep *sw, size_t i, size_t skip)
{
	size_t len = 1;
	char *s, *p;

	for (size_t k = 0; k < sw->n_keys; k++)
		if (k != skip && sw->text[i * sw->n_keys + k])
			len += strlen(sw->key[k].name) +
			       strlen(sw->text[i * sw->n_keys + k]) + 2;
	s = p = malloc(len);
	if (!s)
		return NULL;
	*p = '\0';
	for (size_t k = 0; k < sw->n_keys; k++) {
		const char *t = sw->text[i * sw->n_keys + k];

		if (k == skip || !t)
			continue;
		p += sprintf(p, "%s%s=%s", p == s ? "" : " ", sw->key[k].name,
		             t);
	}
	return s;
}

static int lpoint_cmp(const void *pa, const void *pb)
{
	const struct lpoint *a = pa, *b = pb;

	if (a->x != b->x)
		return a->x < b->x ? -1 : 1;
	return (a->run > b->run) - (a->run < b->run);
}

static int series_cmp(const void *pa, const void *pb)
{
	const struct series *a = pa, *b = pb;
	const int c = strcmp(a->policy, b->policy);

	return c ? c : (a->first > b->first) - (a->first < b->first);
}

static int cat_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

struct chart {
	const struct view_runs *rs;
	const struct view_sweep *sw;
	size_t key, metric;
	const char **cat; /* categories in order, when not numeric */
	size_t n_cat;
	struct series *ser;
	size_t n_ser, n_dropped;
};

static void chart_free(struct chart *c)
{
	for (size_t s = 0; c->ser && s < c->n_ser; s++) {
		free(c->ser[s].rest);
		free(c->ser[s].pt);
	}
	free(c->ser);
	free(c->cat);
	c->ser = NULL;
	c->cat = NULL;
	c->n_ser = c->n_cat = 0;
}

/* Runs into series: one per policy and values of the other swept keys,
 * in order of their first run; a point per value of the key (the latest
 * run when several share one). */
static int chart_build(struct chart *c)
{
	const struct view_sweep *sw = c->sw;
	const size_t nk = sw->n_keys, nm = sw->n_metrics;
	const int numeric = sw->key[c->key].numeric;

	c->ser = calloc(c->rs->n + 1, sizeof *c->ser);
	c->cat = calloc(c->rs->n + 1, sizeof *c->cat);
	if (!c->ser || !c->cat)
		return -ENOMEM;
	if (!numeric) {
		for (size_t i = 0; i < c->rs->n; i++)
			if (sw->text[i * nk + c->key])
				c->cat[c->n_cat++] = sw->text[i * nk + c->key];
		qsort(c->cat, c->n_cat, sizeof *c->cat, cat_cmp);
		size_t u = 0;
		for (size_t j = 0; j < c->n_cat; j++)
			if (!u || strcmp(c->cat[u - 1], c->cat[j]))
				c->cat[u++] = c->cat[j];
		c->n_cat = u;
	}
	for (size_t i = 0; i < c->rs->n; i++) {
		const double v = sw->val[i * nm + c->metric];
		const char *t = sw->text[i * nk + c->key];
		char *rest;
		struct series *s = NULL;
		struct lpoint p = { i, 0, v, sw->lo[i * nm + c->metric],
			            sw->hi[i * nm + c->metric] };

		if (!isfinite(v))
			continue;
		if (t && numeric) {
			p.x = sw->num[i * nk + c->key];
		} else if (t) {
			const char **hit = bsearch(&t, c->cat, c->n_cat,
			                           sizeof *c->cat, cat_cmp);
			p.x = (double)(hit - c->cat);
		}
		rest = rest_text(sw, i, c->key);
		if (!rest)
			return -ENOMEM;
		for (size_t j = 0; j < c->n_ser && !s; j++)
			if (!strcmp(c->ser[j].policy, c->rs->v[i].policy) &&
			    !strcmp(c->ser[j].rest, rest) &&
			    c->ser[j].flat == !t)
				s = &c->ser[j];
		if (!s) {
			s = &c->ser[c->n_ser++];
			s->policy = c->rs->v[i].policy;
			s->rest = rest;
			s->first = i;
			s->flat = !t;
			s->pt = calloc(c->rs->n, sizeof *s->pt);
			if (!s->pt)
				return -ENOMEM;
		} else {
			free(rest);
		}
		/* one point per value (a level line has one): the latest
		 * run, the largest id */
		size_t j = 0;
		while (!s->flat && j < s->n && s->pt[j].x != p.x)
			j++;
		if (j < s->n) {
			if (c->rs->v[i].id > c->rs->v[s->pt[j].run].id)
				s->pt[j] = p;
		} else {
			s->pt[s->n++] = p;
		}
	}
	/* a policy's lines together, in the order of their first runs */
	qsort(c->ser, c->n_ser, sizeof *c->ser, series_cmp);
	for (size_t j = 0; j < c->n_ser; j++) {
		size_t d = 0;

		qsort(c->ser[j].pt, c->ser[j].n, sizeof *c->ser[j].pt,
		      lpoint_cmp);
		for (size_t q = 0; q < j; q++)
			d += !strcmp(c->ser[q].policy, c->ser[j].policy);
		c->ser[j].dash = d;
	}
	if (c->n_ser > MAX_SERIES) {
		c->n_dropped = c->n_ser - MAX_SERIES;
		for (size_t s = MAX_SERIES; s < c->n_ser; s++) {
			free(c->ser[s].rest);
			free(c->ser[s].pt);
		}
		c->n_ser = MAX_SERIES;
	}
	return 0;
}

static void put_metric_title(FILE *f, const char *name)
{
	if (!strcmp(name, "speedup"))
		fputs("speedup (over the sync run)", f);
	else
		view_put_html(f, name);
}

static void put_runs_attr(FILE *f, const struct chart *c,
                          const struct lpoint *p, size_t n)
{
	fputs(" data-runs=\"", f);
	for (size_t q = 0; q < n; q++)
		fprintf(f, "%s%lld", q ? "," : "",
		        (long long)c->rs->v[p[q].run].id);
	fputs("\"", f);
}

/* A series' bands: one over each stretch of points that have intervals
 * (a level band across the chart for a flat series); a lone point's
 * band is a short bar. */
static void put_bands(FILE *f, const struct chart *c, const struct series *s,
                      const struct plot_axis *ax, const struct plot_axis *ay,
                      const char *col)
{
	for (size_t a = 0; a < s->n;) {
		size_t b = a;

		if (!isfinite(s->pt[a].lo) || !isfinite(s->pt[a].hi)) {
			a++;
			continue;
		}
		while (b < s->n && isfinite(s->pt[b].lo) &&
		       isfinite(s->pt[b].hi))
			b++;
		fprintf(f, "<path class=\"band\" fill=\"%s\"", col);
		put_runs_attr(f, c, s->pt + a, b - a);
		fputs(" d=\"", f);
		if (s->flat) {
			const double y0 = plot_at(ay, s->pt[a].hi);
			const double y1 = plot_at(ay, s->pt[a].lo);

			fprintf(f, "M%.2f %.2fH%.2fV%.2fH%.2fZ", ax->p0, y0,
			        ax->p1, y1, ax->p0);
		} else if (b - a == 1) {
			const double x = plot_at(ax, s->pt[a].x);

			fprintf(f, "M%.2f %.2fH%.2fV%.2fH%.2fZ", x - 5,
			        plot_at(ay, s->pt[a].hi), x + 5,
			        plot_at(ay, s->pt[a].lo), x - 5);
		} else {
			for (size_t q = a; q < b; q++)
				fprintf(f, "%s%.2f %.2f", q == a ? "M" : "L",
				        plot_at(ax, s->pt[q].x),
				        plot_at(ay, s->pt[q].hi));
			for (size_t q = b; q-- > a;)
				fprintf(f, "L%.2f %.2f",
				        plot_at(ax, s->pt[q].x),
				        plot_at(ay, s->pt[q].lo));
			fputs("Z", f);
		}
		fputs("\"/>", f);
		a = b;
	}
}

static void write_chart(FILE *f, struct chart *c, int shown)
{
	const struct view_sweep *sw = c->sw;
	const struct view_key *key = &sw->key[c->key];
	const char *metric = sw->metric[c->metric].name;
	const double pb = LC_H - PLOT_BOTTOM;
	double xmn = INFINITY, xmx = -INFINITY, ymn = INFINITY, ymx = -INFINITY;
	struct plot_axis ax, ay;

	for (size_t s = 0; s < c->n_ser; s++)
		for (size_t q = 0; q < c->ser[s].n; q++) {
			const struct lpoint *p = &c->ser[s].pt[q];

			if (!c->ser[s].flat) {
				xmn = fmin(xmn, p->x);
				xmx = fmax(xmx, p->x);
			}
			ymn = fmin(ymn,
			           fmin(p->v, isfinite(p->lo) ? p->lo : p->v));
			ymx = fmax(ymx,
			           fmax(p->v, isfinite(p->hi) ? p->hi : p->v));
		}
	if (!key->numeric) {
		/* categories at 0 .. n-1, half a step of margin each side */
		ax = (struct plot_axis){ -0.5,      (double)c->n_cat - 0.5,
			                 0,         1,
			                 PLOT_LEFT, PLOT_W - PLOT_RIGHT };
	} else {
		plot_axis_fit(&ax, xmn, xmx, 1, PLOT_LEFT, PLOT_W - PLOT_RIGHT);
	}
	plot_axis_fit(&ay, ymn, ymx, 1, pb, PLOT_TOP);

	fputs("<figure class=\"lc-chart\" data-metric=\"", f);
	view_put_html(f, metric);
	fputs("\" data-key=\"", f);
	view_put_html(f, key->name);
	fprintf(f, "\"%s><figcaption><b>", shown ? "" : " hidden");
	put_metric_title(f, metric);
	fputs("</b> over <b>", f);
	view_put_html(f, key->name);
	fputs("</b>", f);
	if (!sw->metric[c->metric].has_ci)
		fputs(" (no intervals for this metric)", f);
	fputs("</figcaption>\n", f);
	fprintf(f,
	        "<svg class=\"plot\" viewBox=\"0 0 %.0f %.0f\" role=\"img\">",
	        PLOT_W, LC_H);
	plot_put_axis(f, &ay, 1, PLOT_LEFT, PLOT_W - PLOT_RIGHT);
	if (key->numeric) {
		plot_put_axis(f, &ax, 0, PLOT_TOP, pb);
	} else {
		for (size_t j = 0; j < c->n_cat; j++) {
			const double x = plot_at(&ax, (double)j);

			fprintf(f,
			        "<line class=\"grid\" x1=\"%.1f\" x2=\"%.1f\" "
			        "y1=\"%.1f\" y2=\"%.1f\"/><text "
			        "class=\"muted\" "
			        "x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">",
			        x, x, PLOT_TOP, pb, x, pb + 16);
			put_html_cut(f, view_base_name(c->cat[j]), 40);
			fputs("</text>", f);
		}
	}
	{
		char xt[300];

		char yt[300];

		snprintf(xt, sizeof xt, "%s%s", key->name,
		         ax.log ? " (log scale)" : "");
		snprintf(yt, sizeof yt, "%s%s", metric,
		         ay.log ? " (log scale)" : "");
		plot_put_titles(f, xt, yt, LC_H);
	}
	for (size_t s = 0; s < c->n_ser; s++)
		put_bands(f, c, &c->ser[s], &ax, &ay,
		          policy_col(c->ser[s].policy));
	for (size_t s = 0; s < c->n_ser; s++) {
		const struct series *se = &c->ser[s];
		const char *col = policy_col(se->policy);

		fprintf(f,
		        "<path class=\"line%s\" stroke=\"%s\" "
		        "stroke-dasharray=\"%s\" data-policy=\"",
		        se->flat ? " flat" : "", col,
		        se->flat ? "3 3" : dashes[se->dash % N_DASHES]);
		view_put_html(f, se->policy);
		fputs("\" d=\"", f);
		if (se->flat && se->n) {
			const double y = plot_at(&ay, se->pt[0].v);

			fprintf(f, "M%.2f %.2fH%.2f", ax.p0, y, ax.p1);
		} else {
			for (size_t q = 0; q < se->n; q++)
				fprintf(f, "%s%.2f %.2f", q ? "L" : "M",
				        plot_at(&ax, se->pt[q].x),
				        plot_at(&ay, se->pt[q].v));
		}
		fputs("\"/>\n", f);
		for (size_t q = 0; q < se->n; q++) {
			const struct lpoint *p = &se->pt[q];
			const struct view_run *r = &c->rs->v[p->run];
			const char *xv = sw->text[p->run * sw->n_keys + c->key];

			fprintf(f,
			        "<circle class=\"pt\" data-run=\"%lld\" "
			        "data-x=\"",
			        (long long)r->id);
			view_put_html(f, xv ? xv : "");
			fputs("\" data-y=\"", f);
			put_attr_num(f, p->v);
			fputs("\" data-lo=\"", f);
			put_attr_num(f, p->lo);
			fputs("\" data-hi=\"", f);
			put_attr_num(f, p->hi);
			fprintf(f,
			        "\" cx=\"%.2f\" cy=\"%.2f\" r=\"%s\" "
			        "fill=\"%s\"><title>run %lld: ",
			        se->flat ? ax.p0 + 6 : plot_at(&ax, p->x),
			        plot_at(&ay, p->v), se->flat ? "2.5" : "3.5",
			        col, (long long)r->id);
			view_put_html(f, r->policy);
			fputs(" ", f);
			if (xv) {
				view_put_html(f, key->name);
				fputs("=", f);
				view_put_html(f, xv);
			} else {
				fputs("(no ", f);
				view_put_html(f, key->name);
				fputs(")", f);
			}
			if (*se->rest) {
				fputs(" ", f);
				view_put_html(f, se->rest);
			}
			fputs(": ", f);
			put_num(f, p->v);
			if (isfinite(p->lo) && isfinite(p->hi)) {
				fputs(" [", f);
				put_num(f, p->lo);
				fputs(", ", f);
				put_num(f, p->hi);
				fputs("]", f);
			}
			fputs("</title></circle>", f);
		}
		fputc('\n', f);
	}
	fputs("</svg>\n<div class=\"legend\">", f);
	for (size_t s = 0; s < c->n_ser; s++) {
		const struct series *se = &c->ser[s];

		fprintf(f,
		        "<span><svg class=\"key\" viewBox=\"0 0 28 10\">"
		        "<line x1=\"1\" x2=\"27\" y1=\"5\" y2=\"5\" "
		        "stroke=\"%s\" "
		        "stroke-width=\"2.2\" stroke-dasharray=\"%s\"/></svg>",
		        policy_col(se->policy),
		        se->flat ? "3 3" : dashes[se->dash % N_DASHES]);
		view_put_html(f, se->policy);
		if (*se->rest) {
			fputs(" <small>", f);
			view_put_html(f, se->rest);
			fputs("</small>", f);
		}
		if (se->flat) {
			fputs(" <small>(has no ", f);
			view_put_html(f, key->name);
			fputs(": level)</small>", f);
		}
		fputs("</span>", f);
	}
	fputs("</div>\n", f);
	if (c->n_dropped)
		fprintf(f,
		        "<p class=\"warn\">%zu more line%s not drawn (at most "
		        "%d per chart).</p>\n",
		        c->n_dropped, c->n_dropped == 1 ? "" : "s", MAX_SERIES);
	fputs("</figure>\n", f);
}

const char sweep_script[] =
        "<script>\n"
        "(function () {\n"
        "  var form = document.getElementById('lc-pick');\n"
        "  if (!form) return;\n"
        "  var m = form.elements.metric, k = form.elements.key;\n"
        "  function show() {\n"
        "    var charts = document.querySelectorAll('.lc-chart');\n"
        "    for (var i = 0; i < charts.length; i++)\n"
        "      charts[i].hidden = !(charts[i].dataset.metric === m.value &&\n"
        "                           charts[i].dataset.key === k.value);\n"
        "  }\n"
        "  m.addEventListener('change', show);\n"
        "  k.addEventListener('change', show);\n"
        "  form.hidden = false;\n"
        "  show();\n"
        "})();\n"
        "</script>\n";

/* The metrics a report draws by default: the headline ones, the waste,
 * and each device's utilisation. */
static const char *const default_metrics[] = {
	"tokens_per_s",   "tokens_per_j", "speedup",  "acceptance_rate",
	"mean_draft_len", "time_s",       "energy_j", "energy_per_token_j",
	"wasted",         "preverified",
};

/* Whether metric name is drawn: list is NULL (the default set), "all",
 * or names separated by commas. */
static int metric_wanted(const char *name, const char *list)
{
	const size_t nl = strlen(name);

	if (!list) {
		for (size_t i = 0;
		     i < sizeof default_metrics / sizeof *default_metrics; i++)
			if (!strcmp(default_metrics[i], name))
				return 1;
		return nl > 12 && !strcmp(name + nl - 12, ".utilisation");
	}
	if (!strcmp(list, "all"))
		return 1;
	for (const char *p = list; *p;) {
		const size_t l = strcspn(p, ",");

		if (l == nl && !strncmp(p, name, l))
			return 1;
		p += l + (p[l] == ',');
	}
	return 0;
}

int write_sweep_charts(FILE *f, const struct view_runs *rs,
                       const struct view_sweep *sw, const char *which,
                       size_t max_points)
{
	size_t n_keys = sw->n_keys, n_metrics = 0, *metrics = NULL;
	size_t def_metric = 0;
	int ret = 0;

	if (!sw->n_keys) {
		fputs("<p class=\"note\">The runs shown differ in no "
		      "configuration key but the policy, so there is nothing "
		      "to "
		      "draw a line over. Sweep one: <code>ahasd-replay -P "
		      "hw.pim.mem_bw=128e9:512e9:x2 ...</code> or "
		      "<code>ahasd-search</code>.</p>\n",
		      f);
		return 0;
	}
	metrics = malloc((sw->n_metrics + 1) * sizeof *metrics);
	if (!metrics)
		return -ENOMEM;
	for (size_t m = 0; m < sw->n_metrics; m++) {
		int any = 0;

		if (!metric_wanted(sw->metric[m].name, which))
			continue;
		for (size_t i = 0; i < rs->n && !any; i++)
			any = isfinite(sw->val[i * sw->n_metrics + m]);
		if (any)
			metrics[n_metrics++] = m;
	}
	/* bounded output: at most max_points points over all charts */
	{
		const size_t per = rs->n ? rs->n : 1;
		size_t dropped_m = 0, dropped_k = 0;

		if (n_keys * per > max_points) {
			const size_t k = max_points / per ? max_points / per
			                                  : 1;

			dropped_k = n_keys - k;
			n_keys = k;
		}
		if (n_keys * n_metrics * per > max_points) {
			size_t m = max_points / (n_keys * per);

			if (!m)
				m = 1;
			dropped_m = n_metrics - m;
			n_metrics = m;
		}
		fputs("<p class=\"note\">One line per policy (and, dashed "
		      "apart, per value of the other swept keys), over a "
		      "configuration key whose value differs between the runs "
		      "shown; the band is the 95% interval of each point "
		      "(bootstrap over the run's sequences; paired with the "
		      "sync "
		      "run for the speed-up). A policy that does not take the "
		      "key is drawn as a level line. Pick the metric and the "
		      "key",
		      f);
		fputs(which ? ":"
		            : " (the headline metrics and device "
		              "utilisation; every metric with <code>ahasd-view "
		              "--metrics all</code>):",
		      f);
		fputs("</p>\n", f);
		if (dropped_k || dropped_m)
			fprintf(f,
			        "<p class=\"warn\">Charts drawn for the first "
			        "%zu metric%s and %zu key%s only (at most %zu "
			        "points in all); pick fewer runs with "
			        "<code>--run</code> or <code>--study</code>."
			        "</p>\n",
			        n_metrics, n_metrics == 1 ? "" : "s", n_keys,
			        n_keys == 1 ? "" : "s", max_points);
	}
	if (!n_metrics) {
		fputs("<p class=\"note\">No metric to draw.</p>\n", f);
		goto out;
	}
	for (size_t j = 0; j < n_metrics; j++)
		if (!strcmp(sw->metric[metrics[j]].name, "tokens_per_s"))
			def_metric = j;
	fputs("<form id=\"lc-pick\" class=\"pick\" hidden><label>metric "
	      "<select name=\"metric\">",
	      f);
	for (size_t j = 0; j < n_metrics; j++) {
		fputs("<option value=\"", f);
		view_put_html(f, sw->metric[metrics[j]].name);
		fprintf(f, "\"%s>", j == def_metric ? " selected" : "");
		put_metric_title(f, sw->metric[metrics[j]].name);
		fputs("</option>", f);
	}
	fputs("</select></label> <label>over <select name=\"key\">", f);
	{
		const size_t dk = sw->default_key < n_keys ? sw->default_key
		                                           : 0;

		for (size_t k = 0; k < n_keys; k++) {
			fputs("<option value=\"", f);
			view_put_html(f, sw->key[k].name);
			fprintf(f, "\"%s>", k == dk ? " selected" : "");
			view_put_html(f, sw->key[k].name);
			fputs("</option>", f);
		}
		fputs("</select></label></form>\n", f);
		for (size_t k = 0; k < n_keys; k++)
			for (size_t j = 0; j < n_metrics; j++) {
				struct chart c = { .rs = rs,
					           .sw = sw,
					           .key = k,
					           .metric = metrics[j] };

				ret = chart_build(&c);
				if (ret == 0)
					write_chart(f, &c,
					            k == dk && j == def_metric);
				chart_free(&c);
				if (ret < 0)
					goto out;
			}
	}
out:
	free(metrics);
	return ret;
}
