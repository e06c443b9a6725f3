/* trace.h - ahasd trace format 1.0 and 1.1: records, streaming reader,
 * writer.
 *
 * The on-disk format is documented in traces/FORMAT.md. This library is the
 * only code that touches msgpack; everything above it sees plain structs.
 *
 * Conventions: functions return 0 on success or a negative errno-style code;
 * on failure a message naming the file, the byte offset and the field is
 * written to the caller's err buffer.
 */
#ifndef AHASD_TRACE_H
#define AHASD_TRACE_H

#include <stddef.h>
#include <stdint.h>

#define TRACE_FORMAT_VERSION 1 /* the major version */
#define TRACE_FORMAT_MINOR   1 /* the newest minor this library knows */
#define TRACE_MAGIC          "ahasd-trace"
#define TRACE_NAME_MAX       64

/* Limits (traces/FORMAT.md, "Limits"). The reader refuses a file past any
 * of them, and the writer refuses to write one, through the same checks
 * (trace_header_check, trace_model_check, trace_seq_check), so nothing a
 * writer produces is refused on reading. Model bounds are generous sanity
 * bounds (several times the largest published models), the same as the
 * model preset parser's (replay/models.c). */
#define TRACE_MAX_OPS          65536u     /* ops per model */
#define TRACE_MAX_PROV         65536u     /* provenance entries */
#define TRACE_MAX_LOOKAHEAD    65536u     /* K */
#define TRACE_MAX_DIM          (1u << 20) /* dim */
#define TRACE_MAX_HIDDEN_DIM   (1u << 22)
#define TRACE_MAX_LAYERS       4096u
#define TRACE_MAX_HEADS        4096u /* n_heads (n_kv_heads <= n_heads) */
#define TRACE_MAX_VOCAB        (1u << 24)
#define TRACE_MAX_SEQ_LEN      (1u << 24) /* context; prompt_len + n <= it */
#define TRACE_MAX_OP_DIM       (1u << 25) /* op k and n */
#define TRACE_MAX_HEAD_DIM     65536u
#define TRACE_MAX_REPEAT       65536u
#define TRACE_MAX_WEIGHT_BYTES (1ull << 56)
#define TRACE_MAX_DEPTH        32          /* msgpack nesting */
#define TRACE_MAX_BIN          0xffffffffu /* msgpack bin32: bytes per array */
#define TRACE_MAX_RUN          65536u      /* accept_run_max R */
#define TRACE_MAX_TREE_TOKENS  65536u      /* tree_tokens T */

/* Format 1.1 features (traces/FORMAT.md, "Version 1.1"). A header with
 * none is a 1.0 header and is written as version 1. */
enum trace_feature {
	TRACE_F_ACCEPT_RUNS = 1u << 0,  /* accept_run[] instead of accept[] */
	TRACE_F_NO_ENTROPY = 1u << 1,   /* no entropy, top1, continuations */
	TRACE_F_DRAFT_LOOKUP = 1u << 2, /* no draft model: a lookup */
};
#define TRACE_F_ALL \
	(TRACE_F_ACCEPT_RUNS | TRACE_F_NO_ENTROPY | TRACE_F_DRAFT_LOOKUP)
/** The feature's name in the file ("accept_runs", ...), or NULL. */
const char *trace_feature_name(enum trace_feature f);
/** The bit of a feature name, or 0 if unknown. */
uint32_t trace_feature_parse(const char *name, size_t len);

enum trace_op_kind {
	TRACE_OP_GEMM = 0, /* [M x k] x [k x n] weights; MACs M*k*n */
	TRACE_OP_ATTENTION, /* M queries over L keys: heads, kv_heads, head_dim */
	TRACE_OP_NONLINEAR,   /* M*n elements: activation, softmax */
	TRACE_OP_NORM,        /* M*n elements: rmsnorm/layernorm */
	TRACE_OP_ELEMENTWISE, /* M*n elements: residual add, rope, gating */
	TRACE_OP_EMBED,       /* M rows of n read from a k x n table */
	TRACE_OP_KIND_COUNT
};

const char *trace_op_kind_name(enum trace_op_kind kind);
/** @return the kind for a name, or -1 if unknown. */
int trace_op_kind_parse(const char *name);

struct trace_op {
	char name[TRACE_NAME_MAX];
	enum trace_op_kind kind;
	uint32_t k, n;                      /* gemm/embed: k x n; others: n */
	uint32_t heads, kv_heads, head_dim; /* attention only */
	uint32_t repeat; /* times per forward pass (layers) */
};

struct trace_model {
	char name[TRACE_NAME_MAX];
	uint32_t dim, hidden_dim, n_layers, n_heads, n_kv_heads;
	uint32_t vocab_size, seq_len;
	uint32_t weight_bits;  /* bits per weight as captured (32 fp32, 8, 4) */
	uint64_t weight_bytes; /* bytes of weights as captured */
	uint32_t n_ops;
	struct trace_op *ops;
};

struct trace_kv {
	char *key;
	char *value;
};

struct trace_header {
	uint32_t version;     /* 1 (the major version) */
	uint32_t features;    /* TRACE_F_*: 0 is format 1.0, anything else
	                          * is 1.1 (and is written as "1.1") */
	uint32_t lookahead;   /* K: continuation entropies per rejection;
	                          * 0 when the trace has no continuations */
	uint32_t run_max;     /* accept_runs: R, the logged draft length */
	uint32_t tree_tokens; /* accept_runs: T, tokens a full-depth
	                          * verification feeds besides the last one */
	char draft_lookup[TRACE_NAME_MAX]; /* draft_lookup: the method */
	int sampled;                       /* 0 greedy, 1 sampled */
	double temperature;
	double top_p;
	uint64_t seed;
	int synthetic;                    /* 1 if generated, not captured */
	struct trace_model draft, target; /* draft unused with draft_lookup */
	size_t n_prov; /* provenance: free-form string pairs */
	struct trace_kv *prov;
};

/* One generated sequence. Arrays are owned by whoever filled the struct:
 * the reader owns what trace_reader_next() returns (valid until the next
 * call); a writer's caller owns what it passes in. */
struct trace_seq {
	uint32_t id;
	uint32_t prompt_len;
	uint32_t n;           /* generated tokens */
	float *entropy;       /* [n] draft entropy given the true prefix,
	                          * nats; NULL with no_entropy */
	float *top1;          /* [n] draft top-1 probability; NULL with
	                          * no_entropy */
	float *accept;        /* [n] acceptance probability a_p in [0,1];
	                          * with accept_runs the reader fills in
	                          * min(1, accept_run[p]) and a writer ignores
	                          * it */
	uint32_t *accept_run; /* [n] accept_runs: tokens a speculation
	                          * started at p gets accepted (<= run_max);
	                          * NULL otherwise */
	uint32_t *tokens;     /* [n] target token ids, or NULL */
	uint32_t n_cont;      /* positions with a continuation */
	uint32_t *cont_pos;   /* [n_cont] ascending positions with a_p < 1 */
	float *cont_entropy;  /* [n_cont * lookahead] row per cont_pos */
	int32_t *cont_index;  /* reader only: [n] row in cont_entropy or -1 */
};

/** 1 if every draft the replay makes has an entropy and a top-1
 * probability in the trace: true-prefix values and continuation rows (a
 * format 1.0 trace; a 1.1 trace with neither no_entropy nor accept_runs). */
static inline int trace_header_entropy_full(const struct trace_header *h)
{
	return !(h->features & (TRACE_F_NO_ENTROPY | TRACE_F_ACCEPT_RUNS));
}

/** 1 if sequences carry true-prefix entropy and top1 arrays. */
static inline int trace_header_has_entropy(const struct trace_header *h)
{
	return !(h->features & TRACE_F_NO_ENTROPY);
}

/** Entropy of chain token drafted j steps (j >= 1) after a rejected
 * position p: the draft's free-running continuation; clamps to the last
 * recorded step when j > lookahead. Requires cont_index (reader output). */
static inline float trace_seq_cont_entropy(const struct trace_seq *s,
                                           uint32_t lookahead, uint32_t p,
                                           uint32_t j)
{
	int32_t row = s->cont_index[p];
	uint32_t col = (j > lookahead ? lookahead : j) - 1;
	return s->cont_entropy[(size_t)row * lookahead + col];
}

/* ---- reading ---- */
struct trace_reader;

/** Open a trace and read its header. @return 0 or -errno / -EINVAL. */
int trace_reader_open(struct trace_reader **out, const char *path, char *err,
                      size_t errlen);
const struct trace_header *trace_reader_header(const struct trace_reader *r);
/** Next sequence into *seq (arrays owned by the reader until the next call).
 * @return 1 for a sequence, 0 at the end marker, negative on error. */
int trace_reader_next(struct trace_reader *r, struct trace_seq *seq, char *err,
                      size_t errlen);
/** Counts from the end marker (valid after next() returned 0). */
void trace_reader_totals(const struct trace_reader *r, uint64_t *n_seq,
                         uint64_t *n_tokens);
/** Byte offset of the start of the last object returned. */
uint64_t trace_reader_offset(const struct trace_reader *r);
/** SHA-256 (hex) of every byte of the file, computed while it was read:
 * valid once next() has returned 0 on the first pass (the end marker was
 * read and nothing follows it). There is no separate hashing pass, so the
 * hash is of exactly the bytes that were parsed.
 * @return 0, or -EAGAIN when the file has not been read to its end. */
int trace_reader_sha256(const struct trace_reader *r, char hex[65]);
void trace_reader_close(struct trace_reader **r);

/** Rewind to the first sequence (re-reads from the file). A pipe or FIFO
 * cannot be rewound: -ESPIPE with a message saying so. */
int trace_reader_rewind(struct trace_reader *r, char *err, size_t errlen);

/* ---- writing ---- */
struct trace_writer;

/** Create path (written to path.tmp, renamed on close). */
int trace_writer_open(struct trace_writer **out, const char *path,
                      const struct trace_header *h, char *err, size_t errlen);
/** Validate and append one sequence. */
int trace_writer_add(struct trace_writer *w, const struct trace_seq *s,
                     char *err, size_t errlen);
/** Write the end marker, flush, fsync and rename into place. */
int trace_writer_close(struct trace_writer **w, char *err, size_t errlen);
/** Abandon: remove the temporary file. Accepts NULL. */
void trace_writer_abort(struct trace_writer **w);

/* ---- helpers ---- */
/** Check a header: ranges, limits, unique provenance keys, both models.
 * Used by the reader, the writer and importers. */
int trace_header_check(const struct trace_header *h, char *err, size_t errlen);
/** Check a sequence against the header (ranges, continuation coverage,
 * prompt_len + n within the target's seq_len). Used by both reader and
 * writer. Sequence ids are checked for uniqueness by the reader and the
 * writer, which see every sequence. */
int trace_seq_check(const struct trace_header *h, const struct trace_seq *s,
                    char *err, size_t errlen);
/** Check a model description (op kinds, dims non-zero where needed). */
int trace_model_check(const struct trace_model *m, const char *which, char *err,
                      size_t errlen);
/** Set a provenance pair (copies strings; replaces the value of an
 * existing key: O(entries)). */
int trace_header_add_prov(struct trace_header *h, const char *key,
                          const char *value);
/** Append a provenance pair without looking for the key (O(1) amortised);
 * for callers whose keys are known to be unique, such as a parser that
 * rejects duplicates. trace_header_check() refuses a duplicate. */
int trace_header_append_prov(struct trace_header *h, const char *key,
                             const char *value);
const char *trace_header_prov(const struct trace_header *h, const char *key);
/** Free what the header owns (ops, provenance); not the header itself. */
void trace_header_clear(struct trace_header *h);
/* Sequence ids seen so far, each with where it was first seen (a file
 * offset, a line, an ordinal): the reader, the writer and importers refuse
 * a second use of an id. Open addressing, 16 bytes per id. Zero-initialise;
 * release with trace_idset_clear(). */
struct trace_idset {
	struct trace_idslot {
		uint64_t where_plus1;
		uint32_t id;
	} * slot;
	size_t cap, n;
};
/** Add id seen at where. @return 0, 1 if already there (*first = where
 * it was first seen), or -ENOMEM. */
int trace_idset_add(struct trace_idset *s, uint32_t id, uint64_t where,
                    uint64_t *first);
void trace_idset_clear(struct trace_idset *s);
/** Deep copy of a model (ops array). */
int trace_model_copy(struct trace_model *dst, const struct trace_model *src);
/** Fill a model's op list for a llama-style decoder (rmsnorm, q/k/v/o,
 * rope, attention, swiglu ffn, final norm, classifier) from its dims.
 * Used by synthetic traces, presets and capture alike. */
int trace_model_llama_ops(struct trace_model *m);

#endif
