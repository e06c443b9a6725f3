/* llm.h - fp32 inference for llama2.c checkpoints (legacy version-0 header),
 * the llama2.c tokenizer, and self-speculative draft variants (skipped layers,
 * group-wise int8/int4 quantized weights).
 *
 * Errors: functions return 0 or a negative errno-style code and write a
 * message naming the file into err.
 */
#ifndef AHASD_LLM_H
#define AHASD_LLM_H

#include <stddef.h>
#include <stdint.h>

#include "trace.h"

#define LLM_MAX_LAYERS  256
#define LLM_QUANT_GROUP 32 /* elements per quantization group (along rows) */
#define LLM_BOS         1
#define LLM_BLOCK_ROWS  32 /* output rows a matmul computes side by side */

struct llm_config {
	int32_t dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size,
	        seq_len;
	int shared_classifier;
};

/* Weights point into one owned fp32 buffer (file copy, or dequantized copy). */
struct llm_weights {
	const float *tok_emb; /* vocab x dim */
	const float *rms_att; /* L x dim */
	const float *wq, *wk, *wv, *wo;
	const float *rms_ffn;
	const float *w1, *w2, *w3;
	const float *rms_final;
	const float *wcls; /* vocab x dim */
};

/* The matrices again, each as blocks of LLM_BLOCK_ROWS rows stored column
 * by column (rows past the end zero), so that one pass over the input
 * feeds that many dot products at once; layer l of a stack starts l times
 * the padded matrix size further on. Rebuilt whenever the weights change. */
struct llm_packed {
	const float *wq, *wk, *wv, *wo, *w1, *w2, *w3, *wcls;
};

/* Operator recorder: ops are registered by name while a forward pass runs;
 * each call of a named op in one pass adds 1 to its repeat count. */
struct llm_oprec {
	struct trace_op ops[64];
	uint32_t n;
	int overflow;
};

struct llm_model {
	struct llm_config cfg;
	struct llm_weights w;
	float *data; /* owned: all weights (fp32) */
	size_t n_floats;
	float *packed; /* owned: the matrices of w as llm_packed; NULL
	                         * when pk points into another model's (see
	                         * llm_share_prefix()) */
	struct llm_packed pk;
	unsigned char active[LLM_MAX_LAYERS]; /* 1 = layer executed */
	int n_active;
	int weight_bits; /* 32, 8 or 4 */
	/* run state */
	float *x, *xb, *xb2, *hb, *hb2, *q, *k, *att, *logits;
	float *hexp; /* hidden_dim: expf(-hb) for SiLU */
	/* keys n_layers x n_kv_heads x head_size x kv_stride (transposed: one
	 * column per position, kv_stride = seq_len rounded up to a whole
	 * LLM_BLOCK_ROWS), values n_layers x seq_len x kv_dim */
	float *key_cache, *value_cache;
	size_t kv_stride;
	float *rope; /* seq_len x head_size/2 x {cos, sin} */
	/* teacher-forced reuse, see llm_share_prefix() */
	int n_shared;    /* draft: leading layers taken from the target */
	int snap_layers; /* target: x is kept after this many layers */
	float *x_snap;   /* target: ... here */
	int last_token, last_pos; /* of the last forward (pos -1: none yet) */
	struct llm_oprec *rec; /* when non-NULL, the next forward records ops */
};

/** Load a llama2.c checkpoint (legacy 7-int32 header only).
 * @return 0, -ENOENT/-EIO for file errors, -EINVAL for a bad or unsupported
 * header or a truncated/oversized file. */
int llm_load(struct llm_model **out, const char *path, char *err,
             size_t errlen);
void llm_free(struct llm_model **m);

/** A model with m's weights (read from m's, which must outlive it: the
 * same dims, layers, quantization and shared prefix) and a state of its
 * own: KV cache, activations, logits. For several sequences side by side
 * (llm_forward_batch with slot -1).
 * @return 0 or -ENOMEM. */
int llm_clone(struct llm_model **out, const struct llm_model *m);

/** Skip layers: list of 1-based layer numbers, e.g. "3" or "2,4".
 * @return 0 or -EINVAL (bad list, out-of-range layer, all layers skipped). */
int llm_skip_layers(struct llm_model *m, const char *list, char *err,
                    size_t errlen);
/** Quantize every matrix (embedding, q/k/v/o, ffn, classifier) group-wise
 * symmetric to bits (8 or 4) and replace it by its dequantized fp32 values.
 * Norm weights stay fp32. */
int llm_quantize(struct llm_model *m, int bits, char *err, size_t errlen);

/** One decoder step: feed token at pos, return logits (vocab_size floats,
 * owned by the model, valid until the next call). */
const float *llm_forward(struct llm_model *m, int token, int pos);

/** Let draft reuse target's work on the true prefix. A forward of the same
 * token at the same position, over the same KV rows, through layers with
 * bit-identical weights computes bit-identical activations and KV rows:
 * for a draft derived from the target by skipping layers, every layer
 * before the first skipped one. Counts those leading layers (both models
 * run them, same shapes, same embedding and weights by memcmp) and links
 * the two so that llm_forward_after() copies them instead.
 * When every layer the draft runs and its classifier hold the target's
 * weights, the draft also drops its packed copy of the matrices and reads
 * the target's (one copy in the cache instead of two): the target must then
 * outlive the draft's forwards.
 * @return the number of shared layers; 0 (quantized or other weights)
 * makes llm_forward_after() a plain llm_forward(). */
int llm_share_prefix(struct llm_model *target, struct llm_model *draft);

/** The draft's step for the token and position of the target's last
 * llm_forward(), bit-identical to llm_forward(draft, token, pos): the
 * shared layers' output and KV rows are copied from the target, the rest
 * is computed. Only on the true prefix: every earlier position must have
 * gone through llm_forward_after() (or an llm_forward() of the same
 * token) since, so the draft's KV rows of the shared layers are the
 * target's; rows a free-running draft wrote past pos are rewritten before
 * they are read, as with llm_forward(). */
const float *llm_forward_after(struct llm_model *draft,
                               const struct llm_model *target);

/* ---- free-running streams stepped together ----
 *
 * A continuation is the draft running on its own tokens from a position
 * of the true prefix. Many of them (from different positions) step
 * together: each layer's matrices are read once for all of them. Stream
 * e of a step reads the positions before its prefix from the model's own
 * KV cache (the true prefix, which a batch never writes) and keeps its
 * rows from the prefix on in its slot of the batch (at most `rows`).
 * Every stream's logits are bit-identical to llm_forward() of the same
 * tokens at the same positions over the same cache rows. */
struct llm_batch {
	int cap, rows;  /* slots, private KV rows per slot */
	size_t kstride; /* private keys: rows rounded up to a block */
	float *x, *xb, *xb2, *hb, *hb2, *hexp, *q, *k, *v; /* cap x each */
	float *att;           /* scratch of one stream's attention */
	float *logits;        /* cap x vocab_size: stream e's at e * V */
	float *keys, *values; /* cap x n_layers x private rows */
};

/* Stream e of a step: feed token at pos.
 * - slot >= 0, a free-running stream: positions < prefix come from the
 *   cache of kv (NULL: the model stepped), prefix .. pos from the slot's
 *   rows (pos - prefix < rows; rows prefix .. pos - 1 written by the
 *   slot's earlier steps).
 * - slot = -1, a teacher-forced stream: the step is llm_forward(kv,
 *   token, pos) (kv a clone of the model stepped, llm_clone()): it writes
 *   the row pos of kv's cache and reads rows 0 .. pos; with after, it is
 *   llm_forward_after(kv, after), after's last forward being of this
 *   token and position (every stream of the step then has one). */
struct llm_step {
	int slot, token, pos, prefix;
	struct llm_model *kv;
	const struct llm_model *after;
};

/** @return 0, -EINVAL (cap or rows < 1) or -ENOMEM. */
int llm_batch_init(struct llm_batch *b, const struct llm_model *m, int cap,
                   int rows);
void llm_batch_free(struct llm_batch *b);
/** One forward of each of the n (1 .. cap) streams; their slots must be
 * distinct. Logits of stream e at b->logits + e * vocab_size. */
void llm_forward_batch(struct llm_model *m, struct llm_batch *b,
                       const struct llm_step *st, int n);

/** Bytes of weights the executed forward reads as stored (quantized weights
 * at their bit width plus one fp32 scale per group; norms fp32). */
uint64_t llm_weight_bytes(const struct llm_model *m);

/** Run one forward at pos 0 recording ops, and fill a trace_model. The KV
 * cache row 0 is overwritten (harmless before a capture). */
int llm_describe(struct llm_model *m, const char *name, struct trace_model *tm,
                 char *err, size_t errlen);

/* ---- tokenizer (llama2.c tokenizer.bin format) ---- */
struct llm_tokenizer {
	char **vocab;
	float *scores;
	int vocab_size;
	unsigned max_token_length;
	struct tok_index *sorted; /* for encoding */
	char byte_pieces[512];
};

/** Load a tokenizer; it must hold exactly vocab_size tokens.
 * @return 0, -ENOENT/-EIO, or -EINVAL (truncated, vocab mismatch). */
int llm_tokenizer_load(struct llm_tokenizer **out, const char *path,
                       int vocab_size, char *err, size_t errlen);
void llm_tokenizer_free(struct llm_tokenizer **t);
/** BPE-encode text with a leading BOS into tokens (capacity strlen(text)+3).
 * @return number of tokens or negative errno. */
int llm_encode(const struct llm_tokenizer *t, const char *text, int *tokens,
               size_t cap);
/** Piece for token after prev (strips the space after BOS, decodes <0xXX>). */
const char *llm_decode(const struct llm_tokenizer *t, int prev, int token);

/* ---- distributions ---- */
/** probs = softmax(logits / T) (T > 0), in place-safe (probs may == logits
 * copy); n entries. */
void llm_softmax(float *probs, const float *logits, int n, double temperature);
/** Keep the smallest set of most likely tokens whose mass reaches top_p
 * (ties broken by lower token id), zero the rest and renormalize.
 * idx: scratch of n ints. No-op when top_p >= 1. */
void llm_top_p(float *probs, int n, double top_p, int *idx);
int llm_argmax(const float *v, int n);
/** llm_argmax(llm_softmax(logits, n, 1)): the greedy token, without the
 * softmax where the largest logit leads the next by more than 2^-20 (the
 * probabilities keep the order of the logits, and then no other can round
 * to the largest); probs: scratch of n floats. */
int llm_greedy_token(const float *logits, int n, float *probs);
/** Entropy in nats. */
double llm_entropy(const float *p, int n);
/** Sample index from probs with u in [0,1). */
int llm_sample(const float *p, int n, double u);

/* counter-based RNG: uniform in [0,1) from (seed, a, b, stream) */
double llm_rng_uniform(uint64_t seed, uint64_t a, uint64_t b, uint64_t stream);

#endif
