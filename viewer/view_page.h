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
extern const char *const policy_colour[];
extern const size_t n_policy_colours;
#define N_POLICY_COLOURS n_policy_colours
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
const char *policy_col(const struct policies *p, const char *name);
void put_group_title(FILE *f, const struct view_run *r);

/** One run's article: its head, overview and detail windows. */
int write_timeline(struct sqlite3 *h, FILE *f, const struct view_run *r,
                   const struct view_html_opts *o, const struct policies *pol,
                   char *err, size_t errlen);

#endif
