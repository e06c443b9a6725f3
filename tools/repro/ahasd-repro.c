/* ahasd-repro - reproduce the AHASD paper's study (Ma et al., DAC 2026).
 *
 * Runs the grid  traces x model pairs x drafters x configurations  through
 * the replay engine (in-process, one trace read once into memory), the
 * captured token streams retargeted to the paper's model presets
 * (replay/models), stores every run in one results database through db.h,
 * and prints the paper's tables with our value next to the paper's. With
 * --sweep it re-runs the full-AHASD configuration over one constant at a
 * time (sensitivity). docs/REPRODUCTION.md explains the numbers.
 *
 * Normalisation: every ratio is taken per cell (trace, pair, drafter)
 * against the gpu-only run of the same cell; "mean" is the arithmetic mean
 * over cells; "max" is the largest (pair, drafter) value after averaging
 * over traces.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "db.h"
#include "hw.h"
#include "models.h"
#include "outfile.h"
#include "results.h"
#include "run.h"
#include "run_pool.h"
#include "sha256.h"
#include "trace.h"
#include "trace_mem.h"
#include "util.h"
#include "workload.h"
#include "repro.h"

/* ---- command line ---- */

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: ahasd-repro [options] [TRACE...]\n"
	        "\n"
	        "Reproduce the AHASD paper's study: every captured trace x "
	        "model pair x\n"
	        "drafter x configuration, each run stored in one results "
	        "database; print\n"
	        "the paper's tables with our values next to the paper's.\n"
	        "\n"
	        "  TRACE...             traces to use (default: every "
	        "captured, non-\n"
	        "                       synthetic *.msgpack in --traces-dir)\n"
	        "      --traces-dir D   default: the source tree's traces/ "
	        "when run from\n"
	        "                       the build tree\n"
	        "      --pair D:T       model-preset pair, repeatable "
	        "(default:\n"
	        "                       opt-1.3b:opt-6.7b, "
	        "llama2-7b:llama2-13b,\n"
	        "                       palm-8b:palm-30b)\n"
	        "  -d, --drafter NAME   drafter plugin, repeatable (default: "
	        "specdecpp,\n"
	        "                       svip, adaedl, banditspec)\n"
	        "      --workload P[:k=v...]  a workload profile's synthetic "
	        "stream as\n"
	        "                       traces of their own (repeatable; "
	        "default, with\n"
	        "                       discovered traces: 7b-instruct); "
	        "--no-workload\n"
	        "      --workload-sweep KEY=V,V..  also the study on the "
	        "(first) workload\n"
	        "                       with one statistic at each value "
	        "(repeatable)\n"
	        "      --what-it-takes  instead of the grid: for each of the "
	        "paper's\n"
	        "                       ratios, the value of each hardware "
	        "constant at\n"
	        "                       which the model reaches it "
	        "(--wit-ratio TEXT,\n"
	        "                       --wit-constant NAME narrow it; see "
	        "--list)\n"
	        "      --family F       paper, artifact or edge (repeatable; "
	        "default all\n"
	        "                       three): the hardware the grid runs on\n"
	        "      --sweep NAME[=V,V..]  also run a sensitivity sweep of "
	        "+tvc\n"
	        "                       (repeatable; 'all' for every sweep; "
	        "--list\n"
	        "                       names them)\n"
	        "      --db FILE        results database (default results.db)\n"
	        "      --no-db          do not store runs\n"
	        "      --run-timeout S  bound on one run's wall time in "
	        "seconds: a run\n"
	        "                       past it is killed and recorded as "
	        "failed\n"
	        "                       (default 600; 0: no bound)\n"
	        "  -j, --jobs N         runs at once, each in a worker process "
	        "of its\n"
	        "                       own (default 1; 0: one per online "
	        "CPU); the\n"
	        "                       tables and the database are the same "
	        "for any N\n"
	        "      --shard I/N      only shard I of N of the study's runs "
	        "(run k,\n"
	        "                       from 0 in the order they are planned, "
	        "when k mod\n"
	        "                       N = I-1), into the database; no tables "
	        "(they\n"
	        "                       need every run); merge the N databases "
	        "with\n"
	        "                       ahasd-db merge\n"
	        "  -o, --out FILE       also write the tables as Markdown to "
	        "FILE\n"
	        "  -q, --quiet          do not print the tables\n"
	        "      --list           list configurations and sweeps\n"
	        "  -h, --help           this text\n");
}

static void list_all(void)
{
	printf("configurations:\n");
	for (size_t c = 0; c < N_CONFIGS; c++)
		printf("  %-14s hw=%s|%s|%s policy=%s %s%s%s%s%s%s\n    %s\n",
		       configs[c].name, configs[c].hw[F_PAPER],
		       configs[c].hw[F_ARTIFACT], configs[c].hw[F_EDGE],
		       configs[c].policy, configs[c].params,
		       *configs[c].params ? " " : "",
		       *configs[c].hw_params ? "hw." : "", configs[c].hw_params,
		       configs[c].drafter ? " drafter=" : "",
		       configs[c].drafter ? configs[c].drafter : "",
		       configs[c].what);
	printf("what-it-takes constants (--wit-constant):\n");
	for (size_t c = 0; c < N_WIT_CONSTS; c++)
		printf("  %-15s %s\n", wit_consts[c].name, wit_consts[c].what);
	printf("what-it-takes ratios (--wit-ratio matches a part):\n");
	for (size_t c = 0; c < N_WIT_RATIOS; c++)
		printf("  %s (paper %.3g)\n", wit_ratios[c].name,
		       wit_ratios[c].paper);
	printf("hardware families (--family):\n");
	for (int f = 0; f < N_FAMILIES; f++)
		printf("  %-9s %s\n", families[f].name, families[f].what);
	printf("sweeps (of +tvc):\n");
	for (size_t s = 0; s < N_SWEEPS; s++)
		printf("  %-10s %s = %s\n    %s\n", sweeps[s].name,
		       sweeps[s].key, sweeps[s].values, sweeps[s].what);
}

struct sweep_req {
	const struct sweep *sw;
	const char *values;
};

int main(int argc, char **argv)
{
	enum {
		O_DB = 256,
		O_NODB,
		O_PAIR,
		O_SWEEP,
		O_LIST,
		O_TDIR,
		O_FAMILY,
		O_WORKLOAD,
		O_NO_WORKLOAD,
		O_WSWEEP,
		O_WIT,
		O_WIT_RATIO,
		O_WIT_CONST,
		O_RUN_TIMEOUT,
		O_SHARD
	};
	static const struct option longopts[] = {
		{ "db", required_argument, NULL, O_DB },
		{ "no-db", no_argument, NULL, O_NODB },
		{ "run-timeout", required_argument, NULL, O_RUN_TIMEOUT },
		{ "jobs", required_argument, NULL, 'j' },
		{ "shard", required_argument, NULL, O_SHARD },
		{ "pair", required_argument, NULL, O_PAIR },
		{ "drafter", required_argument, NULL, 'd' },
		{ "sweep", required_argument, NULL, O_SWEEP },
		{ "family", required_argument, NULL, O_FAMILY },
		{ "workload", required_argument, NULL, O_WORKLOAD },
		{ "no-workload", no_argument, NULL, O_NO_WORKLOAD },
		{ "workload-sweep", required_argument, NULL, O_WSWEEP },
		{ "what-it-takes", no_argument, NULL, O_WIT },
		{ "wit-ratio", required_argument, NULL, O_WIT_RATIO },
		{ "wit-constant", required_argument, NULL, O_WIT_CONST },
		{ "traces-dir", required_argument, NULL, O_TDIR },
		{ "out", required_argument, NULL, 'o' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "list", no_argument, NULL, O_LIST },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct repro r;
	struct cell_job *jobs = NULL;
	struct sweep_req req[MAX_SWEEPS * 4];
	size_t n_req = 0;
	const char *out_path = NULL, *tdir = NULL;
	char err[ERRLEN], *mdbuf = NULL;
	size_t mdlen = 0;
	int status = 1, no_db = 0, c, no_workload = 0, wit = 0;
	const char *wsweep[MAX_SWEEP_VALUES], *wit_r[16], *wit_c[16];
	size_t n_wsweep = 0, n_wit_r = 0, n_wit_c = 0;
	unsigned fam_mask = 0;

	r.db_path = "results.db";
	r.run_timeout = RUN_TIMEOUT_DEFAULT;
	r.workers = 1;
	r.shard = (struct sweep_shard){ 1, 1 };
	struct progress prog;
	progress_start(&prog, "ahasd-repro", "runs", 0, 1);
	r.pr = &prog;
	while ((c = getopt_long(argc, argv, "d:o:j:qh", longopts, NULL)) !=
	       -1) {
		switch (c) {
		case O_DB: r.db_path = optarg; break;
		case O_NODB: no_db = 1; break;
		case O_RUN_TIMEOUT: {
			char *end;
			errno = 0;
			r.run_timeout = strtod(optarg, &end);
			if (errno || end == optarg || *end ||
			    !(r.run_timeout >= 0) || r.run_timeout > 1e9) {
				fprintf(stderr,
				        "ahasd-repro: --run-timeout: "
				        "expected seconds in [0, 1e9] (0: no "
				        "bound), got '%s'\n",
				        optarg);
				return 2;
			}
			break;
		}
		case 'j': {
			char *end;
			errno = 0;
			unsigned long long v = strtoull(optarg, &end, 10);
			if (errno || end == optarg || *end || *optarg == '-' ||
			    v > 1024) {
				fprintf(stderr,
				        "ahasd-repro: --jobs: expected an "
				        "integer in [0, 1024] (0: one per "
				        "online "
				        "CPU), got '%s'\n",
				        optarg);
				return 2;
			}
			r.workers = run_pool_workers(v);
			break;
		}
		case O_SHARD:
			if (sweep_shard_parse(optarg, &r.shard, err,
			                      sizeof err) < 0) {
				fprintf(stderr, "ahasd-repro: --shard %s\n",
				        err);
				return 2;
			}
			break;
		case O_TDIR: tdir = optarg; break;
		case O_WORKLOAD:
			if (r.n_workloads == MAX_WORKLOADS ||
			    parse_workload(&r.workloads[r.n_workloads], optarg,
			                   err, sizeof err) < 0) {
				fprintf(stderr,
				        "ahasd-repro: --workload %s: %s\n",
				        optarg,
				        r.n_workloads == MAX_WORKLOADS
				                ? "too many"
				                : err);
				return 2;
			}
			r.n_workloads++;
			break;
		case O_NO_WORKLOAD: no_workload = 1; break;
		case O_WSWEEP:
			if (n_wsweep == MAX_SWEEP_VALUES) {
				fprintf(stderr, "ahasd-repro: too many "
				                "--workload-sweep\n");
				return 2;
			}
			wsweep[n_wsweep++] = optarg;
			break;
		case O_WIT: wit = 1; break;
		case O_WIT_RATIO:
		case O_WIT_CONST:
			if ((c == O_WIT_RATIO ? n_wit_r : n_wit_c) == 16) {
				fprintf(stderr,
				        "ahasd-repro: too many filters\n");
				return 2;
			}
			if (c == O_WIT_RATIO)
				wit_r[n_wit_r++] = optarg;
			else
				wit_c[n_wit_c++] = optarg;
			break;
		case O_FAMILY: {
			int f = 0;
			while (f < N_FAMILIES &&
			       strcmp(families[f].name, optarg))
				f++;
			if (f == N_FAMILIES) {
				fprintf(stderr,
				        "ahasd-repro: --family '%s': expected "
				        "paper, artifact or edge\n",
				        optarg);
				return 2;
			}
			fam_mask |= 1u << f;
			break;
		}
		case O_PAIR:
			if (r.n_pairs == MAX_PAIRS || !strchr(optarg, ':')) {
				fprintf(stderr,
				        "ahasd-repro: --pair '%s': "
				        "expected DRAFT:TARGET (max %d)\n",
				        optarg, MAX_PAIRS);
				return 2;
			}
			r.pairs[r.n_pairs++] = optarg;
			break;
		case 'd':
			if (r.n_drafters == MAX_DRAFTERS) {
				fprintf(stderr,
				        "ahasd-repro: too many drafters\n");
				return 2;
			}
			r.drafters[r.n_drafters++] = optarg;
			break;
		case O_SWEEP: {
			char *eq = strchr(optarg, '=');
			size_t nl = eq ? (size_t)(eq - optarg) : strlen(optarg);
			int all = !strcmp(optarg, "all"), found = 0;
			for (size_t s = 0; s < N_SWEEPS; s++) {
				if (!all &&
				    (strlen(sweeps[s].name) != nl ||
				     strncmp(sweeps[s].name, optarg, nl)))
					continue;
				found = 1;
				if (n_req < sizeof req / sizeof *req)
					req[n_req++] = (struct sweep_req){
						&sweeps[s],
						eq ? eq + 1 : sweeps[s].values
					};
			}
			if (!found) {
				fprintf(stderr,
				        "ahasd-repro: unknown sweep "
				        "'%s' (see --list)\n",
				        optarg);
				return 2;
			}
			break;
		}
		case 'o': out_path = optarg; break;
		case 'q': r.quiet = 1; break;
		case O_LIST: list_all(); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (r.shard.n > 1 && (wit || out_path || no_db)) {
		fprintf(stderr,
		        "ahasd-repro: --shard runs part of the study into "
		        "its database for ahasd-db merge: not with %s\n",
		        wit ? "--what-it-takes (a search needs all its runs)"
		        : out_path ? "--out (the tables need every run)"
		                   : "--no-db");
		return 2;
	}
	if (!r.n_pairs)
		for (size_t i = 0; i < 3; i++)
			r.pairs[r.n_pairs++] = default_pairs[i];
	if (!r.n_drafters)
		for (size_t i = 0; i < 4; i++)
			r.drafters[r.n_drafters++] = default_drafters[i];

	/* models */
	for (size_t p = 0; p < r.n_pairs; p++) {
		char name[256];
		const char *colon = strchr(r.pairs[p], ':');
		snprintf(name, sizeof name, "%.*s", (int)(colon - r.pairs[p]),
		         r.pairs[p]);
		if (model_preset_load(&r.models[p][0], name, err, sizeof err) <
		            0 ||
		    model_preset_load(&r.models[p][1], colon + 1, err,
		                      sizeof err) < 0) {
			fprintf(stderr, "ahasd-repro: %s\n", err);
			goto done;
		}
	}
	/* traces */
	if (optind < argc) {
		for (int i = optind; i < argc; i++) {
			if (r.n_traces == MAX_TRACES) {
				fprintf(stderr,
				        "ahasd-repro: too many traces\n");
				goto done;
			}
			if (trace_data_load(&r.traces[r.n_traces], argv[i], 0,
			                    err, sizeof err) < 0) {
				fprintf(stderr, "ahasd-repro: %s\n", err);
				goto done;
			}
			r.n_traces++;
		}
	} else {
		char dir[PATH_MAX];
		if (!tdir) {
			if (!util_exe_in_build_tree()) {
				fprintf(stderr, "ahasd-repro: give traces or "
				                "--traces-dir\n");
				goto done;
			}
			snprintf(dir, sizeof dir, "%s/traces",
			         AHASD_SOURCE_ROOT);
			tdir = dir;
		}
		if (discover_traces(&r, tdir, err, sizeof err) < 0) {
			fprintf(stderr, "ahasd-repro: %s\n", err);
			goto done;
		}
	}
	/* the synthetic workloads: by default, beside the discovered captures,
	 * the 7B-class profile */
	if (!r.n_workloads && !no_workload && optind >= argc) {
		if (parse_workload(&r.workloads[0], "7b-instruct", err,
		                   sizeof err) < 0) {
			fprintf(stderr, "ahasd-repro: %s\n", err);
			goto done;
		}
		r.n_workloads = 1;
	}
	if (no_workload)
		r.n_workloads = 0;
	for (size_t w = 0; w < r.n_workloads; w++) {
		if (r.n_traces == MAX_TRACES) {
			fprintf(stderr, "ahasd-repro: too many traces\n");
			goto done;
		}
		if (trace_data_profile(&r.traces[r.n_traces], &r.workloads[w],
		                       (int)w + 1, err, sizeof err) < 0) {
			fprintf(stderr, "ahasd-repro: %s\n", err);
			goto done;
		}
		r.n_traces++;
	}
	if (!r.n_traces) {
		fprintf(stderr, "ahasd-repro: no traces and no workload\n");
		goto done;
	}
	/* made or upgraded and checked before the first run, then closed:
	 * each run's worker process opens its own connection */
	if (!no_db && db_open(&r.db, r.db_path, err, sizeof err) < 0) {
		fprintf(stderr, "ahasd-repro: %s\n", err);
		goto done;
	}
	db_close(&r.db);
	if (no_db)
		r.db_path = NULL;
	if (!fam_mask)
		fam_mask = (1u << N_FAMILIES) - 1;
	if (!(fam_mask & 1u)) {
		fprintf(stderr, "ahasd-repro: the paper family is always run "
		                "(the tables compare with it)\n");
		fam_mask |= 1u;
	}
	r.n_fam = 0;
	while (r.n_fam < N_FAMILIES && (fam_mask >> r.n_fam))
		r.n_fam++;
	/* every filter and sweep value is checked before the first run */
	for (size_t i = 0; i < n_wit_c; i++) {
		size_t k = 0;
		while (k < N_WIT_CONSTS && strcmp(wit_consts[k].name, wit_c[i]))
			k++;
		if (k == N_WIT_CONSTS) {
			fprintf(stderr,
			        "ahasd-repro: --wit-constant %s: unknown "
			        "(see --list)\n",
			        wit_c[i]);
			goto done;
		}
	}
	for (size_t i = 0; i < n_wsweep; i++) {
		char key[64], vbuf[256];
		const char *eq = strchr(wsweep[i], '=');
		struct wl_profile pp = r.n_workloads ? r.workloads[0].prof
		                                     : *wl_profile_at(0);
		if (!eq || (size_t)(eq - wsweep[i]) >= sizeof key) {
			fprintf(stderr,
			        "ahasd-repro: --workload-sweep %s: expected "
			        "KEY=V,V,...\n",
			        wsweep[i]);
			goto done;
		}
		memcpy(key, wsweep[i], (size_t)(eq - wsweep[i]));
		key[eq - wsweep[i]] = '\0';
		snprintf(vbuf, sizeof vbuf, "%s", eq + 1);
		for (char *v = strtok(vbuf, ","); v; v = strtok(NULL, ",")) {
			struct wl_profile q = pp;
			if (wl_profile_set(&q, key, v, err, sizeof err) < 0 ||
			    wl_profile_finish(&q, err, sizeof err) < 0) {
				fprintf(stderr,
				        "ahasd-repro: --workload-sweep: %s\n",
				        err);
				goto done;
			}
		}
	}
	for (size_t i = 0; i < n_req; i++)
		if (check_sweep(req[i].sw, req[i].values, err, sizeof err) <
		    0) {
			fprintf(stderr, "ahasd-repro: --sweep %s: %s\n",
			        req[i].sw->name, err);
			goto done;
		}
	r.grid = calloc(N_FAMILIES * cells(&r) * N_CONFIGS, sizeof *r.grid);
	r.md = open_memstream(&mdbuf, &mdlen);
	if (!r.grid || !r.md) {
		fprintf(stderr, "ahasd-repro: out of memory\n");
		goto done;
	}
	if (wit) {
		/* the search alone */
		out(&r,
		    "# AHASD reproduction: what it would take\n\nGenerated "
		    "by `ahasd-repro --what-it-takes` (ahasd-replay %s); read "
		    "with [REPRODUCTION.md](REPRODUCTION.md).\n\n",
		    AHASD_VERSION);
		r.fam = F_PAPER;
		if (run_what_it_takes(&r, wit_r, n_wit_r, wit_c, n_wit_c, err,
		                      sizeof err) < 0) {
			fprintf(stderr, "ahasd-repro: %s\n", err);
			goto done;
		}
		goto write;
	}

	struct timespec w0, w1;
	clock_gettime(CLOCK_MONOTONIC, &w0);
	progress_start(&prog, "ahasd-repro", "runs", 0, r.quiet);
	jobs = calloc(N_FAMILIES * cells(&r) * N_CONFIGS, sizeof *jobs);
	if (!jobs) {
		fprintf(stderr, "ahasd-repro: out of memory\n");
		goto done;
	}
	size_t nj = 0;
	for (r.fam = 0; r.fam < N_FAMILIES; r.fam++) {
		if (!(fam_mask & (1u << r.fam)))
			continue;
		for (size_t t = 0; t < r.n_traces; t++)
			for (size_t p = 0; p < r.n_pairs; p++)
				for (size_t d = 0; d < r.n_drafters; d++)
					for (size_t k = 0; k < N_CONFIGS; k++)
						/* a configuration with its own drafter is one run per
			 * (trace, pair), shared by the cell's drafters */
						if (!configs[k].drafter ||
						    d == 0)
							jobs[nj++] = (struct
							              cell_job){
								r.fam,
								t,
								p,
								d,
								k,
								NULL,
								grid_at(&r, t, p, d, k)
							};
	}
	if (run_cells(&r, jobs, nj, err, sizeof err) < 0) {
		progress_clear(&prog);
		fprintf(stderr, "ahasd-repro: %s\n", err);
		goto done;
	}
	for (r.fam = 0; r.fam < N_FAMILIES; r.fam++)
		for (size_t t = 0; t < r.n_traces; t++)
			for (size_t p = 0; p < r.n_pairs; p++)
				for (size_t d = 1; d < r.n_drafters; d++)
					for (size_t k = 0; k < N_CONFIGS; k++)
						if (configs[k].drafter &&
						    (fam_mask & (1u << r.fam)))
							*grid_at(&r, t, p, d,
							         k) =
							        *grid_at(&r, t,
							                 p, 0,
							                 k);
	clock_gettime(CLOCK_MONOTONIC, &w1);
	double wall = (double)(w1.tv_sec - w0.tv_sec) +
	              (double)(w1.tv_nsec - w0.tv_nsec) * 1e-9;

	out(&r,
	    "# AHASD reproduction: tables\n\n"
	    "Generated by `ahasd-repro` (ahasd-replay %s); how the numbers "
	    "are obtained and why they differ from the paper: "
	    "[REPRODUCTION.md](REPRODUCTION.md).\n\n",
	    AHASD_VERSION);
	table_setup(&r, wall);
	table_families(&r, fam_mask);
	const unsigned gm = groups_present(&r);
	for (r.wgroup = 0; r.wgroup < 32; r.wgroup++) {
		if (!(gm & (1u << r.wgroup)))
			continue;
		for (r.fam = 0; r.fam < N_FAMILIES; r.fam++) {
			if (!(fam_mask & (1u << r.fam)))
				continue;
			out(&r, "# Hardware: %s, workload: %s\n\n%s.\n\n",
			    families[r.fam].name, group_name(&r, r.wgroup),
			    families[r.fam].what);
			table_ablation(&r);
			table_headline(&r);
			table_lpddr5(&r);
			table_acceptance(&r);
			table_share(&r);
		}
	}
	r.fam = F_PAPER;
	/* sensitivity on the first synthetic workload when there is one:
	 * the 7B-class statistics are the closer to the paper's pairs */
	r.wgroup = gm & 2u ? 1 : 0;
	if (n_req)
		out(&r, "# Sensitivity (paper hardware)\n\n");
	for (size_t i = 0; i < n_req; i++)
		if (run_sweep(&r, req[i].sw, req[i].values, err, sizeof err) <
		    0) {
			progress_clear(&prog);
			fprintf(stderr, "ahasd-repro: %s\n", err);
			goto done;
		}
	if (n_wsweep)
		out(&r, "# Workload sweeps (paper hardware)\n\n");
	for (size_t i = 0; i < n_wsweep; i++)
		if (run_workload_sweep(&r, wsweep[i], err, sizeof err) < 0) {
			progress_clear(&prog);
			fprintf(stderr, "ahasd-repro: %s\n", err);
			goto done;
		}
	clock_gettime(CLOCK_MONOTONIC, &w1);
	double total = (double)(w1.tv_sec - w0.tv_sec) +
	               (double)(w1.tv_nsec - w0.tv_nsec) * 1e-9;
	out(&r, "Total: %llu runs in %.1f s.\n", (unsigned long long)r.runs,
	    total);
write:
	progress_end(&prog);
	if (fflush(r.md)) {
		fprintf(stderr, "ahasd-repro: out of memory\n");
		goto done;
	}
	if (r.shard.n > 1) {
		if (!r.quiet)
			fprintf(stderr,
			        "ahasd-repro: shard %zu/%zu: %zu of the "
			        "study's %zu runs, into %s; no tables (they "
			        "need "
			        "every run: merge the shards' databases with "
			        "ahasd-db merge)\n",
			        r.shard.i, r.shard.n, r.tried, r.job_seq,
			        r.db_path);
	} else if (!r.quiet)
		fwrite(mdbuf, 1, mdlen, stdout);
	if (out_path) {
		struct outfile *of = NULL;
		char oerr[1024];

		if (outfile_open(&of, out_path, oerr, sizeof oerr) < 0) {
			fprintf(stderr, "ahasd-repro: %s\n", oerr);
			goto done;
		}
		fwrite(mdbuf, 1, mdlen, outfile_stream(of));
		if (outfile_commit(&of, oerr, sizeof oerr) < 0) {
			fprintf(stderr, "ahasd-repro: %s\n", oerr);
			goto done;
		}
	}
	status = 0;
	if (r.failed) {
		/* the tables above leave their cells out */
		if (r.db_path)
			fprintf(stderr,
			        "ahasd-repro: %zu of %zu runs failed "
			        "(sqlite3 %s 'select * from failures')\n",
			        r.failed, r.tried, r.db_path);
		else
			fprintf(stderr, "ahasd-repro: %zu of %zu runs failed\n",
			        r.failed, r.tried);
		status = 1;
	}
done:
	progress_end(&prog);
	free(jobs);
	if (r.md)
		fclose(r.md);
	free(mdbuf);
	free(r.grid);
	db_close(&r.db);
	for (size_t t = 0; t < r.n_traces; t++)
		trace_data_free(&r.traces[t]);
	for (size_t p = 0; p < r.n_pairs; p++) {
		model_preset_clear(&r.models[p][0]);
		model_preset_clear(&r.models[p][1]);
	}
	return status;
}
