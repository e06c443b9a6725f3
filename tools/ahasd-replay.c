/* ahasd-replay - replay traces under scheduling policies and drafting
 * algorithms, store every run in SQLite, print a summary per run. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "db.h"
#include "engine.h"
#include "hw.h"
#include "models.h"
#include "plugin.h"
#include "trace.h"

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
"      --db FILE         results database (default: ahasd-results.db)\n"
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
	       O_MAXEV, O_LIST, O_MODELS };
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
		default: usage(stderr); return 2;
		}
	}
	*optind_out = optind;
	return 0;
}

/* --list: every .so in the built-in directory, with its parameters. */
static int list_plugins(void)
{
	static const char *const names[] = { "sync", "async", "ahasd", "fixed",
	                                     "specdecpp", "svip", "adaedl",
	                                     "banditspec" };
	char err[ERRLEN];
	for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
		struct plugin p;
		int rc = plugin_open(&p, names[i], i < 3 ? AHASD_PLUGIN_POLICY
		                                         : AHASD_PLUGIN_DRAFTER,
		                     err, sizeof err);
		if (rc < 0) {
			fprintf(stderr, "%s\n", err);
			continue;
		}
		printf("%-10s %-8s %s\n           %s\n", p.desc->name,
		       i < 3 ? "policy" : "drafter", p.path,
		       p.desc->description ? p.desc->description : "");
		for (const struct ahasd_param *q = p.desc->params; q && q->key; q++)
			printf("           %s=%s  %s\n", q->key,
			       q->default_value ? q->default_value : "",
			       q->help ? q->help : "");
		plugin_unload(&p);
	}
	return 0;
}

/* Keys of --param that apply to this plugin: unprefixed keys it declares,
 * and "NAME.key" for its own name. Marks used keys. */
static size_t params_for(const struct options *o, const struct plugin *p,
                         const char **keys, const char **vals, int *used)
{
	size_t n = 0, nl = strlen(p->desc->name);
	for (size_t i = 0; i < o->n_params; i++) {
		const char *k = o->param_key[i];
		if (!strncmp(k, "hw.", 3))
			continue;
		if (!strncmp(k, p->desc->name, nl) && k[nl] == '.') {
			keys[n] = k + nl + 1;
			vals[n++] = o->param_val[i];
			used[i] = 1;
		} else if (!strchr(k, '.') && plugin_declares(p, k)) {
			keys[n] = k;
			vals[n++] = o->param_val[i];
			used[i] = 1;
		}
	}
	return n;
}

/* Every --param must reach at least one selected plugin or the hardware:
 * checked once before any run, so a typo never leaves half a sweep in the
 * database. @return 0, or 1 (a plugin does not load, an unknown key). */
static int check_params(const struct options *o)
{
	int used[MAX_PARAMS] = { 0 };
	const char *keys[MAX_PARAMS], *vals[MAX_PARAMS];
	char err[ERRLEN];
	for (size_t k = 0; k < 2; k++) {
		const char *const *names = k ? o->drafters : o->policies;
		size_t n = k ? o->n_drafters : o->n_policies;
		for (size_t i = 0; i < n; i++) {
			struct plugin p;
			if (plugin_open(&p, names[i], k ? AHASD_PLUGIN_DRAFTER
			                                : AHASD_PLUGIN_POLICY,
			                err, sizeof err) < 0) {
				fprintf(stderr, "ahasd-replay: %s\n", err);
				return 1;
			}
			params_for(o, &p, keys, vals, used);
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

struct event_sink {
	struct db *db;
	int64_t run_id;
	uint64_t stored, dropped, max;
	int failed;
	char err[ERRLEN];
};

static void on_event(void *user, const struct replay_event *ev)
{
	struct event_sink *s = user;
	if (s->failed)
		return;
	if (s->stored >= s->max) {
		if (!s->dropped++)
			fprintf(stderr, "ahasd-replay: run %lld: event bound of "
			        "%llu reached; further events are counted in "
			        "the events_dropped metric, not stored (raise "
			        "--max-events)\n", (long long)s->run_id,
			        (unsigned long long)s->max);
		return;
	}
	int rc = db_run_event(s->db, s->run_id, ev, s->err, sizeof s->err);
	if (rc < 0)
		s->failed = 1;
	else if (rc == 0)
		s->dropped++;
	else
		s->stored++;
}

static void model_label(const struct trace_model *m, char *buf, size_t len)
{
	snprintf(buf, len, "%s", m->name[0] ? m->name : "?");
}

/* What the check pass learnt of a trace. */
struct trace_facts {
	char sha[65];
	uint64_t max_context;  /* largest prompt_len + n */
	uint32_t max_context_id;
};

/* One run: trace x preset x policy x drafter, on the open trace rd (checked
 * and hashed by a first pass, rewound here). @return 0 or 1. */
static int run_one(const struct options *o, struct db *db, const char *path,
                   struct trace_reader *rd, const struct trace_facts *tf,
                   const char *preset, const char *policy_name,
                   const char *drafter_name, int *param_used,
                   struct summary *sum)
{
	char err[ERRLEN];
	struct hw_plan *plan = NULL;
	struct plugin pol = { 0 }, dr = { 0 };
	struct replay *rp = NULL;
	struct event_sink sink = { 0 };
	int64_t run_id = -1;
	int in_run = 0, ret = 1, rc;
	const char *keys[MAX_PARAMS], *vals[MAX_PARAMS];
	struct hw_platform plat;
	struct trace_model rm[2] = { 0 }; /* --models presets */
	char retarget[2 * TRACE_NAME_MAX + 2] = "";

	rc = trace_reader_rewind(rd, err, sizeof err);
	if (rc < 0)
		goto fail;
	const struct trace_header *h = trace_reader_header(rd);

	rc = hw_platform_load(&plat, preset, err, sizeof err);
	if (rc < 0)
		goto fail;
	for (size_t i = 0; i < o->n_params; i++) {
		if (strncmp(o->param_key[i], "hw.", 3))
			continue;
		rc = hw_platform_set(&plat, o->param_key[i] + 3, o->param_val[i],
		                     err, sizeof err);
		if (rc < 0)
			goto fail;
		param_used[i] = 1;
	}
	const struct trace_model *md = &h->draft, *mt = &h->target;
	if (o->models) {
		/* retarget: the presets' operator lists, the trace's tokens */
		char dname[512];
		size_t dl = (size_t)(strchr(o->models, ':') - o->models);
		snprintf(dname, sizeof dname, "%.*s", (int)dl, o->models);
		rc = model_preset_load(&rm[0], dname, err, sizeof err);
		if (rc < 0)
			goto fail;
		rc = model_preset_load(&rm[1], o->models + dl + 1, err,
		                       sizeof err);
		if (rc < 0)
			goto fail;
		snprintf(retarget, sizeof retarget, "%s:%s", h->draft.name,
		         h->target.name);
		/* the reader checked the trace's own target; the replayed
		 * target must hold every sequence too */
		if (tf->max_context > rm[1].seq_len) {
			snprintf(err, sizeof err, "%s: sequence %" PRIu32 ": "
			         "prompt_len + n = %" PRIu64 " exceeds the context "
			         "of the retargeted target model %s (seq_len %"
			         PRIu32 ")", path, tf->max_context_id,
			         tf->max_context, rm[1].name, rm[1].seq_len);
			goto fail;
		}
		md = &rm[0];
		mt = &rm[1];
	}
	rc = hw_plan_create(&plan, &plat, md, mt, err,
	                    sizeof err);
	if (rc < 0)
		goto fail;

	rc = plugin_open(&pol, policy_name, AHASD_PLUGIN_POLICY, err, sizeof err);
	if (rc < 0)
		goto fail;
	size_t n = params_for(o, &pol, keys, vals, param_used);
	rc = plugin_create(&pol, keys, vals, n, err, sizeof err);
	if (rc < 0)
		goto fail;
	rc = plugin_open(&dr, drafter_name, AHASD_PLUGIN_DRAFTER, err,
	                 sizeof err);
	if (rc < 0)
		goto fail;
	n = params_for(o, &dr, keys, vals, param_used);
	rc = plugin_create(&dr, keys, vals, n, err, sizeof err);
	if (rc < 0)
		goto fail;

	char hwdesc[8192], dm[TRACE_NAME_MAX], tm[TRACE_NAME_MAX];
	hw_platform_describe(&plat, hwdesc, sizeof hwdesc);
	model_label(md, dm, sizeof dm);
	model_label(mt, tm, sizeof tm);
	if (db) {
		struct db_run_info info = {
			.tool_version = AHASD_VERSION,
			.label = o->label,
			.policy = pol.desc->name,
			.policy_version = pol.desc->version,
			.policy_params = pol.params,
			.policy_path = pol.path,
			.drafter = dr.desc->name,
			.drafter_version = dr.desc->version,
			.drafter_params = dr.params,
			.drafter_path = dr.path,
			.hw_preset = plat.name,
			.hw_config = hwdesc,
			.trace_path = path,
			.trace_sha256 = tf->sha,
			.draft_model = dm,
			.target_model = tm,
			.retargeted_from = o->models ? retarget : NULL,
			.sampled = h->sampled,
			.seed = o->seed,
			.queue_capacity = o->queue_capacity,
			.max_draft = o->max_draft,
			.n_dev = plat.n_dev,
		};
		for (unsigned i = 0; i < plat.n_dev; i++)
			info.device_names[i] = plat.dev[i].name;
		rc = db_run_begin(db, &info, &run_id, err, sizeof err);
		if (rc < 0)
			goto fail;
		in_run = 1;
		if (o->max_events)
			db_set_max_events(db, o->max_events);
	}
	sink.db = db;
	sink.run_id = run_id;
	sink.max = o->max_events ? o->max_events : 1000000;
	struct replay_config cfg = {
		.plan = plan,
		.policy = &pol,
		.drafter = &dr,
		.seed = o->seed,
		.lookahead = h->lookahead,
		.queue_capacity = o->queue_capacity,
		.max_draft = o->max_draft,
		.on_event = (db && o->events) ? on_event : NULL,
		.event_user = &sink,
	};
	rc = replay_create(&rp, &cfg, err, sizeof err);
	if (rc < 0)
		goto fail;

	struct timespec w0, w1;
	clock_gettime(CLOCK_MONOTONIC, &w0);
	struct trace_seq seq;
	while ((rc = trace_reader_next(rd, &seq, err, sizeof err)) == 1) {
		struct replay_seq_result sr;
		rc = replay_sequence(rp, &seq, &sr, err, sizeof err);
		if (rc < 0)
			goto fail;
		if (sink.failed) {
			snprintf(err, sizeof err, "%s", sink.err);
			goto fail;
		}
		if (db && db_run_sequence(db, run_id, &sr, err, sizeof err) < 0)
			goto fail;
	}
	if (rc < 0)
		goto fail;
	replay_finish(rp);
	clock_gettime(CLOCK_MONOTONIC, &w1);
	double wall = (double)(w1.tv_sec - w0.tv_sec) +
	              (double)(w1.tv_nsec - w0.tv_nsec) * 1e-9;

	struct replay_metrics m = *replay_metrics(rp);
	m.events_dropped = sink.dropped;
	char names[64][96];
	double values[64];
	size_t ne = plugin_counters(&pol, "policy", names, values, 0, 64);
	ne = plugin_counters(&dr, "drafter", names, values, ne, 64);
	if (db) {
		const char *np[64];
		for (size_t i = 0; i < ne; i++)
			np[i] = names[i];
		rc = db_run_commit(db, run_id, &m, wall, np, values, ne, err,
		                   sizeof err);
		in_run = 0;
		if (rc < 0)
			goto fail;
	}

	double tok_s = m.time_s > 0 ? (double)m.committed / m.time_s : 0;
	double tok_j = m.energy_j > 0 ? (double)m.committed / m.energy_j : 0;
	double acc = m.drafted ? (double)m.accepted / (double)m.drafted : 0;
	double dlen = m.batches ? (double)m.batch_tokens / (double)m.batches
	                        : 0;
	if (!o->quiet) {
		printf("run %lld: %s/%s on %s, %s: %llu tokens in %.4f s "
		       "simulated = %.1f tok/s, %.3f J = %.1f tok/J, accept "
		       "%.3f, draft len %.2f, wasted %llu, pre-verified %llu "
		       "[%.3f s wall]\n",
		       (long long)run_id, pol.desc->name, dr.desc->name,
		       plat.name, path, (unsigned long long)m.committed,
		       m.time_s, tok_s, m.energy_j, tok_j, acc, dlen,
		       (unsigned long long)m.wasted,
		       (unsigned long long)m.preverified, wall);
		fflush(stdout);
	}
	snprintf(sum->policy, sizeof sum->policy, "%s", pol.desc->name);
	snprintf(sum->drafter, sizeof sum->drafter, "%s", dr.desc->name);
	snprintf(sum->preset, sizeof sum->preset, "%s", plat.name);
	snprintf(sum->trace, sizeof sum->trace, "%s", path);
	sum->tok_s = tok_s;
	sum->tok_j = tok_j;
	sum->accept = acc;
	sum->draft_len = dlen;
	sum->run_id = run_id;
	ret = 0;
	goto out;
fail:
	fprintf(stderr, "ahasd-replay: %s\n", err);
	if (in_run)
		db_run_rollback(db);
out:
	replay_free(&rp);
	plugin_unload(&dr);
	plugin_unload(&pol);
	hw_plan_free(&plan);
	model_preset_clear(&rm[0]);
	model_preset_clear(&rm[1]);
	return ret;
}

/* Open a trace and read it once to the end: every record is checked and
 * the file's SHA-256 is computed from the bytes as they are parsed (one
 * pass; a stream that is not a trace fails at its first bytes). The runs
 * then rewind it. @return 0 or 1 (message on stderr). */
static int open_trace(const char *path, struct trace_reader **rd,
                      struct trace_facts *tf)
{
	char err[ERRLEN];
	struct trace_seq seq;
	int rc = trace_reader_open(rd, path, err, sizeof err);

	memset(tf, 0, sizeof *tf);
	if (rc == 0)
		while ((rc = trace_reader_next(*rd, &seq, err, sizeof err)) == 1)
			if ((uint64_t)seq.prompt_len + seq.n > tf->max_context) {
				tf->max_context = (uint64_t)seq.prompt_len + seq.n;
				tf->max_context_id = seq.id;
			}
	if (rc == 0 && trace_reader_sha256(*rd, tf->sha) < 0) {
		snprintf(err, sizeof err, "%s: no hash after reading it", path);
		rc = -EIO;
	}
	if (rc < 0) {
		fprintf(stderr, "ahasd-replay: %s\n", err);
		trace_reader_close(rd);
		return 1;
	}
	return 0;
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
	struct options o = { .db_path = "ahasd-results.db", .seed = 1,
	                     .queue_capacity = 32, .max_draft = 64 };
	int first;
	int rc = parse_args(argc, argv, &o, &first);
	if (rc == 1)
		return 0;
	if (rc == 3)
		return list_plugins();
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
	if (rc)
		return rc;
	char err[ERRLEN];
	struct db *db = NULL;
	if (!o.no_db && db_open(&db, o.db_path, err, sizeof err) < 0) {
		fprintf(stderr, "ahasd-replay: %s\n", err);
		return 1;
	}
	size_t total = (size_t)(argc - first) * o.n_presets * o.n_policies *
	               o.n_drafters;
	struct summary *sums = calloc(total, sizeof *sums);
	if (!sums) {
		db_close(&db);
		return 1;
	}
	size_t ns = 0;
	int status = 0;
	for (int t = first; t < argc && !status; t++) {
		struct trace_reader *rd = NULL;
		struct trace_facts tf;

		status = open_trace(argv[t], &rd, &tf);
		for (size_t w = 0; w < o.n_presets && !status; w++)
			for (size_t p = 0; p < o.n_policies && !status; p++)
				for (size_t d = 0; d < o.n_drafters && !status;
				     d++) {
					int used[MAX_PARAMS] = { 0 };
					status = run_one(&o, db, argv[t], rd, &tf,
					                 o.presets[w],
					                 o.policies[p],
					                 o.drafters[d], used,
					                 &sums[ns]);
					if (!status)
						ns++;
				}
		trace_reader_close(&rd);
	}
	if (!o.quiet && ns > 1)
		print_table(sums, ns);
	if (db && !o.quiet && ns)
		printf("\nresults: %s (sqlite3 %s 'select * from run_summary')\n",
		       o.db_path, o.db_path);
	free(sums);
	db_close(&db);
	return status;
}
