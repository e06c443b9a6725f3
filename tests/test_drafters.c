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
#include <unistd.h>

#include "ahasd_plugin.h"

struct loaded {
	void *handle;
	const struct ahasd_plugin *p;
	void *st;
};

static struct loaded load(const char *name)
{
	struct loaded l = { 0 };
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

/* Create with params; returns the create() result, error text in err.
 * As the host does (plugin_args), create() gets every declared key, in
 * the table's order, with the last value given here or its default; an
 * undeclared key (which the host would refuse) follows them. */
static int try_create(struct loaded *l, const char *const *keys,
                      const char *const *vals, size_t n, char *err,
                      size_t errlen)
{
	const char *ak[32], *av[32];
	size_t m = 0;

	for (const struct ahasd_param *q = l->p->params; q->key; q++, m++) {
		cr_assert_lt(m, 32u);
		ak[m] = q->key;
		av[m] = q->default_value;
		for (size_t i = 0; i < n; i++)
			if (strcmp(keys[i], q->key) == 0)
				av[m] = vals[i];
	}
	for (size_t i = 0; i < n; i++) {
		const struct ahasd_param *q = l->p->params;

		while (q->key && strcmp(q->key, keys[i]) != 0)
			q++;
		if (q->key == NULL) {
			cr_assert_lt(m, 32u);
			ak[m] = keys[i];
			av[m++] = vals[i];
		}
	}
	const struct ahasd_create_args args = { sizeof args,
		                                AHASD_PLUGIN_ABI_VERSION, m, ak,
		                                av };
	err[0] = '\0';
	l->st = NULL;
	return l->p->create(&l->st, &args, err, errlen);
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
	const char *keys[1] = { key };
	const char *vals[1] = { val };
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
			.struct_size = sizeof tok,
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
		.struct_size = sizeof r,
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
/* plugin versions: the minor goes up when a drafter's behaviour changes
 * (the run record keeps it, so old and new results stay apart) */
static const char *const all_versions[] = {
	"1.0", "1.1", "1.0", "1.1", "1.1",
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
		cr_expect_str_eq(p->version, all_versions[k]);
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
			const char *bk[1] = { "no_such_key" };
			const char *bv[1] = { "1" };
			struct loaded m = l;

			cr_expect_neq(
			        try_create(&m, bk, bv, 1, err, sizeof(err)), 0,
			        "%s took an unknown key", p->name);
			cr_expect_not_null(strstr(err, "no_such_key"), "%s",
			                   err);
		}
		close_loaded(&l);
	}
}

/* ------------------------------------------------------------------ */
/* fixed                                                               */
/* ------------------------------------------------------------------ */

Test(drafters, fixed_length)
{
	const char *keys[] = { "k" };
	const char *vals[] = { "3" };
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
	const char *keys[] = { "k" };
	const char *vals[] = { "3" };
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

/* The product at token n covers tokens 1..n-1 (the authors' code,
 * hf_generation.py:715-722: at draft step k the head predicts the
 * acceptance of candidate k-1, and step 1 multiplies by 1). */
Test(drafters, specdecpp_product_rule)
{
	struct loaded l = open_with("specdecpp", NULL, NULL, 0);
	/* h = 0.3, predictor top1, min_len 2:
	 *   n=1: n < min_len (and the product is empty)  -> go on
	 *   n=2: 1 - 0.95                  = 0.05        -> go on
	 *   n=3: 1 - 0.95*0.9 = 1 - 0.855  = 0.145       -> go on
	 *   n=4: 1 - 0.855*0.8 = 1 - 0.684 = 0.316 > 0.3 -> stop at index 3
	 * (token 3's 0.8 decides at n=4; the old rule, with token n in its own
	 * product, stopped one token earlier, at index 2) */
	const float p1[] = { 0.95f, 0.9f, 0.8f, 0.9f, 0.9f };
	/* n=1: go on; n=2: 1 - 0.5 = 0.5 > 0.3 -> stop at index 1 */
	const float p2[] = { 0.5f, 0.9f, 0.9f, 0.9f };
	/* entropies are irrelevant with predictor=top1: very high ones */
	const float hh[] = { 5.0f, 5.0f, 5.0f, 5.0f, 5.0f };

	cr_expect_eq(draft(&l, 0, 64, hh, p1, 5), 4u);
	/* a new batch starts from prod = 1 again: same answer */
	cr_expect_eq(draft(&l, 1, 64, hh, p1, 5), 4u);
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

	/* min_len = 1: the first token still cannot stop the batch, since
	 * its product is empty (1 - 1 = 0); p2 stops at n=2 as before */
	{
		const char *keys[] = { "min_len" };
		const char *vals[] = { "1" };

		l = open_with("specdecpp", keys, vals, 1);
		cr_expect_eq(draft(&l, 0, 64, NULL, p2, 4), 2u);
		close_loaded(&l);
	}
}

/* The token whose own prediction is low is kept, and the batch ends after
 * the next one: h = 0.3, min_len 2, p = 0.95, 0.2, 0.95, ...
 *   n=2: 1 - 0.95        = 0.05 -> go on (token 2's 0.2 not yet in)
 *   n=3: 1 - 0.95*0.2    = 0.81 -> stop at index 2.
 * Had token n been in its own product, n=2 would give 1 - 0.19 = 0.81 and
 * stop at index 1. */
Test(drafters, specdecpp_current_token_not_in_product)
{
	struct loaded l = open_with("specdecpp", NULL, NULL, 0);
	const float p[] = { 0.95f, 0.2f, 0.95f, 0.95f, 0.95f };

	cr_expect_eq(draft(&l, 0, 64, NULL, p, 5), 3u);
	cr_expect_eq(counter(&l, "rule_stops"), 1.0);
	close_loaded(&l);
}

Test(drafters, specdecpp_entropy_predictor)
{
	const char *keys[] = { "predictor", "h" };
	const char *vals[] = { "entropy", "0.3" };
	struct loaded l = open_with("specdecpp", keys, vals, 2);
	/* p_j = exp(-H_j), so at token n, 1 - prod = 1 - exp(-sum_{j<n} H_j):
	 *   n=3: 1 - exp(-0.2) = 0.181
	 *   n=4: 1 - exp(-0.4) = 0.3297 > 0.3 -> stop at index 3.
	 * top1 = 1 everywhere, so predictor=top1 would never stop. */
	const float h[] = { 0.1f, 0.1f, 0.2f, 0.1f, 0.1f };
	const float p[] = { 1.0f, 1.0f, 1.0f, 1.0f, 1.0f };

	cr_expect_eq(draft(&l, 0, 64, h, p, 5), 4u);
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
	const float h1[] = { 0.2f, 0.5f, 0.7f, 0.1f };
	/* first token already uncertain: sqrt(0.15*0.9) = 0.367 -> index 0 */
	const float h2[] = { 0.9f, 0.1f };

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
		const char *keys[] = { "threshold", "min_len" };
		const char *vals[] = { "0.5", "3" };
		const float h3[] = { 2.0f, 0.7f, 1.5f, 1.7f, 0.1f };

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
	const char *k1[] = { "threshold" }, *v1[] = { "0" };
	const char *k2[] = { "min_len" }, *v2[] = { "2" };
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
static const float adaedl_h[] = { 0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f };

static void begin_seq(const struct loaded *l, uint32_t id)
{
	const struct ahasd_seq_info seq = { .struct_size = sizeof seq,
		                            .seq_id = id,
		                            .n_tokens = 256 };

	cr_assert_not_null(l->p->drafter->begin_sequence);
	l->p->drafter->begin_sequence(l->st, &seq);
}

/* Algorithm 1 of the AdaEDL paper with its published values (section 4.4:
 * beta1 = 0.5, beta2 = 0.9, eps = 0.01, alpha = 0.9), one round by hand.
 * Start: lambda = lambda0 = 0.7, AR = ar0 = 0, L = max_len = 16.
 * Round 1: 4 drafted, 1 accepted: AR_1 = 0.25,
 *   AR      = 0.5 * 0 + 0.5 * 0.25        = 0.125 < 0.9 -> raise:
 *   lambda' = 0.7 + 0.01                  = 0.71
 *   lambda  = 0.9 * 0.7 + 0.1 * 0.71      = 0.701.
 * The step is (1 - beta2) eps = 0.001; with the roles of the betas swapped
 * (the old plugin) it was (1 - 0.5) * 0.01 = 0.005 and AR would have been
 * 0.9 * AR + 0.1 * 0.25. */
Test(drafters, adaedl_one_round_by_hand)
{
	struct loaded l = open_with("adaedl", NULL, NULL, 0);

	begin_seq(&l, 0);
	cr_expect_eq(draft(&l, 0, 64, adaedl_h, NULL, 6), 3u);
	cr_expect_float_eq(counter(&l, "lambda"), 0.7, 1e-12);
	result(&l, 0, 4, 1, 2, 0, 0.01);
	cr_expect_float_eq(counter(&l, "acceptance_estimate"), 0.125, 1e-12);
	cr_expect_float_eq(counter(&l, "lambda"), 0.701, 1e-12);
	cr_expect_eq(counter(&l, "lambda_raises"), 1.0);

	/* discarded batches do not adapt */
	result(&l, 1, 4, 0, 0, 1, 0.01);
	cr_expect_float_eq(counter(&l, "lambda"), 0.701, 1e-12);
	cr_expect_eq(counter(&l, "discarded_results"), 1.0);

	/* 49 more such rounds: AR = 0.25 (1 - 2^-50) stays below 0.9, each
	 * adds exactly 0.001: lambda = 0.7 + 50 * 0.001 = 0.75, and the batch
	 * now stops at H = 0.4 (index 1) */
	for (int i = 0; i < 49; i++)
		result(&l, 2 + (uint64_t)i, 4, 1, 2, 0, 0.01);
	cr_expect_float_eq(counter(&l, "lambda"), 0.75, 1e-9);
	cr_expect_eq(counter(&l, "updates"), 50.0);
	cr_expect_eq(counter(&l, "lambda_raises"), 50.0);
	cr_expect_eq(draft(&l, 100, 64, adaedl_h, NULL, 6), 2u);
	close_loaded(&l);
}

/* Rounds that accept everything (3 of 3). AR starts at 0, so it needs
 * four rounds to reach alpha:
 *   round 1: AR = 0.5     < 0.9 -> raise, lambda 0.701
 *   round 2: AR = 0.75    < 0.9 -> raise, lambda 0.702
 *   round 3: AR = 0.875   < 0.9 -> raise, lambda 0.703
 *   round 4: AR = 0.9375 >= 0.9 and n_acc = 3 != L = 16 -> lower, 0.702
 *   rounds 5..54 lower too: lambda = 0.703 - 51 * 0.001 = 0.652.
 * Then the bound stops only at H > (1 - 0.652)^2 / 0.2 = 0.6055: the batch
 * runs past H = 0.6 and stops at H = 0.7 (index 4). */
Test(drafters, adaedl_lambda_falls_on_high_acceptance)
{
	struct loaded l = open_with("adaedl", NULL, NULL, 0);
	const double want[4] = { 0.701, 0.702, 0.703, 0.702 };

	begin_seq(&l, 0);
	for (int i = 0; i < 4; i++) {
		result(&l, (uint64_t)i, 3, 3, 4, 0, 0.01);
		cr_expect_float_eq(counter(&l, "lambda"), want[i], 1e-12,
		                   "round %d", i + 1);
	}
	cr_expect_float_eq(counter(&l, "acceptance_estimate"), 0.9375, 1e-12);
	for (int i = 4; i < 54; i++)
		result(&l, (uint64_t)i, 3, 3, 4, 0, 0.01);
	cr_expect_float_eq(counter(&l, "lambda"), 0.652, 1e-9);
	cr_expect_eq(counter(&l, "lambda_raises"), 3.0);
	cr_expect_eq(counter(&l, "lambda_lowers"), 51.0);
	cr_expect_eq(draft(&l, 100, 64, adaedl_h, NULL, 6), 5u);
	/* host cap still applies */
	cr_expect_eq(draft(&l, 101, 2, adaedl_h, NULL, 6), 2u);
	close_loaded(&l);
}

/* The hold branch (Algorithm 1, lines 11-14): with AR >= alpha, lambda is
 * held when the round's count equals L. ar0 = 1 so that one round decides:
 *   a 16-token batch, 15 accepted: AR = 0.5 + 0.5 * 15/16 = 0.96875;
 *     hold=accepted (as printed): n_acc = 15 != 16 -> lower to 0.699;
 *     hold=drafted (Draft & Verify): n_drafted = 16 = L -> hold at 0.7;
 *   a 16-token batch, all accepted: held by both. */
Test(drafters, adaedl_hold_branch)
{
	static const char *const modes[2] = { "accepted", "drafted" };
	static const double after_15[2] = { 0.699, 0.7 };
	const char *keys[] = { "ar0", "hold" };

	for (int m = 0; m < 2; m++) {
		const char *vals[] = { "1", modes[m] };
		struct loaded l = open_with("adaedl", keys, vals, 2);

		begin_seq(&l, 0);
		result(&l, 0, 16, 15, 16, 0, 0.01);
		cr_expect_float_eq(counter(&l, "acceptance_estimate"), 0.96875,
		                   1e-12);
		cr_expect_float_eq(counter(&l, "lambda"), after_15[m], 1e-12,
		                   "hold=%s", modes[m]);
		result(&l, 1, 16, 16, 17, 0, 0.01);
		cr_expect_float_eq(counter(&l, "lambda"), after_15[m], 1e-12,
		                   "hold=%s, all accepted", modes[m]);
		cr_expect_eq(counter(&l, "lambda_holds"), m == 0 ? 1.0 : 2.0);
		close_loaded(&l);
	}
}

/* persist: what carries over from one sequence to the next. After one
 * round of 4 drafted / 1 accepted: lambda 0.701, AR 0.125 (as above). */
Test(drafters, adaedl_persist)
{
	static const char *const modes[3] = { "none", "lambda", "all" };
	static const double lambda[3] = { 0.7, 0.701, 0.701 };
	static const double ar[3] = { 0.0, 0.0, 0.125 };
	const char *keys[] = { "persist" };

	for (int m = 0; m < 3; m++) {
		const char *vals[] = { modes[m] };
		struct loaded l = open_with("adaedl", keys, vals, 1);

		begin_seq(&l, 0);
		result(&l, 0, 4, 1, 2, 0, 0.01);
		cr_expect_float_eq(counter(&l, "lambda"), 0.701, 1e-12);
		begin_seq(&l, 1);
		cr_expect_float_eq(counter(&l, "lambda"), lambda[m], 1e-12,
		                   "persist=%s", modes[m]);
		cr_expect_float_eq(counter(&l, "acceptance_estimate"), ar[m],
		                   1e-12, "persist=%s", modes[m]);
		cr_expect_eq(counter(&l, "sequences"), 2.0);
		close_loaded(&l);
	}
}

/* Algorithm 1 does not clamp lambda. beta2 = 0 and eps = 1 make one round
 * move lambda by a whole step. */
Test(drafters, adaedl_unclamped_lambda_and_cap)
{
	const char *keys[] = { "beta2", "eps", "max_len" };
	const char *vals[] = { "0", "1", "5" };
	struct loaded l = open_with("adaedl", keys, vals, 3);

	/* AR = 0 < 0.9: lambda = 0.7 + 1 = 1.7. Above 1 the bound (at most 1)
	 * is always below lambda: even H = 0 stops at once */
	begin_seq(&l, 0);
	result(&l, 0, 4, 0, 1, 0, 0.01);
	cr_expect_float_eq(counter(&l, "lambda"), 1.7, 1e-12);
	cr_expect_eq(draft_const(&l, 1, 64, 0.0f, 1.0f, 10), 1u);
	close_loaded(&l);

	/* ar0 = 1, all accepted: AR = 1 >= 0.9 and n_acc 4 != L 5: lambda =
	 * 0.7 - 1 = -0.3. The bound 1 - sqrt(0.2 H) < -0.3 needs H > 8.45:
	 * H = 5 runs to max_len 5, H = 9 stops at once */
	{
		const char *k2[] = { "beta2", "eps", "max_len", "ar0" };
		const char *v2[] = { "0", "1", "5", "1" };

		l = open_with("adaedl", k2, v2, 4);
		begin_seq(&l, 0);
		result(&l, 0, 4, 4, 5, 0, 0.01);
		cr_expect_float_eq(counter(&l, "lambda"), -0.3, 1e-12);
		cr_expect_eq(draft_const(&l, 1, 64, 5.0f, 0.1f, 10), 5u);
		cr_expect_eq(draft_const(&l, 2, 64, 9.0f, 0.1f, 10), 1u);
		close_loaded(&l);
	}
}

/* ---- AdaEDL on whole traces: the draft length follows the entropy ---- */

/* Run `cmd` and return the first number after `key` in the output line
 * that contains `line` (NULL: any line), or NAN. */
static double run_and_read(const char *cmd, const char *line, const char *key)
{
	FILE *f = popen(cmd, "r");
	char buf[4096];
	double v = NAN;

	cr_assert_not_null(f, "popen %s", cmd);
	while (fgets(buf, sizeof(buf), f) != NULL) {
		const char *k;

		if (line != NULL && strstr(buf, line) == NULL)
			continue;
		k = strstr(buf, key);
		if (k != NULL && isnan(v))
			v = strtod(k + strlen(key), NULL);
	}
	cr_assert_eq(pclose(f), 0, "%s failed", cmd);
	return v;
}

/* Two 7b-instruct profile traces with the same per-token acceptance, 0.7,
 * and draft entropies whose median differs 20x (0.05 vs 1.0 nats). Fixed
 * k = 4 drafts the same on both; AdaEDL, with its default parameters, must
 * draft much longer batches where the draft is confident. Measured when
 * the test was written: 4.83 vs 1.22 tokens per batch. */
Test(drafters, adaedl_length_follows_entropy, .timeout = 120)
{
	const char *root = getenv("AHASD_BUILD_ROOT");
	static const char *const hmed[2] = { "0.05", "1.0" };
	double ada[2], fixed[2];
	char dir[] = "/tmp/ahasd-drafters-XXXXXX";
	char cmd[8192];

	cr_assert_not_null(root, "AHASD_BUILD_ROOT is not set");
	cr_assert_not_null(mkdtemp(dir));
	for (int i = 0; i < 2; i++) {
		double acc;

		snprintf(cmd, sizeof(cmd),
		         "%s/tools/ahasd-trace synth --profile 7b-instruct "
		         "--set acceptance=0.7 --set h_median=%s "
		         "--sequences 8 --tokens 512 -o %s/h%d.msgpack "
		         ">/dev/null",
		         root, hmed[i], dir, i);
		cr_assert_eq(system(cmd), 0, "%s", cmd);
		snprintf(cmd, sizeof(cmd),
		         "%s/tools/ahasd-trace info %s/h%d.msgpack", root, dir,
		         i);
		acc = run_and_read(cmd, NULL, "mean acceptance:");
		cr_assert(acc >= 0.6 && acc <= 0.8,
		          "h_median %s: mean acceptance %g", hmed[i], acc);
		snprintf(cmd, sizeof(cmd),
		         "%s/tools/ahasd-replay --no-db -p sync -w npu-pim "
		         "-d adaedl -d fixed %s/h%d.msgpack",
		         root, dir, i);
		ada[i] = run_and_read(cmd, "sync/adaedl", "draft len ");
		fixed[i] = run_and_read(cmd, "sync/fixed", "draft len ");
		snprintf(cmd, sizeof(cmd), "rm -f %s/h%d.msgpack", dir, i);
		cr_assert_eq(system(cmd), 0);
	}
	rmdir(dir);
	cr_expect_float_eq(fixed[0], fixed[1], 0.05, "fixed: %g vs %g",
	                   fixed[0], fixed[1]);
	cr_expect_gt(ada[0], 2.0 * ada[1],
	             "adaedl: %g (H median 0.05) vs %g "
	             "(1.0)",
	             ada[0], ada[1]);
	cr_expect_gt(ada[1], 1.0, "adaedl drafts more than 1 token a batch");
}

Test(drafters, adaedl_bad_params)
{
	expect_bad("adaedl", "gamma", "0", "gamma=0");
	expect_bad("adaedl", "target", "1.2", "target=1.2");
	expect_bad("adaedl", "beta2", "x", "beta2=x");
	expect_bad("adaedl", "lambda0", "-0.1", "lambda0=-0.1");
	expect_bad("adaedl", "eps", " 0.1", "eps= 0.1");
	expect_bad("adaedl", "max_len", "0", "max_len=0");
	expect_bad("adaedl", "ar0", "2", "ar0=2");
	expect_bad("adaedl", "persist", "sometimes", "persist=sometimes");
	expect_bad("adaedl", "hold", "", "hold=");
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

/* The authors' code (generate_utils.py:180-191): 7 warm-up rounds
 * (out_index 1..7: lengths 1, 2, 3, 4, 1, 2, 3), then
 * mean_i + sqrt(6 ln t / N) with t the round's index and N all results:
 * the same bonus for every arm, so the choice is greedy on the mean.
 * Rewards: arm 3 6 tok/s, the others 1 tok/s (bandit_feed).
 *   round 8: t = 8, N = 7, bonus sqrt(6 ln 8 / 7) = 1.335 for all;
 *            means 1, 1, 6, 1 -> arm 3.
 * Arm 3 then earns 0.5 tok/s: after k such results its mean is
 * (12 + 0.5 k) / (2 + k), above 1 for k <= 19 -> arm 3 for 20 rounds;
 * at k = 20 it is exactly 1, tying arms 1, 2 and 4 -> arm 1 (ties go to
 * the shorter length). (UCB1 with these numbers would explore again much
 * sooner: see banditspec_ucb1_warmup_then_best_arm.) */
Test(drafters, banditspec_code_index_by_hand)
{
	struct loaded l = open_with("banditspec", NULL, NULL, 0);
	const uint32_t warm[7] = { 1, 2, 3, 4, 1, 2, 3 };
	uint32_t threes = 0, got;

	begin_seq(&l, 0);
	for (uint32_t i = 0; i < 7; i++) {
		got = draft_const(&l, i, 64, 0.1f, 0.9f, 64);
		cr_expect_eq(got, warm[i], "warm-up batch %u", i);
		bandit_feed(&l, i, got);
	}
	for (uint32_t i = 7; i < 27; i++) {
		got = draft_const(&l, i, 64, 0.1f, 0.9f, 64);
		threes += got == 3;
		result(&l, i, 3, 1, 2, 0, 4.0); /* 2 tokens in 4 s */
	}
	cr_expect_eq(threes, 20u);
	cr_expect_float_eq(counter(&l, "arm3_mean_reward"), 22.0 / 22.0, 1e-12);
	cr_expect_eq(draft_const(&l, 27, 64, 0.1f, 0.9f, 64), 1u);
	close_loaded(&l);
}

/* persist=none (the default, as the code restarts its statistics with
 * every generate call): a new sequence warms up again from length 1;
 * persist=all keeps the statistics and goes on with the best arm. */
Test(drafters, banditspec_persist)
{
	static const char *const modes[2] = { "none", "all" };
	static const uint32_t next[2] = { 1, 3 };
	const char *keys[] = { "persist" };

	for (int m = 0; m < 2; m++) {
		const char *vals[] = { modes[m] };
		struct loaded l = open_with("banditspec", keys, vals, 1);

		begin_seq(&l, 0);
		for (uint32_t i = 0; i < 10; i++)
			bandit_feed(&l, i,
			            draft_const(&l, i, 64, 0.1f, 0.9f, 64));
		cr_expect_eq(draft_const(&l, 10, 64, 0.1f, 0.9f, 64), 3u);
		begin_seq(&l, 1);
		cr_expect_eq(draft_const(&l, 11, 64, 0.1f, 0.9f, 64), next[m],
		             "persist=%s", modes[m]);
		/* the counters are run totals either way */
		cr_expect_eq(counter(&l, "batches"), 12.0);
		close_loaded(&l);
	}
}

/* index=ucb1 with 8 warm-up rounds and persist=all: the plugin's earlier
 * rule (mean / r_max + sqrt(c ln t / n_i), t = results). */
Test(drafters, banditspec_ucb1_warmup_then_best_arm)
{
	const char *keys[] = { "index", "warmup", "persist" };
	const char *vals[] = { "ucb1", "8", "all" };
	struct loaded l = open_with("banditspec", keys, vals, 3);
	const uint32_t warm[8] = { 1, 2, 3, 4, 1, 2, 3, 4 };
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
		const uint32_t want[4] = { 3, 3, 3, 1 };

		for (uint32_t k = 0; k < 4; k++) {
			const uint64_t id = 100 + k;
			const uint32_t got = draft_const(&l, id, 64, 0.1f, 0.9f,
			                                 64);

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

Test(drafters, banditspec_ucb1_low_exploration_exploits)
{
	const char *keys[] = { "c", "index", "warmup", "persist" };
	const char *vals[] = { "0.5", "ucb1", "8", "all" };
	struct loaded l = open_with("banditspec", keys, vals, 4);
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

	/* persist=all: statistics persist across sequences, no second
	 * warm-up */
	l.p->drafter->begin_sequence(
	        l.st, &(struct ahasd_seq_info){
	                      .struct_size = sizeof(struct ahasd_seq_info),
	                      .seq_id = 2 });
	cr_expect_eq(draft_const(&l, 0, 64, 0.1f, 0.9f, 64), 3u);
	close_loaded(&l);
}

Test(drafters, banditspec_inflight_and_feedback)
{
	const char *keys[] = { "arms", "warmup" };
	const char *vals[] = { "6,2,4", "3" }; /* sorted: 2, 4, 6 */
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
	/* give 41 a result: 1 token in 1 s. Round t = 5, N = 3 results:
	 * means arm2 0, arm4 1, arm6 14, each plus sqrt(6 ln 5 / 3) = 1.794
	 * -> arm 6 */
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
	const char *keys[] = { "arms", "warmup" };
	const char *vals[] = { "4:1", "4" }; /* sorted: 1, 4 */
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
	expect_bad("banditspec", "index", "ucb2", "index=ucb2");
	expect_bad("banditspec", "persist", "lambda", "persist=lambda");
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
	const struct ahasd_seq_info si = { sizeof si, 0, 16, 64, 1 };
	l.p->policy->begin_sequence(l.st, &si);
	return l;
}

static void closed(const struct loaded *l, uint64_t id)
{
	struct ahasd_host_view v;
	memset(&v, 0, sizeof v);
	v.struct_size = sizeof v;
	v.verify_freq_hz = v.draft_freq_hz = 1e9;
	const struct ahasd_batch_info b = { sizeof b, id, 2, 1.0f, id > 1 };
	struct ahasd_decision d = { sizeof d, 99, 99 };
	l->p->policy->after_batch(l->st, &v, &b, &d);
	cr_assert_eq(d.next, AHASD_NEXT_DRAFT, "batch %llu",
	             (unsigned long long)id);
}

static void verified(const struct loaded *l, uint64_t id, int full,
                     uint32_t corrected, uint32_t discarded)
{
	struct ahasd_host_view v;
	memset(&v, 0, sizeof v);
	v.struct_size = sizeof v;
	const struct ahasd_verify_info r = { sizeof r,  id,  2,    full ? 2 : 1,
		                             full,      100, 1e-3, discarded,
		                             corrected, 0,   1 };
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
	const struct ahasd_task_info pv = { sizeof pv, 2, 1e-4, 2 };
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
	const struct ahasd_task_info pv = { sizeof pv, 2, 1e-4, 2 };
	l.p->policy->on_preverify(l.st, &pv, 1);
	closed(&l, 4);
	closed(&l, 5);
	verified(&l, 1, 0, 1, 2);
	closed(&l, 6);
	cr_expect_float_eq(counter(&l, "edc_mean_llr"), 2.0, 1e-12);
	cr_expect_eq(counter(&l, "edc_rollbacks"), 2.0);
	close_loaded(&l);
}
