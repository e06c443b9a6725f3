/* drafter_svip.c - SVIP stopping rule (self-verification length policy;
 * Zhang et al., "Draft Model Knows When to Stop", arXiv 2411.18462v2).
 *
 * SVIP bounds a token's acceptance below by 1 - sqrt(c * H), H the draft
 * entropy in nats (eq. 6), and ends the batch after the first token where
 *
 *     sqrt(c * H) > threshold
 *
 * The token is kept (the rule is checked after the token is generated:
 * section 2.2, Algorithm 1). This is the authors' code
 * (github.com/Geralt-Targaryen/SVIP @ 0cd912e, vanilla-sd/eval_specbench.py:
 * threshold 0.3 at :25, c = 0.15 at :164, the 40-token round cap at :138),
 * which stops when H > 0.3^2 / 0.15 = 0.6 nats. The paper prints the rule
 * as sqrt(H) > h with h = 0.3 (eq. 7, section 3.1), i.e. c = 1 here, which
 * would stop at H > 0.09 nats. A batch is at least min_len and at most
 * max_len tokens, and never longer than the host's cap. No state persists
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

struct svip_state {
	double c;
	double threshold;
	double threshold_sq; /* threshold^2, set at create */
	struct drafter_len len;
	uint64_t rule_stops;
};

static int svip_param(void *st, const char *k, const char *v, char *err,
                      size_t errlen)
{
	struct svip_state *s = st;

	if (strcmp(k, "c") == 0)
		return ahasd_parse_double(k, v, 1e-9, 1e9, &s->c, err, errlen);
	if (strcmp(k, "threshold") == 0)
		return ahasd_parse_double(k, v, 0.0, 1e9, &s->threshold, err,
		                          errlen);
	return drafter_len_param(&s->len, k, v, err, errlen);
}

static int svip_ready(void *st, char *err, size_t errlen)
{
	struct svip_state *s = st;

	s->threshold_sq = s->threshold * s->threshold;
	return drafter_len_check(&s->len, err, errlen);
}

static int svip_create(void **st, const struct ahasd_create_args *args,
                       char *err, size_t errlen)
{
	return drafter_create(st, sizeof(struct svip_state), args, svip_param,
	                      svip_ready, err, errlen);
}

static void svip_destroy(void *st)
{
	free(st);
}

static void svip_begin_batch(void *st, uint64_t batch_id, uint32_t max_len)
{
	struct svip_state *s = st;

	(void)batch_id;
	drafter_len_begin(&s->len, max_len);
}

static int svip_draft_token(void *st, const struct ahasd_draft_token *tok)
{
	struct svip_state *s = st;
	const enum drafter_step step = drafter_len_token(&s->len,
	                                                 tok->index + 1);
	double h = (double)tok->entropy;

	if (step != DRAFTER_RULE)
		return step == DRAFTER_STOP;
	if (!(h > 0.0)) /* negative rounding noise or NaN: fully confident */
		h = 0.0;
	/* sqrt(c H) > threshold  <=>  c H > threshold^2, both sides >= 0:
	 * no square root per token (as AdaEDL) */
	if (s->c * h > s->threshold_sq) {
		s->rule_stops++;
		return 1;
	}
	return 0;
}

static int svip_counter(void *st, uint32_t i, const char **name, double *value)
{
	const struct svip_state *s = st;

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

static const struct ahasd_param svip_params[] = {
	{ "c", "0.15", "entropy scale in the bound sqrt(c * H), > 0" },
	{ "threshold", "0.3", "stop once sqrt(c * H) exceeds this, >= 0" },
	{ "min_len", "1", "never stop before this many tokens (>= 1)" },
	{ "max_len", "40", "always stop at this many tokens (>= min_len)" },
	{ NULL, NULL, NULL },
};

static const struct ahasd_drafter_hooks svip_hooks = {
	.struct_size = sizeof(struct ahasd_drafter_hooks),
	.begin_sequence = NULL,
	.begin_batch = svip_begin_batch,
	.draft_token = svip_draft_token,
	.batch_result = NULL,
};

AHASD_PLUGIN_EXPORT const struct ahasd_plugin ahasd_plugin = {
	.abi_version = AHASD_PLUGIN_ABI_VERSION,
	.struct_size = sizeof(struct ahasd_plugin),
	.kind = AHASD_PLUGIN_DRAFTER,
	.name = "svip",
	.version = "1.0",
	.description = "SVIP: stop after the first token with "
	               "sqrt(c * H) > threshold (H > 0.6 nats by default)",
	.params = svip_params,
	.create = svip_create,
	.destroy = svip_destroy,
	.counter = svip_counter,
	.policy = NULL,
	.drafter = &svip_hooks,
	/* its stopping rule reads every draft's entropy (or top-1) */
	.needs = AHASD_NEEDS_ENTROPY,
};
