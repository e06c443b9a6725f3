/* test_engine_feedback.c - what the engine tells the drafter about each
 * batch (tests/feedback_drafter.c records it) against the run's metrics.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rig.h"

/* The drafter's feedback against the engine's metrics, over every policy
 * (the built-in three and the script policy pre-verifying one token after
 * every batch, to have pre-verify corrections) x preset, on a greedy and a
 * sampled capture, with the feedback drafter (fixed k=3). From engine.c:
 *
 * Where batch results come from. A closed batch ends in exactly one of:
 *  - a verified result (finish_verify: the batch was in a pass and starts
 *    at or before the pass's rejection/bonus position rpos), reporting its
 *    length then (shortened if a pre-verification truncated it);
 *  - a discarded result (in a pass but after rpos; or dropped by
 *    discard_after on a rejection, a bonus differing from the look-ahead
 *    token, or a pre-verify correction), also with its length then;
 *  - a result without a pass: the last pass of a sequence commits its
 *    bonus at N-1 and C reaches N while a look-ahead batch [N-1, N) is
 *    still queued; the engine reports it verified, accepted unless
 *    pre-verification replaced its token, committing nothing more.
 *    No closed batch is left without a result ("unresolved" stays 0).
 * discard_after also drops the open batch, whose tokens were never in a
 * closed batch; the drafter tells those apart (feedback_drafter.c). So
 *   batches      == verified + closed discarded + unresolved
 *   batch_tokens == verified_drafted + closed discarded tokens
 *                   + tokens pre-verification truncated + unresolved tokens
 * (exactly; the tempting verified_drafted + discarded_tokens >=
 * batch_tokens fails when a truncation or an unresolved batch outweighs
 * the discarded open tokens, as in preverify_hand_computed: 8 + 2 < 11).
 * Each pass gives at least batch 0 a verified result (rpos >= its start),
 * so verified >= verifications; sync passes verify one batch each and
 * never discard: verified == verifications == batches.
 *
 * Accepted. metrics.accepted counts a drafted position when a pass accepts
 * it inside [max(s, C), rpos), when a pass's bonus lands on a drafted
 * look-ahead token, or when a draft finishes at a position a bonus already
 * committed; a token pre-verification replaced (POS_TARGET) never counts.
 * A verified result's accepted is the batch's leading run from its own
 * start, min(rpos, end) - start, cut at a pre-verify correction. The
 * positions before C in that run are exactly the look-ahead tokens
 * accepted as an earlier bonus, so every accepted token is counted in its
 * own batch's result once, and replaced ones in none. The batch left
 * queued at the end reports its token at N-1, accepted as the final bonus
 * (0 if a pre-verification replaced it, which metrics do not count
 * either). Per sequence therefore accepted == verified_accepted.
 * Committed. A pass commits [C, rpos] (clipped at N); its batches' results
 * split that range by batch (the bonus or correction to the batch holding
 * rpos, or to the last batch when rpos == e), so the committed of the
 * verified results sum to the sequence's length. */
static double counter_delta(const struct plugin *p, const char *name,
                            double *prev)
{
	double v = rig_counter(p, name), d = v - *prev;
	*prev = v;
	return d;
}

struct fb_case {
	char trace[64], preset[16], policy[16];
};

ParameterizedTestParameters(feedback, drafter_feedback_matches_metrics)
{
	static const char *const policies[] = { "sync", "async", "ahasd",
		                                "script" };
	static const char *const presets[] = { "npu-pim", "gpu", "npu-lpddr5",
		                               "gpu-pim" };
	static const char *const traces[] = {
		"stories260K-skip3-greedy.msgpack",
		"stories260K-skip3-sampled.msgpack",
	};
	struct fb_case cases[2 * 4 * 4];
	size_t n = 0;
	for (int t = 0; t < 2; t++)
		for (int w = 0; w < 4; w++)
			for (int p = 0; p < 4; p++, n++) {
				struct fb_case *c = &cases[n];
				snprintf(c->trace, sizeof c->trace, "%s",
				         traces[t]);
				snprintf(c->preset, sizeof c->preset, "%s",
				         presets[w]);
				snprintf(c->policy, sizeof c->policy, "%s",
				         policies[p]);
			}
	return FX_PARAMS(struct fb_case, cases, n);
}

ParameterizedTest(struct fb_case *c, feedback, drafter_feedback_matches_metrics)
{
	static const char *const pk[2] = { "count", "from" };
	static const char *const pv[2] = { "1", "1" };
	char err[1024], who[256];
	snprintf(who, sizeof who, "%s %s %s", c->trace, c->preset, c->policy);
	const int script = !strcmp(c->policy, "script");
	struct rig g;
	RIG_OPEN(&g, .trace = rig_shipped(c->trace), .preset = c->preset,
	         .policy = script ? NULL : c->policy,
	         .policy_desc = script ? &rig_script_policy : NULL, .pkeys = pk,
	         .pvals = pv, .np = script ? 2 : 0,
	         .drafter = rig_feedback_drafter(), .dkey = "k", .dval = "3");
	struct replay_metrics m0 = *replay_metrics(g.r);
	double vacc = 0, vcom = 0, ut = 0, ub = 0;
	struct trace_seq s;
	int rc;
	while ((rc = trace_reader_next(g.rd, &s, err, sizeof err)) == 1) {
		cr_assert_eq(replay_sequence(g.r, &s, NULL, err, sizeof err), 0,
		             "%s", err);
		const struct replay_metrics *m = replay_metrics(g.r);
		const double dacc = (double)(m->accepted - m0.accepted);
		const double dcom = (double)(m->committed - m0.committed);
		const uint64_t drej = m->preverify_rejections -
		                      m0.preverify_rejections;
		const double dvacc = counter_delta(&g.dr, "verified_accepted",
		                                   &vacc);
		const double dvcom = counter_delta(&g.dr, "verified_committed",
		                                   &vcom);
		const double dut = counter_delta(&g.dr, "unresolved_tokens",
		                                 &ut);
		const double dub = counter_delta(&g.dr, "unresolved_batches",
		                                 &ub);
		cr_assert_eq(dvcom, dcom,
		             "%s seq %u: committed %g, in "
		             "results %g",
		             who, s.id, dcom, dvcom);
		cr_assert(dub == 0 && dut == 0,
		          "%s seq %u: %g "
		          "unresolved batches, %g tokens",
		          who, s.id, dub, dut);
		cr_assert_eq(dacc, dvacc,
		             "%s seq %u: accepted %g, in "
		             "results %g (pre-verify rejections %llu)",
		             who, s.id, dacc, dvacc, (unsigned long long)drej);
		m0 = *m;
	}
	cr_assert_eq(rc, 0, "%s", err);
	replay_finish(g.r);
	const struct replay_metrics *m = replay_metrics(g.r);
	const double verified = rig_counter(&g.dr, "verified");
	const double closed_disc = rig_counter(&g.dr, "discarded_batches") -
	                           rig_counter(&g.dr, "discarded_open_batches");
	const double closed_disc_tok = rig_counter(&g.dr, "discarded_tokens") -
	                               rig_counter(&g.dr,
	                                           "discarded_open_tokens");
	const double trunc = rig_counter(&g.dr, "truncated_tokens");
	cr_assert_eq(rig_counter(&g.dr, "unknown_results"), 0, "%s", who);
	/* every token shows a probability as its top-1 (after a rejection
	 * the stand-in e^-H); a draft whose chain was dropped while it ran is
	 * never shown */
	cr_assert_eq(rig_counter(&g.dr, "top1_out_of_range"), 0, "%s", who);
	cr_assert_gt(rig_counter(&g.dr, "tokens"), 0, "%s", who);
	cr_assert_leq(rig_counter(&g.dr, "tokens"), (double)m->drafted, "%s",
	              who);
	cr_assert_eq(rig_counter(&g.dr, "oom"), 0, "%s", who);
	cr_assert_eq(rig_counter(&g.dr, "closed_batches"), (double)m->batches,
	             "%s", who);
	cr_assert_eq(rig_counter(&g.dr, "closed_tokens"),
	             (double)m->batch_tokens, "%s", who);
	cr_assert_eq((double)m->batches, verified + closed_disc + ub,
	             "%s: batches %llu, verified %g, discarded %g, "
	             "unresolved %g",
	             who, (unsigned long long)m->batches, verified, closed_disc,
	             ub);
	cr_assert_eq((double)m->batch_tokens,
	             rig_counter(&g.dr, "verified_drafted") + closed_disc_tok +
	                     trunc + ut,
	             "%s", who);
	cr_assert_geq(verified, (double)m->verifications, "%s", who);
	cr_assert_leq(ub, (double)m->sequences, "%s", who);
	if (rig_is_sync(&g)) {
		cr_assert_eq(verified, (double)m->verifications, "%s", who);
		cr_assert_eq(verified, (double)m->batches, "%s", who);
		cr_assert_eq(rig_counter(&g.dr, "discarded_batches"), 0, "%s",
		             who);
		cr_assert_eq(ub, 0, "%s", who);
	}
	rig_close(&g);
}

/* Pre-verify corrections do occur in that grid (the script policy on the
 * sampled capture); truncated batches are checked by the hand-computed
 * pre-verification (test_engine_hand.c). */
Test(feedback, script_policy_makes_preverify_corrections)
{
	static const char *const pk[2] = { "count", "from" };
	static const char *const pv[2] = { "1", "1" };
	struct rig g;
	RIG_OPEN(&g, .trace = rig_shipped("stories260K-skip3-sampled.msgpack"),
	         .preset = "npu-pim", .policy_desc = &rig_script_policy,
	         .pkeys = pk, .pvals = pv, .np = 2,
	         .drafter = rig_feedback_drafter(), .dkey = "k", .dval = "3");
	rig_run(&g);
	cr_assert_gt(replay_metrics(g.r)->preverify_rejections, 0);
	rig_close(&g);
}
