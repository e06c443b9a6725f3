/* greedy_lookahead.c - an example scheduling policy, built only against the
 * public headers ahasd_plugin.h and ahasd_plugin_params.h (see README in
 * this folder).
 *
 * Task-level asynchronous execution like the built-in "async", but with a
 * bounded look-ahead: after a batch closes, the draft device drafts ahead
 * only while fewer than max_unverified batches are unverified (queued or in
 * verification); once that many are, it waits for the next verification
 * result. max_unverified=1 drafts nothing ahead; a large value behaves like
 * "async" (the host's queue capacity is then the only bound).
 *
 * Counters (stored as metrics policy.decisions, policy.waits,
 * policy.drafts_ahead, policy.max_unverified):
 *   decisions     after_batch calls
 *   waits         decisions to wait
 *   drafts_ahead  decisions to draft another batch ahead
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ahasd_plugin.h"
#include "ahasd_plugin_params.h"

struct greedy {
	uint32_t max_unverified;
	uint64_t decisions, waits, drafts_ahead;
};

static const struct ahasd_param greedy_params[] = {
	{ "max_unverified", "2",
	  "wait once this many batches are unverified (1..4096)" },
	{ NULL, NULL, NULL },
};

static int greedy_create(void **out, const struct ahasd_create_args *args,
                         char *err, size_t errlen)
{
	uint32_t max_unverified = 0;
	struct greedy *g;

	/* the host passes every key declared in greedy_params, in that
	 * order, with the user's value or the default: no default here */
	for (size_t i = 0; i < args->n; i++) {
		const char *k = args->keys[i], *v = args->values[i];
		int rc = 0;

		if (strcmp(k, "max_unverified") == 0)
			rc = ahasd_parse_u32(k, v, 1, 4096, &max_unverified,
			                     err, errlen);
		if (rc != 0)
			return rc;
	}
	g = calloc(1, sizeof *g);
	if (!g) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	g->max_unverified = max_unverified;
	*out = g;
	return 0;
}

static void greedy_destroy(void *st)
{
	free(st);
}

static uint32_t greedy_mode(void *st)
{
	(void)st;
	return AHASD_EXEC_TASK_ASYNC;
}

static void greedy_after_batch(void *st, const struct ahasd_host_view *v,
                               const struct ahasd_batch_info *b,
                               struct ahasd_decision *d)
{
	struct greedy *g = st;

	(void)b;
	g->decisions++;
	if (v->unverified_batches >= g->max_unverified) {
		d->next = AHASD_NEXT_WAIT;
		g->waits++;
	} else {
		d->next = AHASD_NEXT_DRAFT;
		g->drafts_ahead++;
	}
	d->count = 0;
}

static int greedy_counter(void *st, uint32_t i, const char **name,
                          double *value)
{
	const struct greedy *g = st;

	switch (i) {
	case 0:
		*name = "decisions";
		*value = (double)g->decisions;
		return 1;
	case 1:
		*name = "waits";
		*value = (double)g->waits;
		return 1;
	case 2:
		*name = "drafts_ahead";
		*value = (double)g->drafts_ahead;
		return 1;
	case 3:
		*name = "max_unverified";
		*value = g->max_unverified;
		return 1;
	default: return 0;
	}
}

static const struct ahasd_policy_hooks greedy_hooks = {
	.struct_size = sizeof(struct ahasd_policy_hooks),
	.exec_mode = greedy_mode,
	.after_batch = greedy_after_batch,
};

AHASD_PLUGIN_EXPORT const struct ahasd_plugin ahasd_plugin = {
	.abi_version = AHASD_PLUGIN_ABI_VERSION,
	.struct_size = sizeof(struct ahasd_plugin),
	.kind = AHASD_PLUGIN_POLICY,
	.name = "greedy_lookahead",
	.version = "1.0",
	.description = "task-level async that waits once max_unverified "
	               "batches are unverified (example plugin)",
	.params = greedy_params,
	.create = greedy_create,
	.destroy = greedy_destroy,
	.counter = greedy_counter,
	.policy = &greedy_hooks,
};
