/* fuzz_tmpdir.h - one private temporary folder per fuzz process for the
 * files a target writes (a trace written back, an import's output);
 * removed at exit. */
#ifndef AHASD_FUZZ_TMPDIR_H
#define AHASD_FUZZ_TMPDIR_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char fuzz_tmpdir_path[64];

static inline void fuzz_tmpdir_remove(void)
{
	DIR *d = opendir(fuzz_tmpdir_path);
	struct dirent *e;
	char p[sizeof fuzz_tmpdir_path + 256];

	if (!d)
		return;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof p, "%s/%s", fuzz_tmpdir_path, e->d_name);
		unlink(p);
	}
	closedir(d);
	rmdir(fuzz_tmpdir_path);
}

/* @return 0, or -1 (message on stderr). */
static inline int fuzz_tmpdir_create(void)
{
	snprintf(fuzz_tmpdir_path, sizeof fuzz_tmpdir_path,
	         "/tmp/ahasd-fuzz-XXXXXX");
	if (!mkdtemp(fuzz_tmpdir_path)) {
		perror("mkdtemp");
		return -1;
	}
	atexit(fuzz_tmpdir_remove);
	return 0;
}

/* A path inside the folder (static buffer, one per name). */
static inline const char *fuzz_tmpdir_file(const char *name, char *buf,
                                           size_t len)
{
	snprintf(buf, len, "%s/%s", fuzz_tmpdir_path, name);
	return buf;
}

#endif
