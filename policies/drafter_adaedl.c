/* drafter_adaedl.c - AdaEDL: early draft stopping on an entropy-based lower
 * bound of the token acceptance probability, with an adaptive threshold.
 *
 * Stopping rule, per drafted token with entropy H (nats):
 *
 *     stop after the token  iff  1 - sqrt(gamma * H) < lambda
 *
 * (batch length kept in [min_len, max_len] and within the host's cap).
 *
 * Threshold adaptation, after each verified (non-discarded) batch with
 * a = accepted / drafted:
 *
 *     r      <- beta2 * r + (1 - beta2) * a           (r starts at target)
 *     lambda <- beta1 * lambda
 *               + (1 - beta1) * (lambda + eps * sign(target - r))
 *             = lambda + (1 - beta1) * eps * sign(target - r)
 *     lambda clamped to [0, 1]
 *
 * Acceptance below target raises lambda (batches stop earlier); above it,
 * lambda falls (batches run longer). lambda and r persist across sequences
 * for the whole run, as they would in a serving process; per-batch there is
 * no other state.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ahasd_plugin.h"
#include "ahasd_plugin_params.h"
#include "drafter_counters.h"

#define ADAEDL_LEN_MAX 4096u

struct adaedl_state {
	double gamma;
	double lambda0;
	double target;
	double beta1;
	double beta2;
	double eps;
	uint32_t min_len;
	uint32_t max_len;

	double lambda;         /* current threshold (persists across seqs) */
	double stop_sq;        /* (1 - lambda)^2, kept with lambda */
	double r;              /* smoothed acceptance estimate (persists) */
	uint32_t cap;          /* min(max_len, host cap) for this batch */

	uint64_t batches;
	uint64_t tokens;
	uint64_t rule_stops;
	uint64_t cap_stops;
	uint64_t updates;      /* batch results used for adaptation */
	uint64_t discarded;    /* discarded batch results (ignored) */
	uint64_t raises;       /* updates that raised lambda */
	uint64_t lowers;       /* updates that lowered lambda */
	double lambda_min;
	double lambda_max;
};

static int adaedl_create(void **st, const char *const *keys,
                         const char *const *values, size_t n, char *err,
                         size_t errlen)
{
	struct adaedl_state *s = calloc(1, sizeof(*s));
	int rc = 0;

	if (s == NULL) {
		snprintf(err, errlen, "out of memory");
		rc = -ENOMEM;
		goto error;
	}
	s->gamma = 0.2;
	s->lambda0 = 0.7;
	s->target = 0.9;
	s->beta1 = 0.5;
	s->beta2 = 0.9;
	s->eps = 0.01;
	s->min_len = 1;
	s->max_len = 64;
	for (size_t i = 0; i < n; i++) {
		const char *k = keys[i];
		const char *v = values[i];

		if (strcmp(k, "gamma") == 0)
			rc = ahasd_parse_double(k, v, 1e-9, 1e9, &s->gamma,
			                        err, errlen);
		else if (strcmp(k, "lambda0") == 0)
			rc = ahasd_parse_double(k, v, 0.0, 1.0, &s->lambda0,
			                        err, errlen);
		else if (strcmp(k, "target") == 0)
			rc = ahasd_parse_double(k, v, 0.0, 1.0, &s->target,
			                        err, errlen);
		else if (strcmp(k, "beta1") == 0)
			rc = ahasd_parse_double(k, v, 0.0, 1.0, &s->beta1,
			                        err, errlen);
		else if (strcmp(k, "beta2") == 0)
			rc = ahasd_parse_double(k, v, 0.0, 1.0, &s->beta2,
			                        err, errlen);
		else if (strcmp(k, "eps") == 0)
			rc = ahasd_parse_double(k, v, 0.0, 1.0, &s->eps, err,
			                        errlen);
		else if (strcmp(k, "min_len") == 0)
			rc = ahasd_parse_u32(k, v, 1, ADAEDL_LEN_MAX,
			                     &s->min_len, err, errlen);
		else if (strcmp(k, "max_len") == 0)
			rc = ahasd_parse_u32(k, v, 1, ADAEDL_LEN_MAX,
			                     &s->max_len, err, errlen);
		else {
			snprintf(err, errlen, "unknown parameter %s",
			         k);
			rc = -EINVAL;
		}
		if (rc != 0)
			goto error;
	}
	if (s->min_len > s->max_len) {
		snprintf(err, errlen,
		         "min_len=%u is larger than max_len=%u",
		         (unsigned)s->min_len, (unsigned)s->max_len);
		rc = -EINVAL;
		goto error;
	}
	s->lambda = s->lambda0;
	s->stop_sq = (1.0 - s->lambda) * (1.0 - s->lambda);
	s->lambda_min = s->lambda0;
	s->lambda_max = s->lambda0;
	s->r = s->target;
	s->cap = s->max_len;
	*st = s;
	return 0;
error:
	free(s);
	return rc;
}

static void adaedl_destroy(void *st)
{
	free(st);
}

static void adaedl_begin_batch(void *st, uint64_t batch_id, uint32_t max_len)
{
	struct adaedl_state *s = st;

	(void)batch_id;
	s->cap = s->max_len;
	if (max_len != 0 && max_len < s->cap)
		s->cap = max_len;
	s->batches++;
}

static int adaedl_draft_token(void *st, const struct ahasd_draft_token *tok)
{
	struct adaedl_state *s = st;
	const uint32_t n = tok->index + 1;
	double h = (double)tok->entropy;

	s->tokens++;
	if (n >= s->cap) {
		s->cap_stops++;
		return 1;
	}
	if (n < s->min_len)
		return 0;
	if (!(h > 0.0))   /* negative rounding noise or NaN: fully confident */
		h = 0.0;
	/* 1 - sqrt(gamma H) < lambda  <=>  gamma H > (1 - lambda)^2, as
	 * gamma H >= 0 and 1 - lambda >= 0: no square root per token */
	if (s->gamma * h > s->stop_sq) {
		s->rule_stops++;
		return 1;
	}
	return 0;
}

static void adaedl_batch_result(void *st, const struct ahasd_batch_result *res)
{
	struct adaedl_state *s = st;
	double a, step;

	if (res->discarded) {
		/* never verified: says nothing about the acceptance rate */
		s->discarded++;
		return;
	}
	if (res->drafted == 0)
		return;
	a = (double)res->accepted / (double)res->drafted;
	if (a > 1.0)
		a = 1.0;
	s->r = s->beta2 * s->r + (1.0 - s->beta2) * a;
	step = (1.0 - s->beta1) * s->eps;
	if (s->r < s->target) {
		s->lambda += step;
		s->raises++;
	} else if (s->r > s->target) {
		s->lambda -= step;
		s->lowers++;
	}
	if (s->lambda < 0.0)
		s->lambda = 0.0;
	if (s->lambda > 1.0)
		s->lambda = 1.0;
	s->stop_sq = (1.0 - s->lambda) * (1.0 - s->lambda);
	if (s->lambda < s->lambda_min)
		s->lambda_min = s->lambda;
	if (s->lambda > s->lambda_max)
		s->lambda_max = s->lambda;
	s->updates++;
}

static int adaedl_counter(void *st, uint32_t i, const char **name,
                          double *value)
{
	const struct adaedl_state *s = st;

	if (i < DRAFTER_LEN_COUNTERS)
		return drafter_len_counter(s->batches, s->tokens, i, name,
		                           value);
	switch (i - DRAFTER_LEN_COUNTERS) {
	case 0:
		*name = "rule_stops";
		*value = (double)s->rule_stops;
		return 1;
	case 1:
		*name = "cap_stops";
		*value = (double)s->cap_stops;
		return 1;
	case 2:
		*name = "lambda";
		*value = s->lambda;
		return 1;
	case 3:
		*name = "lambda_min";
		*value = s->lambda_min;
		return 1;
	case 4:
		*name = "lambda_max";
		*value = s->lambda_max;
		return 1;
	case 5:
		*name = "acceptance_estimate";
		*value = s->r;
		return 1;
	case 6:
		*name = "updates";
		*value = (double)s->updates;
		return 1;
	case 7:
		*name = "lambda_raises";
		*value = (double)s->raises;
		return 1;
	case 8:
		*name = "lambda_lowers";
		*value = (double)s->lowers;
		return 1;
	case 9:
		*name = "discarded_results";
		*value = (double)s->discarded;
		return 1;
	default:
		return 0;
	}
}

static const struct ahasd_param adaedl_params[] = {
	{"gamma", "0.2", "entropy scale in the bound 1 - sqrt(gamma * H), > 0"},
	{"lambda0", "0.7", "initial stopping threshold lambda, in [0, 1]"},
	{"target", "0.9", "target acceptance rate (accepted / drafted)"},
	{"beta1", "0.5", "lambda smoothing: step = (1 - beta1) * eps"},
	{"beta2", "0.9", "EMA factor of the acceptance estimate, in [0, 1]"},
	{"eps", "0.01", "lambda adjustment per verified batch, in [0, 1]"},
	{"min_len", "1", "never stop before this many tokens (>= 1)"},
	{"max_len", "64", "always stop at this many tokens (>= min_len)"},
	{NULL, NULL, NULL},
};

static const struct ahasd_drafter_hooks adaedl_hooks = {
	.struct_size = sizeof(struct ahasd_drafter_hooks),
	.begin_sequence = NULL,
	.begin_batch = adaedl_begin_batch,
	.draft_token = adaedl_draft_token,
	.batch_result = adaedl_batch_result,
};

AHASD_PLUGIN_EXPORT const struct ahasd_plugin ahasd_plugin = {
	.abi_version = AHASD_PLUGIN_ABI_VERSION,
	.struct_size = sizeof(struct ahasd_plugin),
	.kind = AHASD_PLUGIN_DRAFTER,
	.name = "adaedl",
	.version = "1.0",
	.description = "AdaEDL: stop when the acceptance lower bound "
	               "1 - sqrt(gamma * H) falls below an adaptive lambda",
	.params = adaedl_params,
	.create = adaedl_create,
	.destroy = adaedl_destroy,
	.counter = adaedl_counter,
	.policy = NULL,
	.drafter = &adaedl_hooks,
};
