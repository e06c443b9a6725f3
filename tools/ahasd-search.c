/* ahasd-search - a design-space search: every point of a grid of
 * hardware constants, policies, drafters and their parameters replayed
 * (in parallel with -j), every run stored under one study label, and the
 * study's Pareto front of throughput against energy efficiency printed
 * from the pareto view (optionally with area as a third cost).
 *
 * The grid is ahasd-replay's (tools/sweep_plan.h: the same -p, -d, -w,
 * -P lists and ranges, checked the same way before the first run); the
 * search evaluates all of it. The front is the database's: db/SCHEMA.md,
 * "Pareto fronts". */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "db.h"
#include "progress.h"
#include "run.h"
#include "run_pool.h"
#include "sweep_plan.h"
#include "util.h"

#define ERRLEN 1024
/** Runs a search may have without --yes. */
#define CONFIRM_RUNS 2000

struct options {
	struct sweep_grid g;
	const char *db_path;
	const char *study;
	int append, area, quiet, yes;
	double run_timeout;
	size_t workers;
};

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: ahasd-search [options] TRACE...\n"
	        "\n"
	        "Search a design space: replay every point of the grid of "
	        "presets,\n"
	        "policies, drafters and -P values (as ahasd-replay takes "
	        "them), store each\n"
	        "run in the database under the study's label, and print the "
	        "study's\n"
	        "Pareto front of throughput (tokens/s) against energy "
	        "efficiency\n"
	        "(tokens/J): the runs no other run of the study beats in both. "
	        "The same\n"
	        "front is in SQL: SELECT * FROM pareto WHERE study = 'NAME' "
	        "AND on_front.\n"
	        "\n"
	        "  -p, --policy P        scheduling policy plugin (repeatable; "
	        "default:\n"
	        "                        sync, async and ahasd)\n"
	        "  -d, --drafter D       drafting algorithm plugin "
	        "(repeatable; default:\n"
	        "                        adaedl)\n"
	        "  -w, --hw PRESET       hardware preset (repeatable; default: "
	        "npu-pim)\n"
	        "  -P, --param K=V       a plugin parameter (K, NAME.K) or "
	        "hardware\n"
	        "                        constant (hw.K, hw.DEV.K); V a list "
	        "(1,2,4), a\n"
	        "                        range LO:HI:STEP or a geometric range "
	        "LO:HI:xF,\n"
	        "                        or a list of those: the grid's axes\n"
	        "  -s, --study NAME      label of the runs and the study whose "
	        "front is\n"
	        "                        printed (default: search)\n"
	        "      --append          add runs to a study the database "
	        "already has\n"
	        "                        (its front is then over all of them)\n"
	        "      --area            also the front with area as a third "
	        "cost: the\n"
	        "                        AAU, EDC, TVC and queues a "
	        "configuration has, at\n"
	        "                        the paper's 28 nm figures (the "
	        "area_costs table)\n"
	        "  -j, --jobs N          runs at once, each in a worker "
	        "process (default\n"
	        "                        1; 0: one per online CPU)\n"
	        "      --yes             start a search of more than %d runs\n"
	        "      --db FILE         results database (default: "
	        "results.db)\n"
	        "      --seed N          seed of the acceptance coins (default "
	        "1)\n"
	        "      --queue-capacity N  max unverified drafted tokens "
	        "(default 32)\n"
	        "      --max-draft N     hard cap on a draft batch (default "
	        "64)\n"
	        "      --models D:T      retarget the traces to model presets "
	        "D and T\n"
	        "      --run-timeout S   bound on one run's wall time (default "
	        "600; 0:\n"
	        "                        none)\n"
	        "  -q, --quiet           no progress line; the front only\n"
	        "  -h, --help            this text\n",
	        CONFIRM_RUNS);
}

/* @return 0, 1 (--help) or 2 (usage error). */
static int parse_args(int argc, char **argv, struct options *o, int *first)
{
	enum {
		O_DB = 256,
		O_APPEND,
		O_AREA,
		O_YES,
		O_SEED,
		O_QCAP,
		O_MAXD,
		O_MODELS,
		O_TIMEOUT
	};
	static const struct option longopts[] = {
		{ "policy", required_argument, NULL, 'p' },
		{ "drafter", required_argument, NULL, 'd' },
		{ "hw", required_argument, NULL, 'w' },
		{ "param", required_argument, NULL, 'P' },
		{ "study", required_argument, NULL, 's' },
		{ "append", no_argument, NULL, O_APPEND },
		{ "area", no_argument, NULL, O_AREA },
		{ "jobs", required_argument, NULL, 'j' },
		{ "yes", no_argument, NULL, O_YES },
		{ "db", required_argument, NULL, O_DB },
		{ "seed", required_argument, NULL, O_SEED },
		{ "queue-capacity", required_argument, NULL, O_QCAP },
		{ "max-draft", required_argument, NULL, O_MAXD },
		{ "models", required_argument, NULL, O_MODELS },
		{ "run-timeout", required_argument, NULL, O_TIMEOUT },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t v;
	int c;

	while ((c = getopt_long(argc, argv, "p:d:w:P:s:j:qh", longopts,
	                        NULL)) != -1) {
		switch (c) {
		case 'p':
			if (sweep_grid_option(&o->g, SWEEP_OPT_POLICY, optarg))
				return 2;
			break;
		case 'd':
			if (sweep_grid_option(&o->g, SWEEP_OPT_DRAFTER, optarg))
				return 2;
			break;
		case 'w':
			if (sweep_grid_option(&o->g, SWEEP_OPT_HW, optarg))
				return 2;
			break;
		case 'P':
			if (sweep_grid_option(&o->g, SWEEP_OPT_PARAM, optarg))
				return 2;
			break;
		case 's':
			if (!*optarg) {
				fputs("ahasd-search: --study: expected a "
				      "name\n",
				      stderr);
				return 2;
			}
			o->study = optarg;
			break;
		case O_APPEND: o->append = 1; break;
		case O_AREA: o->area = 1; break;
		case 'j':
			if (sweep_parse_u64(&o->g, "--jobs", optarg, 0, 1024,
			                    &v))
				return 2;
			o->workers = run_pool_workers(v);
			break;
		case O_YES: o->yes = 1; break;
		case O_DB: o->db_path = optarg; break;
		case O_SEED:
			if (sweep_grid_option(&o->g, SWEEP_OPT_SEED, optarg))
				return 2;
			break;
		case O_QCAP:
			if (sweep_grid_option(&o->g, SWEEP_OPT_QUEUE, optarg))
				return 2;
			break;
		case O_MAXD:
			if (sweep_grid_option(&o->g, SWEEP_OPT_MAX_DRAFT,
			                      optarg))
				return 2;
			break;
		case O_MODELS:
			if (sweep_grid_option(&o->g, SWEEP_OPT_MODELS, optarg))
				return 2;
			break;
		case O_TIMEOUT:
			if (sweep_parse_timeout(&o->g, optarg, &o->run_timeout))
				return 2;
			break;
		case 'q': o->quiet = 1; break;
		case 'h': usage(stdout); return 1;
		default: usage(stderr); return 2;
		}
	}
	*first = optind;
	return 0;
}

/* The runs of one trace as jobs of a worker pool: job i is run first + i
 * of the plan. */
struct search {
	const struct options *o;
	const struct sweep_plan *plan;
	size_t first;
	const struct run_source *src;
	const char *path;
	struct progress *pr;
	char config[4096];
	size_t done, failed;
};

static int search_run(void *ctx, struct run_job *job)
{
	const struct search *s = ctx;
	struct sweep_spec_kv kv;
	struct run_spec spec = { .label = s->o->study, .watch = job->watch };

	sweep_run_spec(&s->o->g, &s->plan->run[s->first + job->index], &kv,
	               &spec);
	return run_execute(&spec, &s->src->stream, job->db, job->out, job->err,
	                   job->errlen);
}

static void search_describe(void *ctx, size_t i, struct db_failure *f)
{
	struct search *s = ctx;
	const struct sweep_run *r = &s->plan->run[s->first + i];

	sweep_config_text(&s->o->g, r, s->config, sizeof s->config);
	f->label = s->o->study;
	f->trace_path = s->path;
	f->hw_preset = s->o->g.presets[r->preset];
	f->policy = s->o->g.policies[r->policy];
	f->drafter = s->o->g.drafters[r->drafter];
	f->config = s->config;
}

static void search_done(void *ctx, size_t i, const struct run_outcome *oc)
{
	struct search *s = ctx;
	const struct sweep_run *r = &s->plan->run[s->first + i];

	if (oc->ok) {
		s->done++;
		progress_step(s->pr, 1, 0);
		return;
	}
	s->failed++;
	progress_clear(s->pr);
	sweep_config_text(&s->o->g, r, s->config, sizeof s->config);
	fprintf(stderr, "ahasd-search: %s [%s, %s, %s, %s; %s]\n", oc->message,
	        s->path, s->o->g.presets[r->preset],
	        s->o->g.policies[r->policy], s->o->g.drafters[r->drafter],
	        s->config);
	progress_step(s->pr, 1, 1);
}

/* Run run's value of -P key i, read back from its configuration rows:
 * hw.K as it is, NAME.K as policy.K or drafter.K when NAME is the run's
 * policy or drafter, K as policy.K or else drafter.K; "-" when the key is
 * not part of the run's configuration. */
static void key_value(struct db *db, const struct sweep_grid *g, size_t i,
                      const struct db_front_row *row, char *buf, size_t len)
{
	const char *key = g->param[i].key, *dot = strchr(key, '.');
	char name[160], err[ERRLEN];
	int rc = -ENOENT;

	if (g->param[i].hw) {
		rc = db_config_value(db, row->run_id, key, buf, len, err,
		                     sizeof err);
	} else if (dot) {
		const size_t nl = (size_t)(dot - key);
		const char *kind = NULL;

		if (strlen(row->policy) == nl && !strncmp(row->policy, key, nl))
			kind = "policy";
		else if (strlen(row->drafter) == nl &&
		         !strncmp(row->drafter, key, nl))
			kind = "drafter";
		if (kind) {
			snprintf(name, sizeof name, "%s%s", kind, dot);
			rc = db_config_value(db, row->run_id, name, buf, len,
			                     err, sizeof err);
		}
	} else {
		snprintf(name, sizeof name, "policy.%s", key);
		rc = db_config_value(db, row->run_id, name, buf, len, err,
		                     sizeof err);
		if (rc == -ENOENT) {
			snprintf(name, sizeof name, "drafter.%s", key);
			rc = db_config_value(db, row->run_id, name, buf, len,
			                     err, sizeof err);
		}
	}
	if (rc < 0)
		snprintf(buf, len, "-");
}

static void put_ci(char *buf, size_t len, double v, double lo, double hi)
{
	const int dec = v >= 1000 ? 0 : v >= 100 ? 1 : 2;

	if (isfinite(lo) && isfinite(hi))
		snprintf(buf, len, "%.*f [%.*f, %.*f]", dec, v, dec, lo, dec,
		         hi);
	else
		snprintf(buf, len, "%.*f", dec, v);
}

/* The study's front, from the pareto view: one row per run on it, with
 * the swept keys' values; with --area, the runs on the front with area
 * too, marked. @return 0 or 1. */
static int print_front(const struct options *o, size_t n_runs)
{
	const struct sweep_grid *g = &o->g;
	struct db *db = NULL;
	struct db_front_row *rows = NULL;
	size_t n = 0, swept[SWEEP_MAX_PARAMS], ns = 0, n2 = 0, n3 = 0;
	int wk[SWEEP_MAX_PARAMS], wp = 6, wd = 7, ww = 6, wt = 5, wj = 5;
	char err[ERRLEN], (*cell)[SWEEP_MAX_PARAMS][96] = NULL;
	char(*tps)[64] = NULL, (*tpj)[64] = NULL;
	int64_t total = 0;
	int status = 0;

	if (db_open_readonly(&db, o->db_path, err, sizeof err) < 0 ||
	    db_pareto_front(db, o->study, o->area, &rows, &n, err, sizeof err) <
	            0 ||
	    db_study_runs(db, o->study, &total, err, sizeof err) < 0) {
		fprintf(stderr, "ahasd-search: %s\n", err);
		status = 1;
		goto out;
	}
	for (size_t i = 0; i < g->n_params; i++)
		if (g->param[i].n_val > 1) {
			wk[ns] = (int)strlen(g->param[i].key);
			swept[ns++] = i;
		}
	cell = calloc(n ? n : 1, sizeof *cell);
	tps = calloc(n ? n : 1, sizeof *tps);
	tpj = calloc(n ? n : 1, sizeof *tpj);
	if (!cell || !tps || !tpj) {
		fputs("ahasd-search: out of memory\n", stderr);
		status = 1;
		goto out;
	}
	for (size_t r = 0; r < n; r++) {
		const struct db_front_row *f = &rows[r];

		n2 += f->on_front != 0;
		n3 += f->on_front_area != 0;
		for (size_t k = 0; k < ns; k++) {
			key_value(db, g, swept[k], f, cell[r][k],
			          sizeof cell[r][k]);
			if ((int)strlen(cell[r][k]) > wk[k])
				wk[k] = (int)strlen(cell[r][k]);
		}
		put_ci(tps[r], sizeof tps[r], f->tokens_per_s,
		       f->tokens_per_s_lo, f->tokens_per_s_hi);
		put_ci(tpj[r], sizeof tpj[r], f->tokens_per_j,
		       f->tokens_per_j_lo, f->tokens_per_j_hi);
		if ((int)strlen(f->policy) > wp)
			wp = (int)strlen(f->policy);
		if ((int)strlen(f->drafter) > wd)
			wd = (int)strlen(f->drafter);
		if ((int)strlen(f->preset) > ww)
			ww = (int)strlen(f->preset);
		if ((int)strlen(tps[r]) > wt)
			wt = (int)strlen(tps[r]);
		if ((int)strlen(tpj[r]) > wj)
			wj = (int)strlen(tpj[r]);
	}
	printf("study '%s' in %s: %lld runs (%zu new); on the front of "
	       "tokens/s against tokens/J: %zu",
	       o->study, o->db_path, (long long)total, n_runs, n2);
	if (o->area)
		printf("; with area as a third cost: %zu", n3);
	printf("\n\n%5s  %-*s %-*s %-*s", "run", wp, "policy", wd, "drafter",
	       ww, "preset");
	for (size_t k = 0; k < ns; k++)
		printf(" %*s", wk[k], g->param[swept[k]].key);
	printf("  %-*s  %-*s", wt, "tok/s [95% CI]", wj, "tok/J [95% CI]");
	if (o->area)
		printf("  %8s  %s", "area mm2", "front");
	printf("\n");
	for (size_t r = 0; r < n; r++) {
		const struct db_front_row *f = &rows[r];

		printf("%5lld  %-*s %-*s %-*s", (long long)f->run_id, wp,
		       f->policy, wd, f->drafter, ww, f->preset);
		for (size_t k = 0; k < ns; k++)
			printf(" %*s", wk[k], cell[r][k]);
		printf("  %-*s  %-*s", wt, tps[r], wj, tpj[r]);
		if (o->area)
			printf("  %8.2f  %s", f->area_mm2,
			       f->on_front && f->on_front_area ? "both"
			       : f->on_front                   ? "tok/s-tok/J"
			                                       : "with area");
		printf("\n");
	}
	printf("\nfront: no other run of the study has at least its tokens/s "
	       "and tokens/J and more of one%s.\n",
	       o->area ? "; with area: and no more area (area_costs: AAU "
	                 "1.25, EDC 0.05, TVC 0.03, queues 0.01 mm2 at 28 "
	                 "nm)"
	               : "");
	printf("sqlite3 %s \"select * from pareto where study = '%s' and "
	       "on_front%s\"\n",
	       o->db_path, o->study, o->area ? "_area" : "");
out:
	free(cell);
	free(tps);
	free(tpj);
	free(rows);
	db_close(&db);
	return status;
}

int main(int argc, char **argv)
{
	struct options o = {
		.db_path = "results.db",
		.study = "search",
		.run_timeout = RUN_TIMEOUT_DEFAULT,
		.workers = 1,
	};
	struct sweep_plan plan = { 0 };
	struct progress prog;
	struct db *db = NULL;
	char err[ERRLEN];
	size_t done = 0, failed = 0;
	int64_t existing = 0;
	int first, status;

	sweep_grid_init(&o.g, "ahasd-search");
	status = parse_args(argc, argv, &o, &first);
	if (status) {
		sweep_grid_free(&o.g);
		return status == 1 ? 0 : 2;
	}
	if (first >= argc) {
		fputs("ahasd-search: no trace given\n", stderr);
		usage(stderr);
		sweep_grid_free(&o.g);
		return 2;
	}
	sweep_grid_defaults(&o.g);

	/* the whole grid is checked before the first run */
	status = sweep_grid_check(&o.g);
	if (status == 0)
		status = sweep_plan_make(&o.g, (size_t)(argc - first), &plan);
	if (status)
		goto out;
	if (plan.n > CONFIRM_RUNS && !o.yes) {
		fprintf(stderr,
		        "ahasd-search: this search is %zu runs; give "
		        "--yes to start more than %d\n",
		        plan.n, CONFIRM_RUNS);
		status = 2;
		goto out;
	}
	/* the database is made or upgraded before the first run; a study
	 * is one search unless --append says otherwise */
	if (db_open(&db, o.db_path, err, sizeof err) < 0 ||
	    db_study_runs(db, o.study, &existing, err, sizeof err) < 0) {
		fprintf(stderr, "ahasd-search: %s\n", err);
		status = 1;
		goto out;
	}
	db_close(&db);
	if (existing && !o.append) {
		fprintf(stderr,
		        "ahasd-search: %s already holds %lld runs of "
		        "study '%s'; give another --study, or --append to add "
		        "these to it\n",
		        o.db_path, (long long)existing, o.study);
		status = 1;
		goto out;
	}
	if (!o.quiet)
		fprintf(stderr, "ahasd-search: %zu runs, %zu at once\n", plan.n,
		        o.workers > plan.n ? plan.n : o.workers);
	progress_start(&prog, "ahasd-search", "runs", plan.n, o.quiet);
	for (size_t i = 0; i < plan.n && !status;) {
		const size_t t = plan.run[i].trace;
		const char *path = argv[first + (int)t];
		struct run_source src;
		size_t j = i;

		while (j < plan.n && plan.run[j].trace == t)
			j++;
		if (run_source_open(&src, path, run_mem_max(), o.g.models, err,
		                    sizeof err) < 0) {
			progress_clear(&prog);
			fprintf(stderr, "ahasd-search: %s\n", err);
			status = 1;
			break;
		}
		struct search *s = calloc(1, sizeof *s);
		if (!s) {
			run_source_close(&src);
			status = 1;
			break;
		}
		*s = (struct search){ .o = &o,
			              .plan = &plan,
			              .first = i,
			              .src = &src,
			              .path = path,
			              .pr = &prog };
		struct run_pool pool = {
			.db_path = o.db_path,
			.timeout_s = o.run_timeout,
			.workers = o.workers,
			.out_size = sizeof(struct run_result),
			.ctx = s,
			.run = search_run,
			.describe = search_describe,
			.done = search_done,
		};
		if (run_pool_exec(&pool, j - i, err, sizeof err) < 0) {
			progress_clear(&prog);
			fprintf(stderr, "ahasd-search: %s\n", err);
			status = 1;
		}
		done += s->done;
		failed += s->failed;
		free(s);
		run_source_close(&src);
		i = j;
	}
	progress_end(&prog);
	if (status == 0 && done)
		status = print_front(&o, done);
	if (failed) {
		fprintf(stderr,
		        "ahasd-search: %zu of %zu runs failed (sqlite3 "
		        "%s 'select * from failures')\n",
		        failed, plan.n, o.db_path);
		status = 1;
	}
out:
	sweep_plan_free(&plan);
	db_close(&db);
	sweep_grid_free(&o.g);
	return status;
}
