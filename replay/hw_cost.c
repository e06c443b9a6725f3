/* hw_cost.c - one operator's cost on one device; see hw_cost.h and
 * replay/HWMODEL.md, which derives every formula here from its source:
 *   PIM: SAITPublic/PIMSimulator @ b464dde, src/tests/PIMKernel.cpp
 *        (executeGemv, computeGemv), src/tests/PIMCmdGen.h (the GEMV CRF
 *        program), src/MemoryController.cpp and CommandQueue.cpp (timing);
 *   NPU: PSAL-POSTECH/ONNXim @ a1e8629, src/Mapping.cc (gemm_mapping),
 *        src/operations/GemmWS.cc (tiles, loads), src/SystolicWS.cc
 *        (array timing).
 */
#include "hw_cost.h"

#include <math.h>
#include <string.h>

static double cdiv(double a, double b)
{
	return ceil(a / b);
}

static double max2(double a, double b)
{
	return a > b ? a : b;
}

/* a / b where nothing to move takes no time even without bandwidth */
static double div0(double a, double b)
{
	return a > 0 ? a / b : 0;
}

/* ------------------------------------------------------------------ */
/* PIM: the all-bank GEMV kernel                                       */

void hw_pim_tiles(const struct hw_platform *p, const struct hw_device *d,
                  struct hw_pim_tiles *t)
{
	const double bl2 = d->t_bl / 2.0;
	memset(t, 0, sizeof *t);
	t->tccd = max2(d->t_ccd_l, bl2);
	t->f = d->freq_hz;
	t->lanes = d->burst_bytes * 8.0 / p->weight_bits;
	/* one MAC command makes every block of a rank multiply-add `lanes`
	 * weights: 2 * blocks * lanes ops, at matrix_ops / ranks per rank */
	t->alu = 2.0 * d->blocks * t->lanes * d->ranks * t->f / d->matrix_ops;
	t->r2w = d->t_rl + bl2 + d->t_rtrs - (double)d->t_wl;
	t->w2r = d->t_wl + bl2 + d->t_wtr_l;
	t->r2p = bl2 + max2(d->t_rtp_l, d->t_ccd_l) - d->t_ccd_l;
	t->w2p = d->t_wl + bl2 + d->t_wr;
	const double row_bursts = (double)d->row_bytes / d->burst_bytes;
	t->r_rows = (unsigned)cdiv((double)d->grf_a * d->grf_b, row_bursts);
	/* a row switch inside a tile: precharge after the last read, open
	 * the next row */
	t->t_row = t->r2p + d->t_rp + d->t_rcd_rd;
	/* last MAC -> first GRF write: the GRF row is reopened first, and
	 * the command queue's barrier lets that ACT go only after the
	 * second-to-last MAC */
	t->g_out = max2(t->r2w, d->t_rcd_wr + 1.0 - t->tccd);
	/* all-bank refresh every tREFI, blocking tRFC, then the rows reopen */
	t->f_ref = 1.0 + (double)(d->t_rfc + d->t_rp + d->t_rcd_rd) / d->t_refi;
}

/* Cycles of one pass (one output tile of grf_b rows per block, all input
 * tiles) serving v vectors at once, K inputs wide. PIMKernel.cpp runs all
 * even input tiles (even bank) and then all odd ones (odd bank). */
static double pim_pass_cycles(const struct hw_device *d,
                              const struct hw_pim_tiles *t, double K, double v)
{
	const double ni = cdiv(K, d->grf_a * t->lanes);
	const double tm = max2(t->tccd, t->alu * v); /* MAC command spacing */
	const double t_grf = (d->grf_a * v - 1.0) * t->tccd;
	const double t_mac = ((double)d->grf_a * d->grf_b - t->r_rows) * tm +
	                     (t->r_rows - 1.0) * t->t_row;
	/* last GRF write -> first MAC of an even tile (the weight row's
	 * precharge/activate normally hides under the GRF writes) */
	const double g_in = max2(max2(t->w2r, d->t_rcd_rd + 1.0 - t->tccd),
	                         t->t_row - t_grf - t->g_out);
	const double t_even = t_grf + g_in + t_mac + t->g_out;
	/* odd tiles sit in the other bank of the pair: close the GRF row,
	 * open the weight row, and the reverse after the MACs */
	const double t_odd =
	        t_grf + max2(t->w2p, (double)d->t_ras - d->t_rcd_wr - t_grf) +
	        d->t_rp + d->t_rcd_rd + t_mac + t->r2p + d->t_rp + d->t_rcd_wr;
	/* per pass: grf_b write-backs of GRF_B, then the GRF row reopens */
	const double x = (d->grf_b * v - 1.0) * t->tccd + t->w2p + d->t_rp +
	                 d->t_rcd_wr;
	return x + ceil(ni / 2.0) * t_even + floor(ni / 2.0) * t_odd;
}

/* A GEMV of K inputs and N outputs over nvec input vectors on `ranks`
 * ranks. Adds time (s), in-bank bytes and padded MACs. @return 1 if the
 * ALU, not the command rate, bounds it. */
static int pim_gemv(const struct hw_dctx *dc, double K, double N, double nvec,
                    double *time, double *bytes, double *macs)
{
	const struct hw_device *d = &dc->p->dev[dc->dev];
	struct hw_pim_tiles t;
	hw_pim_tiles(dc->p, d, &t);
	const double C = dc->ranks;
	const double no = cdiv(N, (double)d->grf_b * d->blocks * C);
	const double ni = cdiv(K, d->grf_a * t.lanes);
	const double vb = d->vector_buffers;
	const double full = floor(nvec / vb), rest = nvec - full * vb;
	double cyc = full * pim_pass_cycles(d, &t, K, vb);
	if (rest > 0)
		cyc += pim_pass_cycles(d, &t, K, rest);
	cyc *= no * t.f_ref;
	*time += cyc / t.f;
	/* every pass reads every padded weight burst once per rank block and
	 * loads each vector's input tiles into the GRFs */
	const double groups = full + (rest > 0);
	const double mac_cmds = no * groups * ni * d->grf_a * d->grf_b;
	*bytes += C * d->blocks * d->burst_bytes *
	          (mac_cmds + no * ni * d->grf_a * nvec);
	*macs += C * d->blocks * t.lanes * no * ni * d->grf_a * d->grf_b * nvec;
	return t.alu * (vb < nvec ? vb : nvec) > t.tccd;
}

/* ------------------------------------------------------------------ */
/* NPU: a weight-stationary GEMM after ONNXim                          */

struct npu_map {
	double tile_i, tile_j; /* tiles along tokens and output columns */
};

static double pad_d(double x, double D)
{
	return ceil(x / D) * D;
}

/* inner_X = ceil(pad_D(X) / tile_X) rounded down to a multiple of D (at
 * least D), and the final tile count ceil(X / inner_X). */
static double retile(double x, double tiles, double D)
{
	double inner = floor(ceil(pad_d(x, D) / tiles) / D) * D;
	if (inner < D)
		inner = D;
	return ceil(x / inner);
}

/* MappingTable::gemm_mapping (src/Mapping.cc), M <= any size. */
static void npu_mapping(const struct hw_device *d, double M, double N,
                        struct npu_map *mp)
{
	const double D = d->array_dim;
	const double P = fmax(
	        1.0, round(d->matrix_ops / (2.0 * D * D * d->freq_hz)));
	const double acc_rows = floor(d->accum_bytes / (D * 4.0 * 2.0));
	double ij = floor(sqrt(floor(acc_rows / D)));
	if (ij < 1)
		ij = 1;
	double ti = fmin(ceil(M / D), ceil(M / (ij * D)));
	double tj = fmin(ceil(N / D), ceil(N / (ij * D)));
	const int grow_j = N > M && N > P;
	if (ti * tj < P) {
		const double f = ceil(P / (ti * tj));
		if (grow_j)
			tj *= f;
		else
			ti *= f;
	}
	const double r = fmod(ti * tj, P);
	if (r > 0) {
		if (grow_j)
			tj += r;
		else
			ti += r;
	}
	mp->tile_i = retile(M, ti, D);
	mp->tile_j = retile(N, tj, D);
}

/* One GEMM on the NPU: M tokens, K x N stationary operand of wb bytes per
 * element (weights, or a KV cache), activations of ab bytes. Adds compute
 * and memory sides (s), bytes and MACs; @return the drain tail (s). */
static double npu_gemm(const struct hw_dctx *dc, double M, double K, double N,
                       double wb, double ab, double *comp, double *mem,
                       double *bytes, double *macs)
{
	const struct hw_device *d = &dc->p->dev[dc->dev];
	const double D = d->array_dim;
	const double P = d->matrix_ops / (2.0 * D * D * d->freq_hz);
	struct npu_map mp;
	npu_mapping(d, M, N, &mp);
	/* weights once per token tile, activations once per output-column
	 * tile (the scratchpad is flushed per tile), outputs once */
	const double b = mp.tile_i * K * N * wb + mp.tile_j * M * K * ab +
	                 M * N * ab;
	*bytes += b;
	*mem += div0(b, dc->bw * d->bw_eff);
	/* each D x D weight block is preloaded once per D-row token block,
	 * D cycles apart; the cores share the blocks */
	*comp += ceil(M / D) * ceil(K / D) * ceil(N / D) * D / (P * d->freq_hz);
	*macs += M * K * N;
	/* the last weight strip lands, then the array drains */
	return (K + 3.0 * D + max2(M, 4.0) - 3.0) / d->freq_hz;
}

/* ------------------------------------------------------------------ */
/* Operators                                                           */

double hw_op_in_width(const struct trace_op *op)
{
	switch (op->kind) {
	case TRACE_OP_GEMM: return op->k;
	case TRACE_OP_ATTENTION: return (double)op->heads * op->head_dim;
	default: return op->n;
	}
}

int hw_op_kv_dependent(const struct trace_op *op)
{
	return op->kind == TRACE_OP_ATTENTION;
}

int hw_op_ships(const struct hw_platform *p, const struct trace_op *op,
                int *whole)
{
	*whole = 0;
	if (p->aau)
		return 0;
	switch (op->kind) {
	case TRACE_OP_NORM:
	case TRACE_OP_NONLINEAR: *whole = 1; return 1;
	case TRACE_OP_ATTENTION:
		*whole = p->aau_offload == HW_AAU_ATTENTION;
		return 1;
	default: return 0;
	}
}

/* Keys all M queries see in all: query i of M sees kv - M + 1 + i. */
static double causal_keys(double M, double L)
{
	return M * L - M * (M - 1.0) / 2.0;
}

static void set_bound(struct hw_opc *o)
{
	o->bound = o->memory_s >= o->compute_s ? HW_BOUND_MEMORY
	                                       : HW_BOUND_COMPUTE;
}

/* An operator entirely on dc->dev (one execution; the caller multiplies
 * by repeat). skip_softmax leaves the attention softmax out (it is
 * shipped). */
static void op_on_device(const struct hw_dctx *dc, const struct trace_op *op,
                         unsigned m, unsigned kv, int skip_softmax,
                         struct hw_opc *o)
{
	const struct hw_platform *p = dc->p;
	const struct hw_device *d = &p->dev[dc->dev];
	const double M = m, L = kv < m ? m : kv;
	const double wb = p->weight_bits / 8.0, ab = p->act_bits / 8.0;
	const double kvb = p->kv_bits / 8.0;
	double elems = 0, vec_bytes = 0, tail = 0;
	int alu_bound = 0;

	memset(o, 0, sizeof *o);
	o->dev = dc->dev;
	switch (op->kind) {
	case TRACE_OP_GEMM:
		if (d->kind == HW_DEV_NPU) {
			tail = npu_gemm(dc, M, op->k, op->n, wb, ab,
			                &o->compute_s, &o->memory_s, &o->bytes,
			                &o->macs);
		} else if (d->kind == HW_DEV_PIM) {
			double t = 0;
			alu_bound = pim_gemv(dc, op->k, op->n, M, &t, &o->bytes,
			                     &o->macs);
			o->time = t;
		} else {
			o->macs = M * op->k * op->n;
			o->bytes = (double)op->k * op->n * wb +
			           M * ((double)op->k + op->n) * ab;
		}
		break;
	case TRACE_OP_ATTENTION: {
		const double H = op->heads, hkv = op->kv_heads,
		             hd = op->head_dim;
		const double g = H / hkv; /* query heads per K/V head */
		elems = skip_softmax ? 0 : H * causal_keys(M, L);
		if (d->kind == HW_DEV_NPU) {
			/* per K/V head: Q K^T with the K cache stationary (K = hd,
			 * N = L), then P V (K = L, N = hd); the heads form one
			 * batched operation with one drain each */
			double c = 0, mm = 0, by = 0, mac = 0;
			double t1 = npu_gemm(dc, M * g, hd, L, kvb, ab, &c, &mm,
			                     &by, &mac);
			double t2 = npu_gemm(dc, M * g, L, hd, kvb, ab, &c, &mm,
			                     &by, &mac);
			o->compute_s = c * hkv;
			o->memory_s = mm * hkv;
			o->bytes = by * hkv;
			o->macs = mac * hkv;
			/* two drains, and the softmax between them is a vector
			 * operator of its own */
			tail = t1 + t2 + d->op_overhead_s;
		} else if (d->kind == HW_DEV_PIM) {
			/* per K/V head: a GEMV over the K cache (K = hd inputs,
			 * N = L keys) and one over the V cache (K = L, N = hd),
			 * for M x g query vectors; a pass does not shorten for the
			 * causal mask */
			double t = 0, by = 0, mac = 0;
			alu_bound = pim_gemv(dc, hd, L, M * g, &t, &by, &mac);
			alu_bound |= pim_gemv(dc, L, hd, M * g, &t, &by, &mac);
			o->time = t * hkv;
			o->bytes = by * hkv;
			o->macs = mac * hkv;
		} else {
			o->macs = 2.0 * H * hd * causal_keys(M, L);
			o->bytes = 2.0 * L * hd * hkv * kvb +
			           2.0 * M * H * hd * ab;
		}
		break;
	}
	case TRACE_OP_EMBED:
		/* M rows of n gathered from the table */
		elems = M * op->n;
		vec_bytes = M * op->n * wb + M * op->n * ab;
		break;
	case TRACE_OP_NONLINEAR:
	case TRACE_OP_NORM:
	case TRACE_OP_ELEMENTWISE:
	default:
		elems = M * op->n;
		vec_bytes = 2.0 * M * op->n * ab;
		break;
	}

	/* the vector part (elementwise ops, softmax) */
	const double share = d->kind == HW_DEV_PIM
	                             ? (double)dc->ranks / d->ranks
	                             : 1.0;
	const double vrate = d->kind == HW_DEV_PIM
	                             ? d->vector_ops * share
	                             : d->vector_ops * d->util *
	                                       (d->kind == HW_DEV_GPU ? d->count
	                                                              : 1);
	const double vbw = d->kind == HW_DEV_PIM ? d->mem_bw * share
	                                         : dc->bw * d->bw_eff;
	/* (a task stalled on channels the PIM holds has no bandwidth at all:
	 * no bytes take no time, any bytes forever) */
	const double vt_c = elems / vrate, vt_m = div0(vec_bytes, vbw);
	o->bytes += vec_bytes;

	switch (d->kind) {
	case HW_DEV_NPU:
		if (op->kind == TRACE_OP_GEMM ||
		    op->kind == TRACE_OP_ATTENTION) {
			o->compute_s += vt_c;
			o->time = max2(o->compute_s, o->memory_s) + tail;
		} else {
			o->compute_s = vt_c;
			o->memory_s = vt_m;
			o->time = max2(vt_c, vt_m) + d->op_overhead_s;
		}
		set_bound(o);
		break;
	case HW_DEV_PIM:
		o->compute_s = 2.0 * o->macs / (d->matrix_ops * share) + vt_c;
		o->memory_s = (o->bytes - vec_bytes) / (d->mem_bw * share) +
		              vt_m;
		o->time += max2(vt_c, vt_m) + d->op_overhead_s;
		if (op->kind == TRACE_OP_GEMM || op->kind == TRACE_OP_ATTENTION)
			o->bound = alu_bound ? HW_BOUND_COMPUTE
			                     : HW_BOUND_COMMAND;
		else
			set_bound(o);
		break;
	case HW_DEV_GPU:
	default: {
		const double n = d->count;
		o->compute_s = 2.0 * o->macs / (d->matrix_ops * d->util * n) +
		               vt_c;
		o->memory_s = div0(o->bytes - vec_bytes, dc->bw * d->bw_eff) +
		              vt_m;
		o->time = max2(o->compute_s, o->memory_s) + d->op_overhead_s;
		set_bound(o);
		break;
	}
	}
	o->busy[dc->dev] = o->time;
	o->e[dc->dev] = 1e-12 *
	                (o->macs * d->pj_per_mac + elems * d->pj_per_vec_op +
	                 o->bytes * 8.0 * d->pj_per_bit);
}

static void scale(struct hw_opc *o, double r)
{
	o->time *= r;
	o->compute_s *= r;
	o->memory_s *= r;
	o->macs *= r;
	o->bytes *= r;
	for (int i = 0; i < HW_MAX_DEV; i++) {
		o->busy[i] *= r;
		o->e[i] *= r;
	}
}

void hw_op_cost(const struct hw_dctx *dc, const struct hw_dctx *cc,
                const struct trace_op *op, unsigned m, unsigned kv,
                struct hw_opc *out)
{
	const struct hw_platform *p = dc->p;
	const double rep = op->repeat;
	int whole = 0;
	const int ships = dc->dev == p->pim && hw_op_ships(p, op, &whole);

	if (!ships) {
		op_on_device(dc, op, m, kv, 0, out);
		scale(out, rep);
		return;
	}
	/* Without the AAU the PIM ships what it cannot do to the compute
	 * device: activations out and back over the link (two latencies),
	 * the work done there, the PIM waiting meanwhile. */
	const double M = m, L = kv < m ? m : kv, ab = p->act_bits / 8.0;
	struct hw_opc aux;
	double xfer_bytes;
	if (whole) {
		op_on_device(cc, op, m, kv, 0, &aux);
		memset(out, 0, sizeof *out);
		out->dev = cc->dev;
		out->compute_s = aux.compute_s;
		out->memory_s = aux.memory_s;
		out->macs = aux.macs;
		out->bytes = aux.bytes;
		out->bound = aux.bound;
		xfer_bytes = op->kind == TRACE_OP_ATTENTION
		                     ? 2.0 * M * op->heads * op->head_dim * ab
		                     : 2.0 * M * op->n * ab;
	} else {
		/* attention: the GEMVs stay, the softmax's scores go out and
		 * its probabilities come back */
		op_on_device(dc, op, m, kv, 1, out);
		const double keys = op->heads * causal_keys(M, L);
		memset(&aux, 0, sizeof aux);
		const struct hw_device *c = &p->dev[cc->dev];
		const double vrate = c->vector_ops * c->util *
		                     (c->kind == HW_DEV_GPU ? c->count : 1);
		aux.time = keys / vrate + c->op_overhead_s;
		aux.e[cc->dev] = 1e-12 * keys * c->pj_per_vec_op;
		xfer_bytes = 2.0 * keys * ab;
	}
	const double xfer_s = xfer_bytes / p->link_bw + 2.0 * p->link_latency_s;
	out->time += aux.time + xfer_s;
	out->busy[cc->dev] += aux.time;
	for (int i = 0; i < HW_MAX_DEV; i++)
		out->e[i] += aux.e[i];
	out->e[cc->dev] += xfer_bytes * 8.0 * p->link_pj_per_bit * 1e-12;
	scale(out, rep);
}
