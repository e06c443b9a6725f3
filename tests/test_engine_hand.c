/* test_engine_hand.c - the replay engine on hand-built traces whose
 * schedule and figures are worked out in the comment above each test, one
 * mechanism or boundary at a time.
 *
 * Times are checked against the hardware model's own task costs at the
 * exact (tokens M, KV length L) each task must run at: the engine's job is
 * to schedule the right tasks in the right order; the per-operator numbers
 * are tested in test_hw.c. P = P_LEN = 16 is the prompt length of every
 * hand-built sequence, q the queue latency, d(p) a draft step at KV P+p,
 * v(M, L) a verification.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rig.h"

static void setup(void)
{
	fx_tmpdir_make("engine-hand");
}

TestSuite(hand, .init = setup, .fini = fx_tmpdir_remove);

/* fixed k=4, sync, 12 greedy tokens, a_6 = 0:
 *   batch 1 drafts p0..p3 (KV 16..19), all on path; verify M=5 at KV 20:
 *     commits p0..p3 + bonus p4 -> C = 5, accepted 4.
 *   batch 2 drafts p5..p8; p6 is wrong; verify M=5 at KV 25: accepts p5,
 *     corrects p6 -> C = 7; p6, p7, p8 wasted (3).
 *   batch 3 drafts p7..p10 (max_len = min(4, 12-7)); all on path; verify
 *     M=5 at KV 27: commits p7..p10 + bonus p11 -> C = 12 = N.
 * drafted 12 = accepted 9 + wasted 3; 3 batches, 3 verifications.
 * Draft step at position p runs at KV length P + p.
 * Energy: each of the 15 steps spends its dynamic energy on each device as
 * the hardware model splits it (e_d(step)); every device draws its static
 * power W_d over the whole run, busy or idle:
 *   dynamic_j = sum over steps and devices of e_d(step),
 *   static_j = (W_npu + W_pim) x time, energy_j = dynamic_j + static_j,
 *   dev_energy_j[d] = sum over steps of e_d(step) + W_d x time.
 * The one sequence's result carries the same time and energy. The wasted
 * drafts are the first drafts of p6, p7, p8 (KV P+6..P+8):
 *   wasted_draft_s = their step times, wasted_draft_j = their dynamic
 *   energies (joules, not seconds). */
Test(hand, sync_fixed4_hand_computed)
{
	static const int acc[12] = { 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1 };
	struct fx_seq b;
	fx_seq_greedy(&b, 0, acc, 12);
	const char *path = fx_path("t.msgpack");
	fx_write_trace(path, &b, 1, NULL);

	struct rig g;
	struct evsum l = { 0 };
	RIG_OPEN(&g, .trace = path, .preset = "npu-pim", .policy = "sync",
	         .drafter = "fixed", .dkey = "k", .dval = "4",
	         .on_event = sum_event, .user = &l);
	struct replay_seq_result res;
	size_t nres;
	rig_run_results(&g, &res, 1, &nres);
	const struct replay_metrics *m = replay_metrics(g.r);
	cr_assert_eq(nres, 1);
	cr_assert_eq(m->committed, 12);
	cr_assert_eq(m->drafted, 12);
	cr_assert_eq(m->accepted, 9);
	cr_assert_eq(m->wasted, 3);
	cr_assert_eq(m->batches, 3);
	cr_assert_eq(m->verifications, 3);

	static const unsigned drafted_at[12] = { 0, 1, 2, 3, 5, 6,
		                                 7, 8, 7, 8, 9, 10 };
	/* the same 15 steps give each device's busy time: its share of
	 * every step (transfers are busy on neither device) */
	static const unsigned verified_at[3] = { 4, 9, 11 };
	double want = 0, busy[HW_MAX_DEV] = { 0 }, dyn[HW_MAX_DEV] = { 0 };
	double dyn_all = 0;
	struct hw_cost c;
	for (int i = 0; i < 15; i++) {
		if (i < 12)
			hw_step_cost(g.plan, HW_TASK_DRAFT, 1,
			             P_LEN + drafted_at[i], &c);
		else
			hw_step_cost(g.plan, HW_TASK_VERIFY, 5,
			             P_LEN + verified_at[i - 12], &c);
		want += c.time_s;
		for (unsigned d = 0; d < g.plat.n_dev; d++) {
			busy[d] += c.busy_s[d];
			dyn[d] += c.energy_dev_j[d];
			dyn_all += c.energy_dev_j[d];
		}
	}
	assert_close(m->time_s, want, "simulated time");
	for (unsigned d = 0; d < g.plat.n_dev; d++) {
		cr_assert_gt(busy[d], 0, "both devices take part in a step");
		assert_close(m->busy_s[d], busy[d], "busy per device");
		assert_close(m->idle_s[d], want - busy[d], "idle per device");
	}
	check_events(&g, &l, "sync k=4");

	/* energy */
	const double st = rig_static_w_all(&g) * want;
	cr_assert_gt(st, 0);
	cr_assert_lt(busy[0], want, "the NPU idles: static is not on busy");
	assert_close(m->dynamic_j, dyn_all, "dynamic_j");
	assert_close(m->static_j, st, "static_j");
	assert_close(m->energy_j, dyn_all + st, "energy_j");
	for (unsigned d = 0; d < g.plat.n_dev; d++)
		assert_close(m->dev_energy_j[d],
		             dyn[d] + rig_static_w(&g, d) * want,
		             "energy per device");
	assert_close(res.time_s, want, "the sequence's time");
	assert_close(res.energy_j, dyn_all + st, "the sequence's energy");
	cr_assert_eq(res.committed, 12);
	cr_assert_eq(res.drafted, 12);
	cr_assert_eq(res.accepted, 9);
	cr_assert_eq(res.wasted, 3);
	cr_assert_eq(res.batches, 3);
	cr_assert_eq(res.verifications, 3);
	cr_assert_eq(res.preverified, 0);
	double ws = 0, wj = 0;
	for (unsigned p = 6; p <= 8; p++) {
		ws += rig_step(&g, HW_TASK_DRAFT, 1, P_LEN + p);
		wj += rig_step_j(&g, HW_TASK_DRAFT, 1, P_LEN + p);
	}
	assert_close(m->wasted_draft_s, ws, "wasted_draft_s");
	assert_close(m->wasted_draft_j, wj, "wasted_draft_j");
	rig_close(&g);
}

/* async on npu-pim (draft on the PIM, verify on the NPU), fixed k=2,
 * queue capacity 2, four greedy tokens all on path. q = queue latency,
 * d(p) = draft at KV P+p, v(M, L) = verification.
 *   PIM drafts p0, p1: batch [0,2) closes at T1 = d0 + d1; the queue is
 *     full (2 unverified), so the PIM waits.
 *   NPU verifies from T1 + q for v(3, P+2), result at E1 = T1 + q + v + q:
 *     commits p0, p1 and the bonus p2 -> C = 3.
 *   PIM drafts p3 (KV P+3); the batch ends at N: T2 = E1 + d3.
 *   NPU verifies [3,4) with M = 2 at KV P+4: E2 = T2 + q + v(2,P+4) + q,
 *     commits p3 and clips the bonus at N -> C = 4.
 * drafted 3, accepted 3, wasted 0, two batches, no look-ahead batch.
 * Energy: the five tasks' dynamic energies (three drafts, two
 * verifications; a queue hand-off costs none), plus static power of both
 * devices over all of E2: the PIM waits through both verifications and
 * the NPU through every draft, and both draw static power meanwhile. */
Test(hand, async_capacity_and_bonus_hand_computed)
{
	static const int acc[4] = { 1, 1, 1, 1 };
	struct fx_seq b;
	fx_seq_greedy(&b, 0, acc, 4);
	const char *path = fx_path("t.msgpack");
	fx_write_trace(path, &b, 1, NULL);

	struct rig g;
	RIG_OPEN(&g, .trace = path, .preset = NPU_PIM_FREE, .policy = "async",
	         .drafter = "fixed", .dkey = "k", .dval = "2", .qcap = 2);
	rig_run(&g);
	const struct replay_metrics *m = replay_metrics(g.r);
	double q = g.plat.queue_latency_s;
	double t1 = rig_task(&g, HW_TASK_DRAFT, 1, P_LEN + 0) +
	            rig_task(&g, HW_TASK_DRAFT, 1, P_LEN + 1);
	double e1 = t1 + q + rig_task(&g, HW_TASK_VERIFY, 3, P_LEN + 2) + q;
	double t2 = e1 + rig_task(&g, HW_TASK_DRAFT, 1, P_LEN + 3);
	double e2 = t2 + q + rig_task(&g, HW_TASK_VERIFY, 2, P_LEN + 4) + q;
	cr_assert_eq(m->committed, 4);
	cr_assert_eq(m->drafted, 3);
	cr_assert_eq(m->accepted, 3);
	cr_assert_eq(m->wasted, 0);
	cr_assert_eq(m->batches, 2);
	cr_assert_eq(m->lookahead_batches, 0);
	assert_close(m->time_s, e2, "simulated time");
	const double dyn = rig_task_j(&g, HW_TASK_DRAFT, 1, P_LEN + 0) +
	                   rig_task_j(&g, HW_TASK_DRAFT, 1, P_LEN + 1) +
	                   rig_task_j(&g, HW_TASK_DRAFT, 1, P_LEN + 3) +
	                   rig_task_j(&g, HW_TASK_VERIFY, 3, P_LEN + 2) +
	                   rig_task_j(&g, HW_TASK_VERIFY, 2, P_LEN + 4);
	assert_close(m->dynamic_j, dyn, "dynamic_j");
	assert_close(m->static_j, rig_static_w_all(&g) * e2, "static_j");
	assert_close(m->energy_j, dyn + rig_static_w_all(&g) * e2, "energy_j");
	cr_assert_eq(m->wasted_draft_s, 0);
	cr_assert_eq(m->wasted_draft_j, 0);
	rig_close(&g);
}

/* async, fixed k=2, capacity 4, six tokens, p1 wrong (a_1 = 0):
 *   PIM: p0, p1 (F = 1) -> batch A [0,2) closes at T1 = d0 + d1.
 *   NPU verifies A from T1+q; meanwhile the PIM drafts look-ahead batch B
 *     p2, p3 (off path: continuation entropies of F) and stops at capacity.
 *   A's result at E1 = T1 + q + v(3,P+2) + q: accepts p0, corrects p1 ->
 *     C = 2; p1 and B's p2, p3 wasted (3), B discarded.
 *   PIM redrafts p2, p3 (on path) -> batch C closes at T3 = E1 + d2 + d3,
 *     then drafts look-ahead batch D p4, p5 (ends at N).
 *   NPU: C verified [2,4) from T3 + q, result E3 = T3 + q + v(3,P+4) + q:
 *     commits p2, p3 and bonus p4 (D's first token, on path: accepted).
 *   NPU: D verified [4,6) at M=2, KV P+6: p4 is committed already, so
 *     the pass feeds p4 and the draft p5 (not D's length + 1). Result
 *     E4 = E3 + v(2,P+6) + q (D was ready long before): commits p5, bonus
 *     clipped at N.
 * drafted 8 = accepted 5 (p0, p2, p3, p4, p5) + wasted 3; batches 4 of
 * which 2 look-ahead (B, D). The test checks the PIM is the faster side,
 * which the hand schedule assumes. The wasted drafts (p1 and the first
 * p2, p3) are charged their task time and dynamic energy. */
Test(hand, async_lookahead_waste_hand_computed)
{
	static const int acc[6] = { 1, 0, 1, 1, 1, 1 };
	struct fx_seq b;
	fx_seq_greedy(&b, 0, acc, 6);
	const char *path = fx_path("t.msgpack");
	fx_write_trace(path, &b, 1, NULL);

	struct rig g;
	RIG_OPEN(&g, .trace = path, .preset = NPU_PIM_FREE "&pim.mem_bw=4096e9",
	         .policy = "async", .drafter = "fixed", .dkey = "k",
	         .dval = "2", .qcap = 4);
	rig_run(&g);
	const struct replay_metrics *m = replay_metrics(g.r);
	double q = g.plat.queue_latency_s;
	double d[6];
	for (int p = 0; p < 6; p++)
		d[p] = rig_task(&g, HW_TASK_DRAFT, 1, P_LEN + (unsigned)p);
	double va = rig_task(&g, HW_TASK_VERIFY, 3, P_LEN + 2);
	double vc = rig_task(&g, HW_TASK_VERIFY, 3, P_LEN + 4);
	double vd = rig_task(&g, HW_TASK_VERIFY, 2, P_LEN + 6);
	cr_assert_lt(d[2] + d[3], q + va + q, "schedule assumption");
	cr_assert_lt(d[4] + d[5] + q, q + vc + q, "schedule assumption");
	double t1 = d[0] + d[1];
	double e1 = t1 + q + va + q;
	double t3 = e1 + d[2] + d[3];
	double e3 = t3 + q + vc + q;
	double e4 = e3 + vd + q;
	cr_assert_eq(m->committed, 6);
	cr_assert_eq(m->drafted, 8);
	cr_assert_eq(m->accepted, 5);
	cr_assert_eq(m->wasted, 3);
	cr_assert_eq(m->batches, 4);
	cr_assert_eq(m->lookahead_batches, 2);
	cr_assert_eq(m->verifications, 3);
	assert_close(m->time_s, e4, "simulated time");
	/* the waste: the first drafts of p1, p2, p3 */
	assert_close(m->wasted_draft_s, d[1] + d[2] + d[3], "wasted_draft_s");
	assert_close(m->wasted_draft_j,
	             rig_task_j(&g, HW_TASK_DRAFT, 1, P_LEN + 1) +
	                     rig_task_j(&g, HW_TASK_DRAFT, 1, P_LEN + 2) +
	                     rig_task_j(&g, HW_TASK_DRAFT, 1, P_LEN + 3),
	             "wasted_draft_j");
	rig_close(&g);
}

/* What the drafter is shown, token by token, in the schedule of
 * async_lookahead_waste_hand_computed (the feedback drafter with k=2 in
 * place of fixed): the trace's entropy and top-1 on the path, and after
 * the rejection at F = 1 the draft's own continuation recorded at F,
 * step j = p - F for chain position p, with e^-H standing in for top-1:
 *   p0 (H .5, top-1 .9), p1 (2.5, .3)      batch A, F = 1
 *   p2 (3.0, e^-3.0), p3 (3.1, e^-3.1)     look-ahead B, off path
 *   p2, p3, p4, p5 (.5, .9 each)           C and D, redrafted on path
 * 8 tokens: sum H = 11.1, sum top-1 = 4.8 + e^-3.0 + e^-3.1. */
Test(hand, drafter_sees_the_continuation_after_a_rejection)
{
	static const int acc[6] = { 1, 0, 1, 1, 1, 1 };
	struct fx_seq b;
	fx_seq_greedy(&b, 0, acc, 6);
	const char *path = fx_path("t.msgpack");
	fx_write_trace(path, &b, 1, NULL);

	struct rig g;
	RIG_OPEN(&g, .trace = path, .preset = NPU_PIM_FREE "&pim.mem_bw=4096e9",
	         .policy = "async", .drafter = rig_feedback_drafter(),
	         .dkey = "k", .dval = "2", .qcap = 4);
	rig_run(&g);
	const struct replay_metrics *m = replay_metrics(g.r);
	cr_assert_eq(m->drafted, 8);
	cr_assert_eq(m->wasted, 3);
	cr_assert_eq(rig_counter(&g.dr, "tokens"), 8);
	cr_assert_eq(rig_counter(&g.dr, "top1_out_of_range"), 0);
	/* the trace's values are float32 */
	const double h = 0.5f + 2.5f + 3.0f + (3.0f + 0.1f) + 4 * 0.5f;
	const double t1 = 0.9f + (0.9f - 0.6f) + expf(-3.0f) +
	                  expf(-(3.0f + 0.1f)) + 4 * 0.9f;
	assert_within(rig_counter(&g.dr, "entropy_sum"), h, 1e-6,
	              "entropies shown");
	assert_within(rig_counter(&g.dr, "top1_sum"), t1, 1e-6, "top-1 shown");
	rig_close(&g);
}

/* ---- the hardware mechanisms the engine carries out ---- */

static double aux_of(struct rig *g, unsigned p)
{
	struct hw_cost c;
	hw_task_cost(g->plan, HW_TASK_DRAFT, 1, P_LEN + p, &c);
	return c.busy_s[hw_task_device(g->plan, HW_TASK_VERIFY)];
}

/* A verification's time if the PIM drafted all along. */
static double while_drafting(struct rig *g, unsigned m, unsigned L)
{
	struct hw_cost c;
	hw_task_cost(g->plan, HW_TASK_VERIFY, m, L, &c);
	return c.time_while_s[0];
}

/* Without the AAU the PIM's drafts ship work a_p to the NPU. async, fixed
 * k=2, capacity 4, four greedy tokens on path, no bus contention, a fast
 * PIM and a slow NPU (1 GB/s: the look-ahead batch is drafted inside the
 * first verification):
 *   T1 = d0 + d1: A [0,2) closes. Both drafts found the NPU idle: their
 *     work ran at once (offload tasks of a0 and a1).
 *   A is queued for the NPU from T1 + q. The PIM drafts p2, p3 (B, look-
 *     ahead) from T1 while A waits or runs: their a2 + a3 run between
 *     A's operators, so A's result comes at
 *     E1 = T1 + q + v(3,P+2) + q + a2 + a3; it commits p0, p1 and the
 *     bonus p2 (B's first draft, on path: accepted) -> C = 3.
 *   The NPU takes B: it feeds p2 (committed) and p3: M = 2 at KV P+4,
 *     E2 = E1 + v(2,P+4) + q; commits p3, the bonus clipped at N.
 * NPU busy = a0 + a1 + (v(3) + q + a2 + a3) + (v(2) + q); offload_s is
 * the sum of the a_p. With the AAU the same schedule has no a_p at all. */
ParameterizedTestParameters(hand, aau_offload_occupies_the_npu)
{
	static int aau[] = { 0, 1 };
	return cr_make_param_array(int, aau, 2);
}

ParameterizedTest(int *with_aau, hand, aau_offload_occupies_the_npu)
{
	static const int acc[4] = { 1, 1, 1, 1 };
	const int aau = *with_aau;
	struct fx_seq b;
	fx_seq_greedy(&b, 0, acc, 4);
	const char *path = fx_path("t.msgpack");
	fx_write_trace(path, &b, 1, NULL);

	struct rig g;
	struct evsum l;
	memset(&l, 0, sizeof l);
	RIG_OPEN(
	        &g, .trace = path,
	        .preset = aau ? NPU_PIM_FREE "&pim.mem_bw=4096e9&npu.mem_bw=1e9"
	                      : NPU_PIM_FREE "&pim.mem_bw=4096e9&npu.mem_bw=1e9"
	                                     "&aau=0",
	        .policy = "async", .drafter = "fixed", .dkey = "k", .dval = "2",
	        .qcap = 4, .on_event = sum_event, .user = &l);
	rig_run(&g);
	const struct replay_metrics *m = replay_metrics(g.r);
	const double q = g.plat.queue_latency_s;
	double d[4], a[4];
	for (unsigned p = 0; p < 4; p++) {
		d[p] = rig_task(&g, HW_TASK_DRAFT, 1, P_LEN + p);
		a[p] = aux_of(&g, p);
		if (aau)
			cr_assert_eq(a[p], 0);
		else
			cr_assert_gt(a[p], 0);
	}
	const double va = rig_task(&g, HW_TASK_VERIFY, 3, P_LEN + 2);
	const double vb = rig_task(&g, HW_TASK_VERIFY, 2, P_LEN + 4);
	const double t1 = d[0] + d[1];
	const double e1 = t1 + q + va + q + a[2] + a[3];
	const double e2 = e1 + vb + q;
	cr_assert_lt(t1 + d[2] + d[3], e1, "schedule assumption");
	cr_assert_lt(a[0], d[0], "schedule assumption");
	cr_assert_eq(m->committed, 4);
	cr_assert_eq(m->verifications, 2);
	cr_assert_eq(m->drafted, 4);
	cr_assert_eq(m->wasted, 0);
	assert_close(m->time_s, e2, "simulated time");
	const int vd = hw_task_device(g.plan, HW_TASK_VERIFY);
	assert_close(m->busy_s[vd], a[0] + a[1] + a[2] + a[3] + va + vb + 2 * q,
	             "NPU busy");
	assert_close(m->offload_s, a[0] + a[1] + a[2] + a[3], "offload_s");
	check_events(&g, &l, aau ? "aau" : "no aau");
	rig_close(&g);
}

/* Bus contention. The same schedule with the AAU, on npu-pim with its
 * channels shared (a fast PIM): while the PIM drafts p2 and p3 the
 * verification of A would take T_d (the hardware model's time at the
 * bandwidth share left, tested in test_hw.c) instead of T_1 = v(3,P+2),
 * plus q either way. Its work taken as evenly spread, over X seconds of
 * drafting it does X / T_d of itself, the rest at full speed:
 *   s = T1 + q, X = T1 + d2 + d3 - s (the PIM works from T1 to T1 + d2 +
 *   d3, back to back), E1 = s + X + (1 - X / T_d) T_1.
 * B's verification runs with the PIM idle: E2 = E1 + v(2,P+4) + q. The
 * verification lost E1 - (s + T_1) to contention. */
Test(hand, contention_slows_the_verification)
{
	static const int acc[4] = { 1, 1, 1, 1 };
	struct fx_seq b;
	fx_seq_greedy(&b, 0, acc, 4);
	const char *path = fx_path("t.msgpack");
	fx_write_trace(path, &b, 1, NULL);

	struct rig g;
	RIG_OPEN(&g, .trace = path, .preset = "npu-pim?pim.mem_bw=4096e9",
	         .policy = "async", .drafter = "fixed", .dkey = "k",
	         .dval = "2", .qcap = 4);
	rig_run(&g);
	const struct replay_metrics *m = replay_metrics(g.r);
	const double q = g.plat.queue_latency_s;
	double d[4];
	for (unsigned p = 0; p < 4; p++)
		d[p] = rig_task(&g, HW_TASK_DRAFT, 1, P_LEN + p);
	const double t_1 = rig_task(&g, HW_TASK_VERIFY, 3, P_LEN + 2) + q;
	const double t_d = while_drafting(&g, 3, P_LEN + 2) + q;
	const double vb = rig_task(&g, HW_TASK_VERIFY, 2, P_LEN + 4);
	cr_assert_gt(t_d, t_1 * 1.01, "drafting slows the verification");
	const double t1 = d[0] + d[1], s = t1 + q;
	const double x = t1 + d[2] + d[3] - s;
	cr_assert_gt(x, 0, "schedule assumption");
	cr_assert_lt(x, t_d, "schedule assumption");
	const double e1 = s + x + (1 - x / t_d) * t_1;
	const double e2 = e1 + vb + q;
	assert_close(m->time_s, e2, "simulated time");
	assert_close(m->contention_s, e1 - (s + t_1), "contention_s");
	rig_close(&g);
}

/* Verification grouping. async, fixed k=1, capacity 4, four greedy tokens
 * on path, no contention, a fast PIM: A [0,1) closes at T1 = d0 and is
 * verified (M = 2, KV P+1) while the PIM drafts B [1,2), C [2,3), D [3,4).
 * E1 = T1 + q + v(2,P+1) + q commits p0 and the bonus p1 (B's draft) ->
 * C = 2.
 *   verify_batches = 1: B alone: it feeds p1 (committed) only, M = 1 at
 *     KV P+2: E2 = E1 + v(1,P+2) + q, bonus p2 (C's draft) -> C = 3; then
 *     C alone, M = 1 at KV P+3: E3 = E2 + v(1,P+3) + q, bonus p3 -> C = 4.
 *     3 verifications; D is left queued and settled at the end.
 *   verify_batches = 0: B, C, D in one pass: it feeds p1 and the drafts
 *     p2, p3: M = 3 at KV P+4: E2 = E1 + v(3,P+4) + q -> C = 4.
 *     2 verifications. */
ParameterizedTestParameters(hand, verify_grouping_option)
{
	static int all[] = { 0, 1 };
	return cr_make_param_array(int, all, 2);
}

ParameterizedTest(int *every_ready, hand, verify_grouping_option)
{
	static const int acc[4] = { 1, 1, 1, 1 };
	const int all = *every_ready;
	struct fx_seq b;
	fx_seq_greedy(&b, 0, acc, 4);
	const char *path = fx_path("t.msgpack");
	fx_write_trace(path, &b, 1, NULL);
	struct rig g;
	RIG_OPEN(&g, .trace = path,
	         .preset = all ? NPU_PIM_FREE "&pim.mem_bw=4096e9"
	                                      "&verify_batches=0"
	                       : NPU_PIM_FREE "&pim.mem_bw=4096e9",
	         .policy = "async", .drafter = "fixed", .dkey = "k",
	         .dval = "1", .qcap = 4);
	rig_run(&g);
	const struct replay_metrics *m = replay_metrics(g.r);
	const double q = g.plat.queue_latency_s;
	const double t1 = rig_task(&g, HW_TASK_DRAFT, 1, P_LEN);
	const double e1 = t1 + q + rig_task(&g, HW_TASK_VERIFY, 2, P_LEN + 1) +
	                  q;
	cr_assert_lt(t1 + rig_task(&g, HW_TASK_DRAFT, 1, P_LEN + 1) +
	                     rig_task(&g, HW_TASK_DRAFT, 1, P_LEN + 2) +
	                     rig_task(&g, HW_TASK_DRAFT, 1, P_LEN + 3) + q,
	             e1, "schedule assumption");
	double want;
	if (all)
		want = e1 + rig_task(&g, HW_TASK_VERIFY, 3, P_LEN + 4) + q;
	else
		want = e1 + rig_task(&g, HW_TASK_VERIFY, 1, P_LEN + 2) + q +
		       rig_task(&g, HW_TASK_VERIFY, 1, P_LEN + 3) + q;
	cr_assert_eq(m->committed, 4);
	cr_assert_eq(m->verifications, all ? 2 : 3);
	cr_assert_eq(m->accepted, 4);
	assert_close(m->time_s, want, "simulated time");
	rig_close(&g);
}

/* The synchronous baseline on npu-pim: the draft model on the PIM, the
 * target on the NPU, each waiting for the other. fixed k=2 over six greedy
 * tokens on path: batches [0,2) [3,5) (each verification commits a
 * bonus), then [6,6)... N = 6: rounds (p0 p1 | v(3,P+2)), (p3 p4 |
 * v(3,P+5)); the bonus at 5 ends it. Per round the PIM's share of the
 * latency is (d_a + d_b) / (d_a + d_b + v); the run records the min,
 * mean and max over rounds, and the NPU is busy exactly in its
 * verifications. */
Test(hand, sync_places_models_and_records_pim_share)
{
	static const int acc[6] = { 1, 1, 1, 1, 1, 1 };
	struct fx_seq b;
	fx_seq_greedy(&b, 0, acc, 6);
	const char *path = fx_path("t.msgpack");
	fx_write_trace(path, &b, 1, NULL);
	struct rig g;
	RIG_OPEN(&g, .trace = path, .preset = "npu-pim", .policy = "sync",
	         .drafter = "fixed", .dkey = "k", .dval = "2");
	rig_run(&g);
	const struct replay_metrics *m = replay_metrics(g.r);
	double d[6];
	for (unsigned p = 0; p < 6; p++)
		d[p] = rig_task(&g, HW_TASK_DRAFT, 1, P_LEN + p);
	const double v1 = rig_task(&g, HW_TASK_VERIFY, 3, P_LEN + 2);
	const double v2 = rig_task(&g, HW_TASK_VERIFY, 3, P_LEN + 5);
	const double s1 = (d[0] + d[1]) / (d[0] + d[1] + v1);
	const double s2 = (d[3] + d[4]) / (d[3] + d[4] + v2);
	cr_assert_eq(m->committed, 6);
	cr_assert_eq(m->verifications, 2);
	assert_close(m->time_s, d[0] + d[1] + v1 + d[3] + d[4] + v2, "time");
	const int vd = hw_task_device(g.plan, HW_TASK_VERIFY);
	const int dd = hw_task_device(g.plan, HW_TASK_DRAFT);
	cr_assert_neq(vd, dd);
	assert_close(m->busy_s[vd], v1 + v2, "NPU busy: verifications");
	assert_close(m->busy_s[dd], d[0] + d[1] + d[3] + d[4], "PIM busy");
	cr_assert_eq(m->share_batches, 2);
	assert_close(m->pim_share_min, fmin(s1, s2), "share min");
	assert_close(m->pim_share_max, fmax(s1, s2), "share max");
	assert_close(m->pim_share_sum, s1 + s2, "share sum");
	rig_close(&g);
}

/* Events of the pre-verify test: the sums of check_events plus every
 * pre-verify event and the number of switch events. */
struct pvlog {
	struct evsum sum;
	unsigned n_pv, n_switch;
	double pv_start[4], pv_end[4];
	uint32_t pv_tokens[4];
	enum replay_outcome pv_out[4];
};

static void pv_event(void *user, const struct replay_event *ev)
{
	struct pvlog *l = user;
	sum_event(&l->sum, ev);
	if (ev->kind == REPLAY_EV_SWITCH)
		l->n_switch++;
	if (ev->kind != REPLAY_EV_PREVERIFY)
		return;
	if (l->n_pv < 4) {
		l->pv_start[l->n_pv] = ev->start_s;
		l->pv_end[l->n_pv] = ev->end_s;
		l->pv_tokens[l->n_pv] = ev->tokens;
		l->pv_out[l->n_pv] = ev->outcome;
	}
	l->n_pv++;
}

/* Pre-verification by hand. npu-pim (draft and pre-verify on the PIM,
 * verify on the NPU), the script policy pre-verifying count=2 tokens after
 * the 3rd and the 4th closed batch, the feedback drafter with k=2, queue
 * capacity 6, eight greedy positions, p2 wrong (a_2 = 0), the rest right.
 * A 1-layer draft model and an 8-layer target, an NPU whose operators
 * cost 5.5 us each (in the window where the order below holds; the test
 * asserts the order) and no bus contention (tested on its own) make the
 * NPU slow enough for pre-verification to overtake it; one pass takes
 * every ready batch (verify_batches = 0). d(p) = draft at KV P+p on the PIM,
 * v(M, L) = verification on the NPU, pv(m, L) = pre-verification of m
 * tokens on the PIM, q = queue latency, sw = switch time; a verification
 * occupies the NPU for v + q, starting when its batches are ready (closed
 * + q); a pre-verification occupies the PIM for sw + pv + sw, two
 * switches, and runs at KV P + a + m for positions [a, a+m).
 *   T1 = d0 + d1: batch A [0,2) closes; NPU verifies it (M=3, KV P+2)
 *     from T1 + q: result E1 = T1 + q + v(3,P+2) + q. Policy: draft.
 *   PIM drafts p2 (wrong: F = 2), p3 (off path): B [2,4) closes at
 *     T2 = T1 + d2 + d3, queued; then p4, p5: C [4,6) closes at
 *     T3 = T2 + d4 + d5; 6 unverified tokens = capacity.
 *   PV1 after C (3rd batch): the earliest unsettled queued tokens p2, p3,
 *     pv(2, P+4); ends T4 = T3 + sw + pv + sw < E1. It finds the wrong
 *     draft at f = 2: settles p2 (replaced by the target's token), B is
 *     truncated to [2,3), p3 dropped, C dropped (discarded unverified),
 *     p3, p4, p5 wasted, and the replaced draft p2 wasted: 4 wasted.
 *     D = f + 1 = 3. Outcome "rejected".
 *   Drafting resumes after f: batch D' [3,5) (p3, p4, now on path)
 *     closes at T5 = T4 + d3 + d4, ready T5 + q <= E1.
 *   PV2 after D' (4th batch): p2 is settled, so it takes p3, p4:
 *     pv(2, P+5), from T5 to T8 = T5 + sw + pv + sw > E1.
 *   E1: A accepts p0, p1 (2 accepted) and commits the bonus at p2, the
 *     target's token the pre-verification put there (not a drafted one:
 *     not accepted) -> C = 3. The NPU takes B' [2,3) and D' [3,5) in one
 *     pass: it feeds p2 (committed) and p3, p4: M = 3 at KV P+5, result
 *     E2 = E1 + v(3,P+5) + q.
 *   T8: PV2's tokens are verifying now, no batch is queued: it settles
 *     nothing (clipped to the queued positions), outcome "none".
 *   PIM drafts E [5,7) (p5, p6) closing at T9 = T8 + d5 + d6, then F
 *     [7,8) (p7, capped at N) at T10 = T9 + d7; T10 + q <= E2.
 *   E2: p3, p4 accepted (2) -> C = 6; the bonus at 5 is E's first draft
 *     (on path): accepted (1), counted in E's own result later. The NPU
 *     takes E and F: feeds p5 (committed) and p6, p7: M = 3 at KV P+8,
 *     result E3 = E2 + v(3,P+8) + q: p6, p7 accepted (2), C = 8 = N.
 * drafted 11 (p0..p5, p3, p4, p5, p6, p7) = accepted 7 + wasted 4;
 * batches 6 (A B C D' E F) of 11 tokens, 5 of them look-ahead (all but
 * A); 3 verifications; preverified 4 tokens in 2 tasks, 1 rejection,
 * 4 switches; time E3. PIM busy: its 11 draft steps + both
 * pre-verifications with their switches; NPU busy: 3 x (v + q). Wasted
 * draft time and energy: the first drafts of p2..p5.
 * The drafter's feedback: verified A (2 drafted, 2 accepted, committed
 * p0 p1 + bonus p2 = 3), B' (1 drafted: truncated from 2; accepted 0:
 * its draft was replaced; committed 0: p2 was A's bonus), D' (2, 2, 3
 * with bonus p5), E (2, 2: p5 and p6; committed p6 = 1), F (1, 1, 1: the
 * bonus is past N); discarded C (2 tokens). Sum accepted 7, committed 8. */
Test(hand, preverify_hand_computed)
{
	static const int acc[8] = { 1, 1, 0, 1, 1, 1, 1, 1 };
	struct fx_seq b;
	fx_seq_greedy(&b, 0, acc, 8);
	const char *path = fx_path("pv.msgpack");
	fx_write_trace(path, &b, 1,
	               &(struct fx_trace_opts){ .draft_layers = 1,
	                                        .target_layers = 8 });

	static const char *const pk[3] = { "count", "from", "times" };
	static const char *const pv[3] = { "2", "3", "2" };
	struct rig g;
	struct pvlog l;
	memset(&l, 0, sizeof l);
	RIG_OPEN(&g, .trace = path,
	         .preset = NPU_PIM_FREE "&verify_batches=0"
	                                "&npu.op_overhead_s=5.5e-6",
	         .policy_desc = &rig_script_policy, .pkeys = pk, .pvals = pv,
	         .np = 3, .drafter = rig_feedback_drafter(), .dkey = "k",
	         .dval = "2", .qcap = 6, .on_event = pv_event, .user = &l);
	rig_run(&g);
	const struct replay_metrics *m = replay_metrics(g.r);

	const double q = g.plat.queue_latency_s;
	const double sw = hw_switch_cost(g.plan, NULL);
	cr_assert_gt(sw, 0, "npu-pim has a switch time");
	double d[8], dsum = 0;
	for (unsigned p = 0; p < 8; p++)
		d[p] = rig_task(&g, HW_TASK_DRAFT, 1, P_LEN + p);
	const double pv1 = rig_task(&g, HW_TASK_PREVERIFY, 2, P_LEN + 4);
	const double pv2 = rig_task(&g, HW_TASK_PREVERIFY, 2, P_LEN + 5);
	const double va = rig_task(&g, HW_TASK_VERIFY, 3, P_LEN + 2);
	const double vb = rig_task(&g, HW_TASK_VERIFY, 3, P_LEN + 5);
	const double vc = rig_task(&g, HW_TASK_VERIFY, 3, P_LEN + 8);
	const double t1 = d[0] + d[1];
	const double e1 = t1 + q + va + q;
	const double t2 = t1 + d[2] + d[3];
	const double t3 = t2 + d[4] + d[5];
	const double t4 = t3 + sw + pv1 + sw;
	const double t5 = t4 + d[3] + d[4];
	const double t8 = t5 + sw + pv2 + sw;
	const double e2 = e1 + vb + q;
	const double t9 = t8 + d[5] + d[6];
	const double t10 = t9 + d[7];
	const double e3 = e2 + vc + q;
	/* the order the hand schedule assumes */
	cr_assert_lt(t4, e1, "PV1 ends before A's result");
	cr_assert_leq(t5 + q, e1, "D' is ready when A's result comes");
	cr_assert_gt(t8, e1, "PV2 ends after the NPU took its tokens");
	cr_assert_leq(t10 + q, e2, "E and F ready for the third pass");

	cr_assert_eq(m->committed, 8);
	cr_assert_eq(m->drafted, 11);
	cr_assert_eq(m->accepted, 7);
	cr_assert_eq(m->wasted, 4);
	cr_assert_eq(m->batches, 6);
	cr_assert_eq(m->batch_tokens, 11);
	cr_assert_eq(m->lookahead_batches, 5);
	cr_assert_eq(m->verifications, 3);
	cr_assert_eq(m->preverified, 4);
	cr_assert_eq(m->preverify_tasks, 2);
	cr_assert_eq(m->preverify_rejections, 1);
	cr_assert_eq(m->switches, 4);
	cr_assert_eq(m->waits, 0);
	assert_close(m->time_s, e3, "simulated time");

	const int dd = hw_task_device(g.plan, HW_TASK_DRAFT);
	const int vd = hw_task_device(g.plan, HW_TASK_VERIFY);
	cr_assert_neq(dd, vd);
	static const unsigned drafted_at[11] = {
		0, 1, 2, 3, 4, 5, 3, 4, 5, 6, 7
	};
	for (int i = 0; i < 11; i++)
		dsum += d[drafted_at[i]];
	assert_close(m->busy_s[dd], dsum + pv1 + pv2 + 4 * sw, "PIM busy");
	assert_close(m->busy_s[vd], va + vb + vc + 3 * q, "NPU busy");
	assert_close(m->wasted_draft_s, d[2] + d[3] + d[4] + d[5],
	             "wasted draft time");
	double wj = 0;
	for (unsigned p = 2; p <= 5; p++)
		wj += rig_task_j(&g, HW_TASK_DRAFT, 1, P_LEN + p);
	assert_close(m->wasted_draft_j, wj, "wasted draft energy");

	/* the timeline: PV1 rejected, PV2 clipped to nothing; each drawn
	 * between its two switches */
	cr_assert_eq(l.n_pv, 2);
	cr_assert_eq(l.n_switch, 4);
	assert_close(l.pv_start[0], t3 + sw, "PV1 start");
	assert_close(l.pv_end[0], t4 - sw, "PV1 end");
	assert_close(l.pv_start[1], t5 + sw, "PV2 start");
	assert_close(l.pv_end[1], t8 - sw, "PV2 end");
	cr_assert_eq(l.pv_tokens[0], 2);
	cr_assert_eq(l.pv_tokens[1], 2);
	cr_assert_eq(l.pv_out[0], REPLAY_OUT_REJECTED);
	cr_assert_eq(l.pv_out[1], REPLAY_OUT_NONE);
	check_events(&g, &l.sum, "preverify by hand");

	/* the drafter's feedback, batch by batch as in the comment */
	cr_assert_eq(rig_counter(&g.pol, "preverify_decisions"), 2);
	cr_assert_eq(rig_counter(&g.dr, "verified"), 5);
	cr_assert_eq(rig_counter(&g.dr, "verified_drafted"), 8);
	cr_assert_eq(rig_counter(&g.dr, "verified_accepted"), 7);
	cr_assert_eq(rig_counter(&g.dr, "verified_committed"), 8);
	cr_assert_eq(rig_counter(&g.dr, "discarded_batches"), 1);
	cr_assert_eq(rig_counter(&g.dr, "discarded_tokens"), 2);
	cr_assert_eq(rig_counter(&g.dr, "discarded_open_batches"), 0);
	cr_assert_eq(rig_counter(&g.dr, "truncated_tokens"), 1);
	cr_assert_eq(rig_counter(&g.dr, "closed_batches"), 6);
	cr_assert_eq(rig_counter(&g.dr, "closed_tokens"), 11);
	cr_assert_eq(rig_counter(&g.dr, "unresolved_batches"), 0);
	rig_close(&g);
}

/* The upper end of a pre-verification's range: it settles [a, a+m) and
 * nothing past it, even when the first wrong draft is the very next
 * position. The platform, policy and drafter of preverify_hand_computed,
 * now with count=1 after the 3rd closed batch only, and p3 wrong
 * (a_3 = 0), the rest right, N = 8.
 *   T1 = d0 + d1: A [0,2) closes; the NPU verifies it from T1 + q:
 *     E1 = T1 + q + v(3,P+2) + q.
 *   PIM: p2 (on path), p3 (wrong: F = 3) -> B [2,4) closes at
 *     T2 = T1 + d2 + d3; p4, p5 (off path) -> C [4,6) at T3 = T2 + d4 + d5:
 *     6 unverified tokens = capacity.
 *   PV after C: the earliest unsettled queued token is B's p2, m = 1:
 *     [2,3), pv(1, P+3); it ends at T4 = T3 + sw + pv + sw < E1. F = 3 is
 *     the first position past the range: not this pre-verification's to
 *     find. It settles p2, outcome "accepted", no rejection, nothing
 *     dropped. The queue is still full: the PIM waits for E1.
 *   E1: A accepts p0, p1 and commits the bonus at 2, which p2's draft
 *     matches (accepted) -> C = 3. The NPU takes B and C in one pass: it
 *     feeds p2 (committed) and p3, p4, p5: M = 4 at KV P+6,
 *     E2 = E1 + v(4,P+6) + q. The PIM drafts D [6,8) (p6, p7, off path,
 *     look-ahead), done at T5 = E1 + d6 + d7 < E2.
 *   E2: the pass finds p3 wrong: accepts none of [3,6), commits the
 *     correction at 3 -> C = 4; D is dropped; p3, p4, p5, p6, p7 wasted.
 *   PIM: E [4,6) (p4, p5, on path) closes at T6 = E2 + d4 + d5, then F
 *     [6,8) (look-ahead) at T7 = T6 + d6 + d7 <= E3 - q.
 *   NPU: E from T6 + q, M = 3 at KV P+6: E3 = T6 + q + v(3,P+6) + q:
 *     accepts p4, p5, bonus at 6 equals F's p6 (accepted) -> C = 7. F: it
 *     feeds p6 (committed) and p7: M = 2 at KV P+8, E4 = E3 + v(2,P+8) + q;
 *     accepts p7 -> C = 8 = N.
 * drafted 12 = accepted 7 (p0 p1 p2 p4 p5 p6 p7) + wasted 5 (the first
 * p3..p7); batches 6 (A B C D E F), look-ahead 4 (B C D F: E was opened
 * with nothing unverified); 4 verifications; pre-verified 1 token in 1
 * task, no rejection, 2 switches; time E4. */
Test(hand, preverify_range_ends_before_the_next_position)
{
	static const int acc[8] = { 1, 1, 1, 0, 1, 1, 1, 1 };
	struct fx_seq b;
	fx_seq_greedy(&b, 0, acc, 8);
	const char *path = fx_path("pv-end.msgpack");
	fx_write_trace(path, &b, 1,
	               &(struct fx_trace_opts){ .draft_layers = 1,
	                                        .target_layers = 8 });

	static const char *const pk[3] = { "count", "from", "times" };
	static const char *const pv[3] = { "1", "3", "1" };
	struct rig g;
	struct pvlog l;
	memset(&l, 0, sizeof l);
	RIG_OPEN(&g, .trace = path,
	         .preset = NPU_PIM_FREE "&verify_batches=0"
	                                "&npu.op_overhead_s=5.5e-6",
	         .policy_desc = &rig_script_policy, .pkeys = pk, .pvals = pv,
	         .np = 3, .drafter = rig_feedback_drafter(), .dkey = "k",
	         .dval = "2", .qcap = 6, .on_event = pv_event, .user = &l);
	rig_run(&g);
	const struct replay_metrics *m = replay_metrics(g.r);

	const double q = g.plat.queue_latency_s;
	const double sw = hw_switch_cost(g.plan, NULL);
	double d[8];
	for (unsigned p = 0; p < 8; p++)
		d[p] = rig_task(&g, HW_TASK_DRAFT, 1, P_LEN + p);
	const double pv1 = rig_task(&g, HW_TASK_PREVERIFY, 1, P_LEN + 3);
	const double t1 = d[0] + d[1];
	const double e1 = t1 + q + rig_task(&g, HW_TASK_VERIFY, 3, P_LEN + 2) +
	                  q;
	const double t3 = t1 + d[2] + d[3] + d[4] + d[5];
	const double t4 = t3 + sw + pv1 + sw;
	const double e2 = e1 + rig_task(&g, HW_TASK_VERIFY, 4, P_LEN + 6) + q;
	const double t5 = e1 + d[6] + d[7];
	const double t6 = e2 + d[4] + d[5];
	const double t7 = t6 + d[6] + d[7];
	const double e3 = t6 + q + rig_task(&g, HW_TASK_VERIFY, 3, P_LEN + 6) +
	                  q;
	const double e4 = e3 + rig_task(&g, HW_TASK_VERIFY, 2, P_LEN + 8) + q;
	/* the order the hand schedule assumes */
	cr_assert_lt(t4, e1, "the pre-verification ends before A's result");
	cr_assert_lt(t5, e2, "D is drafted before the pass ends");
	cr_assert_leq(t7 + q, e3, "F is ready when E's result comes");

	cr_assert_eq(m->preverify_tasks, 1);
	cr_assert_eq(m->preverified, 1);
	cr_assert_eq(m->preverify_rejections, 0, "F = 3 lies past [2,3)");
	cr_assert_eq(l.n_pv, 1);
	cr_assert_eq(l.pv_tokens[0], 1);
	cr_assert_eq(l.pv_out[0], REPLAY_OUT_ACCEPTED);
	cr_assert_eq(m->switches, 2);
	cr_assert_eq(m->committed, 8);
	cr_assert_eq(m->drafted, 12);
	cr_assert_eq(m->accepted, 7);
	cr_assert_eq(m->wasted, 5);
	cr_assert_eq(m->batches, 6);
	cr_assert_eq(m->lookahead_batches, 4);
	cr_assert_eq(m->verifications, 4);
	assert_close(m->time_s, e4, "simulated time");
	assert_close(l.pv_start[0], t3 + sw, "PV start");
	assert_close(l.pv_end[0], t4 - sw, "PV end");
	assert_close(m->wasted_draft_s, d[3] + d[4] + d[5] + d[6] + d[7],
	             "wasted draft time");
	check_events(&g, &l.sum, "pre-verify range end");
	cr_assert_eq(rig_counter(&g.pol, "preverify_decisions"), 1);
	rig_close(&g);
}

/* A pre-verification keeps to the positions still queued when it ends:
 * the NPU may have taken the batch it started in. The platform of
 * preverify_hand_computed with NPU operators at 3 us (so A's result lands
 * inside the second pre-verification), one batch per pass
 * (verify_batches = 1), the script policy pre-verifying 1 token after the
 * 2nd and the 3rd closed batch, k=2, capacity 6, p3 wrong, N = 8.
 *   T1 = d0 + d1: A [0,2) closes; E1 = T1 + q + v(3,P+2) + q.
 *   p2, p3 (F = 3) -> B [2,4) at T2 = T1 + d2 + d3. PV1: [2,3), pv(1,P+3),
 *     done at T3 = T2 + sw + pv + sw: settles p2 (F lies past it).
 *   p4, p5 -> C [4,6) at T4 = T3 + d4 + d5 (queue full). PV2: the earliest
 *     unsettled queued token is B's p3: [3,4), pv(1,P+4), T4 to
 *     T5 = T4 + sw + pv + sw.
 *   E1 (T4 < E1 < T5): A accepts p0, p1, the bonus at 2 matches p2 -> C = 3.
 *     The NPU takes B alone: it feeds p2 (committed) and p3: M = 2 at
 *     KV P+4, E2 = E1 + v(2,P+4) + q.
 *   T5: PV2's position 3 is verifying now; the first queued batch is C at
 *     4, so its range clips to [4,4): it settles nothing and finds nothing
 *     (outcome "none"), though p3 is the wrong draft. The PIM drafts
 *     D [6,8) (p6, p7, look-ahead) by T6 = T5 + d6 + d7 < E2.
 *   E2: B finds p3 wrong: C = 4; C and D dropped; p3..p7 wasted (5).
 *   p4, p5 -> E [4,6) at T7 = E2 + d4 + d5; F [6,8) by T8 = T7 + d6 + d7.
 *   E3 = T7 + q + v(3,P+6) + q: p4, p5 and the bonus at 6 (F's p6) -> C = 7;
 *   F: M = 2 at KV P+8, E4 = E3 + v(2,P+8) + q -> C = 8.
 * drafted 12 = accepted 7 + wasted 5; batches 6, look-ahead 4 (B C D F);
 * verifications 4; 2 pre-verify tasks of 1 token, no rejection, 4
 * switches; time E4. */
Test(hand, preverify_clipped_to_the_queued_positions)
{
	static const int acc[8] = { 1, 1, 1, 0, 1, 1, 1, 1 };
	struct fx_seq b;
	fx_seq_greedy(&b, 0, acc, 8);
	const char *path = fx_path("pv-clip.msgpack");
	fx_write_trace(path, &b, 1,
	               &(struct fx_trace_opts){ .draft_layers = 1,
	                                        .target_layers = 8 });

	static const char *const pk[3] = { "count", "from", "times" };
	static const char *const pv[3] = { "1", "2", "2" };
	struct rig g;
	struct pvlog l;
	memset(&l, 0, sizeof l);
	RIG_OPEN(&g, .trace = path,
	         .preset = NPU_PIM_FREE "&verify_batches=1"
	                                "&npu.op_overhead_s=3e-6",
	         .policy_desc = &rig_script_policy, .pkeys = pk, .pvals = pv,
	         .np = 3, .drafter = rig_feedback_drafter(), .dkey = "k",
	         .dval = "2", .qcap = 6, .on_event = pv_event, .user = &l);
	rig_run(&g);
	const struct replay_metrics *m = replay_metrics(g.r);

	const double q = g.plat.queue_latency_s;
	const double sw = hw_switch_cost(g.plan, NULL);
	double d[8];
	for (unsigned p = 0; p < 8; p++)
		d[p] = rig_task(&g, HW_TASK_DRAFT, 1, P_LEN + p);
	const double t1 = d[0] + d[1];
	const double e1 = t1 + q + rig_task(&g, HW_TASK_VERIFY, 3, P_LEN + 2) +
	                  q;
	const double t2 = t1 + d[2] + d[3];
	const double t3 = t2 + sw +
	                  rig_task(&g, HW_TASK_PREVERIFY, 1, P_LEN + 3) + sw;
	const double t4 = t3 + d[4] + d[5];
	const double t5 = t4 + sw +
	                  rig_task(&g, HW_TASK_PREVERIFY, 1, P_LEN + 4) + sw;
	const double e2 = e1 + rig_task(&g, HW_TASK_VERIFY, 2, P_LEN + 4) + q;
	const double t6 = t5 + d[6] + d[7];
	const double t7 = e2 + d[4] + d[5];
	const double t8 = t7 + d[6] + d[7];
	const double e3 = t7 + q + rig_task(&g, HW_TASK_VERIFY, 3, P_LEN + 6) +
	                  q;
	const double e4 = e3 + rig_task(&g, HW_TASK_VERIFY, 2, P_LEN + 8) + q;
	/* the order the hand schedule assumes */
	cr_assert_lt(t3, e1, "PV1 ends before A's result");
	cr_assert(t4 < e1 && e1 < t5,
	          "A's result lands inside PV2: %.9g < "
	          "%.9g < %.9g",
	          t4, e1, t5);
	cr_assert_lt(t6, e2, "D is drafted before B's result");
	cr_assert_leq(t8 + q, e3, "F is ready when E's result comes");

	cr_assert_eq(m->preverify_tasks, 2);
	cr_assert_eq(m->preverified, 2);
	cr_assert_eq(m->preverify_rejections, 0);
	cr_assert_eq(l.n_pv, 2);
	cr_assert_eq(l.pv_out[0], REPLAY_OUT_ACCEPTED);
	cr_assert_eq(l.pv_out[1], REPLAY_OUT_NONE, "clipped to [4,4)");
	assert_close(l.pv_end[1], t5 - sw, "PV2 end");
	cr_assert_eq(m->switches, 4);
	cr_assert_eq(m->committed, 8);
	cr_assert_eq(m->drafted, 12);
	cr_assert_eq(m->accepted, 7);
	cr_assert_eq(m->wasted, 5);
	cr_assert_eq(m->batches, 6);
	cr_assert_eq(m->lookahead_batches, 4);
	cr_assert_eq(m->verifications, 4);
	assert_close(m->time_s, e4, "simulated time");
	check_events(&g, &l.sum, "pre-verify clipped");
	rig_close(&g);
}

/* On a single-device preset the same async policy serialises drafting and
 * verification on one device: fixed k=2 over four on-path tokens is
 *   d0 + d1 + v(3, P+2)   (commits p0, p1, bonus p2)
 *   + d3 + v(2, P+4)      (commits p3)
 * with no queue latency (nothing crosses devices) and no idle time. The
 * gpu preset's queue latency is 0, so the run is repeated with it set to
 * 1 ms: still nothing crosses devices, and nothing may change. */
ParameterizedTestParameters(hand, single_device_serialises)
{
	static int ms[] = { 0, 1 };
	return cr_make_param_array(int, ms, 2);
}

ParameterizedTest(int *queue_ms, hand, single_device_serialises)
{
	static const int acc[4] = { 1, 1, 1, 1 };
	struct fx_seq b;
	fx_seq_greedy(&b, 0, acc, 4);
	const char *path = fx_path("t.msgpack");
	fx_write_trace(path, &b, 1, NULL);

	struct rig g;
	RIG_OPEN(&g, .trace = path,
	         .preset = *queue_ms ? "gpu?queue_latency_s=1e-3" : "gpu",
	         .policy = "async", .drafter = "fixed", .dkey = "k",
	         .dval = "2");
	rig_run(&g);
	const struct replay_metrics *m = replay_metrics(g.r);
	double want = rig_task(&g, HW_TASK_DRAFT, 1, P_LEN + 0) +
	              rig_task(&g, HW_TASK_DRAFT, 1, P_LEN + 1) +
	              rig_task(&g, HW_TASK_VERIFY, 3, P_LEN + 2) +
	              rig_task(&g, HW_TASK_DRAFT, 1, P_LEN + 3) +
	              rig_task(&g, HW_TASK_VERIFY, 2, P_LEN + 4);
	cr_assert_eq(g.plat.n_dev, 1);
	cr_assert_eq(g.plat.queue_latency_s, *queue_ms * 1e-3);
	cr_assert_eq(m->committed, 4);
	assert_close(m->time_s, want, "simulated time");
	assert_close(m->busy_s[0], m->time_s, "device always busy");
	rig_close(&g);
}

/* A hand-built sampled sequence, 8 positions, seq id 0, P = 16:
 *   a_p        = .5   .75  .8   1    .7   .9   0    .3
 *   coin(1,0,p)= .034 .914 .877 .923 .725 .881 .232 .239
 *   coin(2,0,p)= .843 .738 .588 .138 .484 .142 .259 .276
 * (printed once with replay_coin; the test asserts each comparison used
 * below, so a change of the coin shows up as such). On path = coin < a_p,
 * a_p = 1 always, a_p = 0 never (p6: coin .232 would pass any a > .232):
 *   seed 1: on = 1 0 0 1 0 1 0 1
 *   seed 2: on = 0 1 1 1 1 1 0 1
 * sync, fixed k=2, seed 1 (walk: batch from t, accept the on-path run a,
 * t += a + 1):
 *   t=0 drafts p0,p1: a=1 (p1 off) -> commits p0 + correction p1, t=2
 *   t=2 drafts p2,p3: a=0          -> correction p2, t=3
 *   t=3 drafts p3,p4: a=1          -> p3 + correction p4, t=5
 *   t=5 drafts p5,p6: a=1          -> p5 + correction p6, t=7
 *   t=7 drafts p7 (N=8 caps it): a=1 -> p7, bonus clipped, t=8
 *   drafted 9 = accepted 4 + wasted 5; 5 batches, 5 verifications.
 *   Time: drafts at KV P + (0,1,2,3,3,4,5,6,7); verifications M=3 at KV
 *   P+2, P+4, P+5, P+7 and M=2 at P+8 (operator-level step times).
 * sync, fixed k=2, seed 2:
 *   t=0 p0,p1: a=0 -> correction p0, t=1 (both drafts wasted)
 *   t=1 p1,p2: a=2 -> bonus p3, t=4
 *   t=4 p4,p5: a=2 -> bonus p6 (the target's token: a_6 = 0 is moot), t=7
 *   t=7 p7: a=1 -> t=8
 *   drafted 7 = accepted 5 + wasted 2; 4 verifications.
 * async on npu-pim, fixed k=1, queue capacity 1, seed 1: one draft at C,
 * verified (M=2 at KV P+C+1) before the next may start:
 *   C=0: p0 on -> bonus p1, C=2; p2 off -> correction, C=3; p3 on -> C=5;
 *   p5 on -> C=7; p7 on -> C=8 (bonus clipped).
 *   drafted 5 = accepted 4 + wasted 1; 5 verifications. Each step is
 *   d(p) + q + v(2, P+p+1) + q for p in {0, 2, 3, 5, 7}. */
Test(hand, sampled_hand_computed)
{
	static const float a[8] = { 0.5f, 0.75f, 0.8f, 1.0f,
		                    0.7f, 0.9f,  0.0f, 0.3f };
	static const int on1[8] = { 1, 0, 0, 1, 0, 1, 0, 1 };
	static const int on2[8] = { 0, 1, 1, 1, 1, 1, 0, 1 };
	for (uint32_t p = 0; p < 8; p++) {
		if (a[p] <= 0.0f || a[p] >= 1.0f)
			continue;
		cr_assert_eq(replay_coin(1, 0, p) < (double)a[p], on1[p],
		             "seed 1 coin at p%u", p);
		cr_assert_eq(replay_coin(2, 0, p) < (double)a[p], on2[p],
		             "seed 2 coin at p%u", p);
	}
	cr_assert_gt(replay_coin(1, 0, 6), 0.2, "p6 would pass a_6 > .232");
	struct fx_seq b;
	fx_seq_sampled(&b, 0, a, 8);
	const char *path = fx_path("s.msgpack");
	fx_write_trace(path, &b, 1, &(struct fx_trace_opts){ .sampled = 1 });

	struct rig g;
	RIG_OPEN(&g, .trace = path, .preset = "npu-pim", .policy = "sync",
	         .drafter = "fixed", .dkey = "k", .dval = "2");
	rig_run(&g);
	const struct replay_metrics *m = replay_metrics(g.r);
	cr_assert_eq(m->committed, 8);
	cr_assert_eq(m->drafted, 9);
	cr_assert_eq(m->accepted, 4);
	cr_assert_eq(m->wasted, 5);
	cr_assert_eq(m->batches, 5);
	cr_assert_eq(m->verifications, 5);
	static const unsigned drafted_at[9] = { 0, 1, 2, 3, 3, 4, 5, 6, 7 };
	double want = 0;
	for (int i = 0; i < 9; i++)
		want += rig_step(&g, HW_TASK_DRAFT, 1, P_LEN + drafted_at[i]);
	want += rig_step(&g, HW_TASK_VERIFY, 3, P_LEN + 2);
	want += rig_step(&g, HW_TASK_VERIFY, 3, P_LEN + 4);
	want += rig_step(&g, HW_TASK_VERIFY, 3, P_LEN + 5);
	want += rig_step(&g, HW_TASK_VERIFY, 3, P_LEN + 7);
	want += rig_step(&g, HW_TASK_VERIFY, 2, P_LEN + 8);
	assert_close(m->time_s, want, "sync seed 1 time");
	rig_close(&g);

	RIG_OPEN(&g, .trace = path, .preset = "npu-pim", .policy = "sync",
	         .drafter = "fixed", .dkey = "k", .dval = "2", .seed = 2);
	rig_run(&g);
	m = replay_metrics(g.r);
	cr_assert_eq(m->committed, 8);
	cr_assert_eq(m->drafted, 7);
	cr_assert_eq(m->accepted, 5);
	cr_assert_eq(m->wasted, 2);
	cr_assert_eq(m->verifications, 4);
	rig_close(&g);

	RIG_OPEN(&g, .trace = path, .preset = "npu-pim", .policy = "async",
	         .drafter = "fixed", .dkey = "k", .dval = "1", .qcap = 1);
	rig_run(&g);
	m = replay_metrics(g.r);
	cr_assert_eq(m->committed, 8);
	cr_assert_eq(m->drafted, 5);
	cr_assert_eq(m->accepted, 4);
	cr_assert_eq(m->wasted, 1);
	cr_assert_eq(m->verifications, 5);
	cr_assert_eq(m->lookahead_batches, 0);
	static const unsigned steps[5] = { 0, 2, 3, 5, 7 };
	double q = g.plat.queue_latency_s;
	want = 0;
	for (int i = 0; i < 5; i++)
		want += rig_task(&g, HW_TASK_DRAFT, 1, P_LEN + steps[i]) + q +
		        rig_task(&g, HW_TASK_VERIFY, 2, P_LEN + steps[i] + 1) +
		        q;
	assert_close(m->time_s, want, "async seed 1 time");
	rig_close(&g);
}

/* A draft step slower than a verification pass: a 24-layer draft for a
 * 1-layer target, async on npu-pim, fixed k=4, N = 5, queue capacity 32.
 *   PIM drafts p0..p3 -> batch A closes at T1 = d0+d1+d2+d3 and starts
 *   look-ahead p4 (ends at T1 + d4). NPU verifies A from T1 + q at M=5, KV
 *   P+4, result E1 = T1 + q + v(5,P+4) + q < T1 + d4 (asserted): commits
 *   p0..p3 and the bonus p4, C = N = 5.
 *   The draft of p4 is in flight; it completes at T1 + d4 and nothing more
 *   is verified (C reached N). Simulated time T1 + d4.
 *   a_4 = 1: the draft matches the bonus, accepted; its batch B [4,5)
 *     closes and is reported verified (accepted 1, committed 0), no pass.
 *     drafted 5 = accepted 5; batches 2; verifications 1.
 *   a_4 = 0: the draft is wasted, its open batch stays empty and is
 *     reported discarded. drafted 5 = accepted 4 + wasted 1; batches 1. */
ParameterizedTestParameters(hand, draft_slower_than_verification)
{
	static int last[] = { 1, 0 };
	return cr_make_param_array(int, last, 2);
}

ParameterizedTest(int *a4, hand, draft_slower_than_verification)
{
	const int last = *a4;
	const int acc[5] = { 1, 1, 1, 1, last };
	struct fx_seq b;
	fx_seq_greedy(&b, 0, acc, 5);
	const char *path = fx_path("slow.msgpack");
	fx_write_trace(path, &b, 1,
	               &(struct fx_trace_opts){ .draft_layers = 24,
	                                        .target_layers = 1 });
	struct rig g;
	RIG_OPEN(&g, .trace = path, .preset = "npu-pim", .policy = "async",
	         .drafter = rig_feedback_drafter(), .dkey = "k", .dval = "4");
	rig_run(&g);
	const struct replay_metrics *m = replay_metrics(g.r);
	const double q = g.plat.queue_latency_s;
	double d[5];
	for (unsigned p = 0; p < 5; p++)
		d[p] = rig_task(&g, HW_TASK_DRAFT, 1, P_LEN + p);
	const double t1 = d[0] + d[1] + d[2] + d[3];
	const double e1 = t1 + q + rig_task(&g, HW_TASK_VERIFY, 5, P_LEN + 4) +
	                  q;
	cr_assert_lt(e1, t1 + d[4], "schedule assumption");
	cr_assert_eq(m->committed, 5);
	cr_assert_eq(m->verifications, 1, "a_4 = %d", last);
	cr_assert_eq(m->drafted, 5);
	cr_assert_eq(m->accepted, last ? 5u : 4u);
	cr_assert_eq(m->wasted, last ? 0u : 1u);
	cr_assert_eq(m->batches, last ? 2u : 1u);
	assert_close(m->time_s, t1 + d[4], "simulated time");
	cr_assert_eq(rig_counter(&g.dr, "verified"), last ? 2.0 : 1.0);
	cr_assert_eq(rig_counter(&g.dr, "verified_accepted"), last ? 5.0 : 4.0);
	cr_assert_eq(rig_counter(&g.dr, "discarded_batches"), last ? 0.0 : 1.0);
	cr_assert_eq(rig_counter(&g.dr, "discarded_open_batches"),
	             last ? 0.0 : 1.0);
	cr_assert_eq(rig_counter(&g.dr, "unresolved_batches"), 0);
	rig_close(&g);
}
