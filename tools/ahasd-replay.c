/* ahasd-replay - replay traces under scheduling policies and drafting
 * algorithms, store every run in SQLite, print a summary per run.
 *
 * A sweep is the cartesian product of the traces, presets, policies,
 * drafters and the values of every -P key (tools/sweep.h), where a key
 * multiplies only the runs of the plugins it reaches: a policy that does
 * not take `k` runs once for all values of `-P k=1,2,4`, so a baseline
 * policy in a sweep runs once at every point. Every run is planned, and
 * every value of every key checked, before the first one starts
 * (tools/sweep_plan.h, shared with ahasd-search). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "db.h"
#include "hw.h"
#include "models.h"
#include "plugin.h"
#include "progress.h"
#include "results.h"
#include "run.h"
#include "run_pool.h"
#include "stats.h"
#include "sweep.h"
#include "sweep_plan.h"
#include "trace.h"
#include "trace_mem.h"
#include "util.h"

#define ERRLEN 1024
/** Runs a sweep may have without --yes. */
#define CONFIRM_RUNS 200

struct options {
	struct sweep_grid g; /* plugins, presets, -P keys, fixed settings */
	const char *db_path;
	const char *label;
	const char *baseline; /* --baseline, default sync */
	uint64_t max_events;
	int events, no_db, quiet, yes;
	double run_timeout;       /* seconds; 0: none */
	size_t workers;           /* -j */
	struct sweep_shard shard; /* --shard; 1/1: all */
};

/* One finished run, kept for the comparison table. */
struct summary {
	size_t planned; /* its index in the plan */
	char policy[64], drafter[64], preset[64], trace[256];
	char match_key[65], policy_key[65];
	double tok_s, tok_j, accept, draft_len;
	double tok_s_lo, tok_s_hi; /* 95% interval, NAN if none */
	int64_t run_id;
};

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: ahasd-replay [options] TRACE...\n"
	        "\n"
	        "Replay speculative-decoding traces against a hardware model "
	        "under\n"
	        "scheduling policies and drafting algorithms (plugins); every "
	        "run is\n"
	        "written to a SQLite database.\n"
	        "\n"
	        "  -p, --policy P        scheduling policy plugin: a name "
	        "(sync), a file\n"
	        "                        name (sync.so) or a path (./my.so); "
	        "repeatable;\n"
	        "                        default: sync, async and ahasd\n"
	        "  -d, --drafter D       drafting algorithm plugin (fixed, "
	        "specdecpp, svip,\n"
	        "                        adaedl, banditspec, or a path); "
	        "repeatable;\n"
	        "                        default: adaedl\n"
	        "  -w, --hw PRESET       hardware preset name or .ini path; "
	        "repeatable;\n"
	        "                        default: npu-pim\n"
	        "  -P, --param K=V       plugin or hardware parameter. K is a "
	        "parameter of\n"
	        "                        the selected plugins (given to each "
	        "that declares\n"
	        "                        it), NAME.K for one plugin "
	        "(ahasd.edc=0), or\n"
	        "                        hw.K / hw.DEV.K for a hardware "
	        "constant\n"
	        "                        (hw.aau=0, hw.pim.mem_bw=512e9); each "
	        "key once.\n"
	        "                        V sweeps as a list (k=1,2,4), a range "
	        "LO:HI:STEP\n"
	        "                        (k=1:8:1) or a geometric range "
	        "LO:HI:xF\n"
	        "                        (hw.pim.mem_bw=128e9:512e9:x2), or a "
	        "list of\n"
	        "                        those; every list multiplies the runs "
	        "of the\n"
	        "                        plugins it reaches\n"
	        "      --yes             start a sweep of more than %d runs\n"
	        "      --baseline P      policy the summary compares with "
	        "(default sync;\n"
	        "                        also a baseline in the database from "
	        "then on)\n"
	        "      --run-timeout S   bound on one run's wall time in "
	        "seconds: a run\n"
	        "                        past it is killed and recorded as "
	        "failed\n"
	        "                        (default 600; 0: no bound)\n"
	        "  -j, --jobs N          runs at once, each in a worker "
	        "process of its\n"
	        "                        own (default 1; 0: one per online "
	        "CPU); the\n"
	        "                        output and the database are the same "
	        "for any N\n"
	        "                        but for run ids, creation and wall "
	        "times\n"
	        "      --shard I/N       only shard I of N of the sweep: its "
	        "runs k (from\n"
	        "                        0, in the order they run) with k mod "
	        "N = I-1;\n"
	        "                        the N shards' databases merge into "
	        "the whole\n"
	        "                        sweep's (ahasd-db merge)\n"
	        "      --db FILE         results database (default: "
	        "results.db)\n"
	        "      --no-db           do not write a database\n"
	        "      --label TEXT      label stored with every run\n"
	        "      --seed N          seed of the acceptance coins of "
	        "sampled traces\n"
	        "                        (default 1)\n"
	        "      --queue-capacity N  max unverified drafted tokens "
	        "(default 32)\n"
	        "      --max-draft N     hard cap on a draft batch (default "
	        "64)\n"
	        "      --events          store every task of the run (for "
	        "timelines)\n"
	        "      --max-events N    bound on stored events per run "
	        "(default 1000000)\n"
	        "  -q, --quiet           no per-run lines or table\n"
	        "      --models D:T      retarget: replay the trace's token "
	        "stream with\n"
	        "                        the operator lists of model presets D "
	        "and T\n"
	        "                        (replay/models/NAME.ini or paths); :T "
	        "for a\n"
	        "                        trace whose draft is a lookup (no "
	        "model)\n"
	        "      --list            list built-in plugins and their "
	        "parameters\n"
	        "  -h, --help            this text\n"
	        "\n"
	        "Plugins are looked up in $AHASD_PLUGIN_PATH, then the build "
	        "tree (when\n"
	        "run from it), then %s.\n"
	        "Presets are looked up in $AHASD_PRESET_PATH, then the source "
	        "tree (when\n"
	        "run from the build tree), then %s.\n",
	        CONFIRM_RUNS, AHASD_PLUGIN_DIR, AHASD_PRESET_DIR);
}

static int parse_args(int argc, char **argv, struct options *o, int *optind_out)
{
	enum {
		O_DB = 256,
		O_NODB,
		O_LABEL,
		O_SEED,
		O_QCAP,
		O_MAXD,
		O_EVENTS,
		O_MAXEV,
		O_LIST,
		O_MODELS,
		O_YES,
		O_BASELINE,
		O_RUN_TIMEOUT,
		O_SHARD
	};
	static const struct option longopts[] = {
		{ "policy", required_argument, NULL, 'p' },
		{ "drafter", required_argument, NULL, 'd' },
		{ "hw", required_argument, NULL, 'w' },
		{ "param", required_argument, NULL, 'P' },
		{ "db", required_argument, NULL, O_DB },
		{ "no-db", no_argument, NULL, O_NODB },
		{ "label", required_argument, NULL, O_LABEL },
		{ "seed", required_argument, NULL, O_SEED },
		{ "queue-capacity", required_argument, NULL, O_QCAP },
		{ "max-draft", required_argument, NULL, O_MAXD },
		{ "events", no_argument, NULL, O_EVENTS },
		{ "max-events", required_argument, NULL, O_MAXEV },
		{ "quiet", no_argument, NULL, 'q' },
		{ "list", no_argument, NULL, O_LIST },
		{ "models", required_argument, NULL, O_MODELS },
		{ "yes", no_argument, NULL, O_YES },
		{ "baseline", required_argument, NULL, O_BASELINE },
		{ "run-timeout", required_argument, NULL, O_RUN_TIMEOUT },
		{ "jobs", required_argument, NULL, 'j' },
		{ "shard", required_argument, NULL, O_SHARD },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t v;
	int c;
	while ((c = getopt_long(argc, argv, "p:d:w:P:j:qh", longopts, NULL)) !=
	       -1) {
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
		case O_DB: o->db_path = optarg; break;
		case O_NODB: o->no_db = 1; break;
		case O_LABEL: o->label = optarg; break;
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
		case O_EVENTS: o->events = 1; break;
		case O_MAXEV:
			if (sweep_parse_u64(&o->g, "--max-events", optarg, 1,
			                    UINT64_MAX, &o->max_events))
				return 2;
			break;
		case 'q': o->quiet = 1; break;
		case 'j':
			if (sweep_parse_u64(&o->g, "--jobs", optarg, 0, 1024,
			                    &v))
				return 2;
			o->workers = run_pool_workers(v);
			break;
		case O_SHARD: {
			char err[ERRLEN];
			if (sweep_shard_parse(optarg, &o->shard, err,
			                      sizeof err) < 0) {
				fprintf(stderr, "ahasd-replay: --shard %s\n",
				        err);
				return 2;
			}
			break;
		}
		case O_LIST: return 3;
		case O_MODELS:
			if (sweep_grid_option(&o->g, SWEEP_OPT_MODELS, optarg))
				return 2;
			break;
		case O_YES: o->yes = 1; break;
		case O_BASELINE: o->baseline = optarg; break;
		case O_RUN_TIMEOUT:
			if (sweep_parse_timeout(&o->g, optarg, &o->run_timeout))
				return 2;
			break;
		case 'h': usage(stdout); return 1;
		default: {
			const char *bad = argv[optind - 1];
			const char *cands[32];
			size_t nc = 0;
			for (const struct option *lo = longopts; lo->name; lo++)
				cands[nc++] = lo->name;
			const char *near = NULL;
			if (!strncmp(bad, "--", 2)) {
				char word[64];
				snprintf(word, sizeof word, "%.*s",
				         (int)strcspn(bad + 2, "="), bad + 2);
				near = util_closest(word, cands, nc);
			}
			if (near)
				fprintf(stderr,
				        "ahasd-replay: did you mean "
				        "--%s?\n",
				        near);
			usage(stderr);
			return 2;
		}
		}
	}
	*optind_out = optind;
	return 0;
}

/* --list: every .so in the built-in directory, with its parameters. */
static void list_one_plugin(const struct plugin *p, uint32_t kind)
{
	printf("%-10s %-8s %s\n           %s\n", p->desc->name,
	       kind == AHASD_PLUGIN_POLICY ? "policy" : "drafter", p->path,
	       p->desc->description ? p->desc->description : "");
	if (AHASD_HAS_FIELD(p->desc, struct ahasd_plugin, needs) &&
	    (p->desc->needs & AHASD_NEEDS_ENTROPY))
		printf("           needs the draft's entropies%s (refused on a "
		       "trace without them)\n",
		       AHASD_HAS_HOOK(p->desc, struct ahasd_plugin,
		                      instance_needs)
		               ? " with some parameters"
		               : "");
	for (const struct ahasd_param *q = p->desc->params; q && q->key; q++)
		printf("           %s=%s  %s\n", q->key,
		       q->default_value ? q->default_value : "",
		       q->help ? q->help : "");
}

/* Names of the files with suffix in each directory of a search path and
 * in dflt, each once. */
static size_t names_in(const char *search, const char *dflt, const char *suffix,
                       char names[][64], size_t max)
{
	char dir[4096];
	size_t n = 0;
	const char *d = search ? search : "";
	while (*d) {
		size_t l = strcspn(d, ":");
		if (l && l < sizeof dir) {
			memcpy(dir, d, l);
			dir[l] = '\0';
			n += util_list_dir(dir, suffix, names + n, max - n);
		}
		d += l + (d[l] == ':');
	}
	if (dflt)
		n += util_list_dir(dflt, suffix, names + n, max - n);
	/* keep the first of each name (the search path wins) */
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		size_t j = 0;
		while (j < k && strcmp(names[j], names[i]))
			j++;
		if (j == k)
			memmove(names[k++], names[i], 64);
	}
	return k;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp((const char *)a, (const char *)b);
}

/* --list: plugins (built-in and on AHASD_PLUGIN_PATH) with their
 * parameters, hardware presets, model presets, hardware keys. */
static int list_all(void)
{
	static char names[256][64];
	char err[ERRLEN];
	size_t n = names_in(getenv("AHASD_PLUGIN_PATH"), plugin_builtin_dir(),
	                    ".so", names, 256);
	qsort(names, n, sizeof names[0], cmp_name);
	printf("plugins (-p, -d; AHASD_PLUGIN_PATH, then %s):\n",
	       plugin_builtin_dir());
	for (int pass = 0; pass < 2; pass++) {
		const uint32_t kind = pass ? AHASD_PLUGIN_DRAFTER
		                           : AHASD_PLUGIN_POLICY;
		for (size_t i = 0; i < n; i++) {
			struct plugin p;
			if (plugin_open(&p, names[i], kind, err, sizeof err) <
			    0)
				continue; /* the other kind, or not a plugin */
			list_one_plugin(&p, kind);
			plugin_unload(&p);
		}
	}
	n = names_in(getenv("AHASD_PRESET_PATH"), hw_preset_dir(), ".ini",
	             names, 256);
	qsort(names, n, sizeof names[0], cmp_name);
	printf("\nhardware presets (-w; AHASD_PRESET_PATH, then %s):\n ",
	       hw_preset_dir());
	for (size_t i = 0; i < n; i++)
		printf(" %s", names[i]);
	n = names_in(getenv("AHASD_MODEL_PATH"), model_preset_dir(), ".ini",
	             names, 256);
	qsort(names, n, sizeof names[0], cmp_name);
	printf("\n\nmodel presets (--models D:T; AHASD_MODEL_PATH, then %s):"
	       "\n ",
	       model_preset_dir());
	for (size_t i = 0; i < n; i++)
		printf(" %s", names[i]);
	printf("\n\nhardware keys (-P hw.KEY=V, -P hw.DEVICE.KEY=V; "
	       "replay/HWMODEL.md):\n");
	for (int dev = 0; dev < 2; dev++) {
		const char *keys[64], *defs[64];
		size_t nk = hw_key_names(dev, keys, defs, 64);
		printf("  %s:", dev ? "DEVICE.KEY" : "KEY");
		for (size_t i = 0; i < nk; i++)
			printf("%s%s%s%s", i % 4 ? "  " : "\n    ", keys[i],
			       defs[i] ? "=" : "", defs[i] ? defs[i] : "");
		printf("\n");
	}
	return 0;
}

/* One planned run, in a worker process (see struct sweep). @return 0, or
 * negative with a message in err. */
static int run_one(const struct options *o, struct db *db,
                   const struct run_source *t, const struct sweep_run *pr,
                   struct run_watch *watch, struct run_result *res, char *err,
                   size_t errlen)
{
	struct sweep_spec_kv kv;
	struct run_spec spec = {
		.label = o->label,
		.record_events = o->events,
		.max_events = o->max_events,
		.watch = watch,
	};

	sweep_run_spec(&o->g, pr, &kv, &spec);
	return run_execute(&spec, &t->stream, db, res, err, errlen);
}

/* A finished run: its line on stdout, its row of the table. */
static void report_one(const struct options *o, const struct run_source *t,
                       const struct run_result *res, struct summary *sum)
{
	const struct replay_metrics *m = &res->m;
	if (m->events_dropped)
		fprintf(stderr,
		        "ahasd-replay: run %lld: %llu events past the "
		        "bound of %llu were not stored (metric events_dropped; "
		        "raise --max-events)\n",
		        (long long)res->run_id,
		        (unsigned long long)m->events_dropped,
		        (unsigned long long)(o->max_events
		                                     ? o->max_events
		                                     : RUN_DEFAULT_MAX_EVENTS));
	sum->tok_s = metric_value(m, "tokens_per_s");
	sum->tok_j = metric_value(m, "tokens_per_j");
	sum->accept = metric_value(m, "acceptance_rate");
	sum->draft_len = metric_value(m, "mean_draft_len");
	sum->tok_s_lo = res->ci[STATS_TOKENS_PER_S].lo;
	sum->tok_s_hi = res->ci[STATS_TOKENS_PER_S].hi;
	if (!o->quiet) {
		printf("run %lld: %s/%s on %s, %s: %llu tokens in %.4f s "
		       "simulated = %.1f tok/s, %.3f J = %.1f tok/J, accept "
		       "%.3f, draft len %.2f, wasted %llu, pre-verified %llu "
		       "[%.3f s wall]\n",
		       (long long)res->run_id, res->policy, res->drafter,
		       res->preset, t->stream.path,
		       (unsigned long long)m->committed, m->time_s, sum->tok_s,
		       m->energy_j, sum->tok_j, sum->accept, sum->draft_len,
		       (unsigned long long)m->wasted,
		       (unsigned long long)m->preverified, res->wall_s);
		fflush(stdout);
	}
	snprintf(sum->policy, sizeof sum->policy, "%s", res->policy);
	snprintf(sum->drafter, sizeof sum->drafter, "%s", res->drafter);
	snprintf(sum->preset, sizeof sum->preset, "%s", res->preset);
	snprintf(sum->trace, sizeof sum->trace, "%s", t->stream.path);
	memcpy(sum->match_key, res->match_key, sizeof sum->match_key);
	memcpy(sum->policy_key, res->policy_key, sizeof sum->policy_key);
	sum->run_id = res->run_id;
}

/* The runs of one trace, as jobs of a worker pool: job i is run
 * first + i of the plan (the plan keeps a trace's runs together). */
struct sweep {
	const struct options *o;
	const struct sweep_plan *plan;
	size_t first; /* the trace's first run in the plan */
	const struct run_source *src;
	const char *path;     /* the trace's path as given */
	char config[4096];    /* scratch: a failures row's config */
	struct summary *sums; /* the sweep's, at the next free slot */
	size_t ns;
	struct progress *pr;
};

static int sweep_run(void *ctx, struct run_job *job)
{
	const struct sweep *s = ctx;
	return run_one(s->o, job->db, s->src,
	               &s->plan->run[s->first + job->index], job->watch,
	               job->out, job->err, job->errlen);
}

static void describe_planned(const struct options *o,
                             const struct sweep_run *pr, const char *path,
                             char *config, size_t len, struct db_failure *f)
{
	sweep_config_text(&o->g, pr, config, len);
	f->label = o->label;
	f->trace_path = path;
	f->hw_preset = o->g.presets[pr->preset];
	f->policy = o->g.policies[pr->policy];
	f->drafter = o->g.drafters[pr->drafter];
	f->config = config;
}

static void sweep_describe(void *ctx, size_t i, struct db_failure *f)
{
	struct sweep *s = ctx;
	describe_planned(s->o, &s->plan->run[s->first + i], s->path, s->config,
	                 sizeof s->config, f);
}

static void sweep_done(void *ctx, size_t i, const struct run_outcome *oc)
{
	struct sweep *s = ctx;
	const struct sweep_run *pr = &s->plan->run[s->first + i];
	if (oc->ok) {
		const struct run_result *res = oc->out;
		if (!s->o->quiet || res->m.events_dropped)
			progress_clear(s->pr);
		s->sums[s->ns].planned = s->first + i;
		report_one(s->o, s->src, res, &s->sums[s->ns]);
		s->ns++;
		progress_step(s->pr, 1, 0);
		return;
	}
	progress_clear(s->pr);
	sweep_config_text(&s->o->g, pr, s->config, sizeof s->config);
	fprintf(stderr, "ahasd-replay: %s [%s, %s, %s, %s; %s]\n", oc->message,
	        s->path, s->o->g.presets[pr->preset],
	        s->o->g.policies[pr->policy], s->o->g.drafters[pr->drafter],
	        s->config);
	progress_step(s->pr, 1, 1);
}

/* A trace that cannot be read fails each of its n runs from plan run
 * first on: one failures row for each. */
static void trace_failed(const struct options *o, const struct sweep_plan *plan,
                         size_t first, size_t n, const char *path,
                         const char *msg)
{
	struct db *db = NULL;
	char err[ERRLEN], config[4096];
	int rc = o->no_db ? 0 : db_open(&db, o->db_path, err, sizeof err);
	for (size_t i = first; i < first + n && db && rc == 0; i++) {
		struct db_failure f = { 0 };
		describe_planned(o, &plan->run[i], path, config, sizeof config,
		                 &f);
		f.message = msg;
		rc = db_record_failure(db, &f, err, sizeof err);
	}
	db_close(&db);
	if (rc < 0)
		fprintf(stderr,
		        "ahasd-replay: the failure is not recorded: "
		        "%s\n",
		        err);
}

/* Run i's speed-up over its baseline among the runs of this sweep (no
 * database): the latest run of the baseline policy with the same
 * match_key, none when such runs differ in their own parameters; the
 * rule of db/SCHEMA.md, Baselines. NAN when there is none. */
static double speedup_in_sweep(const struct summary *s, size_t n, size_t i,
                               const char *baseline)
{
	const struct summary *b = NULL;

	for (size_t j = 0; j < n; j++) {
		if (strcmp(s[j].policy, baseline) ||
		    strcmp(s[j].match_key, s[i].match_key))
			continue;
		if (b && strcmp(b->policy_key, s[j].policy_key))
			return NAN;
		b = &s[j];
	}
	return b && b->tok_s > 0 ? s[i].tok_s / b->tok_s : NAN;
}

/* Decimals that show a rate to about four digits (one at least). */
static int decimals(double v)
{
	return v >= 1000 ? 1 : v >= 100 ? 2 : 3;
}

/* The comparison table: one row per run, a column for each swept key,
 * the 95% interval of tokens/s, and the speed-up over the run's baseline
 * matched on its whole configuration, with the paired 95% interval and
 * '~' when that holds 1 (from the database when there is one: the
 * comparisons view; without one, by the same rule over the sweep's runs,
 * and no paired interval). */
static void print_table(const struct options *o, const struct sweep_plan *plan,
                        struct db *db, const struct summary *s, size_t n,
                        const char *baseline)
{
	const struct sweep_grid *g = &o->g;
	size_t swept[SWEEP_MAX_PARAMS], n_swept = 0;
	int width[SWEEP_MAX_PARAMS], w_tci = 6, w_sci = 6;
	char(*tci)[48] = calloc(n, sizeof *tci);
	char(*sp)[16] = calloc(n, sizeof *sp);
	char(*sci)[48] = calloc(n, sizeof *sci);
	int not_distinct = 0;

	if (!tci || !sp || !sci)
		goto out;
	for (size_t i = 0; i < g->n_params; i++)
		if (g->param[i].n_val > 1) {
			width[n_swept] = (int)strlen(g->param[i].key);
			for (size_t v = 0; v < g->param[i].n_val; v++)
				if ((int)strlen(g->param[i].val[v]) >
				    width[n_swept])
					width[n_swept] = (int)strlen(
					        g->param[i].val[v]);
			swept[n_swept++] = i;
		}
	for (size_t i = 0; i < n; i++) {
		struct db_comparison c = { 0, NAN, NAN, NAN, NAN, NAN, NAN };
		const int dt = decimals(s[i].tok_s);

		if (isfinite(s[i].tok_s_lo))
			snprintf(tci[i], sizeof tci[i], "[%.*f, %.*f]", dt,
			         s[i].tok_s_lo, dt, s[i].tok_s_hi);
		else
			snprintf(tci[i], sizeof tci[i], "-");
		if (db && s[i].run_id > 0) {
			char err[ERRLEN];

			if (db_compare(db, s[i].run_id, baseline, &c, err,
			               sizeof err) < 0)
				c.speedup = NAN;
		} else {
			c.speedup = speedup_in_sweep(s, n, i, baseline);
		}
		snprintf(sp[i], sizeof sp[i], "-");
		snprintf(sci[i], sizeof sci[i], "%s", "");
		if (isfinite(c.speedup))
			snprintf(sp[i], sizeof sp[i], "%.2fx", c.speedup);
		if (c.baseline_run_id != s[i].run_id &&
		    isfinite(c.speedup_lo)) {
			const struct stats_interval iv = { c.speedup,
				                           c.speedup_lo,
				                           c.speedup_hi };
			const int same = stats_ratio_differs(&iv) == 0;

			snprintf(sci[i], sizeof sci[i], "[%.3f, %.3f]%s",
			         c.speedup_lo, c.speedup_hi, same ? " ~" : "");
			not_distinct |= same;
		}
		if ((int)strlen(tci[i]) > w_tci)
			w_tci = (int)strlen(tci[i]);
		if ((int)strlen(sci[i]) > w_sci)
			w_sci = (int)strlen(sci[i]);
	}
	printf("\n%-8s %-10s %-10s", "policy", "drafter", "hw");
	for (size_t k = 0; k < n_swept; k++)
		printf(" %*s", width[k], g->param[swept[k]].key);
	printf(" %12s %-*s %9s %-*s %10s %8s %7s\n", "tok/s", w_tci, "95% CI",
	       "speedup", w_sci, "95% CI", "tok/J", "accept", "len");
	for (size_t i = 0; i < n; i++) {
		const struct sweep_run *pr = &plan->run[s[i].planned];

		printf("%-8s %-10s %-10s", s[i].policy, s[i].drafter,
		       s[i].preset);
		for (size_t k = 0; k < n_swept; k++) {
			const size_t q = swept[k];
			printf(" %*s", width[k],
			       sweep_applies(g, pr, q)
			               ? g->param[q].val[pr->val[q]]
			               : "-");
		}
		printf(" %12.*f %-*s %9s %-*s %10.*f %8.3f %7.2f\n",
		       decimals(s[i].tok_s), s[i].tok_s, w_tci, tci[i], sp[i],
		       w_sci, sci[i], decimals(s[i].tok_j), s[i].tok_j,
		       s[i].accept, s[i].draft_len);
	}
	printf("\nspeedup: over the %s run of the same configuration; 95%% "
	       "CI: bootstrap over sequences%s\n",
	       baseline, db ? ", paired for the speed-up" : "");
	if (not_distinct)
		printf("~: the paired interval holds 1: not distinguishable "
		       "from "
		       "%s on these sequences\n",
		       baseline);
out:
	free(tci);
	free(sp);
	free(sci);
}

int main(int argc, char **argv)
{
	struct options o = { .db_path = "results.db",
		             .run_timeout = RUN_TIMEOUT_DEFAULT,
		             .workers = 1,
		             .shard = { 1, 1 } };
	struct sweep_plan plan = { 0 };
	char err[ERRLEN], baseline[64] = "sync";
	struct db *db = NULL;
	struct summary *sums = NULL;
	struct progress prog;
	size_t ns = 0, failed = 0;
	int first, status = 0;
	sweep_grid_init(&o.g, "ahasd-replay");
	int rc = parse_args(argc, argv, &o, &first);
	if (rc == 1 || rc == 3) {
		sweep_grid_free(&o.g);
		return rc == 3 ? list_all() : 0;
	}
	if (rc) {
		sweep_grid_free(&o.g);
		return 2;
	}
	if (first >= argc) {
		fprintf(stderr, "ahasd-replay: no trace given\n");
		usage(stderr);
		sweep_grid_free(&o.g);
		return 2;
	}
	sweep_grid_defaults(&o.g);

	/* everything is checked before the first run */
	status = sweep_grid_check(&o.g);
	if (status == 0 && o.baseline) {
		struct plugin p;
		if (plugin_open(&p, o.baseline, AHASD_PLUGIN_POLICY, err,
		                sizeof err) < 0) {
			fprintf(stderr, "ahasd-replay: --baseline: %s\n", err);
			status = 1;
		} else {
			snprintf(baseline, sizeof baseline, "%s", p.desc->name);
			plugin_unload(&p);
		}
	}
	if (status == 0)
		status = sweep_plan_make(&o.g, (size_t)(argc - first), &plan);
	if (status)
		goto out;
	const size_t n_all = plan.n;
	if (o.shard.n > 1) {
		/* this shard's runs, in the same order: their val pointers
		 * stay where they were */
		size_t k = 0;
		for (size_t i = 0; i < plan.n; i++)
			if (sweep_in_shard(&o.shard, i))
				plan.run[k++] = plan.run[i];
		plan.n = k;
	}
	if (plan.n > CONFIRM_RUNS && !o.yes) {
		fprintf(stderr,
		        "ahasd-replay: this sweep is %zu runs; give "
		        "--yes to start more than %d\n",
		        plan.n, CONFIRM_RUNS);
		status = 2;
		goto out;
	}
	if (!o.quiet && o.shard.n > 1)
		fprintf(stderr,
		        "ahasd-replay: shard %zu/%zu: %zu of the "
		        "sweep's %zu runs\n",
		        o.shard.i, o.shard.n, plan.n, n_all);
	else if (!o.quiet && plan.n > 1)
		fprintf(stderr, "ahasd-replay: %zu runs\n", plan.n);
	/* the database is made or upgraded, and checked, before the first
	 * run; each run's worker process opens a connection of its own, so
	 * this process holds none while they live (run_pool.h) */
	if (!o.no_db && db_open(&db, o.db_path, err, sizeof err) < 0) {
		fprintf(stderr, "ahasd-replay: %s\n", err);
		status = 1;
		goto out;
	}
	if (db && strcmp(baseline, "sync") &&
	    db_add_baseline(db, baseline, err, sizeof err) < 0) {
		fprintf(stderr, "ahasd-replay: %s\n", err);
		status = 1;
		goto out;
	}
	db_close(&db);
	sums = calloc(plan.n ? plan.n : 1, sizeof *sums);
	if (!sums) {
		status = 1;
		goto out;
	}
	progress_start(&prog, "ahasd-replay", "runs", plan.n, o.quiet);
	for (size_t i = 0; i < plan.n && !status;) {
		/* the runs of one trace: plan runs i .. j-1 */
		const size_t t = plan.run[i].trace;
		const char *path = argv[first + (int)t];
		size_t j = i;
		struct run_source src;

		while (j < plan.n && plan.run[j].trace == t)
			j++;
		if (run_source_open(&src, path, run_mem_max(), o.g.models, err,
		                    sizeof err) < 0) {
			progress_clear(&prog);
			fprintf(stderr, "ahasd-replay: %s\n", err);
			trace_failed(&o, &plan, i, j - i, path, err);
			progress_step(&prog, j - i, j - i);
			failed += j - i;
			i = j;
			continue;
		}
		struct sweep *sw = calloc(1, sizeof *sw);
		if (!sw) {
			run_source_close(&src);
			status = 1;
			break;
		}
		*sw = (struct sweep){ .o = &o,
			              .plan = &plan,
			              .first = i,
			              .src = &src,
			              .path = path,
			              .sums = sums + ns,
			              .pr = &prog };
		struct run_pool pool = {
			.db_path = o.no_db ? NULL : o.db_path,
			.timeout_s = o.run_timeout,
			.workers = o.workers,
			.out_size = sizeof(struct run_result),
			.ctx = sw,
			.run = sweep_run,
			.describe = sweep_describe,
			.done = sweep_done,
		};
		if (run_pool_exec(&pool, j - i, err, sizeof err) < 0) {
			progress_clear(&prog);
			fprintf(stderr, "ahasd-replay: %s\n", err);
			status = 1;
			/* no worker: the runs not handed out, of this trace and
			 * the ones after it, fail with that message, recorded */
			for (size_t k = i + pool.runs, e; k < plan.n; k = e) {
				/* one trace's runs at a time: one db open */
				for (e = k;
				     e < plan.n &&
				     plan.run[e].trace == plan.run[k].trace;
				     e++)
					;
				trace_failed(
				        &o, &plan, k, e - k,
				        argv[first + (int)plan.run[k].trace],
				        err);
				failed += e - k;
			}
		}
		ns += sw->ns;
		failed += pool.failed;
		free(sw);
		run_source_close(&src);
		i = j;
	}
	progress_end(&prog);
	/* the comparisons view, for the table */
	if (!o.no_db && ns && !o.quiet &&
	    db_open(&db, o.db_path, err, sizeof err) < 0) {
		fprintf(stderr, "ahasd-replay: %s\n", err);
		status = 1;
	}
	if (!o.quiet && ns > 1)
		print_table(&o, &plan, db, sums, ns, baseline);
	if (!o.no_db && !o.quiet && ns)
		printf("\nresults: %s (sqlite3 %s 'select * from "
		       "run_summary')\n",
		       o.db_path, o.db_path);
	fflush(stdout);
	if (failed) {
		if (o.no_db)
			fprintf(stderr,
			        "ahasd-replay: %zu of %zu runs failed\n",
			        failed, plan.n);
		else
			fprintf(stderr,
			        "ahasd-replay: %zu of %zu runs failed "
			        "(sqlite3 %s 'select * from failures')\n",
			        failed, plan.n, o.db_path);
		status = 1;
	}
out:
	free(sums);
	sweep_plan_free(&plan);
	db_close(&db);
	sweep_grid_free(&o.g);
	return status;
}
