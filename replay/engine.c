/* engine.c - discrete-event replay of one sequence at a time.
 *
 * Positions are generated-token indices 0..N-1 of a trace sequence. C is the
 * number of committed positions. The draft chain holds drafted positions
 * [C, D) grouped into batches (oldest first: verifying, queued, open). F is
 * the first chain position whose draft is off the target's path (INF if
 * none): at p == F the draft's token is rejected (greedy: a_p == 0; sampled:
 * the coin for (seed, seq, p) >= a_p), and every chain token after F is off
 * path too, drafted with the entropies of the continuation recorded at F.
 *
 * A verification of batch [s, e) accepts the leading on-path run, r =
 * min(F, e), and commits up to r + 1 (the correction at r, or the bonus at
 * e). A rejection discards every chain token after it; a bonus that differs
 * from the look-ahead token at e discards the look-ahead. A pre-verification
 * on the draft device settles the earliest queued drafts early: a wrong one
 * is replaced by the target's token and the chain after it is dropped.
 *
 * A format 1.1 trace with accepted-run lengths (traces/FORMAT.md) replaces
 * the chain walk: a speculation is rooted where the drafter drafts on a
 * prefix the target fixed (root, set by chain_root()), and its chain is on
 * the path up to root_off, the first position its run leaves; F is found
 * the same lazy way. A tree feeds the target ceil(d*T/R) draft tokens for
 * d levels (levels_m). A lookup draft (no model) costs the plan's
 * hw_lookup_cost per batch and leaves the PIM's state alone.
 *
 * Accounting (checked at the end of every sequence): every draft step ends
 * up accepted (its position committed with it) or wasted; committed == N;
 * per device busy + idle == simulated time.
 */
#include "engine.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INF_POS     UINT32_MAX
#define POS_TARGET  1u /* chain token is the target's (pre-verify fix) */
#define POS_SETTLED 2u /* pre-verified */
#define STUCK_LIMIT 100000000ull

enum batch_state { B_OPEN = 0, B_QUEUED, B_VERIFYING };

struct batch {
	uint64_t id;
	uint32_t start, len, max_len;
	uint32_t settled;      /* positions pre-verified */
	uint32_t corrected_at; /* if corrected: the position pre-verify fixed */
	double open_s, ready_s, entropy_sum;
	uint8_t state, lookahead, corrected;
};

/* A cached task or step cost (which of the two the engine's mode says):
 * key = (task + 1) << 16 | m, 0 for an empty slot. */
#define CC_BITS  14
#define CC_SLOTS (1u << CC_BITS)
struct cost_slot {
	uint32_t key, kv;
	struct hw_cost c;
};

enum agent { AG_DRAFT = 0, AG_WAIT, AG_PREVERIFY };
enum task_kind { T_NONE = 0, T_DRAFT, T_VERIFY, T_PREVERIFY, T_OFFLOAD };

struct task {
	enum task_kind kind;
	double start_s, end_s, busy_s;
	double energy_j; /* dynamic energy of the task */
	uint64_t epoch;
	uint32_t pos, count; /* draft: pos; preverify: [pos, pos+count);
	                        * verify: count batches */
	/* compute-device tasks while a PIM shares its channels: its whole
	 * duration in each PIM state (idle, drafting, pre-verifying), the
	 * fraction of it left at t_upd; end_s follows (see set_pim_state) */
	double dur[3], rem, t_upd, nominal_s;
};

/* A draft step that ended: what finish_draft() needs of its task. */
struct draft_step {
	double start_s, busy_s, energy_j;
	uint64_t epoch;
	uint32_t pos;
};

/* Time and dynamic energy of the draft step that produced a chain token,
 * charged to wasted_draft_s/_j if the token is discarded. */
struct pos_cost {
	double s, j;
};

struct replay {
	struct replay_config cfg;
	const struct ahasd_plugin *pol, *dr;
	void *pol_st, *dr_st;
	/* the plugins' where words (plugin.where, else where_none): set
	 * around every hook call, see IN_POLICY */
	volatile uint32_t *pw, *dw;
	volatile uint32_t where_none;
	/* a value a plugin returned outside the contract: the run stops,
	 * the where word back on the hook that returned it */
	int refused;
	uint32_t refused_where;
	char refusal[400];
	uint32_t mode;
	int dd, vd, shared; /* draft and verify device indices */
	unsigned n_dev;
	double qlat, switch_s, switch_j;
	double prof_verify, prof_draft, prof_preverify;
	int split_sync;          /* sync steps split operators across devices */
	uint32_t verify_batches; /* batches per pass (0: all ready) */
	int pim_state;           /* 0 idle, 1 drafting, 2 pre-verifying */
	double clock;            /* absolute simulated time */
	struct replay_metrics m;

	/* format 1.1 */
	int ent_full;          /* every draft has an entropy in the trace */
	int tree;              /* T > R: levels_m scales tokens */
	uint32_t run_r, run_t; /* R and T of accept_runs */
	unsigned draft_m;      /* tokens of one draft step (a tree level) */
	int lookup;            /* the draft is a lookup: lk[] costs */
	struct hw_cost lk[2];  /* a further token [0], a batch's first [1] */

	/* per sequence */
	const struct trace_seq *seq;
	const uint32_t *runs;    /* accept_run, or NULL: the chain walk */
	uint32_t root, root_off; /* runs: the speculation's first position
	                         * and the first it leaves the path at */
	uint32_t N, P, C, D, F;
	uint64_t epoch, next_batch_id;
	uint8_t *flags;
	size_t flags_cap;
	const struct hw_cost *draft_cost; /* [N] draft step at each position:
	                         * dcost + P */
	struct pos_cost *pcost; /* [N] the step that drafted each chain token */
	struct batch *bq;       /* ring of batches */
	uint32_t bq_cap, bq_head, bq_count;
	enum agent agent;
	uint32_t agent_count;
	struct task run[HW_MAX_DEV];
	struct batch *grp;       /* batches of the finishing verification */
	uint32_t v_kv, v_tokens; /* the running verification's shape */
	/* queue counters kept as batches change state (checked against a
	 * scan of the queue in debug builds) */
	uint32_t q_batches, q_tokens, q_settled, unv_batches;
	double last_end[HW_MAX_DEV];
	double seq_busy[HW_MAX_DEV];
	struct replay_seq_result sr;
	double seq_dyn_j;
	double sb_pim, sb_total; /* sync: the open batch's PIM and step time */

	/* costs of the plan, kept across sequences (see cost_at) */
	struct hw_cost *dcost; /* [kv] a draft step at KV length kv */
	uint32_t dcost_lo, dcost_hi, dcost_cap; /* [lo, hi) computed */
	struct cost_slot *cc; /* [CC_SLOTS] other tasks, direct-mapped */
};

/* Around every hook call: the hook in progress, for a watcher outside the
 * process (plugin.h, plugin.where); LEFT after the call. */
#define IN_POLICY(r, hook) \
	(*(r)->pw = PLUGIN_WHERE(AHASD_PLUGIN_POLICY, PLUGIN_HOOK_##hook))
#define IN_DRAFTER(r, hook) \
	(*(r)->dw = PLUGIN_WHERE(AHASD_PLUGIN_DRAFTER, PLUGIN_HOOK_##hook))
#define LEFT(w) (*(w) = 0)

static uint64_t splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

double replay_coin(uint64_t seed, uint32_t seq, uint32_t pos)
{
	uint64_t h = splitmix64(seed ^ splitmix64(((uint64_t)seq << 32) | pos));
	return (double)(h >> 11) * 0x1.0p-53;
}

/* ---- the plan's costs ----
 *
 * hw_task_cost() and hw_step_cost() are pure functions of the plan, the
 * task, m and the KV length, and a replay asks for the same few thousand
 * of them over and over: every sequence drafts at KV lengths P..P+N-1 and
 * verifies at similar shapes. A draft step's cost is kept in a table by KV
 * length, everything else in a direct-mapped table; a miss computes the
 * cost and replaces the slot, so a hit returns the very bits a call would.
 * Synchronous modes cost steps (hw_step_cost), asynchronous ones tasks. */

static void cost_compute(const struct replay *r, enum hw_task kind, unsigned m,
                         unsigned kv, struct hw_cost *c)
{
	if (r->mode == AHASD_EXEC_TASK_ASYNC)
		hw_task_cost(r->cfg.plan, kind, m, kv, c);
	else
		hw_step_cost(r->cfg.plan, kind, m, kv, c);
}

static const struct hw_cost *cost_at(struct replay *r, enum hw_task kind,
                                     unsigned m, unsigned kv)
{
	const uint32_t key = ((uint32_t)kind + 1) << 16 | m;
	const uint32_t h = (kv * 0x9e3779b1u ^ m * 0x85ebca6bu ^
	                    (uint32_t)kind * 0xc2b2ae35u) >>
	                   (32 - CC_BITS);
	struct cost_slot *sl = &r->cc[h];
	if (sl->key != key || sl->kv != kv) {
		cost_compute(r, kind, m, kv, &sl->c);
		sl->key = key;
		sl->kv = kv;
	}
	return &sl->c;
}

/* Make draft costs for KV lengths [lo, hi) available in r->dcost.
 * @return 0 or -ENOMEM. */
static int dcost_cover(struct replay *r, uint32_t lo, uint32_t hi)
{
	if (hi > r->dcost_cap || !r->dcost) {
		uint32_t cap = r->dcost_cap ? r->dcost_cap : 1024;
		while (cap < hi)
			cap = cap > UINT32_MAX / 2 ? hi : 2 * cap;
		struct hw_cost *d = realloc(r->dcost, (size_t)cap * sizeof *d);
		if (!d)
			return -ENOMEM;
		r->dcost = d;
		r->dcost_cap = cap;
	}
	if (r->dcost_lo == r->dcost_hi)
		r->dcost_lo = r->dcost_hi = lo;
	/* keep [dcost_lo, dcost_hi) one computed range: fill the gaps */
	for (uint32_t kv = lo; kv < r->dcost_lo; kv++)
		cost_compute(r, HW_TASK_DRAFT, r->draft_m, kv, &r->dcost[kv]);
	if (lo < r->dcost_lo)
		r->dcost_lo = lo;
	for (uint32_t kv = r->dcost_hi; kv < hi; kv++)
		cost_compute(r, HW_TASK_DRAFT, r->draft_m, kv, &r->dcost[kv]);
	if (hi > r->dcost_hi)
		r->dcost_hi = hi;
	return 0;
}

/* ---- small helpers ---- */

static void emit(struct replay *r, int dev, enum replay_event_kind kind,
                 double start, double end, uint32_t tokens, uint64_t batch,
                 enum replay_outcome out)
{
	if (!r->cfg.on_event)
		return;
	struct replay_event ev = { dev,    kind,       start, end,
		                   tokens, r->seq->id, batch, out };
	r->cfg.on_event(r->cfg.event_user, &ev);
}

/* A device starts `busy` seconds of work at `start`. */
static void account_busy(struct replay *r, int dev, double start, double busy)
{
	if (r->cfg.on_event && start > r->last_end[dev] + 1e-15)
		emit(r, dev, REPLAY_EV_IDLE, r->last_end[dev], start, 0, 0,
		     REPLAY_OUT_NONE);
	r->seq_busy[dev] += busy;
	r->last_end[dev] = start + busy;
}

/* @return the cost's dynamic energy (J). */
static double account_energy(struct replay *r, const struct hw_cost *c)
{
	double j = 0;
	for (unsigned i = 0; i < r->n_dev; i++) {
		r->m.dev_energy_j[i] += c->energy_dev_j[i];
		j += c->energy_dev_j[i];
	}
	r->seq_dyn_j += j;
	return j;
}

/* ---- the compute device's task under a PIM that shares its channels ----
 *
 * A verification streams the target's weights over the off-chip channels.
 * While the PIM works in ranks on some of those channels it holds them
 * (hw_compute_bw_share), so the verification would take longer: the
 * hardware model gives its whole duration in each PIM state (dur[]). Its
 * work is taken as evenly spread, so in state s it does 1 / dur[s] of
 * itself per second; the engine keeps the fraction left and re-times the
 * end whenever the state changes (a PIM task starts or ends). With no
 * bandwidth left the duration is infinite and the task pauses. */

static double cd_remaining(const struct replay *r, const struct task *t)
{
	return t->rem > 0 ? t->rem * t->dur[r->pim_state] : 0;
}

/* Bring the compute device's task to `now` in the current state. */
static void cd_progress(struct replay *r, double now)
{
	struct task *t = &r->run[r->vd];
	const double d = t->dur[r->pim_state];
	if (now > t->t_upd && isfinite(d) && d > 0) {
		t->rem -= (now - t->t_upd) / d;
		if (t->rem < 0)
			t->rem = 0;
	}
	if (now > t->t_upd)
		t->t_upd = now;
}

static void cd_retime(struct replay *r)
{
	struct task *t = &r->run[r->vd];
	t->end_s = t->t_upd + cd_remaining(r, t);
}

/* The PIM started drafting (1) or pre-verifying (2), or finished (0). */
static void set_pim_state(struct replay *r, double now, int state)
{
	if (state == r->pim_state)
		return;
	const int running = r->run[r->vd].kind != T_NONE;
	if (running)
		cd_progress(r, now);
	r->pim_state = state;
	if (running)
		cd_retime(r);
}

/* Work a PIM task without the AAU ships to the compute device. It runs
 * between the operators of whatever that device is doing, which is
 * delayed by as much; an idle device runs it at once. While the device is
 * stalled on channels the PIM holds, it does the work in the stall. */
static void cd_add_work(struct replay *r, double now, double aux)
{
	if (aux <= 0)
		return;
	r->m.offload_s += aux;
	struct task *t = &r->run[r->vd];
	if (t->kind != T_NONE) {
		cd_progress(r, now);
		if (!isfinite(t->dur[r->pim_state]) && t->rem > 0)
			return;
		/* the remaining work plus aux, in every state */
		for (int s = 0; s < 3; s++)
			t->dur[s] = (t->rem > 0 ? t->rem * t->dur[s] : 0) + aux;
		t->rem = 1;
		t->nominal_s += aux;
		cd_retime(r);
		return;
	}
	memset(t, 0, sizeof *t);
	t->kind = T_OFFLOAD;
	t->start_s = t->t_upd = now;
	t->dur[0] = t->dur[1] = t->dur[2] = t->nominal_s = aux;
	t->rem = 1;
	t->epoch = r->epoch;
	account_busy(r, r->vd, now, 0);
	cd_retime(r);
}

/* A compute-device task ends: its busy time is known only now. */
static void cd_finish(struct replay *r, struct task *t, double now)
{
	t->busy_s = now - t->start_s;
	r->seq_busy[r->vd] += t->busy_s;
	if (t->kind == T_VERIFY)
		r->m.contention_s += t->busy_s - t->nominal_s;
}

/* One draft step's work thrown away. */
static void waste(struct replay *r, double s, double j)
{
	r->m.wasted++;
	r->m.wasted_draft_s += s;
	r->m.wasted_draft_j += j;
}

/* Events of whole tasks; operator-level sync mode draws its own. */
static void task_event(struct replay *r, int dev, enum replay_event_kind kind,
                       double start, double end, uint32_t tokens,
                       uint64_t batch, enum replay_outcome out)
{
	if (r->mode == AHASD_EXEC_TASK_ASYNC)
		emit(r, dev, kind, start, end, tokens, batch, out);
}

/* Tokens a tree feeds for d draft levels: ceil(d*T/R), d for a chain. */
static unsigned levels_m(const struct replay *r, uint32_t d)
{
	if (!r->tree)
		return d;
	const uint64_t m = ((uint64_t)d * r->run_t + r->run_r - 1) / r->run_r;
	return m > HW_MAX_M ? HW_MAX_M : (unsigned)m;
}

/* Tokens a verification of d draft levels feeds: the last committed
 * token and levels_m(d), within the largest step the plan supports (a
 * tree wider than 255 nodes a level is cut there). */
static unsigned verify_m(const struct replay *r, uint32_t d)
{
	const unsigned m = levels_m(r, d) + 1;
	return r->tree && m > HW_MAX_M ? HW_MAX_M : m;
}

/* Runs: the first position a speculation started at q leaves the path at
 * (FORMAT.md: min(k, run) up to R; past R, a fresh speculation at q + R);
 * N or more when it is on the path to the end. */
static uint32_t run_leaves(const struct replay *r, uint32_t q)
{
	for (;;) {
		const uint32_t a = r->runs[q];
		if (a < r->run_r)
			return q + a;
		q += r->run_r;
		if (q >= r->N)
			return q;
	}
}

/* Runs: a draft at p either continues the speculation of the chain it
 * extends, or, when the chain was cut or the target fixed p - 1, starts a
 * new one at p. */
static void chain_root(struct replay *r, uint32_t p)
{
	if (r->runs && (r->root == INF_POS || p != r->D)) {
		r->root = p;
		r->root_off = run_leaves(r, p);
	}
}

static int on_path(const struct replay *r, uint32_t p)
{
	if (r->runs)
		return p < r->root_off;
	const float a = r->seq->accept[p];
	if (a >= 1.0f)
		return 1;
	if (a <= 0.0f)
		return 0;
	return replay_coin(r->cfg.seed, r->seq->id, p) < (double)a;
}

static struct batch *bq_at(struct replay *r, uint32_t i)
{
	uint32_t k = r->bq_head + i; /* i < bq_cap: one wrap at most */
	return &r->bq[k >= r->bq_cap ? k - r->bq_cap : k];
}

static struct batch *bq_open(struct replay *r)
{
	if (!r->bq_count)
		return NULL;
	struct batch *b = bq_at(r, r->bq_count - 1);
	return b->state == B_OPEN ? b : NULL;
}

/* Count drafted (non-target) positions in [from, to) as wasted and clear
 * their flags. */
static void drop_positions(struct replay *r, uint32_t from, uint32_t to)
{
	for (uint32_t p = from; p < to; p++) {
		if (!(r->flags[p] & POS_TARGET))
			waste(r, r->pcost[p].s, r->pcost[p].j);
		r->flags[p] = 0;
	}
}

static void drafter_result(struct replay *r, const struct batch *b,
                           uint32_t accepted, uint32_t committed, int discarded,
                           double now)
{
	const struct ahasd_drafter_hooks *h = r->dr->drafter;
	if (!AHASD_HAS_HOOK(h, struct ahasd_drafter_hooks, batch_result))
		return;
	struct ahasd_batch_result res = { sizeof res,      b->id,     b->len,
		                          accepted,        committed, discarded,
		                          now - b->open_s, now };
	IN_DRAFTER(r, BATCH_RESULT);
	h->batch_result(r->dr_st, &res);
	LEFT(r->dw);
}

/* Discard every batch after index keep-1 (keep batches [0, keep)) and
 * every chain position from `from` on. @return closed batches dropped. */
static uint32_t discard_after(struct replay *r, uint32_t keep, uint32_t from,
                              double now)
{
	uint32_t closed = 0;
	while (r->bq_count > keep) {
		struct batch *b = bq_at(r, r->bq_count - 1);
		closed += b->state != B_OPEN;
		if (b->state == B_QUEUED) {
			r->q_batches--;
			r->q_tokens -= b->len;
			r->q_settled -= b->settled;
		}
		r->unv_batches -= b->state != B_OPEN;
		drafter_result(r, b, 0, 0, 1, now);
		r->bq_count--;
	}
	if (r->D > from)
		drop_positions(r, from, r->D);
	r->D = from;
	r->F = INF_POS;
	r->root = INF_POS; /* the next draft starts a speculation */
	r->epoch++;
	if (r->agent != AG_DRAFT)
		r->agent = AG_DRAFT;
	return closed;
}

static void fill_view(struct replay *r, double now, struct ahasd_host_view *v)
{
	memset(v, 0, sizeof *v);
	v->struct_size = sizeof *v;
	const struct hw_platform *p = hw_plan_platform(r->cfg.plan);
	v->now_s = now;
	v->verify_freq_hz = p->dev[r->vd].freq_hz;
	v->draft_freq_hz = p->dev[r->dd].freq_hz;
	v->shared_device = r->shared;
	const struct task *vt = &r->run[r->vd];
	if (vt->kind == T_VERIFY) {
		v->verify_busy = 1;
		v->verify_start_s = vt->start_s;
		v->verify_kv_len = r->v_kv;
		v->verify_tokens = r->v_tokens;
	}
	v->queued_batches = r->q_batches;
	v->queued_tokens = r->q_tokens;
	v->preverifiable = r->q_tokens - r->q_settled;
	v->unverified_batches = r->unv_batches;
#ifndef NDEBUG
	uint32_t qb = 0, qt = 0, qs = 0, ub = 0;
	for (uint32_t i = 0; i < r->bq_count; i++) {
		const struct batch *b = bq_at(r, i);
		if (b->state == B_QUEUED) {
			qb++;
			qt += b->len;
			qs += b->settled;
		}
		ub += b->state != B_OPEN;
	}
	assert(qb == r->q_batches && qt == r->q_tokens && qs == r->q_settled &&
	       ub == r->unv_batches);
#endif
	v->queue_capacity = r->cfg.queue_capacity;
	v->committed = r->C;
	v->kv_len = r->P + r->C;
	v->prof_verify_s_per_kv = r->prof_verify;
	v->prof_draft_s = r->prof_draft;
	v->prof_preverify_s_per_token = r->prof_preverify;
}

/* ---- task starts ---- */

static void mark_verifying(struct replay *r, struct batch *b)
{
	b->state = B_VERIFYING;
	r->q_batches--;
	r->q_tokens -= b->len;
	r->q_settled -= b->settled;
}

/* The verify device takes the oldest queued batch, or, when the platform's
 * verify_batches allows, up to that many ready ones (0: every ready one, up
 * to the largest step the plan supports) as one pass. Each batch gets its
 * own outcome. */
static void start_verify(struct replay *r, double now)
{
	struct batch *b = bq_at(r, 0);
	struct task *t = &r->run[r->vd];
	double start = now > b->ready_s ? now : b->ready_s;
	uint32_t nb = 0, tokens = 0;
	for (uint32_t i = 0; i < r->bq_count; i++) {
		struct batch *x = bq_at(r, i);
		if (x->state != B_QUEUED || x->ready_s > start ||
		    (nb && levels_m(r, tokens + x->len) + 1 > HW_MAX_M) ||
		    (r->verify_batches && nb == r->verify_batches))
			break;
		mark_verifying(r, x);
		tokens += x->len;
		nb++;
	}
	const struct batch *last = bq_at(r, nb - 1);
	const uint32_t e = last->start + last->len;
	/* the pass feeds the last committed token and the drafts after it: a
	 * look-ahead batch whose first token a bonus already committed needs
	 * one token fewer than its length + 1 */
	const uint32_t s0 = b->start > r->C ? b->start : r->C;
	r->v_kv = r->P + e;
	r->v_tokens = verify_m(r, e - s0);
	const struct hw_cost *c = cost_at(r, HW_TASK_VERIFY, r->v_tokens,
	                                  r->v_kv);
	t->kind = T_VERIFY;
	t->count = nb;
	t->start_s = t->t_upd = start;
	const double q = r->shared ? 0.0 : r->qlat;
	t->nominal_s = c->time_s + q;
	t->dur[0] = t->nominal_s;
	t->dur[1] = c->time_while_s[0] + q;
	t->dur[2] = c->time_while_s[1] + q;
	t->rem = 1;
	t->epoch = r->epoch;
	account_busy(r, r->vd, start, 0);
	cd_retime(r);
	t->energy_j = account_energy(r, c);
	r->m.offload_bytes += c->offload_bytes;
}

static void try_start_verify(struct replay *r, double now)
{
	/* once C reaches N nothing is left to verify: a draft still in
	 * flight completes, and its batch is settled at the end */
	if (r->run[r->vd].kind != T_NONE || !r->bq_count || r->C >= r->N)
		return;
	if (bq_at(r, 0)->state == B_QUEUED)
		start_verify(r, now);
}

static uint32_t next_pos(const struct replay *r)
{
	return r->D > r->C ? r->D : r->C;
}

/* The open batch the next draft step extends, opened if needed; NULL when
 * no draft may start (end of sequence, queue full). */
static struct batch *open_batch(struct replay *r, double now)
{
	uint32_t p = next_pos(r);
	uint32_t outstanding = p - r->C;
	if (p >= r->N || outstanding >= r->cfg.queue_capacity)
		return NULL;
	struct batch *b = bq_open(r);
	if (!b) {
		if (r->bq_count == r->bq_cap)
			return NULL;
		uint32_t unverified = r->bq_count; /* none open: all closed */
		b = bq_at(r, r->bq_count++);
		memset(b, 0, sizeof *b);
		b->id = ++r->next_batch_id;
		b->start = p;
		b->state = B_OPEN;
		b->open_s = now;
		b->lookahead = unverified > 0;
		uint32_t cap = r->cfg.max_draft;
		if (r->N - p < cap)
			cap = r->N - p;
		if (r->cfg.queue_capacity - outstanding < cap)
			cap = r->cfg.queue_capacity - outstanding;
		b->max_len = cap;
		if (AHASD_HAS_HOOK(r->dr->drafter, struct ahasd_drafter_hooks,
		                   begin_batch)) {
			IN_DRAFTER(r, BEGIN_BATCH);
			r->dr->drafter->begin_batch(r->dr_st, b->id, cap);
			LEFT(r->dw);
		}
	}
	return b;
}

/* The cost of the draft step at p that extends batch b. */
static const struct hw_cost *draft_step_cost(const struct replay *r,
                                             const struct batch *b, uint32_t p)
{
	if (r->lookup)
		return &r->lk[b->len == 0];
	return &r->draft_cost[p];
}

static int start_draft(struct replay *r, double now)
{
	const struct batch *b = open_batch(r, now);
	if (!b)
		return 0;
	uint32_t p = next_pos(r);
	chain_root(r, p);
	struct task *t = &r->run[r->dd];
	const struct hw_cost *c = draft_step_cost(r, b, p);
	t->kind = T_DRAFT;
	t->start_s = now;
	t->busy_s = c->time_s;
	t->end_s = now + t->busy_s;
	t->epoch = r->epoch;
	t->pos = p;
	account_busy(r, r->dd, now, t->busy_s);
	t->energy_j = account_energy(r, c);
	r->m.offload_bytes += c->offload_bytes;
	if (!r->shared && !r->lookup) {
		set_pim_state(r, now, 1);
		cd_add_work(r, now, c->busy_s[r->vd]);
	}
	return 1;
}

static int start_preverify(struct replay *r, double now)
{
	/* earliest queued, not yet settled positions, contiguous */
	uint32_t a = INF_POS, m = 0;
	for (uint32_t i = 0; i < r->bq_count && m < r->agent_count; i++) {
		const struct batch *b = bq_at(r, i);
		if (b->state != B_QUEUED)
			continue;
		for (uint32_t q = b->start; q < b->start + b->len; q++) {
			if (a == INF_POS) {
				if (!(r->flags[q] & POS_SETTLED))
					a = q, m = 1;
			} else if (m < r->agent_count &&
			           !(r->flags[q] & POS_SETTLED) && q == a + m) {
				m++;
			}
		}
	}
	r->agent = AG_DRAFT;
	if (!m)
		return 0;
	struct task *t = &r->run[r->dd];
	struct hw_cost c = *cost_at(r, HW_TASK_PREVERIFY, levels_m(r, m),
	                            r->P + a + m);
	double sw = r->switch_s;
	t->kind = T_PREVERIFY;
	t->start_s = now;
	t->busy_s = c.time_s + 2.0 * sw;
	t->end_s = now + t->busy_s;
	t->epoch = r->epoch;
	t->pos = a;
	t->count = m;
	c.energy_dev_j[r->dd] += 2.0 * r->switch_j;
	account_busy(r, r->dd, now, t->busy_s);
	t->energy_j = account_energy(r, &c);
	if (!r->shared) {
		set_pim_state(r, now, 2);
		cd_add_work(r, now, c.busy_s[r->vd]);
	}
	r->m.preverified += m;
	r->sr.preverified += m;
	r->m.preverify_tasks++;
	if (sw > 0) {
		r->m.switches += 2;
		emit(r, r->dd, REPLAY_EV_SWITCH, now, now + sw, 0, 0,
		     REPLAY_OUT_NONE);
	}
	return 1;
}

static void dispatch(struct replay *r, double now)
{
	try_start_verify(r, now);
	if (r->run[r->dd].kind != T_NONE)
		return;
	if (r->agent == AG_PREVERIFY && start_preverify(r, now))
		return;
	if (r->agent == AG_DRAFT)
		start_draft(r, now);
}

/* ---- completions ---- */

/* Refuse a value the policy returned: the run stops at the next event
 * with the message, the where word on the hook (run_async). */
__attribute__((format(printf, 2, 3))) static int refuse(struct replay *r,
                                                        const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(r->refusal, sizeof r->refusal,
	                 "policy %s: ", r->pol->name);
	va_start(ap, fmt);
	vsnprintf(r->refusal + n, sizeof r->refusal - (size_t)n, fmt, ap);
	va_end(ap);
	r->refused = 1;
	r->refused_where = *r->pw;
	r->agent = AG_WAIT;
	return 0;
}

/* A decision within the contract (ahasd_plugin.h): a known action, and
 * a pre-verification of 1 to queue-capacity tokens. */
static int decision_ok(struct replay *r, const struct ahasd_decision *d)
{
	if (d->next > AHASD_NEXT_PREVERIFY)
		return refuse(r,
		              "after_batch returned next = %u; expected 0 "
		              "(draft), 1 (wait) or 2 (pre-verify)",
		              d->next);
	if (d->next == AHASD_NEXT_PREVERIFY &&
	    (d->count < 1 || d->count > r->cfg.queue_capacity))
		return refuse(r,
		              "after_batch returned pre-verify count = %u; "
		              "expected an integer in [1, %u] (1 to the queue "
		              "capacity)",
		              d->count, r->cfg.queue_capacity);
	return 1;
}

static void close_batch(struct replay *r, struct batch *b, double now)
{
	b->state = B_QUEUED;
	b->ready_s = now + (r->shared ? 0.0 : r->qlat);
	r->q_batches++;
	r->q_tokens += b->len;
	r->unv_batches++;
	r->m.batches++;
	r->m.batch_tokens += b->len;
	r->sr.batches++;
	r->sr.batch_tokens += b->len;
	r->m.lookahead_batches += b->lookahead;
	if (r->mode != AHASD_EXEC_TASK_ASYNC)
		return;
	try_start_verify(r, now);
	const struct ahasd_policy_hooks *h = r->pol->policy;
	struct ahasd_decision d = { sizeof d, AHASD_NEXT_DRAFT, 0 };
	if (AHASD_HAS_HOOK(h, struct ahasd_policy_hooks, after_batch)) {
		struct ahasd_host_view v;
		fill_view(r, now, &v);
		struct ahasd_batch_info bi = { sizeof bi, b->id, b->len,
			                       (float)(b->entropy_sum / b->len),
			                       b->lookahead };
		IN_POLICY(r, AFTER_BATCH);
		h->after_batch(r->pol_st, &v, &bi, &d);
		if (!decision_ok(r, &d))
			return;
		LEFT(r->pw);
	}
	switch (d.next) {
	case AHASD_NEXT_WAIT:
		r->agent = AG_WAIT;
		r->m.waits++;
		break;
	case AHASD_NEXT_PREVERIFY:
		if (d.count > 0) {
			r->agent = AG_PREVERIFY;
			r->agent_count = d.count;
			break;
		}
		/* fall through */
	default: r->agent = AG_DRAFT;
	}
}

static void finish_draft(struct replay *r, const struct draft_step *t,
                         double now)
{
	const uint32_t p = t->pos;
	const struct trace_seq *s = r->seq;
	r->m.drafted++;
	r->sr.drafted++;
	struct batch *b = bq_open(r);
	enum replay_outcome out;

	if (t->epoch != r->epoch || !b) {
		/* the chain it extended was discarded while it ran */
		waste(r, t->busy_s, t->energy_j);
		task_event(r, r->dd, REPLAY_EV_DRAFT, t->start_s, now, 1, 0,
		           REPLAY_OUT_WASTED);
		goto policy;
	}
	int ok = r->F == INF_POS ? on_path(r, p) : 0;
	if (p < r->C) {
		/* a bonus committed this position while it was drafted */
		if (!ok) {
			waste(r, t->busy_s, t->energy_j);
			task_event(r, r->dd, REPLAY_EV_DRAFT, t->start_s, now,
			           1, b->id, REPLAY_OUT_WASTED);
			if (b->len == 0) {
				/* the batch's only draft was overtaken: drop it, and
				 * the next draft opens a batch at C with its own cap
				 * (the drafter was given this one's for a start
				 * before C) */
				drafter_result(r, b, 0, 0, 1, now);
				r->bq_count--;
			}
			goto policy;
		}
		r->m.accepted++;
	}
	float h, top1;
	if (!r->ent_full) {
		/* the trace has no entropy for every draft (FORMAT.md): a
		 * plugin that reads them was refused in replay_create */
		h = top1 = NAN;
	} else if (r->F == INF_POS || p <= r->F) {
		h = s->entropy[p];
		top1 = s->top1[p];
	} else {
		h = trace_seq_cont_entropy(s, r->cfg.lookahead, r->F, p - r->F);
		top1 = expf(-h); /* max prob >= e^-H: the bound stands in */
	}
	if (r->F == INF_POS && !ok)
		r->F = p;
	out = (r->F == INF_POS || p < r->F) ? REPLAY_OUT_ACCEPTED
	                                    : REPLAY_OUT_WASTED;
	if (b->len == 0)
		b->start = p;
	r->flags[p] = 0;
	r->pcost[p] = (struct pos_cost){ t->busy_s, t->energy_j };
	r->D = p + 1;
	b->len++;
	b->entropy_sum += h;
	task_event(r, r->dd, REPLAY_EV_DRAFT, t->start_s, now, 1, b->id, out);

	struct ahasd_draft_token tok = { sizeof tok, b->id, b->len - 1,
		                         h,          top1,  now };
	IN_DRAFTER(r, DRAFT_TOKEN);
	int stop = r->dr->drafter->draft_token(r->dr_st, &tok);
	LEFT(r->dw);
	if (stop || b->len >= b->max_len || r->D >= r->N)
		close_batch(r, b, now);
policy:
	if (AHASD_HAS_HOOK(r->pol->policy, struct ahasd_policy_hooks,
	                   on_draft_step)) {
		struct ahasd_task_info ti = { sizeof ti, 1, t->busy_s, 0 };
		IN_POLICY(r, ON_DRAFT_STEP);
		r->pol->policy->on_draft_step(r->pol_st, &ti);
		LEFT(r->pw);
	}
}

/* A verification of t->count batches [s, e) finished: accept the leading
 * on-path run, commit it plus the correction or bonus, drop what follows a
 * rejection, and give each batch its own feedback. */
static void finish_verify(struct replay *r, const struct task *t, double now)
{
	const uint32_t nb = t->count;
	const uint32_t s = bq_at(r, 0)->start;
	const uint32_t e = bq_at(r, nb - 1)->start + bq_at(r, nb - 1)->len;
	const uint32_t c0 = r->C;
	const uint32_t rpos = (r->F != INF_POS && r->F < e) ? r->F : e;
	uint32_t dropped = 0;

	for (uint32_t p = s > c0 ? s : c0; p < rpos; p++)
		r->m.accepted += !(r->flags[p] & POS_TARGET);
	r->C = rpos + 1 < r->N ? rpos + 1 : r->N;
	r->m.verifications++;
	r->sr.verifications++;
	task_event(r, r->vd, REPLAY_EV_VERIFY, t->start_s, now, r->v_tokens,
	           bq_at(r, 0)->id,
	           rpos == e ? REPLAY_OUT_ACCEPTED : REPLAY_OUT_REJECTED);

	for (uint32_t i = 0; i < nb; i++)
		r->grp[i] = *bq_at(r, i);
	r->bq_head = (r->bq_head + nb) % r->bq_cap;
	r->bq_count -= nb;
	r->unv_batches -= nb;

	if (rpos < e) {
		/* rejection at rpos: it and everything after are wasted */
		dropped = discard_after(r, 0, rpos, now);
		r->D = r->C;
	} else if (r->D > e) {
		if (r->F == e) {
			/* the bonus differs from the look-ahead token at e */
			dropped = discard_after(r, 0, e, now);
			r->D = r->C;
		} else if (e < r->N) {
			r->m.accepted += !(r->flags[e] & POS_TARGET);
		}
	}
	for (uint32_t i = 0; i < nb; i++)
		dropped += rpos < r->grp[i].start;

	const struct ahasd_policy_hooks *h = r->pol->policy;
	const int on_verify = AHASD_HAS_HOOK(h, struct ahasd_policy_hooks,
	                                     on_verify);
	struct ahasd_host_view v;
	if (on_verify)
		fill_view(r, now, &v);
	for (uint32_t i = 0; i < nb; i++) {
		const struct batch *b = &r->grp[i];
		const uint32_t bs = b->start, be = b->start + b->len;
		if (rpos < bs) {
			drafter_result(r, b, 0, 0, 1, now);
			continue;
		}
		uint32_t lo = bs > c0 ? bs : c0;
		uint32_t hi = be < rpos ? be : rpos;
		int settles = (rpos >= bs && rpos < be) ||
		              (i == nb - 1 && rpos == e);
		uint32_t committed = (hi > lo ? hi - lo : 0) +
		                     (settles && rpos < r->N);
		/* the leading run of the batch's own drafts the target
		 * accepted; a draft pre-verification replaced ends it */
		uint32_t acc = (rpos < be ? rpos : be) - bs;
		if (b->corrected && b->corrected_at - bs < acc)
			acc = b->corrected_at - bs;
		drafter_result(r, b, acc, committed, 0, now);
		if (on_verify) {
			struct ahasd_verify_info vi = { sizeof vi,
				                        b->id,
				                        b->len,
				                        acc,
				                        rpos >= be &&
				                                !b->corrected,
				                        r->P + e,
				                        t->busy_s,
				                        settles ? dropped : 0,
				                        b->corrected,
				                        i,
				                        nb };
			IN_POLICY(r, ON_VERIFY);
			h->on_verify(r->pol_st, &v, &vi);
			LEFT(r->pw);
		}
	}
	if (r->agent == AG_WAIT)
		r->agent = AG_DRAFT;
}

/* Mark queued positions [lo, hi) pre-verified, counting per batch. */
static void settle(struct replay *r, uint32_t qi, uint32_t lo, uint32_t hi)
{
	for (uint32_t i = qi; i < r->bq_count; i++) {
		struct batch *b = bq_at(r, i);
		const uint32_t be = b->start + b->len;
		if (b->start >= hi)
			break;
		for (uint32_t q = lo > b->start ? lo : b->start;
		     q < be && q < hi; q++) {
			if (!(r->flags[q] & POS_SETTLED)) {
				r->flags[q] |= POS_SETTLED;
				b->settled++;
				r->q_settled += b->state == B_QUEUED;
			}
		}
	}
}

static void finish_preverify(struct replay *r, const struct task *t, double now)
{
	double sw = r->switch_s;
	int rejected = 0;
	uint32_t dropped = 0;
	enum replay_outcome out = REPLAY_OUT_NONE;

	if (t->epoch == r->epoch) {
		/* clip to positions still queued (the NPU may have taken some) */
		uint32_t lo = t->pos, hi = t->pos + t->count, q0 = INF_POS;
		uint32_t qi = 0;
		for (uint32_t i = 0; i < r->bq_count; i++) {
			const struct batch *b = bq_at(r, i);
			if (b->state == B_QUEUED) {
				q0 = b->start;
				qi = i;
				break;
			}
		}
		if (q0 != INF_POS && lo < q0)
			lo = q0;
		if (hi > r->D)
			hi = r->D;
		if (q0 != INF_POS && lo < hi &&
		    (r->F == INF_POS || r->F >= lo)) {
			if (r->F != INF_POS && r->F < hi) {
				uint32_t f = r->F;
				uint32_t i = qi;
				while (bq_at(r, i)->start + bq_at(r, i)->len <=
				       f)
					i++;
				struct batch *bf = bq_at(r, i);
				settle(r, qi, lo, f + 1);
				dropped = discard_after(r, i + 1, f + 1, now);
				/* the draft at f is replaced by the target's token */
				if (!(r->flags[f] & POS_TARGET))
					waste(r, r->pcost[f].s, r->pcost[f].j);
				r->flags[f] = POS_TARGET | POS_SETTLED;
				r->q_tokens -= bf->len - (f + 1 - bf->start);
				bf->len = f + 1 - bf->start;
				bf->corrected = 1;
				bf->corrected_at = f;
				r->m.preverify_rejections++;
				rejected = 1;
				out = REPLAY_OUT_REJECTED;
			} else {
				settle(r, qi, lo, hi);
				out = REPLAY_OUT_ACCEPTED;
			}
		}
	}
	emit(r, r->dd, REPLAY_EV_PREVERIFY, t->start_s + sw, now - sw, t->count,
	     0, out);
	if (sw > 0)
		emit(r, r->dd, REPLAY_EV_SWITCH, now - sw, now, 0, 0,
		     REPLAY_OUT_NONE);
	if (AHASD_HAS_HOOK(r->pol->policy, struct ahasd_policy_hooks,
	                   on_preverify)) {
		struct ahasd_task_info ti = { sizeof ti, t->count,
			                      t->busy_s - 2.0 * sw, dropped };
		IN_POLICY(r, ON_PREVERIFY);
		r->pol->policy->on_preverify(r->pol_st, &ti, rejected);
		LEFT(r->pw);
	}
	if (r->agent == AG_WAIT || r->agent == AG_PREVERIFY)
		r->agent = AG_DRAFT;
}

static void dump_state(struct replay *r, char *err, size_t errlen,
                       const char *why)
{
	size_t off = (size_t)snprintf(
	        err, errlen,
	        "replay stuck (%s) in sequence %u: C=%u D=%u F=%u N=%u "
	        "agent=%d batches=%u; devices:",
	        why, r->seq->id, r->C, r->D, r->F == INF_POS ? 0 : r->F, r->N,
	        (int)r->agent, r->bq_count);
	for (unsigned i = 0; i < r->n_dev && off < errlen; i++)
		off += (size_t)snprintf(err + off, errlen - off,
		                        " [%u: task %d until %.9g]", i,
		                        (int)r->run[i].kind, r->run[i].end_s);
	for (uint32_t i = 0; i < r->bq_count && off < errlen; i++) {
		const struct batch *b = bq_at(r, i);
		off += (size_t)snprintf(err + off, errlen - off,
		                        " {batch %llu [%u,+%u) state %d}",
		                        (unsigned long long)b->id, b->start,
		                        b->len, (int)b->state);
	}
}

/* ---- the loops ---- */

/* The running task that ends first (the lowest index on a tie), or -1. */
static int next_task(const struct replay *r)
{
	const struct task *a = &r->run[0], *b = &r->run[1];
	if (r->n_dev < 2 || b->kind == T_NONE)
		return a->kind != T_NONE ? 0 : -1;
	return a->kind != T_NONE && !(b->end_s < a->end_s) ? 0 : 1;
}

/* The draft that just ended on the draft device, now T_NONE there. */
static struct draft_step draft_done(struct replay *r, double now)
{
	struct task *rt = &r->run[r->dd];
	const struct draft_step d = { rt->start_s, rt->busy_s, rt->energy_j,
		                      rt->epoch, rt->pos };
	rt->kind = T_NONE;
	r->last_end[r->dd] = now;
	if (!r->shared)
		set_pim_state(r, now, 0);
	return d;
}

static int run_async(struct replay *r, char *err, size_t errlen)
{
	double now = r->clock;
	uint64_t steps = 0;
	for (;;) {
		if (r->refused)
			break;
		if (r->C < r->N)
			dispatch(r, now);
		const int next = next_task(r);
		if (next < 0) {
			if (r->C >= r->N)
				break;
			dump_state(r, err, errlen, "no task can run");
			return -EDEADLK;
		}
		if (++steps > STUCK_LIMIT) {
			dump_state(r, err, errlen, "no progress");
			return -EDEADLK;
		}
		now = r->run[next].end_s;
		if (next == r->dd && r->run[next].kind == T_DRAFT) {
			/* A run of draft steps, each the next event: the draft
			 * device drafts on while the other device's task ends
			 * later. The same steps as the loop around it, without
			 * its detours: dispatch() reduced to what can happen
			 * after a draft, and the next event found by comparing
			 * the two devices' ends (the lowest index on a tie). */
			for (;;) {
				const struct draft_step d = draft_done(r, now);
				finish_draft(r, &d, now);
				if (r->C >= r->N || r->agent != AG_DRAFT)
					break;
				try_start_verify(r, now);
				if (r->run[r->dd].kind != T_NONE ||
				    !start_draft(r, now))
					break;
				const struct task *o = &r->run[r->vd];
				const double end = r->run[r->dd].end_s;
				if (r->dd != r->vd && o->kind != T_NONE &&
				    (r->vd < r->dd ? !(end < o->end_s)
				                   : o->end_s < end))
					break;
				if (++steps > STUCK_LIMIT) {
					dump_state(r, err, errlen,
					           "no progress");
					return -EDEADLK;
				}
				now = end;
			}
			continue;
		}
		if (next == r->vd && (r->run[next].kind == T_VERIFY ||
		                      r->run[next].kind == T_OFFLOAD))
			cd_finish(r, &r->run[next], now);
		struct task t = r->run[next];
		r->run[next].kind = T_NONE;
		r->last_end[next] = now;
		if (next != r->vd)
			set_pim_state(r, now, 0);
		switch (t.kind) {
		case T_VERIFY: finish_verify(r, &t, now); break;
		case T_PREVERIFY: finish_preverify(r, &t, now); break;
		case T_OFFLOAD:
			emit(r, r->vd, REPLAY_EV_OFFLOAD, t.start_s, now, 0, 0,
			     REPLAY_OUT_NONE);
			break;
		default: break;
		}
	}
	if (r->refused) {
		*r->pw = r->refused_where;
		snprintf(err, errlen, "%s", r->refusal);
		return -EPROTO;
	}
	/* Left over once C reached N: a look-ahead batch [N-1, N) whose token
	 * the last pass's bonus committed (confirmed: accepted unless
	 * pre-verification replaced it), or a batch a late, wasted draft
	 * left open (discarded, as discard_after does with open batches). */
	while (r->bq_count) {
		const struct batch *b = bq_at(r, 0);
		uint32_t acc = b->corrected ? b->corrected_at - b->start
		                            : b->len;
		if (b->state == B_OPEN)
			drafter_result(r, b, 0, 0, 1, now);
		else
			drafter_result(r, b, acc, 0, 0, now);
		r->bq_head = (r->bq_head + 1) % r->bq_cap;
		r->bq_count--;
	}
	r->clock = now;
	return 0;
}

/* Synchronous: draft a batch, verify it, repeat; the devices wait on each
 * other. With task placement a step runs on its device (a PIM draft
 * without the AAU also occupies the compute device for the work it
 * ships, drawn at the step's start); with a split placement each device
 * draws its share one after the other, then the transfers (the real order
 * interleaves per operator). */
static double sync_step(struct replay *r, enum hw_task kind, unsigned m,
                        unsigned kv, double now, uint64_t batch,
                        enum replay_outcome out, enum replay_event_kind ek,
                        const struct hw_cost *cached, double *energy_j)
{
	const struct hw_cost *c = cached ? cached : cost_at(r, kind, m, kv);
	*energy_j = account_energy(r, c);
	r->m.offload_bytes += c->offload_bytes;
	const int pim = hw_plan_platform(r->cfg.plan)->pim;
	if (pim >= 0) {
		r->sb_pim += c->busy_s[pim];
		r->sb_total += c->time_s;
	}
	if (!r->split_sync) {
		const int dev = hw_task_device(r->cfg.plan, kind);
		account_busy(r, dev, now, c->time_s);
		emit(r, dev, ek, now, now + c->time_s, m, batch, out);
		if (dev != r->vd && c->busy_s[r->vd] > 0) {
			account_busy(r, r->vd, now, c->busy_s[r->vd]);
			emit(r, r->vd, REPLAY_EV_OFFLOAD, now,
			     now + c->busy_s[r->vd], m, batch, REPLAY_OUT_NONE);
			r->m.offload_s += c->busy_s[r->vd];
		}
		return c->time_s;
	}
	double t = now;
	for (unsigned i = 0; i < r->n_dev; i++) {
		if (c->busy_s[i] <= 0)
			continue;
		account_busy(r, (int)i, t, c->busy_s[i]);
		emit(r, (int)i, ek, t, t + c->busy_s[i], m, batch, out);
		t += c->busy_s[i];
	}
	if (now + c->time_s > t + 1e-15) {
		/* activations crossing devices: both wait; drawn on the verify
		 * lane, counted as busy on neither. The verify lane is idle
		 * while the other devices ran their shares. */
		if (t < r->last_end[r->vd])
			t = r->last_end[r->vd];
		else if (t > r->last_end[r->vd] + 1e-15)
			emit(r, r->vd, REPLAY_EV_IDLE, r->last_end[r->vd], t, 0,
			     0, REPLAY_OUT_NONE);
		emit(r, r->vd, REPLAY_EV_TRANSFER, t, now + c->time_s, 0, batch,
		     REPLAY_OUT_NONE);
		r->last_end[r->vd] = now + c->time_s;
	}
	return c->time_s;
}

/* The PIM's share of a finished batch's latency (drafting + verifying). */
static void record_share(struct replay *r)
{
	if (hw_plan_platform(r->cfg.plan)->pim < 0 || r->sb_total <= 0)
		return;
	const double f = r->sb_pim / r->sb_total;
	if (!r->m.share_batches || f < r->m.pim_share_min)
		r->m.pim_share_min = f;
	if (!r->m.share_batches || f > r->m.pim_share_max)
		r->m.pim_share_max = f;
	r->m.pim_share_sum += f;
	r->m.share_batches++;
	r->sb_pim = r->sb_total = 0;
}

static int run_sync(struct replay *r, char *err, size_t errlen)
{
	double now = r->clock;
	r->sb_pim = r->sb_total = 0;
	while (r->C < r->N) {
		struct batch *b = open_batch(r, now);
		if (!b) {
			dump_state(r, err, errlen, "cannot draft");
			return -EDEADLK;
		}
		uint32_t p = next_pos(r);
		chain_root(r, p);
		int off = r->F != INF_POS || !on_path(r, p);
		struct draft_step t = { .start_s = now,
			                .epoch = r->epoch,
			                .pos = p };
		t.busy_s = sync_step(
		        r, HW_TASK_DRAFT, r->draft_m, r->P + p, now, b->id,
		        off ? REPLAY_OUT_WASTED : REPLAY_OUT_ACCEPTED,
		        REPLAY_EV_DRAFT, draft_step_cost(r, b, p), &t.energy_j);
		now += t.busy_s;
		finish_draft(r, &t, now);
		if (r->bq_count && bq_at(r, 0)->state == B_QUEUED) {
			struct batch *vb = bq_at(r, 0);
			uint32_t e = vb->start + vb->len;
			int rej = r->F != INF_POS && r->F < e;
			struct task vt = { .kind = T_VERIFY,
				           .start_s = now,
				           .epoch = r->epoch,
				           .count = 1 };
			mark_verifying(r, vb);
			vt.busy_s = sync_step(
			        r, HW_TASK_VERIFY, verify_m(r, vb->len),
			        r->P + e, now, vb->id,
			        rej ? REPLAY_OUT_REJECTED : REPLAY_OUT_ACCEPTED,
			        REPLAY_EV_VERIFY, NULL, &vt.energy_j);
			now += vt.busy_s;
			finish_verify(r, &vt, now);
			record_share(r);
		}
	}
	r->clock = now;
	return 0;
}

/* ---- public ---- */

int replay_create(struct replay **out, const struct replay_config *cfg,
                  char *err, size_t errlen)
{
	struct replay *r = calloc(1, sizeof *r);
	if (!r) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	r->cfg = *cfg;
	if (!r->cfg.queue_capacity)
		r->cfg.queue_capacity = 32;
	if (!r->cfg.max_draft)
		r->cfg.max_draft = 64;
	if (r->cfg.max_draft + 1 > HW_MAX_M)
		r->cfg.max_draft = HW_MAX_M - 1;
	r->pol = cfg->policy->desc;
	r->pol_st = cfg->policy->state;
	r->dr = cfg->drafter->desc;
	r->dr_st = cfg->drafter->state;
	const struct trace_header fh = { .features = cfg->trace_features };
	r->ent_full = trace_header_entropy_full(&fh);
	if (!r->ent_full) {
		/* FORMAT.md, "Traces without entropies" */
		const struct plugin *pl[2] = { cfg->drafter, cfg->policy };
		for (int i = 0; i < 2; i++) {
			if (!(plugin_needs(pl[i]) & AHASD_NEEDS_ENTROPY))
				continue;
			snprintf(
			        err, errlen,
			        "%s %s needs the draft's entropy and "
			        "top-1 probability of every drafted token "
			        "(AHASD_NEEDS_ENTROPY), which this trace does "
			        "not "
			        "have (format 1.1, %s); fixed-length drafting, "
			        "BanditSpec and the sync and async policies "
			        "run on "
			        "it%s",
			        i ? "policy" : "drafter", pl[i]->desc->name,
			        cfg->trace_features & TRACE_F_NO_ENTROPY
			                ? "no_entropy"
			                : "accept_runs: no entropies of "
			                  "rejected "
			                  "drafts",
			        i && !strcmp(pl[i]->desc->name, "ahasd")
			                ? ", and so does ahasd with edc=0"
			                : "");
			free(r);
			return -EINVAL;
		}
	}
	if (cfg->trace_features & TRACE_F_ACCEPT_RUNS) {
		if (cfg->run_max < 1 || cfg->tree_tokens < cfg->run_max) {
			snprintf(err, errlen,
			         "accepted runs: accept_run_max %u and "
			         "tree_tokens %u (expected 1 <= R <= T)",
			         cfg->run_max, cfg->tree_tokens);
			free(r);
			return -EINVAL;
		}
		r->run_r = cfg->run_max;
		r->run_t = cfg->tree_tokens;
		r->tree = r->run_t != r->run_r;
	}
	r->draft_m = levels_m(r, 1);
	if (r->tree) {
		/* one verification of d levels feeds 1 + ceil(d*T/R) <= 256 */
		const uint64_t cap = (uint64_t)(HW_MAX_M - 1) * r->run_r /
		                     r->run_t;
		if (r->cfg.max_draft > cap)
			r->cfg.max_draft = cap ? (uint32_t)cap : 1;
	}
	r->lookup = hw_plan_lookup(cfg->plan);
	if (r->lookup) {
		hw_lookup_cost(cfg->plan, 0, &r->lk[0]);
		hw_lookup_cost(cfg->plan, 1, &r->lk[1]);
	}
	r->pw = cfg->policy->where ? cfg->policy->where : &r->where_none;
	r->dw = cfg->drafter->where ? cfg->drafter->where : &r->where_none;
	IN_POLICY(r, EXEC_MODE);
	r->mode = r->pol->policy->exec_mode(r->pol_st);
	if (r->mode != AHASD_EXEC_OPERATOR_SYNC &&
	    r->mode != AHASD_EXEC_TASK_ASYNC) {
		/* the where word stays on exec_mode */
		snprintf(err, errlen,
		         "policy %s: exec_mode returned mode = %u; "
		         "expected 0 (operator-level sync) or 1 (task-level "
		         "async)",
		         r->pol->name, r->mode);
		free(r);
		return -EPROTO;
	}
	LEFT(r->pw);
	const struct hw_platform *p = hw_plan_platform(cfg->plan);
	r->n_dev = p->n_dev;
	r->dd = hw_task_device(cfg->plan, HW_TASK_DRAFT);
	r->vd = hw_task_device(cfg->plan, HW_TASK_VERIFY);
	r->shared = r->dd == r->vd;
	r->qlat = p->queue_latency_s;
	r->verify_batches = p->verify_batches;
	r->split_sync = p->sync_placement != HW_SYNC_TASK && p->n_dev > 1;
	r->pim_state = 0;
	r->switch_s = hw_switch_cost(cfg->plan, &r->switch_j);
	if (r->shared)
		r->switch_s = 0, r->switch_j = 0;
	struct hw_cost c;
	hw_task_cost(cfg->plan, HW_TASK_VERIFY, verify_m(r, 4), 1024, &c);
	r->prof_verify = c.time_s / 1024.0;
	hw_task_cost(cfg->plan, HW_TASK_DRAFT, r->draft_m, 1024, &c);
	r->prof_draft = c.time_s;
	hw_task_cost(cfg->plan, HW_TASK_PREVERIFY, levels_m(r, 4), 1024, &c);
	r->prof_preverify = c.time_s / 4.0;
	/* every batch holds >= 1 token, so capacity + the open one suffice */
	r->bq_cap = r->cfg.queue_capacity + 2;
	r->bq = calloc(r->bq_cap, sizeof *r->bq);
	r->grp = calloc(r->bq_cap, sizeof *r->grp);
	r->cc = calloc(CC_SLOTS, sizeof *r->cc);
	if (!r->bq || !r->grp || !r->cc) {
		free(r->bq);
		free(r->grp);
		free(r->cc);
		free(r);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	*out = r;
	return 0;
}

int replay_sequence(struct replay *r, const struct trace_seq *seq,
                    struct replay_seq_result *out, char *err, size_t errlen)
{
	if (!seq->accept_run !=
	            !(r->cfg.trace_features & TRACE_F_ACCEPT_RUNS) ||
	    (r->ent_full && (!seq->entropy || !seq->top1))) {
		snprintf(err, errlen,
		         "sequence %u: %s, but the run was set up "
		         "for a trace %s",
		         seq->id,
		         seq->accept_run ? "accepted-run lengths"
		         : !seq->entropy ? "no entropies"
		                         : "no accepted runs",
		         seq->accept_run || !seq->entropy ? "without them"
		                                          : "with them");
		return -EINVAL;
	}
	if (seq->n > r->flags_cap) {
		uint8_t *f = realloc(r->flags, seq->n);
		if (f)
			r->flags = f;
		struct pos_cost *pc = realloc(r->pcost, seq->n * sizeof *pc);
		if (pc)
			r->pcost = pc;
		if (!f || !pc) {
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		r->flags_cap = seq->n;
	}
	/* a draft at position p always runs at KV length P + p: its cost is
	 * computed once per run, however often p is redrafted */
	if ((uint64_t)seq->prompt_len + seq->n > UINT32_MAX ||
	    dcost_cover(r, seq->prompt_len, seq->prompt_len + seq->n) < 0) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	r->draft_cost = r->dcost + seq->prompt_len;
	memset(r->flags, 0, seq->n);
	r->seq = seq;
	r->runs = seq->accept_run;
	r->root = r->root_off = INF_POS;
	r->N = seq->n;
	r->P = seq->prompt_len;
	r->C = r->D = 0;
	r->F = INF_POS;
	r->epoch++;
	r->bq_head = r->bq_count = 0;
	r->q_batches = r->q_tokens = r->q_settled = r->unv_batches = 0;
	r->agent = AG_DRAFT;
	memset(r->run, 0, sizeof r->run);
	memset(r->seq_busy, 0, sizeof r->seq_busy);
	memset(&r->sr, 0, sizeof r->sr);
	r->seq_dyn_j = 0;
	for (unsigned i = 0; i < r->n_dev; i++)
		r->last_end[i] = r->clock;

	struct ahasd_seq_info si = { sizeof si, seq->id, seq->prompt_len,
		                     seq->n, r->cfg.seed };
	if (AHASD_HAS_HOOK(r->pol->policy, struct ahasd_policy_hooks,
	                   begin_sequence)) {
		IN_POLICY(r, BEGIN_SEQUENCE);
		r->pol->policy->begin_sequence(r->pol_st, &si);
		LEFT(r->pw);
	}
	if (AHASD_HAS_HOOK(r->dr->drafter, struct ahasd_drafter_hooks,
	                   begin_sequence)) {
		IN_DRAFTER(r, BEGIN_SEQUENCE);
		r->dr->drafter->begin_sequence(r->dr_st, &si);
		LEFT(r->dw);
	}

	const double t0 = r->clock;
	const uint64_t drafted0 = r->m.drafted, accepted0 = r->m.accepted,
	               wasted0 = r->m.wasted;
	int rc = r->mode == AHASD_EXEC_OPERATOR_SYNC
	                 ? run_sync(r, err, errlen)
	                 : run_async(r, err, errlen);
	if (rc < 0)
		return rc;
	const double dt = r->clock - t0;
	const struct hw_platform *p = hw_plan_platform(r->cfg.plan);
	double static_j = 0;
	for (unsigned i = 0; i < r->n_dev; i++) {
		if (r->clock > r->last_end[i] + 1e-15)
			emit(r, (int)i, REPLAY_EV_IDLE, r->last_end[i],
			     r->clock, 0, 0, REPLAY_OUT_NONE);
		r->m.busy_s[i] += r->seq_busy[i];
		static_j += hw_device_static_w(&p->dev[i]) * dt;
	}
	r->sr.seq = seq->id;
	r->sr.prompt_len = seq->prompt_len;
	r->sr.committed = r->C;
	r->sr.time_s = dt;
	r->sr.energy_j = r->seq_dyn_j + static_j;
	r->sr.drafted = r->m.drafted - drafted0;
	r->sr.accepted = r->m.accepted - accepted0;
	r->sr.wasted = r->m.wasted - wasted0;
	r->m.sequences++;
	r->m.committed += r->C;
	r->m.dynamic_j += r->seq_dyn_j;
	if (r->C != r->N || r->sr.drafted != r->sr.accepted + r->sr.wasted) {
		snprintf(err, errlen,
		         "sequence %u: accounting broken: committed %u of %u, "
		         "drafted %llu != accepted %llu + wasted %llu",
		         seq->id, r->C, r->N, (unsigned long long)r->sr.drafted,
		         (unsigned long long)r->sr.accepted,
		         (unsigned long long)r->sr.wasted);
		return -EPROTO;
	}
	if (out)
		*out = r->sr;
	return 0;
}

void replay_finish(struct replay *r)
{
	const struct hw_platform *p = hw_plan_platform(r->cfg.plan);
	r->m.time_s = r->clock;
	r->m.static_j = 0;
	for (unsigned i = 0; i < r->n_dev; i++) {
		double st = hw_device_static_w(&p->dev[i]) * r->m.time_s;
		r->m.idle_s[i] = r->m.time_s - r->m.busy_s[i];
		r->m.static_j += st;
		r->m.dev_energy_j[i] += st;
	}
	r->m.energy_j = r->m.dynamic_j + r->m.static_j;
}

const struct replay_metrics *replay_metrics(const struct replay *r)
{
	return &r->m;
}

void replay_free(struct replay **rp)
{
	if (!rp || !*rp)
		return;
	free((*rp)->flags);
	free((*rp)->dcost);
	free((*rp)->cc);
	free((*rp)->pcost);
	free((*rp)->bq);
	free((*rp)->grp);
	free(*rp);
	*rp = NULL;
}
