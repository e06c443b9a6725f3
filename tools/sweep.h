/* sweep.h - the values of a swept parameter, and the odometer that walks
 * the points of a grid.
 *
 * A value spec, as `ahasd-replay -P KEY=SPEC` takes it, is a
 * comma-separated list of items; each item is one value, an arithmetic
 * range LO:HI:STEP (LO, LO+STEP, ... up to HI) or a geometric range
 * LO:HI:xF (LO, LO*F, ... up to HI). Generated numbers are written with 15
 * significant digits, so 0.1:0.3:0.1 gives 0.1, 0.2, 0.3; a range of
 * integers gives integers.
 */
#ifndef AHASD_SWEEP_H
#define AHASD_SWEEP_H

#include <stddef.h>

/** Most values one spec may give. */
#define SWEEP_MAX_VALUES 10000

/** Expand spec into *vals (malloc'd strings in a malloc'd array, *n of
 * them, at least one). An empty item, a range that is empty or runs
 * backwards, a step that is not positive, a factor not above 1, more than
 * SWEEP_MAX_VALUES values and a value given twice are errors.
 * @return 0, or -EINVAL / -ENOMEM with a message naming the item. */
int sweep_values(const char *spec, char ***vals, size_t *n, char *err,
                 size_t errlen);
void sweep_values_free(char ***vals, size_t *n);

/** Advance the odometer idx over the dimensions i with mask[i] set (the
 * last one fastest), each counting 0..n_val[i]-1. @return 1, or 0 when
 * it wrapped round to all zeros (every point visited). */
int sweep_next(size_t *idx, const size_t *n_val, const unsigned char *mask,
               size_t n);

/** One shard of a sweep (--shard I/N): run k of the expanded list (0,
 * 1, ... in the order the sweep runs them) belongs to shard 1 + k mod N,
 * so the shards are disjoint, together are the whole sweep, and differ in
 * size by one run at most. */
struct sweep_shard {
	size_t i, n; /* 1 <= i <= n; 1/1: the whole sweep */
};

/** Parse "I/N" (1 <= I <= N <= 1000000). @return 0, or -EINVAL with a
 * message saying what is expected. */
int sweep_shard_parse(const char *s, struct sweep_shard *out, char *err,
                      size_t errlen);

/** Does run k of the expanded list belong to the shard? */
static inline int sweep_in_shard(const struct sweep_shard *sh, size_t k)
{
	return sh->n <= 1 || k % sh->n == sh->i - 1;
}

#endif
