/* feedback_drafter.c - a drafting algorithm for the tests: a fixed batch
 * length k (like the built-in "fixed") that books every batch_result the
 * host sends and exposes the sums as counters, so a test can check the
 * drafter's feedback against the engine's own metrics.
 *
 * Built from the public header ahasd_plugin.h alone. Besides summing the
 * results it follows each batch from begin_batch on: how many tokens it
 * drafted into it and whether the batch closed. A batch is closed when
 * draft_token asked to stop, when it reached the host's cap (max_len), or
 * when the host began the next batch while it was neither discarded nor
 * known closed (the host opens a batch only when none is open). A closed
 * batch that got no result by the next sequence (or by the time the
 * counters are read) is "unresolved".
 *
 * It also sums what each draft_token call shows it (entropy, top-1) and
 * counts top-1 values that are no probability.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ahasd_plugin.h"

#define FB_K_MAX 4096u

/* A batch begun and not yet given a result. */
struct fb_batch {
	uint64_t id;
	uint32_t tokens; /* draft_token calls for it */
	uint32_t max_len;
	int closed;
};

struct fb_state {
	uint32_t k;
	struct fb_batch *pend; /* oldest first */
	size_t n_pend, cap_pend;
	int oom; /* bookkeeping lost (reported as a counter) */
	/* sums over batch_result */
	uint64_t results;
	uint64_t verified, verified_accepted, verified_drafted;
	uint64_t verified_committed;
	uint64_t discarded_batches, discarded_tokens;
	uint64_t discarded_open_batches, discarded_open_tokens;
	uint64_t truncated_tokens; /* drafted into a batch, not in its result */
	uint64_t unknown_results;  /* a result for a batch never begun */
	/* the drafter's own view */
	uint64_t begun, closed_batches, closed_tokens;
	uint64_t unresolved_batches, unresolved_tokens; /* past sequences */
	/* what draft_token was shown */
	uint64_t tokens, top1_out_of_range;
	double entropy_sum, top1_sum;
};

static int fb_create(void **st, const struct ahasd_create_args *args, char *err,
                     size_t errlen)
{
	const char *const *keys = args->keys, *const *values = args->values;
	const size_t n = args->n; /* every key of fb_params, defaults in */
	struct fb_state *s = calloc(1, sizeof *s);
	int rc = 0;

	if (!s) {
		snprintf(err, errlen, "out of memory");
		rc = -ENOMEM;
		goto error;
	}
	for (size_t i = 0; i < n; i++) {
		char *end = NULL;
		unsigned long v;
		if (strcmp(keys[i], "k") != 0) {
			snprintf(err, errlen, "unknown parameter %s", keys[i]);
			rc = -EINVAL;
			goto error;
		}
		errno = 0;
		v = strtoul(values[i], &end, 10);
		if (errno || end == values[i] || *end || v < 1 ||
		    v > FB_K_MAX) {
			snprintf(err, errlen,
			         "k: '%s' is not an integer in "
			         "[1, %u]",
			         values[i], FB_K_MAX);
			rc = -EINVAL;
			goto error;
		}
		s->k = (uint32_t)v;
	}
	*st = s;
	return 0;
error:
	free(s);
	return rc;
}

static void fb_destroy(void *st)
{
	struct fb_state *s = st;

	if (!s)
		return;
	free(s->pend);
	free(s);
}

static struct fb_batch *fb_find(struct fb_state *s, uint64_t id, size_t *at)
{
	for (size_t i = 0; i < s->n_pend; i++) {
		if (s->pend[i].id == id) {
			*at = i;
			return &s->pend[i];
		}
	}
	return NULL;
}

static void fb_mark_closed(struct fb_state *s, struct fb_batch *b)
{
	if (b->closed)
		return;
	b->closed = 1;
	s->closed_batches++;
	s->closed_tokens += b->tokens;
}

/* Closed batches still pending when a sequence ends got no result. */
static void fb_flush(struct fb_state *s)
{
	for (size_t i = 0; i < s->n_pend; i++) {
		if (s->pend[i].closed) {
			s->unresolved_batches++;
			s->unresolved_tokens += s->pend[i].tokens;
		}
	}
	s->n_pend = 0;
}

static void fb_begin_sequence(void *st, const struct ahasd_seq_info *seq)
{
	(void)seq;
	fb_flush(st);
}

static void fb_begin_batch(void *st, uint64_t batch_id, uint32_t max_len)
{
	struct fb_state *s = st;

	/* the host opens a batch only when none is open */
	if (s->n_pend)
		fb_mark_closed(s, &s->pend[s->n_pend - 1]);
	if (s->n_pend == s->cap_pend) {
		size_t cap = s->cap_pend ? 2 * s->cap_pend : 16;
		struct fb_batch *p = realloc(s->pend, cap * sizeof *p);
		if (!p) {
			s->oom = 1;
			return;
		}
		s->pend = p;
		s->cap_pend = cap;
	}
	s->pend[s->n_pend++] = (struct fb_batch){ batch_id, 0, max_len, 0 };
	s->begun++;
}

static int fb_draft_token(void *st, const struct ahasd_draft_token *tok)
{
	struct fb_state *s = st;
	const uint32_t n = tok->index + 1;
	size_t at = 0;
	struct fb_batch *b = fb_find(s, tok->batch_id, &at);
	int stop = n >= s->k;

	s->tokens++;
	s->entropy_sum += tok->entropy;
	s->top1_sum += tok->top1;
	s->top1_out_of_range += !(tok->top1 >= 0.0f && tok->top1 <= 1.0f);
	if (b) {
		b->tokens++;
		if (stop || (b->max_len && b->tokens >= b->max_len))
			fb_mark_closed(s, b);
	}
	return stop;
}

static void fb_batch_result(void *st, const struct ahasd_batch_result *res)
{
	struct fb_state *s = st;
	size_t at = 0;
	struct fb_batch *b = fb_find(s, res->batch_id, &at);

	s->results++;
	if (res->discarded) {
		s->discarded_batches++;
		s->discarded_tokens += res->drafted;
		if (b && !b->closed) {
			s->discarded_open_batches++;
			s->discarded_open_tokens += res->drafted;
		}
	} else {
		s->verified++;
		s->verified_accepted += res->accepted;
		s->verified_drafted += res->drafted;
		s->verified_committed += res->committed;
	}
	if (!b) {
		s->unknown_results++;
		return;
	}
	if (b->closed && b->tokens > res->drafted)
		s->truncated_tokens += b->tokens - res->drafted;
	memmove(&s->pend[at], &s->pend[at + 1],
	        (s->n_pend - at - 1) * sizeof *s->pend);
	s->n_pend--;
}

static int fb_counter(void *st, uint32_t i, const char **name, double *value)
{
	const struct fb_state *s = st;
	/* closed batches pending now count as unresolved too */
	uint64_t ub = s->unresolved_batches, ut = s->unresolved_tokens;
	for (size_t j = 0; j < s->n_pend; j++) {
		if (s->pend[j].closed) {
			ub++;
			ut += s->pend[j].tokens;
		}
	}
	const struct {
		const char *name;
		double v;
	} c[] = {
		{ "results", s->results },
		{ "verified", s->verified },
		{ "verified_accepted", s->verified_accepted },
		{ "verified_drafted", s->verified_drafted },
		{ "verified_committed", s->verified_committed },
		{ "discarded_batches", s->discarded_batches },
		{ "discarded_tokens", s->discarded_tokens },
		{ "discarded_open_batches", s->discarded_open_batches },
		{ "discarded_open_tokens", s->discarded_open_tokens },
		{ "truncated_tokens", s->truncated_tokens },
		{ "unknown_results", s->unknown_results },
		{ "begun", s->begun },
		{ "closed_batches", s->closed_batches },
		{ "closed_tokens", s->closed_tokens },
		{ "unresolved_batches", ub },
		{ "unresolved_tokens", ut },
		{ "oom", (double)s->oom },
		{ "tokens", (double)s->tokens },
		{ "top1_out_of_range", (double)s->top1_out_of_range },
		{ "entropy_sum", s->entropy_sum },
		{ "top1_sum", s->top1_sum },
	};
	if (i >= sizeof c / sizeof *c)
		return 0;
	*name = c[i].name;
	*value = c[i].v;
	return 1;
}

static const struct ahasd_param fb_params[] = {
	{ "k", "4", "draft length of every batch (>= 1)" },
	{ NULL, NULL, NULL },
};

static const struct ahasd_drafter_hooks fb_hooks = {
	.struct_size = sizeof(struct ahasd_drafter_hooks),
	.begin_sequence = fb_begin_sequence,
	.begin_batch = fb_begin_batch,
	.draft_token = fb_draft_token,
	.batch_result = fb_batch_result,
};

AHASD_PLUGIN_EXPORT const struct ahasd_plugin ahasd_plugin = {
	.abi_version = AHASD_PLUGIN_ABI_VERSION,
	.struct_size = sizeof(struct ahasd_plugin),
	.kind = AHASD_PLUGIN_DRAFTER,
	.name = "feedback",
	.version = "1.0",
	.description = "test drafter: fixed k, sums the batch feedback",
	.params = fb_params,
	.create = fb_create,
	.destroy = fb_destroy,
	.counter = fb_counter,
	.policy = NULL,
	.drafter = &fb_hooks,
};
