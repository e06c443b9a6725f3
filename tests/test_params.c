/* test_params.c - the public parameter parsers of ahasd_plugin_params.h:
 * what they accept, the inclusive range ends, and the exact error text
 * (the built-in plugins show it to users as is).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "ahasd_plugin_params.h"

#define SENTINEL_D 123.25
#define SENTINEL_U 777u

struct dcase {
	const char *val;
	double lo, hi;
	int rc;          /* 0, -EINVAL or -ERANGE */
	double want;     /* value when rc == 0 */
	const char *msg; /* error text when rc != 0 */
};

/* %g prints 1e-9 as "1e-09" and 1e9 as "1e+09". */
static const struct dcase dcases[] = {
	{ "0.5", 0.0, 1.0, 0, 0.5, NULL },
	{ "0", 0.0, 1.0, 0, 0.0, NULL },      /* lo inclusive */
	{ "1", 0.0, 1.0, 0, 1.0, NULL },      /* hi inclusive */
	{ "1e-9", 1e-9, 1e9, 0, 1e-9, NULL }, /* same rounding */
	{ "1e9", 1e-9, 1e9, 0, 1e9, NULL },
	{ "+.25", 0.0, 1.0, 0, 0.25, NULL },
	{ "-0.5", -1.0, 0.0, 0, -0.5, NULL },
	{ "0x1p-2", 0.0, 1.0, 0, 0.25, NULL }, /* strtod hex form */
	{ "1.5", 0.0, 1.0, -ERANGE, 0, "c=1.5 out of range [0, 1]" },
	{ "-0.001", 0.0, 1.0, -ERANGE, 0, "c=-0.001 out of range [0, 1]" },
	{ "-2", 1e-9, 1e9, -ERANGE, 0, "c=-2 out of range [1e-09, 1e+09]" },
	{ "0", 1e-9, 1e9, -ERANGE, 0, "c=0 out of range [1e-09, 1e+09]" },
	{ "1x", 0.0, 1.0, -EINVAL, 0, "c=1x is not a number" },
	{ "", 0.0, 1.0, -EINVAL, 0, "c= is not a number" },
	{ " 1", 0.0, 1.0, -EINVAL, 0, "c= 1 is not a number" },
	{ "1 ", 0.0, 1.0, -EINVAL, 0, "c=1  is not a number" },
	{ "nan", 0.0, 1.0, -EINVAL, 0, "c=nan is not a number" },
	{ "inf", 0.0, 1e9, -EINVAL, 0, "c=inf is not a number" },
	{ "-inf", -1e9, 0.0, -EINVAL, 0, "c=-inf is not a number" },
	{ "1e999", 0.0, 1e9, -EINVAL, 0, "c=1e999 is not a number" },
	{ "x", 0.0, 1.0, -EINVAL, 0, "c=x is not a number" },
};

struct ucase {
	const char *val;
	uint32_t lo, hi;
	int rc;
	uint32_t want;
	const char *msg;
};

static const struct ucase ucases[] = {
	{ "4", 1, 4096, 0, 4, NULL },
	{ "1", 1, 4096, 0, 1, NULL },       /* lo inclusive */
	{ "4096", 1, 4096, 0, 4096, NULL }, /* hi inclusive */
	{ "007", 1, 4096, 0, 7, NULL },     /* decimal, not octal */
	{ "0", 0, 10, 0, 0, NULL },
	{ "4294967295", 0, UINT32_MAX, 0, UINT32_MAX, NULL },
	{ "0", 1, 4096, -ERANGE, 0, "k=0 out of range [1, 4096]" },
	{ "4097", 1, 4096, -ERANGE, 0, "k=4097 out of range [1, 4096]" },
	/* 2^32 parses as an unsigned long long, so it is out of range */
	{ "4294967296", 0, UINT32_MAX, -ERANGE, 0,
	  "k=4294967296 out of range [0, 4294967295]" },
	/* 2^64 overflows strtoull itself */
	{ "18446744073709551616", 0, UINT32_MAX, -EINVAL, 0,
	  "k=18446744073709551616 is not an unsigned integer" },
	{ "-1", 0, 4096, -EINVAL, 0, "k=-1 is not an unsigned integer" },
	{ "+1", 0, 4096, -EINVAL, 0, "k=+1 is not an unsigned integer" },
	{ " 1", 0, 4096, -EINVAL, 0, "k= 1 is not an unsigned integer" },
	{ "1x", 0, 4096, -EINVAL, 0, "k=1x is not an unsigned integer" },
	{ "", 0, 4096, -EINVAL, 0, "k= is not an unsigned integer" },
	{ "1.0", 0, 4096, -EINVAL, 0, "k=1.0 is not an unsigned integer" },
	{ "0x10", 0, 4096, -EINVAL, 0, "k=0x10 is not an unsigned integer" },
	{ "nan", 0, 4096, -EINVAL, 0, "k=nan is not an unsigned integer" },
};

Test(params, parse_double_table)
{
	for (size_t i = 0; i < sizeof dcases / sizeof dcases[0]; i++) {
		const struct dcase *c = &dcases[i];
		char err[128] = "";
		double out = SENTINEL_D;
		const int rc = ahasd_parse_double("c", c->val, c->lo, c->hi,
		                                  &out, err, sizeof err);

		cr_assert_eq(rc, c->rc, "\"%s\": rc %d, want %d", c->val, rc,
		             c->rc);
		if (rc == 0) {
			cr_assert_eq(out, c->want, "\"%s\": got %.17g", c->val,
			             out);
			cr_assert_str_empty(err, "\"%s\": err \"%s\"", c->val,
			                    err);
		} else {
			cr_assert_eq(out, SENTINEL_D, "\"%s\": out changed",
			             c->val);
			cr_assert_str_eq(err, c->msg, "\"%s\"", c->val);
		}
	}
}

Test(params, parse_u32_table)
{
	for (size_t i = 0; i < sizeof ucases / sizeof ucases[0]; i++) {
		const struct ucase *c = &ucases[i];
		char err[128] = "";
		uint32_t out = SENTINEL_U;
		const int rc = ahasd_parse_u32("k", c->val, c->lo, c->hi, &out,
		                               err, sizeof err);

		cr_assert_eq(rc, c->rc, "\"%s\": rc %d, want %d", c->val, rc,
		             c->rc);
		if (rc == 0) {
			cr_assert_eq(out, c->want, "\"%s\": got %u", c->val,
			             (unsigned)out);
			cr_assert_str_empty(err, "\"%s\": err \"%s\"", c->val,
			                    err);
		} else {
			cr_assert_eq(out, SENTINEL_U, "\"%s\": out changed",
			             c->val);
			cr_assert_str_eq(err, c->msg, "\"%s\"", c->val);
		}
	}
}

/* A NULL value (a host bug) is reported, not dereferenced. */
Test(params, null_value)
{
	char err[64];
	double d = SENTINEL_D;
	uint32_t u = SENTINEL_U;

	cr_assert_eq(ahasd_parse_double("h", NULL, 0, 1, &d, err, sizeof err),
	             -EINVAL);
	cr_assert_str_eq(err, "h=(null) is not a number");
	cr_assert_eq(ahasd_parse_u32("k", NULL, 0, 1, &u, err, sizeof err),
	             -EINVAL);
	cr_assert_str_eq(err, "k=(null) is not an unsigned integer");
	cr_assert_eq(d, SENTINEL_D);
	cr_assert_eq(u, SENTINEL_U);
}

/* The message is cut to errlen (NUL included) and nothing past it is
 * written; errlen 0 writes nothing at all. */
Test(params, short_error_buffer)
{
	/* volatile: the cut is the point here, not a -Wformat-truncation */
	volatile size_t len8 = 8, len0 = 0;
	char buf[16];
	uint32_t u = SENTINEL_U;

	memset(buf, '#', sizeof buf);
	cr_assert_eq(ahasd_parse_u32("k", "0", 1, 9, &u, buf, len8), -ERANGE);
	/* "k=0 out of range [1, 9]" cut to 7 characters and a NUL */
	cr_assert_str_eq(buf, "k=0 out");
	for (size_t i = 8; i < sizeof buf; i++)
		cr_assert_eq(buf[i], '#', "byte %zu written", i);

	memset(buf, '#', sizeof buf);
	cr_assert_eq(
	        ahasd_parse_double("c", "2", 0, 1, &(double){ 0 }, buf, len0),
	        -ERANGE);
	cr_assert_eq(ahasd_parse_u32("k", "-1", 0, 9, &u, buf, len0), -EINVAL);
	cr_assert_eq(buf[0], '#');
	cr_assert_eq(u, SENTINEL_U);
}
