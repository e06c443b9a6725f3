/* util.h - the few helpers every library and tool here shares. */
#ifndef AHASD_UTIL_H
#define AHASD_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

/** printf into a caller's error buffer (ignored when err is NULL or
 * errlen is 0). Header-only so db/ can use it without linking replay/. */
__attribute__((format(printf, 3, 4))) static inline void util_set_err(
        char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Numbers in messages are printed with enough digits to read back as the
 * same value, so a value just past a limit never shows as the limit
 * ("1.0000001" was printed "1" by %g). */
#define UTIL_NUM_LEN 32

/** A double in the fewest digits (at most 17) that read back as v. */
static inline const char *util_fmt_double(char buf[UTIL_NUM_LEN], double v)
{
	for (int digits = 1; digits <= 17; digits++) {
		snprintf(buf, UTIL_NUM_LEN, "%.*g", digits, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	return buf;
}

/** A float32 as %.9g: every float32 reads back exactly from 9 digits. */
static inline const char *util_fmt_float(char buf[UTIL_NUM_LEN], float v)
{
	snprintf(buf, UTIL_NUM_LEN, "%.9g", (double)v);
	return buf;
}

/** 1 if this executable lives inside the build tree (AHASD_BUILD_ROOT),
 * so data (plugins, presets, models) is taken from the build and source
 * trees instead of the installed directories. */
int util_exe_in_build_tree(void);

/** The one lookup of data files by name: NAME+suffix (or NAME, when it
 * already ends in suffix) in each directory of the colon-separated
 * search path (may be NULL or empty), then in each of dirs (NULL entries
 * skipped). Writes the path into out. @return 0, or -ENOENT. */
int util_find_file(const char *search_path, const char *const *dirs,
                   size_t n_dirs, const char *name, const char *suffix,
                   char *out, size_t outlen);
/** util_find_file for NAME.ini with one default directory. */
int util_find_ini(const char *search_path, const char *dflt, const char *name,
                  char *out, size_t outlen);

/** The candidate closest to word (edit distance at most a third of its
 * length, and at least 2), or NULL: for "did you mean" in messages. */
const char *util_closest(const char *word, const char *const *cands, size_t n);

/** Names of the files in dir ending in suffix, suffix cut, at most max
 * (names over 63 bytes skipped). @return how many. */
size_t util_list_dir(const char *dir, const char *suffix, char names[][64],
                     size_t max);

/** util_closest over the NAMEsuffix files of each directory of a
 * colon-separated search path and of dflt; the name (suffix cut) in out,
 * or NULL. Not thread-safe. */
const char *util_suggest_file(const char *word, const char *search_path,
                              const char *dflt, const char *suffix,
                              char out[64]);

#endif
