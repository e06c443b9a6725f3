/* util.c - see util.h. */
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

int util_exe_in_build_tree(void)
{
	char exe[PATH_MAX], root[PATH_MAX];
	if (!realpath("/proc/self/exe", exe) ||
	    !realpath(AHASD_BUILD_ROOT, root))
		return 0;
	size_t n = strlen(root);
	return strncmp(exe, root, n) == 0 && exe[n] == '/';
}

static int try_file(const char *dir, size_t dirlen, const char *name,
                    const char *suffix, char *out, size_t outlen)
{
	int w = snprintf(out, outlen, "%.*s/%s%s", (int)dirlen, dir, name,
	                 suffix);
	return w > 0 && (size_t)w < outlen && access(out, R_OK) == 0;
}

int util_find_file(const char *search_path, const char *const *dirs,
                   size_t n_dirs, const char *name, const char *suffix,
                   char *out, size_t outlen)
{
	const size_t nl = strlen(name), sl = strlen(suffix);
	if (nl > sl && !strcmp(name + nl - sl, suffix))
		suffix = ""; /* the name already has it */
	const char *d = search_path ? search_path : "";
	while (*d) {
		size_t n = strcspn(d, ":");
		if (n && try_file(d, n, name, suffix, out, outlen))
			return 0;
		d += n + (d[n] == ':');
	}
	for (size_t i = 0; i < n_dirs; i++)
		if (dirs[i] && try_file(dirs[i], strlen(dirs[i]), name, suffix,
		                        out, outlen))
			return 0;
	return -ENOENT;
}

int util_find_ini(const char *search_path, const char *dflt, const char *name,
                  char *out, size_t outlen)
{
	return util_find_file(search_path, &dflt, 1, name, ".ini", out, outlen);
}

/* Levenshtein distance, capped: rows of at most 64 + 1 cells. */
static size_t edit_distance(const char *a, const char *b)
{
	size_t na = strlen(a), nb = strlen(b);
	size_t row[65];
	if (na > 64 || nb > 64)
		return SIZE_MAX;
	for (size_t j = 0; j <= nb; j++)
		row[j] = j;
	for (size_t i = 1; i <= na; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= nb; j++) {
			size_t up = row[j];
			size_t best = diag + (a[i - 1] != b[j - 1]);
			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[nb];
}

const char *util_closest(const char *word, const char *const *cands, size_t n)
{
	const char *best = NULL;
	size_t best_d = SIZE_MAX;
	const size_t len = strlen(word);
	/* a third of the word, at least 2 edits: "ahsad" -> "ahasd",
	 * "npu_pim" -> "npu-pim", "mem_bww" -> "mem_bw" */
	const size_t limit = len / 3 > 2 ? len / 3 : 2;
	for (size_t i = 0; i < n; i++) {
		if (!cands[i])
			continue;
		size_t d = edit_distance(word, cands[i]);
		if (d < best_d) {
			best_d = d;
			best = cands[i];
		}
	}
	return best_d <= limit && best_d > 0 ? best : NULL;
}

size_t util_list_dir(const char *dir, const char *suffix, char names[][64],
                     size_t max)
{
	DIR *d = opendir(dir);
	size_t n = 0, sl = strlen(suffix);
	struct dirent *e;
	if (!d)
		return 0;
	while ((e = readdir(d)) && n < max) {
		size_t l = strlen(e->d_name);
		if (e->d_name[0] == '.' || l <= sl || l - sl >= 64 ||
		    strcmp(e->d_name + l - sl, suffix))
			continue;
		memcpy(names[n], e->d_name, l - sl);
		names[n][l - sl] = '\0';
		n++;
	}
	closedir(d);
	return n;
}

const char *util_suggest_file(const char *word, const char *search_path,
                              const char *dflt, const char *suffix,
                              char out[64])
{
	static char names[256][64];
	const char *cands[256];
	size_t n = 0;
	const char *d = search_path ? search_path : "";
	char dir[4096];
	while (*d) {
		size_t l = strcspn(d, ":");
		if (l && l < sizeof dir) {
			memcpy(dir, d, l);
			dir[l] = '\0';
			n += util_list_dir(dir, suffix, names + n, 256 - n);
		}
		d += l + (d[l] == ':');
	}
	if (dflt)
		n += util_list_dir(dflt, suffix, names + n, 256 - n);
	for (size_t i = 0; i < n; i++)
		cands[i] = names[i];
	const char *c = util_closest(word, cands, n);
	if (!c)
		return NULL;
	snprintf(out, 64, "%s", c);
	return out;
}
