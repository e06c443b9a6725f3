/* test_isolation.c - a plugin that crashes, aborts, hangs or returns
 * values outside the contract fails its own run, and the sweep goes on
 * (issue 15, defect 6 and item 3; the sweep half of item 2).
 *
 * Every test runs the real ahasd-replay (or ahasd-repro) from the build
 * tree as a child, in its own process group under a watchdog that kills
 * the group after a bound, on a small synthetic trace, with the
 * misbehaving plugins of tests/faulty_plugin.c built as real shared
 * objects (tests/meson.build):
 *   crasher   policy, segfaults in the 3rd after_batch
 *   hanger    policy, loops for ever in the 3rd on_verify
 *   faulty    policy, fault chosen with -P faulty.fault=... (none)
 *   faultyd   drafter, fault chosen with -P faultyd.fault=... (none)
 *   crashd    drafter, segfaults in the 3rd draft_token
 * It then reads the database back with the plain sqlite3 API: the good
 * runs complete, one failures row per failed run naming the plugin, the
 * hook and the signal, and the exit status 1.
 *
 * Under AddressSanitizer the children get handle_segv=0, so that a
 * segfault ends the process as it does in a plain build. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

static char tdir[256], build[1024];
static char out_text[1 << 16], err_text[1 << 16];

static int rm_entry(const char *p, const struct stat *st, int flag,
                    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static void setup(void)
{
	const char *b = getenv("AHASD_BUILD_ROOT");
	cr_assert_not_null(b, "AHASD_BUILD_ROOT must be set (meson test)");
	snprintf(build, sizeof build, "%s", b);
	strcpy(tdir, "/tmp/ahasd-test-iso-XXXXXX");
	cr_assert_not_null(mkdtemp(tdir));
	/* a segfault in a child must end it with SIGSEGV, sanitizers or not */
	const char *a = getenv("ASAN_OPTIONS");
	char asan[1024];
	snprintf(asan, sizeof asan, "%s%shandle_segv=0:handle_sigbus=0",
	         a ? a : "", a && *a ? ":" : "");
	setenv("ASAN_OPTIONS", asan, 1);
}

static void teardown(void)
{
	if (tdir[0])
		nftw(tdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(isolation, .init = setup, .fini = teardown, .timeout = 240);

static const char *tpath(const char *name)
{
	static char bufs[8][600];
	static unsigned i;
	char *b = bufs[i++ % 8];
	snprintf(b, 600, "%s/%s", tdir, name);
	return b;
}

/* A test plugin of the build tree, by file name. */
static const char *plugin(const char *name)
{
	static char bufs[4][1200];
	static unsigned i;
	char *b = bufs[i++ % 4];
	snprintf(b, 1200, "%s/tests/%s.so", build, name);
	return b;
}

static void read_text(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f, "%s", path);
	size_t n = fread(buf, 1, cap - 1, f);
	buf[n] = '\0';
	fclose(f);
}

static double since(const struct timespec *t0)
{
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) +
	       (double)(t1.tv_nsec - t0->tv_nsec) * 1e-9;
}

static double last_wall;

/* Run the program of the build tree prog (tools/NAME) with args in the
 * temporary folder, its own process group, stdout and stderr in
 * out_text and err_text. After limit_s seconds the whole group is
 * killed and the test fails. @return the exit status, or 128 + the
 * signal that ended it. */
static int run_prog(const char *prog, double limit_s, const char *const *args)
{
	char bin[1200], opath[600], epath[600];
	const char *argv[64];
	int n = 0, status;

	snprintf(bin, sizeof bin, "%s/tools/%s", build, prog);
	snprintf(opath, sizeof opath, "%s/.stdout", tdir);
	snprintf(epath, sizeof epath, "%s/.stderr", tdir);
	argv[n++] = bin;
	while (*args && n < 63)
		argv[n++] = *args++;
	argv[n] = NULL;
	fflush(NULL);
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int o = open(opath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int e = open(epath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0 ||
		    chdir(tdir) < 0 || setpgid(0, 0) < 0)
			_exit(127);
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	setpgid(pid, pid); /* either side may get there first */
	for (;;) {
		pid_t w = waitpid(pid, &status, WNOHANG);
		cr_assert_geq(w, 0);
		if (w == pid)
			break;
		if (since(&t0) > limit_s) {
			kill(-pid, SIGKILL);
			waitpid(pid, &status, 0);
			read_text(epath, err_text, sizeof err_text);
			cr_assert_fail("%s still ran after %.0f s (killed): a "
			               "plugin holds the sweep\n%s",
			               prog, limit_s, err_text);
		}
		const struct timespec nap = { 0, 20 * 1000 * 1000 };
		nanosleep(&nap, NULL);
	}
	last_wall = since(&t0);
	/* workers of the run must not outlive it */
	kill(-pid, SIGKILL);
	read_text(opath, out_text, sizeof out_text);
	read_text(epath, err_text, sizeof err_text);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

#define ARGS(...)          ((const char *const[]){ __VA_ARGS__, NULL })
#define REPLAY(limit, ...) run_prog("ahasd-replay", limit, ARGS(__VA_ARGS__))

#define assert_err_has(s)                                                     \
	cr_assert_not_null(strstr(err_text, (s)), "stderr lacks \"%s\":\n%s", \
	                   (s), err_text)

/* A synthetic trace of 4 sequences x 64 tokens. */
static const char *make_trace(void)
{
	const char *p = tpath("t.msgpack");
	cr_assert_eq(run_prog("ahasd-trace", 60,
	                      ARGS("synth", "-o", p, "--sequences", "4",
	                           "--tokens", "64")),
	             0, "%s", err_text);
	return p;
}

/* ---- the database -------------------------------------------------- */

static long long q_int(const char *db, const char *fmt, ...)
{
	char sql[2048];
	va_list ap;
	sqlite3 *h = NULL;
	sqlite3_stmt *s = NULL;

	va_start(ap, fmt);
	vsnprintf(sql, sizeof sql, fmt, ap);
	va_end(ap);
	cr_assert_eq(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL),
	             SQLITE_OK, "%s", db);
	cr_assert_eq(sqlite3_prepare_v2(h, sql, -1, &s, NULL), SQLITE_OK,
	             "%s: %s", sql, sqlite3_errmsg(h));
	cr_assert_eq(sqlite3_step(s), SQLITE_ROW, "no row: %s", sql);
	long long v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(h);
	return v;
}

/* The failures row of a plugin (the only one): its hook, signal and
 * message into the buffers. */
struct failure_row {
	char policy[256], drafter[256], plugin[256], hook[64], trace[600];
	char message[1024];
	long long signal, run_id;
	int signal_null;
};

static void failure_of(const char *db, const char *plugin_name,
                       struct failure_row *f)
{
	sqlite3 *h = NULL;
	sqlite3_stmt *s = NULL;
	memset(f, 0, sizeof *f);
	cr_assert_eq(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL),
	             SQLITE_OK, "%s", db);
	cr_assert_eq(
	        sqlite3_prepare_v2(
	                h,
	                "SELECT coalesce(policy, ''), coalesce(drafter, ''), "
	                "coalesce(plugin, ''), coalesce(hook, ''), signal, "
	                "message, coalesce(trace_path, ''), coalesce(run_id, "
	                "0) "
	                "FROM failures WHERE plugin = ?1",
	                -1, &s, NULL),
	        SQLITE_OK, "%s", sqlite3_errmsg(h));
	sqlite3_bind_text(s, 1, plugin_name, -1, SQLITE_STATIC);
	cr_assert_eq(sqlite3_step(s), SQLITE_ROW, "no failures row for %s",
	             plugin_name);
	snprintf(f->policy, sizeof f->policy, "%s", sqlite3_column_text(s, 0));
	snprintf(f->drafter, sizeof f->drafter, "%s",
	         sqlite3_column_text(s, 1));
	snprintf(f->plugin, sizeof f->plugin, "%s", sqlite3_column_text(s, 2));
	snprintf(f->hook, sizeof f->hook, "%s", sqlite3_column_text(s, 3));
	f->signal_null = sqlite3_column_type(s, 4) == SQLITE_NULL;
	f->signal = sqlite3_column_int64(s, 4);
	snprintf(f->message, sizeof f->message, "%s",
	         sqlite3_column_text(s, 5));
	snprintf(f->trace, sizeof f->trace, "%s", sqlite3_column_text(s, 6));
	f->run_id = sqlite3_column_int64(s, 7);
	cr_assert_eq(sqlite3_step(s), SQLITE_DONE, "two failures rows for %s",
	             plugin_name);
	sqlite3_finalize(s);
	sqlite3_close(h);
}

/* n complete runs: each with its 4 sequences and its metrics. */
static void assert_runs(const char *db, long long n)
{
	cr_assert_eq(q_int(db, "SELECT count(*) FROM runs"), n,
	             "runs stored:\n%s", err_text);
	cr_assert_eq(q_int(db,
	                   "SELECT count(*) FROM runs r WHERE (SELECT "
	                   "count(*) FROM sequences s WHERE s.run_id = r.id) "
	                   "!= 4"),
	             0, "a run lacks sequence rows");
	cr_assert_eq(q_int(db, "SELECT count(*) FROM runs r WHERE (SELECT "
	                       "value FROM metrics m WHERE m.run_id = r.id AND "
	                       "m.name = 'committed') IS NOT 256"),
	             0);
}

/* ---- a crash, an abort, an exit ------------------------------------ */

/* defect 6: a segfault in a hook killed the whole invocation, and the
 * runs after it never happened */
Test(isolation, a_segfault_fails_its_run_and_the_sweep_goes_on)
{
	const char *trace = make_trace(), *db = tpath("r.db");
	int rc = REPLAY(120, "--db", db, "-p", "sync", "-p", plugin("crasher"),
	                "-p", "async", "-d", "fixed", trace);
	cr_assert_eq(rc, 1, "exit %d (128 + signal when killed):\n%s", rc,
	             err_text);
	assert_runs(db, 2);
	cr_assert_eq(q_int(db, "SELECT count(*) FROM runs WHERE policy IN "
	                       "('sync', 'async')"),
	             2);
	struct failure_row f;
	failure_of(db, "crasher", &f);
	cr_assert_str_eq(f.hook, "after_batch");
	cr_assert_eq(f.signal, SIGSEGV);
	cr_assert_str_eq(f.drafter, "fixed");
	cr_assert_not_null(strstr(f.policy, "crasher.so"), "%s", f.policy);
	cr_assert_not_null(strstr(f.trace, "t.msgpack"), "%s", f.trace);
	cr_assert_gt(f.run_id, 0, "the run's id is recorded");
	cr_assert_eq(q_int(db, "SELECT count(*) FROM runs WHERE id = %lld",
	                   f.run_id),
	             0);
	/* the message names the plugin, the hook and the signal */
	assert_err_has("crasher");
	assert_err_has("after_batch");
	assert_err_has("signal 11");
	assert_err_has("1 of 3 runs failed");
	/* the good runs' lines, in order */
	const char *a = strstr(out_text, "sync/fixed");
	const char *b = strstr(out_text, "async/fixed");
	cr_assert(a && b && a < b, "%s", out_text);
}

Test(isolation, an_abort_fails_its_run)
{
	const char *trace = make_trace(), *db = tpath("r.db");
	int rc = REPLAY(120, "--db", db, "-p", "sync", "-d", "fixed", "-d",
	                plugin("faulty_drafter"), "-d", "adaedl", "-P",
	                "faultyd.fault=abort", "-P", "faultyd.hook=draft_token",
	                "-P", "faultyd.after=10", trace);
	cr_assert_eq(rc, 1, "exit %d:\n%s", rc, err_text);
	assert_runs(db, 2);
	struct failure_row f;
	failure_of(db, "faultyd", &f);
	cr_assert_str_eq(f.hook, "draft_token");
	cr_assert_eq(f.signal, SIGABRT);
	cr_assert_str_eq(f.policy, "sync");
	assert_err_has("signal 6");
}

Test(isolation, an_exit_in_a_hook_fails_its_run)
{
	const char *trace = make_trace(), *db = tpath("r.db");
	int rc = REPLAY(120, "--db", db, "-p", plugin("faulty_policy"), "-p",
	                "sync", "-d", "fixed", "-P", "faulty.fault=exit", "-P",
	                "faulty.hook=on_verify", trace);
	cr_assert_eq(rc, 1, "exit %d:\n%s", rc, err_text);
	assert_runs(db, 1);
	struct failure_row f;
	failure_of(db, "faulty", &f);
	cr_assert_str_eq(f.hook, "on_verify");
	cr_assert(f.signal_null, "no signal ended it");
	cr_assert_not_null(strstr(f.message, "status 3"), "%s", f.message);
}

/* Every hook is named: a segfault in each fails the run with that hook
 * (destroy and counter too: a run whose plugin dies there is not stored). */
static const struct hook_case {
	const char *plugin, *name, *hook;
} hook_cases[] = {
	{ "faulty_policy", "faulty", "exec_mode" },
	{ "faulty_policy", "faulty", "begin_sequence" },
	{ "faulty_policy", "faulty", "after_batch" },
	{ "faulty_policy", "faulty", "on_verify" },
	{ "faulty_policy", "faulty", "on_draft_step" },
	{ "faulty_policy", "faulty", "counter" },
	{ "faulty_policy", "faulty", "destroy" },
	{ "faulty_drafter", "faultyd", "begin_sequence" },
	{ "faulty_drafter", "faultyd", "begin_batch" },
	{ "faulty_drafter", "faultyd", "draft_token" },
	{ "faulty_drafter", "faultyd", "batch_result" },
	{ "faulty_drafter", "faultyd", "counter" },
	{ "faulty_drafter", "faultyd", "destroy" },
};
#define N_HOOKS (sizeof hook_cases / sizeof *hook_cases)

ParameterizedTestParameters(isolation, every_hook_is_named)
{
	static int idx[N_HOOKS];
	for (size_t i = 0; i < N_HOOKS; i++)
		idx[i] = (int)i;
	return cr_make_param_array(int, idx, N_HOOKS);
}

ParameterizedTest(int *i, isolation, every_hook_is_named)
{
	const struct hook_case *c = &hook_cases[*i];
	const char *trace = make_trace(), *db = tpath("r.db");
	const int policy = !strcmp(c->plugin, "faulty_policy");
	char fault[64], hook[64];
	snprintf(fault, sizeof fault, "%s.fault=segv", c->name);
	snprintf(hook, sizeof hook, "%s.hook=%s", c->name, c->hook);
	int rc = REPLAY(120, "--db", db, "-p",
	                policy ? plugin(c->plugin) : "async", "-d",
	                policy ? "fixed" : plugin(c->plugin), "-P", fault, "-P",
	                hook, "-P",
	                policy ? "faulty.after=1" : "faultyd.after=1", trace);
	cr_assert_eq(rc, 1, "%s: exit %d:\n%s", c->hook, rc, err_text);
	assert_runs(db, 0);
	struct failure_row f;
	failure_of(db, c->name, &f);
	cr_assert_str_eq(f.hook, c->hook);
	cr_assert_eq(f.signal, SIGSEGV, "%s", c->hook);
}

/* A trace that cannot be read fails its runs; the next trace runs. */
Test(isolation, a_bad_trace_fails_its_runs_and_the_next_trace_runs)
{
	const char *trace = make_trace(), *db = tpath("r.db");
	const char *bad = tpath("bad.msgpack");
	FILE *f = fopen(bad, "wb");
	cr_assert_not_null(f);
	fputs("not a trace", f);
	fclose(f);
	int rc = REPLAY(120, "--db", db, "-p", "sync", "-p", "async", "-d",
	                "fixed", bad, trace);
	cr_assert_eq(rc, 1, "exit %d:\n%s", rc, err_text);
	assert_runs(db, 2);
	cr_assert_eq(q_int(db,
	                   "SELECT count(*) FROM failures WHERE "
	                   "trace_path LIKE '%%bad.msgpack' AND plugin IS NULL "
	                   "AND policy IN ('sync', 'async')"),
	             2);
	assert_err_has("2 of 4 runs failed");
}

/* ---- a hang ---------------------------------------------------------- */

/* defect 6: an endless loop hung the sweep for ever */
Test(isolation, a_hang_is_killed_at_the_run_timeout)
{
	const char *trace = make_trace(), *db = tpath("r.db");
	int rc = REPLAY(60, "--db", db, "--run-timeout", "2", "-p",
	                plugin("hanger"), "-p", "sync", "-d", "fixed", trace);
	cr_assert_eq(rc, 1, "exit %d:\n%s", rc, err_text);
	cr_assert_lt(last_wall, 30.0, "took %.1f s", last_wall);
	cr_assert_geq(last_wall, 2.0, "took %.1f s", last_wall);
	assert_runs(db, 1);
	struct failure_row f;
	failure_of(db, "hanger", &f);
	cr_assert_str_eq(f.hook, "on_verify");
	cr_assert_eq(f.signal, SIGKILL);
	cr_assert_not_null(strstr(f.message, "2 s"), "%s", f.message);
	assert_err_has("timed out");
}

/* When no worker can even start (here: a time-out of 0.1 ms, shorter than
 * a fork and a database open), no run is lost without a trace: the runs
 * the pool did hand out fail with their time-out, every later run of the
 * sweep (the second trace's too) with the pool's message, and all
 * 2 policies x 2 traces = 4 are in the failures table and the count. */
Test(isolation, no_worker_no_run_unrecorded)
{
	const char *trace = make_trace(), *db = tpath("nw.db");
	int rc = REPLAY(60, "--db", db, "--run-timeout", "0.0001", "-p", "sync",
	                "-p", "ahasd", "-d", "fixed", trace, trace);
	cr_assert_eq(rc, 1, "exit %d:\n%s", rc, err_text);
	assert_runs(db, 0);
	cr_assert_eq(q_int(db, "SELECT count(*) FROM failures"), 4, "%s",
	             err_text);
	assert_err_has("4 of 4 runs failed");
}

Test(isolation, run_timeout_is_checked)
{
	const char *trace = make_trace();
	cr_assert_eq(REPLAY(60, "--no-db", "--run-timeout", "soon", trace), 2);
	assert_err_has("--run-timeout");
	cr_assert_eq(REPLAY(60, "--no-db", "--run-timeout", "-1", trace), 2);
	/* 0: no bound */
	cr_assert_eq(REPLAY(60, "--no-db", "--run-timeout", "0", "-p", "sync",
	                    "-d", "fixed", trace),
	             0, "%s", err_text);
}

/* ---- values outside the contract ------------------------------------- */

/* defect 6: out-of-range decisions were accepted and the run stored as
 * valid. Params are indices into this table (Criterion copies them into
 * a fresh process). */
static const struct bad_case {
	const char *what;
	const char *fault, *value, *hook;
	const char *expect[3]; /* pieces of the message */
} bad_cases[] = {
	{ "next 7",
	  "next",
	  "7",
	  "after_batch",
	  { "next = 7", "0 (draft), 1 (wait) or 2 (pre-verify)", "faulty" } },
	{ "pre-verify count 0",
	  "count",
	  "0",
	  "after_batch",
	  { "count = 0", "[1, 32]", "faulty" } },
	{ "pre-verify count 100000",
	  "count",
	  "100000",
	  "after_batch",
	  { "count = 100000", "[1, 32]", "faulty" } },
	{ "exec mode 7",
	  "mode",
	  "7",
	  "exec_mode",
	  { "= 7", "0 (operator-level sync) or 1 (task-level async)",
	    "faulty" } },
	{ "NaN counter",
	  "nan",
	  "0",
	  "counter",
	  { "batches = nan", "a finite number", "faulty" } },
	{ "infinite counter",
	  "inf",
	  "0",
	  "counter",
	  { "batches = inf", "a finite number", "faulty" } },
};
#define N_BAD (sizeof bad_cases / sizeof *bad_cases)

ParameterizedTestParameters(isolation, bad_values_fail_the_run)
{
	static int idx[N_BAD];
	for (size_t i = 0; i < N_BAD; i++)
		idx[i] = (int)i;
	return cr_make_param_array(int, idx, N_BAD);
}

ParameterizedTest(int *i, isolation, bad_values_fail_the_run)
{
	const struct bad_case *c = &bad_cases[*i];
	const char *trace = make_trace(), *db = tpath("r.db");
	char fault[64], value[64];
	snprintf(fault, sizeof fault, "faulty.fault=%s", c->fault);
	snprintf(value, sizeof value, "faulty.value=%s", c->value);
	int rc = REPLAY(120, "--db", db, "-p", plugin("faulty_policy"), "-d",
	                "fixed", "-P", fault, "-P", value, trace);
	cr_assert_eq(rc, 1, "%s: exit %d:\n%s", c->what, rc, err_text);
	assert_runs(db, 0);
	struct failure_row f;
	failure_of(db, "faulty", &f);
	cr_assert_str_eq(f.hook, c->hook, "%s", c->what);
	cr_assert(f.signal_null, "%s: no signal", c->what);
	for (size_t k = 0; k < 3; k++) {
		cr_assert_not_null(strstr(f.message, c->expect[k]),
		                   "%s: the message lacks \"%s\": %s", c->what,
		                   c->expect[k], f.message);
		assert_err_has(c->expect[k]);
	}
	cr_assert_not_null(strstr(f.message, c->hook), "%s: %s", c->what,
	                   f.message);
}

/* ---- issue 15, done-criterion ----------------------------------------- */

/* One crashing and one hanging plugin in a sweep: the good runs finish,
 * both failures are recorded with plugin and hook, the exit status is
 * non-zero and the count is printed. */
Test(isolation, sweep_with_a_crash_and_a_hang)
{
	const char *trace = make_trace(), *db = tpath("sweep.db");
	int rc = REPLAY(90, "--db", db, "--run-timeout", "2", "-p", "sync",
	                "-p", plugin("crasher"), "-p", plugin("hanger"), "-p",
	                "ahasd", "-d", "adaedl", "-d", "fixed", trace);
	cr_assert_eq(rc, 1, "exit %d:\n%s", rc, err_text);
	assert_runs(db, 4);
	cr_assert_eq(q_int(db, "SELECT count(*) FROM runs WHERE policy IN "
	                       "('sync', 'ahasd')"),
	             4);
	cr_assert_eq(q_int(db, "SELECT count(*) FROM failures"), 4);
	cr_assert_eq(q_int(db,
	                   "SELECT count(*) FROM failures WHERE plugin = "
	                   "'crasher' AND hook = 'after_batch' AND signal = "
	                   "11"),
	             2);
	cr_assert_eq(q_int(db,
	                   "SELECT count(*) FROM failures WHERE plugin = "
	                   "'hanger' AND hook = 'on_verify' AND signal = 9"),
	             2);
	cr_assert_eq(q_int(db, "SELECT count(DISTINCT drafter) FROM failures"),
	             2);
	assert_err_has("4 of 8 runs failed");
	/* 4 run lines and the table of the good runs */
	size_t lines = !strncmp(out_text, "run ", 4);
	for (const char *p = out_text; (p = strstr(p, "\nrun ")); p++)
		lines++;
	cr_assert_eq(lines, 4, "%s", out_text);
}

/* A -P list sweep: each point is a run of its own, so the point whose
 * value makes the plugin crash fails alone, and its failures row carries
 * the -P values of that point (and only the keys that reach its plugins:
 * fixed.k reaches fixed, faulty.* reaches faulty; sync's runs take
 * neither faulty key). 2 fault values x 2 k for faulty, 2 k for sync: 6
 * runs, the 2 with fault=segv fail. */
Test(isolation, a_swept_value_fails_its_point_alone)
{
	const char *trace = make_trace(), *db = tpath("points.db");
	int rc = REPLAY(90, "--db", db, "-p", plugin("faulty_policy"), "-p",
	                "sync", "-d", "fixed", "-P", "faulty.fault=none,segv",
	                "-P", "faulty.hook=after_batch", "-P", "fixed.k=2,3",
	                trace);
	cr_assert_eq(rc, 1, "exit %d:\n%s", rc, err_text);
	assert_runs(db, 4);
	assert_err_has("2 of 6 runs failed");
	cr_assert_eq(q_int(db,
	                   "SELECT count(*) FROM failures WHERE plugin = "
	                   "'faulty' AND hook = 'after_batch' AND signal = 11"),
	             2);
	cr_assert_eq(q_int(db,
	                   "SELECT count(*) FROM failures WHERE config "
	                   "LIKE '%%faulty.fault=segv faulty.hook=after_batch "
	                   "fixed.k=2' OR config LIKE '%%faulty.fault=segv "
	                   "faulty.hook=after_batch fixed.k=3'"),
	             2);
	/* the good points of faulty are paired with sync at the same k */
	cr_assert_eq(q_int(db, "SELECT count(*) FROM speedup_vs_sync WHERE "
	                       "speedup IS NOT NULL AND policy <> 'sync'"),
	             2);
}

/* The reproduction's grid goes on past a failed run too, and records it. */
Test(isolation, repro_grid_goes_on)
{
	const char *trace = make_trace(), *db = tpath("repro.db");
	int rc = run_prog("ahasd-repro", 180,
	                  ARGS("-q", "--db", db, "--family", "paper", "--pair",
	                       "opt-1.3b:opt-6.7b", "-d", "fixed", "-d",
	                       plugin("crash_drafter"), trace));
	cr_assert_eq(rc, 1, "exit %d:\n%s", rc, err_text);
	long long good = q_int(db, "SELECT count(*) FROM runs");
	long long bad = q_int(db, "SELECT count(*) FROM failures");
	cr_assert_gt(good, 0);
	cr_assert_gt(bad, 0);
	cr_assert_eq(q_int(db, "SELECT count(*) FROM failures WHERE plugin = "
	                       "'crashd' AND hook = 'draft_token' AND signal = "
	                       "11"),
	             bad);
	cr_assert_eq(q_int(db, "SELECT count(*) FROM runs WHERE drafter = "
	                       "'crashd'"),
	             0);
	char want[64];
	snprintf(want, sizeof want, "%lld of %lld runs failed", bad,
	         good + bad);
	assert_err_has(want);
}
