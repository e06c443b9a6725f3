/* ahasd-view - results database -> HTML report or Perfetto trace JSON.
 *
 *   ahasd-view DB... [-o report.html] [--run ID ...] [--study LABEL]
 *   ahasd-view DB... --perfetto RUN [-o run.json]
 *
 * Several databases (the shards of a sweep, say) are first merged into a
 * temporary one (db_merge(), as `ahasd-db merge` does: run ids
 * renumbered, listed on stderr), which is read as one and removed.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "db.h"
#include "outfile.h"
#include "view.h"

#define MAX_RUN_IDS 4096

static void usage(FILE *f)
{
	fputs("usage: ahasd-view DB... [-o report.html] [--run ID[,ID...]]...\n"
	      "                  [--study LABEL]\n"
	      "       ahasd-view DB... --perfetto RUN [-o run.json]\n"
	      "\n"
	      "Writes a self-contained HTML report of the runs in the results\n"
	      "database DB (comparison charts, per-run timelines, run table),\n"
	      "or one run's recorded events as Chrome trace-event JSON for\n"
	      "ui.perfetto.dev and chrome://tracing. Several databases are\n"
	      "read as one (merged into a temporary database, as ahasd-db\n"
	      "merge does: run ids are renumbered, and listed on stderr).\n"
	      "\n"
	      "  -o, --output FILE      output file ('-' for stdout); default\n"
	      "                         report.html, or runRUN.json\n"
	      "  -r, --run ID[,ID...]   only these runs (repeatable)\n"
	      "  -s, --study LABEL      only the runs of this label (a study:\n"
	      "                         ahasd-search --study, --label)\n"
	      "  -p, --perfetto RUN     export RUN's events as trace JSON\n"
	      "      --windows N        timeline windows per run (default 4)\n"
	      "      --window-s SEC     window length in simulated seconds\n"
	      "                         (default: about 90 tasks per lane)\n"
	      "      --max-tasks N      rectangles drawn per window (1500)\n"
	      "      --max-timelines N  runs drawn with a timeline (6)\n"
	      "      --max-studies N    studies drawn in the trade-off (8)\n"
	      "      --max-points N     points over all sweep charts (20000)\n"
	      "      --metrics all|M,M  the sweep charts' metrics (default:\n"
	      "                         the headline ones, device "
	      "utilisation)\n"
	      "  -h, --help             this text\n"
	      "  -V, --version          print the version\n",
	      f);
}

static int parse_i64(const char *s, int64_t *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end)
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_uint(const char *s, unsigned min, unsigned *out)
{
	int64_t v;

	if (parse_i64(s, &v) < 0 || v < min || v > 1000000)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

static int add_run_ids(const char *arg, int64_t *ids, size_t *n)
{
	char buf[1024];
	char *save = NULL, *tok;

	if (snprintf(buf, sizeof buf, "%s", arg) >= (int)sizeof buf)
		return -EINVAL;
	for (tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		int64_t v;
		size_t i;

		if (parse_i64(tok, &v) < 0)
			return -EINVAL;
		for (i = 0; i < *n && ids[i] != v; i++)
			;
		if (i < *n)
			continue; /* duplicate */
		if (*n == MAX_RUN_IDS)
			return -E2BIG;
		ids[(*n)++] = v;
	}
	return 0;
}

/* Several databases as one: a temporary directory holding their merge. */
struct merged {
	char dir[4096];
	char path[4200];
};

static void merged_remove(struct merged *m)
{
	static const char *const sfx[] = { "", "-wal", "-shm", "-journal" };
	char p[4300];

	if (!m->dir[0])
		return;
	for (size_t i = 0; i < sizeof sfx / sizeof *sfx; i++) {
		snprintf(p, sizeof p, "%s%s", m->path, sfx[i]);
		unlink(p);
	}
	rmdir(m->dir);
	m->dir[0] = '\0';
}

/* Merge dbs[0 .. n-1] into a new temporary database, m->path; each
 * input's runs and their new ids on stderr. */
static int merge_inputs(char **dbs, int n, struct merged *m, char *err,
                        size_t errlen)
{
	const char *tmp = getenv("TMPDIR");
	struct db *out = NULL;
	int ret;

	snprintf(m->dir, sizeof m->dir, "%s/ahasd-view-XXXXXX",
	         tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(m->dir)) {
		const int e = errno;
		snprintf(err, errlen,
		         "cannot make a temporary directory "
		         "%.900s: %s",
		         m->dir, strerror(e));
		m->dir[0] = '\0';
		return -e;
	}
	snprintf(m->path, sizeof m->path, "%s/merged.db", m->dir);
	ret = db_open(&out, m->path, err, errlen);
	for (int i = 0; ret == 0 && i < n; i++) {
		struct db_merge_result r;
		struct stat st;

		/* db_merge checks the input; a missing one is not made */
		if (stat(dbs[i], &st) != 0) {
			snprintf(err, errlen, "%s: %s", dbs[i],
			         strerror(errno));
			ret = -ENOENT;
			break;
		}
		for (int j = 0; j < i && ret == 0; j++) {
			struct stat sj;
			if (stat(dbs[j], &sj) == 0 && sj.st_dev == st.st_dev &&
			    sj.st_ino == st.st_ino) {
				snprintf(err, errlen, "%s: given twice",
				         dbs[i]);
				ret = -EEXIST;
			}
		}
		if (ret < 0)
			break;
		ret = db_merge(out, dbs[i], NULL, NULL, &r, err, errlen);
		if (ret == 0 && r.runs)
			fprintf(stderr,
			        "ahasd-view: %s: %zu runs, ids %lld to "
			        "%lld\n",
			        dbs[i], r.runs, (long long)r.first_id,
			        (long long)r.last_id);
		else if (ret == 0)
			fprintf(stderr, "ahasd-view: %s: no runs\n", dbs[i]);
	}
	db_close(&out);
	return ret;
}

/* Keep the runs labelled study. @return 0, or -ENOENT when none is. */
static int keep_study(struct view_runs *runs, const char *study, char *err,
                      size_t errlen)
{
	struct view_runs drop = { runs->v, runs->n };
	struct view_run *keep = calloc(runs->n ? runs->n : 1, sizeof *keep);
	size_t n = 0;

	if (!keep) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < runs->n; i++) {
		struct view_run *r = &runs->v[i];

		if (r->label && !strcmp(r->label, study)) {
			keep[n++] = *r;
			memset(r, 0, sizeof *r); /* moved: not freed below */
		}
	}
	view_runs_clear(&drop);
	runs->v = keep;
	runs->n = n;
	if (!n) {
		snprintf(err, errlen,
		         "no run has the label '%s' (sqlite3 DB "
		         "'select distinct label from runs')",
		         study);
		return -ENOENT;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "run", required_argument, NULL, 'r' },
		{ "perfetto", required_argument, NULL, 'p' },
		{ "windows", required_argument, NULL, 1 },
		{ "window-s", required_argument, NULL, 2 },
		{ "max-tasks", required_argument, NULL, 3 },
		{ "max-timelines", required_argument, NULL, 4 },
		{ "study", required_argument, NULL, 's' },
		{ "max-studies", required_argument, NULL, 5 },
		{ "max-points", required_argument, NULL, 6 },
		{ "metrics", required_argument, NULL, 7 },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct view_html_opts ho = {
		.windows = 4,
		.window_s = 0,
		.max_tasks = 1500,
		.max_timelines = 6,
		.max_studies = 8,
		.max_points = 20000,
	};
	const char *study = NULL;
	static int64_t ids[MAX_RUN_IDS];
	size_t n_ids = 0;
	const char *out_path = NULL, *db_path;
	struct merged merged = { "", "" };
	char title[1024];
	int64_t perfetto_run = 0;
	int perfetto = 0, c, ret = 0;
	struct db *db = NULL;
	struct view_runs runs = { NULL, 0 };
	struct outfile *out = NULL;
	char err[1024] = "", pathbuf[64];

	while ((c = getopt_long(argc, argv, "o:r:p:s:hV", longopts, NULL)) !=
	       -1) {
		switch (c) {
		case 'o': out_path = optarg; break;
		case 'r':
			if (add_run_ids(optarg, ids, &n_ids) < 0) {
				fprintf(stderr,
				        "ahasd-view: bad --run '%s': "
				        "expected run ids like 3 or 3,4,7\n",
				        optarg);
				return 2;
			}
			break;
		case 'p':
			if (parse_i64(optarg, &perfetto_run) < 0) {
				fprintf(stderr,
				        "ahasd-view: bad --perfetto "
				        "'%s': expected a run id\n",
				        optarg);
				return 2;
			}
			perfetto = 1;
			break;
		case 1:
			if (parse_uint(optarg, 1, &ho.windows) < 0) {
				fprintf(stderr,
				        "ahasd-view: bad --windows "
				        "'%s'\n",
				        optarg);
				return 2;
			}
			break;
		case 2: {
			char *end;

			errno = 0;
			ho.window_s = strtod(optarg, &end);
			if (errno || end == optarg || *end ||
			    !(ho.window_s > 0) || ho.window_s > 1e9) {
				fprintf(stderr,
				        "ahasd-view: bad --window-s "
				        "'%s': expected seconds > 0\n",
				        optarg);
				return 2;
			}
			break;
		}
		case 3:
			if (parse_uint(optarg, 1, &ho.max_tasks) < 0) {
				fprintf(stderr,
				        "ahasd-view: bad --max-tasks "
				        "'%s'\n",
				        optarg);
				return 2;
			}
			break;
		case 4:
			if (parse_uint(optarg, 0, &ho.max_timelines) < 0) {
				fprintf(stderr,
				        "ahasd-view: bad "
				        "--max-timelines '%s'\n",
				        optarg);
				return 2;
			}
			break;
		case 's': study = optarg; break;
		case 5:
			if (parse_uint(optarg, 0, &ho.max_studies) < 0) {
				fprintf(stderr,
				        "ahasd-view: bad --max-studies "
				        "'%s'\n",
				        optarg);
				return 2;
			}
			break;
		case 6: {
			unsigned v;

			if (parse_uint(optarg, 1, &v) < 0) {
				fprintf(stderr,
				        "ahasd-view: bad --max-points "
				        "'%s'\n",
				        optarg);
				return 2;
			}
			ho.max_points = v;
			break;
		}
		case 7:
			if (!*optarg) {
				fputs("ahasd-view: --metrics: expected all or "
				      "metric names\n",
				      stderr);
				return 2;
			}
			ho.metrics = optarg;
			break;
		case 'h': usage(stdout); return 0;
		case 'V': puts("ahasd-view " AHASD_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind >= argc) {
		fputs("ahasd-view: no database given\n", stderr);
		usage(stderr);
		return 2;
	}
	if (perfetto && (n_ids || study)) {
		fputs("ahasd-view: --perfetto takes one run; drop --run and "
		      "--study\n",
		      stderr);
		return 2;
	}
	db_path = argv[optind];
	{
		/* the title: the database's file name, or each one's */
		size_t off = 0;
		title[0] = '\0';
		for (int i = optind; i < argc && off < sizeof title; i++) {
			const char *slash = strrchr(argv[i], '/');
			off += (size_t)snprintf(title + off, sizeof title - off,
			                        "%s%s", i > optind ? " + " : "",
			                        slash ? slash + 1 : argv[i]);
		}
	}
	if (argc - optind > 1) {
		ret = merge_inputs(argv + optind, argc - optind, &merged, err,
		                   sizeof err);
		if (ret < 0)
			goto error;
		db_path = merged.path;
	}
	if (perfetto) {
		ids[0] = perfetto_run;
		n_ids = 1;
		if (!out_path) {
			snprintf(pathbuf, sizeof pathbuf, "run%" PRId64 ".json",
			         perfetto_run);
			out_path = pathbuf;
		}
	} else if (!out_path) {
		out_path = "report.html";
	}

	ret = db_open_readonly(&db, db_path, err, sizeof err);
	if (ret < 0)
		goto error;
	ret = view_runs_load(db_handle(db), ids, n_ids, &runs, err, sizeof err);
	if (ret < 0)
		goto error;
	if (study) {
		ret = keep_study(&runs, study, err, sizeof err);
		if (ret < 0)
			goto error;
	}
	if (perfetto && runs.v[0].n_events == 0) {
		ret = view_write_perfetto(db_handle(db), &runs.v[0], stdout,
		                          err, sizeof err);
		goto error; /* -ENODATA with the message, nothing written */
	}
	/* a failure never leaves a partial report in place (outfile.h) */
	ret = outfile_open(&out, out_path, err, sizeof err);
	if (ret < 0)
		goto error;
	if (perfetto) {
		ret = view_write_perfetto(db_handle(db), &runs.v[0],
		                          outfile_stream(out), err, sizeof err);
	} else {
		ho.db_name = title;
		ret = view_write_html(db_handle(db), &runs, &ho,
		                      outfile_stream(out), err, sizeof err);
	}
	if (ret == 0)
		ret = outfile_commit(&out, err, sizeof err);
	else
		outfile_abort(&out);
	if (ret < 0)
		goto error;
	if (strcmp(out_path, "-") != 0) {
		if (perfetto)
			fprintf(stderr,
			        "ahasd-view: run %" PRId64 ": %" PRId64
			        " events -> %s\n",
			        runs.v[0].id, runs.v[0].n_events, out_path);
		else
			fprintf(stderr, "ahasd-view: %zu run%s -> %s\n", runs.n,
			        runs.n == 1 ? "" : "s", out_path);
	}
	if (perfetto && runs.v[0].events_dropped > 0)
		fprintf(stderr,
		        "ahasd-view: warning: run %" PRId64 " dropped "
		        "%.0f events past the recording bound; the trace "
		        "stops early\n",
		        runs.v[0].id, runs.v[0].events_dropped);

error:
	if (ret < 0)
		fprintf(stderr, "ahasd-view: %s\n", err);
	view_runs_clear(&runs);
	db_close(&db);
	merged_remove(&merged);
	return ret < 0 ? 1 : 0;
}
