/* vexpf.h - expf over arrays, bit-identical to the C library's expf
 * (vexpf.c says how and when). */
#ifndef AHASD_VEXPF_H
#define AHASD_VEXPF_H

/** Choose how vexpf_sub() computes, once per process (later calls return
 * at once): a replica of the C library's expf that agrees with it on a
 * set of test inputs, else expf itself.
 * @return "glibc-fma", "glibc" or "libm" (expf, value by value). */
const char *vexpf_select(void);

/** For tests: use the replica of that name ("glibc-fma", "glibc", "libm")
 * whether or not it agrees with expf. @return 0, or -1 when it does not
 * exist here (FMA on a CPU without it, any name on another machine). */
int vexpf_use(const char *name);

/** y[i] = expf(x[i] - sub) for i < n, bit for bit; y may be x. Call
 * vexpf_select() first (otherwise expf is called value by value). */
void vexpf_sub(float *y, const float *x, float sub, int n);

/** y[i] = expf(-x[i]) for i < n, bit for bit; y may be x. */
void vexpf_neg(float *y, const float *x, int n);

#endif
