/* test_capture_api.c - the C capture API (capture/ahasd_capture.h), linked
 * as the installed shared library: what it writes (read back with the
 * trace reader, and byte for byte against the trace writer fed the same
 * records), every error (message, sticky code, no file left), the
 * example runtime, and ahasd-capture on top of it reproducing a shipped
 * capture (needs ../shared/models, skips with a message without). */
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

#include "ahasd_capture.h"
#include "capture_abi/api1_records.h"
#include "config.h"
#include "trace.h"

static char g_dir[256];

static void setup(void)
{
	snprintf(g_dir, sizeof g_dir, "/tmp/ahasd-capapi-XXXXXX");
	cr_assert_not_null(mkdtemp(g_dir));
}

static void teardown(void)
{
	char cmd[300];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "teardown: could not remove %s\n", g_dir);
}

TestSuite(capture_api, .init = setup, .fini = teardown, .timeout = 120);

static void path_in(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", g_dir, name);
}

static int exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

/* files in g_dir (the temporary files of a capture included) */
static int dir_entries(void)
{
	char cmd[400];
	FILE *p;
	int n = 0;

	snprintf(cmd, sizeof cmd, "ls -A '%s' | wc -l", g_dir);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	cr_assert_eq(fscanf(p, "%d", &n), 1);
	pclose(p);
	return n;
}

static void *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	cr_assert_not_null(f, "%s", path);
	cr_assert_eq(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n + 1);
	cr_assert_not_null(buf);
	cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

/* ---------------------------------------------------------------- */
/* a small pair: the target with an explicit op list, the draft with the
 * default (llama op list from its dims) */

static const struct ahasd_capture_op g_ops[] = {
	{ "tok_embedding", "embed", 32, 16, 0, 0, 0, 1 },
	{ "wqkv", "gemm", 16, 48, 0, 0, 0, 2 },
	{ "attention", "attention", 0, 0, 4, 2, 4, 2 },
	{ "ffn", "gemm", 16, 64, 0, 0, 0, 2 },
	{ "silu", "nonlinear", 0, 32, 0, 0, 0, 2 },
	{ "classifier", "gemm", 16, 32, 0, 0, 0, 1 },
};

struct pair {
	struct ahasd_capture_model target, draft;
	struct ahasd_capture_config cfg;
};

static void pair_init(struct pair *p, int sampled)
{
	const struct ahasd_capture_model mi = AHASD_CAPTURE_MODEL_INIT;
	const struct ahasd_capture_config ci = AHASD_CAPTURE_CONFIG_INIT;

	p->target = mi;
	p->target.name = "tgt";
	p->target.dim = 16;
	p->target.hidden_dim = 32;
	p->target.n_layers = 2;
	p->target.n_heads = 4;
	p->target.n_kv_heads = 2;
	p->target.vocab_size = 32;
	p->target.seq_len = 40;
	p->target.n_ops = sizeof g_ops / sizeof g_ops[0];
	p->target.ops = g_ops;
	p->draft = p->target;
	p->draft.name = "drf";
	p->draft.n_layers = 1;
	p->draft.weight_bits = 8;
	p->draft.n_ops = 0;
	p->draft.ops = NULL;
	p->cfg = ci;
	p->cfg.lookahead = 3;
	p->cfg.sampled = sampled;
	p->cfg.temperature = sampled ? 0.7 : 0.0;
	p->cfg.top_p = sampled ? 0.9 : 1.0;
	p->cfg.seed = 99;
	p->cfg.target = &p->target;
	p->cfg.draft = &p->draft;
}

/* Sequence 7: 5 positions, prompt 4, tokens; rejections at 1 and 4.
 * Sequence 3: 2 positions, prompt 30, no tokens; rejection at 0. */
static const float s7_ent[] = { 0.5f, 2.25f, 0.125f, 1.0f, 3.5f };
static const float s7_top[] = { 0.9f, 0.3f, 0.99f, 0.5f, 0.125f };
static const float s7_acc[] = { 1, 0, 1, 1, 0 };
static const int32_t s7_tok[] = { 5, 6, 31, 0, 2 };
static const float s7_cont[2][3] = { { 2.5f, 2.75f, 3.0f },
	                             { 0.25f, 0.5f, 0.75f } };
static const float s3_ent[] = { 1.5f, 0.75f };
static const float s3_top[] = { 0.4f, 0.8f };
static const float s3_acc[] = { 0, 1 };
static const float s3_cont[1][3] = { { 1.0f, 1.25f, 1.5f } };

static void write_api(const char *path, const struct pair *p)
{
	struct ahasd_capture *c = NULL;
	char err[1024];

	cr_assert_eq(ahasd_capture_open(&c, path, &p->cfg, err, sizeof err), 0,
	             "%s", err);
	cr_assert_eq(ahasd_capture_provenance(c, "runtime", "unit test"), 0);
	cr_assert_eq(
	        ahasd_capture_provenance(c, "date", "2026-01-02T03:04:05Z"), 0);
	cr_assert_eq(ahasd_capture_begin(c, 7, 4), 0, "%s",
	             ahasd_capture_error(c));
	for (int i = 0, r = 0; i < 5; i++) {
		const float *cont = s7_acc[i] < 1 ? s7_cont[r++] : NULL;
		cr_assert_eq(ahasd_capture_pos(c, s7_ent[i], s7_top[i],
		                               s7_acc[i], s7_tok[i], cont),
		             0, "%s", ahasd_capture_error(c));
	}
	cr_assert_eq(ahasd_capture_end(c), 0, "%s", ahasd_capture_error(c));
	cr_assert_eq(ahasd_capture_begin(c, 3, 30), 0, "%s",
	             ahasd_capture_error(c));
	for (int i = 0; i < 2; i++) {
		struct ahasd_capture_position pos = AHASD_CAPTURE_POSITION_INIT;
		pos.entropy = s3_ent[i];
		pos.top1 = s3_top[i];
		pos.accept = s3_acc[i];
		pos.cont = i == 0 ? s3_cont[0] : NULL;
		cr_assert_eq(ahasd_capture_position(c, &pos), 0, "%s",
		             ahasd_capture_error(c));
	}
	cr_assert_eq(ahasd_capture_end(c), 0, "%s", ahasd_capture_error(c));
	cr_assert_str_eq(ahasd_capture_error(c), "");
	cr_assert_eq(ahasd_capture_close(&c, err, sizeof err), 0, "%s", err);
	cr_assert_null(c);
}

Test(capture_api, roundtrip_through_the_reader)
{
	char path[300], err[1024];
	struct pair p;
	struct trace_reader *r = NULL;
	const struct trace_header *h;
	struct trace_seq s;
	uint64_t ns, nt;

	cr_assert_eq(ahasd_capture_api_version(), AHASD_CAPTURE_API_VERSION);
	pair_init(&p, 0);
	path_in(path, sizeof path, "rt.msgpack");
	write_api(path, &p);
	cr_assert_eq(trace_reader_open(&r, path, err, sizeof err), 0, "%s",
	             err);
	h = trace_reader_header(r);
	cr_assert_eq(h->version, 1);
	cr_assert_eq(h->lookahead, 3);
	cr_assert_eq(h->sampled, 0);
	cr_assert_eq(h->temperature, 0.0);
	cr_assert_eq(h->top_p, 1.0);
	cr_assert_eq(h->seed, 99);
	cr_assert_eq(h->synthetic, 0);
	/* provenance: the library's tool and version first, then the
	 * caller's in order */
	cr_assert_eq(h->n_prov, 4);
	cr_assert_str_eq(h->prov[0].key, "tool");
	cr_assert_str_eq(h->prov[0].value, "libahasd-capture");
	cr_assert_str_eq(h->prov[1].key, "tool_version");
	cr_assert_str_eq(h->prov[2].key, "runtime");
	cr_assert_str_eq(h->prov[3].value, "2026-01-02T03:04:05Z");
	/* target: the op list as given; weight bytes of the gemm and embed
	 * ops at 32 bits: (32*16 + 16*48*2 + 16*64*2 + 16*32) * 4 */
	cr_assert_str_eq(h->target.name, "tgt");
	cr_assert_eq(h->target.n_ops, 6);
	cr_assert_str_eq(h->target.ops[2].name, "attention");
	cr_assert_eq(h->target.ops[2].kind, TRACE_OP_ATTENTION);
	cr_assert_eq(h->target.ops[2].kv_heads, 2);
	cr_assert_eq(h->target.weight_bits, 32);
	cr_assert_eq(h->target.weight_bytes,
	             (32 * 16 + 16 * 48 * 2 + 16 * 64 * 2 + 16 * 32) * 4);
	/* draft: the llama op list of its dims at 8 bits */
	cr_assert_str_eq(h->draft.name, "drf");
	cr_assert_eq(h->draft.n_layers, 1);
	cr_assert_eq(h->draft.weight_bits, 8);
	cr_assert_gt(h->draft.n_ops, 10);
	cr_assert_str_eq(h->draft.ops[h->draft.n_ops - 1].name, "classifier");

	cr_assert_eq(trace_reader_next(r, &s, err, sizeof err), 1, "%s", err);
	cr_assert_eq(s.id, 7);
	cr_assert_eq(s.prompt_len, 4);
	cr_assert_eq(s.n, 5);
	cr_assert_arr_eq(s.entropy, s7_ent, sizeof s7_ent);
	cr_assert_arr_eq(s.top1, s7_top, sizeof s7_top);
	cr_assert_arr_eq(s.accept, s7_acc, sizeof s7_acc);
	cr_assert_not_null(s.tokens);
	for (int i = 0; i < 5; i++)
		cr_assert_eq(s.tokens[i], (uint32_t)s7_tok[i]);
	cr_assert_eq(s.n_cont, 2);
	cr_assert_eq(s.cont_pos[0], 1);
	cr_assert_eq(s.cont_pos[1], 4);
	cr_assert_arr_eq(s.cont_entropy, s7_cont, sizeof s7_cont);

	cr_assert_eq(trace_reader_next(r, &s, err, sizeof err), 1, "%s", err);
	cr_assert_eq(s.id, 3);
	cr_assert_eq(s.prompt_len, 30);
	cr_assert_eq(s.n, 2);
	cr_assert_null(s.tokens);
	cr_assert_eq(s.n_cont, 1);
	cr_assert_eq(s.cont_pos[0], 0);
	cr_assert_arr_eq(s.cont_entropy, s3_cont, sizeof s3_cont);
	cr_assert_eq(trace_reader_next(r, &s, err, sizeof err), 0, "%s", err);
	trace_reader_totals(r, &ns, &nt);
	cr_assert_eq(ns, 2);
	cr_assert_eq(nt, 7);
	trace_reader_close(&r);
}

/* The API is a front to the trace writer: the same records given to
 * trace_writer_* directly make the same bytes. */
Test(capture_api, same_bytes_as_the_trace_writer)
{
	char a[300], b[300], err[1024];
	struct pair p;
	struct trace_header h;
	struct trace_writer *w = NULL;
	struct trace_reader *r = NULL;
	uint32_t tok[5], cp7[] = { 1, 4 }, cp3[] = { 0 };
	struct trace_seq s;
	void *ba, *bb;
	size_t la, lb;

	pair_init(&p, 0);
	path_in(a, sizeof a, "api.msgpack");
	path_in(b, sizeof b, "writer.msgpack");
	write_api(a, &p);
	/* the header as read back (models as converted), written again */
	cr_assert_eq(trace_reader_open(&r, a, err, sizeof err), 0, "%s", err);
	memset(&h, 0, sizeof h);
	h = *trace_reader_header(r);
	h.n_prov = 0;
	h.prov = NULL;
	cr_assert_eq(trace_model_copy(&h.draft, &trace_reader_header(r)->draft),
	             0);
	cr_assert_eq(
	        trace_model_copy(&h.target, &trace_reader_header(r)->target),
	        0);
	trace_reader_close(&r);
	cr_assert_eq(trace_header_add_prov(&h, "tool", "libahasd-capture"), 0);
	cr_assert_eq(trace_header_add_prov(&h, "tool_version", AHASD_VERSION),
	             0);
	cr_assert_eq(trace_header_add_prov(&h, "runtime", "unit test"), 0);
	cr_assert_eq(trace_header_add_prov(&h, "date", "2026-01-02T03:04:05Z"),
	             0);
	cr_assert_eq(trace_writer_open(&w, b, &h, err, sizeof err), 0, "%s",
	             err);
	for (int i = 0; i < 5; i++)
		tok[i] = (uint32_t)s7_tok[i];
	s = (struct trace_seq){ .id = 7,
		                .prompt_len = 4,
		                .n = 5,
		                .entropy = (float *)s7_ent,
		                .top1 = (float *)s7_top,
		                .accept = (float *)s7_acc,
		                .tokens = tok,
		                .n_cont = 2,
		                .cont_pos = cp7,
		                .cont_entropy = (float *)s7_cont };
	cr_assert_eq(trace_writer_add(w, &s, err, sizeof err), 0, "%s", err);
	s = (struct trace_seq){ .id = 3,
		                .prompt_len = 30,
		                .n = 2,
		                .entropy = (float *)s3_ent,
		                .top1 = (float *)s3_top,
		                .accept = (float *)s3_acc,
		                .n_cont = 1,
		                .cont_pos = cp3,
		                .cont_entropy = (float *)s3_cont };
	cr_assert_eq(trace_writer_add(w, &s, err, sizeof err), 0, "%s", err);
	cr_assert_eq(trace_writer_close(&w, err, sizeof err), 0, "%s", err);
	trace_header_clear(&h);
	ba = slurp(a, &la);
	bb = slurp(b, &lb);
	cr_assert_eq(la, lb);
	cr_assert_eq(memcmp(ba, bb, la), 0, "the API and the writer differ");
	free(ba);
	free(bb);
}

/* Sampled: fractional a_p, top_p and temperature recorded; a
 * capture with no sequence is a valid, empty trace; the library dates an
 * undated capture (SOURCE_DATE_EPOCH here). */
Test(capture_api, sampled_empty_and_dated)
{
	char path[300], err[1024];
	struct pair p;
	struct ahasd_capture *c = NULL;
	struct trace_reader *r = NULL;
	struct trace_seq s;
	const float cont[3] = { 1, 2, 3 };

	pair_init(&p, 1);
	path_in(path, sizeof path, "s.msgpack");
	setenv("SOURCE_DATE_EPOCH", "1700000000", 1);
	cr_assert_eq(ahasd_capture_open(&c, path, &p.cfg, err, sizeof err), 0,
	             "%s", err);
	cr_assert_eq(ahasd_capture_begin(c, 0, 1), 0);
	cr_assert_eq(ahasd_capture_pos(c, 1.0f, 0.5f, 0.625f, 4, cont), 0, "%s",
	             ahasd_capture_error(c));
	cr_assert_eq(ahasd_capture_pos(c, 1.0f, 0.5f, 1.0f, 4, NULL), 0, "%s",
	             ahasd_capture_error(c));
	cr_assert_eq(ahasd_capture_end(c), 0);
	cr_assert_eq(ahasd_capture_close(&c, err, sizeof err), 0, "%s", err);
	unsetenv("SOURCE_DATE_EPOCH");
	cr_assert_eq(trace_reader_open(&r, path, err, sizeof err), 0, "%s",
	             err);
	cr_assert_eq(trace_reader_header(r)->sampled, 1);
	cr_assert_float_eq(trace_reader_header(r)->temperature, 0.7, 0);
	cr_assert_float_eq(trace_reader_header(r)->top_p, 0.9, 0);
	cr_assert_str_eq(trace_header_prov(trace_reader_header(r), "date"),
	                 "2023-11-14T22:13:20Z");
	cr_assert_eq(trace_reader_next(r, &s, err, sizeof err), 1, "%s", err);
	cr_assert_eq(s.accept[0], 0.625f);
	cr_assert_eq(s.n_cont, 1);
	trace_reader_close(&r);

	path_in(path, sizeof path, "empty.msgpack");
	cr_assert_eq(ahasd_capture_open(&c, path, &p.cfg, err, sizeof err), 0,
	             "%s", err);
	cr_assert_eq(ahasd_capture_close(&c, err, sizeof err), 0, "%s", err);
	cr_assert_eq(trace_reader_open(&r, path, err, sizeof err), 0, "%s",
	             err);
	cr_assert_eq(trace_reader_next(r, &s, err, sizeof err), 0, "%s", err);
	trace_reader_close(&r);
}

/* ---------------------------------------------------------------- */
/* errors: a table of misuses, each after a valid start */

enum step { OPEN_SEQ, NO_SEQ };

struct misuse {
	const char *what;
	int sampled;
	enum step start; /* with sequence 5 (prompt 36) begun, or not */
	int (*act)(struct ahasd_capture *c);
	const char *msg; /* in ahasd_capture_error() */
};

static const float g_cont[3] = { 1, 1, 1 };

static int pos_ok(struct ahasd_capture *c)
{
	return ahasd_capture_pos(c, 1, 0.5f, 1, 3, NULL);
}

static int m_nan_entropy(struct ahasd_capture *c)
{
	return ahasd_capture_pos(c, NAN, 0.5f, 1, 3, NULL);
}

static int m_top1(struct ahasd_capture *c)
{
	return ahasd_capture_pos(c, 1, 1.5f, 1, 3, NULL);
}

static int m_accept(struct ahasd_capture *c)
{
	return ahasd_capture_pos(c, 1, 0.5f, -0.25f, 3, g_cont);
}

static int m_greedy_half(struct ahasd_capture *c)
{
	return ahasd_capture_pos(c, 1, 0.5f, 0.5f, 3, g_cont);
}

static int m_no_cont(struct ahasd_capture *c)
{
	return ahasd_capture_pos(c, 1, 0.5f, 0, 3, NULL);
}

static int m_extra_cont(struct ahasd_capture *c)
{
	return ahasd_capture_pos(c, 1, 0.5f, 1, 3, g_cont);
}

static int m_bad_cont(struct ahasd_capture *c)
{
	const float cont[3] = { 1, INFINITY, 1 };
	return ahasd_capture_pos(c, 1, 0.5f, 0, 3, cont);
}

static int m_token_range(struct ahasd_capture *c)
{
	return ahasd_capture_pos(c, 1, 0.5f, 1, 32, NULL);
}

static int m_token_mix(struct ahasd_capture *c)
{
	pos_ok(c);
	return ahasd_capture_pos(c, 1, 0.5f, 1, AHASD_CAPTURE_NO_TOKEN, NULL);
}

static int m_past_context(struct ahasd_capture *c)
{
	/* seq_len 40, prompt 36: positions 0..3 fit */
	for (int i = 0; i < 4; i++)
		cr_assert_eq(pos_ok(c), 0, "%s", ahasd_capture_error(c));
	return pos_ok(c);
}

static int m_pos_size(struct ahasd_capture *c)
{
	struct ahasd_capture_position p = AHASD_CAPTURE_POSITION_INIT;
	p.struct_size += 8; /* built against a newer header */
	return ahasd_capture_position(c, &p);
}

static int m_no_begin(struct ahasd_capture *c)
{
	return pos_ok(c);
}

static int m_begin_twice(struct ahasd_capture *c)
{
	return ahasd_capture_begin(c, 6, 1);
}

static int m_dup_id(struct ahasd_capture *c)
{
	pos_ok(c);
	ahasd_capture_end(c);
	return ahasd_capture_begin(c, 5, 1);
}

static int m_empty_seq(struct ahasd_capture *c)
{
	return ahasd_capture_end(c);
}

static int m_end_no_seq(struct ahasd_capture *c)
{
	return ahasd_capture_end(c);
}

static int m_long_prompt(struct ahasd_capture *c)
{
	return ahasd_capture_begin(c, 1, 40);
}

static int m_prov_late(struct ahasd_capture *c)
{
	return ahasd_capture_provenance(c, "runtime", "late");
}

static int m_close_open(struct ahasd_capture *c)
{
	(void)c;
	return 0; /* the close below finds the sequence still open */
}

static const struct misuse g_misuses[] = {
	{ "NaN entropy", 0, OPEN_SEQ, m_nan_entropy,
	  "sequence 5, position 0: field 'entropy': expected a finite value >= "
	  "0 nats, got nan" },
	{ "top1 > 1", 0, OPEN_SEQ, m_top1,
	  "field 'top1': expected a probability in [0, 1], got 1.5" },
	{ "accept < 0", 1, OPEN_SEQ, m_accept,
	  "field 'accept': expected a probability in [0, 1], got -0.25" },
	{ "greedy accept 0.5", 0, OPEN_SEQ, m_greedy_half,
	  "field 'accept': expected 0 or 1 in a greedy capture, got 0.5" },
	{ "rejection without continuation", 0, OPEN_SEQ, m_no_cont,
	  "field 'cont': accept 0 < 1 needs the draft's continuation (3 "
	  "entropies), got NULL" },
	{ "continuation where accepted", 0, OPEN_SEQ, m_extra_cont,
	  "field 'cont': expected NULL where accept is 1" },
	{ "infinite continuation entropy", 0, OPEN_SEQ, m_bad_cont,
	  "field 'cont[1]': expected a finite entropy >= 0 nats, got inf" },
	{ "token past the vocabulary", 0, OPEN_SEQ, m_token_range,
	  "field 'token': expected a token id in [0, 32) or "
	  "AHASD_CAPTURE_NO_TOKEN, got 32" },
	{ "tokens on some positions only", 0, OPEN_SEQ, m_token_mix,
	  "sequence 5, position 1: field 'token': no token, but the earlier "
	  "positions of this sequence have one" },
	{ "past the context", 0, OPEN_SEQ, m_past_context,
	  "sequence 5, position 4: past the target's context: prompt_len 36 + "
	  "4 positions reach seq_len 40" },
	{ "position from a newer header", 0, OPEN_SEQ, m_pos_size,
	  /* API 2's position is 40 bytes on LP64 (API 1's: 32) */
	  "position: struct_size 48 is larger than this library's 40: the "
	  "program was built against a newer ahasd_capture.h" },
	{ "position without begin", 0, NO_SEQ, m_no_begin,
	  "position given with no open sequence: call ahasd_capture_begin() "
	  "first" },
	{ "begin while open", 0, OPEN_SEQ, m_begin_twice,
	  "sequence 6 begun while sequence 5 is open: end it first" },
	{ "duplicate id", 0, OPEN_SEQ, m_dup_id,
	  "sequence 5: duplicate id (also sequence number 1 begun)" },
	{ "empty sequence", 0, OPEN_SEQ, m_empty_seq,
	  "sequence 5: ended with no position" },
	{ "end without begin", 0, NO_SEQ, m_end_no_seq,
	  "ahasd_capture_end() with no open sequence" },
	{ "prompt fills the context", 0, NO_SEQ, m_long_prompt,
	  "sequence 1: prompt_len 40 leaves no position within the target's "
	  "context (seq_len 40)" },
	{ "provenance after begin", 0, OPEN_SEQ, m_prov_late,
	  "provenance 'runtime' given after the first sequence began" },
	{ "close with a sequence open", 0, OPEN_SEQ, m_close_open,
	  "closed while sequence 5 is open (0 positions): end it, or abort the "
	  "capture" },
};

Test(capture_api, misuses_fail_the_capture_and_leave_no_file)
{
	for (size_t i = 0; i < sizeof g_misuses / sizeof g_misuses[0]; i++) {
		const struct misuse *m = &g_misuses[i];
		char path[300], err[1024];
		struct ahasd_capture *c = NULL;
		struct pair p;
		int ret;

		pair_init(&p, m->sampled);
		path_in(path, sizeof path, "old.msgpack");
		/* an old file at the path survives a failed capture */
		{
			FILE *f = fopen(path, "w");
			cr_assert_not_null(f);
			fputs("old", f);
			fclose(f);
		}
		cr_assert_eq(
		        ahasd_capture_open(&c, path, &p.cfg, err, sizeof err),
		        0, "%s: %s", m->what, err);
		if (m->start == OPEN_SEQ)
			cr_assert_eq(ahasd_capture_begin(c, 5, 36), 0, "%s",
			             m->what);
		ret = m->act(c);
		if (m->act != m_close_open) {
			cr_assert_eq(ret, -EINVAL, "%s: got %d", m->what, ret);
			cr_assert(strstr(ahasd_capture_error(c), m->msg),
			          "%s: got '%s'", m->what,
			          ahasd_capture_error(c));
			cr_assert(strncmp(ahasd_capture_error(c), path,
			                  strlen(path)) == 0,
			          "%s: the message names the file: '%s'",
			          m->what, ahasd_capture_error(c));
			/* sticky: nothing works after an error */
			cr_assert_eq(pos_ok(c), -EINVAL, "%s", m->what);
			cr_assert_eq(ahasd_capture_end(c), -EINVAL, "%s",
			             m->what);
			cr_assert_eq(ahasd_capture_begin(c, 99, 1), -EINVAL,
			             "%s", m->what);
			cr_assert(strstr(ahasd_capture_error(c), m->msg), "%s",
			          m->what);
		}
		ret = ahasd_capture_close(&c, err, sizeof err);
		cr_assert_eq(ret, -EINVAL, "%s: close gave %d", m->what, ret);
		cr_assert(strstr(err, m->msg), "%s: close said '%s'", m->what,
		          err);
		cr_assert_null(c);
		{
			size_t len;
			char *old = slurp(path, &len);
			cr_assert(len == 3 && memcmp(old, "old", 3) == 0,
			          "%s: the old file was replaced", m->what);
			free(old);
		}
		cr_assert_eq(dir_entries(), 1, "%s: a temporary file was left",
		             m->what);
		unlink(path);
	}
}

/* configurations refused at open, with the field named; nothing created */
Test(capture_api, bad_configurations_refused_at_open)
{
	static const struct {
		const char *what;
		int field;
		const char *msg;
	} cases[] = {
		{ "lookahead 0", 0, "field 'lookahead': expected >= 1, got 0" },
		{ "sampled at T 0", 1,
		  "field 'temperature': expected a finite value > 0 for a "
		  "sampled capture, got 0" },
		{ "top_p 1.5", 2,
		  "field 'top_p': expected a value in (0, 1], got 1.5" },
		{ "no draft", 3,
		  "field 'models.draft': expected a model, got NULL" },
		{ "vocab mismatch", 4,
		  "field 'models.draft.vocab_size': expected the target's 32 "
		  "(a speculative pair shares one vocabulary), got 33" },
		{ "unknown op kind", 5,
		  "field 'models.target.ops[1].kind': expected one of gemm, "
		  "attention, nonlinear, norm, elementwise, embed, got "
		  "\"matmul\"" },
		{ "long name", 6,
		  "field 'models.target.name': expected a name of 1..63 bytes, "
		  "got 64 bytes" },
		{ "zero dim", 7,
		  "field 'models.draft.ops': n_ops 0 asks for the llama op "
		  "list, which needs dim divisible by n_heads" },
		{ "config from a newer header", 8, "config: struct_size" },
		{ "model from an older header", 9,
		  "models.target: struct_size 8 is smaller than API 1's" },
		{ "a folder as output", 10, "is a directory" },
		{ "zero repeat", 11,
		  "field 'models.target.ops[0].repeat': expected >= 1, got 0" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char path[300], err[1024] = "", longname[65];
		struct ahasd_capture_op ops[6];
		struct pair p;
		/* a stale value, which a failed open must clear */
		struct ahasd_capture *c = (struct ahasd_capture *)(uintptr_t)&p;
		int ret;

		pair_init(&p, 0);
		memcpy(ops, g_ops, sizeof ops);
		p.target.ops = ops;
		path_in(path, sizeof path, "bad.msgpack");
		switch (cases[i].field) {
		case 0: p.cfg.lookahead = 0; break;
		case 1:
			p.cfg.sampled = 1;
			p.cfg.temperature = 0;
			break;
		case 2:
			p.cfg.sampled = 1;
			p.cfg.temperature = 1;
			p.cfg.top_p = 1.5;
			break;
		case 3: p.cfg.draft = NULL; break;
		case 4: p.draft.vocab_size = 33; break;
		case 5: ops[1].kind = "matmul"; break;
		case 6:
			memset(longname, 'x', 64);
			longname[64] = '\0';
			p.target.name = longname;
			break;
		case 7: p.draft.dim = 0; break;
		case 8: p.cfg.struct_size += 16; break;
		case 9: p.target.struct_size = 8; break;
		case 10: snprintf(path, sizeof path, "%s", g_dir); break;
		case 11: ops[0].repeat = 0; break;
		}
		ret = ahasd_capture_open(&c, path, &p.cfg, err, sizeof err);
		cr_assert_lt(ret, 0, "%s: accepted", cases[i].what);
		cr_assert_null(c, "%s", cases[i].what);
		cr_assert(strstr(err, cases[i].msg), "%s: got '%s'",
		          cases[i].what, err);
		cr_assert_eq(dir_entries(), 0, "%s: left a file",
		             cases[i].what);
	}
}

Test(capture_api, abort_and_null_are_harmless)
{
	char path[300], err[64];
	struct pair p;
	struct ahasd_capture *c = NULL;

	ahasd_capture_abort(&c);
	ahasd_capture_abort(NULL);
	cr_assert_eq(ahasd_capture_close(&c, err, sizeof err), 0);
	cr_assert_eq(ahasd_capture_close(NULL, err, sizeof err), 0);
	cr_assert_str_eq(ahasd_capture_error(NULL), "");
	cr_assert_eq(ahasd_capture_begin(NULL, 0, 1), -EINVAL);
	cr_assert_eq(ahasd_capture_position(NULL, NULL), -EINVAL);
	cr_assert_eq(ahasd_capture_end(NULL), -EINVAL);
	cr_assert_eq(ahasd_capture_provenance(NULL, "a", "b"), -EINVAL);
	pair_init(&p, 0);
	path_in(path, sizeof path, "aborted.msgpack");
	cr_assert_eq(ahasd_capture_open(&c, path, &p.cfg, err, sizeof err), 0,
	             "%s", err);
	cr_assert_eq(ahasd_capture_begin(c, 0, 1), 0);
	cr_assert_eq(pos_ok(c), 0);
	cr_assert_eq(ahasd_capture_end(c), 0);
	ahasd_capture_abort(&c);
	cr_assert_null(c);
	cr_assert_eq(dir_entries(), 0, "an aborted capture left a file");
}

/* ---------------------------------------------------------------- */
/* programs: the example runtime, and ahasd-capture on top of the API */

static int run(const char *const *argv, char *out, size_t outlen)
{
	char log[300];
	pid_t pid;
	int status = 0;
	FILE *f;
	size_t got;

	path_in(log, sizeof log, "stderr.txt");
	pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0 || dup2(fd, 2) < 0 || dup2(fd, 1) < 0)
			_exit(126);
		execv(argv[0], (char *const *)(uintptr_t)argv);
		_exit(127);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	f = fopen(log, "r");
	cr_assert_not_null(f);
	got = fread(out, 1, outlen - 1, f);
	out[got] = '\0';
	fclose(f);
	unlink(log);
	cr_assert(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static const char *build_path(char *buf, size_t n, const char *rel)
{
	const char *root = getenv("AHASD_BUILD_ROOT");

	cr_assert_not_null(root,
	                   "AHASD_BUILD_ROOT unset: run through meson test");
	snprintf(buf, n, "%s/%s", root, rel);
	return buf;
}

Test(capture_api, example_runtime_writes_valid_traces)
{
	char exe[512], trace_bin[512], out[300], log[2048], err[1024];
	const char *mode[] = { NULL, "--sampled" };

	build_path(exe, sizeof exe, "capture/examples/toy_runtime");
	build_path(trace_bin, sizeof trace_bin, "tools/ahasd-trace");
	for (int m = 0; m < 2; m++) {
		const char *argv[] = { exe, out, mode[m], NULL };
		const char *val[] = { trace_bin, "validate", out, NULL };
		struct trace_reader *r = NULL;
		struct trace_seq s;
		uint64_t ns, nt;
		double acc = 0;
		int ret;

		path_in(out, sizeof out,
		        m ? "toy-sampled.msgpack" : "toy.msgpack");
		cr_assert_eq(run(argv, log, sizeof log), 0, "%s", log);
		cr_assert_eq(run(val, log, sizeof log), 0, "%s", log);
		cr_assert_eq(trace_reader_open(&r, out, err, sizeof err), 0,
		             "%s", err);
		cr_assert_eq(trace_reader_header(r)->sampled, m);
		cr_assert_str_eq(
		        trace_header_prov(trace_reader_header(r), "runtime"),
		        "toy_runtime (capture/examples)");
		while ((ret = trace_reader_next(r, &s, err, sizeof err)) == 1)
			for (uint32_t i = 0; i < s.n; i++)
				acc += s.accept[i];
		cr_assert_eq(ret, 0, "%s", err);
		trace_reader_totals(r, &ns, &nt);
		cr_assert_eq(ns, 4);
		/* the toy draft agrees with the target on most, not all, tokens */
		cr_assert(nt > 100 && acc > 0.25 * (double)nt &&
		                  acc < 0.9 * (double)nt,
		          "mean a_p %g of %llu positions", acc / (double)nt,
		          (unsigned long long)nt);
		trace_reader_close(&r);
	}
	{
		const char *argv[] = { exe, NULL };
		cr_assert_eq(run(argv, log, sizeof log), 2, "%s", log);
		cr_assert(strstr(log, "usage: toy_runtime"), "%s", log);
	}
	/* --lookup: a draft without a model, format 1.1 */
	{
		const char *argv[] = { exe, out, "--lookup", NULL };
		const char *val[] = { trace_bin, "validate", out, NULL };
		struct trace_reader *r = NULL;
		const struct trace_header *h;
		struct trace_seq s;
		uint64_t runs = 0, nt = 0;
		int ret;

		path_in(out, sizeof out, "toy-lookup.msgpack");
		cr_assert_eq(run(argv, log, sizeof log), 0, "%s", log);
		cr_assert_eq(run(val, log, sizeof log), 0, "%s", log);
		cr_assert_eq(trace_reader_open(&r, out, err, sizeof err), 0,
		             "%s", err);
		h = trace_reader_header(r);
		cr_assert_eq(h->features, TRACE_F_ACCEPT_RUNS |
		                                  TRACE_F_NO_ENTROPY |
		                                  TRACE_F_DRAFT_LOOKUP);
		cr_assert_str_eq(h->draft_lookup, "prompt_lookup");
		cr_assert_eq(h->run_max, 4);
		cr_assert_eq(h->tree_tokens, 4);
		while ((ret = trace_reader_next(r, &s, err, sizeof err)) == 1) {
			cr_assert_null(s.entropy);
			for (uint32_t i = 0; i < s.n; i++)
				runs += s.accept_run[i];
			nt += s.n;
		}
		cr_assert_eq(ret, 0, "%s", err);
		/* the toy target repeats itself: the lookup is often right */
		cr_assert(nt > 100 && runs > nt / 2,
		          "%llu run tokens over %llu "
		          "positions",
		          (unsigned long long)runs, (unsigned long long)nt);
		trace_reader_close(&r);
	}
}

/* A runtime built against API 1 (tests/capture_abi: the frozen header,
 * nothing else) runs under this library: it writes the version-1 trace
 * the same calls make through the current header, byte for byte. */
Test(capture_api, api1_program_runs_unchanged)
{
	char exe[512], a[300], b[300], log[2048], want[128], err[1024];
	const char *argv[] = { exe, a, NULL };
	struct trace_reader *r = NULL;
	void *da, *db;
	size_t na, nb;

	build_path(exe, sizeof exe, "tests/capture_abi/capture-api1-writer");
	path_in(a, sizeof a, "api1.msgpack");
	path_in(b, sizeof b, "api2.msgpack");
	cr_assert_eq(run(argv, log, sizeof log), 0, "%s", log);
	snprintf(want, sizeof want, "header API 1, library API %u",
	         AHASD_CAPTURE_API_VERSION);
	cr_assert(strstr(log, want), "want '%s' in '%s'", want, log);
	cr_assert_eq(AHASD_CAPTURE_API_VERSION, 2);
	cr_assert_eq(api1_write(b), 0);
	da = slurp(a, &na);
	db = slurp(b, &nb);
	cr_assert_eq(na, nb, "sizes %zu and %zu", na, nb);
	cr_assert_eq(memcmp(da, db, na), 0,
	             "the API-1 program's trace differs");
	free(da);
	free(db);
	cr_assert_eq(trace_reader_open(&r, a, err, sizeof err), 0, "%s", err);
	cr_assert_eq(trace_reader_header(r)->version, 1);
	cr_assert_eq(trace_reader_header(r)->features, 0);
	cr_assert_eq(trace_reader_header(r)->lookahead, 3);
	trace_reader_close(&r);
}

/* ---------------------------------------------------------------- */
/* format 1.1 from the API (API 2) */

/* the pair of pair_init() as a lookup draft, or with runs of up to R,
 * or without entropies */
static void pair11(struct pair *p, uint32_t R, uint32_t T, int noent,
                   const char *lookup)
{
	pair_init(p, 0);
	p->cfg.accept_run_max = R;
	p->cfg.tree_tokens = T;
	p->cfg.no_entropy = noent;
	p->cfg.draft_lookup = lookup;
	if (lookup)
		p->cfg.draft = NULL;
}

/* Each feature alone and together, read back: the header's version
 * string, features, R and T (given, or the format's defaults), no
 * lookahead where there are no continuations; per position what the
 * feature keeps (runs; true-prefix entropies unless no_entropy; a_p
 * without runs) and nothing it takes away, whatever the position gave. */
Test(capture_api, format11_round_trip)
{
	static const struct {
		uint32_t R, T;
		int noent;
		const char *lookup;
		uint32_t want_T;
	} cases[] = {
		{ 4, 0, 0, NULL, 40 },   /* runs of a model: a tree, 10 R */
		{ 4, 6, 1, NULL, 6 },    /* T given, no entropies */
		{ 4, 0, 1, "ngram", 4 }, /* a lookup: a chain, R */
		{ 0, 0, 1, NULL, 0 },    /* a_p without entropies */
		{ 0, 0, 0, "prompt_lookup", 0 }, /* a lookup with a_p and H */
	};
	static const uint32_t run[] = { 3, 0, 4, 1 };
	static const float acc[] = { 1, 0, 1, 1 };

	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		char path[300], err[1024];
		struct ahasd_capture *c = NULL;
		struct trace_reader *r = NULL;
		const struct trace_header *h;
		struct trace_seq s;
		struct pair p;
		const uint32_t R = cases[k].R;

		pair11(&p, R, cases[k].T, cases[k].noent, cases[k].lookup);
		path_in(path, sizeof path, "f11.msgpack");
		cr_assert_eq(
		        ahasd_capture_open(&c, path, &p.cfg, err, sizeof err),
		        0, "case %zu: %s", k, err);
		cr_assert_eq(ahasd_capture_begin(c, 1, 4), 0);
		for (int i = 0; i < 4; i++) {
			struct ahasd_capture_position pos =
			        AHASD_CAPTURE_POSITION_INIT;
			static const float cont[3] = { 1, 2, 3 };

			pos.entropy = cases[k].noent ? NAN : 0.5f + (float)i;
			pos.top1 = cases[k].noent ? -1.0f : 0.25f;
			pos.accept = R ? 7.0f : acc[i]; /* runs: not read */
			pos.accept_run = run[i];
			pos.token = 10 + i;
			/* read only where the trace has continuations */
			pos.cont = R || cases[k].noent || acc[i] < 1 ? cont
			                                             : NULL;
			cr_assert_eq(ahasd_capture_position(c, &pos), 0,
			             "case %zu: %s", k, ahasd_capture_error(c));
		}
		cr_assert_eq(ahasd_capture_end(c), 0, "%s",
		             ahasd_capture_error(c));
		cr_assert_eq(ahasd_capture_close(&c, err, sizeof err), 0, "%s",
		             err);

		cr_assert_eq(trace_reader_open(&r, path, err, sizeof err), 0,
		             "case %zu: %s", k, err);
		h = trace_reader_header(r);
		cr_assert_eq(
		        h->features,
		        (R ? TRACE_F_ACCEPT_RUNS : 0u) |
		                (cases[k].noent ? TRACE_F_NO_ENTROPY : 0u) |
		                (cases[k].lookup ? TRACE_F_DRAFT_LOOKUP : 0u),
		        "case %zu", k);
		cr_assert_eq(h->run_max, R);
		cr_assert_eq(h->tree_tokens, cases[k].want_T, "case %zu: T %u",
		             k, h->tree_tokens);
		cr_assert_eq(h->lookahead, R || cases[k].noent ? 0u : 3u);
		if (cases[k].lookup)
			cr_assert_str_eq(h->draft_lookup, cases[k].lookup);
		cr_assert_eq(trace_reader_next(r, &s, err, sizeof err), 1, "%s",
		             err);
		cr_assert_eq(s.n, 4);
		for (int i = 0; i < 4; i++) {
			cr_assert_eq(s.tokens[i], 10u + (uint32_t)i);
			if (R) {
				cr_assert_eq(s.accept_run[i], run[i]);
				cr_assert_eq(s.accept[i], run[i] ? 1.0f : 0.0f);
			} else {
				cr_assert_null(s.accept_run);
				cr_assert_eq(s.accept[i], acc[i]);
			}
			if (cases[k].noent)
				cr_assert_null(s.entropy);
			else
				cr_assert_eq(s.entropy[i], 0.5f + (float)i);
		}
		cr_assert_eq(s.n_cont, R || cases[k].noent ? 0u : 1u);
		trace_reader_close(&r);
	}
}

/* The 1.1 fields are checked where given, with the field's name. */
Test(capture_api, format11_bad_values_refused)
{
	static const struct {
		uint32_t R, T;
		int noent;
		const char *lookup;
		int keep_draft;
		const char *msg;
	} open_cases[] = {
		{ 65537, 0, 0, NULL, 1,
		  "field 'accept_run_max': expected 0 or a "
		  "value in [1, 65536], got 65537" },
		{ 4, 3, 0, NULL, 1,
		  "field 'tree_tokens': expected 0 (the default) "
		  "or a value in [accept_run_max = 4, 65536], got 3" },
		{ 0, 8, 0, NULL, 1,
		  "field 'tree_tokens': needs accept_run_max" },
		{ 0, 0, 2, NULL, 1,
		  "field 'no_entropy': expected 0 or 1, got 2" },
		{ 4, 0, 0, "ngram", 1,
		  "field 'draft': expected NULL with "
		  "draft_lookup \"ngram\" (a lookup has no model)" },
		{ 4, 0, 0, "", 0,
		  "field 'draft_lookup': expected a name of "
		  "1..63 bytes" },
		{ 4, 0, 0, NULL, 0,
		  "field 'models.draft': expected a model, got "
		  "NULL" },
	};
	char path[300], err[1024];
	struct ahasd_capture *c = NULL;
	struct pair p;

	path_in(path, sizeof path, "bad11.msgpack");
	for (size_t k = 0; k < sizeof open_cases / sizeof open_cases[0]; k++) {
		pair11(&p, open_cases[k].R, open_cases[k].T,
		       open_cases[k].noent, open_cases[k].lookup);
		if (open_cases[k].keep_draft)
			p.cfg.draft = &p.draft;
		else if (!open_cases[k].lookup)
			p.cfg.draft = NULL;
		err[0] = '\0';
		cr_assert_eq(
		        ahasd_capture_open(&c, path, &p.cfg, err, sizeof err),
		        -EINVAL, "case %zu", k);
		cr_assert(strstr(err, open_cases[k].msg),
		          "case %zu: want '%s' in "
		          "'%s'",
		          k, open_cases[k].msg, err);
		cr_assert_null(c);
	}
	/* a run past R, named with its sequence and position */
	pair11(&p, 4, 0, 1, NULL);
	cr_assert_eq(ahasd_capture_open(&c, path, &p.cfg, err, sizeof err), 0,
	             "%s", err);
	cr_assert_eq(ahasd_capture_begin(c, 2, 4), 0);
	cr_assert_eq(ahasd_capture_pos_run(c, 0, 0, 4, 1), 0);
	cr_assert_eq(ahasd_capture_pos_run(c, 0, 0, 5, 1), -EINVAL);
	cr_assert(
	        strstr(ahasd_capture_error(c),
	               "sequence 2, position 1: field "
	               "'accept_run': expected at most accept_run_max = 4, got "
	               "5"),
	        "%s", ahasd_capture_error(c));
	cr_assert_eq(ahasd_capture_close(&c, err, sizeof err), -EINVAL);
	/* true-prefix entropies with runs are still checked */
	pair11(&p, 4, 0, 0, NULL);
	cr_assert_eq(ahasd_capture_open(&c, path, &p.cfg, err, sizeof err), 0,
	             "%s", err);
	cr_assert_eq(ahasd_capture_begin(c, 2, 4), 0);
	cr_assert_eq(ahasd_capture_pos_run(c, -1.0f, 0.5f, 1, 1), -EINVAL);
	cr_assert(strstr(ahasd_capture_error(c), "field 'entropy'"), "%s",
	          ahasd_capture_error(c));
	ahasd_capture_abort(&c);
}

/* ahasd-capture writes through the API; with the settings of the shipped
 * stories260K-skip3-greedy capture (traces/README-captures.md) its first
 * sequences are the shipped ones, bit for bit. The whole files are
 * compared by SHA-256 by hand (that takes minutes); this is the quick
 * guard. */
Test(capture_api, ahasd_capture_reproduces_a_shipped_trace)
{
	const char *models = getenv("AHASD_MODELS_DIR");
	const char *src = getenv("AHASD_SOURCE_ROOT");
	char model[600], prompts[600], shipped[600], bin[512], out[300];
	char log[4096], err[1024];
	struct trace_reader *a = NULL, *b = NULL;
	struct trace_seq sa, sb;
	const uint32_t K = 16;

	cr_assert_not_null(src);
	snprintf(model, sizeof model, "%s/stories260K/stories260K.bin",
	         models ? models : "");
	if (!models || !exists(model)) {
		fprintf(stderr,
		        "SKIP ahasd_capture_reproduces_a_shipped_trace: %s "
		        "not found (the real models are in ../shared/models)\n",
		        model);
		cr_skip_test("real models absent");
	}
	snprintf(prompts, sizeof prompts, "%s/capture/prompts/stories.txt",
	         src);
	snprintf(shipped, sizeof shipped,
	         "%s/traces/stories260K-skip3-greedy.msgpack", src);
	build_path(bin, sizeof bin, "capture/ahasd-capture");
	path_in(out, sizeof out, "skip3.msgpack");
	{
		const char *argv[] = { bin,
			               "-q",
			               "-m",
			               model,
			               "--draft-skip-layers",
			               "3",
			               "-p",
			               prompts,
			               "-o",
			               out,
			               "--date",
			               "2026-11-25T00:00:00Z",
			               "--max-prompts",
			               "4",
			               NULL };
		cr_assert_eq(run(argv, log, sizeof log), 0, "%s", log);
	}
	cr_assert_eq(trace_reader_open(&a, out, err, sizeof err), 0, "%s", err);
	cr_assert_eq(trace_reader_open(&b, shipped, err, sizeof err), 0, "%s",
	             err);
	cr_assert_eq(trace_reader_header(a)->target.weight_bytes,
	             trace_reader_header(b)->target.weight_bytes);
	cr_assert_eq(trace_reader_header(a)->draft.n_ops,
	             trace_reader_header(b)->draft.n_ops);
	cr_assert_eq(trace_reader_header(a)->n_prov,
	             trace_reader_header(b)->n_prov);
	for (size_t i = 0; i < trace_reader_header(a)->n_prov; i++) {
		const struct trace_kv *x = &trace_reader_header(a)->prov[i];
		const struct trace_kv *y = &trace_reader_header(b)->prov[i];
		cr_assert_str_eq(x->key, y->key);
		/* the prompt count and the path differ from the shipped run's */
		if (strcmp(x->key, "prompts") != 0 &&
		    strcmp(x->key, "prompt_source") != 0 &&
		    strcmp(x->key, "capped_sequences") != 0)
			cr_assert_str_eq(x->value, y->value, "provenance '%s'",
			                 x->key);
	}
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(trace_reader_next(a, &sa, err, sizeof err), 1,
		             "%s", err);
		cr_assert_eq(trace_reader_next(b, &sb, err, sizeof err), 1,
		             "%s", err);
		cr_assert_eq(sa.id, sb.id);
		cr_assert_eq(sa.prompt_len, sb.prompt_len);
		cr_assert_eq(sa.n, sb.n);
		cr_assert_eq(sa.n_cont, sb.n_cont);
		cr_assert_arr_eq(sa.entropy, sb.entropy, sa.n * sizeof(float));
		cr_assert_arr_eq(sa.top1, sb.top1, sa.n * sizeof(float));
		cr_assert_arr_eq(sa.accept, sb.accept, sa.n * sizeof(float));
		cr_assert_arr_eq(sa.tokens, sb.tokens, sa.n * sizeof(uint32_t));
		cr_assert_arr_eq(sa.cont_pos, sb.cont_pos,
		                 sa.n_cont * sizeof(uint32_t));
		cr_assert_arr_eq(sa.cont_entropy, sb.cont_entropy,
		                 (size_t)sa.n_cont * K * sizeof(float));
	}
	trace_reader_close(&a);
	trace_reader_close(&b);
}
