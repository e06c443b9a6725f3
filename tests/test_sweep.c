/* test_sweep.c - sweeps in ahasd-replay (issue 12, item 1): the value
 * specs of -P (tools/sweep.c), the plan of runs, every value checked
 * before the first run, and each run's configuration stored as rows and
 * pivoted into run_table.
 */
#include "prog_util.h"

#include <criterion/parameterized.h>
#include <errno.h>
#include <math.h>

#include "sweep.h"

/* ---- value specs, through tools/sweep.c ------------------------------ */

struct spec_case {
	const char *spec;
	const char *want; /* values joined with '|', or NULL: an error */
	const char *says; /* in the error */
};

static const struct spec_case spec_cases[] = {
	{ "4", "4", NULL },
	{ "", "", NULL },
	{ "1,2,4", "1|2|4", NULL },
	{ "1:8:3", "1|4|7", NULL },
	{ "-2:2:2", "-2|0|2", NULL },
	{ "0.1:0.3:0.1", "0.1|0.2|0.3", NULL },
	{ "128e9:512e9:x2", "128000000000|256000000000|512000000000", NULL },
	{ "1e-3:1:x10", "0.001|0.01|0.1|1", NULL },
	{ "1:2:*2", "1|2", NULL },
	{ "1,3:5:1,9", "1|3|4|5|9", NULL },
	{ "task,best", "task|best", NULL },
	{ "a:b:c", "a:b:c", NULL }, /* not numbers: one value */
	{ "1:2", "1:2", NULL },     /* two parts: one value */
	{ "5:1:1", NULL, "the range runs backwards (5 > 1)" },
	{ "1:5:0", NULL, "needs a STEP > 0" },
	{ "1:5:-1", NULL, "needs a STEP > 0" },
	{ "1:8:x1", NULL, "needs LO > 0 and F > 1" },
	{ "0:8:x2", NULL, "needs LO > 0 and F > 1" },
	{ "1,,2", NULL, "an empty value in the list" },
	{ "1,", NULL, "an empty value in the list" },
	{ "1,2,1", NULL, "value 1 given twice" },
	{ "1:3:1,2", NULL, "value 2 given twice" },
	{ "1:100000:1", NULL, "more than 10000 values" },
};

ParameterizedTestParameters(sweep, value_specs)
{
	static size_t idx[sizeof spec_cases / sizeof *spec_cases];
	for (size_t i = 0; i < sizeof idx / sizeof *idx; i++)
		idx[i] = i;
	return cr_make_param_array(size_t, idx, sizeof idx / sizeof *idx);
}

/* Parameters go to a fresh process: indices into the table. */
ParameterizedTest(size_t *ci, sweep, value_specs)
{
	const struct spec_case *c = &spec_cases[*ci];
	char err[512] = "", got[512] = "";
	char **vals;
	size_t n, off = 0;
	int rc = sweep_values(c->spec, &vals, &n, err, sizeof err);

	if (!c->want) {
		cr_assert_eq(rc, -EINVAL, "'%s' gave no error", c->spec);
		cr_assert_null(vals);
		cr_expect_not_null(strstr(err, c->says), "'%s': %s", c->spec,
		                   err);
		return;
	}
	cr_assert_eq(rc, 0, "'%s': %s", c->spec, err);
	for (size_t i = 0; i < n; i++)
		off += (size_t)snprintf(got + off, sizeof got - off, "%s%s",
		                        i ? "|" : "", vals[i]);
	cr_expect_str_eq(got, c->want, "'%s'", c->spec);
	sweep_values_free(&vals, &n);
	cr_assert_null(vals);
	cr_assert_eq(n, 0);
}

Test(sweep, odometer_visits_every_point_of_the_masked_keys)
{
	const size_t nv[3] = { 2, 5, 3 };
	const unsigned char mask[3] = { 1, 0, 1 };
	size_t idx[3] = { 0, 0, 0 }, seen = 0;

	do {
		cr_assert_eq(idx[1], 0, "an unmasked key moved");
		cr_assert_eq(idx[0] * 3 + idx[2], seen, "out of order");
		seen++;
	} while (sweep_next(idx, nv, mask, 3));
	cr_assert_eq(seen, 6);
}

/* ---- ahasd-replay end to end ------------------------------------------ */

TestSuite(sweep_cli, .init = prog_setup, .fini = prog_teardown, .timeout = 120);

/* Synthetic trace of 4 sequences x 64 tokens. */
static const char *make_trace(void)
{
	const char *p = prog_path("t.msgpack");

	cr_assert_eq(prog_run("tools/ahasd-trace",
	                      PROG_ARGS("synth", "-o", p, "--sequences", "4",
	                                "--tokens", "64")),
	             0, "ahasd-trace synth: %s", prog_err);
	return p;
}

/* A key multiplies only the runs of the plugins it reaches: sync takes
 * neither fixed.k nor ahasd.edc, so it runs once for each k (the baseline
 * once at every point of the drafter's sweep); ahasd at each k and edc.
 * Every run's baseline is the sync run of its own k. */
Test(sweep_cli, a_key_multiplies_only_the_plugins_it_reaches)
{
	const char *trace = make_trace();
	const char *db = prog_path("r.db");

	cr_assert_eq(REPLAY("--db", db, "-p", "sync", "-p", "ahasd", "-d",
	                    "fixed", "-P", "fixed.k=2,4", "-P", "ahasd.edc=0,1",
	                    trace),
	             0, "%s", prog_err);
	assert_err_has("ahasd-replay: 6 runs\n");
	cr_assert_eq(prog_q_int(db, "SELECT count(*) FROM runs"), 6);
	cr_assert_eq(prog_q_int(db, "SELECT count(*) FROM runs WHERE policy = "
	                            "'sync'"),
	             2);
	cr_assert_eq(prog_q_int(db, "SELECT count(DISTINCT \"drafter.k\") FROM "
	                            "run_table WHERE policy = 'sync'"),
	             2);
	cr_assert_eq(prog_q_int(db,
	                        "SELECT count(*) FROM (SELECT DISTINCT "
	                        "\"drafter.k\", \"policy.edc\" FROM run_table "
	                        "WHERE policy = 'ahasd')"),
	             4);
	/* matched on k, whatever edc */
	cr_assert_eq(
	        prog_q_int(
	                db,
	                "SELECT count(*) FROM run_table a JOIN run_table s ON "
	                "s.run_id = a.sync_run_id WHERE s.policy = 'sync' AND "
	                "s.\"drafter.k\" = a.\"drafter.k\""),
	        6);
	cr_assert_eq(prog_q_int(db, "SELECT count(*) FROM speedup_vs_sync "
	                            "WHERE speedup IS NULL"),
	             0);
	/* the summary shows the swept keys, '-' where one does not apply */
	assert_out_has("fixed.k ahasd.edc");
	assert_out_has("sync     fixed      npu-pim          2         -");
}

/* Two drafters, a key only one declares: the other runs once. */
Test(sweep_cli, a_key_of_one_drafter)
{
	const char *trace = make_trace();
	const char *db = prog_path("r.db");

	cr_assert_eq(REPLAY("-q", "--db", db, "-p", "sync", "-d", "fixed", "-d",
	                    "adaedl", "-P", "k=1:3:1", trace),
	             0, "%s", prog_err);
	cr_assert_eq(prog_q_int(db, "SELECT count(*) FROM runs WHERE "
	                            "drafter = 'fixed'"),
	             3);
	cr_assert_eq(prog_q_int(db, "SELECT count(*) FROM runs WHERE "
	                            "drafter = 'adaedl'"),
	             1);
}

/* An invalid value anywhere in a sweep fails before the first run, and
 * leaves no run (or no database) behind. */
struct bad_case {
	const char *what;
	const char *args[6];
	int status;
	const char *says;
};

static const struct bad_case bad_cases[] = {
	{ "plugin value",
	  { "-d", "fixed", "-P", "fixed.k=2,abc,4" },
	  1,
	  "k=abc is not an unsigned integer" },
	{ "hardware value",
	  { "-P", "hw.pim.mem_bw=128e9,fast" },
	  1,
	  "preset npu-pim: " },
	{ "hardware value in a range",
	  { "-P", "hw.aau=0:3:1" },
	  1,
	  "preset npu-pim: " },
	{ "backwards range",
	  { "-P", "hw.pim.mem_bw=512e9:128e9:x2" },
	  2,
	  "--param hw.pim.mem_bw: '512e9:128e9:x2': the range runs backwards" },
	{ "repeated value",
	  { "-d", "fixed", "-P", "k=2,4,2" },
	  2,
	  "--param k: '2,4,2': value 2 given twice" },
	{ "repeated key",
	  { "-d", "fixed", "-P", "k=2", "-P", "k=3,4" },
	  2,
	  "--param k given twice (2 and 3,4); give each key once (a list "
	  "sweeps it: k=2,3,4)" },
	{ "too many runs",
	  { "-d", "fixed", "-P", "k=1:201:1" },
	  2,
	  "this sweep is 201 runs; give --yes to start more than 200" },
	{ "unknown baseline", { "--baseline", "synk" }, 1, "--baseline: " },
};

ParameterizedTestParameters(sweep_cli, bad_sweep_fails_before_any_run)
{
	static size_t idx[sizeof bad_cases / sizeof *bad_cases];
	for (size_t i = 0; i < sizeof idx / sizeof *idx; i++)
		idx[i] = i;
	return cr_make_param_array(size_t, idx, sizeof idx / sizeof *idx);
}

ParameterizedTest(size_t *ci, sweep_cli, bad_sweep_fails_before_any_run,
                  .init = prog_setup, .fini = prog_teardown)
{
	const struct bad_case *c = &bad_cases[*ci];
	const char *trace = make_trace();
	const char *db = prog_path("r.db");
	const char *argv[16];
	size_t n = 0;

	argv[n++] = "--db";
	argv[n++] = db;
	argv[n++] = "-p";
	argv[n++] = "sync";
	for (size_t i = 0; i < 6 && c->args[i]; i++)
		argv[n++] = c->args[i];
	argv[n++] = trace;
	argv[n] = NULL;
	cr_assert_eq(prog_run("tools/ahasd-replay", argv), c->status, "%s: %s",
	             c->what, prog_err);
	cr_expect_not_null(strstr(prog_err, c->says), "%s: stderr is\n%s",
	                   c->what, prog_err);
	cr_expect_str_empty(prog_out, "%s", c->what);
	cr_expect_neq(access(db, F_OK), 0, "%s: a database was made", c->what);
}

/* Over the threshold, --yes starts it. */
Test(sweep_cli, yes_starts_a_large_sweep)
{
	const char *trace = make_trace();

	cr_assert_eq(REPLAY("--no-db", "--yes", "-p", "sync", "-d", "fixed",
	                    "-P", "k=1:201:1", trace),
	             0, "%s", prog_err);
	assert_err_has("ahasd-replay: 201 runs\n");
	assert_out_has("run -1: sync/fixed");
}

/* Every run's resolved configuration is stored as rows: plugin parameters
 * with their defaults, every hardware constant, the preset, models,
 * trace, seed, queue capacity and max draft; typed as they read; and
 * run_table has a column for each key. A swept value that 12 digits do
 * not carry is stored exactly. */
Test(sweep_cli, configuration_rows)
{
	const char *trace = make_trace();
	const char *db = prog_path("r.db");

	cr_assert_eq(REPLAY("-q", "--db", db, "-p", "ahasd", "-d", "adaedl",
	                    "-P", "hw.pim.mem_bw=33333333333.333332", "--seed",
	                    "7", "--queue-capacity", "12", "--max-draft", "9",
	                    trace),
	             0, "%s", prog_err);
#define ROW(key) \
	"(SELECT value FROM config WHERE run_id = 1 AND key = '" key "')"
	cr_expect_str_eq(prog_out, "");
	cr_expect_eq(prog_q_int(db, "SELECT " ROW("seed")), 7);
	cr_expect_eq(prog_q_int(db, "SELECT " ROW("queue_capacity")), 12);
	cr_expect_eq(prog_q_int(db, "SELECT " ROW("max_draft")), 9);
	cr_expect_eq(
	        prog_q_int(
	                db,
	                "SELECT " ROW("policy") " = 'ahasd' AND " ROW(
	                        "drafter") " = 'adaedl' AND " ROW("hw."
	                                                          "prese"
	                                                          "t") " = "
	                                                               "'npu-"
	                                                               "pim'"),
	        1);
	/* defaults filled in, typed */
	cr_expect_eq(prog_q_int(db, "SELECT " ROW("policy.edc")), 1);
	cr_expect_eq(prog_q_int(db, "SELECT typeof(" ROW(
	                                    "drafter.gamma") ") = 'real'"),
	             1);
	cr_expect_eq(prog_q_int(db, "SELECT " ROW(
	                                    "hw.aau_offload") " = 'nonlinear'"),
	             1);
	cr_expect_eq(prog_q_dbl(db, "SELECT " ROW("hw.pim.mem_bw")),
	             33333333333.333332);
	cr_expect_eq(prog_q_int(db, "SELECT " ROW("hw.npu.mem_bw")),
	             51200000000LL);
	cr_expect_eq(
	        prog_q_int(db,
	                   "SELECT " ROW("trace.sha256") " = "
	                                                 "(SELECT trace_sha256 "
	                                                 "FROM runs)"),
	        1);
	cr_expect_eq(
	        prog_q_int(
	                db,
	                "SELECT " ROW(
	                        "trace.path") " = "
	                                      "(SELECT trace_path FROM runs)"),
	        1);
	cr_expect_eq(
	        prog_q_int(db,
	                   "SELECT " ROW("model.draft") " = "
	                                                "(SELECT draft_model "
	                                                "FROM runs)"),
	        1);
	cr_expect_eq(prog_q_int(db, "SELECT count(*) FROM config WHERE "
	                            "key = 'model.retargeted_from'"),
	             0);
	/* no metadata */
	cr_expect_eq(prog_q_int(db, "SELECT count(*) FROM config WHERE key IN "
	                            "('label', 'created', 'wall_s', 'id')"),
	             0);
	/* every hardware constant of hw_config, one row each */
	cr_expect_eq(prog_q_int(db, "SELECT count(*) FROM config WHERE key "
	                            "LIKE 'hw.%%' AND key <> 'hw.preset'"),
	             prog_q_int(db,
	                        "WITH RECURSIVE l(rest, n) AS (SELECT "
	                        "hw_config, 0 FROM runs UNION ALL SELECT "
	                        "substr(rest, instr(rest, char(10)) + 1), "
	                        "n + 1 FROM l WHERE instr(rest, char(10)) > "
	                        "0) SELECT max(n) - 1 FROM l"));
	/* a column of run_table per key */
	cr_expect_eq(prog_q_int(db, "SELECT count(*) FROM pragma_table_info"
	                            "('run_table') WHERE name IN (SELECT key "
	                            "FROM config_keys)"),
	             prog_q_int(db, "SELECT count(*) FROM config_keys"));
	cr_expect_eq(prog_q_dbl(db, "SELECT \"hw.pim.mem_bw\" FROM run_table"),
	             33333333333.333332);
#undef ROW
}

/* ahasd-repro goes through the same run assembly: its runs have the rows
 * and a matched baseline too. */
Test(sweep_cli, repro_runs_have_configuration_rows, .timeout = 300)
{
	const char *db = prog_path("repro.db");

	cr_assert_eq(
	        prog_run("tools/ahasd-repro",
	                 PROG_ARGS("-q", "--db", db, "--pair",
	                           "llama2-7b:llama2-13b", "-d", "adaedl",
	                           "--family", "paper", "--no-workload",
	                           prog_src_path("traces/stories260K-skip3-"
	                                         "greedy.msgpack"))),
	        0, "%s", prog_err);
	cr_assert_gt(prog_q_int(db, "SELECT count(*) FROM runs"), 1);
	cr_expect_eq(prog_q_int(db, "SELECT count(*) FROM runs WHERE id NOT IN "
	                            "(SELECT run_id FROM run_match)"),
	             0);
	cr_expect_eq(prog_q_int(db, "SELECT count(*) FROM runs r WHERE (SELECT "
	                            "count(*) FROM config WHERE run_id = r.id) "
	                            "< 50"),
	             0);
}

/* The speed-ups of a table, "0.92x 1.00x ...", in row order. */
static void speedups(const char *out, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (const char *p = strstr(out, "\npolicy "); p && *p;) {
		const char *x = strstr(p, "x ");

		p = strchr(p + 1, '\n');
		if (!x || (p && x > p) || x - 4 < out || x[-3] != '.')
			continue;
		off += (size_t)snprintf(buf + off, len - off, "%.5s ", x - 4);
		if (off >= len)
			break;
	}
}

/* The summary compares with its baseline as the database does, and the
 * same without one (with a database, it also has paired intervals). */
Test(sweep_cli, summary_speedup_with_and_without_a_database)
{
	const char *trace = make_trace();
	char with[512], without[512];

	cr_assert_eq(REPLAY("--db", prog_path("r.db"), "-p", "sync", "-p",
	                    "ahasd", "-d", "fixed", "-P",
	                    "hw.pim.mem_bw=64e9,512e9", trace),
	             0, "%s", prog_err);
	speedups(prog_out, with, sizeof with);
	assert_out_has("paired for the speed-up");
	cr_assert_eq(REPLAY("--no-db", "-p", "sync", "-p", "ahasd", "-d",
	                    "fixed", "-P", "hw.pim.mem_bw=64e9,512e9", trace),
	             0, "%s", prog_err);
	speedups(prog_out, without, sizeof without);
	cr_expect_str_eq(without, with);
	cr_expect_eq(strlen(with), 4 * 6, "%s", with);
	cr_expect_not_null(strstr(with, "1.00x"), "%s", with);
}
