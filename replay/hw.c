/* hw.c - hardware timing and energy model (see hw.h and HWMODEL.md).
 *
 * Every operator's work (MACs, vector elements, bytes) is linear in the KV
 * length L. A plan turns each (task, M) into constant sums plus a short list
 * of "terms" rep * (overhead + max(a0 + a1 L, b0 + b1 L)) for the operators
 * whose work grows with L (attention), so a task cost is a handful of flops.
 */
#include "hw.h"
#include "util.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config.h"

#define HW_MAX_OPS 1024     /* operators per model a plan accepts */
#define HW_MAX_LOPS 64      /* L-dependent operators per model */


/* ------------------------------------------------------------------ */
/* Operator work, linear in L: x(L) = x[0] + x[1] * L                  */

struct lin {
	double v[2];
};

struct work {
	struct lin macs;     /* matrix MACs */
	struct lin elems;    /* vector-unit element ops */
	struct lin bytes;    /* weight + KV + activation bytes */
};

/* One operator placed: main work on dev, optional aux work on the compute
 * device (shipped nonlinear work without the AAU) with link transfers. */
struct placed {
	int dev;
	bool has_main, has_aux;
	struct work main, aux;
	struct lin xfer_bytes;   /* over the link, per execution */
	unsigned xfer_count;     /* transfers (latencies) per execution */
	double rep;
};

/* rep * (ovh + max(a0 + a1 L, b0 + b1 L)) */
struct term {
	double rep, ovh, a0, a1, b0, b1;
};

static inline double term_eval(const struct term *t, double L)
{
	double a = t->a0 + t->a1 * L, b = t->b0 + t->b1 * L;

	return t->rep * (t->ovh + (a > b ? a : b));
}

/* Cost of a placement, all linear pieces gathered. */
struct pcost {
	struct term main, aux;   /* rep == 0 when absent */
	struct lin xfer_t;       /* link time, on no device's busy */
	struct lin e[HW_MAX_DEV];
	int dev, aux_dev;
};

struct lop {                     /* L-dependent op in split mode */
	uint32_t op;
	bool ok[HW_MAX_DEV];
	struct pcost c[HW_MAX_DEV];
};

struct trans {                   /* transfer between consecutive ops */
	uint32_t from, to;           /* op indices */
	double cost_s, energy_j;     /* count * one transfer, at this M */
};

struct split_m {
	double t0, busy0[HW_MAX_DEV], e0[HW_MAX_DEV]; /* non-L ops + fixed transfers */
	uint32_t lop0, nlop;         /* into plan->lops[task] */
	uint32_t tr0, ntr;           /* transfers touching an L op */
};

struct async_m {
	double t0, t1;
	double e0[HW_MAX_DEV], e1[HW_MAX_DEV];
	uint32_t term0, nterm;
};

struct task_plan {
	const struct trace_model *model;   /* the plan's own copy */
	int dev;
	struct async_m am[HW_MAX_M + 1];
	struct term *terms;
	struct split_m sm[HW_MAX_M + 1];
	struct lop *lops;
	struct trans *trs;
	int8_t *op_dev;                 /* [(HW_MAX_M+1) * n_ops] split choice, -1 L-dep */
	int16_t *op_slot;               /* [n_ops] L-op slot or -1 */
	uint32_t nlop_per_m;
	uint32_t ntr_per_m;
};

struct hw_plan {
	struct hw_platform p;
	struct trace_model models[2];   /* draft, target (ops copied) */
	struct task_plan tasks[HW_TASK_COUNT];
};

static bool op_is_ldep(const struct trace_op *op)
{
	return op->kind == TRACE_OP_ATTENTION;
}

/* Vector work the PIM cannot do without the AAU. */
static bool op_needs_aau(const struct trace_op *op)
{
	return op->kind == TRACE_OP_NONLINEAR || op->kind == TRACE_OP_NORM ||
	       op->kind == TRACE_OP_ATTENTION;
}

static double op_in_width(const struct trace_op *op)
{
	switch (op->kind) {
	case TRACE_OP_GEMM:
		return op->k;
	case TRACE_OP_ATTENTION:
		return (double)op->heads * op->head_dim;
	default:
		return op->n;
	}
}

/* Work of one execution of op at M tokens, with L-coefficients.
 * Attention: query i of M (i = 0..M-1) attends L - (M - 1) + i keys, so
 * keys(L) = M L - M (M - 1) / 2. If split_softmax, the softmax is returned
 * in *soft (elements and its activation traffic) and not in *w. */
static void op_work(const struct hw_platform *p, const struct trace_op *op,
                    unsigned m, bool split_softmax, struct work *w,
                    struct work *soft)
{
	const double M = m, ab = p->act_bits / 8.0, wb = p->weight_bits / 8.0;

	memset(w, 0, sizeof *w);
	if (soft)
		memset(soft, 0, sizeof *soft);
	switch (op->kind) {
	case TRACE_OP_GEMM:
		w->macs.v[0] = M * op->k * op->n;
		w->bytes.v[0] = (double)op->k * op->n * wb +
		                M * ((double)op->k + op->n) * ab;
		break;
	case TRACE_OP_EMBED:
		/* M rows of n gathered from the table: read and written once */
		w->elems.v[0] = M * op->n;
		w->bytes.v[0] = M * op->n * wb + M * op->n * ab;
		break;
	case TRACE_OP_NONLINEAR:
	case TRACE_OP_NORM:
	case TRACE_OP_ELEMENTWISE:
		w->elems.v[0] = M * op->n;
		w->bytes.v[0] = 2.0 * M * op->n * ab;
		break;
	case TRACE_OP_ATTENTION: {
		const double H = op->heads, hd = op->head_dim;
		const double k0 = -M * (M - 1.0) / 2.0, k1 = M;
		const double kvb = 2.0 * hd * op->kv_heads * (p->kv_bits / 8.0);
		struct work *sw = split_softmax ? soft : w;

		/* QK^T and PV: 2 * hd MACs per (head, key) */
		w->macs.v[0] = 2.0 * H * hd * k0;
		w->macs.v[1] = 2.0 * H * hd * k1;
		w->bytes.v[0] = 2.0 * M * H * hd * ab;   /* q in, context out */
		w->bytes.v[1] = kvb;                      /* K and V, L rows */
		sw->elems.v[0] = H * k0;                  /* softmax */
		sw->elems.v[1] = H * k1;
		if (split_softmax) {                      /* scores in, probs out */
			soft->bytes.v[0] = 2.0 * H * k0 * ab;
			soft->bytes.v[1] = 2.0 * H * k1 * ab;
		}
		break;
	}
	default:
		break;
	}
}

static void place_op(const struct hw_platform *p, const struct trace_op *op,
                     unsigned m, int dev, struct placed *pl)
{
	const bool ship = dev == p->pim && !p->aau && op_needs_aau(op);

	memset(pl, 0, sizeof *pl);
	pl->dev = dev;
	pl->rep = op->repeat;
	if (!ship) {
		pl->has_main = true;
		op_work(p, op, m, false, &pl->main, NULL);
		return;
	}
	pl->has_aux = true;
	pl->xfer_count = 2;
	if (op->kind == TRACE_OP_ATTENTION) {
		pl->has_main = true;
		op_work(p, op, m, true, &pl->main, &pl->aux);
		/* scores out to the compute device, probabilities back */
		pl->xfer_bytes = pl->aux.bytes;
	} else {
		op_work(p, op, m, false, &pl->aux, NULL);
		pl->xfer_bytes.v[0] = 2.0 * m * op->n * (p->act_bits / 8.0);
	}
}

static void work_term(const struct hw_device *d, const struct work *w,
                      double rep, struct term *t)
{
	const double cm = 2.0 / (d->matrix_ops * d->util);
	const double cv = 1.0 / (d->vector_ops * d->util);
	const double bw = 1.0 / (d->mem_bw * d->bw_eff);

	t->rep = rep;
	t->ovh = d->op_overhead_s;
	t->a0 = w->macs.v[0] * cm + w->elems.v[0] * cv;
	t->a1 = w->macs.v[1] * cm + w->elems.v[1] * cv;
	t->b0 = w->bytes.v[0] * bw;
	t->b1 = w->bytes.v[1] * bw;
}

static void work_energy(const struct hw_device *d, const struct work *w,
                        double rep, struct lin *e)
{
	for (int i = 0; i < 2; i++)
		e->v[i] += rep * 1e-12 * (w->macs.v[i] * d->pj_per_mac +
		                          w->elems.v[i] * d->pj_per_vec_op +
		                          w->bytes.v[i] * 8.0 * d->pj_per_bit);
}

static void placed_cost(const struct hw_platform *p, const struct placed *pl,
                        struct pcost *c)
{
	memset(c, 0, sizeof *c);
	c->dev = pl->dev;
	c->aux_dev = p->compute;
	if (pl->has_main) {
		work_term(&p->dev[pl->dev], &pl->main, pl->rep, &c->main);
		work_energy(&p->dev[pl->dev], &pl->main, pl->rep, &c->e[pl->dev]);
	}
	if (pl->has_aux) {
		const int cd = p->compute;

		work_term(&p->dev[cd], &pl->aux, pl->rep, &c->aux);
		work_energy(&p->dev[cd], &pl->aux, pl->rep, &c->e[cd]);
		for (int i = 0; i < 2; i++) {
			c->xfer_t.v[i] = pl->rep * pl->xfer_bytes.v[i] / p->link_bw;
			c->e[cd].v[i] += pl->rep * pl->xfer_bytes.v[i] * 8.0 *
			                 p->link_pj_per_bit * 1e-12;
		}
		c->xfer_t.v[0] += pl->rep * pl->xfer_count * p->link_latency_s;
	}
}

static double pcost_time(const struct pcost *c, double L)
{
	double t = c->xfer_t.v[0] + c->xfer_t.v[1] * L;

	if (c->main.rep > 0)
		t += term_eval(&c->main, L);
	if (c->aux.rep > 0)
		t += term_eval(&c->aux, L);
	return t;
}

/* ------------------------------------------------------------------ */
/* Plans                                                               */

int hw_task_device(const struct hw_plan *plan, enum hw_task t)
{
	const struct hw_platform *p = &plan->p;

	if (t == HW_TASK_VERIFY || p->pim < 0)
		return p->compute;
	return p->pim;
}

static bool term_is_const(const struct term *t)
{
	return t->a1 == 0 && t->b1 == 0;
}

/* Transfers between consecutive ops: runs of equal repeat form a block that
 * executes repeat times (a layer); inside it op i -> i+1 happens repeat times
 * and last -> first repeat - 1 times; between blocks once. Fills from/to/
 * count (cost filled per M later). @return number of transitions. */
static size_t build_transitions(const struct trace_model *mdl, uint32_t *from,
                                uint32_t *to, double *count)
{
	size_t nt = 0;
	uint32_t i = 0, prev_last = UINT32_MAX;

	while (i < mdl->n_ops) {
		uint32_t j = i, r;

		if (mdl->ops[i].repeat == 0) {
			i++;
			continue;
		}
		r = mdl->ops[i].repeat;
		while (j + 1 < mdl->n_ops && mdl->ops[j + 1].repeat == r)
			j++;
		if (prev_last != UINT32_MAX) {
			from[nt] = prev_last;
			to[nt] = i;
			count[nt++] = 1;
		}
		for (uint32_t a = i; a < j; a++) {
			from[nt] = a;
			to[nt] = a + 1;
			count[nt++] = r;
		}
		if (j > i && r > 1) {
			from[nt] = j;
			to[nt] = i;
			count[nt++] = r - 1;
		}
		prev_last = j;
		i = j + 1;
	}
	return nt;
}

static int plan_task(struct hw_plan *plan, enum hw_task t, char *err,
                     size_t errlen)
{
	const struct hw_platform *p = &plan->p;
	struct task_plan *tp = &plan->tasks[t];
	const struct trace_model *mdl = tp->model;
	const uint32_t n = mdl->n_ops;
	uint32_t nldep = 0, nterm_per_m = 0;
	uint32_t *from = NULL, *to = NULL;
	double *count = NULL;
	size_t ntr_all;
	int rc = 0;

	tp->dev = hw_task_device(plan, t);
	tp->op_slot = malloc(sizeof *tp->op_slot * (n ? n : 1));
	tp->op_dev = malloc((size_t)(HW_MAX_M + 1) * (n ? n : 1));
	from = malloc(sizeof *from * 2 * (n + 1));
	to = malloc(sizeof *to * 2 * (n + 1));
	count = malloc(sizeof *count * 2 * (n + 1));
	if (!tp->op_slot || !tp->op_dev || !from || !to || !count) {
		rc = -ENOMEM;
		util_set_err(err, errlen, "out of memory");
		goto out;
	}
	for (uint32_t i = 0; i < n; i++) {
		const struct trace_op *op = &mdl->ops[i];

		tp->op_slot[i] = -1;
		if (op_is_ldep(op) && op->repeat > 0)
			tp->op_slot[i] = (int16_t)nldep++;
		/* terms: main + aux when shipped */
		if (op->repeat > 0)
			nterm_per_m += 2;
	}
	if (nldep > HW_MAX_LOPS) {
		rc = -E2BIG;
		util_set_err(err, errlen, "model %s: more than %d attention ops",
		       mdl->name, HW_MAX_LOPS);
		goto out;
	}
	ntr_all = build_transitions(mdl, from, to, count);
	tp->nlop_per_m = nldep;
	tp->terms = calloc((size_t)(HW_MAX_M + 1) * (nterm_per_m ? nterm_per_m : 1),
	                   sizeof *tp->terms);
	tp->lops = calloc((size_t)(HW_MAX_M + 1) * (nldep ? nldep : 1),
	                  sizeof *tp->lops);
	tp->trs = calloc((size_t)(HW_MAX_M + 1) * (ntr_all ? ntr_all : 1),
	                 sizeof *tp->trs);
	if (!tp->terms || !tp->lops || !tp->trs) {
		rc = -ENOMEM;
		util_set_err(err, errlen, "out of memory");
		goto out;
	}

	for (unsigned m = 1; m <= HW_MAX_M; m++) {
		struct async_m *am = &tp->am[m];
		struct split_m *sm = &tp->sm[m];
		int8_t *odev = tp->op_dev + (size_t)m * (n ? n : 1);
		const struct hw_device *td = &p->dev[tp->dev];

		/* ---- async: the whole task on tp->dev ---- */
		memset(am, 0, sizeof *am);
		am->term0 = (uint32_t)((size_t)m * nterm_per_m);
		am->t0 = td->task_overhead_s;
		for (uint32_t i = 0; i < n; i++) {
			struct placed pl;
			struct pcost c;
			const struct term *parts[2];

			if (mdl->ops[i].repeat == 0)
				continue;
			place_op(p, &mdl->ops[i], m, tp->dev, &pl);
			placed_cost(p, &pl, &c);
			parts[0] = &c.main;
			parts[1] = &c.aux;
			for (int k = 0; k < 2; k++) {
				if (parts[k]->rep <= 0)
					continue;
				if (term_is_const(parts[k]))
					am->t0 += term_eval(parts[k], 0);
				else
					tp->terms[am->term0 + am->nterm++] = *parts[k];
			}
			am->t0 += c.xfer_t.v[0];
			am->t1 += c.xfer_t.v[1];
			for (unsigned d = 0; d < p->n_dev; d++) {
				am->e0[d] += c.e[d].v[0];
				am->e1[d] += c.e[d].v[1];
			}
		}

		/* ---- split: each op where it is fastest ---- */
		memset(sm, 0, sizeof *sm);
		sm->lop0 = (uint32_t)((size_t)m * nldep);
		sm->tr0 = (uint32_t)((size_t)m * ntr_all);
		sm->t0 = p->dev[p->compute].task_overhead_s;
		sm->busy0[p->compute] = sm->t0;
		for (uint32_t i = 0; i < n; i++) {
			const struct trace_op *op = &mdl->ops[i];
			struct pcost c[HW_MAX_DEV];
			bool ok[HW_MAX_DEV] = { false };
			int best = -1;
			double bt = 0;

			odev[i] = -1;
			if (op->repeat == 0)
				continue;
			for (unsigned d = 0; d < p->n_dev; d++) {
				struct placed pl;

				/* a PIM without AAU cannot run nonlinear/norm ops;
				 * attention it runs with the softmax shipped */
				if ((int)d == p->pim && !p->aau &&
				    (op->kind == TRACE_OP_NONLINEAR ||
				     op->kind == TRACE_OP_NORM))
					continue;
				place_op(p, op, m, (int)d, &pl);
				placed_cost(p, &pl, &c[d]);
				ok[d] = true;
			}
			if (tp->op_slot[i] >= 0) {
				struct lop *lo = &tp->lops[sm->lop0 + sm->nlop++];

				lo->op = i;
				for (unsigned d = 0; d < p->n_dev; d++) {
					lo->ok[d] = ok[d];
					if (ok[d])
						lo->c[d] = c[d];
				}
				continue;
			}
			/* L-independent: choose now (ties go to the lower index,
			 * then the compute device by order of the preset) */
			for (unsigned d = 0; d < p->n_dev; d++) {
				double tt;

				if (!ok[d])
					continue;
				tt = pcost_time(&c[d], 0);
				if (best < 0 || tt < bt) {
					best = (int)d;
					bt = tt;
				}
			}
			odev[i] = (int8_t)best;
			sm->t0 += bt;
			if (c[best].main.rep > 0)
				sm->busy0[best] += term_eval(&c[best].main, 0);
			if (c[best].aux.rep > 0)
				sm->busy0[c[best].aux_dev] += term_eval(&c[best].aux, 0);
			for (unsigned d = 0; d < p->n_dev; d++)
				sm->e0[d] += c[best].e[d].v[0];
		}
		for (size_t k = 0; k < ntr_all; k++) {
			const double bytes = m * op_in_width(&mdl->ops[to[k]]) *
			                     (p->act_bits / 8.0);
			const double cost = count[k] * (bytes / p->link_bw +
			                                p->link_latency_s);
			const double en = count[k] * bytes * 8.0 *
			                  p->link_pj_per_bit * 1e-12;

			if (odev[from[k]] >= 0 && odev[to[k]] >= 0) {
				if (odev[from[k]] != odev[to[k]]) {
					sm->t0 += cost;
					sm->e0[p->compute] += en;
				}
				continue;
			}
			tp->trs[sm->tr0 + sm->ntr++] = (struct trans){
				from[k], to[k], cost, en };
		}
	}
	tp->ntr_per_m = (uint32_t)ntr_all;
out:
	free(from);
	free(to);
	free(count);
	return rc;
}

static void free_models(struct hw_plan *plan)
{
	for (int i = 0; i < 2; i++) {
		free(plan->models[i].ops);
		plan->models[i].ops = NULL;
	}
}

void hw_plan_free(struct hw_plan **planp)
{
	struct hw_plan *plan;

	if (!planp || !*planp)
		return;
	plan = *planp;
	for (int t = 0; t < HW_TASK_COUNT; t++) {
		free(plan->tasks[t].terms);
		free(plan->tasks[t].lops);
		free(plan->tasks[t].trs);
		free(plan->tasks[t].op_dev);
		free(plan->tasks[t].op_slot);
	}
	free_models(plan);
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
		util_set_err(err, errlen, "%s model %s: %u operators (max %d)", which,
		       src->name, src->n_ops, HW_MAX_OPS);
		return -E2BIG;
	}
	for (uint32_t i = 0; i < src->n_ops; i++) {
		const struct trace_op *op = &src->ops[i];

		if ((unsigned)op->kind >= TRACE_OP_KIND_COUNT) {
			util_set_err(err, errlen, "%s model %s op %u (%s): bad kind %d",
			       which, src->name, i, op->name, (int)op->kind);
			return -EINVAL;
		}
		if (op->kind == TRACE_OP_ATTENTION &&
		    (!op->heads || !op->kv_heads || !op->head_dim)) {
			util_set_err(err, errlen,
			       "%s model %s op %u (%s): attention needs heads, kv_heads, head_dim",
			       which, src->name, i, op->name);
			return -EINVAL;
		}
		if ((op->kind == TRACE_OP_GEMM || op->kind == TRACE_OP_EMBED) &&
		    (!op->k || !op->n)) {
			util_set_err(err, errlen, "%s model %s op %u (%s): needs k and n",
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
	struct hw_plan *plan;
	char why[256];
	int rc;

	*out = NULL;
	plan = calloc(1, sizeof *plan);
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
	rc = copy_model(&plan->models[0], draft, "draft", err, errlen);
	if (rc)
		goto error;
	rc = copy_model(&plan->models[1], target, "target", err, errlen);
	if (rc)
		goto error;
	plan->tasks[HW_TASK_DRAFT].model = &plan->models[0];
	plan->tasks[HW_TASK_VERIFY].model = &plan->models[1];
	plan->tasks[HW_TASK_PREVERIFY].model = &plan->models[1];
	for (int t = 0; t < HW_TASK_COUNT; t++) {
		rc = plan_task(plan, (enum hw_task)t, err, errlen);
		if (rc)
			goto error;
	}
	*out = plan;
	return 0;
error:
	hw_plan_free(&plan);
	return rc;
}

const struct hw_platform *hw_plan_platform(const struct hw_plan *plan)
{
	return &plan->p;
}

static unsigned clamp_m(unsigned m)
{
	assert(m >= 1 && m <= HW_MAX_M);
	if (m < 1)
		return 1;
	if (m > HW_MAX_M)
		return HW_MAX_M;
	return m;
}

void hw_task_cost(const struct hw_plan *plan, enum hw_task t, unsigned m,
                  unsigned kv_len, struct hw_cost *out)
{
	const struct task_plan *tp = &plan->tasks[t];
	const struct async_m *am;
	double L, time;

	m = clamp_m(m);
	am = &tp->am[m];
	L = kv_len < m ? m : kv_len;
	time = am->t0 + am->t1 * L;
	for (uint32_t i = 0; i < am->nterm; i++)
		time += term_eval(&tp->terms[am->term0 + i], L);
	memset(out, 0, sizeof *out);
	out->time_s = time;
	out->busy_s[tp->dev] = time;
	for (unsigned d = 0; d < plan->p.n_dev; d++) {
		out->energy_dev_j[d] = am->e0[d] + am->e1[d] * L;
		out->energy_j += out->energy_dev_j[d];
	}
}

void hw_step_cost_split(const struct hw_plan *plan, enum hw_task t,
                        unsigned m, unsigned kv_len, struct hw_cost *out)
{
	const struct hw_platform *p = &plan->p;
	const struct task_plan *tp = &plan->tasks[t];
	const struct split_m *sm;
	const int8_t *odev;
	int8_t slot_dev[HW_MAX_LOPS];
	double L;

	m = clamp_m(m);
	sm = &tp->sm[m];
	odev = tp->op_dev + (size_t)m * (tp->model->n_ops ? tp->model->n_ops : 1);
	L = kv_len < m ? m : kv_len;
	memset(out, 0, sizeof *out);
	out->time_s = sm->t0;
	for (unsigned d = 0; d < p->n_dev; d++) {
		out->busy_s[d] = sm->busy0[d];
		out->energy_dev_j[d] = sm->e0[d];
	}
	for (uint32_t i = 0; i < sm->nlop; i++) {
		const struct lop *lo = &tp->lops[sm->lop0 + i];
		const struct pcost *c;
		int best = -1;
		double bt = 0, tm = 0, ta = 0;

		for (unsigned d = 0; d < p->n_dev; d++) {
			double tt;

			if (!lo->ok[d])
				continue;
			tt = pcost_time(&lo->c[d], L);
			if (best < 0 || tt < bt) {
				best = (int)d;
				bt = tt;
			}
		}
		slot_dev[i] = (int8_t)best;
		c = &lo->c[best];
		if (c->main.rep > 0)
			tm = term_eval(&c->main, L);
		if (c->aux.rep > 0)
			ta = term_eval(&c->aux, L);
		out->time_s += bt;
		out->busy_s[best] += tm;
		out->busy_s[c->aux_dev] += ta;
		for (unsigned d = 0; d < p->n_dev; d++)
			out->energy_dev_j[d] += c->e[d].v[0] + c->e[d].v[1] * L;
	}
	for (uint32_t k = 0; k < sm->ntr; k++) {
		const struct trans *tr = &tp->trs[sm->tr0 + k];
		const int sa = tp->op_slot[tr->from], sb = tp->op_slot[tr->to];
		const int da = sa >= 0 ? slot_dev[sa] : odev[tr->from];
		const int db = sb >= 0 ? slot_dev[sb] : odev[tr->to];

		if (da != db) {
			out->time_s += tr->cost_s;
			out->energy_dev_j[p->compute] += tr->energy_j;
		}
	}
	for (unsigned d = 0; d < p->n_dev; d++)
		out->energy_j += out->energy_dev_j[d];
}

double hw_switch_cost(const struct hw_plan *plan, double *energy_j)
{
	const struct hw_platform *p = &plan->p;

	if (energy_j)
		*energy_j = 0;  /* no published figure for the gating energy */
	if (p->pim < 0)
		return 0;
	return p->gated_switch ? p->switch_gated_s : p->switch_slow_s;
}

size_t hw_task_breakdown(const struct hw_plan *plan, enum hw_task t,
                         unsigned m, unsigned kv_len,
                         struct hw_op_cost *rows, size_t max)
{
	const struct hw_platform *p = &plan->p;
	const struct task_plan *tp = &plan->tasks[t];
	const struct trace_model *mdl = tp->model;
	double L;
	size_t nr = 0;

	m = clamp_m(m);
	L = kv_len < m ? m : kv_len;
	for (uint32_t i = 0; i < mdl->n_ops && nr < max; i++) {
		const struct trace_op *op = &mdl->ops[i];
		struct hw_op_cost *r = &rows[nr++];
		struct placed pl;
		struct pcost c;

		memset(r, 0, sizeof *r);
		r->op = op;
		r->device = tp->dev;
		if (op->repeat == 0)
			continue;
		place_op(p, op, m, tp->dev, &pl);
		placed_cost(p, &pl, &c);
		r->time_s = pcost_time(&c, L);
		if (!pl.has_main)
			r->device = p->compute;   /* shipped whole (no AAU) */
		if (c.main.rep > 0) {
			r->compute_s = c.main.rep * (c.main.a0 + c.main.a1 * L);
			r->memory_s = c.main.rep * (c.main.b0 + c.main.b1 * L);
		} else {
			r->compute_s = c.aux.rep * (c.aux.a0 + c.aux.a1 * L);
			r->memory_s = c.aux.rep * (c.aux.b0 + c.aux.b1 * L);
		}
		r->macs = pl.rep * (pl.main.macs.v[0] + pl.main.macs.v[1] * L +
		                    pl.aux.macs.v[0] + pl.aux.macs.v[1] * L);
		r->bytes = pl.rep * (pl.main.bytes.v[0] + pl.main.bytes.v[1] * L +
		                     pl.aux.bytes.v[0] + pl.aux.bytes.v[1] * L);
		for (unsigned d = 0; d < p->n_dev; d++)
			r->energy_j += c.e[d].v[0] + c.e[d].v[1] * L;
	}
	return nr;
}
