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
static const char *const drafters[] = { "fixed", "specdecpp", "svip", "adaedl",
	                                "banditspec" };
static const char *const presets[] = { "npu-pim", "npu-lpddr5", "gpu",
	                               "gpu-pim" };
#define N_POLICIES (sizeof policies / sizeof *policies)
#define N_DRAFTERS (sizeof drafters / sizeof *drafters)
#define N_PRESETS  (sizeof presets / sizeof *presets)

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
	cr_assert_leq(m->committed,
	              m->accepted + m->verifications + m->preverify_rejections,
	              "%s: committed %llu, accepted "
	              "%llu, verifications %llu",
	              who, (unsigned long long)m->committed,
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
	snprintf(who, sizeof who, "%s/%s/%s", c->preset, c->policy, c->drafter);
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

/* ---- conservation --------------------------------------------------------
 * What a run reports must add up, whatever the schedule:
 *   energy:  energy_j = dynamic_j + static_j; static_j = sum over devices
 *            of static power x the run's time (a GPU entry stands for
 *            `count` GPUs), whether a device is busy or not; the devices'
 *            energies sum to energy_j, each at least its static share.
 *   time:    the sequences' times sum to the run's; each device's busy
 *            time lies within it and busy + idle is all of it.
 *   tokens:  the sequences' counters sum to the run's; committed is the
 *            trace's token count; drafted = accepted + wasted.
 *   per sequence: energy = its dynamic energy + static power x its time,
 *            and the dynamic parts sum to the run's dynamic_j.
 *   waste:   every wasted token is one draft step thrown away, charged
 *            that step's time and dynamic energy: wasted_draft_s and
 *            wasted_draft_j lie between `wasted` times the cheapest and
 *            the dearest draft step at the KV lengths the trace reaches.
 * Static power is computed from the preset's fields (rig_static_w), not
 * through hw_device_static_w(), so a wrong count there shows too. */
static void assert_rel(double got, double want, double rel, const char *who,
                       const char *what)
{
	cr_assert(fabs(got - want) <= rel * fabs(want) + 1e-300,
	          "%s: %s: got %.17g, want %.17g", who, what, got, want);
}

/* The cheapest and the dearest draft step (time, dynamic energy) at KV
 * lengths lo..hi, as the engine costs them in this mode. */
static void draft_step_range(struct rig *g, unsigned lo, unsigned hi,
                             double t[2], double j[2])
{
	t[0] = j[0] = INFINITY;
	t[1] = j[1] = 0;
	for (unsigned L = lo; L <= hi; L++) {
		struct hw_cost c;
		if (rig_is_sync(g))
			hw_step_cost(g->plan, HW_TASK_DRAFT, 1, L, &c);
		else
			hw_task_cost(g->plan, HW_TASK_DRAFT, 1, L, &c);
		double e = 0;
		for (unsigned d = 0; d < g->plat.n_dev; d++)
			e += c.energy_dev_j[d];
		t[0] = fmin(t[0], c.time_s);
		t[1] = fmax(t[1], c.time_s);
		j[0] = fmin(j[0], e);
		j[1] = fmax(j[1], e);
	}
}

#define CONS_REL 1e-9

ParameterizedTestParameters(invariants, conservation)
{
	size_t n;
	struct cell *cells = grid(&n);
	return FX_PARAMS(struct cell, cells, n);
}

ParameterizedTest(struct cell *c, invariants, conservation)
{
	char who[96], err[1024];
	snprintf(who, sizeof who, "%s/%s/%s", c->preset, c->policy, c->drafter);
	struct rig g;
	RIG_OPEN(&g, .trace = rig_shipped(DEFAULT_TRACE), .preset = c->preset,
	         .policy = c->policy, .drafter = c->drafter);
	const double pw = rig_static_w_all(&g);
	cr_assert_gt(pw, 0, "%s: every preset has static power", who);

	struct replay_seq_result sum = { 0 };
	double seq_time = 0, seq_energy = 0, seq_dynamic = 0;
	uint64_t tokens = 0;
	unsigned kv_lo = UINT32_MAX, kv_hi = 0;
	struct trace_seq s;
	int rc;
	while ((rc = trace_reader_next(g.rd, &s, err, sizeof err)) == 1) {
		struct replay_seq_result q;
		cr_assert_eq(replay_sequence(g.r, &s, &q, err, sizeof err), 0,
		             "%s: %s", who, err);
		cr_assert_eq(q.seq, s.id, "%s", who);
		cr_assert_eq(q.prompt_len, s.prompt_len, "%s", who);
		cr_assert_eq(q.committed, s.n, "%s seq %u", who, s.id);
		cr_assert_eq(q.drafted, q.accepted + q.wasted, "%s seq %u", who,
		             s.id);
		cr_assert_gt(q.time_s, 0, "%s seq %u", who, s.id);
		/* its energy: its own dynamic part + static power x its time */
		const double dyn = q.energy_j - pw * q.time_s;
		cr_assert_geq(dyn, -CONS_REL * q.energy_j,
		              "%s seq %u: energy "
		              "%.17g below static %.17g",
		              who, s.id, q.energy_j, pw * q.time_s);
		seq_dynamic += dyn;
		seq_time += q.time_s;
		seq_energy += q.energy_j;
		sum.committed += q.committed;
		sum.drafted += q.drafted;
		sum.accepted += q.accepted;
		sum.wasted += q.wasted;
		sum.preverified += q.preverified;
		sum.batches += q.batches;
		sum.verifications += q.verifications;
		tokens += s.n;
		kv_lo = s.prompt_len < kv_lo ? s.prompt_len : kv_lo;
		kv_hi = s.prompt_len + s.n > kv_hi ? s.prompt_len + s.n : kv_hi;
	}
	cr_assert_eq(rc, 0, "%s", err);
	replay_finish(g.r);
	const struct replay_metrics *m = replay_metrics(g.r);

	/* energy */
	assert_rel(m->energy_j, m->dynamic_j + m->static_j, 1e-12, who,
	           "energy = dynamic + static");
	assert_rel(m->static_j, pw * m->time_s, 1e-12, who,
	           "static = static power x time");
	double dev_sum = 0;
	for (unsigned d = 0; d < g.plat.n_dev; d++) {
		const double st = rig_static_w(&g, d) * m->time_s;
		cr_assert_geq(m->dev_energy_j[d], st * (1 - CONS_REL),
		              "%s dev %u: energy %.17g below its static %.17g",
		              who, d, m->dev_energy_j[d], st);
		dev_sum += m->dev_energy_j[d];
	}
	assert_rel(dev_sum, m->energy_j, CONS_REL, who,
	           "devices' energies sum to energy_j");
	assert_rel(seq_energy, m->energy_j, CONS_REL, who,
	           "sequences' energies sum to energy_j");
	assert_rel(seq_dynamic, m->dynamic_j, 1e-6, who,
	           "sequences' dynamic parts sum to dynamic_j");

	/* time */
	assert_rel(seq_time, m->time_s, CONS_REL, who,
	           "sequences' times sum to time_s");
	for (unsigned d = 0; d < g.plat.n_dev; d++) {
		cr_assert_leq(m->busy_s[d], m->time_s * (1 + CONS_REL),
		              "%s dev %u", who, d);
		assert_rel(m->busy_s[d] + m->idle_s[d], m->time_s, CONS_REL,
		           who, "busy + idle = time");
	}

	/* tokens */
	cr_assert_eq(m->committed, tokens, "%s", who);
	cr_assert_eq(sum.committed, m->committed, "%s", who);
	cr_assert_eq(sum.drafted, m->drafted, "%s", who);
	cr_assert_eq(sum.accepted, m->accepted, "%s", who);
	cr_assert_eq(sum.wasted, m->wasted, "%s", who);
	cr_assert_eq(sum.preverified, m->preverified, "%s", who);
	cr_assert_eq(sum.batches, m->batches, "%s", who);
	cr_assert_eq(sum.verifications, m->verifications, "%s", who);
	cr_assert_eq(m->drafted, m->accepted + m->wasted, "%s", who);
	cr_assert_eq(m->sequences, 64, "%s", who);

	/* waste: one draft step each, in time and in joules */
	double t[2], j[2];
	draft_step_range(&g, kv_lo, kv_hi, t, j);
	const double w = (double)m->wasted;
	cr_assert_gt(w, 0, "%s: the capture has rejections", who);
	cr_assert(m->wasted_draft_s >= w * t[0] * (1 - CONS_REL) &&
	                  m->wasted_draft_s <= w * t[1] * (1 + CONS_REL),
	          "%s: wasted_draft_s %.17g for %g drafts of %.17g..%.17g s",
	          who, m->wasted_draft_s, w, t[0], t[1]);
	cr_assert(m->wasted_draft_j >= w * j[0] * (1 - CONS_REL) &&
	                  m->wasted_draft_j <= w * j[1] * (1 + CONS_REL),
	          "%s: wasted_draft_j %.17g for %g drafts of %.17g..%.17g J",
	          who, m->wasted_draft_j, w, j[0], j[1]);
	cr_assert_leq(m->wasted_draft_j, m->dynamic_j, "%s", who);
	rig_close(&g);
}

/* ---- the cost cache ------------------------------------------------------
 * The engine keeps task and step costs across sequences (cost_at: 16384
 * slots, a slot picked by the top 14 bits of a hash of kind, tokens m and
 * KV length). A slot must serve only the KV length it was computed at:
 * a sequence replays the same after another as alone.
 * Two sequences of one schedule, prompts 16 and 16 + 10946. 10946 (F21) x
 * 0x9e3779b1 is 82466 mod 2^32, under the 2^18 a slot spans, so about
 * 1 - 82466 / 2^18 = 69 % of the second sequence's KV lengths hash to the
 * slot of the first's KV length 10946 below, with the same kind and m.
 * The second sequence's costs are those of KV lengths near 11000 (the
 * tiny models read 3.5 MB of KV cache there, against 100 kB of weights):
 * a slot served at the wrong KV length shows in its time and energy. */
/* sync (step costs) and async (task costs): no state of theirs or of
 * fixed's outlives a sequence (AHASD's PHT and TVC tables do) */
static const char *const cache_policies[] = { "sync", "async" };

static void cache_setup(void)
{
	fx_tmpdir_make("cache");
}

ParameterizedTestParameters(invariants, cost_cache_serves_its_kv_length)
{
	static int idx[] = { 0, 1 };
	return cr_make_param_array(int, idx, 2);
}

ParameterizedTest(int *pi, invariants, cost_cache_serves_its_kv_length,
                  .init = cache_setup, .fini = fx_tmpdir_remove)
{
	static const int acc[24] = { 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 0,
		                     1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1 };
	const struct fx_trace_opts o = { .seq_len = 16384 };
	const char *policy = cache_policies[*pi];
	struct fx_seq b[2];
	struct replay_seq_result both[2], alone[2];
	size_t n;

	fx_seq_greedy(&b[0], 0, acc, 24);
	fx_seq_greedy(&b[1], 1, acc, 24);
	b[1].s.prompt_len = FX_P_LEN + 10946;
	fx_write_trace(fx_path("both.msgpack"), b, 2, &o);
	fx_write_trace(fx_path("first.msgpack"), &b[0], 1, &o);
	fx_write_trace(fx_path("second.msgpack"), &b[1], 1, &o);

	const char *traces[3] = { fx_path("both.msgpack"),
		                  fx_path("first.msgpack"),
		                  fx_path("second.msgpack") };
	for (int t = 0; t < 3; t++) {
		struct rig g;
		RIG_OPEN(&g, .trace = traces[t], .preset = "npu-pim",
		         .policy = policy, .drafter = "fixed", .dkey = "k",
		         .dval = "4");
		rig_run_results(&g, t == 0 ? both : &alone[t - 1],
		                t == 0 ? 2 : 1, &n);
		cr_assert_eq(n, t == 0 ? 2u : 1u);
		rig_close(&g);
	}
	for (int s = 0; s < 2; s++) {
		char what[64];
		snprintf(what, sizeof what, "%s, sequence %d time", policy, s);
		assert_within(both[s].time_s, alone[s].time_s, 1e-9, what);
		snprintf(what, sizeof what, "%s, sequence %d energy", policy,
		         s);
		assert_within(both[s].energy_j, alone[s].energy_j, 1e-9, what);
		cr_expect_eq(both[s].verifications, alone[s].verifications);
	}
	/* and the KV lengths matter: the second sequence costs more */
	cr_expect_gt(alone[1].time_s, 1.5 * alone[0].time_s, "%s", policy);
}
