/* test_capture.c - capture: inference, trace contents, determinism, the
 * greedy replay relation, sampled acceptance vs a real speculative-sampling
 * run, the importer, and bad input through the real binary.
 *
 * Most tests use a small random llama2.c model the test writes itself; the
 * known-output test needs ../shared/models (AHASD_MODELS_DIR) and skips
 * with a message when it is absent. */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixtures.h"
#include "capture.h"
#include "json.h"
#include "llm.h"
#include "llm_kern.h"
#include "sha256.h"
#include "trace.h"
#include "vmath.h"

static char g_model[300], g_tok[300], g_prompts[300];

/* ---------------------------------------------------------------- */
/* helpers: files, random model, running the binary */

static uint64_t rng_state;

static double urand(void)
{
	uint64_t x = (rng_state += 0x9e3779b97f4a7c15ull);
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	x ^= x >> 31;
	return ((double)(x >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

static float grand(void)
{
	return (float)(sqrt(-2.0 * log(urand())) *
	               cos(6.283185307179586 * urand()));
}

static void path_in(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", fx_dir, name);
}

static void put_i32(FILE *f, int32_t v)
{
	cr_assert_eq(fwrite(&v, 4, 1, f), 1);
}

static void put_f32(FILE *f, float v)
{
	cr_assert_eq(fwrite(&v, 4, 1, f), 1);
}

/* dims of the random model: vocab 300 (3 specials, 256 bytes, 27 letters,
 * 14 merges), unshared classifier (negative vocab in the header) */
enum {
	R_DIM = 32,
	R_HID = 48,
	R_LAYERS = 3,
	R_HEADS = 4,
	R_KV = 2,
	R_VOCAB = 300,
	R_SEQ = 96
};

static void write_model(const char *path, const int32_t hdr[7], uint64_t seed)
{
	FILE *f = fopen(path, "wb");
	int32_t dim = hdr[0], hid = hdr[1], L = hdr[2], heads = hdr[3];
	int32_t kvh = hdr[4], V = hdr[5] < 0 ? -hdr[5] : hdr[5], seq = hdr[6];
	int32_t kvd = dim * kvh / heads, hs = dim / heads;
	/* embedding N(0,1); layer matrices N(0, 0.5/sqrt(fan_in)) so each layer
	 * moves the residual stream a little and a skipped layer changes some,
	 * not all, argmaxes; classifier N(0, 2/sqrt(dim)) for peaked outputs */
	float ls = 0.5f / sqrtf((float)dim), lh = 0.5f / sqrtf((float)hid);

	cr_assert_not_null(f);
	rng_state = seed;
	for (int i = 0; i < 7; i++)
		put_i32(f, hdr[i]);
	for (int64_t i = 0; i < (int64_t)V * dim; i++)
		put_f32(f, grand());
	for (int64_t i = 0; i < (int64_t)L * dim; i++)
		put_f32(f, 1.0f + 0.1f * grand());
	for (int64_t i = 0; i < (int64_t)L * dim * dim; i++)
		put_f32(f, ls * grand()); /* wq */
	for (int64_t i = 0; i < (int64_t)L * dim * kvd * 2; i++)
		put_f32(f, ls * grand()); /* wk, wv */
	for (int64_t i = 0; i < (int64_t)L * dim * dim; i++)
		put_f32(f, ls * grand()); /* wo */
	for (int64_t i = 0; i < (int64_t)L * dim; i++)
		put_f32(f, 1.0f + 0.1f * grand());
	for (int64_t i = 0; i < (int64_t)L * hid * dim; i++)
		put_f32(f, ls * grand()); /* w1 */
	for (int64_t i = 0; i < (int64_t)L * hid * dim; i++)
		put_f32(f, lh * grand()); /* w2 */
	for (int64_t i = 0; i < (int64_t)L * hid * dim; i++)
		put_f32(f, ls * grand()); /* w3 */
	for (int i = 0; i < dim; i++)
		put_f32(f, 1.0f);
	for (int64_t i = 0; i < (int64_t)seq * hs; i++)
		put_f32(f, 0.0f); /* freq_cis (unused) */
	if (hdr[5] < 0)
		for (int64_t i = 0; i < (int64_t)V * dim; i++)
			put_f32(f, 2.0f / sqrtf((float)dim) * grand());
	cr_assert_eq(fclose(f), 0);
}

static void put_token(FILE *f, float score, const char *s)
{
	put_f32(f, score);
	put_i32(f, (int32_t)strlen(s));
	cr_assert_eq(fwrite(s, 1, strlen(s), f), strlen(s));
}

static void write_tokenizer(const char *path, int vocab)
{
	static const char *merges[] = { "th", "he", "in", " t", " a",
		                        "an", "er", "on", "re", "at",
		                        "en", "nd", "ed", "es" };
	FILE *f = fopen(path, "wb");
	char buf[16];
	int n = 0;

	cr_assert_not_null(f);
	put_i32(f, 8);
	put_token(f, 0, "<unk>");
	put_token(f, 0, "\n<s>\n");
	put_token(f, 0, "\n</s>\n");
	n = 3;
	for (int b = 0; b < 256; b++, n++) {
		snprintf(buf, sizeof buf, "<0x%02X>", b);
		put_token(f, 0, buf);
	}
	put_token(f, 0, " ");
	n++;
	for (char c = 'a'; c <= 'z'; c++, n++) {
		buf[0] = c;
		buf[1] = '\0';
		put_token(f, 0, buf);
	}
	for (size_t i = 0; i < sizeof merges / sizeof merges[0] && n < vocab;
	     i++, n++)
		put_token(f, (float)(-(int)i), merges[i]);
	for (; n < vocab; n++) {
		snprintf(buf, sizeof buf, "x%d", n);
		put_token(f, -100.0f, buf);
	}
	cr_assert_eq(fclose(f), 0);
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f);
	fputs(text, f);
	cr_assert_eq(fclose(f), 0);
}

static const int32_t g_hdr[7] = { R_DIM, R_HID,    R_LAYERS, R_HEADS,
	                          R_KV,  -R_VOCAB, R_SEQ };

static void setup(void)
{
	fx_tmpdir_make("capture");
	path_in(g_model, sizeof g_model, "rand.bin");
	path_in(g_tok, sizeof g_tok, "tok512.bin");
	path_in(g_prompts, sizeof g_prompts, "prompts.txt");
	write_model(g_model, g_hdr, 42);
	write_tokenizer(g_tok, R_VOCAB);
	write_text(g_prompts,
	           "the cat sat\nan ant ran\n{\"prompt\": \"here and there\"}\n"
	           "a red hat\n");
}

static const char *capture_bin(void)
{
	static char path[512];
	const char *root = getenv("AHASD_BUILD_ROOT");

	cr_assert_not_null(root, "AHASD_BUILD_ROOT not set");
	snprintf(path, sizeof path, "%s/capture/ahasd-capture", root);
	return path;
}

/* Run the real binary with args (NULL-terminated); stderr into errbuf.
 * @return exit status. */
static int run_bin(char *errbuf, size_t errlen, const char *const *args)
{
	char errpath[300];
	const char *argv[40];
	int n = 0, status = 0, fd;
	pid_t pid;
	FILE *f;
	size_t got;

	path_in(errpath, sizeof errpath, "stderr.txt");
	argv[n++] = capture_bin();
	for (; args[n - 1] && n < 39; n++)
		argv[n] = args[n - 1];
	argv[n] = NULL;
	pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0 || dup2(fd, 2) < 0)
			_exit(126);
		fd = open("/dev/null", O_WRONLY);
		if (fd >= 0)
			dup2(fd, 1);
		execv(argv[0], (char *const *)(uintptr_t)argv);
		_exit(127);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	f = fopen(errpath, "r");
	cr_assert_not_null(f);
	got = fread(errbuf, 1, errlen - 1, f);
	errbuf[got] = '\0';
	fclose(f);
	cr_assert(WIFEXITED(status), "binary did not exit normally");
	return WEXITSTATUS(status);
}

static int files_equal(const char *a, const char *b)
{
	FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
	int ca, cb, eq = 1;

	cr_assert(fa && fb);
	do {
		ca = fgetc(fa);
		cb = fgetc(fb);
		if (ca != cb)
			eq = 0;
	} while (eq && ca != EOF);
	fclose(fa);
	fclose(fb);
	return eq;
}

/* A copy of one sequence read from a trace. */
struct rseq {
	uint32_t n, prompt_len, n_cont;
	float *entropy, *top1, *accept, *cont;
	uint32_t *tokens, *cont_pos;
	int32_t *cont_index;
};

static void *dup_mem(const void *p, size_t n)
{
	void *d = malloc(n ? n : 1);
	cr_assert_not_null(d);
	if (n)
		memcpy(d, p, n);
	return d;
}

/* read all sequences of a trace; header copied into *h (caller clears) */
static struct rseq *read_trace(const char *path, struct trace_header *h,
                               size_t *nseq)
{
	struct trace_reader *r = NULL;
	struct trace_seq s;
	struct rseq *v = NULL;
	char err[512];
	size_t n = 0;
	int ret;
	const struct trace_header *rh;

	ret = trace_reader_open(&r, path, err, sizeof err);
	cr_assert_eq(ret, 0, "%s", err);
	rh = trace_reader_header(r);
	*h = *rh;
	h->n_prov = 0;
	h->prov = NULL;
	cr_assert_eq(trace_model_copy(&h->draft, &rh->draft), 0);
	cr_assert_eq(trace_model_copy(&h->target, &rh->target), 0);
	for (size_t i = 0; i < rh->n_prov; i++)
		cr_assert_eq(trace_header_add_prov(h, rh->prov[i].key,
		                                   rh->prov[i].value),
		             0);
	while ((ret = trace_reader_next(r, &s, err, sizeof err)) == 1) {
		struct rseq *q;
		v = realloc(v, (n + 1) * sizeof *v);
		cr_assert_not_null(v);
		q = &v[n++];
		q->n = s.n;
		q->prompt_len = s.prompt_len;
		q->n_cont = s.n_cont;
		q->entropy = dup_mem(s.entropy, s.n * sizeof(float));
		q->top1 = dup_mem(s.top1, s.n * sizeof(float));
		q->accept = dup_mem(s.accept, s.n * sizeof(float));
		q->tokens = s.tokens ? dup_mem(s.tokens, s.n * sizeof(uint32_t))
		                     : NULL;
		q->cont_pos = dup_mem(s.cont_pos, s.n_cont * sizeof(uint32_t));
		q->cont = dup_mem(s.cont_entropy, (size_t)s.n_cont *
		                                          rh->lookahead *
		                                          sizeof(float));
		q->cont_index = dup_mem(s.cont_index, s.n * sizeof(int32_t));
	}
	cr_assert_eq(ret, 0, "%s", err);
	trace_reader_close(&r);
	*nseq = n;
	return v;
}

static void free_trace(struct rseq *v, size_t n, struct trace_header *h)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].entropy);
		free(v[i].top1);
		free(v[i].accept);
		free(v[i].tokens);
		free(v[i].cont_pos);
		free(v[i].cont);
		free(v[i].cont_index);
	}
	free(v);
	trace_header_clear(h);
}

static void base_opts(struct capture_opts *o, const char *out)
{
	capture_opts_init(o);
	o->model = g_model;
	o->prompts = g_prompts;
	o->out = out;
	o->skip_layers = "2";
	o->lookahead = 6;
	o->max_new = 40;
	o->no_stop = 1;
	o->date = "2025-01-01T00:00:00Z";
}

static void do_capture(const struct capture_opts *o)
{
	struct capture_stats st;
	char err[1024];
	int ret = capture_run(o, &st, err, sizeof err);

	cr_assert_eq(ret, 0, "capture: %s", err);
}

TestSuite(capture, .init = setup, .fini = fx_tmpdir_remove, .timeout = 120);

/* ---------------------------------------------------------------- */
/* building blocks */

Test(capture, sha256_vectors)
{
	char hex[65];

	/* FIPS 180-2 examples */
	sha256_hex("abc", 3, hex);
	cr_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9c"
	                      "b410ff61f20015ad");
	sha256_hex("", 0, hex);
	cr_assert_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934c"
	                      "a495991b7852b855");
	sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
	           56, hex);
	cr_assert_str_eq(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167"
	                      "f6ecedd419db06c1");
}

Test(capture, json_strict)
{
	struct json_value *v = NULL;
	char err[256];
	static const char *bad[] = {
		"{\"a\": 1,}",
		"[1 2]",
		"{\"a\": 1, \"a\": 2}",
		"\"\\x\"",
		"01",
		"{\"a\": NaN}",
		"[1] x",
		"\"\\ud800\"",
		"{'a': 1}",
		"",
	};
	const struct json_value *a;

	static const char good[] =
	        "{\"a\": [1, 2.5e1, -3], \"b\": \"\\u00e9\\n\", "
	        "\"c\": 18446744073709551615, \"d\": null}";

	cr_assert_eq(json_parse(good, strlen(good), &v, err, sizeof err), 0,
	             "%s", err);
	a = json_get(v, "a");
	cr_assert_eq(a->type, JSON_ARRAY);
	cr_assert_eq(a->len, 3);
	cr_assert_float_eq(a->items[1].num, 25.0, 1e-12);
	cr_assert(!a->items[2].is_uint);
	cr_assert_str_eq(json_get(v, "b")->str, "\xc3\xa9\n");
	cr_assert(json_get(v, "c")->is_uint);
	cr_assert_eq(json_get(v, "c")->u64, UINT64_MAX);
	json_free(&v);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cr_assert_neq(
		        json_parse(bad[i], strlen(bad[i]), &v, err, sizeof err),
		        0, "accepted %s", bad[i]);
		cr_assert_null(v);
		cr_assert(strstr(err, "column") != NULL, "%s", err);
	}
}

Test(capture, tokenizer_roundtrip)
{
	struct llm_tokenizer *t = NULL;
	char err[256], out[256] = "";
	int toks[64], n;

	cr_assert_eq(llm_tokenizer_load(&t, g_tok, R_VOCAB, err, sizeof err), 0,
	             "%s", err);
	n = llm_encode(t, "the end!", toks, 64);
	/* BOS, then " the end!" merges: " t"+"he"? best score first: "th" (0)
	 * beats " t" (-3): " ","th","e"... then no merge of "th"+"e"; "en" (-10)
	 * merges e,n; "nd"(-11) cannot since n is taken. Decoding must give
	 * the text back whatever the merges. '!' has no token: byte fallback. */
	cr_assert_gt(n, 2);
	cr_assert_eq(toks[0], LLM_BOS);
	for (int i = 1; i < n; i++)
		strcat(out, llm_decode(t, toks[i - 1], toks[i]));
	cr_assert_str_eq(out, "the end!");
	cr_assert_eq(toks[n - 1], '!' + 3, "byte fallback token for '!'");
	llm_tokenizer_free(&t);
	cr_assert_null(t);
}

/* ---------------------------------------------------------------- */
/* known output on the real model */

Test(capture, stories260k_known_output)
{
	const char *dir = getenv("AHASD_MODELS_DIR");
	char model[600], tok[600], err[512], text[4096] = "", out[300],
	                                     prompts[300];
	struct llm_model *m = NULL;
	struct llm_tokenizer *t = NULL;
	struct capture_opts o;
	struct trace_header h;
	struct rseq *seqs;
	size_t ns;
	int toks[32], n, cur;
	/* llama2.c README: ./run stories260K.bin -z tok512.bin -t 0.0 */
	static const char expect[] =
	        "Once upon a time, there was a little girl named Lily. She "
	        "loved to "
	        "play outside in the park. One day, she saw a big, red ball. "
	        "She "
	        "wanted to play with it, but it was too high.";

	snprintf(model, sizeof model, "%s/stories260K/stories260K.bin",
	         dir ? dir : "");
	snprintf(tok, sizeof tok, "%s/stories260K/tok512.bin", dir ? dir : "");
	if (!dir || access(model, R_OK) != 0 || access(tok, R_OK) != 0)
		cr_skip_test(
		        "stories260K not found under AHASD_MODELS_DIR (%s): "
		        "known-output test skipped",
		        dir ? dir : "unset");
	cr_assert_eq(llm_load(&m, model, err, sizeof err), 0, "%s", err);
	cr_assert_eq(
	        llm_tokenizer_load(&t, tok, m->cfg.vocab_size, err, sizeof err),
	        0, "%s", err);
	n = llm_encode(t, "Once upon a time", toks, 32);
	cr_assert_gt(n, 1);
	cur = toks[0];
	for (int pos = 0; pos < 80; pos++) {
		const float *lg = llm_forward(m, cur, pos);
		int next = pos + 1 < n ? toks[pos + 1]
		                       : llm_argmax(lg, m->cfg.vocab_size);
		strcat(text, llm_decode(t, cur, next));
		cur = next;
	}
	cr_assert(strncmp(text, expect, strlen(expect)) == 0, "got: %s", text);

	/* the same text through a capture: trace tokens decode to it */
	path_in(out, sizeof out, "s.msgpack");
	path_in(prompts, sizeof prompts, "once.txt");
	write_text(prompts, "Once upon a time\n");
	capture_opts_init(&o);
	o.model = model;
	o.prompts = prompts;
	o.out = out;
	o.skip_layers = "3";
	o.max_new = 80;
	o.date = "2025-01-01T00:00:00Z";
	do_capture(&o);
	seqs = read_trace(out, &h, &ns);
	cr_assert_eq(ns, 1);
	cr_assert_eq(seqs[0].prompt_len, (uint32_t)n);
	strcpy(text, "Once upon a time");
	cur = toks[n - 1];
	for (uint32_t i = 0; i < seqs[0].n; i++) {
		strcat(text, llm_decode(t, cur, (int)seqs[0].tokens[i]));
		cur = (int)seqs[0].tokens[i];
	}
	cr_assert(strncmp(text, expect, strlen(expect)) == 0, "got: %s", text);
	cr_assert_str_eq(trace_header_prov(&h, "target_model_sha256"),
	                 "b0a507e7ad0f626624f17112325e66691f9076d622e1d3274d103"
	                 "d00299f2696");
	free_trace(seqs, ns, &h);
	llm_free(&m);
	llm_tokenizer_free(&t);
}

/* ---------------------------------------------------------------- */
/* trace contents */

Test(capture, header_ops_and_provenance)
{
	char out[300], sha[65];
	struct capture_opts o;
	struct trace_header h;
	struct rseq *seqs;
	size_t ns;
	uint32_t wq_t = 0, wq_d = 0, emb = 0;

	path_in(out, sizeof out, "h.msgpack");
	base_opts(&o, out);
	o.quant_bits = 4;
	do_capture(&o);
	seqs = read_trace(out, &h, &ns);
	cr_assert_eq(ns, 4);
	/* the target runs all 3 layers at fp32; the draft skips layer 2 and
	 * holds int4 weights */
	cr_assert_eq(h.target.n_layers, 3);
	cr_assert_eq(h.draft.n_layers, 2);
	cr_assert_eq(h.target.weight_bits, 32);
	cr_assert_eq(h.draft.weight_bits, 4);
	cr_assert_lt(h.draft.weight_bytes * 4, h.target.weight_bytes);
	for (uint32_t i = 0; i < h.target.n_ops; i++) {
		const struct trace_op *op = &h.target.ops[i];
		if (strcmp(op->name, "wq") == 0) {
			wq_t = op->repeat;
			cr_assert_eq(op->k, R_DIM);
			cr_assert_eq(op->n, R_DIM);
		}
		if (strcmp(op->name, "wk") == 0)
			cr_assert_eq(op->n, R_DIM * R_KV / R_HEADS);
		if (strcmp(op->name, "tok_embedding") == 0)
			emb = op->repeat;
		if (op->kind == TRACE_OP_ATTENTION) {
			cr_assert_eq(op->heads, R_HEADS);
			cr_assert_eq(op->kv_heads, R_KV);
			cr_assert_eq(op->head_dim, R_DIM / R_HEADS);
		}
	}
	for (uint32_t i = 0; i < h.draft.n_ops; i++)
		if (strcmp(h.draft.ops[i].name, "wq") == 0)
			wq_d = h.draft.ops[i].repeat;
	cr_assert_eq(wq_t, 3);
	cr_assert_eq(wq_d, 2);
	cr_assert_eq(emb, 1);
	/* fp32 target weight bytes: emb V*d + cls V*d + per layer (2 d^2 +
	 * 2 d*kvd + 3 d*hid + 2 d) + d, times 4 bytes:
	 * 300*32*2 = 19200; layer 2*1024 + 2*512 + 3*1536 + 64 = 7744, x3 =
	 * 23232; + 32 = 42464 floats = 169856 bytes */
	cr_assert_eq(h.target.weight_bytes, 169856);
	cr_assert_eq(sha256_file_hex(g_model, sha), 0);
	cr_assert_str_eq(trace_header_prov(&h, "target_model_sha256"), sha);
	cr_assert_str_eq(trace_header_prov(&h, "draft_quant"), "int4");
	cr_assert_str_eq(trace_header_prov(&h, "draft_skip_layers"), "2");
	cr_assert_str_eq(trace_header_prov(&h, "date"), "2025-01-01T00:00:00Z");
	cr_assert_str_eq(trace_header_prov(&h, "runtime"), CAPTURE_RUNTIME);
	cr_assert_str_eq(trace_header_prov(&h, "prompt_source"), g_prompts);
	cr_assert_not_null(trace_header_prov(&h, "prompt_source_sha256"));
	cr_assert_not_null(trace_header_prov(&h, "tool_version"));
	/* seq_len 96, prompts of <= 13 tokens, K 6: cap 96 - P - 6 + 1 >= 76,
	 * so max_new 40 holds for all */
	cr_assert_str_eq(trace_header_prov(&h, "capped_sequences"), "0");
	for (size_t s = 0; s < ns; s++)
		cr_assert_eq(seqs[s].n, 40);
	free_trace(seqs, ns, &h);
}

Test(capture, generation_cap_at_context)
{
	char out[300];
	struct capture_opts o;
	struct trace_header h;
	struct rseq *seqs;
	size_t ns;

	path_in(out, sizeof out, "cap.msgpack");
	base_opts(&o, out);
	o.max_new = 500;
	do_capture(&o);
	seqs = read_trace(out, &h, &ns);
	/* generated n = seq_len - prompt_len - K + 1 so that the last
	 * continuation forward stays at position <= seq_len - 1 */
	for (size_t s = 0; s < ns; s++)
		cr_assert_eq(seqs[s].n, R_SEQ - seqs[s].prompt_len - 6 + 1);
	cr_assert_str_eq(trace_header_prov(&h, "capped_sequences"), "4");
	free_trace(seqs, ns, &h);
}

/* The continuation pass must not disturb the main pass: the per-position
 * records do not depend on the lookahead, and a continuation row equals a
 * fresh draft run over (true prefix, draft token, its own argmaxes). */
Test(capture, continuation_independent_and_exact)
{
	char out1[300], out2[300], err[256];
	struct capture_opts o;
	struct trace_header h1, h2;
	struct rseq *a, *b;
	size_t na, nb;
	struct capture_pair pair;
	int checked = 0;

	path_in(out1, sizeof out1, "k1.msgpack");
	path_in(out2, sizeof out2, "k8.msgpack");
	base_opts(&o, out1);
	o.lookahead = 1;
	do_capture(&o);
	o.out = out2;
	o.lookahead = 8;
	do_capture(&o);
	a = read_trace(out1, &h1, &na);
	b = read_trace(out2, &h2, &nb);
	cr_assert_eq(na, nb);
	for (size_t s = 0; s < na; s++) {
		cr_assert_eq(a[s].n, b[s].n);
		cr_assert_eq(memcmp(a[s].entropy, b[s].entropy, a[s].n * 4), 0);
		cr_assert_eq(memcmp(a[s].accept, b[s].accept, a[s].n * 4), 0);
		cr_assert_eq(memcmp(a[s].tokens, b[s].tokens, a[s].n * 4), 0);
		cr_assert_eq(a[s].n_cont, b[s].n_cont);
		for (uint32_t r = 0; r < a[s].n_cont; r++)
			cr_assert_eq(a[s].cont[r], b[s].cont[(size_t)r * 8]);
	}

	/* recompute the rows of sequence 0 from scratch */
	cr_assert_eq(capture_pair_open(&pair, &o, err, sizeof err), 0, "%s",
	             err);
	{
		int toks[64], P = llm_encode(pair.tok, "the cat sat", toks, 64);
		int V = R_VOCAB;
		float *q = malloc(V * sizeof *q);
		cr_assert_eq((uint32_t)P, b[0].prompt_len);
		for (uint32_t r = 0; r < b[0].n_cont && r < 5; r++, checked++) {
			uint32_t i = b[0].cont_pos[r];
			const float *lg = NULL;
			int c;
			/* fresh pass: prompt then true tokens up to position i - 1 */
			for (int t = 0; t < P; t++)
				lg = llm_forward(pair.draft, toks[t], t);
			for (uint32_t t = 0; t < i; t++)
				lg = llm_forward(pair.draft,
				                 (int)b[0].tokens[t],
				                 P + (int)t);
			c = llm_argmax(lg, V);
			cr_assert_neq((uint32_t)c, b[0].tokens[i],
			              "greedy a_p=0 means "
			              "the draft's argmax differs from the "
			              "target token");
			for (uint32_t j = 0; j < 8; j++) {
				lg = llm_forward(pair.draft, c,
				                 P + (int)i + (int)j);
				llm_softmax(q, lg, V, 1.0);
				cr_assert_float_eq(b[0].cont[(size_t)r * 8 + j],
				                   (float)llm_entropy(q, V),
				                   1e-5, "row %u step %u", r,
				                   j);
				c = llm_argmax(q, V);
			}
		}
		free(q);
	}
	cr_assert_gt(checked, 0, "no rejected position to check");
	capture_pair_close(&pair);
	free_trace(a, na, &h1);
	free_trace(b, nb, &h2);
}

/* ---------------------------------------------------------------- */
/* the forward pass, bit for bit
 *
 * llm_forward computes several rows of a matmul (and several attention
 * positions) side by side, keeps keys transposed and RoPE angles in a
 * table; none of that may change a single bit of the logits. The
 * reference below is the plain scalar forward of llama2.c's run.c as this
 * project first wrote it: row-major weights, one dot product at a time,
 * one KV row per position, powf/cosf/sinf per pair. */

struct ref_run {
	float *x, *xb, *xb2, *hb, *hb2, *q, *att, *logits, *kc, *vc;
};

static void ref_alloc(struct ref_run *r, const struct llm_config *c)
{
	size_t kvd = (size_t)c->dim * c->n_kv_heads / c->n_heads;
	size_t cache = (size_t)c->n_layers * c->seq_len * kvd;

	r->x = calloc(c->dim, sizeof(float));
	r->xb = calloc(c->dim, sizeof(float));
	r->xb2 = calloc(c->dim, sizeof(float));
	r->hb = calloc(c->hidden_dim, sizeof(float));
	r->hb2 = calloc(c->hidden_dim, sizeof(float));
	r->q = calloc(c->dim, sizeof(float));
	r->att = calloc((size_t)c->n_heads * c->seq_len, sizeof(float));
	r->logits = calloc(c->vocab_size, sizeof(float));
	r->kc = calloc(cache, sizeof(float));
	r->vc = calloc(cache, sizeof(float));
	cr_assert(r->x && r->xb && r->xb2 && r->hb && r->hb2 && r->q &&
	          r->att && r->logits && r->kc && r->vc);
}

static void ref_free(struct ref_run *r)
{
	free(r->x);
	free(r->xb);
	free(r->xb2);
	free(r->hb);
	free(r->hb2);
	free(r->q);
	free(r->att);
	free(r->logits);
	free(r->kc);
	free(r->vc);
}

static void ref_rmsnorm(float *o, const float *x, const float *w, int n)
{
	float ss = 0.0f;

	for (int j = 0; j < n; j++)
		ss += x[j] * x[j];
	ss /= (float)n;
	ss += 1e-5f;
	ss = 1.0f / sqrtf(ss);
	for (int j = 0; j < n; j++)
		o[j] = w[j] * (ss * x[j]);
}

static void ref_softmax(float *x, int n)
{
	float max = x[0], sum = 0.0f;

	for (int i = 1; i < n; i++)
		if (x[i] > max)
			max = x[i];
	for (int i = 0; i < n; i++) {
		x[i] = expf(x[i] - max);
		sum += x[i];
	}
	for (int i = 0; i < n; i++)
		x[i] /= sum;
}

static void ref_matmul(float *xout, const float *x, const float *w, int n,
                       int d)
{
	for (int i = 0; i < d; i++) {
		float val = 0.0f;
		for (int j = 0; j < n; j++)
			val += w[(size_t)i * n + j] * x[j];
		xout[i] = val;
	}
}

static const float *ref_forward(struct ref_run *r, const struct llm_model *m,
                                int token, int pos)
{
	const struct llm_config *p = &m->cfg;
	const struct llm_weights *w = &m->w;
	int dim = p->dim, hid = p->hidden_dim, hs = dim / p->n_heads;
	int kv_dim = dim * p->n_kv_heads / p->n_heads;
	int kv_mul = p->n_heads / p->n_kv_heads;
	float *x = r->x;

	memcpy(x, w->tok_emb + (size_t)token * dim, dim * sizeof(float));
	for (int l = 0; l < p->n_layers; l++) {
		size_t loff = (size_t)l * p->seq_len * kv_dim,
		       ld = (size_t)l * dim;
		float *kc = r->kc + loff + (size_t)pos * kv_dim;
		float *vc = r->vc + loff + (size_t)pos * kv_dim;

		if (!m->active[l])
			continue;
		ref_rmsnorm(r->xb, x, w->rms_att + ld, dim);
		ref_matmul(r->q, r->xb, w->wq + ld * dim, dim, dim);
		ref_matmul(kc, r->xb, w->wk + (size_t)l * dim * kv_dim, dim,
		           kv_dim);
		ref_matmul(vc, r->xb, w->wv + (size_t)l * dim * kv_dim, dim,
		           kv_dim);
		for (int i = 0; i < dim; i += 2) {
			int hd = i % hs;
			float freq = 1.0f /
			             powf(10000.0f, (float)hd / (float)hs);
			float val = (float)pos * freq;
			float fcr = cosf(val), fci = sinf(val);
			for (int v = 0; v < (i < kv_dim ? 2 : 1); v++) {
				float *vec = v == 0 ? r->q : kc;
				float v0 = vec[i], v1 = vec[i + 1];
				vec[i] = v0 * fcr - v1 * fci;
				vec[i + 1] = v0 * fci + v1 * fcr;
			}
		}
		for (int h = 0; h < p->n_heads; h++) {
			const float *q = r->q + h * hs;
			float *att = r->att + (size_t)h * p->seq_len,
			      *xb = r->xb + h * hs;
			size_t hoff = (size_t)(h / kv_mul) * hs;
			for (int t = 0; t <= pos; t++) {
				const float *k = r->kc + loff +
				                 (size_t)t * kv_dim + hoff;
				float score = 0.0f;
				for (int i = 0; i < hs; i++)
					score += q[i] * k[i];
				att[t] = score / sqrtf((float)hs);
			}
			ref_softmax(att, pos + 1);
			memset(xb, 0, hs * sizeof(float));
			for (int t = 0; t <= pos; t++) {
				const float *v = r->vc + loff +
				                 (size_t)t * kv_dim + hoff;
				for (int i = 0; i < hs; i++)
					xb[i] += att[t] * v[i];
			}
		}
		ref_matmul(r->xb2, r->xb, w->wo + ld * dim, dim, dim);
		for (int i = 0; i < dim; i++)
			x[i] += r->xb2[i];
		ref_rmsnorm(r->xb, x, w->rms_ffn + ld, dim);
		ref_matmul(r->hb, r->xb, w->w1 + (size_t)l * dim * hid, dim,
		           hid);
		ref_matmul(r->hb2, r->xb, w->w3 + (size_t)l * dim * hid, dim,
		           hid);
		for (int i = 0; i < hid; i++) {
			float val = r->hb[i];
			val *= 1.0f / (1.0f + expf(-val));
			r->hb[i] = val * r->hb2[i];
		}
		ref_matmul(r->xb, r->hb, w->w2 + (size_t)l * dim * hid, hid,
		           dim);
		for (int i = 0; i < dim; i++)
			x[i] += r->xb[i];
	}
	ref_rmsnorm(x, x, w->rms_final, dim);
	ref_matmul(r->logits, x, w->wcls, dim, p->vocab_size);
	return r->logits;
}

/* token fed at pos: any deterministic walk over the vocabulary */
static int walk_token(int pos, int vocab)
{
	return (pos * 37 + 11) % vocab;
}

struct fwd_case {
	const char *what;
	int32_t hdr[7];   /* dim hid layers heads kv vocab seq */
	const char *skip; /* NULL or a layer list */
	int quant;        /* 0, 8 or 4 */
};

/* shapes that take every path: 16-, 32-row and ragged matmul blocks, odd
 * and even numbers of blocks, head sizes 4, 6 (no 4-float value slices),
 * 8 and 16, GQA 2:1 and 3:1, contexts that are not a whole number of
 * 32-position blocks, shared classifier */
static const struct fwd_case fwd_cases[] = {
	{ "random model",
	  { R_DIM, R_HID, R_LAYERS, R_HEADS, R_KV, -R_VOCAB, R_SEQ },
	  NULL,
	  0 },
	{ "skip layer 2",
	  { R_DIM, R_HID, R_LAYERS, R_HEADS, R_KV, -R_VOCAB, R_SEQ },
	  "2",
	  0 },
	{ "int8",
	  { R_DIM, R_HID, R_LAYERS, R_HEADS, R_KV, -R_VOCAB, R_SEQ },
	  NULL,
	  8 },
	{ "int4, skip 1,3",
	  { R_DIM, R_HID, R_LAYERS, R_HEADS, R_KV, -R_VOCAB, R_SEQ },
	  "1,3",
	  4 },
	{ "head size 6", { 24, 40, 2, 4, 2, -R_VOCAB, 50 }, NULL, 0 },
	{ "head size 16, GQA 3:1", { 48, 72, 2, 3, 1, R_VOCAB, 41 }, NULL, 0 },
	/* eight heads of 8 (stories260K's shape: one 8-float lane a head),
	 * eight of 4, four of 16: every grouping of the value sums */
	{ "8 heads of 8, GQA 2:1",
	  { 64, 172, 2, 8, 4, -R_VOCAB, 70 },
	  NULL,
	  0 },
	{ "8 heads of 4", { 32, 40, 2, 8, 8, R_VOCAB, 40 }, NULL, 0 },
	{ "4 heads of 16, GQA 2:1",
	  { 64, 64, 2, 4, 2, -R_VOCAB, 45 },
	  NULL,
	  0 },
};

static void check_forward(const struct fwd_case *fc)
{
	char path[300], err[256];
	struct llm_model *m = NULL;
	struct ref_run r;

	path_in(path, sizeof path, "shape.bin");
	write_model(path, fc->hdr, 5);
	cr_assert_eq(llm_load(&m, path, err, sizeof err), 0, "%s", err);
	if (fc->skip)
		cr_assert_eq(llm_skip_layers(m, fc->skip, err, sizeof err), 0,
		             "%s", err);
	if (fc->quant)
		cr_assert_eq(llm_quantize(m, fc->quant, err, sizeof err), 0,
		             "%s", err);
	ref_alloc(&r, &m->cfg);
	for (int pos = 0; pos < m->cfg.seq_len; pos++) {
		int tok = walk_token(pos, m->cfg.vocab_size);
		const float *want = ref_forward(&r, m, tok, pos);
		const float *got = llm_forward(m, tok, pos);
		cr_assert_eq(
		        memcmp(got, want, m->cfg.vocab_size * sizeof(float)), 0,
		        "%s: logits differ from the reference at position %d",
		        fc->what, pos);
	}
	ref_free(&r);
	llm_free(&m);
}

/* every kernel set this CPU can run: each must match the reference */
static void for_each_kernel_set(void (*fn)(const char *))
{
	const struct llm_kern *chosen = llm_kern_select();

	llm_kern_use(&llm_kern_base);
	fn(llm_kern_base.name);
#ifdef LLM_KERN_AVX2
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx2")) {
		llm_kern_use(&llm_kern_avx2);
		fn(llm_kern_avx2.name);
	} else {
		fprintf(stderr,
		        "no AVX2 here: the avx2 kernels are not tested\n");
	}
	if (__builtin_cpu_supports("avx512f")) {
		llm_kern_use(&llm_kern_avx512);
		fn(llm_kern_avx512.name);
	} else {
		fprintf(stderr,
		        "no AVX-512 here: the avx512 kernels are not tested\n");
	}
#endif
	llm_kern_use(chosen);
}

static void check_forward_all(const char *kern)
{
	cr_log_info("forward vs reference: kernels %s", kern);
	for (size_t i = 0; i < sizeof fwd_cases / sizeof fwd_cases[0]; i++)
		check_forward(&fwd_cases[i]);
}

Test(capture, forward_bit_identical_to_reference)
{
	for_each_kernel_set(check_forward_all);
}

/* vexpf_sub/vexpf_rows/vexpf_neg against expf over every 512th float of
 * either sign up to the overflow limit (6.4 million values, the special
 * paths included), odd lengths and in place: the replica vmath_select()
 * picks must agree on every one. glibc's two builds of expf differ on two
 * floats (included), so the other replica may differ there and nowhere
 * else. (Exhaustively, over all 2^32 floats, each replica agrees with its
 * build of glibc 2.36.) */
static const float exp_split[] = { -0x1.f8cbb2p+5f, 0x1.04845ep+5f };

static size_t exp_mismatches(int neg, float sub, int *only_split)
{
	enum { N = 4099 }; /* not a multiple of 4: every tail length */
	static float in[N], got[N];
	size_t bad = 0;
	uint32_t u = 0;
	int n = 0, done = 0;

	*only_split = 1;
	while (!done) {
		float x;
		uint32_t v = u;

		memcpy(&x, &v, sizeof x);
		if (x > 88.75f) {
			done = 1;
			in[n++] = exp_split[0];
			in[n++] = exp_split[1];
		} else {
			in[n++] = neg ? -x : x + sub;
			v = u | 0x80000000u;
			memcpy(&x, &v, sizeof x);
			in[n++] = neg ? -x : x + sub;
			in[n++] = x - 20.0f;
			u += 512;
		}
		if (n + 3 > N || done) {
			int len = n - (int)(u / 512 % 5); /* lengths vary */
			if (len < 1)
				len = n;
			memcpy(got, in, (size_t)n * sizeof *got);
			if (neg) {
				vexpf_neg(got, got, len); /* in place */
			} else if (u / 512 % 3 == 0 && len >= 8) {
				/* two rows of a multiple of 4, the rest one by one */
				const int h = (len / 2) & ~3;
				const float subs[2] = { sub, sub };

				vexpf_rows(got, (size_t)h, subs, 2, h);
				vexpf_sub(got + 2 * h, got + 2 * h, sub,
				          len - 2 * h);
			} else {
				vexpf_sub(got, got, sub, len);
			}
			for (int i = 0; i < len; i++) {
				float want = neg ? expf(-in[i])
				                 : expf(in[i] - sub);
				if (memcmp(&got[i], &want, sizeof want)) {
					float a = neg ? -in[i] : in[i] - sub;
					bad++;
					if (memcmp(&a, &exp_split[0], 4) &&
					    memcmp(&a, &exp_split[1], 4))
						*only_split = 0;
				}
			}
			memmove(in, in + len, (size_t)(n - len) * sizeof *in);
			n -= len;
		}
	}
	return bad;
}

Test(capture, vexpf_bit_identical_to_expf)
{
	const char *sel = vmath_which(0);
	static const char *names[] = { "glibc-fma", "glibc-fma-avx2", "glibc",
		                       "libm" };

	cr_log_info("vexpf: %s", sel);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 27)
	/* glibc's expf is the algorithm the replicas copy: one must agree */
	cr_expect_neq(strcmp(sel, "libm"), 0,
	              "no replica agrees with glibc's "
	              "expf: the forward pass calls it value by value");
#endif
	for (size_t k = 0; k < 4; k++) {
		int only_split[3];
		size_t bad;

		if (vmath_use(names[k]) != 0)
			continue;
		bad = exp_mismatches(0, 0.0f, &only_split[0]) +
		      exp_mismatches(0, 3.25f, &only_split[1]) +
		      exp_mismatches(1, 0.0f, &only_split[2]);
		if (strcmp(names[k], sel) == 0 ||
		    strcmp(names[k], "libm") == 0 ||
		    (k == 1 && strcmp(sel, "glibc-fma") == 0))
			cr_expect_eq(bad, 0,
			             "vexpf %s (selected: %s): %zu values "
			             "differ from expf",
			             names[k], sel, bad);
		else if (strcmp(sel, "libm") != 0)
			cr_expect(only_split[0] && only_split[1] &&
			                  only_split[2],
			          "vexpf %s differs from expf (%s) beyond the "
			          "two "
			          "floats glibc's builds disagree on",
			          names[k], sel);
	}
	vmath_reset();
}

/* vexp against exp over 2 million doubles of either sign spread by their
 * bits over magnitudes from 2^-60 to 2^10 (the special paths included),
 * and vlogf against log over every 1024th positive float (2 million), in
 * chunks of odd lengths, vexp in place: the replicas vmath_select()
 * picks must agree on every one (glibc's two builds differ on 0.07% of
 * exp's and on 7116 of log's inputs, so only the chosen one can). */
static size_t exp_log_mismatches(size_t *bad_log)
{
	enum { N = 1027 };
	static double x[N], y[N];
	static float f[N];
	size_t bad = 0;

	*bad_log = 0;
	for (uint64_t c = 0; c < 2048; c++) {
		for (int i = 0; i < N; i++) {
			uint64_t u = 0x3c30000000000000ull +
			             (c * N + (uint64_t)i) *
			                     0x000055e2c0d6b7a1ull;
			memcpy(&x[i], &u, sizeof x[i]);
			if (i & 1)
				x[i] = -x[i];
			y[i] = x[i];
		}
		vexp(y, y, N - (int)(c % 7));
		for (int i = 0; i < N - (int)(c % 7); i++) {
			double want = exp(x[i]);
			bad += memcmp(&y[i], &want, sizeof want) != 0;
		}
	}
	for (uint32_t u = 1; u < 0x7f800000u;) {
		int n = 0;

		for (; n < N - 5 && u < 0x7f800000u; n++, u += 1024)
			memcpy(&f[n], &u, sizeof f[n]);
		vlogf(y, f, n);
		for (int i = 0; i < n; i++) {
			double want = log((double)f[i]);
			*bad_log += memcmp(&y[i], &want, sizeof want) != 0;
		}
	}
	return bad;
}

Test(capture, vexp_vlogf_bit_identical_to_exp_log)
{
	size_t bad_exp, bad_log;

	cr_log_info("vexp: %s, vlogf: %s", vmath_which(1), vmath_which(2));
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 28)
	cr_expect_neq(strcmp(vmath_which(1), "libm"), 0,
	              "no replica agrees "
	              "with glibc's exp");
	cr_expect_neq(strcmp(vmath_which(2), "libm"), 0,
	              "no replica agrees "
	              "with glibc's log");
#endif
	bad_exp = exp_log_mismatches(&bad_log);
	cr_expect_eq(bad_exp, 0, "vexp (%s): %zu values differ from exp",
	             vmath_which(1), bad_exp);
	cr_expect_eq(bad_log, 0, "vlogf (%s): %zu values differ from log",
	             vmath_which(2), bad_log);
	/* the library's own, value by value, through the same entry points */
	cr_assert_eq(vmath_use("libm"), 0);
	bad_exp = exp_log_mismatches(&bad_log);
	cr_expect_eq(bad_exp + bad_log, 0);
	vmath_reset();
}

/* llm_argmax finds the largest value first, then its first index: the
 * same index as the reference loop on ties, +0/-0, NaN and odd lengths */
static int ref_argmax(const float *v, int n)
{
	int best = 0;

	for (int i = 1; i < n; i++)
		if (v[i] > v[best])
			best = i;
	return best;
}

Test(capture, argmax_as_reference_loop)
{
	float v[67];

	rng_state = 99;
	for (int trial = 0; trial < 4000; trial++) {
		const int n = 1 + trial % 67;

		for (int i = 0; i < n; i++) {
			/* few distinct values: many ties */
			int r = (int)(urand() * 7.0);
			v[i] = r == 0   ? 0.0f
			       : r == 1 ? -0.0f
			       : r == 2 ? NAN
			                : (float)(r - 4);
		}
		if (trial % 5 == 0)
			v[0] = NAN;
		cr_assert_eq(llm_argmax(v, n), ref_argmax(v, n), "trial %d",
		             trial);
	}
}

/* llm_greedy_token is the argmax of the softmax, near-ties, equal
 * maxima, infinities and NaN included */
Test(capture, greedy_token_as_argmax_of_softmax)
{
	enum { V = 97 };
	float lg[V], p[V], scratch[V];

	rng_state = 5;
	for (int trial = 0; trial < 20000; trial++) {
		const int kind = trial % 8;

		for (int i = 0; i < V; i++)
			lg[i] = (float)(4.0 * (urand() - 0.5));
		if (kind == 1 || kind == 2) { /* a near-tie at the top */
			int a = (int)(urand() * V), b = (int)(urand() * V);
			lg[a] = 3.0f;
			lg[b] = kind == 1 ? nextafterf(3.0f, 0.0f)
			                  : 3.0f - (float)(urand() * 0x1p-18);
		}
		if (kind == 3) /* equal maxima */
			lg[(int)(urand() * V)] = lg[(int)(urand() * V)] = 5.0f;
		if (kind == 4)
			lg[(int)(urand() * V)] = NAN;
		if (kind == 5)
			lg[(int)(urand() * V)] = INFINITY;
		if (kind == 6)
			lg[(int)(urand() * V)] = -INFINITY;
		llm_softmax(p, lg, V, 1.0);
		cr_assert_eq(llm_greedy_token(lg, V, scratch), llm_argmax(p, V),
		             "trial %d", trial);
	}
}

/* llm_forward_batch: streams from different prefixes of one true prefix,
 * stepped together, slots refilled as streams end, must give each
 * stream's logits bit for bit as a model that runs the true prefix and
 * then the stream's tokens one llm_forward() at a time. */
static void check_batch_case(const struct fwd_case *fc)
{
	enum { CAP = 5, ROWS = 7, STREAMS = 13 };
	char path[300], err[256];
	struct llm_model *m = NULL, *ref = NULL;
	struct llm_batch b;
	int V, T, prefix[STREAMS], len[STREAMS], done[STREAMS] = { 0 };
	int slot_of[CAP], next = 0, checked = 0;

	path_in(path, sizeof path, "batch.bin");
	write_model(path, fc->hdr, 11);
	cr_assert_eq(llm_load(&m, path, err, sizeof err), 0, "%s", err);
	cr_assert_eq(llm_load(&ref, path, err, sizeof err), 0, "%s", err);
	if (fc->skip) {
		cr_assert_eq(llm_skip_layers(m, fc->skip, err, sizeof err), 0);
		cr_assert_eq(llm_skip_layers(ref, fc->skip, err, sizeof err),
		             0);
	}
	if (fc->quant) {
		cr_assert_eq(llm_quantize(m, fc->quant, err, sizeof err), 0);
		cr_assert_eq(llm_quantize(ref, fc->quant, err, sizeof err), 0);
	}
	V = m->cfg.vocab_size;
	T = m->cfg.seq_len - ROWS; /* the true prefix */
	for (int t = 0; t < T; t++)
		(void)llm_forward(m, walk_token(t, V), t);
	for (int e = 0; e < STREAMS; e++) {
		prefix[e] = e == 0 ? 0 : (e * 37) % T; /* the first from 0 */
		len[e] = 1 + (e * 5) % ROWS;           /* 1 .. ROWS steps */
	}
	cr_assert_eq(llm_batch_init(&b, m, CAP, ROWS), 0);
	for (int k = 0; k < CAP; k++)
		slot_of[k] = -1;
	for (;;) {
		struct llm_step st[CAP];
		int who[CAP], n = 0;

		for (int k = 0; k < CAP; k++) {
			if (slot_of[k] < 0 && next < STREAMS)
				slot_of[k] = next++;
			if (slot_of[k] >= 0) {
				int e = slot_of[k];
				st[n] = (struct llm_step){
					.slot = k,
					.token = walk_token(
					        1000 + 7 * e + done[e], V),
					.pos = prefix[e] + done[e],
					.prefix = prefix[e]
				};
				who[n++] = e;
			}
		}
		if (n == 0)
			break;
		llm_forward_batch(m, &b, st, n);
		for (int i = 0; i < n; i++) {
			int e = who[i];
			const float *want = NULL;

			/* the reference: true prefix, then the stream's tokens */
			for (int t = 0; t < prefix[e]; t++)
				want = llm_forward(ref, walk_token(t, V), t);
			for (int j = 0; j <= done[e]; j++)
				want = llm_forward(
				        ref, walk_token(1000 + 7 * e + j, V),
				        prefix[e] + j);
			cr_assert_eq(
			        memcmp(b.logits + (size_t)i * V, want,
			               (size_t)V * sizeof(float)),
			        0, "%s: stream %d (prefix %d) step %d differs",
			        fc->what, e, prefix[e], done[e]);
			checked++;
			if (++done[e] == len[e])
				slot_of[st[i].slot] = -1;
		}
	}
	cr_assert_gt(checked, STREAMS);
	llm_batch_free(&b);
	llm_free(&m);
	llm_free(&ref);
}

static void check_batch_all(const char *kern)
{
	cr_log_info("batched streams vs one at a time: kernels %s", kern);
	for (size_t i = 0; i < sizeof fwd_cases / sizeof fwd_cases[0]; i++)
		check_batch_case(&fwd_cases[i]);
}

Test(capture, batched_streams_bit_identical)
{
	for_each_kernel_set(check_batch_all);
}

/* Teacher-forced streams side by side (llm_forward_batch, slot -1): S
 * clones of a target and S of its skip-layer draft, each on its own
 * sequence with its own start, the drafts after their targets: every
 * logit bit for bit as llm_forward / llm_forward_after on separate
 * models. */
static void check_teacher_forced_q(int quant)
{
	enum { S = 3 };
	char err[256];
	struct llm_model *t0 = NULL, *d0 = NULL, *t[S], *d[S], *rt[S], *rd[S];
	struct llm_batch bt, bd;
	const int V = R_VOCAB, shared = quant ? 0 : 2;

	cr_assert_eq(llm_load(&t0, g_model, err, sizeof err), 0, "%s", err);
	cr_assert_eq(llm_load(&d0, g_model, err, sizeof err), 0, "%s", err);
	cr_assert_eq(llm_skip_layers(d0, "3", err, sizeof err), 0);
	if (quant)
		cr_assert_eq(llm_quantize(d0, quant, err, sizeof err), 0);
	cr_assert_eq(llm_share_prefix(t0, d0), shared);
	for (int k = 0; k < S; k++) {
		cr_assert_eq(llm_clone(&t[k], t0), 0);
		cr_assert_eq(llm_clone(&d[k], d0), 0);
		cr_assert_eq(llm_load(&rt[k], g_model, err, sizeof err), 0);
		cr_assert_eq(llm_load(&rd[k], g_model, err, sizeof err), 0);
		cr_assert_eq(llm_skip_layers(rd[k], "3", err, sizeof err), 0);
		if (quant)
			cr_assert_eq(
			        llm_quantize(rd[k], quant, err, sizeof err), 0);
		cr_assert_eq(llm_share_prefix(rt[k], rd[k]), shared);
	}
	cr_assert_eq(llm_batch_init(&bt, t0, S, 1), 0);
	cr_assert_eq(llm_batch_init(&bd, d0, S, 1), 0);
	for (int step = 0; step < R_SEQ + 2 * S; step++) {
		struct llm_step st[S], sd[S];
		int who[S], n = 0;

		for (int k = 0; k < S; k++) {
			int pos = step -
			          2 * k; /* stream k starts 2k steps later */

			if (pos < 0 || pos >= R_SEQ)
				continue;
			st[n] = (struct llm_step){ .slot = -1,
				                   .token = walk_token(
				                           pos + 13 * k, V),
				                   .pos = pos,
				                   .kv = t[k] };
			sd[n] = st[n];
			sd[n].kv = d[k];
			sd[n].after = t[k];
			who[n++] = k;
		}
		if (n == 0)
			continue;
		llm_forward_batch(t0, &bt, st, n);
		llm_forward_batch(d0, &bd, sd, n);
		for (int e = 0; e < n; e++) {
			const int k = who[e];
			const float *want = llm_forward(rt[k], st[e].token,
			                                st[e].pos);

			cr_assert_eq(memcmp(bt.logits + (size_t)e * V, want,
			                    V * sizeof(float)),
			             0, "target %d at %d", k, st[e].pos);
			want = llm_forward_after(rd[k], rt[k]);
			cr_assert_eq(memcmp(bd.logits + (size_t)e * V, want,
			                    V * sizeof(float)),
			             0, "draft %d at %d", k, st[e].pos);
		}
	}
	llm_batch_free(&bt);
	llm_batch_free(&bd);
	for (int k = 0; k < S; k++) {
		llm_free(&t[k]);
		llm_free(&d[k]);
		llm_free(&rt[k]);
		llm_free(&rd[k]);
	}
	llm_free(&t0);
	llm_free(&d0);
}

static void check_teacher_forced(const char *kern)
{
	cr_log_info("teacher-forced streams: kernels %s", kern);
	check_teacher_forced_q(0); /* layers 1-2 from the target */
	check_teacher_forced_q(8); /* int8: nothing shared */
}

Test(capture, teacher_forced_streams_bit_identical)
{
	for_each_kernel_set(check_teacher_forced);
}

/* The draft of a capture takes its leading layers from the target
 * (llm_forward_after) while free-running continuations scribble on its
 * KV rows past the position: its logits must still equal a draft that
 * computes everything itself on the true prefix, bit for bit. */
static void check_shared_draft(const char *skip, int quant, int want_shared)
{
	char err[256];
	struct llm_model *t = NULL, *d = NULL, *ref = NULL;
	const int V = R_VOCAB;

	cr_assert_eq(llm_load(&t, g_model, err, sizeof err), 0, "%s", err);
	cr_assert_eq(llm_load(&d, g_model, err, sizeof err), 0, "%s", err);
	cr_assert_eq(llm_load(&ref, g_model, err, sizeof err), 0, "%s", err);
	cr_assert_eq(llm_skip_layers(d, skip, err, sizeof err), 0, "%s", err);
	cr_assert_eq(llm_skip_layers(ref, skip, err, sizeof err), 0, "%s", err);
	if (quant) {
		cr_assert_eq(llm_quantize(d, quant, err, sizeof err), 0, "%s",
		             err);
		cr_assert_eq(llm_quantize(ref, quant, err, sizeof err), 0, "%s",
		             err);
	}
	cr_assert_eq(llm_share_prefix(t, d), want_shared, "skip %s int%d", skip,
	             quant);
	/* same weights in every layer it runs: it reads the target's packed
	 * matrices (and computes the same logits, below) */
	cr_assert_eq(d->packed == NULL, want_shared > 0,
	             "skip %s int%d: packed "
	             "weights %sshared",
	             skip, quant, d->packed ? "not " : "");
	if (d->packed == NULL)
		cr_assert_eq(d->pk.wcls, t->pk.wcls);
	for (int pos = 0; pos + 4 < R_SEQ; pos++) {
		int tok = walk_token(pos, V);
		const float *got, *want;

		(void)llm_forward(t, tok, pos);
		got = llm_forward_after(d, t);
		want = llm_forward(ref, tok, pos);
		cr_assert_eq(memcmp(got, want, V * sizeof(float)), 0,
		             "skip %s: draft logits differ at position %d",
		             skip, pos);
		/* a continuation every third position: rows pos+1 .. pos+3 */
		if (pos % 3 == 0)
			for (int j = 1; j <= 3; j++)
				(void)llm_forward(d,
				                  walk_token(pos + 100 * j, V),
				                  pos + j);
	}
	llm_free(&t);
	llm_free(&d);
	llm_free(&ref);
}

Test(capture, shared_draft_layers_bit_identical)
{
	check_shared_draft("2", 0, 1); /* layer 1 shared */
	check_shared_draft("3", 0, 2); /* layers 1-2 */
	check_shared_draft("1", 0, 0); /* nothing before the first skip */
	check_shared_draft("3", 8, 0); /* quantized: other weights */
}

Test(capture, deterministic_byte_identical)
{
	char out1[300], out2[300], e[2048];
	const char *args1[] = { "-m",
		                g_model,
		                "-p",
		                g_prompts,
		                "-o",
		                out1,
		                "--draft-quant",
		                "int8",
		                "--draft-skip-layers",
		                "3",
		                "--temperature",
		                "0.9",
		                "--top-p",
		                "0.95",
		                "--seed",
		                "7",
		                "--max-new-tokens",
		                "20",
		                "-q",
		                NULL };
	const char *args2[] = { "-m",
		                g_model,
		                "-p",
		                g_prompts,
		                "-o",
		                out2,
		                "--draft-quant",
		                "int8",
		                "--draft-skip-layers",
		                "3",
		                "--temperature",
		                "0.9",
		                "--top-p",
		                "0.95",
		                "--seed",
		                "7",
		                "--max-new-tokens",
		                "20",
		                "-q",
		                NULL };

	path_in(out1, sizeof out1, "d1.msgpack");
	path_in(out2, sizeof out2, "d2.msgpack");
	setenv("SOURCE_DATE_EPOCH", "1700000000", 1);
	cr_assert_eq(run_bin(e, sizeof e, args1), 0, "%s", e);
	cr_assert_eq(run_bin(e, sizeof e, args2), 0, "%s", e);
	unsetenv("SOURCE_DATE_EPOCH");
	cr_assert(files_equal(out1, out2), "two captures differ");
	{
		struct trace_header h;
		size_t ns;
		struct rseq *s = read_trace(out1, &h, &ns);
		cr_assert_str_eq(trace_header_prov(&h, "date"),
		                 "2023-11-14T22:13:20Z");
		cr_assert_eq(h.sampled, 1);
		cr_assert_eq(h.seed, 7);
		free_trace(s, ns, &h);
	}
}

/* ---------------------------------------------------------------- */
/* greedy: the replay relation.
 *
 * Greedy speculative decoding with a fixed draft length k and synchronous
 * verification, from committed position t: the draft proposes t..t+k-1
 * (its own argmax chain), the target accepts the leading run of positions
 * whose draft token equals the target token, a, and commits a+1 tokens
 * (a accepted + the target's correction or bonus), so t += a + 1. While
 * the chain is on-path its token at p is the draft argmax given the TRUE
 * prefix, so "accepted" at p is exactly a_p == 1 in the trace. Hence from
 * the trace alone:
 *   t = 0; while t < N: a = leading run of a_p==1 in [t, min(t+k, N));
 *          accepted += a; verifications++; t += a + 1.
 * For k = 1: t advances by 2 after an accepted position (the bonus token
 * covers t+1, which is never drafted) and by 1 after a rejected one, so
 * accepted = number of positions with a_p = 1 that this walk visits; it
 * equals the plain count of a_p = 1 positions only when no two
 * accepted positions are adjacent. The walk ends with t = N or N + 1 (a
 * bonus past the end). The test checks this walk against a real greedy
 * speculative-decoding run of the same pair, for k = 1..4, and that the
 * run's token stream is the trace's. */

static void walk(const struct rseq *s, uint32_t k, uint64_t *acc, uint64_t *ver)
{
	uint32_t t = 0;

	*acc = 0;
	*ver = 0;
	while (t < s->n) {
		uint32_t a = 0;
		while (a < k && t + a < s->n && s->accept[t + a] >= 1.0f)
			a++;
		*acc += a;
		(*ver)++;
		t += a + 1;
	}
}

/* real greedy speculative decoding of prompt tokens for n tokens */
static void spec_greedy(struct capture_pair *p, const int *toks, int P,
                        uint32_t n, uint32_t k, uint64_t *acc, uint64_t *ver,
                        uint32_t *out)
{
	int V = p->target->cfg.vocab_size;
	uint32_t t = 0;
	int dvalid = P - 1; /* draft KV rows < dvalid hold the true prefix */
	int *draft = malloc((k + 1) * sizeof *draft);

	*acc = 0;
	*ver = 0;
	/* prefill all but the last prompt token */
	for (int a = 0; a + 1 < P; a++) {
		(void)llm_forward(p->target, toks[a], a);
		(void)llm_forward(p->draft, toks[a], a);
	}
	while (t < n) {
		int last = t == 0 ? toks[P - 1] : (int)out[t - 1];
		int base = P + (int)t - 1; /* position of last */
		uint32_t a = 0;
		int c = last;
		/* the draft catches up on committed tokens it has not seen (the
		 * last drafted token of a fully accepted batch) */
		for (; dvalid < base; dvalid++)
			(void)llm_forward(p->draft, (int)out[dvalid - P],
			                  dvalid);
		/* the draft proposes k tokens at positions base+1 .. base+k */
		for (uint32_t j = 0; j < k; j++) {
			c = llm_argmax(llm_forward(p->draft, c, base + (int)j),
			               V);
			draft[j] = c;
		}
		/* the target verifies: one forward per position (the same logits
		 * as one batched pass), accepting while its argmax equals the
		 * draft; the first mismatch is its correction, or after k
		 * accepts its bonus token */
		c = last;
		for (uint32_t j = 0; j <= k && t + j < n; j++) {
			int y = llm_argmax(
			        llm_forward(p->target, c, base + (int)j), V);
			out[t + j] = (uint32_t)y;
			if (j == k || y != draft[j])
				break;
			c = y;
			a = j + 1;
		}
		/* draft rows base+1+j hold draft[j] for j < k - 1: true iff j < a */
		dvalid = base + 1 + (int)(a < k - 1 ? a : k - 1);
		(*ver)++;
		*acc += a;
		t += a + 1;
	}
	free(draft);
}

Test(capture, greedy_relation_vs_real_spec_decoding)
{
	char out[300], err[256];
	struct capture_opts o;
	struct trace_header h;
	struct rseq *seqs;
	size_t ns;
	struct capture_pair pair;
	static const char *prompts[] = { "the cat sat", "an ant ran",
		                         "here and there", "a red hat" };
	uint64_t total_acc1 = 0, adjacent = 0;

	path_in(out, sizeof out, "g.msgpack");
	base_opts(&o, out);
	do_capture(&o);
	seqs = read_trace(out, &h, &ns);
	cr_assert_eq(ns, 4);
	cr_assert_eq(capture_pair_open(&pair, &o, err, sizeof err), 0, "%s",
	             err);
	for (size_t s = 0; s < ns; s++) {
		int toks[64], P = llm_encode(pair.tok, prompts[s], toks, 64);
		uint32_t *gen = calloc(seqs[s].n + 8, sizeof *gen);
		cr_assert_eq((uint32_t)P, seqs[s].prompt_len);
		for (uint32_t i = 0; i < seqs[s].n; i++) {
			cr_assert(seqs[s].accept[i] == 0.0f ||
			          seqs[s].accept[i] == 1.0f);
			if (i > 0 && seqs[s].accept[i] == 1.0f &&
			    seqs[s].accept[i - 1] == 1.0f)
				adjacent++;
		}
		for (uint32_t k = 1; k <= 4; k++) {
			uint64_t wa, wv, ra, rv;
			walk(&seqs[s], k, &wa, &wv);
			spec_greedy(&pair, toks, P, seqs[s].n, k, &ra, &rv,
			            gen);
			cr_assert_eq(wa, ra,
			             "seq %zu k %u: trace walk accepted %lu, "
			             "real run %lu",
			             s, k, (unsigned long)wa,
			             (unsigned long)ra);
			cr_assert_eq(wv, rv, "seq %zu k %u: verifications", s,
			             k);
			cr_assert_eq(memcmp(gen, seqs[s].tokens, seqs[s].n * 4),
			             0,
			             "seq %zu k %u: spec decoding changed the "
			             "tokens",
			             s, k);
			if (k == 1)
				total_acc1 += wa;
		}
		free(gen);
	}
	/* the random pair must exercise both outcomes */
	cr_assert_gt(total_acc1, 0);
	cr_assert_gt(adjacent, 0,
	             "want adjacent accepts, where the k=1 walk "
	             "differs from the plain count");
	capture_pair_close(&pair);
	free_trace(seqs, ns, &h);
}

/* ---------------------------------------------------------------- */
/* sampled: mean a_p vs an actual speculative-sampling run.
 *
 * Speculative sampling accepts a drafted x ~ q with probability
 * min(1, p(x)/q(x)); given the prefix, P(accept) = sum_x q(x) min(1,
 * p(x)/q(x)) = sum_x min(p(x), q(x)) = a_p. The run below drafts one token
 * at every position (k = 1, no bonus token, so every position is drafted
 * like every position of the trace is recorded); on rejection it samples
 * the residual max(0, p - q) normalized, so its token stream has the
 * target's distribution, as the capture's does. Both therefore estimate
 * the same E[a]. Sequences are independent (seeded per sequence), so the
 * per-sequence means are i.i.d. and the difference of the two grand means
 * has standard error sqrt(var_c/n + var_r/n); we require |diff| < 4 SE
 * (a false alarm has probability ~6e-5 under normality) and an SE small
 * enough (< 0.03) for the test to have teeth. */
Test(capture, sampled_mean_accept_matches_spec_sampling)
{
	char out[300], err[256], pfile[300];
	struct capture_opts o;
	struct trace_header h;
	struct rseq *seqs;
	size_t ns;
	struct capture_pair pair;
	enum { NS = 64, NT = 24 };
	double mc[NS], mr[NS], sc = 0, sr = 0, vc = 0, vr = 0, diff, se;
	static const char *words[] = { "the", "cat", "an",  "ant",  "red",
		                       "hat", "sat", "ran", "here", "there" };
	FILE *f;

	path_in(pfile, sizeof pfile, "many.txt");
	f = fopen(pfile, "w");
	for (int s = 0; s < NS; s++)
		fprintf(f, "%s %s\n", words[s % 10],
		        words[(s / 10 + 3 * s) % 10]);
	fclose(f);
	path_in(out, sizeof out, "samp.msgpack");
	base_opts(&o, out);
	o.prompts = pfile;
	o.temperature = 1.0;
	o.seed = 11;
	o.max_new = NT;
	o.lookahead = 2;
	do_capture(&o);
	seqs = read_trace(out, &h, &ns);
	cr_assert_eq(ns, NS);
	cr_assert_eq(capture_pair_open(&pair, &o, err, sizeof err), 0, "%s",
	             err);
	{
		int V = R_VOCAB;
		float *p = malloc(V * sizeof *p), *q = malloc(V * sizeof *q);
		int *idx = malloc(V * sizeof *idx);
		char line[64];
		uint64_t draws = 0;
		f = fopen(pfile, "r");
		for (int s = 0; s < NS; s++) {
			int toks[64], P, tok;
			double sum = 0;
			uint32_t acc = 0;
			cr_assert_not_null(fgets(line, sizeof line, f));
			line[strcspn(line, "\n")] = '\0';
			P = llm_encode(pair.tok, line, toks, 64);
			cr_assert_eq(seqs[s].n, NT);
			for (uint32_t i = 0; i < NT; i++) {
				cr_assert(seqs[s].accept[i] >= 0.0f &&
				          seqs[s].accept[i] <= 1.0f);
				sum += seqs[s].accept[i];
			}
			mc[s] = sum / NT;
			for (int a = 0; a + 1 < P; a++) {
				(void)llm_forward(pair.target, toks[a], a);
				(void)llm_forward(pair.draft, toks[a], a);
			}
			tok = toks[P - 1];
			for (uint32_t i = 0; i < NT; i++) {
				int pos = P - 1 + (int)i, x;
				double u;
				capture_dist(p,
				             llm_forward(pair.target, tok, pos),
				             V, 1.0, 1.0, idx);
				capture_dist(q,
				             llm_forward(pair.draft, tok, pos),
				             V, 1.0, 1.0, idx);
				/* a seed unrelated to the capture's (11) */
				x = llm_sample(q, V,
				               llm_rng_uniform(999, (uint64_t)s,
				                               i, 0));
				u = llm_rng_uniform(999, (uint64_t)s, i, 1);
				draws++;
				if (u <
				    fmin(1.0, (double)p[x] / (double)q[x])) {
					acc++;
					tok = x;
				} else {
					double z = 0;
					for (int v = 0; v < V; v++) {
						p[v] = fmaxf(0.0f, p[v] - q[v]);
						z += p[v];
					}
					for (int v = 0; v < V; v++)
						p[v] = (float)(p[v] / z);
					tok = llm_sample(
					        p, V,
					        llm_rng_uniform(999,
					                        (uint64_t)s, i,
					                        2));
				}
			}
			mr[s] = (double)acc / NT;
		}
		fclose(f);
		free(p);
		free(q);
		free(idx);
		cr_assert_eq(draws, (uint64_t)NS * NT);
	}
	for (int s = 0; s < NS; s++) {
		sc += mc[s];
		sr += mr[s];
	}
	sc /= NS;
	sr /= NS;
	for (int s = 0; s < NS; s++) {
		vc += (mc[s] - sc) * (mc[s] - sc);
		vr += (mr[s] - sr) * (mr[s] - sr);
	}
	vc /= NS - 1;
	vr /= NS - 1;
	diff = sc - sr;
	se = sqrt(vc / NS + vr / NS);
	cr_log_info("sampled: mean a_p %.4f, spec-sampling acceptance %.4f, "
	            "SE %.4f",
	            sc, sr, se);
	cr_assert_lt(se, 0.03);
	cr_assert_gt(sc, 0.05);
	cr_assert_lt(sc, 0.98);
	cr_assert_lt(fabs(diff), 4.0 * se,
	             "mean a_p %.4f vs empirical %.4f "
	             "(SE %.4f)",
	             sc, sr, se);
	/* every a_p < 1 position has a continuation row */
	for (size_t s = 0; s < ns; s++)
		for (uint32_t i = 0; i < seqs[s].n; i++)
			cr_assert_eq(seqs[s].accept[i] < 1.0f,
			             seqs[s].cont_index[i] >= 0);
	capture_pair_close(&pair);
	free_trace(seqs, ns, &h);
}

/* ---------------------------------------------------------------- */
/* importer */

static const char *import_header =
        "{\"version\": 1, \"lookahead\": 2, \"sampled\": true, "
        "\"temperature\": 0.8,"
        " \"seed\": 5, \"models\": {\"draft\": {\"name\": \"d\", \"dim\": 64, "
        "\"hidden_dim\": 172, \"n_layers\": 4, \"n_heads\": 8, \"n_kv_heads\": "
        "4, "
        "\"vocab_size\": 512, \"seq_len\": 512, \"weight_bits\": 4, \"ops\": "
        "\"llama\"}, \"target\": {\"name\": \"t\", \"dim\": 64, "
        "\"hidden_dim\": "
        "172, \"n_layers\": 5, \"n_heads\": 8, \"n_kv_heads\": 4, "
        "\"vocab_size\": "
        "512, \"seq_len\": 512, \"weight_bits\": 32, \"weight_bytes\": 1000, "
        "\"ops\": [{\"name\": \"wq\", \"kind\": \"gemm\", \"k\": 64, \"n\": "
        "64, "
        "\"repeat\": 5}, {\"name\": \"att\", \"kind\": \"attention\", "
        "\"heads\": 8,"
        " \"kv_heads\": 4, \"head_dim\": 8, \"repeat\": 5}]}}, \"provenance\": "
        "{\"runtime\": \"vllm\"}}\n";

Test(capture, import_roundtrip)
{
	char in[300], out[300], e[2048];
	struct trace_header h;
	struct rseq *s;
	size_t ns;
	FILE *f;
	const char *args[] = { "import", in, "-o", out, NULL };

	path_in(in, sizeof in, "in.jsonl");
	path_in(out, sizeof out, "imp.msgpack");
	f = fopen(in, "w");
	fputs(import_header, f);
	fputs("{\"prompt_len\": 4, \"entropy\": [0.5, 2.25, 1], \"top1\": "
	      "[0.9, 0.2, "
	      "0.5], \"accept\": [1, 0.25, 0.5], \"tokens\": [7, 8, 9], "
	      "\"cont\": "
	      "[[1, [3.5, 4]], [2, [1.5, 0.75]]]}\n\n",
	      f);
	fputs("{\"id\": 9, \"prompt_len\": 2, \"entropy\": [1.5], \"top1\": "
	      "[0.6], "
	      "\"accept\": [1]}\n",
	      f);
	fclose(f);
	cr_assert_eq(run_bin(e, sizeof e, args), 0, "%s", e);
	s = read_trace(out, &h, &ns);
	cr_assert_eq(ns, 2);
	cr_assert_eq(h.lookahead, 2);
	cr_assert_eq(h.sampled, 1);
	cr_assert_float_eq(h.temperature, 0.8, 1e-12);
	cr_assert_float_eq(h.top_p, 1.0, 1e-12);
	cr_assert_eq(h.seed, 5);
	cr_assert_eq(h.target.weight_bytes, 1000);
	cr_assert_eq(h.target.n_ops, 2);
	cr_assert_eq(h.target.ops[1].kind, TRACE_OP_ATTENTION);
	cr_assert_gt(h.draft.n_ops, 5, "\"llama\" expands to the standard ops");
	cr_assert_str_eq(trace_header_prov(&h, "runtime"), "vllm");
	cr_assert_not_null(trace_header_prov(&h, "import_source_sha256"));
	cr_assert_eq(s[0].n, 3);
	cr_assert_float_eq(s[0].entropy[1], 2.25f, 0);
	cr_assert_eq(s[0].tokens[2], 9);
	cr_assert_eq(s[0].n_cont, 2);
	cr_assert_float_eq(s[0].cont[1], 4.0f, 0);
	cr_assert_float_eq(s[0].cont[3], 0.75f, 0);
	cr_assert_eq(s[1].n, 1);
	free_trace(s, ns, &h);
}

struct import_case {
	const char *seq_line; /* NULL: header replaced by bad_header */
	const char *bad_header;
	const char *expect[2]; /* substrings of the message */
};

static const struct import_case import_cases[] = {
	{ "{\"prompt_len\": 4, \"entropy\": [0.5], \"top1\": [0.9], "
	  "\"accept\": [0.5]}",
	  NULL,
	  { ":2:", "position 0 has accept 0.5 < 1 but no continuation" } },
	{ "{\"prompt_len\": 4, \"entropy\": [0.5, 1], \"top1\": [0.9], "
	  "\"accept\": [1, 1]}",
	  NULL,
	  { ":2:", "field 'top1'" } },
	{ "{\"prompt_len\": 4, \"entropy\": [\"x\"], \"top1\": [0.9], "
	  "\"accept\": [1]}",
	  NULL,
	  { ":2:", "field 'entropy[0]': expected a number" } },
	{ "{\"prompt_len\": 4, \"entropy\": [1], \"top1\": [0.9], \"accept\": "
	  "[1.5]}",
	  NULL,
	  { ":2:", "field 'accept[0]'" } },
	{ "{\"prompt_len\": 4, \"entropy\": [1], \"top1\": [0.9], \"accept\": "
	  "[0], "
	  "\"cont\": [[0, [1]]]}",
	  NULL,
	  { ":2:", "expected 2 entropies" } },
	{ "{\"prompt_len\": 4, \"entropy\": [1], \"top1\": [0.9], \"accept\": "
	  "[1], "
	  "\"extra\": 1}",
	  NULL,
	  { ":2:", "field 'extra': unknown field" } },
	{ "{\"prompt_len\": 4, \"entropy\": [1], \"top1\": [0.9], \"accept\": "
	  "[1],}",
	  NULL,
	  { ":2: invalid JSON", "column" } },
	{ NULL, "{\"version\": 2}", { ":1:", "field 'version'" } },
	{ NULL,
	  "{\"version\": 1, \"lookahead\": 2, \"sampled\": false, \"models\": "
	  "{\"draft\": {\"name\": \"d\"}}}",
	  { ":1:", "field 'models.draft.dim'" } },
	{ NULL, "[1, 2]", { ":1:", "header object" } },
};

Test(capture, import_errors_name_line_and_field)
{
	char in[300], out[300], e[2048];
	const char *args[] = { "import", in, "-o", out, NULL };

	path_in(in, sizeof in, "bad.jsonl");
	path_in(out, sizeof out, "bad.msgpack");
	for (size_t i = 0; i < sizeof import_cases / sizeof import_cases[0];
	     i++) {
		const struct import_case *c = &import_cases[i];
		FILE *f = fopen(in, "w");
		if (c->seq_line) {
			fputs(import_header, f);
			fprintf(f, "%s\n", c->seq_line);
		} else {
			fprintf(f, "%s\n{}\n", c->bad_header);
		}
		fclose(f);
		cr_assert_neq(run_bin(e, sizeof e, args), 0,
		              "case %zu accepted", i);
		for (int j = 0; j < 2; j++)
			cr_assert(strstr(e, c->expect[j]) != NULL,
			          "case %zu: want \"%s\" in: %s", i,
			          c->expect[j], e);
		cr_assert_neq(access(out, F_OK), 0, "case %zu left an output",
		              i);
	}
}

/* ---------------------------------------------------------------- */
/* bad input through the real binary */

struct bad_case {
	const char *what;
	const char *model;   /* file name in the test dir */
	const char *prompts; /* file name in the test dir */
	const char *extra[4];
	const char *expect;
};

static void make_bad_files(void)
{
	char p[300];
	FILE *f;
	unsigned char *buf;
	size_t n;
	int32_t ak[2] = { 0x616b3432, 2 };
	int32_t big_vocab[7] = { R_DIM, R_HID, R_LAYERS, R_HEADS,
		                 R_KV,  320,   R_SEQ };
	int32_t garbage[7] = { -5, 0, 1 << 30, 7, 9, 0, -1 };
	char d2[300];

	/* truncated: the first half of the random model */
	f = fopen(g_model, "rb");
	fseek(f, 0, SEEK_END);
	n = (size_t)ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc(n);
	cr_assert_eq(fread(buf, 1, n, f), n);
	fclose(f);
	path_in(p, sizeof p, "trunc.bin");
	f = fopen(p, "wb");
	fwrite(buf, 1, n / 2, f);
	fclose(f);
	/* version-2 export: magic "ak42", version 2, then the rest */
	path_in(p, sizeof p, "v2.bin");
	f = fopen(p, "wb");
	fwrite(ak, 4, 2, f);
	fwrite(buf, 1, 256, f);
	fclose(f);
	/* a header of nonsense */
	path_in(p, sizeof p, "garbage.bin");
	f = fopen(p, "wb");
	fwrite(garbage, 4, 7, f);
	fwrite(buf, 1, 256, f);
	fclose(f);
	free(buf);
	/* a model of vocab 320 with the 300-token tokenizer beside it */
	path_in(p, sizeof p, "v320.bin");
	write_model(p, big_vocab, 3);
	/* a draft in its own folder with a different tokenizer file */
	path_in(d2, sizeof d2, "other");
	mkdir(d2, 0755);
	path_in(p, sizeof p, "other/rand.bin");
	write_model(p, g_hdr, 5);
	path_in(p, sizeof p, "other/tok512.bin");
	write_tokenizer(p, R_VOCAB);
	f = fopen(p, "ab");
	fputc(0, f); /* one extra byte: same vocab, different file */
	fclose(f);
	path_in(p, sizeof p, "empty.txt");
	write_text(p, "\n\n");
	path_in(p, sizeof p, "long.txt");
	f = fopen(p, "w");
	for (int i = 0; i < 60; i++)
		fputs("zq xv ", f); /* no merges: >= 2 tokens per word */
	fputc('\n', f);
	fclose(f);
	path_in(p, sizeof p, "near.txt");
	f = fopen(p, "w");
	for (int i = 0; i < 30; i++)
		fputs("zq ",
		      f); /* ~91 tokens: fits 96 but not with lookahead 16 */
	fputc('\n', f);
	fclose(f);
}

static const struct bad_case bad_cases[] = {
	{ "missing checkpoint",
	  "nope.bin",
	  "prompts.txt",
	  { NULL },
	  "nope.bin: cannot open" },
	{ "truncated checkpoint",
	  "trunc.bin",
	  "prompts.txt",
	  { NULL },
	  "truncated checkpoint" },
	{ "version-2 header",
	  "v2.bin",
	  "prompts.txt",
	  { NULL },
	  "version 2 (magic \"ak42\") is not supported" },
	{ "unknown header",
	  "garbage.bin",
	  "prompts.txt",
	  { NULL },
	  "unknown checkpoint header version" },
	{ "tokenizer/model vocab mismatch",
	  "v320.bin",
	  "prompts.txt",
	  { NULL },
	  "tokenizer holds 300 tokens but the model's vocab_size is 320" },
	{ "empty prompt file",
	  "rand.bin",
	  "empty.txt",
	  { NULL },
	  "prompt file holds no prompts" },
	{ "missing prompt file",
	  "rand.bin",
	  "nope.txt",
	  { NULL },
	  "cannot open prompt file" },
	{ "prompt longer than context",
	  "rand.bin",
	  "long.txt",
	  { NULL },
	  "longer than the model's context (seq_len 96)" },
	{ "prompt + lookahead beyond context",
	  "rand.bin",
	  "near.txt",
	  { "--lookahead", "16", NULL },
	  "leaves no room to generate" },
	{ "draft vocab mismatch",
	  "rand.bin",
	  "prompts.txt",
	  { "--draft", "v320.bin", NULL },
	  "a speculative pair must share one "
	  "vocabulary" },
	{ "draft tokenizer differs",
	  "rand.bin",
	  "prompts.txt",
	  { "--draft", "other/rand.bin", NULL },
	  "must share one tokenizer" },
	{ "bad skip list",
	  "rand.bin",
	  "prompts.txt",
	  { "--draft-skip-layers", "4", NULL },
	  "layers are 1-based numbers "
	  "from 1 to 3" },
	{ "no draft",
	  "rand.bin",
	  "prompts.txt",
	  { "--seed", "1", NULL },
	  "no draft model" },
};

Test(capture, bad_input_clear_errors)
{
	char e[2048], model[300], prompts[300], out[300];
	char extra[4][300];

	make_bad_files();
	path_in(out, sizeof out, "bad.msgpack");
	for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
		const struct bad_case *c = &bad_cases[i];
		const char *args[16];
		int n = 0, rc;

		path_in(model, sizeof model, c->model);
		path_in(prompts, sizeof prompts, c->prompts);
		args[n++] = "-m";
		args[n++] = model;
		args[n++] = "-z";
		args[n++] = g_tok;
		args[n++] = "-p";
		args[n++] = prompts;
		args[n++] = "-o";
		args[n++] = out;
		if (!c->extra[0] || strcmp(c->extra[0], "--seed") != 0) {
			if (!c->extra[0] ||
			    strncmp(c->extra[0], "--draft-skip", 12) != 0) {
				args[n++] = "--draft-skip-layers";
				args[n++] = "2";
			}
		}
		for (int j = 0; j < 4 && c->extra[j]; j++) {
			/* a --draft argument names a file in the test dir */
			if (j > 0 && strcmp(c->extra[j - 1], "--draft") == 0) {
				path_in(extra[j], sizeof extra[j], c->extra[j]);
				args[n++] = extra[j];
			} else {
				args[n++] = c->extra[j];
			}
		}
		args[n++] = "-q";
		args[n] = NULL;
		rc = run_bin(e, sizeof e, args);
		cr_assert_eq(rc, 1, "%s: exit %d: %s", c->what, rc, e);
		cr_assert(strstr(e, c->expect) != NULL,
		          "%s: want \"%s\" in: %s", c->what, c->expect, e);
		cr_assert_neq(access(out, F_OK), 0, "%s: left an output",
		              c->what);
	}
}

Test(capture, usage_errors_exit_2)
{
	char e[2048];
	const char *a1[] = { "--draft-quant", "int3", NULL };
	const char *a2[] = { "frobnicate", NULL };
	const char *a3[] = { "-m", "x", NULL };

	cr_assert_eq(run_bin(e, sizeof e, a1), 2);
	cr_assert(strstr(e, "expected int8 or int4") != NULL, "%s", e);
	cr_assert_eq(run_bin(e, sizeof e, a2), 2);
	cr_assert(strstr(e, "unknown command") != NULL, "%s", e);
	cr_assert_eq(run_bin(e, sizeof e, a3), 2);
	cr_assert(strstr(e, "need -m MODEL, -p PROMPTS and -o OUT") != NULL,
	          "%s", e);
}
