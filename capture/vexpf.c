/* vexpf.c - expf over arrays, bit-identical to the C library's expf.
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
 * Which one the process's expf is cannot be asked, so vexpf_select()
 * compares each replica with expf on 8192 inputs spread over the whole
 * range, the two that tell the builds apart among them, and keeps the
 * first that agrees on all; if none does (another C library), every
 * value is expf's own. */
#include "vexpf.h"

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
		y[i] = special(a) ? expf(a) : (float)v[0];
		y[i + 1] = special(b) ? expf(b) : (float)v[1];
	}
	for (; i < n; i++) {
		const float a = neg ? -x[i] : x[i] - sub;
		y[i] = special(a) ? expf(a) : expf_plain(a);
	}
}

static void exp_libm_n(float *y, const float *x, float sub, int neg, int n)
{
	for (int i = 0; i < n; i++)
		y[i] = expf(neg ? -x[i] : x[i] - sub);
}

#if VEXPF_X86
/* glibc's expf built with FMA: the first rounding step and the three
 * multiply-adds of the cubic are fused (its __expf_fma), four values at a
 * time. */
__attribute__((target("avx2,fma")))
static void exp_fma_n(float *y, const float *x, float sub, int neg, int n)
{
	const __m256d invln2n = _mm256_set1_pd(as_double(INVLN2N));
	const __m256d shift = _mm256_set1_pd(as_double(SHIFT));
	const __m256d c0 = _mm256_set1_pd(as_double(C0));
	const __m256d c1 = _mm256_set1_pd(as_double(C1));
	const __m256d c2 = _mm256_set1_pd(as_double(C2));
	const __m256d one = _mm256_set1_pd(1.0);
	const __m128 vsub = _mm_set1_ps(sub), sign = _mm_set1_ps(-0.0f);
	const __m128i absmask = _mm_set1_epi32(0x7fffffff);
	const __m128i limit = _mm_set1_epi32((int)(SPECIAL - 1));
	const __m256i idxmask = _mm256_set1_epi64x(31);
	int i = 0;

	for (; i + 4 <= n; i += 4) {
		const __m128 xi = _mm_loadu_ps(x + i);
		const __m128 a = neg ? _mm_xor_ps(xi, sign) : _mm_sub_ps(xi, vsub);
		const __m256d xd = _mm256_cvtps_pd(a);
		__m256d kd = _mm256_fmadd_pd(invln2n, xd, shift), r, s, p, r2, v;
		const __m256i ki = _mm256_castpd_si256(kd);
		const __m256i t = _mm256_add_epi64(
			_mm256_i64gather_epi64((const long long *)tab,
			                       _mm256_and_si256(ki, idxmask), 8),
			_mm256_slli_epi64(ki, 47));
		const __m128i big = _mm_cmpgt_epi32(
			_mm_and_si128(_mm_castps_si128(a), absmask), limit);

		kd = _mm256_sub_pd(kd, shift);
		r = _mm256_fmsub_pd(invln2n, xd, kd);
		s = _mm256_castsi256_pd(t);
		p = _mm256_fmadd_pd(r, c0, c1);
		r2 = _mm256_mul_pd(r, r);
		v = _mm256_fmadd_pd(r, c2, one);
		v = _mm256_fmadd_pd(p, r2, v);
		v = _mm256_mul_pd(v, s);
		_mm_storeu_ps(y + i, _mm256_cvtpd_ps(v));
		if (_mm_movemask_ps(_mm_castsi128_ps(big))) {
			float av[4];

			_mm_storeu_ps(av, a);
			for (int k = 0; k < 4; k++)
				if (special(av[k]))
					y[i + k] = expf(av[k]);
		}
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

static int have_fma(void)
{
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#endif

typedef void exp_fn(float *y, const float *x, float sub, int neg, int n);

static exp_fn *g_exp = exp_libm_n;
static const char *g_name = "libm";
static int g_selected;

/* inputs on which a replica must agree with expf: every 2^18-th float of
 * either sign up to 88.72 in magnitude, both sides of the special-path
 * limits, and the two floats on which glibc's two builds differ */
static int agrees(exp_fn *fn)
{
	enum { CHUNK = 256 };
	static const float extra[] = {
		-0x1.f8cbb2p+5f, 0x1.04845ep+5f, 0.0f, -0.0f, -88.0f, 88.0f,
		-0x1.5fffffp+6f, 0x1.5fffffp+6f, -103.5f, -104.0f, -1.0e-30f,
		1.0e-30f, -0x1p-126f, -0x1p-149f,
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
				if (memcmp(&got[i], &(float){ expf(in[i]) }, sizeof(float)))
					return 0;
			n = 0;
		}
	}
	for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++)
		in[n++] = extra[i];
	fn(got, in, 0.0f, 0, n);
	for (int i = 0; i < n; i++)
		if (memcmp(&got[i], &(float){ expf(in[i]) }, sizeof(float)))
			return 0;
	return 1;
}

int vexpf_use(const char *name)
{
	g_selected = 1;
#if VEXPF_X86
	if (strcmp(name, "glibc-fma") == 0) {
		if (!have_fma())
			return -1;
		g_exp = exp_fma_n;
		g_name = "glibc-fma";
		return 0;
	}
#endif
	if (strcmp(name, "glibc") == 0) {
		g_exp = exp_plain_n;
		g_name = "glibc";
		return 0;
	}
	if (strcmp(name, "libm") == 0) {
		g_exp = exp_libm_n;
		g_name = "libm";
		return 0;
	}
	return -1;
}

const char *vexpf_select(void)
{
	if (g_selected)
		return g_name;
	g_selected = 1;
#if VEXPF_X86
	if (have_fma() && agrees(exp_fma_n)) {
		g_exp = exp_fma_n;
		g_name = "glibc-fma";
		return g_name;
	}
#endif
	if (agrees(exp_plain_n)) {
		g_exp = exp_plain_n;
		g_name = "glibc";
	}
	return g_name;
}

void vexpf_sub(float *y, const float *x, float sub, int n)
{
	g_exp(y, x, sub, 0, n);
}

void vexpf_neg(float *y, const float *x, int n)
{
	g_exp(y, x, 0.0f, 1, n);
}
