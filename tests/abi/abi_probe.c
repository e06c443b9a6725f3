/* abi_probe.c - a plugin that records every value the host passes it, for
 * test_abi.c. One source, built several times:
 *
 *   -I tests/abi/v1   against the ABI-1 header, as C
 *   -I tests/abi/v2   against the ABI-2 header, as C
 *   -I policies       against the current header, as C and as C++
 *
 * with -DPROBE_DRAFTER for a drafting algorithm, else a scheduling policy.
 * Built against ABI 1 or 2 it is written as a plugin of that day was: its
 * defaults are set in C and create() parses only the keys it is given.
 * Against ABI 3 it has no default in C, so it runs as the others only if
 * the host passes every declared key with its default.
 *
 * Every hook folds every field it receives into an FNV-1a hash: "hash_a"
 * over the fields of ABI 1, "hash_b" over those ABI 2 added (32-bit halves,
 * as counters are doubles). Equal hashes across builds mean the host gave
 * each build the same values, whatever layout it was built with; equal
 * results mean the decisions travelled back intact. The decisions use the
 * host's view and the parameters, so a field translated wrong, a decision
 * lost or a default not passed moves them.
 *
 * Policy: task-level async; after a batch it pre-verifies pv_count tokens
 * when a verification runs, at least pv_count tokens are pre-verifiable and
 * the batch id is a multiple of 3; else it waits once max_unverified
 * batches are unverified; else it drafts ahead.
 * Drafter: a batch ends at the host's cap, at len tokens, or after a token
 * whose entropy exceeds h_stop. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ahasd_plugin.h"

#if AHASD_PLUGIN_ABI_VERSION >= 3
#define PROBE_SIZED 1 /* structs begin with struct_size; create(args) */
#else
#define PROBE_SIZED 0
#endif

enum probe_hook {
	H_CREATE,
	H_BEGIN_SEQUENCE,
	H_AFTER_BATCH,
	H_ON_VERIFY,
	H_ON_DRAFT_STEP,
	H_ON_PREVERIFY,
	H_BEGIN_BATCH,
	H_DRAFT_TOKEN,
	H_BATCH_RESULT,
	H_COUNT
};

static const char *const probe_hook_names[H_COUNT] = {
	"create",      "begin_sequence", "after_batch",
	"on_verify",   "on_draft_step",  "on_preverify",
	"begin_batch", "draft_token",    "batch_result",
};

struct probe {
	/* parameters */
	uint32_t max_unverified, pv_count, len;
	double h_stop;
	/* what the host passed */
	uint64_t hash_a, hash_b;
	uint64_t calls[H_COUNT];
	uint64_t decisions[3];  /* DRAFT, WAIT, PREVERIFY */
	uint64_t discarded;     /* batch results with discarded set */
	uint64_t short_structs; /* ABI 3: struct_size below this header's */
	uint32_t host_abi;      /* ABI 3: args->host_abi_version */
	uint32_t n_args;        /* keys create() got */
	uint32_t args_in_order; /* ABI 3: keys[i] == params[i].key */
	uint32_t cap;           /* drafter: the host's cap of this batch */
};

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = (const unsigned char *)p;

	if (h == 0)
		h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 1099511628211ull;
	}
	return h;
}

#define A(s, x) ((s)->hash_a = fnv((s)->hash_a, &(x), sizeof(x)))
#define B(s, x) ((s)->hash_b = fnv((s)->hash_b, &(x), sizeof(x)))

#if PROBE_SIZED
#define SIZED(s, p) ((s)->short_structs += (p)->struct_size < sizeof *(p))
#else
#define SIZED(s, p) ((void)(s), (void)(p))
#endif

static int probe_u32(const char *v, uint32_t *out)
{
	char *end = NULL;
	unsigned long x = strtoul(v, &end, 10);

	if (end == v || *end != '\0' || x > 1000000ul)
		return -1;
	*out = (uint32_t)x;
	return 0;
}

static int probe_set(struct probe *s, const char *k, const char *v, char *err,
                     size_t errlen)
{
	int rc = 0;

	if (strcmp(k, "max_unverified") == 0)
		rc = probe_u32(v, &s->max_unverified);
	else if (strcmp(k, "pv_count") == 0)
		rc = probe_u32(v, &s->pv_count);
	else if (strcmp(k, "len") == 0)
		rc = probe_u32(v, &s->len);
	else if (strcmp(k, "h_stop") == 0)
		s->h_stop = strtod(v, NULL);
	else
		rc = -1;
	if (rc != 0)
		snprintf(err, errlen, "%s=%s: bad", k, v);
	return rc;
}

static const struct ahasd_param probe_params[] = {
	{ "max_unverified", "3", "policy: wait once this many are unverified" },
	{ "pv_count", "2", "policy: tokens per pre-verification" },
	{ "len", "6", "drafter: longest batch" },
	{ "h_stop", "1.5", "drafter: end a batch after a token above this" },
	{ NULL, NULL, NULL },
};

#if PROBE_SIZED
static int probe_create(void **st, const struct ahasd_create_args *args,
                        char *err, size_t errlen)
{
	struct probe *s = (struct probe *)calloc(1, sizeof *s);

	if (!s)
		return -1;
	s->host_abi = args->host_abi_version;
	s->n_args = (uint32_t)args->n;
	s->args_in_order = 1;
	SIZED(s, args);
	for (size_t i = 0; i < args->n; i++) {
		if (probe_params[i].key == NULL ||
		    strcmp(args->keys[i], probe_params[i].key) != 0)
			s->args_in_order = 0;
		if (probe_set(s, args->keys[i], args->values[i], err, errlen) !=
		    0) {
			free(s);
			return -1;
		}
	}
	s->calls[H_CREATE]++;
	*st = s;
	return 0;
}
#else
static int probe_create(void **st, const char *const *keys,
                        const char *const *values, size_t n, char *err,
                        size_t errlen)
{
	struct probe *s = (struct probe *)calloc(1, sizeof *s);

	if (!s)
		return -1;
	s->max_unverified = 3; /* the defaults, again, as then */
	s->pv_count = 2;
	s->len = 6;
	s->h_stop = 1.5;
	s->n_args = (uint32_t)n;
	for (size_t i = 0; i < n; i++) {
		if (probe_set(s, keys[i], values[i], err, errlen) != 0) {
			free(s);
			return -1;
		}
	}
	s->calls[H_CREATE]++;
	*st = s;
	return 0;
}
#endif

static void probe_destroy(void *st)
{
	free(st);
}

static void probe_begin_sequence(void *st, const struct ahasd_seq_info *q)
{
	struct probe *s = (struct probe *)st;

	SIZED(s, q);
	s->calls[H_BEGIN_SEQUENCE]++;
	A(s, q->seq_id);
	A(s, q->prompt_len);
	A(s, q->n_tokens);
	A(s, q->seed);
}

static int probe_counter(void *st, uint32_t i, const char **name, double *value)
{
	const struct probe *s = (const struct probe *)st;
	static const char *const fixed[] = {
		"hash_a_hi",        "hash_a_lo",
		"hash_b_hi",        "hash_b_lo",
		"decide_draft",     "decide_wait",
		"decide_preverify", "discarded_results",
		"short_structs",    "host_abi",
		"n_args",           "args_in_order",
	};
	const double v[] = {
		(double)(s->hash_a >> 32), (double)(s->hash_a & 0xffffffffu),
		(double)(s->hash_b >> 32), (double)(s->hash_b & 0xffffffffu),
		(double)s->decisions[0],   (double)s->decisions[1],
		(double)s->decisions[2],   (double)s->discarded,
		(double)s->short_structs,  (double)s->host_abi,
		(double)s->n_args,         (double)s->args_in_order,
	};
	const uint32_t nf = sizeof fixed / sizeof fixed[0];

	if (i < nf) {
		*name = fixed[i];
		*value = v[i];
		return 1;
	}
	if (i - nf < H_COUNT) {
		*name = probe_hook_names[i - nf];
		*value = (double)s->calls[i - nf];
		return 1;
	}
	return 0;
}

#ifndef PROBE_DRAFTER

static void probe_view(struct probe *s, const struct ahasd_host_view *v)
{
	SIZED(s, v);
	A(s, v->now_s);
	A(s, v->verify_freq_hz);
	A(s, v->draft_freq_hz);
	A(s, v->shared_device);
	A(s, v->verify_busy);
	A(s, v->verify_start_s);
	A(s, v->verify_kv_len);
	A(s, v->verify_tokens);
	A(s, v->queued_batches);
	A(s, v->queued_tokens);
	A(s, v->preverifiable);
	A(s, v->unverified_batches);
	A(s, v->queue_capacity);
	A(s, v->committed);
	A(s, v->kv_len);
	A(s, v->prof_verify_s_per_kv);
	A(s, v->prof_draft_s);
	A(s, v->prof_preverify_s_per_token);
}

static uint32_t probe_exec_mode(void *st)
{
	(void)st;
	return AHASD_EXEC_TASK_ASYNC;
}

static void probe_after_batch(void *st, const struct ahasd_host_view *v,
                              const struct ahasd_batch_info *b,
                              struct ahasd_decision *d)
{
	struct probe *s = (struct probe *)st;

	s->calls[H_AFTER_BATCH]++;
	probe_view(s, v);
	SIZED(s, b);
	SIZED(s, d);
	A(s, b->batch_id);
	A(s, b->length);
	A(s, b->mean_entropy);
	A(s, b->lookahead);
	A(s, d->next); /* the host's default */
	A(s, d->count);
	if (v->verify_busy && v->preverifiable >= s->pv_count &&
	    b->batch_id % 3 == 0) {
		d->next = AHASD_NEXT_PREVERIFY;
		d->count = s->pv_count;
	} else if (v->unverified_batches >= s->max_unverified) {
		d->next = AHASD_NEXT_WAIT;
		d->count = 0;
	} else {
		d->next = AHASD_NEXT_DRAFT;
		d->count = 0;
	}
	s->decisions[d->next]++;
}

static void probe_on_verify(void *st, const struct ahasd_host_view *v,
                            const struct ahasd_verify_info *r)
{
	struct probe *s = (struct probe *)st;

	s->calls[H_ON_VERIFY]++;
	probe_view(s, v);
	SIZED(s, r);
	A(s, r->batch_id);
	A(s, r->length);
	A(s, r->accepted);
	A(s, r->full);
	A(s, r->kv_len);
	A(s, r->duration_s);
	A(s, r->discarded_batches);
#if AHASD_PLUGIN_ABI_VERSION >= 2
	B(s, r->corrected);
	B(s, r->pass_index);
	B(s, r->pass_batches);
#endif
}

static void probe_task(struct probe *s, const struct ahasd_task_info *t)
{
	SIZED(s, t);
	A(s, t->tokens);
	A(s, t->duration_s);
	A(s, t->discarded_batches);
}

static void probe_on_draft_step(void *st, const struct ahasd_task_info *t)
{
	struct probe *s = (struct probe *)st;

	s->calls[H_ON_DRAFT_STEP]++;
	probe_task(s, t);
}

static void probe_on_preverify(void *st, const struct ahasd_task_info *t,
                               int rejected)
{
	struct probe *s = (struct probe *)st;

	s->calls[H_ON_PREVERIFY]++;
	probe_task(s, t);
	A(s, rejected);
}

static const struct ahasd_policy_hooks probe_policy_hooks = {
	.struct_size = sizeof(struct ahasd_policy_hooks),
	.exec_mode = probe_exec_mode,
	.begin_sequence = probe_begin_sequence,
	.after_batch = probe_after_batch,
	.on_verify = probe_on_verify,
	.on_draft_step = probe_on_draft_step,
	.on_preverify = probe_on_preverify,
};

#else /* PROBE_DRAFTER */

static void probe_begin_batch(void *st, uint64_t batch_id, uint32_t max_len)
{
	struct probe *s = (struct probe *)st;

	s->calls[H_BEGIN_BATCH]++;
	A(s, batch_id);
	A(s, max_len);
	s->cap = max_len;
}

static int probe_draft_token(void *st, const struct ahasd_draft_token *tok)
{
	struct probe *s = (struct probe *)st;
	const uint32_t n = tok->index + 1;

	s->calls[H_DRAFT_TOKEN]++;
	SIZED(s, tok);
	A(s, tok->batch_id);
	A(s, tok->index);
	A(s, tok->entropy);
	A(s, tok->top1);
	A(s, tok->now_s);
	return (s->cap != 0 && n >= s->cap) || n >= s->len ||
	       tok->entropy > s->h_stop;
}

static void probe_batch_result(void *st, const struct ahasd_batch_result *r)
{
	struct probe *s = (struct probe *)st;

	s->calls[H_BATCH_RESULT]++;
	SIZED(s, r);
	A(s, r->batch_id);
	A(s, r->drafted);
	A(s, r->accepted);
	A(s, r->committed);
	A(s, r->discarded);
	A(s, r->round_s);
	A(s, r->now_s);
	s->discarded += r->discarded != 0;
}

static const struct ahasd_drafter_hooks probe_drafter_hooks = {
	.struct_size = sizeof(struct ahasd_drafter_hooks),
	.begin_sequence = probe_begin_sequence,
	.begin_batch = probe_begin_batch,
	.draft_token = probe_draft_token,
	.batch_result = probe_batch_result,
};

#endif

AHASD_PLUGIN_EXPORT const struct ahasd_plugin ahasd_plugin = {
	.abi_version = AHASD_PLUGIN_ABI_VERSION,
	.struct_size = sizeof(struct ahasd_plugin),
#ifdef PROBE_DRAFTER
	.kind = AHASD_PLUGIN_DRAFTER,
#else
	.kind = AHASD_PLUGIN_POLICY,
#endif
	.name = "abi_probe",
	.version = "1.0",
	.description = "test_abi.c: records what the host passes",
	.params = probe_params,
	.create = probe_create,
	.destroy = probe_destroy,
	.counter = probe_counter,
#ifdef PROBE_DRAFTER
	.policy = NULL,
	.drafter = &probe_drafter_hooks,
#else
	.policy = &probe_policy_hooks,
	.drafter = NULL,
#endif
#if AHASD_PLUGIN_ABI_VERSION >= 4
	/* runs on every trace (C++ warns about a member left out) */
	.needs = 0,
	.instance_needs = NULL,
#endif
};
