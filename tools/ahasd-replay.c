/* ahasd-replay - replay traces under scheduling policies and drafting
 * algorithms, store every run in SQLite, print a summary per run.
 *
 * A sweep is the cartesian product of the traces, presets, policies,
 * drafters and the values of every -P key (tools/sweep.h), where a key
 * multiplies only the runs of the plugins it reaches: a policy that does
 * not take `k` runs once for all values of `-P k=1,2,4`, so a baseline
 * policy in a sweep runs once at every point. Every run is planned, and
 * every value of every key checked, before the first one starts. */
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
#include "results.h"
#include "run.h"
#include "run_pool.h"
#include "stats.h"
#include "sweep.h"
#include "trace.h"
#include "trace_mem.h"
#include "util.h"

#define MAX_LIST 16
#define MAX_PARAMS 64
#define MAX_PLUGINS (2 * MAX_LIST)
#define ERRLEN 1024
/** Runs a sweep may have without --yes. */
#define CONFIRM_RUNS 200

static const char *const default_policies[] = { "sync", "async", "ahasd" };

/* One -P KEY=SPEC: its values (one unless swept). */
struct param {
	const char *key;
	const char *spec;
	char **val;
	size_t n_val;
	int hw;              /* hw.KEY or hw.DEV.KEY */
};

struct options {
	const char *policies[MAX_LIST];
	size_t n_policies;
	const char *drafters[MAX_LIST];
	size_t n_drafters;
	const char *presets[MAX_LIST];
	size_t n_presets;
	struct param param[MAX_PARAMS];
	size_t n_params;
	const char *db_path;
	const char *label;
	const char *baseline;  /* --baseline, default sync */
	uint64_t seed;
	uint32_t queue_capacity, max_draft;
	uint64_t max_events;
	const char *models;  /* --models DRAFT:TARGET or NULL */
	int events, no_db, quiet, yes;
	double run_timeout;  /* seconds; 0: none */
};

/* The plugins of a sweep, policies then drafters: their names and which
 * -P keys reach each (reach[k][i]: 0 not, else 1 + the offset of the
 * name the plugin sees in the key, so "ahasd.edc" reaches ahasd as
 * "edc"). */
struct plugins {
	size_t n;
	char name[MAX_PLUGINS][64];
	unsigned char reach[MAX_PLUGINS][MAX_PARAMS];
};

/* One planned run: indices into the lists, and into each key's values. */
struct planned {
	size_t trace, preset, policy, drafter;
	size_t *val;         /* n_params indices */
};

struct plan {
	struct planned *run;
	size_t n;
	size_t *vals;        /* n x n_params */
};

/* One finished run, kept for the comparison table. */
struct summary {
	size_t planned;      /* its index in the plan */
	char policy[64], drafter[64], preset[64], trace[256];
	char match_key[65], policy_key[65];
	double tok_s, tok_j, accept, draft_len;
	double tok_s_lo, tok_s_hi;   /* 95% interval, NAN if none */
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
"                        (hw.aau=0, hw.pim.mem_bw=512e9); each key once.\n"
"                        V sweeps as a list (k=1,2,4), a range LO:HI:STEP\n"
"                        (k=1:8:1) or a geometric range LO:HI:xF\n"
"                        (hw.pim.mem_bw=128e9:512e9:x2), or a list of\n"
"                        those; every list multiplies the runs of the\n"
"                        plugins it reaches\n"
"      --yes             start a sweep of more than %d runs\n"
"      --baseline P      policy the summary compares with (default sync;\n"
"                        also a baseline in the database from then on)\n"
"      --run-timeout S   bound on one run's wall time in seconds: a run\n"
"                        past it is killed and recorded as failed\n"
"                        (default 600; 0: no bound)\n"
"      --db FILE         results database (default: results.db)\n"
"      --no-db           do not write a database\n"
"      --label TEXT      label stored with every run\n"
"      --seed N          seed of the acceptance coins of sampled traces\n"
"                        (default 1)\n"
"      --queue-capacity N  max unverified drafted tokens (default 32)\n"
"      --max-draft N     hard cap on a draft batch (default 64)\n"
"      --events          store every task of the run (for timelines)\n"
"      --max-events N    bound on stored events per run (default 1000000)\n"
"  -q, --quiet           no per-run lines or table\n"
"      --models D:T      retarget: replay the trace's token stream with\n"
"                        the operator lists of model presets D and T\n"
"                        (replay/models/NAME.ini or paths); :T for a\n"
"                        trace whose draft is a lookup (no model)\n"
"      --list            list built-in plugins and their parameters\n"
"  -h, --help            this text\n"
"\n"
"Plugins are looked up in $AHASD_PLUGIN_PATH, then the build tree (when\n"
"run from it), then %s.\n"
"Presets are looked up in $AHASD_PRESET_PATH, then the source tree (when\n"
"run from the build tree), then %s.\n",
	        CONFIRM_RUNS, AHASD_PLUGIN_DIR, AHASD_PRESET_DIR);
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

static void params_free(struct options *o)
{
	for (size_t i = 0; i < o->n_params; i++)
		sweep_values_free(&o->param[i].val, &o->param[i].n_val);
	o->n_params = 0;
}

/* -P KEY=SPEC: each key once, its values expanded (tools/sweep.h).
 * @return 0 or 2 (usage). */
static int add_param(struct options *o, char *arg)
{
	char *eq = strchr(arg, '=');
	char err[ERRLEN];
	struct param *p;

	if (!eq || eq == arg) {
		fprintf(stderr, "ahasd-replay: --param '%s': expected KEY=VALUE\n",
		        arg);
		return 2;
	}
	if (o->n_params == MAX_PARAMS) {
		fprintf(stderr, "ahasd-replay: too many --param\n");
		return 2;
	}
	*eq = '\0';
	for (size_t i = 0; i < o->n_params; i++)
		if (!strcmp(o->param[i].key, arg)) {
			fprintf(stderr, "ahasd-replay: --param %s given twice (%s "
			        "and %s); give each key once (a list sweeps it: "
			        "%s=%s,%s)\n", arg, o->param[i].spec, eq + 1,
			        arg, o->param[i].spec, eq + 1);
			return 2;
		}
	p = &o->param[o->n_params];
	p->key = arg;
	p->spec = eq + 1;
	p->hw = !strncmp(arg, "hw.", 3);
	if (sweep_values(p->spec, &p->val, &p->n_val, err, sizeof err) < 0) {
		fprintf(stderr, "ahasd-replay: --param %s: %s\n", arg, err);
		return 2;
	}
	o->n_params++;
	return 0;
}

static int parse_args(int argc, char **argv, struct options *o, int *optind_out)
{
	enum { O_DB = 256, O_NODB, O_LABEL, O_SEED, O_QCAP, O_MAXD, O_EVENTS,
	       O_MAXEV, O_LIST, O_MODELS, O_YES, O_BASELINE,
	       O_RUN_TIMEOUT };
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
		case 'P':
			if (add_param(o, optarg))
				return 2;
			break;
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
		case O_LIST: return 3;
		case O_MODELS: {
			const char *colon = strchr(optarg, ':');
			/* ":TARGET" for a trace whose draft is a lookup
			 * (checked against the trace when it is opened) */
			if (!colon || !colon[1] || strchr(colon + 1, ':')) {
				fprintf(stderr, "ahasd-replay: --models '%s': "
				        "expected DRAFT:TARGET (or :TARGET for a "
				        "trace whose draft is a lookup)\n", optarg);
				return 2;
			}
			o->models = optarg;
			break;
		}
		case O_YES: o->yes = 1; break;
		case O_BASELINE: o->baseline = optarg; break;
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
	if (AHASD_HAS_FIELD(p->desc, struct ahasd_plugin, needs) &&
	    (p->desc->needs & AHASD_NEEDS_ENTROPY))
		printf("           needs the draft's entropies%s (refused on a "
		       "trace without them)\n",
		       AHASD_HAS_HOOK(p->desc, struct ahasd_plugin,
		                      instance_needs)
		               ? " with some parameters" : "");
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


static uint32_t plugin_kind(const struct options *o, size_t k)
{
	return k < o->n_policies ? AHASD_PLUGIN_POLICY : AHASD_PLUGIN_DRAFTER;
}

static const char *plugin_arg(const struct options *o, size_t k)
{
	return k < o->n_policies ? o->policies[k]
	                         : o->drafters[k - o->n_policies];
}

/* Open every selected plugin once: its name and which keys reach it;
 * every key but hw.* must reach one of them. @return 0, or 1 (a plugin
 * does not load, an unknown key). */
static int plugins_load(const struct options *o, struct plugins *pl)
{
	char err[ERRLEN];
	int used[MAX_PARAMS] = { 0 };

	memset(pl, 0, sizeof *pl);
	pl->n = o->n_policies + o->n_drafters;
	for (size_t k = 0; k < pl->n; k++) {
		const char *name = plugin_arg(o, k);
		struct plugin p;

		if (plugin_open(&p, name, plugin_kind(o, k), err,
		                sizeof err) < 0) {
			char sug[64];
			fprintf(stderr, "ahasd-replay: %s\n", err);
			if (!strchr(name, '/') &&
			    util_suggest_file(name, getenv("AHASD_PLUGIN_PATH"),
			                      plugin_builtin_dir(), ".so", sug))
				fprintf(stderr, "ahasd-replay: did you mean "
				        "'%s'?\n", sug);
			return 1;
		}
		snprintf(pl->name[k], sizeof pl->name[k], "%s", p.desc->name);
		const size_t nl = strlen(p.desc->name);
		for (size_t i = 0; i < o->n_params; i++) {
			const char *key = o->param[i].key;

			if (o->param[i].hw)
				continue;
			if (!strncmp(key, p.desc->name, nl) && key[nl] == '.')
				pl->reach[k][i] = (unsigned char)(nl + 2);
			else if (!strchr(key, '.') && plugin_declares(&p, key))
				pl->reach[k][i] = 1;
			used[i] |= pl->reach[k][i] != 0;
		}
		plugin_unload(&p);
	}
	for (size_t i = 0; i < o->n_params; i++) {
		if (used[i] || o->param[i].hw)
			continue;
		char sel[512];
		size_t off = 0;
		for (size_t k = 0; k < pl->n; k++) {
			int w = snprintf(sel + off, sizeof sel - off, "%s%s",
			                 k ? ", " : "", plugin_arg(o, k));
			if (w < 0 || (size_t)w >= sizeof sel - off)
				break;
			off += (size_t)w;
		}
		fprintf(stderr, "ahasd-replay: unknown parameter '%s': no "
		        "selected plugin (%s) declares it (see --list)\n",
		        o->param[i].key, sel);
		return 1;
	}
	return 0;
}

/* The keys, as plugin k sees them, and their values at point idx.
 * @return how many. */
static size_t plugin_kv(const struct options *o, const struct plugins *pl,
                        size_t k, const size_t *idx, struct run_kv *kv)
{
	size_t n = 0;

	for (size_t i = 0; i < o->n_params; i++)
		if (pl->reach[k][i])
			kv[n++] = (struct run_kv){
				o->param[i].key + pl->reach[k][i] - 1,
				o->param[i].val[idx[i]] };
	return n;
}

/* Every value of every key a plugin takes, in every combination it will
 * run with, creates the plugin: a bad one fails here, before any run.
 * @return 0 or 1. */
static int check_plugin_values(const struct options *o,
                               const struct plugins *pl)
{
	size_t nv[MAX_PARAMS], idx[MAX_PARAMS] = { 0 };
	unsigned char mask[MAX_PARAMS];
	struct run_kv kv[MAX_PARAMS];
	const char *keys[MAX_PARAMS], *vals[MAX_PARAMS];
	char err[ERRLEN];

	for (size_t i = 0; i < o->n_params; i++)
		nv[i] = o->param[i].n_val;
	for (size_t k = 0; k < pl->n; k++) {
		struct plugin held;

		/* keeps the object loaded while each point loads it again */
		if (plugin_open(&held, plugin_arg(o, k), plugin_kind(o, k), err,
		                sizeof err) < 0) {
			fprintf(stderr, "ahasd-replay: %s\n", err);
			return 1;
		}
		for (size_t i = 0; i < o->n_params; i++)
			mask[i] = pl->reach[k][i] != 0;
		memset(idx, 0, sizeof idx);
		do {
			struct plugin p;
			const size_t n = plugin_kv(o, pl, k, idx, kv);

			for (size_t j = 0; j < n; j++) {
				keys[j] = kv[j].key;
				vals[j] = kv[j].value;
			}
			if (plugin_load(&p, plugin_arg(o, k), plugin_kind(o, k),
			                keys, vals, n, err, sizeof err) < 0) {
				fprintf(stderr, "ahasd-replay: %s\n", err);
				plugin_unload(&held);
				return 1;
			}
			plugin_unload(&p);
		} while (sweep_next(idx, nv, mask, o->n_params));
		plugin_unload(&held);
	}
	return 0;
}

/* Every preset loads and takes every value of every hw.* key (in every
 * combination), and the model presets load, before any run; say when a
 * choice cannot matter. @return 0 or 1. */
static int check_setup(const struct options *o)
{
	size_t nv[MAX_PARAMS], idx[MAX_PARAMS] = { 0 };
	unsigned char mask[MAX_PARAMS];
	char err[ERRLEN];

	for (size_t i = 0; i < o->n_params; i++) {
		nv[i] = o->param[i].n_val;
		mask[i] = (unsigned char)o->param[i].hw;
	}
	for (size_t w = 0; w < o->n_presets; w++) {
		struct hw_platform base;
		if (hw_platform_load(&base, o->presets[w], err, sizeof err) < 0) {
			fprintf(stderr, "ahasd-replay: %s\n", err);
			return 1;
		}
		int has_pim = 0;
		for (unsigned d = 0; d < base.n_dev; d++)
			has_pim |= base.dev[d].kind == HW_DEV_PIM;
		memset(idx, 0, sizeof idx);
		do {
			struct hw_platform plat = base;

			for (size_t i = 0; i < o->n_params; i++) {
				const struct param *q = &o->param[i];

				if (!q->hw)
					continue;
				if (hw_platform_set(&plat, q->key + 3,
				                    q->val[idx[i]], err,
				                    sizeof err) < 0) {
					fprintf(stderr, "ahasd-replay: preset %s: "
					        "%s\n", plat.name, err);
					return 1;
				}
			}
		} while (sweep_next(idx, nv, mask, o->n_params));
		for (size_t i = 0; i < o->n_params && !has_pim; i++)
			if (o->param[i].hw && hw_key_needs_pim(o->param[i].key + 3))
				fprintf(stderr, "ahasd-replay: warning: %s has "
				        "no PIM, so %s has no effect on it\n",
				        base.name, o->param[i].key);
		for (size_t p = 0; p < o->n_policies && base.n_dev == 1; p++)
			if (strcmp(o->policies[p], "sync"))
				fprintf(stderr, "ahasd-replay: warning: %s has one "
				        "device, so policy %s runs every task "
				        "on it in turn and cannot differ from "
				        "sync\n", base.name, o->policies[p]);
	}
	if (o->models) {
		char dname[512];
		struct trace_model m;
		size_t dl = (size_t)(strchr(o->models, ':') - o->models);
		snprintf(dname, sizeof dname, "%.*s", (int)dl, o->models);
		for (int i = dl ? 0 : 1; i < 2; i++) {
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

static void plan_free(struct plan *pl)
{
	free(pl->run);
	free(pl->vals);
	memset(pl, 0, sizeof *pl);
}

/* Most runs a plan may hold, --yes or not. */
#define PLAN_MAX 1000000

static int plan_add(struct plan *pl, size_t *cap, size_t n_params,
                    const struct planned *r, const size_t *idx)
{
	if (pl->n == PLAN_MAX)
		return -E2BIG;
	if (pl->n == *cap) {
		const size_t c = *cap ? 2 * *cap : 64;
		struct planned *nr = realloc(pl->run, c * sizeof *nr);
		size_t *nv;

		if (!nr)
			return -ENOMEM;
		pl->run = nr;
		nv = realloc(pl->vals, c * (n_params ? n_params : 1) *
		                               sizeof *nv);
		if (!nv)
			return -ENOMEM;
		pl->vals = nv;
		*cap = c;
	}
	pl->run[pl->n] = *r;
	memcpy(pl->vals + pl->n * n_params, idx, n_params * sizeof *idx);
	pl->n++;
	return 0;
}

/* The runs of trace t on preset w at the point hidx of the hw.* keys:
 * every policy x drafter, at every point of the keys that reach one of
 * the two. @return 0, -E2BIG or -ENOMEM. */
static int plan_point(const struct options *o, const struct plugins *pl,
                      struct plan *out, size_t *cap, size_t t, size_t w,
                      const size_t *hidx)
{
	size_t nv[MAX_PARAMS], idx[MAX_PARAMS];
	unsigned char pmask[MAX_PARAMS];
	int rc = 0;

	for (size_t i = 0; i < o->n_params; i++)
		nv[i] = o->param[i].n_val;
	for (size_t p = 0; p < o->n_policies && rc == 0; p++) {
		for (size_t d = 0; d < o->n_drafters && rc == 0; d++) {
			const size_t kd = o->n_policies + d;
			const struct planned r = { t, w, p, d, NULL };

			for (size_t i = 0; i < o->n_params; i++)
				pmask[i] = !o->param[i].hw &&
				           (pl->reach[p][i] || pl->reach[kd][i]);
			memcpy(idx, hidx, o->n_params * sizeof *idx);
			do {
				rc = plan_add(out, cap, o->n_params, &r, idx);
			} while (rc == 0 &&
			         sweep_next(idx, nv, pmask, o->n_params));
		}
	}
	return rc;
}

/* Every run of the sweep, in the order they run: trace, preset, point of
 * the hw.* keys, policy, drafter, point of the keys that reach that
 * policy or drafter. A key reaching neither does not multiply their runs.
 * @return 0 or 1. */
static int plan_runs(const struct options *o, const struct plugins *pl,
                     size_t n_traces, struct plan *out)
{
	size_t nv[MAX_PARAMS], hidx[MAX_PARAMS];
	unsigned char hmask[MAX_PARAMS];
	size_t cap = 0;
	int rc = 0;

	memset(out, 0, sizeof *out);
	for (size_t i = 0; i < o->n_params; i++) {
		nv[i] = o->param[i].n_val;
		hmask[i] = (unsigned char)o->param[i].hw;
	}
	for (size_t t = 0; t < n_traces && rc == 0; t++) {
		for (size_t w = 0; w < o->n_presets && rc == 0; w++) {
			memset(hidx, 0, sizeof hidx);
			do {
				rc = plan_point(o, pl, out, &cap, t, w, hidx);
			} while (rc == 0 &&
			         sweep_next(hidx, nv, hmask, o->n_params));
		}
	}
	if (rc < 0) {
		fprintf(stderr, "ahasd-replay: %s\n", rc == -E2BIG
		        ? "the sweep has more than 1000000 runs"
		        : "out of memory planning the sweep");
		plan_free(out);
		return 1;
	}
	for (size_t i = 0; i < out->n; i++)
		out->run[i].val = out->vals + i * o->n_params;
	return 0;
}

/* One planned run, in a worker process (see struct sweep). @return 0, or
 * negative with a message in err. */
static int run_one(const struct options *o, const struct plugins *pl,
                   struct db *db, const struct run_source *t,
                   const struct planned *pr, struct run_watch *watch,
                   struct run_result *res, char *err, size_t errlen)
{
	struct run_kv hw[MAX_PARAMS], pp[MAX_PARAMS], dp[MAX_PARAMS];
	size_t n_hw = 0;

	for (size_t i = 0; i < o->n_params; i++)
		if (o->param[i].hw)
			hw[n_hw++] = (struct run_kv){ o->param[i].key + 3,
			                              o->param[i].val[pr->val[i]] };
	const size_t np = plugin_kv(o, pl, pr->policy, pr->val, pp);
	const size_t nd = plugin_kv(o, pl, o->n_policies + pr->drafter,
	                            pr->val, dp);
	const struct run_spec spec = {
		.label = o->label,
		.preset = o->presets[pr->preset],
		.hw = hw,
		.n_hw = n_hw,
		.policy = o->policies[pr->policy],
		.drafter = o->drafters[pr->drafter],
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
	const struct plugins *pl;
	const struct plan *plan;
	size_t first;                /* the trace's first run in the plan */
	const struct run_source *src;
	const char *path;            /* the trace's path as given */
	char config[4096];           /* scratch: a failures row's config */
	struct summary *sums;        /* the sweep's, at the next free slot */
	size_t ns;
};

static int sweep_run(void *ctx, struct run_job *job)
{
	const struct sweep *s = ctx;
	return run_one(s->o, s->pl, job->db, s->src,
	               &s->plan->run[s->first + job->index], job->watch,
	               job->out, job->err, job->errlen);
}

/* The configuration of planned run pr but for its trace, preset, policy
 * and drafter, as text for the failures table: the fixed settings, then
 * each -P key that applies to it with the value it had. */
static void config_text(const struct options *o, const struct plugins *pl,
                        const struct planned *pr, char *buf, size_t len)
{
	size_t off = (size_t)snprintf(buf, len, "seed=%llu queue_capacity=%u "
	                              "max_draft=%u",
	                              (unsigned long long)o->seed,
	                              o->queue_capacity, o->max_draft);
	if (o->models && off < len)
		off += (size_t)snprintf(buf + off, len - off, " models=%s",
		                        o->models);
	for (size_t i = 0; i < o->n_params && off < len; i++) {
		if (!o->param[i].hw && !pl->reach[pr->policy][i] &&
		    !pl->reach[o->n_policies + pr->drafter][i])
			continue;
		off += (size_t)snprintf(buf + off, len - off, " %s=%s",
		                        o->param[i].key,
		                        o->param[i].val[pr->val[i]]);
	}
}

static void describe_planned(const struct options *o,
                             const struct plugins *pl,
                             const struct planned *pr, const char *path,
                             char *config, size_t len, struct db_failure *f)
{
	config_text(o, pl, pr, config, len);
	f->label = o->label;
	f->trace_path = path;
	f->hw_preset = o->presets[pr->preset];
	f->policy = o->policies[pr->policy];
	f->drafter = o->drafters[pr->drafter];
	f->config = config;
}

static void sweep_describe(void *ctx, size_t i, struct db_failure *f)
{
	struct sweep *s = ctx;
	describe_planned(s->o, s->pl, &s->plan->run[s->first + i], s->path,
	                 s->config, sizeof s->config, f);
}

static void sweep_done(void *ctx, size_t i, const struct run_outcome *oc)
{
	struct sweep *s = ctx;
	const struct planned *pr = &s->plan->run[s->first + i];
	if (oc->ok) {
		s->sums[s->ns].planned = s->first + i;
		report_one(s->o, s->src, oc->out, &s->sums[s->ns]);
		s->ns++;
		return;
	}
	config_text(s->o, s->pl, pr, s->config, sizeof s->config);
	fprintf(stderr, "ahasd-replay: %s [%s, %s, %s, %s; %s]\n",
	        oc->message, s->path, s->o->presets[pr->preset],
	        s->o->policies[pr->policy], s->o->drafters[pr->drafter],
	        s->config);
}

/* A trace that cannot be read fails each of its n runs from plan run
 * first on: one failures row for each. */
static void trace_failed(const struct options *o, const struct plugins *pl,
                         const struct plan *plan, size_t first, size_t n,
                         const char *path, const char *msg)
{
	struct db *db = NULL;
	char err[ERRLEN], config[4096];
	int rc = o->no_db ? 0 : db_open(&db, o->db_path, err, sizeof err);
	for (size_t i = first; i < first + n && db && rc == 0; i++) {
		struct db_failure f = { 0 };
		describe_planned(o, pl, &plan->run[i], path, config,
		                 sizeof config, &f);
		f.message = msg;
		rc = db_record_failure(db, &f, err, sizeof err);
	}
	db_close(&db);
	if (rc < 0)
		fprintf(stderr, "ahasd-replay: the failure is not recorded: "
		        "%s\n", err);
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
static void print_table(const struct options *o, const struct plugins *pl,
                        const struct plan *plan, struct db *db,
                        const struct summary *s, size_t n,
                        const char *baseline)
{
	size_t swept[MAX_PARAMS], n_swept = 0;
	int width[MAX_PARAMS], w_tci = 6, w_sci = 6;
	char (*tci)[48] = calloc(n, sizeof *tci);
	char (*sp)[16] = calloc(n, sizeof *sp);
	char (*sci)[48] = calloc(n, sizeof *sci);
	int not_distinct = 0;

	if (!tci || !sp || !sci)
		goto out;
	for (size_t i = 0; i < o->n_params; i++)
		if (o->param[i].n_val > 1) {
			width[n_swept] = (int)strlen(o->param[i].key);
			for (size_t v = 0; v < o->param[i].n_val; v++)
				if ((int)strlen(o->param[i].val[v]) >
				    width[n_swept])
					width[n_swept] =
					        (int)strlen(o->param[i].val[v]);
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
		printf(" %*s", width[k], o->param[swept[k]].key);
	printf(" %12s %-*s %9s %-*s %10s %8s %7s\n", "tok/s", w_tci, "95% CI",
	       "speedup", w_sci, "95% CI", "tok/J", "accept", "len");
	for (size_t i = 0; i < n; i++) {
		const struct planned *pr = &plan->run[s[i].planned];

		printf("%-8s %-10s %-10s", s[i].policy, s[i].drafter,
		       s[i].preset);
		for (size_t k = 0; k < n_swept; k++) {
			const size_t q = swept[k];
			const int applies = o->param[q].hw ||
			        pl->reach[pr->policy][q] ||
			        pl->reach[o->n_policies + pr->drafter][q];

			printf(" %*s", width[k],
			       applies ? o->param[q].val[pr->val[q]] : "-");
		}
		printf(" %12.*f %-*s %9s %-*s %10.*f %8.3f %7.2f\n",
		       decimals(s[i].tok_s), s[i].tok_s, w_tci, tci[i], sp[i],
		       w_sci, sci[i], decimals(s[i].tok_j), s[i].tok_j,
		       s[i].accept, s[i].draft_len);
	}
	printf("\nspeedup: over the %s run of the same configuration; 95%% "
	       "CI: bootstrap over sequences%s\n", baseline,
	       db ? ", paired for the speed-up" : "");
	if (not_distinct)
		printf("~: the paired interval holds 1: not distinguishable from "
		       "%s on these sequences\n", baseline);
out:
	free(tci);
	free(sp);
	free(sci);
}

int main(int argc, char **argv)
{
	struct options o = { .db_path = "results.db", .seed = 1,
	                     .queue_capacity = 32, .max_draft = 64,
	                     .run_timeout = RUN_TIMEOUT_DEFAULT };
	struct plugins pl;
	struct plan plan = { 0 };
	char err[ERRLEN], baseline[64] = "sync";
	struct db *db = NULL;
	struct summary *sums = NULL;
	size_t ns = 0, failed = 0;
	int first, status = 0;
	int rc = parse_args(argc, argv, &o, &first);
	if (rc == 1 || rc == 3) {
		params_free(&o);
		return rc == 3 ? list_all() : 0;
	}
	if (rc) {
		params_free(&o);
		return 2;
	}
	if (first >= argc) {
		fprintf(stderr, "ahasd-replay: no trace given\n");
		usage(stderr);
		params_free(&o);
		return 2;
	}
	if (!o.n_policies)
		for (size_t i = 0; i < 3; i++)
			o.policies[o.n_policies++] = default_policies[i];
	if (!o.n_drafters)
		o.drafters[o.n_drafters++] = "adaedl";
	if (!o.n_presets)
		o.presets[o.n_presets++] = "npu-pim";

	/* everything is checked before the first run */
	status = plugins_load(&o, &pl);
	if (status == 0)
		status = check_plugin_values(&o, &pl);
	if (status == 0)
		status = check_setup(&o);
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
		status = plan_runs(&o, &pl, (size_t)(argc - first), &plan);
	if (status)
		goto out;
	if (plan.n > CONFIRM_RUNS && !o.yes) {
		fprintf(stderr, "ahasd-replay: this sweep is %zu runs; give "
		        "--yes to start more than %d\n", plan.n, CONFIRM_RUNS);
		status = 2;
		goto out;
	}
	if (!o.quiet && plan.n > 1)
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
	for (size_t i = 0; i < plan.n && !status;) {
		/* the runs of one trace: plan runs i .. j-1 */
		const size_t t = plan.run[i].trace;
		const char *path = argv[first + (int)t];
		size_t j = i;
		struct run_source src;

		while (j < plan.n && plan.run[j].trace == t)
			j++;
		if (run_source_open(&src, path, run_mem_max(), o.models, err,
		                    sizeof err) < 0) {
			fprintf(stderr, "ahasd-replay: %s\n", err);
			trace_failed(&o, &pl, &plan, i, j - i, path, err);
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
		*sw = (struct sweep){ .o = &o, .pl = &pl, .plan = &plan,
		                      .first = i, .src = &src, .path = path,
		                      .sums = sums + ns };
		struct run_pool pool = {
			.db_path = o.no_db ? NULL : o.db_path,
			.timeout_s = o.run_timeout,
			.out_size = sizeof(struct run_result),
			.ctx = sw,
			.run = sweep_run,
			.describe = sweep_describe,
			.done = sweep_done,
		};
		if (run_pool_exec(&pool, j - i, err, sizeof err) < 0) {
			fprintf(stderr, "ahasd-replay: %s\n", err);
			status = 1;
		}
		ns += sw->ns;
		failed += pool.failed;
		free(sw);
		run_source_close(&src);
		i = j;
	}
	/* the comparisons view, for the table */
	if (!o.no_db && ns && !o.quiet &&
	    db_open(&db, o.db_path, err, sizeof err) < 0) {
		fprintf(stderr, "ahasd-replay: %s\n", err);
		status = 1;
	}
	if (!o.quiet && ns > 1)
		print_table(&o, &pl, &plan, db, sums, ns, baseline);
	if (!o.no_db && !o.quiet && ns)
		printf("\nresults: %s (sqlite3 %s 'select * from run_summary')\n",
		       o.db_path, o.db_path);
	fflush(stdout);
	if (failed) {
		if (o.no_db)
			fprintf(stderr, "ahasd-replay: %zu of %zu runs failed\n",
			        failed, plan.n);
		else
			fprintf(stderr, "ahasd-replay: %zu of %zu runs failed "
			        "(sqlite3 %s 'select * from failures')\n", failed,
			        plan.n, o.db_path);
		status = 1;
	}
out:
	free(sums);
	plan_free(&plan);
	db_close(&db);
	params_free(&o);
	return status;
}
