/* vmath.h - expf, exp and log over arrays, bit-identical to the C
 * library's (vmath.c says how and when). */
#ifndef AHASD_VMATH_H
#define AHASD_VMATH_H

#include <stddef.h>

/** Choose, once per process (later calls return at once), how each
 * function below computes: a replica of the C library's function that
 * agrees with it on a set of test inputs, else the function itself, value
 * by value (which is also what they do before the first call). */
void vmath_select(void);

/** What was chosen for expf (fn 0), exp (1), log (2): "glibc-fma",
 * "glibc" or "libm". */
const char *vmath_which(int fn);

/** For tests: use the replicas of that name ("glibc-fma", "glibc",
 * "libm"; "glibc-fma-avx2": the FMA replicas without their AVX-512 forms)
 * whether or not they agree with the library. @return 0, or -1 when they
 * do not exist here (FMA on a CPU without it, any name on another
 * machine). */
int vmath_use(const char *name);

/** For tests: choose again, as vmath_select() does the first time. */
void vmath_reset(void);

/** y[i] = expf(x[i] - sub) for i < n, bit for bit; y may be x. */
void vexpf_sub(float *y, const float *x, float sub, int n);

/** x_r[i] = expf(x_r[i] - subs[r]) in place for the rows x_r = x + r *
 * stride, r < rows, i < n, bit for bit; n a multiple of 4. */
void vexpf_rows(float *x, size_t stride, const float *subs, int rows, int n);

/** y[i] = expf(-x[i]) for i < n, bit for bit; y may be x. */
void vexpf_neg(float *y, const float *x, int n);

/** y[i] = exp(x[i]) for i < n, bit for bit; y may be x. */
void vexp(double *y, const double *x, int n);

/** y[i] = log((double)x[i]) for i < n, bit for bit, where x[i] > 0
 * (elsewhere 0, without calling log). */
void vlogf(double *y, const float *x, int n);

#endif
