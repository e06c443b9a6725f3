/* ini.c - see ini.h. */
#include "ini.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	char *e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' ||
	                 e[-1] == '\r'))
		*--e = '\0';
	return s;
}

/* Split "[section name]" into its parts; @return 0 or -1. */
static int parse_header(char *s, char **section, char **name)
{
	char *close = strchr(s, ']');
	if (!close || *trim(close + 1) != '\0')
		return -1;
	*close = '\0';
	char *sec = trim(s + 1), *sp = sec;
	while (*sp && *sp != ' ' && *sp != '\t')
		sp++;
	if (*sp) {
		*sp = '\0';
		*name = trim(sp + 1);
	} else {
		*name = sp;
	}
	*section = sec;
	return *sec ? 0 : -1;
}

int ini_parse_file(const char *path, ini_fn fn, void *user, char *err,
                   size_t errlen)
{
	char line[1024], why[384], section[128] = "", name[128] = "";
	unsigned lineno = 0;
	int rc = 0;
	FILE *f = fopen(path, "r");
	if (!f) {
		rc = -errno;
		util_set_err(err, errlen, "%s: %s", path, strerror(errno));
		return rc;
	}
	while (fgets(line, sizeof line, f)) {
		lineno++;
		if (!strchr(line, '\n') && !feof(f)) {
			util_set_err(err, errlen,
			             "%s:%u: line longer than %zu bytes", path,
			             lineno, sizeof line - 2);
			rc = -EINVAL;
			goto out;
		}
		char *s = trim(line);
		if (*s == '\0' || *s == '#' || *s == ';')
			continue;
		struct ini_item it = {
			path, lineno, section, name, NULL, NULL
		};
		if (*s == '[') {
			char *sec, *nm;
			if (parse_header(s, &sec, &nm) ||
			    strlen(sec) >= sizeof section ||
			    strlen(nm) >= sizeof name) {
				util_set_err(err, errlen,
				             "%s:%u: malformed section header",
				             path, lineno);
				rc = -EINVAL;
				goto out;
			}
			snprintf(section, sizeof section, "%s", sec);
			snprintf(name, sizeof name, "%s", nm);
			why[0] = '\0';
			if (fn(user, &it, why, sizeof why)) {
				util_set_err(err, errlen, "%s:%u: %s", path,
				             lineno, why);
				rc = -EINVAL;
				goto out;
			}
			continue;
		}
		char *eq = strchr(s, '=');
		if (!eq) {
			util_set_err(err, errlen, "%s:%u: expected key = value",
			             path, lineno);
			rc = -EINVAL;
			goto out;
		}
		*eq = '\0';
		char *hash = strchr(eq + 1, '#'); /* trailing comment */
		if (hash)
			*hash = '\0';
		it.key = trim(s);
		it.value = trim(eq + 1);
		if (!*section) {
			util_set_err(err, errlen,
			             "%s:%u:%s: key outside a section", path,
			             lineno, it.key);
			rc = -EINVAL;
			goto out;
		}
		why[0] = '\0';
		if (fn(user, &it, why, sizeof why)) {
			util_set_err(err, errlen, "%s:%u:%s: %s", path, lineno,
			             it.key, why);
			rc = -EINVAL;
			goto out;
		}
	}
	if (ferror(f)) {
		util_set_err(err, errlen, "%s: read error", path);
		rc = -EIO;
	}
out:
	fclose(f);
	return rc;
}
