/* model_ops.c - the operator lists of the decoder architectures: LLaMA
 * (trace_model_llama_ops, also what captured traces record), OPT and
 * PaLM (model presets). The one place an architecture's operators are
 * written down. */
#include "model_ops.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void op_set(struct trace_op *op, const char *name,
                   enum trace_op_kind kind, uint32_t k, uint32_t n,
                   uint32_t repeat)
{
	memset(op, 0, sizeof *op);
	snprintf(op->name, sizeof op->name, "%s", name);
	op->kind = kind;
	op->k = k;
	op->n = n;
	op->repeat = repeat;
}

static void op_attention(struct trace_op *op, const struct model_shape *s)
{
	op_set(op, "attention", TRACE_OP_ATTENTION, 0, 0, s->n_layers);
	op->heads = s->n_heads;
	op->kv_heads = s->n_kv_heads;
	op->head_dim = s->head_dim;
}

/* OPT decoder (facebook/opt-*: do_layer_norm_before, relu). */
size_t model_ops_opt(struct trace_op *o, const struct model_shape *s)
{
	const uint32_t d = s->dim, f = s->ffn_dim, L = s->n_layers;
	const uint32_t q = s->n_heads * s->head_dim;
	const uint32_t kv = s->n_kv_heads * s->head_dim;
	struct trace_op *p = o;
	op_set(p++, "tok_embedding", TRACE_OP_EMBED, s->vocab_size, d, 1);
	op_set(p++, "pos_embedding", TRACE_OP_EMBED, s->max_positions + 2, d,
	       1);
	op_set(p++, "embed_add", TRACE_OP_ELEMENTWISE, 0, d, 1);
	op_set(p++, "attn_layernorm", TRACE_OP_NORM, 0, d, L);
	op_set(p++, "q_proj", TRACE_OP_GEMM, d, q, L);
	op_set(p++, "k_proj", TRACE_OP_GEMM, d, kv, L);
	op_set(p++, "v_proj", TRACE_OP_GEMM, d, kv, L);
	op_attention(p++, s);
	op_set(p++, "out_proj", TRACE_OP_GEMM, q, d, L);
	op_set(p++, "attn_residual", TRACE_OP_ELEMENTWISE, 0, d, L);
	op_set(p++, "ffn_layernorm", TRACE_OP_NORM, 0, d, L);
	op_set(p++, "fc1", TRACE_OP_GEMM, d, f, L);
	op_set(p++, "relu", TRACE_OP_NONLINEAR, 0, f, L);
	op_set(p++, "fc2", TRACE_OP_GEMM, f, d, L);
	op_set(p++, "ffn_residual", TRACE_OP_ELEMENTWISE, 0, d, L);
	op_set(p++, "final_layernorm", TRACE_OP_NORM, 0, d, 1);
	op_set(p++, "lm_head", TRACE_OP_GEMM, d, s->vocab_size, 1);
	return (size_t)(p - o);
}

/* PaLM block (Chowdhery et al. 2022, Section 2): parallel attention and
 * FFN from one LayerNorm, multi-query K/V, RoPE, SwiGLU, no biases. */
size_t model_ops_palm(struct trace_op *o, const struct model_shape *s)
{
	const uint32_t d = s->dim, f = s->ffn_dim, L = s->n_layers;
	const uint32_t q = s->n_heads * s->head_dim;
	const uint32_t kv = s->n_kv_heads * s->head_dim;
	struct trace_op *p = o;
	op_set(p++, "tok_embedding", TRACE_OP_EMBED, s->vocab_size, d, 1);
	op_set(p++, "layernorm", TRACE_OP_NORM, 0, d, L);
	op_set(p++, "wq", TRACE_OP_GEMM, d, q, L);
	op_set(p++, "wk", TRACE_OP_GEMM, d, kv, L);
	op_set(p++, "wv", TRACE_OP_GEMM, d, kv, L);
	op_set(p++, "rope", TRACE_OP_ELEMENTWISE, 0, q + kv, L);
	op_attention(p++, s);
	op_set(p++, "wo", TRACE_OP_GEMM, q, d, L);
	op_set(p++, "w1_gate", TRACE_OP_GEMM, d, f, L);
	op_set(p++, "w3_up", TRACE_OP_GEMM, d, f, L);
	op_set(p++, "swish", TRACE_OP_NONLINEAR, 0, f, L);
	op_set(p++, "gate_mul", TRACE_OP_ELEMENTWISE, 0, f, L);
	op_set(p++, "w2_down", TRACE_OP_GEMM, f, d, L);
	/* x + attn + mlp: two adds of width d */
	op_set(p++, "residual", TRACE_OP_ELEMENTWISE, 0, 2 * d, L);
	op_set(p++, "final_layernorm", TRACE_OP_NORM, 0, d, 1);
	op_set(p++, "lm_head", TRACE_OP_GEMM, d, s->vocab_size, 1);
	return (size_t)(p - o);
}

int trace_model_llama_ops(struct trace_model *m)
{
	enum { N_OPS = 18 };
	struct trace_op *ops, *o;
	uint32_t dim, hid, L, kv_dim, vocab;
	uint64_t weights;

	if (!m || m->dim == 0 || m->hidden_dim == 0 || m->n_layers == 0 ||
	    m->n_heads == 0 || m->n_kv_heads == 0 || m->vocab_size == 0 ||
	    m->dim % m->n_heads != 0 || m->n_heads % m->n_kv_heads != 0)
		return -EINVAL;
	dim = m->dim;
	hid = m->hidden_dim;
	L = m->n_layers;
	vocab = m->vocab_size;
	kv_dim = (uint32_t)((uint64_t)dim * m->n_kv_heads / m->n_heads);

	ops = calloc(N_OPS, sizeof *ops);
	if (!ops)
		return -ENOMEM;
	o = ops;
	op_set(o++, "tok_embedding", TRACE_OP_EMBED, vocab, dim, 1);
	op_set(o++, "attn_norm", TRACE_OP_NORM, 0, dim, L);
	op_set(o++, "wq", TRACE_OP_GEMM, dim, dim, L);
	op_set(o++, "wk", TRACE_OP_GEMM, dim, kv_dim, L);
	op_set(o++, "wv", TRACE_OP_GEMM, dim, kv_dim, L);
	op_set(o++, "rope", TRACE_OP_ELEMENTWISE, 0, dim + kv_dim, L);
	op_set(o, "attention", TRACE_OP_ATTENTION, 0, 0, L);
	o->heads = m->n_heads;
	o->kv_heads = m->n_kv_heads;
	o->head_dim = dim / m->n_heads;
	o++;
	op_set(o++, "wo", TRACE_OP_GEMM, dim, dim, L);
	op_set(o++, "attn_residual", TRACE_OP_ELEMENTWISE, 0, dim, L);
	op_set(o++, "ffn_norm", TRACE_OP_NORM, 0, dim, L);
	op_set(o++, "w1", TRACE_OP_GEMM, dim, hid, L);
	op_set(o++, "w3", TRACE_OP_GEMM, dim, hid, L);
	op_set(o++, "silu", TRACE_OP_NONLINEAR, 0, hid, L);
	op_set(o++, "gate_mul", TRACE_OP_ELEMENTWISE, 0, hid, L);
	op_set(o++, "w2", TRACE_OP_GEMM, hid, dim, L);
	op_set(o++, "ffn_residual", TRACE_OP_ELEMENTWISE, 0, dim, L);
	op_set(o++, "final_norm", TRACE_OP_NORM, 0, dim, 1);
	op_set(o++, "classifier", TRACE_OP_GEMM, dim, vocab, 1);

	weights = 0;
	for (const struct trace_op *p = ops; p < o; p++)
		if (p->kind == TRACE_OP_GEMM || p->kind == TRACE_OP_EMBED)
			weights += (uint64_t)p->k * p->n * p->repeat;
	if (m->weight_bits == 0)
		m->weight_bits = 8;
	free(m->ops);
	m->ops = ops;
	m->n_ops = (uint32_t)(o - ops);
	m->weight_bytes = (weights * m->weight_bits + 7) / 8;
	return 0;
}
