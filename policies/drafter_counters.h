/* drafter_counters.h - the length counters every built-in drafter reports
 * first (private to policies/, not installed):
 *
 *     batches         batches begun
 *     drafted_tokens  tokens drafted into them
 *     mean_length     drafted_tokens / batches (0 before the first batch)
 *
 * A drafter's counter() answers indices below DRAFTER_LEN_COUNTERS with
 * drafter_len_counter() and numbers its own from there.
 */
#ifndef AHASD_DRAFTER_COUNTERS_H
#define AHASD_DRAFTER_COUNTERS_H

#include <stdint.h>

#define DRAFTER_LEN_COUNTERS 3u

static inline int drafter_len_counter(uint64_t batches, uint64_t tokens,
                                      uint32_t i, const char **name,
                                      double *value)
{
	switch (i) {
	case 0:
		*name = "batches";
		*value = (double)batches;
		return 1;
	case 1:
		*name = "drafted_tokens";
		*value = (double)tokens;
		return 1;
	case 2:
		*name = "mean_length";
		*value = batches ? (double)tokens / (double)batches : 0.0;
		return 1;
	default:
		return 0;
	}
}

#endif
