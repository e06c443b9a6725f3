/* workload.h - workload profiles: synthetic token streams with the
 * statistics of a draft/target pair, and fitting a profile to a trace
 * (traces/WORKLOADS.md).
 *
 * A profile describes a pair's token stream by a few statistics:
 *   - draft entropy H: ln H ~ N(ln h_median, h_sigma^2), a mass near zero
 *     and a long tail; successive positions follow an AR(1) of
 *     correlation rho in ln H, so hard and easy stretches come in bursts;
 *   - acceptance: P(accept at p) = 1 / (1 + exp(-(a0 - coupling ln H))),
 *     a0 solved so the mean is `acceptance`; coupling 0 makes acceptance
 *     independent of entropy; greedy traces draw a_p in {0, 1} from it,
 *     sampled ones record the probability itself;
 *   - continuations after a wrong token: ln H shifted by cont_shift;
 *   - top-1 probability exp(-top1_k H).
 * Generation is deterministic in (seed, sequence id).
 */
#ifndef AHASD_WORKLOAD_H
#define AHASD_WORKLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "trace.h"

struct wl_profile {
	char name[64];
	double acceptance; /* mean a_p */
	double h_median;   /* nats */
	double h_sigma;    /* std of ln H */
	double coupling;   /* slope of logit P(accept) in -ln H */
	double rho;        /* lag-1 correlation of ln H */
	double cont_shift; /* ln H shift of off-path continuations */
	double top1_k;     /* top1 = exp(-top1_k H) */
	uint32_t sequences, tokens, prompt_min, prompt_max, lookahead;
	int sampled; /* 1: a_p is the probability */
	/* derived by wl_profile_finish */
	double a0;
};

/** The shipped profiles, by name; NULL past the last. */
const struct wl_profile *wl_profile_at(size_t i);
/** A shipped profile by name. @return 0 or -ENOENT (message in err,
 * with the names there are). */
int wl_profile_find(const char *name, struct wl_profile *out, char *err,
                    size_t errlen);
/** Set one statistic ("acceptance=0.7"). @return 0 or -EINVAL. */
int wl_profile_set(struct wl_profile *p, const char *key, const char *value,
                   char *err, size_t errlen);
/** Check ranges and solve a0. @return 0 or -EINVAL. */
int wl_profile_finish(struct wl_profile *p, char *err, size_t errlen);
/** "acceptance=0.8 h_median=0.15 ..." for provenance. */
void wl_profile_describe(const struct wl_profile *p, char *buf, size_t len);

/** Generate sequence `id` into s, whose arrays the caller frees with
 * wl_seq_free. @return 0 or -ENOMEM. */
int wl_generate(const struct wl_profile *p, uint64_t seed, uint32_t id,
                struct trace_seq *s);
void wl_seq_free(struct trace_seq *s);

/* Fitting: feed sequences, then read the estimates. */
struct wl_fit;
int wl_fit_new(struct wl_fit **out);
void wl_fit_add(struct wl_fit *f, const struct trace_seq *s,
                uint32_t lookahead);
/** Estimates, and their standard errors (0 where not computed). */
int wl_fit_result(struct wl_fit *f, int sampled, uint32_t lookahead,
                  struct wl_profile *est, struct wl_profile *se, char *err,
                  size_t errlen);
void wl_fit_free(struct wl_fit **f);

#endif
