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

const char *const dev_colour[VIEW_MAX_DEV] = {
	"#3b5b92", "#2a9d8f", "#e76f51", "#8d6cab",
	"#6c757d", "#b5838d", "#457b9d", "#a8a13a",
};

/* Chosen for a CIE76 distance of at least 30 from every device colour
 * and from each other (tests/test_view_plots.c checks it). */
const char *const policy_fixed_colour[][2] = {
	{ "sync", "#8c510a" },  /* brown */
	{ "async", "#f0a202" }, /* amber */
	{ "ahasd", "#006d2c" }, /* green */
};
const size_t n_policy_fixed = sizeof policy_fixed_colour /
                              sizeof *policy_fixed_colour;

const char *const policy_palette[] = {
	"#e7298a", /* pink */
	"#000080", /* navy */
	"#252525", /* near black */
	"#e41a1c", /* red */
	"#9e0142", /* crimson */
	"#40004b", /* aubergine */
};
const size_t n_policy_palette = sizeof policy_palette / sizeof *policy_palette;

const char *policy_col(const char *name)
{
	uint32_t h = 2166136261u;

	if (!name)
		name = "";
	for (size_t i = 0; i < n_policy_fixed; i++)
		if (!strcmp(policy_fixed_colour[i][0], name))
			return policy_fixed_colour[i][1];
	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		h ^= *p;
		h *= 16777619u;
	}
	return policy_palette[h % n_policy_palette];
}

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

const char *lane_name(const struct view_run *r, unsigned i, char *buf,
                      size_t len)
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

void put_html_cut(FILE *f, const char *s, size_t max)
{
	char buf[256];
	size_t n;

	if (!s)
		return;
	n = strlen(s);
	if (n <= max || max >= sizeof buf - 4) {
		view_put_html(f, s);
		return;
	}
	while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80)
		max--;
	memcpy(buf, s, max);
	buf[max] = '\0';
	view_put_html(f, buf);
	fputs("\xe2\x80\xa6", f);
}

void put_attr_num(FILE *f, double v)
{
	if (isfinite(v))
		fprintf(f, "%.17g", v);
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
