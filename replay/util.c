/* util.c - see util.h. */
#include "util.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

int util_exe_in_build_tree(void)
{
	char exe[PATH_MAX], root[PATH_MAX];
	if (!realpath("/proc/self/exe", exe) || !realpath(AHASD_BUILD_ROOT, root))
		return 0;
	size_t n = strlen(root);
	return strncmp(exe, root, n) == 0 && exe[n] == '/';
}

int util_find_ini(const char *search_path, const char *dflt, const char *name,
                  char *out, size_t outlen)
{
	const char *d = search_path ? search_path : "";
	while (*d) {
		size_t n = strcspn(d, ":");
		if (n) {
			int w = snprintf(out, outlen, "%.*s/%s.ini", (int)n, d, name);
			if (w > 0 && (size_t)w < outlen && access(out, R_OK) == 0)
				return 0;
		}
		d += n + (d[n] == ':');
	}
	int w = snprintf(out, outlen, "%s/%s.ini", dflt, name);
	if (w > 0 && (size_t)w < outlen && access(out, R_OK) == 0)
		return 0;
	return -ENOENT;
}
