/* ahasd_plugin_params.h - parsing of plugin parameter values, for create().
 *
 * Header-only (static inline, libc only) and outside the ABI: a plugin may
 * use it or parse its values itself. Each parser takes the whole string,
 * checks a closed range [lo, hi] and, on failure, writes one of
 *
 *     KEY=VAL is not a number            KEY=VAL is not an unsigned integer
 *     KEY=VAL out of range [lo, hi]
 *
 * into err (cut to errlen) and leaves *out unchanged. The built-in plugins
 * use them, so a plugin that does reports its errors like the rest.
 *
 *     #include "ahasd_plugin_params.h"
 *     rc = ahasd_parse_u32(keys[i], values[i], 1, 64, &s->len, err, errlen);
 */
#ifndef AHASD_PLUGIN_PARAMS_H
#define AHASD_PLUGIN_PARAMS_H

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* A finite decimal or hex floating-point number in [lo, hi], as strtod()
 * reads it, with no leading space and nothing after it ("nan", "inf", "",
 * "1x", and values strtod over- or underflows, such as "1e999" and
 * "1e-320", are not numbers). Return 0, -EINVAL (not a number) or -ERANGE
 * (out of range). */
static inline int ahasd_parse_double(const char *key, const char *val,
                                     double lo, double hi, double *out,
                                     char *err, size_t errlen)
{
	char *end = NULL;
	double v;

	if (val == NULL || val[0] == '\0' || isspace((unsigned char)val[0]))
		goto error;
	errno = 0;
	v = strtod(val, &end);
	if (errno != 0 || end == val || *end != '\0' || !isfinite(v))
		goto error;
	if (v < lo || v > hi) {
		snprintf(err, errlen, "%s=%s out of range [%g, %g]", key, val,
		         lo, hi);
		return -ERANGE;
	}
	*out = v;
	return 0;
error:
	snprintf(err, errlen, "%s=%s is not a number", key,
	         val != NULL ? val : "(null)");
	return -EINVAL;
}

/* A whole decimal unsigned integer in [lo, hi]: digits only ("-1", "+1",
 * " 1", "1x" and "" are not unsigned integers; "4294967296" is out of
 * range). Return 0, -EINVAL (not an unsigned integer) or -ERANGE (out of
 * range). */
static inline int ahasd_parse_u32(const char *key, const char *val, uint32_t lo,
                                  uint32_t hi, uint32_t *out, char *err,
                                  size_t errlen)
{
	char *end = NULL;
	unsigned long long v;

	if (val == NULL || val[0] < '0' || val[0] > '9')
		goto error;
	errno = 0;
	v = strtoull(val, &end, 10);
	if (errno != 0 || end == val || *end != '\0')
		goto error;
	if (v < lo || v > hi) {
		snprintf(err, errlen, "%s=%s out of range [%u, %u]", key, val,
		         (unsigned)lo, (unsigned)hi);
		return -ERANGE;
	}
	*out = (uint32_t)v;
	return 0;
error:
	snprintf(err, errlen, "%s=%s is not an unsigned integer", key,
	         val != NULL ? val : "(null)");
	return -EINVAL;
}

#endif
