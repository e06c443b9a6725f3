/* fixtures.h - what the test programs share: a private temporary folder per
 * test, files in and out, running a build-tree program with its output
 * captured, and hand-built models and traces.
 *
 * fixtures.c needs only libc; fixtures_trace.c (models, traces) needs the
 * trace library, and is linked only into the programs that call it (both
 * live in one static library: a program pulls in what it uses; trace.h is
 * a plain header).
 *
 * Every helper asserts with Criterion: a failure fails the calling test.
 */
#ifndef AHASD_TEST_FIXTURES_H
#define AHASD_TEST_FIXTURES_H

#include <stddef.h>
#include <stdint.h>

#include <criterion/parameterized.h>

#include "trace.h"

/* ---- temporary folder --------------------------------------------------
 * fx_tmpdir_make("cli") makes /tmp/ahasd-test-cli-XXXXXX in fx_dir (from a
 * suite's .init); fx_tmpdir_remove() removes it and everything in it,
 * read-only folders and FIFOs included (from .fini). */
extern char fx_dir[256];
void fx_tmpdir_make(const char *tag);
void fx_tmpdir_remove(void);
/** fx_dir/name in a rotating buffer: eight results live at once. */
const char *fx_path(const char *name);

/* ---- files ------------------------------------------------------------- */
/** Up to cap - 1 bytes of path, NUL-terminated. @return bytes read. */
size_t fx_read_text(const char *path, char *buf, size_t cap);
/** The whole file in a malloc'd buffer (NUL-terminated); *n its size. */
unsigned char *fx_slurp(const char *path, size_t *n);
void fx_write_file(const char *path, const void *data, size_t n);
void fx_write_text(const char *path, const char *text);

/* ---- running programs -------------------------------------------------- */
/** $AHASD_BUILD_ROOT/rel and $AHASD_SOURCE_ROOT/rel (rotating buffers
 * apart from fx_path's, eight live at once; asserts the variable is
 * set). */
const char *fx_build_path(const char *rel);
const char *fx_source_path(const char *rel);

/* stdout and stderr of the last fx_run (NUL-terminated) */
extern char fx_out[1 << 20], fx_err[1 << 16];
extern size_t fx_out_len;

struct fx_run_opts {
	const char *const *env; /* "K=V" set, "K" unset in the child */
	int in_dir;             /* 1: the child runs in fx_dir */
	int timeout_s;          /* killed after this (a failure); 0: 60 */
};

/** Run bin (a path, or a name looked up in PATH) with args (NULL-
 * terminated), stdout and stderr into fx_out and fx_err. A child that
 * has not exited within the timeout is killed and the test fails.
 * @return its exit status. */
int fx_run(const char *bin, const char *const *args,
           const struct fx_run_opts *opts);
#define FX_ARGS(...) ((const char *const[]){ __VA_ARGS__, NULL })

/* ---- parameterised tests ----------------------------------------------
 * Criterion runs each test in a fresh process (a new exec, so addresses
 * differ): a case must hold its strings inline (char arrays), never as
 * pointers (they point nowhere in the test's process). A table on the
 * ParameterizedTestParameters function's stack does not outlive it:
 * FX_PARAMS(T, array, n) copies it to memory the workers share and frees
 * it after the run. A static table, initialised or filled by code in that
 * function (the worker runs it too, as cli/typo_fails_before_any_run
 * shows), can go to cr_make_param_array as is. */
void *fx_params_dup(const void *p, size_t size);
void fx_params_free(struct criterion_test_params *crp);
#define FX_PARAMS(T, a, n)                                               \
	cr_make_param_array(T, fx_params_dup((a), sizeof(T) * (n)), (n), \
	                    fx_params_free)

/* ---- models and traces (fixtures_trace.c) ------------------------------ */

/** A llama-shaped model with weights INT8 and its operator list. */
struct fx_dims {
	uint32_t dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size,
	        seq_len;
};
void fx_llama_model(struct trace_model *m, const char *name, struct fx_dims d);
/** The tiny pair of the hand-built traces: dim 64, hidden 172, 8 heads,
 * 4 K/V heads, vocab 512, context 512, `layers` layers. */
void fx_tiny_model(struct trace_model *m, const char *name, uint32_t layers);

#define FX_P_LEN 16 /* prompt length of the hand-built sequences */
#define FX_K     4  /* their continuation length (trace lookahead) */
#define FX_MAX_N 64 /* their longest sequence */

/* The arrays of one hand-built sequence. */
struct fx_seq {
	float ent[FX_MAX_N], top1[FX_MAX_N], acc[FX_MAX_N];
	float cont[FX_MAX_N * FX_K];
	uint32_t cpos[FX_MAX_N];
	struct trace_seq s; /* pointing into the arrays above */
};

/** A sequence with acceptance a_p as given: entropy 0.5 + 2 (1 - a_p)
 * nats and top-1 0.9 - 0.6 (1 - a_p) (low entropy where the draft is
 * right), a continuation row 3.0, 3.1, ... where a_p < 1. */
void fx_seq_sampled(struct fx_seq *b, uint32_t id, const float *a, uint32_t n);
/** A greedy sequence: a_p = accept[p] (0 or 1); entropy 0.5 / 2.5 nats
 * and top-1 0.9 / 0.3 on accepted / rejected positions. */
void fx_seq_greedy(struct fx_seq *b, uint32_t id, const int *accept,
                   uint32_t n);

struct fx_trace_opts {
	int sampled;            /* 0: greedy */
	unsigned draft_layers;  /* 0: 3 */
	unsigned target_layers; /* 0: 5 */
	uint32_t seq_len;       /* both models' context; 0: 512 */
};
/** Write seqs as a synthetic trace of the tiny pair, lookahead FX_K. */
void fx_write_trace(const char *path, struct fx_seq *seqs, size_t n,
                    const struct fx_trace_opts *o);

#endif
