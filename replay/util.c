/* util.c - see util.h. */
#include "util.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int util_exe_in_build_tree(void)
{
	char exe[PATH_MAX], root[PATH_MAX];
	if (!realpath("/proc/self/exe", exe) || !realpath(AHASD_BUILD_ROOT, root))
		return 0;
	size_t n = strlen(root);
	return strncmp(exe, root, n) == 0 && exe[n] == '/';
}
