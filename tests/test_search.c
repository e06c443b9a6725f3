/* test_search.c - the design-space search (issue 16, item 4): the pareto
 * and run_area views of schema version 4 on hand-chosen points, a file of
 * version 3 upgraded, and ahasd-search end to end on a small grid whose
 * front is worked out below, against the definition and at -j 2.
 */
#include "prog_util.h"

#include <errno.h>
#include <math.h>

#include "db.h"

TestSuite(search, .init = prog_setup, .fini = prog_teardown, .timeout = 120);

#define SEARCH(...) prog_run("tools/ahasd-search", PROG_ARGS(__VA_ARGS__))

/* "id,id,..." of the rows of sql (one integer column), in order. */
static const char *ids(const char *db, const char *sql)
{
	static char out[4][1024];
	static unsigned k;
	char *o = out[k++ % 4];
	sqlite3 *h = prog_db(db);
	sqlite3_stmt *s = prog_prep(h, sql);
	size_t n = 0;

	o[0] = '\0';
	while (sqlite3_step(s) == SQLITE_ROW)
		n += (size_t)snprintf(o + n, 1024 - n, "%s%lld", n ? "," : "",
		                      (long long)sqlite3_column_int64(s, 0));
	sqlite3_finalize(s);
	sqlite3_close(h);
	return o;
}

/* The runs of study that nothing in it dominates, by the definition:
 * brute force over run_summary and run_area (area: with area as a third
 * cost), in run id order. */
static const char *by_definition(const char *db, const char *study, int area)
{
	char sql[1536];

	snprintf(sql, sizeof sql,
	         "WITH p AS (SELECT s.run_id, s.tokens_per_s t, "
	         "s.tokens_per_j j, %s a FROM run_summary s JOIN run_area x "
	         "ON x.run_id = s.run_id WHERE s.label = '%s') "
	         "SELECT run_id FROM p WHERE NOT EXISTS (SELECT 1 FROM p q "
	         "WHERE q.t >= p.t AND q.j >= p.j AND q.a <= p.a AND "
	         "(q.t > p.t OR q.j > p.j OR q.a < p.a)) ORDER BY run_id",
	         area ? "x.area_mm2" : "0", study);
	return ids(db, sql);
}

static const char *front(const char *db, const char *study, int area)
{
	char sql[512];

	snprintf(sql, sizeof sql,
	         "SELECT run_id FROM pareto WHERE study = "
	         "'%s' AND %s ORDER BY run_id",
	         study, area ? "on_front_area" : "on_front");
	return ids(db, sql);
}

/* ---- the views, on tests/view_mkdb.c's points ---------------------- */

/* The fronts of both studies are worked out in tests/view_mkdb.c: study
 * front 1, 2, 4, 6, 8 (with area 7 too), study other 10, 11. */
Test(search, pareto_view_on_hand_points)
{
	const char *db = prog_path("hand.db");

	cr_assert_eq(prog_run("tests/viewer-mkdb", PROG_ARGS(db)), 0, "%s",
	             prog_err);
	cr_expect_str_eq(front(db, "front", 0), "1,2,4,6,8");
	cr_expect_str_eq(front(db, "front", 1), "1,2,4,6,7,8");
	cr_expect_str_eq(front(db, "other", 0), "10,11");
	cr_expect_str_eq(front(db, "other", 1), "10,11");
	/* the view agrees with the definition */
	cr_expect_str_eq(front(db, "front", 0), by_definition(db, "front", 0));
	cr_expect_str_eq(front(db, "front", 1), by_definition(db, "front", 1));
	/* areas: queues for async and ahasd, the AAU for run 6 */
	cr_expect_str_eq(ids(db, "SELECT run_id FROM run_area WHERE area_mm2 "
	                         "= 0 ORDER BY run_id"),
	                 "1,2,3,10,11");
	cr_expect_str_eq(ids(db, "SELECT run_id FROM run_area WHERE "
	                         "abs(area_mm2 - 0.01) < 1e-12 ORDER BY "
	                         "run_id"),
	                 "4,5,7,8,9");
	cr_expect_float_eq(prog_q_dbl(db, "SELECT area_mm2 FROM run_area "
	                                  "WHERE run_id = 6"),
	                   1.26, 1e-12);
	/* every run with both metrics is in the view */
	cr_expect_eq(prog_q_int(db, "SELECT count(*) FROM pareto"), 11);
}

/* Areas are rows of area_costs: change one and run_area and the front
 * with area follow. With async's queues at 2 mm^2 (runs 7, 8, 9):
 *   8 (30, 60, 2.0) leaves: run 4 is as fast and as efficient, and
 *     smaller (0.01);
 *   7 (35, 40, 2.0) leaves: run 6 (40, 40) is now smaller (1.26);
 *   9 stays off (run 2 beats it, 0 mm^2).
 * The front with area is 1, 2, 4, 6; without area it does not move. */
Test(search, area_costs_are_rows)
{
	const char *db = prog_path("hand.db");
	sqlite3 *h;

	cr_assert_eq(prog_run("tests/viewer-mkdb", PROG_ARGS(db)), 0, "%s",
	             prog_err);
	cr_assert_eq(sqlite3_open(db, &h), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(h,
	                          "UPDATE area_costs SET mm2 = 2 WHERE key "
	                          "= 'policy' AND value = 'async'",
	                          NULL, NULL, NULL),
	             SQLITE_OK);
	sqlite3_close(h);
	cr_expect_float_eq(prog_q_dbl(db, "SELECT area_mm2 FROM run_area "
	                                  "WHERE run_id = 7"),
	                   2.0, 1e-12);
	cr_expect_str_eq(front(db, "front", 0), "1,2,4,6,8");
	cr_expect_str_eq(front(db, "front", 1), "1,2,4,6");
	cr_expect_str_eq(front(db, "front", 1), by_definition(db, "front", 1));
}

/* tests/data/results-schema-v3.sqlite: ahasd-replay at schema version 3,
 *   ahasd-replay --label v3-fixture -p sync -p async -p ahasd -d fixed \
 *       -P hw.aau=0,1 traces/stories260K-skip3-greedy.msgpack
 * then taken out of WAL and VACUUMed. Opened read-write it is upgraded
 * to version 4: its rows are kept, and the new views cover its runs. Its
 * points are those of the grid below (the same runs). */
Test(search, upgrade_from_version_3)
{
	const char *p = prog_path("v3.db");
	char cmd[2048];
	struct db *d = NULL;
	char err[512];

	snprintf(cmd, sizeof cmd, "cp '%s' '%s' && cp '%s' '%s'",
	         prog_src_path("tests/data/results-schema-v3.sqlite"), p, p,
	         prog_path("v3-orig.db"));
	cr_assert_eq(system(cmd), 0);
	cr_assert_eq(prog_q_int(p, "PRAGMA user_version"), 3);
	cr_assert_eq(db_open_readonly(&d, p, err, sizeof err), -EPROTONOSUPPORT,
	             "%s", err);
	cr_assert(strstr(err, "schema version 3 is older than this tool's (4)"),
	          "%s", err);
	cr_assert_eq(db_open(&d, p, err, sizeof err), 0, "%s", err);
	db_close(&d);
	cr_assert_eq(prog_q_int(p, "PRAGMA user_version"), 4);
	/* every table of version 3, unchanged both ways */
	snprintf(cmd, sizeof cmd,
	         "for t in runs metrics devices sequences config config_keys "
	         "run_match intervals paired_intervals failures run_ids "
	         "baselines; do sqlite3 '%s' \"ATTACH '%s' AS old; SELECT "
	         "(SELECT count(*) FROM (SELECT * FROM main.$t EXCEPT SELECT * "
	         "FROM old.$t)) + (SELECT count(*) FROM (SELECT * FROM old.$t "
	         "EXCEPT SELECT * FROM main.$t))\"; done | sort -u",
	         p, prog_path("v3-orig.db"));
	cr_assert_eq(prog_run("sh", PROG_ARGS("-c", cmd)), 0, "%s", prog_err);
	cr_assert_str_eq(prog_out, "0\n");
	/* the fronts of the old runs: as worked out at front_of_a_small_grid */
	cr_expect_str_eq(front(p, "v3-fixture", 0), "4");
	cr_expect_str_eq(front(p, "v3-fixture", 1), "1,4");
	cr_expect_str_eq(front(p, "v3-fixture", 1),
	                 by_definition(p, "v3-fixture", 1));
}

/* ---- ahasd-search end to end ---------------------------------------- */

/* The policy and hw.aau of run id, "sync/1". */
static const char *who(const char *db, long long id)
{
	static char out[8][64];
	static unsigned k;
	char *o = out[k++ % 8];
	sqlite3 *h = prog_db(db);
	sqlite3_stmt *s;
	char sql[256];

	snprintf(sql, sizeof sql,
	         "SELECT r.policy || '/' || c.value FROM runs "
	         "r JOIN config c ON c.run_id = r.id AND c.key = 'hw.aau' "
	         "WHERE r.id = %lld",
	         id);
	s = prog_prep(h, sql);
	cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
	snprintf(o, 64, "%s", (const char *)sqlite3_column_text(s, 0));
	sqlite3_finalize(s);
	sqlite3_close(h);
	return o;
}

/* "policy/aau,..." of the runs in a front, in run id order. */
static const char *front_who(const char *db, const char *study, int area)
{
	static char out[2][512];
	static unsigned k;
	char *o = out[k++ % 2];
	const char *f = front(db, study, area);
	size_t n = 0;

	o[0] = '\0';
	for (const char *p = f; *p;) {
		char *end;
		const long long id = strtoll(p, &end, 10);

		n += (size_t)snprintf(o + n, 512 - n, "%s%s", n ? "," : "",
		                      who(db, id));
		p = *end ? end + 1 : end;
	}
	return o;
}

/* A grid of 3 policies x 2 values of hw.aau with the fixed drafter on
 * stories260K-skip3-greedy (the numbers the engine gives, rounded; the
 * runs of tests/data/results-schema-v3.sqlite):
 *
 *   policy  aau  tokens/s  tokens/J  area mm2
 *   sync     0     4448      2288     0
 *   async    0     4001      2028     0.01  (queues)
 *   ahasd    0     4428      2276     0.09  (queues, EDC, TVC)
 *   sync     1     7432      3536     1.25  (AAU)
 *   async    1     6522      2968     1.26
 *   ahasd    1     7387      3506     1.34
 *
 * sync with the AAU is the fastest and the most efficient of the six:
 * it beats every other run, so it alone is on the front. With area as a
 * third cost, sync without the AAU joins it: only the three with the
 * AAU beat it in throughput and efficiency, and each is larger (1.25 and
 * more against 0). The other four stay off: async/0 and ahasd/0 are
 * beaten by sync/0 (faster, more efficient, smaller), async/1 and
 * ahasd/1 by sync/1. */
Test(search, front_of_a_small_grid)
{
	const char *trace = prog_src_path("traces/stories260K-skip3-greedy."
	                                  "msgpack");
	const char *db = prog_path("s.db");

	cr_assert_eq(SEARCH("--db", db, "-q", "--area", "-d", "fixed", "-P",
	                    "hw.aau=0,1", trace),
	             0, "%s", prog_err);
	/* every point of the grid stored, under the study's label */
	cr_assert_eq(prog_q_int(db, "SELECT count(*) FROM runs WHERE label = "
	                            "'search'"),
	             6);
	cr_assert_eq(prog_q_int(db,
	                        "SELECT count(DISTINCT r.policy || c.value) "
	                        "FROM runs r JOIN config c ON c.run_id = "
	                        "r.id AND c.key = 'hw.aau'"),
	             6);
	/* the front as worked out above, and by the definition */
	cr_expect_str_eq(front_who(db, "search", 0), "sync/1");
	cr_expect_str_eq(front_who(db, "search", 1), "sync/0,sync/1");
	cr_expect_str_eq(front(db, "search", 0),
	                 by_definition(db, "search", 0));
	cr_expect_str_eq(front(db, "search", 1),
	                 by_definition(db, "search", 1));
	/* the table printed: the front's runs, fastest first, marked */
	assert_out_has("study 'search' in ");
	assert_out_has(": 6 runs (6 new); on the front of tokens/s against "
	               "tokens/J: 1; with area as a third cost: 2");
	cr_expect(strstr(prog_out, "hw.aau"), "%s", prog_out);
	{
		char want[128];
		const long long s1 = prog_q_int(db, "SELECT run_id FROM pareto "
		                                    "WHERE on_front");

		snprintf(want, sizeof want, "%5lld  sync", s1);
		assert_out_has(want);
		cr_expect(strstr(prog_out, "1.25  both") &&
		                  strstr(prog_out, "0.00  with area"),
		          "%s", prog_out);
		cr_expect_lt(strstr(prog_out, "1.25  both"),
		             strstr(prog_out, "0.00  with area"));
	}
}

/* The same grid at -j 2 gives the same runs and the same front (ids may
 * differ: workers take them as they start). */
Test(search, parallel_gives_the_same_front)
{
	const char *trace = prog_src_path("traces/stories260K-skip3-greedy."
	                                  "msgpack");
	const char *a = prog_path("a.db"), *b = prog_path("b.db");
	const char *q =
	        "SELECT group_concat(x, ';') FROM (SELECT r.policy || "
	        "'/' || c.value || '/' || s.tokens_per_s || '/' || "
	        "s.tokens_per_j || '/' || p.on_front || p.on_front_area "
	        "AS x FROM runs r JOIN config c ON c.run_id = r.id AND "
	        "c.key = 'hw.pim.mem_bw' JOIN run_summary s ON s.run_id "
	        "= r.id JOIN pareto p ON p.run_id = r.id ORDER BY x)";
	sqlite3 *ha, *hb;
	sqlite3_stmt *sa, *sb;

	cr_assert_eq(SEARCH("--db", a, "-q", "-j", "1", "-p", "sync", "-p",
	                    "ahasd", "-d", "adaedl", "-P",
	                    "hw.pim.mem_bw=128e9:512e9:x2", "-P", "edc=0,1",
	                    trace),
	             0, "%s", prog_err);
	cr_assert_eq(SEARCH("--db", b, "-q", "-j", "2", "-p", "sync", "-p",
	                    "ahasd", "-d", "adaedl", "-P",
	                    "hw.pim.mem_bw=128e9:512e9:x2", "-P", "edc=0,1",
	                    trace),
	             0, "%s", prog_err);
	/* sync once per bandwidth, ahasd at each edc: 3 + 6 */
	cr_assert_eq(prog_q_int(a, "SELECT count(*) FROM runs"), 9);
	ha = prog_db(a);
	hb = prog_db(b);
	sa = prog_prep(ha, q);
	sb = prog_prep(hb, q);
	cr_assert_eq(sqlite3_step(sa), SQLITE_ROW);
	cr_assert_eq(sqlite3_step(sb), SQLITE_ROW);
	cr_expect_str_eq((const char *)sqlite3_column_text(sa, 0),
	                 (const char *)sqlite3_column_text(sb, 0));
	sqlite3_finalize(sa);
	sqlite3_finalize(sb);
	sqlite3_close(ha);
	sqlite3_close(hb);
	cr_expect_str_eq(front(a, "search", 0), by_definition(a, "search", 0));
}

/* A study is one search: a second one under the same name is refused
 * (nothing run) unless --append, which adds to it; the front is then
 * over all of the study's runs. */
Test(search, a_study_is_not_mixed_by_accident)
{
	const char *trace = prog_src_path("traces/stories260K-skip3-greedy."
	                                  "msgpack");
	const char *db = prog_path("s.db");

	cr_assert_eq(SEARCH("--db", db, "-q", "-s", "one", "-p", "sync", "-d",
	                    "fixed", trace),
	             0, "%s", prog_err);
	cr_assert_eq(SEARCH("--db", db, "-q", "-s", "one", "-p", "async", "-d",
	                    "fixed", trace),
	             1);
	assert_err_has("already holds 1 runs of study 'one'");
	cr_assert_eq(prog_q_int(db, "SELECT count(*) FROM runs"), 1);
	cr_assert_eq(SEARCH("--db", db, "-q", "-s", "one", "--append", "-p",
	                    "async", "-d", "fixed", trace),
	             0, "%s", prog_err);
	assert_out_has(": 2 runs (1 new)");
	cr_expect_str_eq(front(db, "one", 0), by_definition(db, "one", 0));
	/* another study beside it has a front of its own */
	cr_assert_eq(SEARCH("--db", db, "-q", "-s", "two", "-p", "ahasd", "-d",
	                    "fixed", trace),
	             0, "%s", prog_err);
	cr_expect_str_eq(front(db, "two", 0), "3");
}

/* The grid is ahasd-replay's, checked the same way before any run. */
Test(search, grid_errors_before_any_run)
{
	const char *trace = prog_src_path("traces/stories260K-skip3-greedy."
	                                  "msgpack");
	const char *db = prog_path("s.db");

	cr_assert_eq(SEARCH("--db", db, "-P", "k=1,2,1", "-d", "fixed", trace),
	             2);
	assert_err_has("ahasd-search: --param k: '1,2,1': value 1 given twice");
	cr_assert_eq(SEARCH("--db", db, "-P", "nosuch=1", trace), 1);
	assert_err_has("ahasd-search: unknown parameter 'nosuch'");
	cr_assert_eq(SEARCH("--db", db, "-P", "hw.pim.mem_bw=5:1:1", trace), 2);
	assert_err_has("the range runs backwards");
	cr_assert_eq(SEARCH("--db", db, "-P", "ahasd.edc=0:7:1", trace), 1);
	assert_err_has("edc=2 out of range");
	cr_assert_eq(
	        SEARCH("--db", db, trace, "-P", "k=1:3000:1", "-d", "fixed"),
	        2);
	assert_err_has("give --yes");
	cr_assert_eq(access(db, F_OK), -1, "a database was made");
}
