/* test_cli.c - the built ahasd-replay binary end to end.
 *
 * Every test runs the real $AHASD_BUILD_ROOT/tools/ahasd-replay (and
 * ahasd-trace to make a small synthetic trace) as a child process with
 * stdout and stderr captured to files, checks the exit status and the
 * message text, and reads the results database back through the plain
 * sqlite3 API. Exit statuses: 0 ok, 1 a run failed, 2 usage error.
 *
 * The example plugin tests/example_plugin/greedy_lookahead.c is compiled
 * here with `cc` against policies/ahasd_plugin.h alone, as a plugin author
 * outside the main build would.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include "config.h"

#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "ahasd_plugin.h"
#include "fixtures.h"

/* Synthetic traces: 4 sequences x 64 tokens = 256 tokens each. */
#define TRACE_SEQS   4
#define TRACE_TOKENS 256

static char replay_bin[1024], trace_bin[1024], hw_bin[1024], plugdir[1024],
        srcroot[1024];

/* ---- fixture ----------------------------------------------------------- */

static void setup(void)
{
	snprintf(replay_bin, sizeof replay_bin, "%s",
	         fx_build_path("tools/ahasd-replay"));
	snprintf(trace_bin, sizeof trace_bin, "%s",
	         fx_build_path("tools/ahasd-trace"));
	snprintf(hw_bin, sizeof hw_bin, "%s", fx_build_path("tools/ahasd-hw"));
	snprintf(plugdir, sizeof plugdir, "%s", fx_build_path("policies"));
	cr_assert_not_null(getenv("AHASD_SOURCE_ROOT"));
	snprintf(srcroot, sizeof srcroot, "%s", getenv("AHASD_SOURCE_ROOT"));
	fx_tmpdir_make("cli");
}

/* ---- running programs -------------------------------------------------- */

/* Run bin with args (NULL-terminated) in the temporary directory. env
 * entries "K=V" are set and "K" unset in the child. stdout/stderr land in
 * fx_out/fx_err. @return the exit status. */
static int run_prog(const char *bin, const char *const *args,
                    const char *const *env)
{
	return fx_run(bin, args,
	              &(struct fx_run_opts){ .env = env, .in_dir = 1 });
}

#define ARGS                 FX_ARGS
#define REPLAY(...)          run_prog(replay_bin, ARGS(__VA_ARGS__), NULL)
#define REPLAY_ENV(env, ...) run_prog(replay_bin, ARGS(__VA_ARGS__), env)

#define assert_err_has(s)                                                   \
	cr_assert_not_null(strstr(fx_err, (s)), "stderr lacks \"%s\":\n%s", \
	                   (s), fx_err)

/* Synthetic trace of TRACE_SEQS x 64 tokens at fx_dir/name. */
static const char *make_trace(const char *name)
{
	const char *p = fx_path(name);

	cr_assert_eq(run_prog(trace_bin,
	                      ARGS("synth", "-o", p, "--sequences", "4",
	                           "--tokens", "64"),
	                      NULL),
	             0, "ahasd-trace synth: %s", fx_err);
	return p;
}

/* cc -shared -fPIC -std=c17 -Wall -Wextra -Werror -I<src>/policies SRC -o OUT,
 * only the public header on the include path. */
static void compile_plugin(const char *src, const char *out)
{
	char inc[1100];

	snprintf(inc, sizeof inc, "-I%s/policies", srcroot);
	cr_assert_eq(run_prog("cc",
	                      ARGS("-shared", "-fPIC", "-std=c17", "-Wall",
	                           "-Wextra", "-Werror", inc, src, "-o", out),
	                      NULL),
	             0, "cc %s failed:\n%s", src, fx_err);
}

static const char *example_plugin(void)
{
	static char src[1200];
	const char *so = fx_path("greedy_lookahead.so");

	snprintf(src, sizeof src, "%s/tests/example_plugin/greedy_lookahead.c",
	         srcroot);
	compile_plugin(src, so);
	return so;
}

/* ---- reading the database ---------------------------------------------- */

static sqlite3 *db_rw(const char *path)
{
	sqlite3 *h = NULL;

	cr_assert_eq(sqlite3_open_v2(path, &h, SQLITE_OPEN_READWRITE, NULL),
	             SQLITE_OK, "open %s", path);
	return h;
}

static sqlite3_stmt *prep(sqlite3 *h, const char *sql)
{
	sqlite3_stmt *s = NULL;

	cr_assert_eq(sqlite3_prepare_v2(h, sql, -1, &s, NULL), SQLITE_OK,
	             "%s: %s", sql, sqlite3_errmsg(h));
	return s;
}

/* First column of the first row of a printf-formatted query. */
static double q_double(const char *path, const char *fmt, ...)
{
	char sql[2048];
	va_list ap;
	sqlite3 *h = db_rw(path);
	sqlite3_stmt *s;
	double v;

	va_start(ap, fmt);
	vsnprintf(sql, sizeof sql, fmt, ap);
	va_end(ap);
	s = prep(h, sql);
	cr_assert_eq(sqlite3_step(s), SQLITE_ROW, "no row: %s", sql);
	cr_assert_neq(sqlite3_column_type(s, 0), SQLITE_NULL, "NULL: %s", sql);
	v = sqlite3_column_double(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(h);
	return v;
}

static long long q_int(const char *path, const char *fmt, ...)
{
	char sql[2048];
	va_list ap;
	sqlite3 *h = db_rw(path);
	sqlite3_stmt *s;
	long long v;

	va_start(ap, fmt);
	vsnprintf(sql, sizeof sql, fmt, ap);
	va_end(ap);
	s = prep(h, sql);
	cr_assert_eq(sqlite3_step(s), SQLITE_ROW, "no row: %s", sql);
	v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(h);
	return v;
}

static const char *q_text(const char *path, const char *fmt, ...)
{
	static char out[4][1024];
	static unsigned i;
	char sql[2048], *o = out[i++ % 4];
	va_list ap;
	sqlite3 *h = db_rw(path);
	sqlite3_stmt *s;
	const unsigned char *t;

	va_start(ap, fmt);
	vsnprintf(sql, sizeof sql, fmt, ap);
	va_end(ap);
	s = prep(h, sql);
	cr_assert_eq(sqlite3_step(s), SQLITE_ROW, "no row: %s", sql);
	t = sqlite3_column_text(s, 0);
	snprintf(o, 1024, "%s", t ? (const char *)t : "(null)");
	sqlite3_finalize(s);
	sqlite3_close(h);
	return o;
}

static double metric(const char *db, long long run, const char *name)
{
	return q_double(db,
	                "SELECT value FROM metrics WHERE run_id = %lld "
	                "AND name = '%s'",
	                run, name);
}

static void db_exec(const char *path, const char *sql)
{
	sqlite3 *h = db_rw(path);
	char *msg = NULL;

	cr_assert_eq(sqlite3_exec(h, sql, NULL, NULL, &msg), SQLITE_OK,
	             "%s: %s", sql, msg ? msg : "");
	sqlite3_close(h);
}

/* The database holds exactly n runs, each complete: it has its metrics,
 * one row per sequence and committed == the trace's tokens; no orphan rows
 * of a rolled-back run; and SQLite finds the file sound. */
static void assert_db_intact(const char *db, long long n)
{
	cr_assert_str_eq(q_text(db, "PRAGMA integrity_check"), "ok");
	cr_assert_eq(q_int(db, "SELECT count(*) FROM runs"), n);
	cr_assert_eq(q_int(db,
	                   "SELECT count(*) FROM runs r WHERE "
	                   "(SELECT count(*) FROM sequences s WHERE "
	                   "s.run_id = r.id) != %d",
	                   TRACE_SEQS),
	             0, "a run lacks sequence rows");
	cr_assert_eq(q_int(db,
	                   "SELECT count(*) FROM runs r WHERE "
	                   "(SELECT value FROM metrics m WHERE m.run_id = r.id "
	                   "AND m.name = 'committed') IS NOT %d",
	                   TRACE_TOKENS),
	             0, "a run lacks metrics or committed != %d", TRACE_TOKENS);
	cr_assert_eq(q_int(db,
	                   "SELECT count(*) FROM runs r WHERE NOT EXISTS "
	                   "(SELECT 1 FROM devices d WHERE d.run_id = r.id)"),
	             0);
	static const char *const tables[] = { "metrics", "devices", "sequences",
		                              "events" };
	for (size_t i = 0; i < 4; i++)
		cr_assert_eq(q_int(db,
		                   "SELECT count(*) FROM %s WHERE run_id "
		                   "NOT IN (SELECT id FROM runs)",
		                   tables[i]),
		             0, "orphan rows in %s", tables[i]);
}

/* A database with two complete runs (sync/fixed, ahasd/fixed). */
static const char *seeded_db(const char *trace)
{
	const char *db = fx_path("seeded.db");

	cr_assert_eq(REPLAY("-q", "--policy", "sync", "--policy", "ahasd",
	                    "--drafter", "fixed", "--db", db, trace),
	             0, "%s", fx_err);
	assert_db_intact(db, 2);
	return db;
}

/* ---- basics ------------------------------------------------------------ */

TestSuite(cli, .init = setup, .fini = fx_tmpdir_remove);

Test(cli, help_and_list)
{
	static const char *const names[] = { "sync",   "async",     "ahasd",
		                             "fixed",  "specdecpp", "svip",
		                             "adaedl", "banditspec" };
	char want[1200];

	cr_assert_eq(REPLAY("--help"), 0);
	cr_assert(
	        !strncmp(fx_out, "usage: ahasd-replay [options] TRACE...", 38),
	        "%s", fx_out);
	cr_assert_str_empty(fx_err);

	cr_assert_eq(REPLAY("--list"), 0, "%s", fx_err);
	cr_assert_str_empty(fx_err);
	for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
		snprintf(want, sizeof want, "%s/%s.so", plugdir, names[i]);
		cr_assert_not_null(strstr(fx_out, want), "--list lacks %s:\n%s",
		                   want, fx_out);
	}
	cr_assert_not_null(strstr(fx_out, "edc=1"));
	/* presets, model presets and hardware keys too */
	for (size_t i = 0; i < 5; i++) {
		static const char *const more[] = {
			" npu-pim ",   " artifact-edge-ahasd ",
			" llama2-13b", "pim_bus_block=",
			"mem_bw",
		};
		cr_assert_not_null(strstr(fx_out, more[i]),
		                   "--list lacks '%s':\n%s", more[i], fx_out);
	}
	/* and a third-party plugin on AHASD_PLUGIN_PATH, with its kind */
	const char *so = example_plugin();
	char env[700];
	snprintf(env, sizeof env, "AHASD_PLUGIN_PATH=%s", fx_dir);
	const char *envs[] = { env, NULL };
	cr_assert_eq(REPLAY_ENV(envs, "--list"), 0, "%s", fx_err);
	snprintf(want, sizeof want, "greedy_lookahead policy   %s", so);
	cr_assert_not_null(strstr(fx_out, want), "--list lacks %s:\n%s", want,
	                   fx_out);
}

Test(cli, usage_errors_exit_2)
{
	const char *trace = make_trace("t.msgpack");

	cr_assert_eq(REPLAY("--db", fx_path("r.db")), 2);
	assert_err_has("ahasd-replay: no trace given");
	cr_assert_eq(REPLAY("--param", "edc", trace), 2);
	assert_err_has("--param 'edc': expected KEY=VALUE");
	cr_assert_eq(REPLAY("--max-events", "0", trace), 2);
	assert_err_has("--max-events: expected an integer in [1, ");
	cr_assert_eq(REPLAY("--queue-capacity", "many", trace), 2);
	assert_err_has("--queue-capacity: expected an integer in [1, 4096], "
	               "got 'many'");
	cr_assert_eq(REPLAY("--no-such-option", trace), 2);
	assert_err_has("unrecognized option '--no-such-option'");
	assert_err_has("usage: ahasd-replay");
	/* none of these touched a database */
	cr_assert_neq(access(fx_path("r.db"), F_OK), 0);
	cr_assert_neq(access(fx_path("results.db"), F_OK), 0);
}

/* ---- 1. the example plugin, built outside the main build --------------- */

Test(cli, example_plugin_by_path)
{
	const char *trace = make_trace("t.msgpack");
	const char *so = example_plugin();
	const char *db = fx_path("r.db");
	char want[1200];

	/* default max_unverified=2 */
	cr_assert_eq(
	        REPLAY("--policy", so, "--drafter", "fixed", "--db", db, trace),
	        0, "%s", fx_err);
	snprintf(want, sizeof want,
	         "run 1: greedy_lookahead/fixed on npu-pim, "
	         "%s: 256 tokens in ",
	         trace);
	cr_assert(!strncmp(fx_out, want, strlen(want)), "%s", fx_out);
	cr_assert_str_empty(fx_err);
	assert_db_intact(db, 1);
	cr_assert_str_eq(q_text(db, "SELECT policy FROM runs"),
	                 "greedy_lookahead");
	cr_assert_str_eq(q_text(db, "SELECT policy_version FROM runs"), "1.0");
	cr_assert_str_eq(q_text(db, "SELECT policy_path FROM runs"), so);
	cr_assert_str_eq(q_text(db, "SELECT policy_params FROM runs"),
	                 "max_unverified=2");
	cr_assert_eq(metric(db, 1, "committed"), TRACE_TOKENS);
	cr_assert_eq(metric(db, 1, "policy.max_unverified"), 2);
	/* after_batch is called once per closed batch in async mode, and
	 * the engine counts one wait per WAIT decision: the plugin's counters
	 * and the host's metrics must agree. */
	double dec = metric(db, 1, "policy.decisions");
	double waits = metric(db, 1, "policy.waits");
	double ahead = metric(db, 1, "policy.drafts_ahead");
	cr_assert_eq(dec, metric(db, 1, "batches"));
	cr_assert_eq(waits, metric(db, 1, "waits"));
	cr_assert_eq(waits + ahead, dec);
	cr_assert_gt(waits, 0);
	cr_assert_gt(ahead, 0);

	/* --param reaches it, unprefixed and as NAME.key.
	 * max_unverified=1: the closed batch itself is unverified, so every
	 * decision is a wait and nothing is drafted ahead. */
	cr_assert_eq(REPLAY("-q", "--policy", so, "--drafter", "fixed",
	                    "--param", "max_unverified=1", "--db", db, trace),
	             0, "%s", fx_err);
	cr_assert_eq(metric(db, 2, "policy.max_unverified"), 1);
	cr_assert_eq(metric(db, 2, "policy.drafts_ahead"), 0);
	cr_assert_eq(metric(db, 2, "policy.waits"),
	             metric(db, 2, "policy.decisions"));
	cr_assert_eq(metric(db, 2, "waits"), metric(db, 2, "batches"));
	cr_assert_eq(metric(db, 2, "lookahead_batches"), 0);
	cr_assert_str_eq(q_text(db, "SELECT policy_params FROM runs WHERE "
	                            "id = 2"),
	                 "max_unverified=1");

	cr_assert_eq(REPLAY("-q", "--policy", so, "--drafter", "fixed",
	                    "--param", "greedy_lookahead.max_unverified=3",
	                    "--db", db, trace),
	             0, "%s", fx_err);
	cr_assert_eq(metric(db, 3, "policy.max_unverified"), 3);
	/* a looser bound drafts ahead more often than the default's */
	cr_assert_gt(metric(db, 3, "policy.drafts_ahead"), ahead);
	assert_db_intact(db, 3);
}

/* With a bound above anything the queue can hold the example never waits,
 * which is exactly the built-in async policy (after_batch NULL = DRAFT):
 * every host metric must match bit for bit. */
Test(cli, example_plugin_unbounded_is_async)
{
	const char *trace = make_trace("t.msgpack");
	const char *so = example_plugin();
	const char *db = fx_path("r.db");

	cr_assert_eq(REPLAY("-q", "--policy", so, "--drafter", "fixed",
	                    "--param", "max_unverified=4096", "--db", db,
	                    trace),
	             0, "%s", fx_err);
	cr_assert_eq(REPLAY("-q", "--policy", "async", "--drafter", "fixed",
	                    "--db", db, trace),
	             0, "%s", fx_err);
	assert_db_intact(db, 2);
	cr_assert_eq(metric(db, 1, "policy.waits"), 0);
	long long n1 = q_int(db,
	                     "SELECT count(*) FROM metrics WHERE run_id = 1 "
	                     "AND name NOT LIKE 'policy.%%'");
	long long same = q_int(db,
	                       "SELECT count(*) FROM metrics a JOIN metrics "
	                       "b ON a.name = b.name WHERE a.run_id = 1 AND "
	                       "b.run_id = 2 AND a.value = b.value AND a.name "
	                       "NOT LIKE 'policy.%%'");
	cr_assert_gt(n1, 20);
	cr_assert_eq(same, n1, "%lld of %lld metrics differ from async",
	             n1 - same, n1);
}

Test(cli, example_plugin_by_name_and_bad_value)
{
	const char *trace = make_trace("t.msgpack");
	const char *db = fx_path("r.db");
	char env_path[1400];

	example_plugin();
	/* found by name in the first AHASD_PLUGIN_PATH entry */
	snprintf(env_path, sizeof env_path, "AHASD_PLUGIN_PATH=%s:%s", fx_dir,
	         plugdir);
	const char *env[] = { env_path, NULL };
	cr_assert_eq(REPLAY_ENV(env, "-q", "--policy", "greedy_lookahead",
	                        "--drafter", "fixed", "--db", db, trace),
	             0, "%s", fx_err);
	cr_assert_str_eq(q_text(db, "SELECT policy_path FROM runs"),
	                 fx_path("greedy_lookahead.so"));
	/* fixed is not in fx_dir: the second entry */
	char want[1200];
	snprintf(want, sizeof want, "%s/fixed.so", plugdir);
	cr_assert_str_eq(q_text(db, "SELECT drafter_path FROM runs"), want);

	/* the plugin's own create() rejects the value; its message is shown
	 * prefixed with the plugin name, and nothing is stored */
	cr_assert_eq(REPLAY_ENV(env, "-q", "--policy", "greedy_lookahead",
	                        "--drafter", "fixed", "--param",
	                        "max_unverified=0", "--db", db, trace),
	             1);
	assert_err_has("ahasd-replay: greedy_lookahead: max_unverified=0 "
	               "out of range [1, 4096]");
	assert_db_intact(db, 1);
}

/* ---- 2. how a user names a plugin -------------------------------------- */

Test(cli, policy_name_forms)
{
	const char *trace = make_trace("t.msgpack");
	const char *db = fx_path("r.db");
	char abs[1200];

	snprintf(abs, sizeof abs, "%s/ahasd.so", plugdir);
	cr_assert_eq(REPLAY("-q", "--policy", "ahasd.so", "--policy", "ahasd",
	                    "--policy", abs, "--drafter", "fixed.so", "--db",
	                    db, trace),
	             0, "%s", fx_err);
	assert_db_intact(db, 3);
	/* all three are the same file */
	cr_assert_eq(q_int(db,
	                   "SELECT count(*) FROM runs WHERE policy = "
	                   "'ahasd' AND policy_path = '%s'",
	                   abs),
	             3);

	/* without AHASD_PLUGIN_PATH a binary run from the build tree finds
	 * the build tree's plugins */
	const char *unset[] = { "AHASD_PLUGIN_PATH", NULL };
	cr_assert_eq(REPLAY_ENV(unset, "-q", "--policy", "ahasd", "--drafter",
	                        "fixed", "--db", db, trace),
	             0, "%s", fx_err);
	cr_assert_eq(q_int(db,
	                   "SELECT count(*) FROM runs WHERE id = 4 AND "
	                   "policy_path = '%s'",
	                   abs),
	             1);
}

Test(cli, unknown_plugin_names_places)
{
	const char *trace = make_trace("t.msgpack");
	const char *db = fx_path("r.db");
	char env_path[1400], want[3000];

	snprintf(env_path, sizeof env_path,
	         "AHASD_PLUGIN_PATH=/nonexistent-ahasd:%s", plugdir);
	const char *env[] = { env_path, NULL };
	cr_assert_eq(REPLAY_ENV(env, "-q", "--policy", "nosuch", "--drafter",
	                        "fixed", "--db", db, trace),
	             1);
	/* from the build tree: the variable, the build tree, then the
	 * installed plugin directory (AHASD_PLUGIN_DIR from config.h) */
	snprintf(
	        want, sizeof want,
	        "ahasd-replay: plugin 'nosuch' not found "
	        "(looked in AHASD_PLUGIN_PATH=/nonexistent-ahasd:%s, %s, %s)\n",
	        plugdir, plugdir, AHASD_PLUGIN_DIR);
	cr_assert_str_eq(fx_err, want);

	const char *unset[] = { "AHASD_PLUGIN_PATH", NULL };
	cr_assert_eq(REPLAY_ENV(unset, "-q", "--drafter", "nosuch.so", "--db",
	                        db, trace),
	             1);
	snprintf(want, sizeof want,
	         "ahasd-replay: plugin 'nosuch.so' not "
	         "found (looked in AHASD_PLUGIN_PATH=(unset), %s, %s)\n",
	         plugdir, AHASD_PLUGIN_DIR);
	cr_assert_str_eq(fx_err, want);

	/* a path is taken as it is, never searched */
	cr_assert_eq(REPLAY("-q", "--policy", "./ahasd.so", "--db", db, trace),
	             1);
	cr_assert_str_eq(fx_err, "ahasd-replay: plugin './ahasd.so': No such "
	                         "file or directory\n");
	/* plugins are checked before the database is opened: none created */
	cr_assert_neq(access(db, F_OK), 0, "database created by a failed run");
}

/* ---- 3. bad input ------------------------------------------------------ */

Test(cli, truncated_trace_keeps_earlier_runs)
{
	const char *trace = make_trace("t.msgpack");
	const char *db = seeded_db(trace);
	const char *cut = fx_path("cut.msgpack");
	size_t n;
	unsigned char *buf = fx_slurp(trace, &n);

	/* keep the header and some sequences, cut inside a later record, so
	 * the run has begun and stored sequences when the reader fails */
	fx_write_file(cut, buf, n * 3 / 5);
	free(buf);
	cr_assert_eq(REPLAY("-q", "--policy", "sync", "--drafter", "fixed",
	                    "--db", db, cut),
	             1);
	assert_err_has(cut);
	assert_err_has("truncated: the record starting here is incomplete");
	cr_assert_str_empty(fx_out);
	assert_db_intact(db, 2);
	/* the rolled-back run's id is not visible anywhere */
	cr_assert_eq(q_int(db,
	                   "SELECT count(*) FROM runs WHERE trace_path = "
	                   "'%s'",
	                   cut),
	             0);

	/* a good trace, then the cut one: the first run is stored and
	 * reported, the second rolled back, exit 1 */
	cr_assert_eq(REPLAY("--policy", "sync", "--drafter", "fixed", "--db",
	                    db, trace, cut),
	             1);
	cr_assert(!strncmp(fx_out, "run 3: sync/fixed", 17), "%s", fx_out);
	assert_err_has("truncated: the record starting here is incomplete");
	assert_db_intact(db, 3);

	/* a trace file that does not exist */
	cr_assert_eq(REPLAY("-q", "--db", db, fx_path("missing.msgpack")), 1);
	assert_err_has("missing.msgpack: No such file or directory");
	assert_db_intact(db, 3);
}

Test(cli, wrong_magic)
{
	const char *trace = make_trace("t.msgpack");
	const char *db = seeded_db(trace);
	const char *bad = fx_path("magic.msgpack");
	size_t n;
	unsigned char *buf = fx_slurp(trace, &n);
	unsigned char *m = memmem(buf, n, "ahasd-trace", 11);

	/* same length, so the msgpack structure stays valid */
	cr_assert_not_null(m, "synthetic trace lacks its magic");
	memcpy(m, "ahasd-xxxxx", 11);
	fx_write_file(bad, buf, n);
	free(buf);
	cr_assert_eq(REPLAY("-q", "--policy", "sync", "--drafter", "fixed",
	                    "--db", db, bad),
	             1);
	assert_err_has("field 'magic': expected \"ahasd-trace\", got str "
	               "\"ahasd-xxxxx\"");
	assert_err_has(bad);
	assert_db_intact(db, 2);

	/* not msgpack records at all */
	fx_write_file(bad, "hello, world\n", 13);
	cr_assert_eq(REPLAY("-q", "--policy", "sync", "--drafter", "fixed",
	                    "--db", db, bad),
	             1);
	assert_err_has("magic.msgpack: offset 0: ");
	assert_db_intact(db, 2);
}

Test(cli, not_a_plugin)
{
	const char *trace = make_trace("t.msgpack");
	const char *db = seeded_db(trace);
	const char *src = fx_path("plain.c"), *so = fx_path("plain.so");
	const char *junk = fx_path("junk.so");
	static const char code[] = "int plain_answer(void);\n"
	                           "int plain_answer(void) { return 42; }\n";
	char want[1200];

	fx_write_file(src, code, sizeof code - 1);
	compile_plugin(src, so);
	cr_assert_eq(REPLAY("-q", "--policy", so, "--drafter", "fixed", "--db",
	                    db, trace),
	             1);
	snprintf(want, sizeof want,
	         "ahasd-replay: %s: not an ahasd-replay "
	         "plugin (no 'ahasd_plugin' symbol)\n",
	         so);
	cr_assert_str_eq(fx_err, want);

	/* not even a shared object: dlerror() text with the path */
	fx_write_file(junk, "not elf", 7);
	cr_assert_eq(REPLAY("-q", "--policy", junk, "--drafter", "fixed",
	                    "--db", db, trace),
	             1);
	snprintf(want, sizeof want, "ahasd-replay: %s: cannot load: ", junk);
	assert_err_has(want);
	assert_db_intact(db, 2);
}

Test(cli, abi_version_mismatch)
{
	const char *trace = make_trace("t.msgpack");
	const char *db = seeded_db(trace);
	const char *src = fx_path("future.c"), *so = fx_path("future.so");
	/* A plugin from a future ABI. create() would abort the process if the
	 * host called it: the host must refuse the descriptor first. */
	static const char code[] =
	        "#include <stdlib.h>\n"
	        "#include \"ahasd_plugin.h\"\n"
	        "static int mk(void **st, const struct ahasd_create_args *a,\n"
	        "              char *e, size_t el)\n"
	        "{ (void)st; (void)a; (void)e; (void)el; abort(); }\n"
	        "static void rm(void *st) { (void)st; abort(); }\n"
	        "static uint32_t mode(void *st) { (void)st; abort(); }\n"
	        "static const struct ahasd_policy_hooks hooks = {\n"
	        "  .struct_size = sizeof hooks, .exec_mode = mode };\n"
	        "AHASD_PLUGIN_EXPORT const struct ahasd_plugin ahasd_plugin = "
	        "{\n"
	        "  .abi_version = 99, .struct_size = sizeof ahasd_plugin,\n"
	        "  .kind = AHASD_PLUGIN_POLICY, .name = \"future\",\n"
	        "  .version = \"9\", .create = mk, .destroy = rm,\n"
	        "  .policy = &hooks };\n";
	char want[1200];

	fx_write_file(src, code, sizeof code - 1);
	compile_plugin(src, so);
	cr_assert_eq(REPLAY("-q", "--policy", so, "--drafter", "fixed", "--db",
	                    db, trace),
	             1);
	snprintf(want, sizeof want,
	         "ahasd-replay: %s: plugin ABI version 99, "
	         "this host supports %u to %u (rebuild the plugin against "
	         "this ahasd_plugin.h)\n",
	         so, AHASD_PLUGIN_ABI_MIN, AHASD_PLUGIN_ABI_VERSION);
	cr_assert_str_eq(fx_err, want);
	assert_db_intact(db, 2);
}

Test(cli, kind_mismatch)
{
	const char *trace = make_trace("t.msgpack");
	const char *db = seeded_db(trace);
	char want[1200];

	cr_assert_eq(REPLAY("-q", "--policy", "fixed", "--drafter", "fixed",
	                    "--db", db, trace),
	             1);
	snprintf(want, sizeof want,
	         "ahasd-replay: %s/fixed.so: is a drafting "
	         "algorithm, expected a scheduling policy\n",
	         plugdir);
	cr_assert_str_eq(fx_err, want);

	cr_assert_eq(REPLAY("-q", "--policy", "sync", "--drafter", "ahasd",
	                    "--db", db, trace),
	             1);
	snprintf(want, sizeof want,
	         "ahasd-replay: %s/ahasd.so: is a "
	         "scheduling policy, expected a drafting algorithm\n",
	         plugdir);
	cr_assert_str_eq(fx_err, want);
	assert_db_intact(db, 2);
}

Test(cli, parameter_errors)
{
	const char *trace = make_trace("t.msgpack");
	const char *db = seeded_db(trace);
	char want[1200];

	cr_assert_eq(REPLAY("-q", "--policy", "ahasd", "--drafter", "fixed",
	                    "--param", "nosuch=1", "--db", db, trace),
	             1);
	cr_assert_str_eq(fx_err,
	                 "ahasd-replay: unknown parameter 'nosuch': "
	                 "no selected plugin (ahasd, fixed) declares it (see "
	                 "--list)\n");

	cr_assert_eq(REPLAY("-q", "--policy", "ahasd", "--drafter", "fixed",
	                    "--param", "ahasd.nosuch=1", "--db", db, trace),
	             1);
	snprintf(want, sizeof want,
	         "ahasd-replay: %s/ahasd.so: unknown "
	         "parameter 'nosuch' for ahasd (known: edc tvc h_max pht_init "
	         "tvc_size)\n",
	         plugdir);
	cr_assert_str_eq(fx_err, want);

	cr_assert_eq(REPLAY("-q", "--policy", "ahasd", "--drafter", "fixed",
	                    "--param", "ahasd.edc=7", "--db", db, trace),
	             1);
	cr_assert_str_eq(fx_err, "ahasd-replay: ahasd: edc=7 out of range "
	                         "[0, 1]\n");

	/* a parameter of a plugin that is not selected is unknown too */
	cr_assert_eq(REPLAY("-q", "--policy", "sync", "--drafter", "fixed",
	                    "--param", "edc=0", "--db", db, trace),
	             1);
	assert_err_has("unknown parameter 'edc': no selected plugin (sync, "
	               "fixed)");
	assert_db_intact(db, 2);
}

/* A key goes to every selected plugin that declares it; it is unknown only
 * when none does, checked before any run. */
Test(cli, param_for_one_of_several_plugins)
{
	const char *trace = make_trace("t.msgpack");
	const char *db = fx_path("r.db");

	cr_assert_eq(REPLAY("-q", "--param", "ahasd.edc=0", "--db", db, trace),
	             0, "%s", fx_err);
	assert_db_intact(db, 3);
	cr_assert_str_eq(q_text(db, "SELECT policy_params FROM runs WHERE "
	                            "policy = 'ahasd'"),
	                 "edc=0;tvc=1;h_max=4.0;pht_init=2;tvc_size=4");
	cr_assert_eq(REPLAY("-q", "--param", "k=3", "--policy", "sync",
	                    "--drafter", "fixed", "--drafter", "adaedl", "--db",
	                    db, trace),
	             0, "%s", fx_err);
	assert_db_intact(db, 5);
	cr_assert_str_eq(q_text(db, "SELECT drafter_params FROM runs WHERE "
	                            "id = 4"),
	                 "k=3");
	/* a key no selected plugin declares is still refused */
	cr_assert_eq(REPLAY("-q", "--param", "ahsd.edc=0", "--db", db, trace),
	             1);
	assert_err_has("unknown parameter 'ahsd.edc'");
	assert_db_intact(db, 5);
}

Test(cli, unwritable_database)
{
	const char *trace = make_trace("t.msgpack");
	const char *file = fx_path("plainfile");
	char path[1200], want[3000];

	/* a directory that does not exist */
	snprintf(path, sizeof path, "%s/no/such/dir/r.db", fx_dir);
	cr_assert_eq(REPLAY("-q", "--db", path, trace), 1);
	snprintf(want, sizeof want,
	         "ahasd-replay: %s: cannot create "
	         "database: directory '%s/no/such/dir' does not exist\n",
	         path, fx_dir);
	cr_assert_str_eq(fx_err, want);
	cr_assert_neq(access(fx_path("no"), F_OK), 0, "created a directory");

	/* a parent that is a regular file (refused even for root) */
	fx_write_file(file, "x", 1);
	snprintf(path, sizeof path, "%s/r.db", file);
	cr_assert_eq(REPLAY("-q", "--db", path, trace), 1);
	assert_err_has(path);
	assert_err_has("Not a directory");
	cr_assert_eq(access(file, F_OK), 0);

	/* /proc takes no new files, not even from root */
	cr_assert_eq(REPLAY("-q", "--db", "/proc/ahasd-test.db", trace), 1);
	assert_err_has("ahasd-replay: /proc/ahasd-test.db: cannot create "
	               "database");
	cr_assert_str_empty(fx_out);
}

Test(cli, newer_schema_refused_unchanged)
{
	const char *trace = make_trace("t.msgpack");
	const char *db = seeded_db(trace);
	char wal[600];
	size_t n0, n1;
	struct stat st;

	db_exec(db, "PRAGMA user_version = 99");
	unsigned char *before = fx_slurp(db, &n0);
	cr_assert_eq(REPLAY("-q", "--policy", "sync", "--drafter", "fixed",
	                    "--db", db, trace),
	             1);
	snprintf(wal, sizeof wal,
	         "ahasd-replay: %s: schema version 99 is "
	         "newer than this tool's (4); upgrade ahasd-replay\n",
	         db);
	cr_assert_str_eq(fx_err, wal);
	unsigned char *after = fx_slurp(db, &n1);
	cr_assert_eq(n1, n0);
	cr_assert(!memcmp(before, after, n0), "database file changed");
	snprintf(wal, sizeof wal, "%s-wal", db);
	cr_assert(stat(wal, &st) != 0 || st.st_size == 0,
	          "a write-ahead log was written");
	free(before);
	free(after);
	/* what was there is still there */
	db_exec(db, "PRAGMA user_version = 4");
	assert_db_intact(db, 2);
}

/* Another application's SQLite files and a non-SQLite file. */
Test(cli, foreign_database_refused_unchanged)
{
	const char *trace = make_trace("t.msgpack");
	static const struct {
		const char *name, *sql, *msg;
	} cases[] = {
		{ "notes.db",
		  "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);"
		  "INSERT INTO notes (body) VALUES ('keep me');",
		  "not an ahasd-replay database (application_id 0, "
		  "user_version 0, 1 schema objects)" },
		{ "other-app.db",
		  "PRAGMA application_id = 1234; PRAGMA user_version = 3;"
		  "CREATE TABLE runs (id INTEGER PRIMARY KEY, x TEXT);"
		  "INSERT INTO runs (x) VALUES ('theirs');",
		  "not an ahasd-replay database (application_id 0x000004d2, "
		  "expected 0x41485344)" },
	};

	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		const char *db = fx_path(cases[i].name);
		sqlite3 *h = NULL;
		size_t n0, n1;

		cr_assert_eq(sqlite3_open(db, &h), SQLITE_OK);
		cr_assert_eq(sqlite3_exec(h, cases[i].sql, NULL, NULL, NULL),
		             SQLITE_OK);
		sqlite3_close(h);
		unsigned char *before = fx_slurp(db, &n0);
		cr_assert_eq(REPLAY("-q", "--policy", "sync", "--drafter",
		                    "fixed", "--db", db, trace),
		             1);
		assert_err_has(db);
		assert_err_has(cases[i].msg);
		unsigned char *after = fx_slurp(db, &n1);
		cr_assert(n0 == n1 && !memcmp(before, after, n0), "%s changed",
		          cases[i].name);
		free(before);
		free(after);
	}

	/* a text file named like a database */
	const char *txt = fx_path("notes.txt");
	fx_write_file(txt, "dear diary\n", 11);
	cr_assert_eq(REPLAY("-q", "--db", txt, trace), 1);
	assert_err_has(txt);
	size_t n;
	unsigned char *b = fx_slurp(txt, &n);
	cr_assert(n == 11 && !memcmp(b, "dear diary\n", 11));
	free(b);
}

Test(cli, locked_database)
{
	const char *trace = make_trace("t.msgpack");
	const char *db = seeded_db(trace);
	const char *env[] = { "AHASD_DB_BUSY_MS=200", NULL };
	sqlite3 *h = db_rw(db);
	struct timespec t0, t1;

	/* another writer holds the database for the whole child run */
	cr_assert_eq(sqlite3_exec(h, "BEGIN IMMEDIATE", NULL, NULL, NULL),
	             SQLITE_OK);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int rc = REPLAY_ENV(env, "-q", "--policy", "sync", "--drafter", "fixed",
	                    "--db", db, trace);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	cr_assert_eq(sqlite3_exec(h, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(h);
	cr_assert_eq(rc, 1, "%s", fx_err);
	assert_err_has(db);
	assert_err_has("database is locked by another connection (busy for "
	               "longer than the 200 ms busy timeout)");
	/* the 200 ms timeout, not the 10 s default, was used */
	double s = (double)(t1.tv_sec - t0.tv_sec) +
	           (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
	cr_assert_lt(s, 5.0, "took %.1f s", s);
	assert_db_intact(db, 2);

	/* a bad AHASD_DB_BUSY_MS is an error, not silently the default */
	const char *bad[] = { "AHASD_DB_BUSY_MS=soon", NULL };
	cr_assert_eq(REPLAY_ENV(bad, "-q", "--db", db, trace), 1);
	assert_err_has("AHASD_DB_BUSY_MS: 'soon' is not a time in "
	               "milliseconds");
	assert_db_intact(db, 2);
}

/* ---- 4. events --------------------------------------------------------- */

/* Events of a run, sorted per device by start: end >= start, and each
 * starts no earlier than the previous one on that device ended. */
static long long check_events(const char *db, long long run)
{
	sqlite3 *h = db_rw(db);
	char sql[256];
	snprintf(sql, sizeof sql,
	         "SELECT device, start_s, end_s, kind, idx "
	         "FROM events WHERE run_id = %lld ORDER BY device, start_s, "
	         "end_s",
	         run);
	sqlite3_stmt *s = prep(h, sql);
	long long n = 0, ndev = q_int(db,
	                              "SELECT count(*) FROM devices "
	                              "WHERE run_id = %lld",
	                              run);
	int prev_dev = -1;
	double prev_end = 0;

	while (sqlite3_step(s) == SQLITE_ROW) {
		int dev = sqlite3_column_int(s, 0);
		double a = sqlite3_column_double(s, 1);
		double b = sqlite3_column_double(s, 2);

		cr_assert(dev >= 0 && dev < ndev, "device %d of %lld", dev,
		          ndev);
		cr_assert_geq(a, 0.0);
		cr_assert_geq(b, a, "event %d (%s) ends before it starts",
		              sqlite3_column_int(s, 4),
		              (const char *)sqlite3_column_text(s, 3));
		if (dev == prev_dev)
			cr_assert_geq(a, prev_end,
			              "event %d (%s) on device %d "
			              "starts at %.9g before the previous ends "
			              "at %.9g",
			              sqlite3_column_int(s, 4),
			              (const char *)sqlite3_column_text(s, 3),
			              dev, a, prev_end);
		prev_dev = dev;
		prev_end = b;
		n++;
	}
	sqlite3_finalize(s);
	sqlite3_close(h);
	return n;
}

Test(cli, events_stored_and_bounded)
{
	const char *trace = make_trace("t.msgpack");
	const char *db = fx_path("r.db");

	cr_assert_eq(REPLAY("-q", "--policy", "ahasd", "--drafter", "adaedl",
	                    "--events", "--db", db, trace),
	             0, "%s", fx_err);
	long long n = check_events(db, 1);
	cr_assert_gt(n, 10);
	cr_assert_eq(metric(db, 1, "events_dropped"), 0);
	/* no event ends after the run */
	cr_assert_leq(q_double(db, "SELECT max(end_s) FROM events"),
	              metric(db, 1, "time_s"));
	/* verifications each leave one verify event */
	cr_assert_eq(q_int(db, "SELECT count(*) FROM events WHERE kind = "
	                       "'verify'"),
	             (long long)metric(db, 1, "verifications"));

	/* the same run with a bound of 10: exactly 10 stored, the message,
	 * and the rest counted (the runs are deterministic, so stored +
	 * dropped equals the unbounded run's count) */
	cr_assert_eq(REPLAY("--policy", "ahasd", "--drafter", "adaedl",
	                    "--events", "--max-events", "10", "--db", db,
	                    trace),
	             0, "%s", fx_err);
	char want[256];
	snprintf(want, sizeof want,
	         "ahasd-replay: run 2: %lld events past "
	         "the bound of 10 were not stored (metric events_dropped; "
	         "raise --max-events)\n",
	         n - 10);
	cr_assert_str_eq(fx_err, want);
	cr_assert_eq(check_events(db, 2), 10);
	cr_assert_eq(q_int(db, "SELECT max(idx) - min(idx) FROM events WHERE "
	                       "run_id = 2"),
	             9);
	cr_assert_eq(metric(db, 2, "events_dropped"), (double)(n - 10));

	/* without --events nothing is stored */
	cr_assert_eq(REPLAY("-q", "--policy", "ahasd", "--drafter", "adaedl",
	                    "--db", db, trace),
	             0, "%s", fx_err);
	cr_assert_eq(q_int(db, "SELECT count(*) FROM events WHERE run_id = 3"),
	             0);
	assert_db_intact(db, 3);
}

/* Every built-in policy stores non-overlapping events; sync uses both
 * devices, the shared-device preset serialises everything on one. */
Test(cli, events_all_policies)
{
	const char *trace = make_trace("t.msgpack");
	const char *db = fx_path("r.db");

	cr_assert_eq(REPLAY("-q", "--hw", "npu-pim", "--hw", "gpu", "--drafter",
	                    "specdecpp", "--events", "--db", db, trace),
	             0, "%s", fx_err);
	assert_db_intact(db, 6);
	for (long long r = 1; r <= 6; r++)
		cr_assert_gt(check_events(db, r), 0, "run %lld", r);
}

/* ---- 5. determinism ---------------------------------------------------- */

Test(cli, same_command_same_results)
{
	const char *trace = make_trace("t.msgpack");
	const char *db = fx_path("r.db");

	/* default policies (sync, async, ahasd) x adaedl, twice */
	for (int i = 0; i < 2; i++)
		cr_assert_eq(REPLAY("-q", "--db", db, trace), 0, "%s", fx_err);
	assert_db_intact(db, 6);
	for (long long a = 1; a <= 3; a++) {
		long long b = a + 3;
		long long na = q_int(db,
		                     "SELECT count(*) FROM metrics WHERE "
		                     "run_id = %lld",
		                     a);
		long long nb = q_int(db,
		                     "SELECT count(*) FROM metrics WHERE "
		                     "run_id = %lld",
		                     b);
		long long same = q_int(
		        db,
		        "SELECT count(*) FROM metrics x JOIN "
		        "metrics y ON x.name = y.name WHERE "
		        "x.run_id = %lld AND y.run_id = %lld AND "
		        "x.value = y.value",
		        a, b);
		cr_assert_gt(na, 20);
		cr_assert_eq(na, nb);
		cr_assert_eq(same, na, "run %lld vs %lld: %lld metrics differ",
		             a, b, na - same);
		/* per-sequence and per-device rows too */
		cr_assert_eq(
		        q_int(db,
		              "SELECT count(*) FROM (SELECT seq, "
		              "prompt_len, committed, time_s, energy_j, "
		              "drafted, accepted, wasted, preverified, "
		              "batches, verifications FROM sequences WHERE "
		              "run_id = %lld EXCEPT SELECT seq, prompt_len, "
		              "committed, time_s, energy_j, drafted, "
		              "accepted, wasted, preverified, batches, "
		              "verifications FROM sequences WHERE run_id = "
		              "%lld)",
		              a, b),
		        0);
		cr_assert_eq(
		        q_int(db,
		              "SELECT count(*) FROM (SELECT idx, name, "
		              "busy_s, idle_s, energy_j FROM devices WHERE "
		              "run_id = %lld EXCEPT SELECT idx, name, busy_s, "
		              "idle_s, energy_j FROM devices WHERE run_id = "
		              "%lld)",
		              a, b),
		        0);
		/* and the run records, apart from id, time of day and wall */
		cr_assert_eq(q_int(db,
		                   "SELECT count(*) FROM runs x JOIN runs y "
		                   "WHERE x.id = %lld AND y.id = %lld AND "
		                   "x.policy = y.policy AND x.policy_params = "
		                   "y.policy_params AND x.drafter_params = "
		                   "y.drafter_params AND x.hw_config = "
		                   "y.hw_config AND x.trace_sha256 = "
		                   "y.trace_sha256 AND x.seed = y.seed",
		                   a, b),
		             1);
	}
	/* the three policies differ from each other (the comparison above
	 * could not pass by everything being equal) */
	cr_assert_neq(metric(db, 1, "time_s"), metric(db, 2, "time_s"));
	cr_assert_neq(metric(db, 2, "time_s"), metric(db, 3, "time_s"));
}

/* ---- ahasd-hw op, and the baselines of the paper end to end ---- */

/* One line "name value" of ahasd-hw op's output. */
static double op_value(const char *name)
{
	const char *p = fx_out;
	size_t n = strlen(name);
	while ((p = strstr(p, name))) {
		if ((p == fx_out || p[-1] == '\n') && p[n] == ' ')
			return strtod(p + n, NULL);
		p += n;
	}
	cr_assert_fail("no '%s' in:\n%s", name, fx_out);
	return 0;
}

/* The numbers test_hw.c derives by hand, through the program:
 *   NPU gemm 5 x 4096 x 11008 on npu-pim: 46,331,648 B / 43.52e9 B/s +
 *     a 4.29 us drain = 1068.8959 us, memory-bound;
 *   PIM gemm 4 x 4096 x 4096 on npu-pim (16 ranks): 4 passes per output
 *     tile x 16 tiles x 8798 cycles x 1.1 / 1.5 GHz = 412.9195 us,
 *     bound by the command rate;
 *   the same with "102.4 GOPS" for the whole PIM (npu-pim-total), M = 1:
 *     16 x 32990 x 1.1 / 1.5 GHz = 387.0827 us, bound by the ALUs. */
Test(cli, hw_op_prints_one_operator)
{
	cr_assert_eq(run_prog(hw_bin,
	                      ARGS("op", "-w", "npu-pim", "--device", "npu",
	                           "gemm", "5", "4096", "11008"),
	                      NULL),
	             0, "%s", fx_err);
	cr_assert_float_eq(op_value("time_us"),
	                   46331648.0 / 43.52e9 * 1e6 + 4.290, 1e-5, "%s",
	                   fx_out);
	cr_assert_not_null(strstr(fx_out, "bound       memory"), "%s", fx_out);
	cr_assert_float_eq(op_value("bytes"), 46331648.0, 0.5);
	cr_assert_eq(run_prog(hw_bin,
	                      ARGS("op", "--hw", "npu-pim", "--device", "pim",
	                           "gemm", "4", "4096", "4096"),
	                      NULL),
	             0, "%s", fx_err);
	cr_assert_float_eq(op_value("time_us"), 4 * 16 * 8798 * 1.1 / 1.5e3,
	                   1e-5, "%s", fx_out);
	cr_assert_not_null(strstr(fx_out, "bound       command"));
	cr_assert_eq(run_prog(hw_bin,
	                      ARGS("op", "-w", "npu-pim-total", "--device",
	                           "pim", "gemm", "1", "4096", "4096"),
	                      NULL),
	             0, "%s", fx_err);
	cr_assert_float_eq(op_value("time_us"), 16 * 32990 * 1.1 / 1.5e3, 1e-5,
	                   "%s", fx_out);
	cr_assert_not_null(strstr(fx_out, "bound       compute"));
	/* bad input: exit 2 with what was expected */
	cr_assert_eq(run_prog(hw_bin,
	                      ARGS("op", "-w", "npu-pim", "--device", "tpu",
	                           "gemm", "1", "2", "3"),
	                      NULL),
	             2);
	assert_err_has("not a device of npu-pim (npu, pim)");
	cr_assert_eq(run_prog(hw_bin,
	                      ARGS("op", "-w", "npu-pim", "--device", "pim",
	                           "gemm", "1", "2"),
	                      NULL),
	             2);
	assert_err_has("gemm wants M K N");
	cr_assert_eq(run_prog(hw_bin,
	                      ARGS("op", "-w", "npu-pim", "--device", "npu",
	                           "gemm", "0", "2", "3"),
	                      NULL),
	             2);
	assert_err_has("'0' is not a dimension");
	cr_assert_eq(run_prog(hw_bin,
	                      ARGS("op", "-w", "npu-pim", "--device", "npu",
	                           "conv", "1", "2"),
	                      NULL),
	             2);
	assert_err_has("unknown KIND 'conv'");
}

/* The paper's synchronous NPU+PIM schedule on the LLaMA2 pair: the draft
 * model on the PIM, the 13B on the NPU, each waiting for the other. The
 * NPU is busy with every verification (at least 20 % of the time with
 * k = 4: a 0.31 s verification per four ~0.11 s draft steps), and the run
 * records the PIM's share of each batch's latency, which varies with the
 * KV length and with batches cut short at the end of a sequence. */
Test(cli, paper_sync_baseline_on_npu_pim)
{
	char trace[1200];
	snprintf(trace, sizeof trace,
	         "%s/traces/stories260K-skip3-greedy.msgpack", srcroot);
	const char *db = fx_path("sync.db");
	cr_assert_eq(REPLAY("-q", "--db", db, "-p", "sync", "-d", "fixed", "-P",
	                    "k=4", "-w", "npu-pim", "--models",
	                    "llama2-7b:llama2-13b", trace),
	             0, "%s", fx_err);
	const double npu = metric(db, 1, "npu.utilisation");
	cr_assert_geq(npu, 0.20, "NPU busy %g", npu);
	const double lo = metric(db, 1, "pim_share_min");
	const double mean = metric(db, 1, "pim_share_mean");
	const double hi = metric(db, 1, "pim_share_max");
	cr_assert(lo > 0 && lo < mean && mean < hi && hi < 1,
	          "PIM share min %g mean %g max %g", lo, mean, hi);
	/* the NPU's share is its utilisation: 1 - mean PIM share, up to the
	 * batch-weighted average */
	cr_assert_float_eq(npu + mean, 1.0, 0.05);
	/* the best split is a named alternative, and is faster */
	cr_assert_eq(REPLAY("-q", "--db", db, "-p", "sync", "-d", "fixed", "-P",
	                    "k=4", "-w", "npu-pim", "-P",
	                    "hw.sync_placement=best", "--models",
	                    "llama2-7b:llama2-13b", trace),
	             0, "%s", fx_err);
	cr_assert_gt(metric(db, 2, "tokens_per_s"),
	             metric(db, 1, "tokens_per_s"));
}

/* Memory capacity on the GPU (16 GB): the PaLM-like 8B + 30B pair (39 GB)
 * streams the target's overflow over PCIe on every verification and is
 * slower than the same run with capacity ignored; the OPT pair (8 GB)
 * fits and streams nothing. */
Test(cli, gpu_capacity_offload)
{
	char trace[1200];
	snprintf(trace, sizeof trace,
	         "%s/traces/aidreams260K-skip2-greedy.msgpack", srcroot);
	const char *db = fx_path("cap.db");
	cr_assert_eq(REPLAY("-q", "--db", db, "-p", "sync", "-d", "fixed", "-P",
	                    "k=4", "-w", "gpu", "--models", "palm-8b:palm-30b",
	                    trace),
	             0, "%s", fx_err);
	cr_assert_eq(REPLAY("-q", "--db", db, "-p", "sync", "-d", "fixed", "-P",
	                    "k=4", "-w", "gpu", "-P", "hw.memory_bytes=0",
	                    "--models", "palm-8b:palm-30b", trace),
	             0, "%s", fx_err);
	cr_assert_eq(REPLAY("-q", "--db", db, "-p", "sync", "-d", "fixed", "-P",
	                    "k=4", "-w", "gpu", "--models", "opt-1.3b:opt-6.7b",
	                    trace),
	             0, "%s", fx_err);
	cr_assert_gt(metric(db, 1, "offload_bytes_per_token"), 1e9);
	cr_assert_eq(metric(db, 2, "offload_bytes"), 0);
	cr_assert_lt(metric(db, 1, "tokens_per_s"),
	             metric(db, 2, "tokens_per_s") / 2);
	cr_assert_eq(metric(db, 3, "offload_bytes"), 0);
	/* a hard error instead, when asked */
	cr_assert_eq(REPLAY("-q", "--no-db", "-p", "sync", "-w", "gpu", "-P",
	                    "hw.capacity_policy=error", "--models",
	                    "palm-8b:palm-30b", trace),
	             1);
	assert_err_has("memory_bytes");
}

/* A trace held in memory (the default for files up to 1 GiB) and one read
 * again by every run (AHASD_TRACE_MEM_MAX=0) are the same stream: every
 * run of a sweep gives the same numbers either way, and the sequences'
 * rows match. */
Test(cli, trace_in_memory_and_streamed_agree)
{
	const char *trace = make_trace("t.msgpack");
	const char *mem = fx_path("mem.db");
	cr_assert_eq(REPLAY("-q", "-p", "sync", "-p", "ahasd", "-d", "adaedl",
	                    "--db", mem, trace),
	             0, "%s", fx_err);
	const char *str = fx_path("stream.db");
	const char *env[] = { "AHASD_TRACE_MEM_MAX=0", NULL };
	cr_assert_eq(REPLAY_ENV(env, "-q", "-p", "sync", "-p", "ahasd", "-d",
	                        "adaedl", "--db", str, trace),
	             0, "%s", fx_err);
	static const char *const names[] = { "committed", "time_s",
		                             "energy_j",  "drafted",
		                             "wasted",    "preverified" };
	for (long long run = 1; run <= 2; run++)
		for (size_t i = 0; i < sizeof names / sizeof *names; i++)
			cr_expect_eq(metric(mem, run, names[i]),
			             metric(str, run, names[i]), "run %lld %s",
			             run, names[i]);
	cr_expect_gt(metric(mem, 2, "drafted"), 0);
	cr_expect_eq(q_int(mem, "SELECT count(*) FROM sequences"),
	             2 * TRACE_SEQS);
	cr_expect_eq(q_int(str, "SELECT count(*) FROM sequences"),
	             2 * TRACE_SEQS);
}

/* Typos and contradictions fail before the first run, with the likely
 * meaning: each case lists a second, valid choice first, so a check made
 * run by run would have stored that run before failing. */
struct typo_case {
	const char *what;
	const char *args[8];
	int status;
	const char *says;
};

static const struct typo_case typo_cases[] = {
	{ "policy",
	  { "-p", "sync", "-p", "ahsad" },
	  1,
	  "did you mean 'ahasd'?" },
	{ "drafter",
	  { "-p", "sync", "-d", "fixed", "-d", "adaedll" },
	  1,
	  "did you mean 'adaedl'?" },
	{ "preset",
	  { "-p", "sync", "-w", "npu-pim", "-w", "npu_pim" },
	  1,
	  "preset 'npu_pim' not found (did you mean 'npu-pim'?)" },
	{ "hardware key",
	  { "-p", "sync", "-P", "hw.pim.mem_bww=1e9" },
	  1,
	  "unknown device key 'mem_bww' (did you mean 'mem_bw'?)" },
	{ "model preset",
	  { "-p", "sync", "--models", "llama2-7b:llama2-13B" },
	  1,
	  "model preset 'llama2-13B' not found (did you mean 'llama2-13b'?)" },
	{ "option",
	  { "-p", "sync", "--polcy", "async" },
	  2,
	  "did you mean --policy?" },
	{ "repeated key",
	  { "-p", "sync", "-d", "fixed", "-P", "k=4", "-P", "k=5" },
	  2,
	  "--param k given twice (4 and 5)" },
	{ "bad value",
	  { "-p", "sync", "-d", "adaedl", "-d", "fixed", "-P", "fixed.k=abc" },
	  1,
	  "k=abc is not an unsigned integer" },
};

/* Criterion passes parameters to a fresh process (another address
 * space), so they are indices into the table, not pointers. */
ParameterizedTestParameters(cli, typo_fails_before_any_run)
{
	static size_t idx[sizeof typo_cases / sizeof *typo_cases];
	for (size_t i = 0; i < sizeof idx / sizeof *idx; i++)
		idx[i] = i;
	return cr_make_param_array(size_t, idx, sizeof idx / sizeof *idx);
}

ParameterizedTest(size_t *ci, cli, typo_fails_before_any_run, .init = setup,
                  .fini = fx_tmpdir_remove)
{
	const struct typo_case *tc = &typo_cases[*ci];
	const char *trace = make_trace("t.msgpack");
	const char *db = fx_path("r.db");
	const char *argv[16];
	size_t n = 0;
	argv[n++] = "-q";
	argv[n++] = "--db";
	argv[n++] = db;
	for (size_t i = 0; i < 8 && tc->args[i]; i++)
		argv[n++] = tc->args[i];
	argv[n++] = trace;
	argv[n] = NULL;
	cr_assert_eq(run_prog(replay_bin, argv, NULL), tc->status, "%s: %s",
	             tc->what, fx_err);
	cr_expect_not_null(strstr(fx_err, tc->says), "%s: stderr is\n%s",
	                   tc->what, fx_err);
	/* no run stored: either no database at all, or an empty one */
	if (access(db, F_OK) == 0)
		cr_expect_eq(q_int(db, "SELECT count(*) FROM runs"), 0, "%s",
		             tc->what);
}

/* A choice that cannot matter runs, and says so. */
Test(cli, no_effect_is_warned)
{
	const char *trace = make_trace("t.msgpack");
	cr_assert_eq(REPLAY("-q", "--no-db", "-p", "async", "-w", "gpu", "-P",
	                    "hw.aau=1", trace),
	             0, "%s", fx_err);
	assert_err_has("warning: gpu has no PIM, so hw.aau has no effect");
	assert_err_has("gpu has one device, so policy async runs every task "
	               "on it in turn and cannot differ from sync");
}
