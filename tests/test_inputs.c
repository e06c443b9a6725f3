/* test_inputs.c - hostile and careless inputs given to the real binaries
 * (issue 15): traces that never end or are read from a FIFO, duplicate
 * sequence ids, imports past the reader's limits, and the messages of the
 * importer. Every child is killed after 30 s, which fails the test: a
 * hang is a finding here. Nodes are made in a private temporary folder;
 * nothing under /dev is touched. */
#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <msgpack.h>
#include <sqlite3.h>

#include "fixtures.h"
#include "sha256.h"

static void setup(void)
{
	fx_tmpdir_make("inputs");
}

/* Run build-tree binary rel (e.g. "tools/ahasd-trace") with args; stdout
 * and stderr land in fx_out/fx_err. Killed after 30 s (a failure).
 * @return the exit status. */
static int run(const char *rel, const char *const *args)
{
	return fx_run(fx_build_path(rel), args,
	              &(struct fx_run_opts){ .timeout_s = 30 });
}

#define RUN(rel, ...) run(rel, (const char *const[]){ __VA_ARGS__, NULL })
#define REPLAY(...)   RUN("tools/ahasd-replay", __VA_ARGS__)
#define TRACE(...)    RUN("tools/ahasd-trace", __VA_ARGS__)
#define CAPTURE(...)  RUN("capture/ahasd-capture", __VA_ARGS__)

#define assert_err_has(s)                                                   \
	cr_assert_not_null(strstr(fx_err, (s)), "stderr lacks \"%s\":\n%s", \
	                   (s), fx_err)

static const char *tiny_trace(const char *name)
{
	const char *p = fx_path(name);

	cr_assert_eq(TRACE("synth", "--sequences", "3", "--tokens", "16",
	                   "--draft-model", "tiny", "--target-model", "tiny",
	                   "-o", p),
	             0, "%s", fx_err);
	return p;
}

/* A child that opens fifo for writing and writes data (len bytes; or
 * zeros without end when data is NULL), then closes it. */
static pid_t fifo_writer(const char *fifo, const char *data, size_t len)
{
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		static char zeros[65536];
		int fd;

		alarm(60); /* never outlive a test that failed before reading */
		fd = open(fifo, O_WRONLY);

		if (fd < 0)
			_exit(1);
		if (!data) {
			while (write(fd, zeros, sizeof zeros) > 0)
				;
			_exit(0);
		}
		while (len > 0) {
			ssize_t w = write(fd, data, len);

			if (w <= 0)
				_exit(1);
			data += w;
			len -= (size_t)w;
		}
		close(fd);
		_exit(0);
	}
	return pid;
}

static void reap(pid_t pid)
{
	int status;

	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
}

TestSuite(inputs, .init = setup, .fini = fx_tmpdir_remove, .timeout = 300);

/* ------------------------------------------------------------------------ */
/* defect 9: the trace is hashed while it is parsed, in one pass; before,
 * the whole input was hashed first, so an endless input hung replay     */

Test(inputs, replay_huge_zero_file_fails_at_once)
{
	const char *p = fx_path("zeros.msgpack");
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	/* 64 GiB of zeros, sparse: hashing it first takes minutes */
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, (off_t)64 << 30), 0);
	close(fd);
	cr_assert_eq(REPLAY("--no-db", "-p", "sync", p), 1);
	assert_err_has(p);
	assert_err_has("offset 0: expected a record map");
}

Test(inputs, replay_endless_fifo_fails_at_once)
{
	const char *p = fx_path("endless.fifo");
	pid_t w;

	cr_assert_eq(mkfifo(p, 0644), 0);
	w = fifo_writer(p, NULL, 0);
	cr_assert_eq(REPLAY("--no-db", "-p", "sync", p), 1);
	reap(w);
	assert_err_has(p);
	assert_err_has("offset 0: expected a record map");
}

Test(inputs, replay_trace_through_fifo_does_not_hang)
{
	const char *trace = tiny_trace("t.msgpack"), *p = fx_path("t.fifo");
	static char buf[1 << 20];
	const size_t n = fx_read_text(trace, buf, sizeof buf);
	pid_t w;

	cr_assert_eq(mkfifo(p, 0644), 0);
	w = fifo_writer(p, buf, n);
	/* a FIFO can be read once; replay reads a trace again for each run */
	cr_assert_eq(REPLAY("--no-db", "-p", "sync", p), 1);
	reap(w);
	assert_err_has(p);
	assert_err_has("pipe or FIFO");
}

/* The hash stored with each run is the file's, from the one pass. */
Test(inputs, replay_stores_the_files_hash)
{
	const char *trace = tiny_trace("h.msgpack"), *db = fx_path("h.db");
	char want[65];
	sqlite3 *h;
	sqlite3_stmt *st;
	int rows = 0;

	cr_assert_eq(sha256_file_hex(trace, want), 0);
	cr_assert_eq(
	        REPLAY("-q", "--db", db, "-p", "sync", "-p", "async", trace), 0,
	        "%s", fx_err);
	cr_assert_eq(sqlite3_open(db, &h), SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(h, "SELECT trace_sha256 FROM runs", -1,
	                                &st, NULL),
	             SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW) {
		cr_assert_str_eq((const char *)sqlite3_column_text(st, 0),
		                 want);
		rows++;
	}
	sqlite3_finalize(st);
	sqlite3_close(h);
	cr_assert_eq(rows, 2);
}

/* A bad last record fails the trace before any of its runs begins. */
Test(inputs, replay_checks_the_whole_trace_first)
{
	const char *trace = tiny_trace("c.msgpack"),
	           *cut = fx_path("cut.msgpack");
	static char buf[1 << 20];
	const size_t n = fx_read_text(trace, buf, sizeof buf);
	FILE *f = fopen(cut, "wb");

	cr_assert_not_null(f);
	fwrite(buf, 1, n - 3, f); /* inside the end record */
	fclose(f);
	cr_assert_eq(REPLAY("--db", fx_path("c.db"), "-p", "sync", cut), 1);
	assert_err_has("truncated");
	cr_assert_str_empty(fx_out); /* no run line */
}

/* ------------------------------------------------------------------------ */
/* defect 5: duplicate sequence ids are refused by validate, replay and
 * the importer, with the trace (or line) and the id named              */

static int file_write(void *data, const char *buf, size_t len)
{
	return len == 0 || fwrite(buf, 1, len, data) == len ? 0 : -1;
}

/* Copy src to dst giving the second sequence the id of the first. */
static void dup_id_copy(const char *src, const char *dst)
{
	static char buf[1 << 20];
	const size_t len = fx_read_text(src, buf, sizeof buf);
	size_t off = 0;
	FILE *f = fopen(dst, "wb");
	msgpack_packer pk;
	msgpack_unpacked res;
	uint64_t first_id = 0;
	int seqs = 0;

	cr_assert_not_null(f);
	msgpack_packer_init(&pk, f, file_write);
	msgpack_unpacked_init(&res);
	while (msgpack_unpack_next(&res, buf, len, &off) ==
	       MSGPACK_UNPACK_SUCCESS) {
		const msgpack_object *o = &res.data;
		bool is_seq = false;
		const msgpack_object *id = NULL;

		for (uint32_t i = 0; i < o->via.map.size; i++) {
			const msgpack_object_kv *kv = &o->via.map.ptr[i];

			if (kv->key.via.str.size == 4 &&
			    !memcmp(kv->key.via.str.ptr, "type", 4))
				is_seq = kv->val.via.str.size == 3 &&
				         !memcmp(kv->val.via.str.ptr, "seq", 3);
			if (kv->key.via.str.size == 2 &&
			    !memcmp(kv->key.via.str.ptr, "id", 2))
				id = &kv->val;
		}
		if (is_seq && seqs++ == 0)
			first_id = id->via.u64;
		if (!is_seq || seqs != 2) {
			msgpack_pack_object(&pk, *o);
			continue;
		}
		msgpack_pack_map(&pk, o->via.map.size);
		for (uint32_t i = 0; i < o->via.map.size; i++) {
			const msgpack_object_kv *kv = &o->via.map.ptr[i];

			msgpack_pack_object(&pk, kv->key);
			if (&kv->val == id)
				msgpack_pack_uint64(&pk, first_id);
			else
				msgpack_pack_object(&pk, kv->val);
		}
	}
	msgpack_unpacked_destroy(&res);
	cr_assert_eq(fclose(f), 0);
}

Test(inputs, duplicate_sequence_ids_refused)
{
	const char *good = tiny_trace("good.msgpack");
	const char *dup = fx_path("dup.msgpack"), *db = fx_path("r.db");

	dup_id_copy(good, dup);
	cr_assert_eq(TRACE("validate", dup), 1, "%s%s", fx_out, fx_err);
	assert_err_has(dup);
	assert_err_has("field 'id': duplicate sequence id 0");

	/* replay: the reader's message, not the database's */
	cr_assert_eq(REPLAY("-q", "--db", db, "-p", "sync", dup), 1);
	assert_err_has(dup);
	assert_err_has("duplicate sequence id 0");
	cr_assert_null(strstr(fx_err, "UNIQUE"), "%s", fx_err);
}

static const char *jsonl_header(const char *extra)
{
	static char h[4096];

	snprintf(h, sizeof h,
	         "{\"version\": 1, \"lookahead\": 2, \"sampled\": true, "
	         "\"temperature\": 0.8%s, \"models\": {\"draft\": {\"name\": "
	         "\"d\", \"dim\": 32, \"hidden_dim\": 64, \"n_layers\": 1, "
	         "\"n_heads\": 4, \"n_kv_heads\": 4, \"vocab_size\": 64, "
	         "\"seq_len\": 64, \"weight_bits\": 8, \"ops\": \"llama\"}, "
	         "\"target\": {\"name\": \"t\", \"dim\": 32, \"hidden_dim\": "
	         "64, "
	         "\"n_layers\": 2, \"n_heads\": 4, \"n_kv_heads\": 4, "
	         "\"vocab_size\": 64, \"seq_len\": 64, \"weight_bits\": 8, "
	         "\"ops\": \"llama\"}}}\n",
	         extra);
	return h;
}

static const char *write_jsonl(const char *name, const char *header,
                               const char *lines)
{
	const char *p = fx_path(name);
	FILE *f = fopen(p, "w");

	cr_assert_not_null(f);
	fputs(header, f);
	fputs(lines, f);
	fclose(f);
	return p;
}

Test(inputs, import_duplicate_sequence_ids_refused)
{
	const char *in = write_jsonl(
	        "dup.jsonl", jsonl_header(""),
	        "{\"id\": 3, \"prompt_len\": 1, \"entropy\": [1], \"top1\": "
	        "[0.5], \"accept\": [1]}\n"
	        "{\"id\": 3, \"prompt_len\": 1, \"entropy\": [1], \"top1\": "
	        "[0.5], \"accept\": [1]}\n");
	const char *out = fx_path("dup.msgpack");

	cr_assert_neq(CAPTURE("import", in, "-o", out), 0);
	assert_err_has(":3: field 'id': duplicate sequence id 3 (also on "
	               "line 2)");
	cr_assert(access(out, F_OK) != 0);
}

/* ------------------------------------------------------------------------ */
/* defect 4: an import never writes a trace the reader refuses          */

Test(inputs, import_provenance_beyond_reader_limit)
{
	const char *in = fx_path("prov.jsonl"), *out = fx_path("prov.msgpack");
	FILE *f = fopen(in, "w");
	const char *h = jsonl_header(", \"provenance\": {PROV}");
	const char *at = strstr(h, "PROV");

	cr_assert_not_null(f);
	fwrite(h, 1, (size_t)(at - h), f);
	for (int i = 0; i < 65537; i++)
		fprintf(f, "%s\"k%d\": \"v\"", i ? ", " : "", i);
	fputs(at + 4, f);
	fputs("{\"prompt_len\": 1, \"entropy\": [1], \"top1\": [0.5], "
	      "\"accept\": [1]}\n",
	      f);
	fclose(f);
	cr_assert_neq(CAPTURE("import", in, "-o", out), 0);
	assert_err_has(":1: field 'provenance': expected at most 65536 "
	               "entries, got 65537");
	cr_assert(access(out, F_OK) != 0, "an unreadable trace was written");
}

/* ------------------------------------------------------------------------ */
/* defect 7: the importer's messages name the file, the line, the field
 * and the value, printed with all its digits                          */

Test(inputs, import_huge_lookahead_is_not_out_of_memory)
{
	/* 100000 continuation rows of 1 entropy each under lookahead 65536:
	 * the importer used to allocate 100000 x 65536 floats first */
	const char *in = fx_path("k.jsonl"), *out = fx_path("k.msgpack");
	FILE *f = fopen(in, "w");
	const int n = 100000;
	const char *h = jsonl_header("");
	const char *k = strstr(h, "\"lookahead\": 2");

	cr_assert_not_null(f);
	fwrite(h, 1, (size_t)(k - h), f);
	fprintf(f, "\"lookahead\": 65536%s", k + strlen("\"lookahead\": 2"));
	fputs("{\"prompt_len\": 1, \"entropy\": [", f);
	for (int i = 0; i < n; i++)
		fputs(i ? ", 1" : "1", f);
	fputs("], \"top1\": [", f);
	for (int i = 0; i < n; i++)
		fputs(i ? ", 0.5" : "0.5", f);
	fputs("], \"accept\": [", f);
	for (int i = 0; i < n; i++)
		fputs(i ? ", 0" : "0", f);
	fputs("], \"cont\": [", f);
	for (int i = 0; i < n; i++)
		fprintf(f, "%s[%d, [1]]", i ? ", " : "", i);
	fputs("]}\n", f);
	fclose(f);
	cr_assert_neq(CAPTURE("import", in, "-o", out), 0);
	cr_assert_null(strstr(fx_err, "out of memory"), "%s", fx_err);
	assert_err_has(in);
	assert_err_has(":2: field 'cont[0]': expected 65536 entropies "
	               "(lookahead), got 1");
}

Test(inputs, import_top_p_blamed_on_the_input)
{
	const char *in = write_jsonl("topp.jsonl",
	                             jsonl_header(", \"top_p\": 0"),
	                             "{\"prompt_len\": 1, \"entropy\": [1], "
	                             "\"top1\": [0.5], \"accept\": [1]}\n");
	const char *out = fx_path("topp.msgpack");
	char want[600];

	cr_assert_neq(CAPTURE("import", in, "-o", out), 0);
	snprintf(want, sizeof want,
	         "%s:1: field 'top_p': expected a value in "
	         "(0, 1], got 0",
	         in);
	assert_err_has(want);
	cr_assert_null(strstr(fx_err, out), "blames the output: %s", fx_err);
}

Test(inputs, import_values_printed_in_full)
{
	const char *in = write_jsonl(
	        "digits.jsonl", jsonl_header(""),
	        "{\"prompt_len\": 1, \"entropy\": [1], \"top1\": [0.5], "
	        "\"accept\": [1.0000001]}\n");

	cr_assert_neq(CAPTURE("import", in, "-o", fx_path("d.msgpack")), 0);
	assert_err_has(":2: field 'accept[0]': expected a value in [0, 1], "
	               "got 1.0000001");
}

/* ------------------------------------------------------------------------ */
/* defect 10: dimensions within bounds, sequences within the context    */

Test(inputs, import_bounds)
{
	char h[4096];
	const char *in, *base = jsonl_header("");
	const char *d = strstr(base,
	                       "\"target\": {\"name\": \"t\", \"dim\": 32");

	/* the target's dim 2^32 - 1, with an explicit op list */
	snprintf(
	        h, sizeof h,
	        "%.*s\"target\": {\"name\": \"t\", \"dim\": "
	        "4294967295, \"hidden_dim\": 64, \"n_layers\": 2, \"n_heads\": "
	        "4, \"n_kv_heads\": 4, \"vocab_size\": 64, \"seq_len\": 64, "
	        "\"weight_bits\": 8, \"ops\": [{\"name\": \"wq\", \"kind\": "
	        "\"gemm\", \"k\": 64, \"n\": 64}]}}}\n",
	        (int)(d - base), base);
	in = write_jsonl("dims.jsonl", h,
	                 "{\"prompt_len\": 1, \"entropy\": "
	                 "[1], \"top1\": [0.5], \"accept\": [1]}\n");
	cr_assert_neq(CAPTURE("import", in, "-o", fx_path("dims.msgpack")), 0);
	assert_err_has(":1: field 'models.target.dim': expected a value in "
	               "[1, 1048576], got 4294967295");

	/* 63 + 2 tokens in a context of 64 */
	in = write_jsonl("ctx.jsonl", jsonl_header(""),
	                 "{\"prompt_len\": 63, "
	                 "\"entropy\": [1, 1], \"top1\": [0.5, 0.5], "
	                 "\"accept\": [1, 1]}\n");
	cr_assert_neq(CAPTURE("import", in, "-o", fx_path("ctx.msgpack")), 0);
	assert_err_has(":2: field 'prompt_len' (sequence 0): expected "
	               "prompt_len + n = 63 + 2 = 65 within the target model's "
	               "context (seq_len 64)");
}

/* Duplicate JSON keys in a large object (the hashed path of json.c). */
Test(inputs, import_duplicate_key_in_large_object)
{
	char h[8192], prov[4096];
	size_t o = 0;
	const char *in;

	for (int i = 0; i < 40; i++)
		o += (size_t)snprintf(prov + o, sizeof prov - o,
		                      "%s\"k%d\": \"v\"", i ? ", " : "",
		                      i == 33 ? 7 : i);
	snprintf(h, sizeof h, "%s", jsonl_header(""));
	snprintf(strstr(h, ", \"models\""), sizeof h - 200,
	         ", \"provenance\": {%s}%s", prov,
	         strstr(jsonl_header(""), ", \"models\""));
	in = write_jsonl("dupkey.jsonl", h,
	                 "{\"prompt_len\": 1, \"entropy\": "
	                 "[1], \"top1\": [0.5], \"accept\": [1]}\n");
	cr_assert_neq(CAPTURE("import", in, "-o", fx_path("dk.msgpack")), 0);
	assert_err_has(":1: invalid JSON: column");
	assert_err_has("duplicate key \"k7\"");
}

/* defect 10 with --models: the retargeted target model's context must
 * hold every sequence too (prompt 32 + 16 tokens = 48 > 40) */
Test(inputs, retarget_beyond_the_models_context)
{
	const char *trace = tiny_trace("r.msgpack"),
	           *ini = fx_path("short.ini");
	const char *src = getenv("AHASD_SOURCE_ROOT");
	char path[600], models[1400], line[256];
	FILE *in, *out;

	cr_assert_not_null(src);
	snprintf(path, sizeof path, "%s/replay/models/llama2-7b.ini", src);
	in = fopen(path, "r");
	out = fopen(ini, "w");
	cr_assert(in && out);
	while (fgets(line, sizeof line, in))
		fputs(strncmp(line, "max_positions", 13) == 0
		              ? "max_positions = 40\n"
		              : line,
		      out);
	fclose(in);
	fclose(out);
	snprintf(models, sizeof models, "llama2-7b:%s", ini);
	cr_assert_eq(REPLAY("--no-db", "-p", "sync", "--models", models, trace),
	             1, "%s", fx_out);
	assert_err_has(trace);
	assert_err_has("prompt_len + n = 48");
	assert_err_has("seq_len 40");
}
