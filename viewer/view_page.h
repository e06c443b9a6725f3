/* view_page.h - what the HTML report's files share: layout constants,
 * colours and number formatting (view_page.c); the page, charts and run
 * table (view_html.c) and timelines (view_html_timeline.c) use them. */
#ifndef AHASD_VIEW_PAGE_H
#define AHASD_VIEW_PAGE_H

#include <stdint.h>
#include <stdio.h>

#include "view.h"

#define TL_WIDTH 1100.0         /* SVG user units */
#define TL_GUTTER 72.0          /* lane labels */
#define TL_RIGHT 12.0
#define TL_LANE_H 30.0
#define TL_LANE_GAP 8.0
#define TL_TOP 18.0             /* sequence labels */
#define TL_AXIS 24.0
#define OV_LANE_H 14.0
#define MAX_SEQ_MARKS 24        /* sequence boundary labels per window */

extern const char *const kind_colour[VIEW_KIND_COUNT];
/* Utilisation bars: one colour per device lane. */
extern const char *const dev_colour[VIEW_MAX_DEV];
/* Policies: sync, async and ahasd have their own colours; any other
 * policy takes one of the palette by a hash of its name (FNV-1a), so a
 * policy has the same colour in every report. None is near a device's. */
extern const char *const policy_fixed_colour[][2];   /* {name, colour} */
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
const char *lane_name(const struct view_run *r, unsigned i,
                             char *buf, size_t len);
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

/* ---- plots (view_html_plots.c) ---- */

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
