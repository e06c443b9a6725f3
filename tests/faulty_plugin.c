/* faulty_plugin.c - plugins that misbehave on purpose, for the isolation
 * tests (test_isolation.c): a segfault, an abort, an endless loop or an
 * exit() in a chosen hook, or a value the host must refuse.
 *
 * One source, built several times (tests/meson.build) with
 *   -DFAULTY_DRAFTER      a drafting algorithm (else a scheduling policy)
 *   -DFAULTY_NAME="..."   the descriptor's name
 *   -DFAULTY_FAULT="..."  the default of parameter fault
 *   -DFAULTY_HOOK="..."   the default of parameter hook
 * Apart from its fault, the policy drafts ahead after every batch (like
 * async) and the drafter closes every batch after 2 tokens (like fixed
 * with k=2).
 *
 * Parameters:
 *   fault  none | segv | abort | hang | exit: done in `hook`, on its
 *          `after`-th call;
 *          next | count: after_batch returns next = value, or pre-verify
 *          with count = value (policy);
 *          mode: exec_mode returns value (policy);
 *          nan | inf: the counter reads NaN or +infinity
 *   hook   the hook of segv/abort/hang/exit, by its name in
 *          ahasd_plugin.h (create is not offered: ahasd-replay creates
 *          every plugin once in its own process to check parameters)
 *   after  the call of the hook that faults, from 1
 *   value  the value of next, count and mode
 * destroy faults only after the plugin ran a sequence, for the same
 * reason as create. Built from the public header alone. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "ahasd_plugin.h"

#ifndef FAULTY_NAME
#define FAULTY_NAME "faulty"
#endif
#ifndef FAULTY_FAULT
#define FAULTY_FAULT "none"
#endif
#ifndef FAULTY_HOOK
#ifdef FAULTY_DRAFTER
#define FAULTY_HOOK "draft_token"
#else
#define FAULTY_HOOK "after_batch"
#endif
#endif

enum fault {
	F_NONE,
	F_SEGV,
	F_ABORT,
	F_HANG,
	F_EXIT,
	F_NEXT,
	F_COUNT,
	F_MODE,
	F_NAN,
	F_INF
};
static const char *const fault_names[] = { "none", "segv", "abort", "hang",
	                                   "exit", "next", "count", "mode",
	                                   "nan",  "inf" };

struct faulty {
	enum fault fault;
	char hook[32];
	unsigned long after, value;
	unsigned long calls; /* of the faulting hook so far */
	int ran;             /* a sequence began */
	uint64_t batches;
};

/* A real segfault: a write to a page that allows none (no null pointer:
 * the undefined-behaviour sanitizer would catch that first). */
static void segfault(void)
{
	long pg = sysconf(_SC_PAGESIZE);
	volatile char *p = mmap(NULL, (size_t)(pg > 0 ? pg : 4096), PROT_NONE,
	                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		raise(SIGSEGV);
	p[0] = 1;
	raise(SIGSEGV); /* not reached */
}

static void hang(void)
{
	const struct timespec t = { 0, 10 * 1000 * 1000 };
	for (;;)
		nanosleep(&t, NULL);
}

/* Called at the top of every hook: do the fault if this is its call. */
static void maybe_fault(struct faulty *s, const char *hook)
{
	if (strcmp(s->hook, hook) || s->fault < F_SEGV || s->fault > F_EXIT)
		return;
	if (++s->calls != s->after)
		return;
	switch (s->fault) {
	case F_SEGV: segfault(); break;
	case F_ABORT: abort();
	case F_HANG: hang(); break;
	case F_EXIT: exit(3);
	default: break;
	}
}

static int faulty_create(void **st, const struct ahasd_create_args *args,
                         char *err, size_t errlen)
{
	struct faulty *s = calloc(1, sizeof *s);
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < args->n; i++) {
		const char *k = args->keys[i], *v = args->values[i];
		if (!strcmp(k, "fault")) {
			size_t f = 0;
			while (f < sizeof fault_names / sizeof *fault_names &&
			       strcmp(fault_names[f], v))
				f++;
			if (f == sizeof fault_names / sizeof *fault_names) {
				snprintf(err, errlen, "fault: unknown '%s'", v);
				free(s);
				return -EINVAL;
			}
			s->fault = (enum fault)f;
		} else if (!strcmp(k, "hook")) {
			snprintf(s->hook, sizeof s->hook, "%s", v);
		} else {
			char *end;
			unsigned long n = strtoul(v, &end, 10);
			if (end == v || *end) {
				snprintf(err, errlen,
				         "%s: '%s' is not a number", k, v);
				free(s);
				return -EINVAL;
			}
			if (!strcmp(k, "after"))
				s->after = n;
			else
				s->value = n;
		}
	}
	*st = s;
	return 0;
}

static void faulty_destroy(void *st)
{
	struct faulty *s = st;
	if (s->ran)
		maybe_fault(s, "destroy");
	free(s);
}

static int faulty_counter(void *st, uint32_t i, const char **name,
                          double *value)
{
	struct faulty *s = st;
	if (i > 0)
		return 0;
	maybe_fault(s, "counter");
	*name = "batches";
	*value = s->fault == F_NAN   ? NAN
	         : s->fault == F_INF ? INFINITY
	                             : (double)s->batches;
	return 1;
}

static void faulty_begin_sequence(void *st, const struct ahasd_seq_info *q)
{
	struct faulty *s = st;
	(void)q;
	s->ran = 1;
	maybe_fault(s, "begin_sequence");
}

#ifdef FAULTY_DRAFTER

static void faulty_begin_batch(void *st, uint64_t batch_id, uint32_t max_len)
{
	(void)batch_id;
	(void)max_len;
	maybe_fault(st, "begin_batch");
}

static int faulty_draft_token(void *st, const struct ahasd_draft_token *tok)
{
	struct faulty *s = st;
	maybe_fault(s, "draft_token");
	if (tok->index + 1 < 2)
		return 0;
	s->batches++;
	return 1;
}

static void faulty_batch_result(void *st, const struct ahasd_batch_result *r)
{
	(void)r;
	maybe_fault(st, "batch_result");
}

static const struct ahasd_drafter_hooks faulty_hooks = {
	.struct_size = sizeof(struct ahasd_drafter_hooks),
	.begin_sequence = faulty_begin_sequence,
	.begin_batch = faulty_begin_batch,
	.draft_token = faulty_draft_token,
	.batch_result = faulty_batch_result,
};

#else

static uint32_t faulty_mode(void *st)
{
	struct faulty *s = st;
	maybe_fault(s, "exec_mode");
	return s->fault == F_MODE ? (uint32_t)s->value : AHASD_EXEC_TASK_ASYNC;
}

static void faulty_after_batch(void *st, const struct ahasd_host_view *v,
                               const struct ahasd_batch_info *b,
                               struct ahasd_decision *d)
{
	struct faulty *s = st;
	(void)v;
	(void)b;
	s->batches++;
	maybe_fault(s, "after_batch");
	d->next = AHASD_NEXT_DRAFT;
	d->count = 0;
	if (s->fault == F_NEXT && s->batches == s->after) {
		d->next = (uint32_t)s->value;
	} else if (s->fault == F_COUNT && s->batches == s->after) {
		d->next = AHASD_NEXT_PREVERIFY;
		d->count = (uint32_t)s->value;
	}
}

static void faulty_on_verify(void *st, const struct ahasd_host_view *v,
                             const struct ahasd_verify_info *r)
{
	(void)v;
	(void)r;
	maybe_fault(st, "on_verify");
}

static void faulty_on_draft_step(void *st, const struct ahasd_task_info *t)
{
	(void)t;
	maybe_fault(st, "on_draft_step");
}

static void faulty_on_preverify(void *st, const struct ahasd_task_info *t,
                                int rejected)
{
	(void)t;
	(void)rejected;
	maybe_fault(st, "on_preverify");
}

static const struct ahasd_policy_hooks faulty_hooks = {
	.struct_size = sizeof(struct ahasd_policy_hooks),
	.exec_mode = faulty_mode,
	.begin_sequence = faulty_begin_sequence,
	.after_batch = faulty_after_batch,
	.on_verify = faulty_on_verify,
	.on_draft_step = faulty_on_draft_step,
	.on_preverify = faulty_on_preverify,
};

#endif

static const struct ahasd_param faulty_params[] = {
	{ "fault", FAULTY_FAULT,
	  "none, segv, abort, hang, exit, next, "
	  "count, mode, nan or inf" },
	{ "hook", FAULTY_HOOK,
	  "the hook that faults (segv, abort, hang, "
	  "exit)" },
	{ "after", "3", "the call of the hook that faults, from 1" },
	{ "value", "7", "the value of next, count or mode" },
	{ NULL, NULL, NULL },
};

AHASD_PLUGIN_EXPORT const struct ahasd_plugin ahasd_plugin = {
	.abi_version = AHASD_PLUGIN_ABI_VERSION,
	.struct_size = sizeof(struct ahasd_plugin),
#ifdef FAULTY_DRAFTER
	.kind = AHASD_PLUGIN_DRAFTER,
	.drafter = &faulty_hooks,
#else
	.kind = AHASD_PLUGIN_POLICY,
	.policy = &faulty_hooks,
#endif
	.name = FAULTY_NAME,
	.version = "1.0",
	.description = "test plugin that misbehaves on purpose",
	.params = faulty_params,
	.create = faulty_create,
	.destroy = faulty_destroy,
	.counter = faulty_counter,
};
