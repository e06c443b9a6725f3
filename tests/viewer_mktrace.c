/* viewer_mktrace.c - write the hand-built traces the viewer tests replay.
 *
 *   viewer-mktrace DIR     writes DIR/hand.trace and DIR/demo.trace
 *
 * hand.trace: one greedy sequence of 12 tokens whose draft is right
 * everywhere except at position 6 (a_6 = 0). Replayed with drafter fixed
 * (k = 4) on the single-device preset gpu, under sync or async, the engine
 * runs (see replay/engine.c, and the same case in tests/test_engine_hand.c):
 *   batch 1: drafts p0..p3 (accepted), verify accepts all     -> C = 5
 *   batch 2: drafts p5 (accepted), p6 (wrong), p7, p8 (wasted);
 *            verify rejects at p6                               -> C = 7
 *   batch 3: drafts p7..p10 (accepted), verify accepts all      -> C = 12
 * On one device every task starts when the previous one ends, so there is
 * no idle, switch or transfer event: 12 draft + 3 verify = 15 events.
 *
 * demo.trace: four greedy sequences of 40 tokens with a fixed pseudo-random
 * acceptance pattern (about 3 in 4 drafts right) over two llama2.c-sized
 * models, for a report that looks like a real one.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trace.h"

#define LOOKAHEAD 4
#define MAX_N     64

struct seqbuf {
	float ent[MAX_N], top1[MAX_N], acc[MAX_N], cont[MAX_N * LOOKAHEAD];
	uint32_t cpos[MAX_N];
	struct trace_seq s;
};

static void make_seq(struct seqbuf *b, uint32_t id, uint32_t prompt,
                     const int *accept, uint32_t n)
{
	uint32_t nc = 0;

	memset(b, 0, sizeof *b);
	for (uint32_t p = 0; p < n; p++) {
		b->acc[p] = (float)accept[p];
		b->ent[p] = accept[p] ? 0.4f + 0.05f * (float)(p % 5) : 2.6f;
		b->top1[p] = accept[p] ? 0.9f : 0.3f;
		if (!accept[p]) {
			b->cpos[nc] = p;
			for (uint32_t j = 0; j < LOOKAHEAD; j++)
				b->cont[nc * LOOKAHEAD + j] = 3.0f +
				                              0.1f * (float)j;
			nc++;
		}
	}
	b->s = (struct trace_seq){ .id = id,
		                   .prompt_len = prompt,
		                   .n = n,
		                   .entropy = b->ent,
		                   .top1 = b->top1,
		                   .accept = b->acc,
		                   .n_cont = nc,
		                   .cont_pos = b->cpos,
		                   .cont_entropy = b->cont };
}

static int model(struct trace_model *m, const char *name, uint32_t dim,
                 uint32_t hidden, uint32_t layers, uint32_t heads,
                 uint32_t vocab)
{
	memset(m, 0, sizeof *m);
	snprintf(m->name, sizeof m->name, "%s", name);
	m->dim = dim;
	m->hidden_dim = hidden;
	m->n_layers = layers;
	m->n_heads = heads;
	m->n_kv_heads = heads;
	m->vocab_size = vocab;
	m->seq_len = 1024;
	m->weight_bits = 8;
	return trace_model_llama_ops(m);
}

static int write_trace(const char *path, struct trace_header *h,
                       struct seqbuf *seqs, size_t n)
{
	char err[1024];
	struct trace_writer *w = NULL;
	int r;

	r = trace_writer_open(&w, path, h, err, sizeof err);
	for (size_t i = 0; r == 0 && i < n; i++)
		r = trace_writer_add(w, &seqs[i].s, err, sizeof err);
	if (r == 0)
		r = trace_writer_close(&w, err, sizeof err);
	if (r < 0) {
		trace_writer_abort(&w);
		fprintf(stderr, "viewer-mktrace: %s\n", err);
	}
	return r;
}

int main(int argc, char **argv)
{
	static struct seqbuf seqs[4];
	struct trace_header h;
	char path[4096];
	int acc[MAX_N];
	uint32_t x = 12345;
	int r;

	if (argc != 2) {
		fputs("usage: viewer-mktrace DIR\n", stderr);
		return 2;
	}

	memset(&h, 0, sizeof h);
	h.version = TRACE_FORMAT_VERSION;
	h.lookahead = LOOKAHEAD;
	h.top_p = 1.0;
	h.synthetic = 1;
	r = model(&h.draft, "hand-draft", 64, 172, 3, 8, 512);
	r |= model(&h.target, "hand-target", 64, 172, 5, 8, 512);
	r |= trace_header_add_prov(&h, "tool", "viewer-mktrace");
	if (r) {
		fputs("viewer-mktrace: building the hand models failed\n",
		      stderr);
		return 1;
	}
	for (int p = 0; p < 12; p++)
		acc[p] = p != 6;
	make_seq(&seqs[0], 0, 16, acc, 12);
	snprintf(path, sizeof path, "%s/hand.trace", argv[1]);
	r = write_trace(path, &h, seqs, 1);
	trace_header_clear(&h);
	if (r < 0)
		return 1;

	memset(&h, 0, sizeof h);
	h.version = TRACE_FORMAT_VERSION;
	h.lookahead = LOOKAHEAD;
	h.top_p = 1.0;
	h.synthetic = 1;
	r = model(&h.draft, "demo-15m", 288, 768, 6, 6, 32000);
	r |= model(&h.target, "demo-110m", 768, 2048, 12, 12, 32000);
	r |= trace_header_add_prov(&h, "tool", "viewer-mktrace");
	if (r) {
		fputs("viewer-mktrace: building the demo models failed\n",
		      stderr);
		return 1;
	}
	for (uint32_t s = 0; s < 4; s++) {
		for (int p = 0; p < 40; p++) {
			x = x * 1103515245u + 12345u;
			acc[p] = ((x >> 16) & 3) != 0; /* 3 in 4 */
		}
		make_seq(&seqs[s], s, 24 + 8 * s, acc, 40);
	}
	snprintf(path, sizeof path, "%s/demo.trace", argv[1]);
	r = write_trace(path, &h, seqs, 4);
	trace_header_clear(&h);
	return r < 0 ? 1 : 0;
}
