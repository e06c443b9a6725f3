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
/* npu-pim without bus contention (the PIM's ranks neither hold the NPU's
 * channels nor block its reads): hand schedules of the scheduling logic.
 * Contention has hand-worked tests of its own. */
#define NPU_PIM_FREE "npu-pim?pim_blocking=0&pim_bus_block=0"
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

/* The arrays of one hand-built sequence. */
struct seqbuf {
	float ent[64], top1[64], acc[64], cont[64 * K];
	uint32_t cpos[64];
	struct trace_seq s;
};

/* A sequence with acceptance a_p as given: entropy and top-1 follow a_p
 * (low entropy where the draft is right), continuation rows where a_p < 1. */
static void make_sampled_seq(struct seqbuf *b, uint32_t id, const float *a,
                             uint32_t n)
{
	memset(b, 0, sizeof *b);
	uint32_t nc = 0;
	for (uint32_t p = 0; p < n; p++) {
		b->acc[p] = a[p];
		b->ent[p] = 0.5f + 2.0f * (1.0f - a[p]);
		b->top1[p] = 0.9f - 0.6f * (1.0f - a[p]);
		if (a[p] < 1.0f) {
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

/* A greedy sequence: a_p = accept[p] (0 or 1); entropy 0.5 / 2.5 nats and
 * top-1 0.9 / 0.3 on accepted / rejected positions. */
static void make_seq(struct seqbuf *b, uint32_t id, const int *accept,
                     uint32_t n)
{
	float a[64];
	for (uint32_t p = 0; p < n; p++)
		a[p] = (float)accept[p];
	make_sampled_seq(b, id, a, n);
}

/* Write seqs as a trace of a tiny model pair with the given layer counts
 * (the draft's and the target's), greedy or sampled. */
static void write_trace_models(const char *path, struct seqbuf *seqs,
                               size_t n, int sampled, unsigned draft_layers,
                               unsigned target_layers)
{
	struct trace_header h = { .version = TRACE_FORMAT_VERSION,
	                          .lookahead = K, .top_p = 1.0,
	                          .sampled = sampled,
	                          .temperature = sampled ? 1.0 : 0.0,
	                          .synthetic = 1 };
	tiny_model(&h.draft, "tiny-draft", draft_layers);
	tiny_model(&h.target, "tiny-target", target_layers);
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

static void write_trace_mode(const char *path, struct seqbuf *seqs,
                             size_t n, int sampled)
{
	write_trace_models(path, seqs, n, sampled, 3, 5);
}

static void write_trace(const char *path, struct seqbuf *seqs, size_t n)
{
	write_trace_mode(path, seqs, n, 0);
}

/* A loaded run: trace, plan and plugins. */
struct rig {
	struct trace_reader *rd;
	struct hw_platform plat;
	struct hw_plan *plan;
	struct plugin pol, dr;
	struct replay *r;
};

/* The policy is loaded by name, or (pol_desc non-NULL) made from a
 * descriptor in this file through the host's plugin_create with the np
 * given parameters. The drafter is a name or a path. */
static void rig_open_full(struct rig *g, const char *trace,
                          const char *preset, const char *policy,
                          const struct ahasd_plugin *pol_desc,
                          const char *const *pkeys,
                          const char *const *pvals, size_t np,
                          const char *drafter, const char *dkey,
                          const char *dval, uint32_t qcap, uint64_t seed,
                          replay_event_fn fn, void *user)
{
	char err[1024];
	memset(g, 0, sizeof *g);
	cr_assert_eq(trace_reader_open(&g->rd, trace, err, sizeof err), 0, "%s",
	             err);
	const struct trace_header *h = trace_reader_header(g->rd);
	/* "NAME?key=value&key=value": a preset with overrides */
	char pbuf[512];
	snprintf(pbuf, sizeof pbuf, "%s", preset);
	char *ovr = strchr(pbuf, '?');
	if (ovr)
		*ovr++ = '\0';
	cr_assert_eq(hw_platform_load(&g->plat, pbuf, err, sizeof err), 0,
	             "%s", err);
	for (char *kv = ovr ? strtok(ovr, "&") : NULL; kv; kv = strtok(NULL, "&")) {
		char *eq = strchr(kv, '=');
		cr_assert_not_null(eq, "%s", kv);
		*eq = '\0';
		cr_assert_eq(hw_platform_set(&g->plat, kv, eq + 1, err, sizeof err),
		             0, "%s", err);
	}
	cr_assert_eq(hw_plan_create(&g->plan, &g->plat, &h->draft, &h->target, err, sizeof err), 0, "%s", err);
	if (pol_desc) {
		g->pol.desc = pol_desc;
		snprintf(g->pol.path, sizeof g->pol.path, "(test_engine.c)");
		cr_assert_eq(plugin_create(&g->pol, pkeys, pvals, np, err,
		                           sizeof err), 0, "%s", err);
	} else {
		cr_assert_eq(plugin_load(&g->pol, policy, AHASD_PLUGIN_POLICY,
		                         NULL, NULL, 0, err, sizeof err), 0,
		             "%s", err);
	}
	const char *k[1] = { dkey }, *v[1] = { dval };
	cr_assert_eq(plugin_load(&g->dr, drafter, AHASD_PLUGIN_DRAFTER, k, v,
	                         dkey ? 1 : 0, err, sizeof err), 0, "%s", err);
	struct replay_config cfg = { .plan = g->plan, .policy = &g->pol,
	                             .drafter = &g->dr, .seed = seed,
	                             .lookahead = h->lookahead,
	                             .queue_capacity = qcap, .max_draft = 64,
	                             .on_event = fn, .event_user = user };
	cr_assert_eq(replay_create(&g->r, &cfg, err, sizeof err), 0, "%s", err);
}

static void rig_open_seed(struct rig *g, const char *trace,
                          const char *preset, const char *policy,
                          const char *drafter, const char *dkey,
                          const char *dval, uint32_t qcap, uint64_t seed,
                          replay_event_fn fn, void *user)
{
	rig_open_full(g, trace, preset, policy, NULL, NULL, NULL, 0, drafter,
	              dkey, dval, qcap, seed, fn, user);
}

static void rig_open(struct rig *g, const char *trace, const char *preset,
                     const char *policy, const char *drafter,
                     const char *dkey, const char *dval, uint32_t qcap,
                     replay_event_fn fn, void *user)
{
	rig_open_seed(g, trace, preset, policy, drafter, dkey, dval, qcap, 1,
	              fn, user);
}

static int rig_is_sync(const struct rig *g)
{
	return g->pol.desc->policy->exec_mode(g->pol.state) ==
	       AHASD_EXEC_OPERATOR_SYNC;
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
	hw_step_cost(g->plan, t, m, L, &c);
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

/* Events, summed per device lane by kind. The engine's busy_s is summed
 * from task durations as tasks start and idle_s is time - busy, so
 * busy + idle == time holds by construction; what can fail is the
 * agreement between the metrics and the timeline drawn by the events.
 *   task-level (async) modes: draft, verify, pre-verify and switch events
 *     are the busy time; idle events fill every gap, so busy events + idle
 *     events tile [0, time] on every lane, with no transfer events.
 *   operator-level sync (engine.c sync_step): each step's share on each
 *     device is drawn one device after another, then the cross-device
 *     transfer time on the verify device's lane; transfers count as busy
 *     on no device (idle_s includes them). Lanes other than the verify
 *     lane tile as in async. On the verify lane, once a transfer is drawn
 *     the time its device waited while later devices drew their shares
 *     gets no event (on gpu-pim about a quarter of the run), so there
 *     only busy events == busy_s and idle + transfer events <= idle_s.
 * Tolerances are relative to the run's time: each event's end - start is
 * rounded at the magnitude of the absolute clock, thousands of them on a
 * capture. */
struct evsum {
	double last_end[HW_MAX_DEV];
	double busy[HW_MAX_DEV], idle[HW_MAX_DEV], xfer[HW_MAX_DEV];
	double wasted_s;         /* draft events whose outcome is wasted */
	uint64_t wasted_n;
	unsigned n;
	int overlap, bad_kind;
};

static void sum_event(void *user, const struct replay_event *ev)
{
	struct evsum *l = user;
	const double len = ev->end_s - ev->start_s;
	l->n++;
	if (ev->device < 0 || ev->device >= HW_MAX_DEV || len < 0) {
		l->bad_kind = 1;
		return;
	}
	if (ev->start_s < l->last_end[ev->device] - 1e-12)
		l->overlap = 1;
	l->last_end[ev->device] = ev->end_s;
	if (ev->kind == REPLAY_EV_DRAFT && ev->outcome == REPLAY_OUT_WASTED) {
		l->wasted_s += len;
		l->wasted_n++;
	}
	switch (ev->kind) {
	case REPLAY_EV_DRAFT:
	case REPLAY_EV_VERIFY:
	case REPLAY_EV_PREVERIFY:
	case REPLAY_EV_SWITCH:
	case REPLAY_EV_OFFLOAD:
		l->busy[ev->device] += len;
		break;
	case REPLAY_EV_TRANSFER:
		l->xfer[ev->device] += len;
		break;
	case REPLAY_EV_IDLE:
		l->idle[ev->device] += len;
		break;
	default:
		l->bad_kind = 1;
	}
}

#define EV_REL 1e-9

static void check_events(const struct rig *g, const struct evsum *l,
                         const char *who)
{
	const struct replay_metrics *m = replay_metrics(g->r);
	const int sync = rig_is_sync(g);
	const int vd = hw_task_device(g->plan, HW_TASK_VERIFY);
	const double tol = EV_REL * m->time_s;
	cr_assert_gt(l->n, 0, "%s: no events", who);
	cr_assert_not(l->bad_kind, "%s: event of unknown kind or device", who);
	cr_assert_not(l->overlap, "%s: overlapping events", who);
	/* A draft's outcome is final when its event is drawn (after F every
	 * chain token is off path), so the wasted draft events are exactly
	 * the wasted tokens, and their time is wasted_draft_s. (Sync draws a
	 * step as one event per device share, without its transfer.) */
	if (!sync) {
		cr_assert_eq(l->wasted_n, m->wasted, "%s: wasted draft events "
		             "%llu, wasted %llu", who,
		             (unsigned long long)l->wasted_n,
		             (unsigned long long)m->wasted);
		cr_assert(fabs(l->wasted_s - m->wasted_draft_s) <= tol,
		          "%s: wasted draft events %.17g s, wasted_draft_s "
		          "%.17g", who, l->wasted_s, m->wasted_draft_s);
	}
	cr_assert_geq(m->wasted_draft_j, 0.0);
	cr_assert((m->wasted > 0) == (m->wasted_draft_s > 0),
	          "%s: %llu wasted, %.17g s", who,
	          (unsigned long long)m->wasted, m->wasted_draft_s);
	for (unsigned d = 0; d < g->plat.n_dev; d++) {
		const double ev_time = l->busy[d] + l->idle[d] + l->xfer[d];
		cr_assert_geq(m->idle_s[d], -tol, "%s dev %u: idle < 0", who, d);
		cr_assert(fabs(l->busy[d] - m->busy_s[d]) <= tol,
		          "%s dev %u: busy events %.17g, busy_s %.17g", who, d,
		          l->busy[d], m->busy_s[d]);
		cr_assert(fabs(l->last_end[d] - m->time_s) <= tol,
		          "%s dev %u: last event ends at %.17g, time %.17g", who,
		          d, l->last_end[d], m->time_s);
		if (sync && d == (unsigned)vd) {
			/* transfers are busy on no device: idle_s holds them */
			cr_assert(fabs(l->idle[d] + l->xfer[d] - m->idle_s[d])
			          <= tol, "%s dev %u: idle+transfer events "
			          "%.17g, idle_s %.17g", who, d,
			          l->idle[d] + l->xfer[d], m->idle_s[d]);
			cr_assert(fabs(ev_time - m->time_s) <= tol,
			          "%s dev %u: events cover %.17g of %.17g s", who,
			          d, ev_time, m->time_s);
			continue;
		}
		cr_assert(l->xfer[d] == 0, "%s dev %u: transfer event off the "
		          "verify lane or in a task-level run", who, d);
		cr_assert(fabs(l->idle[d] - m->idle_s[d]) <= tol,
		          "%s dev %u: idle events %.17g, idle_s %.17g", who, d,
		          l->idle[d], m->idle_s[d]);
		cr_assert(fabs(ev_time - m->time_s) <= tol,
		          "%s dev %u: events cover %.17g of %.17g s", who, d,
		          ev_time, m->time_s);
	}
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
	struct evsum l = { 0 };
	rig_open(&g, path, "npu-pim", "sync", "fixed", "k", "4", 32, sum_event,
	         &l);
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
	/* the same 15 steps give each device's busy time: its share of
	 * every step (transfers are busy on neither device) */
	static const unsigned verified_at[3] = { 4, 9, 11 };
	double want = 0, busy[HW_MAX_DEV] = { 0 };
	struct hw_cost c;
	for (int i = 0; i < 15; i++) {
		if (i < 12)
			hw_step_cost(g.plan, HW_TASK_DRAFT, 1,
			                   P_LEN + drafted_at[i], &c);
		else
			hw_step_cost(g.plan, HW_TASK_VERIFY, 5,
			                   P_LEN + verified_at[i - 12], &c);
		want += c.time_s;
		for (unsigned d = 0; d < g.plat.n_dev; d++)
			busy[d] += c.busy_s[d];
	}
	assert_close(m->time_s, want, "simulated time");
	for (unsigned d = 0; d < g.plat.n_dev; d++) {
		cr_assert_gt(busy[d], 0, "both devices take part in a step");
		assert_close(m->busy_s[d], busy[d], "busy per device");
		assert_close(m->idle_s[d], want - busy[d], "idle per device");
	}
	check_events(&g, &l, "sync k=4");
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
	rig_open(&g, path, NPU_PIM_FREE, "async", "fixed", "k", "2", 2, NULL,
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
 *   NPU: D verified [4,6) at M=2, KV P+6: p4 is committed already, so
 *     the pass feeds p4 and the draft p5 (not D's length + 1). Result
 *     E4 = E3 + v(2,P+6) + q (D was ready long before): commits p5, bonus
 *     clipped at N.
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
	rig_open(&g, path, NPU_PIM_FREE "&pim.mem_bw=4096e9", "async", "fixed",
	         "k", "2", 4, NULL,
	         NULL);
	rig_run(&g);
	const struct replay_metrics *m = replay_metrics(g.r);
	double q = g.plat.queue_latency_s;
	double d[6];
	for (int p = 0; p < 6; p++)
		d[p] = task(&g, HW_TASK_DRAFT, 1, P_LEN + (unsigned)p);
	double va = task(&g, HW_TASK_VERIFY, 3, P_LEN + 2);
	double vc = task(&g, HW_TASK_VERIFY, 3, P_LEN + 4);
	double vd = task(&g, HW_TASK_VERIFY, 2, P_LEN + 6);
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
Test(engine, aau_offload_occupies_the_npu)
{
	static const int acc[4] = { 1, 1, 1, 1 };
	struct seqbuf b;
	make_seq(&b, 0, acc, 4);
	char path[300];
	snprintf(path, sizeof path, "%s/t.msgpack", tmpdir);
	write_trace(path, &b, 1);

	for (int aau = 0; aau < 2; aau++) {
		struct rig g;
		struct evsum l;
		memset(&l, 0, sizeof l);
		rig_open(&g, path, aau ? NPU_PIM_FREE "&pim.mem_bw=4096e9&npu.mem_bw=1e9"
		                       : NPU_PIM_FREE "&pim.mem_bw=4096e9&npu.mem_bw=1e9"
		                                      "&aau=0",
		         "async", "fixed", "k", "2", 4, sum_event, &l);
		rig_run(&g);
		const struct replay_metrics *m = replay_metrics(g.r);
		const double q = g.plat.queue_latency_s;
		double d[4], a[4];
		for (unsigned p = 0; p < 4; p++) {
			d[p] = task(&g, HW_TASK_DRAFT, 1, P_LEN + p);
			a[p] = aux_of(&g, p);
			if (aau)
				cr_assert_eq(a[p], 0);
			else
				cr_assert_gt(a[p], 0);
		}
		const double va = task(&g, HW_TASK_VERIFY, 3, P_LEN + 2);
		const double vb = task(&g, HW_TASK_VERIFY, 2, P_LEN + 4);
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
		assert_close(m->busy_s[vd], a[0] + a[1] + a[2] + a[3] + va + vb +
		             2 * q, "NPU busy");
		assert_close(m->offload_s, a[0] + a[1] + a[2] + a[3], "offload_s");
		check_events(&g, &l, aau ? "aau" : "no aau");
		rig_close(&g);
	}
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
Test(engine, contention_slows_the_verification)
{
	static const int acc[4] = { 1, 1, 1, 1 };
	struct seqbuf b;
	make_seq(&b, 0, acc, 4);
	char path[300];
	snprintf(path, sizeof path, "%s/t.msgpack", tmpdir);
	write_trace(path, &b, 1);

	struct rig g;
	rig_open(&g, path, "npu-pim?pim.mem_bw=4096e9", "async", "fixed", "k",
	         "2", 4, NULL, NULL);
	rig_run(&g);
	const struct replay_metrics *m = replay_metrics(g.r);
	const double q = g.plat.queue_latency_s;
	double d[4];
	for (unsigned p = 0; p < 4; p++)
		d[p] = task(&g, HW_TASK_DRAFT, 1, P_LEN + p);
	const double t_1 = task(&g, HW_TASK_VERIFY, 3, P_LEN + 2) + q;
	const double t_d = while_drafting(&g, 3, P_LEN + 2) + q;
	const double vb = task(&g, HW_TASK_VERIFY, 2, P_LEN + 4);
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
Test(engine, verify_grouping_option)
{
	static const int acc[4] = { 1, 1, 1, 1 };
	struct seqbuf b;
	make_seq(&b, 0, acc, 4);
	char path[300];
	snprintf(path, sizeof path, "%s/t.msgpack", tmpdir);
	write_trace(path, &b, 1);
	for (int all = 0; all < 2; all++) {
		struct rig g;
		rig_open(&g, path, all ? NPU_PIM_FREE "&pim.mem_bw=4096e9"
		                                      "&verify_batches=0"
		                       : NPU_PIM_FREE "&pim.mem_bw=4096e9",
		         "async", "fixed", "k", "1", 4, NULL, NULL);
		rig_run(&g);
		const struct replay_metrics *m = replay_metrics(g.r);
		const double q = g.plat.queue_latency_s;
		const double t1 = task(&g, HW_TASK_DRAFT, 1, P_LEN);
		const double e1 = t1 + q + task(&g, HW_TASK_VERIFY, 2, P_LEN + 1) +
		                  q;
		cr_assert_lt(t1 + task(&g, HW_TASK_DRAFT, 1, P_LEN + 1) +
		             task(&g, HW_TASK_DRAFT, 1, P_LEN + 2) +
		             task(&g, HW_TASK_DRAFT, 1, P_LEN + 3) + q, e1,
		             "schedule assumption");
		double want;
		if (all)
			want = e1 + task(&g, HW_TASK_VERIFY, 3, P_LEN + 4) + q;
		else
			want = e1 + task(&g, HW_TASK_VERIFY, 1, P_LEN + 2) + q +
			       task(&g, HW_TASK_VERIFY, 1, P_LEN + 3) + q;
		cr_assert_eq(m->committed, 4);
		cr_assert_eq(m->verifications, all ? 2 : 3);
		cr_assert_eq(m->accepted, 4);
		assert_close(m->time_s, want, "simulated time");
		rig_close(&g);
	}
}

/* The synchronous baseline on npu-pim: the draft model on the PIM, the
 * target on the NPU, each waiting for the other. fixed k=2 over six greedy
 * tokens on path: batches [0,2) [3,5) (each verification commits a
 * bonus), then [6,6)... N = 6: rounds (p0 p1 | v(3,P+2)), (p3 p4 |
 * v(3,P+5)); the bonus at 5 ends it. Per round the PIM's share of the
 * latency is (d_a + d_b) / (d_a + d_b + v); the run records the min,
 * mean and max over rounds, and the NPU is busy exactly in its
 * verifications. */
Test(engine, sync_places_models_and_records_pim_share)
{
	static const int acc[6] = { 1, 1, 1, 1, 1, 1 };
	struct seqbuf b;
	make_seq(&b, 0, acc, 6);
	char path[300];
	snprintf(path, sizeof path, "%s/t.msgpack", tmpdir);
	write_trace(path, &b, 1);
	struct rig g;
	rig_open(&g, path, "npu-pim", "sync", "fixed", "k", "2", 32, NULL, NULL);
	rig_run(&g);
	const struct replay_metrics *m = replay_metrics(g.r);
	double d[6];
	for (unsigned p = 0; p < 6; p++)
		d[p] = task(&g, HW_TASK_DRAFT, 1, P_LEN + p);
	const double v1 = task(&g, HW_TASK_VERIFY, 3, P_LEN + 2);
	const double v2 = task(&g, HW_TASK_VERIFY, 3, P_LEN + 5);
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

/* A scheduling policy with fixed decisions, for hand-computed schedules of
 * pre-verification (AHASD's TVC decides by timing, which a hand schedule
 * cannot follow). Task-level async; after the closed batches number
 * from .. from+times-1 of each sequence (1-based) it answers PREVERIFY
 * with `count` tokens, after every other batch DRAFT. It lives in this
 * file and is made through the host's plugin_create (parameter checks
 * and create as for a loaded plugin); the engine sees only the
 * descriptor and the state, as with a dlopen()ed one. */
struct script_policy {
	uint32_t count, from, times, closed;
	uint64_t preverify_decisions;
};

static int script_create(void **st, const struct ahasd_create_args *args,
                         char *err, size_t errlen)
{
	const char *const *keys = args->keys, *const *values = args->values;
	const size_t n = args->n; /* every key of script_params, defaults in */
	struct script_policy *s = calloc(1, sizeof *s);
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		char *end = NULL;
		unsigned long v = strtoul(values[i], &end, 10);
		if (end == values[i] || *end || v > UINT32_MAX) {
			snprintf(err, errlen, "%s: bad value '%s'", keys[i],
			         values[i]);
			free(s);
			return -1;
		}
		if (!strcmp(keys[i], "count"))
			s->count = (uint32_t)v;
		else if (!strcmp(keys[i], "from"))
			s->from = (uint32_t)v;
		else
			s->times = (uint32_t)v;
	}
	*st = s;
	return 0;
}

static void script_destroy(void *st)
{
	free(st);
}

static int script_counter(void *st, uint32_t i, const char **name,
                          double *value)
{
	const struct script_policy *s = st;
	if (i > 0)
		return 0;
	*name = "preverify_decisions";
	*value = (double)s->preverify_decisions;
	return 1;
}

static uint32_t script_mode(void *st)
{
	(void)st;
	return AHASD_EXEC_TASK_ASYNC;
}

static void script_begin_sequence(void *st, const struct ahasd_seq_info *q)
{
	struct script_policy *s = st;
	(void)q;
	s->closed = 0;
}

static void script_after_batch(void *st, const struct ahasd_host_view *v,
                               const struct ahasd_batch_info *b,
                               struct ahasd_decision *d)
{
	struct script_policy *s = st;
	(void)v;
	(void)b;
	s->closed++;
	if (s->closed >= s->from && s->closed - s->from < s->times) {
		d->next = AHASD_NEXT_PREVERIFY;
		d->count = s->count;
		s->preverify_decisions++;
	} else {
		d->next = AHASD_NEXT_DRAFT;
	}
}

static const struct ahasd_param script_params[] = {
	{ "count", "1", "tokens per pre-verification" },
	{ "from", "1", "first closed batch (1-based) followed by one" },
	{ "times", "4294967295", "pre-verifications per sequence" },
	{ NULL, NULL, NULL },
};

static const struct ahasd_policy_hooks script_hooks = {
	.struct_size = sizeof(struct ahasd_policy_hooks),
	.exec_mode = script_mode,
	.begin_sequence = script_begin_sequence,
	.after_batch = script_after_batch,
};

static const struct ahasd_plugin script_policy = {
	.abi_version = AHASD_PLUGIN_ABI_VERSION,
	.struct_size = sizeof(struct ahasd_plugin),
	.kind = AHASD_PLUGIN_POLICY,
	.name = "script",
	.version = "1.0",
	.description = "test policy: pre-verify after fixed batches",
	.params = script_params,
	.create = script_create,
	.destroy = script_destroy,
	.counter = script_counter,
	.policy = &script_hooks,
};

/* The feedback drafter (tests/feedback_drafter.c) in the build tree. */
static const char *feedback_drafter(void)
{
	static char path[1024];
	snprintf(path, sizeof path, "%s/tests/feedback_drafter.so",
	         getenv("AHASD_BUILD_ROOT"));
	return path;
}

/* A plugin counter by name. */
static double counter(const struct plugin *p, const char *name)
{
	for (uint32_t i = 0;; i++) {
		const char *n = NULL;
		double v = 0;
		cr_assert(p->desc->counter(p->state, i, &n, &v),
		          "%s: no counter %s", p->desc->name, name);
		if (n && !strcmp(n, name))
			return v;
	}
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
 * draft time: the first drafts of p2..p5.
 * The drafter's feedback: verified A (2 drafted, 2 accepted, committed
 * p0 p1 + bonus p2 = 3), B' (1 drafted: truncated from 2; accepted 0:
 * its draft was replaced; committed 0: p2 was A's bonus), D' (2, 2, 3
 * with bonus p5), E (2, 2: p5 and p6; committed p6 = 1), F (1, 1, 1: the
 * bonus is past N); discarded C (2 tokens). Sum accepted 7, committed 8. */
Test(engine, preverify_hand_computed)
{
	static const int acc[8] = { 1, 1, 0, 1, 1, 1, 1, 1 };
	struct seqbuf b;
	make_seq(&b, 0, acc, 8);
	char path[300];
	snprintf(path, sizeof path, "%s/pv.msgpack", tmpdir);
	write_trace_models(path, &b, 1, 0, 1, 8);

	static const char *const pk[3] = { "count", "from", "times" };
	static const char *const pv[3] = { "2", "3", "2" };
	struct rig g;
	struct pvlog l;
	memset(&l, 0, sizeof l);
	rig_open_full(&g, path, NPU_PIM_FREE "&verify_batches=0"
	              "&npu.op_overhead_s=5.5e-6", NULL,
	              &script_policy, pk, pv, 3,
	              feedback_drafter(), "k", "2", 6, 1, pv_event, &l);
	rig_run(&g);
	const struct replay_metrics *m = replay_metrics(g.r);

	const double q = g.plat.queue_latency_s;
	const double sw = hw_switch_cost(g.plan, NULL);
	cr_assert_gt(sw, 0, "npu-pim has a switch time");
	double d[8], dsum = 0;
	for (unsigned p = 0; p < 8; p++)
		d[p] = task(&g, HW_TASK_DRAFT, 1, P_LEN + p);
	const double pv1 = task(&g, HW_TASK_PREVERIFY, 2, P_LEN + 4);
	const double pv2 = task(&g, HW_TASK_PREVERIFY, 2, P_LEN + 5);
	const double va = task(&g, HW_TASK_VERIFY, 3, P_LEN + 2);
	const double vb = task(&g, HW_TASK_VERIFY, 3, P_LEN + 5);
	const double vc = task(&g, HW_TASK_VERIFY, 3, P_LEN + 8);
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
	static const unsigned drafted_at[11] = { 0, 1, 2, 3, 4, 5,
	                                         3, 4, 5, 6, 7 };
	for (int i = 0; i < 11; i++)
		dsum += d[drafted_at[i]];
	assert_close(m->busy_s[dd], dsum + pv1 + pv2 + 4 * sw, "PIM busy");
	assert_close(m->busy_s[vd], va + vb + vc + 3 * q, "NPU busy");
	assert_close(m->wasted_draft_s, d[2] + d[3] + d[4] + d[5],
	             "wasted draft time");

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
	cr_assert_eq(counter(&g.pol, "preverify_decisions"), 2);
	cr_assert_eq(counter(&g.dr, "verified"), 5);
	cr_assert_eq(counter(&g.dr, "verified_drafted"), 8);
	cr_assert_eq(counter(&g.dr, "verified_accepted"), 7);
	cr_assert_eq(counter(&g.dr, "verified_committed"), 8);
	cr_assert_eq(counter(&g.dr, "discarded_batches"), 1);
	cr_assert_eq(counter(&g.dr, "discarded_tokens"), 2);
	cr_assert_eq(counter(&g.dr, "discarded_open_batches"), 0);
	cr_assert_eq(counter(&g.dr, "truncated_tokens"), 1);
	cr_assert_eq(counter(&g.dr, "closed_batches"), 6);
	cr_assert_eq(counter(&g.dr, "closed_tokens"), 11);
	cr_assert_eq(counter(&g.dr, "unresolved_batches"), 0);
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

static const char *default_trace(void)
{
	static char path[1024];
	snprintf(path, sizeof path, "%s/traces/stories260K-skip3-greedy.msgpack",
	         getenv("AHASD_SOURCE_ROOT"));
	return path;
}

/* The event checks of check_events() on a capture, every policy. */
Test(engine, events_tile_the_devices)
{
	static const char *const policies[] = { "sync", "async", "ahasd" };
	for (int i = 0; i < 3; i++) {
		struct evsum l = { 0 };
		struct rig g;
		rig_open(&g, default_trace(), "npu-pim", policies[i], "adaedl",
		         NULL, NULL, 32, sum_event, &l);
		rig_run(&g);
		check_events(&g, &l, policies[i]);
		rig_close(&g);
	}
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
					struct evsum l = { 0 };
					char who[96];
					snprintf(who, sizeof who, "%s/%s/%s",
					         presets[w], policies[p],
					         drafters[d]);
					rig_open(&g, default_trace(), presets[w],
					         policies[p], drafters[d], NULL, NULL,
					         32, sum_event, &l);
					rig_run(&g);
					struct replay_metrics m =
						*replay_metrics(g.r);
					cr_assert_eq(m.committed, tokens, "%s", who);
					check_counts(&m, rig_is_sync(&g), who);
					cr_assert_gt(m.energy_j, 0);
					cr_assert_gt(m.time_s, 0);
					/* busy vs events, idle >= 0 */
					check_events(&g, &l, who);
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

/* Captures, sync policy, fixed k: the replay must walk the trace as
 * speculative decoding does. Position p is on the target's path when
 * a_p == 1, never when a_p == 0, and otherwise when the counter coin
 * replay_coin(seed, seq, p) < a_p (greedy traces hold only 0 and 1, so the
 * seed does not matter there). From committed position t the batch drafts
 * positions t..min(t+k, N)-1; a = the run of on-path positions starting at
 * t inside it; the verification commits a + 1 tokens (the a drafts, then
 * the correction or the bonus, dropped past the end of the sequence), so
 * t += a + 1; the other drafts of the batch are wasted. Accepted = sum of
 * a, verifications = batches = number of steps, committed = N. A bonus
 * never lands on a drafted position, so accepted is not simply the count
 * of on-path positions. Async with queue capacity 1 and k = 1 walks the
 * same way: one draft at C, verified before the next may start. */
struct walk {
	uint64_t drafted, accepted, wasted, verifications, committed;
};

static int walk_on_path(const struct trace_seq *s, uint64_t seed,
                        uint32_t p)
{
	if (s->accept[p] >= 1.0f)
		return 1;
	if (s->accept[p] <= 0.0f)
		return 0;
	return replay_coin(seed, s->id, p) < (double)s->accept[p];
}

static void walk(const struct trace_seq *s, uint32_t k, uint64_t seed,
                 struct walk *w)
{
	uint32_t t = 0;
	while (t < s->n) {
		uint32_t end = t + k < s->n ? t + k : s->n, a = 0;
		while (t + a < end && walk_on_path(s, seed, t + a))
			a++;
		w->drafted += end - t;
		w->accepted += a;
		w->wasted += end - t - a;
		w->verifications++;
		t += a + 1;
	}
	w->committed += s->n;
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
			struct walk w = { 0 };
			struct trace_reader *rd = NULL;
			cr_assert_eq(trace_reader_open(&rd, path, err, sizeof err),
			             0, "%s", err);
			cr_assert_eq(trace_reader_header(rd)->sampled, 0);
			struct trace_seq s;
			while (trace_reader_next(rd, &s, err, sizeof err) == 1)
				walk(&s, k, 1, &w);
			trace_reader_close(&rd);

			snprintf(kv, sizeof kv, "%u", k);
			struct rig g;
			rig_open(&g, path, "npu-pim", "sync", "fixed", "k", kv, 32,
			         NULL, NULL);
			rig_run(&g);
			const struct replay_metrics *m = replay_metrics(g.r);
			cr_assert_eq(m->committed, w.committed, "%s k=%u",
			             traces[i], k);
			cr_assert_eq(m->accepted, w.accepted, "%s k=%u: accepted "
			             "%llu, walk %llu", traces[i], k,
			             (unsigned long long)m->accepted,
			             (unsigned long long)w.accepted);
			cr_assert_eq(m->drafted, w.drafted, "%s k=%u", traces[i],
			             k);
			cr_assert_eq(m->verifications, w.verifications, "%s k=%u",
			             traces[i], k);
			rig_close(&g);
		}
	}
}

/* One replay of a capture checked sequence by sequence against walk():
 * the per-sequence results must equal the walk's, and their digest (an
 * FNV-1a fold of every sequence's counters) tells runs apart. */
struct walk_run {
	struct replay_metrics m;
	uint64_t digest;
	uint64_t fractional; /* positions with 0 < a_p < 1 */
};

static uint64_t fold(uint64_t h, uint64_t x)
{
	for (int i = 0; i < 8; i++) {
		h ^= (x >> (8 * i)) & 0xff;
		h *= 0x100000001b3ull;
	}
	return h;
}

static void replay_against_walk(const char *path, const char *policy,
                                uint32_t k, uint32_t qcap, uint64_t seed,
                                struct walk_run *out)
{
	char err[1024], kv[8], who[1200];
	snprintf(kv, sizeof kv, "%u", k);
	snprintf(who, sizeof who, "%s %s k=%u cap=%u seed=%llu", path, policy,
	         k, qcap, (unsigned long long)seed);
	struct rig g;
	rig_open_seed(&g, path, "npu-pim", policy, "fixed", "k", kv, qcap,
	              seed, NULL, NULL);
	cr_assert_eq(trace_reader_header(g.rd)->sampled, 1, "%s", who);
	struct walk tot = { 0 };
	struct trace_seq s;
	int rc;
	memset(out, 0, sizeof *out);
	out->digest = 0xcbf29ce484222325ull;
	while ((rc = trace_reader_next(g.rd, &s, err, sizeof err)) == 1) {
		struct replay_seq_result res;
		struct walk w = { 0 };
		cr_assert_eq(replay_sequence(g.r, &s, &res, err, sizeof err), 0,
		             "%s: %s", who, err);
		walk(&s, k, seed, &w);
		for (uint32_t p = 0; p < s.n; p++)
			out->fractional += s.accept[p] > 0.0f &&
			                   s.accept[p] < 1.0f;
		cr_assert_eq(res.seq, s.id, "%s", who);
		cr_assert_eq(res.committed, w.committed, "%s seq %u", who, s.id);
		cr_assert_eq(res.drafted, w.drafted, "%s seq %u: drafted %llu, "
		             "walk %llu", who, s.id,
		             (unsigned long long)res.drafted,
		             (unsigned long long)w.drafted);
		cr_assert_eq(res.accepted, w.accepted, "%s seq %u: accepted "
		             "%llu, walk %llu", who, s.id,
		             (unsigned long long)res.accepted,
		             (unsigned long long)w.accepted);
		cr_assert_eq(res.wasted, w.wasted, "%s seq %u", who, s.id);
		cr_assert_eq(res.verifications, w.verifications, "%s seq %u",
		             who, s.id);
		cr_assert_eq(res.batches, w.verifications, "%s seq %u", who,
		             s.id);
		tot.drafted += w.drafted;
		tot.accepted += w.accepted;
		tot.verifications += w.verifications;
		tot.committed += w.committed;
		out->digest = fold(out->digest, s.id);
		out->digest = fold(out->digest, res.drafted);
		out->digest = fold(out->digest, res.accepted);
		out->digest = fold(out->digest, res.verifications);
	}
	cr_assert_eq(rc, 0, "%s", err);
	replay_finish(g.r);
	out->m = *replay_metrics(g.r);
	cr_assert_eq(out->m.committed, tot.committed, "%s", who);
	cr_assert_eq(out->m.drafted, tot.drafted, "%s", who);
	cr_assert_eq(out->m.accepted, tot.accepted, "%s", who);
	cr_assert_eq(out->m.verifications, tot.verifications, "%s", who);
	rig_close(&g);
}

/* Sampled captures: sync with fixed k = 1 and k = 3, and async with queue
 * capacity 1 and k = 1, follow the coin walk per sequence for seeds 1 and
 * 2. The seeds must give different per-sequence results (the coin
 * decides), the same seed twice bit-identical metrics. */
Test(engine, sampled_captures_follow_the_coin_walk, .timeout = 120)
{
	static const char *const traces[] = {
		"stories260K-skip3-sampled.msgpack",
		"stories260K-int4-sampled.msgpack",
		"aidreams260K-skip2-sampled.msgpack",
	};
	static const struct {
		const char *policy;
		uint32_t k, qcap;
	} modes[] = { { "sync", 1, 32 }, { "async", 1, 1 }, { "sync", 3, 32 } };
	char path[1024];
	for (size_t i = 0; i < sizeof traces / sizeof *traces; i++) {
		snprintf(path, sizeof path, "%s/traces/%s",
		         getenv("AHASD_SOURCE_ROOT"), traces[i]);
		for (size_t j = 0; j < sizeof modes / sizeof *modes; j++) {
			struct walk_run s1, s2, again;
			replay_against_walk(path, modes[j].policy, modes[j].k,
			                    modes[j].qcap, 1, &s1);
			replay_against_walk(path, modes[j].policy, modes[j].k,
			                    modes[j].qcap, 2, &s2);
			replay_against_walk(path, modes[j].policy, modes[j].k,
			                    modes[j].qcap, 1, &again);
			cr_assert_gt(s1.fractional, 0, "%s: no 0 < a_p < 1",
			             traces[i]);
			cr_assert_neq(s1.digest, s2.digest, "%s %s k=%u: seeds 1 "
			              "and 2 replay alike", traces[i],
			              modes[j].policy, modes[j].k);
			cr_assert_neq(s1.m.time_s, s2.m.time_s, "%s %s k=%u",
			              traces[i], modes[j].policy, modes[j].k);
			cr_assert_eq(s1.digest, again.digest);
			cr_assert_eq(memcmp(&s1.m, &again.m, sizeof s1.m), 0,
			             "%s %s k=%u: seed 1 twice differs", traces[i],
			             modes[j].policy, modes[j].k);
		}
	}
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
Test(engine, sampled_hand_computed)
{
	static const float a[8] = { 0.5f, 0.75f, 0.8f, 1.0f,
	                            0.7f, 0.9f, 0.0f, 0.3f };
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
	struct seqbuf b;
	make_sampled_seq(&b, 0, a, 8);
	char path[300];
	snprintf(path, sizeof path, "%s/s.msgpack", tmpdir);
	write_trace_mode(path, &b, 1, 1);

	struct rig g;
	rig_open_seed(&g, path, "npu-pim", "sync", "fixed", "k", "2", 32, 1,
	              NULL, NULL);
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
		want += split(&g, HW_TASK_DRAFT, 1, P_LEN + drafted_at[i]);
	want += split(&g, HW_TASK_VERIFY, 3, P_LEN + 2);
	want += split(&g, HW_TASK_VERIFY, 3, P_LEN + 4);
	want += split(&g, HW_TASK_VERIFY, 3, P_LEN + 5);
	want += split(&g, HW_TASK_VERIFY, 3, P_LEN + 7);
	want += split(&g, HW_TASK_VERIFY, 2, P_LEN + 8);
	assert_close(m->time_s, want, "sync seed 1 time");
	rig_close(&g);

	rig_open_seed(&g, path, "npu-pim", "sync", "fixed", "k", "2", 32, 2,
	              NULL, NULL);
	rig_run(&g);
	m = replay_metrics(g.r);
	cr_assert_eq(m->committed, 8);
	cr_assert_eq(m->drafted, 7);
	cr_assert_eq(m->accepted, 5);
	cr_assert_eq(m->wasted, 2);
	cr_assert_eq(m->verifications, 4);
	rig_close(&g);

	rig_open_seed(&g, path, "npu-pim", "async", "fixed", "k", "1", 1, 1,
	              NULL, NULL);
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
		want += task(&g, HW_TASK_DRAFT, 1, P_LEN + steps[i]) + q +
		        task(&g, HW_TASK_VERIFY, 2, P_LEN + steps[i] + 1) + q;
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
Test(engine, draft_slower_than_verification)
{
	for (int last = 1; last >= 0; last--) {
		const int acc[5] = { 1, 1, 1, 1, last };
		struct seqbuf b;
		make_seq(&b, 0, acc, 5);
		char path[300];
		snprintf(path, sizeof path, "%s/slow%d.msgpack", tmpdir, last);
		write_trace_models(path, &b, 1, 0, 24, 1);
		struct rig g;
		rig_open_full(&g, path, "npu-pim", "async", NULL, NULL, NULL, 0,
		              feedback_drafter(), "k", "4", 32, 1, NULL, NULL);
		rig_run(&g);
		const struct replay_metrics *m = replay_metrics(g.r);
		const double q = g.plat.queue_latency_s;
		double d[5];
		for (unsigned p = 0; p < 5; p++)
			d[p] = task(&g, HW_TASK_DRAFT, 1, P_LEN + p);
		const double t1 = d[0] + d[1] + d[2] + d[3];
		const double e1 = t1 + q + task(&g, HW_TASK_VERIFY, 5,
		                                P_LEN + 4) + q;
		cr_assert_lt(e1, t1 + d[4], "schedule assumption");
		cr_assert_eq(m->committed, 5);
		cr_assert_eq(m->verifications, 1, "a_4 = %d", last);
		cr_assert_eq(m->drafted, 5);
		cr_assert_eq(m->accepted, last ? 5u : 4u);
		cr_assert_eq(m->wasted, last ? 0u : 1u);
		cr_assert_eq(m->batches, last ? 2u : 1u);
		assert_close(m->time_s, t1 + d[4], "simulated time");
		cr_assert_eq(counter(&g.dr, "verified"), last ? 2.0 : 1.0);
		cr_assert_eq(counter(&g.dr, "verified_accepted"),
		             last ? 5.0 : 4.0);
		cr_assert_eq(counter(&g.dr, "discarded_batches"),
		             last ? 0.0 : 1.0);
		cr_assert_eq(counter(&g.dr, "discarded_open_batches"),
		             last ? 0.0 : 1.0);
		cr_assert_eq(counter(&g.dr, "unresolved_batches"), 0);
		rig_close(&g);
	}
}

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
	double v = counter(p, name), d = v - *prev;
	*prev = v;
	return d;
}

Test(engine, drafter_feedback_matches_metrics, .timeout = 120)
{
	static const char *const policies[] = { "sync", "async", "ahasd",
	                                        "script" };
	static const char *const presets[] = { "npu-pim", "gpu", "npu-lpddr5",
	                                       "gpu-pim" };
	static const char *const traces[] = {
		"stories260K-skip3-greedy.msgpack",
		"stories260K-skip3-sampled.msgpack",
	};
	static const char *const pk[2] = { "count", "from" };
	static const char *const pv[2] = { "1", "1" };
	uint64_t rejections = 0;
	char path[1024], err[1024], who[256];
	for (int t = 0; t < 2; t++)
	for (int w = 0; w < 4; w++)
	for (int p = 0; p < 4; p++) {
		snprintf(path, sizeof path, "%s/traces/%s",
		         getenv("AHASD_SOURCE_ROOT"), traces[t]);
		snprintf(who, sizeof who, "%s %s %s", traces[t], presets[w],
		         policies[p]);
		const int script = p == 3;
		struct rig g;
		rig_open_full(&g, path, presets[w], policies[p],
		              script ? &script_policy : NULL, pk, pv,
		              script ? 2 : 0, feedback_drafter(), "k", "3", 32,
		              1, NULL, NULL);
		struct replay_metrics m0 = *replay_metrics(g.r);
		double vacc = 0, vcom = 0, ut = 0, ub = 0;
		struct trace_seq s;
		int rc;
		while ((rc = trace_reader_next(g.rd, &s, err, sizeof err)) == 1) {
			cr_assert_eq(replay_sequence(g.r, &s, NULL, err,
			                             sizeof err), 0, "%s", err);
			const struct replay_metrics *m = replay_metrics(g.r);
			const double dacc = (double)(m->accepted - m0.accepted);
			const double dcom = (double)(m->committed - m0.committed);
			const uint64_t drej = m->preverify_rejections -
			                      m0.preverify_rejections;
			const double dvacc = counter_delta(&g.dr,
			        "verified_accepted", &vacc);
			const double dvcom = counter_delta(&g.dr,
			        "verified_committed", &vcom);
			const double dut = counter_delta(&g.dr,
			        "unresolved_tokens", &ut);
			const double dub = counter_delta(&g.dr,
			        "unresolved_batches", &ub);
			cr_assert_eq(dvcom, dcom, "%s seq %u: committed %g, in "
			             "results %g", who, s.id, dcom, dvcom);
			cr_assert(dub == 0 && dut == 0, "%s seq %u: %g "
			          "unresolved batches, %g tokens", who, s.id,
			          dub, dut);
			cr_assert_eq(dacc, dvacc, "%s seq %u: accepted %g, in "
			             "results %g (pre-verify rejections %llu)",
			             who, s.id, dacc, dvacc,
			             (unsigned long long)drej);
			m0 = *m;
		}
		cr_assert_eq(rc, 0, "%s", err);
		replay_finish(g.r);
		const struct replay_metrics *m = replay_metrics(g.r);
		const double verified = counter(&g.dr, "verified");
		const double closed_disc = counter(&g.dr, "discarded_batches") -
		        counter(&g.dr, "discarded_open_batches");
		const double closed_disc_tok =
		        counter(&g.dr, "discarded_tokens") -
		        counter(&g.dr, "discarded_open_tokens");
		const double trunc = counter(&g.dr, "truncated_tokens");
		cr_assert_eq(counter(&g.dr, "unknown_results"), 0, "%s", who);
		cr_assert_eq(counter(&g.dr, "oom"), 0, "%s", who);
		cr_assert_eq(counter(&g.dr, "closed_batches"),
		             (double)m->batches, "%s", who);
		cr_assert_eq(counter(&g.dr, "closed_tokens"),
		             (double)m->batch_tokens, "%s", who);
		cr_assert_eq((double)m->batches, verified + closed_disc + ub,
		             "%s: batches %llu, verified %g, discarded %g, "
		             "unresolved %g", who,
		             (unsigned long long)m->batches, verified,
		             closed_disc, ub);
		cr_assert_eq((double)m->batch_tokens,
		             counter(&g.dr, "verified_drafted") +
		             closed_disc_tok + trunc + ut, "%s", who);
		cr_assert_geq(verified, (double)m->verifications, "%s", who);
		cr_assert_leq(ub, (double)m->sequences, "%s", who);
		if (rig_is_sync(&g)) {
			cr_assert_eq(verified, (double)m->verifications, "%s",
			             who);
			cr_assert_eq(verified, (double)m->batches, "%s", who);
			cr_assert_eq(counter(&g.dr, "discarded_batches"), 0,
			             "%s", who);
			cr_assert_eq(ub, 0, "%s", who);
		}
		rejections += m->preverify_rejections;
		rig_close(&g);
	}
	/* pre-verify corrections do occur here (script policy, sampled);
	 * truncated batches are checked by preverify_hand_computed */
	cr_assert_gt(rejections, 0);
}
