/* llm_kern.c - matrix-vector products and attention of the forward pass
 * (llm_kern.h). Compiled twice on x86-64: as is, for the baseline
 * instruction set (SSE2: lanes of 4 floats), and with -mavx2 and
 * LLM_KERN_VARIANT=avx2 (lanes of 8). Neither build fuses a multiply and
 * an add (C17 keeps -ffp-contract=off, and -mfma is not given), so every
 * lane rounds each product and each sum exactly as the reference's
 * scalar code does. */
#include "llm_kern.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "llm.h"
#include "vmath.h"

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

#ifndef LLM_KERN_VARIANT
#define LLM_KERN_VARIANT base
#endif
#define KERN_CAT(a, b) a##b
#define KERN_NAME(v)   KERN_CAT(llm_kern_, v)

#if defined(__AVX512F__)
#define VW 16
#elif defined(__AVX2__)
#define VW 8
#else
#define VW 4
#endif

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* VW floats side by side (GNU C vector extension). Lane-wise + and *
 * round each lane exactly as the scalar operators do; nothing is
 * reassociated across lanes. */
typedef float vf __attribute__((vector_size(VW * sizeof(float))));
typedef int32_t vi __attribute__((vector_size(VW * sizeof(int32_t))));
typedef float f4 __attribute__((vector_size(4 * sizeof(float))));

ALWAYS_INLINE vf load_vf(const float *p)
{
	vf v;

	memcpy(&v, p, sizeof v);
	return v;
}

ALWAYS_INLINE f4 load_f4(const float *p)
{
	f4 v;

	memcpy(&v, p, sizeof v);
	return v;
}

/* ---- matrix-vector products ---- */

/* NB blocks of LLM_BLOCK_ROWS dot products side by side (block b's
 * weights at w + b * bstride), 32 NB / VW lanes of VW: out[b * 32 + r] =
 * sum_j w[b * bstride + j * stride + r] * x[j], each summed from 0.0f in
 * the order j = 0 .. n - 1, one rounded product then one rounded add per
 * term, as the reference's scalar loop does. The lanes only remove the
 * wait on one long chain of dependent adds: NB = VW / 4 keeps eight
 * chains going in either build. */
ALWAYS_INLINE void dot_blocks(float *out, const float *w, size_t bstride,
                              size_t stride, const float *x, int n, int nb)
{
	enum { PER = LLM_BLOCK_ROWS / VW };
	vf acc[8];

	_Static_assert(LLM_BLOCK_ROWS % VW == 0, "whole lanes per block");
	_Static_assert((VW / 4) * PER <= 8, "at most eight accumulators");
	for (int k = 0; k < nb * PER; k++)
		acc[k] = (vf){ 0 };
	for (int j = 0; j < n; j++) {
		const float xj = x[j];

		for (int b = 0; b < nb; b++) {
			const float *wj = w + (size_t)b * bstride +
			                  (size_t)j * stride;

			for (int k = 0; k < PER; k++)
				acc[b * PER + k] += load_vf(wj + k * VW) * xj;
		}
	}
	memcpy(out, acc, (size_t)nb * PER * sizeof(vf));
}

/* up to NB blocks at a time: eight chains where lanes are 8 (NB 2) or 16
 * (NB 4) wide and there are that many blocks, 1 block where lanes are 4 */
#define NB (VW / 4)

/* dot_blocks for nb (1 .. NB) blocks, nb made a constant */
ALWAYS_INLINE void dot_blocks_nb(float *out, const float *w, size_t bstride,
                                 size_t stride, const float *x, int n, int nb)
{
	if (NB >= 4 && nb >= 4)
		dot_blocks(out, w, bstride, stride, x, n, 4);
	else if (NB >= 3 && nb == 3)
		dot_blocks(out, w, bstride, stride, x, n, 3);
	else if (NB >= 2 && nb >= 2)
		dot_blocks(out, w, bstride, stride, x, n, 2);
	else
		dot_blocks(out, w, bstride, stride, x, n, 1);
}

static void matmul(float *xout, const float *x, const float *wp, int n, int d)
{
	float acc[NB * LLM_BLOCK_ROWS];
	const size_t bs = (size_t)LLM_BLOCK_ROWS * (size_t)n;

	for (int b = 0; b < d;) {
		const int left = (d - b + LLM_BLOCK_ROWS - 1) / LLM_BLOCK_ROWS;
		const int nb = left < NB ? left : NB;
		const int rows = d - b < nb * LLM_BLOCK_ROWS
		                         ? d - b
		                         : nb * LLM_BLOCK_ROWS;

		dot_blocks_nb(acc, wp + (size_t)b * (size_t)n, bs,
		              LLM_BLOCK_ROWS, x, n, nb);
		memcpy(xout + b, acc, (size_t)rows * sizeof(float));
		b += nb * LLM_BLOCK_ROWS;
	}
}

/* Rows r0 .. r0 + R VW - 1 of one block for ns vectors (R ns <= 8): R
 * lanes of rows times ns vectors keep up to eight chains going, and each
 * load of weights serves every vector. Every output summed as in
 * dot_blocks. */
ALWAYS_INLINE void dot_rows_n(float *out, const float *wb, int r0,
                              const float *x, size_t xstride, int n, int R,
                              int ns)
{
	vf acc[8];

	for (int k = 0; k < R * ns; k++)
		acc[k] = (vf){ 0 };
	for (int j = 0; j < n; j++) {
		const float *wj = wb + (size_t)j * LLM_BLOCK_ROWS + r0;
		vf w[4];

		for (int r = 0; r < R; r++)
			w[r] = load_vf(wj + r * VW);
		for (int s = 0; s < ns; s++) {
			const float xs = x[(size_t)s * xstride + (size_t)j];

			for (int r = 0; r < R; r++)
				acc[s * R + r] += w[r] * xs;
		}
	}
	memcpy(out, acc, (size_t)(R * ns) * sizeof(vf));
}

/* ns (1 .. 4) vectors through one block: 4 or 3 vectors two lanes of rows
 * at a time, 2 vectors four lanes (when the block holds that many), one
 * vector a block at a time (dot_blocks) */
static void block_n(float *xout, size_t ostride, const float *x, size_t xstride,
                    const float *wb, int n, int b, int d, int ns)
{
	float acc[8 * VW];
	int R = ns >= 3 ? 2 : ns == 2 ? 4 : 0;

	if (R * VW > LLM_BLOCK_ROWS)
		R = LLM_BLOCK_ROWS / VW;
	if (R == 0) {
		const int rows = d - b < LLM_BLOCK_ROWS ? d - b
		                                        : LLM_BLOCK_ROWS;

		dot_blocks(acc, wb, 0, LLM_BLOCK_ROWS, x, n, 1);
		memcpy(xout + b, acc, (size_t)rows * sizeof(float));
		return;
	}
	for (int r0 = 0; r0 < LLM_BLOCK_ROWS && b + r0 < d; r0 += R * VW) {
		const int rows = d - b - r0 < R * VW ? d - b - r0 : R * VW;

		if (ns == 4)
			dot_rows_n(acc, wb, r0, x, xstride, n, 2, 4);
		else if (ns == 3)
			dot_rows_n(acc, wb, r0, x, xstride, n, 2, 3);
		else if (R == 4)
			dot_rows_n(acc, wb, r0, x, xstride, n, 4, 2);
		else
			dot_rows_n(acc, wb, r0, x, xstride, n, R, 2);
		for (int s = 0; s < ns; s++)
			memcpy(xout + (size_t)s * ostride + b + r0,
			       acc + s * R * VW, (size_t)rows * sizeof(float));
	}
}

static void matmul_n(float *xout, size_t ostride, const float *x,
                     size_t xstride, const float *wp, int n, int d, int count)
{
	_Static_assert(LLM_BLOCK_ROWS % (2 * VW) == 0, "whole row groups");
	if (count == 1) {
		matmul(xout, x, wp, n, d);
		return;
	}
	for (int b = 0; b < d; b += LLM_BLOCK_ROWS) {
		const float *wb = wp + (size_t)b * (size_t)n;

		/* groups of 4, the last two groups balanced (5 = 3 + 2) */
		for (int s0 = 0; s0 < count;) {
			const int left = count - s0;
			const int ns = left == 5 ? 3 : left > 4 ? 4 : left;

			block_n(xout + (size_t)s0 * ostride, ostride,
			        x + (size_t)s0 * xstride, xstride, wb, n, b, d,
			        ns);
			s0 += ns;
		}
	}
}

/* ---- attention ---- */

/* att[t] = (q . k_t) / sqrt(head_size) for t = 0 .. pos, kt: the key
 * rows of q's kv head. dot_blocks scores LLM_BLOCK_ROWS positions per
 * block, each summed over i in order like the reference's loop; a second
 * block only where it holds a position <= pos, so every block read lies
 * inside the row (kv_stride is a whole number of blocks). */
static void scores(float *att, const float *kt, size_t stride, const float *q,
                   int head_size, int pos)
{
	const float scale = sqrtf((float)head_size);
	float acc[NB * LLM_BLOCK_ROWS];

	for (int t0 = 0; t0 <= pos;) {
		const int left = (pos - t0) / LLM_BLOCK_ROWS + 1;
		const int nb = left < NB ? left : NB;
		const int n = pos + 1 - t0 < nb * LLM_BLOCK_ROWS
		                      ? pos + 1 - t0
		                      : nb * LLM_BLOCK_ROWS;

		dot_blocks_nb(acc, kt + t0, LLM_BLOCK_ROWS, stride, q,
		              head_size, nb);
		for (int r = 0; r < n; r++)
			att[t0 + r] = acc[r] / scale;
		t0 += nb * LLM_BLOCK_ROWS;
	}
}

/* The largest of x[0 .. n), in 4 VW independent running maxima rather than
 * one chain of dependent compares. A maximum does not depend on the order
 * of the compares (a NaN is skipped by every compare, as in the reference,
 * unless it is x[0], which then wins in both); only which of +0 and -0 wins
 * a tie can differ, and the softmax's x - max then differs at most in the
 * sign of a zero, which expf maps to 1 either way. */
ALWAYS_INLINE vf max_vf(vf m, vf v)
{
	const vi gt = v > m;

	return (vf)((gt & (vi)v) | (~gt & (vi)m));
}

static float max_of(const float *x, int n)
{
	vf m0, m1, m2, m3;
	float best;
	int i = 1;

	for (int k = 0; k < VW; k++)
		m0[k] = x[0];
	m1 = m2 = m3 = m0;
	for (; i + 4 * VW <= n; i += 4 * VW) {
		m0 = max_vf(m0, load_vf(x + i));
		m1 = max_vf(m1, load_vf(x + i + VW));
		m2 = max_vf(m2, load_vf(x + i + 2 * VW));
		m3 = max_vf(m3, load_vf(x + i + 3 * VW));
	}
	for (; i + VW <= n; i += VW)
		m0 = max_vf(m0, load_vf(x + i));
	m0 = max_vf(max_vf(m0, m1), max_vf(m2, m3));
	best = m0[0];
	for (int k = 1; k < VW; k++)
		best = m0[k] > best ? m0[k] : best;
	for (; i < n; i++)
		best = x[i] > best ? x[i] : best;
	return best;
}

/* The rest of the softmax for the n_heads rows of att (row h at att + h *
 * stride, expf already applied): each row's sum, from 0.0f in the order
 * of the row, then each value divided by it. A row's sum is one chain of
 * dependent adds; four rows advance together so that their chains
 * overlap. */
static void softmax_normalize(float *att, size_t stride, int n_heads, int n)
{
	int h = 0;

	for (; h + 4 <= n_heads; h += 4) {
		float *r0 = att + (size_t)h * stride, *r1 = r0 + stride;
		float *r2 = r1 + stride, *r3 = r2 + stride;
		float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;

		for (int i = 0; i < n; i++) {
			s0 += r0[i];
			s1 += r1[i];
			s2 += r2[i];
			s3 += r3[i];
		}
		for (int i = 0; i < n; i++) {
			r0[i] /= s0;
			r1[i] /= s1;
			r2[i] /= s2;
			r3[i] /= s3;
		}
	}
	for (; h < n_heads; h++) {
		float *r = att + (size_t)h * stride, sum = 0.0f;

		for (int i = 0; i < n; i++)
			sum += r[i];
		for (int i = 0; i < n; i++)
			r[i] /= sum;
	}
}

/* out[h * hs + i] = sum over every position t of att_h[t] * v_t[i] (v_t:
 * the value row of head h's kv head; the rows of seg[0], then those of
 * seg[1]), added in the order of t from 0.0f, as the reference does per
 * output. Heads h0 .. h0 + 8/S - 1, S slices of W
 * floats each (head_size = W S): eight chains of adds, and each weight
 * att_h[t] is taken once for the S slices of its head. */
#define VALUES_GROUP(NAME, T, W, LOAD)                                      \
	ALWAYS_INLINE void NAME(const struct llm_attn *a, int h0, int S)    \
	{                                                                   \
		const size_t kv_dim = (size_t)a->n_kv_heads *               \
		                      (size_t)a->head_size;                 \
		const int kv_mul = a->n_heads / a->n_kv_heads, G = 8 / S;   \
		const float *att[8];                                        \
		size_t off[8];                                              \
		T acc[8];                                                   \
                                                                            \
		for (int g = 0; g < G; g++) {                               \
			att[g] = a->att + (size_t)(h0 + g) * a->att_stride; \
			off[g] = (size_t)((h0 + g) / kv_mul) *              \
			         (size_t)a->head_size;                      \
		}                                                           \
		for (int k = 0; k < 8; k++)                                 \
			acc[k] = (T){ 0 };                                  \
		for (int sg = 0, t = 0; sg < 2; sg++)                       \
			for (int u = 0; u < a->seg[sg].n; u++, t++) {       \
				const float *v = a->seg[sg].values +        \
				                 (size_t)u * kv_dim;        \
                                                                            \
				for (int g = 0; g < G; g++) {               \
					const float w = att[g][t];          \
                                                                            \
					for (int k = 0; k < S; k++)         \
						acc[g * S + k] +=           \
						        LOAD(v + off[g] +   \
						             W * k) *       \
						        w;                  \
				}                                           \
			}                                                   \
		memcpy(a->out + (size_t)h0 * (size_t)a->head_size, acc,     \
		       sizeof acc);                                         \
	}

VALUES_GROUP(values_group_vf, vf, VW, load_vf)
#if VW != 4
VALUES_GROUP(values_group_f4, f4, 4, load_f4)
#endif
#if VW == 16
typedef float f8 __attribute__((vector_size(8 * sizeof(float))));

ALWAYS_INLINE f8 load_f8(const float *p)
{
	f8 v;

	memcpy(&v, p, sizeof v);
	return v;
}

VALUES_GROUP(values_group_f8, f8, 8, load_f8)
#endif

/* Where the 4-float slice k of the output (floats 4k .. 4k+3, within one
 * head as head_size % 4 == 0) takes its weights and values. */
static void value_slice(const struct llm_attn *a, int k, const float **att,
                        size_t *voff)
{
	const int hs = a->head_size, h = 4 * k / hs;

	*att = a->att + (size_t)h * a->att_stride;
	*voff = (size_t)(h / (a->n_heads / a->n_kv_heads)) * (size_t)hs +
	        (size_t)(4 * k % hs);
}

/* the values for head sizes that are not a multiple of 4: the reference's
 * loop */
static void values_scalar(const struct llm_attn *a)
{
	const int hs = a->head_size, kv_mul = a->n_heads / a->n_kv_heads;
	const size_t kv_dim = (size_t)a->n_kv_heads * (size_t)hs;

	for (int h = 0; h < a->n_heads; h++) {
		const float *att = a->att + (size_t)h * a->att_stride;
		float *xb = a->out + h * hs;
		size_t hoff = (size_t)(h / kv_mul) * (size_t)hs;

		memset(xb, 0, (size_t)hs * sizeof(float));
		for (int sg = 0, t = 0; sg < 2; sg++)
			for (int u = 0; u < a->seg[sg].n; u++, t++) {
				const float *v = a->seg[sg].values +
				                 (size_t)u * kv_dim + hoff;
				float w = att[t];
				for (int i = 0; i < hs; i++)
					xb[i] += w * v[i];
			}
	}
}

/* the values (as in values_group) for head_size % 4 == 0: groups of eight
 * chains where the head size is 1, 2 or 4 lanes of VW or of 4 floats, and
 * the heads left over four 4-float slices, of any heads, at a time */
static void values(const struct llm_attn *a)
{
	const int hs = a->head_size, dim = a->n_heads * hs, nv = dim / 4;
	const size_t kv_dim = (size_t)a->n_kv_heads * (size_t)hs;
	int k = 0; /* 4-float slices done */

	if (hs % VW == 0 && (hs / VW == 1 || hs / VW == 2 || hs / VW == 4)) {
		const int S = hs / VW, G = 8 / S;

		for (int h = 0; h + G <= a->n_heads; h += G, k += G * hs / 4) {
			if (S == 1)
				values_group_vf(a, h, 1);
			else if (S == 2)
				values_group_vf(a, h, 2);
			else
				values_group_vf(a, h, 4);
		}
	}
#if VW == 16
	else if (hs == 8 || hs == 16 || hs == 32) {
		const int S = hs / 8, G = 8 / S;

		for (int h = 0; h + G <= a->n_heads; h += G, k += G * hs / 4) {
			if (S == 1)
				values_group_f8(a, h, 1);
			else if (S == 2)
				values_group_f8(a, h, 2);
			else
				values_group_f8(a, h, 4);
		}
	}
#endif
#if VW != 4
	else if (hs % 4 == 0 && (hs == 4 || hs == 8 || hs == 16)) {
		const int S = hs / 4, G = 8 / S;

		for (int h = 0; h + G <= a->n_heads; h += G, k += G * hs / 4) {
			if (S == 1)
				values_group_f4(a, h, 1);
			else if (S == 2)
				values_group_f4(a, h, 2);
			else
				values_group_f4(a, h, 4);
		}
	}
#endif
	for (; k + 4 <= nv; k += 4) {
		const float *p0, *p1, *p2, *p3;
		size_t o0, o1, o2, o3;
		f4 a0 = { 0 }, a1 = { 0 }, a2 = { 0 }, a3 = { 0 };

		value_slice(a, k, &p0, &o0);
		value_slice(a, k + 1, &p1, &o1);
		value_slice(a, k + 2, &p2, &o2);
		value_slice(a, k + 3, &p3, &o3);
		for (int sg = 0, t = 0; sg < 2; sg++)
			for (int u = 0; u < a->seg[sg].n; u++, t++) {
				const float *v = a->seg[sg].values +
				                 (size_t)u * kv_dim;
				a0 += load_f4(v + o0) * p0[t];
				a1 += load_f4(v + o1) * p1[t];
				a2 += load_f4(v + o2) * p2[t];
				a3 += load_f4(v + o3) * p3[t];
			}
		memcpy(a->out + 4 * k, &a0, sizeof a0);
		memcpy(a->out + 4 * k + 4, &a1, sizeof a1);
		memcpy(a->out + 4 * k + 8, &a2, sizeof a2);
		memcpy(a->out + 4 * k + 12, &a3, sizeof a3);
	}
	for (; k < nv; k++) {
		const float *p0;
		size_t o0;
		f4 a0 = { 0 };

		value_slice(a, k, &p0, &o0);
		for (int sg = 0, t = 0; sg < 2; sg++)
			for (int u = 0; u < a->seg[sg].n; u++, t++)
				a0 += load_f4(a->seg[sg].values +
				              (size_t)u * kv_dim + o0) *
				      p0[t];
		memcpy(a->out + 4 * k, &a0, sizeof a0);
	}
}

static void attention(const struct llm_attn *a)
{
	const int hs = a->head_size, kv_mul = a->n_heads / a->n_kv_heads;
	const int n = a->seg[0].n + a->seg[1].n;

	const int n4 = (n + 3) & ~3;
	float max[64];

	for (int h0 = 0; h0 < a->n_heads; h0 += 64) {
		const int nh = a->n_heads - h0 < 64 ? a->n_heads - h0 : 64;

		for (int h = h0; h < h0 + nh; h++) {
			float *att = a->att + (size_t)h * a->att_stride;
			const size_t koff = (size_t)(h / kv_mul) * (size_t)hs;

			for (int k = 0, off = 0; k < 2; off += a->seg[k].n, k++)
				if (a->seg[k].n > 0)
					scores(att + off,
					       a->seg[k].keys +
					               koff * a->seg[k].kv_stride,
					       a->seg[k].kv_stride,
					       a->q + h * hs, hs,
					       a->seg[k].n - 1);
			max[h - h0] = max_of(att, n);
			/* up to a whole 4: expf(max - max) = 1, never read */
			for (int t = n; t < n4; t++)
				att[t] = max[h - h0];
		}
		vexpf_rows(a->att + (size_t)h0 * a->att_stride, a->att_stride,
		           max, nh, n4);
	}
	softmax_normalize(a->att, a->att_stride, a->n_heads, n);
	if (hs % 4 == 0)
		values(a);
	else
		values_scalar(a);
}

#define KERN_STR2(v) #v
#define KERN_STR(v)  KERN_STR2(v)

const struct llm_kern KERN_NAME(LLM_KERN_VARIANT) = {
	.name = KERN_STR(LLM_KERN_VARIANT),
	.matmul = matmul,
	.matmul_n = matmul_n,
	.attention = attention,
};
