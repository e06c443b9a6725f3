/* view_page.h - what the HTML report's files share: layout constants,
 * colours and number formatting (view_page.c) and the plots' axes
 * (view_plot.c); the page, charts and run table (view_html.c), the
 * timelines (view_html_timeline.c), the trade-off plots
 * (view_html_tradeoff.c) and the sweep charts (view_html_sweep.c) use
 * them. */
#ifndef AHASD_VIEW_PAGE_H
#define AHASD_VIEW_PAGE_H

#include <stdint.h>
#include <stdio.h>

#include "view.h"

#define TL_WIDTH      1100.0 /* SVG user units */
#define TL_GUTTER     72.0   /* lane labels */
#define TL_RIGHT      12.0
#define TL_LANE_H     30.0
#define TL_LANE_GAP   8.0
#define TL_TOP        18.0 /* sequence labels */
#define TL_AXIS       24.0
#define OV_LANE_H     14.0
#define MAX_SEQ_MARKS 24 /* sequence boundary labels per window */

extern const char *const kind_colour[VIEW_KIND_COUNT];
/* Utilisation bars: one colour per device lane. */
extern const char *const dev_colour[VIEW_MAX_DEV];
/* Policies: sync, async and ahasd have their own colours; any other
 * policy takes one of the palette by a hash of its name (FNV-1a), so a
 * policy has the same colour in every report. None is near a device's. */
extern const char *const policy_fixed_colour[][2]; /* {name, colour} */
extern const size_t n_policy_fixed;
extern const char *const policy_palette[];
extern const size_t n_policy_palette;
const char *policy_col(const char *name);
const char *view_base_name(const char *p);

/* The policies of the runs shown, each with its colour. */
struct policies {
	const char **name;
	size_t n;
};

void put_num(FILE *f, double v);
void put_pct(FILE *f, double v);
void put_count(FILE *f, int64_t v);
void put_time(FILE *f, double s, double scale);
const char *lane_name(const struct view_run *r, unsigned i, char *buf,
                      size_t len);
double dev_util(const struct view_run *r, unsigned d);
void put_group_title(FILE *f, const struct view_run *r);
/** Escaped, cut to at most max bytes on a UTF-8 boundary, with an
 * ellipsis. */
void put_html_cut(FILE *f, const char *s, size_t max);
/** A number as an SVG attribute or data value: %.17g, "" for NAN. */
void put_attr_num(FILE *f, double v);

/** One run's article: its head, overview and detail windows. */
int write_timeline(struct sqlite3 *h, FILE *f, const struct view_run *r,
                   const struct view_html_opts *o, char *err, size_t errlen);

/* ---- what the plots share (view_plot.c) ---- */

#define PLOT_W      1100.0 /* viewBox width, as the timelines */
#define PLOT_LEFT   78.0
#define PLOT_RIGHT  24.0
#define PLOT_TOP    14.0
#define PLOT_BOTTOM 46.0

struct plot_axis {
	double lo, hi; /* the span drawn (log10 of it when log) */
	int log;
	double step;   /* between ticks (in log10 units when log) */
	double p0, p1; /* pixels of lo and hi */
};

/** A span holding [mn, mx] with about 5 ticks at round numbers, drawn
 * from pixel p0 to p1; log when allow_log and the values span more than
 * a factor of 20. */
void plot_axis_fit(struct plot_axis *a, double mn, double mx, int allow_log,
                   double p0, double p1);
/** Where v falls, in pixels. */
double plot_at(const struct plot_axis *a, double v);
/** The grid lines and tick labels of a y axis (vertical, across other0
 * .. other1) or an x axis (from other0 down to other1). */
void plot_put_axis(FILE *f, const struct plot_axis *a, int vertical,
                   double other0, double other1);
/** The axes' titles, for a plot h high. */
void plot_put_titles(FILE *f, const char *xt, const char *yt, double h);
/** The swept keys (indices into sw->key) that take two values or more
 * among the runs in sel (n of them), but for skip. @return how many. */
size_t plot_keys_varying(const struct view_sweep *sw, const size_t *sel,
                         size_t n, size_t skip, size_t *out);
/** "k=v k=v" of run i over the keys given. */
void plot_put_key_values(FILE *f, const struct view_sweep *sw, size_t i,
                         const size_t *keys, size_t nk);

/* ---- plots (view_html_tradeoff.c, view_html_sweep.c) ---- */

/** Trade-off: per study (runs.label), tokens/s against tokens/J with
 * the Pareto front marked and its runs listed. */
int write_tradeoff(FILE *f, const struct view_runs *rs,
                   const struct view_sweep *sw, unsigned max_studies);

/** Sweep: a metric over a swept key, a line per policy (and per value
 * of the other swept keys) with its 95% intervals as a band, for every
 * metric of metrics (NULL: the headline ones and device utilisation;
 * "all"; or names separated by commas) and every swept key, at most
 * max_points points in all; a select picks the chart. */
int write_sweep_charts(FILE *f, const struct view_runs *rs,
                       const struct view_sweep *sw, const char *metrics,
                       size_t max_points);

/** The small script that makes the selects of write_sweep_charts work
 * (the page shows the default chart without it). */
extern const char sweep_script[];

#endif
