/* drafter_specdecpp.c - SpecDec++ stopping rule.
 *
 * SpecDec++ ends a draft batch once the predicted probability that at least
 * one of its tokens is rejected exceeds h. The authors' code
 * (github.com/Kaffaljidhmah2/SpecDec_pp @ 9c52edc, specdec_pp/
 * hf_generation.py:715-722) multiplies in, at draft step k, the acceptance
 * head's prediction for candidate k-1: the head reads the hidden state of
 * the step's input token and is trained on the acceptance of that token
 * (specdec_pp/train.py:176-184), and step 1 multiplies by 1. So after
 * token n the rule is
 *
 *     stop after token n  iff  1 - prod_{j<n} p_j > h
 *
 * and token n itself is always kept: its prediction enters at step n+1.
 * p_j is the predicted acceptance probability of token j. The paper trains
 * an acceptance head on the draft model; a replay has only the draft
 * distribution, so p_j is the draft's top-1 probability (predictor=top1) or
 * exp(-H_j) (predictor=entropy). The batch length is kept in
 * [min_len, max_len] (the code's bound, hf_generation.py:724-731), and
 * never beyond the host's cap. All state is per batch; nothing persists
 * across batches or sequences besides the counters.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ahasd_plugin.h"
#include "ahasd_plugin_params.h"
#include "drafter_common.h"

enum sdpp_predictor {
	SDPP_TOP1 = 0,
	SDPP_ENTROPY = 1,
};
static const char *const sdpp_predictors[] = { "top1", "entropy" };

struct sdpp_state {
	double h;
	int predictor; /* enum sdpp_predictor */
	struct drafter_len len;

	double prod;         /* product of p_j over the batch's earlier
	                        * tokens (j < n while token n is tested) */
	uint64_t rule_stops; /* batches ended by 1 - prod > h */
};

static int sdpp_param(void *st, const char *k, const char *v, char *err,
                      size_t errlen)
{
	struct sdpp_state *s = st;

	if (strcmp(k, "h") == 0)
		return ahasd_parse_double(k, v, 0.0, 1.0, &s->h, err, errlen);
	if (strcmp(k, "predictor") == 0)
		return drafter_param_choice(k, v, sdpp_predictors, 2,
		                            &s->predictor, err, errlen);
	return drafter_len_param(&s->len, k, v, err, errlen);
}

static int sdpp_ready(void *st, char *err, size_t errlen)
{
	struct sdpp_state *s = st;

	s->prod = 1.0;
	return drafter_len_check(&s->len, err, errlen);
}

static int sdpp_create(void **st, const struct ahasd_create_args *args,
                       char *err, size_t errlen)
{
	return drafter_create(st, sizeof(struct sdpp_state), args, sdpp_param,
	                      sdpp_ready, err, errlen);
}

static void sdpp_destroy(void *st)
{
	free(st);
}

static void sdpp_begin_batch(void *st, uint64_t batch_id, uint32_t max_len)
{
	struct sdpp_state *s = st;

	(void)batch_id;
	s->prod = 1.0;
	drafter_len_begin(&s->len, max_len);
}

/* Predicted acceptance of one token, clamped to [0, 1]. */
static double sdpp_accept_prob(const struct sdpp_state *s,
                               const struct ahasd_draft_token *tok)
{
	double p;

	if (s->predictor == SDPP_ENTROPY)
		p = exp(-(double)tok->entropy);
	else
		p = (double)tok->top1;
	if (!(p > 0.0)) /* also catches NaN */
		return 0.0;
	return p > 1.0 ? 1.0 : p;
}

static int sdpp_draft_token(void *st, const struct ahasd_draft_token *tok)
{
	struct sdpp_state *s = st;
	enum drafter_step step;
	int stop = 0;

	if (tok->index == 0)
		s->prod = 1.0; /* robust even without begin_batch */
	step = drafter_len_token(&s->len, tok->index + 1);
	if (step == DRAFTER_STOP) {
		stop = 1;
	} else if (step == DRAFTER_RULE && 1.0 - s->prod > s->h) {
		/* prod covers tokens 1..n-1 here (hf_generation.py:715-722) */
		s->rule_stops++;
		stop = 1;
	}
	/* token n's prediction only enters the test of token n+1 */
	s->prod *= sdpp_accept_prob(s, tok);
	return stop;
}

static int sdpp_counter(void *st, uint32_t i, const char **name, double *value)
{
	const struct sdpp_state *s = st;

	if (i < DRAFTER_LEN_COUNTERS)
		return drafter_counter(s->len.batches, s->len.tokens, i, name,
		                       value);
	switch (i - DRAFTER_LEN_COUNTERS) {
	case 0:
		*name = "rule_stops";
		*value = (double)s->rule_stops;
		return 1;
	case 1:
		*name = "cap_stops";
		*value = (double)s->len.cap_stops;
		return 1;
	default: return 0;
	}
}

static const struct ahasd_param sdpp_params[] = {
	{ "h", "0.3",
	  "stop after token n once 1 - prod(p_j, j < n) exceeds h, in [0, 1]" },
	{ "predictor", "top1",
	  "acceptance predictor p_i: top1 (draft top-1 probability) or "
	  "entropy (exp(-H))" },
	{ "min_len", "2", "never stop before this many tokens (>= 1)" },
	{ "max_len", "20", "always stop at this many tokens (>= min_len)" },
	{ NULL, NULL, NULL },
};

static const struct ahasd_drafter_hooks sdpp_hooks = {
	.struct_size = sizeof(struct ahasd_drafter_hooks),
	.begin_sequence = NULL,
	.begin_batch = sdpp_begin_batch,
	.draft_token = sdpp_draft_token,
	.batch_result = NULL,
};

AHASD_PLUGIN_EXPORT const struct ahasd_plugin ahasd_plugin = {
	.abi_version = AHASD_PLUGIN_ABI_VERSION,
	.struct_size = sizeof(struct ahasd_plugin),
	.kind = AHASD_PLUGIN_DRAFTER,
	.name = "specdecpp",
	.version = "1.1",
	.description = "SpecDec++: stop when the predicted chance of a "
	               "rejection among the earlier tokens, 1 - prod(p_j), "
	               "exceeds h",
	.params = sdpp_params,
	.create = sdpp_create,
	.destroy = sdpp_destroy,
	.counter = sdpp_counter,
	.policy = NULL,
	.drafter = &sdpp_hooks,
	/* its stopping rule reads every draft's entropy (or top-1) */
	.needs = AHASD_NEEDS_ENTROPY,
};
