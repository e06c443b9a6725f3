/* hw_plan.c - a platform bound to a draft and a target model: where each
 * model's weights live (PIM ranks and the channels they sit on, what stays
 * resident and what streams over the host link), where each task and, in
 * synchronous schedules, each operator runs, and the cost of a task at
 * (tokens M, KV length L). See hw.h and replay/HWMODEL.md.
 *
 * Only attention depends on L. A plan keeps, per task and M, the sum of
 * every other operator and evaluates the attention operators at L.
 */
#include "hw.h"
#include "hw_cost.h"
#include "util.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HW_MAX_OPS      1024 /* operators per model a plan accepts */
#define HW_MAX_LOPS     64   /* KV-dependent operators per model */
#define HW_MAX_CHANNELS 64

/* Sums of the KV-independent part of a task at one M. */
struct mconst {
	double time;
	double busy[HW_MAX_DEV], e[HW_MAX_DEV];
	double aux;    /* shipped work on the compute device */
	unsigned devs; /* devices whose task overhead is in time */
};

/* A transfer between two consecutive operators, for split placement. */
struct trans {
	uint32_t from, to; /* op indices */
	double count;      /* times per pass */
};

/* A task: its model, its device in task placement, and the synchronous
 * placement's per-operator devices. */
struct tplan {
	int model; /* 0 draft, 1 target */
	int dev;   /* task placement */
	uint32_t lops[HW_MAX_LOPS], nlop;
	struct mconst tc[HW_MAX_M + 1]; /* task placement */
	/* verification on the compute device while the PIM drafts [0] or
	 * pre-verifies [1]: the same at the bandwidth share left */
	struct mconst (*tcw)[HW_MAX_M + 1];
	/* synchronous split placement (specpim, best) */
	struct mconst sc[HW_MAX_M + 1];
	int8_t *op_dev; /* [(HW_MAX_M + 1) * n_ops]; -1: chosen at L */
	struct trans *trs;
	uint32_t ntr;
};

struct hw_plan {
	struct hw_platform p;
	int lookup;                   /* the draft is a lookup: models[0]
	                                  * is empty */
	struct trace_model models[2]; /* draft, target (ops copied) */
	struct hw_plan_info info;
	struct hw_dctx ctx[2][HW_MAX_DEV];
	struct hw_dctx ctx_while[2];     /* the target on the compute device
	                                  * while the PIM drafts / pre-verifies */
	double stream_s[2], stream_j[2]; /* per pass of each model */
	double tp_s[2];                  /* tensor-parallel syncs per pass */
	double mode_s;                   /* PIM-mode entry and exit */
	double beta[HW_TASK_COUNT];
	struct tplan task[HW_TASK_COUNT];
};

static int task_model(enum hw_task t)
{
	return t == HW_TASK_DRAFT ? 0 : 1;
}

int hw_task_device(const struct hw_plan *plan, enum hw_task t)
{
	const struct hw_platform *p = &plan->p;
	if (t == HW_TASK_VERIFY || p->pim < 0)
		return p->compute;
	return p->pim;
}

const struct hw_platform *hw_plan_platform(const struct hw_plan *plan)
{
	return &plan->p;
}

void hw_plan_get_info(const struct hw_plan *plan, struct hw_plan_info *info)
{
	*info = plan->info;
}

double hw_compute_bw_share(const struct hw_plan *plan, enum hw_task pim_task)
{
	return plan->beta[pim_task];
}

double hw_switch_cost(const struct hw_plan *plan, double *energy_j)
{
	const struct hw_platform *p = &plan->p;
	if (energy_j)
		*energy_j = 0; /* no published figure for the gating energy */
	if (p->pim < 0)
		return 0;
	return p->gated_switch ? p->switch_gated_s : p->switch_slow_s;
}

/* ------------------------------------------------------------------ */
/* Memory: residency, ranks, channels                                  */

static double model_weight_bytes(const struct hw_platform *p,
                                 const struct trace_model *m)
{
	/* as captured (fp32, int4, ...), re-deployed at the platform's width */
	if (m->weight_bytes && m->weight_bits)
		return (double)m->weight_bytes * p->weight_bits /
		       m->weight_bits;
	/* a hand-built model: its matrices */
	double e = 0;
	for (uint32_t i = 0; i < m->n_ops; i++) {
		const struct trace_op *op = &m->ops[i];
		if (op->kind == TRACE_OP_GEMM || op->kind == TRACE_OP_EMBED)
			e += (double)op->k * op->n * op->repeat;
	}
	return e * p->weight_bits / 8.0;
}

static double model_kv_bytes(const struct hw_platform *p,
                             const struct trace_model *m, double tokens)
{
	double per_token = 0;
	for (uint32_t i = 0; i < m->n_ops; i++) {
		const struct trace_op *op = &m->ops[i];
		if (op->kind == TRACE_OP_ATTENTION)
			per_token += 2.0 * op->kv_heads * op->head_dim *
			             (p->kv_bits / 8.0) * op->repeat;
	}
	return per_token * tokens;
}

static unsigned model_layers(const struct trace_model *m)
{
	unsigned n = 1;
	for (uint32_t i = 0; i < m->n_ops; i++)
		if (m->ops[i].repeat > n)
			n = m->ops[i].repeat;
	return n;
}

static unsigned popcount64(uint64_t x)
{
	return (unsigned)__builtin_popcountll(x);
}

/* Channels of ranks [r0, r0 + n): rank r sits on channel r mod channels. */
static uint64_t rank_channels(unsigned r0, unsigned n, unsigned channels)
{
	uint64_t m = 0;
	for (unsigned r = r0; r < r0 + n && popcount64(m) < channels; r++)
		m |= 1ull << (r % channels);
	return m;
}

static int plan_memory(struct hw_plan *plan, char *err, size_t errlen)
{
	struct hw_platform *p = &plan->p;
	struct hw_plan_info *in = &plan->info;
	const struct trace_model *md = &plan->models[0], *mt = &plan->models[1];
	const double tokens = p->kv_reserve_tokens ? p->kv_reserve_tokens
	                                           : mt->seq_len;
	const struct hw_device *pd = p->pim >= 0 ? &p->dev[p->pim] : NULL;

	in->draft_bytes = model_weight_bytes(p, md);
	in->target_bytes = model_weight_bytes(p, mt);
	in->draft_kv_bytes = model_kv_bytes(p, md, tokens);
	in->target_kv_bytes = model_kv_bytes(p, mt, tokens);
	const double mem = p->memory_bytes;
	const double need = in->draft_bytes + in->target_bytes +
	                    in->draft_kv_bytes + in->target_kv_bytes;
	double dres = in->draft_bytes, tres = in->target_bytes;
	if (mem > 0 && need > mem) {
		/* resident first: both KV caches, then the draft, then as much
		 * of the target as fits; the rest streams on every pass */
		double avail = mem - in->draft_kv_bytes - in->target_kv_bytes;
		if (avail < 0) {
			util_set_err(
			        err, errlen,
			        "%s: the KV caches of %s and %s "
			        "(%.3g GB at %.0f tokens) exceed memory_bytes "
			        "%.3g GB",
			        p->name, md->name, mt->name,
			        (in->draft_kv_bytes + in->target_kv_bytes) /
			                1e9,
			        tokens, mem / 1e9);
			return -EINVAL;
		}
		dres = fmin(in->draft_bytes, avail);
		tres = fmin(in->target_bytes, avail - dres);
		in->draft_stream_bytes = in->draft_bytes - dres;
		in->target_stream_bytes = in->target_bytes - tres;
		if (p->capacity_policy == HW_CAP_ERROR ||
		    p->host_link_bw <= 0) {
			util_set_err(
			        err, errlen,
			        "%s: %s + %s need %.3g GB (weights "
			        "%.3g + %.3g, KV %.3g at %.0f tokens), "
			        "memory_bytes "
			        "is %.3g GB%s",
			        p->name, md->name, mt->name, need / 1e9,
			        in->draft_bytes / 1e9, in->target_bytes / 1e9,
			        (in->draft_kv_bytes + in->target_kv_bytes) /
			                1e9,
			        tokens, mem / 1e9,
			        p->host_link_bw <= 0
			                ? " and the platform has no host link "
			                  "to "
			                  "stream the rest (host_link_bw = 0)"
			                : " (capacity_policy = error)");
			return -EINVAL;
		}
	}
	for (int m = 0; m < 2; m++) {
		const double b = m ? in->target_stream_bytes
		                   : in->draft_stream_bytes;
		plan->stream_s[m] = b > 0 ? b / p->host_link_bw +
		                                    p->host_link_latency_s
		                          : 0;
		plan->stream_j[m] = b * 8.0 * p->host_link_pj_per_bit * 1e-12;
		plan->tp_s[m] = p->dev[p->compute].kind == HW_DEV_GPU &&
		                                p->dev[p->compute].count > 1
		                        ? 2.0 * model_layers(&plan->models[m]) *
		                                  p->dev[p->compute].tp_sync_s
		                        : 0;
	}

	/* ranks and channels */
	uint64_t chans[2] = { ~0ull, ~0ull };
	unsigned nch = 1;
	if (pd) {
		nch = pd->channels;
		if (p->pim_layout == HW_PIM_STRIPED) {
			in->draft_ranks = in->target_ranks = pd->ranks;
			chans[0] = chans[1] = rank_channels(0, pd->ranks, nch);
		} else {
			unsigned need_d = (unsigned)ceil(
			        (dres + in->draft_kv_bytes) / pd->rank_bytes);
			unsigned rt = (unsigned)ceil(
			        (tres + in->target_kv_bytes) / pd->rank_bytes);
			if (need_d < 1 && !plan->lookup)
				need_d = 1; /* a lookup needs no rank */
			if (rt < 1)
				rt = 1;
			unsigned rd = need_d;
			if (p->pim_draft_ranks) {
				rd = p->pim_draft_ranks;
				if (p->pim_rank_alloc == HW_RANKS_ALL &&
				    rd < pd->ranks)
					rt = pd->ranks - rd;
			} else if (p->pim_rank_alloc == HW_RANKS_ALL &&
			           need_d + rt <= pd->ranks) {
				/* every rank works: the draft's share in proportion to
				 * its bytes, each model at least what it fills */
				const double fd = (dres + in->draft_kv_bytes) /
				                  (dres + tres +
				                   in->draft_kv_bytes +
				                   in->target_kv_bytes);
				rd = (unsigned)lround(fd * pd->ranks);
				if (rd < need_d)
					rd = need_d;
				if (pd->ranks - rd < rt)
					rd = pd->ranks - rt;
				rt = pd->ranks - rd;
			}
			if (rd < need_d || rd + rt > pd->ranks) {
				util_set_err(
				        err, errlen,
				        "%s: partitioned PIM layout: %s "
				        "needs %u rank(s) and %s %u of %u "
				        "(%.3g GB "
				        "each)%s",
				        p->name, md->name, need_d, mt->name, rt,
				        pd->ranks, pd->rank_bytes / 1e9,
				        rd < need_d
				                ? ", pim_draft_ranks is too "
				                  "small"
				                : "; try pim_layout = striped");
				return -EINVAL;
			}
			in->draft_ranks = rd;
			in->target_ranks = rt;
			chans[0] = rank_channels(0, rd, nch);
			chans[1] = rank_channels(rd, rt, nch);
		}
		in->draft_channels = popcount64(chans[0]);
		in->target_channels = popcount64(chans[1]);
	}

	/* device contexts per model: the compute device reaches a model's
	 * weights over the channels its ranks sit on */
	for (int m = 0; m < 2; m++) {
		for (unsigned d = 0; d < p->n_dev; d++) {
			struct hw_dctx *c = &plan->ctx[m][d];
			const struct hw_device *dv = &p->dev[d];
			c->p = p;
			c->dev = (int)d;
			c->ranks = m ? in->target_ranks : in->draft_ranks;
			c->bw = dv->mem_bw *
			        (dv->kind == HW_DEV_GPU ? dv->count : 1);
			if (dv->kind != HW_DEV_PIM && pd)
				c->bw *= (double)popcount64(chans[m]) / nch;
		}
	}

	/* What a verification keeps of its bandwidth while the PIM works on
	 * the draft's ranks (drafting) or the target's (pre-verifying). The
	 * target is interleaved over the channels its ranks sit on, so the
	 * slowest channel sets the pace: one where a target rank is in PIM
	 * mode serves none of it (unless the PIM is non-blocking); one where
	 * another rank works loses the share of the bus that rank's commands
	 * hold (pim_bus_block). */
	for (int t = 0; t < HW_TASK_COUNT; t++) {
		plan->beta[t] = 1.0;
		if (!pd || t == HW_TASK_VERIFY)
			continue;
		const unsigned nt = in->target_ranks, nd = in->draft_ranks;
		const unsigned t0 = p->pim_layout == HW_PIM_STRIPED ? 0 : nd;
		unsigned w0 = t == HW_TASK_DRAFT ? 0 : t0;
		unsigned nw = t == HW_TASK_DRAFT ? nd : nt;
		double beta = 1.0;
		for (unsigned c = 0; c < nch; c++) {
			if (!(chans[1] & (1ull << c)))
				continue;
			int working = 0, mine_working = 0;
			for (unsigned r = w0; r < w0 + nw; r++) {
				if (r % nch != c)
					continue;
				working = 1;
				mine_working |= r >= t0 && r < t0 + nt;
			}
			const double a = mine_working && p->pim_blocking ? 0.0
			                 : working ? 1.0 - p->pim_bus_block
			                           : 1.0;
			if (a < beta)
				beta = a;
		}
		plan->beta[t] = beta;
	}
	for (int k = 0; k < 2; k++) {
		plan->ctx_while[k] = plan->ctx[1][p->compute];
		plan->ctx_while[k].bw *=
		        plan->beta[k ? HW_TASK_PREVERIFY : HW_TASK_DRAFT];
	}
	if (pd) {
		struct hw_pim_tiles tl;
		hw_pim_tiles(p, pd, &tl);
		plan->mode_s = pd->mode_cycles * tl.f_ref / tl.f;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Tasks                                                               */

static void add_opc(struct mconst *c, const struct hw_opc *o, int compute,
                    int dev)
{
	c->time += o->time;
	for (int i = 0; i < HW_MAX_DEV; i++) {
		c->busy[i] += o->busy[i];
		c->e[i] += o->e[i];
	}
	if (dev != compute)
		c->aux += o->busy[compute];
}

static void op_cost_at(const struct hw_plan *plan, int model, int dev,
                       const struct trace_op *op, unsigned m, unsigned kv,
                       struct hw_opc *o)
{
	hw_op_cost(&plan->ctx[model][dev], &plan->ctx[model][plan->p.compute],
	           op, m, kv, o);
}

/* Fixed costs of a task on `devs` (bit mask of devices it uses). */
static void task_fixed(const struct hw_plan *plan, int model, unsigned devs,
                       struct mconst *c)
{
	const struct hw_platform *p = &plan->p;
	for (unsigned d = 0; d < p->n_dev; d++) {
		if (!(devs & (1u << d)))
			continue;
		double t = p->dev[d].task_overhead_s;
		if ((int)d == p->pim)
			t += plan->mode_s;
		else
			t += plan->tp_s[model];
		c->time += t;
		c->busy[d] += t;
	}
}

/* Streaming the non-resident weights of the model, per pass. */
static void task_stream(const struct hw_plan *plan, int model,
                        struct hw_cost *out)
{
	const double s = plan->stream_s[model];
	if (s <= 0)
		return;
	const int cd = plan->p.compute;
	const double before = out->time_s;
	out->time_s = plan->p.offload_overlap ? fmax(out->time_s, s)
	                                      : out->time_s + s;
	out->busy_s[cd] += out->time_s - before;
	out->energy_dev_j[cd] += plan->stream_j[model];
	out->energy_j += plan->stream_j[model];
	out->offload_bytes = model ? plan->info.target_stream_bytes
	                           : plan->info.draft_stream_bytes;
}

/* Transitions between consecutive ops (runs of equal repeat form a block
 * executed `repeat` times, a layer): op i -> i+1 inside a block `repeat`
 * times, the wrap last -> first repeat - 1 times, between blocks once. */
static uint32_t build_transitions(const struct trace_model *mdl,
                                  struct trans *tr)
{
	uint32_t nt = 0, i = 0, prev_last = UINT32_MAX;
	while (i < mdl->n_ops) {
		uint32_t j = i, r;
		if (mdl->ops[i].repeat == 0) {
			i++;
			continue;
		}
		r = mdl->ops[i].repeat;
		while (j + 1 < mdl->n_ops && mdl->ops[j + 1].repeat == r)
			j++;
		if (prev_last != UINT32_MAX)
			tr[nt++] = (struct trans){ prev_last, i, 1 };
		for (uint32_t a = i; a < j; a++)
			tr[nt++] = (struct trans){ a, a + 1, r };
		if (j > i && r > 1)
			tr[nt++] = (struct trans){ j, i, r - 1.0 };
		prev_last = j;
		i = j + 1;
	}
	return nt;
}

static void add_transfer(const struct hw_plan *plan, const struct trace_op *to,
                         unsigned m, double count, struct mconst *c)
{
	const struct hw_platform *p = &plan->p;
	const double bytes = m * hw_op_in_width(to) * (p->act_bits / 8.0);
	c->time += count * (bytes / p->link_bw + p->link_latency_s);
	c->e[p->compute] += count * bytes * 8.0 * p->link_pj_per_bit * 1e-12;
}

/* The device an op runs on under SpecPIM's fixed mapping, or the fastest
 * at (m, kv) for the best split. */
static int fastest_dev(const struct hw_plan *plan, int model,
                       const struct trace_op *op, unsigned m, unsigned kv,
                       struct hw_opc *best)
{
	int bd = -1;
	for (unsigned d = 0; d < plan->p.n_dev; d++) {
		struct hw_opc o;
		op_cost_at(plan, model, (int)d, op, m, kv, &o);
		if (bd < 0 || o.time < best->time) {
			bd = (int)d;
			*best = o;
		}
	}
	return bd;
}

static int plan_task(struct hw_plan *plan, enum hw_task t, char *err,
                     size_t errlen)
{
	const struct hw_platform *p = &plan->p;
	struct tplan *tp = &plan->task[t];
	tp->model = task_model(t);
	tp->dev = hw_task_device(plan, t);
	const struct trace_model *mdl = &plan->models[tp->model];
	const uint32_t n = mdl->n_ops;
	const int cd = p->compute;

	for (uint32_t i = 0; i < n; i++) {
		if (!hw_op_kv_dependent(&mdl->ops[i]) || !mdl->ops[i].repeat)
			continue;
		if (tp->nlop == HW_MAX_LOPS) {
			util_set_err(err, errlen,
			             "model %s: more than %d attention "
			             "ops",
			             mdl->name, HW_MAX_LOPS);
			return -E2BIG;
		}
		tp->lops[tp->nlop++] = i;
	}
	/* task placement: everything on tp->dev */
	if (t == HW_TASK_VERIFY && p->pim >= 0) {
		tp->tcw = calloc(2, sizeof *tp->tcw);
		if (!tp->tcw) {
			util_set_err(err, errlen, "out of memory");
			return -ENOMEM;
		}
	}
	for (unsigned m = 1; m <= HW_MAX_M; m++) {
		struct mconst *c = &tp->tc[m];
		memset(c, 0, sizeof *c);
		task_fixed(plan, tp->model, 1u << tp->dev, c);
		for (uint32_t i = 0; i < n; i++) {
			const struct trace_op *op = &mdl->ops[i];
			struct hw_opc o;
			if (!op->repeat || hw_op_kv_dependent(op))
				continue;
			op_cost_at(plan, tp->model, tp->dev, op, m, 0, &o);
			add_opc(c, &o, cd, tp->dev);
			for (int k = 0; tp->tcw && k < 2; k++) {
				hw_op_cost(&plan->ctx_while[k],
				           &plan->ctx_while[k], op, m, 0, &o);
				tp->tcw[k][m].time += o.time;
			}
		}
		for (int k = 0; tp->tcw && k < 2; k++)
			tp->tcw[k][m].time += p->dev[cd].task_overhead_s +
			                      plan->tp_s[tp->model];
	}
	if (p->sync_placement == HW_SYNC_TASK || p->n_dev < 2)
		return 0;

	/* split placement for the synchronous schedule */
	tp->op_dev = malloc((size_t)(HW_MAX_M + 1) * (n ? n : 1));
	tp->trs = malloc(sizeof *tp->trs * 2 * (n + 1));
	if (!tp->op_dev || !tp->trs) {
		util_set_err(err, errlen, "out of memory");
		return -ENOMEM;
	}
	const uint32_t ntr = build_transitions(mdl, tp->trs);
	int8_t fixed[HW_MAX_OPS];
	if (p->sync_placement == HW_SYNC_SPECPIM) {
		/* SpecPIM maps each operator once, offline, for its draft
		 * length: draft steps at M = 1, verification at
		 * sync_ref_tokens, both at sync_ref_kv */
		const unsigned mref = t == HW_TASK_DRAFT ? 1
		                                         : p->sync_ref_tokens;
		for (uint32_t i = 0; i < n; i++) {
			struct hw_opc o;
			fixed[i] =
			        (int8_t)(mdl->ops[i].repeat
			                         ? fastest_dev(
			                                   plan, tp->model,
			                                   &mdl->ops[i], mref,
			                                   p->sync_ref_kv, &o)
			                         : -1);
		}
	}
	for (unsigned m = 1; m <= HW_MAX_M; m++) {
		struct mconst *c = &tp->sc[m];
		int8_t *od = tp->op_dev + (size_t)m * (n ? n : 1);
		unsigned devs = 1u << cd; /* the host issues every step */
		memset(c, 0, sizeof *c);
		for (uint32_t i = 0; i < n; i++) {
			const struct trace_op *op = &mdl->ops[i];
			struct hw_opc o;
			od[i] = -1;
			if (!op->repeat)
				continue;
			if (p->sync_placement == HW_SYNC_SPECPIM)
				od[i] = fixed[i];
			else if (hw_op_kv_dependent(op))
				continue; /* best: chosen at L */
			if (hw_op_kv_dependent(op)) {
				devs |= 1u << od[i];
				continue;
			}
			if (p->sync_placement == HW_SYNC_SPECPIM)
				op_cost_at(plan, tp->model, od[i], op, m, 0,
				           &o);
			else
				od[i] = (int8_t)fastest_dev(plan, tp->model, op,
				                            m, 0, &o);
			devs |= 1u << od[i];
			add_opc(c, &o, cd, od[i]);
		}
		task_fixed(plan, tp->model, devs, c);
		c->devs = devs;
		for (uint32_t k = 0; k < ntr; k++) {
			const struct trans *tr = &tp->trs[k];
			if (od[tr->from] >= 0 && od[tr->to] >= 0 &&
			    od[tr->from] != od[tr->to])
				add_transfer(plan, &mdl->ops[tr->to], m,
				             tr->count, c);
		}
	}
	tp->ntr = ntr;
	return 0;
}

static void cost_from(const struct mconst *c, const struct hw_platform *p,
                      struct hw_cost *out)
{
	memset(out, 0, sizeof *out);
	out->time_s = c->time;
	for (unsigned d = 0; d < p->n_dev; d++) {
		out->busy_s[d] = c->busy[d];
		out->energy_dev_j[d] = c->e[d];
	}
}

static void add_op(struct hw_cost *out, const struct hw_opc *o)
{
	out->time_s += o->time;
	for (int d = 0; d < HW_MAX_DEV; d++) {
		out->busy_s[d] += o->busy[d];
		out->energy_dev_j[d] += o->e[d];
	}
}

static void finish_cost(const struct hw_plan *plan, int model, int dev,
                        struct hw_cost *out)
{
	const struct hw_platform *p = &plan->p;
	/* the task's own device is occupied from start to end; shipped work
	 * is the compute device's (already in busy_s) */
	if (dev != p->compute)
		out->busy_s[dev] = out->time_s;
	out->energy_j = 0;
	for (unsigned d = 0; d < p->n_dev; d++)
		out->energy_j += out->energy_dev_j[d];
	task_stream(plan, model, out);
}

static unsigned clamp_m(unsigned m)
{
	assert(m >= 1 && m <= HW_MAX_M);
	return m < 1 ? 1 : m > HW_MAX_M ? HW_MAX_M : m;
}

int hw_plan_lookup(const struct hw_plan *plan)
{
	return plan->lookup;
}

void hw_lookup_cost(const struct hw_plan *plan, int first, struct hw_cost *out)
{
	const int dev = hw_task_device(plan, HW_TASK_DRAFT);
	memset(out, 0, sizeof *out);
	out->time_s = first ? plan->p.lookup_s : plan->p.lookup_token_s;
	out->busy_s[dev] = out->time_s;
	out->time_while_s[0] = out->time_while_s[1] = out->time_s;
}

void hw_task_cost(const struct hw_plan *plan, enum hw_task t, unsigned m,
                  unsigned kv_len, struct hw_cost *out)
{
	if (t == HW_TASK_DRAFT && plan->lookup) {
		hw_lookup_cost(plan, 1, out);
		return;
	}
	const struct tplan *tp = &plan->task[t];
	const struct trace_model *mdl = &plan->models[tp->model];
	m = clamp_m(m);
	cost_from(&tp->tc[m], &plan->p, out);
	double tw[2] = { 0, 0 };
	for (int k = 0; tp->tcw && k < 2; k++)
		tw[k] = tp->tcw[k][m].time;
	for (uint32_t i = 0; i < tp->nlop; i++) {
		const struct trace_op *op = &mdl->ops[tp->lops[i]];
		struct hw_opc o;
		op_cost_at(plan, tp->model, tp->dev, op, m, kv_len, &o);
		add_op(out, &o);
		for (int k = 0; tp->tcw && k < 2; k++) {
			hw_op_cost(&plan->ctx_while[k], &plan->ctx_while[k], op,
			           m, kv_len, &o);
			tw[k] += o.time;
		}
	}
	finish_cost(plan, tp->model, tp->dev, out);
	for (int k = 0; k < 2; k++) {
		if (!tp->tcw) {
			out->time_while_s[k] = out->time_s;
			continue;
		}
		/* the same overlap with host streaming as the full-speed pass */
		const double s = plan->stream_s[tp->model];
		out->time_while_s[k] = s <= 0 ? tw[k]
		                       : plan->p.offload_overlap
		                               ? fmax(tw[k], s)
		                               : tw[k] + s;
	}
}

void hw_step_cost(const struct hw_plan *plan, enum hw_task t, unsigned m,
                  unsigned kv_len, struct hw_cost *out)
{
	const struct hw_platform *p = &plan->p;
	const struct tplan *tp = &plan->task[t];
	if (!tp->op_dev || (t == HW_TASK_DRAFT && plan->lookup)) {
		hw_task_cost(plan, t, m, kv_len, out);
		return;
	}
	const struct trace_model *mdl = &plan->models[tp->model];
	const uint32_t n = mdl->n_ops;
	m = clamp_m(m);
	const int8_t *od = tp->op_dev + (size_t)m * (n ? n : 1);
	int8_t ldev[HW_MAX_LOPS];
	unsigned used = 0;
	cost_from(&tp->sc[m], p, out);
	for (uint32_t i = 0; i < tp->nlop; i++) {
		const struct trace_op *op = &mdl->ops[tp->lops[i]];
		struct hw_opc o;
		int d = od[tp->lops[i]];
		if (d >= 0)
			op_cost_at(plan, tp->model, d, op, m, kv_len, &o);
		else
			d = fastest_dev(plan, tp->model, op, m, kv_len, &o);
		ldev[i] = (int8_t)d;
		add_op(out, &o);
		if (!(tp->sc[m].devs & (1u << d)) && !(used & (1u << d))) {
			/* the best split put it on a device no other op uses */
			struct mconst f = { 0 };
			task_fixed(plan, tp->model, 1u << d, &f);
			out->time_s += f.time;
			out->busy_s[d] += f.busy[d];
			used |= 1u << d;
		}
	}
	if (p->sync_placement == HW_SYNC_BEST) {
		/* transfers touching an operator placed at this L */
		struct mconst x = { 0 };
		for (uint32_t k = 0; k < tp->ntr; k++) {
			const struct trans *tr = &tp->trs[k];
			int da = od[tr->from], db = od[tr->to];
			if (da >= 0 && db >= 0)
				continue;
			for (uint32_t i = 0; i < tp->nlop; i++) {
				if (tp->lops[i] == tr->from)
					da = ldev[i];
				if (tp->lops[i] == tr->to)
					db = ldev[i];
			}
			if (da != db)
				add_transfer(plan, &mdl->ops[tr->to], m,
				             tr->count, &x);
		}
		out->time_s += x.time;
		for (int d = 0; d < HW_MAX_DEV; d++)
			out->energy_dev_j[d] += x.e[d];
	}
	out->energy_j = 0;
	for (unsigned d = 0; d < p->n_dev; d++)
		out->energy_j += out->energy_dev_j[d];
	task_stream(plan, tp->model, out);
	/* synchronous: nothing runs beside it */
	out->time_while_s[0] = out->time_while_s[1] = out->time_s;
}

/* ------------------------------------------------------------------ */
/* Breakdown and single operators                                      */

size_t hw_task_breakdown(const struct hw_plan *plan, enum hw_task t, unsigned m,
                         unsigned kv_len, struct hw_op_cost *rows, size_t max)
{
	const struct tplan *tp = &plan->task[t];
	const struct trace_model *mdl = &plan->models[tp->model];
	size_t nr = 0;
	m = clamp_m(m);
	for (uint32_t i = 0; i < mdl->n_ops && nr < max; i++) {
		const struct trace_op *op = &mdl->ops[i];
		struct hw_op_cost *r = &rows[nr++];
		struct hw_opc o;
		memset(r, 0, sizeof *r);
		r->op = op;
		r->device = tp->dev;
		if (!op->repeat)
			continue;
		op_cost_at(plan, tp->model, tp->dev, op, m, kv_len, &o);
		r->device = o.dev;
		r->time_s = o.time;
		r->compute_s = o.compute_s;
		r->memory_s = o.memory_s;
		r->macs = o.macs;
		r->bytes = o.bytes;
		r->bound = o.bound;
		for (int d = 0; d < HW_MAX_DEV; d++)
			r->energy_j += o.e[d];
	}
	return nr;
}

int hw_op_eval(const struct hw_platform *p, int dev, const struct trace_op *op,
               unsigned m, unsigned kv_len, unsigned ranks,
               struct hw_op_cost *out, char *err, size_t errlen)
{
	if (dev < 0 || (unsigned)dev >= p->n_dev) {
		util_set_err(err, errlen, "no device %d in %s", dev, p->name);
		return -EINVAL;
	}
	if (m < 1 || m > HW_MAX_M) {
		util_set_err(err, errlen, "M = %u: expected 1..%d", m,
		             HW_MAX_M);
		return -EINVAL;
	}
	const struct hw_device *d = &p->dev[dev];
	if (d->kind == HW_DEV_PIM && ranks > d->ranks) {
		util_set_err(err, errlen, "%u ranks: %s has %u", ranks, d->name,
		             d->ranks);
		return -EINVAL;
	}
	struct hw_dctx dc = { p, dev, d->mem_bw, ranks ? ranks : d->ranks };
	if (d->kind == HW_DEV_GPU)
		dc.bw *= d->count;
	struct hw_dctx cc = { p, p->compute, p->dev[p->compute].mem_bw,
		              dc.ranks };
	struct trace_op one = *op;
	one.repeat = 1;
	struct hw_opc o;
	hw_op_cost(&dc, &cc, &one, m, kv_len, &o);
	memset(out, 0, sizeof *out);
	out->op = op;
	out->device = o.dev;
	out->time_s = o.time;
	out->compute_s = o.compute_s;
	out->memory_s = o.memory_s;
	out->macs = o.macs;
	out->bytes = o.bytes;
	out->bound = o.bound;
	for (int i = 0; i < HW_MAX_DEV; i++)
		out->energy_j += o.e[i];
	return 0;
}

/* ------------------------------------------------------------------ */
/* Plans                                                               */

void hw_plan_free(struct hw_plan **planp)
{
	if (!planp || !*planp)
		return;
	struct hw_plan *plan = *planp;
	for (int t = 0; t < HW_TASK_COUNT; t++) {
		free(plan->task[t].op_dev);
		free(plan->task[t].trs);
		free(plan->task[t].tcw);
	}
	for (int i = 0; i < 2; i++)
		free(plan->models[i].ops);
	free(plan);
	*planp = NULL;
}

static int copy_model(struct trace_model *dst, const struct trace_model *src,
                      const char *which, char *err, size_t errlen)
{
	*dst = *src;
	dst->ops = NULL;
	if (src->n_ops == 0 || !src->ops) {
		util_set_err(err, errlen, "%s model %s has no operators", which,
		             src->name);
		return -EINVAL;
	}
	if (src->n_ops > HW_MAX_OPS) {
		util_set_err(err, errlen, "%s model %s: %u operators (max %d)",
		             which, src->name, src->n_ops, HW_MAX_OPS);
		return -E2BIG;
	}
	for (uint32_t i = 0; i < src->n_ops; i++) {
		const struct trace_op *op = &src->ops[i];
		if ((unsigned)op->kind >= TRACE_OP_KIND_COUNT) {
			util_set_err(err, errlen,
			             "%s model %s op %u (%s): bad kind %d",
			             which, src->name, i, op->name,
			             (int)op->kind);
			return -EINVAL;
		}
		if (op->kind == TRACE_OP_ATTENTION &&
		    (!op->heads || !op->kv_heads || !op->head_dim)) {
			util_set_err(err, errlen,
			             "%s model %s op %u (%s): attention needs "
			             "heads, "
			             "kv_heads, head_dim",
			             which, src->name, i, op->name);
			return -EINVAL;
		}
		if ((op->kind == TRACE_OP_GEMM || op->kind == TRACE_OP_EMBED) &&
		    (!op->k || !op->n)) {
			util_set_err(err, errlen,
			             "%s model %s op %u (%s): needs k and "
			             "n",
			             which, src->name, i, op->name);
			return -EINVAL;
		}
	}
	dst->ops = malloc(sizeof *dst->ops * src->n_ops);
	if (!dst->ops) {
		util_set_err(err, errlen, "out of memory");
		return -ENOMEM;
	}
	memcpy(dst->ops, src->ops, sizeof *dst->ops * src->n_ops);
	return 0;
}

int hw_plan_create(struct hw_plan **out, const struct hw_platform *p,
                   const struct trace_model *draft,
                   const struct trace_model *target, char *err, size_t errlen)
{
	char why[256];
	int rc;

	*out = NULL;
	struct hw_plan *plan = calloc(1, sizeof *plan);
	if (!plan) {
		util_set_err(err, errlen, "out of memory");
		return -ENOMEM;
	}
	plan->p = *p;
	rc = hw_platform_finish(&plan->p, why, sizeof why);
	if (rc) {
		util_set_err(err, errlen, "platform %s: %s", p->name, why);
		goto error;
	}
	if (draft) {
		rc = copy_model(&plan->models[0], draft, "draft", err, errlen);
	} else {
		plan->lookup = 1;
		snprintf(plan->models[0].name, sizeof plan->models[0].name,
		         "lookup");
	}
	if (!rc)
		rc = copy_model(&plan->models[1], target, "target", err,
		                errlen);
	if (!rc)
		rc = plan_memory(plan, err, errlen);
	for (int t = 0; !rc && t < HW_TASK_COUNT; t++)
		rc = plan_task(plan, (enum hw_task)t, err, errlen);
	if (rc)
		goto error;
	*out = plan;
	return 0;
error:
	hw_plan_free(&plan);
	return rc;
}
