/* test_viewer.c - ahasd-view, the real binary, on real databases.
 *
 * Databases are written through db.c (hand-listed events whose windows and
 * caps are worked out below) and, end to end, by the real ahasd-replay on
 * the hand-built trace of viewer-mktrace (12 draft + 3 verify tasks, worked
 * out in tests/viewer_mktrace.c). The HTML is checked by counting the
 * task rectangles per kind; the Perfetto JSON is parsed by python3's json
 * module and compared event by event with the database.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "db.h"
#include "fixtures.h"

static char view_bin[1024], replay_bin[1024], mktrace_bin[1024];

static void setup(void)
{
	const char *b = getenv("AHASD_BUILD_ROOT");

	cr_assert_not_null(b, "AHASD_BUILD_ROOT not set (run through meson)");
	snprintf(view_bin, sizeof view_bin, "%s/viewer/ahasd-view", b);
	snprintf(replay_bin, sizeof replay_bin, "%s/tools/ahasd-replay", b);
	snprintf(mktrace_bin, sizeof mktrace_bin, "%s/tests/viewer-mktrace", b);
	fx_tmpdir_make("viewer");
}

TestSuite(viewer, .init = setup, .fini = fx_tmpdir_remove);

/* ---- helpers ---- */

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	cr_assert_not_null(f, "cannot open %s", path);
	cr_assert_eq(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	cr_assert_geq(n, 0);
	rewind(f);
	buf = malloc((size_t)n + 1);
	cr_assert_not_null(buf);
	cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static int exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

/* Run a shell command with stderr to tmp/err.txt; @return exit status. */
static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	size_t n;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	n = strlen(cmd);
	snprintf(cmd + n, sizeof cmd - n, " 2>'%s/err.txt'", fx_dir);
	st = system(cmd);
	cr_assert_neq(st, -1);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static char *err_text(void)
{
	char p[300];

	snprintf(p, sizeof p, "%s/err.txt", fx_dir);
	return slurp(p);
}

static size_t count_str(const char *hay, const char *needle)
{
	size_t n = 0;

	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

static size_t count_kind(const char *html, const char *kind)
{
	char needle[96];

	snprintf(needle, sizeof needle, "class=\"task\" data-kind=\"%s\"",
	         kind);
	return count_str(html, needle);
}

/* ---- a database written through db.c ---- */

#define MS 1e-3

/* Run 1 (sync, events) and run 2 (ahasd, no events), devices npu, pim.
 *   idx kind       dev  [start, end) ms  outcome
 *   0   draft      pim  [0, 1)           accepted
 *   1   draft      pim  [1, 2)           accepted
 *   2   idle       npu  [0, 2)
 *   3   verify     npu  [2, 5)           accepted (3 tokens)
 *   4   draft      pim  [2, 3)           wasted
 *   5   preverify  pim  [3, 4)           rejected
 *   6   switch     pim  [4, 4.5)
 */
static const struct replay_event hand_ev[] = {
	{ 1, REPLAY_EV_DRAFT, 0 * MS, 1 * MS, 1, 0, 1, REPLAY_OUT_ACCEPTED },
	{ 1, REPLAY_EV_DRAFT, 1 * MS, 2 * MS, 1, 0, 1, REPLAY_OUT_ACCEPTED },
	{ 0, REPLAY_EV_IDLE, 0 * MS, 2 * MS, 0, 0, 0, REPLAY_OUT_NONE },
	{ 0, REPLAY_EV_VERIFY, 2 * MS, 5 * MS, 3, 0, 1, REPLAY_OUT_ACCEPTED },
	{ 1, REPLAY_EV_DRAFT, 2 * MS, 3 * MS, 1, 0, 2, REPLAY_OUT_WASTED },
	{ 1, REPLAY_EV_PREVERIFY, 3 * MS, 4 * MS, 1, 0, 0,
	  REPLAY_OUT_REJECTED },
	{ 1, REPLAY_EV_SWITCH, 4 * MS, 4.5 * MS, 0, 0, 0, REPLAY_OUT_NONE },
};
#define N_HAND (sizeof hand_ev / sizeof hand_ev[0])

/* The names the schema stores (db/schema.sql). */
static const char *const kind_name[] = { "draft",  "verify",   "preverify",
	                                 "switch", "transfer", "idle" };
static const char *const outcome_name[] = { "none", "accepted", "rejected",
	                                    "wasted" };

static const char nasty_label[] = "<script>alert(\"x\")</script> & 'q'";

static void add_run(struct db *d, const char *policy, int events)
{
	char err[512];
	struct db_run_info in = {
		.tool_version = "0.1.0-test",
		.label = nasty_label,
		.policy = policy,
		.policy_version = "1.0",
		.policy_params = "a=1",
		.policy_path = "/p/policy.so",
		.drafter = "fixed",
		.drafter_version = "1.0",
		.drafter_params = "k=2",
		.drafter_path = "/p/fixed.so",
		.hw_preset = "npu-pim",
		.hw_config = "x = 1\n",
		.trace_path = "/t/hand.trace",
		.trace_sha256 = "00",
		.draft_model = "d<1>",
		.target_model = "t&2",
		.sampled = 0,
		.seed = 1,
		.queue_capacity = 16,
		.max_draft = 8,
		.device_names = { "npu", "pim" },
		.n_dev = 2,
	};
	struct replay_seq_result sr = {
		.seq = 0, .prompt_len = 4, .committed = 3, .time_s = 5 * MS
	};
	struct replay_metrics m = { .sequences = 1,
		                    .committed = 3,
		                    .time_s = 5 * MS,
		                    .energy_j = 0.01,
		                    .drafted = 3,
		                    .accepted = 2,
		                    .wasted = 1,
		                    .batches = 2,
		                    .verifications = 1 };
	int64_t id;

	m.busy_s[0] = 3 * MS;
	m.busy_s[1] = 4.5 * MS;
	cr_assert_eq(db_run_begin(d, &in, &id, err, sizeof err), 0, "%s", err);
	cr_assert_eq(db_run_sequence(d, id, &sr, err, sizeof err), 0, "%s",
	             err);
	for (size_t i = 0; events && i < N_HAND; i++)
		cr_assert_eq(db_run_event(d, id, &hand_ev[i], err, sizeof err),
		             1, "%s", err);
	cr_assert_eq(
	        db_run_commit(d, id, &m, 0.001, NULL, NULL, 0, err, sizeof err),
	        0, "%s", err);
}

static void make_db(const char *path)
{
	char err[512];
	struct db *d = NULL;

	cr_assert_eq(db_open(&d, path, err, sizeof err), 0, "%s", err);
	add_run(d, "sync", 1);
	add_run(d, "ahasd", 0);
	db_close(&d);
}

static char *report(const char *extra)
{
	char db[300], out[300];

	snprintf(db, sizeof db, "%s/r.db", fx_dir);
	snprintf(out, sizeof out, "%s/r.html", fx_dir);
	if (!exists(db))
		make_db(db);
	cr_assert_eq(run("'%s' '%s' -o '%s' %s", view_bin, db, out, extra), 0,
	             "ahasd-view failed: %s", err_text());
	return slurp(out);
}

/* Default windows: the busiest lane (pim) has 5 events, fewer than the
 * ~90 per window the viewer aims at, so one window spans the run and every
 * event is drawn once: 3 draft, 1 idle, 1 verify, 1 preverify, 1 switch. */
Test(viewer, html_one_window_all_tasks)
{
	char *h = report("");

	cr_assert_eq(count_str(h, "class=\"task\""), N_HAND);
	cr_assert_eq(count_kind(h, "draft"), 3);
	cr_assert_eq(count_kind(h, "verify"), 1);
	cr_assert_eq(count_kind(h, "idle"), 1);
	cr_assert_eq(count_kind(h, "preverify"), 1);
	cr_assert_eq(count_kind(h, "switch"), 1);
	cr_assert_eq(count_str(h, "data-outcome=\"wasted\""), 1);
	cr_assert_eq(count_str(h, "data-outcome=\"rejected\""), 1);
	/* lanes named from the devices table */
	cr_assert(strstr(h, ">npu</text>") && strstr(h, ">pim</text>"));
	/* run 2 has no events and says how to get them */
	cr_assert_eq(count_str(h, "data-no-events"), 1);
	cr_assert(strstr(h, "rerun with <code>ahasd-replay --events</code>"));
	free(h);
}

/* Escaping and self-containment: the label and model names come back
 * escaped, and the page loads nothing; its one script is the sweep
 * chart's, inline. */
Test(viewer, html_escaped_and_self_contained)
{
	char *h = report("");

	cr_assert_eq(count_str(h, "<script"), 1);
	cr_assert(strstr(h, "<script>\n(function () {"));
	cr_assert_null(strstr(h, "alert(\"x\")"));
	cr_assert(strstr(h, "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"
	                    " &amp; &#39;q&#39;"));
	cr_assert(strstr(h, "d&lt;1&gt;"));
	cr_assert(strstr(h, "t&amp;2"));
	cr_assert_null(strstr(h, "http://"));
	cr_assert_null(strstr(h, "https://"));
	cr_assert_null(strstr(h, "src="));
	cr_assert_null(strstr(h, "<link"));
	/* two runs in the table */
	cr_assert_eq(count_str(h, "<tr id=\"row-"), 2);
	free(h);
}

/* --window-s 0.003 --windows 2: windows [0, 3) and [3, 6) ms.
 *   [0, 3): idx 0, 1, 2, 3 (verify 2..5 overlaps), 4          -> 5
 *   [3, 6): idx 3 again, 5, 6                                 -> 3
 * 8 rectangles: draft 3, idle 1, verify 2, preverify 1, switch 1. */
Test(viewer, html_fixed_windows_split_tasks)
{
	char *h = report("--window-s 0.003 --windows 2");

	cr_assert_eq(count_str(h, "class=\"task\""), 8);
	cr_assert_eq(count_kind(h, "verify"), 2);
	cr_assert_eq(count_kind(h, "draft"), 3);
	cr_assert_eq(count_str(h, "data-window=\"1\""), 1);
	cr_assert_eq(count_str(h, "data-window=\"2\""), 1);
	cr_assert_eq(count_str(h, "data-window=\"3\""), 0);
	cr_assert_eq(count_str(h, "data-capped"), 0);
	free(h);
}

/* Same windows with --max-tasks 2: 2 of 5 and 2 of 3 drawn, both capped,
 * and the page says so. */
Test(viewer, html_cap_is_reported)
{
	char *h = report("--window-s 0.003 --windows 2 --max-tasks 2");

	cr_assert_eq(count_str(h, "class=\"task\""), 4);
	cr_assert_eq(count_str(h, "data-capped"), 2);
	cr_assert(strstr(h, "showing the first 2 of 5 tasks"));
	cr_assert(strstr(h, "showing the first 2 of 3 tasks"));
	free(h);
}

Test(viewer, html_run_selection)
{
	char *h = report("--run 2");

	cr_assert_eq(count_str(h, "class=\"task\""), 0);
	cr_assert_eq(count_str(h, "<tr id=\"row-"), 1);
	cr_assert_eq(count_str(h, "data-no-events"), 1);
	free(h);
	h = report("--run 1,2 --run 1");
	cr_assert_eq(count_str(h, "<tr id=\"row-"), 2);
	cr_assert_eq(count_str(h, "class=\"task\""), N_HAND);
	free(h);
}

/* ---- Perfetto ---- */

/* python3 parses the JSON (any syntax error fails) and prints one line per
 * complete event, in recording order, then one per process name. */
static const char pyscript[] =
        "import json,sys\n"
        "d=json.load(open(sys.argv[1]))\n"
        "ev=d['traceEvents']\n"
        "x=[e for e in ev if e['ph']=='X']\n"
        "x.sort(key=lambda e:e['args']['idx'])\n"
        "for e in x:\n"
        "  a=e['args']\n"
        "  print('X',e['name'],e['pid'],e['tid'],repr(float(e['ts'])),"
        "repr(float(e['dur'])),a['tokens'],a['seq'],a['batch'],a['outcome'])\n"
        "for e in ev:\n"
        "  if e['ph']=='M' and e['name']=='process_name':\n"
        "    print('P',e['pid'],e['args']['name'])\n"
        "  elif e['ph']=='M' and e['name']=='thread_name':\n"
        "    print('T',e['pid'],e['tid'],e['args']['name'])\n"
        "  elif e['ph'] not in 'MX':\n"
        "    print('?',e['ph'])\n";

struct pf_ev {
	char kind[32], outcome[32];
	int pid, tid;
	double ts, dur;
	long long tokens, seq, batch;
};

/* Export run `id` of db and parse it; @return number of X events. */
static size_t perfetto(const char *db, int id, struct pf_ev *out, size_t max,
                       char procs[][32], size_t *n_procs, size_t *n_threads)
{
	char js[300], py[300], txt[300], line[512];
	FILE *f;
	size_t n = 0;

	snprintf(js, sizeof js, "%s/run.json", fx_dir);
	snprintf(py, sizeof py, "%s/check.py", fx_dir);
	snprintf(txt, sizeof txt, "%s/run.txt", fx_dir);
	cr_assert_eq(
	        run("'%s' '%s' --perfetto %d -o '%s'", view_bin, db, id, js), 0,
	        "export failed: %s", err_text());
	f = fopen(py, "w");
	cr_assert_not_null(f);
	fputs(pyscript, f);
	fclose(f);
	cr_assert_eq(run("python3 '%s' '%s' > '%s'", py, js, txt), 0,
	             "not valid trace JSON: %s", err_text());
	f = fopen(txt, "r");
	cr_assert_not_null(f);
	*n_procs = *n_threads = 0;
	while (fgets(line, sizeof line, f)) {
		if (line[0] == 'X') {
			struct pf_ev *e = &out[n];

			cr_assert_lt(n, max);
			cr_assert_eq(sscanf(line,
			                    "X %31s %d %d %lf %lf %lld "
			                    "%lld %lld %31s",
			                    e->kind, &e->pid, &e->tid, &e->ts,
			                    &e->dur, &e->tokens, &e->seq,
			                    &e->batch, e->outcome),
			             9, "bad line %s", line);
			n++;
		} else if (line[0] == 'P') {
			int pid;
			char name[32];

			cr_assert_eq(sscanf(line, "P %d %31s", &pid, name), 2);
			cr_assert(pid >= 1 && pid <= 8);
			snprintf(procs[pid - 1], 32, "%s", name);
			(*n_procs)++;
		} else if (line[0] == 'T') {
			(*n_threads)++;
		} else {
			cr_assert_fail("unexpected trace event: %s", line);
		}
	}
	fclose(f);
	return n;
}

static void assert_us(double got_us, double want_s, const char *what)
{
	cr_assert(fabs(got_us - want_s * 1e6) <= 1e-9 * fmax(1, want_s * 1e6),
	          "%s: %.17g us, want %.17g s", what, got_us, want_s);
}

/* One X event per stored event, in order, with its times (microseconds),
 * device (pid = device + 1), kind (thread), tokens, batch and outcome. */
Test(viewer, perfetto_matches_events)
{
	char db[300], procs[8][32] = { { 0 } };
	struct pf_ev ev[32];
	size_t n, np, nt;

	snprintf(db, sizeof db, "%s/r.db", fx_dir);
	make_db(db);
	n = perfetto(db, 1, ev, 32, procs, &np, &nt);
	cr_assert_eq(n, N_HAND);
	for (size_t i = 0; i < n; i++) {
		const struct replay_event *h = &hand_ev[i];

		cr_assert_str_eq(ev[i].kind, kind_name[h->kind]);
		cr_assert_eq(ev[i].pid, h->device + 1);
		cr_assert_eq(ev[i].tid, (int)h->kind + 1);
		assert_us(ev[i].ts, h->start_s, "ts");
		assert_us(ev[i].dur, h->end_s - h->start_s, "dur");
		cr_assert_eq(ev[i].tokens, (long long)h->tokens);
		cr_assert_eq(ev[i].batch, (long long)h->batch);
		cr_assert_str_eq(ev[i].outcome, outcome_name[h->outcome]);
	}
	cr_assert_eq(np, 2);
	cr_assert_str_eq(procs[0], "npu");
	cr_assert_str_eq(procs[1], "pim");
	/* threads: npu idle + verify; pim draft, preverify, switch */
	cr_assert_eq(nt, 5);
}

/* ---- bad input ---- */

static void assert_fails(const char *what, const char *needle,
                         const char *fmt_db, const char *args)
{
	char out[300];
	char *e;

	snprintf(out, sizeof out, "%s/out.file", fx_dir);
	unlink(out);
	cr_assert_eq(run("'%s' '%s' %s -o '%s'", view_bin, fmt_db, args, out),
	             1, "%s: expected exit 1", what);
	e = err_text();
	cr_assert(strstr(e, needle), "%s: stderr lacks '%s': %s", what, needle,
	          e);
	cr_assert(!exists(out), "%s: an output file was left", what);
	free(e);
}

Test(viewer, errors)
{
	char db[300], other[300], newer[300], missing[300];
	sqlite3 *h;

	snprintf(db, sizeof db, "%s/r.db", fx_dir);
	snprintf(other, sizeof other, "%s/other.db", fx_dir);
	snprintf(newer, sizeof newer, "%s/newer.db", fx_dir);
	snprintf(missing, sizeof missing, "%s/missing.db", fx_dir);
	make_db(db);

	assert_fails("missing file", "missing.db", missing, "");
	assert_fails("unknown run", "run 42 does not exist", db, "--run 42");
	assert_fails("unknown run, perfetto", "run 7 does not exist", db,
	             "--perfetto 7");
	assert_fails("no events", "run 2 has no events recorded", db,
	             "--perfetto 2");

	/* SQLite, but another application's */
	cr_assert_eq(sqlite3_open(other, &h), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(h,
	                          "PRAGMA application_id = 1234; "
	                          "CREATE TABLE t(x);",
	                          NULL, NULL, NULL),
	             SQLITE_OK);
	sqlite3_close(h);
	assert_fails("other application", "not an ahasd-replay database", other,
	             "");

	/* ours, from a newer schema */
	cr_assert_eq(run("cp '%s' '%s'", db, newer), 0);
	cr_assert_eq(sqlite3_open(newer, &h), SQLITE_OK);
	cr_assert_eq(
	        sqlite3_exec(h, "PRAGMA user_version = 99", NULL, NULL, NULL),
	        SQLITE_OK);
	sqlite3_close(h);
	assert_fails("newer schema", "newer", newer, "");

	/* usage errors exit 2 */
	cr_assert_eq(run("'%s'", view_bin), 2);
	cr_assert_eq(run("'%s' '%s' --run x", view_bin, db), 2);
	cr_assert_eq(run("'%s' '%s' --window-s -1", view_bin, db), 2);
}

/* ---- end to end: the real ahasd-replay on hand.trace ---- */

Test(viewer, replay_end_to_end)
{
	char db[300], out[300], procs[8][32] = { { 0 } };
	struct pf_ev ev[64];
	sqlite3 *h;
	sqlite3_stmt *st;
	size_t n, np, nt, i = 0;
	char *html;

	if (!exists(replay_bin) || !exists(mktrace_bin))
		cr_skip_test("ahasd-replay not built: end-to-end test SKIPPED");
	snprintf(db, sizeof db, "%s/e2e.db", fx_dir);
	snprintf(out, sizeof out, "%s/e2e.html", fx_dir);
	cr_assert_eq(run("'%s' '%s'", mktrace_bin, fx_dir), 0, "%s",
	             err_text());
	/* async and sync, drafter fixed k=4, single-device preset gpu: see
	 * viewer_mktrace.c for the 12 draft + 3 verify tasks of each */
	cr_assert_eq(run("'%s' -q --db '%s' --events -w gpu -p async -p sync "
	                 "-d fixed -P k=4 '%s/hand.trace'",
	                 replay_bin, db, fx_dir),
	             0, "%s", err_text());
	cr_assert_eq(run("'%s' '%s' -o '%s'", view_bin, db, out), 0, "%s",
	             err_text());
	html = slurp(out);
	cr_assert_eq(count_kind(html, "draft"), 2 * 12);
	cr_assert_eq(count_kind(html, "verify"), 2 * 3);
	cr_assert_eq(count_str(html, "class=\"task\""), 2 * 15);
	/* per run: 3 wasted drafts, 1 rejected verify */
	cr_assert_eq(count_str(html, "data-outcome=\"wasted\""), 2 * 3);
	cr_assert_eq(count_str(html, "data-outcome=\"rejected\""), 2 * 1);
	free(html);

	n = perfetto(db, 1, ev, 64, procs, &np, &nt);
	cr_assert_eq(n, 15);
	cr_assert_eq(np, 1);
	cr_assert_str_eq(procs[0], "gpu");
	cr_assert_eq(nt, 2); /* draft, verify */
	cr_assert_eq(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL),
	             SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(h,
	                                "SELECT kind, start_s, end_s, tokens, "
	                                "outcome FROM events"
	                                " WHERE run_id = 1 ORDER BY idx",
	                                -1, &st, NULL),
	             SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW) {
		cr_assert_lt(i, n);
		cr_assert_str_eq(ev[i].kind,
		                 (const char *)sqlite3_column_text(st, 0));
		assert_us(ev[i].ts, sqlite3_column_double(st, 1), "ts");
		assert_us(ev[i].dur,
		          sqlite3_column_double(st, 2) -
		                  sqlite3_column_double(st, 1),
		          "dur");
		cr_assert_eq(ev[i].tokens, sqlite3_column_int64(st, 3));
		cr_assert_str_eq(ev[i].outcome,
		                 (const char *)sqlite3_column_text(st, 4));
		i++;
	}
	cr_assert_eq(i, 15);
	sqlite3_finalize(st);
	sqlite3_close(h);
}
