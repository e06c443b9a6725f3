/* drafter_common.h - what the built-in drafters share (private to policies/,
 * not installed; static inline, so each drafter stays one shared object
 * built from the public headers and this one).
 *
 * create(). drafter_create() allocates a zeroed state, hands each
 * parameter to the drafter's param() and then calls its ready(), which
 * checks values against each other and derives what the hooks need. The
 * host passes every declared parameter, defaults filled in
 * (ahasd_plugin.h, rule 5), so no default is written in C: the params
 * table of each drafter is the only place. drafter_param_choice() reads a
 * value that names one of a few choices, with the error text of
 * ahasd_plugin_params.h's parsers.
 *
 * Length bounds. A batch is at least min_len and at most max_len tokens,
 * and never longer than the host's cap for that batch (the max_len given
 * to begin_batch; 0 means none). The cap wins over min_len. In a drafter:
 *
 *     param()      drafter_len_param() for the keys min_len and max_len
 *                  (and as the "unknown parameter" branch);
 *     ready()      drafter_len_check();
 *     begin_batch  drafter_len_begin(&s->len, max_len);
 *     draft_token  step = drafter_len_token(&s->len, tok->index + 1):
 *                  DRAFTER_STOP  the cap is reached: end the batch
 *                                (counted in cap_stops);
 *                  DRAFTER_GO    below min_len: keep drafting;
 *                  DRAFTER_RULE  the drafter's own rule decides;
 *                  so:  if (step != DRAFTER_RULE)
 *                               return step == DRAFTER_STOP;
 *
 * Length counters, which every built-in drafter reports first:
 *
 *     batches         batches begun
 *     drafted_tokens  tokens drafted into them
 *     mean_length     drafted_tokens / batches (0 before the first batch)
 *
 * counter() answers indices below DRAFTER_LEN_COUNTERS with
 * drafter_counter() and numbers its own from there.
 */
#ifndef AHASD_DRAFTER_COMMON_H
#define AHASD_DRAFTER_COMMON_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ahasd_plugin.h"
#include "ahasd_plugin_params.h"

#define DRAFTER_LEN_MAX      4096u /* largest min_len, max_len or k */
#define DRAFTER_LEN_COUNTERS 3u

struct drafter_len {
	uint32_t min_len; /* parameters */
	uint32_t max_len;
	uint32_t cap;       /* min(max_len, host cap) for this batch */
	uint64_t batches;   /* batches begun */
	uint64_t tokens;    /* tokens drafted */
	uint64_t cap_stops; /* batches ended by max_len or the host cap */
};

enum drafter_step {
	DRAFTER_STOP = 0, /* at the cap: the batch ends here */
	DRAFTER_GO = 1,   /* below min_len: the batch goes on */
	DRAFTER_RULE = 2, /* the drafter's own rule decides */
};

/* One parameter into the state s; return 0 or a negative code (message
 * in err). */
typedef int (*drafter_param_fn)(void *s, const char *key, const char *val,
                                char *err, size_t errlen);
/* After every parameter: check and derive; return 0 or a negative code. */
typedef int (*drafter_ready_fn)(void *s, char *err, size_t errlen);

/* create() of a drafter whose state is size bytes (see the top). */
static inline int drafter_create(void **st, size_t size,
                                 const struct ahasd_create_args *args,
                                 drafter_param_fn param, drafter_ready_fn ready,
                                 char *err, size_t errlen)
{
	void *s = calloc(1, size);
	int rc = 0;

	if (s == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; rc == 0 && i < args->n; i++)
		rc = param(s, args->keys[i], args->values[i], err, errlen);
	if (rc == 0 && ready != NULL)
		rc = ready(s, err, errlen);
	if (rc != 0) {
		free(s);
		return rc;
	}
	*st = s;
	return 0;
}

/* len, cut to the host's cap (0: no cap). */
static inline uint32_t drafter_cap(uint32_t len, uint32_t host_cap)
{
	return host_cap != 0 && host_cap < len ? host_cap : len;
}

/* For param(): a key that is not the drafter's own. */
static inline int drafter_param_unknown(const char *key, char *err,
                                        size_t errlen)
{
	snprintf(err, errlen, "unknown parameter %s", key);
	return -EINVAL;
}

/* For param(): val must be one of the n names; *out gets its index.
 * Return 0, or -EINVAL with "KEY=VAL is not one of a, b, c" in err. */
static inline int drafter_param_choice(const char *key, const char *val,
                                       const char *const *names, int n,
                                       int *out, char *err, size_t errlen)
{
	size_t off;

	for (int i = 0; i < n; i++) {
		if (val != NULL && strcmp(val, names[i]) == 0) {
			*out = i;
			return 0;
		}
	}
	off = (size_t)snprintf(err, errlen, "%s=%s is not one of", key,
	                       val != NULL ? val : "(null)");
	for (int i = 0; i < n && off < errlen; i++)
		off += (size_t)snprintf(err + off, errlen - off, "%s %s",
		                        i ? "," : "", names[i]);
	return -EINVAL;
}

/* For param(): min_len or max_len, in [1, DRAFTER_LEN_MAX]; any other key
 * is unknown. Return 0 or the parser's negative code (message in err). */
static inline int drafter_len_param(struct drafter_len *l, const char *key,
                                    const char *val, char *err, size_t errlen)
{
	if (strcmp(key, "min_len") == 0)
		return ahasd_parse_u32(key, val, 1, DRAFTER_LEN_MAX,
		                       &l->min_len, err, errlen);
	if (strcmp(key, "max_len") == 0)
		return ahasd_parse_u32(key, val, 1, DRAFTER_LEN_MAX,
		                       &l->max_len, err, errlen);
	return drafter_param_unknown(key, err, errlen);
}

/* For ready(): min_len <= max_len. Return 0 or -EINVAL
 * (message in err). */
static inline int drafter_len_check(struct drafter_len *l, char *err,
                                    size_t errlen)
{
	if (l->min_len > l->max_len) {
		snprintf(err, errlen, "min_len=%u is larger than max_len=%u",
		         (unsigned)l->min_len, (unsigned)l->max_len);
		return -EINVAL;
	}
	l->cap = l->max_len;
	return 0;
}

/* A batch begins, host_cap the host's cap for it (0: none). */
static inline void drafter_len_begin(struct drafter_len *l, uint32_t host_cap)
{
	l->cap = drafter_cap(l->max_len, host_cap);
	l->batches++;
}

/* Token n (1-based) of the batch was drafted. */
static inline enum drafter_step drafter_len_token(struct drafter_len *l,
                                                  uint32_t n)
{
	l->tokens++;
	if (n >= l->cap) {
		l->cap_stops++;
		return DRAFTER_STOP;
	}
	return n < l->min_len ? DRAFTER_GO : DRAFTER_RULE;
}

/* The length counters (see the top), index i < DRAFTER_LEN_COUNTERS. */
static inline int drafter_counter(uint64_t batches, uint64_t tokens, uint32_t i,
                                  const char **name, double *value)
{
	switch (i) {
	case 0:
		*name = "batches";
		*value = (double)batches;
		return 1;
	case 1:
		*name = "drafted_tokens";
		*value = (double)tokens;
		return 1;
	case 2:
		*name = "mean_length";
		*value = batches ? (double)tokens / (double)batches : 0.0;
		return 1;
	default: return 0;
	}
}

#endif
