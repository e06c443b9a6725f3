/* test_parallel.c - studies beyond one process (issue 16, items 1-3):
 * -j N runs a sweep in N worker processes with nothing lost and the same
 * results as -j 1; --shard i/N runs a deterministic slice, and
 * `ahasd-db merge` of the shards' databases gives the results of the
 * unsharded sweep; the Slurm job-array script's logic, run here with the
 * array index set by hand; ahasd-view over several databases; the
 * progress line only on a terminal.
 *
 * Results are compared through a digest of each database: one text line
 * per stored row (runs, metrics, devices, sequences, events, config,
 * intervals, paired intervals, failures), each keyed by its run's
 * configuration (run_match: match_key/policy_key) instead of its run id,
 * and without created and wall_s; the lines sorted. Two databases hold
 * the same results when their digests are equal. */
#include "prog_util.h"

#include <signal.h>

/* prog_setup, and a segfault in a child ends it with SIGSEGV, sanitizers
 * or not (as in test_isolation.c) */
static void setup(void)
{
	prog_setup();
	const char *a = getenv("ASAN_OPTIONS");
	char asan[1024];
	snprintf(asan, sizeof asan, "%s%shandle_segv=0:handle_sigbus=0",
	         a ? a : "", a && *a ? ":" : "");
	setenv("ASAN_OPTIONS", asan, 1);
}

TestSuite(parallel, .init = setup, .fini = prog_teardown, .timeout = 280);

/* ---- the digest -------------------------------------------------------- */

#define KEY                                                        \
	"(SELECT match_key || '/' || policy_key FROM run_match m " \
	"WHERE m.run_id = %s)"

static const char *const digest_sql[] = {
	"SELECT " KEY " || ' run ' || json_array(label, tool_version, policy, "
	"policy_version, policy_params, policy_path, drafter, "
	"drafter_version, drafter_params, drafter_path, hw_preset, "
	"hw_config, trace_path, trace_sha256, draft_model, target_model, "
	"retargeted_from, sampled, seed, queue_capacity, max_draft) "
	"FROM runs r",
	"SELECT " KEY " || ' metric ' || name || '=' || printf('%%.17g', "
	"value) FROM metrics x",
	"SELECT " KEY " || ' device ' || printf('%%d %%s %%.17g %%.17g "
	"%%.17g', idx, name, busy_s, idle_s, energy_j) FROM devices x",
	"SELECT " KEY " || ' seq ' || printf('%%d %%d %%d %%.17g %%.17g %%d "
	"%%d %%d %%d %%d %%d %%s', seq, prompt_len, committed, time_s, "
	"energy_j, drafted, accepted, wasted, preverified, batches, "
	"verifications, quote(batch_tokens)) FROM sequences x",
	"SELECT " KEY " || ' event ' || printf('%%d %%d %%s %%.17g %%.17g "
	"%%d %%d %%d %%s', idx, device, kind, start_s, end_s, tokens, seq, "
	"batch, outcome) FROM events x",
	"SELECT " KEY " || ' config ' || key || '=' || quote(value) "
	"FROM config x",
	"SELECT " KEY " || ' interval ' || name || printf(' %%.17g %%.17g', "
	"lo, hi) FROM intervals x",
	"SELECT " KEY " || ' paired ' || (SELECT match_key || '/' || "
	"policy_key FROM run_match m WHERE m.run_id = x.baseline_run_id) || "
	"' ' || name || printf(' %%.17g %%.17g %%.17g', ratio, lo, hi) "
	"FROM paired_intervals x",
	"SELECT 'failure ' || json_array(label, trace_path, hw_preset, "
	"policy, drafter, config, plugin, hook, signal, message) FROM "
	"failures",
	"SELECT 'baseline ' || policy FROM baselines",
};

static int cmp_line(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every line of the digest of db, sorted, joined by newlines (malloc'd). */
static char *digest(const char *db)
{
	sqlite3 *h = prog_db(db);
	char **lines = NULL;
	size_t n = 0, cap = 0, total = 1;

	for (size_t q = 0; q < sizeof digest_sql / sizeof *digest_sql; q++) {
		char sql[2048];
		const char *runcol = q == 0 ? "r.id" : "x.run_id";
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
		snprintf(sql, sizeof sql, digest_sql[q], runcol);
#pragma GCC diagnostic pop
		sqlite3_stmt *s = prog_prep(h, sql);
		int rc;
		while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
			const char *t = (const char *)sqlite3_column_text(s, 0);
			cr_assert_not_null(t,
			                   "%s: a row without its run's "
			                   "configuration key",
			                   sql);
			if (n == cap) {
				cap = cap ? 2 * cap : 1024;
				lines = realloc(lines, cap * sizeof *lines);
				cr_assert_not_null(lines);
			}
			lines[n] = strdup(t);
			total += strlen(t) + 1;
			n++;
		}
		cr_assert_eq(rc, SQLITE_DONE, "%s", sqlite3_errmsg(h));
		sqlite3_finalize(s);
	}
	sqlite3_close(h);
	qsort(lines, n, sizeof *lines, cmp_line);
	char *out = malloc(total), *p = out;
	cr_assert_not_null(out);
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(lines[i]);
		memcpy(p, lines[i], l);
		p[l] = '\n';
		p += l + 1;
		free(lines[i]);
	}
	*p = '\0';
	free(lines);
	return out;
}

/* The two databases hold the same results (the first line that differs
 * otherwise). */
static void assert_same_results(const char *a, const char *b)
{
	char *da = digest(a), *db = digest(b);
	if (strcmp(da, db)) {
		size_t i = 0, line = 1, start = 0;
		while (da[i] && da[i] == db[i]) {
			if (da[i] == '\n') {
				line++;
				start = i + 1;
			}
			i++;
		}
		cr_assert_fail("%s and %s differ at digest line %zu:\n  %.300s"
		               "\n  %.300s",
		               a, b, line, da + start, db + start);
	}
	free(da);
	free(db);
}

/* ---- fixtures -------------------------------------------------------- */

static const char *plugin(const char *name)
{
	static char bufs[4][1200];
	static unsigned i;
	char *b = bufs[i++ % 4];
	snprintf(b, 1200, "%s/tests/%s.so", prog_build, name);
	return b;
}

/* A synthetic trace of 4 sequences x 64 tokens. */
static const char *make_trace(const char *name)
{
	const char *p = prog_path(name);
	cr_assert_eq(prog_run("tools/ahasd-trace",
	                      PROG_ARGS("synth", "-o", p, "--sequences", "4",
	                                "--tokens", "64")),
	             0, "%s", prog_err);
	return p;
}

/* ---- item 1: -j ------------------------------------------------------- */

/* A sweep of 40 configurations, 16 of whose runs crash (segfault) or
 * abort in a plugin, at -j 1 and at -j 4: every good run stored once,
 * every failure recorded once, the same results in both databases, and
 * the same lines on stdout but for run ids and wall times. */
#define SWEEP(db, j)                                                        \
	REPLAY("--db", db, "-j", j, "-p", "sync", "-p", plugin("crasher"),  \
	       "-p", "async", "-p", "ahasd", "-p", plugin("faulty_policy"), \
	       "-d", "fixed", "-d", "adaedl", "-P", "fixed.k=2,4,6", "-P",  \
	       "faulty.fault=abort", "-P", "faulty.hook=on_verify", "-P",   \
	       "hw.aau=0,1", trace)

/* stdout without what may differ between runs: run ids, wall times and
 * the line naming the database */
static void normalise(const char *in, char *out, size_t cap)
{
	size_t o = 0;
	for (const char *p = in; *p && o + 1 < cap; p++) {
		if ((p == in || p[-1] == '\n') && !strncmp(p, "results: ", 9)) {
			p += strcspn(p, "\n");
			if (!*p)
				break;
			continue;
		}
		if (!strncmp(p, "run ", 4) && p[4] >= '0' && p[4] <= '9') {
			p += 4;
			while (*p >= '0' && *p <= '9')
				p++;
			out[o++] = 'R';
		}
		if (*p == '[' && strstr(p, " s wall]") &&
		    strchr(p, ']') == strstr(p, " s wall]") + 7) {
			p = strchr(p, ']');
			out[o++] = 'W';
			continue;
		}
		out[o++] = *p;
	}
	out[o] = '\0';
}

Test(parallel, j4_loses_nothing_and_matches_j1)
{
	const char *trace = make_trace("t.msgpack");
	const char *a = prog_path("j1.db"), *b = prog_path("j4.db");
	static char out1[1 << 17], out4[1 << 17];

	cr_assert_eq(SWEEP(a, "1"), 1, "%s", prog_err);
	normalise(prog_out, out1, sizeof out1);
	cr_assert_eq(SWEEP(b, "4"), 1, "%s", prog_err);
	normalise(prog_out, out4, sizeof out4);
	assert_err_has("16 of 40 runs failed");
	for (int k = 0; k < 2; k++) {
		const char *db = k ? b : a;
		/* sync, async, ahasd: 3 x (3 fixed.k + adaedl) x 2 hw.aau */
		cr_assert_eq(prog_q_int(db, "SELECT count(*) FROM runs"), 24);
		cr_assert_eq(prog_q_int(db,
		                        "SELECT count(DISTINCT match_key || "
		                        "policy_key) FROM run_match"),
		             24);
		cr_assert_eq(prog_q_int(db, "SELECT count(*) FROM runs r WHERE "
		                            "(SELECT count(*) FROM sequences s "
		                            "WHERE s.run_id "
		                            "= r.id) != 4"),
		             0);
		cr_assert_eq(prog_q_int(db, "SELECT count(*) FROM failures"),
		             16);
		cr_assert_eq(prog_q_int(db, "SELECT count(DISTINCT config || "
		                            "policy || drafter) FROM failures"),
		             16);
		cr_assert_eq(prog_q_int(db,
		                        "SELECT count(*) FROM failures WHERE "
		                        "plugin = 'crasher' AND hook = "
		                        "'after_batch' AND "
		                        "signal = %d",
		                        SIGSEGV),
		             8);
		cr_assert_eq(
		        prog_q_int(
		                db,
		                "SELECT count(*) FROM failures WHERE "
		                "plugin = 'faulty' AND hook = 'on_verify' AND "
		                "signal = %d",
		                SIGABRT),
		        8);
		/* a failed run's id is never a stored run's */
		cr_assert_eq(prog_q_int(db, "SELECT count(*) FROM failures f "
		                            "JOIN runs r ON r.id = f.run_id"),
		             0);
		/* every run compared with its sync run, paired */
		cr_assert_eq(
		        prog_q_int(db,
		                   "SELECT count(*) FROM "
		                   "speedup_vs_sync WHERE speedup_lo IS NULL"),
		        0);
	}
	assert_same_results(a, b);
	cr_assert_str_eq(out1, out4, "stdout differs between -j 1 and -j 4");
}

/* A hang among parallel runs is killed at its time-out; the others go
 * on and the sweep ends well before the hangs would. */
Test(parallel, j2_with_hangs_times_out_each)
{
	const char *trace = make_trace("t.msgpack"), *db = prog_path("h.db");
	cr_assert_eq(REPLAY("--db", db, "-j", "2", "--run-timeout", "2", "-p",
	                    plugin("hanger"), "-p", "sync", "-d", "fixed", "-P",
	                    "fixed.k=2,3,4", trace),
	             1, "%s", prog_err);
	cr_assert_eq(prog_q_int(db, "SELECT count(*) FROM runs"), 3);
	cr_assert_eq(prog_q_int(db,
	                        "SELECT count(*) FROM failures WHERE "
	                        "plugin = 'hanger' AND hook = 'on_verify' AND "
	                        "signal = %d AND message LIKE '%%timed out%%'",
	                        SIGKILL),
	             3);
	assert_err_has("3 of 6 runs failed");
}

Test(parallel, jobs_is_checked)
{
	const char *trace = make_trace("t.msgpack");
	cr_assert_eq(REPLAY("--no-db", "-j", "many", trace), 2);
	assert_err_has("--jobs");
	cr_assert_eq(REPLAY("--no-db", "-j", "-1", trace), 2);
	cr_assert_eq(REPLAY("--no-db", "-j", "2000", trace), 2);
	/* 0: one per online CPU */
	cr_assert_eq(REPLAY("--no-db", "-j", "0", "-p", "sync", "-d", "fixed",
	                    trace),
	             0, "%s", prog_err);
}

/* ahasd-repro -j 3 stores what -j 1 does, a crashing drafter included. */
Test(parallel, repro_j3_matches_j1)
{
	const char *trace = make_trace("t.msgpack");
	const char *a = prog_path("r1.db"), *b = prog_path("r3.db");
	for (int k = 0; k < 2; k++) {
		const char *db = k ? b : a;
		cr_assert_eq(
		        prog_run("tools/ahasd-repro",
		                 PROG_ARGS("-q", "--db", db, "-j",
		                           k ? "3" : "1", "--family", "paper",
		                           "--pair", "opt-1.3b:opt-6.7b", "-d",
		                           "fixed", "-d",
		                           plugin("crash_drafter"), trace)),
		        1, "%s", prog_err);
		cr_assert_gt(prog_q_int(db, "SELECT count(*) FROM runs"), 5);
		cr_assert_gt(prog_q_int(db, "SELECT count(*) FROM failures"),
		             0);
		cr_assert_eq(prog_q_int(db,
		                        "SELECT count(*) FROM failures WHERE "
		                        "plugin IS NOT 'crashd'"),
		             0);
	}
	assert_same_results(a, b);
}

/* ---- item 2: --shard and ahasd-db merge ------------------------------- */

#define MERGE(...) prog_run("tools/ahasd-db", PROG_ARGS("merge", __VA_ARGS__))

/* The sweep of the shard tests: 24 runs, 8 of which crash; the trace
 * and any more options last. */
#define SHARD_SWEEP(db, ...)                                                  \
	REPLAY("--db", db, "-q", "-p", "sync", "-p", plugin("crasher"), "-p", \
	       "ahasd", "-d", "fixed", "-d", "adaedl", "-P", "fixed.k=2,4,6", \
	       "-P", "hw.aau=0,1", __VA_ARGS__)

Test(parallel, shards_merged_equal_the_whole_sweep)
{
	const char *trace = make_trace("t.msgpack");
	const char *all = prog_path("all.db"), *m = prog_path("merged.db");
	const char *sh[3] = { prog_path("s1.db"), prog_path("s2.db"),
		              prog_path("s3.db") };
	long long runs = 0, fails = 0;

	cr_assert_eq(SHARD_SWEEP(all, trace), 1, "%s", prog_err);
	for (int i = 0; i < 3; i++) {
		char spec[16];
		snprintf(spec, sizeof spec, "%d/3", i + 1);
		/* with -j 2 too: shards and workers go together */
		cr_assert_eq(
		        SHARD_SWEEP(sh[i], "--shard", spec, "-j", "2", trace),
		        1, "%s", prog_err);
		const long long r = prog_q_int(sh[i], "SELECT count(*) FROM "
		                                      "runs");
		const long long f = prog_q_int(sh[i], "SELECT count(*) FROM "
		                                      "failures");
		/* 24 runs: 8 each */
		cr_assert_eq(r + f, 8, "shard %d: %lld", i + 1, r + f);
		runs += r;
		fails += f;
	}
	cr_assert_eq(runs, prog_q_int(all, "SELECT count(*) FROM runs"));
	cr_assert_eq(fails, prog_q_int(all, "SELECT count(*) FROM failures"));
	cr_assert_eq(MERGE(m, sh[0], sh[1], sh[2]), 0, "%s", prog_err);
	assert_out_has("s1.db: ");
	/* one id each, after each other, none lost or shared */
	cr_assert_eq(prog_q_int(m, "SELECT count(DISTINCT id) FROM runs"),
	             runs);
	cr_assert_eq(prog_q_int(m, "SELECT last FROM run_ids"),
	             prog_q_int(m, "SELECT count(*) FROM runs") +
	                     prog_q_int(m,
	                                "SELECT count(*) FROM failures WHERE "
	                                "run_id IS NOT NULL"));
	cr_assert_eq(prog_q_int(m, "SELECT count(*) FROM failures f JOIN "
	                           "runs r ON r.id = f.run_id"),
	             0);
	/* provenance kept */
	cr_assert_eq(prog_q_int(m,
	                        "SELECT count(*) FROM runs WHERE "
	                        "trace_sha256 = (SELECT trace_sha256 FROM runs "
	                        "LIMIT 1) AND tool_version <> '' AND created "
	                        "<> ''"),
	             runs);
	/* the same results as the unsharded sweep: every row, pairs of a
	 * run and its sync run from two shards included */
	assert_same_results(all, m);
	/* the comparisons view sees them */
	cr_assert_eq(prog_q_int(m, "SELECT count(*) FROM speedup_vs_sync "
	                           "WHERE speedup_lo IS NULL"),
	             0);
	/* and run_table has the swept keys as columns */
	cr_assert_eq(prog_q_int(m, "SELECT count(*) FROM run_table WHERE "
	                           "\"hw.aau\" IS NOT NULL"),
	             runs);
}

Test(parallel, shard_is_checked)
{
	const char *trace = make_trace("t.msgpack");
	static const char *const bad[] = { "0/3",  "4/3",  "3",    "a/b", "1/0",
		                           "-1/3", "1/3x", "2/-3", "" };
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		cr_assert_eq(REPLAY("--no-db", "--shard", bad[i], trace), 2,
		             "--shard '%s' accepted", bad[i]);
		assert_err_has("expected I/N");
		cr_assert_eq(prog_run("tools/ahasd-repro",
		                      PROG_ARGS("--no-db", "--shard", bad[i],
		                                trace)),
		             2, "%s", bad[i]);
		assert_err_has("expected I/N");
	}
	/* 1/1 is the whole sweep */
	cr_assert_eq(REPLAY("--no-db", "-q", "--shard", "1/1", "-p", "sync",
	                    "-d", "fixed", trace),
	             0, "%s", prog_err);
	/* more shards than runs: the empty ones run nothing, and say so */
	cr_assert_eq(REPLAY("--no-db", "--shard", "3/3", "-p", "sync", "-d",
	                    "fixed", "-P", "fixed.k=2,4", trace),
	             0, "%s", prog_err);
	assert_err_has("shard 3/3: 0 of the sweep's 2 runs");
	/* ahasd-repro's shards store runs only */
	cr_assert_eq(
	        prog_run("tools/ahasd-repro",
	                 PROG_ARGS("--shard", "1/2", "--what-it-takes", trace)),
	        2);
	assert_err_has("--what-it-takes");
	cr_assert_eq(prog_run("tools/ahasd-repro",
	                      PROG_ARGS("--shard", "1/2", "-o", "x.md", trace)),
	             2);
}

/* Set a header field of a copy of a database. */
static const char *copy_with(const char *src, const char *name,
                             const char *pragma)
{
	const char *dst = prog_path(name);
	sqlite3 *h = NULL;
	char sql[256];
	cr_assert_eq(sqlite3_open(src, &h), SQLITE_OK);
	snprintf(sql, sizeof sql, "VACUUM INTO '%s'", dst);
	cr_assert_eq(sqlite3_exec(h, sql, NULL, NULL, NULL), SQLITE_OK, "%s",
	             sqlite3_errmsg(h));
	sqlite3_close(h);
	cr_assert_eq(sqlite3_open(dst, &h), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(h, pragma, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(h);
	return dst;
}

Test(parallel, merge_refuses_what_it_cannot_merge)
{
	const char *trace = make_trace("t.msgpack");
	const char *a = prog_path("a.db"), *m = prog_path("m.db");
	cr_assert_eq(REPLAY("--db", a, "-q", "-p", "sync", "-p", "ahasd", "-d",
	                    "fixed", trace),
	             0, "%s", prog_err);
	cr_assert_eq(MERGE(m, a), 0, "%s", prog_err);
	cr_assert_eq(prog_q_int(m, "SELECT count(*) FROM runs"), 2);
	/* the same input again: refused, nothing copied */
	cr_assert_eq(MERGE(m, a), 1);
	assert_err_has("merged before");
	cr_assert_eq(prog_q_int(m, "SELECT count(*) FROM runs"), 2);
	/* twice in one call, and the output itself */
	const char *m2 = prog_path("m2.db");
	cr_assert_eq(MERGE(m2, a, a), 1);
	assert_err_has("given twice");
	cr_assert_eq(prog_q_int(m2, "SELECT count(*) FROM runs"), 2);
	cr_assert_eq(MERGE(m, m), 1);
	assert_err_has("the output itself");
	/* another schema version, newer or older; another application */
	const char *newer = copy_with(a, "newer.db",
	                              "PRAGMA user_version = 99");
	const char *older = copy_with(a, "older.db", "PRAGMA user_version = 2");
	const char *other = copy_with(a, "other.db",
	                              "PRAGMA application_id = 7");
	const char *m3 = prog_path("m3.db");
	cr_assert_eq(MERGE(m3, newer), 1);
	assert_err_has("schema version 99 is newer");
	cr_assert_eq(MERGE(m3, older), 1);
	assert_err_has("schema version 2 is older");
	cr_assert_eq(MERGE(m3, other), 1);
	assert_err_has("not an ahasd-replay database");
	cr_assert_eq(prog_q_int(m3, "SELECT count(*) FROM runs"), 0);
	/* one bad input does not stop the others */
	cr_assert_eq(MERGE(m3, other, a), 1);
	assert_err_has("1 of 2 inputs merged");
	cr_assert_eq(prog_q_int(m3, "SELECT count(*) FROM runs"), 2);
	/* usage */
	cr_assert_eq(MERGE(m3), 2);
	assert_err_has("at least one input");
}

/* ahasd-repro's study as 3 shards, merged, equals it unsharded. */
Test(parallel, repro_shards_merged_equal_the_whole_study)
{
	const char *trace = make_trace("t.msgpack");
	const char *all = prog_path("all.db"), *m = prog_path("m.db");
	const char *sh[3] = { prog_path("s1.db"), prog_path("s2.db"),
		              prog_path("s3.db") };
#define STUDY(db, ...)                                                      \
	prog_run("tools/ahasd-repro",                                       \
	         PROG_ARGS("-q", "--db", db, "--family", "paper", "--pair", \
	                   "opt-1.3b:opt-6.7b", "-d", "fixed", "--sweep",   \
	                   "tvc-size=2,8", __VA_ARGS__))
	cr_assert_eq(STUDY(all, trace), 0, "%s", prog_err);
	for (int i = 0; i < 3; i++) {
		char spec[16];
		snprintf(spec, sizeof spec, "%d/3", i + 1);
		cr_assert_eq(STUDY(sh[i], "--shard", spec, trace), 0, "%s",
		             prog_err);
	}
	cr_assert_eq(MERGE(m, sh[0], sh[1], sh[2]), 0, "%s", prog_err);
	assert_same_results(all, m);
#undef STUDY
}

/* ---- the Slurm job-array script, its logic run here ----------------- */

/* A program of the build tree, by its path there. */
static const char *prog_build_path(const char *rel)
{
	static char buf[1200];
	snprintf(buf, sizeof buf, "%s/%s", prog_build, rel);
	return buf;
}

/* Task id of an array 0..n-1 (SLURM_ARRAY_TASK_MIN 0), by hand. */
static int slurm_task(const char *outdir, int id, int n, const char *trace)
{
	char ids[16], count[16];
	snprintf(ids, sizeof ids, "%d", id);
	snprintf(count, sizeof count, "%d", n);
	setenv("SLURM_ARRAY_TASK_ID", ids, 1);
	setenv("SLURM_ARRAY_TASK_COUNT", count, 1);
	setenv("SLURM_ARRAY_TASK_MIN", "0", 1);
	setenv("SLURM_CPUS_PER_TASK", "2", 1);
	return prog_run("bash",
	                PROG_ARGS(prog_src_path("tools/slurm/"
	                                        "ahasd-sweep.sbatch"),
	                          "run", outdir,
	                          prog_build_path("tools/ahasd-replay"), "-p",
	                          "sync", "-p", plugin("crasher"), "-p",
	                          "ahasd", "-d", "fixed", "-d", "adaedl", "-P",
	                          "fixed.k=2,4,6", "-P", "hw.aau=0,1", trace));
}

Test(parallel, slurm_script_runs_shards_and_merges)
{
	const char *trace = make_trace("t.msgpack");
	const char *all = prog_path("all.db"), *out = prog_path("out");
	char ahasd_db[1200], merged[700];

	snprintf(ahasd_db, sizeof ahasd_db, "%s/tools/ahasd-db", prog_build);
	setenv("AHASD_DB", ahasd_db, 1);
	snprintf(merged, sizeof merged, "%s/merged.db", out);
	cr_assert_eq(SHARD_SWEEP(all, trace), 1, "%s", prog_err);
	/* two of three tasks: the merge waits for the third */
	for (int id = 0; id < 2; id++)
		cr_assert_eq(slurm_task(out, id, 3, trace), 1, "%s", prog_err);
	const char *script = prog_src_path("tools/slurm/ahasd-sweep.sbatch");
	cr_assert_eq(prog_run("bash", PROG_ARGS(script, "merge", out)), 1);
	assert_err_has("not done: 3 (did not finish)");
	cr_assert_eq(slurm_task(out, 2, 3, trace), 1, "%s", prog_err);
	assert_err_has("shard 3/3");
	cr_assert_eq(prog_run("bash", PROG_ARGS(script, "merge", out)), 0, "%s",
	             prog_err);
	assert_err_has("shards 1 2 3 of 3 exited 1");
	assert_same_results(all, merged);
	/* what the script sets is not given to it; outside an array it
	 * refuses */
	cr_assert_eq(
	        prog_run("bash", PROG_ARGS(script, "run", out, "ahasd-replay",
	                                   "--db", "x.db", trace)),
	        2);
	assert_err_has("--db is set by this script");
	unsetenv("SLURM_ARRAY_TASK_ID");
	cr_assert_eq(prog_run("bash", PROG_ARGS(script, "run", out,
	                                        "ahasd-replay", trace)),
	             2);
	assert_err_has("not a task of a job array");
}

/* ---- ahasd-view over several databases ------------------------------ */

Test(parallel, view_reads_several_databases_as_one)
{
	const char *trace = make_trace("t.msgpack");
	const char *sh[3] = { prog_path("s1.db"), prog_path("s2.db"),
		              prog_path("s3.db") };
	const char *m = prog_path("m.db");
	static char h1[1 << 20], h2[1 << 20];
	const char *tmp = prog_path("tmp");

	cr_assert_eq(mkdir(tmp, 0755), 0);
	setenv("TMPDIR", tmp, 1);

	for (int i = 0; i < 3; i++) {
		char spec[16];
		snprintf(spec, sizeof spec, "%d/3", i + 1);
		cr_assert_eq(SHARD_SWEEP(sh[i], "--shard", spec, trace), 1,
		             "%s", prog_err);
	}
	cr_assert_eq(
	        prog_run("viewer/ahasd-view",
	                 PROG_ARGS(sh[0], sh[1], sh[2], "-o", "three.html")),
	        0, "%s", prog_err);
	assert_err_has("s2.db: ");
	assert_err_has("16 runs -> three.html");
	/* the same report as from the databases merged by ahasd-db, but for
	 * the names in the title */
	cr_assert_eq(MERGE(m, sh[0], sh[1], sh[2]), 0, "%s", prog_err);
	cr_assert_eq(
	        prog_run("viewer/ahasd-view", PROG_ARGS(m, "-o", "one.html")),
	        0, "%s", prog_err);
	prog_read_text(prog_path("three.html"), h1, sizeof h1);
	prog_read_text(prog_path("one.html"), h2, sizeof h2);
	cr_assert_not_null(strstr(h1, "s1.db + s2.db + s3.db"));
	char *p;
	while ((p = strstr(h1, "s1.db + s2.db + s3.db")))
		memmove(p + 4, p + 21, strlen(p + 21) + 1),
		        memcpy(p, "m.db", 4);
	cr_assert_str_eq(h1, h2);
	/* a run picked by its id in the merged view, as listed */
	char id[32];
	snprintf(id, sizeof id, "%lld",
	         prog_q_int(m, "SELECT max(id) FROM "
	                       "runs"));
	cr_assert_eq(prog_run("viewer/ahasd-view",
	                      PROG_ARGS(sh[0], sh[1], sh[2], "--run", id, "-o",
	                                "r.html")),
	             0, "%s", prog_err);
	assert_err_has("1 run -> r.html");
	assert_err_has("s3.db: ");
	assert_err_has(id);
	/* the same database twice, or a missing one */
	cr_assert_eq(prog_run("viewer/ahasd-view",
	                      PROG_ARGS(sh[0], sh[0], "-o", "x.html")),
	             1);
	assert_err_has("given twice");
	cr_assert_eq(prog_run("viewer/ahasd-view",
	                      PROG_ARGS(sh[0], "nope.db", "-o", "x.html")),
	             1);
	assert_err_has("nope.db");
	/* the temporary databases are gone */
	cr_assert_eq(prog_run("sh", PROG_ARGS("-c", "ls -A \"$TMPDIR\"")), 0);
	cr_assert_str_eq(prog_out, "", "left in TMPDIR: %s", prog_out);
}

/* ---- item 3: the progress line --------------------------------------- */

#include "../tools/progress.c"

Test(parallel, progress_line_reads_well)
{
	struct progress p;
	char line[256];
	progress_start(&p, "ahasd-replay", "runs", 48, 1);
	cr_assert_eq(p.on, 0, "quiet: off");
	p.done = 12;
	p.failed = 2;
	progress_format(&p, p.t0 + 10, line, sizeof line);
	cr_assert_str_eq(line, "ahasd-replay: 12/48 runs, 2 failed, 10 s, "
	                       "ETA 30 s");
	p.done = 1;
	p.failed = 0;
	progress_format(&p, p.t0 + 100, line, sizeof line);
	cr_assert_str_eq(line, "ahasd-replay: 1/48 runs, 1 min 40 s, ETA "
	                       "1 h 18 min");
	p.done = 48;
	progress_format(&p, p.t0 + 3, line, sizeof line);
	cr_assert_str_eq(line, "ahasd-replay: 48/48 runs, 3 s");
	p.done = 0;
	progress_format(&p, p.t0, line, sizeof line);
	cr_assert_str_eq(line, "ahasd-replay: 0/48 runs, 0 s");
	/* nothing to draw, nothing drawn; NULL is allowed */
	progress_step(&p, 1, 0);
	progress_step(NULL, 1, 0);
	progress_clear(NULL);
	progress_end(&p);
}

/* Run a program of the build tree with stderr on a terminal (a pty) and
 * stdout in prog_out; what it wrote to the terminal in tty_text. */
static char tty_text[1 << 17];

static int prog_run_tty(const char *rel, const char *const *args)
{
	char bin[1200], opath[600];
	const char *argv[96];
	int n = 0, status;

	snprintf(bin, sizeof bin, "%s/%s", prog_build, rel);
	snprintf(opath, sizeof opath, "%s/.stdout", prog_dir);
	argv[n++] = bin;
	while (args && *args && n < 95)
		argv[n++] = *args++;
	argv[n] = NULL;
	const int master = posix_openpt(O_RDWR | O_NOCTTY);
	cr_assert_geq(master, 0);
	cr_assert_eq(grantpt(master), 0);
	cr_assert_eq(unlockpt(master), 0);
	const char *slave = ptsname(master);
	cr_assert_not_null(slave);
	fflush(NULL);
	const pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		const int o = open(opath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		const int e = open(slave, O_RDWR | O_NOCTTY);
		if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0 ||
		    chdir(prog_dir) < 0)
			_exit(127);
		close(master);
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	size_t len = 0;
	for (;;) {
		const ssize_t k = read(master, tty_text + len,
		                       sizeof tty_text - 1 - len);
		if (k <= 0)
			break; /* EIO: the last holder of the slave is gone */
		len += (size_t)k;
	}
	tty_text[len] = '\0';
	close(master);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	prog_read_text(opath, prog_out, sizeof prog_out);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* "\rPROG: " and a digit: a progress line drawn */
static int has_progress(const char *text, const char *prog)
{
	char pat[64];
	snprintf(pat, sizeof pat, "\r%s: ", prog);
	for (const char *p = text; (p = strstr(p, pat)); p++)
		if (p[strlen(pat)] >= '0' && p[strlen(pat)] <= '9')
			return 1;
	return 0;
}

Test(parallel, progress_only_on_a_terminal)
{
	const char *trace = make_trace("t.msgpack");
	const char *a = prog_path("a.db"), *b = prog_path("b.db");

	/* a terminal: the line, with failures and an ETA, erased at the end */
	cr_assert_eq(
	        prog_run_tty("tools/ahasd-replay",
	                     PROG_ARGS("--db", a, "-j", "2", "-p", "sync", "-p",
	                               plugin("crasher"), "-d", "fixed", "-P",
	                               "fixed.k=1:12:1", trace)),
	        1, "%s", tty_text);
	cr_assert(has_progress(tty_text, "ahasd-replay"), "%s", tty_text);
	cr_assert_not_null(strstr(tty_text, "/24 runs"), "%s", tty_text);
	cr_assert_not_null(strstr(tty_text, " failed, "), "%s", tty_text);
	cr_assert_not_null(strstr(tty_text, ", ETA "), "%s", tty_text);
	cr_assert_not_null(strstr(tty_text, "\033[K"));
	/* the run lines are on stdout, whole */
	cr_assert_null(strstr(prog_out, "\033"));
	/* -q on a terminal: none */
	cr_assert_eq(
	        prog_run_tty("tools/ahasd-replay",
	                     PROG_ARGS("--db", b, "-q", "-p", "sync", "-d",
	                               "fixed", "-P", "fixed.k=1:4:1", trace)),
	        0, "%s", tty_text);
	cr_assert_null(strstr(tty_text, "\033[K"), "%s", tty_text);
	/* not a terminal: none */
	cr_assert_eq(REPLAY("--db", b, "-p", "sync", "-d", "fixed", "-P",
	                    "fixed.k=5:8:1", trace),
	             0, "%s", prog_err);
	cr_assert_null(strstr(prog_err, "\033[K"), "%s", prog_err);
	cr_assert_null(strstr(prog_err, "\r"), "%s", prog_err);
	/* ahasd-db merge and ahasd-repro draw it too */
	cr_assert_eq(prog_run_tty("tools/ahasd-db",
	                          PROG_ARGS("merge", prog_path("m.db"), a, b)),
	             0, "%s", tty_text);
	cr_assert(has_progress(tty_text, "ahasd-db merge"), "%s", tty_text);
	cr_assert_not_null(strstr(tty_text, "/20 runs"), "%s", tty_text);
	cr_assert_eq(
	        prog_run_tty("tools/ahasd-db",
	                     PROG_ARGS("merge", "-q", prog_path("m2.db"), a)),
	        0, "%s", tty_text);
	cr_assert_null(strstr(tty_text, "\033[K"), "%s", tty_text);
	cr_assert_eq(
	        prog_run_tty("tools/ahasd-repro",
	                     PROG_ARGS("--db", prog_path("r.db"), "--family",
	                               "paper", "--pair", "opt-1.3b:opt-6.7b",
	                               "-d", "fixed", trace)),
	        0, "%s", tty_text);
	cr_assert(has_progress(tty_text, "ahasd-repro"), "%s", tty_text);
	cr_assert_eq(prog_run_tty("tools/ahasd-repro",
	                          PROG_ARGS("-q", "--db", prog_path("r2.db"),
	                                    "--family", "paper", "--pair",
	                                    "opt-1.3b:opt-6.7b", "-d", "fixed",
	                                    trace)),
	             0, "%s", tty_text);
	cr_assert_null(strstr(tty_text, "\033[K"), "%s", tty_text);
}
