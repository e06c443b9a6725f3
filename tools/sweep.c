/* sweep.c - see sweep.h. */
#include "sweep.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct vals {
	char **v;
	size_t n, cap;
};

static int vals_add(struct vals *vs, const char *s, size_t len)
{
	if (vs->n == vs->cap) {
		const size_t cap = vs->cap ? 2 * vs->cap : 16;
		char **p = realloc(vs->v, cap * sizeof *p);

		if (!p)
			return -ENOMEM;
		vs->v = p;
		vs->cap = cap;
	}
	vs->v[vs->n] = malloc(len + 1);
	if (!vs->v[vs->n])
		return -ENOMEM;
	memcpy(vs->v[vs->n], s, len);
	vs->v[vs->n][len] = '\0';
	vs->n++;
	return 0;
}

/* A whole string as a finite double. */
static int num(const char *s, double *out)
{
	char *end;

	if (!*s)
		return 0;
	*out = strtod(s, &end);
	return !*end && isfinite(*out) && !strchr(s, 'x') && !strchr(s, 'X');
}

/* ^-?digits$ that fits an int64. */
static int integer(const char *s, long long *out)
{
	const char *p = s + (*s == '-');
	char *end;

	if (!*p || strspn(p, "0123456789") != strlen(p))
		return 0;
	errno = 0;
	*out = strtoll(s, &end, 10);
	return errno == 0 && !*end;
}

static void fmt15(char *buf, size_t len, double v)
{
	snprintf(buf, len, "%.15g", v);
	if (!strcmp(buf, "-0"))
		snprintf(buf, len, "0");
}

/* One item: a range when it has exactly three ':'-separated numbers (the
 * last one may start with x or * for a factor), else the value itself. */
static int add_item(struct vals *vs, const char *item, char *err, size_t errlen)
{
	char part[3][128], buf[64];
	const char *p = item;
	size_t np = 0;
	double lo, hi, step;
	long long ilo, ihi, istep;
	int geo;

	for (;;) {
		const size_t l = strcspn(p, ":");

		if (np == 3 || l >= sizeof part[0])
			return vals_add(vs, item, strlen(item));
		memcpy(part[np], p, l);
		part[np++][l] = '\0';
		if (!p[l])
			break;
		p += l + 1;
	}
	if (np != 3)
		return vals_add(vs, item, strlen(item));
	geo = part[2][0] == 'x' || part[2][0] == '*';
	if (!num(part[0], &lo) || !num(part[1], &hi) ||
	    !num(part[2] + geo, &step))
		return vals_add(vs, item, strlen(item));
	if (hi < lo) {
		util_set_err(err, errlen,
		             "'%s': the range runs backwards "
		             "(%s > %s)",
		             item, part[0], part[1]);
		return -EINVAL;
	}
	if (geo && (!(step > 1) || !(lo > 0))) {
		util_set_err(err, errlen,
		             "'%s': a geometric range LO:HI:xF "
		             "needs LO > 0 and F > 1",
		             item);
		return -EINVAL;
	}
	if (!geo && !(step > 0)) {
		util_set_err(err, errlen,
		             "'%s': a range LO:HI:STEP needs a "
		             "STEP > 0",
		             item);
		return -EINVAL;
	}
	if (!geo && integer(part[0], &ilo) && integer(part[1], &ihi) &&
	    integer(part[2], &istep)) {
		if (((double)ihi - (double)ilo) / (double)istep >=
		    SWEEP_MAX_VALUES)
			goto too_many;
		const long long cnt = (long long)(((unsigned long long)ihi -
		                                   (unsigned long long)ilo) /
		                                  (unsigned long long)istep) +
		                      1;
		for (long long i = 0; i < cnt; i++) {
			snprintf(buf, sizeof buf, "%lld", ilo + i * istep);
			if (vals_add(vs, buf, strlen(buf)) < 0)
				return -ENOMEM;
		}
		return 0;
	}
	for (size_t i = 0;; i++) {
		const double v = geo ? lo * pow(step, (double)i)
		                     : lo + (double)i * step;

		/* the last value may miss HI by rounding */
		if (v > hi + 1e-9 * (geo ? hi : step))
			break;
		if (i == SWEEP_MAX_VALUES)
			goto too_many;
		fmt15(buf, sizeof buf, v);
		if (vals_add(vs, buf, strlen(buf)) < 0)
			return -ENOMEM;
	}
	return 0;
too_many:
	util_set_err(err, errlen, "'%s': more than %d values", item,
	             SWEEP_MAX_VALUES);
	return -EINVAL;
}

void sweep_values_free(char ***vals, size_t *n)
{
	for (size_t i = 0; *vals && i < *n; i++)
		free((*vals)[i]);
	free(*vals);
	*vals = NULL;
	*n = 0;
}

int sweep_values(const char *spec, char ***vals, size_t *n, char *err,
                 size_t errlen)
{
	struct vals vs = { NULL, 0, 0 };
	int rc = 0;

	*vals = NULL;
	*n = 0;
	for (const char *p = spec;;) {
		const size_t l = strcspn(p, ",");
		char *item;

		if (l == 0 && strchr(spec, ',')) {
			util_set_err(err, errlen,
			             "'%s': an empty value in the "
			             "list",
			             spec);
			rc = -EINVAL;
			goto error;
		}
		item = malloc(l + 1);
		if (!item) {
			rc = -ENOMEM;
			goto error;
		}
		memcpy(item, p, l);
		item[l] = '\0';
		rc = add_item(&vs, item, err, errlen);
		free(item);
		if (rc < 0)
			goto error;
		if (vs.n > SWEEP_MAX_VALUES) {
			util_set_err(err, errlen, "'%s': more than %d values",
			             spec, SWEEP_MAX_VALUES);
			rc = -EINVAL;
			goto error;
		}
		if (!p[l])
			break;
		p += l + 1;
	}
	for (size_t i = 0; i < vs.n; i++)
		for (size_t j = 0; j < i; j++)
			if (!strcmp(vs.v[i], vs.v[j])) {
				util_set_err(err, errlen,
				             "'%s': value %s given "
				             "twice",
				             spec, vs.v[i]);
				rc = -EINVAL;
				goto error;
			}
	*vals = vs.v;
	*n = vs.n;
	return 0;
error:
	if (rc == -ENOMEM)
		util_set_err(err, errlen, "'%s': out of memory", spec);
	sweep_values_free(&vs.v, &vs.n);
	return rc;
}

int sweep_next(size_t *idx, const size_t *n_val, const unsigned char *mask,
               size_t n)
{
	for (size_t i = n; i-- > 0;) {
		if (!mask[i])
			continue;
		if (++idx[i] < n_val[i])
			return 1;
		idx[i] = 0;
	}
	return 0;
}

int sweep_shard_parse(const char *s, struct sweep_shard *out, char *err,
                      size_t errlen)
{
	unsigned long long i = 0, n = 0;
	int used = -1;
	if (sscanf(s, "%llu/%llu%n", &i, &n, &used) != 2 || used < 0 ||
	    s[used] || *s == '-' || strchr(s, ' ') || strchr(s, '+') ||
	    strchr(strchr(s, '/') + 1, '-') || n < 1 || n > 1000000 || i < 1 ||
	    i > n) {
		util_set_err(err, errlen,
		             "'%s': expected I/N, shard I of N "
		             "with 1 <= I <= N (e.g. 1/4 ... 4/4; N at most "
		             "1000000)",
		             s);
		return -EINVAL;
	}
	out->i = (size_t)i;
	out->n = (size_t)n;
	return 0;
}
