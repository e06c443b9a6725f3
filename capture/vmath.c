/* vmath.c - expf, exp and log over arrays, bit-identical to the C
 * library's.
 *
 * The forward pass calls expf once per attention weight and per hidden
 * unit (SiLU): tens of thousands of calls per token, each a call through
 * the PLT that spills the caller's vector registers. This file computes
 * many at once and must give exactly what expf gives, or the logits (and
 * the shipped traces) would change.
 *
 * glibc since 2.27 (and musl) compute expf with the algorithm of Arm's
 * optimized-routines (glibc: sysdeps/ieee754/flt-32/e_expf.c,
 * e_exp2f_data.c): in double precision, x * 32/ln2 = k + r, 2^(k/32) from
 * a 32-entry table, 2^(r/32) by a cubic, one rounding to float at the end.
 * On x86-64 glibc builds it twice and picks one at load time: with FMA
 * instructions (when the CPU has FMA and AVX2) the compiler fused four of
 * the multiply-adds, which rounds differently. The two builds differ on
 * two of the 2.1 billion floats below 88.7 (-0x1.f8cbb2p+5 and
 * 0x1.04845ep+5); each replica below matches its build on every float
 * (checked exhaustively against glibc 2.36 on both paths; tests check a
 * sample). The same lanes fall back to expf itself where the algorithm
 * leaves its main path (|x| >= 88, infinities, NaN).
 *
 * Which one the process's expf is cannot be asked, so vmath_select()
 * compares each replica with expf on 8192 inputs spread over the whole
 * range, the two that tell the builds apart among them, and keeps the
 * first that agrees on all; if none does (another C library), every
 * value is expf's own. */
#include "vmath.h"
#include "vmath_tables.h"

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF /* GCC: off in ISO C mode (-std=c17) */
#endif

#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define VEXPF_X86 1
#else
#define VEXPF_X86 0
#endif

/* __exp2f_data: 2^(i/32) with i << 47 subtracted from its bits, so that
 * adding k << 47 scales it by 2^(k/32 - i/32) */
static const uint64_t tab[32] = {
	0x3ff0000000000000, 0x3fefd9b0d3158574, 0x3fefb5586cf9890f,
	0x3fef9301d0125b51, 0x3fef72b83c7d517b, 0x3fef54873168b9aa,
	0x3fef387a6e756238, 0x3fef1e9df51fdee1, 0x3fef06fe0a31b715,
	0x3feef1a7373aa9cb, 0x3feedea64c123422, 0x3feece086061892d,
	0x3feebfdad5362a27, 0x3feeb42b569d4f82, 0x3feeab07dd485429,
	0x3feea47eb03a5585, 0x3feea09e667f3bcd, 0x3fee9f75e8ec5f74,
	0x3feea11473eb0187, 0x3feea589994cce13, 0x3feeace5422aa0db,
	0x3feeb737b0cdc5e5, 0x3feec49182a3f090, 0x3feed503b23e255d,
	0x3feee89f995ad3ad, 0x3feeff76f2fb5e47, 0x3fef199bdd85529c,
	0x3fef3720dcef9069, 0x3fef5818dcfba487, 0x3fef7c97337b9b5f,
	0x3fefa4afa2a490da, 0x3fefd0765b6e4540,
};
#define INVLN2N 0x40471547652b82feull /* 32 / ln 2 */
#define SHIFT   0x4338000000000000ull /* 0x1.8p52: rounds to an integer */
#define C0      0x3ebc6af84b912394ull /* the cubic, scaled by 1/32 */
#define C1      0x3f2ebfce50fac4f3ull
#define C2      0x3f962e42ff0c52d6ull
/* |x| >= 88 (bits of |x| >= those of 88.0f), infinities and NaN leave the
 * main path in expf */
#define SPECIAL 0x42b00000u

static double as_double(uint64_t u)
{
	double d;

	memcpy(&d, &u, sizeof d);
	return d;
}

static uint64_t as_u64(double d)
{
	uint64_t u;

	memcpy(&u, &d, sizeof u);
	return u;
}

static int special(float x)
{
	uint32_t u;

	memcpy(&u, &x, sizeof u);
	return (u & 0x7fffffffu) >= SPECIAL;
}

/* expf(x) for a lane that special() flags, given v, what the main path
 * computed for it: as glibc's branches, without its calls where the
 * result is a constant (x < -0x1.9fe368p6 underflows to 0; below
 * -0x1.9d1d9ep6 glibc returns 0x1.4p-75f squared, 0x1p-149) or the main
 * path's (the rest of -103.28 .. 88.72); infinities, NaN and overflow go
 * to expf itself. */
static float special_lane(float x, float v)
{
	if (x != x || x == -INFINITY || x > 0x1.62e42ep6f)
		return expf(x);
	if (x < -0x1.9fe368p6f)
		return 0.0f;
	if (x < -0x1.9d1d9ep6f)
		return 0x1p-149f;
	return v;
}

/* glibc's expf without FMA, one value (the main path) */
static float expf_plain(float x)
{
	const double xd = (double)x;
	const double z = as_double(INVLN2N) * xd;
	double kd = z + as_double(SHIFT), r, s, p, r2, y;
	uint64_t ki = as_u64(kd);

	kd -= as_double(SHIFT);
	r = z - kd;
	s = as_double(tab[ki % 32] + (ki << 47));
	p = as_double(C0) * r + as_double(C1);
	r2 = r * r;
	y = as_double(C2) * r + 1.0;
	y = p * r2 + y;
	return (float)(y * s);
}

/* y[i] = expf(x[i] - sub), two at a time in double lanes: the same
 * roundings as expf_plain, lane by lane */
typedef double vd2 __attribute__((vector_size(16)));
typedef int64_t vi2 __attribute__((vector_size(16)));
typedef uint64_t vu2 __attribute__((vector_size(16)));

static void exp_plain_n(float *y, const float *x, float sub, int neg, int n)
{
	const vd2 invln2n = { as_double(INVLN2N), as_double(INVLN2N) };
	const vd2 shift = { as_double(SHIFT), as_double(SHIFT) };
	const vd2 c0 = { as_double(C0), as_double(C0) };
	const vd2 c1 = { as_double(C1), as_double(C1) };
	const vd2 c2 = { as_double(C2), as_double(C2) };
	const vd2 one = { 1.0, 1.0 };
	int i = 0;

	for (; i + 2 <= n; i += 2) {
		const float a = neg ? -x[i] : x[i] - sub;
		const float b = neg ? -x[i + 1] : x[i + 1] - sub;
		const vd2 xd = { (double)a, (double)b };
		const vd2 z = invln2n * xd;
		vd2 kd = z + shift, r, s, p, r2, v;
		vu2 ki, t;

		memcpy(&ki, &kd, sizeof ki);
		kd -= shift;
		r = z - kd;
		t = (vu2){ tab[ki[0] % 32], tab[ki[1] % 32] } + (ki << 47);
		memcpy(&s, &t, sizeof s);
		p = c0 * r + c1;
		r2 = r * r;
		v = c2 * r + one;
		v = p * r2 + v;
		v *= s;
		y[i] = special(a) ? special_lane(a, (float)v[0]) : (float)v[0];
		y[i + 1] = special(b) ? special_lane(b, (float)v[1])
		                      : (float)v[1];
	}
	for (; i < n; i++) {
		const float a = neg ? -x[i] : x[i] - sub;
		y[i] = special(a) ? special_lane(a, expf_plain(a))
		                  : expf_plain(a);
	}
}

static void exp_libm_n(float *y, const float *x, float sub, int neg, int n)
{
	for (int i = 0; i < n; i++)
		y[i] = expf(neg ? -x[i] : x[i] - sub);
}

#if VEXPF_X86
/* glibc's expf built with FMA (its __expf_fma) of four values: the first
 * rounding step and the three multiply-adds of the cubic are fused */
__attribute__((target("avx2,fma"), always_inline)) static inline __m128
exp_fma4(__m128 a)
{
	const __m256d invln2n = _mm256_set1_pd(as_double(INVLN2N));
	const __m256d shift = _mm256_set1_pd(as_double(SHIFT));
	const __m256d xd = _mm256_cvtps_pd(a);
	__m256d kd = _mm256_fmadd_pd(invln2n, xd, shift), r, p, r2, v;
	const __m256i ki = _mm256_castpd_si256(kd);
	const __m256i t = _mm256_add_epi64(
	        _mm256_i64gather_epi64(
	                (const long long *)tab,
	                _mm256_and_si256(ki, _mm256_set1_epi64x(31)), 8),
	        _mm256_slli_epi64(ki, 47));
	const __m128i big = _mm_cmpgt_epi32(
	        _mm_and_si128(_mm_castps_si128(a), _mm_set1_epi32(0x7fffffff)),
	        _mm_set1_epi32((int)(SPECIAL - 1)));
	__m128 y;

	kd = _mm256_sub_pd(kd, shift);
	r = _mm256_fmsub_pd(invln2n, xd, kd);
	p = _mm256_fmadd_pd(r, _mm256_set1_pd(as_double(C0)),
	                    _mm256_set1_pd(as_double(C1)));
	r2 = _mm256_mul_pd(r, r);
	v = _mm256_fmadd_pd(r, _mm256_set1_pd(as_double(C2)),
	                    _mm256_set1_pd(1.0));
	v = _mm256_fmadd_pd(p, r2, v);
	v = _mm256_mul_pd(v, _mm256_castsi256_pd(t));
	y = _mm256_cvtpd_ps(v);
	if (_mm_movemask_ps(_mm_castsi128_ps(big))) {
		float av[4], yv[4];

		_mm_storeu_ps(av, a);
		_mm_storeu_ps(yv, y);
		for (int k = 0; k < 4; k++)
			if (special(av[k]))
				yv[k] = special_lane(av[k], yv[k]);
		y = _mm_loadu_ps(yv);
	}
	return y;
}

/* y[i] = expf(x[i] - sub) (or expf(-x[i])), four at a time */
__attribute__((target("avx2,fma"))) static void exp_fma_n(float *y,
                                                          const float *x,
                                                          float sub, int neg,
                                                          int n)
{
	const __m128 vsub = _mm_set1_ps(sub), sign = _mm_set1_ps(-0.0f);
	int i = 0;

	for (; i + 4 <= n; i += 4) {
		const __m128 xi = _mm_loadu_ps(x + i);

		_mm_storeu_ps(y + i, exp_fma4(neg ? _mm_xor_ps(xi, sign)
		                                  : _mm_sub_ps(xi, vsub)));
	}
	if (i < n) {
		/* the last 1-3 through the same lanes, so every value takes the
		 * same instructions */
		float in[4] = { 0 }, out[4];
		const int m = n - i;

		for (int k = 0; k < m; k++)
			in[k] = x[i + k];
		exp_fma_n(out, in, sub, neg, 4);
		for (int k = 0; k < m; k++)
			y[i + k] = out[k];
	}
}

/* exp_fma_n over rows of n (a multiple of 4) in place, row r less subs[r] */
__attribute__((target("avx2,fma"))) static void exp_fma_rows(float *x,
                                                             size_t stride,
                                                             const float *subs,
                                                             int rows, int n)
{
	for (int row = 0; row < rows; row++) {
		float *y = x + (size_t)row * stride;
		const __m128 vsub = _mm_set1_ps(subs[row]);

		for (int i = 0; i < n; i += 4)
			_mm_storeu_ps(y + i,
			              exp_fma4(_mm_sub_ps(_mm_loadu_ps(y + i),
			                                  vsub)));
	}
}

/* exp_fma_rows eight values at a time with AVX-512: the same operations
 * on each value, the table lookup two permutes of the table held in
 * registers instead of a gather */
__attribute__((target("avx512f,avx2,fma"))) static void exp_fma_rows16(
        float *x, size_t stride, const float *subs, int rows, int n)
{
	const __m512d invln2n = _mm512_set1_pd(as_double(INVLN2N));
	const __m512d shift = _mm512_set1_pd(as_double(SHIFT));
	const __m512d c0 = _mm512_set1_pd(as_double(C0));
	const __m512d c1 = _mm512_set1_pd(as_double(C1));
	const __m512d c2 = _mm512_set1_pd(as_double(C2));
	const __m512d one = _mm512_set1_pd(1.0);
	const __m512i t0 = _mm512_loadu_si512(tab),
	              t1 = _mm512_loadu_si512(tab + 8);
	const __m512i t2 = _mm512_loadu_si512(tab + 16);
	const __m512i t3 = _mm512_loadu_si512(tab + 24);
	const __m512i m31 = _mm512_set1_epi64(31), b16 = _mm512_set1_epi64(16);
	const __m256i absmask = _mm256_set1_epi32(0x7fffffff);
	const __m256i limit = _mm256_set1_epi32((int)(SPECIAL - 1));

	for (int row = 0; row < rows; row++) {
		float *y = x + (size_t)row * stride;
		const __m256 vsub = _mm256_set1_ps(subs[row]);
		int i = 0;

		for (; i + 8 <= n; i += 8) {
			const __m256 a = _mm256_sub_ps(_mm256_loadu_ps(y + i),
			                               vsub);
			const __m512d xd = _mm512_cvtps_pd(a);
			__m512d kd = _mm512_fmadd_pd(invln2n, xd, shift), r, p,
			        r2, v;
			const __m512i ki = _mm512_castpd_si512(kd);
			const __m512i idx = _mm512_and_si512(ki, m31);
			const __m512i t = _mm512_add_epi64(
			        _mm512_mask_blend_epi64(
			                _mm512_test_epi64_mask(idx, b16),
			                _mm512_permutex2var_epi64(t0, idx, t1),
			                _mm512_permutex2var_epi64(t2, idx, t3)),
			        _mm512_slli_epi64(ki, 47));
			const __m256i big = _mm256_cmpgt_epi32(
			        _mm256_and_si256(_mm256_castps_si256(a),
			                         absmask),
			        limit);

			kd = _mm512_sub_pd(kd, shift);
			r = _mm512_fmsub_pd(invln2n, xd, kd);
			p = _mm512_fmadd_pd(r, c0, c1);
			r2 = _mm512_mul_pd(r, r);
			v = _mm512_fmadd_pd(r, c2, one);
			v = _mm512_fmadd_pd(p, r2, v);
			v = _mm512_mul_pd(v, _mm512_castsi512_pd(t));
			_mm256_storeu_ps(y + i, _mm512_cvtpd_ps(v));
			if (_mm256_movemask_ps(_mm256_castsi256_ps(big))) {
				float av[8];

				_mm256_storeu_ps(av, a);
				for (int k = 0; k < 8; k++)
					if (special(av[k]))
						y[i + k] = special_lane(
						        av[k], y[i + k]);
			}
		}
		if (i < n) /* the last 4 */
			exp_fma_rows(y + i, stride, subs + row, 1, n - i);
	}
}

static int have_avx512(void)
{
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx512f");
}
#endif

/* ---- exp and log (double) ----
 *
 * The softmax over the vocabulary and the entropy of each distribution
 * call exp and log once per token of the vocabulary, for every forward.
 * glibc's (Arm's optimized-routines, like expf above; the same two builds,
 * with and without FMA): exp as 2^(k/128) from a table times a quintic in
 * r = x - k ln2/128; log as log(c) + k ln2 from a table of 128 centres c
 * plus a polynomial in r = z/c - 1. The replicas follow the main paths
 * operation for operation (with FMA where glibc's FMA build fused) and
 * leave the rest to the library: exp of |x| < 2^-54 or >= 512, log of
 * x within 1/16 of 1 (at most one value of a distribution), subnormals,
 * zero, negatives, infinities and NaN. */

#define EXP_SPECIAL(top) ((uint32_t)(top)-0x3c9u > 0x3eu)
#define LOG_LO           0x3fee000000000000ull /* 1 - 2^-4 */
#define LOG_NEAR1        0x0003090000000000ull /* (1 + 0x1.09p-4) - LO */
#define LOG_OFF          0x3fe6000000000000ull

static int exp_special(double x)
{
	return EXP_SPECIAL((as_u64(x) >> 52) & 0x7ff);
}

static int log_special(double x)
{
	const uint64_t ix = as_u64(x);

	return ix - LOG_LO < LOG_NEAR1 ||
	       (uint32_t)(ix >> 48) - 0x10u >= 0x7ff0u - 0x10u;
}

/* glibc's exp without FMA, one value (the main path) */
static double exp_plain(double x)
{
	const double z = as_double(exp_const[0]) * x;
	double kd = z + as_double(exp_const[7]), r, r2, tail, tmp, scale;
	const uint64_t ki = as_u64(kd);
	const uint64_t idx = 2 * (ki % 128);

	kd -= as_double(exp_const[7]);
	r = x + kd * as_double(exp_const[1]) + kd * as_double(exp_const[2]);
	tail = as_double(exp_tab[idx]);
	scale = as_double(exp_tab[idx + 1] + (ki << 45));
	r2 = r * r;
	tmp = tail + r +
	      r2 * (as_double(exp_const[3]) + r * as_double(exp_const[4])) +
	      r2 * r2 * (as_double(exp_const[5]) + r * as_double(exp_const[6]));
	return scale + scale * tmp;
}

/* glibc's log without FMA, one value (the main path) */
static double log_plain(double x)
{
	const uint64_t ix = as_u64(x), tmp = ix - LOG_OFF;
	const int i = (int)((tmp >> 45) % 128);
	const double kd = (double)(int)((int64_t)tmp >> 52);
	const double z = as_double(ix - (tmp & 0xfffull << 52));
	const double invc = as_double(log_tab[2 * i]);
	const double logc = as_double(log_tab[2 * i + 1]);
	const double r = (z - as_double(log_tab2[2 * i]) -
	                  as_double(log_tab2[2 * i + 1])) *
	                 invc;
	const double w = kd * as_double(log_const[0]) + logc;
	const double hi = w + r;
	const double lo = w - hi + r + kd * as_double(log_const[1]);
	const double r2 = r * r;

	return lo + r2 * as_double(log_const[2]) +
	       r * r2 *
	               (as_double(log_const[3]) + r * as_double(log_const[4]) +
	                r2 * (as_double(log_const[5]) +
	                      r * as_double(log_const[6]))) +
	       hi;
}

static void exp_plain_d(double *y, const double *x, int n)
{
	for (int i = 0; i < n; i++)
		y[i] = exp_special(x[i]) ? exp(x[i]) : exp_plain(x[i]);
}

/* log of a special lane: the library's, except where x <= 0 (or NaN),
 * which the callers skip, so that errno is not touched */
static double log_lane(double d)
{
	return d > 0.0 ? log(d) : 0.0;
}

static void log_plain_f(double *y, const float *x, int n)
{
	for (int i = 0; i < n; i++) {
		const double d = (double)x[i];

		y[i] = log_special(d) ? log_lane(d) : log_plain(d);
	}
}

static void exp_libm_d(double *y, const double *x, int n)
{
	for (int i = 0; i < n; i++)
		y[i] = exp(x[i]);
}

static void log_libm_f(double *y, const float *x, int n)
{
	for (int i = 0; i < n; i++)
		y[i] = log_lane((double)x[i]);
}

#if VEXPF_X86
/* glibc's exp built with FMA (its __exp_fma), four values at a time */
__attribute__((target("avx2,fma"))) static void exp_fma_d(double *y,
                                                          const double *x,
                                                          int n)
{
	const __m256d invln2n = _mm256_set1_pd(as_double(exp_const[0]));
	const __m256d nln2hi = _mm256_set1_pd(as_double(exp_const[1]));
	const __m256d nln2lo = _mm256_set1_pd(as_double(exp_const[2]));
	const __m256d c2 = _mm256_set1_pd(as_double(exp_const[3]));
	const __m256d c3 = _mm256_set1_pd(as_double(exp_const[4]));
	const __m256d c4 = _mm256_set1_pd(as_double(exp_const[5]));
	const __m256d c5 = _mm256_set1_pd(as_double(exp_const[6]));
	const __m256d shift = _mm256_set1_pd(as_double(exp_const[7]));
	const __m256i m127 = _mm256_set1_epi64x(127);
	int i = 0;

	for (; i + 4 <= n; i += 4) {
		const __m256d xv = _mm256_loadu_pd(x + i);
		__m256d kd = _mm256_fmadd_pd(xv, invln2n, shift), r, r2, t, p23,
		        p45;
		const __m256i ki = _mm256_castpd_si256(kd);
		const __m256i idx = _mm256_slli_epi64(
		        _mm256_and_si256(ki, m127), 1);
		const __m256d tail = _mm256_i64gather_pd(
		        (const double *)(const void *)exp_tab, idx, 8);
		const __m256i sb = _mm256_add_epi64(
		        _mm256_i64gather_epi64(
		                (const long long *)exp_tab,
		                _mm256_add_epi64(idx, _mm256_set1_epi64x(1)),
		                8),
		        _mm256_slli_epi64(ki, 45));
		const __m256d scale = _mm256_castsi256_pd(sb);
		int spec = 0;

		kd = _mm256_sub_pd(kd, shift);
		r = _mm256_fmadd_pd(kd, nln2hi, xv);
		r = _mm256_fmadd_pd(kd, nln2lo, r);
		p23 = _mm256_fmadd_pd(r, c3, c2);
		t = _mm256_add_pd(tail, r);
		r2 = _mm256_mul_pd(r, r);
		p45 = _mm256_fmadd_pd(r, c5, c4);
		t = _mm256_fmadd_pd(p23, r2, t);
		r2 = _mm256_mul_pd(r2, r2);
		t = _mm256_fmadd_pd(r2, p45, t);
		{
			/* exp_special() of the four: the exponent outside
			 * 0x3c9 .. 0x407 */
			const __m256i top = _mm256_and_si256(
			        _mm256_srli_epi64(_mm256_castpd_si256(xv), 52),
			        _mm256_set1_epi64x(0x7ff));
			const __m256i out = _mm256_or_si256(
			        _mm256_cmpgt_epi64(top,
			                           _mm256_set1_epi64x(0x407)),
			        _mm256_cmpgt_epi64(_mm256_set1_epi64x(0x3c9),
			                           top));

			spec = _mm256_movemask_pd(_mm256_castsi256_pd(out));
		}
		if (spec) {
			double in[4]; /* y may be x */

			_mm256_storeu_pd(in, xv);
			_mm256_storeu_pd(y + i,
			                 _mm256_fmadd_pd(scale, t, scale));
			for (int k = 0; k < 4; k++)
				if (spec >> k & 1)
					y[i + k] = exp(in[k]);
		} else {
			_mm256_storeu_pd(y + i,
			                 _mm256_fmadd_pd(scale, t, scale));
		}
	}
	if (i < n) {
		double in[4] = { 0 }, out[4];
		const int m = n - i;

		for (int k = 0; k < m; k++)
			in[k] = x[i + k];
		exp_fma_d(out, in, 4);
		for (int k = 0; k < m; k++)
			y[i + k] = out[k];
	}
}

/* glibc's log built with FMA (its __log_fma), four values at a time */
__attribute__((target("avx2,fma"))) static void log_fma_f(double *y,
                                                          const float *x, int n)
{
	const __m256d ln2hi = _mm256_set1_pd(as_double(log_const[0]));
	const __m256d ln2lo = _mm256_set1_pd(as_double(log_const[1]));
	const __m256d a0 = _mm256_set1_pd(as_double(log_const[2]));
	const __m256d a1 = _mm256_set1_pd(as_double(log_const[3]));
	const __m256d a2 = _mm256_set1_pd(as_double(log_const[4]));
	const __m256d a3 = _mm256_set1_pd(as_double(log_const[5]));
	const __m256d a4 = _mm256_set1_pd(as_double(log_const[6]));
	const __m256d minus1 = _mm256_set1_pd(-1.0);
	const __m256i off = _mm256_set1_epi64x((long long)LOG_OFF);
	const __m256i m127 = _mm256_set1_epi64x(127);
	const __m256i topmask = _mm256_set1_epi64x((long long)(0xfffull << 52));
	const __m256i magic = _mm256_set1_epi64x(0x4338000000000000ll);
	const __m256d magicd = _mm256_set1_pd(0x1.8p52);
	int i = 0;

	for (; i + 4 <= n; i += 4) {
		const __m256d xv = _mm256_cvtps_pd(_mm_loadu_ps(x + i));
		const __m256i ix = _mm256_castpd_si256(xv);
		const __m256i tmp = _mm256_sub_epi64(ix, off);
		const __m256i idx = _mm256_slli_epi64(
		        _mm256_and_si256(_mm256_srli_epi64(tmp, 45), m127), 1);
		/* k = tmp >> 52 (arithmetic), |k| < 2^11: as a double through
		 * the bits of 1.5 * 2^52 + k, exactly (double)(int)k */
		const __m256i k = _mm256_sub_epi64(
		        _mm256_srli_epi64(
		                _mm256_add_epi64(
		                        tmp,
		                        _mm256_set1_epi64x(
		                                (long long)(0x800ull << 52))),
		                52),
		        _mm256_set1_epi64x(0x800));
		const __m256d kd = _mm256_sub_pd(
		        _mm256_castsi256_pd(_mm256_add_epi64(k, magic)),
		        magicd);
		const __m256d z = _mm256_castsi256_pd(
		        _mm256_sub_epi64(ix, _mm256_and_si256(tmp, topmask)));
		const __m256d invc = _mm256_i64gather_pd(
		        (const double *)(const void *)log_tab, idx, 8);
		const __m256d logc = _mm256_i64gather_pd(
		        (const double *)(const void *)log_tab,
		        _mm256_add_epi64(idx, _mm256_set1_epi64x(1)), 8);
		__m256d r, w, hi, lo, r2, r3, p12, p34, v;
		int spec = 0;

		r = _mm256_fmadd_pd(z, invc, minus1);
		w = _mm256_fmadd_pd(kd, ln2hi, logc);
		p12 = _mm256_fmadd_pd(r, a2, a1);
		hi = _mm256_add_pd(r, w);
		r2 = _mm256_mul_pd(r, r);
		lo = _mm256_add_pd(_mm256_sub_pd(w, hi), r);
		lo = _mm256_fmadd_pd(kd, ln2lo, lo);
		r3 = _mm256_mul_pd(r, r2);
		p34 = _mm256_fmadd_pd(r, a4, a3);
		lo = _mm256_fmadd_pd(r2, a0, lo);
		p12 = _mm256_fmadd_pd(p34, r2, p12);
		v = _mm256_fmadd_pd(r3, p12, lo);
		_mm256_storeu_pd(y + i, _mm256_add_pd(v, hi));
		{
			/* log_special() of the four: within 1/16 of 1, or the
			 * top 16 bits outside 0x0010 .. 0x7fef (subnormal, zero,
			 * negative, infinite, NaN) */
			const __m256i top16 = _mm256_srli_epi64(ix, 48);
			const __m256i near1 = _mm256_andnot_si256(
			        _mm256_cmpgt_epi64(
			                _mm256_set1_epi64x((long long)LOG_LO),
			                ix),
			        _mm256_cmpgt_epi64(
			                _mm256_set1_epi64x((
			                        long long)(LOG_LO + LOG_NEAR1)),
			                ix));
			const __m256i outside = _mm256_or_si256(
			        _mm256_cmpgt_epi64(_mm256_set1_epi64x(0x10),
			                           top16),
			        _mm256_cmpgt_epi64(top16,
			                           _mm256_set1_epi64x(0x7fef)));

			spec = _mm256_movemask_pd(_mm256_castsi256_pd(
			        _mm256_or_si256(near1, outside)));
		}
		if (spec)
			for (int q = 0; q < 4; q++)
				if (spec >> q & 1)
					y[i + q] = log_lane((double)x[i + q]);
	}
	if (i < n) {
		float in[4] = { 1.0f, 1.0f, 1.0f, 1.0f };
		double out[4];
		const int m = n - i;

		for (int q = 0; q < m; q++)
			in[q] = x[i + q];
		log_fma_f(out, in, 4);
		for (int q = 0; q < m; q++)
			y[i + q] = out[q];
	}
}
#endif

/* ---- choosing ---- */

typedef void expf_fn(float *y, const float *x, float sub, int neg, int n);
typedef void exp_fn(double *y, const double *x, int n);
typedef void log_fn(double *y, const float *x, int n);

typedef void expf_rows_fn(float *x, size_t stride, const float *subs, int rows,
                          int n);

/* rows through the function of one row */
static expf_fn *g_expf = exp_libm_n;

static void exp_rows_generic(float *x, size_t stride, const float *subs,
                             int rows, int n)
{
	for (int r = 0; r < rows; r++)
		g_expf(x + (size_t)r * stride, x + (size_t)r * stride, subs[r],
		       0, n);
}

static expf_rows_fn *g_expf_rows = exp_rows_generic;
static exp_fn *g_exp = exp_libm_d;
static log_fn *g_log = log_libm_f;
static const char *g_which[3] = { "libm", "libm", "libm" };
static int g_selected;

static int same_f(float a, float b)
{
	return memcmp(&a, &b, sizeof a) == 0;
}

static int same_d(double a, double b)
{
	return memcmp(&a, &b, sizeof a) == 0;
}

/* inputs on which a replica of expf must agree with it: every 2^18-th
 * float of either sign up to 88.72 in magnitude, both sides of the
 * special-path limits, and the two floats on which glibc's two builds
 * differ */
static int agrees_expf(expf_fn *fn)
{
	enum { CHUNK = 256 };
	static const float extra[] = {
		-0x1.f8cbb2p+5f, 0x1.04845ep+5f, 0.0f,
		-0.0f,           -88.0f,         88.0f,
		-0x1.5fffffp+6f, 0x1.5fffffp+6f, -103.5f,
		-104.0f,         -1.0e-30f,      1.0e-30f,
		-0x1p-126f,      -0x1p-149f,
	};
	float in[CHUNK], got[CHUNK];
	int n = 0;

	for (uint32_t u = 0;; u += 1u << 18) {
		float x;
		uint32_t neg = u | 0x80000000u;

		memcpy(&x, &u, sizeof x);
		if (x > 88.72f)
			break;
		in[n++] = x;
		memcpy(&x, &neg, sizeof x);
		in[n++] = x;
		if (n >= CHUNK - 2) {
			fn(got, in, 0.0f, 0, n);
			for (int i = 0; i < n; i++)
				if (!same_f(got[i], expf(in[i])))
					return 0;
			n = 0;
		}
	}
	for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++)
		in[n++] = extra[i];
	fn(got, in, 0.0f, 0, n);
	for (int i = 0; i < n; i++)
		if (!same_f(got[i], expf(in[i])))
			return 0;
	return 1;
}

/* exp: 8192 doubles of either sign spread by their bits over magnitudes
 * from 2^-60 to 2^10, both sides of the special-path limits, and values on
 * which glibc's two builds differ (0.07% of all; the two replicas were
 * compared with their builds of glibc 2.36 on 20 million doubles) */
static int agrees_exp(exp_fn *fn)
{
	enum { N = 256 };
	static const double extra[] = {
		0.0,
		-0.0,
		0x1p-54,
		-0x1p-54,
		0x1.fffffffffffffp-55,
		511.9,
		-511.9,
		512.0,
		-512.0,
		-745.0,
		-0x1.7ffffffffffffp+5,
		1.0,
		-1.0,
		/* glibc's two builds differ here */
		-0x1.838796b8a1774p+0,
		-0x1.8ecde048337ap-6,
		-0x1.a2d175e96b93ap+2,
		-0x1.a67003159fbc8p+3,
	};
	double in[N], got[N];

	for (int c = 0; c < 32; c++) {
		for (int i = 0; i < N; i++) {
			/* |x| from 2^-60 to 2^10, both signs */
			uint64_t u = 0x3c30000000000000ull +
			             (uint64_t)(c * N + i) *
			                     0x0000d8d8d8d8d8d9ull;
			in[i] = as_double(u) * (i & 1 ? -1.0 : 1.0);
		}
		fn(got, in, N);
		for (int i = 0; i < N; i++)
			if (!same_d(got[i], exp(in[i])))
				return 0;
	}
	fn(got, extra, (int)(sizeof extra / sizeof extra[0]));
	for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++)
		if (!same_d(got[i], exp(extra[i])))
			return 0;
	return 1;
}

/* log: 8192 floats spread over (0, 2^20) by their bits, values near the
 * edges of the paths, and floats on which glibc's two builds differ (7116
 * of the 2^31 positive floats; each replica agrees with its build of
 * glibc 2.36 on every positive float) */
static int agrees_log(log_fn *fn)
{
	enum { N = 256 };
	static const float extra[] = {
		1.0f,
		0.9375f,
		0x1.dfffffp-1f,
		1.0625f,
		0x1.10ap+0f,
		0x1p-149f,
		0x1p-126f,
		0.5f,
		0.25f,
		0.1f,
		3.0f,
		/* glibc's two builds differ here */
		0x1.2a21a4p-1f,
		0x1.d3ce62p-3f,
		0x1.a198e6p-6f,
		0x1.db836ep-9f,
	};
	float in[N];
	double got[N];

	for (int c = 0; c < 32; c++) {
		for (int i = 0; i < N; i++) {
			uint32_t u = 1u + (uint32_t)(c * N + i) * 0x26c9bu;
			memcpy(&in[i], &u, sizeof in[i]);
		}
		fn(got, in, N);
		for (int i = 0; i < N; i++)
			if (!same_d(got[i], log((double)in[i])))
				return 0;
	}
	fn(got, extra, (int)(sizeof extra / sizeof extra[0]));
	for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++)
		if (!same_d(got[i], log((double)extra[i])))
			return 0;
	return 1;
}

#if VEXPF_X86
static int have_fma(void)
{
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#endif

static int g_no512; /* for tests: the AVX2 rows where AVX-512 is here */

static void set_rows(void)
{
#if VEXPF_X86
	if (g_expf == exp_fma_n) {
		g_expf_rows = have_avx512() && !g_no512 ? exp_fma_rows16
		                                        : exp_fma_rows;
		return;
	}
#endif
	g_expf_rows = exp_rows_generic;
}

static int set_all(const char *name)
{
	set_rows();
	g_which[0] = g_which[1] = g_which[2] = name;
	g_selected = 1;
	return 0;
}

int vmath_use(const char *name)
{
#if VEXPF_X86
	g_no512 = strcmp(name, "glibc-fma-avx2") == 0;
	if (g_no512)
		name = "glibc-fma";
	if (strcmp(name, "glibc-fma") == 0) {
		if (!have_fma())
			return -1;
		g_expf = exp_fma_n;
		g_exp = exp_fma_d;
		g_log = log_fma_f;
		return set_all("glibc-fma");
	}
#endif
	if (strcmp(name, "glibc") == 0) {
		g_expf = exp_plain_n;
		g_exp = exp_plain_d;
		g_log = log_plain_f;
		return set_all("glibc");
	}
	if (strcmp(name, "libm") == 0) {
		g_expf = exp_libm_n;
		g_exp = exp_libm_d;
		g_log = log_libm_f;
		return set_all("libm");
	}
	return -1;
}

/* Each function separately: the first replica that agrees, else the
 * library's own. */
void vmath_select(void)
{
	static const char *const names[] = {
#if VEXPF_X86
		"glibc-fma",
#endif
		"glibc",
	};
	expf_fn *ef = exp_libm_n;
	exp_fn *ed = exp_libm_d;
	log_fn *lf = log_libm_f;
	const char *which[3] = { "libm", "libm", "libm" };

	if (g_selected)
		return;
	for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
		if (vmath_use(names[k]) != 0)
			continue;
		if (ef == exp_libm_n && agrees_expf(g_expf)) {
			ef = g_expf;
			which[0] = names[k];
		}
		if (ed == exp_libm_d && agrees_exp(g_exp)) {
			ed = g_exp;
			which[1] = names[k];
		}
		if (lf == log_libm_f && agrees_log(g_log)) {
			lf = g_log;
			which[2] = names[k];
		}
	}
	g_expf = ef;
	g_exp = ed;
	g_log = lf;
	set_rows();
	memcpy(g_which, which, sizeof which);
	g_selected = 1;
}

void vmath_reset(void)
{
	g_selected = 0;
	vmath_select();
}

const char *vmath_which(int fn)
{
	vmath_select();
	return fn >= 0 && fn < 3 ? g_which[fn] : NULL;
}

void vexpf_sub(float *y, const float *x, float sub, int n)
{
	g_expf(y, x, sub, 0, n);
}

void vexpf_rows(float *x, size_t stride, const float *subs, int rows, int n)
{
	g_expf_rows(x, stride, subs, rows, n);
}

void vexpf_neg(float *y, const float *x, int n)
{
	g_expf(y, x, 0.0f, 1, n);
}

void vexp(double *y, const double *x, int n)
{
	g_exp(y, x, n);
}

void vlogf(double *y, const float *x, int n)
{
	g_log(y, x, n);
}
