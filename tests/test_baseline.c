/* test_baseline.c - a run's baseline is matched on its whole
 * configuration (issue 12, item 2).
 *
 * The question of issue 12: how does AHASD's advantage over sync change
 * as the PIM's bandwidth goes from 128 to 512 GB/s, on the LLaMA2 pair
 * (--models llama2-7b:llama2-13b) with AdaEDL? Each answer here is checked
 * against the same runs paired by hand: the sync and the ahasd run of one
 * invocation share a label, and nothing else is looked at.
 */
#include "prog_util.h"

#include <errno.h>
#include <math.h>

#include "db.h"

#define TRACE "traces/stories260K-skip3-sampled.msgpack"

static const char *const bandwidths[] = { "128e9", "256e9", "512e9" };
#define N_BW (sizeof bandwidths / sizeof *bandwidths)

TestSuite(baseline, .init = prog_setup, .fini = prog_teardown, .timeout = 120);

/* ahasd's tokens/s over sync's, both of the invocation labelled label:
 * the pairing a user would make by hand. */
static double paired_by_label(const char *db, const char *label)
{
	return prog_q_dbl(
	        db,
	        "SELECT a.tokens_per_s / s.tokens_per_s FROM run_summary a "
	        "JOIN run_summary s ON s.label = a.label AND s.policy = 'sync' "
	        "WHERE a.policy = 'ahasd' AND a.label = '%s'",
	        label);
}

static double sign(double x)
{
	return (x > 0) - (x < 0);
}

/* The sweep as a shell loop: one invocation per bandwidth, each running
 * sync and ahasd. speedup_vs_sync must give every ahasd run the speed-up
 * over the sync run of its own bandwidth, so the trend over bandwidth has
 * the sign of the hand-paired one. (Matched on drafter, preset, models
 * and trace alone, every ahasd run was compared with the last sync run,
 * the one at 512 GB/s, and the trend came out the wrong way round.) */
Test(baseline, pim_bandwidth_trend_of_a_shell_loop)
{
	const char *db = prog_path("loop.db");
	double view[N_BW], hand[N_BW];

	for (size_t i = 0; i < N_BW; i++) {
		char param[64], label[64];

		snprintf(param, sizeof param, "hw.pim.mem_bw=%s",
		         bandwidths[i]);
		snprintf(label, sizeof label, "bw=%s", bandwidths[i]);
		cr_assert_eq(REPLAY("-q", "--db", db, "-p", "sync", "-p",
		                    "ahasd", "-d", "adaedl", "--models",
		                    "llama2-7b:llama2-13b", "-P", param,
		                    "--label", label, prog_src_path(TRACE)),
		             0, "%s", prog_err);
		hand[i] = paired_by_label(db, label);
		view[i] = prog_q_dbl(db,
		                     "SELECT v.speedup FROM speedup_vs_sync v "
		                     "JOIN runs r ON "
		                     "r.id = v.run_id WHERE r.policy = 'ahasd' "
		                     "AND r.label = "
		                     "'%s'",
		                     label);
	}
	/* after the whole loop: later sync runs must not move earlier
	 * answers */
	for (size_t i = 0; i < N_BW; i++) {
		char label[64];

		snprintf(label, sizeof label, "bw=%s", bandwidths[i]);
		view[i] = prog_q_dbl(db,
		                     "SELECT v.speedup FROM speedup_vs_sync v "
		                     "JOIN runs r ON "
		                     "r.id = v.run_id WHERE r.policy = 'ahasd' "
		                     "AND r.label = "
		                     "'%s'",
		                     label);
		cr_expect(fabs(view[i] - hand[i]) <= 1e-12 * hand[i],
		          "%s: speedup_vs_sync %.6f, paired by hand %.6f",
		          label, view[i], hand[i]);
	}
	cr_assert_neq(sign(hand[N_BW - 1] - hand[0]), 0);
	cr_assert_eq(
	        sign(view[N_BW - 1] - view[0]), sign(hand[N_BW - 1] - hand[0]),
	        "trend from 128 to 512 GB/s: speedup_vs_sync %.3f -> %.3f, "
	        "paired by hand %.3f -> %.3f",
	        view[0], view[N_BW - 1], hand[0], hand[N_BW - 1]);
}

/* ---- a version-2 file ------------------------------------------------ */

static void copy_file(const char *from, const char *to)
{
	FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
	char buf[8192];
	size_t n;

	cr_assert(in && out, "%s -> %s", from, to);
	while ((n = fread(buf, 1, sizeof buf, in)) > 0)
		cr_assert_eq(fwrite(buf, 1, n, out), n);
	fclose(in);
	cr_assert_eq(fclose(out), 0);
}

/* Every schema object but run_table's text, as test_db.c compares them. */
static char *objects(sqlite3 *h)
{
	sqlite3_stmt *s = prog_prep(
	        h,
	        "SELECT group_concat(type || '|' || name || '|' || "
	        "ifnull(CASE name WHEN 'run_table' THEN '' ELSE sql END, ''), "
	        "'\n') FROM (SELECT * FROM sqlite_master ORDER BY type, name)");
	char *out;

	cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
	out = strdup((const char *)sqlite3_column_text(s, 0));
	sqlite3_finalize(s);
	return out;
}

/* tests/data/results-schema-v2.sqlite: ahasd-replay 0.1.0 at schema
 * version 2, the shell loop above (runs 1-6: sync and ahasd at 128, 256
 * and 512 GB/s, labels bw=128e9, bw=256e9, bw=512e9; AdaEDL, llama2-7b:
 * llama2-13b on traces/stories260K-skip3-sampled.msgpack) and run 7, async
 * with fixed under label other; then taken out of WAL and VACUUMed. In
 * that file speedup_vs_sync gave the wrong trend. Opened read-write it is
 * upgraded to version 3: the configuration of every old run is read back
 * from its runs row, so speedup_vs_sync and run_table answer the question
 * correctly for runs written before the fix; the rows are kept. */
Test(baseline, upgrade_from_version_2)
{
	const char *p = prog_path("v2.db"), *orig = prog_path("v2-orig.db");
	static const char *const tables[] = { "runs", "metrics", "devices",
		                              "failures", "run_ids" };
	char err[512], sql[1024];
	struct db *d = NULL;
	sqlite3 *h;

	copy_file(prog_src_path("tests/data/results-schema-v2.sqlite"), p);
	copy_file(p, orig);
	cr_assert_eq(prog_q_int(p, "PRAGMA user_version"), 2);

	/* the viewer asks for the upgrade and changes nothing */
	cr_assert_eq(db_open_readonly(&d, p, err, sizeof err), -EPROTONOSUPPORT,
	             "%s", err);
	cr_assert(strstr(err, "schema version 2 is older than this tool's (4)"),
	          "%s", err);

	cr_assert_eq(db_open(&d, p, err, sizeof err), 0, "%s", err);
	h = db_handle(d);
	cr_assert_eq(prog_q_int(p, "PRAGMA user_version"), DB_SCHEMA_VERSION);
	cr_assert_eq(prog_q_int(p,
	                        "SELECT count(*) FROM pragma_integrity_check "
	                        "WHERE integrity_check <> 'ok'"),
	             0);

	/* the old rows, unchanged both ways */
	snprintf(sql, sizeof sql, "ATTACH '%s' AS old", orig);
	cr_assert_eq(sqlite3_exec(h, sql, NULL, NULL, NULL), SQLITE_OK);
	for (size_t i = 0; i < sizeof tables / sizeof *tables; i++) {
		sqlite3_stmt *s;

		snprintf(
		        sql, sizeof sql,
		        "SELECT (SELECT count(*) FROM (SELECT * FROM main.%s "
		        "EXCEPT SELECT * FROM old.%s)) + (SELECT count(*) FROM "
		        "(SELECT * FROM old.%s EXCEPT SELECT * FROM main.%s))",
		        tables[i], tables[i], tables[i], tables[i]);
		s = prog_prep(h, sql);
		cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
		cr_expect_eq(sqlite3_column_int(s, 0), 0, "%s", sql);
		sqlite3_finalize(s);
	}
	cr_assert_eq(sqlite3_exec(h, "DETACH old", NULL, NULL, NULL),
	             SQLITE_OK);
	cr_assert_eq(prog_q_int(p, "SELECT count(*) FROM sequences WHERE "
	                           "batch_tokens IS NOT NULL"),
	             0);
	db_close(&d);

	/* every run has its configuration rows; the swept key as a number */
	cr_assert_eq(prog_q_int(p, "SELECT count(DISTINCT run_id) FROM config"),
	             7);
	cr_assert_eq(prog_q_int(p, "SELECT count(*) FROM run_match"), 7);
	cr_assert_eq(prog_q_int(p, "SELECT value FROM config WHERE run_id = 1 "
	                           "AND key = 'hw.pim.mem_bw'"),
	             128000000000LL);
	cr_assert_eq(prog_q_int(p, "SELECT count(*) FROM config WHERE "
	                           "key = 'hw.pim.mem_bw' AND "
	                           "typeof(value) = 'integer'"),
	             7);
	cr_assert_eq(prog_q_int(p,
	                        "SELECT count(*) FROM config WHERE run_id = 2 "
	                        "AND key = 'model.retargeted_from'"),
	             1);

	/* matched: each ahasd run against the sync run of its own bandwidth,
	 * run 7 (async with fixed: no sync run with fixed) against none */
	for (size_t i = 0; i < N_BW; i++) {
		char label[64];
		double view, hand;

		snprintf(label, sizeof label, "bw=%s", bandwidths[i]);
		hand = paired_by_label(p, label);
		view = prog_q_dbl(p,
		                  "SELECT v.speedup FROM speedup_vs_sync v "
		                  "JOIN runs r ON "
		                  "r.id = v.run_id WHERE r.policy = 'ahasd' "
		                  "AND r.label = "
		                  "'%s'",
		                  label);
		cr_expect(fabs(view - hand) <= 1e-12 * hand,
		          "%s: speedup_vs_sync %.6f, paired by hand %.6f",
		          label, view, hand);
		cr_expect_eq(prog_q_int(p,
		                        "SELECT v.baseline_run_id FROM "
		                        "speedup_vs_sync v JOIN "
		                        "runs r ON r.id = v.run_id WHERE "
		                        "r.policy = 'ahasd' AND "
		                        "r.label = '%s'",
		                        label),
		             2 * (long long)i + 1);
	}
	cr_expect(isnan(prog_q_dbl(p, "SELECT speedup FROM speedup_vs_sync "
	                              "WHERE run_id = 7")));
	cr_expect_eq(prog_q_int(p, "SELECT count(*) FROM speedup_vs_sync"), 7);

	/* the question as one query over the pivoted view */
	cr_expect_eq(prog_q_int(p, "SELECT count(*) FROM run_table WHERE "
	                           "policy = 'ahasd' AND "
	                           "\"hw.pim.mem_bw\" BETWEEN 128e9 AND 512e9 "
	                           "AND speedup IS NOT "
	                           "NULL"),
	             3);
	cr_expect_lt(
	        prog_q_dbl(
	                p,
	                "SELECT (SELECT speedup FROM run_table WHERE policy = "
	                "'ahasd' "
	                "AND \"hw.pim.mem_bw\" = 512e9) - (SELECT speedup FROM "
	                "run_table WHERE policy = 'ahasd' AND "
	                "\"hw.pim.mem_bw\" = "
	                "128e9)"),
	        0, "the advantage shrinks with bandwidth");

	/* the same objects as a new file's */
	{
		const char *fresh = prog_path("fresh.db");
		char *a, *b;

		cr_assert_eq(db_open(&d, fresh, err, sizeof err), 0, "%s", err);
		b = objects(db_handle(d));
		db_close(&d);
		h = prog_db(p);
		a = objects(h);
		sqlite3_close(h);
		cr_assert_str_eq(a, b);
		free(a);
		free(b);
	}
}

/* ---- one command, one query ------------------------------------------- */

/* The question as the README asks it: one sweep, one query over the
 * pivoted view. Each answer is checked against runs matched
 * independently: every bandwidth replayed on its own into a database of
 * its own, where the one sync run is the only possible baseline. */
Test(baseline, pim_bandwidth_trend_of_one_sweep)
{
	const char *db = prog_path("sweep.db");
	double view[N_BW], alone[N_BW];
	sqlite3 *h;
	sqlite3_stmt *s;
	size_t n = 0;

	cr_assert_eq(REPLAY("-q", "--db", db, "-p", "sync", "-p", "ahasd", "-d",
	                    "adaedl", "--models", "llama2-7b:llama2-13b", "-P",
	                    "hw.pim.mem_bw=128e9:512e9:x2",
	                    prog_src_path(TRACE)),
	             0, "%s", prog_err);
	h = prog_db(db);
	s = prog_prep(h,
	              "SELECT \"hw.pim.mem_bw\" / 1e9, speedup FROM run_table "
	              "WHERE policy = 'ahasd' ORDER BY 1");
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		cr_assert_lt(n, N_BW, "more ahasd runs than bandwidths");
		cr_expect_eq(sqlite3_column_double(s, 0), 128.0 * (1 << n));
		view[n++] = sqlite3_column_double(s, 1);
	}
	cr_assert_eq(rc, SQLITE_DONE);
	sqlite3_finalize(s);
	sqlite3_close(h);
	cr_assert_eq(n, N_BW);

	for (size_t i = 0; i < N_BW; i++) {
		char param[64], name[32];
		const char *one;

		snprintf(param, sizeof param, "hw.pim.mem_bw=%s",
		         bandwidths[i]);
		snprintf(name, sizeof name, "alone%zu.db", i);
		one = prog_path(name);
		cr_assert_eq(REPLAY("-q", "--db", one, "-p", "sync", "-p",
		                    "ahasd", "-d", "adaedl", "--models",
		                    "llama2-7b:llama2-13b", "-P", param,
		                    prog_src_path(TRACE)),
		             0, "%s", prog_err);
		alone[i] = prog_q_dbl(one, "SELECT a.tokens_per_s / "
		                           "s.tokens_per_s FROM run_summary "
		                           "a, run_summary s WHERE a.policy = "
		                           "'ahasd' AND s.policy = "
		                           "'sync'");
		cr_expect_eq(view[i], alone[i],
		             "%s GB/s: %.6f in the sweep, "
		             "%.6f alone",
		             bandwidths[i], view[i], alone[i]);
	}
	cr_assert_neq(sign(alone[N_BW - 1] - alone[0]), 0);
	cr_assert_eq(sign(view[N_BW - 1] - view[0]),
	             sign(alone[N_BW - 1] - alone[0]),
	             "trend from 128 to 512 GB/s: %.3f -> %.3f in the sweep, "
	             "%.3f -> %.3f alone",
	             view[0], view[N_BW - 1], alone[0], alone[N_BW - 1]);
}
