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

TestSuite(parallel, .init = prog_setup, .fini = prog_teardown,
          .timeout = 280);

/* ---- the digest -------------------------------------------------------- */

#define KEY "(SELECT match_key || '/' || policy_key FROM run_match m " \
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
			cr_assert_not_null(t, "%s: a row without its run's "
			                   "configuration key", sql);
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
		               "\n  %.300s", a, b, line, da + start,
		               db + start);
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
	cr_assert_eq(prog_run("tools/ahasd-trace", PROG_ARGS("synth", "-o", p,
	             "--sequences", "4", "--tokens", "64")), 0, "%s",
	             prog_err);
	return p;
}

/* ---- item 1: -j ------------------------------------------------------- */

/* A sweep of 40 configurations, 16 of whose runs crash (segfault) or
 * abort in a plugin, at -j 1 and at -j 4: every good run stored once,
 * every failure recorded once, the same results in both databases, and
 * the same lines on stdout but for run ids and wall times. */
#define SWEEP(db, j) \
	REPLAY("--db", db, "-j", j, "-p", "sync", "-p", plugin("crasher"), \
	       "-p", "async", "-p", "ahasd", "-p", plugin("faulty_policy"), \
	       "-d", "fixed", "-d", "adaedl", "-P", "fixed.k=2,4,6", \
	       "-P", "faulty.fault=abort", "-P", "faulty.hook=on_verify", \
	       "-P", "hw.aau=0,1", trace)

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
		cr_assert_eq(prog_q_int(db, "SELECT count(DISTINCT match_key || "
		                        "policy_key) FROM run_match"), 24);
		cr_assert_eq(prog_q_int(db, "SELECT count(*) FROM runs r WHERE "
		             "(SELECT count(*) FROM sequences s WHERE s.run_id "
		             "= r.id) != 4"), 0);
		cr_assert_eq(prog_q_int(db, "SELECT count(*) FROM failures"), 16);
		cr_assert_eq(prog_q_int(db, "SELECT count(DISTINCT config || "
		             "policy || drafter) FROM failures"), 16);
		cr_assert_eq(prog_q_int(db, "SELECT count(*) FROM failures WHERE "
		             "plugin = 'crasher' AND hook = 'after_batch' AND "
		             "signal = %d", SIGSEGV), 8);
		cr_assert_eq(prog_q_int(db, "SELECT count(*) FROM failures WHERE "
		             "plugin = 'faulty' AND hook = 'on_verify' AND "
		             "signal = %d", SIGABRT), 8);
		/* a failed run's id is never a stored run's */
		cr_assert_eq(prog_q_int(db, "SELECT count(*) FROM failures f "
		             "JOIN runs r ON r.id = f.run_id"), 0);
		/* every run compared with its sync run, paired */
		cr_assert_eq(prog_q_int(db, "SELECT count(*) FROM "
		             "speedup_vs_sync WHERE speedup_lo IS NULL"), 0);
	}
	assert_same_results(a, b);
	cr_assert_str_eq(out1, out4, "stdout differs between -j 1 and -j 4");
}

/* A hang among parallel runs is killed at its time-out; the others go
 * on and the sweep ends well before the hangs would. */
Test(parallel, j2_with_hangs_times_out_each)
{
	const char *trace = make_trace("t.msgpack"), *db = prog_path("h.db");
	cr_assert_eq(REPLAY("--db", db, "-j", "2", "--run-timeout", "2",
	                    "-p", plugin("hanger"), "-p", "sync", "-d",
	                    "fixed", "-P", "fixed.k=2,3,4", trace), 1, "%s",
	             prog_err);
	cr_assert_eq(prog_q_int(db, "SELECT count(*) FROM runs"), 3);
	cr_assert_eq(prog_q_int(db, "SELECT count(*) FROM failures WHERE "
	                        "plugin = 'hanger' AND hook = 'on_verify' AND "
	                        "signal = %d AND message LIKE '%%timed out%%'",
	                        SIGKILL), 3);
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
	                    trace), 0, "%s", prog_err);
}

/* ahasd-repro -j 3 stores what -j 1 does, a crashing drafter included. */
Test(parallel, repro_j3_matches_j1)
{
	const char *trace = make_trace("t.msgpack");
	const char *a = prog_path("r1.db"), *b = prog_path("r3.db");
	for (int k = 0; k < 2; k++) {
		const char *db = k ? b : a;
		cr_assert_eq(prog_run("tools/ahasd-repro", PROG_ARGS("-q",
		             "--db", db, "-j", k ? "3" : "1", "--family",
		             "paper", "--pair", "opt-1.3b:opt-6.7b", "-d",
		             "fixed", "-d", plugin("crash_drafter"), trace)), 1,
		             "%s", prog_err);
		cr_assert_gt(prog_q_int(db, "SELECT count(*) FROM runs"), 5);
		cr_assert_gt(prog_q_int(db, "SELECT count(*) FROM failures"), 0);
		cr_assert_eq(prog_q_int(db, "SELECT count(*) FROM failures WHERE "
		             "plugin IS NOT 'crashd'"), 0);
	}
	assert_same_results(a, b);
}

/* ---- item 2: --shard and ahasd-db merge ------------------------------- */

#define MERGE(...) prog_run("tools/ahasd-db", PROG_ARGS("merge", __VA_ARGS__))

/* The sweep of the shard tests: 24 runs, 8 of which crash; the trace
 * and any more options last. */
#define SHARD_SWEEP(db, ...) \
	REPLAY("--db", db, "-q", "-p", "sync", "-p", plugin("crasher"), \
	       "-p", "ahasd", "-d", "fixed", "-d", "adaedl", \
	       "-P", "fixed.k=2,4,6", "-P", "hw.aau=0,1", __VA_ARGS__)

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
		cr_assert_eq(SHARD_SWEEP(sh[i], "--shard", spec, "-j", "2",
		                         trace), 1, "%s", prog_err);
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
	cr_assert_eq(prog_q_int(m, "SELECT count(DISTINCT id) FROM runs"), runs);
	cr_assert_eq(prog_q_int(m, "SELECT last FROM run_ids"),
	             prog_q_int(m, "SELECT count(*) FROM runs") +
	             prog_q_int(m, "SELECT count(*) FROM failures WHERE "
	                        "run_id IS NOT NULL"));
	cr_assert_eq(prog_q_int(m, "SELECT count(*) FROM failures f JOIN "
	                        "runs r ON r.id = f.run_id"), 0);
	/* provenance kept */
	cr_assert_eq(prog_q_int(m, "SELECT count(*) FROM runs WHERE "
	                        "trace_sha256 = (SELECT trace_sha256 FROM runs "
	                        "LIMIT 1) AND tool_version <> '' AND created "
	                        "<> ''"), runs);
	/* the same results as the unsharded sweep: every row, pairs of a
	 * run and its sync run from two shards included */
	assert_same_results(all, m);
	/* the comparisons view sees them */
	cr_assert_eq(prog_q_int(m, "SELECT count(*) FROM speedup_vs_sync "
	                        "WHERE speedup_lo IS NULL"), 0);
	/* and run_table has the swept keys as columns */
	cr_assert_eq(prog_q_int(m, "SELECT count(*) FROM run_table WHERE "
	                        "\"hw.aau\" IS NOT NULL"), runs);
}

Test(parallel, shard_is_checked)
{
	const char *trace = make_trace("t.msgpack");
	static const char *const bad[] = { "0/3", "4/3", "3", "a/b", "1/0",
	                                   "-1/3", "1/3x", "2/-3", "" };
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		cr_assert_eq(REPLAY("--no-db", "--shard", bad[i], trace), 2,
		             "--shard '%s' accepted", bad[i]);
		assert_err_has("expected I/N");
		cr_assert_eq(prog_run("tools/ahasd-repro", PROG_ARGS("--no-db",
		             "--shard", bad[i], trace)), 2, "%s", bad[i]);
		assert_err_has("expected I/N");
	}
	/* 1/1 is the whole sweep */
	cr_assert_eq(REPLAY("--no-db", "-q", "--shard", "1/1", "-p", "sync",
	                    "-d", "fixed", trace), 0, "%s", prog_err);
	/* more shards than runs: the empty ones run nothing, and say so */
	cr_assert_eq(REPLAY("--no-db", "--shard", "3/3", "-p", "sync", "-d",
	                    "fixed", "-P", "fixed.k=2,4", trace), 0, "%s",
	             prog_err);
	assert_err_has("shard 3/3: 0 of the sweep's 2 runs");
	/* ahasd-repro's shards store runs only */
	cr_assert_eq(prog_run("tools/ahasd-repro", PROG_ARGS("--shard", "1/2",
	             "--what-it-takes", trace)), 2);
	assert_err_has("--what-it-takes");
	cr_assert_eq(prog_run("tools/ahasd-repro", PROG_ARGS("--shard", "1/2",
	             "-o", "x.md", trace)), 2);
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
	                    "fixed", trace), 0, "%s", prog_err);
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
	const char *newer = copy_with(a, "newer.db", "PRAGMA user_version = 99");
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
#define STUDY(db, ...) prog_run("tools/ahasd-repro", PROG_ARGS("-q", "--db", \
	db, "--family", "paper", "--pair", "opt-1.3b:opt-6.7b", "-d", \
	"fixed", "--sweep", "tvc-size=2,8", __VA_ARGS__))
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
