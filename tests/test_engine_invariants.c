/* test_engine_invariants.c - what must hold for every run, checked over
 * every built-in policy x drafter x preset on the default capture: the
 * events tile the devices, the counters agree with each other, and runs
 * are deterministic.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rig.h"

static const char *const policies[] = { "sync", "async", "ahasd" };
static const char *const drafters[] = { "fixed", "specdecpp", "svip",
                                        "adaedl", "banditspec" };
static const char *const presets[] = { "npu-pim", "npu-lpddr5", "gpu",
                                       "gpu-pim" };
#define N_POLICIES (sizeof policies / sizeof *policies)
#define N_DRAFTERS (sizeof drafters / sizeof *drafters)
#define N_PRESETS (sizeof presets / sizeof *presets)

/* One run of the grid (strings inline: fixtures.h, FX_PARAMS). */
struct cell {
	char preset[16], policy[16], drafter[16];
};

static struct cell mkcell(const char *preset, const char *policy,
                          const char *drafter)
{
	struct cell c;
	snprintf(c.preset, sizeof c.preset, "%s", preset);
	snprintf(c.policy, sizeof c.policy, "%s", policy);
	snprintf(c.drafter, sizeof c.drafter, "%s", drafter);
	return c;
}

static struct cell *grid(size_t *n)
{
	static struct cell cells[N_PRESETS * N_POLICIES * N_DRAFTERS];
	size_t k = 0;
	for (size_t w = 0; w < N_PRESETS; w++)
		for (size_t p = 0; p < N_POLICIES; p++)
			for (size_t d = 0; d < N_DRAFTERS; d++)
				cells[k++] = mkcell(presets[w], policies[p],
				                    drafters[d]);
	*n = k;
	return cells;
}

/* The event checks of check_events() on a capture, every policy. */
ParameterizedTestParameters(invariants, events_tile_the_devices)
{
	struct cell cells[N_POLICIES];
	for (size_t p = 0; p < N_POLICIES; p++)
		cells[p] = mkcell("npu-pim", policies[p], "adaedl");
	return FX_PARAMS(struct cell, cells, N_POLICIES);
}

ParameterizedTest(struct cell *c, invariants, events_tile_the_devices)
{
	struct evsum l = { 0 };
	struct rig g;
	RIG_OPEN(&g, .trace = rig_shipped(DEFAULT_TRACE), .preset = c->preset,
	         .policy = c->policy, .drafter = c->drafter,
	         .on_event = sum_event, .user = &l);
	rig_run(&g);
	check_events(&g, &l, c->policy);
	rig_close(&g);
}

/* Counters against each other. (drafted == accepted + wasted and
 * committed == N are enforced by replay_sequence itself, which fails the
 * run with -EPROTO otherwise; rig_run asserts success, so they need no
 * assertion here.) Every committed token is a drafted token accepted by a
 * verification, or the one correction/bonus a verification adds, or the
 * target's token a pre-verification put in place of a wrong draft; a
 * drafted token is accepted at most once and only at a committed
 * position. So
 *   accepted <= committed <= accepted + verifications + pv rejections,
 * the upper bound reached exactly when no bonus is clipped at the end of a
 * sequence nor a position committed twice. Each verification takes at
 * least one closed batch, each closed batch is verified at most once:
 * verifications <= batches; every verification commits at least one
 * token: verifications <= committed. Operator-level sync verifies every
 * batch alone as soon as it closes, drafts nothing ahead and never
 * pre-verifies: verifications == batches, no look-ahead, no pre-verify.
 * Pre-verify rejections need pre-verify tasks, which need tokens. */
static void check_counts(const struct replay_metrics *m, int sync,
                         const char *who)
{
	cr_assert_leq(m->accepted, m->committed, "%s", who);
	cr_assert_leq(m->committed, m->accepted + m->verifications +
	              m->preverify_rejections, "%s: committed %llu, accepted "
	              "%llu, verifications %llu", who,
	              (unsigned long long)m->committed,
	              (unsigned long long)m->accepted,
	              (unsigned long long)m->verifications);
	cr_assert_leq(m->verifications, m->batches, "%s", who);
	cr_assert_leq(m->verifications, m->committed, "%s", who);
	cr_assert_geq(m->verifications, m->sequences, "%s", who);
	cr_assert_leq(m->lookahead_batches, m->batches, "%s", who);
	cr_assert_leq(m->preverify_rejections, m->preverify_tasks, "%s", who);
	cr_assert_leq(m->preverify_tasks, m->preverified, "%s", who);
	if (sync) {
		cr_assert_eq(m->verifications, m->batches, "%s", who);
		cr_assert_eq(m->lookahead_batches, 0, "%s", who);
		cr_assert_eq(m->preverified, 0, "%s", who);
		cr_assert_eq(m->switches, 0, "%s", who);
	}
}

static uint64_t trace_tokens(const char *path)
{
	char err[512];
	struct trace_reader *rd = NULL;
	struct trace_seq s;
	uint64_t tokens = 0;
	cr_assert_eq(trace_reader_open(&rd, path, err, sizeof err), 0, "%s",
	             err);
	while (trace_reader_next(rd, &s, err, sizeof err) == 1)
		tokens += s.n;
	trace_reader_close(&rd);
	return tokens;
}

/* Invariants over every built-in policy x drafter x preset on the default
 * trace, and bit-identical metrics across two runs. */
ParameterizedTestParameters(invariants, every_policy_drafter_preset)
{
	size_t n;
	struct cell *cells = grid(&n);
	return FX_PARAMS(struct cell, cells, n);
}

ParameterizedTest(struct cell *c, invariants, every_policy_drafter_preset)
{
	const char *trace = rig_shipped(DEFAULT_TRACE);
	const uint64_t tokens = trace_tokens(trace);
	char who[96];
	snprintf(who, sizeof who, "%s/%s/%s", c->preset, c->policy,
	         c->drafter);
	struct replay_metrics first = { 0 };
	for (int rep = 0; rep < 2; rep++) {
		struct rig g;
		struct evsum l = { 0 };
		RIG_OPEN(&g, .trace = trace, .preset = c->preset,
		         .policy = c->policy, .drafter = c->drafter,
		         .on_event = sum_event, .user = &l);
		rig_run(&g);
		struct replay_metrics m = *replay_metrics(g.r);
		cr_assert_eq(m.committed, tokens, "%s", who);
		check_counts(&m, rig_is_sync(&g), who);
		cr_assert_gt(m.energy_j, 0);
		cr_assert_gt(m.time_s, 0);
		/* busy vs events, idle >= 0 */
		check_events(&g, &l, who);
		if (rep == 0)
			first = m;
		else
			cr_assert_eq(memcmp(&first, &m, sizeof m), 0,
			             "%s not deterministic", who);
		rig_close(&g);
	}
}

/* Sampled traces: the coin of (seed, seq, p) decides, so the same seed
 * gives the same run under every policy's schedule, and a different seed
 * gives different coins. replay_coin is uniform enough that the mean of
 * 100000 coins is within 0.01 of 0.5 (sd of the mean is 0.0009). */
Test(invariants, coins_are_counter_based)
{
	cr_assert_eq(replay_coin(7, 3, 11), replay_coin(7, 3, 11));
	cr_assert_neq(replay_coin(7, 3, 11), replay_coin(8, 3, 11));
	cr_assert_neq(replay_coin(7, 3, 11), replay_coin(7, 4, 11));
	double sum = 0;
	for (uint32_t p = 0; p < 100000; p++) {
		double c = replay_coin(1, 0, p);
		cr_assert(c >= 0.0 && c < 1.0);
		sum += c;
	}
	cr_assert(fabs(sum / 100000 - 0.5) < 0.01);
}
