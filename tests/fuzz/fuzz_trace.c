/* fuzz_trace.c - the trace reader (replay/trace_*.c) on arbitrary bytes,
 * format 1.0 and 1.1.
 *
 * Whatever the reader accepts must survive the writer: the header and
 * every sequence are written back with trace_writer_*, which must accept
 * them, and the copy must read back valid with the same counts. A valid
 * file is also rewound and read a second time (the path ahasd-replay takes
 * for every run after the first), and the hash the reader computed while
 * reading must be the SHA-256 of the input. Every sequence has exactly
 * the arrays its header's 1.1 features call for, and the copy keeps the
 * features. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "fuzz_tmpdir.h"
#include "fuzz_util.h"
#include "sha256.h"
#include "trace.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return fuzz_tmpdir_create() < 0;
}

/* A sequence has exactly the arrays its header's 1.1 features say
 * (traces/FORMAT.md, "Version 1.1"), and the runs' derived accept. */
static void check_shape(const struct trace_header *h, const struct trace_seq *s)
{
	const int runs = (h->features & TRACE_F_ACCEPT_RUNS) != 0;

	fuzz_check(s->accept != NULL);
	fuzz_check((s->entropy != NULL) == trace_header_has_entropy(h));
	fuzz_check((s->top1 != NULL) == trace_header_has_entropy(h));
	fuzz_check((s->accept_run != NULL) == runs);
	fuzz_check(trace_header_entropy_full(h) || s->n_cont == 0);
	for (uint32_t p = 0; runs && p < s->n; p++)
		fuzz_check(s->accept_run[p] <= h->run_max &&
		           s->accept[p] == (s->accept_run[p] ? 1.0f : 0.0f));
}

/* Read every sequence; @return the reader's final status. */
static int read_rest(struct trace_reader *r, uint64_t *n_seq, uint64_t *n_tok,
                     struct trace_writer *w)
{
	struct trace_seq s;
	char err[1024];
	int ret;

	*n_seq = *n_tok = 0;
	while ((ret = trace_reader_next(r, &s, err, sizeof err)) == 1) {
		(*n_seq)++;
		*n_tok += s.n;
		fuzz_check(s.n >= 1 && s.cont_index != NULL);
		check_shape(trace_reader_header(r), &s);
		if (w) {
			char werr[1024];

			fuzz_check(trace_writer_add(w, &s, werr, sizeof werr) ==
			           0);
		}
	}
	if (ret < 0)
		fuzz_check(memchr(err, '\0', sizeof err) && err[0] != '\0');
	return ret;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *path = fuzz_input_file(data, size);
	struct trace_reader *r = NULL, *copy = NULL;
	struct trace_writer *w = NULL;
	uint64_t n_seq, n_tok, n2, t2, end_seq, end_tok;
	char err[1024], out[128];

	if (trace_reader_open(&r, path, err, sizeof err) < 0) {
		fuzz_check(r == NULL && err[0] != '\0');
		return 0;
	}
	fuzz_tmpdir_file("copy.msgpack", out, sizeof out);
	fuzz_check(trace_writer_open(&w, out, trace_reader_header(r), err,
	                             sizeof err) == 0);
	if (read_rest(r, &n_seq, &n_tok, w) < 0) {
		trace_writer_abort(&w);
		trace_reader_close(&r);
		return 0;
	}
	trace_reader_totals(r, &end_seq, &end_tok);
	fuzz_check(end_seq == n_seq && end_tok == n_tok);
	{
		char got[65], want[65];

		fuzz_check(trace_reader_sha256(r, got) == 0);
		sha256_hex(data, size, want);
		fuzz_check(strcmp(got, want) == 0);
	}
	fuzz_check(trace_writer_close(&w, err, sizeof err) == 0);

	/* every run after the first rewinds */
	fuzz_check(trace_reader_rewind(r, err, sizeof err) == 0);
	fuzz_check(read_rest(r, &n2, &t2, NULL) == 0);
	fuzz_check(n2 == n_seq && t2 == n_tok);

	/* the copy the writer made reads back the same, features included */
	fuzz_check(trace_reader_open(&copy, out, err, sizeof err) == 0);
	{
		const struct trace_header *a = trace_reader_header(r),
		                          *b = trace_reader_header(copy);

		fuzz_check(a->features == b->features &&
		           a->run_max == b->run_max &&
		           a->tree_tokens == b->tree_tokens &&
		           a->lookahead == b->lookahead &&
		           !strcmp(a->draft_lookup, b->draft_lookup));
	}
	trace_reader_close(&r);
	fuzz_check(read_rest(copy, &n2, &t2, NULL) == 0);
	fuzz_check(n2 == n_seq && t2 == n_tok);
	trace_reader_close(&copy);
	unlink(out);
	return 0;
}
