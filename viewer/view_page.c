/* view_page.c - see view_page.h. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "view.h"
#include "view_page.h"

const char *const kind_colour[VIEW_KIND_COUNT] = {
	"#4e79a7", /* draft: blue */
	"#f28e2b", /* verify: orange */
	"#59a14f", /* preverify: green */
	"#b07aa1", /* switch: purple */
	"#e6b700", /* transfer: yellow */
	"#c9ccd1", /* idle: light grey */
	"#e15759", /* offload: red */
	"#7f7f7f", /* other */
};

const char *const policy_colour[] = {
	"#1b9e77", "#d95f02", "#7570b3", "#e7298a",
	"#66a61e", "#e6ab02", "#a6761d", "#666666",
};
const size_t n_policy_colours = sizeof policy_colour / sizeof *policy_colour;

const char *view_base_name(const char *p)
{
	const char *s = p ? strrchr(p, '/') : NULL;

	return s ? s + 1 : (p ? p : "");
}

void put_num(FILE *f, double v)
{
	if (!isfinite(v))
		fputs("\xe2\x80\x93", f); /* en dash */
	else if (fabs(v) >= 1000)
		fprintf(f, "%.0f", v);
	else if (fabs(v) >= 100)
		fprintf(f, "%.1f", v);
	else
		fprintf(f, "%.3g", v);
}

void put_pct(FILE *f, double v)
{
	if (!isfinite(v))
		fputs("\xe2\x80\x93", f);
	else
		fprintf(f, "%.1f%%", 100 * v);
}

void put_count(FILE *f, int64_t v)
{
	char buf[32], out[48];
	size_t n, j = 0;

	snprintf(buf, sizeof buf, "%lld", (long long)(v < 0 ? -v : v));
	n = strlen(buf);
	if (v < 0)
		out[j++] = '-';
	for (size_t i = 0; i < n; i++) {
		if (i && (n - i) % 3 == 0)
			out[j++] = ',';
		out[j++] = buf[i];
	}
	out[j] = '\0';
	fputs(out, f);
}

void put_time(FILE *f, double s, double scale)
{
	char buf[48];

	if (!isfinite(s)) {
		fputs("\xe2\x80\x93", f);
		return;
	}
	view_fmt_time(buf, sizeof buf, s, scale);
	fputs(buf, f);
}

const char *lane_name(const struct view_run *r, unsigned i,
                             char *buf, size_t len)
{
	if (i < r->n_dev && r->dev[i].name && *r->dev[i].name)
		return r->dev[i].name;
	snprintf(buf, len, "dev %u", i);
	return buf;
}

double dev_util(const struct view_run *r, unsigned d)
{
	if (d >= r->n_dev || !(r->time_s > 0) || !isfinite(r->dev[d].busy_s))
		return NAN;
	return r->dev[d].busy_s / r->time_s;
}

const char *policy_col(const struct policies *p, const char *name)
{
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->name[i], name) == 0)
			return policy_colour[i % n_policy_colours];
	return "#888";
}

void put_group_title(FILE *f, const struct view_run *r)
{
	view_put_html(f, r->draft_model);
	fputs(" \xe2\x86\x92 ", f);
	view_put_html(f, r->target_model);
	fputs("  \xc2\xb7  ", f);
	view_put_html(f, r->hw_preset);
	fputs("  \xc2\xb7  drafter ", f);
	view_put_html(f, r->drafter);
	fputs("  \xc2\xb7  trace ", f);
	view_put_html(f, view_base_name(r->trace_path));
}
