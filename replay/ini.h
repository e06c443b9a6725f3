/* ini.h - the one reader of the project's INI files (hardware presets,
 * model presets).
 *
 * Syntax: "[section]" or "[section name]" headers, "key = value" lines,
 * blank lines, and comments from '#' or ';' at the start of a line or
 * from '#' after a value. Lines are at most 1023 bytes. Whitespace around
 * names, keys and values is dropped. The reader knows nothing of what the
 * keys mean: it hands every item to a callback, and formats whatever the
 * callback or the syntax rejects as "FILE:LINE: message" or
 * "FILE:LINE:KEY: message".
 */
#ifndef AHASD_INI_H
#define AHASD_INI_H

#include <stddef.h>

struct ini_item {
	const char *path;
	unsigned line;
	const char *section; /* "platform", "device", "model", ... */
	const char *name;    /* "npu" of "[device npu]", or "" */
	const char *key;     /* NULL on a section header */
	const char *value;   /* NULL on a section header */
};

/** Called for each section header (key == NULL) and each key. Return 0 to
 * go on, or non-zero with the reason (no location) in why; the reader then
 * stops and returns -EINVAL. */
typedef int (*ini_fn)(void *user, const struct ini_item *it, char *why,
                      size_t whylen);

/** Read path. @return 0, -errno when the file cannot be read (message in
 * err), or -EINVAL for a syntax error or a callback's refusal. */
int ini_parse_file(const char *path, ini_fn fn, void *user, char *err,
                   size_t errlen);

#endif
