/* test_trace_cli.c - the built ahasd-trace binary: validate, info, synth.
 *
 * Runs $AHASD_BUILD_ROOT/tools/ahasd-trace as a child process and checks
 * exit status (0 ok, 1 invalid trace, 2 usage) and its stdout/stderr text.
 */
#include <criterion/criterion.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <msgpack.h>

#include "fixtures.h"
#include "trace.h"

static void setup(void)
{
	fx_tmpdir_make("trace-cli");
}

/* Run ahasd-trace with args (NULL-terminated); stdout/stderr land in
 * fx_out/fx_err. @return the exit status. */
static int run(const char *const *args)
{
	return fx_run(fx_build_path("tools/ahasd-trace"), args, NULL);
}

#define RUN(...) run((const char *const[]){ __VA_ARGS__, NULL })

/* The synthetic trace with synth's defaults (32 x 256, seed 1, greedy,
 * llama2-7b -> llama2-13b), made fresh in the test's directory. */
static const char *default_trace(void)
{
	static char p[1024];
	snprintf(p, sizeof p, "%s", fx_path("synthetic.msgpack"));
	if (access(p, R_OK) != 0)
		cr_assert_eq(RUN("synth", "-o", p), 0, "%s", fx_err);
	return p;
}

static bool same_file(const char *a, const char *b)
{
	FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
	int ca, cb;
	bool same = true;

	cr_assert(fa && fb);
	do {
		ca = fgetc(fa);
		cb = fgetc(fb);
		same = ca == cb;
	} while (same && ca != EOF);
	fclose(fa);
	fclose(fb);
	return same;
}

TestSuite(cli, .init = setup, .fini = fx_tmpdir_remove);

Test(cli, validate_default_trace)
{
	char want[1200];

	cr_assert_eq(RUN("validate", default_trace()), 0, "%s", fx_err);
	snprintf(want, sizeof want, "%s: ok (32 sequences, 8192 tokens)\n",
	         default_trace());
	cr_assert_str_eq(fx_out, want);
	cr_assert_str_empty(fx_err);
}

Test(cli, validate_bad_files)
{
	const char *bad = fx_path("magic.msgpack");
	FILE *f = fopen(bad, "wb");
	msgpack_sbuffer sb;
	msgpack_packer pk;
	char want[1200];

	/* {"type": "header", "magic": "nope", "version": 1} */
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 3);
	msgpack_pack_str_with_body(&pk, "type", 4);
	msgpack_pack_str_with_body(&pk, "header", 6);
	msgpack_pack_str_with_body(&pk, "magic", 5);
	msgpack_pack_str_with_body(&pk, "nope", 4);
	msgpack_pack_str_with_body(&pk, "version", 7);
	msgpack_pack_uint32(&pk, 1);
	cr_assert_not_null(f);
	cr_assert_eq(fwrite(sb.data, 1, sb.size, f), sb.size);
	fclose(f);
	msgpack_sbuffer_destroy(&sb);

	/* one good, one bad: both reported, exit 1 */
	cr_assert_eq(RUN("validate", default_trace(), bad), 1);
	snprintf(want, sizeof want, "%s: ok (32 sequences, 8192 tokens)\n",
	         default_trace());
	cr_assert_str_eq(fx_out, want);
	snprintf(want, sizeof want,
	         "%s: offset 0: field 'magic': expected "
	         "\"ahasd-trace\", got str \"nope\"\n",
	         bad);
	cr_assert_str_eq(fx_err, want);
}

Test(cli, validate_truncated)
{
	const char *full = fx_path("full.msgpack"),
	           *cut = fx_path("cut.msgpack");
	struct stat st;

	cr_assert_eq(RUN("synth", "--sequences", "3", "--tokens", "50",
	                 "--draft-model", "tiny", "--target-model", "tiny",
	                 "-o", full),
	             0, "%s", fx_err);
	cr_assert_eq(stat(full, &st), 0);
	cr_assert_eq(truncate(full, st.st_size - 3),
	             0); /* cut the end marker */
	cr_assert_eq(rename(full, cut), 0);
	cr_assert_eq(RUN("validate", cut), 1);
	cr_assert_str_empty(fx_out);
	cr_assert(strstr(fx_err, "truncated: the record starting here is "
	                         "incomplete"),
	          "%s", fx_err);
}

Test(cli, usage_errors)
{
	cr_assert_eq(RUN("validate"), 2);
	cr_assert(strstr(fx_err, "usage: ahasd-trace validate"));
	cr_assert_eq(RUN("frobnicate"), 2);
	cr_assert(strstr(fx_err, "unknown command 'frobnicate'"));
	cr_assert_eq(RUN("synth", "--sequences", "3"), 2);
	cr_assert(strstr(fx_err, "missing -o OUT"), "%s", fx_err);
	cr_assert_eq(RUN("synth", "--tokens", "0", "-o", fx_path("x")), 2);
	cr_assert(strstr(fx_err, "--tokens: expected an integer in [1, "), "%s",
	          fx_err);
	cr_assert_eq(RUN("synth", "--draft-model", "gpt5", "-o", fx_path("x")),
	             2);
	cr_assert(strstr(fx_err, "unknown model 'gpt5'"), "%s", fx_err);
	cr_assert_eq(RUN("synth", "--bogus", "-o", fx_path("x")), 2);
	cr_assert_eq(RUN("info"), 2);
	cr_assert_eq(RUN("info", fx_path("missing.msgpack")), 1);
	cr_assert(strstr(fx_err, "No such file"), "%s", fx_err);
	cr_assert_eq(RUN("info", "--help"), 0);
	cr_assert(strstr(fx_out, "usage: ahasd-trace info"));
	cr_assert_eq(RUN("validate", "--help"), 0);
	cr_assert_eq(RUN("synth", "--help"), 0);
	cr_assert(strstr(fx_out, "--lookahead K"));
}

Test(cli, info_default_trace)
{
	const char *p;
	double acc, hi, lo;

	cr_assert_eq(RUN("info", default_trace()), 0, "%s", fx_err);
	cr_assert(strstr(fx_out, "greedy (SYNTHETIC, not a model run)"));
	cr_assert(strstr(fx_out, "lookahead K 16"));
	cr_assert(strstr(fx_out, "note: synthetic: generated by ahasd-trace "
	                         "synth, not a model run"));
	cr_assert(strstr(fx_out, "model draft: llama2-7b"));
	cr_assert(strstr(fx_out, "model target: llama2-13b"));
	/* llama2-7b at 8 bits: 6738149376 bytes (hand sum of the op list:
	 * 32 * (4*4096^2 + 3*4096*11008) + 2*4096*32000) */
	cr_assert(strstr(fx_out, "weights: 6738149376 bytes"), "%s", fx_out);
	cr_assert(strstr(fx_out, "ops: 18 (gemm 8, attention 1, nonlinear 1, "
	                         "norm 3, elementwise 4, embed 1)"));
	cr_assert(strstr(fx_out, "sequences: 32\n"));
	cr_assert(strstr(fx_out, "tokens: 8192\n"));
	cr_assert(strstr(fx_out, "mean generated length: 256.00 tokens "
	                         "(mean prompt length 32.00)"));
	p = strstr(fx_out, "mean acceptance: ");
	cr_assert_not_null(p);
	acc = strtod(p + strlen("mean acceptance: "), NULL);
	cr_assert(acc >= 0.65 && acc <= 0.75, "mean acceptance %g", acc);
	p = strstr(fx_out, "where a_p = 1: ");
	cr_assert_not_null(p);
	hi = strtod(p + strlen("where a_p = 1: "), NULL);
	p = strstr(fx_out, "where a_p = 0: ");
	cr_assert_not_null(p);
	lo = strtod(p + strlen("where a_p = 0: "), NULL);
	cr_assert_lt(hi, lo, "accepted positions must have lower entropy");
}

Test(cli, synth_is_deterministic_and_valid)
{
	const char *a = fx_path("a.msgpack"), *b = fx_path("b.msgpack");
	const char *c = fx_path("c.msgpack"), *s = fx_path("s.msgpack");
	struct trace_reader *r = NULL;
	struct trace_seq seq;
	char err[512];
	int ret;

	setenv("SOURCE_DATE_EPOCH", "1700000000", 1);
	cr_assert_eq(RUN("synth", "--seed", "5", "--sequences", "4", "--tokens",
	                 "64", "--lookahead", "4", "-o", a),
	             0, "%s", fx_err);
	cr_assert_eq(RUN("synth", "--seed", "5", "--sequences", "4", "--tokens",
	                 "64", "--lookahead", "4", "-o", b),
	             0, "%s", fx_err);
	cr_assert_eq(RUN("synth", "--seed", "6", "--sequences", "4", "--tokens",
	                 "64", "--lookahead", "4", "-o", c),
	             0, "%s", fx_err);
	cr_assert(same_file(a, b), "same seed must give the same bytes");
	cr_assert(!same_file(a, c), "another seed must differ");
	cr_assert_eq(RUN("validate", a, c), 0, "%s", fx_err);
	cr_assert(strstr(fx_out, "ok (4 sequences, 256 tokens)"));

	cr_assert_eq(RUN("synth", "--sampled", "--sequences", "2", "--tokens",
	                 "100", "--prompt-len", "7", "-o", s),
	             0, "%s", fx_err);
	cr_assert_eq(trace_reader_open(&r, s, err, sizeof err), 0, "%s", err);
	cr_assert_eq(trace_reader_header(r)->sampled, 1);
	cr_assert_eq(trace_reader_header(r)->synthetic, 1);
	cr_assert_eq(trace_reader_header(r)->lookahead, 16);
	cr_assert_str_eq(trace_header_prov(trace_reader_header(r), "date"),
	                 "2023-11-14T22:13:20Z");
	while ((ret = trace_reader_next(r, &seq, err, sizeof err)) > 0) {
		bool fractional = false;

		cr_assert_eq(seq.prompt_len, 7);
		for (uint32_t p = 0; p < seq.n; p++)
			fractional |= seq.accept[p] > 0.0f &&
			              seq.accept[p] < 1.0f;
		cr_assert(fractional, "sampled traces carry probabilities");
	}
	cr_assert_eq(ret, 0, "%s", err);
	trace_reader_close(&r);
}

/* synth --profile writes a trace marked synthetic with the profile's
 * statistics in its provenance; --set changes one; fit reads them back
 * (the library's round trip, test_workload.c, bounds the error: here
 * 16 x 512 positions, acceptance within 0.03 of 0.6). */
Test(cli, synth_profile_and_fit)
{
	const char *p = fx_path("p.msgpack");
	struct trace_reader *r = NULL;
	char err[512];
	cr_assert_eq(RUN("synth", "--profile", "7b-instruct", "--set",
	                 "acceptance=0.6", "--sequences", "16", "--tokens",
	                 "512", "-o", p),
	             0, "%s", fx_err);
	cr_assert_eq(trace_reader_open(&r, p, err, sizeof err), 0, "%s", err);
	const struct trace_header *h = trace_reader_header(r);
	cr_assert_eq(h->synthetic, 1);
	cr_assert_str_eq(trace_header_prov(h, "workload_profile"),
	                 "7b-instruct");
	cr_assert_not_null(strstr(trace_header_prov(h, "workload_statistics"),
	                          "acceptance=0.6 "));
	trace_reader_close(&r);
	cr_assert_eq(RUN("fit", p), 0, "%s", fx_err);
	const char *a = strstr(fx_out, "\nacceptance");
	cr_assert_not_null(a, "%s", fx_out);
	double acc = strtod(a + strlen("\nacceptance"), NULL);
	cr_assert_float_eq(acc, 0.6, 0.03, "%s", fx_out);
	cr_assert_not_null(strstr(fx_out, "--set sequences=16 --set "
	                                  "tokens=512"),
	                   "%s", fx_out);
	/* errors: unknown profile, unknown statistic, --set alone, no file */
	cr_assert_eq(RUN("synth", "--profile", "8b", "-o", p), 2);
	cr_assert_not_null(strstr(fx_err, "7b-instruct"), "%s", fx_err);
	cr_assert_eq(RUN("synth", "--profile", "7b-instruct", "--set", "rh=0.1",
	                 "-o", p),
	             2);
	cr_assert_not_null(strstr(fx_err, "'rh'"), "%s", fx_err);
	cr_assert_eq(RUN("synth", "--set", "rho=0.1", "-o", p), 2);
	cr_assert_not_null(strstr(fx_err, "--profile"), "%s", fx_err);
	cr_assert_neq(RUN("fit", fx_path("absent.msgpack")), 0);
}
