/* ahasd_plugin.h - the whole contract between ahasd-replay and a plugin.
 *
 * A plugin is a shared object exporting one symbol:
 *
 *     AHASD_PLUGIN_EXPORT const struct ahasd_plugin ahasd_plugin = { ... };
 *
 * The host dlopen()s the file, reads the descriptor and checks it (ABI
 * version, size, kind, required hooks) before calling any of its code.
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
 * (C17 or C++; a C++ plugin defines the descriptor like a C one, this
 * header gives it C linkage). tests/example_plugin/ is a complete plugin.
 *
 * HOW THIS ABI GROWS (the rules every change to this header follows)
 *
 * 1. Versions. AHASD_PLUGIN_ABI_VERSION is the version this header
 *    describes; a plugin puts it in abi_version. The host loads every
 *    plugin whose abi_version lies in [AHASD_PLUGIN_ABI_MIN,
 *    AHASD_PLUGIN_ABI_VERSION] and refuses any other, with both bounds in
 *    the message, before calling plugin code. A newer host runs an older
 *    plugin; an older host refuses a newer one.
 * 2. Sizes. Every struct that crosses the boundary begins with
 *    uint32_t struct_size (the descriptor with abi_version, then
 *    struct_size), set to sizeof its own definition by whoever fills it:
 *    the plugin for the descriptor and its hook tables, the host for
 *    everything it passes to create() and to hooks (the decision a policy
 *    fills in included). The one exception is struct ahasd_param, an
 *    array element: it is frozen.
 * 3. Append only. From ABI 3 on, a struct or hook table changes only by a
 *    field or hook added at its end, marked "since ABI n", with a version
 *    bump. Nothing is removed, reordered, retyped, or given a new meaning;
 *    what cannot be added that way is a new struct or a new hook. A richer
 *    parameter table would be a new field at the end of the descriptor.
 * 4. Reading what the other side filled. The host calls an optional hook
 *    only when AHASD_HAS_HOOK finds it within its table's struct_size and
 *    non-NULL; that one macro guards every call (required hooks are
 *    checked with it once, at load), as SPA's spa_callbacks_call does. The
 *    host reads a descriptor field added after ABI 3 only through
 *    AHASD_HAS_FIELD. A plugin may read every field its own header
 *    declares in what the host passes: the host is never older than the
 *    plugin (rule 1) and passes each struct at its own, full size.
 * 5. create() gets the host's ABI version (args->host_abi_version) and
 *    every declared parameter, in the order of the params table, with the
 *    user's value or else its default_value: a default is written once, in
 *    the table, and the run record shows what the plugin ran with.
 * 6. Old layouts stay loadable. A version that cannot follow rule 3 (only
 *    3 did, to bring in rules 2 and 5) keeps the previous layouts in the
 *    host, which translates each call (replay/plugin_compat.c), and the
 *    previous header is kept verbatim under tests/abi/vN/, where a test
 *    builds plugins against it and runs them under the current host.
 *    AHASD_PLUGIN_ABI_MIN moves up only with a release note saying why.
 *
 * History
 *   1  first release.
 *   2  ahasd_verify_info: corrected, pass_index and pass_batches appended
 *      (an ABI-1 plugin reads the part it knows).
 *   3  every struct the host passes begins with struct_size;
 *      create(st, args, err, errlen) with struct ahasd_create_args (the
 *      host's ABI version and every declared parameter, defaults filled
 *      in); AHASD_HAS_FIELD and AHASD_HAS_HOOK; extern "C". Plugins of ABI
 *      1 and 2 still load: the host passes them the layouts they were built
 *      with and, as before, only the parameters the user set.
 *   4  the descriptor's needs and instance_needs (appended, rule 3): what
 *      a plugin needs of a trace (AHASD_NEEDS_ENTROPY), so that the host
 *      refuses it on a format 1.1 trace without entropies instead of
 *      handing it NaN. A plugin of ABI 1 to 3 needs nothing.
 */
#ifndef AHASD_PLUGIN_H
#define AHASD_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AHASD_PLUGIN_ABI_VERSION 4u
/* the oldest abi_version a host built from this header loads (rule 1) */
#define AHASD_PLUGIN_ABI_MIN 1u
#define AHASD_PLUGIN_SYMBOL  "ahasd_plugin"

#if defined(__GNUC__)
#define AHASD_PLUGIN_VISIBLE __attribute__((visibility("default")))
#else
#define AHASD_PLUGIN_VISIBLE
#endif
/* Write it before the descriptor's definition. In C++ the declaration at
 * the end of this header exports the symbol already (and g++ ignores, with
 * a warning, a visibility attribute on a later declaration). */
#ifdef __cplusplus
#define AHASD_PLUGIN_EXPORT
#else
#define AHASD_PLUGIN_EXPORT AHASD_PLUGIN_VISIBLE
#endif

/* 1 if the struct at p, a type beginning with uint32_t struct_size, is
 * large enough to hold member m (rule 4). */
#define AHASD_HAS_FIELD(p, type, m) \
	((p)->struct_size >= offsetof(type, m) + sizeof(((const type *)0)->m))
/* 1 if hook m of the hook table p, a type, is present: within the table's
 * struct_size and non-NULL. The host calls no optional hook without it
 * (rule 4). */
#define AHASD_HAS_HOOK(p, type, m) \
	(AHASD_HAS_FIELD(p, type, m) && (p)->m != NULL)

enum ahasd_plugin_kind {
	AHASD_PLUGIN_POLICY = 1,
	AHASD_PLUGIN_DRAFTER = 2,
};

/* What a plugin may need of a trace (the descriptor's needs, since ABI 4).
 * A trace in format 1.1 may lack entropies (traces/FORMAT.md): then every
 * entropy and top-1 probability the host passes (ahasd_draft_token,
 * ahasd_batch_info.mean_entropy) is NaN, and the host refuses, before the
 * run, a plugin that declares AHASD_NEEDS_ENTROPY. */
#define AHASD_NEEDS_ENTROPY \
	1u /* the draft's entropy and top-1 probability
                                 * of every drafted token */

/* A parameter the plugin accepts, for --help, for create() and for the
 * run record. An array element, so frozen (rule 2); default_value must not
 * be NULL (rule 5). */
struct ahasd_param {
	const char *key;
	const char *default_value;
	const char *help;
};

/* What create() gets (rule 5). */
struct ahasd_create_args {
	uint32_t struct_size;
	uint32_t host_abi_version; /* the host's AHASD_PLUGIN_ABI_VERSION */
	size_t n;                  /* the number of entries in params */
	const char *const *keys;   /* keys[i] is params[i].key */
	const char *const *values; /* the user's value, else the default */
};

/* What a plugin learns at the start of each sequence. */
struct ahasd_seq_info {
	uint32_t struct_size;
	uint32_t seq_id;
	uint32_t prompt_len;
	uint32_t n_tokens; /* tokens this sequence will commit */
	uint64_t seed;     /* run seed, for plugins that randomise */
};

/* ------------------------------------------------------------------ */
/* Drafting algorithms                                                */
/* ------------------------------------------------------------------ */

/* One drafted token, as the drafter sees it: only what a real drafter
 * would know at that moment (its own distribution), never the outcome. */
struct ahasd_draft_token {
	uint32_t struct_size;
	uint64_t batch_id;
	uint32_t index; /* 0-based position in the batch */
	float entropy;  /* nats; NaN on a trace without entropies
	                          * (see AHASD_NEEDS_ENTROPY) */
	float top1;     /* draft's top-1 probability; NaN likewise */
	double now_s;   /* simulated time after this draft step */
};

/* Feedback when a batch has been verified (or discarded unverified). A
 * batch whose only token the previous pass's bonus already committed, left
 * over at the end of a sequence, is reported as verified without a pass
 * (committed 0). */
struct ahasd_batch_result {
	uint32_t struct_size;
	uint64_t batch_id;
	uint32_t drafted;   /* tokens in the batch */
	uint32_t accepted;  /* leading accepted run of the batch (stops
	                          * before a draft pre-verification replaced) */
	uint32_t committed; /* tokens the verification committed */
	int discarded;      /* 1: dropped unverified (after a rejection,
	                          * a pre-verify correction, or a bonus that
	                          * differs from the look-ahead token) */
	double round_s;     /* batch start to verification result */
	double now_s;
};

struct ahasd_drafter_hooks {
	uint32_t struct_size; /* sizeof(struct ahasd_drafter_hooks) */
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
	AHASD_NEXT_DRAFT = 0, /* draft another batch ahead */
	AHASD_NEXT_WAIT = 1,  /* idle until the next verification result */
	AHASD_NEXT_PREVERIFY =
	        2, /* pre-verify `count` earliest queued drafts */
};

/* Filled in by after_batch; the host sets struct_size and the default
 * (DRAFT, 0) before the call. The host checks what it gets back: a next
 * that is no enum ahasd_next, or a PREVERIFY whose count lies outside
 * [1, queue_capacity] (ahasd_host_view), fails the run with a message
 * naming the plugin, the hook and the value. count is read only with
 * PREVERIFY; fewer tokens than count may be pre-verified when fewer are
 * queued and unsettled (preverifiable). */
struct ahasd_decision {
	uint32_t struct_size;
	uint32_t next;  /* enum ahasd_next */
	uint32_t count; /* tokens to pre-verify */
};

/* Read-only snapshot of the host when a policy hook runs. Times are
 * simulated seconds; frequencies let a policy think in cycles. */
struct ahasd_host_view {
	uint32_t struct_size;
	double now_s;
	double verify_freq_hz;   /* clock of the verify device (NPU) */
	double draft_freq_hz;    /* clock of the draft device (PIM) */
	int shared_device;       /* 1: draft and verify on one device */
	int verify_busy;         /* a verification is running */
	double verify_start_s;   /* its start time (if busy) */
	uint32_t verify_kv_len;  /* its KV length (if busy) */
	uint32_t verify_tokens;  /* its tokens M = drafts + 1 (if busy) */
	uint32_t queued_batches; /* submitted, waiting for the verify device */
	uint32_t queued_tokens;
	uint32_t preverifiable;      /* queued tokens not yet pre-verified */
	uint32_t unverified_batches; /* queued + in verification */
	uint32_t queue_capacity;     /* max unverified tokens */
	uint32_t committed; /* tokens committed so far in this sequence */
	uint32_t kv_len;    /* prompt + committed */
	/* offline profile of this platform and model pair (the hardware
	 * model's cost at KV length 1024), for time-aware policies */
	double prof_verify_s_per_kv; /* verify (4 drafts) time / KV length */
	double prof_draft_s;         /* one draft step */
	double prof_preverify_s_per_token; /* pre-verify of 4 tokens / 4 */
};

/* A batch the drafter just closed (already queued for verification). */
struct ahasd_batch_info {
	uint32_t struct_size;
	uint64_t batch_id;
	uint32_t length;
	float mean_entropy; /* nats; NaN on a trace without entropies */
	uint32_t lookahead; /* 1 if drafted on top of unverified batches */
};

/* A verification result for one batch. */
struct ahasd_verify_info {
	uint32_t struct_size;
	uint64_t batch_id;
	uint32_t length;
	uint32_t accepted;          /* leading run of the batch's drafts the
	                           * target accepted (stops before a draft a
	                           * pre-verification replaced) */
	int full;                   /* accepted == length and no pre-verify
	                           * correction shortened the batch */
	uint32_t kv_len;            /* KV length the verification ran at */
	double duration_s;          /* its time on the verify device (the whole
	                           * pass's, the same for each of its batches) */
	uint32_t discarded_batches; /* batches dropped unverified by this
	                           * result: every closed batch after it */
	uint32_t corrected;         /* 1: a pre-verification replaced a draft of
	                           * this batch (its later batches were dropped
	                           * then, and reported by on_preverify) */
	uint32_t pass_index;        /* one pass may verify several queued */
	uint32_t pass_batches;      /* batches: index of this one, 0-based, and
	                           * their number. Batches after a rejection get
	                           * no on_verify; index 0 always does, so count
	                           * per-pass figures there. */
};

/* A finished draft step or pre-verification, for time-aware policies. */
struct ahasd_task_info {
	uint32_t struct_size;
	uint32_t tokens;
	double duration_s;
	uint32_t discarded_batches; /* pre-verify: batches dropped after it */
};

struct ahasd_policy_hooks {
	uint32_t struct_size; /* sizeof(struct ahasd_policy_hooks) */
	/* required: enum ahasd_exec_mode for this run (any other value fails
	 * the run) */
	uint32_t (*exec_mode)(void *st);
	/* optional */
	void (*begin_sequence)(void *st, const struct ahasd_seq_info *seq);
	/* optional (default DRAFT; task-level async mode only): the drafter
	 * closed batch b and queued it for verification; decide what the
	 * draft device does next. */
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
	uint32_t abi_version; /* AHASD_PLUGIN_ABI_VERSION */
	uint32_t struct_size; /* sizeof(struct ahasd_plugin) */
	uint32_t kind;        /* enum ahasd_plugin_kind */
	const char *name;
	const char *version;
	const char *description;
	const struct ahasd_param *params; /* terminated by {NULL} */

	/* required: make state from the parameters in args (every key of
	 * params, in its order, with the user's value or the default; the
	 * host rejects unknown keys before this). Return 0, or non-zero with a
	 * message in err. */
	int (*create)(void **st, const struct ahasd_create_args *args,
	              char *err, size_t errlen);
	/* required */
	void (*destroy)(void *st);
	/* optional: the plugin's own counters, enumerated by index; return 0
	 * when i is past the last one. Each needs a name (stored as
	 * "policy.NAME" or "drafter.NAME", at most 95 bytes in all) and a
	 * finite value; the host keeps up to 64 counters of a run in all.
	 * Anything else fails the run. */
	int (*counter)(void *st, uint32_t i, const char **name, double *value);

	const struct ahasd_policy_hooks *policy;   /* kind == POLICY */
	const struct ahasd_drafter_hooks *drafter; /* kind == DRAFTER */

	/* since ABI 4: AHASD_NEEDS_* flags, what the plugin needs of a trace
	 * (0: nothing; it runs on every trace). The host refuses a run whose
	 * trace lacks what a plugin needs, before any sequence, naming both. */
	uint32_t needs;
	/* since ABI 4, optional: the needs of this instance, given its
	 * parameters (called once after create); when present the host uses
	 * it instead of needs, which then says what some instance may need
	 * (e.g. a policy whose entropy-driven part can be switched off). */
	uint32_t (*instance_needs)(void *st);
};

/* The one symbol a plugin defines, declared here so that a C++ plugin's
 * definition (const, so otherwise internal) has external C linkage and
 * stays visible under -fvisibility=hidden. */
AHASD_PLUGIN_VISIBLE extern const struct ahasd_plugin ahasd_plugin;

#ifdef __cplusplus
}
#endif

#endif
