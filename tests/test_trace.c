/* test_trace.c - trace format v1: writer -> reader round trips, streaming,
 * llama op lists, and every class of malformed file the reader must reject.
 *
 * Malformed files are real msgpack files: a valid file is written with the
 * library's writer, then re-packed record by record with msgpack-c here,
 * replacing, dropping or adding one field (or cutting the file).
 */
#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <msgpack.h>

#include "fixtures.h"
#include "trace.h"

/* ------------------------------------------------------------------------ */
/* fixture: a fresh temp dir per test                                         */

static void setup(void)
{
	fx_tmpdir_make("trace");
}

static bool file_exists(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0;
}

/* Temporary files of a writer of NAME in the test folder: NAME.*.tmp */
static int count_tmp(const char *name)
{
	DIR *d = opendir(fx_dir);
	struct dirent *e;
	const size_t n = strlen(name);
	int count = 0;

	cr_assert_not_null(d);
	while ((e = readdir(d))) {
		const size_t l = strlen(e->d_name);

		count += l > n + 4 && strncmp(e->d_name, name, n) == 0 &&
		         e->d_name[n] == '.' &&
		         strcmp(e->d_name + l - 4, ".tmp") == 0;
	}
	closedir(d);
	return count;
}

/* ------------------------------------------------------------------------ */
/* hand-built trace                                                          */

#define K 3

/* the tiny pair's model (fixtures.h), 5 layers */
static void tiny_model(struct trace_model *m, const char *name)
{
	fx_tiny_model(m, name, 5);
}

static void make_header(struct trace_header *h, int sampled)
{
	memset(h, 0, sizeof *h);
	h->version = TRACE_FORMAT_VERSION;
	h->lookahead = K;
	h->sampled = sampled;
	h->temperature = sampled ? 0.7 : 0.0;
	h->top_p = sampled ? 0.95 : 1.0;
	h->seed = 0xfedcba9876543210ull;
	h->synthetic = 0;
	tiny_model(&h->draft, "tiny-draft");
	tiny_model(&h->target, "tiny-target");
	h->target.n_layers = 6; /* differ from the draft */
	cr_assert_eq(trace_model_llama_ops(&h->target), 0);
	cr_assert_eq(trace_header_add_prov(h, "tool", "test_trace"), 0);
	cr_assert_eq(trace_header_add_prov(h, "prompt_source", "hand-built"),
	             0);
	cr_assert_eq(trace_header_add_prov(h, "draft_sha256", "00ff"), 0);
}

/* Sequence A (id 7): 5 tokens, rejections at 2 and 4.
 *   accept   1 1 0 1 0  -> cont_pos {2, 4}, cont_index {-1,-1,0,-1,1}
 *   cont rows: pos 2 -> {1.5, 2.25, 3.0}, pos 4 -> {0.5, 0.0, 7.75} */
static float a_ent[5] = { 0.0f, 0.1f, 2.5f, 1e-30f, 10.375f };
static float a_top1[5] = { 1.0f, 0.9f, 0.125f, 0.999999f, 0.0f };
static float a_acc[5] = { 1, 1, 0, 1, 0 };
static uint32_t a_tok[5] = { 0, 1, 31999, 4294967295u, 42 };
static uint32_t a_cpos[2] = { 2, 4 };
static float a_cent[2 * K] = { 1.5f, 2.25f, 3.0f, 0.5f, 0.0f, 7.75f };
/* Sequence B (id 8): one accepted token, no tokens, no continuation. */
static float b_ent[1] = { 0.25f }, b_top1[1] = { 0.75f }, b_acc[1] = { 1 };
/* Sequence C (id 9): three rejections. */
static float c_ent[3] = { 3.0f, 2.0f, 1.0f }, c_top1[3] = { 0.1f, 0.2f, 0.3f };
static float c_acc[3] = { 0, 0, 0 };
static uint32_t c_cpos[3] = { 0, 1, 2 };
static float c_cent[3 * K] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };

static struct trace_seq seq_a(void)
{
	return (struct trace_seq){ .id = 7,
		                   .prompt_len = 11,
		                   .n = 5,
		                   .entropy = a_ent,
		                   .top1 = a_top1,
		                   .accept = a_acc,
		                   .tokens = a_tok,
		                   .n_cont = 2,
		                   .cont_pos = a_cpos,
		                   .cont_entropy = a_cent };
}

static struct trace_seq seq_b(void)
{
	return (struct trace_seq){ .id = 8,
		                   .prompt_len = 0,
		                   .n = 1,
		                   .entropy = b_ent,
		                   .top1 = b_top1,
		                   .accept = b_acc };
}

static struct trace_seq seq_c(void)
{
	return (struct trace_seq){ .id = 9,
		                   .prompt_len = 3,
		                   .n = 3,
		                   .entropy = c_ent,
		                   .top1 = c_top1,
		                   .accept = c_acc,
		                   .n_cont = 3,
		                   .cont_pos = c_cpos,
		                   .cont_entropy = c_cent };
}

/* Writes A, B, C (greedy, K = 3): 3 sequences, 9 tokens. */
static void write_abc(const char *path)
{
	struct trace_header h;
	struct trace_writer *w = NULL;
	struct trace_seq s;
	char err[512] = "";

	make_header(&h, 0);
	cr_assert_eq(trace_writer_open(&w, path, &h, err, sizeof err), 0, "%s",
	             err);
	s = seq_a();
	cr_assert_eq(trace_writer_add(w, &s, err, sizeof err), 0, "%s", err);
	s = seq_b();
	cr_assert_eq(trace_writer_add(w, &s, err, sizeof err), 0, "%s", err);
	s = seq_c();
	cr_assert_eq(trace_writer_add(w, &s, err, sizeof err), 0, "%s", err);
	cr_assert_eq(trace_writer_close(&w, err, sizeof err), 0, "%s", err);
	cr_assert_null(w);
	trace_header_clear(&h);
}

static void assert_seq_eq(const struct trace_seq *got,
                          const struct trace_seq *want)
{
	cr_assert_eq(got->id, want->id);
	cr_assert_eq(got->prompt_len, want->prompt_len);
	cr_assert_eq(got->n, want->n);
	cr_assert_eq(got->n_cont, want->n_cont);
	/* bit-exact */
	cr_assert_eq(memcmp(got->entropy, want->entropy, want->n * 4), 0);
	cr_assert_eq(memcmp(got->top1, want->top1, want->n * 4), 0);
	cr_assert_eq(memcmp(got->accept, want->accept, want->n * 4), 0);
	if (want->tokens) {
		cr_assert_not_null(got->tokens);
		cr_assert_eq(memcmp(got->tokens, want->tokens, want->n * 4), 0);
	} else {
		cr_assert_null(got->tokens);
	}
	if (want->n_cont) {
		cr_assert_eq(
		        memcmp(got->cont_pos, want->cont_pos, want->n_cont * 4),
		        0);
		cr_assert_eq(memcmp(got->cont_entropy, want->cont_entropy,
		                    (size_t)want->n_cont * K * 4),
		             0);
	}
}

static void assert_model_eq(const struct trace_model *a,
                            const struct trace_model *b)
{
	cr_assert_str_eq(a->name, b->name);
	cr_assert_eq(a->dim, b->dim);
	cr_assert_eq(a->hidden_dim, b->hidden_dim);
	cr_assert_eq(a->n_layers, b->n_layers);
	cr_assert_eq(a->n_heads, b->n_heads);
	cr_assert_eq(a->n_kv_heads, b->n_kv_heads);
	cr_assert_eq(a->vocab_size, b->vocab_size);
	cr_assert_eq(a->seq_len, b->seq_len);
	cr_assert_eq(a->weight_bits, b->weight_bits);
	cr_assert_eq(a->weight_bytes, b->weight_bytes);
	cr_assert_eq(a->n_ops, b->n_ops);
	for (uint32_t i = 0; i < a->n_ops; i++) {
		const struct trace_op *x = &a->ops[i], *y = &b->ops[i];

		cr_assert_str_eq(x->name, y->name);
		cr_assert_eq(x->kind, y->kind);
		cr_assert_eq(x->k, y->k);
		cr_assert_eq(x->n, y->n);
		cr_assert_eq(x->heads, y->heads);
		cr_assert_eq(x->kv_heads, y->kv_heads);
		cr_assert_eq(x->head_dim, y->head_dim);
		cr_assert_eq(x->repeat, y->repeat);
	}
}

/* Open, read every sequence; returns the final status (0 = valid file),
 * the number of sequences read before it and the error text. */
static int read_all(const char *path, char *err, size_t errlen, int *n_ok)
{
	struct trace_reader *r = NULL;
	struct trace_seq s;
	int ret;

	*n_ok = 0;
	err[0] = '\0';
	ret = trace_reader_open(&r, path, err, errlen);
	if (ret < 0)
		return ret;
	while ((ret = trace_reader_next(r, &s, err, errlen)) > 0)
		(*n_ok)++;
	trace_reader_close(&r);
	return ret;
}

/* ------------------------------------------------------------------------ */
/* round trips                                                               */

TestSuite(trace, .init = setup, .fini = fx_tmpdir_remove);

Test(trace, round_trip_greedy)
{
	const char *path = fx_path("abc.msgpack");
	struct trace_header want;
	const struct trace_header *h;
	struct trace_reader *r = NULL;
	struct trace_seq s, a = seq_a(), b = seq_b(), c = seq_c();
	uint64_t n_seq = 99, n_tok = 99, prev_off;
	char err[512] = "";

	write_abc(path);
	cr_assert_eq(count_tmp("abc.msgpack"), 0);
	make_header(&want, 0);
	cr_assert_eq(trace_reader_open(&r, path, err, sizeof err), 0, "%s",
	             err);
	h = trace_reader_header(r);
	cr_assert_eq(h->version, 1);
	cr_assert_eq(h->lookahead, K);
	cr_assert_eq(h->sampled, 0);
	cr_assert_eq(h->temperature, 0.0);
	cr_assert_eq(h->top_p, 1.0);
	cr_assert_eq(h->seed, 0xfedcba9876543210ull);
	cr_assert_eq(h->synthetic, 0);
	cr_assert_eq(h->n_prov, 3);
	cr_assert_str_eq(trace_header_prov(h, "tool"), "test_trace");
	cr_assert_str_eq(trace_header_prov(h, "draft_sha256"), "00ff");
	cr_assert_null(trace_header_prov(h, "nope"));
	assert_model_eq(&h->draft, &want.draft);
	assert_model_eq(&h->target, &want.target);
	cr_assert_eq(trace_reader_offset(r), 0);
	prev_off = 0;

	cr_assert_eq(trace_reader_next(r, &s, err, sizeof err), 1, "%s", err);
	assert_seq_eq(&s, &a);
	cr_assert_gt(trace_reader_offset(r), prev_off);
	prev_off = trace_reader_offset(r);
	{
		const int32_t idx[5] = { -1, -1, 0, -1, 1 };

		for (int p = 0; p < 5; p++)
			cr_assert_eq(s.cont_index[p], idx[p], "p=%d", p);
	}
	/* j = 1..K from the row; j > K clamps to column K */
	cr_assert_eq(trace_seq_cont_entropy(&s, K, 2, 1), 1.5f);
	cr_assert_eq(trace_seq_cont_entropy(&s, K, 2, 2), 2.25f);
	cr_assert_eq(trace_seq_cont_entropy(&s, K, 2, 3), 3.0f);
	cr_assert_eq(trace_seq_cont_entropy(&s, K, 2, 4), 3.0f);
	cr_assert_eq(trace_seq_cont_entropy(&s, K, 4, 1), 0.5f);
	cr_assert_eq(trace_seq_cont_entropy(&s, K, 4, 2), 0.0f);
	cr_assert_eq(trace_seq_cont_entropy(&s, K, 4, 1000), 7.75f);

	cr_assert_eq(trace_reader_next(r, &s, err, sizeof err), 1, "%s", err);
	assert_seq_eq(&s, &b);
	cr_assert_eq(s.cont_index[0], -1);
	cr_assert_gt(trace_reader_offset(r), prev_off);

	cr_assert_eq(trace_reader_next(r, &s, err, sizeof err), 1, "%s", err);
	assert_seq_eq(&s, &c);
	for (int p = 0; p < 3; p++)
		cr_assert_eq(s.cont_index[p], p);
	cr_assert_eq(trace_seq_cont_entropy(&s, K, 1, 2), 5.0f);

	cr_assert_eq(trace_reader_next(r, &s, err, sizeof err), 0, "%s", err);
	cr_assert_eq(trace_reader_next(r, &s, err, sizeof err), 0);
	trace_reader_totals(r, &n_seq, &n_tok);
	cr_assert_eq(n_seq, 3);
	cr_assert_eq(n_tok, 5 + 1 + 3);

	/* rewind: the same first sequence again, totals reset until the end */
	cr_assert_eq(trace_reader_rewind(r, err, sizeof err), 0, "%s", err);
	cr_assert_eq(trace_reader_next(r, &s, err, sizeof err), 1, "%s", err);
	assert_seq_eq(&s, &a);
	cr_assert_eq(trace_reader_next(r, &s, err, sizeof err), 1);
	cr_assert_eq(trace_reader_next(r, &s, err, sizeof err), 1);
	cr_assert_eq(trace_reader_next(r, &s, err, sizeof err), 0, "%s", err);
	trace_reader_totals(r, &n_seq, &n_tok);
	cr_assert_eq(n_seq, 3);
	cr_assert_eq(n_tok, 9);
	trace_reader_close(&r);
	cr_assert_null(r);
	trace_reader_close(&r); /* accepts NULL */
	trace_header_clear(&want);
}

Test(trace, round_trip_sampled)
{
	const char *path = fx_path("sampled.msgpack");
	float ent[4] = { 0.5f, 1.25f, 0.0f, 3.0f },
	      top1[4] = { .5f, .4f, 1, .1f };
	/* a_p < 1 at 0, 2, 3 -> three continuation rows */
	float acc[4] = { 0.25f, 1.0f, 0.999f, 0.0f };
	uint32_t cpos[3] = { 0, 2, 3 };
	float cent[3 * K] = { 1, 1.5f, 2, 2.5f, 3, 3.5f, 4, 4.5f, 5 };
	struct trace_seq in = { .id = 0,
		                .prompt_len = 4,
		                .n = 4,
		                .entropy = ent,
		                .top1 = top1,
		                .accept = acc,
		                .n_cont = 3,
		                .cont_pos = cpos,
		                .cont_entropy = cent },
	                 out;
	struct trace_header h;
	struct trace_writer *w = NULL;
	struct trace_reader *r = NULL;
	char err[512] = "";

	make_header(&h, 1);
	cr_assert_eq(trace_writer_open(&w, path, &h, err, sizeof err), 0, "%s",
	             err);
	cr_assert_eq(trace_writer_add(w, &in, err, sizeof err), 0, "%s", err);
	cr_assert_eq(trace_writer_close(&w, err, sizeof err), 0, "%s", err);
	cr_assert_eq(trace_reader_open(&r, path, err, sizeof err), 0, "%s",
	             err);
	cr_assert_eq(trace_reader_header(r)->sampled, 1);
	cr_assert_eq(trace_reader_header(r)->temperature, 0.7);
	cr_assert_eq(trace_reader_header(r)->top_p, 0.95);
	cr_assert_eq(trace_reader_next(r, &out, err, sizeof err), 1, "%s", err);
	assert_seq_eq(&out, &in);
	cr_assert_eq(out.cont_index[1], -1);
	cr_assert_eq(out.cont_index[3], 2);
	cr_assert_eq(trace_seq_cont_entropy(&out, K, 3, 2), 4.5f);
	cr_assert_eq(trace_reader_next(r, &out, err, sizeof err), 0, "%s", err);
	trace_reader_close(&r);
	trace_header_clear(&h);
}

/* Deterministic pseudo-random sequence i: n = 1 + (i * 37) % 200 tokens,
 * accept bit from a hash, a continuation for every rejection. */
static uint32_t hash32(uint32_t x)
{
	x ^= x >> 16;
	x *= 0x7feb352du;
	x ^= x >> 15;
	x *= 0x846ca68bu;
	x ^= x >> 16;
	return x;
}

struct gen_bufs {
	float ent[200], top1[200], acc[200], cent[200 * K];
	uint32_t tok[200], cpos[200];
};

static struct trace_seq gen_seq(uint32_t i, struct gen_bufs *g)
{
	struct trace_seq s = { .id = i,
		               .prompt_len = i % 17,
		               .n = 1 + (i * 37) % 200,
		               .entropy = g->ent,
		               .top1 = g->top1,
		               .accept = g->acc,
		               .tokens = (i % 3) ? g->tok : NULL,
		               .cont_pos = g->cpos,
		               .cont_entropy = g->cent };

	for (uint32_t p = 0; p < s.n; p++) {
		const uint32_t x = hash32(i * 1000003u + p);

		g->ent[p] = (float)(x % 4096) / 1024.0f;
		g->top1[p] = (float)(x % 1000) / 999.0f;
		g->acc[p] = (x >> 20) % 3 ? 1.0f : 0.0f;
		g->tok[p] = x;
		if (g->acc[p] < 1.0f) {
			for (uint32_t j = 0; j < K; j++)
				g->cent[s.n_cont * K + j] = (float)(j + p) *
				                            0.5f;
			g->cpos[s.n_cont++] = p;
		}
	}
	return s;
}

Test(trace, streaming_many_sequences)
{
	const uint32_t N = 2000;
	const char *path = fx_path("many.msgpack");
	struct trace_header h;
	struct trace_writer *w = NULL;
	struct trace_reader *r = NULL;
	static struct gen_bufs g;
	struct trace_seq s, want;
	uint64_t tokens = 0, n_seq, n_tok;
	char err[512] = "";
	int ret;

	make_header(&h, 0);
	cr_assert_eq(trace_writer_open(&w, path, &h, err, sizeof err), 0, "%s",
	             err);
	for (uint32_t i = 0; i < N; i++) {
		want = gen_seq(i, &g);
		tokens += want.n;
		cr_assert_eq(trace_writer_add(w, &want, err, sizeof err), 0,
		             "%s", err);
	}
	cr_assert_eq(trace_writer_close(&w, err, sizeof err), 0, "%s", err);

	cr_assert_eq(trace_reader_open(&r, path, err, sizeof err), 0, "%s",
	             err);
	for (int pass = 0; pass < 2; pass++) {
		uint32_t i = 0;

		while ((ret = trace_reader_next(r, &s, err, sizeof err)) > 0) {
			want = gen_seq(i, &g);
			assert_seq_eq(&s, &want);
			for (uint32_t c = 0; c < s.n_cont; c++)
				cr_assert_eq(s.cont_index[s.cont_pos[c]],
				             (int32_t)c);
			i++;
		}
		cr_assert_eq(ret, 0, "%s", err);
		cr_assert_eq(i, N);
		trace_reader_totals(r, &n_seq, &n_tok);
		cr_assert_eq(n_seq, N);
		cr_assert_eq(n_tok, tokens);
		cr_assert_eq(trace_reader_rewind(r, err, sizeof err), 0, "%s",
		             err);
	}
	trace_reader_close(&r);
	trace_header_clear(&h);
}

/* ------------------------------------------------------------------------ */
/* models                                                                    */

/* tiny: dim 64, hidden 172, 5 layers, 8 heads, 4 kv heads, vocab 512.
 * kv_dim = 64 * 4 / 8 = 32, head_dim = 64 / 8 = 8.
 * Per layer gemm weights: wq 64*64 = 4096, wk 64*32 = 2048, wv 2048,
 *   wo 4096, w1 64*172 = 11008, w3 11008, w2 11008 -> 45312.
 * 5 layers: 226560; classifier 64*512 = 32768; embedding 512*64 = 32768.
 * Total 292096 weights -> 292096 bytes at 8 bits, 146048 at 4 bits.
 * Gemm MACs per token = 226560 + 32768 = 259328.
 * Ops: embed, 15 per layer, final norm, classifier = 18: gemm 8,
 *   attention 1, nonlinear 1, norm 3, elementwise 4 (rope, 2 residuals,
 *   gate), embed 1. */
Test(trace, llama_ops_tiny)
{
	struct trace_model m;
	unsigned kinds[TRACE_OP_KIND_COUNT] = { 0 };
	uint64_t macs = 0;
	const struct trace_op *rope = NULL, *attn = NULL, *wk = NULL;
	char err[256] = "";

	tiny_model(&m, "tiny");
	cr_assert_eq(m.n_ops, 18);
	cr_assert_eq(m.weight_bytes, 292096);
	cr_assert_eq(trace_model_check(&m, "draft", err, sizeof err), 0, "%s",
	             err);
	for (uint32_t i = 0; i < m.n_ops; i++) {
		const struct trace_op *op = &m.ops[i];

		kinds[op->kind]++;
		if (op->kind == TRACE_OP_GEMM)
			macs += (uint64_t)op->k * op->n * op->repeat;
		if (strcmp(op->name, "rope") == 0)
			rope = op;
		if (strcmp(op->name, "wk") == 0)
			wk = op;
		if (op->kind == TRACE_OP_ATTENTION)
			attn = op;
	}
	cr_assert_eq(kinds[TRACE_OP_GEMM], 8);
	cr_assert_eq(kinds[TRACE_OP_ATTENTION], 1);
	cr_assert_eq(kinds[TRACE_OP_NONLINEAR], 1);
	cr_assert_eq(kinds[TRACE_OP_NORM], 3);
	cr_assert_eq(kinds[TRACE_OP_ELEMENTWISE], 4);
	cr_assert_eq(kinds[TRACE_OP_EMBED], 1);
	cr_assert_eq(macs, 259328);
	cr_assert_eq(m.ops[0].kind, TRACE_OP_EMBED);
	cr_assert_eq(m.ops[0].k, 512);
	cr_assert_eq(m.ops[0].n, 64);
	cr_assert_eq(m.ops[0].repeat, 1);
	cr_assert_eq(m.ops[m.n_ops - 1].kind, TRACE_OP_GEMM);
	cr_assert_eq(m.ops[m.n_ops - 1].n, 512);
	cr_assert_not_null(rope);
	cr_assert_eq(rope->n, 96);
	cr_assert_eq(rope->repeat, 5);
	cr_assert_not_null(wk);
	cr_assert_eq(wk->k, 64);
	cr_assert_eq(wk->n, 32);
	cr_assert_not_null(attn);
	cr_assert_eq(attn->heads, 8);
	cr_assert_eq(attn->kv_heads, 4);
	cr_assert_eq(attn->head_dim, 8);

	/* weight_bits kept as set; 0 means 8 */
	m.weight_bits = 4;
	cr_assert_eq(trace_model_llama_ops(&m), 0);
	cr_assert_eq(m.weight_bytes, 146048);
	cr_assert_eq(m.weight_bits, 4);
	m.weight_bits = 0;
	cr_assert_eq(trace_model_llama_ops(&m), 0);
	cr_assert_eq(m.weight_bits, 8);
	cr_assert_eq(m.weight_bytes, 292096);

	/* dims that do not divide */
	m.n_heads = 7;
	cr_assert_eq(trace_model_llama_ops(&m), -EINVAL);
	free(m.ops);
}

Test(trace, model_check_errors)
{
	struct trace_model m, c;
	char err[256] = "";

	tiny_model(&m, "tiny");
	cr_assert_eq(trace_model_copy(&c, &m), 0);
	cr_assert_neq(c.ops, m.ops);
	c.ops[2].k = 0; /* wq */
	cr_assert_eq(trace_model_check(&c, "draft", err, sizeof err), -EINVAL);
	cr_assert_str_eq(err, "field 'models.draft.ops[2].k': expected a value "
	                      "> 0 for kind 'gemm', got 0");
	cr_assert_eq(m.ops[2].k, 64, "copy must be deep");
	c.ops[2].k = 64;
	c.ops[6].kv_heads = 3; /* attention: 8 heads */
	cr_assert_eq(trace_model_check(&c, "target", err, sizeof err), -EINVAL);
	cr_assert(strstr(err, "ops[6].kv_heads': expected a divisor of heads "
	                      "= 8, got 3"),
	          "%s", err);
	c.ops[6].kv_heads = 4;
	c.ops[5].repeat = 0;
	cr_assert_eq(trace_model_check(&c, "draft", err, sizeof err), -EINVAL);
	cr_assert(strstr(err, "ops[5].repeat': expected >= 1, got 0"), "%s",
	          err);
	c.ops[5].repeat = 1;
	c.ops[1].kind = (enum trace_op_kind)17;
	cr_assert_eq(trace_model_check(&c, "draft", err, sizeof err), -EINVAL);
	cr_assert(strstr(err, "ops[1].kind'"), "%s", err);
	cr_assert_str_eq(trace_op_kind_name(TRACE_OP_ATTENTION), "attention");
	cr_assert_eq(trace_op_kind_parse("embed"), TRACE_OP_EMBED);
	cr_assert_eq(trace_op_kind_parse("conv"), -1);
	free(c.ops);
	free(m.ops);
}

Test(trace, writer_rejects_invalid_and_abort_cleans_up)
{
	const char *path = fx_path("w.msgpack");
	struct trace_header h;
	struct trace_writer *w = NULL;
	float acc[5] = { 1, 0.5f, 0, 1, 0 };
	struct trace_seq s = seq_a();
	char err[512] = "";

	make_header(&h, 0);
	cr_assert_eq(trace_writer_open(&w, path, &h, err, sizeof err), 0, "%s",
	             err);
	cr_assert_eq(count_tmp("w.msgpack"), 1);
	s.accept = acc; /* 0.5 in a greedy trace */
	cr_assert_eq(trace_writer_add(w, &s, err, sizeof err), -EINVAL);
	cr_assert(strstr(err, "field 'accept[1]' (sequence 7): expected 0 or 1 "
	                      "in a greedy trace, got 0.5"),
	          "%s", err);
	acc[1] = 1;
	s.n_cont = 1; /* position 4 rejected without continuation */
	cr_assert_eq(trace_writer_add(w, &s, err, sizeof err), -EINVAL);
	cr_assert(strstr(err, "expected a continuation for position 4"), "%s",
	          err);
	s.n_cont = 2;
	cr_assert_eq(trace_writer_add(w, &s, err, sizeof err), 0, "%s", err);
	trace_writer_abort(&w);
	cr_assert_null(w);
	trace_writer_abort(&w); /* accepts NULL */
	cr_assert_eq(count_tmp("w.msgpack"), 0);
	cr_assert(!file_exists(path));

	h.lookahead = 0;
	cr_assert_eq(trace_writer_open(&w, path, &h, err, sizeof err), -EINVAL);
	cr_assert(strstr(err, "field 'lookahead': expected >= 1"), "%s", err);
	cr_assert_eq(count_tmp("w.msgpack"), 0);
	trace_header_clear(&h);
	cr_assert_null(h.prov);
	cr_assert_null(h.draft.ops);
}

Test(trace, seq_check_ranges)
{
	struct trace_header h;
	struct trace_seq s = seq_a();
	float ent[5], top1[5];
	uint32_t cpos[2] = { 4, 2 };
	float cent[2 * K];
	char err[512] = "";

	make_header(&h, 0);
	cr_assert_eq(trace_seq_check(&h, &s, err, sizeof err), 0, "%s", err);
	memcpy(ent, a_ent, sizeof ent);
	ent[2] = NAN;
	s.entropy = ent;
	cr_assert_eq(trace_seq_check(&h, &s, err, sizeof err), -EINVAL);
	cr_assert(strstr(err, "field 'entropy[2]'"), "%s", err);
	s.entropy = a_ent;
	memcpy(top1, a_top1, sizeof top1);
	top1[0] = 1.0001f;
	s.top1 = top1;
	cr_assert_eq(trace_seq_check(&h, &s, err, sizeof err), -EINVAL);
	cr_assert(strstr(err, "field 'top1[0]'"), "%s", err);
	s.top1 = a_top1;
	s.cont_pos = cpos; /* not ascending */
	cr_assert_eq(trace_seq_check(&h, &s, err, sizeof err), -EINVAL);
	cr_assert(strstr(err, "field 'cont_pos[1]' (sequence 7): expected "
	                      "strictly ascending"),
	          "%s", err);
	s.cont_pos = a_cpos;
	memcpy(cent, a_cent, sizeof cent);
	cent[4] = INFINITY;
	s.cont_entropy = cent;
	cr_assert_eq(trace_seq_check(&h, &s, err, sizeof err), -EINVAL);
	cr_assert(strstr(err, "field 'cont_entropy[1][1]'"), "%s", err);
	s.cont_entropy = a_cent;
	s.n = 0;
	cr_assert_eq(trace_seq_check(&h, &s, err, sizeof err), -EINVAL);
	cr_assert(strstr(err, "field 'n' (sequence 7): expected >= 1"), "%s",
	          err);
	trace_header_clear(&h);
}

/* ------------------------------------------------------------------------ */
/* malformed files, written with msgpack-c                                  */

/* Start offsets of the top-level objects (plus, after the last, the offset
 * where parsing stopped), found with msgpack_unpack_next
 * over the whole file (independent of the reader's streaming path). */
static int record_offsets(const char *path, uint64_t *offs, int max)
{
	size_t len, off = 0;
	char *buf = (char *)fx_slurp(path, &len);
	msgpack_unpacked res;
	int n = 0;

	msgpack_unpacked_init(&res);
	while (n < max) {
		const size_t start = off;

		if (msgpack_unpack_next(&res, buf, len, &off) !=
		    MSGPACK_UNPACK_SUCCESS)
			break;
		offs[n++] = start;
	}
	if (n < max)
		offs[n] = off; /* sentinel: where parsing stopped */
	msgpack_unpacked_destroy(&res);
	free(buf);
	return n;
}

struct edit {
	const char *rtype;  /* record type: "header", "seq", "end" */
	int index;          /* which record of that type */
	const char *path;   /* dotted key path, array indices as numbers */
	int how;            /* false: set it (add when missing); true: drop
	                       the key; EDIT_DUP: keep it and add it again
	                       with val */
	msgpack_object val; /* new value */
};
#define EDIT_DUP 2

static bool key_is(const msgpack_object *k, const char *s, size_t n)
{
	return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
	       memcmp(k->via.str.ptr, s, n) == 0;
}

/* Pack o with the edit applied at the remaining dotted path. */
static void pack_edited(msgpack_packer *pk, const msgpack_object *o,
                        const char *path, const struct edit *e)
{
	const char *dot = strchr(path, '.');
	const size_t n = dot ? (size_t)(dot - path) : strlen(path);

	if (o->type == MSGPACK_OBJECT_ARRAY) {
		const uint32_t idx = (uint32_t)strtoul(path, NULL, 10);

		cr_assert(dot, "array must be traversed, not edited");
		msgpack_pack_array(pk, o->via.array.size);
		for (uint32_t i = 0; i < o->via.array.size; i++) {
			if (i == idx)
				pack_edited(pk, &o->via.array.ptr[i], dot + 1,
				            e);
			else
				msgpack_pack_object(pk, o->via.array.ptr[i]);
		}
		return;
	}
	cr_assert_eq(o->type, MSGPACK_OBJECT_MAP);
	{
		bool found = false;
		uint32_t count = o->via.map.size;

		for (uint32_t i = 0; i < o->via.map.size; i++)
			found |= key_is(&o->via.map.ptr[i].key, path, n);
		if (!dot && e->how == true && found)
			count--;
		if (!dot && e->how != true && (!found || e->how == EDIT_DUP))
			count++;
		msgpack_pack_map(pk, count);
		for (uint32_t i = 0; i < o->via.map.size; i++) {
			const msgpack_object_kv *kv = &o->via.map.ptr[i];

			if (!key_is(&kv->key, path, n)) {
				msgpack_pack_object(pk, kv->key);
				msgpack_pack_object(pk, kv->val);
			} else if (dot) {
				msgpack_pack_object(pk, kv->key);
				pack_edited(pk, &kv->val, dot + 1, e);
			} else if (e->how == EDIT_DUP) {
				msgpack_pack_object(pk, kv->key);
				msgpack_pack_object(pk, kv->val);
				msgpack_pack_object(pk, kv->key);
				msgpack_pack_object(pk, e->val);
			} else if (e->how != true) {
				msgpack_pack_object(pk, kv->key);
				msgpack_pack_object(pk, e->val);
			}
		}
		if (!dot && e->how != true && !found) {
			msgpack_pack_str_with_body(pk, path, n);
			msgpack_pack_object(pk, e->val);
		}
	}
}

/* FILE* write callback. (msgpack_fbuffer_write fails on zero-length writes,
 * which msgpack_pack_object issues for empty bins, and the packing of the
 * rest of the object is then silently cut short.) */
static int file_write(void *data, const char *buf, size_t len)
{
	return len == 0 || fwrite(buf, 1, len, data) == len ? 0 : -1;
}

/* Copy src to dst record by record, applying e (may be NULL); drop the
 * end record if drop_end; append `extra` (may be NULL) at the end. */
static void mutate(const char *src, const char *dst, const struct edit *e,
                   bool drop_end, const msgpack_object *extra)
{
	size_t len, off = 0;
	char *buf = (char *)fx_slurp(src, &len);
	FILE *f = fopen(dst, "wb");
	msgpack_packer pk;
	msgpack_unpacked res;
	int counts[3] = { 0 };

	cr_assert_not_null(f);
	msgpack_packer_init(&pk, f, file_write);
	msgpack_unpacked_init(&res);
	while (msgpack_unpack_next(&res, buf, len, &off) ==
	       MSGPACK_UNPACK_SUCCESS) {
		const msgpack_object *o = &res.data;
		const char *types[3] = { "header", "seq", "end" };
		int t = -1;

		cr_assert_eq(o->type, MSGPACK_OBJECT_MAP);
		for (uint32_t i = 0; i < o->via.map.size; i++)
			if (key_is(&o->via.map.ptr[i].key, "type", 4))
				for (int j = 0; j < 3; j++)
					if (key_is(&o->via.map.ptr[i].val,
					           types[j], strlen(types[j])))
						t = j;
		cr_assert_geq(t, 0);
		if (t == 2 && drop_end)
			break;
		if (e && strcmp(e->rtype, types[t]) == 0 &&
		    e->index == counts[t])
			pack_edited(&pk, o, e->path, e);
		else
			msgpack_pack_object(&pk, *o);
		counts[t]++;
	}
	if (extra)
		msgpack_pack_object(&pk, *extra);
	msgpack_unpacked_destroy(&res);
	cr_assert_eq(fclose(f), 0);
	free(buf);
}

static msgpack_object o_str(const char *s)
{
	msgpack_object o = { .type = MSGPACK_OBJECT_STR };

	o.via.str.ptr = s;
	o.via.str.size = (uint32_t)strlen(s);
	return o;
}

static msgpack_object o_uint(uint64_t v)
{
	msgpack_object o = { .type = MSGPACK_OBJECT_POSITIVE_INTEGER };

	o.via.u64 = v;
	return o;
}

/* little-endian float32 bin (the test host is little-endian x86/arm) */
static msgpack_object o_bin(const void *p, uint32_t size)
{
	msgpack_object o = { .type = MSGPACK_OBJECT_BIN };

	o.via.bin.ptr = p;
	o.via.bin.size = size;
	return o;
}

/* Apply e to the A/B/C file, read it, expect -EINVAL after n_ok sequences
 * and an error "BAD: offset <record rec's offset>: <contains want>". */
static void expect_bad(const struct edit *e, bool drop_end, int n_ok_want,
                       int rec, const char *want)
{
	const char *good = fx_path("good.msgpack");
	const char *bad = fx_path("bad.msgpack");
	uint64_t offs[16];
	char err[1024], prefix[600];
	int n_ok, ret;

	write_abc(good);
	mutate(good, bad, e, drop_end, NULL);
	cr_assert_geq(record_offsets(bad, offs, 16), rec);
	ret = read_all(bad, err, sizeof err, &n_ok);
	cr_assert_eq(ret, -EINVAL, "ret %d: %s", ret, err);
	cr_assert_eq(n_ok, n_ok_want, "%s", err);
	snprintf(prefix, sizeof prefix, "%s: offset %" PRIu64 ": ", bad,
	         offs[rec]);
	cr_assert_eq(strncmp(err, prefix, strlen(prefix)), 0,
	             "want prefix '%s', got '%s'", prefix, err);
	cr_assert(strstr(err, want), "want '%s' in '%s'", want, err);
}

TestSuite(bad, .init = setup, .fini = fx_tmpdir_remove);

Test(bad, unmodified_copy_is_valid)
{
	char err[512];
	int n_ok;

	write_abc(fx_path("good.msgpack"));
	mutate(fx_path("good.msgpack"), fx_path("copy.msgpack"), NULL, false,
	       NULL);
	cr_assert_eq(read_all(fx_path("copy.msgpack"), err, sizeof err, &n_ok),
	             0, "%s", err);
	cr_assert_eq(n_ok, 3);
}

Test(bad, truncated_mid_record)
{
	const char *good = fx_path("good.msgpack");
	const char *bad = fx_path("cut.msgpack");
	uint64_t offs[8];
	size_t len;
	char *buf, err[512], want[600];
	int n_ok;

	write_abc(good);
	cr_assert_eq(record_offsets(good, offs, 8), 5); /* hdr, 3 seq, end */
	buf = (char *)fx_slurp(good, &len);
	/* 20 bytes into the second sequence */
	fx_write_file(bad, buf, offs[2] + 20);
	cr_assert_eq(read_all(bad, err, sizeof err, &n_ok), -EINVAL);
	cr_assert_eq(n_ok, 1);
	snprintf(want, sizeof want,
	         "%s: offset %" PRIu64 ": truncated: the "
	         "record starting here is incomplete (file ends 20 bytes into "
	         "it)",
	         bad, offs[2]);
	cr_assert_str_eq(err, want);

	fx_write_file(bad, buf, offs[1] - 1); /* inside the header */
	cr_assert_eq(read_all(bad, err, sizeof err, &n_ok), -EINVAL);
	cr_assert(strstr(err, ": offset 0: truncated"), "%s", err);
	fx_write_file(bad, buf, 0);
	cr_assert_eq(read_all(bad, err, sizeof err, &n_ok), -EINVAL);
	cr_assert(strstr(err, "offset 0: truncated: empty file"), "%s", err);
	free(buf);
}

Test(bad, truncated_at_record_boundary)
{
	const char *good = fx_path("good.msgpack");
	const char *bad = fx_path("cut.msgpack");
	uint64_t offs[8];
	size_t len;
	char *buf, err[512], want[600];
	int n_ok;

	write_abc(good);
	cr_assert_eq(record_offsets(good, offs, 8), 5);
	buf = (char *)fx_slurp(good, &len);
	fx_write_file(bad, buf, offs[4]); /* everything but the end marker */
	cr_assert_eq(read_all(bad, err, sizeof err, &n_ok), -EINVAL);
	cr_assert_eq(n_ok, 3);
	snprintf(want, sizeof want,
	         "%s: offset %" PRIu64 ": truncated: file "
	         "ends without an end marker (after 3 sequences)",
	         bad, offs[4]);
	cr_assert_str_eq(err, want);
	free(buf);

	/* the same through mutate (end record dropped) */
	expect_bad(NULL, true, 3, 4,
	           "truncated: file ends without an end "
	           "marker");
}

Test(bad, wrong_magic)
{
	const struct edit e = { "header", 0, "magic", false, o_str("nope") };

	expect_bad(&e, false, 0, 0,
	           "field 'magic': expected \"ahasd-trace\", "
	           "got str \"nope\"");
}

Test(bad, wrong_version)
{
	const struct edit e = { "header", 0, "version", false, o_uint(2) };

	expect_bad(&e, false, 0, 0,
	           "field 'version': expected 1 (the only "
	           "version this reader supports), got 2");
}

Test(bad, n_as_string)
{
	const struct edit e = { "seq", 0, "n", false, o_str("5") };

	expect_bad(&e, false, 0, 1,
	           "field 'n': expected an unsigned integer, "
	           "got str \"5\"");
}

Test(bad, accept_out_of_range)
{
	static float acc[5] = { 1, 1.5f, 0, 1, 0 };
	const struct edit e = { "seq", 0, "accept", false, o_bin(acc, 20) };

	expect_bad(&e, false, 0, 1,
	           "field 'accept[1]' (sequence 7): expected "
	           "a probability in [0, 1], got 1.5");
}

Test(bad, negative_entropy)
{
	static float ent[3] = { 3.0f, 2.0f, -0.25f };
	const struct edit e = { "seq", 2, "entropy", false, o_bin(ent, 12) };

	expect_bad(&e, false, 2, 3,
	           "field 'entropy[2]' (sequence 9): expected "
	           "a finite value >= 0 nats, got -0.25");
}

Test(bad, missing_continuation)
{
	/* B's only token rejected, but B has no continuation rows */
	static float acc[1] = { 0 };
	const struct edit e = { "seq", 1, "accept", false, o_bin(acc, 4) };

	expect_bad(&e, false, 1, 2,
	           "field 'cont_pos' (sequence 8): expected a "
	           "continuation for position 0 (accept 0 < 1), got none");
}

Test(bad, bin_length_mismatch)
{
	static float top1[4] = { 1, 1, 1, 1 };
	const struct edit e = { "seq", 0, "top1", false, o_bin(top1, 16) };

	expect_bad(&e, false, 0, 1,
	           "field 'top1': expected a bin of 20 bytes "
	           "(n = 5 float32), got 16 bytes");
}

Test(bad, cont_entropy_length_mismatch)
{
	static const float cent[4] = { 1, 2, 3, 4 };
	const struct edit e = { "seq", 0, "cont_entropy", false,
		                o_bin(cent, 16) };

	expect_bad(&e, false, 0, 1,
	           "field 'cont_entropy': expected a bin of 24 "
	           "bytes (n_cont 2 x lookahead 3 float32), got 16 bytes");
}

Test(bad, missing_field)
{
	const struct edit e = { "seq", 1, "entropy", true, { 0 } };

	expect_bad(&e, false, 1, 2,
	           "field 'entropy': expected a bin of 4 bytes "
	           "(n = 1 float32), got nothing (missing)");
}

Test(bad, end_count_mismatch)
{
	const struct edit e1 = { "end", 0, "n_tokens", false, o_uint(8) };
	const struct edit e2 = { "end", 0, "n_sequences", false, o_uint(4) };

	expect_bad(&e1, false, 3, 4,
	           "field 'n_tokens': expected 9 (the tokens "
	           "read), got 8");
	expect_bad(&e2, false, 3, 4,
	           "field 'n_sequences': expected 3 (the "
	           "sequences read), got 4");
}

Test(bad, greedy_fractional_accept)
{
	static float acc[1] = { 0.5f };
	const struct edit e = { "seq", 1, "accept", false, o_bin(acc, 4) };

	expect_bad(&e, false, 1, 2,
	           "field 'accept[0]' (sequence 8): expected 0 "
	           "or 1 in a greedy trace, got 0.5");
}

Test(bad, sampling_unknown)
{
	const struct edit e = { "header", 0, "sampling", false, o_str("beam") };

	expect_bad(&e, false, 0, 0,
	           "field 'sampling': expected \"greedy\" or "
	           "\"sampled\", got \"beam\"");
}

Test(bad, op_scales_mismatch)
{
	/* op 6 of the llama list is the attention op: scales must be ML */
	const struct edit e = { "header", 0, "models.target.ops.6.scales",
		                false, o_str("M") };

	expect_bad(&e, false, 0, 0,
	           "field 'models.target.ops[6].scales': "
	           "expected \"ML\" for kind 'attention', got str \"M\"");
}

Test(bad, op_kind_unknown)
{
	const struct edit e = { "header", 0, "models.draft.ops.2.kind", false,
		                o_str("conv") };

	expect_bad(
	        &e, false, 0, 0,
	        "field 'models.draft.ops[2].kind': expected "
	        "one of gemm, attention, nonlinear, norm, elementwise, embed, "
	        "got \"conv\"");
}

Test(bad, model_dim_zero)
{
	const struct edit e = { "header", 0, "models.draft.ops.3.n", false,
		                o_uint(0) };

	expect_bad(&e, false, 0, 0,
	           "field 'models.draft.ops[3].n': expected a "
	           "value > 0 for kind 'gemm', got 0");
}

Test(bad, trailing_data_after_end)
{
	const char *good = fx_path("good.msgpack");
	const char *bad = fx_path("bad.msgpack");
	const msgpack_object extra = o_uint(1);
	uint64_t offs[8];
	char err[512];
	int n_ok;

	write_abc(good);
	mutate(good, bad, NULL, false, &extra);
	cr_assert_eq(record_offsets(bad, offs, 8), 6);
	cr_assert_eq(read_all(bad, err, sizeof err, &n_ok), -EINVAL);
	cr_assert_eq(n_ok, 3);
	cr_assert(strstr(err, "trailing data after the end marker"), "%s", err);
}

Test(bad, not_msgpack_and_missing_file)
{
	const char *bad = fx_path("bad.msgpack");
	char err[512];
	int n_ok;

	/* 0xc1 is never used in msgpack */
	fx_write_file(bad, "\xc1\x00\x00", 3);
	cr_assert_eq(read_all(bad, err, sizeof err, &n_ok), -EINVAL);
	cr_assert(strstr(err, "offset 0: malformed msgpack"), "%s", err);
	fx_write_file(bad, "hello", 5); /* 'h' = positive fixint 104 */
	cr_assert_eq(read_all(bad, err, sizeof err, &n_ok), -EINVAL);
	cr_assert(strstr(err, "offset 0: expected a record map with a \"type\" "
	                      "key, got unsigned integer 104"),
	          "%s", err);
	cr_assert_eq(read_all(fx_path("none.msgpack"), err, sizeof err, &n_ok),
	             -ENOENT);
	cr_assert(strstr(err, "none.msgpack: No such file"), "%s", err);
}

Test(bad, unknown_keys_and_records_are_ignored)
{
	const char *good = fx_path("good.msgpack"),
	           *ok = fx_path("fwd.msgpack");
	const struct edit e = { "seq", 0, "future_field", false, o_str("x") };
	char err[512];
	int n_ok;

	write_abc(good);
	mutate(good, ok, &e, false, NULL);
	cr_assert_eq(read_all(ok, err, sizeof err, &n_ok), 0, "%s", err);
	cr_assert_eq(n_ok, 3);
}

/* ------------------------------------------------------------------------ */
/* issue 15, defect 8: a key given twice in one map is an error (before, the
 * first won in records and the last in provenance)                         */

Test(bad, duplicate_key_in_sequence)
{
	const struct edit e = { "seq", 1, "n", EDIT_DUP, o_uint(1) };

	expect_bad(&e, false, 1, 2,
	           "field 'n': duplicate key (the map gives "
	           "it twice)");
}

Test(bad, duplicate_key_in_header_and_provenance)
{
	const struct edit e1 = { "header", 0, "lookahead", EDIT_DUP,
		                 o_uint(3) };
	const struct edit e2 = { "header", 0, "provenance.tool", EDIT_DUP,
		                 o_str("other") };
	const struct edit e3 = { "header", 0, "models.target.ops.2.k", EDIT_DUP,
		                 o_uint(64) };
	const struct edit e4 = { "end", 0, "n_tokens", EDIT_DUP, o_uint(9) };

	expect_bad(&e1, false, 0, 0, "field 'lookahead': duplicate key");
	expect_bad(&e2, false, 0, 0, "field 'provenance.tool': duplicate key");
	expect_bad(&e3, false, 0, 0,
	           "field 'models.target.ops[2].k': "
	           "duplicate key");
	expect_bad(&e4, false, 3, 4, "field 'n_tokens': duplicate key");
}

/* ------------------------------------------------------------------------ */
/* issue 15, defect 7: a size claimed in a msgpack header is checked against
 * the bytes that follow before anything is allocated for it (msgpack-c
 * allocates the whole claim up front: "out of memory" for 5 bytes)        */

static void expect_claim(const char *bytes, size_t len, const char *want1,
                         const char *want2)
{
	const char *bad = fx_path("claim.msgpack");
	char err[1024];
	int n_ok;

	fx_write_file(bad, bytes, len);
	cr_assert_eq(read_all(bad, err, sizeof err, &n_ok), -EINVAL, "%s", err);
	cr_assert(strstr(err, bad) && strstr(err, want1) && strstr(err, want2),
	          "want '%s' and '%s' in '%s'", want1, want2, err);
	cr_assert_null(strstr(err, "out of memory"), "%s", err);
}

Test(bad, claimed_size_larger_than_file)
{
	/* map32 of 2^32 - 1 entries and nothing after it */
	expect_claim("\xdf\xff\xff\xff\xff", 5,
	             "offset 0: the map at byte 0 "
	             "claims 4294967295 entries",
	             "only 0 bytes follow");
	/* array32 */
	expect_claim("\xdd\x00\x10\x00\x00\x01\x02", 7,
	             "the array at byte 0 "
	             "claims 1048576 elements",
	             "only 2 bytes follow");
	/* a record whose bin claims 4 GiB, 3 bytes of it present */
	expect_claim("\x81\xa4type\xc6\xff\xff\xff\xff"
	             "abc",
	             14, "the bin at byte 6 claims 4294967295 bytes",
	             "only 3 bytes follow");
	/* str32 */
	expect_claim("\x81\xdb\x7f\xff\xff\xff", 6,
	             "the str at byte 1 claims "
	             "2147483647 bytes",
	             "only 0 bytes follow");
}

Test(bad, claimed_size_in_a_later_record)
{
	const char *good = fx_path("good.msgpack");
	const char *bad = fx_path("bad.msgpack");
	uint64_t offs[8];
	size_t len;
	char *buf, err[1024], want[600];
	int n_ok;

	write_abc(good);
	cr_assert_eq(record_offsets(good, offs, 8), 5);
	buf = (char *)fx_slurp(good, &len);
	/* header and sequence A, then a map claiming 2^31 entries */
	memcpy(buf + offs[2], "\xdf\x80\x00\x00\x00\x00", 6);
	fx_write_file(bad, buf, offs[2] + 6);
	cr_assert_eq(read_all(bad, err, sizeof err, &n_ok), -EINVAL);
	cr_assert_eq(n_ok, 1);
	snprintf(want, sizeof want,
	         "%s: offset %" PRIu64 ": the map at byte "
	         "%" PRIu64 " claims 2147483648 entries",
	         bad, offs[2], offs[2]);
	cr_assert(strstr(err, want), "want '%s' in '%s'", want, err);
	cr_assert(strstr(err, "only 1 bytes follow"), "%s", err);
	free(buf);
}

/* issue 15, defect 7: values are printed with enough digits to tell them
 * from the limit they broke */
Test(bad, values_printed_with_enough_digits)
{
	static float acc[5] = { 1, 1.00000012f, 0, 1, 0 };
	const struct edit e = { "seq", 0, "accept", false, o_bin(acc, 20) };

	expect_bad(&e, false, 0, 1,
	           "field 'accept[1]' (sequence 7): expected "
	           "a probability in [0, 1], got 1.00000012");
}

/* ------------------------------------------------------------------------ */
/* issue 15, defect 5: sequence ids are unique within a trace (replays key
 * their coins and the database its rows on them)                         */

Test(bad, duplicate_sequence_id)
{
	/* C (the third sequence) takes A's id 7 */
	const struct edit e = { "seq", 2, "id", false, o_uint(7) };
	uint64_t offs[8];

	write_abc(fx_path("good.msgpack"));
	cr_assert_eq(record_offsets(fx_path("good.msgpack"), offs, 8), 5);
	expect_bad(&e, false, 2, 3,
	           "field 'id': duplicate sequence id 7 "
	           "(also the sequence at offset");
}

Test(trace, writer_rejects_duplicate_sequence_id)
{
	const char *path = fx_path("dup.msgpack");
	struct trace_header h;
	struct trace_writer *w = NULL;
	struct trace_seq s = seq_a();
	char err[512] = "";

	make_header(&h, 0);
	cr_assert_eq(trace_writer_open(&w, path, &h, err, sizeof err), 0, "%s",
	             err);
	cr_assert_eq(trace_writer_add(w, &s, err, sizeof err), 0, "%s", err);
	s = seq_b();
	cr_assert_eq(trace_writer_add(w, &s, err, sizeof err), 0, "%s", err);
	s = seq_a();
	cr_assert_eq(trace_writer_add(w, &s, err, sizeof err), -EINVAL);
	cr_assert(strstr(err, path) && strstr(err, "field 'id': duplicate "
	                                           "sequence id 7"),
	          "%s", err);
	trace_writer_abort(&w);
	trace_header_clear(&h);
}

/* ------------------------------------------------------------------------ */
/* issue 15, defect 10: model dimensions within documented bounds, and
 * every sequence within the target's context                             */

Test(trace, model_dimension_bounds)
{
	struct trace_model m;
	char err[512];

	tiny_model(&m, "m");
	m.dim = UINT32_MAX;
	cr_assert_eq(trace_model_check(&m, "draft", err, sizeof err), -EINVAL);
	cr_assert_str_eq(err, "field 'models.draft.dim': expected a value in "
	                      "[1, 1048576], got 4294967295");
	m.dim = 64;
	m.seq_len = (1u << 24) + 1;
	cr_assert_eq(trace_model_check(&m, "target", err, sizeof err), -EINVAL);
	cr_assert(strstr(err, "field 'models.target.seq_len': expected a value "
	                      "in [1, 16777216], got 16777217"),
	          "%s", err);
	m.seq_len = 512;
	m.n_kv_heads = 16; /* more than n_heads = 8 */
	cr_assert_eq(trace_model_check(&m, "draft", err, sizeof err), -EINVAL);
	cr_assert(strstr(err, "field 'models.draft.n_kv_heads': expected a "
	                      "value in [1, 8] (n_heads), got 16"),
	          "%s", err);
	m.n_kv_heads = 4;
	m.ops[2].k = UINT32_MAX;
	cr_assert_eq(trace_model_check(&m, "draft", err, sizeof err), -EINVAL);
	cr_assert(strstr(err, "field 'models.draft.ops[2].k': expected at most "
	                      "33554432, got 4294967295"),
	          "%s", err);
	m.ops[2].k = 64;
	m.ops[2].repeat = 65537;
	cr_assert_eq(trace_model_check(&m, "draft", err, sizeof err), -EINVAL);
	cr_assert(strstr(err, "field 'models.draft.ops[2].repeat': expected a "
	                      "value in [1, 65536], got 65537"),
	          "%s", err);
	m.ops[2].repeat = 5;
	cr_assert_eq(trace_model_check(&m, "draft", err, sizeof err), 0, "%s",
	             err);
	free(m.ops);
}

/* A name is at most 63 bytes: it lives in a char[64] with its NUL. The
 * reader refuses 64 (and an op name too), the writer and the reader take
 * 63 and give it back whole; trace_model_check refuses a name that fills
 * all 64 bytes without a NUL (the writer packs it with strlen). */
Test(bad, model_name_of_64_bytes)
{
	static const char name64[] = "0123456789abcdef0123456789abcdef"
	                             "0123456789abcdef0123456789abcdef";
	const struct edit e = { "header", 0, "models.draft.name", false,
		                o_str(name64) };
	const struct edit o = { "header", 0, "models.target.ops.2.name", false,
		                o_str(name64) };

	cr_assert_eq(strlen(name64), 64);
	expect_bad(&e, false, 0, 0,
	           "expected a string of at most 63 bytes, "
	           "got 64 bytes");
	expect_bad(&o, false, 0, 0,
	           "expected a string of at most 63 bytes, "
	           "got 64 bytes");
}

/* A string with a NUL inside would be cut short by every C reader after
 * this one (the model "ab" and the model "ab\0cd" would look alike): the
 * reader refuses it, in a model name and in a provenance value. */
Test(bad, string_with_a_nul_inside)
{
	msgpack_object v = o_str("ab-cd");

	v.via.str.ptr = "ab\0cd"; /* 5 bytes, as o_str("ab-cd") sized it */
	const struct edit bad = { "header", 0, "models.target.name", false, v };
	const struct edit prov = { "header", 0, "provenance.tool", false, v };

	expect_bad(&bad, false, 0, 0,
	           "field 'models.target.name': expected a "
	           "string without NUL bytes, got one with");
	expect_bad(&prov, false, 0, 0,
	           "field 'provenance[0]': expected "
	           "strings without NUL bytes, got one with");
}

Test(trace, model_name_of_63_bytes_round_trips)
{
	static const char name63[] = "0123456789abcdef0123456789abcdef"
	                             "0123456789abcdef0123456789abcde";
	const char *path = fx_path("name63.msgpack");
	struct trace_header h;
	struct trace_writer *w = NULL;
	struct trace_reader *r = NULL;
	char err[512];

	cr_assert_eq(strlen(name63), 63);
	make_header(&h, 0);
	memcpy(h.draft.name, name63, sizeof name63);
	cr_assert_eq(trace_model_check(&h.draft, "draft", err, sizeof err), 0,
	             "%s", err);
	cr_assert_eq(trace_writer_open(&w, path, &h, err, sizeof err), 0, "%s",
	             err);
	cr_assert_eq(trace_writer_close(&w, err, sizeof err), 0, "%s", err);
	cr_assert_eq(trace_reader_open(&r, path, err, sizeof err), 0, "%s",
	             err);
	cr_assert_str_eq(trace_reader_header(r)->draft.name, name63);
	trace_reader_close(&r);

	/* all 64 bytes used, no NUL */
	memset(h.draft.name, 'x', sizeof h.draft.name);
	cr_assert_eq(trace_model_check(&h.draft, "draft", err, sizeof err),
	             -EINVAL);
	cr_assert_str_eq(err, "field 'models.draft.name': expected at most 63 "
	                      "bytes");
	trace_header_clear(&h);
}

/* weight_bits: 1..64 (a 64-bit weight is the widest a trace may claim). */
Test(trace, model_weight_bits_bounds)
{
	struct trace_model m;
	char err[512];

	tiny_model(&m, "m");
	m.weight_bits = 64;
	cr_assert_eq(trace_model_check(&m, "draft", err, sizeof err), 0, "%s",
	             err);
	m.weight_bits = 65;
	cr_assert_eq(trace_model_check(&m, "draft", err, sizeof err), -EINVAL);
	cr_assert_str_eq(err, "field 'models.draft.weight_bits': expected a "
	                      "value in [1, 64], got 65");
	free(m.ops);
}

Test(bad, model_dimension_too_large)
{
	const struct edit e = { "header", 0, "models.target.hidden_dim", false,
		                o_uint(UINT32_MAX) };

	expect_bad(&e, false, 0, 0,
	           "field 'models.target.hidden_dim': expected "
	           "a value in [1, 4194304], got 4294967295");
}

Test(trace, sequence_within_context)
{
	const char *path = fx_path("ctx.msgpack");
	struct trace_header h;
	struct trace_writer *w = NULL;
	struct trace_seq s = seq_a(); /* n = 5 */
	char err[512] = "";

	make_header(&h, 0); /* target seq_len 512 */
	cr_assert_eq(trace_writer_open(&w, path, &h, err, sizeof err), 0, "%s",
	             err);
	s.prompt_len = 507; /* 507 + 5 = 512: fits exactly */
	cr_assert_eq(trace_writer_add(w, &s, err, sizeof err), 0, "%s", err);
	s = seq_b();
	s.prompt_len = 512; /* 512 + 1 */
	cr_assert_eq(trace_writer_add(w, &s, err, sizeof err), -EINVAL);
	cr_assert(strstr(err,
	                 "field 'prompt_len' (sequence 8): expected "
	                 "prompt_len + n = 512 + 1 = 513 within the target "
	                 "model's context (seq_len 512)"),
	          "%s", err);
	trace_writer_abort(&w);
	trace_header_clear(&h);
}

Test(bad, sequence_beyond_context)
{
	const struct edit e = { "seq", 2, "prompt_len", false, o_uint(510) };

	expect_bad(&e, false, 2, 3,
	           "field 'prompt_len' (sequence 9): expected "
	           "prompt_len + n = 510 + 3 = 513 within the target model's "
	           "context (seq_len 512)");
}

/* ------------------------------------------------------------------------ */
/* issue 15, defect 4: the writer enforces the reader's limits, so nothing
 * it writes is refused on reading                                        */

Test(trace, writer_enforces_reader_limits)
{
	const char *path = fx_path("limits.msgpack");
	struct trace_header h;
	struct trace_writer *w = NULL;
	struct trace_kv *kv;
	const size_t n = 65537;
	char err[512] = "";

	make_header(&h, 0);
	kv = realloc(h.prov, n * sizeof *kv);
	cr_assert_not_null(kv);
	h.prov = kv;
	for (size_t i = h.n_prov; i < n; i++) {
		char k[32];

		snprintf(k, sizeof k, "key%zu", i);
		h.prov[i].key = strdup(k);
		h.prov[i].value = strdup("v");
	}
	h.n_prov = n;
	cr_assert_eq(trace_writer_open(&w, path, &h, err, sizeof err), -EINVAL);
	cr_assert(strstr(err, "field 'provenance': expected at most 65536 "
	                      "entries, got 65537"),
	          "%s", err);
	cr_assert(!file_exists(path));

	/* a key given twice */
	free(h.prov[4].key);
	h.prov[4].key = strdup("tool");
	h.n_prov = 5;
	cr_assert_eq(trace_writer_open(&w, path, &h, err, sizeof err), -EINVAL);
	cr_assert(strstr(err, "field 'provenance.tool': duplicate key"), "%s",
	          err);
	h.n_prov = n;
	trace_header_clear(&h);
}
