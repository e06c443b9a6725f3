/* run.c - see run.h. */
#include "run.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "config.h"
#include "engine.h"
#include "hw.h"
#include "models.h"
#include "plugin.h"
#include "util.h"

#define RUN_MAX_PARAMS 64

/* Events go to the database; the database keeps the bound and says when
 * an event is past it. */
struct sink {
	struct db *db;
	int64_t run_id;
	uint64_t dropped;
	int failed;
	char err[512];
};

static void on_event(void *user, const struct replay_event *ev)
{
	struct sink *s = user;
	if (s->failed)
		return;
	int rc = db_run_event(s->db, s->run_id, ev, s->err, sizeof s->err);
	if (rc < 0)
		s->failed = 1;
	else if (rc == 0)
		s->dropped++;
}

static double seconds_since(const struct timespec *t0)
{
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) +
	       (double)(t1.tv_nsec - t0->tv_nsec) * 1e-9;
}

/* Load and create a plugin; with a watch, every call into it from now on
 * is marked in watch->where (dlopen as "load"). */
static int load_plugin(struct plugin *p, const char *name, uint32_t kind,
                       const struct run_kv *kv, size_t n,
                       struct run_watch *watch, char *err, size_t errlen)
{
	const char *keys[RUN_MAX_PARAMS], *vals[RUN_MAX_PARAMS];
	if (n > RUN_MAX_PARAMS) {
		util_set_err(err, errlen, "%s: %zu parameters (at most %d)",
		             name, n, RUN_MAX_PARAMS);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		keys[i] = kv[i].key;
		vals[i] = kv[i].value;
	}
	if (watch)
		watch->where = PLUGIN_WHERE(kind, PLUGIN_HOOK_LOAD);
	int rc = plugin_open(p, name, kind, err, errlen);
	if (rc < 0)
		return rc;
	if (watch) {
		watch->where = 0;
		p->where = &watch->where;
		char *to = kind == AHASD_PLUGIN_POLICY ? watch->policy
		                                       : watch->drafter;
		snprintf(to, sizeof watch->policy, "%s", p->desc->name);
	}
	return plugin_create(p, keys, vals, n, err, errlen);
}

/* Each sequence's share of the headline metrics, for their intervals. */
struct shares {
	struct stats_seq *s;
	size_t n, cap;
};

static int shares_add(struct shares *sh, const struct replay_seq_result *sr,
                      char *err, size_t errlen)
{
	if (sh->n == sh->cap) {
		const size_t cap = sh->cap ? 2 * sh->cap : 256;
		struct stats_seq *p = realloc(sh->s, cap * sizeof *p);

		if (!p) {
			util_set_err(err, errlen, "run: out of memory");
			return -ENOMEM;
		}
		sh->s = p;
		sh->cap = cap;
	}
	stats_seq_from(sr, &sh->s[sh->n++]);
	return 0;
}

/* Replay every sequence of the stream, storing each one's row. */
static int replay_stream(struct replay *rp, const struct run_stream *src,
                         struct db *db, int64_t run_id, struct sink *sink,
                         struct shares *sh, char *err, size_t errlen)
{
	struct replay_seq_result sr;
	int rc;

	if (src->mem) {
		for (size_t i = 0; i < src->mem->n_seq; i++) {
			rc = replay_sequence(rp, &src->mem->seq[i], &sr, err,
			                     errlen);
			if (rc == 0 && sink->failed) {
				util_set_err(err, errlen, "%s", sink->err);
				rc = -EIO;
			}
			if (rc == 0)
				rc = shares_add(sh, &sr, err, errlen);
			if (rc == 0 && db)
				rc = db_run_sequence(db, run_id, &sr, err,
				                     errlen);
			if (rc < 0)
				return rc;
		}
		return 0;
	}
	rc = trace_reader_rewind(src->reader, err, errlen);
	if (rc < 0)
		return rc;
	struct trace_seq seq;
	while ((rc = trace_reader_next(src->reader, &seq, err, errlen)) == 1) {
		rc = replay_sequence(rp, &seq, &sr, err, errlen);
		if (rc == 0 && sink->failed) {
			util_set_err(err, errlen, "%s", sink->err);
			rc = -EIO;
		}
		if (rc == 0)
			rc = shares_add(sh, &sr, err, errlen);
		if (rc == 0 && db)
			rc = db_run_sequence(db, run_id, &sr, err, errlen);
		if (rc < 0)
			return rc;
	}
	return rc;
}

int run_execute(const struct run_spec *spec, const struct run_stream *src,
                struct db *db, struct run_result *out, char *err, size_t errlen)
{
	struct hw_platform plat;
	struct hw_plan *plan = NULL;
	struct plugin pol = { 0 }, dr = { 0 };
	struct replay *rp = NULL;
	struct sink sink = { .db = db, .run_id = -1 };
	struct shares sh = { NULL, 0, 0 };
	int in_run = 0, rc;

	memset(out, 0, sizeof *out);
	out->run_id = -1;
	if (spec->watch) {
		spec->watch->where = 0;
		spec->watch->run_id = -1;
		spec->watch->policy[0] = spec->watch->drafter[0] = '\0';
	}
	if (!src->mem == !src->reader) {
		util_set_err(err, errlen,
		             "run: the stream needs exactly one "
		             "of a trace in memory and a reader");
		return -EINVAL;
	}
	rc = hw_platform_load(&plat, spec->preset, err, errlen);
	for (size_t i = 0; rc == 0 && i < spec->n_hw; i++)
		rc = hw_platform_set(&plat, spec->hw[i].key, spec->hw[i].value,
		                     err, errlen);
	if (rc < 0)
		goto out;
	if (src->max_context > src->target->seq_len) {
		util_set_err(err, errlen,
		             "%s: sequence %" PRIu32 ": prompt_len "
		             "+ n = %" PRIu64
		             " exceeds the context of the target "
		             "model %s (seq_len %" PRIu32 ")",
		             src->path, src->max_context_id, src->max_context,
		             src->target->name, src->target->seq_len);
		rc = -EINVAL;
		goto out;
	}
	rc = hw_plan_create(&plan, &plat, src->draft, src->target, err, errlen);
	char draft_name[TRACE_NAME_MAX + 16];
	if (src->draft)
		snprintf(draft_name, sizeof draft_name, "%s",
		         src->draft->name[0] ? src->draft->name : "?");
	else
		snprintf(draft_name, sizeof draft_name, "lookup:%s",
		         src->draft_lookup ? src->draft_lookup : "?");
	if (rc < 0)
		goto out;
	rc = load_plugin(&pol, spec->policy, AHASD_PLUGIN_POLICY,
	                 spec->policy_params, spec->n_policy_params,
	                 spec->watch, err, errlen);
	if (rc < 0)
		goto out;
	rc = load_plugin(&dr, spec->drafter, AHASD_PLUGIN_DRAFTER,
	                 spec->drafter_params, spec->n_drafter_params,
	                 spec->watch, err, errlen);
	if (rc < 0)
		goto out;

	snprintf(out->policy, sizeof out->policy, "%s", pol.desc->name);
	snprintf(out->drafter, sizeof out->drafter, "%s", dr.desc->name);
	snprintf(out->preset, sizeof out->preset, "%s", plat.name);
	out->n_dev = plat.n_dev;
	for (unsigned i = 0; i < plat.n_dev; i++)
		snprintf(out->dev_name[i], sizeof out->dev_name[i], "%s",
		         plat.dev[i].name);
	/* the run record, and the hashes its baseline is matched on (with or
	 * without a database) */
	char hwdesc[8192];
	hw_platform_describe(&plat, hwdesc, sizeof hwdesc);
	{
		struct db_run_info info = {
			.tool_version = AHASD_VERSION,
			.label = spec->label,
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
			.trace_path = src->path,
			.trace_sha256 = src->sha256,
			.draft_model = draft_name,
			.target_model = src->target->name[0] ? src->target->name
			                                     : "?",
			.retargeted_from = src->retargeted_from,
			.sampled = src->sampled,
			.seed = spec->seed,
			.queue_capacity = spec->queue_capacity,
			.max_draft = spec->max_draft,
			.n_dev = plat.n_dev,
		};
		for (unsigned i = 0; i < plat.n_dev; i++)
			info.device_names[i] = plat.dev[i].name;
		rc = db_match_keys(&info, out->match_key, out->policy_key, err,
		                   errlen);
		if (rc == 0 && db)
			rc = db_set_max_events(
			        db, spec->max_events ? spec->max_events
			                             : RUN_DEFAULT_MAX_EVENTS);
		if (rc == 0 && db)
			rc = db_run_begin(db, &info, &out->run_id, err, errlen);
		if (rc < 0)
			goto out;
		in_run = db != NULL;
		sink.run_id = out->run_id;
		if (spec->watch)
			spec->watch->run_id = out->run_id;
	}
	struct replay_config cfg = {
		.plan = plan,
		.policy = &pol,
		.drafter = &dr,
		.seed = spec->seed,
		.lookahead = src->lookahead,
		.trace_features = src->features,
		.run_max = src->run_max,
		.tree_tokens = src->tree_tokens,
		.queue_capacity = spec->queue_capacity,
		.max_draft = spec->max_draft,
		.on_event = db && spec->record_events ? on_event : NULL,
		.event_user = &sink,
	};
	rc = replay_create(&rp, &cfg, err, errlen);
	if (rc < 0) {
		/* a plugin the trace cannot serve: say which trace */
		char e2[1024];
		snprintf(e2, sizeof e2, "%s", err);
		util_set_err(err, errlen, "%s: %s", src->path, e2);
		goto out;
	}

	struct timespec w0;
	clock_gettime(CLOCK_MONOTONIC, &w0);
	rc = replay_stream(rp, src, db, out->run_id, &sink, &sh, err, errlen);
	if (rc < 0)
		goto out;
	/* the headline metrics' bootstrap intervals over the sequences */
	if (spec->no_intervals && !db) {
		for (int i = 0; i < STATS_N_METRICS; i++)
			out->ci[i] = (struct stats_interval){ NAN, NAN, NAN };
	} else if (stats_intervals(sh.s, sh.n, out->ci) < 0) {
		util_set_err(err, errlen, "run: out of memory");
		rc = -ENOMEM;
		goto out;
	}
	if (db) {
		rc = db_run_intervals(db, out->run_id, out->ci, err, errlen);
		if (rc < 0) {
			in_run = 0; /* rolled back */
			goto out;
		}
	}
	replay_finish(rp);
	out->wall_s = seconds_since(&w0);
	out->m = *replay_metrics(rp);
	out->m.events_dropped = sink.dropped;

	rc = plugin_counters(&pol, "policy", out->counter_name, out->counter,
	                     &out->n_counters, RUN_MAX_COUNTERS, err, errlen);
	if (rc == 0)
		rc = plugin_counters(&dr, "drafter", out->counter_name,
		                     out->counter, &out->n_counters,
		                     RUN_MAX_COUNTERS, err, errlen);
	if (rc < 0)
		goto out;
	/* destroy before the commit: a run whose plugin fails there is not
	 * stored */
	replay_free(&rp);
	plugin_unload(&dr);
	plugin_unload(&pol);
	if (db) {
		const char *np[RUN_MAX_COUNTERS];
		for (size_t i = 0; i < out->n_counters; i++)
			np[i] = out->counter_name[i];
		in_run = 0; /* a failed commit rolls itself back */
		rc = db_run_commit(db, out->run_id, &out->m, out->wall_s, np,
		                   out->counter, out->n_counters, err, errlen);
	}
out:
	if (in_run)
		db_run_rollback(db);
	if (rc < 0)
		out->run_id = -1;
	free(sh.s);
	replay_free(&rp);
	plugin_unload(&dr);
	plugin_unload(&pol);
	hw_plan_free(&plan);
	return rc < 0 ? rc : 0;
}

double run_value(const struct run_result *r, const char *name)
{
	if (metric_find(name))
		return metric_value(&r->m, name);
	for (size_t i = 0; i < r->n_counters; i++)
		if (!strcmp(r->counter_name[i], name))
			return r->counter[i];
	return NAN;
}

uint64_t run_mem_max(void)
{
	const char *e = getenv("AHASD_TRACE_MEM_MAX");
	char *end;
	if (!e || !*e)
		return RUN_MEM_MAX_DEFAULT;
	unsigned long long v = strtoull(e, &end, 10);
	return *end ? RUN_MEM_MAX_DEFAULT : v;
}

void run_source_close(struct run_source *s)
{
	trace_mem_free(&s->mem);
	trace_reader_close(&s->rd);
	model_preset_clear(&s->models[0]);
	model_preset_clear(&s->models[1]);
}

int run_source_open(struct run_source *s, const char *path, uint64_t mem_max,
                    const char *models, char *err, size_t errlen)
{
	struct stat st;
	memset(s, 0, sizeof *s);
	int rc = trace_reader_open(&s->rd, path, err, errlen);
	if (rc < 0)
		return rc;
	const struct trace_header *h = trace_reader_header(s->rd);
	trace_mem_init(&s->mem, h->lookahead);
	s->in_memory = stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
	               (uint64_t)st.st_size <= mem_max;
	if (s->in_memory) {
		rc = trace_mem_read(&s->mem, s->rd, err, errlen);
	} else {
		/* only the facts: each sequence is dropped as read */
		struct trace_seq seq;
		while ((rc = trace_reader_next(s->rd, &seq, err, errlen)) == 1)
			if ((uint64_t)seq.prompt_len + seq.n >
			    s->mem.max_context) {
				s->mem.max_context = (uint64_t)seq.prompt_len +
				                     seq.n;
				s->mem.max_context_id = seq.id;
			}
	}
	if (rc == 0 && trace_reader_sha256(s->rd, s->sha) < 0) {
		util_set_err(err, errlen, "%s: no hash after reading it", path);
		rc = -EIO;
	}
	const int lookup = (h->features & TRACE_F_DRAFT_LOOKUP) != 0;
	const struct trace_model *md = lookup ? NULL : &h->draft;
	const struct trace_model *mt = &h->target;
	if (rc == 0 && models) {
		/* retarget: the presets' operator lists, the trace's tokens */
		const char *colon = strchr(models, ':');
		char dname[512];
		if (!colon) {
			util_set_err(err, errlen,
			             "models '%s': expected "
			             "DRAFT:TARGET",
			             models);
			rc = -EINVAL;
		} else {
			snprintf(dname, sizeof dname, "%.*s",
			         (int)(colon - models), models);
			if (lookup && dname[0]) {
				util_set_err(
				        err, errlen,
				        "models '%s': the draft "
				        "of %s is the lookup '%s', which has "
				        "no "
				        "model to retarget; give ':TARGET'",
				        models, path, h->draft_lookup);
				rc = -EINVAL;
			} else if (!lookup && !dname[0]) {
				util_set_err(err, errlen,
				             "models '%s': expected "
				             "DRAFT:TARGET",
				             models);
				rc = -EINVAL;
			} else if (!lookup) {
				rc = model_preset_load(&s->models[0], dname,
				                       err, errlen);
			}
			if (rc == 0)
				rc = model_preset_load(&s->models[1], colon + 1,
				                       err, errlen);
		}
		snprintf(s->retarget, sizeof s->retarget, "%s:%s",
		         lookup ? "" : h->draft.name, h->target.name);
		md = lookup ? NULL : &s->models[0];
		mt = &s->models[1];
	}
	if (rc < 0) {
		run_source_close(s);
		return rc;
	}
	s->stream = (struct run_stream){
		.path = path,
		.sha256 = s->sha,
		.sampled = h->sampled,
		.lookahead = h->lookahead,
		.features = h->features,
		.run_max = h->run_max,
		.tree_tokens = h->tree_tokens,
		.draft_lookup = lookup ? h->draft_lookup : NULL,
		.draft = md,
		.target = mt,
		.retargeted_from = models ? s->retarget : NULL,
		.mem = s->in_memory ? &s->mem : NULL,
		.reader = s->in_memory ? NULL : s->rd,
		.max_context = s->mem.max_context,
		.max_context_id = s->mem.max_context_id,
	};
	return 0;
}
