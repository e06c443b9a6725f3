/* stats.h - 95% confidence intervals of a run's headline metrics by a
 * seeded bootstrap over its sequences, and paired intervals of one run
 * against another on the same sequences (db/SCHEMA.md, Intervals).
 *
 * Each headline metric is a ratio of sums over sequences (tokens/s is
 * sum committed / sum time_s, ...). A resample draws n sequences with
 * replacement; the interval is the 2.5th and 97.5th percentile of the
 * metric over STATS_RESAMPLES resamples. The draws come from splitmix64
 * seeded with STATS_SEED, the same for every run, its top 32 bits scaled
 * to [0, n): the same n gives the same resamples, which is what pairs two
 * runs of one trace. A leaf
 * module: libc and libm, and results.h for the sequence record.
 */
#ifndef AHASD_STATS_H
#define AHASD_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "results.h"

enum stats_metric {
	STATS_TOKENS_PER_S = 0, /* committed / time_s */
	STATS_TOKENS_PER_J,     /* committed / energy_j */
	STATS_ACCEPTANCE_RATE,  /* accepted / drafted */
	STATS_MEAN_DRAFT_LEN,   /* batch_tokens / batches */
	STATS_N_METRICS
};

/** The metrics' names, as in the metrics table. */
extern const char *const stats_metric_name[STATS_N_METRICS];

#define STATS_RESAMPLES 2000
#define STATS_SEED      UINT64_C(0x41485344) /* "AHSD" */
#define STATS_LEVEL     0.95

/* What one sequence adds to each metric's numerator and denominator. */
struct stats_seq {
	double num[STATS_N_METRICS], den[STATS_N_METRICS];
};

/** A sequence's share of each metric. */
void stats_seq_from(const struct replay_seq_result *r, struct stats_seq *s);

/* An estimate and its interval; lo and hi are NAN when there is none. */
struct stats_interval {
	double value, lo, hi;
};

/** Intervals of the metrics over n sequences (a ratio whose denominator
 * is 0 is 0, as in the metrics table). n = 0 gives NANs throughout.
 * @return 0 or -ENOMEM. */
int stats_intervals(const struct stats_seq *s, size_t n,
                    struct stats_interval out[STATS_N_METRICS]);

/** Paired intervals of a's metrics over b's (a[i] and b[i] the same
 * sequence): each resample draws the same sequences for both. NAN where
 * b's metric is 0 in the estimate (value) or in any resample (lo, hi).
 * @return 0 or -ENOMEM. */
int stats_paired(const struct stats_seq *a, const struct stats_seq *b, size_t n,
                 struct stats_interval out[STATS_N_METRICS]);

/** 1 if the interval of a ratio excludes 1 (the two runs differ), 0 if
 * it holds 1 (not distinguishable), -1 without an interval. */
int stats_ratio_differs(const struct stats_interval *iv);

#endif
