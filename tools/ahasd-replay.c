/* ahasd-replay - replay traces under scheduling policies and drafting
 * algorithms, store every run in SQLite, print a summary per run. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "db.h"
#include "hw.h"
#include "models.h"
#include "plugin.h"
#include "results.h"
#include "run.h"
#include "run_pool.h"
#include "trace.h"
#include "trace_mem.h"
#include "util.h"

#define MAX_LIST 16
#define MAX_PARAMS 64
#define ERRLEN 1024

static const char *const default_policies[] = { "sync", "async", "ahasd" };

struct options {
	const char *policies[MAX_LIST];
	size_t n_policies;
	const char *drafters[MAX_LIST];
	size_t n_drafters;
	const char *presets[MAX_LIST];
	size_t n_presets;
	char *param_key[MAX_PARAMS];
	char *param_val[MAX_PARAMS];
	size_t n_params;
	const char *db_path;
	const char *label;
	uint64_t seed;
	uint32_t queue_capacity, max_draft;
	uint64_t max_events;
	const char *models;  /* --models DRAFT:TARGET or NULL */
	int events, no_db, quiet;
	double run_timeout;  /* seconds; 0: none */
};

/* One finished run, kept for the comparison table. */
struct summary {
	char policy[64], drafter[64], preset[64], trace[256];
	double tok_s, tok_j, accept, draft_len;
	int64_t run_id;
};

static void usage(FILE *f)
{
	fprintf(f,
"usage: ahasd-replay [options] TRACE...\n"
"\n"
"Replay speculative-decoding traces against a hardware model under\n"
"scheduling policies and drafting algorithms (plugins); every run is\n"
"written to a SQLite database.\n"
"\n"
"  -p, --policy P        scheduling policy plugin: a name (sync), a file\n"
"                        name (sync.so) or a path (./my.so); repeatable;\n"
"                        default: sync, async and ahasd\n"
"  -d, --drafter D       drafting algorithm plugin (fixed, specdecpp, svip,\n"
"                        adaedl, banditspec, or a path); repeatable;\n"
"                        default: adaedl\n"
"  -w, --hw PRESET       hardware preset name or .ini path; repeatable;\n"
"                        default: npu-pim\n"
"  -P, --param K=V       plugin or hardware parameter. K is a parameter of\n"
"                        the selected plugins (given to each that declares\n"
"                        it), NAME.K for one plugin (ahasd.edc=0), or\n"
"                        hw.K / hw.DEV.K for a hardware constant\n"
"                        (hw.aau=0, hw.pim.mem_bw=512e9); repeatable\n"
"      --db FILE         results database (default: results.db)\n"
"      --no-db           do not write a database\n"
"      --label TEXT      label stored with every run\n"
"      --seed N          seed of the acceptance coins of sampled traces\n"
"                        (default 1)\n"
"      --queue-capacity N  max unverified drafted tokens (default 32)\n"
"      --max-draft N     hard cap on a draft batch (default 64)\n"
"      --events          store every task of the run (for timelines)\n"
"      --max-events N    bound on stored events per run (default 1000000)\n"
"      --run-timeout S   bound on one run's wall time in seconds: a run\n"
"                        past it is killed and recorded as failed\n"
"                        (default 600; 0: no bound)\n"
"  -q, --quiet           no per-run lines or table\n"
"      --models D:T      retarget: replay the trace's token stream with\n"
"                        the operator lists of model presets D and T\n"
"                        (replay/models/NAME.ini or paths)\n"
"      --list            list built-in plugins and their parameters\n"
"  -h, --help            this text\n"
"\n"
"Plugins are looked up in $AHASD_PLUGIN_PATH, then the build tree (when\n"
"run from it), then %s.\n"
"Presets are looked up in $AHASD_PRESET_PATH, then the source tree (when\n"
"run from the build tree), then %s.\n",
	        AHASD_PLUGIN_DIR, AHASD_PRESET_DIR);
}

static int parse_u64(const char *opt, const char *s, uint64_t min,
                     uint64_t max, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || v < min || v > max) {
		fprintf(stderr, "ahasd-replay: %s: expected an integer in "
		        "[%llu, %llu], got '%s'\n", opt,
		        (unsigned long long)min, (unsigned long long)max, s);
		return -1;
	}
	*out = v;
	return 0;
}

static int add_list(const char **list, size_t *n, const char *v,
                    const char *what)
{
	if (*n == MAX_LIST) {
		fprintf(stderr, "ahasd-replay: too many %s (max %d)\n", what,
		        MAX_LIST);
		return -1;
	}
	list[(*n)++] = v;
	return 0;
}

static int parse_args(int argc, char **argv, struct options *o, int *optind_out)
{
	enum { O_DB = 256, O_NODB, O_LABEL, O_SEED, O_QCAP, O_MAXD, O_EVENTS,
	       O_MAXEV, O_LIST, O_MODELS, O_RUN_TIMEOUT };
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
		{ "run-timeout", required_argument, NULL, O_RUN_TIMEOUT },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t v;
	int c;
	while ((c = getopt_long(argc, argv, "p:d:w:P:qh", longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (add_list(o->policies, &o->n_policies, optarg,
			             "policies"))
				return 2;
			break;
		case 'd':
			if (add_list(o->drafters, &o->n_drafters, optarg,
			             "drafters"))
				return 2;
			break;
		case 'w':
			if (add_list(o->presets, &o->n_presets, optarg,
			             "presets"))
				return 2;
			break;
		case 'P': {
			char *eq = strchr(optarg, '=');
			if (!eq || eq == optarg) {
				fprintf(stderr, "ahasd-replay: --param '%s': "
				        "expected KEY=VALUE\n", optarg);
				return 2;
			}
			if (o->n_params == MAX_PARAMS) {
				fprintf(stderr, "ahasd-replay: too many --param\n");
				return 2;
			}
			*eq = '\0';
			for (size_t i = 0; i < o->n_params; i++)
				if (!strcmp(o->param_key[i], optarg)) {
					fprintf(stderr, "ahasd-replay: --param "
					        "%s given twice (%s and %s); give "
					        "each key once\n", optarg,
					        o->param_val[i], eq + 1);
					return 2;
				}
			o->param_key[o->n_params] = optarg;
			o->param_val[o->n_params++] = eq + 1;
			break;
		}
		case O_DB: o->db_path = optarg; break;
		case O_NODB: o->no_db = 1; break;
		case O_LABEL: o->label = optarg; break;
		case O_SEED:
			if (parse_u64("--seed", optarg, 0, UINT64_MAX, &o->seed))
				return 2;
			break;
		case O_QCAP:
			if (parse_u64("--queue-capacity", optarg, 1, 4096, &v))
				return 2;
			o->queue_capacity = (uint32_t)v;
			break;
		case O_MAXD:
			if (parse_u64("--max-draft", optarg, 1, HW_MAX_M - 1, &v))
				return 2;
			o->max_draft = (uint32_t)v;
			break;
		case O_EVENTS: o->events = 1; break;
		case O_MAXEV:
			if (parse_u64("--max-events", optarg, 1, UINT64_MAX,
			              &o->max_events))
				return 2;
			break;
		case 'q': o->quiet = 1; break;
		case O_RUN_TIMEOUT: {
			char *end;
			errno = 0;
			double t = strtod(optarg, &end);
			if (errno || end == optarg || *end || !(t >= 0) ||
			    t > 1e9) {
				fprintf(stderr, "ahasd-replay: --run-timeout: "
				        "expected seconds in [0, 1e9] (0: no "
				        "bound), got '%s'\n", optarg);
				return 2;
			}
			o->run_timeout = t;
			break;
		}
		case O_LIST: return 3;
		case O_MODELS: {
			const char *colon = strchr(optarg, ':');
			if (!colon || colon == optarg || !colon[1] ||
			    strchr(colon + 1, ':')) {
				fprintf(stderr, "ahasd-replay: --models '%s': "
				        "expected DRAFT:TARGET\n", optarg);
				return 2;
			}
			o->models = optarg;
			break;
		}
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
				fprintf(stderr, "ahasd-replay: did you mean "
				        "--%s?\n", near);
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
	for (const struct ahasd_param *q = p->desc->params; q && q->key; q++)
		printf("           %s=%s  %s\n", q->key,
		       q->default_value ? q->default_value : "",
		       q->help ? q->help : "");
}

/* Names of the files with suffix in each directory of a search path and
 * in dflt, each once. */
static size_t names_in(const char *search, const char *dflt,
                       const char *suffix, char names[][64], size_t max)
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
			if (plugin_open(&p, names[i], kind, err, sizeof err) < 0)
				continue;   /* the other kind, or not a plugin */
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
	       "\n ", model_preset_dir());
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

/* Keys of --param that apply to this plugin: unprefixed keys it declares,
 * and "NAME.key" for its own name. With used, marks the keys taken. */
static size_t params_for_used(const struct options *o, const struct plugin *p,
                              struct run_kv *kv, int *used)
{
	size_t n = 0, nl = strlen(p->desc->name);
	for (size_t i = 0; i < o->n_params; i++) {
		const char *k = o->param_key[i];
		if (!strncmp(k, "hw.", 3))
			continue;
		if (!strncmp(k, p->desc->name, nl) && k[nl] == '.')
			kv[n++] = (struct run_kv){ k + nl + 1, o->param_val[i] };
		else if (!strchr(k, '.') && plugin_declares(p, k))
			kv[n++] = (struct run_kv){ k, o->param_val[i] };
		else
			continue;
		if (used)
			used[i] = 1;
	}
	return n;
}

static size_t params_for(const struct options *o, const struct plugin *p,
                         struct run_kv *kv)
{
	return params_for_used(o, p, kv, NULL);
}

/* Every --param must reach at least one selected plugin or the hardware:
 * checked once before any run, so a typo never leaves half a sweep in the
 * database. @return 0, or 1 (a plugin does not load, an unknown key). */
static int check_params(const struct options *o)
{
	int used[MAX_PARAMS] = { 0 };
	struct run_kv kv[MAX_PARAMS];
	char err[ERRLEN];
	for (size_t k = 0; k < 2; k++) {
		const char *const *names = k ? o->drafters : o->policies;
		size_t n = k ? o->n_drafters : o->n_policies;
		for (size_t i = 0; i < n; i++) {
			struct plugin p;
			if (plugin_open(&p, names[i], k ? AHASD_PLUGIN_DRAFTER
			                                : AHASD_PLUGIN_POLICY,
			                err, sizeof err) < 0) {
				char sug[64];
				fprintf(stderr, "ahasd-replay: %s\n", err);
				if (!strchr(names[i], '/') &&
				    util_suggest_file(names[i],
				                      getenv("AHASD_PLUGIN_PATH"),
				                      plugin_builtin_dir(), ".so",
				                      sug))
					fprintf(stderr, "ahasd-replay: did you "
					        "mean '%s'?\n", sug);
				return 1;
			}
			/* values too: a bad one fails here, before any run */
			size_t np = params_for_used(o, &p, kv, used);
			const char *keys[MAX_PARAMS], *vals[MAX_PARAMS];
			for (size_t j = 0; j < np; j++) {
				keys[j] = kv[j].key;
				vals[j] = kv[j].value;
			}
			if (plugin_create(&p, keys, vals, np, err,
			                  sizeof err) < 0) {
				fprintf(stderr, "ahasd-replay: %s\n", err);
				return 1;
			}
			plugin_unload(&p);
		}
	}
	for (size_t i = 0; i < o->n_params; i++) {
		if (used[i] || !strncmp(o->param_key[i], "hw.", 3))
			continue;
		char sel[512];
		size_t off = 0;
		for (size_t k = 0; k < o->n_policies + o->n_drafters; k++) {
			const char *n = k < o->n_policies
			        ? o->policies[k] : o->drafters[k - o->n_policies];
			int w = snprintf(sel + off, sizeof sel - off, "%s%s",
			                 k ? ", " : "", n);
			if (w < 0 || (size_t)w >= sizeof sel - off)
				break;
			off += (size_t)w;
		}
		fprintf(stderr, "ahasd-replay: unknown parameter '%s': no "
		        "selected plugin (%s) declares it (see --list)\n",
		        o->param_key[i], sel);
		return 1;
	}
	return 0;
}

/* Every preset loads and takes every hw.* parameter, and the model
 * presets load, before any run; say when a choice cannot matter.
 * @return 0 or 1. */
static int check_setup(const struct options *o)
{
	char err[ERRLEN];
	for (size_t w = 0; w < o->n_presets; w++) {
		struct hw_platform plat;
		if (hw_platform_load(&plat, o->presets[w], err, sizeof err) < 0) {
			fprintf(stderr, "ahasd-replay: %s\n", err);
			return 1;
		}
		int has_pim = 0;
		for (unsigned d = 0; d < plat.n_dev; d++)
			has_pim |= plat.dev[d].kind == HW_DEV_PIM;
		for (size_t i = 0; i < o->n_params; i++) {
			const char *k = o->param_key[i];
			if (strncmp(k, "hw.", 3))
				continue;
			if (hw_platform_set(&plat, k + 3, o->param_val[i], err,
			                    sizeof err) < 0) {
				fprintf(stderr, "ahasd-replay: preset %s: %s\n",
				        plat.name, err);
				return 1;
			}
			if (!has_pim && hw_key_needs_pim(k + 3))
				fprintf(stderr, "ahasd-replay: warning: %s has "
				        "no PIM, so %s has no effect on it\n",
				        plat.name, k);
		}
		for (size_t p = 0; p < o->n_policies && plat.n_dev == 1; p++)
			if (strcmp(o->policies[p], "sync"))
				fprintf(stderr, "ahasd-replay: warning: %s has one "
				        "device, so policy %s runs every task "
				        "on it in turn and cannot differ from "
				        "sync\n", plat.name, o->policies[p]);
	}
	if (o->models) {
		char dname[512];
		struct trace_model m;
		size_t dl = (size_t)(strchr(o->models, ':') - o->models);
		snprintf(dname, sizeof dname, "%.*s", (int)dl, o->models);
		for (int i = 0; i < 2; i++) {
			if (model_preset_load(&m, i ? o->models + dl + 1 : dname,
			                      err, sizeof err) < 0) {
				fprintf(stderr, "ahasd-replay: %s\n", err);
				return 1;
			}
			model_preset_clear(&m);
		}
	}
	return 0;
}

/* One run: trace x preset x policy x drafter, in a worker process (see
 * struct sweep). @return 0, or negative with a message in err. */
static int run_one(const struct options *o, struct db *db,
                   const struct run_source *t, const char *preset,
                   const char *policy_name, const char *drafter_name,
                   struct run_watch *watch, struct run_result *res,
                   char *err, size_t errlen)
{
	struct run_kv hw[MAX_PARAMS], pp[MAX_PARAMS], dp[MAX_PARAMS];
	size_t n_hw = 0;
	struct plugin pol = { 0 }, dr = { 0 };

	for (size_t i = 0; i < o->n_params; i++)
		if (!strncmp(o->param_key[i], "hw.", 3))
			hw[n_hw++] = (struct run_kv){ o->param_key[i] + 3,
			                              o->param_val[i] };
	/* which --param keys go to which plugin needs their declarations */
	int rc = plugin_open(&pol, policy_name, AHASD_PLUGIN_POLICY, err,
	                     errlen);
	if (rc == 0)
		rc = plugin_open(&dr, drafter_name, AHASD_PLUGIN_DRAFTER, err,
		                 errlen);
	size_t np = 0, nd = 0;
	if (rc == 0) {
		np = params_for(o, &pol, pp);
		nd = params_for(o, &dr, dp);
	}
	plugin_unload(&dr);
	plugin_unload(&pol);
	if (rc < 0)
		return rc;
	const struct run_spec spec = {
		.label = o->label,
		.preset = preset,
		.hw = hw,
		.n_hw = n_hw,
		.policy = policy_name,
		.drafter = drafter_name,
		.policy_params = pp,
		.n_policy_params = np,
		.drafter_params = dp,
		.n_drafter_params = nd,
		.seed = o->seed,
		.queue_capacity = o->queue_capacity,
		.max_draft = o->max_draft,
		.record_events = o->events,
		.max_events = o->max_events,
		.watch = watch,
	};
	return run_execute(&spec, &t->stream, db, res, err, errlen);
}

/* A finished run: its line on stdout, its row of the table. */
static void report_one(const struct options *o, const struct run_source *t,
                       const struct run_result *res, struct summary *sum)
{
	const struct replay_metrics *m = &res->m;
	if (m->events_dropped)
		fprintf(stderr, "ahasd-replay: run %lld: %llu events past the "
		        "bound of %llu were not stored (metric events_dropped; "
		        "raise --max-events)\n", (long long)res->run_id,
		        (unsigned long long)m->events_dropped,
		        (unsigned long long)(o->max_events
		                                     ? o->max_events
		                                     : RUN_DEFAULT_MAX_EVENTS));
	sum->tok_s = metric_value(m, "tokens_per_s");
	sum->tok_j = metric_value(m, "tokens_per_j");
	sum->accept = metric_value(m, "acceptance_rate");
	sum->draft_len = metric_value(m, "mean_draft_len");
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
	sum->run_id = res->run_id;
}

/* The runs of one trace, as jobs of a worker pool: job i is preset
 * i / (policies x drafters), then policy, then drafter, the order of the
 * loops before. */
struct sweep {
	const struct options *o;
	const struct run_source *src;
	const char *config;          /* the failures rows' config text */
	struct summary *sums;
	size_t ns;
};

static void sweep_at(const struct sweep *s, size_t i, const char **preset,
                     const char **policy, const char **drafter)
{
	const struct options *o = s->o;
	*drafter = o->drafters[i % o->n_drafters];
	i /= o->n_drafters;
	*policy = o->policies[i % o->n_policies];
	*preset = o->presets[i / o->n_policies];
}

static int sweep_run(void *ctx, struct run_job *job)
{
	const struct sweep *s = ctx;
	const char *preset, *policy, *drafter;
	sweep_at(s, job->index, &preset, &policy, &drafter);
	return run_one(s->o, job->db, s->src, preset, policy, drafter,
	               job->watch, job->out, job->err, job->errlen);
}

static void sweep_describe(void *ctx, size_t i, struct db_failure *f)
{
	const struct sweep *s = ctx;
	sweep_at(s, i, &f->hw_preset, &f->policy, &f->drafter);
	f->label = s->o->label;
	f->trace_path = s->src->stream.path;
	f->config = s->config;
}

static void sweep_done(void *ctx, size_t i, const struct run_outcome *oc)
{
	struct sweep *s = ctx;
	if (oc->ok) {
		report_one(s->o, s->src, oc->out, &s->sums[s->ns++]);
		return;
	}
	const char *preset, *policy, *drafter;
	sweep_at(s, i, &preset, &policy, &drafter);
	fprintf(stderr, "ahasd-replay: %s [%s, %s, %s, %s]\n", oc->message,
	        s->src->stream.path, preset, policy, drafter);
}

/* The rest of a run's configuration, for the failures table. */
static void config_text(const struct options *o, char *buf, size_t len)
{
	size_t off = (size_t)snprintf(buf, len, "seed=%llu queue_capacity=%u "
	                              "max_draft=%u",
	                              (unsigned long long)o->seed,
	                              o->queue_capacity, o->max_draft);
	if (o->models && off < len)
		off += (size_t)snprintf(buf + off, len - off, " models=%s",
		                        o->models);
	for (size_t i = 0; i < o->n_params && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, " %s=%s",
		                        o->param_key[i], o->param_val[i]);
}

/* A trace that cannot be read fails each of its runs: one failures row
 * for each. @return the number of runs. */
static size_t trace_failed(const struct options *o, const char *path,
                           const char *config, const char *msg)
{
	size_t n = 0;
	struct db *db = NULL;
	char err[ERRLEN];
	int rc = o->no_db ? 0 : db_open(&db, o->db_path, err, sizeof err);
	for (size_t w = 0; w < o->n_presets; w++)
		for (size_t p = 0; p < o->n_policies; p++)
			for (size_t d = 0; d < o->n_drafters; d++, n++) {
				const struct db_failure f = {
					.label = o->label,
					.trace_path = path,
					.hw_preset = o->presets[w],
					.policy = o->policies[p],
					.drafter = o->drafters[d],
					.config = config,
					.message = msg,
				};
				if (db && rc == 0)
					rc = db_record_failure(db, &f, err,
					                       sizeof err);
			}
	db_close(&db);
	if (rc < 0)
		fprintf(stderr, "ahasd-replay: the failure is not recorded: "
		        "%s\n", err);
	return n;
}

static void print_table(const struct summary *s, size_t n)
{
	printf("\n%-8s %-10s %-10s %12s %9s %10s %8s %7s\n", "policy",
	       "drafter", "hw", "tok/s", "speedup", "tok/J", "accept",
	       "len");
	for (size_t i = 0; i < n; i++) {
		/* speedup vs the sync run of the same trace, preset, drafter */
		double base = 0;
		for (size_t j = 0; j < n; j++)
			if (!strcmp(s[j].policy, "sync") &&
			    !strcmp(s[j].drafter, s[i].drafter) &&
			    !strcmp(s[j].preset, s[i].preset) &&
			    !strcmp(s[j].trace, s[i].trace))
				base = s[j].tok_s;
		char sp[16] = "-";
		if (base > 0)
			snprintf(sp, sizeof sp, "%.2fx", s[i].tok_s / base);
		printf("%-8s %-10s %-10s %12.1f %9s %10.1f %8.3f %7.2f\n",
		       s[i].policy, s[i].drafter, s[i].preset, s[i].tok_s, sp,
		       s[i].tok_j, s[i].accept, s[i].draft_len);
	}
}

int main(int argc, char **argv)
{
	struct options o = { .db_path = "results.db", .seed = 1,
	                     .queue_capacity = 32, .max_draft = 64,
	                     .run_timeout = RUN_TIMEOUT_DEFAULT };
	int first;
	int rc = parse_args(argc, argv, &o, &first);
	if (rc == 1)
		return 0;
	if (rc == 3)
		return list_all();
	if (rc)
		return 2;
	if (first >= argc) {
		fprintf(stderr, "ahasd-replay: no trace given\n");
		usage(stderr);
		return 2;
	}
	if (!o.n_policies)
		for (size_t i = 0; i < 3; i++)
			o.policies[o.n_policies++] = default_policies[i];
	if (!o.n_drafters)
		o.drafters[o.n_drafters++] = "adaedl";
	if (!o.n_presets)
		o.presets[o.n_presets++] = "npu-pim";

	rc = check_params(&o);
	if (rc == 0)
		rc = check_setup(&o);
	if (rc)
		return rc;
	char err[ERRLEN];
	if (!o.no_db) {
		/* made or upgraded, and checked, before the first run; each
		 * run's worker process opens a connection of its own, so this
		 * process holds none while they live (run_pool.h) */
		struct db *db = NULL;
		if (db_open(&db, o.db_path, err, sizeof err) < 0) {
			fprintf(stderr, "ahasd-replay: %s\n", err);
			return 1;
		}
		db_close(&db);
	}
	const size_t per_trace = o.n_presets * o.n_policies * o.n_drafters;
	const size_t total = (size_t)(argc - first) * per_trace;
	struct summary *sums = calloc(total, sizeof *sums);
	if (!sums)
		return 1;
	char config[2048];
	config_text(&o, config, sizeof config);
	size_t ns = 0, failed = 0;
	int status = 0;
	for (int t = first; t < argc && !status; t++) {
		struct run_source src;

		if (run_source_open(&src, argv[t], run_mem_max(), o.models, err,
		                    sizeof err) < 0) {
			fprintf(stderr, "ahasd-replay: %s\n", err);
			failed += trace_failed(&o, argv[t], config, err);
			continue;
		}
		struct sweep sw = { &o, &src, config, sums + ns, 0 };
		struct run_pool pool = {
			.db_path = o.no_db ? NULL : o.db_path,
			.timeout_s = o.run_timeout,
			.out_size = sizeof(struct run_result),
			.ctx = &sw,
			.run = sweep_run,
			.describe = sweep_describe,
			.done = sweep_done,
		};
		if (run_pool_exec(&pool, per_trace, err, sizeof err) < 0) {
			fprintf(stderr, "ahasd-replay: %s\n", err);
			status = 1;
		}
		ns += sw.ns;
		failed += pool.failed;
		run_source_close(&src);
	}
	if (!o.quiet && ns > 1)
		print_table(sums, ns);
	if (!o.no_db && !o.quiet && ns)
		printf("\nresults: %s (sqlite3 %s 'select * from run_summary')\n",
		       o.db_path, o.db_path);
	fflush(stdout);
	if (failed) {
		if (o.no_db)
			fprintf(stderr, "ahasd-replay: %zu of %zu runs failed\n",
			        failed, total);
		else
			fprintf(stderr, "ahasd-replay: %zu of %zu runs failed "
			        "(sqlite3 %s 'select * from failures')\n", failed,
			        total, o.db_path);
		status = 1;
	}
	free(sums);
	return status;
}
