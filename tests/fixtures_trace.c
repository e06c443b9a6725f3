/* fixtures_trace.c - hand-built models, sequences and traces; see
 * fixtures.h. */
#include "fixtures.h"

#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include "trace.h"

void fx_llama_model(struct trace_model *m, const char *name, struct fx_dims d)
{
	memset(m, 0, sizeof *m);
	snprintf(m->name, sizeof m->name, "%s", name);
	m->dim = d.dim;
	m->hidden_dim = d.hidden_dim;
	m->n_layers = d.n_layers;
	m->n_heads = d.n_heads;
	m->n_kv_heads = d.n_kv_heads;
	m->vocab_size = d.vocab_size;
	m->seq_len = d.seq_len;
	m->weight_bits = 8;
	cr_assert_eq(trace_model_llama_ops(m), 0, "llama ops of %s", name);
}

void fx_tiny_model(struct trace_model *m, const char *name, uint32_t layers)
{
	fx_llama_model(m, name,
	               (struct fx_dims){ 64, 172, layers, 8, 4, 512, 512 });
}

void fx_seq_sampled(struct fx_seq *b, uint32_t id, const float *a, uint32_t n)
{
	uint32_t nc = 0;

	cr_assert_leq(n, FX_MAX_N);
	memset(b, 0, sizeof *b);
	for (uint32_t p = 0; p < n; p++) {
		b->acc[p] = a[p];
		b->ent[p] = 0.5f + 2.0f * (1.0f - a[p]);
		b->top1[p] = 0.9f - 0.6f * (1.0f - a[p]);
		if (a[p] < 1.0f) {
			b->cpos[nc] = p;
			for (uint32_t j = 0; j < FX_K; j++)
				b->cont[nc * FX_K + j] = 3.0f + 0.1f * (float)j;
			nc++;
		}
	}
	b->s = (struct trace_seq){ .id = id,
		                   .prompt_len = FX_P_LEN,
		                   .n = n,
		                   .entropy = b->ent,
		                   .top1 = b->top1,
		                   .accept = b->acc,
		                   .n_cont = nc,
		                   .cont_pos = b->cpos,
		                   .cont_entropy = b->cont };
}

void fx_seq_greedy(struct fx_seq *b, uint32_t id, const int *accept, uint32_t n)
{
	float a[FX_MAX_N];

	cr_assert_leq(n, FX_MAX_N);
	for (uint32_t p = 0; p < n; p++)
		a[p] = (float)accept[p];
	fx_seq_sampled(b, id, a, n);
}

void fx_write_trace(const char *path, struct fx_seq *seqs, size_t n,
                    const struct fx_trace_opts *o)
{
	static const struct fx_trace_opts greedy;
	const struct fx_trace_opts *t = o ? o : &greedy;
	struct trace_header h = { .version = TRACE_FORMAT_VERSION,
		                  .lookahead = FX_K,
		                  .top_p = 1.0,
		                  .sampled = t->sampled,
		                  .temperature = t->sampled ? 1.0 : 0.0,
		                  .synthetic = 1 };
	struct trace_writer *w = NULL;
	char err[512];

	const uint32_t ctx = t->seq_len ? t->seq_len : 512;

	fx_llama_model(&h.draft, "tiny-draft",
	               (struct fx_dims){ 64, 172,
	                                 t->draft_layers ? t->draft_layers : 3,
	                                 8, 4, 512, ctx });
	fx_llama_model(&h.target, "tiny-target",
	               (struct fx_dims){
	                       64, 172, t->target_layers ? t->target_layers : 5,
	                       8, 4, 512, ctx });
	cr_assert_eq(trace_header_add_prov(&h, "tool", "tests/fixtures"), 0);
	cr_assert_eq(trace_writer_open(&w, path, &h, err, sizeof err), 0, "%s",
	             err);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(trace_writer_add(w, &seqs[i].s, err, sizeof err),
		             0, "%s", err);
	cr_assert_eq(trace_writer_close(&w, err, sizeof err), 0, "%s", err);
	trace_header_clear(&h);
}
