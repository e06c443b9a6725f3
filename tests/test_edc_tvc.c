/* test_edc_tvc.c - AHASD's EDC and TVC units on numbers worked by hand,
 * and the AHASD policy plugin deciding on host views built by hand. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ahasd_plugin.h"

#include "edc.h"
#include "tvc.h"

/* 8 bins over [0, 4): bin = floor(H / 4 * 8) = floor(2H), clamped. */
Test(edc, entropy_bins)
{
	struct edc e;
	edc_init(&e, 4.0, 2);
	cr_assert_eq(edc_bin(&e, 0.0), 0);
	cr_assert_eq(edc_bin(&e, 0.49), 0);
	cr_assert_eq(edc_bin(&e, 0.5), 1);
	cr_assert_eq(edc_bin(&e, 1.75), 3);
	cr_assert_eq(edc_bin(&e, 3.99), 7);
	cr_assert_eq(edc_bin(&e, 10.0), 7);
	cr_assert_eq(edc_bin(&e, -1.0), 0);
	cr_assert_eq(edc_bin(&e, NAN), 0);
}

/* Batches with bins 1,2,3,4,5,6,7,7 (oldest first). Logical LEHT, newest
 * first: 7 7 6 5 | 4 3 2 1. avg(LEHT[0..3]) = floor(25/4) = 6,
 * avg(LEHT[4..7]) = floor(10/4) = 2, LLR saturates at 7 after 8 batches.
 * index = 2<<6 | 6<<3 | 7 = 128 + 48 + 7 = 183. */
Test(edc, pht_index)
{
	struct edc e;
	edc_init(&e, 4.0, 2);
	static const unsigned bins[8] = { 1, 2, 3, 4, 5, 6, 7, 7 };
	for (int i = 0; i < 8; i++)
		edc_batch(&e, bins[i]);
	cr_assert_eq(edc_hist_get(&e.leht, 0), 7);
	cr_assert_eq(edc_hist_get(&e.leht, 3), 5);
	cr_assert_eq(edc_hist_get(&e.leht, 7), 1);
	cr_assert_eq(e.llr, 7);
	cr_assert_eq(edc_index(&e), 183);
	/* the ninth batch overwrites the oldest (bin 1): 0 7 7 6 | 5 4 3 2,
	 * recent floor(20/4) = 5, older floor(14/4) = 3: 3<<6|5<<3|7 = 239 */
	edc_batch(&e, 0);
	cr_assert_eq(edc_index(&e), 239);
}

/* 2-bit counters start at pht_init = 2 (predict continue); a rejection
 * moves them to 1 (stop), saturating at 0; three full acceptances climb
 * 0 -> 1 -> 2 -> 3 and a fourth stays at 3. */
Test(edc, counter_saturation)
{
	struct edc e;
	edc_init(&e, 4.0, 2);
	const unsigned idx = 42;
	cr_assert(edc_predict(&e, idx));
	edc_verify(&e, idx, 0, 0);
	cr_assert_eq(e.pht[idx], 1);
	cr_assert_not(edc_predict(&e, idx));
	edc_verify(&e, idx, 0, 0);
	edc_verify(&e, idx, 0, 0);
	cr_assert_eq(e.pht[idx], 0);
	for (int i = 0; i < 4; i++)
		edc_verify(&e, idx, 0, 1);
	cr_assert_eq(e.pht[idx], 3);
	cr_assert(edc_predict(&e, idx));
	/* other entries untouched */
	cr_assert_eq(e.pht[idx + 1], 2);
}

/* LLR counts unverified batches: +1 per batch up to 7, -1 per
 * verification down to 0, and a rejection clears it (the look-ahead
 * batches go with it). */
Test(edc, llr_bounds)
{
	struct edc e;
	edc_init(&e, 4.0, 2);
	edc_verify(&e, 0, 0, 1);
	cr_assert_eq(e.llr, 0, "no underflow");
	for (int i = 0; i < 10; i++)
		edc_batch(&e, 1);
	cr_assert_eq(e.llr, 7, "saturates");
	edc_verify(&e, 0, 1, 1);
	cr_assert_eq(e.llr, 6);
	edc_discard(&e, 2);
	cr_assert_eq(e.llr, 4);
	edc_discard(&e, 9);
	cr_assert_eq(e.llr, 0);
	edc_batch(&e, 1);
	edc_batch(&e, 1);
	edc_verify(&e, 0, 1, 0);
	cr_assert_eq(e.llr, 0, "rejection clears LLR");
}

/* Batch A (bin 3) is verified in full: LCEHT = [3]. Look-ahead batches
 * with bins 7, 7 then enter LEHT (newest first 7 7 3). A rejection rolls
 * LEHT back to LCEHT: newest first 3 0 0 ... */
Test(edc, rollback_to_committed_history)
{
	struct edc e;
	edc_init(&e, 4.0, 2);
	edc_batch(&e, 3);
	edc_verify(&e, edc_index(&e), 3, 1);
	edc_batch(&e, 7);
	edc_batch(&e, 7);
	cr_assert_eq(edc_hist_get(&e.leht, 0), 7);
	cr_assert_eq(edc_hist_get(&e.leht, 2), 3);
	edc_verify(&e, 0, 7, 0);
	cr_assert_eq(edc_hist_get(&e.leht, 0), 3);
	cr_assert_eq(edc_hist_get(&e.leht, 1), 0);
	cr_assert_eq(e.leht.wp, e.lceht.wp);
	/* a rejected batch is not committed history */
	cr_assert_eq(edc_hist_get(&e.lceht, 0), 3);
}

/* A batch corrected by pre-verification: edc_discard() rolled LEHT back
 * and dropped the later batches when the correction happened; batches
 * drafted since are live, so its verification only moves LLR and the
 * counter. Here: committed bin 3; batch A (bin 5) closes, LLR 1; B (bin 6)
 * closes, LLR 2; pre-verify corrects A and drops B: LLR 1, LEHT = {3};
 * C (bin 4) closes: LLR 2, LEHT {4, 3}; A's verification: LLR 1, its
 * counter 2 -> 1, LEHT still {4, 3}, LCEHT unchanged {3}. */
Test(edc, corrected_batch_keeps_live_history)
{
	struct edc e;
	edc_init(&e, 4.0, 2);
	edc_batch(&e, 3);
	edc_verify(&e, edc_index(&e), 3, 1);
	edc_batch(&e, 5);
	unsigned ia = edc_index(&e);
	edc_batch(&e, 6);
	edc_discard(&e, 1);
	cr_assert_eq(e.llr, 1);
	edc_batch(&e, 4);
	cr_assert_eq(e.llr, 2);
	edc_verify_corrected(&e, ia);
	cr_assert_eq(e.llr, 1);
	cr_assert_eq(e.pht[ia], 1);
	cr_assert_eq(edc_hist_get(&e.leht, 0), 4);
	cr_assert_eq(edc_hist_get(&e.leht, 1), 3);
	cr_assert_eq(edc_hist_get(&e.lceht, 0), 3);
	cr_assert_eq(edc_hist_get(&e.lceht, 1), 0);
	/* saturation at the bottom */
	edc_verify_corrected(&e, ia);
	edc_verify_corrected(&e, ia);
	cr_assert_eq(e.llr, 0);
	cr_assert_eq(e.pht[ia], 0);
}

/* Profile: NVCT 100 NPU cycles per KV entry, PDCT 50 PIM cycles per draft
 * token, PVCT 200 PIM cycles per pre-verified token; f_PIM / f_NPU = 0.5.
 * A verification at L_KV = 1000, 20000 NPU cycles in:
 *   C_NPU      = 100 * 1000 * 0.5          = 50000 PIM cycles
 *   C_now      = 20000 * 0.5               = 10000
 *   C_PIM_Left = 50000 - (10000 + 50 * 1)  = 39950
 *   length     = floor(39950 / 200)        = 199 */
Test(tvc, pim_left_and_length)
{
	struct tvc t;
	tvc_init(&t, 4, 100, 50, 200);
	double left = tvc_pim_left(&t, 1000, 20000, 0.5);
	cr_assert_float_eq(left, 39950.0, 1e-9);
	cr_assert_eq(tvc_preverify_len(&t, left), 199);
	/* a sample of 1000 cycles for 2 tokens (500/token) replaces one of
	 * the four 200s: mean ratio (500 + 3 * 200) / 4 = 275,
	 * floor(39950 / 275) = floor(145.27) = 145 */
	tvc_record(&t.pvct, 1000, 2);
	cr_assert_float_eq(tvc_ratio(&t.pvct), 275.0, 1e-9);
	cr_assert_eq(tvc_preverify_len(&t, left), 145);
}

/* Late in the verification nothing is left: 99000 NPU cycles in,
 * C_now = 49500, left = 50000 - 49550 = 450 -> floor(450/200) = 2;
 * 99900 in: left = 50000 - 49950 - 50 = 0 -> 0 (keep drafting);
 * past the prediction the value is negative -> 0. */
Test(tvc, nothing_left_means_zero)
{
	struct tvc t;
	tvc_init(&t, 4, 100, 50, 200);
	cr_assert_eq(tvc_preverify_len(&t, tvc_pim_left(&t, 1000, 99000, 0.5)),
	             2);
	cr_assert_eq(tvc_preverify_len(&t, tvc_pim_left(&t, 1000, 99900, 0.5)),
	             0);
	cr_assert_eq(tvc_preverify_len(&t, tvc_pim_left(&t, 1000, 200000, 0.5)),
	             0);
}

/* Tables are rings of `size` entries: after `size` new samples the
 * profile is gone. NVCT samples 300 cycles / 2 KV entries = 150 each; a
 * third sample, 500 / 2 = 250, wraps round onto the oldest: (250 + 150)
 * / 2 = 200. */
Test(tvc, ring_replaces_profile)
{
	struct tvc t;
	tvc_init(&t, 2, 100, 50, 200);
	tvc_record(&t.nvct, 300, 2);
	cr_assert_float_eq(tvc_ratio(&t.nvct), 125.0, 1e-9);
	tvc_record(&t.nvct, 300, 2);
	cr_assert_float_eq(tvc_ratio(&t.nvct), 150.0, 1e-9);
	tvc_record(&t.nvct, 100, 0); /* zero length is ignored */
	cr_assert_float_eq(tvc_ratio(&t.nvct), 150.0, 1e-9);
	tvc_record(&t.nvct, 500, 2);
	cr_assert_float_eq(tvc_ratio(&t.nvct), 200.0, 1e-9);
	cr_assert_eq(t.nvct.wp, 1);
}

/* ---- the AHASD policy plugin on host views built by hand ----------------
 * policies/ahasd.so, loaded as the host loads it, asked after a batch with
 * a host view whose numbers are chosen to be exact: both clocks at 1 Hz
 * (a cycle is a second), the profile 1000 s per KV entry to verify, 5000 s
 * per draft step, P s per pre-verified token; a verification of KV length
 * 10 that has just started (C_now = 0). pht_init = 1: EDC predicts "stop"
 * everywhere, so every decision goes to TVC:
 *   C_NPU = 1000 * 10 * 1 = 10000, C_PIM_Left = 10000 - (0 + 5000) = 5000,
 *   length = floor(5000 / P), clipped to the tokens still pre-verifiable. */
struct policy {
	void *dl;
	const struct ahasd_plugin *p;
	void *st;
};

static struct policy ahasd_open(const char *pht_init)
{
	struct policy a = { 0 };
	char path[4096], err[256] = "";
	const char *dir = getenv("AHASD_PLUGIN_PATH");
	const char *keys[] = { "pht_init" }, *vals[] = { pht_init };

	cr_assert_not_null(dir, "AHASD_PLUGIN_PATH is not set");
	snprintf(path, sizeof path, "%s/ahasd.so", dir);
	a.dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	cr_assert_not_null(a.dl, "dlopen %s: %s", path, dlerror());
	a.p = dlsym(a.dl, AHASD_PLUGIN_SYMBOL);
	cr_assert_not_null(a.p);
	/* as the host does under ABI 3: every declared key, defaults in */
	const char *ak[32], *av[32];
	size_t m = 0;
	for (const struct ahasd_param *q = a.p->params; q->key; q++, m++) {
		cr_assert_lt(m, 32u);
		ak[m] = q->key;
		av[m] = !strcmp(q->key, keys[0]) ? vals[0] : q->default_value;
	}
	const struct ahasd_create_args args = { sizeof args,
		                                AHASD_PLUGIN_ABI_VERSION, m, ak,
		                                av };
	cr_assert_eq(a.p->create(&a.st, &args, err, sizeof err), 0, "%s", err);
	return a;
}

static void ahasd_close(struct policy *a)
{
	a->p->destroy(a->st);
	dlclose(a->dl);
}

static double policy_counter(const struct policy *a, const char *want)
{
	const char *name;
	double v;

	for (uint32_t i = 0; a->p->counter(a->st, i, &name, &v); i++)
		if (!strcmp(name, want))
			return v;
	cr_assert_fail("no counter %s", want);
	return 0;
}

static struct ahasd_host_view view(double pv_per_token, uint32_t pvable)
{
	struct ahasd_host_view v = {
		.struct_size = sizeof v,
		.now_s = 7.0,
		.verify_freq_hz = 1.0,
		.draft_freq_hz = 1.0,
		.verify_busy = 1,
		.verify_start_s = 7.0,
		.verify_kv_len = 10,
		.verify_tokens = 3,
		.queued_batches = 1,
		.queued_tokens = pvable,
		.preverifiable = pvable,
		.unverified_batches = 2,
		.queue_capacity = 32,
		.committed = 4,
		.kv_len = 20,
		.prof_verify_s_per_kv = 1000.0,
		.prof_draft_s = 5000.0,
		.prof_preverify_s_per_token = pv_per_token,
	};
	return v;
}

static struct ahasd_decision decide(struct policy *a, uint64_t batch,
                                    const struct ahasd_host_view *v)
{
	const struct ahasd_batch_info b = { sizeof b, batch, 2, 0.5f, 1 };
	struct ahasd_decision d = { sizeof d, AHASD_NEXT_WAIT, 99 };

	a->p->policy->after_batch(a->st, v, &b, &d);
	return d;
}

/* A cycle per pre-verified token of P:
 *   P = 4000: 5000 / 4000 = 1.25 -> 1: pre-verify one token (length 1 is
 *             the smallest that inserts; below 1 keeps drafting);
 *   P = 5000: exactly 1.0 -> 1;
 *   P = 6000: 0.83 -> 0: keep drafting (DRAFT, tvc_keep_drafting);
 *   P = 2500: 2.0 -> 2, with one token pre-verifiable -> 1. */
struct tvc_case {
	double p;
	uint32_t pvable;
	int next; /* enum ahasd_next */
	uint32_t count;
};

ParameterizedTestParameters(policy, tvc_length_from_a_host_view)
{
	static struct tvc_case cases[] = {
		{ 4000.0, 8, AHASD_NEXT_PREVERIFY, 1 },
		{ 5000.0, 8, AHASD_NEXT_PREVERIFY, 1 },
		{ 6000.0, 8, AHASD_NEXT_DRAFT, 0 },
		{ 2500.0, 1, AHASD_NEXT_PREVERIFY, 1 },
		{ 2500.0, 8, AHASD_NEXT_PREVERIFY, 2 },
	};
	return cr_make_param_array(struct tvc_case, cases,
	                           sizeof cases / sizeof *cases);
}

ParameterizedTest(struct tvc_case *c, policy, tvc_length_from_a_host_view)
{
	struct policy a = ahasd_open("1");
	const struct ahasd_host_view v = view(c->p, c->pvable);
	const struct ahasd_decision d = decide(&a, 1, &v);

	cr_assert_eq((int)d.next, c->next, "P = %g: next %d, want %d", c->p,
	             (int)d.next, c->next);
	if (c->next == AHASD_NEXT_PREVERIFY)
		cr_assert_eq(d.count, c->count, "P = %g: %u tokens, want %u",
		             c->p, d.count, c->count);
	cr_assert_eq(policy_counter(&a, "edc_stop"), 1);
	cr_assert_eq(policy_counter(&a, "tvc_insertions"),
	             c->next == AHASD_NEXT_PREVERIFY);
	cr_assert_eq(policy_counter(&a, "tvc_tokens"),
	             c->next == AHASD_NEXT_PREVERIFY ? c->count : 0);
	cr_assert_eq(policy_counter(&a, "tvc_keep_drafting"),
	             c->next == AHASD_NEXT_DRAFT);
	ahasd_close(&a);
}

/* Nothing to pre-verify (no verification running, or every queued token
 * settled already): wait. pht_init = 2: EDC predicts "continue": draft
 * ahead, TVC not asked. */
Test(policy, tvc_waits_or_edc_continues)
{
	struct policy a = ahasd_open("1");
	struct ahasd_host_view v = view(4000.0, 8);
	struct ahasd_decision d;

	v.verify_busy = 0;
	d = decide(&a, 1, &v);
	cr_assert_eq(d.next, AHASD_NEXT_WAIT);
	v = view(4000.0, 0);
	d = decide(&a, 2, &v);
	cr_assert_eq(d.next, AHASD_NEXT_WAIT);
	cr_assert_eq(policy_counter(&a, "waits"), 2);
	cr_assert_eq(policy_counter(&a, "tvc_insertions"), 0);
	ahasd_close(&a);

	a = ahasd_open("2");
	v = view(4000.0, 8);
	d = decide(&a, 1, &v);
	cr_assert_eq(d.next, AHASD_NEXT_DRAFT);
	cr_assert_eq(policy_counter(&a, "edc_continue"), 1);
	cr_assert_eq(policy_counter(&a, "tvc_insertions"), 0);
	ahasd_close(&a);
}

/* NVCT learns one sample per verification pass, from its first batch:
 * a pass of two batches that took 40000 s at KV 10 (4000 per entry)
 * reports batch 0 then batch 1. The table (4 entries, profiled 1000)
 * becomes 4000, 1000, 1000, 1000: mean 1750, C_NPU = 17500, left 12500,
 * with P = 4000 length floor(3.125) = 3. Had batch 1 been sampled too:
 * mean 2500, left 20000, length 5. (The batches report a pre-verify
 * correction, which moves their PHT counters down: EDC keeps predicting
 * "stop" and the third decision is TVC's again.) */
Test(policy, nvct_one_sample_per_pass)
{
	struct policy a = ahasd_open("1");
	const struct ahasd_host_view v = view(4000.0, 8);
	struct ahasd_decision d = decide(&a, 1, &v); /* TVC initialised */

	cr_assert_eq(d.count, 1);
	decide(&a, 2, &v);
	for (uint32_t i = 0; i < 2; i++) {
		const struct ahasd_verify_info r = {
			.batch_id = 1 + i,
			.length = 2,
			.accepted = 1,
			.full = 0,
			.kv_len = 10,
			.duration_s = 40000.0,
			.corrected = 1,
			.pass_index = i,
			.pass_batches = 2,
		};
		a.p->policy->on_verify(a.st, &v, &r);
	}
	d = decide(&a, 3, &v);
	cr_assert_eq(d.next, AHASD_NEXT_PREVERIFY);
	cr_assert_eq(d.count, 3);
	ahasd_close(&a);
}

/* LLR counts the unverified batches of the sequence at hand: a new
 * sequence starts it at 0 (the PHT is hardware and keeps its counters).
 * EDC predicts "continue" everywhere (pht_init = 3), so each batch is
 * one prediction at the LLR it leaves: three batches give 1, 2, 3; a new
 * sequence and one batch give 1: edc_mean_llr = (1 + 2 + 3 + 1) / 4. */
Test(policy, llr_starts_at_zero_each_sequence)
{
	struct policy a = ahasd_open("3");
	const struct ahasd_host_view v = view(4000.0, 8);
	const struct ahasd_seq_info seq = {
		.struct_size = sizeof seq,
		.seq_id = 1,
		.prompt_len = 16,
		.n_tokens = 64,
		.seed = 1,
	};

	a.p->policy->begin_sequence(a.st, &seq);
	for (uint64_t id = 1; id <= 3; id++)
		cr_assert_eq(decide(&a, id, &v).next, AHASD_NEXT_DRAFT);
	cr_assert_float_eq(policy_counter(&a, "edc_mean_llr"), 2.0, 1e-12);
	a.p->policy->begin_sequence(a.st, &seq);
	decide(&a, 4, &v);
	cr_assert_float_eq(policy_counter(&a, "edc_mean_llr"), 7.0 / 4, 1e-12);
	cr_assert_eq(policy_counter(&a, "edc_predictions"), 4);
	ahasd_close(&a);
}
