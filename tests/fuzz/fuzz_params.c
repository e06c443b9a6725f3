/* fuzz_params.c - plugin parameters: the public parsers of
 * policies/ahasd_plugin_params.h, checked against their contract, and the
 * create() hook of every built-in plugin fed the same key=value lines
 * (with the defaults of the keys they lack, as the host fills them in).
 *
 * Input: lines "key=value" (a line without '=' is a value for the bare
 * parsers only). Built-in plugins are found through AHASD_PLUGIN_PATH or
 * the build tree, opened once and kept loaded. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ahasd_plugin_params.h"
#include "fuzz.h"
#include "plugin.h"

#define MAX_LINES 32

static const char *const names[] = { "sync",   "async",     "ahasd",
	                             "fixed",  "specdecpp", "svip",
	                             "adaedl", "banditspec" };
static struct plugin plugins[sizeof names / sizeof names[0]];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[1024];

	(void)argc;
	(void)argv;
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		if (plugin_open(&plugins[i], names[i],
		                i < 3 ? AHASD_PLUGIN_POLICY
		                      : AHASD_PLUGIN_DRAFTER,
		                err, sizeof err) < 0) {
			fprintf(stderr,
			        "fuzz-params: %s (set AHASD_PLUGIN_PATH)\n",
			        err);
			return 1;
		}
	}
	return 0;
}

/* The contract of the header: on success the value is in range and the
 * buffer untouched; on failure *out is unchanged and err is one
 * NUL-terminated message that starts with "key=". */
static void check_parsers(const char *key, const char *val)
{
	static const struct {
		double lo, hi;
	} dr[] = {
		{ 0.0, 1.0 },
		{ -1e9, 1e9 },
		{ 1e-9, 1e9 },
	};
	static const struct {
		uint32_t lo, hi;
	} ur[] = {
		{ 0, UINT32_MAX },
		{ 1, 64 },
		{ 1, 4096 },
	};
	char err[64];

	for (size_t i = 0; i < sizeof dr / sizeof dr[0]; i++) {
		double v = 12345.5;
		int rc;

		memset(err, 'x', sizeof err);
		rc = ahasd_parse_double(key, val, dr[i].lo, dr[i].hi, &v, err,
		                        sizeof err);
		if (rc == 0) {
			fuzz_check(isfinite(v) && v >= dr[i].lo &&
			           v <= dr[i].hi);
		} else {
			fuzz_check(rc == -EINVAL || rc == -ERANGE);
			fuzz_check(v == 12345.5);
			fuzz_check(memchr(err, '\0', sizeof err));
		}
	}
	for (size_t i = 0; i < sizeof ur / sizeof ur[0]; i++) {
		uint32_t v = 777;
		int rc;

		memset(err, 'x', sizeof err);
		rc = ahasd_parse_u32(key, val, ur[i].lo, ur[i].hi, &v, err,
		                     sizeof err);
		if (rc == 0) {
			fuzz_check(v >= ur[i].lo && v <= ur[i].hi);
			/* digits only: the value reads back as the same number */
			fuzz_check(strtoull(val, NULL, 10) == v);
		} else {
			fuzz_check(rc == -EINVAL || rc == -ERANGE);
			fuzz_check(v == 777);
			fuzz_check(memchr(err, '\0', sizeof err));
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1);
	const char *keys[MAX_LINES], *vals[MAX_LINES];
	size_t n = 0;
	char *line, *save = NULL;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	for (line = strtok_r(buf, "\n", &save); line && n < MAX_LINES;
	     line = strtok_r(NULL, "\n", &save)) {
		char *eq = strchr(line, '=');

		if (!eq) {
			check_parsers("v", line);
			continue;
		}
		*eq = '\0';
		check_parsers(line, eq + 1);
		keys[n] = line;
		vals[n++] = eq + 1;
	}
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		const struct ahasd_plugin *d = plugins[i].desc;
		const char *k[MAX_LINES], *v[MAX_LINES];
		char err[512];
		void *state = NULL;
		size_t m = 0;

		const char **ak = NULL, **av = NULL;
		int na;

		/* the host rejects undeclared keys, then passes every declared
		 * one with its default filled in (plugin_create) */
		for (size_t j = 0; j < n; j++) {
			if (plugin_declares(&plugins[i], keys[j])) {
				k[m] = keys[j];
				v[m++] = vals[j];
			}
		}
		na = plugin_args(&plugins[i], k, v, m, &ak, &av);
		if (na < 0)
			continue;
		const struct ahasd_create_args args = {
			sizeof args, AHASD_PLUGIN_ABI_VERSION, (size_t)na, ak,
			av
		};
		err[0] = '\0';
		if (d->create(&state, &args, err, sizeof err) == 0) {
			fuzz_check(state != NULL || d->destroy != NULL);
			d->destroy(state);
		} else {
			fuzz_check(memchr(err, '\0', sizeof err));
		}
		free(ak);
		free(av);
	}
	free(buf);
	return 0;
}
