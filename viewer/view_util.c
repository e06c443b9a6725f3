/* view_util.c - escaping and number formatting for the viewer. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "view.h"

void view_set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

void view_put_html(FILE *f, const char *s)
{
	if (!s)
		return;
	for (; *s; s++) {
		switch (*s) {
		case '&': fputs("&amp;", f); break;
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '"': fputs("&quot;", f); break;
		case '\'': fputs("&#39;", f); break;
		default: fputc(*s, f); break;
		}
	}
}

void view_put_json(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s && *s; s++) {
		const unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c == '\t')
			fputs("\\t", f);
		else if (c < 0x20 || c == 0x7f)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

double view_nice_ceil(double x)
{
	double p, m;

	if (!(x > 0) || !isfinite(x))
		return 1;
	p = pow(10, floor(log10(x)));
	m = x / p;
	/* Guard against 1.0000000001 from rounding in log10/pow. */
	if (m <= 1 + 1e-9)
		return p;
	if (m <= 2 + 1e-9)
		return 2 * p;
	if (m <= 5 + 1e-9)
		return 5 * p;
	return 10 * p;
}

void view_fmt_time(char *buf, size_t len, double s, double scale)
{
	static const struct {
		double mul;
		const char *unit;
	} u[] = {
		{ 1, "s" },
		{ 1e3, "ms" },
		{ 1e6, "\xc2\xb5s" },
		{ 1e9, "ns" },
	};
	size_t i = 0;
	double v;

	if (scale <= 0)
		scale = fabs(s);
	while (i + 1 < sizeof u / sizeof u[0] && scale * u[i].mul < 1)
		i++;
	v = s * u[i].mul;
	if (fabs(v) >= 100 || v == floor(v))
		snprintf(buf, len, "%.0f %s", v, u[i].unit);
	else if (fabs(v) >= 10)
		snprintf(buf, len, "%.1f %s", v, u[i].unit);
	else
		snprintf(buf, len, "%.3g %s", v, u[i].unit);
}
