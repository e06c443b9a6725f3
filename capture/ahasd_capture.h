/* ahasd_capture.h - write ahasd-replay traces from a runtime written in C or
 * C++ (llama.cpp style): the whole contract, libc types only.
 *
 * A trace (traces/FORMAT.md in the ahasd-replay sources) records, for each
 * prompt and each generated position p, what the DRAFT model saw given the
 * TRUE prefix (the target's tokens): its entropy and top-1 probability, the
 * acceptance probability a_p of its token at p, and wherever a_p < 1 the
 * entropies of its own free-running continuation for the next K steps.
 * Since API 2 it also writes format 1.1: accepted-run lengths instead of
 * a_p (tree drafters, logged runs), no entropies, a draft that is a lookup
 * (see FORMAT 1.1 below). The runtime runs the models; this library
 * checks and writes.
 *
 *     struct ahasd_capture *c;
 *     struct ahasd_capture_model draft = AHASD_CAPTURE_MODEL_INIT, target = ...;
 *     struct ahasd_capture_config cfg = AHASD_CAPTURE_CONFIG_INIT;
 *     char err[512];
 *
 *     cfg.lookahead = 16; cfg.draft = &draft; cfg.target = &target; ...
 *     if (ahasd_capture_open(&c, "run.msgpack", &cfg, err, sizeof err) < 0)
 *             die(err);
 *     ahasd_capture_provenance(c, "runtime", "mytool 1.2, CPU, 8 threads");
 *     for each prompt s:
 *             ahasd_capture_begin(c, s, prompt_len);
 *             for each generated position:
 *                     ahasd_capture_pos(c, H, top1, a, token, a < 1 ? cont : NULL);
 *             ahasd_capture_end(c);
 *     if (ahasd_capture_close(&c, err, sizeof err) < 0)
 *             die(err);
 *
 * Build with:  cc $(pkg-config --cflags --libs ahasd-capture)
 * capture/examples/toy_runtime.c is a complete program.
 *
 * Errors. Functions return 0 or a negative errno-style code. ahasd_capture_
 * open() and _close() write their message into the caller's buffer; every
 * other call keeps it in the capture (ahasd_capture_error()). The first
 * error fails the capture: later calls return the same code and do
 * nothing, and ahasd_capture_close() returns it again and leaves no file.
 * So a runtime may check every call, or only the close.
 *
 * Output. The path follows ahasd-replay's rules for every output file: it
 * is checked at open (a folder, a FIFO or a device is refused there), the
 * data goes to a temporary file beside it, and close renames it into place
 * after the end record, a flush and an fsync; "-" is standard output. A
 * failed or aborted capture leaves the old file, if any, as it was. The
 * header is written at the first ahasd_capture_begin() (or at close when
 * there is no sequence), so provenance may be added until then.
 *
 * Not thread-safe per capture: one capture, one thread at a time. Captures
 * share nothing, so threads may each write their own.
 *
 * HOW THIS API GROWS
 * 1. AHASD_CAPTURE_API_VERSION is the version this header describes; the
 *    library's is ahasd_capture_api_version(). The soname changes only if
 *    an existing call or field changes meaning, which rule 2 avoids.
 * 2. Every struct passed in begins with uint32_t struct_size, set by its
 *    _INIT macro to sizeof its definition in the caller's header. Fields
 *    are only ever appended ("since API n"); the library reads a field
 *    only when struct_size covers it and otherwise uses the default that
 *    the _INIT macro documents, so a program built against an older
 *    header keeps working with a newer library. A struct_size larger than
 *    the library knows (a program built against a newer header) is
 *    refused with a message naming both sizes. struct ahasd_capture_op is
 *    an array element and is frozen.
 * 3. API 2 writes trace format 1.1 (FORMAT.md, "Version 1.1") where the
 *    config asks for one of its features, each a field appended to the
 *    config (defaults: off): per-position accepted-run lengths
 *    (accept_run_max, and accept_run appended to ahasd_capture_position),
 *    traces without entropies (no_entropy), a draft without a model
 *    (draft_lookup). A trace that uses none of them stays a version-1
 *    trace, byte for byte, and a program built against API 1 writes one.
 *
 * FORMAT 1.1 FROM THE API (the same semantics as traces/FORMAT.md)
 * - accept_run_max = R >= 1 (feature accept_runs): each position gives
 *   accept_run, the number of drafted tokens a speculation started at p
 *   (drafting R tokens on the true prefix) had accepted, 0..R; accept and
 *   cont are not read, and the trace has no continuation rows (lookahead
 *   is not read). tree_tokens T (>= R) is what one verification of a
 *   full-depth speculation feeds the target besides the last committed
 *   token: R for a chain, more for a tree; 0 takes the format's default,
 *   R with a lookup draft, else 10 R. entropy and top1 are still read
 *   (the true-prefix draft's, for statistics) unless no_entropy is set.
 * - no_entropy = 1 (feature no_entropy): entropy, top1 and cont are not
 *   read, lookahead neither; a replay refuses the drafters and policies
 *   that need entropies (AdaEDL, SVIP, SpecDec++, AHASD with EDC) and
 *   runs fixed-length drafting, sync and async.
 * - draft_lookup = "ngram", "prompt_lookup", ... (feature draft_lookup):
 *   the draft has no model (draft must be NULL); a replay costs a draft
 *   batch what the hardware preset says a lookup costs.
 */
#ifndef AHASD_CAPTURE_PUBLIC_H
#define AHASD_CAPTURE_PUBLIC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AHASD_CAPTURE_API_VERSION 2u

#if defined(__GNUC__)
#define AHASD_CAPTURE_API __attribute__((visibility("default")))
#else
#define AHASD_CAPTURE_API
#endif

/* An operator of one forward pass, as executed (traces/FORMAT.md, "OP").
 * An array element: frozen. */
struct ahasd_capture_op {
	const char *name; /* e.g. "wq", "attention" (< 64 bytes) */
	const char *kind; /* "gemm", "attention", "nonlinear", "norm",
	                         * "elementwise" or "embed" */
	uint32_t k, n;    /* gemm/embed: weight k x n; others: n elements */
	uint32_t heads, kv_heads, head_dim; /* attention only, else 0 */
	uint32_t repeat; /* executions per forward pass (layers), >= 1 */
};

/* One model of the pair. */
struct ahasd_capture_model {
	uint32_t struct_size;
	const char *name; /* < 64 bytes */
	uint32_t dim, hidden_dim, n_layers, n_heads, n_kv_heads;
	uint32_t vocab_size, seq_len;
	uint32_t weight_bits;  /* bits per weight as run: 32 fp32, 16, 8, 4 */
	uint64_t weight_bytes; /* 0: the gemm and embed weights of the op list
	                         * at weight_bits */
	uint32_t n_ops;        /* 0: the standard llama decoder op list derived
	                         * from the dims (n_layers = layers executed) */
	const struct ahasd_capture_op *ops; /* [n_ops], copied at open */
};

#define AHASD_CAPTURE_MODEL_INIT                                             \
	{                                                                    \
		(uint32_t)sizeof(struct ahasd_capture_model), NULL, 0, 0, 0, \
		        0, 0, 0, 0, 32, 0, 0, NULL                           \
	}

/* What the whole trace shares. */
struct ahasd_capture_config {
	uint32_t struct_size;
	uint32_t lookahead; /* K >= 1: continuation entropies per position
	                         * with a_p < 1 */
	int sampled;        /* 0 greedy (a_p is 0 or 1), 1 sampled */
	double temperature; /* sampled: > 0; greedy: ignored (0 recorded) */
	double top_p;       /* sampled: (0, 1]; greedy: ignored (1) */
	uint64_t seed;      /* the runtime's sampling seed; replays key
	                         * their coin flips on it */
	const struct ahasd_capture_model *draft, *target; /* copied at open;
	                         * draft NULL with draft_lookup */
	/* since API 2: trace format 1.1 (see FORMAT 1.1 above) */
	uint32_t accept_run_max;  /* 0: positions give accept (a_p); R in
	                         * [1, 65536]: they give accept_run in [0, R] */
	uint32_t tree_tokens;     /* with accept_run_max: T in [R, 65536], or 0
	                         * for the default (R with draft_lookup, else
	                         * 10 R) */
	int no_entropy;           /* 1: no entropy, top1 or continuations */
	const char *draft_lookup; /* NULL: the draft is a model; else the
	                         * lookup method, 1..63 bytes */
};

#define AHASD_CAPTURE_CONFIG_INIT                                          \
	{                                                                  \
		(uint32_t)sizeof(struct ahasd_capture_config), 16, 0, 0.0, \
		        1.0, 0, NULL, NULL, 0, 0, 0, NULL                  \
	}

#define AHASD_CAPTURE_NO_TOKEN (-1)

/* One generated position p, given the true prefix (the target's tokens
 * before p). With no_entropy, entropy, top1 and cont are not read; with
 * accept_run_max, accept and cont are not read (FORMAT 1.1 above). */
struct ahasd_capture_position {
	uint32_t struct_size;
	float entropy;     /* the draft's entropy at p, nats, finite >= 0
	                         * (of its sampling distribution when sampled) */
	float top1;        /* the draft's top-1 probability at p, [0, 1] */
	float accept;      /* a_p in [0, 1]: greedy 1 if the draft's token
	                         * is the target's, else 0; sampled
	                         * sum_x min(p_target(x), p_draft(x)) */
	int32_t token;     /* the target's token at p, or
	                         * AHASD_CAPTURE_NO_TOKEN; either every position
	                         * of a sequence has one or none has */
	const float *cont; /* accept < 1: K entropies of the draft's own
	                         * continuation after it drafted its token at p
	                         * (positions p+1 .. p+K), copied; accept == 1:
	                         * NULL */
	/* since API 2 */
	uint32_t accept_run; /* with accept_run_max R: tokens a speculation
	                         * started at p had accepted, 0..R (may run
	                         * past the end of the sequence) */
};

#define AHASD_CAPTURE_POSITION_INIT                                          \
	{                                                                    \
		(uint32_t)sizeof(struct ahasd_capture_position), 0.0f, 0.0f, \
		        0.0f, AHASD_CAPTURE_NO_TOKEN, NULL, 0                \
	}

struct ahasd_capture;

/** The API version of the library (AHASD_CAPTURE_API_VERSION of the
 * header it was built from). */
AHASD_CAPTURE_API uint32_t ahasd_capture_api_version(void);

/** Check cfg and the output path and start a capture to path.
 * @return 0, or a negative errno-style code with the message in err
 * (-EINVAL for a bad configuration, naming the field). */
AHASD_CAPTURE_API int ahasd_capture_open(struct ahasd_capture **out,
                                         const char *path,
                                         const struct ahasd_capture_config *cfg,
                                         char *err, size_t errlen);

/** Add (or replace) a free-form provenance pair: "runtime", "date" (UTC
 * ISO-8601), "target_model", "tokenizer", "prompt_source", each model
 * file with its "*_sha256", the draft's settings... Only before the first
 * ahasd_capture_begin(). "tool" defaults to "libahasd-capture",
 * "tool_version" to the library's version, "date" to the time of the
 * first begin (or SOURCE_DATE_EPOCH). */
AHASD_CAPTURE_API int ahasd_capture_provenance(struct ahasd_capture *c,
                                               const char *key,
                                               const char *value);

/** Start sequence (prompt) id, unique within the trace, after prompt_len
 * prompt tokens (the KV length before position 0, BOS included). */
AHASD_CAPTURE_API int ahasd_capture_begin(struct ahasd_capture *c, uint32_t id,
                                          uint32_t prompt_len);

/** Record the next generated position of the open sequence. At most the
 * target's seq_len - prompt_len positions. */
AHASD_CAPTURE_API int ahasd_capture_position(
        struct ahasd_capture *c, const struct ahasd_capture_position *pos);

/** Close the open sequence (at least one position) and write it. */
AHASD_CAPTURE_API int ahasd_capture_end(struct ahasd_capture *c);

/** The message of the error that failed the capture, or "" while none
 * has. Valid until the capture is closed. */
AHASD_CAPTURE_API const char *ahasd_capture_error(
        const struct ahasd_capture *c);

/** Write the end record and put the file in place. A sequence still open
 * is an error. Frees *c and sets it to NULL whatever happens; accepts
 * NULL. @return 0, or the capture's first error (message in err). */
AHASD_CAPTURE_API int ahasd_capture_close(struct ahasd_capture **c, char *err,
                                          size_t errlen);

/** Abandon: no file is written (an old file at the path is left as it
 * was). Frees *c and sets it to NULL; accepts NULL. */
AHASD_CAPTURE_API void ahasd_capture_abort(struct ahasd_capture **c);

/** ahasd_capture_position() with the fields of API 1. */
static inline int ahasd_capture_pos(struct ahasd_capture *c, float entropy,
                                    float top1, float accept, int32_t token,
                                    const float *cont)
{
	struct ahasd_capture_position p = AHASD_CAPTURE_POSITION_INIT;

	p.entropy = entropy;
	p.top1 = top1;
	p.accept = accept;
	p.token = token;
	p.cont = cont;
	return ahasd_capture_position(c, &p);
}

/** ahasd_capture_position() of a trace with accepted-run lengths (since
 * API 2): entropy and top1 are not read with no_entropy. */
static inline int ahasd_capture_pos_run(struct ahasd_capture *c, float entropy,
                                        float top1, uint32_t accept_run,
                                        int32_t token)
{
	struct ahasd_capture_position p = AHASD_CAPTURE_POSITION_INIT;

	p.entropy = entropy;
	p.top1 = top1;
	p.accept_run = accept_run;
	p.token = token;
	return ahasd_capture_position(c, &p);
}

#ifdef __cplusplus
}
#endif

#endif
