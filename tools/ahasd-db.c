/* ahasd-db - the results database for other tools.
 *
 *   ahasd-db export (--csv | --json) [-o FILE] DB
 *
 * writes the pivoted run table (the run_table view, db/SCHEMA.md): one
 * row per run, one column per configuration key, the headline metrics
 * with their 95% intervals and the comparison with sync. CSV (RFC 4180,
 * a header row, NULL as an empty field) for pandas and R; JSON as an
 * array of objects, one per run, NULL as null. Numbers are written so
 * that they read back as the same double. The database is opened
 * read-only and never changed.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "config.h"
#include "db.h"
#include "outfile.h"
#include "util.h"

#define ERRLEN 1024

static void usage(FILE *f)
{
	fprintf(f,
"usage: ahasd-db export (--csv | --json) [-o FILE] DB\n"
"\n"
"Write the pivoted run table of a results database (the run_table view:\n"
"one row per run, one column per configuration key, the headline metrics\n"
"with their 95%% intervals, the speed-up over sync) as CSV or JSON.\n"
"\n"
"      --csv       comma-separated values with a header row\n"
"      --json      an array of objects, one per run\n"
"  -o, --output F  output file (default: standard output, '-')\n"
"  -h, --help      this text\n");
}

/* A number as the fewest digits that read back as it. */
static void put_real(FILE *f, double v)
{
	char buf[UTIL_NUM_LEN];

	fputs(util_fmt_double(buf, v), f);
}

/* A CSV field: quoted when it holds a separator, a quote, a line break
 * or leading or trailing blanks; quotes doubled. */
static void put_csv_text(FILE *f, const char *s)
{
	const size_t n = strlen(s);

	if (!strpbrk(s, ",\"\r\n") && !(n && (s[0] == ' ' || s[n - 1] == ' '))) {
		fputs(s, f);
		return;
	}
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

static void put_json_text(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"': fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\n': fputs("\\n", f); break;
		case '\r': fputs("\\r", f); break;
		case '\t': fputs("\\t", f); break;
		default:
			if (*p < 0x20)
				fprintf(f, "\\u%04x", *p);
			else
				fputc(*p, f);
		}
	}
	fputc('"', f);
}

/* Column i of the current row. */
static void put_value(FILE *f, sqlite3_stmt *s, int i, int json)
{
	switch (sqlite3_column_type(s, i)) {
	case SQLITE_NULL:
		if (json)
			fputs("null", f);
		break;
	case SQLITE_INTEGER:
		fprintf(f, "%lld", (long long)sqlite3_column_int64(s, i));
		break;
	case SQLITE_FLOAT: {
		const double v = sqlite3_column_double(s, i);

		if (isfinite(v))
			put_real(f, v);
		else if (json)
			fputs("null", f);
		break;
	}
	default: {
		const char *t = (const char *)sqlite3_column_text(s, i);

		if (json)
			put_json_text(f, t ? t : "");
		else
			put_csv_text(f, t ? t : "");
		break;
	}
	}
}

static int export_table(sqlite3 *h, FILE *f, int json, char *err,
                        size_t errlen)
{
	sqlite3_stmt *s = NULL;
	int rc, nc, rows = 0;

	rc = sqlite3_prepare_v2(h, "SELECT * FROM run_table ORDER BY run_id",
	                        -1, &s, NULL);
	if (rc != SQLITE_OK) {
		util_set_err(err, errlen, "reading run_table: %s",
		             sqlite3_errmsg(h));
		return -EIO;
	}
	nc = sqlite3_column_count(s);
	if (!json) {
		for (int i = 0; i < nc; i++) {
			if (i)
				fputc(',', f);
			put_csv_text(f, sqlite3_column_name(s, i));
		}
		fputs("\r\n", f);
	} else {
		fputc('[', f);
	}
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (json)
			fputs(rows ? ",\n {" : "\n {", f);
		for (int i = 0; i < nc; i++) {
			if (json) {
				fputs(i ? ", " : "", f);
				put_json_text(f, sqlite3_column_name(s, i));
				fputs(": ", f);
			} else if (i) {
				fputc(',', f);
			}
			put_value(f, s, i, json);
		}
		fputs(json ? "}" : "\r\n", f);
		rows++;
	}
	if (json)
		fputs(rows ? "\n]\n" : "]\n", f);
	if (rc != SQLITE_DONE) {
		util_set_err(err, errlen, "reading run_table: %s",
		             sqlite3_errmsg(h));
		sqlite3_finalize(s);
		return -EIO;
	}
	sqlite3_finalize(s);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "csv", no_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *out_path = "-";
	char err[ERRLEN];
	struct db *db = NULL;
	struct outfile *out = NULL;
	int format = 0, c, rc;

	if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		usage(stdout);
		return 0;
	}
	if (argc < 2 || strcmp(argv[1], "export")) {
		if (argc >= 2)
			fprintf(stderr, "ahasd-db: unknown command '%s'\n",
			        argv[1]);
		usage(stderr);
		return 2;
	}
	optind = 2;
	while ((c = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
		case 'j':
			if (format && format != c) {
				fprintf(stderr, "ahasd-db: --csv or --json, not "
				        "both\n");
				return 2;
			}
			format = c;
			break;
		case 'o': out_path = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!format || optind != argc - 1) {
		fprintf(stderr, "ahasd-db: export needs --csv or --json and one "
		        "database\n");
		usage(stderr);
		return 2;
	}
	rc = db_open_readonly(&db, argv[optind], err, sizeof err);
	if (rc == 0)
		rc = outfile_open(&out, out_path, err, sizeof err);
	if (rc == 0)
		rc = export_table(db_handle(db), outfile_stream(out),
		                  format == 'j', err, sizeof err);
	if (rc == 0)
		rc = outfile_commit(&out, err, sizeof err);
	else
		outfile_abort(&out);
	db_close(&db);
	if (rc < 0) {
		fprintf(stderr, "ahasd-db: %s\n", err);
		return 1;
	}
	return 0;
}
