/* drafter_fixed.c - fixed draft length: every batch has exactly k tokens
 * (or fewer when the host's cap is lower). The non-adaptive baseline.
 * k = 4 is Eagle-1's draft length, the fixed baseline BanditSpec compares
 * with (arXiv 2505.15141, section 6.2); SVIP's constant baseline is 5
 * (eval_specbench.py:26).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ahasd_plugin.h"
#include "ahasd_plugin_params.h"
#include "drafter_common.h"

/* k is both bounds of len: every batch stops at min(k, host cap). */
struct fixed_state {
	struct drafter_len len;
	uint64_t host_capped; /* batches ended by the host cap before k */
};

static int fixed_param(void *st, const char *k, const char *v, char *err,
                       size_t errlen)
{
	struct fixed_state *s = st;

	if (strcmp(k, "k") == 0)
		return ahasd_parse_u32(k, v, 1, DRAFTER_LEN_MAX,
		                       &s->len.max_len, err, errlen);
	return drafter_param_unknown(k, err, errlen);
}

static int fixed_ready(void *st, char *err, size_t errlen)
{
	struct fixed_state *s = st;

	s->len.min_len = s->len.max_len;
	return drafter_len_check(&s->len, err, errlen);
}

static int fixed_create(void **st, const struct ahasd_create_args *args,
                        char *err, size_t errlen)
{
	return drafter_create(st, sizeof(struct fixed_state), args, fixed_param,
	                      fixed_ready, err, errlen);
}

static void fixed_destroy(void *st)
{
	free(st);
}

static void fixed_begin_batch(void *st, uint64_t batch_id, uint32_t max_len)
{
	struct fixed_state *s = st;

	(void)batch_id;
	drafter_len_begin(&s->len, max_len);
}

static int fixed_draft_token(void *st, const struct ahasd_draft_token *tok)
{
	struct fixed_state *s = st;

	if (drafter_len_token(&s->len, tok->index + 1) != DRAFTER_STOP)
		return 0;
	if (s->len.cap < s->len.max_len)
		s->host_capped++;
	return 1;
}

static int fixed_counter(void *st, uint32_t i, const char **name, double *value)
{
	const struct fixed_state *s = st;

	if (i < DRAFTER_LEN_COUNTERS)
		return drafter_counter(s->len.batches, s->len.tokens, i, name,
		                       value);
	switch (i - DRAFTER_LEN_COUNTERS) {
	case 0:
		*name = "host_capped";
		*value = (double)s->host_capped;
		return 1;
	default: return 0;
	}
}

static const struct ahasd_param fixed_params[] = {
	{ "k", "4", "draft length of every batch (>= 1)" },
	{ NULL, NULL, NULL },
};

static const struct ahasd_drafter_hooks fixed_hooks = {
	.struct_size = sizeof(struct ahasd_drafter_hooks),
	.begin_sequence = NULL,
	.begin_batch = fixed_begin_batch,
	.draft_token = fixed_draft_token,
	.batch_result = NULL,
};

AHASD_PLUGIN_EXPORT const struct ahasd_plugin ahasd_plugin = {
	.abi_version = AHASD_PLUGIN_ABI_VERSION,
	.struct_size = sizeof(struct ahasd_plugin),
	.kind = AHASD_PLUGIN_DRAFTER,
	.name = "fixed",
	.version = "1.0",
	.description = "fixed draft length k per batch (non-adaptive baseline)",
	.params = fixed_params,
	.create = fixed_create,
	.destroy = fixed_destroy,
	.counter = fixed_counter,
	.policy = NULL,
	.drafter = &fixed_hooks,
};
