/* test_db.c - results database: real SQLite files in a temporary directory,
 * written through db.h and read back through the plain sqlite3 API. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <dirent.h>

#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "db.h"
#include "fixtures.h"

static char err[512];

static void setup(void)
{
	fx_tmpdir_make("db");
	err[0] = '\0';
}

static sqlite3 *raw_open(const char *path)
{
	sqlite3 *h = NULL;

	cr_assert_eq(sqlite3_open_v2(path, &h,
	                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
	                             NULL),
	             SQLITE_OK, "open %s", path);
	return h;
}

static void raw_exec(sqlite3 *h, const char *sql)
{
	char *msg = NULL;
	const int rc = sqlite3_exec(h, sql, NULL, NULL, &msg);

	cr_assert_eq(rc, SQLITE_OK, "%s: %s", sql, msg ? msg : "");
}

static int64_t q_int(sqlite3 *h, const char *sql)
{
	sqlite3_stmt *s = NULL;
	int64_t v;

	cr_assert_eq(sqlite3_prepare_v2(h, sql, -1, &s, NULL), SQLITE_OK,
	             "%s: %s", sql, sqlite3_errmsg(h));
	cr_assert_eq(sqlite3_step(s), SQLITE_ROW, "%s: no row", sql);
	v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return v;
}

static double q_dbl(sqlite3 *h, const char *sql)
{
	sqlite3_stmt *s = NULL;
	double v;

	cr_assert_eq(sqlite3_prepare_v2(h, sql, -1, &s, NULL), SQLITE_OK,
	             "%s: %s", sql, sqlite3_errmsg(h));
	cr_assert_eq(sqlite3_step(s), SQLITE_ROW, "%s: no row", sql);
	cr_assert_eq(sqlite3_column_type(s, 0), SQLITE_FLOAT, "%s: not REAL",
	             sql);
	v = sqlite3_column_double(s, 0);
	sqlite3_finalize(s);
	return v;
}

/* First column of the first row as text ("(null)" for NULL); static. */
static const char *q_text(sqlite3 *h, const char *sql)
{
	static char buf[1024];
	sqlite3_stmt *s = NULL;
	const unsigned char *t;

	cr_assert_eq(sqlite3_prepare_v2(h, sql, -1, &s, NULL), SQLITE_OK,
	             "%s: %s", sql, sqlite3_errmsg(h));
	cr_assert_eq(sqlite3_step(s), SQLITE_ROW, "%s: no row", sql);
	t = sqlite3_column_text(s, 0);
	snprintf(buf, sizeof buf, "%s", t ? (const char *)t : "(null)");
	sqlite3_finalize(s);
	return buf;
}

static int64_t count_path(const char *path, const char *table)
{
	char sql[128];
	sqlite3 *h = raw_open(path);
	int64_t n;

	snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", table);
	n = q_int(h, sql);
	sqlite3_close(h);
	return n;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	cr_assert_not_null(f, "%s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	cr_assert_not_null(buf);
	cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static struct db_run_info make_info(const char *policy, const char *drafter)
{
	struct db_run_info in = {
		.tool_version = "0.1.0-test",
		.label = "unit",
		.policy = policy,
		.policy_version = "1.0",
		.policy_params = "a=1,b=2",
		.policy_path = "/plugins/policy.so",
		.drafter = drafter,
		.drafter_version = "2.0",
		.drafter_params = "k=4",
		.drafter_path = "/plugins/drafter.so",
		.hw_preset = "npu-pim",
		.hw_config = "npu.freq_hz = 1e9\npim.freq_hz = 5e8\n",
		.trace_path = "traces/t.msgpack",
		.trace_sha256 = "ab12",
		.draft_model = "stories15M",
		.target_model = "stories110M",
		.retargeted_from = NULL,
		.sampled = 1,
		.seed = 42,
		.queue_capacity = 16,
		.max_draft = 8,
		.device_names = { "npu", "pim" },
		.n_dev = 2,
	};
	return in;
}

/* Metrics of the round-trip run; derived values worked out below. */
static struct replay_metrics make_metrics(void)
{
	struct replay_metrics m = {
		.sequences = 3,
		.committed = 300,
		.time_s = 2.0,
		.energy_j = 6.0,
		.dynamic_j = 4.5,
		.static_j = 1.5,
		.busy_s = { 1.5, 0.5 },
		.idle_s = { 0.5, 1.5 },
		.dev_energy_j = { 4.0, 2.0 },
		.drafted = 400,
		.accepted = 240,
		.wasted = 160,
		.wasted_draft_s = 0.25,
		.wasted_draft_j = 0.125,
		.preverified = 50,
		.preverify_tasks = 10,
		.preverify_rejections = 4,
		.batches = 80,
		.batch_tokens =
		        360, /* 40 drafted in chains dropped while open */
		.lookahead_batches = 20,
		.verifications = 70,
		.switches = 2,
		.waits = 5,
		.events_dropped = 0,
		.offload_s = 0.125,
		.contention_s = 0.375,
		.offload_bytes = 600,
	};
	return m;
}

/* One committed run with only headline numbers; returns its id. */
static int64_t add_run(struct db *d, const char *policy, const char *drafter,
                       uint64_t committed, double time_s, double energy_j)
{
	struct db_run_info in = make_info(policy, drafter);
	struct replay_metrics m = make_metrics();
	int64_t id = 0;

	m.committed = committed;
	m.time_s = time_s;
	m.energy_j = energy_j;
	cr_assert_eq(db_run_begin(d, &in, &id, err, sizeof err), 0, "%s", err);
	cr_assert_eq(
	        db_run_commit(d, id, &m, 0.01, NULL, NULL, 0, err, sizeof err),
	        0, "%s", err);
	return id;
}

TestSuite(db, .init = setup, .fini = fx_tmpdir_remove, .timeout = 60);

Test(db, create_and_reopen_keeps_runs)
{
	const char *p = fx_path("results.db");
	struct db *d = NULL;
	sqlite3 *h;
	int64_t id1, id2;

	cr_assert_eq(db_open(&d, p, err, sizeof err), 0, "%s", err);
	id1 = add_run(d, "sync", "pld", 100, 1.0, 1.0);
	db_close(&d);
	cr_assert_null(d);
	db_close(&d); /* NULL is fine */

	cr_assert_eq(db_open(&d, p, err, sizeof err), 0, "%s", err);
	id2 = add_run(d, "ahasd", "pld", 100, 1.0, 1.0);
	cr_assert_gt(id2, id1);
	h = db_handle(d);
	cr_assert_eq(q_int(h, "SELECT count(*) FROM runs"), 2);
	db_close(&d);

	h = raw_open(p);
	cr_assert_eq(q_int(h, "PRAGMA user_version"), DB_SCHEMA_VERSION);
	cr_assert_eq(q_int(h, "PRAGMA application_id"), DB_APPLICATION_ID);
	cr_assert_str_eq(q_text(h, "PRAGMA journal_mode"), "wal");
	cr_assert_eq(q_int(h, "SELECT count(*) FROM runs"), 2);
	cr_assert_str_eq(q_text(h, "SELECT policy FROM runs ORDER BY id"),
	                 "sync");
	sqlite3_close(h);
}

/* Every object of the file, one "type|name|table|sql" line each; malloc'd. */
static char *schema_list(sqlite3 *h)
{
	sqlite3_stmt *s = NULL;
	char *out;

	/* run_table's columns are the configuration keys its runs have (db.c
	 * makes it again when one appears): only its presence counts */
	cr_assert_eq(sqlite3_prepare_v2(h,
	                                "SELECT group_concat(type || '|' || "
	                                "name || '|' || tbl_name || "
	                                "'|' || ifnull(CASE name WHEN "
	                                "'run_table' THEN '(by db.c)' "
	                                "ELSE sql END, ''), '\n') FROM (SELECT "
	                                "* FROM sqlite_master "
	                                "ORDER BY type, name)",
	                                -1, &s, NULL),
	             SQLITE_OK);
	cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
	out = strdup((const char *)sqlite3_column_text(s, 0));
	cr_assert_not_null(out);
	sqlite3_finalize(s);
	return out;
}

/* What executing db/schema.sql on an empty file makes. */
static char *schema_sql_list(void)
{
	const char *root = getenv("AHASD_SOURCE_ROOT");
	char sqlpath[512], *schema, *list;
	sqlite3 *h;
	size_t len;

	cr_assert_not_null(root, "AHASD_SOURCE_ROOT not set");
	snprintf(sqlpath, sizeof sqlpath, "%s/db/schema.sql", root);
	schema = slurp(sqlpath, &len);
	h = raw_open(fx_path("schema-sql.db"));
	raw_exec(h, schema);
	list = schema_list(h);
	sqlite3_close(h);
	free(schema);
	return list;
}

/* The migrations in db.c are db/schema.sql: a database made by db_open and
 * one made by executing schema.sql hold exactly the same objects. */
Test(db, migration_matches_schema_sql)
{
	struct db *d = NULL;
	char *a, *b;

	cr_assert_eq(db_open(&d, fx_path("a.db"), err, sizeof err), 0, "%s",
	             err);
	a = schema_list(db_handle(d));
	db_close(&d);
	b = schema_sql_list();

	cr_assert_gt(strlen(a), 4000);
	cr_assert_str_eq(a, b);
	free(a);
	free(b);
}

static void copy_file(const char *from, const char *to)
{
	size_t n;
	char *buf = slurp(from, &n);
	FILE *f = fopen(to, "wb");

	cr_assert_not_null(f, "%s", to);
	cr_assert_eq(fwrite(buf, 1, n, f), n);
	cr_assert_eq(fclose(f), 0);
	free(buf);
}

/* A file the tool wrote at schema version 1
 * (tests/data/results-schema-v1.sqlite: ahasd-replay 0.1.0, two runs, sync
 * and ahasd with adaedl on traces/stories260K-skip3-greedy.msgpack with
 * --events --max-events 40, label v1-fixture, then taken out of WAL and
 * VACUUMed)
 * is upgraded the first time it is opened read-write: every row is kept
 * as it was, the new tables are there, and the objects are those of
 * schema.sql. Ids go on from the last run's. */
Test(db, upgrade_from_version_1)
{
	static const char *const tables[] = { "runs", "metrics", "devices",
		                              "sequences", "events" };
	const char *root = getenv("AHASD_SOURCE_ROOT");
	const char *p = fx_path("v1.db"), *orig = fx_path("v1-orig.db");
	char fixture[512], sql[768], *a, *b;
	struct db *d = NULL;
	sqlite3 *h;
	int64_t id;

	cr_assert_not_null(root, "AHASD_SOURCE_ROOT not set");
	snprintf(fixture, sizeof fixture,
	         "%s/tests/data/results-schema-v1.sqlite", root);
	copy_file(fixture, p);
	copy_file(fixture, orig);
	h = raw_open(p);
	cr_assert_eq(q_int(h, "PRAGMA user_version"), 1);
	cr_assert_eq(q_int(h, "SELECT count(*) FROM runs"), 2);
	sqlite3_close(h);

	/* the viewer asks for the upgrade, and changes nothing */
	cr_assert_eq(db_open_readonly(&d, p, err, sizeof err), -EPROTONOSUPPORT,
	             "%s", err);
	cr_assert(strstr(err, "schema version 1 is older than this tool's (4)"),
	          "%s", err);

	cr_assert_eq(db_open(&d, p, err, sizeof err), 0, "%s", err);
	h = db_handle(d);
	cr_assert_eq(q_int(h, "PRAGMA user_version"), DB_SCHEMA_VERSION);
	cr_assert_eq(q_int(h, "PRAGMA application_id"), DB_APPLICATION_ID);
	cr_assert_str_eq(q_text(h, "PRAGMA integrity_check"), "ok");
	cr_assert_eq(q_int(h, "SELECT last FROM run_ids"), 2);
	cr_assert_eq(q_int(h, "SELECT count(*) FROM failures"), 0);
	id = add_run(d, "sync", "pld", 10, 1.0, 1.0);
	cr_assert_eq(id, 3);

	/* the version 1 rows, unchanged, both ways */
	snprintf(sql, sizeof sql, "ATTACH '%s' AS old", orig);
	raw_exec(h, sql);
	for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
		const char *key = i ? "run_id" : "id";
		/* sequences gained batch_tokens (NULL in these rows) */
		const char *cols =
		        strcmp(tables[i], "sequences")
		                ? "*"
		                : "run_id, seq, prompt_len, committed, time_s, "
		                  "energy_j, drafted, accepted, wasted, "
		                  "preverified, "
		                  "batches, verifications";

		cr_assert_gt(q_int(h, (snprintf(sql, sizeof sql,
		                                "SELECT count(*) FROM old.%s",
		                                tables[i]),
		                       sql)),
		             0);
		snprintf(sql, sizeof sql,
		         "SELECT count(*) FROM (SELECT %s FROM main.%s WHERE "
		         "%s <= 2 EXCEPT SELECT * FROM old.%s)",
		         cols, tables[i], key, tables[i]);
		cr_assert_eq(q_int(h, sql), 0, "%s", sql);
		snprintf(sql, sizeof sql,
		         "SELECT count(*) FROM (SELECT * FROM old.%s EXCEPT "
		         "SELECT %s FROM main.%s)",
		         tables[i], cols, tables[i]);
		cr_assert_eq(q_int(h, sql), 0, "%s", sql);
	}
	cr_assert_eq(q_int(h,
	                   "SELECT count(*) FROM sequences WHERE run_id <= 2 "
	                   "AND batch_tokens IS NOT NULL"),
	             0);
	raw_exec(h, "DETACH old");
	a = schema_list(h);
	db_close(&d);
	b = schema_sql_list();
	cr_assert_str_eq(a, b);
	free(a);
	free(b);

	/* and the upgraded file opens as it is, read-only too */
	cr_assert_eq(db_open_readonly(&d, p, err, sizeof err), 0, "%s", err);
	cr_assert_eq(q_int(db_handle(d), "SELECT count(*) FROM runs"), 3);
	db_close(&d);
}

/* A synchronous run on a platform with a PIM records the PIM's share of
 * each batch's latency: min, mean (sum / batches) and max. */
Test(db, pim_share_metrics)
{
	const char *p = fx_path("share.db");
	struct db_run_info in = make_info("sync", "fixed");
	struct replay_metrics m = make_metrics();
	struct db *d = NULL;
	int64_t id = 0;
	m.share_batches = 4;
	m.pim_share_min = 0.125;
	m.pim_share_max = 0.75;
	m.pim_share_sum = 1.5;
	cr_assert_eq(db_open(&d, p, err, sizeof err), 0, "%s", err);
	cr_assert_eq(db_run_begin(d, &in, &id, err, sizeof err), 0, "%s", err);
	cr_assert_eq(
	        db_run_commit(d, id, &m, 0.01, NULL, NULL, 0, err, sizeof err),
	        0, "%s", err);
	sqlite3 *h = db_handle(d);
	cr_assert_float_eq(q_dbl(h, "SELECT value FROM metrics WHERE name = "
	                            "'pim_share_min'"),
	                   0.125, 1e-15);
	cr_assert_float_eq(q_dbl(h, "SELECT value FROM metrics WHERE name = "
	                            "'pim_share_mean'"),
	                   0.375, 1e-15);
	cr_assert_float_eq(q_dbl(h, "SELECT value FROM metrics WHERE name = "
	                            "'pim_share_max'"),
	                   0.75, 1e-15);
	db_close(&d);
}

Test(db, full_run_round_trip)
{
	const char *p = fx_path("results.db");
	struct db_run_info in = make_info("ahasd", "edc");
	const struct replay_metrics m = make_metrics();
	const struct replay_seq_result seqs[3] = {
		{ 0, 10, 100, 0.5, 1.5, 130, 80, 50, 20, 26, 23, 120 },
		{ 1, 12, 120, 0.75, 2.5, 160, 100, 60, 20, 32, 28, 150 },
		{ 2, 14, 80, 0.75, 2.0, 110, 60, 50, 10, 22, 19, 90 },
	};
	const struct replay_event evs[4] = {
		{ 0, REPLAY_EV_DRAFT, 0.0, 0.1, 1, 0, 1, REPLAY_OUT_NONE },
		{ 1, REPLAY_EV_PREVERIFY, 0.1, 0.3, 4, 0, 1,
		  REPLAY_OUT_REJECTED },
		{ 0, REPLAY_EV_VERIFY, 0.1, 0.4, 5, 0, 1, REPLAY_OUT_ACCEPTED },
		{ 1, REPLAY_EV_IDLE, 0.3, 0.5, 0, 2, 0, REPLAY_OUT_WASTED },
	};
	const char *extra_names[] = { "policy.edc_predictions",
		                      "drafter.stops" };
	const double extra_values[] = { 17.0, 3.5 };
	struct db *d = NULL;
	int64_t id = 0;
	sqlite3 *h;
	sqlite3_stmt *s;

	in.retargeted_from = "tinyA:tinyB";
	in.seed = 123456789012345ull;
	cr_assert_eq(db_open(&d, p, err, sizeof err), 0, "%s", err);
	cr_assert_eq(db_run_begin(d, &in, &id, err, sizeof err), 0, "%s", err);
	cr_assert_gt(id, 0);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(db_run_sequence(d, id, &seqs[i], err, sizeof err),
		             0, "%s", err);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(db_run_event(d, id, &evs[i], err, sizeof err), 1,
		             "%s", err);
	cr_assert_eq(db_run_commit(d, id, &m, 1.25, extra_names, extra_values,
	                           2, err, sizeof err),
	             0, "%s", err);
	db_close(&d);

	h = raw_open(p);
	/* runs row */
	cr_assert_str_eq(q_text(h, "SELECT policy || ' ' || policy_version || "
	                           "' ' || policy_params || ' ' || policy_path "
	                           "FROM runs"),
	                 "ahasd 1.0 a=1,b=2 /plugins/policy.so");
	cr_assert_str_eq(q_text(h, "SELECT drafter || ' ' || drafter_version "
	                           "|| ' ' || drafter_params || ' ' || "
	                           "drafter_path FROM runs"),
	                 "edc 2.0 k=4 /plugins/drafter.so");
	cr_assert_str_eq(q_text(h, "SELECT hw_config FROM runs"),
	                 "npu.freq_hz = 1e9\npim.freq_hz = 5e8\n");
	cr_assert_str_eq(q_text(h, "SELECT retargeted_from FROM runs"),
	                 "tinyA:tinyB");
	cr_assert_str_eq(q_text(h,
	                        "SELECT label || ' ' || tool_version || ' ' "
	                        "|| trace_path || ' ' || trace_sha256 || ' ' "
	                        "|| draft_model || ':' || target_model "
	                        "FROM runs"),
	                 "unit 0.1.0-test traces/t.msgpack ab12 "
	                 "stories15M:stories110M");
	cr_assert_eq(q_int(h, "SELECT seed FROM runs"), 123456789012345ll);
	cr_assert_eq(q_int(h, "SELECT sampled FROM runs"), 1);
	cr_assert_eq(q_int(h, "SELECT queue_capacity FROM runs"), 16);
	cr_assert_eq(q_int(h, "SELECT max_draft FROM runs"), 8);
	cr_assert_float_eq(q_dbl(h, "SELECT wall_s FROM runs"), 1.25, 1e-12);
	/* created: "YYYY-MM-DDTHH:MM:SS.mmmZ", and close to now */
	{
		const char *c = q_text(h, "SELECT created FROM runs");
		const double age = (double)q_int(
		        h, "SELECT strftime('%s','now') - "
		           "strftime('%s', created) FROM runs");

		cr_assert_eq(strlen(c), 24, "%s", c);
		cr_assert_eq(c[10], 'T');
		cr_assert_eq(c[23], 'Z');
		cr_assert(age >= 0 && age < 60, "created %s", c);
	}

	/* sequences, by value */
	cr_assert_eq(q_int(h, "SELECT count(*) FROM sequences"), 3);
	cr_assert_eq(sqlite3_prepare_v2(h,
	                                "SELECT seq, prompt_len, committed, "
	                                "time_s, energy_j, drafted, accepted, "
	                                "wasted, preverified, batches, "
	                                "verifications, run_id FROM sequences "
	                                "ORDER BY seq",
	                                -1, &s, NULL),
	             SQLITE_OK);
	for (int i = 0; i < 3; i++) {
		const struct replay_seq_result *q = &seqs[i];

		cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
		cr_assert_eq(sqlite3_column_int64(s, 0), q->seq);
		cr_assert_eq(sqlite3_column_int64(s, 1), q->prompt_len);
		cr_assert_eq(sqlite3_column_int64(s, 2), q->committed);
		cr_assert_float_eq(sqlite3_column_double(s, 3), q->time_s,
		                   1e-12);
		cr_assert_float_eq(sqlite3_column_double(s, 4), q->energy_j,
		                   1e-12);
		cr_assert_eq(sqlite3_column_int64(s, 5), (int64_t)q->drafted);
		cr_assert_eq(sqlite3_column_int64(s, 6), (int64_t)q->accepted);
		cr_assert_eq(sqlite3_column_int64(s, 7), (int64_t)q->wasted);
		cr_assert_eq(sqlite3_column_int64(s, 8),
		             (int64_t)q->preverified);
		cr_assert_eq(sqlite3_column_int64(s, 9), (int64_t)q->batches);
		cr_assert_eq(sqlite3_column_int64(s, 10),
		             (int64_t)q->verifications);
		cr_assert_eq(sqlite3_column_int64(s, 11), id);
	}
	sqlite3_finalize(s);

	/* events: idx in recording order, kinds and outcomes as text */
	cr_assert_str_eq(q_text(h, "SELECT group_concat(idx || ':' || device "
	                           "|| ':' || kind || ':' || outcome || ':' || "
	                           "tokens || ':' || seq || ':' || batch, ' ') "
	                           "FROM (SELECT * FROM events ORDER BY idx)"),
	                 "0:0:draft:none:1:0:1 1:1:preverify:rejected:4:0:1 "
	                 "2:0:verify:accepted:5:0:1 3:1:idle:wasted:0:2:0");
	cr_assert_float_eq(q_dbl(h, "SELECT end_s FROM events WHERE idx = 2"),
	                   0.4, 1e-12);

	/* metrics: 30 standard + 3 per device x 2 + 2 extra = 38; the PIM's
	 * share of step latency only for synchronous runs (share_batches > 0,
	 * a case of its own below) */
	cr_assert_eq(q_int(h, "SELECT count(*) FROM metrics"), 38);
	cr_assert_eq(q_int(h, "SELECT count(*) FROM metrics WHERE name LIKE "
	                      "'pim_share%'"),
	             0);
#define METRIC(name, want)                                                     \
	cr_assert_float_eq(                                                    \
	        q_dbl(h, "SELECT value FROM metrics WHERE name = '" name "'"), \
	        (want), 1e-12, "metric %s", name)
	METRIC("sequences", 3.0);
	METRIC("committed", 300.0);
	METRIC("time_s", 2.0);
	METRIC("tokens_per_s", 150.0); /* 300 / 2 s */
	METRIC("energy_j", 6.0);
	METRIC("dynamic_j", 4.5);
	METRIC("static_j", 1.5);
	METRIC("tokens_per_j", 50.0);       /* 300 / 6 J */
	METRIC("energy_per_token_j", 0.02); /* 6 J / 300 */
	METRIC("drafted", 400.0);
	METRIC("accepted", 240.0);
	METRIC("wasted", 160.0);
	METRIC("wasted_draft_s", 0.25);
	METRIC("wasted_draft_j", 0.125);
	METRIC("preverified", 50.0);
	METRIC("preverify_tasks", 10.0);
	METRIC("preverify_rejections", 4.0);
	METRIC("batches", 80.0);
	METRIC("batch_tokens", 360.0);
	METRIC("lookahead_batches", 20.0);
	METRIC("verifications", 70.0);
	METRIC("switches", 2.0);
	METRIC("waits", 5.0);
	METRIC("events_dropped", 0.0);
	METRIC("acceptance_rate", 0.6); /* 240 / 400 */
	METRIC("mean_draft_len", 4.5);  /* 360 / 80, not drafted */
	METRIC("offload_s", 0.125);
	METRIC("contention_s", 0.375);
	METRIC("offload_bytes", 600.0);
	METRIC("offload_bytes_per_token", 2.0); /* 600 / 300 */
	METRIC("npu.busy_s", 1.5);
	METRIC("npu.idle_s", 0.5);
	METRIC("npu.utilisation", 0.75); /* 1.5 / 2 */
	METRIC("pim.busy_s", 0.5);
	METRIC("pim.idle_s", 1.5);
	METRIC("pim.utilisation", 0.25); /* 0.5 / 2 */
	METRIC("policy.edc_predictions", 17.0);
	METRIC("drafter.stops", 3.5);
#undef METRIC

	/* devices */
	cr_assert_str_eq(q_text(h, "SELECT group_concat(idx || ':' || name || "
	                           "':' || busy_s || ':' || idle_s || ':' || "
	                           "energy_j, ' ') FROM (SELECT * FROM devices "
	                           "ORDER BY idx)"),
	                 "0:npu:1.5:0.5:4.0 1:pim:0.5:1.5:2.0");

	/* the summary view over this run */
	cr_assert_float_eq(q_dbl(h, "SELECT tokens_per_s FROM run_summary"),
	                   150.0, 1e-12);
	cr_assert_str_eq(q_text(h, "SELECT models FROM run_summary"),
	                 "stories15M:stories110M");
	sqlite3_close(h);
}

/* Zero denominators give 0, not inf or NaN (which would store NULL). */
Test(db, empty_run_ratios_are_zero)
{
	struct db_run_info in = make_info("sync", "pld");
	const struct replay_metrics m = { 0 };
	struct db *d = NULL;
	int64_t id;
	sqlite3 *h;

	in.n_dev = 1;
	cr_assert_eq(db_open(&d, fx_path("r.db"), err, sizeof err), 0);
	cr_assert_eq(db_run_begin(d, &in, &id, err, sizeof err), 0, "%s", err);
	cr_assert_eq(
	        db_run_commit(d, id, &m, 0.0, NULL, NULL, 0, err, sizeof err),
	        0, "%s", err);
	h = db_handle(d);
	cr_assert_eq(q_int(h, "SELECT count(*) FROM metrics WHERE name IN "
	                      "('tokens_per_s', 'tokens_per_j', "
	                      "'energy_per_token_j', 'acceptance_rate', "
	                      "'mean_draft_len', 'npu.utilisation') AND "
	                      "value = 0"),
	             6);
	cr_assert_eq(q_int(h, "SELECT count(*) FROM devices"), 1);
	db_close(&d);
}

static void assert_empty(const char *p)
{
	static const char *const tables[] = { "runs", "metrics", "devices",
		                              "sequences", "events" };

	for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++)
		cr_assert_eq(count_path(p, tables[i]), 0, "%s not empty",
		             tables[i]);
}

static void write_partial_run(struct db *d, int64_t *id)
{
	const struct db_run_info in = make_info("ahasd", "pld");
	const struct replay_seq_result q = { 0,  5,  50, 0.1, 0.2, 60,
		                             40, 20, 0,  12,  11,  55 };
	const struct replay_event ev = { 0, REPLAY_EV_DRAFT, 0.0, 0.1, 1, 0,
		                         1, REPLAY_OUT_NONE };

	cr_assert_eq(db_run_begin(d, &in, id, err, sizeof err), 0, "%s", err);
	cr_assert_eq(db_run_sequence(d, *id, &q, err, sizeof err), 0, "%s",
	             err);
	cr_assert_eq(db_run_event(d, *id, &ev, err, sizeof err), 1, "%s", err);
}

Test(db, rollback_leaves_no_rows)
{
	const char *p = fx_path("r.db");
	const struct replay_metrics m = make_metrics();
	struct db *d = NULL;
	int64_t id;

	cr_assert_eq(db_open(&d, p, err, sizeof err), 0, "%s", err);
	write_partial_run(d, &id);
	/* another connection sees nothing of the open run */
	cr_assert_eq(count_path(p, "runs"), 0);
	db_run_rollback(d);
	db_run_rollback(d); /* nothing open: harmless */
	assert_empty(p);
	/* the run is gone: later calls on it are refused */
	cr_assert_eq(
	        db_run_commit(d, id, &m, 0, NULL, NULL, 0, err, sizeof err),
	        -EINVAL);
	cr_assert(strstr(err, "no run open"), "%s", err);
	db_close(&d);
	assert_empty(p);
}

Test(db, close_with_open_run_rolls_back)
{
	const char *p = fx_path("r.db");
	struct db *d = NULL;
	int64_t id;

	cr_assert_eq(db_open(&d, p, err, sizeof err), 0, "%s", err);
	write_partial_run(d, &id);
	db_close(&d);
	assert_empty(p);
}

/* Errors inside a run roll it back: a metric named twice (a plugin counter
 * clashing with a standard name), a NaN value, a bad event, a wrong id. */
enum bad_kind {
	BAD_DUP_NAME,
	BAD_NAN,
	BAD_EVENT_KIND,
	BAD_EVENT_DEVICE,
	BAD_RUN_ID
};
struct bad_case {
	enum bad_kind kind;
	char want[64];
};

ParameterizedTestParameters(db, error_rolls_back)
{
	static struct bad_case cases[] = {
		{ BAD_DUP_NAME, "metric 'time_s' given twice" },
		{ BAD_NAN, "metric 'policy.x' is NaN" },
		{ BAD_EVENT_KIND, "invalid event (kind 9" },
		{ BAD_EVENT_DEVICE, "device 2 of 2" },
		{ BAD_RUN_ID, "is not the open run" },
	};
	return cr_make_param_array(struct bad_case, cases,
	                           sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct bad_case *c, db, error_rolls_back)
{
	const char *p = fx_path("r.db");
	const struct replay_metrics m = make_metrics();
	struct replay_event ev = { 0, REPLAY_EV_VERIFY, 0.0, 0.1, 1, 0,
		                   1, REPLAY_OUT_NONE };
	const char *names[1] = { "time_s" };
	double values[1] = { 1.0 };
	struct db *d = NULL;
	int64_t id;
	int r = 0;

	cr_assert_eq(db_open(&d, p, err, sizeof err), 0, "%s", err);
	write_partial_run(d, &id);
	switch (c->kind) {
	case BAD_DUP_NAME:
		r = db_run_commit(d, id, &m, 0, names, values, 1, err,
		                  sizeof err);
		break;
	case BAD_NAN:
		names[0] = "policy.x";
		values[0] = NAN;
		r = db_run_commit(d, id, &m, 0, names, values, 1, err,
		                  sizeof err);
		break;
	case BAD_EVENT_KIND:
		ev.kind = (enum replay_event_kind)9;
		r = db_run_event(d, id, &ev, err, sizeof err);
		break;
	case BAD_EVENT_DEVICE:
		ev.device = 2;
		r = db_run_event(d, id, &ev, err, sizeof err);
		break;
	case BAD_RUN_ID:
		r = db_run_commit(d, id + 1, &m, 0, NULL, NULL, 0, err,
		                  sizeof err);
		break;
	}
	cr_assert_eq(r, -EINVAL, "r = %d", r);
	cr_assert(strstr(err, c->want), "'%s' lacks '%s'", err, c->want);
	assert_empty(p);
	/* the handle is usable again */
	add_run(d, "sync", "pld", 10, 1.0, 1.0);
	cr_assert_eq(count_path(p, "runs"), 1);
	db_close(&d);
}

/* Runs on the same trace/drafter/models/preset:
 *   id1 sync  pld  1000 tok, 10 s, 50 J -> 100 tok/s, 20 tok/J
 *   id2 ahasd pld  1000 tok,  4 s, 40 J -> 250 tok/s, 25 tok/J
 *   id3 ahasd pld  1000 tok,  5 s, 50 J -> 200 tok/s, 20 tok/J
 *   id4 ahasd other drafter               -> no sync baseline: NULL
 * speedup_vs_sync: id1 1.0 / 1.0, id2 250/100 = 2.5 / 25/20 = 1.25,
 *                  id3 200/100 = 2.0 / 20/20 = 1.0.
 * policy_summary (ahasd, pld): 2 runs, (250+200)/2 = 225 tok/s,
 *                               (25+20)/2 = 22.5 tok/J.
 * Then id5 sync pld 1000 tok, 8 s, 40 J -> 125 tok/s, 25 tok/J becomes the
 * baseline (most recent): id2 250/125 = 2.0 / 25/25 = 1.0. */
Test(db, views)
{
	struct db *d = NULL;
	int64_t id1, id2, id3, id4, id5;
	char sql[256];
	sqlite3 *h;

	cr_assert_eq(db_open(&d, fx_path("v.db"), err, sizeof err), 0, "%s",
	             err);
	id1 = add_run(d, "sync", "pld", 1000, 10.0, 50.0);
	id2 = add_run(d, "ahasd", "pld", 1000, 4.0, 40.0);
	id3 = add_run(d, "ahasd", "pld", 1000, 5.0, 50.0);
	id4 = add_run(d, "ahasd", "other", 1000, 5.0, 50.0);
	h = db_handle(d);

	cr_assert_eq(q_int(h, "SELECT count(*) FROM run_summary"), 4);
	snprintf(sql, sizeof sql,
	         "SELECT tokens_per_j FROM run_summary WHERE run_id = %lld",
	         (long long)id2);
	cr_assert_float_eq(q_dbl(h, sql), 25.0, 1e-9);

	cr_assert_eq(q_int(h, "SELECT count(*) FROM speedup_vs_sync"), 4);
	snprintf(sql, sizeof sql,
	         "SELECT count(*) FROM speedup_vs_sync WHERE run_id = %lld "
	         "AND speedup IS NULL AND energy_gain IS NULL AND "
	         "baseline_run_id IS NULL",
	         (long long)id4);
	cr_assert_eq(q_int(h, sql), 1);
#define SPEEDUP(id, col, want)                                                 \
	do {                                                                   \
		snprintf(sql, sizeof sql,                                      \
		         "SELECT " col " FROM speedup_vs_sync WHERE run_id = " \
		         "%lld",                                               \
		         (long long)(id));                                     \
		cr_assert_float_eq(q_dbl(h, sql), (want), 1e-9, "%s", sql);    \
	} while (0)
	SPEEDUP(id1, "speedup", 1.0);
	SPEEDUP(id1, "energy_gain", 1.0);
	SPEEDUP(id2, "speedup", 2.5);
	SPEEDUP(id2, "energy_gain", 1.25);
	SPEEDUP(id3, "speedup", 2.0);
	SPEEDUP(id3, "energy_gain", 1.0);

	cr_assert_eq(q_int(h, "SELECT runs FROM policy_summary WHERE policy = "
	                      "'ahasd' AND drafter = 'pld'"),
	             2);
	cr_assert_float_eq(q_dbl(h, "SELECT tokens_per_s FROM policy_summary "
	                            "WHERE policy = 'ahasd' AND drafter = "
	                            "'pld'"),
	                   225.0, 1e-9);
	cr_assert_float_eq(q_dbl(h, "SELECT tokens_per_j FROM policy_summary "
	                            "WHERE policy = 'ahasd' AND drafter = "
	                            "'pld'"),
	                   22.5, 1e-9);

	id5 = add_run(d, "sync", "pld", 1000, 8.0, 40.0);
	cr_assert_gt(id5, id1);
	SPEEDUP(id2, "speedup", 2.0);
	SPEEDUP(id2, "energy_gain", 1.0);
#undef SPEEDUP
	db_close(&d);
}

/* Files that must be refused, byte-for-byte unchanged. */
enum foreign_kind {
	F_NOT_SQLITE,
	F_OTHER_TABLES,
	F_OTHER_APP_ID,
	F_USER_VERSION_ONLY,
	F_NEWER,
	F_OURS_VERSION_0
};
struct foreign_case {
	enum foreign_kind kind;
	char want[96];
	int code;
};

ParameterizedTestParameters(db, refuses_foreign_file)
{
	static struct foreign_case cases[] = {
		{ F_NOT_SQLITE, "not an SQLite database", -EINVAL },
		{ F_OTHER_TABLES,
		  "not an ahasd-replay database (application_id 0,", -EINVAL },
		{ F_OTHER_APP_ID,
		  "not an ahasd-replay database (application_id 0x12345678",
		  -EINVAL },
		{ F_USER_VERSION_ONLY,
		  "not an ahasd-replay database (application_id 0, "
		  "user_version 7",
		  -EINVAL },
		{ F_NEWER,
		  "schema version 5 is newer than this tool's (4); upgrade "
		  "ahasd-replay",
		  -EPROTONOSUPPORT },
		/* issue 15, defect 7: was "table runs already exists" */
		{ F_OURS_VERSION_0,
		  "ahasd-replay database (application_id 0x41485344", -EINVAL },
	};
	return cr_make_param_array(struct foreign_case, cases,
	                           sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct foreign_case *c, db, refuses_foreign_file)
{
	const char *p = fx_path("other.db");
	struct db *d = NULL;
	char *before, *after;
	size_t nb, na;
	sqlite3 *h;
	FILE *f;

	switch (c->kind) {
	case F_NOT_SQLITE:
		f = fopen(p, "w");
		cr_assert_not_null(f);
		for (int i = 0; i < 100; i++)
			fprintf(f, "line %d of a text file, not a database\n",
			        i);
		fclose(f);
		break;
	case F_OTHER_TABLES:
		h = raw_open(p);
		raw_exec(h, "CREATE TABLE notes (x TEXT); "
		            "INSERT INTO notes VALUES ('keep me')");
		sqlite3_close(h);
		break;
	case F_OTHER_APP_ID:
		h = raw_open(p);
		raw_exec(h,
		         "PRAGMA application_id = 305419896"); /* 0x12345678 */
		sqlite3_close(h);
		break;
	case F_USER_VERSION_ONLY:
		h = raw_open(p);
		raw_exec(h, "PRAGMA user_version = 7");
		sqlite3_close(h);
		break;
	case F_NEWER:
		cr_assert_eq(db_open(&d, p, err, sizeof err), 0, "%s", err);
		add_run(d, "sync", "pld", 1, 1.0, 1.0);
		db_close(&d);
		h = raw_open(p);
		raw_exec(h, "PRAGMA user_version = 5");
		sqlite3_close(h);
		break;
	case F_OURS_VERSION_0:
		/* our tables, schema version reset by hand */
		cr_assert_eq(db_open(&d, p, err, sizeof err), 0, "%s", err);
		add_run(d, "sync", "pld", 1, 1.0, 1.0);
		db_close(&d);
		h = raw_open(p);
		raw_exec(h, "PRAGMA user_version = 0");
		sqlite3_close(h);
		break;
	}
	before = slurp(p, &nb);
	cr_assert_gt(nb, 0);

	cr_assert_eq(db_open(&d, p, err, sizeof err), c->code, "%s", err);
	cr_assert_null(d);
	cr_assert(strstr(err, c->want), "'%s' lacks '%s'", err, c->want);
	cr_assert(strstr(err, p), "'%s' does not name the file", err);
	if (c->kind == F_OURS_VERSION_0)
		cr_assert(strstr(err, "user_version 0"), "%s", err);

	err[0] = '\0';
	cr_assert_eq(db_open_readonly(&d, p, err, sizeof err), c->code, "%s",
	             err);
	cr_assert_null(d);
	cr_assert(strstr(err, c->want), "'%s' lacks '%s'", err, c->want);

	after = slurp(p, &na);
	cr_assert_eq(na, nb, "file size changed");
	cr_assert(memcmp(before, after, nb) == 0, "file content changed");
	free(before);
	free(after);
}

/* A second connection holds the write lock (BEGIN IMMEDIATE) for longer
 * than the busy timeout (200 ms here): the run is refused with a clear
 * message after about that long, and earlier runs are intact. */
Test(db, locked_database)
{
	const char *p = fx_path("l.db");
	const struct db_run_info in = make_info("ahasd", "pld");
	struct timespec t0, t1;
	struct db *d = NULL;
	int64_t id = -1;
	double waited;
	sqlite3 *other;
	int r;

	cr_assert_eq(db_open(&d, p, err, sizeof err), 0, "%s", err);
	add_run(d, "sync", "pld", 10, 1.0, 1.0);
	db_close(&d);

	cr_assert_eq(setenv("AHASD_DB_BUSY_MS", "200", 1), 0);
	other = raw_open(p);
	raw_exec(other, "BEGIN IMMEDIATE");

	cr_assert_eq(db_open(&d, p, err, sizeof err), 0, "%s", err);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	r = db_run_begin(d, &in, &id, err, sizeof err);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	waited = (double)(t1.tv_sec - t0.tv_sec) +
	         (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
	cr_assert_eq(r, -EBUSY, "r = %d (%s)", r, err);
	cr_assert(strstr(err, "locked") && strstr(err, "200 ms"), "%s", err);
	cr_assert(strstr(err, p), "%s", err);
	cr_assert(waited > 0.15 && waited < 5.0, "waited %.3f s", waited);

	/* released: the same handle writes again */
	raw_exec(other, "ROLLBACK");
	sqlite3_close(other);
	cr_assert_eq(count_path(p, "runs"), 1);
	cr_assert_eq(count_path(p, "metrics"), 36); /* 30 + 3 x 2 */
	add_run(d, "ahasd", "pld", 10, 1.0, 1.0);
	db_close(&d);
	cr_assert_eq(count_path(p, "runs"), 2);
}

/* A fresh database cannot even be created while another process holds
 * the write lock on it mid-creation: db_open fails cleanly. */
Test(db, locked_during_migration)
{
	const char *p = fx_path("m.db");
	struct db *d = NULL;
	sqlite3 *other;
	int r;

	cr_assert_eq(setenv("AHASD_DB_BUSY_MS", "100", 1), 0);
	other = raw_open(p);
	raw_exec(other, "PRAGMA journal_mode = WAL; BEGIN IMMEDIATE");
	r = db_open(&d, p, err, sizeof err);
	cr_assert_eq(r, -EBUSY, "r = %d (%s)", r, err);
	cr_assert_null(d);
	cr_assert(strstr(err, "locked"), "%s", err);
	raw_exec(other, "ROLLBACK");
	sqlite3_close(other);
	cr_assert_eq(db_open(&d, p, err, sizeof err), 0, "%s", err);
	db_close(&d);
}

Test(db, bad_busy_env)
{
	struct db *d = NULL;

	cr_assert_eq(setenv("AHASD_DB_BUSY_MS", "soon", 1), 0);
	cr_assert_eq(db_open(&d, fx_path("x.db"), err, sizeof err), -EINVAL);
	cr_assert(strstr(err, "AHASD_DB_BUSY_MS"), "%s", err);
}

Test(db, unwritable_paths)
{
	struct db *d = NULL;
	FILE *f;
	int r;

	const char *missing_dir = fx_path("no/such/dir/r.db");
	const char *missing = fx_path("missing.db");

	/* directory missing */
	r = db_open(&d, missing_dir, err, sizeof err);
	cr_assert_eq(r, -ENOENT, "%d %s", r, err);
	cr_assert(strstr(err, "does not exist"), "%s", err);
	cr_assert(strstr(err, missing_dir), "%s", err);
	cr_assert_null(d);

	/* a file where the directory should be */
	f = fopen(fx_path("plainfile"), "w");
	cr_assert_not_null(f);
	fclose(f);
	r = db_open(&d, fx_path("plainfile/r.db"), err, sizeof err);
	cr_assert_eq(r, -ENOTDIR, "%d %s", r, err);
	cr_assert(strstr(err, "plainfile/r.db"), "%s", err);

	/* read-only open of a file that does not exist */
	r = db_open_readonly(&d, missing, err, sizeof err);
	cr_assert_eq(r, -ENOENT, "%d %s", r, err);
	cr_assert(strstr(err, "missing.db"), "%s", err);
	cr_assert_eq(access(missing, F_OK), -1, "readonly open created it");
}

/* A directory the process cannot write to. Root ignores permission bits,
 * so root uses /sys, where nobody can create files. */
Test(db, unwritable_directory)
{
	struct db *d = NULL;
	const char *p;
	int r;

	if (geteuid() == 0) {
		struct stat st;

		if (stat("/sys", &st) != 0 || !S_ISDIR(st.st_mode)) {
			fx_tmpdir_remove(); /* .fini does not run after a skip */
			cr_skip_test("root and no /sys");
		}
		p = "/sys/ahasd-replay-test.db";
	} else {
		cr_assert_eq(mkdir(fx_path("ro"), 0555), 0);
		p = fx_path("ro/r.db");
	}
	r = db_open(&d, p, err, sizeof err);
	cr_assert_lt(r, 0);
	cr_assert_null(d);
	cr_assert(strstr(err, p), "%s", err);
	cr_assert_eq(access(p, F_OK), -1);
}

Test(db, readonly_file_for_non_root)
{
	const char *p = fx_path("ro.db");
	struct db *d = NULL;
	int r;

	if (geteuid() == 0) {
		fx_tmpdir_remove(); /* .fini does not run after a skip */
		cr_skip_test("root can write read-only files");
	}
	cr_assert_eq(db_open(&d, p, err, sizeof err), 0, "%s", err);
	add_run(d, "sync", "pld", 1, 1.0, 1.0);
	db_close(&d);
	cr_assert_eq(chmod(p, 0444), 0);
	r = db_open(&d, p, err, sizeof err);
	cr_assert_eq(r, -EACCES, "%d %s", r, err);
	cr_assert(strstr(err, p), "%s", err);
	cr_assert_eq(db_open_readonly(&d, p, err, sizeof err), 0, "%s", err);
	db_close(&d);
}

Test(db, readonly_open)
{
	const char *p = fx_path("r.db");
	const struct db_run_info in = make_info("ahasd", "pld");
	struct db *d = NULL;
	int64_t id;
	char *before, *after;
	size_t nb, na;

	/* empty file: nothing to view */
	fclose(fopen(p, "w"));
	cr_assert_eq(db_open_readonly(&d, p, err, sizeof err), -EINVAL);
	cr_assert(strstr(err, "empty database"), "%s", err);

	cr_assert_eq(db_open(&d, p, err, sizeof err), 0, "%s", err);
	add_run(d, "sync", "pld", 1, 1.0, 1.0);
	db_close(&d);
	before = slurp(p, &nb);

	cr_assert_eq(db_open_readonly(&d, p, err, sizeof err), 0, "%s", err);
	cr_assert_eq(q_int(db_handle(d), "SELECT count(*) FROM run_summary"),
	             1);
	cr_assert_eq(db_run_begin(d, &in, &id, err, sizeof err), -EROFS);
	cr_assert(strstr(err, "read-only"), "%s", err);
	cr_assert_neq(sqlite3_exec(db_handle(d), "DELETE FROM runs", NULL, NULL,
	                           NULL),
	              SQLITE_OK);
	db_close(&d);
	after = slurp(p, &na);
	cr_assert_eq(na, nb);
	cr_assert(memcmp(before, after, nb) == 0);
	free(before);
	free(after);
}

/* max_events 3: five events give 1 1 1 0 0; three rows stored and the two
 * refused counted as events_dropped (the engine's own count is 0). */
Test(db, event_bound)
{
	const char *p = fx_path("e.db");
	const struct db_run_info in = make_info("ahasd", "pld");
	const struct replay_metrics m = make_metrics();
	const int want[5] = { 1, 1, 1, 0, 0 };
	struct db *d = NULL;
	int64_t id;
	sqlite3 *h;

	cr_assert_eq(db_open(&d, p, err, sizeof err), 0, "%s", err);
	cr_assert_eq(db_set_max_events(d, 3), 0);
	cr_assert_eq(db_set_max_events(NULL, 3), -EINVAL);
	cr_assert_eq(db_run_begin(d, &in, &id, err, sizeof err), 0, "%s", err);
	for (uint32_t i = 0; i < 5; i++) {
		const struct replay_event ev = { 0,       REPLAY_EV_DRAFT,
			                         i * 0.1, i * 0.1 + 0.1,
			                         1,       0,
			                         i,       REPLAY_OUT_NONE };

		cr_assert_eq(db_run_event(d, id, &ev, err, sizeof err), want[i],
		             "event %u", i);
	}
	cr_assert_eq(
	        db_run_commit(d, id, &m, 0.5, NULL, NULL, 0, err, sizeof err),
	        0, "%s", err);
	/* the bound is per run: the next run stores events from idx 0 */
	add_run(d, "sync", "pld", 1, 1.0, 1.0);
	h = db_handle(d);
	cr_assert_eq(q_int(h, "SELECT count(*) FROM events"), 3);
	cr_assert_eq(q_int(h, "SELECT max(idx) FROM events"), 2);
	cr_assert_eq(q_int(h, "SELECT max(batch) FROM events"), 2);
	cr_assert_float_eq(q_dbl(h, "SELECT value FROM metrics WHERE "
	                            "name = 'events_dropped' AND run_id = 1"),
	                   2.0, 0);
	cr_assert_float_eq(q_dbl(h, "SELECT value FROM metrics WHERE "
	                            "name = 'events_dropped' AND run_id = 2"),
	                   0.0, 0);
	db_close(&d);
}

/* Two processes append runs to one file at once (a parallel sweep): WAL,
 * BEGIN IMMEDIATE and the busy timeout serialise them; nothing is lost. */
Test(db, two_writers)
{
	const char *p = fx_path("w.db");
	struct db *d = NULL;
	pid_t pid[2];

	cr_assert_eq(db_open(&d, p, err, sizeof err), 0, "%s", err);
	db_close(&d);
	for (int k = 0; k < 2; k++) {
		pid[k] = fork();
		cr_assert_neq(pid[k], -1);
		if (pid[k] == 0) {
			const struct db_run_info in = make_info("ahasd", "pld");
			const struct replay_metrics m = make_metrics();
			char e[256];
			int bad = 0;

			if (db_open(&d, p, e, sizeof e) != 0)
				_exit(2);
			for (int i = 0; i < 20 && !bad; i++) {
				int64_t id;

				bad |= db_run_begin(d, &in, &id, e, sizeof e);
				for (uint32_t s = 0; s < 5 && !bad; s++) {
					const struct replay_seq_result q = {
						.seq = s, .committed = 10
					};

					bad |= db_run_sequence(d, id, &q, e,
					                       sizeof e);
				}
				if (!bad)
					bad |= db_run_commit(d, id, &m, 0, NULL,
					                     NULL, 0, e,
					                     sizeof e);
			}
			db_close(&d);
			if (bad)
				fprintf(stderr, "writer %d: %s\n", k, e);
			_exit(bad ? 1 : 0);
		}
	}
	for (int k = 0; k < 2; k++) {
		int st;

		cr_assert_eq(waitpid(pid[k], &st, 0), pid[k]);
		cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		          "writer %d failed", k);
	}
	cr_assert_eq(count_path(p, "runs"), 40);
	cr_assert_eq(count_path(p, "sequences"), 200);
	cr_assert_eq(count_path(p, "metrics"), 40 * 36);
}

/* Run ids are taken at db_run_begin and never handed out twice: not after
 * a rollback, not after the last run was deleted; and a run stored by
 * other means (id 100, by hand) moves the next id past it. */
Test(db, run_ids_never_repeat)
{
	const struct db_run_info in = make_info("ahasd", "pld");
	struct db *d = NULL;
	int64_t a, b, c, e;
	char sql[128];

	cr_assert_eq(db_open(&d, fx_path("ids.db"), err, sizeof err), 0, "%s",
	             err);
	cr_assert_eq(db_run_begin(d, &in, &a, err, sizeof err), 0, "%s", err);
	cr_assert_eq(a, 1);
	db_run_rollback(d);
	b = add_run(d, "sync", "pld", 1, 1.0, 1.0);
	cr_assert_eq(b, 2);
	snprintf(sql, sizeof sql, "DELETE FROM runs WHERE id = %lld",
	         (long long)b);
	raw_exec(db_handle(d), sql);
	c = add_run(d, "sync", "pld", 1, 1.0, 1.0);
	cr_assert_eq(c, 3);
	raw_exec(
	        db_handle(d),
	        "INSERT INTO runs SELECT 100, created, "
	        "tool_version, label, policy, policy_version, policy_params, "
	        "policy_path, drafter, drafter_version, drafter_params, "
	        "drafter_path, hw_preset, hw_config, trace_path, trace_sha256, "
	        "draft_model, target_model, retargeted_from, sampled, seed, "
	        "queue_capacity, max_draft, wall_s FROM runs WHERE id = 3");
	e = add_run(d, "sync", "pld", 1, 1.0, 1.0);
	cr_assert_eq(e, 101);
	cr_assert_eq(q_int(db_handle(d), "SELECT last FROM run_ids"), 101);
	db_close(&d);
}

/* Readlink of every open descriptor: how many name a spill file. */
static int open_spill_files(void)
{
	char fd_path[64], target[1024];
	int n = 0;

	for (int fd = 0; fd < 1024; fd++) {
		ssize_t len;

		snprintf(fd_path, sizeof fd_path, "/proc/self/fd/%d", fd);
		len = readlink(fd_path, target, sizeof target - 1);
		if (len <= 0)
			continue;
		target[len] = '\0';
		if (strstr(target, "ahasd-db-spill-")) {
			cr_assert(strstr(target, "(deleted)"),
			          "spill file %s not unlinked", target);
			n++;
		}
	}
	return n;
}

/* The rows of a run wait in memory up to the buffer's bound (here 2 kB,
 * a couple of dozen rows) and in an unlinked temporary file past it, in
 * $TMPDIR, or /tmp when that cannot be used; the commit stores all of them
 * in recording order, and the event bound holds across the spill (600 of
 * 1000 events kept, 400 counted in events_dropped). */
Test(db, rows_spill_past_the_buffer)
{
	const struct db_run_info in = make_info("ahasd", "pld");
	const struct replay_metrics m = make_metrics();
	const char *p = fx_path("spill.db");
	struct db *d = NULL;
	int64_t id;
	sqlite3 *h;
	int stored = 0;

	for (int pass = 0; pass < 2; pass++) {
		/* pass 0: TMPDIR in the test's folder; pass 1: missing */
		const char *dir = pass ? fx_path("no-such-dir")
		                       : fx_path("tmp");

		if (!pass)
			cr_assert_eq(mkdir(dir, 0700), 0);
		cr_assert_eq(setenv("TMPDIR", dir, 1), 0);
		cr_assert_eq(db_open(&d, p, err, sizeof err), 0, "%s", err);
		cr_assert_eq(db_set_buffer_bytes(d, 2048), 0);
		cr_assert_eq(db_set_max_events(d, 600), 0);
		cr_assert_eq(db_run_begin(d, &in, &id, err, sizeof err), 0,
		             "%s", err);
		cr_assert_eq(db_set_buffer_bytes(d, 1 << 20), -EBUSY);
		cr_assert_eq(open_spill_files(), 0);
		stored = 0;
		for (uint32_t s = 0; s < 10; s++) {
			const struct replay_seq_result q = {
				.seq = s, .prompt_len = s, .committed = 10 + s
			};

			cr_assert_eq(
			        db_run_sequence(d, id, &q, err, sizeof err), 0,
			        "%s", err);
			for (uint32_t e = 0; e < 100; e++) {
				const struct replay_event ev = {
					(int)(e % 2),
					REPLAY_EV_DRAFT,
					s + e * 1e-3,
					s + e * 1e-3 + 1e-4,
					e,
					s,
					100 * s + e,
					REPLAY_OUT_NONE
				};
				const int r = db_run_event(d, id, &ev, err,
				                           sizeof err);

				cr_assert(r == 0 || r == 1, "%d %s", r, err);
				stored += r;
			}
		}
		cr_assert_eq(stored, 600);
		cr_assert_eq(open_spill_files(), 1);
		if (!pass) {
			/* the file was made in $TMPDIR (and unlinked) */
			DIR *dd = opendir(dir);
			struct dirent *de;
			int n = 0;

			cr_assert_not_null(dd);
			while ((de = readdir(dd)))
				n += de->d_name[0] != '.';
			closedir(dd);
			cr_assert_eq(n, 0, "a spill file is left in %s", dir);
		}
		cr_assert_eq(count_path(p, "events"), pass ? 600 : 0,
		             "rows stored before the commit");
		cr_assert_eq(db_run_commit(d, id, &m, 0.5, NULL, NULL, 0, err,
		                           sizeof err),
		             0, "%s", err);
		cr_assert_eq(open_spill_files(), 0);
		h = db_handle(d);
		cr_assert_eq(q_int(h, "SELECT count(*) FROM sequences WHERE "
		                      "run_id = (SELECT max(id) FROM runs)"),
		             10);
		/* event idx i is the i-th kept: sequence i / 100, event
		 * i % 100, batch = 100 * seq + e = i */
		cr_assert_eq(q_int(h,
		                   "SELECT count(*) FROM events WHERE "
		                   "run_id = (SELECT max(id) FROM runs) AND "
		                   "batch = idx AND seq = idx / 100 AND "
		                   "tokens = idx % 100 AND device = idx % 2"),
		             600);
		cr_assert_float_eq(q_dbl(h,
		                         "SELECT value FROM metrics WHERE "
		                         "name = 'events_dropped' AND run_id "
		                         "= (SELECT max(id) FROM runs)"),
		                   400.0, 0);
		db_close(&d);
	}
	unsetenv("TMPDIR");
}

/* A sequence number given twice fails the commit with a message naming
 * it, and nothing of the run is stored. */
Test(db, duplicate_sequence_fails_the_commit)
{
	const struct db_run_info in = make_info("ahasd", "pld");
	const struct replay_metrics m = make_metrics();
	const struct replay_seq_result q = { .seq = 7, .committed = 1 };
	const char *p = fx_path("dup.db");
	struct db *d = NULL;
	int64_t id;

	cr_assert_eq(db_open(&d, p, err, sizeof err), 0, "%s", err);
	cr_assert_eq(db_run_begin(d, &in, &id, err, sizeof err), 0, "%s", err);
	cr_assert_eq(db_run_sequence(d, id, &q, err, sizeof err), 0, "%s", err);
	cr_assert_eq(db_run_sequence(d, id, &q, err, sizeof err), 0, "%s", err);
	cr_assert_eq(
	        db_run_commit(d, id, &m, 0, NULL, NULL, 0, err, sizeof err),
	        -EINVAL);
	cr_assert(strstr(err, "sequence 7 given twice"), "%s", err);
	cr_assert(strstr(err, p), "%s", err);
	assert_empty(p);
	add_run(d, "sync", "pld", 1, 1.0, 1.0);
	db_close(&d);
}

/* A sweep records a failed run and goes on: db_record_failure writes one
 * failures row in a transaction of its own, also while another run is
 * open on the same handle (which then commits as usual). The message is
 * required; everything else may be left out. */
Test(db, record_failure)
{
	const struct db_run_info in = make_info("ahasd", "pld");
	const char *p = fx_path("fail.db");
	struct db *d = NULL;
	int64_t bad_id, good_id;
	sqlite3 *h;

	cr_assert_eq(db_open(&d, p, err, sizeof err), 0, "%s", err);
	cr_assert_eq(db_run_begin(d, &in, &bad_id, err, sizeof err), 0, "%s",
	             err);
	db_run_rollback(d);
	{
		const struct db_failure f = {
			.label = "grid-7",
			.trace_path = "traces/t.msgpack",
			.hw_preset = "npu-pim",
			.policy = "ahasd",
			.drafter = "/plugins/crashy.so",
			.config = "ahasd.edc=0 hw.aau=0",
			.plugin = "crashy",
			.hook = "drafter.next",
			.signal = 11,
			.message = "killed by signal 11 (Segmentation fault)",
			.run_id = bad_id,
		};

		cr_assert_eq(db_record_failure(d, &f, err, sizeof err), 0, "%s",
		             err);
	}
	/* a run open on the handle is not touched */
	cr_assert_eq(db_run_begin(d, &in, &good_id, err, sizeof err), 0, "%s",
	             err);
	{
		const struct db_failure f = { .message = "trace unreadable" };
		const struct db_failure none = { .label = "x" };

		cr_assert_eq(db_record_failure(d, &f, err, sizeof err), 0, "%s",
		             err);
		cr_assert_eq(db_record_failure(d, &none, err, sizeof err),
		             -EINVAL);
		cr_assert(strstr(err, "message"), "%s", err);
		cr_assert_eq(db_record_failure(d, NULL, err, sizeof err),
		             -EINVAL);
		cr_assert_eq(db_record_failure(NULL, &f, err, sizeof err),
		             -EINVAL);
	}
	{
		const struct replay_metrics m = make_metrics();

		cr_assert_eq(db_run_commit(d, good_id, &m, 0, NULL, NULL, 0,
		                           err, sizeof err),
		             0, "%s", err);
	}
	h = db_handle(d);
	cr_assert_eq(q_int(h, "SELECT count(*) FROM failures"), 2);
	cr_assert_str_eq(q_text(h, "SELECT label || '|' || trace_path || '|' "
	                           "|| hw_preset || '|' || policy || '|' || "
	                           "drafter || '|' || config || '|' || plugin "
	                           "|| '|' || hook || '|' || signal || '|' || "
	                           "message FROM failures ORDER BY id"),
	                 "grid-7|traces/t.msgpack|npu-pim|ahasd|"
	                 "/plugins/crashy.so|ahasd.edc=0 hw.aau=0|crashy|"
	                 "drafter.next|11|killed by signal 11 (Segmentation "
	                 "fault)");
	cr_assert_eq(q_int(h, "SELECT run_id FROM failures ORDER BY id"),
	             bad_id);
	cr_assert_str_eq(q_text(h,
	                        "SELECT coalesce(label, trace_path, "
	                        "hw_preset, policy, drafter, config, plugin, "
	                        "hook, signal, run_id, 'all null') || '|' || "
	                        "message FROM failures ORDER BY id DESC"),
	                 "all null|trace unreadable");
	/* created: "YYYY-MM-DDTHH:MM:SS.mmmZ" */
	cr_assert_eq(q_int(h,
	                   "SELECT count(*) FROM failures WHERE created "
	                   "GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]"
	                   "T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]"
	                   "Z'"),
	             2);
	/* the failed run left no row; the good one is whole */
	cr_assert_eq(q_int(h, "SELECT count(*) FROM runs"), 1);
	cr_assert_eq(q_int(h, "SELECT id FROM runs"), good_id);
	cr_assert_gt(good_id, bad_id);
	db_close(&d);

	/* read-only: refused */
	cr_assert_eq(db_open_readonly(&d, p, err, sizeof err), 0, "%s", err);
	{
		const struct db_failure f = { .message = "m" };

		cr_assert_eq(db_record_failure(d, &f, err, sizeof err), -EROFS);
	}
	db_close(&d);
	cr_assert_eq(count_path(p, "failures"), 2);
}
