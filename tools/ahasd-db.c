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
 *
 *   ahasd-db merge [-q] OUT IN...
 *
 * copies every run of each IN, with all its rows, into OUT (made when
 * missing), one transaction per input, run ids renumbered (db_merge(),
 * db/db_merge.c): the databases of a sharded sweep (--shard) become one.
 * An input that cannot be merged (another schema, merged before, the
 * output itself, given twice) is refused with the reason and the others
 * go on; the exit status is then 1.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "config.h"
#include "db.h"
#include "outfile.h"
#include "progress.h"
#include "util.h"

#define ERRLEN 1024

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: ahasd-db export (--csv | --json) [-o FILE] DB\n"
	        "       ahasd-db merge [-q] OUT IN...\n"
	        "\n"
	        "export: write the pivoted run table of a results database "
	        "(the run_table\n"
	        "view: one row per run, one column per configuration key, the "
	        "headline\n"
	        "metrics with their 95%% intervals, the speed-up over sync) as "
	        "CSV or JSON.\n"
	        "\n"
	        "      --csv       comma-separated values with a header row\n"
	        "      --json      an array of objects, one per run\n"
	        "  -o, --output F  output file (default: standard output, "
	        "'-')\n"
	        "\n"
	        "merge: copy every run of each IN, with all its rows (metrics, "
	        "devices,\n"
	        "sequences, events, configuration, intervals, failures), into "
	        "OUT (made\n"
	        "when missing), run ids renumbered, provenance kept, one "
	        "transaction per\n"
	        "input; then pair the merged runs with their baselines in OUT. "
	        "Refuses\n"
	        "an input of another schema version, or one merged before.\n"
	        "\n"
	        "  -q, --quiet     no line per input, no progress line\n"
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

	if (!strpbrk(s, ",\"\r\n") &&
	    !(n && (s[0] == ' ' || s[n - 1] == ' '))) {
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

static int export_table(sqlite3 *h, FILE *f, int json, char *err, size_t errlen)
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

/* The same file (or the two cannot be told apart). */
static int same_file(const char *a, const char *b)
{
	struct stat sa, sb;
	if (stat(a, &sa) != 0 || stat(b, &sb) != 0)
		return !strcmp(a, b);
	return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static void merge_progress(void *ctx, size_t done, size_t total)
{
	(void)done;
	(void)total;
	progress_step(ctx, 1, 0);
}

/* ahasd-db merge [-q] OUT IN... */
static int merge_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char err[ERRLEN];
	struct db *out = NULL;
	struct progress pr;
	int quiet = 0, c, status = 0;
	size_t merged = 0, total = 0;

	optind = 2;
	while ((c = getopt_long(argc, argv, "qh", longopts, NULL)) != -1) {
		switch (c) {
		case 'q': quiet = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (argc - optind < 2) {
		fprintf(stderr,
		        "ahasd-db: merge needs the output database and "
		        "at least one input: ahasd-db merge OUT IN...\n");
		usage(stderr);
		return 2;
	}
	const char *out_path = argv[optind];
	char **in = argv + optind + 1;
	const int n_in = argc - optind - 1;
	/* the runs to go, for the progress line */
	for (int i = 0; i < n_in; i++) {
		struct db *d = NULL;
		sqlite3_stmt *s = NULL;
		if (db_open_readonly(&d, in[i], err, sizeof err) == 0 &&
		    sqlite3_prepare_v2(db_handle(d),
		                       "SELECT count(*) FROM runs", -1, &s,
		                       NULL) == SQLITE_OK &&
		    sqlite3_step(s) == SQLITE_ROW)
			total += (size_t)sqlite3_column_int64(s, 0);
		sqlite3_finalize(s);
		db_close(&d);
	}
	if (db_open(&out, out_path, err, sizeof err) < 0) {
		fprintf(stderr, "ahasd-db: merge: %s\n", err);
		return 1;
	}
	progress_start(&pr, "ahasd-db merge", "runs", total, quiet);
	for (int i = 0; i < n_in; i++) {
		struct db_merge_result res;
		int twice = 0;
		for (int j = 0; j < i && !twice; j++)
			twice = same_file(in[i], in[j]);
		if (same_file(in[i], out_path))
			snprintf(err, sizeof err, "%s: is the output itself",
			         in[i]);
		else if (twice)
			snprintf(err, sizeof err,
			         "%s: given twice (merged once "
			         "already)",
			         in[i]);
		if (twice || same_file(in[i], out_path) ||
		    db_merge(out, in[i], merge_progress, &pr, &res, err,
		             sizeof err) < 0) {
			progress_clear(&pr);
			fprintf(stderr, "ahasd-db: merge: %s\n", err);
			status = 1;
			continue;
		}
		merged++;
		if (!quiet) {
			progress_clear(&pr);
			if (res.runs)
				printf("%s: %zu runs (ids %lld-%lld in %s), "
				       "%zu "
				       "failures\n",
				       in[i], res.runs, (long long)res.first_id,
				       (long long)res.last_id, out_path,
				       res.failures);
			else
				printf("%s: no runs, %zu failures\n", in[i],
				       res.failures);
			fflush(stdout);
		}
	}
	progress_end(&pr);
	db_close(&out);
	if (status)
		fprintf(stderr,
		        "ahasd-db: merge: %zu of %d inputs merged into "
		        "%s\n",
		        merged, n_in, out_path);
	return status;
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

	if (argc > 1 &&
	    (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		usage(stdout);
		return 0;
	}
	if (argc >= 2 && !strcmp(argv[1], "merge"))
		return merge_main(argc, argv);
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
				fprintf(stderr,
				        "ahasd-db: --csv or --json, not "
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
		fprintf(stderr,
		        "ahasd-db: export needs --csv or --json and one "
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
