/* ahasd_plugin.h - the whole contract between ahasd-replay and a plugin.
 *
 * A plugin is a shared object exporting one symbol:
 *
 *     AHASD_PLUGIN_EXPORT const struct ahasd_plugin ahasd_plugin = { ... };
 *
 * The host dlopen()s the file, reads the descriptor, and refuses it before
 * calling any of its code unless abi_version == AHASD_PLUGIN_ABI_VERSION,
 * struct_size is large enough and kind is known. Hook tables only grow at
 * the end; a hook added later is only called when the table's struct_size
 * covers it. Hooks marked optional may be NULL.
 *
 * Plugins keep all their state in the object returned by create(); hooks
 * get it back as `st` with a read-only view of the host. No globals, no
 * side effects on the host: a hook decides, the engine acts.
 *
 * Two kinds:
 *  - drafting algorithms decide, token by token, when a draft batch ends;
 *  - scheduling policies decide the execution mode (operator-level
 *    synchronous or task-level asynchronous) and, after each batch, whether
 *    the draft device drafts ahead, pre-verifies or waits.
 *
 * Build against it with:  cc $(pkg-config --cflags ahasd-policy) -shared -fPIC
 */
#ifndef AHASD_PLUGIN_H
#define AHASD_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#define AHASD_PLUGIN_ABI_VERSION 1u
#define AHASD_PLUGIN_SYMBOL "ahasd_plugin"

#if defined(__GNUC__)
#define AHASD_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define AHASD_PLUGIN_EXPORT
#endif

enum ahasd_plugin_kind {
	AHASD_PLUGIN_POLICY = 1,
	AHASD_PLUGIN_DRAFTER = 2,
};

/* A parameter the plugin accepts, for --help and for the run record. */
struct ahasd_param {
	const char *key;
	const char *default_value;
	const char *help;
};

/* What a plugin learns at the start of each sequence. */
struct ahasd_seq_info {
	uint32_t seq_id;
	uint32_t prompt_len;
	uint32_t n_tokens;      /* tokens this sequence will commit */
	uint64_t seed;          /* run seed, for plugins that randomise */
};

/* ------------------------------------------------------------------ */
/* Drafting algorithms                                                */
/* ------------------------------------------------------------------ */

/* One drafted token, as the drafter sees it: only what a real drafter
 * would know at that moment (its own distribution), never the outcome. */
struct ahasd_draft_token {
	uint64_t batch_id;
	uint32_t index;          /* 0-based position in the batch */
	float entropy;           /* nats */
	float top1;              /* draft's top-1 probability */
	double now_s;            /* simulated time after this draft step */
};

/* Feedback when a batch has been verified (or discarded unverified). */
struct ahasd_batch_result {
	uint64_t batch_id;
	uint32_t drafted;        /* tokens in the batch */
	uint32_t accepted;       /* leading accepted run of the batch */
	uint32_t committed;      /* tokens the verification committed */
	int discarded;           /* 1: dropped unverified after a rejection */
	double round_s;          /* batch start to verification result */
	double now_s;
};

struct ahasd_drafter_hooks {
	uint32_t struct_size;    /* sizeof(struct ahasd_drafter_hooks) */
	/* optional */
	void (*begin_sequence)(void *st, const struct ahasd_seq_info *seq);
	/* optional: a new batch starts; max_len is the host's hard cap. */
	void (*begin_batch)(void *st, uint64_t batch_id, uint32_t max_len);
	/* required: called after each drafted token; return non-zero to end
	 * the batch after this token. */
	int (*draft_token)(void *st, const struct ahasd_draft_token *tok);
	/* optional */
	void (*batch_result)(void *st, const struct ahasd_batch_result *res);
};

/* ------------------------------------------------------------------ */
/* Scheduling policies                                                */
/* ------------------------------------------------------------------ */

enum ahasd_exec_mode {
	/* each step's operators placed across devices, devices wait on each
	 * other; no look-ahead (SpecPIM-style operator-level scheduling) */
	AHASD_EXEC_OPERATOR_SYNC = 0,
	/* draft and verify are whole tasks on their own devices, decoupled by
	 * queues (PEARL/AMUSD/AHASD task-level scheduling) */
	AHASD_EXEC_TASK_ASYNC = 1,
};

enum ahasd_next {
	AHASD_NEXT_DRAFT = 0,     /* draft another batch ahead */
	AHASD_NEXT_WAIT = 1,      /* idle until the next verification result */
	AHASD_NEXT_PREVERIFY = 2, /* pre-verify `count` earliest queued drafts */
};

struct ahasd_decision {
	uint32_t next;            /* enum ahasd_next */
	uint32_t count;           /* tokens to pre-verify */
};

/* Read-only snapshot of the host when a policy hook runs. Times are
 * simulated seconds; frequencies let a policy think in cycles. */
struct ahasd_host_view {
	double now_s;
	double verify_freq_hz;    /* clock of the verify device (NPU) */
	double draft_freq_hz;     /* clock of the draft device (PIM) */
	int shared_device;        /* 1: draft and verify on one device */
	int verify_busy;          /* a verification is running */
	double verify_start_s;    /* its start time (if busy) */
	uint32_t verify_kv_len;   /* its KV length (if busy) */
	uint32_t verify_tokens;   /* its tokens M = drafts + 1 (if busy) */
	uint32_t queued_batches;  /* submitted, waiting for the verify device */
	uint32_t queued_tokens;
	uint32_t preverifiable;   /* queued tokens not yet pre-verified */
	uint32_t unverified_batches; /* queued + in verification */
	uint32_t queue_capacity;  /* max unverified tokens */
	uint32_t committed;       /* tokens committed so far in this sequence */
	uint32_t kv_len;          /* prompt + committed */
	/* offline profile of this platform and model pair (the hardware
	 * model's cost at KV length 1024), for time-aware policies */
	double prof_verify_s_per_kv;     /* verify (4 drafts) time / KV length */
	double prof_draft_s;             /* one draft step */
	double prof_preverify_s_per_token; /* pre-verify of 4 tokens / 4 */
};

/* A batch the drafter just closed (already queued for verification). */
struct ahasd_batch_info {
	uint64_t batch_id;
	uint32_t length;
	float mean_entropy;       /* nats */
	uint32_t lookahead;       /* 1 if drafted on top of unverified batches */
};

/* A verification result for one batch. */
struct ahasd_verify_info {
	uint64_t batch_id;
	uint32_t length;
	uint32_t accepted;        /* leading accepted run */
	int full;                 /* accepted == length and no pre-verify
	                           * correction shortened the batch */
	uint32_t kv_len;          /* KV length the verification ran at */
	double duration_s;        /* its time on the verify device */
	uint32_t discarded_batches; /* look-ahead batches dropped by it */
};

/* A finished draft step or pre-verification, for time-aware policies. */
struct ahasd_task_info {
	uint32_t tokens;
	double duration_s;
	uint32_t discarded_batches; /* pre-verify: batches dropped after it */
};

struct ahasd_policy_hooks {
	uint32_t struct_size;     /* sizeof(struct ahasd_policy_hooks) */
	/* required: enum ahasd_exec_mode for this run */
	uint32_t (*exec_mode)(void *st);
	/* optional */
	void (*begin_sequence)(void *st, const struct ahasd_seq_info *seq);
	/* optional (default DRAFT): the drafter closed batch b while earlier
	 * batches are unverified; decide what the draft device does next. */
	void (*after_batch)(void *st, const struct ahasd_host_view *v,
	                    const struct ahasd_batch_info *b,
	                    struct ahasd_decision *d);
	/* optional: a verification finished. */
	void (*on_verify)(void *st, const struct ahasd_host_view *v,
	                  const struct ahasd_verify_info *r);
	/* optional: a draft step finished. */
	void (*on_draft_step)(void *st, const struct ahasd_task_info *t);
	/* optional: a pre-verification finished; rejected is 1 if it found
	 * a wrong draft. */
	void (*on_preverify)(void *st, const struct ahasd_task_info *t,
	                     int rejected);
};

/* ------------------------------------------------------------------ */
/* The descriptor                                                     */
/* ------------------------------------------------------------------ */

struct ahasd_plugin {
	uint32_t abi_version;     /* AHASD_PLUGIN_ABI_VERSION */
	uint32_t struct_size;     /* sizeof(struct ahasd_plugin) */
	uint32_t kind;            /* enum ahasd_plugin_kind */
	const char *name;
	const char *version;
	const char *description;
	const struct ahasd_param *params; /* terminated by {NULL} */

	/* required: make state from key=value parameters (only keys listed in
	 * params are passed; the host rejects unknown keys before this).
	 * Return 0, or non-zero with a message in err. */
	int (*create)(void **st, const char *const *keys,
	              const char *const *values, size_t n,
	              char *err, size_t errlen);
	/* required */
	void (*destroy)(void *st);
	/* optional: the plugin's own counters, enumerated by index; return 0
	 * when i is past the last one. */
	int (*counter)(void *st, uint32_t i, const char **name, double *value);

	const struct ahasd_policy_hooks *policy;   /* kind == POLICY */
	const struct ahasd_drafter_hooks *drafter; /* kind == DRAFTER */
};

#endif
