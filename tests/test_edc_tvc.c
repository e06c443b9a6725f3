/* test_edc_tvc.c - AHASD's EDC and TVC units on numbers worked by hand. */
#include <criterion/criterion.h>
#include <math.h>

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

/* Profile: NVCT 100 NPU cycles per KV entry, PDCT 50 PIM cycles per draft
 * token, PVCT 200 PIM cycles per pre-verified token; f_PIM / f_NPU = 0.5.
 * A verification at L_KV = 1000, 20000 NPU cycles in:
 *   C_NPU      = 100 * 1000 * 0.5          = 50000 PIM cycles
 *   C_now      = 20000 * 0.5               = 10000
 *   C_PIM_Left = 50000 - (10000 + 50 * 1)  = 39950
 *   length     = floor(39950 / 200)        = 199 */
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
 * profile is gone. NVCT samples 300 cycles / 2 KV entries = 150 each. */
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
}
