/* test_intervals.c - bootstrap intervals (issue 12, item 3).
 *
 * stats.c on synthetic sequences whose interval is known independently:
 * the normal approximation with the variance the sample itself has (what
 * a bootstrap estimates), within the bootstrap's own sampling error. Then
 * the intervals a real run stores, the paired ones of a comparison, and a
 * pair of policies the interval cannot tell apart, end to end.
 */
#include "prog_util.h"

#include <math.h>

#include "stats.h"

#define Z975 1.959963984540054
/* 2000 resamples put the 2.5th and 97.5th percentiles within a few
 * percent of their limit; 8% of the half-width is well outside that and
 * well inside any real error (a wrong variance, an unpaired resample). */
#define TOL 0.08

/* n sequences; seq i gets num = c, den = mean -/+ d alternately, so the
 * sample's own standard deviation of den is exactly d. */
static void alternating(struct stats_seq *s, size_t n, int m, double c,
                        double mean, double d)
{
	for (size_t i = 0; i < n; i++) {
		memset(&s[i], 0, sizeof s[i]);
		for (int k = 0; k < STATS_N_METRICS; k++) {
			s[i].num[k] = 1;
			s[i].den[k] = 1;
		}
		s[i].num[m] = c;
		s[i].den[m] = mean + (i % 2 ? d : -d);
	}
}

static void expect_near(double got, double want, double tol, const char *what)
{
	cr_expect(fabs(got - want) <= tol * fabs(want),
	          "%s: %.6g, want %.6g within %.0f%%", what, got, want,
	          100 * tol);
}

/* Acceptance with drafted = 100 per sequence and accepted = 60 -/+ 10:
 * the metric is the mean share, 0.6, whose standard error is
 * sigma / sqrt(n) with sigma = 0.1 exactly. The 95% interval is then
 * 0.6 -/+ 1.96 * 0.1 / sqrt(200). */
Test(intervals, acceptance_matches_the_normal_approximation)
{
	enum { N = 200 };
	struct stats_seq s[N];
	struct stats_interval iv[STATS_N_METRICS];
	const double se = 0.1 / sqrt(N);

	for (size_t i = 0; i < N; i++) {
		alternating(&s[i], 1, STATS_ACCEPTANCE_RATE, 0, 0, 0);
		s[i].num[STATS_ACCEPTANCE_RATE] = i % 2 ? 70 : 50;
		s[i].den[STATS_ACCEPTANCE_RATE] = 100;
	}
	cr_assert_eq(stats_intervals(s, N, iv), 0);
	const struct stats_interval *a = &iv[STATS_ACCEPTANCE_RATE];
	cr_expect_float_eq(a->value, 0.6, 1e-12);
	expect_near((a->hi - a->lo) / 2, Z975 * se, TOL, "half-width");
	cr_expect(fabs((a->hi + a->lo) / 2 - 0.6) <= TOL * Z975 * se,
	          "centre %.6f", (a->hi + a->lo) / 2);
}

/* Throughput, a ratio of sums: committed = 100 per sequence, time_s =
 * 2 -/+ 0.5. R = 100 / 2 = 50 tokens/s; by the delta method its standard
 * error is sqrt(mean((c - R t)^2)) / (mean(t) sqrt(n)) = R * 0.5 / (2
 * sqrt(n)). */
Test(intervals, throughput_matches_the_delta_method)
{
	enum { N = 64 };
	struct stats_seq s[N];
	struct stats_interval iv[STATS_N_METRICS];
	const double se = 50 * 0.5 / (2 * sqrt(N));

	alternating(s, N, STATS_TOKENS_PER_S, 100, 2, 0.5);
	cr_assert_eq(stats_intervals(s, N, iv), 0);
	const struct stats_interval *t = &iv[STATS_TOKENS_PER_S];
	cr_expect_float_eq(t->value, 50, 1e-9);
	expect_near((t->hi - t->lo) / 2, Z975 * se, TOL, "half-width");
	cr_expect(t->lo < 50 && 50 < t->hi);
	/* the metrics without spread have a point interval */
	cr_expect_eq(iv[STATS_TOKENS_PER_J].lo, 1);
	cr_expect_eq(iv[STATS_TOKENS_PER_J].hi, 1);
}

/* Two runs of the same sequences whose times vary a lot from sequence to
 * sequence (1 or 3 s) but whose ratio varies little: b takes 2% longer,
 * -/+ 1% alternating with a period of 4, so that it does not follow a's.
 * Paired, the speed-up of a over b is sum(b)/sum(a) with the delta-method
 * error sqrt(mean((b - Q a)^2)) / (mean(a) sqrt(n)); the interval excludes
 * 1. Resampled apart, the two intervals overlap: unpaired, the 2% would
 * be lost in the spread of the sequences. */
Test(intervals, paired_interval_matches_the_delta_method)
{
	enum { N = 80 };
	struct stats_seq a[N], b[N];
	struct stats_interval pa[STATS_N_METRICS], ia[STATS_N_METRICS],
	                      ib[STATS_N_METRICS];
	double sa = 0, sb = 0, ss = 0;

	for (size_t i = 0; i < N; i++) {
		const double t = i % 2 ? 3 : 1;
		const double f = 1.02 * ((i / 2) % 2 ? 1.01 : 0.99);

		alternating(&a[i], 1, STATS_TOKENS_PER_S, 100, t, 0);
		alternating(&b[i], 1, STATS_TOKENS_PER_S, 100, t * f, 0);
		sa += t;
		sb += t * f;
	}
	const double q = sb / sa;
	for (size_t i = 0; i < N; i++) {
		const double e = b[i].den[STATS_TOKENS_PER_S] -
		                 q * a[i].den[STATS_TOKENS_PER_S];
		ss += e * e;
	}
	const double se = sqrt(ss / N) / (sa / N * sqrt(N));

	cr_assert_eq(stats_paired(a, b, N, pa), 0);
	const struct stats_interval *p = &pa[STATS_TOKENS_PER_S];
	cr_expect_float_eq(p->value, q, 1e-12);
	expect_near((p->hi - p->lo) / 2, Z975 * se, TOL, "paired half-width");
	cr_expect_eq(stats_ratio_differs(p), 1, "[%.4f, %.4f]", p->lo, p->hi);

	cr_assert_eq(stats_intervals(a, N, ia), 0);
	cr_assert_eq(stats_intervals(b, N, ib), 0);
	cr_expect_gt(ia[STATS_TOKENS_PER_S].lo, ib[STATS_TOKENS_PER_S].lo);
	cr_expect_lt(ia[STATS_TOKENS_PER_S].lo, ib[STATS_TOKENS_PER_S].hi,
	             "unpaired intervals overlap");
}

/* A difference inside the noise: b's times are a's times +6% or -4%, 1%
 * more on average, so the paired interval holds 1: not distinguishable,
 * though the estimate is not 1. */
Test(intervals, a_difference_inside_the_noise_is_not_distinguishable)
{
	enum { N = 40 };
	struct stats_seq a[N], b[N];
	struct stats_interval p[STATS_N_METRICS];

	for (size_t i = 0; i < N; i++) {
		const double t = 1 + (double)(i % 5);

		alternating(&a[i], 1, STATS_TOKENS_PER_S, 50, t, 0);
		alternating(&b[i], 1, STATS_TOKENS_PER_S, 50,
		            t * ((i / 5) % 2 ? 1.06 : 0.96), 0);
	}
	cr_assert_eq(stats_paired(a, b, N, p), 0);
	cr_expect_neq(p[STATS_TOKENS_PER_S].value, 1.0);
	cr_expect_eq(stats_ratio_differs(&p[STATS_TOKENS_PER_S]), 0,
	             "[%.4f, %.4f]", p[STATS_TOKENS_PER_S].lo,
	             p[STATS_TOKENS_PER_S].hi);
}

Test(intervals, edge_cases)
{
	struct stats_seq s[3], z[3];
	struct stats_interval iv[STATS_N_METRICS], again[STATS_N_METRICS];

	/* no sequence: nothing */
	alternating(s, 3, STATS_TOKENS_PER_S, 10, 2, 1);
	cr_assert_eq(stats_intervals(s, 0, iv), 0);
	cr_expect(isnan(iv[0].value) && isnan(iv[0].lo) && isnan(iv[0].hi));
	/* one sequence: the interval is the point */
	cr_assert_eq(stats_intervals(s, 1, iv), 0);
	cr_expect_eq(iv[STATS_TOKENS_PER_S].lo, iv[STATS_TOKENS_PER_S].value);
	cr_expect_eq(iv[STATS_TOKENS_PER_S].hi, iv[STATS_TOKENS_PER_S].value);
	/* seeded: the same answer every time */
	cr_assert_eq(stats_intervals(s, 3, iv), 0);
	cr_assert_eq(stats_intervals(s, 3, again), 0);
	cr_expect_eq(memcmp(iv, again, sizeof iv), 0);
	/* a run against itself: exactly 1 */
	cr_assert_eq(stats_paired(s, s, 3, iv), 0);
	cr_expect_eq(iv[STATS_TOKENS_PER_S].lo, 1);
	cr_expect_eq(iv[STATS_TOKENS_PER_S].hi, 1);
	cr_expect_eq(stats_ratio_differs(&iv[STATS_TOKENS_PER_S]), 0);
	/* a baseline whose metric is 0 somewhere: no ratio */
	alternating(z, 3, STATS_ACCEPTANCE_RATE, 0, 1, 0);
	cr_assert_eq(stats_paired(s, z, 3, iv), 0);
	cr_expect(isnan(iv[STATS_ACCEPTANCE_RATE].value));
	cr_expect(isnan(iv[STATS_ACCEPTANCE_RATE].lo));
	cr_expect_eq(stats_ratio_differs(&iv[STATS_ACCEPTANCE_RATE]), -1);
	/* an unknown part (a column an older file lacks): no interval */
	s[1].num[STATS_MEAN_DRAFT_LEN] = NAN;
	cr_assert_eq(stats_intervals(s, 3, iv), 0);
	cr_expect(isnan(iv[STATS_MEAN_DRAFT_LEN].lo));
	cr_expect(!isnan(iv[STATS_TOKENS_PER_S].lo));
}

Test(intervals, sequence_shares)
{
	const struct replay_seq_result r = {
		.committed = 100, .time_s = 2, .energy_j = 4, .drafted = 50,
		.accepted = 30, .batches = 10, .batch_tokens = 45,
	};
	struct stats_seq s;
	struct stats_interval iv[STATS_N_METRICS];

	stats_seq_from(&r, &s);
	cr_assert_eq(stats_intervals(&s, 1, iv), 0);
	cr_expect_float_eq(iv[STATS_TOKENS_PER_S].value, 50, 1e-12);
	cr_expect_float_eq(iv[STATS_TOKENS_PER_J].value, 25, 1e-12);
	cr_expect_float_eq(iv[STATS_ACCEPTANCE_RATE].value, 0.6, 1e-12);
	cr_expect_float_eq(iv[STATS_MEAN_DRAFT_LEN].value, 4.5, 1e-12);
	cr_expect_str_eq(stats_metric_name[STATS_MEAN_DRAFT_LEN],
	                 "mean_draft_len");
}
