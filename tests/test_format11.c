/* test_format11.c - trace format 1.1 (traces/FORMAT.md, "Version 1.1"):
 * accepted-run lengths, traces without entropies, drafts without a model.
 *
 * What each suite proves:
 *  - format11: the library writes and reads every 1.1 feature (alone and
 *    together), keeps them through trace_mem, fills the documented default
 *    of tree_tokens, and refuses what a feature replaces, unknown
 *    features and 1.1 keys in a 1.0 header, naming the field; a header
 *    without features is written as 1.0, byte for byte what it was.
 *  - runs: the engine replays accepted-run lengths as FORMAT.md says, on
 *    a worked example whose fixed-k counts under sync are computed by hand
 *    below (and differ from the chain walk of the same trace as 1.0);
 *    drafts longer than R renew at p + R; a tree feeds 1 + ceil(d*T/R)
 *    tokens; a lookup draft costs lookup_s per batch; a plugin that needs
 *    entropies is refused on a trace without them, by name.
 *  - acclog: the importer of acceptance-length logs
 *    (capture/IMPORT-RUNS.md) converts the worked example, the committed
 *    excerpt of SpecDecode-Bench's published logs, into the trace whose
 *    replay gives the hand oracle above; the converter reproduces the
 *    committed files; the importer refuses, by line and field, what the
 *    schema does not allow.
 *  - api: traces written through the C capture API (ahasd_capture.h,
 *    API 2): accepted runs of a lookup draft replay the fixed-k counts
 *    worked out by hand at the suite; a capture without entropies is
 *    refused for AdaEDL and replays fixed-k as its chain of a_p.
 *  - oldreader: the previous release's reader (replay/trace.c at cf1ab2d,
 *    taken from git and compiled here) refuses a 1.1 trace at its version
 *    check, reads a 1.0 trace this release writes, and its writer writes
 *    the same bytes as this release's for a 1.0 trace.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <msgpack.h>

#include "ahasd_capture.h"
#include "capture.h"
#include "engine.h"
#include "hw.h"
#include "plugin.h"
#include "trace.h"
#include "trace_mem.h"

/* ---- a temporary folder per test ------------------------------------- */

static char tdir[64];

static void setup(void)
{
	snprintf(tdir, sizeof tdir, "/tmp/ahasd-test-f11-XXXXXX");
	cr_assert_not_null(mkdtemp(tdir));
}

static void rm_tree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[1024];
	struct stat st;

	if (!d)
		return;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
		if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
			rm_tree(p);
		else
			unlink(p);
	}
	closedir(d);
	rmdir(dir);
}

static void teardown(void)
{
	rm_tree(tdir);
}

static const char *tpath(const char *name)
{
	static char bufs[8][512];
	static int i;
	char *b = bufs[i++ % 8];

	snprintf(b, 512, "%s/%s", tdir, name);
	return b;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	cr_assert_not_null(f, "%s", path);
	cr_assert_eq(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	cr_assert_geq(n, 0);
	rewind(f);
	buf = malloc((size_t)n + 1);
	cr_assert_not_null(buf);
	cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

/* ---- hand-built traces ------------------------------------------------ */

static void tiny_model(struct trace_model *m, const char *name, uint32_t L)
{
	memset(m, 0, sizeof *m);
	snprintf(m->name, sizeof m->name, "%s", name);
	m->dim = 64;
	m->hidden_dim = 172;
	m->n_layers = L;
	m->n_heads = 8;
	m->n_kv_heads = 4;
	m->vocab_size = 512;
	m->seq_len = 512;
	m->weight_bits = 8;
	cr_assert_eq(trace_model_llama_ops(m), 0);
}

/* A header with the given 1.1 features (0: a 1.0 header, K = 2). */
static void make_header(struct trace_header *h, uint32_t features)
{
	memset(h, 0, sizeof *h);
	h->version = TRACE_FORMAT_VERSION;
	h->features = features;
	h->lookahead = trace_header_entropy_full(h) ? 2 : 0;
	h->top_p = 1.0;
	h->seed = 3;
	if (features & TRACE_F_ACCEPT_RUNS) {
		h->run_max = 4;
		h->tree_tokens = 40;
	}
	if (features & TRACE_F_DRAFT_LOOKUP)
		snprintf(h->draft_lookup, sizeof h->draft_lookup, "ngram");
	else
		tiny_model(&h->draft, "tiny-draft", 2);
	tiny_model(&h->target, "tiny-target", 5);
	cr_assert_eq(trace_header_add_prov(h, "tool", "test_format11"), 0);
}

/* Sequence 5: six positions. Runs 3 1 0 4 2 1 are not a chain: a chain
 * would have run[1] = 2 after run[0] = 3. */
static float s_ent[6] = { 0.5f, 1.0f, 2.0f, 0.25f, 0.75f, 3.0f };
static float s_top1[6] = { 0.9f, 0.6f, 0.3f, 0.95f, 0.7f, 0.1f };
static uint32_t s_run[6] = { 3, 1, 0, 4, 2, 1 };
static float s_acc[6] = { 1, 1, 0, 1, 1, 1 }; /* chain a_p, greedy */
static uint32_t s_cpos[1] = { 2 };
static float s_cent[2] = { 1.5f, 2.5f };

static struct trace_seq make_seq(const struct trace_header *h)
{
	struct trace_seq s = { .id = 5, .prompt_len = 7, .n = 6 };

	if (trace_header_has_entropy(h)) {
		s.entropy = s_ent;
		s.top1 = s_top1;
	}
	if (h->features & TRACE_F_ACCEPT_RUNS)
		s.accept_run = s_run;
	else
		s.accept = s_acc;
	if (trace_header_entropy_full(h)) {
		s.n_cont = 1;
		s.cont_pos = s_cpos;
		s.cont_entropy = s_cent;
	}
	return s;
}

static void write_trace(const char *path, uint32_t features)
{
	struct trace_header h;
	struct trace_writer *w = NULL;
	struct trace_seq s;
	char err[512] = "";

	make_header(&h, features);
	cr_assert_eq(trace_writer_open(&w, path, &h, err, sizeof err), 0, "%s",
	             err);
	s = make_seq(&h);
	cr_assert_eq(trace_writer_add(w, &s, err, sizeof err), 0, "%s", err);
	s.id = 6;
	cr_assert_eq(trace_writer_add(w, &s, err, sizeof err), 0, "%s", err);
	cr_assert_eq(trace_writer_close(&w, err, sizeof err), 0, "%s", err);
	trace_header_clear(&h);
}

/* Read path back and check every field against what write_trace wrote. */
static void check_trace(const char *path, uint32_t features)
{
	struct trace_reader *r = NULL;
	struct trace_seq s;
	char err[512] = "";
	int n = 0, rc;

	cr_assert_eq(trace_reader_open(&r, path, err, sizeof err), 0, "%s",
	             err);
	const struct trace_header *h = trace_reader_header(r);
	cr_assert_eq(h->features, features);
	cr_assert_eq(h->version, 1u);
	if (features & TRACE_F_ACCEPT_RUNS) {
		cr_assert_eq(h->run_max, 4u);
		cr_assert_eq(h->tree_tokens, 40u);
	}
	cr_assert_eq(h->lookahead, trace_header_entropy_full(h) ? 2u : 0u);
	if (features & TRACE_F_DRAFT_LOOKUP) {
		cr_assert_str_eq(h->draft_lookup, "ngram");
		cr_assert_eq(h->draft.n_ops, 0u);
	} else {
		cr_assert_str_eq(h->draft.name, "tiny-draft");
	}
	cr_assert_str_eq(h->target.name, "tiny-target");
	while ((rc = trace_reader_next(r, &s, err, sizeof err)) == 1) {
		cr_assert_eq(s.n, 6u);
		cr_assert_eq(s.prompt_len, 7u);
		for (uint32_t p = 0; p < 6; p++) {
			if (features & TRACE_F_ACCEPT_RUNS) {
				cr_assert_not_null(s.accept_run);
				cr_assert_eq(s.accept_run[p], s_run[p]);
				/* derived: a one-token speculation from p */
				cr_assert_eq(s.accept[p],
				             s_run[p] ? 1.0f : 0.0f);
			} else {
				cr_assert_null(s.accept_run);
				cr_assert_eq(s.accept[p], s_acc[p]);
			}
			if (trace_header_has_entropy(h)) {
				cr_assert_eq(s.entropy[p], s_ent[p]);
				cr_assert_eq(s.top1[p], s_top1[p]);
			}
		}
		if (!trace_header_has_entropy(h)) {
			cr_assert_null(s.entropy);
			cr_assert_null(s.top1);
		}
		cr_assert_eq(s.n_cont, trace_header_entropy_full(h) ? 1u : 0u);
		n++;
	}
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert_eq(n, 2);
	trace_reader_close(&r);
}

TestSuite(format11, .init = setup, .fini = teardown);

Test(format11, every_feature_round_trips)
{
	static const uint32_t sets[] = {
		TRACE_F_ACCEPT_RUNS,
		TRACE_F_NO_ENTROPY,
		TRACE_F_DRAFT_LOOKUP,
		TRACE_F_ACCEPT_RUNS | TRACE_F_NO_ENTROPY,
		TRACE_F_ACCEPT_RUNS | TRACE_F_DRAFT_LOOKUP,
		TRACE_F_NO_ENTROPY | TRACE_F_DRAFT_LOOKUP,
		TRACE_F_ALL,
	};

	for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++) {
		char name[32];

		snprintf(name, sizeof name, "f%zu.msgpack", i);
		write_trace(tpath(name), sets[i]);
		check_trace(tpath(name), sets[i]);
	}
}

/* The file says "1.1" and lists its features in a fixed order. */
Test(format11, header_says_1_1)
{
	const char *p = tpath("h.msgpack");
	msgpack_unpacked res;
	size_t len, off = 0;
	char *buf;

	write_trace(p, TRACE_F_DRAFT_LOOKUP | TRACE_F_ACCEPT_RUNS);
	buf = slurp(p, &len);
	msgpack_unpacked_init(&res);
	cr_assert_eq(msgpack_unpack_next(&res, buf, len, &off),
	             MSGPACK_UNPACK_SUCCESS);
	const msgpack_object_map *m = &res.data.via.map;
	int seen = 0;
	for (uint32_t i = 0; i < m->size; i++) {
		const msgpack_object *k = &m->ptr[i].key, *v = &m->ptr[i].val;

		if (k->via.str.size == 7 &&
		    !memcmp(k->via.str.ptr, "version", 7)) {
			cr_assert_eq(v->type, MSGPACK_OBJECT_STR);
			cr_assert_eq(v->via.str.size, 3u);
			cr_assert_eq(memcmp(v->via.str.ptr, "1.1", 3), 0);
			seen |= 1;
		}
		if (k->via.str.size == 8 &&
		    !memcmp(k->via.str.ptr, "features", 8)) {
			cr_assert_eq(v->type, MSGPACK_OBJECT_ARRAY);
			cr_assert_eq(v->via.array.size, 2u);
			cr_assert_eq(memcmp(v->via.array.ptr[0].via.str.ptr,
			                    "accept_runs", 11),
			             0);
			cr_assert_eq(memcmp(v->via.array.ptr[1].via.str.ptr,
			                    "draft_lookup", 12),
			             0);
			seen |= 2;
		}
		cr_assert(!(k->via.str.size == 9 &&
		            !memcmp(k->via.str.ptr, "lookahead", 9)),
		          "a trace without continuations has no lookahead");
	}
	cr_assert_eq(seen, 3);
	msgpack_unpacked_destroy(&res);
	free(buf);
}

Test(format11, trace_mem_keeps_the_new_arrays)
{
	const char *p = tpath("m.msgpack");
	struct trace_reader *r = NULL;
	struct trace_mem mem;
	char err[512] = "";

	write_trace(p, TRACE_F_ACCEPT_RUNS | TRACE_F_NO_ENTROPY |
	                       TRACE_F_DRAFT_LOOKUP);
	cr_assert_eq(trace_reader_open(&r, p, err, sizeof err), 0, "%s", err);
	trace_mem_init(&mem, trace_reader_header(r)->lookahead);
	cr_assert_eq(trace_mem_read(&mem, r, err, sizeof err), 0, "%s", err);
	trace_reader_close(&r);
	cr_assert_eq(mem.n_seq, 2u);
	for (size_t i = 0; i < mem.n_seq; i++) {
		const struct trace_seq *s = &mem.seq[i];

		cr_assert_null(s->entropy);
		cr_assert_null(s->top1);
		cr_assert_not_null(s->accept_run);
		for (uint32_t q = 0; q < s->n; q++) {
			cr_assert_eq(s->accept_run[q], s_run[q]);
			cr_assert_eq(s->accept[q], s_run[q] ? 1.0f : 0.0f);
			cr_assert_eq(s->cont_index[q], -1);
		}
	}
	trace_mem_free(&mem);

	/* and with entropies */
	write_trace(p, TRACE_F_ACCEPT_RUNS);
	cr_assert_eq(trace_reader_open(&r, p, err, sizeof err), 0, "%s", err);
	trace_mem_init(&mem, trace_reader_header(r)->lookahead);
	cr_assert_eq(trace_mem_read(&mem, r, err, sizeof err), 0, "%s", err);
	trace_reader_close(&r);
	for (uint32_t q = 0; q < 6; q++) {
		cr_assert_eq(mem.seq[1].entropy[q], s_ent[q]);
		cr_assert_eq(mem.seq[1].top1[q], s_top1[q]);
		cr_assert_eq(mem.seq[1].accept_run[q], s_run[q]);
	}
	trace_mem_free(&mem);
}

/* The context bound of a 1.1 sequence without every draft's entropy
 * (no_entropy, accept_runs: trace_seq_check's own branch) at both ends:
 * the tiny target's seq_len is 512 and the sequence has n = 6, so
 * prompt_len 506 fills the context exactly (506 + 6 = 512, accepted) and
 * 507 is one past it (513, refused, naming the field). */
Test(format11, context_bound_without_entropies)
{
	static const uint32_t feats[] = {
		TRACE_F_NO_ENTROPY,
		TRACE_F_ACCEPT_RUNS,
		TRACE_F_NO_ENTROPY | TRACE_F_ACCEPT_RUNS | TRACE_F_DRAFT_LOOKUP,
	};

	for (size_t i = 0; i < sizeof feats / sizeof *feats; i++) {
		struct trace_header h;
		struct trace_seq s;
		char err[512] = "";

		make_header(&h, feats[i]);
		cr_assert(!trace_header_entropy_full(&h));
		s = make_seq(&h);
		s.prompt_len = 506;
		cr_expect_eq(trace_seq_check(&h, &s, err, sizeof err), 0,
		             "features %u: %s", feats[i], err);
		s.prompt_len = 507;
		cr_expect_eq(trace_seq_check(&h, &s, err, sizeof err), -EINVAL,
		             "features %u", feats[i]);
		cr_expect(
		        strstr(err,
		               "field 'prompt_len' (sequence 5): "
		               "expected prompt_len + n = 507 + 6 = 513 within "
		               "the target model's context (seq_len 512)"),
		        "features %u: %s", feats[i], err);
		trace_header_clear(&h);
	}
}

/* A header without features is a 1.0 header: version 1, lookahead, both
 * models, and the reader gives features 0. */
Test(format11, no_features_is_1_0)
{
	const char *p = tpath("v10.msgpack");
	struct trace_reader *r = NULL;
	char err[512] = "";

	write_trace(p, 0);
	check_trace(p, 0);
	cr_assert_eq(trace_reader_open(&r, p, err, sizeof err), 0, "%s", err);
	cr_assert_eq(trace_reader_header(r)->features, 0u);
	trace_reader_close(&r);
}

/* ---- refusals: rewrite one key of the first header or seq record ------ */

struct edit {
	const char *rtype;  /* "header" or "seq" */
	const char *key;    /* top-level key, or "models.draft" */
	int drop;           /* 1: remove the key */
	msgpack_object val; /* else: set (or add) it to this */
};

static int key_is(const msgpack_object *k, const char *s)
{
	return k->type == MSGPACK_OBJECT_STR && k->via.str.size == strlen(s) &&
	       !memcmp(k->via.str.ptr, s, strlen(s));
}

static int file_write(void *data, const char *buf, size_t len)
{
	return len == 0 || fwrite(buf, 1, len, data) == len ? 0 : -1;
}

static void pack_map_edited(msgpack_packer *pk, const msgpack_object *o,
                            const char *key, const struct edit *e)
{
	const char *dot = strchr(key, '.');
	char head[64];
	uint32_t count = o->via.map.size;
	int found = 0;

	snprintf(head, sizeof head, "%.*s",
	         dot ? (int)(dot - key) : (int)strlen(key), key);
	for (uint32_t i = 0; i < o->via.map.size; i++)
		found |= key_is(&o->via.map.ptr[i].key, head);
	if (!dot)
		count += e->drop ? -(uint32_t)found : (uint32_t)!found;
	msgpack_pack_map(pk, count);
	for (uint32_t i = 0; i < o->via.map.size; i++) {
		const msgpack_object_kv *kv = &o->via.map.ptr[i];

		if (!key_is(&kv->key, head)) {
			msgpack_pack_object(pk, kv->key);
			msgpack_pack_object(pk, kv->val);
		} else if (dot) {
			msgpack_pack_object(pk, kv->key);
			pack_map_edited(pk, &kv->val, dot + 1, e);
		} else if (!e->drop) {
			msgpack_pack_object(pk, kv->key);
			msgpack_pack_object(pk, e->val);
		}
	}
	if (!dot && !e->drop && !found) {
		msgpack_pack_str_with_body(pk, head, strlen(head));
		msgpack_pack_object(pk, e->val);
	}
}

static void mutate(const char *src, const char *dst, const struct edit *e)
{
	size_t len, off = 0;
	char *buf = slurp(src, &len);
	FILE *f = fopen(dst, "wb");
	msgpack_packer pk;
	msgpack_unpacked res;
	int done = 0;

	cr_assert_not_null(f);
	msgpack_packer_init(&pk, f, file_write);
	msgpack_unpacked_init(&res);
	while (msgpack_unpack_next(&res, buf, len, &off) ==
	       MSGPACK_UNPACK_SUCCESS) {
		const msgpack_object *o = &res.data;
		int match = 0;

		for (uint32_t i = 0; i < o->via.map.size; i++)
			if (key_is(&o->via.map.ptr[i].key, "type") &&
			    key_is(&o->via.map.ptr[i].val, e->rtype))
				match = 1;
		if (match && !done) {
			pack_map_edited(&pk, o, e->key, e);
			done = 1;
		} else {
			msgpack_pack_object(&pk, *o);
		}
	}
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

static msgpack_object o_bin(const void *p, uint32_t size)
{
	msgpack_object o = { .type = MSGPACK_OBJECT_BIN };

	o.via.bin.ptr = p;
	o.via.bin.size = size;
	return o;
}

/* Read the whole file; the error must contain want. */
static void expect_refused(const char *path, const char *want)
{
	struct trace_reader *r = NULL;
	struct trace_seq s;
	char err[1024] = "";
	int rc = trace_reader_open(&r, path, err, sizeof err);

	while (rc == 0 && (rc = trace_reader_next(r, &s, err, sizeof err)) == 1)
		rc = 0;
	trace_reader_close(&r);
	cr_assert_lt(rc, 0, "read %s without error, wanted '%s'", path, want);
	cr_assert(strstr(err, want), "want '%s' in '%s'", want, err);
	cr_assert(strstr(err, path) == err, "the message names the file: %s",
	          err);
}

static void edit_refused(uint32_t features, const struct edit *e,
                         const char *want)
{
	const char *good = tpath("good.msgpack"), *bad = tpath("bad.msgpack");

	write_trace(good, features);
	mutate(good, bad, e);
	expect_refused(bad, want);
}

Test(format11, unknown_feature_refused)
{
	msgpack_object arr = { .type = MSGPACK_OBJECT_ARRAY };
	msgpack_object names[2] = { o_str("accept_runs"), o_str("tree_v2") };

	arr.via.array.size = 2;
	arr.via.array.ptr = names;
	const struct edit e = { "header", "features", 0, arr };
	edit_refused(TRACE_F_ACCEPT_RUNS, &e,
	             "field 'features[1]': feature "
	             "\"tree_v2\" is not known to this reader (it knows "
	             "accept_runs, no_entropy, draft_lookup)");
}

Test(format11, repeated_or_empty_features_refused)
{
	msgpack_object arr = { .type = MSGPACK_OBJECT_ARRAY };
	msgpack_object names[2] = { o_str("no_entropy"), o_str("no_entropy") };

	arr.via.array.size = 2;
	arr.via.array.ptr = names;
	struct edit e = { "header", "features", 0, arr };
	edit_refused(TRACE_F_NO_ENTROPY, &e,
	             "field 'features[1]': feature "
	             "\"no_entropy\" is listed twice");
	e.val.via.array.size = 0;
	edit_refused(TRACE_F_NO_ENTROPY, &e,
	             "field 'features': expected a "
	             "non-empty array of feature names, got array of 0");
}

Test(format11, other_versions_refused)
{
	struct edit e = { "header", "version", 0, o_str("1.2") };

	edit_refused(TRACE_F_NO_ENTROPY, &e,
	             "field 'version': expected "
	             "\"1.1\" (or the unsigned integer 1), got str \"1.2\"");
	/* a 1.1 header needs its features */
	const struct edit drop = { "header", "features", 1, { 0 } };
	edit_refused(TRACE_F_NO_ENTROPY, &drop,
	             "field 'features': expected an "
	             "array of feature names (version \"1.1\"), got nothing "
	             "(missing)");
	/* and version 1 cannot have any */
	e.val = o_uint(1);
	edit_refused(TRACE_F_NO_ENTROPY, &e,
	             "field 'features': expected none "
	             "in a version 1 header");
}

Test(format11, replaced_fields_refused)
{
	static float acc[6] = { 1, 1, 0, 1, 1, 1 };
	static uint32_t run[6] = { 3, 1, 0, 5, 2, 1 };
	struct edit e = { "seq", "accept", 0, o_bin(acc, sizeof acc) };

	edit_refused(TRACE_F_ACCEPT_RUNS, &e,
	             "field 'accept': not allowed with "
	             "feature accept_runs (accept_run replaces it)");
	e = (struct edit){ "seq", "accept_run", 1, { 0 } };
	edit_refused(TRACE_F_ACCEPT_RUNS, &e,
	             "field 'accept_run': expected a "
	             "bin of 24 bytes (n = 6 uint32), got nothing (missing)");
	e = (struct edit){ "seq", "accept_run", 0, o_bin(run, sizeof run) };
	edit_refused(TRACE_F_ACCEPT_RUNS, &e,
	             "field 'accept_run[3]' (sequence "
	             "5): expected at most accept_run_max = 4, got 5");
	e = (struct edit){ "seq", "accept_run", 0, o_bin(run, sizeof run) };
	/* a 1.0 file must not carry runs a 1.0 reader would ignore */
	edit_refused(0, &e,
	             "field 'accept_run': not allowed without feature "
	             "accept_runs (a version \"1.1\" header lists it)");
	e = (struct edit){ "seq", "entropy", 0, o_bin(s_ent, sizeof s_ent) };
	edit_refused(TRACE_F_NO_ENTROPY, &e,
	             "field 'entropy': not allowed with "
	             "feature no_entropy");
	e = (struct edit){ "seq", "cont_pos", 0, o_bin(s_cpos, 4) };
	edit_refused(TRACE_F_ACCEPT_RUNS, &e,
	             "field 'cont_pos': not allowed "
	             "with feature accept_runs");
	e = (struct edit){ "header", "lookahead", 0, o_uint(2) };
	edit_refused(TRACE_F_ACCEPT_RUNS, &e,
	             "field 'lookahead': expected none "
	             "in a trace without continuation rows (feature "
	             "accept_runs)");
	e = (struct edit){ "header", "accept_run_max", 0, o_uint(4) };
	edit_refused(TRACE_F_NO_ENTROPY, &e,
	             "field 'accept_run_max': expected "
	             "none without feature accept_runs");
	e = (struct edit){ "header", "tree_tokens", 0, o_uint(3) };
	edit_refused(TRACE_F_ACCEPT_RUNS, &e,
	             "field 'tree_tokens': expected a "
	             "value in [accept_run_max = 4, 65536], got 3");
}

/* ---- the previous release's reader ------------------------------------ */

#define OLD_COMMIT "cf1ab2d"

/* Reads a trace with the library it is compiled with; with a second
 * path, writes every record it read there (through that library's
 * writer). Prints "ok N" or "refused: MESSAGE". */
static const char old_driver[] =
        "#include <stdio.h>\n"
        "#include \"trace.h\"\n"
        "int main(int argc, char **argv)\n"
        "{\n"
        "	char err[1024] = \"\";\n"
        "	struct trace_reader *r = NULL;\n"
        "	struct trace_writer *w = NULL;\n"
        "	struct trace_seq s;\n"
        "	int rc, n = 0;\n"
        "	if (trace_reader_open(&r, argv[1], err, sizeof err) < 0) {\n"
        "		printf(\"refused: %s\\n\", err);\n"
        "		return 0;\n"
        "	}\n"
        "	if (argc > 2 && trace_writer_open(&w, argv[2],\n"
        "	        trace_reader_header(r), err, sizeof err) < 0) {\n"
        "		printf(\"write: %s\\n\", err);\n"
        "		return 1;\n"
        "	}\n"
        "	while ((rc = trace_reader_next(r, &s, err, sizeof err)) == 1) "
        "{\n"
        "		n++;\n"
        "		if (w && trace_writer_add(w, &s, err, sizeof err) < 0) "
        "{\n"
        "			printf(\"write: %s\\n\", err);\n"
        "			return 1;\n"
        "		}\n"
        "	}\n"
        "	if (rc < 0) {\n"
        "		printf(\"refused: %s\\n\", err);\n"
        "		return 0;\n"
        "	}\n"
        "	if (w && trace_writer_close(&w, err, sizeof err) < 0) {\n"
        "		printf(\"write: %s\\n\", err);\n"
        "		return 1;\n"
        "	}\n"
        "	printf(\"ok %d\\n\", n);\n"
        "	trace_reader_close(&r);\n"
        "	return 0;\n"
        "}\n";

static int run_cmd(const char *cmd)
{
	int st = system(cmd);

	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Build the reader of OLD_COMMIT into dir/oldread; skip the test when
 * the source tree is not a git checkout holding that commit, or no C
 * compiler links msgpack-c here. */
static void build_old_reader(const char *dir, char *exe, size_t len)
{
	const char *src = getenv("AHASD_SOURCE_ROOT");
	char cmd[4096], path[1024];
	FILE *f;

	cr_assert_not_null(src, "AHASD_SOURCE_ROOT is not set (run through "
	                        "meson test)");
	snprintf(cmd, sizeof cmd,
	         "git -C '%s' cat-file -e " OLD_COMMIT
	         ":replay/trace.c 2>/dev/null",
	         src);
	if (run_cmd(cmd) != 0) {
		fprintf(stderr,
		        "oldreader: %s is not a git checkout with "
		        "commit " OLD_COMMIT
		        "; the previous reader's refusal is argued "
		        "in traces/FORMAT.md instead\n",
		        src);
		cr_skip_test("no git history of " OLD_COMMIT);
	}
	cr_assert_eq(mkdir(dir, 0700), 0);
	for (int i = 0; i < 3; i++) {
		static const char *const files[] = { "trace.c", "trace.h",
			                             "util.h" };

		snprintf(cmd, sizeof cmd,
		         "git -C '%s' show " OLD_COMMIT ":replay/%s > '%s/%s'",
		         src, files[i], dir, files[i]);
		cr_assert_eq(run_cmd(cmd), 0, "%s", cmd);
	}
	snprintf(path, sizeof path, "%s/driver.c", dir);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	cr_assert_eq(fputs(old_driver, f) >= 0, 1);
	cr_assert_eq(fclose(f), 0);
	snprintf(exe, len, "%s/oldread", dir);
	for (int i = 0; i < 2; i++) {
		static const char *const libs[] = { "-lmsgpackc",
			                            "-lmsgpack-c" };

		snprintf(cmd, sizeof cmd,
		         "cc -std=c17 -D_GNU_SOURCE -w -I'%s' "
		         "'%s/trace.c' '%s/driver.c' -o '%s' %s -lm "
		         "2>'%s/cc.log'",
		         dir, dir, dir, exe, libs[i], dir);
		if (run_cmd(cmd) == 0)
			return;
	}
	fprintf(stderr,
	        "oldreader: cannot compile the reader of " OLD_COMMIT
	        " with cc and msgpack-c (see %s/cc.log)\n",
	        dir);
	cr_skip_test("no C compiler linking msgpack-c");
}

/* Run the old driver; its one line of output into out. */
static void run_old(const char *exe, const char *in, const char *copy,
                    char *out, size_t len)
{
	char cmd[4096];
	FILE *p;

	snprintf(cmd, sizeof cmd, "'%s' '%s'%s%s%s", exe, in, copy ? " '" : "",
	         copy ? copy : "", copy ? "'" : "");
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	out[0] = '\0';
	cr_assert_not_null(fgets(out, (int)len, p), "%s printed nothing", cmd);
	cr_assert_eq(pclose(p), 0, "%s: %s", cmd, out);
}

/* The new library copies in to out through its reader and writer. */
static void copy_new(const char *in, const char *out)
{
	struct trace_reader *r = NULL;
	struct trace_writer *w = NULL;
	struct trace_seq s;
	char err[1024] = "";
	int rc;

	cr_assert_eq(trace_reader_open(&r, in, err, sizeof err), 0, "%s", err);
	cr_assert_eq(trace_writer_open(&w, out, trace_reader_header(r), err,
	                               sizeof err),
	             0, "%s", err);
	while ((rc = trace_reader_next(r, &s, err, sizeof err)) == 1)
		cr_assert_eq(trace_writer_add(w, &s, err, sizeof err), 0, "%s",
		             err);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert_eq(trace_writer_close(&w, err, sizeof err), 0, "%s", err);
	trace_reader_close(&r);
}

static void same_bytes(const char *a, const char *b)
{
	size_t la, lb;
	char *x = slurp(a, &la), *y = slurp(b, &lb);

	cr_assert_eq(la, lb, "%s: %zu bytes, %s: %zu", a, la, b, lb);
	cr_assert_eq(memcmp(x, y, la), 0, "%s and %s differ", a, b);
	free(x);
	free(y);
}

TestSuite(oldreader, .init = setup, .fini = teardown);

Test(oldreader, previous_release_refuses_1_1_and_reads_1_0)
{
	char exe[1024], out[2048];
	const char *src = getenv("AHASD_SOURCE_ROOT");
	char shipped[1024];

	build_old_reader(tpath("old"), exe, sizeof exe);

	/* every 1.1 feature is refused at the version check: the old reader
	 * never reaches a sequence it would replay as a chain */
	for (uint32_t f = 1; f <= TRACE_F_ALL; f++) {
		char name[32];

		snprintf(name, sizeof name, "v11-%u.msgpack", f);
		write_trace(tpath(name), f);
		run_old(exe, tpath(name), NULL, out, sizeof out);
		cr_assert(strstr(out, "refused: ") == out, "%s", out);
		cr_assert(strstr(out,
		                 ": offset 0: field 'version': expected an "
		                 "unsigned integer, got str \"1.1\""),
		          "features %u: %s", f, out);
	}

	/* a 1.0 trace written by this release reads there ... */
	write_trace(tpath("v10.msgpack"), 0);
	run_old(exe, tpath("v10.msgpack"), NULL, out, sizeof out);
	cr_assert_str_eq(out, "ok 2\n");

	/* ... and both writers give the same bytes, for a hand-built trace
	 * and a shipped capture */
	run_old(exe, tpath("v10.msgpack"), tpath("old-copy.msgpack"), out,
	        sizeof out);
	cr_assert_str_eq(out, "ok 2\n");
	copy_new(tpath("v10.msgpack"), tpath("new-copy.msgpack"));
	same_bytes(tpath("old-copy.msgpack"), tpath("new-copy.msgpack"));
	same_bytes(tpath("v10.msgpack"), tpath("new-copy.msgpack"));

	snprintf(shipped, sizeof shipped,
	         "%s/traces/stories260K-skip3-sampled.msgpack", src);
	run_old(exe, shipped, tpath("old-cap.msgpack"), out, sizeof out);
	cr_assert_str_eq(out, "ok 64\n");
	copy_new(shipped, tpath("new-cap.msgpack"));
	same_bytes(tpath("old-cap.msgpack"), tpath("new-cap.msgpack"));
}

/* ---- the engine on accepted-run lengths ------------------------------- */

/* Write a one-sequence trace: runs (accept_runs, R, T), or with runs NULL
 * the chain of acc with entropies and continuation rows (format 1.0). */
static void write_runs(const char *path, uint32_t features, uint32_t R,
                       uint32_t T, const uint32_t *runs, const float *acc,
                       uint32_t n)
{
	struct trace_header h;
	struct trace_writer *w = NULL;
	struct trace_seq s = { .id = 1, .prompt_len = 16, .n = n };
	float ent[64], top1[64], cent[64];
	uint32_t cpos[64];
	char err[512] = "";

	cr_assert_leq(n, 64u);
	make_header(&h, features);
	h.run_max = R;
	h.tree_tokens = T;
	for (uint32_t p = 0; p < n; p++) {
		ent[p] = 1.0f;
		top1[p] = 0.5f;
	}
	if (trace_header_has_entropy(&h)) {
		s.entropy = ent;
		s.top1 = top1;
	}
	if (runs) {
		s.accept_run = (uint32_t *)runs;
	} else {
		s.accept = (float *)acc;
		for (uint32_t p = 0; trace_header_entropy_full(&h) && p < n;
		     p++)
			if (acc[p] < 1.0f) {
				cpos[s.n_cont] = p;
				cent[2 * s.n_cont] = cent[2 * s.n_cont + 1] =
				        2.0f;
				s.n_cont++;
			}
		s.cont_pos = cpos;
		s.cont_entropy = cent;
	}
	cr_assert_eq(trace_writer_open(&w, path, &h, err, sizeof err), 0, "%s",
	             err);
	cr_assert_eq(trace_writer_add(w, &s, err, sizeof err), 0, "%s", err);
	cr_assert_eq(trace_writer_close(&w, err, sizeof err), 0, "%s", err);
	trace_header_clear(&h);
}

struct evlog {
	uint32_t n_verify, verify_tokens[64];
	uint32_t n_draft;
	double draft_s[128];
	uint32_t draft_tokens[128];
};

static void on_ev(void *user, const struct replay_event *ev)
{
	struct evlog *l = user;

	if (ev->kind == REPLAY_EV_VERIFY && l->n_verify < 64)
		l->verify_tokens[l->n_verify++] = ev->tokens;
	if (ev->kind == REPLAY_EV_DRAFT && l->n_draft < 128) {
		l->draft_s[l->n_draft] = ev->end_s - ev->start_s;
		l->draft_tokens[l->n_draft++] = ev->tokens;
	}
}

struct rp {
	const char *policy, *pkey, *pval; /* one policy parameter or NULL */
	const char *drafter;
	unsigned k;                  /* fixed: k */
	const char *hw_key, *hw_val; /* one preset override or NULL */
	struct evlog *log;
};

/* Replay the trace at path on npu-pim. @return replay_create's status
 * (the metrics are valid when 0; every sequence must replay). */
static int replay_file(const char *path, const struct rp *o,
                       struct replay_metrics *m, char *err, size_t errlen)
{
	struct trace_reader *rd = NULL;
	struct hw_platform plat;
	struct hw_plan *plan = NULL;
	struct plugin pol, dr;
	struct replay *r = NULL;
	struct trace_seq s;
	char kbuf[16];
	const char *pk[1] = { o->pkey }, *pv[1] = { o->pval };
	const char *dk[1] = { "k" }, *dv[1] = { kbuf };
	int rc;

	snprintf(kbuf, sizeof kbuf, "%u", o->k);
	cr_assert_eq(trace_reader_open(&rd, path, err, errlen), 0, "%s", err);
	const struct trace_header *h = trace_reader_header(rd);
	cr_assert_eq(hw_platform_load(&plat, "npu-pim", err, errlen), 0, "%s",
	             err);
	if (o->hw_key)
		cr_assert_eq(hw_platform_set(&plat, o->hw_key, o->hw_val, err,
		                             errlen),
		             0, "%s", err);
	cr_assert_eq(hw_plan_create(&plan, &plat,
	                            h->features & TRACE_F_DRAFT_LOOKUP
	                                    ? NULL
	                                    : &h->draft,
	                            &h->target, err, errlen),
	             0, "%s", err);
	cr_assert_eq(plugin_load(&pol, o->policy, AHASD_PLUGIN_POLICY, pk, pv,
	                         o->pkey ? 1 : 0, err, errlen),
	             0, "%s", err);
	cr_assert_eq(plugin_load(&dr, o->drafter, AHASD_PLUGIN_DRAFTER, dk, dv,
	                         strcmp(o->drafter, "fixed") ? 0 : 1, err,
	                         errlen),
	             0, "%s", err);
	const struct replay_config cfg = {
		.plan = plan,
		.policy = &pol,
		.drafter = &dr,
		.seed = 1,
		.lookahead = h->lookahead,
		.trace_features = h->features,
		.run_max = h->run_max,
		.tree_tokens = h->tree_tokens,
		.queue_capacity = 32,
		.max_draft = 64,
		.on_event = o->log ? on_ev : NULL,
		.event_user = o->log,
	};
	rc = replay_create(&r, &cfg, err, errlen);
	if (rc == 0) {
		while ((rc = trace_reader_next(rd, &s, err, errlen)) == 1)
			cr_assert_eq(replay_sequence(r, &s, NULL, err, errlen),
			             0, "%s", err);
		cr_assert_eq(rc, 0, "%s", err);
		replay_finish(r);
		*m = *replay_metrics(r);
		replay_free(&r);
	}
	plugin_unload(&dr);
	plugin_unload(&pol);
	hw_plan_free(&plan);
	trace_reader_close(&rd);
	return rc;
}

/* The worked example: the first 20 positions of request 134 of
 * SpecDecode-Bench's GSM8K file for Llama-3.1-8B-Instruct with vLLM's
 * EAGLE proposer (acc_eagle.acc_len 1 5 4 3 2 1 3 1 4 1 2 3 2 1 2 1 5 5 4 3,
 * minus the bonus token; capture/IMPORT-RUNS.md converts the file). R = 20.
 *
 *   q     0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19
 *   run   0 4 3 2 1 0 2 0 3 0  1  2  1  0  1  0  4  4  3  2
 *
 * Not a chain: run[6] = 2 but run[7] = 0. Fixed k under sync drafts k
 * tokens at C (fewer near the end), accepts a = min(k, run[C]) (k <= R),
 * and commits a + 1, or a alone when the batch reaches position 19.
 *
 * k = 1: C = 0 1 3 5 6 8 10 12 14 16 18, a = 0 1 1 0 1 1 1 1 1 1 1
 *        (18 accepts 1 and the bonus is 19): 11 verifications,
 *        11 drafted, 9 accepted, 2 wasted.
 * k = 2: C = 0 1 4 6 9 10 12 14 16 19, a = 0 2 1 2 0 1 1 1 2 1
 *        (19 drafts one token, the last; no bonus): 10 verifications,
 *        19 drafted, 11 accepted, 8 wasted.
 * k = 3: C = 0 1 5 6 9 10 12 14 16, a = 0 3 0 2 0 1 1 1 3
 *        (16 accepts 16..18, the bonus is 19): 9 verifications,
 *        27 drafted, 11 accepted, 16 wasted.
 * k = 4: C = 0 1 6 9 10 12 14 16, a = 0 4 2 0 1 1 1 4
 *        (16 drafts 16..19, all accepted, no bonus): 8 verifications,
 *        32 drafted, 13 accepted, 19 wasted.
 *
 * The same trace as a 1.0 chain of a_p = min(1, run) walks, at k = 4,
 * C = 0 1 6 8 10 14 16 with a = 0 4 1 1 3 1 4: 7 verifications, 28
 * drafted, 14 accepted, 14 wasted. */
static const uint32_t ex_run[20] = { 0, 4, 3, 2, 1, 0, 2, 0, 3, 0,
	                             1, 2, 1, 0, 1, 0, 4, 4, 3, 2 };
static const struct {
	unsigned k;
	uint64_t verif, drafted, accepted, wasted;
} ex_oracle[] = {
	{ 1, 11, 11, 9, 2 },
	{ 2, 10, 19, 11, 8 },
	{ 3, 9, 27, 11, 16 },
	{ 4, 8, 32, 13, 19 },
};

static void expect_counts(const struct replay_metrics *m, uint64_t verif,
                          uint64_t drafted, uint64_t accepted, uint64_t wasted,
                          uint64_t n, const char *what)
{
	cr_expect_eq(m->committed, n, "%s: committed %llu", what,
	             (unsigned long long)m->committed);
	cr_expect_eq(m->verifications, verif, "%s: verifications %llu", what,
	             (unsigned long long)m->verifications);
	cr_expect_eq(m->drafted, drafted, "%s: drafted %llu", what,
	             (unsigned long long)m->drafted);
	cr_expect_eq(m->accepted, accepted, "%s: accepted %llu", what,
	             (unsigned long long)m->accepted);
	cr_expect_eq(m->wasted, wasted, "%s: wasted %llu", what,
	             (unsigned long long)m->wasted);
	cr_expect_eq(m->batches, verif, "%s: batches %llu", what,
	             (unsigned long long)m->batches);
}

TestSuite(runs, .init = setup, .fini = teardown);

Test(runs, fixed_k_sync_matches_the_hand_oracle)
{
	const char *p = tpath("ex.msgpack");
	struct replay_metrics m;
	char err[1024] = "", what[64];

	write_runs(p, TRACE_F_ACCEPT_RUNS | TRACE_F_NO_ENTROPY, 20, 20, ex_run,
	           NULL, 20);
	for (size_t i = 0; i < sizeof ex_oracle / sizeof ex_oracle[0]; i++) {
		const struct rp o = { "sync",         NULL, NULL, "fixed",
			              ex_oracle[i].k, NULL, NULL, NULL };

		cr_assert_eq(replay_file(p, &o, &m, err, sizeof err), 0, "%s",
		             err);
		snprintf(what, sizeof what, "runs, k = %u", ex_oracle[i].k);
		expect_counts(&m, ex_oracle[i].verif, ex_oracle[i].drafted,
		              ex_oracle[i].accepted, ex_oracle[i].wasted, 20,
		              what);
	}
}

/* The chain semantics of 1.0 is untouched: the same positions as a chain
 * give the chain walk's counts, not the runs'. */
Test(runs, the_same_trace_as_a_chain_walks_the_chain)
{
	const char *p = tpath("chain.msgpack");
	const struct rp o = {
		"sync", NULL, NULL, "fixed", 4, NULL, NULL, NULL
	};
	struct replay_metrics m;
	float acc[20];
	char err[1024] = "";

	for (int q = 0; q < 20; q++)
		acc[q] = ex_run[q] ? 1.0f : 0.0f;
	write_runs(p, 0, 0, 0, NULL, acc, 20);
	cr_assert_eq(replay_file(p, &o, &m, err, sizeof err), 0, "%s", err);
	expect_counts(&m, 7, 28, 14, 14, 20, "chain, k = 4");
}

/* Past R a full run renews at p + R; the end of the sequence caps a
 * batch and takes no bonus. R = 2, n = 7:
 *
 *   q    0 1 2 3 4 5 6
 *   run  2 2 1 0 2 2 2
 *
 * From 0 the speculation leaves the path at 3 (run[0] = R renews at 2,
 * whose run 1 ends at 3); from 4 it never leaves (4 -> 6 -> past 7).
 * k = 5: C = 0 drafts 0..4, accepts 3, commits 4 (correction at 3), wastes
 *        2; C = 4 drafts 4..6 (the end), accepts 3, no bonus: 2
 *        verifications, 8 drafted, 6 accepted, 2 wasted.
 * k = 3: C = 0 accepts 0..2, bonus 3; C = 4 accepts 4..6: 2 verifications,
 *        6 drafted, 6 accepted.
 * k = 2 (= R): C = 0 accepts 2, bonus 2; C = 3 accepts 0 (run 0), commits
 *        3; C = 4 accepts 2, bonus 6: 3 verifications, 6 drafted, 4
 *        accepted, 2 wasted. */
Test(runs, drafts_past_R_renew_and_the_end_takes_no_bonus)
{
	static const uint32_t run[7] = { 2, 2, 1, 0, 2, 2, 2 };
	static const struct {
		unsigned k;
		uint64_t v, d, a, w;
	} want[] = {
		{ 5, 2, 8, 6, 2 },
		{ 3, 2, 6, 6, 0 },
		{ 2, 3, 6, 4, 2 },
	};
	const char *p = tpath("renew.msgpack");
	struct replay_metrics m;
	char err[1024] = "", what[32];

	write_runs(p, TRACE_F_ACCEPT_RUNS | TRACE_F_NO_ENTROPY, 2, 2, run, NULL,
	           7);
	for (size_t i = 0; i < 3; i++) {
		const struct rp o = { "sync",    NULL, NULL, "fixed",
			              want[i].k, NULL, NULL, NULL };

		cr_assert_eq(replay_file(p, &o, &m, err, sizeof err), 0, "%s",
		             err);
		snprintf(what, sizeof what, "k = %u", want[i].k);
		expect_counts(&m, want[i].v, want[i].d, want[i].a, want[i].w, 7,
		              what);
	}
}

/* A tree of T = 60 nodes at depth R = 20 feeds 1 + ceil(4 * 60 / 20) = 13
 * tokens to verify 4 levels and expands 3 nodes per draft step; the counts
 * are those of the chain (T = R), the time is not. */
Test(runs, a_tree_feeds_the_target_its_nodes)
{
	const char *chain = tpath("t20.msgpack"), *tree = tpath("t60.msgpack");
	struct evlog lc = { 0 }, lt = { 0 };
	struct replay_metrics mc, mt;
	char err[1024] = "";

	write_runs(chain, TRACE_F_ACCEPT_RUNS | TRACE_F_NO_ENTROPY, 20, 20,
	           ex_run, NULL, 20);
	write_runs(tree, TRACE_F_ACCEPT_RUNS | TRACE_F_NO_ENTROPY, 20, 60,
	           ex_run, NULL, 20);
	const struct rp oc = {
		"sync", NULL, NULL, "fixed", 4, NULL, NULL, &lc
	};
	const struct rp ot = {
		"sync", NULL, NULL, "fixed", 4, NULL, NULL, &lt
	};
	cr_assert_eq(replay_file(chain, &oc, &mc, err, sizeof err), 0, "%s",
	             err);
	cr_assert_eq(replay_file(tree, &ot, &mt, err, sizeof err), 0, "%s",
	             err);
	expect_counts(&mt, 8, 32, 13, 19, 20, "tree, k = 4");
	cr_assert_eq(lc.n_verify, 8u);
	cr_assert_eq(lt.n_verify, 8u);
	for (uint32_t i = 0; i < 8; i++) {
		cr_expect_eq(lc.verify_tokens[i], 5u, "chain pass %u", i);
		cr_expect_eq(lt.verify_tokens[i], 13u, "tree pass %u", i);
	}
	for (uint32_t i = 0; i < lt.n_draft; i++)
		cr_expect_eq(lt.draft_tokens[i], 3u, "tree step %u", i);
	cr_expect_gt(mt.time_s, mc.time_s);

	/* T = 50 at R = 20: 2.5 nodes a level, rounded up. A draft step
	 * expands ceil(50 / 20) = 3 nodes (not 2), and a pass of d levels
	 * feeds 1 + ceil(50 d / 20): d = 3 -> 1 + ceil(7.5) = 9, d = 2 ->
	 * 1 + 5 = 6, d = 1 -> 1 + ceil(2.5) = 4; d is read off the chain's
	 * pass of the same schedule (1 + d tokens), with k = 3 */
	const char *half = tpath("t50.msgpack");
	struct evlog l3 = { 0 }, lh = { 0 };
	write_runs(half, TRACE_F_ACCEPT_RUNS | TRACE_F_NO_ENTROPY, 20, 50,
	           ex_run, NULL, 20);
	const struct rp o3 = {
		"sync", NULL, NULL, "fixed", 3, NULL, NULL, &l3
	};
	const struct rp oh = {
		"sync", NULL, NULL, "fixed", 3, NULL, NULL, &lh
	};
	cr_assert_eq(replay_file(chain, &o3, &mc, err, sizeof err), 0, "%s",
	             err);
	cr_assert_eq(replay_file(half, &oh, &mt, err, sizeof err), 0, "%s",
	             err);
	cr_assert_eq(lh.n_verify, l3.n_verify);
	cr_assert_gt(lh.n_verify, 0u);
	for (uint32_t i = 0; i < lh.n_verify; i++) {
		const uint32_t d = l3.verify_tokens[i] - 1;
		cr_expect_eq(lh.verify_tokens[i], 1 + (50 * d + 19) / 20,
		             "T = 50 pass %u (d = %u)", i, d);
	}
	cr_expect_eq(l3.verify_tokens[0], 4u, "first pass: 3 levels");
	cr_expect_eq(lh.verify_tokens[0], 9u);
	for (uint32_t i = 0; i < lh.n_draft; i++)
		cr_expect_eq(lh.draft_tokens[i], 3u, "T = 50 step %u", i);

	/* a tree wider than the hardware's step: drafts capped at one
	 * level, every pass cut to the 256-token step, in both schedules */
	static const uint32_t wide[6] = { 1, 0, 1, 1, 0, 1 };
	const char *w = tpath("wide.msgpack");
	struct evlog lw = { 0 };
	write_runs(w, TRACE_F_ACCEPT_RUNS | TRACE_F_NO_ENTROPY, 1, 65536, wide,
	           NULL, 6);
	const struct rp ow = {
		"sync", NULL, NULL, "fixed", 4, NULL, NULL, &lw
	};
	cr_assert_eq(replay_file(w, &ow, &mt, err, sizeof err), 0, "%s", err);
	cr_expect_eq(mt.committed, 6u);
	for (uint32_t i = 0; i < lw.n_verify; i++)
		cr_expect_eq(lw.verify_tokens[i], 256u, "wide pass %u", i);
	const struct rp oa = {
		"async", NULL, NULL, "fixed", 4, NULL, NULL, NULL
	};
	cr_assert_eq(replay_file(w, &oa, &mt, err, sizeof err), 0, "%s", err);
	cr_expect_eq(mt.committed, 6u);
}

/* A lookup draft costs lookup_s for a batch's first token and
 * lookup_token_s for the rest, whatever the preset's draft device is. */
Test(runs, a_lookup_costs_the_presets_lookup)
{
	const char *p = tpath("lookup.msgpack");
	struct evlog l = { 0 }, l2 = { 0 };
	struct replay_metrics m;
	char err[1024] = "";

	write_runs(p,
	           TRACE_F_ACCEPT_RUNS | TRACE_F_NO_ENTROPY |
	                   TRACE_F_DRAFT_LOOKUP,
	           20, 20, ex_run, NULL, 20);
	const struct rp o = { "sync", NULL, NULL, "fixed", 3, NULL, NULL, &l };
	cr_assert_eq(replay_file(p, &o, &m, err, sizeof err), 0, "%s", err);
	expect_counts(&m, 9, 27, 11, 16, 20, "lookup, k = 3");
	cr_assert_eq(l.n_draft, 27u);
	/* (durations are differences of absolute times: 1e-12 s slack) */
	for (uint32_t i = 0; i < l.n_draft; i++)
		cr_expect(fabs(l.draft_s[i] - (i % 3 == 0 ? 35e-6 : 0.0)) <
		                  1e-12,
		          "draft step %u: %.17g s", i, l.draft_s[i]);
	const struct rp o2 = { "sync", NULL,       NULL,   "fixed",
		               3,      "lookup_s", "1e-4", &l2 };
	cr_assert_eq(replay_file(p, &o2, &m, err, sizeof err), 0, "%s", err);
	cr_expect(fabs(l2.draft_s[0] - 1e-4) < 1e-12);
	cr_expect(fabs(l2.draft_s[3] - 1e-4) < 1e-12);
	cr_expect(fabs(l2.draft_s[4]) < 1e-12);
}

/* The asynchronous schedule drafts ahead on the same runs: every token
 * is committed and every draft accounted for (the engine's own check);
 * look-ahead batches continue the speculation that started them. */
Test(runs, async_and_ahasd_without_edc_run)
{
	const char *p = tpath("async.msgpack");
	struct replay_metrics m;
	char err[1024] = "";

	write_runs(p, TRACE_F_ACCEPT_RUNS | TRACE_F_NO_ENTROPY, 20, 20, ex_run,
	           NULL, 20);
	const struct rp a = {
		"async", NULL, NULL, "fixed", 4, NULL, NULL, NULL
	};
	cr_assert_eq(replay_file(p, &a, &m, err, sizeof err), 0, "%s", err);
	cr_expect_eq(m.committed, 20u);
	cr_expect_eq(m.drafted, m.accepted + m.wasted);
	cr_expect_gt(m.lookahead_batches, 0u);
	const struct rp b = {
		"ahasd", "edc", "0", "fixed", 4, NULL, NULL, NULL
	};
	cr_assert_eq(replay_file(p, &b, &m, err, sizeof err), 0, "%s", err);
	cr_expect_eq(m.committed, 20u);
	const struct rp c = { "sync", NULL, NULL, "banditspec",
		              0,      NULL, NULL, NULL };
	cr_assert_eq(replay_file(p, &c, &m, err, sizeof err), 0, "%s", err);
	cr_expect_eq(m.committed, 20u);
}

/* Pre-verification on runs: a draft it replaces ends the speculation,
 * and the next draft starts one at the position after it. The ABI probe
 * policy (tests/abi, built with the tests) pre-verifies 2 tokens after
 * every third batch while a verification runs. Every position is
 * committed, every draft accounted for (the engine's own check), and
 * pre-verifications find rejections. */
Test(runs, preverification_restarts_the_speculation)
{
	const char *p = tpath("pv.msgpack");
	char policy[1024], err[1024] = "";
	struct replay_metrics m;
	uint32_t run[64], x = 12345;

	for (int q = 0; q < 64; q++) {
		x = x * 1103515245u + 12345u;
		run[q] = (x >> 16) % 7; /* 0..6, R = 6 */
	}
	write_runs(p, TRACE_F_ACCEPT_RUNS | TRACE_F_NO_ENTROPY, 6, 6, run, NULL,
	           64);
	snprintf(policy, sizeof policy, "%s/tests/abi/probe_policy_v4.so",
	         getenv("AHASD_BUILD_ROOT"));
	cr_assert_eq(access(policy, R_OK), 0, "%s (built with the tests)",
	             policy);
	uint64_t pv = 0, rej = 0;
	for (unsigned k = 1; k <= 8; k++) {
		const struct rp o = { policy, NULL, NULL, "fixed",
			              k,      NULL, NULL, NULL };

		cr_assert_eq(replay_file(p, &o, &m, err, sizeof err), 0, "%s",
		             err);
		cr_expect_eq(m.committed, 64u, "k = %u", k);
		cr_expect_eq(m.drafted, m.accepted + m.wasted, "k = %u", k);
		pv += m.preverified;
		rej += m.preverify_rejections;
	}
	cr_expect_gt(pv, 0u);
	cr_expect_gt(rej, 0u);
}

/* Entropy-driven plugins are refused, by name, before any sequence. */
Test(runs, entropy_plugins_are_refused)
{
	static const struct {
		const char *policy, *pkey, *pval, *drafter, *want;
	} cases[] = {
		{ "sync", NULL, NULL, "adaedl",
		  "drafter adaedl needs the "
		  "draft's entropy" },
		{ "sync", NULL, NULL, "svip", "drafter svip needs" },
		{ "sync", NULL, NULL, "specdecpp", "drafter specdecpp needs" },
		{ "ahasd", NULL, NULL, "fixed",
		  "policy ahasd needs the draft's "
		  "entropy and top-1 probability of every drafted token "
		  "(AHASD_NEEDS_ENTROPY), which this trace does not have" },
	};
	const char *p = tpath("noent.msgpack"), *q = tpath("runsent.msgpack");
	struct replay_metrics m;
	char err[1024];

	write_runs(p, TRACE_F_NO_ENTROPY, 0, 0, NULL, (const float[20]){ 1 },
	           20);
	/* with true-prefix entropies but runs: still no entropies of the
	 * rejected drafts */
	write_runs(q, TRACE_F_ACCEPT_RUNS, 20, 20, ex_run, NULL, 20);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct rp o = { cases[i].policy,
			              cases[i].pkey,
			              cases[i].pval,
			              cases[i].drafter,
			              4,
			              NULL,
			              NULL,
			              NULL };

		err[0] = '\0';
		cr_expect_eq(replay_file(p, &o, &m, err, sizeof err), -EINVAL);
		cr_expect(strstr(err, cases[i].want), "want '%s' in '%s'",
		          cases[i].want, err);
		cr_expect(strstr(err, "no_entropy"), "%s", err);
		err[0] = '\0';
		cr_expect_eq(replay_file(q, &o, &m, err, sizeof err), -EINVAL);
		cr_expect(strstr(err, "accept_runs"), "%s", err);
	}
}

/* ---- the importer of acceptance-length logs --------------------------- */

static const char *src_file(const char *rel)
{
	static char bufs[4][1024];
	static int i;
	char *b = bufs[i++ % 4];
	const char *src = getenv("AHASD_SOURCE_ROOT");

	cr_assert_not_null(src, "AHASD_SOURCE_ROOT is not set");
	snprintf(b, 1024, "%s/%s", src, rel);
	return b;
}

TestSuite(acclog, .init = setup, .fini = teardown);

/* The worked example of capture/IMPORT-RUNS.md: request 134 of
 * SpecDecode-Bench's GSM8K logs, its first 21 EAGLE steps, converted by
 * capture/acclogs/specbench_to_jsonl.py. Its replay is the hand oracle of
 * the runs suite (ex_oracle). */
Test(acclog, worked_example_replays_the_hand_oracle)
{
	const char *out = tpath("eagle.msgpack");
	struct trace_reader *r = NULL;
	struct trace_seq s;
	struct replay_metrics m;
	char err[1024] = "", what[32];

	cr_assert_eq(capture_import(src_file("capture/acclogs/"
	                                     "gsm8k-134-eagle.jsonl"),
	                            out, err, sizeof err),
	             0, "%s", err);
	cr_assert_eq(trace_reader_open(&r, out, err, sizeof err), 0, "%s", err);
	const struct trace_header *h = trace_reader_header(r);
	cr_assert_eq(h->features, TRACE_F_ACCEPT_RUNS | TRACE_F_NO_ENTROPY);
	cr_assert_eq(h->run_max, 20u);
	cr_assert_eq(h->tree_tokens, 20u);
	cr_assert_str_eq(h->draft.name, "eagle-llama3.1-instruct-8b");
	cr_assert_str_eq(h->target.name, "llama-3.1-8b-instruct");
	cr_assert_eq(trace_reader_next(r, &s, err, sizeof err), 1, "%s", err);
	cr_assert_eq(s.id, 134u);
	cr_assert_eq(s.prompt_len, 104u); /* 103 prompt tokens + the first */
	cr_assert_eq(s.n, 20u);
	for (uint32_t q = 0; q < 20; q++)
		cr_assert_eq(s.accept_run[q], ex_run[q], "position %u", q);
	trace_reader_close(&r);

	for (size_t i = 0; i < sizeof ex_oracle / sizeof ex_oracle[0]; i++) {
		const struct rp o = { "sync",         NULL, NULL, "fixed",
			              ex_oracle[i].k, NULL, NULL, NULL };

		cr_assert_eq(replay_file(out, &o, &m, err, sizeof err), 0, "%s",
		             err);
		snprintf(what, sizeof what, "example, k = %u", ex_oracle[i].k);
		expect_counts(&m, ex_oracle[i].verif, ex_oracle[i].drafted,
		              ex_oracle[i].accepted, ex_oracle[i].wasted, 20,
		              what);
	}
}

/* The n-gram run of the same request: its first 20 steps all produced one
 * token (acc_len 1), so every speculation is rejected at once. k = 3:
 * C = 0..19, one verification each, drafting 3 tokens until the end caps
 * it (2 at C = 18, 1 at C = 19): 20 verifications, 3 * 18 + 2 + 1 = 57
 * drafted, none accepted; each batch costs one lookup (35 us). */
Test(acclog, ngram_example_is_a_lookup)
{
	const char *out = tpath("ngram.msgpack");
	struct evlog l = { 0 };
	struct replay_metrics m;
	char err[1024] = "";

	cr_assert_eq(capture_import(src_file("capture/acclogs/"
	                                     "gsm8k-134-ngram.jsonl"),
	                            out, err, sizeof err),
	             0, "%s", err);
	const struct rp o = { "sync", NULL, NULL, "fixed", 3, NULL, NULL, &l };
	cr_assert_eq(replay_file(out, &o, &m, err, sizeof err), 0, "%s", err);
	expect_counts(&m, 20, 57, 0, 57, 20, "ngram, k = 3");
	double busy = 0;
	for (uint32_t i = 0; i < l.n_draft; i++)
		busy += l.draft_s[i];
	cr_expect(fabs(busy - 20 * 35e-6) < 1e-9, "lookup time %.17g", busy);
}

/* The converter, run again, gives the committed files (skipped without
 * python3). */
Test(acclog, converter_reproduces_the_example)
{
	static const char *const methods[] = { "eagle", "ngram" };
	char cmd[4096];

	if (run_cmd("python3 -c 'import json' 2>/dev/null") != 0) {
		fprintf(stderr,
		        "acclog: no python3; the converter is not run\n");
		cr_skip_test("no python3");
	}
	for (int i = 0; i < 2; i++) {
		char name[64], rel[128];

		snprintf(name, sizeof name, "%s.jsonl", methods[i]);
		snprintf(cmd, sizeof cmd,
		         "python3 '%s' '%s' --method %s > '%s'",
		         src_file("capture/acclogs/specbench_to_jsonl.py"),
		         src_file("capture/acclogs/"
		                  "specdecode-bench-gsm8k-134.jsonl"),
		         methods[i], tpath(name));
		cr_assert_eq(run_cmd(cmd), 0, "%s", cmd);
		snprintf(rel, sizeof rel, "capture/acclogs/gsm8k-134-%s.jsonl",
		         methods[i]);
		same_bytes(tpath(name), src_file(rel));
	}
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f);
	cr_assert_geq(fputs(text, f), 0);
	cr_assert_eq(fclose(f), 0);
}

#define M_LLAMA(name)                                                \
	"{\"name\": \"" name "\", \"dim\": 64, "                     \
	"\"hidden_dim\": 172, \"n_layers\": 2, \"n_heads\": 8, "     \
	"\"n_kv_heads\": 4, \"vocab_size\": 512, \"seq_len\": 512, " \
	"\"weight_bits\": 8, \"ops\": \"llama\"}"
#define H_RUNS                                                  \
	"{\"version\": \"1.1\", \"accept_run_max\": 4, "        \
	"\"sampled\": false, \"models\": {\"draft\": " M_LLAMA( \
	        "d") ", \"target\": " M_LLAMA("t") "}}\n"

Test(acclog, importer_refuses_what_the_schema_does_not_allow)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
		{ H_RUNS
		  "{\"prompt_len\": 3, \"n\": 2, \"accept_run\": [1, 5]}\n",
		  ":2: field 'accept_run[1]': expected at most accept_run_max "
		  "= "
		  "4, got 5" },
		{ H_RUNS
		  "{\"prompt_len\": 3, \"n\": 3, \"accept_run\": [1, 0]}\n",
		  ":2: field 'accept_run': expected an array of n = 3 "
		  "integers, "
		  "got an array of 2" },
		{ H_RUNS
		  "{\"prompt_len\": 3, \"n\": 2, \"accept_run\": [1, 0], "
		  "\"accept\": [1, 0]}\n",
		  ":2: field 'accept': not allowed: accept_run_max is given" },
		{ H_RUNS
		  "{\"prompt_len\": 3, \"n\": 2, \"accept_run\": [1, 0], "
		  "\"entropy\": [1, 1]}\n",
		  ":2: field 'entropy': not allowed: the header's \"entropy\" "
		  "is "
		  "false" },
		{ H_RUNS "{\"prompt_len\": 3, \"accept_run\": [1, 0]}\n",
		  ":2: field 'n': missing" },
		{ "{\"version\": \"1.1\", \"accept_run_max\": 4, "
		  "\"lookahead\": 2, "
		  "\"sampled\": false, \"models\": {\"target\": " M_LLAMA(
		          "t") "}, \"draft_lookup\": \"ngram\"}\n",
		  ":1: field 'lookahead': not allowed without continuation "
		  "rows" },
		{ "{\"version\": \"1.1\", \"accept_run_max\": 4, \"sampled\": "
		  "false, "
		  "\"draft_lookup\": \"ngram\", \"models\": "
		  "{\"draft\": " M_LLAMA("d") ", \"target\": " M_LLAMA(
		          "t") "}}\n",
		  ":1: field 'models.draft': not allowed with draft_lookup "
		  "\"ngram\"" },
		{ "{\"version\": \"1.1\", \"accept_run_max\": 4, "
		  "\"tree_tokens\": 3, "
		  "\"sampled\": false, \"models\": {\"draft\": " M_LLAMA(
		          "d") ", \"target\": " M_LLAMA("t") "}}\n",
		  ":1: field 'tree_tokens': expected at least accept_run_max = "
		  "4" },
		{ "{\"version\": \"1.2\"}\n",
		  ":1: field 'version': expected 1 or \"1.1\", got \"1.2\"" },
		{ "{\"version\": 1, \"accept_run_max\": 4}\n",
		  ":1: field 'accept_run_max': unknown field" },
	};
	const char *in = tpath("in.jsonl"), *out = tpath("out.msgpack");
	char err[1024];

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		write_text(in, cases[i].text);
		err[0] = '\0';
		cr_expect_lt(capture_import(in, out, err, sizeof err), 0,
		             "case %zu imported", i);
		cr_expect(strstr(err, cases[i].want),
		          "case %zu: want '%s' in "
		          "'%s'",
		          i, cases[i].want, err);
		cr_expect(access(out, F_OK) != 0, "case %zu left a file", i);
	}
}

/* Entropies are optional: a log that has them keeps them (true prefix,
 * for ahasd-trace info and fitting); the replay still refuses plugins that
 * need every draft's entropy. tree_tokens defaults to 10 R for a model's
 * runs and to R for a lookup's. */
Test(acclog, entropies_optional_and_tree_tokens_default)
{
	const char *in = tpath("in.jsonl"), *out = tpath("out.msgpack");
	struct trace_reader *r = NULL;
	struct trace_seq s;
	char err[1024] = "";

	write_text(
	        in,
	        "{\"version\": \"1.1\", \"accept_run_max\": 4, "
	        "\"entropy\": true, \"sampled\": false, \"models\": "
	        "{\"draft\": " M_LLAMA("d") ", \"target\": " M_LLAMA(
	                "t") "}}\n{\"prompt_len\": 3, \"n\": 2, "
	                     "\"accept_run\": [4, 0], "
	                     "\"entropy\": [0.5, 2], \"top1\": [0.9, 0.2]}\n");
	cr_assert_eq(capture_import(in, out, err, sizeof err), 0, "%s", err);
	cr_assert_eq(trace_reader_open(&r, out, err, sizeof err), 0, "%s", err);
	cr_assert_eq(trace_reader_header(r)->features, TRACE_F_ACCEPT_RUNS);
	cr_assert_eq(trace_reader_header(r)->tree_tokens, 40u);
	cr_assert_eq(trace_reader_next(r, &s, err, sizeof err), 1, "%s", err);
	cr_assert_eq(s.entropy[1], 2.0f);
	cr_assert_eq(s.top1[0], 0.9f);
	cr_assert_eq(s.accept_run[0], 4u);
	trace_reader_close(&r);

	write_text(in,
	           "{\"version\": \"1.1\", \"accept_run_max\": 4, "
	           "\"draft_lookup\": \"prompt_lookup\", \"sampled\": false, "
	           "\"models\": {\"target\": " M_LLAMA(
	                   "t") "}}\n"
	                        "{\"prompt_len\": 3, \"n\": 2, \"accept_run\": "
	                        "[4, 0]}\n");
	cr_assert_eq(capture_import(in, out, err, sizeof err), 0, "%s", err);
	cr_assert_eq(trace_reader_open(&r, out, err, sizeof err), 0, "%s", err);
	cr_assert_eq(trace_reader_header(r)->tree_tokens, 4u);
	cr_assert_str_eq(trace_reader_header(r)->draft_lookup, "prompt_lookup");
	trace_reader_close(&r);
}

/* ---- format 1.1 written through the C capture API --------------------- */

/* A lookup runtime's log as it would write it through ahasd_capture.h
 * (API 2): an n-gram lookup drafting chains of up to R = 4 tokens, the
 * accepted run of a speculation started at each position, no entropies
 * (a lookup has no distribution), target tokens 0..9 of a 12-token
 * context after a 2-token prompt.
 *
 *   q     0 1 2 3 4 5 6 7 8 9
 *   run   2 0 3 1 4 0 4 1 0 3
 *
 * Fixed k under sync drafts k' = min(k, 10 - C) tokens at C, accepts
 * a = min(k', run[C]) and commits a + 1 (the correction or bonus), or a
 * alone when the batch accepts through position 9:
 *
 * k = 1: C = 0 2 4 6 8 9, a = 1 1 1 1 0 1 (9 drafts one token, accepted
 *        through the end): 6 verifications, 6 drafted, 5 accepted,
 *        1 wasted.
 * k = 2: C = 0 3 5 6 9, a = 2 1 0 2 1 (9: k' = 1): 5 verifications,
 *        9 drafted, 6 accepted, 3 wasted.
 * k = 3: C = 0 3 5 6, a = 2 1 0 3 (6 accepts 6..8, the bonus is 9):
 *        4 verifications, 12 drafted, 6 accepted, 6 wasted.
 * k = 4: C = 0 3 5 6, a = 2 1 0 4 (6 drafts 6..9, all accepted, no
 *        bonus): 4 verifications, 16 drafted, 7 accepted, 9 wasted. */
static const uint32_t api_run[10] = { 2, 0, 3, 1, 4, 0, 4, 1, 0, 3 };
static const struct {
	unsigned k;
	uint64_t verif, drafted, accepted, wasted;
} api_oracle[] = {
	{ 1, 6, 6, 5, 1 },
	{ 2, 5, 9, 6, 3 },
	{ 3, 4, 12, 6, 6 },
	{ 4, 4, 16, 7, 9 },
};

/* the target of the API traces below: llama dims (the op list derived) */
static void api_target(struct ahasd_capture_model *t)
{
	const struct ahasd_capture_model init = AHASD_CAPTURE_MODEL_INIT;

	*t = init;
	t->name = "api-target";
	t->dim = 64;
	t->hidden_dim = 172;
	t->n_layers = 5;
	t->n_heads = 8;
	t->n_kv_heads = 4;
	t->vocab_size = 512;
	t->seq_len = 12;
}

TestSuite(api, .init = setup, .fini = teardown);

Test(api, lookup_runs_replay_the_hand_oracle)
{
	const char *p = tpath("api-runs.msgpack");
	struct ahasd_capture_model target;
	struct ahasd_capture_config cfg = AHASD_CAPTURE_CONFIG_INIT;
	struct ahasd_capture *c = NULL;
	struct replay_metrics m;
	char err[1024] = "", what[64];

	api_target(&target);
	cfg.target = &target;
	cfg.draft = NULL;
	cfg.draft_lookup = "ngram";
	cfg.accept_run_max = 4; /* tree_tokens 0: a lookup's chain, T = R */
	cfg.no_entropy = 1;
	cr_assert_eq(ahasd_capture_open(&c, p, &cfg, err, sizeof err), 0, "%s",
	             err);
	cr_assert_eq(ahasd_capture_begin(c, 0, 2), 0);
	for (int q = 0; q < 10; q++)
		cr_assert_eq(ahasd_capture_pos_run(c, 0.0f, 0.0f, api_run[q],
		                                   100 + q),
		             0, "%s", ahasd_capture_error(c));
	cr_assert_eq(ahasd_capture_end(c), 0);
	cr_assert_eq(ahasd_capture_close(&c, err, sizeof err), 0, "%s", err);
	for (size_t i = 0; i < sizeof api_oracle / sizeof api_oracle[0]; i++) {
		const struct rp o = { "sync",          NULL, NULL, "fixed",
			              api_oracle[i].k, NULL, NULL, NULL };

		cr_assert_eq(replay_file(p, &o, &m, err, sizeof err), 0, "%s",
		             err);
		snprintf(what, sizeof what, "API runs, k = %u",
		         api_oracle[i].k);
		expect_counts(&m, api_oracle[i].verif, api_oracle[i].drafted,
		              api_oracle[i].accepted, api_oracle[i].wasted, 10,
		              what);
	}
}

/* A capture without entropies (a_p greedy, no entropy, top-1 or
 * continuations: feature no_entropy) written through the API: AdaEDL,
 * which needs the draft's entropy, is refused with the trace's feature
 * named; fixed-length drafting runs, walking the chain of a_p:
 *
 *   q     0 1 2 3 4 5 6 7 8 9
 *   a_p   1 1 0 1 0 0 1 1 1 0
 *
 * k = 2: C = 0 3 5 6 9, a = 2 1 0 2 0 (9: k' = 1, rejected, the
 * correction is 9): 5 verifications, 9 drafted, 5 accepted, 4 wasted. */
Test(api, no_entropy_refuses_adaedl_and_runs_fixed)
{
	static const float ap[10] = { 1, 1, 0, 1, 0, 0, 1, 1, 1, 0 };
	const char *p = tpath("api-noent.msgpack");
	struct ahasd_capture_model target, draft;
	struct ahasd_capture_config cfg = AHASD_CAPTURE_CONFIG_INIT;
	struct ahasd_capture *c = NULL;
	struct replay_metrics m;
	char err[1024] = "";

	api_target(&target);
	draft = target;
	draft.name = "api-draft";
	draft.n_layers = 1;
	cfg.target = &target;
	cfg.draft = &draft;
	cfg.no_entropy = 1;
	cr_assert_eq(ahasd_capture_open(&c, p, &cfg, err, sizeof err), 0, "%s",
	             err);
	cr_assert_eq(ahasd_capture_begin(c, 0, 2), 0);
	for (int q = 0; q < 10; q++)
		/* entropy, top-1 and cont are not read: NaN and NULL pass */
		cr_assert_eq(ahasd_capture_pos(c, NAN, NAN, ap[q], 7, NULL), 0,
		             "%s", ahasd_capture_error(c));
	cr_assert_eq(ahasd_capture_end(c), 0);
	cr_assert_eq(ahasd_capture_close(&c, err, sizeof err), 0, "%s", err);
	{
		const struct rp o = { "sync", NULL, NULL, "adaedl",
			              4,      NULL, NULL, NULL };

		err[0] = '\0';
		cr_assert_eq(replay_file(p, &o, &m, err, sizeof err), -EINVAL);
		cr_assert(
		        strstr(err, "drafter adaedl needs the draft's entropy"),
		        "%s", err);
		cr_assert(strstr(err, "no_entropy"), "%s", err);
	}
	{
		const struct rp o = { "sync", NULL, NULL, "fixed",
			              2,      NULL, NULL, NULL };

		cr_assert_eq(replay_file(p, &o, &m, err, sizeof err), 0, "%s",
		             err);
		expect_counts(&m, 5, 9, 5, 4, 10, "API no_entropy, k = 2");
	}
}
