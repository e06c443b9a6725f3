/* model_ops.h - operator lists of the decoder architectures. */
#ifndef AHASD_MODEL_OPS_H
#define AHASD_MODEL_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "trace.h"

/* The shape an operator list follows from. */
struct model_shape {
	uint32_t dim, ffn_dim, n_layers, n_heads, n_kv_heads, head_dim;
	uint32_t vocab_size, max_positions;
};

/* OPT decoder and PaLM block into o (room for 24 ops). @return the count. */
size_t model_ops_opt(struct trace_op *o, const struct model_shape *s);
size_t model_ops_palm(struct trace_op *o, const struct model_shape *s);

/* trace_model_llama_ops() (declared in trace.h) is defined here too. */

#endif
