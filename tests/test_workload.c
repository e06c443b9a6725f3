/* test_workload.c - workload profiles (replay/workload.c): generation
 * reproduces the statistics a profile states, and fitting a generated
 * stream gives the profile back within its sampling error. */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workload.h"

static struct wl_profile get(const char *name)
{
	struct wl_profile p;
	char err[256];
	cr_assert_eq(wl_profile_find(name, &p, err, sizeof err), 0, "%s", err);
	return p;
}

/* Fit the whole stream of a profile. */
static void fit_profile(const struct wl_profile *p, uint64_t seed,
                        struct wl_profile *est, struct wl_profile *se)
{
	struct wl_fit *f = NULL;
	char err[256];
	cr_assert_eq(wl_fit_new(&f), 0);
	for (uint32_t i = 0; i < p->sequences; i++) {
		struct trace_seq s;
		cr_assert_eq(wl_generate(p, seed, i, &s), 0);
		wl_fit_add(f, &s, p->lookahead);
		wl_seq_free(&s);
	}
	cr_assert_eq(wl_fit_result(f, p->sampled, p->lookahead, est, se, err,
	                           sizeof err),
	             0, "%s", err);
	wl_fit_free(&f);
}

#define WITHIN(got, want, se, what)                                   \
	cr_expect(fabs((got) - (want)) <= 4.0 * (se),                 \
	          "%s: fitted %.6g, profile %.6g, 4 SE = %.3g", what, \
	          (double)(got), (double)(want), 4.0 * (se))

/* Round trip: synthesise 64 x 1024 positions from each shipped profile,
 * fit, and get every statistic back within four standard errors of the
 * sample (the fit's own errors, with the AR(1) correlation of the
 * entropies taken into account; test_workload.c's tolerances are not
 * tuned: a profile statistic the fit misses by more is a defect). The
 * top-1 law is exact, so its estimate is too. */
Test(workload, fit_recovers_the_profile)
{
	for (size_t i = 0; wl_profile_at(i); i++) {
		struct wl_profile p = get(wl_profile_at(i)->name), est, se;
		p.sequences = 64;
		fit_profile(&p, 7, &est, &se);
		WITHIN(est.acceptance, p.acceptance, se.acceptance,
		       "acceptance");
		WITHIN(log(est.h_median), log(p.h_median),
		       se.h_median / est.h_median, "ln h_median");
		WITHIN(est.h_sigma, p.h_sigma, se.h_sigma, "h_sigma");
		WITHIN(est.rho, p.rho, se.rho, "rho");
		WITHIN(est.coupling, p.coupling, se.coupling, "coupling");
		WITHIN(est.cont_shift, p.cont_shift, se.cont_shift,
		       "cont_shift");
		cr_expect_float_eq(est.top1_k, p.top1_k, 1e-4, "top1_k %g",
		                   est.top1_k);
		cr_expect_eq(est.tokens, p.tokens);
		cr_expect_eq(est.sequences, 64);
		cr_expect_geq(est.prompt_min, p.prompt_min);
		cr_expect_leq(est.prompt_max, p.prompt_max);
	}
}

/* The 7b-instruct profile states its entropies at accepted and rejected
 * positions (0.25 and 1.30 nats, SVIP Table 1) and its acceptance (0.8):
 * the stream it generates has them, within sampling error. */
Test(workload, seven_b_profile_has_its_published_statistics)
{
	struct wl_profile p = get("7b-instruct");
	double ha = 0, hr = 0, na = 0, nr = 0;
	for (uint32_t i = 0; i < p.sequences; i++) {
		struct trace_seq s;
		cr_assert_eq(wl_generate(&p, 1, i, &s), 0);
		for (uint32_t t = 0; t < s.n; t++) {
			cr_assert(s.accept[t] == 0.0f || s.accept[t] == 1.0f,
			          "greedy: a_p in {0, 1}");
			if (s.accept[t] > 0.5f) {
				ha += s.entropy[t];
				na++;
			} else {
				hr += s.entropy[t];
				nr++;
			}
		}
		wl_seq_free(&s);
	}
	const double acc = na / (na + nr);
	cr_expect_float_eq(acc, 0.80, 0.02, "acceptance %g", acc);
	cr_expect_float_eq(ha / na, 0.25, 0.03, "E[H | accepted] %g", ha / na);
	cr_expect_float_eq(hr / nr, 1.30, 0.15, "E[H | rejected] %g", hr / nr);
}

/* Coupling 0: acceptance independent of entropy; coupling > 0: the
 * rejected positions have the higher entropies. rho orders bursts. */
Test(workload, statistics_move_the_stream)
{
	struct wl_profile p = get("7b-instruct");
	char err[256];
	cr_assert_eq(wl_profile_set(&p, "coupling", "0", err, sizeof err), 0);
	cr_assert_eq(wl_profile_set(&p, "acceptance", "0.6", err, sizeof err),
	             0);
	cr_assert_eq(wl_profile_finish(&p, err, sizeof err), 0, "%s", err);
	struct wl_profile est, se;
	fit_profile(&p, 3, &est, &se);
	WITHIN(est.coupling, 0, se.coupling, "coupling 0");
	WITHIN(est.acceptance, 0.6, se.acceptance, "acceptance 0.6");
	/* the same seed gives the same stream */
	struct trace_seq a, b;
	cr_assert_eq(wl_generate(&p, 9, 3, &a), 0);
	cr_assert_eq(wl_generate(&p, 9, 3, &b), 0);
	cr_assert_eq(a.n, b.n);
	cr_assert_eq(a.prompt_len, b.prompt_len);
	cr_assert_eq(memcmp(a.entropy, b.entropy, a.n * sizeof *a.entropy), 0);
	cr_assert_eq(memcmp(a.accept, b.accept, a.n * sizeof *a.accept), 0);
	wl_seq_free(&a);
	wl_seq_free(&b);
}

Test(workload, bad_statistics_are_refused)
{
	struct wl_profile p = get("7b-instruct");
	char err[256];
	cr_expect_eq(wl_profile_set(&p, "acceptance", "1.5", err, sizeof err),
	             -EINVAL);
	cr_expect_not_null(strstr(err, "acceptance"), "%s", err);
	cr_expect_eq(wl_profile_set(&p, "acceptence", "0.5", err, sizeof err),
	             -EINVAL);
	cr_expect_not_null(strstr(err, "acceptence"), "%s", err);
	cr_expect_eq(wl_profile_set(&p, "tokens", "2.5", err, sizeof err),
	             -EINVAL);
	cr_expect_eq(wl_profile_find("8b", &p, err, sizeof err), -ENOENT);
	cr_expect_not_null(strstr(err, "7b-instruct"), "%s", err);
	p = get("7b-instruct");
	p.prompt_min = 100;
	p.prompt_max = 10;
	cr_expect_eq(wl_profile_finish(&p, err, sizeof err), -EINVAL);
}
