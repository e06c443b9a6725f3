/* test_drafters.c - the built-in drafting plugins, loaded from the build
 * tree with dlopen() exactly as the host would, and driven by hand through
 * their hooks with hand-built token sequences. Expected stopping points are
 * worked out in the comments.
 */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ahasd_plugin.h"

struct loaded {
	void *handle;
	const struct ahasd_plugin *p;
	void *st;
};

static struct loaded load(const char *name)
{
	struct loaded l = {0};
	const char *dir = getenv("AHASD_PLUGIN_PATH");
	char path[4096];

	cr_assert_not_null(dir, "AHASD_PLUGIN_PATH is not set");
	snprintf(path, sizeof(path), "%s/%s.so", dir, name);
	l.handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	cr_assert_not_null(l.handle, "dlopen %s: %s", path, dlerror());
	l.p = dlsym(l.handle, AHASD_PLUGIN_SYMBOL);
	cr_assert_not_null(l.p, "%s: no symbol %s", path, AHASD_PLUGIN_SYMBOL);
	return l;
}

/* Create with params; returns the create() result, error text in err. */
static int try_create(struct loaded *l, const char *const *keys,
                      const char *const *vals, size_t n, char *err,
                      size_t errlen)
{
	err[0] = '\0';
	l->st = NULL;
	return l->p->create(&l->st, keys, vals, n, err, errlen);
}

static struct loaded open_with(const char *name, const char *const *keys,
                               const char *const *vals, size_t n)
{
	struct loaded l = load(name);
	char err[256];
	const int rc = try_create(&l, keys, vals, n, err, sizeof(err));

	cr_assert_eq(rc, 0, "%s create failed: %s", name, err);
	cr_assert_not_null(l.st);
	return l;
}

static void close_loaded(struct loaded *l)
{
	if (l->st != NULL)
		l->p->destroy(l->st);
	l->st = NULL;
	if (l->handle != NULL)
		dlclose(l->handle);
	l->handle = NULL;
}

/* Expect create to fail with an error text containing `needle`. */
static void expect_bad(const char *name, const char *key, const char *val,
                       const char *needle)
{
	struct loaded l = load(name);
	const char *keys[1] = {key};
	const char *vals[1] = {val};
	char err[256];
	const int rc = try_create(&l, keys, vals, 1, err, sizeof(err));

	cr_expect_neq(rc, 0, "%s: %s=%s accepted", name, key, val);
	cr_expect_not_null(strstr(err, needle),
	                   "%s: %s=%s: error \"%s\" lacks \"%s\"", name, key,
	                   val, err, needle);
	if (rc == 0)
		l.p->destroy(l.st);
	l.st = NULL;
	close_loaded(&l);
}

static double counter(const struct loaded *l, const char *want)
{
	const char *name = NULL;
	double v = 0.0;

	for (uint32_t i = 0; l->p->counter(l->st, i, &name, &v); i++) {
		if (strcmp(name, want) == 0)
			return v;
	}
	cr_assert_fail("%s: no counter %s", l->p->name, want);
	return NAN;
}

/* Draft one batch: begin_batch(id, max_len), then tokens from the arrays
 * (entropy H, top-1 probability p; NULL means 0.5 / 0.9) until
 * draft_token says stop. Returns the batch length, or 0 if it did not stop
 * within n tokens. */
static uint32_t draft(const struct loaded *l, uint64_t id, uint32_t max_len,
                      const float *h, const float *p, uint32_t n)
{
	const struct ahasd_drafter_hooks *d = l->p->drafter;

	if (d->begin_batch != NULL)
		d->begin_batch(l->st, id, max_len);
	for (uint32_t i = 0; i < n; i++) {
		const struct ahasd_draft_token tok = {
			.batch_id = id,
			.index = i,
			.entropy = h != NULL ? h[i] : 0.5f,
			.top1 = p != NULL ? p[i] : 0.9f,
			.now_s = 0.001 * (i + 1),
		};
		if (d->draft_token(l->st, &tok))
			return i + 1;
	}
	return 0;
}

/* Same entropy (or top-1) for every token. */
static uint32_t draft_const(const struct loaded *l, uint64_t id,
                            uint32_t max_len, float h, float p, uint32_t n)
{
	float hs[256], ps[256];

	cr_assert_leq(n, 256u);
	for (uint32_t i = 0; i < n; i++) {
		hs[i] = h;
		ps[i] = p;
	}
	return draft(l, id, max_len, hs, ps, n);
}

static void result(const struct loaded *l, uint64_t id, uint32_t drafted,
                   uint32_t accepted, uint32_t committed, int discarded,
                   double round_s)
{
	const struct ahasd_batch_result r = {
		.batch_id = id,
		.drafted = drafted,
		.accepted = accepted,
		.committed = committed,
		.discarded = discarded,
		.round_s = round_s,
		.now_s = 1.0,
	};

	cr_assert_not_null(l->p->drafter->batch_result);
	l->p->drafter->batch_result(l->st, &r);
}

/* ------------------------------------------------------------------ */
/* Descriptors                                                         */
/* ------------------------------------------------------------------ */

static const char *const all_names[] = {
	"fixed", "specdecpp", "svip", "adaedl", "banditspec",
};

Test(drafters, descriptors)
{
	for (size_t k = 0; k < sizeof(all_names) / sizeof(all_names[0]); k++) {
		struct loaded l = load(all_names[k]);
		const struct ahasd_plugin *p = l.p;
		const char *keys[16], *vals[16];
		size_t n = 0;
		char err[256];
		const char *cname = NULL;
		double cval;
		uint32_t nc = 0;
		int has_batches = 0, has_mean = 0;

		cr_expect_eq(p->abi_version, AHASD_PLUGIN_ABI_VERSION);
		cr_expect_eq(p->struct_size, sizeof(struct ahasd_plugin));
		cr_expect_eq(p->kind, AHASD_PLUGIN_DRAFTER);
		cr_expect_str_eq(p->name, all_names[k]);
		cr_expect_str_eq(p->version, "1.0");
		cr_expect(p->description != NULL && p->description[0] != '\0');
		cr_assert_not_null(p->create);
		cr_assert_not_null(p->destroy);
		cr_assert_not_null(p->counter);
		cr_expect_null(p->policy);
		cr_assert_not_null(p->drafter);
		cr_expect_eq(p->drafter->struct_size,
		             sizeof(struct ahasd_drafter_hooks));
		cr_assert_not_null(p->drafter->draft_token);

		/* every parameter documented, and its default accepted when
		 * passed back explicitly */
		cr_assert_not_null(p->params);
		for (const struct ahasd_param *q = p->params; q->key; q++) {
			cr_expect_not_null(q->default_value, "%s", q->key);
			cr_expect(q->help != NULL && q->help[0] != '\0');
			cr_assert_lt(n, 16u);
			keys[n] = q->key;
			vals[n] = q->default_value;
			n++;
		}
		cr_expect_gt(n, 0u, "%s has no parameters", p->name);
		cr_assert_eq(try_create(&l, keys, vals, n, err, sizeof(err)), 0,
		             "%s defaults rejected: %s", p->name, err);

		/* counters enumerate and stop */
		while (p->counter(l.st, nc, &cname, &cval)) {
			cr_assert_not_null(cname);
			has_batches |= strcmp(cname, "batches") == 0;
			has_mean |= strcmp(cname, "mean_length") == 0;
			cr_assert_lt(++nc, 1000u);
		}
		cr_expect(has_batches && has_mean, "%s counters", p->name);

		/* unknown keys rejected defensively */
		{
			const char *bk[1] = {"no_such_key"};
			const char *bv[1] = {"1"};
			struct loaded m = l;

			cr_expect_neq(try_create(&m, bk, bv, 1, err, sizeof(err)),
			              0, "%s took an unknown key", p->name);
			cr_expect_not_null(strstr(err, "no_such_key"), "%s", err);
		}
		close_loaded(&l);
	}
}

/* ------------------------------------------------------------------ */
/* fixed                                                               */
/* ------------------------------------------------------------------ */

Test(drafters, fixed_length)
{
	const char *keys[] = {"k"};
	const char *vals[] = {"3"};
	struct loaded l = open_with("fixed", keys, vals, 1);

	/* k = 3: stop at index 2 whatever the entropy */
	cr_expect_eq(draft_const(&l, 0, 64, 0.0f, 1.0f, 10), 3u);
	cr_expect_eq(draft_const(&l, 1, 64, 5.0f, 0.1f, 10), 3u);
	/* host cap 2 below k */
	cr_expect_eq(draft_const(&l, 2, 2, 0.0f, 1.0f, 10), 2u);
	cr_expect_eq(counter(&l, "batches"), 3.0);
	/* (3 + 3 + 2) / 3 */
	cr_expect_float_eq(counter(&l, "mean_length"), 8.0 / 3.0, 1e-12);
	close_loaded(&l);

	/* default k = 4 */
	l = open_with("fixed", NULL, NULL, 0);
	cr_expect_eq(draft_const(&l, 0, 64, 0.1f, 0.9f, 10), 4u);
	close_loaded(&l);
}

/* The host's cap against k = 3: a cap of 2 ends the batch first and is
 * counted (host_capped); a cap of 3 equals k, and k ends it; a cap of 4
 * is never reached. */
Test(drafters, fixed_host_cap_counted)
{
	const char *keys[] = {"k"};
	const char *vals[] = {"3"};
	struct loaded l = open_with("fixed", keys, vals, 1);

	cr_expect_eq(draft_const(&l, 0, 2, 0.5f, 0.9f, 10), 2u);
	cr_expect_eq(counter(&l, "host_capped"), 1.0);
	cr_expect_eq(draft_const(&l, 1, 3, 0.5f, 0.9f, 10), 3u);
	cr_expect_eq(draft_const(&l, 2, 4, 0.5f, 0.9f, 10), 3u);
	cr_expect_eq(counter(&l, "host_capped"), 1.0);
	close_loaded(&l);
}

Test(drafters, fixed_bad_params)
{
	expect_bad("fixed", "k", "0", "k=0");
	expect_bad("fixed", "k", "abc", "k=abc");
	expect_bad("fixed", "k", "4x", "k=4x");
	expect_bad("fixed", "k", "-3", "k=-3");
	expect_bad("fixed", "k", "", "k=");
}

/* ------------------------------------------------------------------ */
/* SpecDec++                                                           */
/* ------------------------------------------------------------------ */

Test(drafters, specdecpp_product_rule)
{
	struct loaded l = open_with("specdecpp", NULL, NULL, 0);
	/* h = 0.3, predictor top1:
	 *   n=1: 1 - 0.95             = 0.05
	 *   n=2: 1 - 0.95*0.9 = 1-0.855 = 0.145
	 *   n=3: 1 - 0.855*0.8 = 1-0.684 = 0.316 > 0.3  -> stop at index 2 */
	const float p1[] = {0.95f, 0.9f, 0.8f, 0.9f, 0.9f};
	/* min_len = 2: n=1: 1-0.5 = 0.5 > 0.3 but n < 2, continue;
	 *              n=2: 1-0.5*0.9 = 0.55 > 0.3 -> stop at index 1 */
	const float p2[] = {0.5f, 0.9f, 0.9f, 0.9f};
	/* entropies are irrelevant with predictor=top1: very high ones */
	const float hh[] = {5.0f, 5.0f, 5.0f, 5.0f, 5.0f};

	cr_expect_eq(draft(&l, 0, 64, hh, p1, 5), 3u);
	/* a new batch starts from prod = 1 again: same answer */
	cr_expect_eq(draft(&l, 1, 64, hh, p1, 5), 3u);
	cr_expect_eq(draft(&l, 2, 64, NULL, p2, 4), 2u);
	/* all top1 = 1: 1 - prod = 0 never exceeds h -> max_len 20 */
	cr_expect_eq(draft_const(&l, 3, 64, 0.0f, 1.0f, 64), 20u);
	/* host cap 5 below max_len */
	cr_expect_eq(draft_const(&l, 4, 5, 0.0f, 1.0f, 64), 5u);
	/* host cap 1 below min_len: the cap wins */
	cr_expect_eq(draft_const(&l, 5, 1, 0.0f, 1.0f, 64), 1u);
	cr_expect_eq(counter(&l, "rule_stops"), 3.0);
	cr_expect_eq(counter(&l, "cap_stops"), 3.0);
	close_loaded(&l);

	/* min_len = 1: p2 stops at once (0.5 > 0.3) */
	{
		const char *keys[] = {"min_len"};
		const char *vals[] = {"1"};

		l = open_with("specdecpp", keys, vals, 1);
		cr_expect_eq(draft(&l, 0, 64, NULL, p2, 4), 1u);
		close_loaded(&l);
	}
}

Test(drafters, specdecpp_entropy_predictor)
{
	const char *keys[] = {"predictor", "h"};
	const char *vals[] = {"entropy", "0.3"};
	struct loaded l = open_with("specdecpp", keys, vals, 2);
	/* p_i = exp(-H_i), so 1 - prod = 1 - exp(-sum H):
	 *   n=2: 1 - exp(-0.2) = 0.181
	 *   n=3: 1 - exp(-0.4) = 0.3297 > 0.3 -> stop at index 2.
	 * top1 = 1 everywhere, so predictor=top1 would never stop. */
	const float h[] = {0.1f, 0.1f, 0.2f, 0.1f, 0.1f};
	const float p[] = {1.0f, 1.0f, 1.0f, 1.0f, 1.0f};

	cr_expect_eq(draft(&l, 0, 64, h, p, 5), 3u);
	close_loaded(&l);

	l = open_with("specdecpp", NULL, NULL, 0);
	cr_expect_eq(draft(&l, 0, 64, h, p, 5), 0u);
	close_loaded(&l);
}

Test(drafters, specdecpp_bad_params)
{
	expect_bad("specdecpp", "h", "1.5", "h=1.5");
	expect_bad("specdecpp", "h", "x", "h=x");
	expect_bad("specdecpp", "h", "nan", "h=nan");
	expect_bad("specdecpp", "predictor", "oracle", "predictor=oracle");
	expect_bad("specdecpp", "min_len", "0", "min_len=0");
	expect_bad("specdecpp", "max_len", "1", "max_len=1"); /* < min_len 2 */
}

/* ------------------------------------------------------------------ */
/* SVIP                                                                */
/* ------------------------------------------------------------------ */

Test(drafters, svip_entropy_rule)
{
	struct loaded l = open_with("svip", NULL, NULL, 0);
	/* c = 0.15, threshold 0.3:
	 *   sqrt(0.15*0.2) = 0.173, sqrt(0.15*0.5) = 0.274,
	 *   sqrt(0.15*0.7) = 0.324 > 0.3 -> stop at index 2 */
	const float h1[] = {0.2f, 0.5f, 0.7f, 0.1f};
	/* first token already uncertain: sqrt(0.15*0.9) = 0.367 -> index 0 */
	const float h2[] = {0.9f, 0.1f};

	cr_expect_eq(draft(&l, 0, 64, h1, NULL, 4), 3u);
	cr_expect_eq(draft(&l, 1, 64, h2, NULL, 2), 1u);
	/* H = 0.55 everywhere: sqrt(0.0825) = 0.287 -> never; cap 40 */
	cr_expect_eq(draft_const(&l, 2, 64, 0.55f, 0.5f, 64), 40u);
	cr_expect_eq(draft_const(&l, 3, 7, 0.55f, 0.5f, 64), 7u);
	/* (3 + 1 + 40 + 7) / 4 */
	cr_expect_float_eq(counter(&l, "mean_length"), 51.0 / 4.0, 1e-12);
	close_loaded(&l);

	{
		/* threshold 0.5: H must exceed 0.25 / 0.15 = 1.667 nats;
		 * min_len 3 holds back the early stop at index 0 */
		const char *keys[] = {"threshold", "min_len"};
		const char *vals[] = {"0.5", "3"};
		const float h3[] = {2.0f, 0.7f, 1.5f, 1.7f, 0.1f};

		l = open_with("svip", keys, vals, 2);
		/* n=1: 2.0 would stop but n < 3; n=3: 1.5 < 1.667 goes on;
		 * n=4: 1.7 > 1.667 -> stop at index 3 */
		cr_expect_eq(draft(&l, 0, 64, h3, NULL, 5), 4u);
		close_loaded(&l);
	}
}

/* The rule's two boundaries. threshold = 0: sqrt(c H) > 0 holds for any
 * H > 0 (stop at once) and never for H = 0, a fully confident draft
 * (on to the cap of 40); the comparison is strict. min_len = 2 with
 * H = 1 everywhere (sqrt(0.15) = 0.387 > 0.3): the first token may not
 * stop, the second is the first that may: length 2. */
Test(drafters, svip_boundaries)
{
	const char *k1[] = {"threshold"}, *v1[] = {"0"};
	const char *k2[] = {"min_len"}, *v2[] = {"2"};
	struct loaded l = open_with("svip", k1, v1, 1);

	cr_expect_eq(draft_const(&l, 0, 64, 0.0f, 1.0f, 64), 40u);
	cr_expect_eq(draft_const(&l, 1, 64, 1e-6f, 1.0f, 64), 1u);
	cr_expect_eq(counter(&l, "rule_stops"), 1.0);
	cr_expect_eq(counter(&l, "cap_stops"), 1.0);
	close_loaded(&l);

	l = open_with("svip", k2, v2, 1);
	cr_expect_eq(draft_const(&l, 0, 64, 1.0f, 0.5f, 64), 2u);
	/* a host cap of 1 below min_len: the cap ends it */
	cr_expect_eq(draft_const(&l, 1, 1, 1.0f, 0.5f, 64), 1u);
	cr_expect_eq(counter(&l, "rule_stops"), 1.0);
	cr_expect_eq(counter(&l, "cap_stops"), 1.0);
	close_loaded(&l);
}

Test(drafters, svip_bad_params)
{
	expect_bad("svip", "c", "-1", "c=-1");
	expect_bad("svip", "c", "abc", "c=abc");
	expect_bad("svip", "threshold", "0.3.1", "threshold=0.3.1");
	expect_bad("svip", "max_len", "0", "max_len=0");
}

/* ------------------------------------------------------------------ */
/* AdaEDL                                                              */
/* ------------------------------------------------------------------ */

/* gamma 0.2: stop when 1 - sqrt(0.2 H) < lambda.
 * With lambda = 0.7: sqrt(0.2 H) > 0.3, i.e. H > 0.45:
 *   0.3 -> 1 - 0.245 = 0.755, 0.4 -> 0.717, 0.5 -> 0.684 < 0.7 stop.
 * With lambda = 0.75: H > 0.3125, so 0.4 (0.717 < 0.75) already stops.
 * With lambda = 0.65: H > 0.6125: 0.6 -> 0.654 goes on, 0.7 -> 0.626 stops.*/
static const float adaedl_h[] = {0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f};

Test(drafters, adaedl_lambda_rises_on_low_acceptance)
{
	struct loaded l = open_with("adaedl", NULL, NULL, 0);

	cr_expect_eq(draft(&l, 0, 64, adaedl_h, NULL, 6), 3u);
	cr_expect_float_eq(counter(&l, "lambda"), 0.7, 1e-12);

	/* a = 1/4: r = 0.9*0.9 + 0.1*0.25 = 0.835 < 0.9 -> lambda rises by
	 * (1 - beta1) * eps = 0.5 * 0.01 = 0.005 */
	result(&l, 0, 4, 1, 2, 0, 0.01);
	cr_expect_float_eq(counter(&l, "acceptance_estimate"), 0.835, 1e-12);
	cr_expect_float_eq(counter(&l, "lambda"), 0.705, 1e-12);

	/* discarded batches do not adapt */
	result(&l, 1, 4, 0, 0, 1, 0.01);
	cr_expect_float_eq(counter(&l, "lambda"), 0.705, 1e-12);

	/* nine more low batches: r stays below 0.9, lambda = 0.75 */
	for (int i = 0; i < 9; i++)
		result(&l, 2 + (uint64_t)i, 4, 1, 2, 0, 0.01);
	cr_expect_float_eq(counter(&l, "lambda"), 0.75, 1e-9);
	cr_expect_eq(counter(&l, "updates"), 10.0);
	cr_expect_eq(counter(&l, "lambda_raises"), 10.0);

	/* higher lambda: the batch now stops at index 1 */
	cr_expect_eq(draft(&l, 20, 64, adaedl_h, NULL, 6), 2u);

	/* lambda persists across sequences */
	if (l.p->drafter->begin_sequence != NULL) {
		const struct ahasd_seq_info seq = {.seq_id = 1};

		l.p->drafter->begin_sequence(l.st, &seq);
	}
	cr_expect_float_eq(counter(&l, "lambda"), 0.75, 1e-9);
	cr_expect_eq(draft(&l, 21, 64, adaedl_h, NULL, 6), 2u);
	close_loaded(&l);
}

Test(drafters, adaedl_lambda_falls_on_high_acceptance)
{
	struct loaded l = open_with("adaedl", NULL, NULL, 0);

	/* a = 1: r = 0.81 + 0.1 = 0.91 > 0.9 -> lambda 0.695; r keeps rising
	 * toward 1, so ten such batches give 0.7 - 10 * 0.005 = 0.65 */
	result(&l, 0, 3, 3, 4, 0, 0.01);
	cr_expect_float_eq(counter(&l, "lambda"), 0.695, 1e-12);
	for (int i = 1; i < 10; i++)
		result(&l, (uint64_t)i, 3, 3, 4, 0, 0.01);
	cr_expect_float_eq(counter(&l, "lambda"), 0.65, 1e-9);
	cr_expect_eq(counter(&l, "lambda_lowers"), 10.0);
	/* lower lambda: the batch now runs to index 4 */
	cr_expect_eq(draft(&l, 10, 64, adaedl_h, NULL, 6), 5u);
	/* host cap still applies */
	cr_expect_eq(draft(&l, 11, 2, adaedl_h, NULL, 6), 2u);
	close_loaded(&l);
}

Test(drafters, adaedl_clamp_and_cap)
{
	const char *keys[] = {"beta1", "eps", "max_len"};
	const char *vals[] = {"0", "1", "5"};
	struct loaded l = open_with("adaedl", keys, vals, 3);

	/* step (1 - 0) * 1 = 1: 0.7 + 1 clamps to 1 */
	result(&l, 0, 4, 0, 1, 0, 0.01);
	cr_expect_float_eq(counter(&l, "lambda"), 1.0, 1e-12);
	/* lambda = 1: any H > 0 stops at once (bound < 1) */
	cr_expect_eq(draft(&l, 1, 64, adaedl_h, NULL, 6), 1u);
	/* H = 0: bound 1 is not < 1, runs to max_len 5 */
	cr_expect_eq(draft_const(&l, 2, 64, 0.0f, 1.0f, 10), 5u);
	close_loaded(&l);
}

Test(drafters, adaedl_bad_params)
{
	expect_bad("adaedl", "gamma", "0", "gamma=0");
	expect_bad("adaedl", "target", "1.2", "target=1.2");
	expect_bad("adaedl", "beta2", "x", "beta2=x");
	expect_bad("adaedl", "lambda0", "-0.1", "lambda0=-0.1");
	expect_bad("adaedl", "eps", " 0.1", "eps= 0.1");
	expect_bad("adaedl", "max_len", "0", "max_len=0");
}

/* ------------------------------------------------------------------ */
/* BanditSpec                                                          */
/* ------------------------------------------------------------------ */

/* Reward for arm length `len`: the length-3 arm commits 3 tokens in 0.5 s
 * (6 tok/s), every other arm 1 token in 1 s (1 tok/s). */
static void bandit_feed(const struct loaded *l, uint64_t id, uint32_t len)
{
	if (len == 3)
		result(l, id, 3, 3, 3, 0, 0.5);
	else
		result(l, id, len, 0, 1, 0, 1.0);
}

Test(drafters, banditspec_warmup_then_best_arm)
{
	struct loaded l = open_with("banditspec", NULL, NULL, 0);
	const uint32_t warm[8] = {1, 2, 3, 4, 1, 2, 3, 4};
	uint32_t len[8];

	/* warm-up: 8 batches round-robin over the arms, all in flight */
	for (uint32_t i = 0; i < 8; i++) {
		len[i] = draft_const(&l, i, 64, 0.1f, 0.9f, 64);
		cr_expect_eq(len[i], warm[i], "warm-up batch %u", i);
	}
	/* results arrive out of order; each credits its own batch's arm */
	for (uint32_t i = 8; i-- > 0;)
		bandit_feed(&l, i, len[i]);
	cr_expect_eq(counter(&l, "arm3_results"), 2.0);
	cr_expect_float_eq(counter(&l, "arm3_mean_reward"), 6.0, 1e-12);
	cr_expect_float_eq(counter(&l, "arm1_mean_reward"), 1.0, 1e-12);
	cr_expect_eq(counter(&l, "best_arm"), 3.0);

	/* r_max = 6; normalised means: arm3 1, others 1/6 = 0.167.
	 * t=8,  n=2 each: equal exploration -> arm 3
	 * t=9,  n3=3: others 0.167+sqrt(6 ln9/2)=0.167+2.567=2.734,
	 *             arm3 1+sqrt(6 ln9/3)=1+2.096=3.096       -> arm 3
	 * t=10, n3=4: others 0.167+2.628=2.795, arm3 1+1.858=2.858 -> arm 3
	 * t=11, n3=5: others 0.167+2.682=2.849, arm3 1+1.696=2.696
	 *             -> exploration wins; arms 1,2,4 tie -> arm 1 */
	{
		const uint32_t want[4] = {3, 3, 3, 1};

		for (uint32_t k = 0; k < 4; k++) {
			const uint64_t id = 100 + k;
			const uint32_t got =
			    draft_const(&l, id, 64, 0.1f, 0.9f, 64);

			cr_expect_eq(got, want[k], "post warm-up pick %u: %u",
			             k, got);
			bandit_feed(&l, id, got);
		}
	}
	cr_expect_eq(counter(&l, "arm3_pulls"), 5.0);
	cr_expect_eq(counter(&l, "arm1_pulls"), 3.0);
	cr_expect_eq(counter(&l, "results"), 12.0);
	close_loaded(&l);
}

Test(drafters, banditspec_low_exploration_exploits)
{
	const char *keys[] = {"c"};
	const char *vals[] = {"0.5"};
	struct loaded l = open_with("banditspec", keys, vals, 1);
	uint32_t threes = 0;

	for (uint32_t i = 0; i < 8; i++)
		bandit_feed(&l, i, draft_const(&l, i, 64, 0.1f, 0.9f, 64));
	/* c = 0.5: others score at most 0.167 + sqrt(0.5 ln 27 / 2) = 1.075
	 * within the next 20 rounds, while arm 3 scores over 1 plus its own
	 * exploration (>= sqrt(0.5 ln 27 / 21) = 0.28): arm 3 every time. */
	for (uint32_t i = 8; i < 28; i++) {
		const uint32_t got = draft_const(&l, i, 64, 0.1f, 0.9f, 64);

		threes += got == 3;
		bandit_feed(&l, i, got);
	}
	cr_expect_eq(threes, 20u);

	/* statistics persist across sequences: no second warm-up */
	l.p->drafter->begin_sequence(l.st,
	                             &(struct ahasd_seq_info){.seq_id = 2});
	cr_expect_eq(draft_const(&l, 0, 64, 0.1f, 0.9f, 64), 3u);
	close_loaded(&l);
}

Test(drafters, banditspec_inflight_and_feedback)
{
	const char *keys[] = {"arms", "warmup"};
	const char *vals[] = {"6,2,4", "3"};   /* sorted: 2, 4, 6 */
	struct loaded l = open_with("banditspec", keys, vals, 2);

	/* three batches in flight before any result; the third is host-capped
	 * to 5 tokens although its arm is 6 */
	cr_expect_eq(draft_const(&l, 40, 64, 0.1f, 0.9f, 64), 2u);
	cr_expect_eq(draft_const(&l, 41, 64, 0.1f, 0.9f, 64), 4u);
	cr_expect_eq(draft_const(&l, 42, 5, 0.1f, 0.9f, 64), 5u);

	/* arm 6 gets 7 tokens / 0.5 s = 14 tok/s; arm 2 is discarded
	 * (reward 0, still a result) */
	result(&l, 42, 5, 5, 7, 0, 0.5);
	result(&l, 40, 2, 0, 0, 1, 0.2);
	cr_expect_float_eq(counter(&l, "arm6_mean_reward"), 14.0, 1e-12);
	cr_expect_eq(counter(&l, "arm2_results"), 1.0);
	cr_expect_float_eq(counter(&l, "arm2_mean_reward"), 0.0, 1e-12);
	/* a result for a batch it never drafted is ignored and counted, and
	 * so is a second result for an already settled one */
	result(&l, 999, 3, 3, 3, 0, 0.1);
	result(&l, 42, 5, 5, 7, 0, 0.5);
	cr_expect_eq(counter(&l, "unknown_results"), 2.0);
	cr_expect_eq(counter(&l, "arm6_results"), 1.0);

	/* warm-up over; arm 4 (batch 41) has no result yet, so it goes
	 * first, ahead of arm 6's better score */
	cr_expect_eq(draft_const(&l, 43, 64, 0.1f, 0.9f, 64), 4u);
	/* give 41 a result: 1 token in 1 s. t = 3, r_max = 14:
	 * arm2 0 + sqrt(6 ln3/1) = 2.567, arm4 1/14 + 2.567 = 2.639,
	 * arm6 1 + 2.567 = 3.567 -> arm 6 */
	result(&l, 41, 4, 0, 1, 0, 1.0);
	cr_expect_eq(draft_const(&l, 44, 64, 0.1f, 0.9f, 64), 6u);
	close_loaded(&l);
}

Test(drafters, banditspec_deterministic)
{
	struct loaded a = open_with("banditspec", NULL, NULL, 0);
	struct loaded b = open_with("banditspec", NULL, NULL, 0);

	/* identical feedback -> identical choices, for 60 rounds with a
	 * reward that depends on the length (2 tok/s per drafted token,
	 * divided by (1 + len^2 / 8): peak at length 3) */
	for (uint64_t i = 0; i < 60; i++) {
		const uint32_t la = draft_const(&a, i, 64, 0.2f, 0.8f, 64);
		const uint32_t lb = draft_const(&b, i, 64, 0.2f, 0.8f, 64);
		const double rs = (1.0 + la * la / 8.0) / 2.0;

		cr_assert_eq(la, lb, "round %u", (unsigned)i);
		result(&a, i, la, la, la, 0, rs);
		result(&b, i, lb, lb, lb, 0, rs);
	}
	/* reward len*2/(1+len^2/8): 1.78, 2.67, 2.82, 2.67 -> arm 3 best */
	cr_expect_eq(counter(&a, "best_arm"), 3.0);
	close_loaded(&a);
	close_loaded(&b);
}

Test(drafters, banditspec_colon_separated_arms)
{
	const char *keys[] = {"arms", "warmup"};
	const char *vals[] = {"4:1", "4"};   /* sorted: 1, 4 */
	struct loaded l = open_with("banditspec", keys, vals, 2);

	/* warm-up round-robin over lengths 1, 4 */
	cr_expect_eq(draft_const(&l, 1, 64, 0.1f, 0.9f, 64), 1u);
	cr_expect_eq(draft_const(&l, 2, 64, 0.1f, 0.9f, 64), 4u);
	cr_expect_eq(draft_const(&l, 3, 64, 0.1f, 0.9f, 64), 1u);
	cr_expect_eq(draft_const(&l, 4, 64, 0.1f, 0.9f, 64), 4u);
	close_loaded(&l);
}

Test(drafters, banditspec_bad_params)
{
	expect_bad("banditspec", "arms", "1,,2", "arms=1,,2");
	expect_bad("banditspec", "arms", "0,1", "arms=0,1");
	expect_bad("banditspec", "arms", "2,2", "arms=2,2");
	expect_bad("banditspec", "arms", "1,2,", "arms=1,2,");
	expect_bad("banditspec", "arms", "1;2", "arms=1;2");
	expect_bad("banditspec", "arms", "", "arms=");
	expect_bad("banditspec", "arms",
	           "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17", "arms=");
	expect_bad("banditspec", "warmup", "-1", "warmup=-1");
	expect_bad("banditspec", "c", "x", "c=x");
}

/* ---- the ahasd policy's EDC bookkeeping, driven by hand ---- */

/* ahasd with tvc=0 and every PHT counter at 3 (always continue): the
 * decisions stay DRAFT, and edc_mean_llr shows the LLR each prediction
 * was made with. LLR must follow the closed, unverified batches. */
static struct loaded open_ahasd_edc(void)
{
	static const char *const keys[] = { "tvc", "pht_init" };
	static const char *const vals[] = { "0", "3" };
	struct loaded l = open_with("ahasd", keys, vals, 2);
	const struct ahasd_seq_info si = { 0, 16, 64, 1 };
	l.p->policy->begin_sequence(l.st, &si);
	return l;
}

static void closed(const struct loaded *l, uint64_t id)
{
	struct ahasd_host_view v;
	memset(&v, 0, sizeof v);
	v.verify_freq_hz = v.draft_freq_hz = 1e9;
	const struct ahasd_batch_info b = { id, 2, 1.0f, id > 1 };
	struct ahasd_decision d = { 99, 99 };
	l->p->policy->after_batch(l->st, &v, &b, &d);
	cr_assert_eq(d.next, AHASD_NEXT_DRAFT, "batch %llu",
	             (unsigned long long)id);
}

static void verified(const struct loaded *l, uint64_t id, int full,
                     uint32_t corrected, uint32_t discarded)
{
	struct ahasd_host_view v;
	memset(&v, 0, sizeof v);
	const struct ahasd_verify_info r = {
		id, 2, full ? 2 : 1, full, 100, 1e-3, discarded, corrected, 0, 1
	};
	l->p->policy->on_verify(l->st, &v, &r);
}

/* A bonus that differs from the look-ahead token drops the look-ahead
 * batches: they leave LLR. LLR at each prediction (edc_batch adds one
 * before the index is formed):
 *   close 1 -> 1;  close 2 -> 2;
 *   verify 1 full, 1 batch (2) dropped -> 2 - 1 - 1 = 0;
 *   close 3 -> 1;  verify 3 full -> 0;  close 4 -> 1.
 * Mean (1 + 2 + 1 + 1) / 4 = 1.25. Had the dropped batch stayed counted:
 * (1 + 2 + 2 + 2) / 4 = 1.75. */
Test(ahasd_policy, llr_forgets_batches_a_bonus_dropped)
{
	struct loaded l = open_ahasd_edc();
	closed(&l, 1);
	closed(&l, 2);
	verified(&l, 1, 1, 0, 1);
	closed(&l, 3);
	verified(&l, 3, 1, 0, 0);
	closed(&l, 4);
	cr_expect_float_eq(counter(&l, "edc_mean_llr"), 1.25, 1e-12);
	cr_expect_eq(counter(&l, "edc_predictions"), 4.0);
	/* the bonus discard rolled LEHT back once; no rejection */
	cr_expect_eq(counter(&l, "edc_rollbacks"), 1.0);
	close_loaded(&l);
}

/* Pre-verification corrects batch 1 and drops 2 and 3; batch 4 is drafted
 * after the correction and is live when batch 1's verification arrives.
 *   close 1, 2, 3 -> 1, 2, 3;  pre-verify drops 2 -> LLR 1;
 *   close 4 -> 2;  verify 1 (corrected) -> 1, batch 4 still counted;
 *   close 5 -> 2;  verify 4 full -> 1;  verify 5 full -> 0;  close 6 -> 1.
 * Mean (1+2+3+2+2+1) / 6 = 11/6. Treating the corrected batch as a
 * rejection (LLR cleared) would give (1+2+3+2+1+1) / 6 = 10/6. The
 * verification of batch 2, dropped earlier, must be ignored. */
Test(ahasd_policy, corrected_batch_keeps_later_batches)
{
	struct loaded l = open_ahasd_edc();
	closed(&l, 1);
	closed(&l, 2);
	closed(&l, 3);
	const struct ahasd_task_info pv = { 2, 1e-4, 2 };
	l.p->policy->on_preverify(l.st, &pv, 1);
	closed(&l, 4);
	verified(&l, 1, 0, 1, 0);
	closed(&l, 5);
	verified(&l, 2, 1, 0, 0); /* stale: never counted */
	verified(&l, 4, 1, 0, 0);
	verified(&l, 5, 1, 0, 0);
	closed(&l, 6);
	cr_expect_float_eq(counter(&l, "edc_mean_llr"), 11.0 / 6.0, 1e-12);
	/* scored: 1 (predicted continue, not full: wrong), 4 and 5 (right) */
	cr_expect_float_eq(counter(&l, "edc_accuracy"), 2.0 / 3.0, 1e-12);
	close_loaded(&l);
}

/* A corrected batch whose verification also drops the batches after it
 * (the bonus differs from the look-ahead token): they leave LLR and LEHT.
 *   close 1, 2, 3 -> 1, 2, 3;  pre-verify corrects 1, drops 2 and 3 -> 1;
 *   close 4, 5 -> 2, 3;  verify 1 (corrected, 2 dropped) -> 3 - 1 - 2 = 0;
 *   close 6 -> 1.  Mean (1+2+3+2+3+1) / 6 = 2. Keeping the dropped two
 *   in LLR would give close 6 -> 3 and a mean of 14/6. Rollbacks: the
 *   pre-verify correction and the bonus discard. */
Test(ahasd_policy, corrected_batch_that_drops_later_ones)
{
	struct loaded l = open_ahasd_edc();
	closed(&l, 1);
	closed(&l, 2);
	closed(&l, 3);
	const struct ahasd_task_info pv = { 2, 1e-4, 2 };
	l.p->policy->on_preverify(l.st, &pv, 1);
	closed(&l, 4);
	closed(&l, 5);
	verified(&l, 1, 0, 1, 2);
	closed(&l, 6);
	cr_expect_float_eq(counter(&l, "edc_mean_llr"), 2.0, 1e-12);
	cr_expect_eq(counter(&l, "edc_rollbacks"), 2.0);
	close_loaded(&l);
}
