/* test_engine.c - the replay engine on hand-built traces whose answers are
 * worked out in the comments, and invariants over every built-in policy x
 * drafter x preset.
 *
 * Times are checked against the hardware model's own task costs at the
 * exact (tokens M, KV length L) each task must run at: the engine's job is
 * to schedule the right tasks in the right order; the per-operator numbers
 * are tested in test_hw.c.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"
#include "hw.h"
#include "plugin.h"
#include "trace.h"

#define P_LEN 16 /* prompt length of the hand-built sequences */
#define K 4      /* continuation length */

static char tmpdir[256];

static void setup(void)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/ahasd-test-engine-XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
}

static void teardown(void)
{
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(engine, .init = setup, .fini = teardown);

static void tiny_model(struct trace_model *m, const char *name,
                       uint32_t layers)
{
	memset(m, 0, sizeof *m);
	snprintf(m->name, sizeof m->name, "%s", name);
	m->dim = 64;
	m->hidden_dim = 172;
	m->n_layers = layers;
	m->n_heads = 8;
	m->n_kv_heads = 4;
	m->vocab_size = 512;
	m->seq_len = 512;
	m->weight_bits = 8;
	cr_assert_eq(trace_model_llama_ops(m), 0);
}

/* A greedy sequence from an acceptance pattern; entropies low where the
 * draft is right, high where it is wrong; continuation rows for every
 * rejected position. */
struct seqbuf {
	float ent[64], top1[64], acc[64], cont[64 * K];
	uint32_t cpos[64];
	struct trace_seq s;
};

static void make_seq(struct seqbuf *b, uint32_t id, const int *accept,
                     uint32_t n)
{
	memset(b, 0, sizeof *b);
	uint32_t nc = 0;
	for (uint32_t p = 0; p < n; p++) {
		b->acc[p] = (float)accept[p];
		b->ent[p] = accept[p] ? 0.5f : 2.5f;
		b->top1[p] = accept[p] ? 0.9f : 0.3f;
		if (!accept[p]) {
			b->cpos[nc] = p;
			for (uint32_t j = 0; j < K; j++)
				b->cont[nc * K + j] = 3.0f + 0.1f * (float)j;
			nc++;
		}
	}
	b->s = (struct trace_seq){ .id = id, .prompt_len = P_LEN, .n = n,
	                           .entropy = b->ent, .top1 = b->top1,
	                           .accept = b->acc, .n_cont = nc,
	                           .cont_pos = b->cpos,
	                           .cont_entropy = b->cont };
}

static void write_trace(const char *path, struct seqbuf *seqs, size_t n)
{
	struct trace_header h = { .version = TRACE_FORMAT_VERSION,
	                          .lookahead = K, .top_p = 1.0,
	                          .synthetic = 1 };
	tiny_model(&h.draft, "tiny-draft", 3);
	tiny_model(&h.target, "tiny-target", 5);
	trace_header_add_prov(&h, "tool", "test_engine");
	char err[512];
	struct trace_writer *w = NULL;
	cr_assert_eq(trace_writer_open(&w, path, &h, err, sizeof err), 0, "%s",
	             err);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(trace_writer_add(w, &seqs[i].s, err, sizeof err), 0,
		             "%s", err);
	cr_assert_eq(trace_writer_close(&w, err, sizeof err), 0, "%s", err);
	trace_header_clear(&h);
}

/* A loaded run: trace, plan and plugins. */
struct rig {
	struct trace_reader *rd;
	struct hw_platform plat;
	struct hw_plan *plan;
	struct plugin pol, dr;
	struct replay *r;
};

static void rig_open(struct rig *g, const char *trace, const char *preset,
                     const char *policy, const char *drafter,
                     const char *dkey, const char *dval, uint32_t qcap,
                     replay_event_fn fn, void *user)
{
	char err[1024];
	memset(g, 0, sizeof *g);
	cr_assert_eq(trace_reader_open(&g->rd, trace, err, sizeof err), 0, "%s",
	             err);
	const struct trace_header *h = trace_reader_header(g->rd);
	cr_assert_eq(hw_platform_load(&g->plat, preset, err, sizeof err), 0,
	             "%s", err);
	cr_assert_eq(hw_plan_create(&g->plan, &g->plat, &h->draft, &h->target,
	                            err, sizeof err), 0, "%s", err);
	cr_assert_eq(plugin_load(&g->pol, policy, AHASD_PLUGIN_POLICY, NULL,
	                         NULL, 0, err, sizeof err), 0, "%s", err);
	const char *k[1] = { dkey }, *v[1] = { dval };
	cr_assert_eq(plugin_load(&g->dr, drafter, AHASD_PLUGIN_DRAFTER, k, v,
	                         dkey ? 1 : 0, err, sizeof err), 0, "%s", err);
	struct replay_config cfg = { .plan = g->plan, .policy = &g->pol,
	                             .drafter = &g->dr, .seed = 1,
	                             .lookahead = h->lookahead,
	                             .queue_capacity = qcap, .max_draft = 64,
	                             .on_event = fn, .event_user = user };
	cr_assert_eq(replay_create(&g->r, &cfg, err, sizeof err), 0, "%s", err);
}

static void rig_run(struct rig *g)
{
	char err[1024];
	struct trace_seq s;
	int rc;
	while ((rc = trace_reader_next(g->rd, &s, err, sizeof err)) == 1)
		cr_assert_eq(replay_sequence(g->r, &s, NULL, err, sizeof err), 0,
		             "%s", err);
	cr_assert_eq(rc, 0, "%s", err);
	replay_finish(g->r);
}

static void rig_close(struct rig *g)
{
	replay_free(&g->r);
	plugin_unload(&g->dr);
	plugin_unload(&g->pol);
	hw_plan_free(&g->plan);
	trace_reader_close(&g->rd);
}

static double split(struct rig *g, enum hw_task t, unsigned m, unsigned L)
{
	struct hw_cost c;
	hw_step_cost_split(g->plan, t, m, L, &c);
	return c.time_s;
}

static double task(struct rig *g, enum hw_task t, unsigned m, unsigned L)
{
	struct hw_cost c;
	hw_task_cost(g->plan, t, m, L, &c);
	return c.time_s;
}

static void assert_within(double got, double want, double rel,
                          const char *what)
{
	cr_assert(fabs(got - want) <= rel * fabs(want) + 1e-18,
	          "%s: got %.17g, want %.17g", what, got, want);
}

static void assert_close(double got, double want, const char *what)
{
	assert_within(got, want, 1e-12, what);
}

/* fixed k=4, sync, 12 greedy tokens, a_6 = 0:
 *   batch 1 drafts p0..p3 (KV 16..19), all on path; verify M=5 at KV 20:
 *     commits p0..p3 + bonus p4 -> C = 5, accepted 4.
 *   batch 2 drafts p5..p8; p6 is wrong; verify M=5 at KV 25: accepts p5,
 *     corrects p6 -> C = 7; p6, p7, p8 wasted (3).
 *   batch 3 drafts p7..p10 (max_len = min(4, 12-7)); all on path; verify
 *     M=5 at KV 27: commits p7..p10 + bonus p11 -> C = 12 = N.
 * drafted 12 = accepted 9 + wasted 3; 3 batches, 3 verifications.
 * Draft step at position p runs at KV length P + p. */
Test(engine, sync_fixed4_hand_computed)
{
	static const int acc[12] = { 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1 };
	struct seqbuf b;
	make_seq(&b, 0, acc, 12);
	char path[300];
	snprintf(path, sizeof path, "%s/t.msgpack", tmpdir);
	write_trace(path, &b, 1);

	struct rig g;
	rig_open(&g, path, "npu-pim", "sync", "fixed", "k", "4", 32, NULL,
	         NULL);
	rig_run(&g);
	const struct replay_metrics *m = replay_metrics(g.r);
	cr_assert_eq(m->committed, 12);
	cr_assert_eq(m->drafted, 12);
	cr_assert_eq(m->accepted, 9);
	cr_assert_eq(m->wasted, 3);
	cr_assert_eq(m->batches, 3);
	cr_assert_eq(m->verifications, 3);

	static const unsigned drafted_at[12] = { 0, 1, 2, 3, 5, 6, 7, 8,
	                                         7, 8, 9, 10 };
	double want = 0;
	for (int i = 0; i < 12; i++)
		want += split(&g, HW_TASK_DRAFT, 1, P_LEN + drafted_at[i]);
	want += split(&g, HW_TASK_VERIFY, 5, P_LEN + 4);
	want += split(&g, HW_TASK_VERIFY, 5, P_LEN + 9);
	want += split(&g, HW_TASK_VERIFY, 5, P_LEN + 11);
	assert_close(m->time_s, want, "simulated time");
	for (unsigned d = 0; d < g.plat.n_dev; d++)
		assert_close(m->busy_s[d] + m->idle_s[d], m->time_s, "busy+idle");
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
 * drafted 3, accepted 3, wasted 0, two batches, no look-ahead batch. */
Test(engine, async_capacity_and_bonus_hand_computed)
{
	static const int acc[4] = { 1, 1, 1, 1 };
	struct seqbuf b;
	make_seq(&b, 0, acc, 4);
	char path[300];
	snprintf(path, sizeof path, "%s/t.msgpack", tmpdir);
	write_trace(path, &b, 1);

	struct rig g;
	rig_open(&g, path, "npu-pim", "async", "fixed", "k", "2", 2, NULL,
	         NULL);
	rig_run(&g);
	const struct replay_metrics *m = replay_metrics(g.r);
	double q = g.plat.queue_latency_s;
	double t1 = task(&g, HW_TASK_DRAFT, 1, P_LEN + 0) +
	            task(&g, HW_TASK_DRAFT, 1, P_LEN + 1);
	double e1 = t1 + q + task(&g, HW_TASK_VERIFY, 3, P_LEN + 2) + q;
	double t2 = e1 + task(&g, HW_TASK_DRAFT, 1, P_LEN + 3);
	double e2 = t2 + q + task(&g, HW_TASK_VERIFY, 2, P_LEN + 4) + q;
	cr_assert_eq(m->committed, 4);
	cr_assert_eq(m->drafted, 3);
	cr_assert_eq(m->accepted, 3);
	cr_assert_eq(m->wasted, 0);
	cr_assert_eq(m->batches, 2);
	cr_assert_eq(m->lookahead_batches, 0);
	assert_close(m->time_s, e2, "simulated time");
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
 *   NPU: D verified [4,6) at M=3, KV P+6, result E4 = E3 + v(3,P+6) + q
 *     (D was ready long before): commits p5, bonus clipped at N.
 * drafted 8 = accepted 5 (p0, p2, p3, p4, p5) + wasted 3; batches 4 of
 * which 2 look-ahead (B, D). The test checks the PIM is the faster side,
 * which the hand schedule assumes. */
Test(engine, async_lookahead_waste_hand_computed)
{
	static const int acc[6] = { 1, 0, 1, 1, 1, 1 };
	struct seqbuf b;
	make_seq(&b, 0, acc, 6);
	char path[300];
	snprintf(path, sizeof path, "%s/t.msgpack", tmpdir);
	write_trace(path, &b, 1);

	struct rig g;
	rig_open(&g, path, "npu-pim", "async", "fixed", "k", "2", 4, NULL,
	         NULL);
	rig_run(&g);
	const struct replay_metrics *m = replay_metrics(g.r);
	double q = g.plat.queue_latency_s;
	double d[6];
	for (int p = 0; p < 6; p++)
		d[p] = task(&g, HW_TASK_DRAFT, 1, P_LEN + (unsigned)p);
	double va = task(&g, HW_TASK_VERIFY, 3, P_LEN + 2);
	double vc = task(&g, HW_TASK_VERIFY, 3, P_LEN + 4);
	double vd = task(&g, HW_TASK_VERIFY, 3, P_LEN + 6);
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
	rig_close(&g);
}

/* On a single-device preset the same async policy serialises drafting and
 * verification on one device: fixed k=2 over four on-path tokens is
 *   d0 + d1 + v(3, P+2)   (commits p0, p1, bonus p2)
 *   + d3 + v(2, P+4)      (commits p3)
 * with no queue latency (nothing crosses devices) and no idle time. */
Test(engine, single_device_serialises)
{
	static const int acc[4] = { 1, 1, 1, 1 };
	struct seqbuf b;
	make_seq(&b, 0, acc, 4);
	char path[300];
	snprintf(path, sizeof path, "%s/t.msgpack", tmpdir);
	write_trace(path, &b, 1);

	struct rig g;
	rig_open(&g, path, "gpu", "async", "fixed", "k", "2", 32, NULL, NULL);
	rig_run(&g);
	const struct replay_metrics *m = replay_metrics(g.r);
	double want = task(&g, HW_TASK_DRAFT, 1, P_LEN + 0) +
	              task(&g, HW_TASK_DRAFT, 1, P_LEN + 1) +
	              task(&g, HW_TASK_VERIFY, 3, P_LEN + 2) +
	              task(&g, HW_TASK_DRAFT, 1, P_LEN + 3) +
	              task(&g, HW_TASK_VERIFY, 2, P_LEN + 4);
	cr_assert_eq(g.plat.n_dev, 1);
	cr_assert_eq(m->committed, 4);
	assert_close(m->time_s, want, "simulated time");
	assert_close(m->busy_s[0], m->time_s, "device always busy");
	rig_close(&g);
}

/* Events: per device, tasks never overlap and busy time is the sum of
 * their lengths (idle events excluded). */
struct evlog {
	double last_end[HW_MAX_DEV];
	double busy[HW_MAX_DEV];
	unsigned n;
	int overlap;
};

static void log_event(void *user, const struct replay_event *ev)
{
	struct evlog *l = user;
	l->n++;
	if (ev->start_s < l->last_end[ev->device] - 1e-12)
		l->overlap = 1;
	l->last_end[ev->device] = ev->end_s;
	if (ev->kind != REPLAY_EV_IDLE && ev->kind != REPLAY_EV_TRANSFER)
		l->busy[ev->device] += ev->end_s - ev->start_s;
}

static const char *default_trace(void)
{
	static char path[1024];
	snprintf(path, sizeof path, "%s/traces/stories260K-skip3-greedy.msgpack",
	         getenv("AHASD_SOURCE_ROOT"));
	return path;
}

Test(engine, events_tile_the_devices)
{
	static const char *const policies[] = { "sync", "async", "ahasd" };
	for (int i = 0; i < 3; i++) {
		struct evlog l = { 0 };
		struct rig g;
		rig_open(&g, default_trace(), "npu-pim", policies[i], "adaedl",
		         NULL, NULL, 32, log_event, &l);
		rig_run(&g);
		const struct replay_metrics *m = replay_metrics(g.r);
		cr_assert_gt(l.n, 0);
		cr_assert_not(l.overlap, "%s: overlapping events", policies[i]);
		for (unsigned d = 0; d < g.plat.n_dev; d++) {
			/* a sum of (end - start) over thousands of events
			 * rounds differently from a sum of durations */
			assert_within(l.busy[d], m->busy_s[d], 1e-7,
			              "event busy");
			assert_close(l.last_end[d], m->time_s, "last event end");
		}
		rig_close(&g);
	}
}

/* Invariants over every built-in policy x drafter x preset on the default
 * trace, and bit-identical metrics across two runs. */
Test(engine, invariants_all_policies_drafters_presets, .timeout = 120)
{
	static const char *const policies[] = { "sync", "async", "ahasd" };
	static const char *const drafters[] = { "fixed", "specdecpp", "svip",
	                                        "adaedl", "banditspec" };
	static const char *const presets[] = { "npu-pim", "npu-lpddr5", "gpu",
	                                       "gpu-pim" };
	char err[512];
	struct trace_reader *rd = NULL;
	cr_assert_eq(trace_reader_open(&rd, default_trace(), err, sizeof err), 0,
	             "%s", err);
	struct trace_seq s;
	uint64_t tokens = 0;
	while (trace_reader_next(rd, &s, err, sizeof err) == 1)
		tokens += s.n;
	trace_reader_close(&rd);

	for (int w = 0; w < 4; w++)
		for (int p = 0; p < 3; p++)
			for (int d = 0; d < 5; d++) {
				struct replay_metrics first = { 0 };
				for (int rep = 0; rep < 2; rep++) {
					struct rig g;
					rig_open(&g, default_trace(), presets[w],
					         policies[p], drafters[d], NULL, NULL,
					         32, NULL, NULL);
					rig_run(&g);
					struct replay_metrics m =
						*replay_metrics(g.r);
					const char *who = drafters[d];
					cr_assert_eq(m.committed, tokens, "%s/%s/%s",
					             presets[w], policies[p], who);
					cr_assert_leq(m.accepted, m.drafted);
					cr_assert_eq(m.accepted + m.wasted, m.drafted);
					cr_assert_gt(m.energy_j, 0);
					cr_assert_gt(m.time_s, 0);
					for (unsigned i = 0; i < g.plat.n_dev; i++) {
						/* rounding only: busy is summed per
						 * task, time along the clock */
						cr_assert_geq(m.idle_s[i],
						              -1e-12 * m.time_s);
						assert_close(m.busy_s[i] + m.idle_s[i],
						             m.time_s, "busy+idle");
					}
					if (rep == 0)
						first = m;
					else
						cr_assert_eq(memcmp(&first, &m,
						                    sizeof m), 0,
						             "%s/%s/%s not deterministic",
						             presets[w], policies[p],
						             who);
					rig_close(&g);
				}
			}
}

/* Sampled traces: the coin of (seed, seq, p) decides, so the same seed
 * gives the same run under every policy's schedule, and a different seed
 * gives different coins. replay_coin is uniform enough that the mean of
 * 100000 coins is within 0.01 of 0.5 (sd of the mean is 0.0009). */
Test(engine, coins_are_counter_based)
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

/* Greedy captures, sync policy, fixed k: the replay must walk the trace as
 * speculative decoding does. From committed position t the batch drafts
 * positions t..min(t+k, N)-1; a = the run of a_p = 1 starting at t inside
 * it; the verification commits a + 1 tokens (the bonus past the end of the
 * sequence is dropped), so t += a + 1. Accepted = sum of a, verifications
 * = number of steps, committed = N. A bonus never lands on a drafted
 * position, so accepted is not simply the count of a_p = 1 positions. */
static void greedy_walk(const struct trace_seq *s, uint32_t k,
                        uint64_t *accepted, uint64_t *verifications)
{
	uint32_t t = 0;
	while (t < s->n) {
		uint32_t end = t + k < s->n ? t + k : s->n, a = 0;
		while (t + a < end && s->accept[t + a] == 1.0f)
			a++;
		*accepted += a;
		(*verifications)++;
		t += a + 1;
	}
}

Test(engine, greedy_captures_follow_the_walk, .timeout = 120)
{
	static const char *const traces[] = {
		"stories260K-skip3-greedy.msgpack",
		"stories260K-int4-greedy.msgpack",
		"aidreams260K-skip2-greedy.msgpack",
	};
	char path[1024], err[512], kv[8];
	for (size_t i = 0; i < sizeof traces / sizeof *traces; i++) {
		snprintf(path, sizeof path, "%s/traces/%s",
		         getenv("AHASD_SOURCE_ROOT"), traces[i]);
		for (uint32_t k = 1; k <= 4; k++) {
			uint64_t acc = 0, ver = 0, n = 0;
			struct trace_reader *rd = NULL;
			cr_assert_eq(trace_reader_open(&rd, path, err, sizeof err),
			             0, "%s", err);
			cr_assert_eq(trace_reader_header(rd)->sampled, 0);
			struct trace_seq s;
			while (trace_reader_next(rd, &s, err, sizeof err) == 1) {
				greedy_walk(&s, k, &acc, &ver);
				n += s.n;
			}
			trace_reader_close(&rd);

			snprintf(kv, sizeof kv, "%u", k);
			struct rig g;
			rig_open(&g, path, "npu-pim", "sync", "fixed", "k", kv, 32,
			         NULL, NULL);
			rig_run(&g);
			const struct replay_metrics *m = replay_metrics(g.r);
			cr_assert_eq(m->committed, n, "%s k=%u", traces[i], k);
			cr_assert_eq(m->accepted, acc, "%s k=%u: accepted %llu, "
			             "walk %llu", traces[i], k,
			             (unsigned long long)m->accepted,
			             (unsigned long long)acc);
			cr_assert_eq(m->verifications, ver, "%s k=%u", traces[i],
			             k);
			rig_close(&g);
		}
	}
}
