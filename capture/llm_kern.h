/* llm_kern.h - the arithmetic of one forward pass that takes its time:
 * matrix-vector products over packed weights and multi-head attention.
 *
 * llm_kern.c is compiled once for the baseline instruction set and, on
 * x86-64, once more for AVX2 and once for AVX-512 (wider lanes);
 * llm_kern_select() picks one when the process starts. Both compute every value with the same
 * roundings in the same order as the reference's scalar loops (a lane
 * holds one dot product, or one output of a sum; nothing is reassociated
 * and nothing is fused into a multiply-add), so their results are
 * bit-identical: only the speed differs. */
#ifndef AHASD_LLM_KERN_H
#define AHASD_LLM_KERN_H

#include <stddef.h>

/* Rows of a KV cache: keys transposed (n_kv_heads x head_size rows of
 * kv_stride floats, one column per position; kv_stride a multiple of
 * LLM_BLOCK_ROWS), values one row of n_kv_heads x head_size floats per
 * position; n positions. */
struct llm_kv_seg {
	const float *keys;
	size_t kv_stride;
	const float *values;
	int n;
};

/* One query's attention over the positions of seg[0], then those of
 * seg[1] (positions seg[0].n .. seg[0].n + seg[1].n - 1: a stream that
 * reads a shared prefix and keeps its own rows after it; seg[1].n = 0 for
 * a plain cache). */
struct llm_attn {
	const float *q; /* n_heads x head_size, RoPE applied */
	struct llm_kv_seg seg[2];
	float *att; /* scratch: n_heads rows of att_stride floats,
	                        * att_stride >= positions rounded up to 4 */
	size_t att_stride;
	float *out; /* n_heads x head_size */
	int n_heads, n_kv_heads, head_size;
};

struct llm_kern {
	const char *name;
	/** xout (d) = W (d x n) x (n), W packed in blocks of LLM_BLOCK_ROWS
	 * rows stored column by column; xout must not overlap x. Each output
	 * is summed from 0.0f over j = 0 .. n - 1 in order. */
	void (*matmul)(float *xout, const float *x, const float *wp, int n,
	               int d);
	/** The same for count vectors at once, x_s = x + s * xstride ->
	 * xout + s * ostride: one pass over W serves them all; each output
	 * as matmul computes it. */
	void (*matmul_n)(float *xout, size_t ostride, const float *x,
	                 size_t xstride, const float *wp, int n, int d,
	                 int count);
	/** out = softmax(q . k / sqrt(head_size)) v per head, as the
	 * reference: scores summed over i in order and divided by the scale,
	 * expf(score - max) (vexpf_sub()), the sum in the order of t, each
	 * weight divided by it, values summed over t in order. */
	void (*attention)(const struct llm_attn *a);
};

extern const struct llm_kern llm_kern_base;
#if defined(__x86_64__) && defined(__GNUC__)
#define LLM_KERN_AVX2 1
extern const struct llm_kern llm_kern_avx2;
extern const struct llm_kern llm_kern_avx512;
#endif

/** The kernels this process uses: AVX-512 (F) where the CPU has it, else
 * AVX2 where it has that, else the baseline; the environment variable
 * AHASD_CAPTURE_KERNELS=baseline or avx2 caps the choice. Chosen once;
 * also chooses the replicas of vmath.h (vmath_select()). */
const struct llm_kern *llm_kern_select(void);

/** For tests: use these kernels from now on. */
void llm_kern_use(const struct llm_kern *k);

#endif
