/* util.h - the few helpers every library and tool here shares. */
#ifndef AHASD_UTIL_H
#define AHASD_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

/** printf into a caller's error buffer (ignored when err is NULL or
 * errlen is 0). Header-only so db/ can use it without linking replay/. */
__attribute__((format(printf, 3, 4)))
static inline void util_set_err(char *err, size_t errlen, const char *fmt,
                                ...)
{
	va_list ap;
	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/** 1 if this executable lives inside the build tree (AHASD_BUILD_ROOT),
 * so data (plugins, presets, models) is taken from the build and source
 * trees instead of the installed directories. */
int util_exe_in_build_tree(void);

#endif
