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
		.committed = 100,
		.time_s = 2,
		.energy_j = 4,
		.drafted = 50,
		.accepted = 30,
		.batches = 10,
		.batch_tokens = 45,
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

/* ---- stored with the runs, end to end ---------------------------------- */

TestSuite(intervals_cli, .init = prog_setup, .fini = prog_teardown,
          .timeout = 120);

#define GREEDY "traces/stories260K-skip3-greedy.msgpack"

/* A run's intervals, recomputed here from its sequences rows. */
static void recompute(const char *db, long long run,
                      struct stats_interval out[STATS_N_METRICS])
{
	char sql[256];
	sqlite3 *h = prog_db(db);
	struct stats_seq s[512];
	size_t n = 0;
	sqlite3_stmt *st;

	snprintf(sql, sizeof sql,
	         "SELECT committed, time_s, energy_j, "
	         "drafted, accepted, batches, batch_tokens FROM sequences "
	         "WHERE run_id = %lld ORDER BY seq",
	         run);
	st = prog_prep(h, sql);
	while (sqlite3_step(st) == SQLITE_ROW && n < 512) {
		const struct replay_seq_result r = {
			.committed = (uint32_t)sqlite3_column_int64(st, 0),
			.time_s = sqlite3_column_double(st, 1),
			.energy_j = sqlite3_column_double(st, 2),
			.drafted = (uint64_t)sqlite3_column_int64(st, 3),
			.accepted = (uint64_t)sqlite3_column_int64(st, 4),
			.batches = (uint64_t)sqlite3_column_int64(st, 5),
			.batch_tokens = (uint64_t)sqlite3_column_int64(st, 6),
		};
		stats_seq_from(&r, &s[n++]);
	}
	sqlite3_finalize(st);
	sqlite3_close(h);
	cr_assert_gt(n, 0);
	cr_assert_eq(stats_intervals(s, n, out), 0);
}

/* Every run stores the intervals of its four headline metrics, around
 * the metric, as its sequences rows give them; the sequences add up to
 * the run (batch_tokens too). */
Test(intervals_cli, stored_beside_the_metrics)
{
	const char *db = prog_path("r.db");

	cr_assert_eq(REPLAY("-q", "--db", db, "-p", "sync", "-p", "async", "-p",
	                    "ahasd", "-d", "adaedl", prog_src_path(GREEDY)),
	             0, "%s", prog_err);
	cr_assert_eq(prog_q_int(db, "SELECT count(*) FROM intervals"), 12);
	cr_expect_eq(prog_q_int(db, "SELECT count(*) FROM intervals i JOIN "
	                            "metrics m ON m.run_id = "
	                            "i.run_id AND m.name = i.name WHERE NOT "
	                            "(i.lo <= m.value AND "
	                            "m.value <= i.hi AND i.lo < i.hi)"),
	             0);
	cr_expect_eq(prog_q_int(db, "SELECT count(*) FROM runs r WHERE (SELECT "
	                            "sum(batch_tokens) "
	                            "FROM sequences WHERE run_id = r.id) IS "
	                            "NOT (SELECT value FROM "
	                            "metrics WHERE run_id = r.id AND name = "
	                            "'batch_tokens')"),
	             0);
	for (long long run = 1; run <= 3; run++) {
		struct stats_interval iv[STATS_N_METRICS];

		recompute(db, run, iv);
		for (int m = 0; m < STATS_N_METRICS; m++) {
			cr_expect_float_eq(
			        prog_q_dbl(db,
			                   "SELECT lo FROM "
			                   "intervals WHERE run_id = %lld AND "
			                   "name = '%s'",
			                   run, stats_metric_name[m]),
			        iv[m].lo, 1e-9 * iv[m].lo, "run %lld %s", run,
			        stats_metric_name[m]);
			cr_expect_float_eq(
			        prog_q_dbl(db,
			                   "SELECT hi FROM "
			                   "intervals WHERE run_id = %lld AND "
			                   "name = '%s'",
			                   run, stats_metric_name[m]),
			        iv[m].hi, 1e-9 * iv[m].hi, "run %lld %s", run,
			        stats_metric_name[m]);
		}
	}
	/* and in run_summary and run_table */
	cr_expect_eq(prog_q_int(db, "SELECT count(*) FROM run_table WHERE "
	                            "tokens_per_s_lo IS NULL OR "
	                            "mean_draft_len_hi IS NULL"),
	             0);
	/* paired: async and ahasd against sync, around their speed-up, and
	 * narrower than the runs' own intervals would make it */
	cr_expect_eq(prog_q_int(db,
	                        "SELECT count(*) FROM speedup_vs_sync WHERE "
	                        "run_id > 1 AND speedup_lo <= speedup AND "
	                        "speedup <= speedup_hi AND "
	                        "speedup_differs = 1"),
	             2);
	cr_expect_lt(
	        prog_q_dbl(db, "SELECT v.speedup_hi - v.speedup_lo FROM "
	                       "speedup_vs_sync v "
	                       "WHERE run_id = 3"),
	        prog_q_dbl(db,
	                   "SELECT (a.tokens_per_s_hi / b.tokens_per_s_lo) "
	                   "- (a.tokens_per_s_lo / b.tokens_per_s_hi) FROM "
	                   "run_summary a, run_summary b WHERE a.run_id = 3 "
	                   "AND b.run_id = 1") /
	                3);
	/* the summary shows them */
	cr_assert_eq(REPLAY("--no-db", "-p", "sync", "-p", "ahasd", "-d",
	                    "adaedl", prog_src_path(GREEDY)),
	             0, "%s", prog_err);
	assert_out_has("95% CI");
}

/* The comparison is computed whichever run comes first: ahasd stored
 * before its sync run gets its paired interval when sync is stored;
 * --baseline async computes them for the runs already there. */
Test(intervals_cli, paired_whichever_run_comes_first)
{
	const char *db = prog_path("r.db");
	const char *t = prog_src_path(GREEDY);

	cr_assert_eq(REPLAY("-q", "--db", db, "-p", "ahasd", "-d", "fixed", t),
	             0, "%s", prog_err);
	cr_expect(isnan(prog_q_dbl(db, "SELECT speedup FROM speedup_vs_sync")));
	cr_assert_eq(REPLAY("-q", "--db", db, "-p", "sync", "-p", "async", "-d",
	                    "fixed", t),
	             0, "%s", prog_err);
	cr_expect_eq(prog_q_int(db, "SELECT count(*) FROM speedup_vs_sync "
	                            "WHERE speedup_lo IS NOT NULL"),
	             3);
	cr_expect_eq(prog_q_int(db, "SELECT count(*) FROM comparisons WHERE "
	                            "baseline_policy = 'async'"),
	             0);
	cr_assert_eq(REPLAY("-q", "--db", db, "--baseline", "async", "-p",
	                    "ahasd", "-d", "fixed", "-w", "gpu", t),
	             0, "%s", prog_err);
	/* runs 1-3 on npu-pim against async (run 3), run 4 on gpu has no
	 * async run */
	cr_expect_eq(prog_q_int(db, "SELECT count(*) FROM comparisons WHERE "
	                            "baseline_policy = 'async' AND "
	                            "baseline_run_id = 3 AND speedup_lo IS NOT "
	                            "NULL"),
	             3);
	cr_expect(isnan(prog_q_dbl(db, "SELECT speedup FROM comparisons WHERE "
	                               "baseline_policy = 'async' AND run_id = "
	                               "4")));
}

/* Two policies whose difference lies inside the paired interval are
 * reported as not distinguishable: ahasd against sync with fixed k=4 on
 * the GPU+PIM preset is 2.4% faster on these 64 greedy sequences of
 * aidreams260K, and the paired interval [0.97, 1.07] holds 1. On the
 * paper's NPU+PIM preset with AdaEDL the 12% slow-down is outside it. */
Test(intervals_cli, a_difference_inside_the_interval_is_reported)
{
	const char *db = prog_path("r.db");

	cr_assert_eq(REPLAY("--db", db, "-p", "sync", "-p", "ahasd", "-d",
	                    "fixed", "-w", "gpu-pim",
	                    prog_src_path("traces/aidreams260K-skip2-greedy."
	                                  "msgpack")),
	             0, "%s", prog_err);
	const double sp = prog_q_dbl(db, "SELECT speedup FROM speedup_vs_sync "
	                                 "WHERE policy = 'ahasd'");
	cr_expect(fabs(sp - 1) > 0.01, "speed-up %.4f", sp);
	cr_expect_eq(prog_q_int(db, "SELECT speedup_differs FROM "
	                            "speedup_vs_sync WHERE policy = 'ahasd'"),
	             0);
	cr_expect_lt(prog_q_dbl(db, "SELECT speedup_lo FROM speedup_vs_sync "
	                            "WHERE policy = 'ahasd'"),
	             1);
	cr_expect_gt(prog_q_dbl(db, "SELECT speedup_hi FROM speedup_vs_sync "
	                            "WHERE policy = 'ahasd'"),
	             1);
	assert_out_has(" ~ ");
	assert_out_has("~: the paired interval holds 1: not distinguishable "
	               "from sync on these sequences");

	cr_assert_eq(REPLAY("--db", prog_path("s.db"), "-p", "sync", "-p",
	                    "ahasd", "-d", "adaedl", prog_src_path(GREEDY)),
	             0, "%s", prog_err);
	cr_expect_eq(prog_q_int(prog_path("s.db"),
	                        "SELECT speedup_differs "
	                        "FROM speedup_vs_sync WHERE policy = 'ahasd'"),
	             1);
	cr_expect_null(strstr(prog_out, "not distinguishable"), "%s", prog_out);
}
