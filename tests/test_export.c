/* test_export.c - ahasd-db export (issue 12, item 5), and the Python
 * example of db/SCHEMA.md run as written.
 */
#include "prog_util.h"

#include <math.h>

#define DB_ARGS(...) prog_run("tools/ahasd-db", PROG_ARGS(__VA_ARGS__))

TestSuite(export, .init = prog_setup, .fini = prog_teardown, .timeout = 120);

/* A database of a small sweep: sync and ahasd at two PIM bandwidths on a
 * synthetic trace, with a label CSV must quote. */
static const char *sweep_db(void)
{
	const char *t = prog_path("t.msgpack"), *db = prog_path("r.db");

	cr_assert_eq(prog_run("tools/ahasd-trace",
	                      PROG_ARGS("synth", "-o", t, "--sequences", "6",
	                                "--tokens", "48")),
	             0, "%s", prog_err);
	cr_assert_eq(REPLAY("-q", "--db", db, "-p", "sync", "-p", "ahasd", "-d",
	                    "fixed", "-P", "hw.pim.mem_bw=128e9,512e9",
	                    "--label", "a \"b\", c", t),
	             0, "%s", prog_err);
	return db;
}

static char *slurp(const char *path)
{
	static char buf[1 << 18];

	prog_read_text(path, buf, sizeof buf);
	return buf;
}

/* The fields of one CSV line (RFC 4180), each malloc'd; *n of them. */
static size_t csv_fields(const char **line, char **out, size_t max)
{
	const char *p = *line;
	size_t n = 0;

	for (;;) {
		char buf[4096];
		size_t k = 0;

		if (*p == '"') {
			for (p++; *p && !(*p == '"' && p[1] != '"'); p++) {
				if (*p == '"')
					p++;
				buf[k++] = *p;
			}
			p++;
		} else {
			while (*p && *p != ',' && *p != '\r' && *p != '\n')
				buf[k++] = *p++;
		}
		buf[k] = '\0';
		if (n < max)
			out[n++] = strdup(buf);
		if (*p != ',')
			break;
		p++;
	}
	if (*p == '\r')
		p++;
	if (*p == '\n')
		p++;
	*line = p;
	return n;
}

/* CSV: a header with run_table's columns, one line per run, values as
 * the database holds them (numbers exactly), NULL empty, the label
 * quoted. */
Test(export, csv_is_the_pivoted_run_table)
{
	const char *db = sweep_db();
	const char *out = prog_path("runs.csv");
	char *head[512], *row[512];

	cr_assert_eq(DB_ARGS("export", "--csv", "-o", out, db), 0, "%s",
	             prog_err);
	const char *p = slurp(out);
	const size_t nh = csv_fields(&p, head, 512);
	cr_assert_eq((long long)nh, prog_q_int(db, "SELECT count(*) FROM "
	                                           "pragma_table_info"
	                                           "('run_table')"));
	cr_expect_str_eq(head[0], "run_id");
	size_t bw = 0, sp = 0, label = 0, sync = 0;
	for (size_t i = 0; i < nh; i++) {
		if (!strcmp(head[i], "hw.pim.mem_bw"))
			bw = i;
		if (!strcmp(head[i], "speedup_lo"))
			sp = i;
		if (!strcmp(head[i], "label"))
			label = i;
		if (!strcmp(head[i], "sync_run_id"))
			sync = i;
	}
	cr_assert(bw && sp && label && sync);
	for (long long run = 1; run <= 4; run++) {
		const size_t nr = csv_fields(&p, row, 512);

		cr_assert_eq(nr, nh, "run %lld", run);
		cr_expect_eq(atoll(row[0]), run);
		cr_expect_str_eq(row[label], "a \"b\", c");
		cr_expect_eq(strtod(row[bw], NULL),
		             prog_q_dbl(db,
		                        "SELECT \"hw.pim.mem_bw\" FROM "
		                        "run_table WHERE run_id = %lld",
		                        run));
		const double lo = prog_q_dbl(db,
		                             "SELECT speedup_lo FROM "
		                             "run_table WHERE run_id = %lld",
		                             run);
		cr_expect_eq(strtod(row[sp], NULL), lo, "exact: %s", row[sp]);
		cr_expect_eq(atoll(row[sync]),
		             prog_q_int(db,
		                        "SELECT sync_run_id FROM run_table "
		                        "WHERE run_id = %lld",
		                        run));
		for (size_t i = 0; i < nr; i++)
			free(row[i]);
	}
	cr_expect_str_empty(p, "more lines than runs");
	for (size_t i = 0; i < nh; i++)
		free(head[i]);
	/* standard output by default, the same bytes */
	cr_assert_eq(DB_ARGS("export", "--csv", db), 0);
	cr_expect_str_eq(prog_out, slurp(out));
}

/* JSON: an array of one object per run, read back with Python's json. */
Test(export, json_reads_back)
{
	const char *db = sweep_db();
	const char *out = prog_path("runs.json");
	char script[1024];

	cr_assert_eq(DB_ARGS("export", "--json", "-o", out, db), 0, "%s",
	             prog_err);
	snprintf(script, sizeof script,
	         "import json, sqlite3\n"
	         "rows = json.load(open('%s'))\n"
	         "db = sqlite3.connect('%s')\n"
	         "cur = db.execute('SELECT * FROM run_table ORDER BY run_id')\n"
	         "cols = [c[0] for c in cur.description]\n"
	         "want = [dict(zip(cols, r)) for r in cur]\n"
	         "assert rows == want, (rows[0], want[0])\n"
	         "assert rows[1]['hw.pim.mem_bw'] == 128e9\n"
	         "assert rows[0]['speedup'] == 1.0\n"
	         "print(len(rows))\n",
	         out, db);
	cr_assert_eq(prog_run("python3", PROG_ARGS("-c", script)), 0, "%s",
	             prog_err);
	cr_expect_str_eq(prog_out, "4\n");
}

Test(export, errors)
{
	const char *db = sweep_db();

	cr_expect_eq(DB_ARGS("export", db), 2);
	assert_err_has("export needs --csv or --json");
	cr_expect_eq(DB_ARGS("export", "--csv", "--json", db), 2);
	assert_err_has("--csv or --json, not both");
	cr_expect_eq(DB_ARGS("list", db), 2);
	assert_err_has("unknown command 'list'");
	cr_expect_eq(DB_ARGS("export", "--csv", prog_path("none.db")), 1);
	assert_err_has("none.db");
	cr_expect_eq(DB_ARGS("--help"), 0);
	assert_out_has("usage: ahasd-db export");
}

/* The Python example of db/SCHEMA.md ("Export"), as written there, on a
 * database of the PIM-bandwidth sweep: it prints one line per bandwidth. */
Test(export, schema_md_python_example_runs)
{
	const char *db = sweep_db();
	const char *py = prog_path("example.py");
	const char *md = slurp(prog_src_path("db/SCHEMA.md"));
	const char *start = strstr(md, "<!-- example: python-sqlite3 -->");
	FILE *f;

	cr_assert_not_null(start, "SCHEMA.md lacks the example marker");
	start = strstr(start, "```python\n");
	cr_assert_not_null(start);
	start += strlen("```python\n");
	const char *end = strstr(start, "```");
	cr_assert_not_null(end);
	f = fopen(py, "w");
	cr_assert_not_null(f);
	fwrite(start, 1, (size_t)(end - start), f);
	fclose(f);
	cr_assert_eq(prog_run("python3", PROG_ARGS(py, db)), 0, "%s", prog_err);
	cr_expect_not_null(strstr(prog_out, "128 GB/s"), "%s", prog_out);
	cr_expect_not_null(strstr(prog_out, "512 GB/s"), "%s", prog_out);
}
