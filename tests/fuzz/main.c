/* main.c - run a fuzz target over files without libFuzzer (dav1d
 * tests/libfuzzer/main.c does the same): every argument is a file or a
 * folder of files, each fed once to LLVMFuzzerTestOneInput(). A crash or a
 * failed assertion in the target fails the test; a folder with no files
 * fails too, so a corpus that went missing is noticed. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf = NULL;
	size_t len = 0, cap = 0;

	if (!f) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	for (;;) {
		if (len == cap) {
			size_t nc = cap ? 2 * cap : 4096;
			unsigned char *nb = realloc(buf, nc);

			if (!nb) {
				fprintf(stderr, "%s: out of memory\n", path);
				free(buf);
				fclose(f);
				return -1;
			}
			buf = nb;
			cap = nc;
		}
		const size_t got = fread(buf + len, 1, cap - len, f);

		len += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		fprintf(stderr, "%s: read error\n", path);
		free(buf);
		fclose(f);
		return -1;
	}
	fclose(f);
	/* libFuzzer never passes NULL; a copy of exactly len bytes lets ASan
	 * see reads past the end */
	unsigned char *exact = malloc(len ? len : 1);

	if (!exact) {
		free(buf);
		return -1;
	}
	memcpy(exact, buf, len);
	free(buf);
	LLVMFuzzerTestOneInput(exact, len);
	free(exact);
	return 0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* @return number of files run, or -1 on error. */
static long run_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **names = NULL;
	size_t n = 0, cap = 0;
	long ran = 0;

	if (!d) {
		fprintf(stderr, "%s: %s\n", dir, strerror(errno));
		return -1;
	}
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			char **nn = realloc(names, cap * sizeof *nn);

			if (!nn)
				break;
			names = nn;
		}
		names[n] = strdup(e->d_name);
		if (names[n])
			n++;
	}
	closedir(d);
	qsort(names, n, sizeof *names, cmp_names);
	for (size_t i = 0; i < n; i++) {
		char path[4096];
		struct stat st;

		snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		free(names[i]);
		if (ran < 0 || stat(path, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		ran = run_file(path) == 0 ? ran + 1 : -1;
	}
	free(names);
	return ran;
}

int main(int argc, char **argv)
{
	long total = 0;

	if (LLVMFuzzerInitialize(&argc, &argv) != 0)
		return 1;
	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		struct stat st;
		long ran;

		if (stat(argv[i], &st) != 0) {
			fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
			return 1;
		}
		if (S_ISDIR(st.st_mode)) {
			ran = run_dir(argv[i]);
			if (ran == 0) {
				fprintf(stderr, "%s: no inputs\n", argv[i]);
				return 1;
			}
		} else {
			ran = run_file(argv[i]) == 0 ? 1 : -1;
		}
		if (ran < 0)
			return 1;
		total += ran;
	}
	printf("%s: %ld inputs, no crash\n", argv[0], total);
	return 0;
}
