/* view_data.c - load runs, their headline metrics and devices. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "view.h"

static const char *const kind_names[VIEW_KIND_COUNT] = {
	"draft",    "verify", "preverify", "switch",
	"transfer", "idle",   "offload",   "other",
};

enum view_kind view_kind_parse(const char *name)
{
	for (int k = 0; k < VIEW_KIND_OTHER; k++)
		if (name && strcmp(name, kind_names[k]) == 0)
			return (enum view_kind)k;
	return VIEW_KIND_OTHER;
}

const char *view_kind_name(enum view_kind k)
{
	return (unsigned)k < VIEW_KIND_COUNT ? kind_names[k] : "other";
}

static int sql_fail(sqlite3 *h, const char *what, char *err, size_t errlen)
{
	view_set_err(err, errlen, "reading %s: %s", what, sqlite3_errmsg(h));
	return -EIO;
}

/* Copy column i as a string ("" for NULL keeps the writers simple, except
 * where NULL means something: label and retargeted_from stay NULL). */
static int col_str(sqlite3_stmt *s, int i, int keep_null, char **out)
{
	const unsigned char *t = sqlite3_column_text(s, i);

	*out = NULL;
	if (!t && keep_null)
		return 0;
	*out = strdup(t ? (const char *)t : "");
	return *out ? 0 : -ENOMEM;
}

static double col_real(sqlite3_stmt *s, int i)
{
	return sqlite3_column_type(s, i) == SQLITE_NULL
	               ? NAN
	               : sqlite3_column_double(s, i);
}

static void run_free(struct view_run *r)
{
	char **strs[] = {
		&r->created,        &r->tool_version,    &r->label,
		&r->policy,         &r->policy_params,   &r->drafter,
		&r->drafter_params, &r->hw_preset,       &r->draft_model,
		&r->target_model,   &r->retargeted_from, &r->trace_path,
	};

	for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
		free(*strs[i]);
		*strs[i] = NULL;
	}
	for (unsigned i = 0; i < r->n_dev; i++) {
		free(r->dev[i].name);
		r->dev[i].name = NULL;
	}
	r->n_dev = 0;
}

void view_runs_clear(struct view_runs *rs)
{
	if (!rs)
		return;
	for (size_t i = 0; i < rs->n; i++)
		run_free(&rs->v[i]);
	free(rs->v);
	rs->v = NULL;
	rs->n = 0;
}

static const char run_sql[] =
        "SELECT r.id, r.created, r.tool_version, r.label, r.policy, "
        "r.policy_params, r.drafter, r.drafter_params, r.hw_preset, "
        "r.draft_model, r.target_model, r.retargeted_from, r.trace_path, "
        "r.sampled, r.seed, r.queue_capacity, r.max_draft, r.wall_s, "
        "s.committed, s.time_s, s.tokens_per_s, s.energy_j, s.tokens_per_j, "
        "s.acceptance_rate, s.mean_draft_len, "
        "(SELECT value FROM metrics WHERE run_id = r.id "
        "   AND name = 'events_dropped'), "
        "(SELECT count(*) FROM events WHERE run_id = r.id), "
        "(SELECT count(*) FROM sequences WHERE run_id = r.id), "
        "v.speedup, v.energy_gain, "
        "s.tokens_per_s_lo, s.tokens_per_s_hi, s.tokens_per_j_lo, "
        "s.tokens_per_j_hi, s.acceptance_rate_lo, s.acceptance_rate_hi, "
        "v.speedup_lo, v.speedup_hi, v.baseline_run_id "
        "FROM runs r JOIN run_summary s ON s.run_id = r.id "
        "LEFT JOIN speedup_vs_sync v ON v.run_id = r.id ";

static int fill_run(sqlite3_stmt *s, struct view_run *r)
{
	int c = 0, e = 0;

	memset(r, 0, sizeof *r);
	r->id = sqlite3_column_int64(s, c++);
	e |= col_str(s, c++, 0, &r->created);
	e |= col_str(s, c++, 0, &r->tool_version);
	e |= col_str(s, c++, 1, &r->label);
	e |= col_str(s, c++, 0, &r->policy);
	e |= col_str(s, c++, 0, &r->policy_params);
	e |= col_str(s, c++, 0, &r->drafter);
	e |= col_str(s, c++, 0, &r->drafter_params);
	e |= col_str(s, c++, 0, &r->hw_preset);
	e |= col_str(s, c++, 0, &r->draft_model);
	e |= col_str(s, c++, 0, &r->target_model);
	e |= col_str(s, c++, 1, &r->retargeted_from);
	e |= col_str(s, c++, 0, &r->trace_path);
	r->sampled = sqlite3_column_int(s, c++);
	r->seed = sqlite3_column_int64(s, c++);
	r->queue_capacity = sqlite3_column_int64(s, c++);
	r->max_draft = sqlite3_column_int64(s, c++);
	r->wall_s = col_real(s, c++);
	r->committed = col_real(s, c++);
	r->time_s = col_real(s, c++);
	r->tokens_per_s = col_real(s, c++);
	r->energy_j = col_real(s, c++);
	r->tokens_per_j = col_real(s, c++);
	r->acceptance_rate = col_real(s, c++);
	r->mean_draft_len = col_real(s, c++);
	r->events_dropped = col_real(s, c++);
	r->n_events = sqlite3_column_int64(s, c++);
	r->n_seq = sqlite3_column_int64(s, c++);
	r->speedup = col_real(s, c++);
	r->energy_gain = col_real(s, c++);
	r->tokens_per_s_lo = col_real(s, c++);
	r->tokens_per_s_hi = col_real(s, c++);
	r->tokens_per_j_lo = col_real(s, c++);
	r->tokens_per_j_hi = col_real(s, c++);
	r->acceptance_rate_lo = col_real(s, c++);
	r->acceptance_rate_hi = col_real(s, c++);
	r->speedup_lo = col_real(s, c++);
	r->speedup_hi = col_real(s, c++);
	r->sync_run_id = sqlite3_column_int64(s, c++);
	return e ? -ENOMEM : 0;
}

static int load_devices(sqlite3 *h, struct view_run *r, char *err,
                        size_t errlen)
{
	sqlite3_stmt *s = NULL;
	int rc, ret = 0;

	rc = sqlite3_prepare_v2(h,
	                        "SELECT idx, name, busy_s, idle_s, energy_j "
	                        "FROM devices WHERE run_id = ?1 ORDER BY idx",
	                        -1, &s, NULL);
	if (rc != SQLITE_OK) {
		ret = sql_fail(h, "devices", err, errlen);
		goto error;
	}
	sqlite3_bind_int64(s, 1, r->id);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const int64_t idx = sqlite3_column_int64(s, 0);
		struct view_dev *d;

		if (idx < 0 || idx >= VIEW_MAX_DEV)
			continue;
		/* Lanes are addressed by idx; fill gaps with unnamed ones. */
		while (r->n_dev <= (unsigned)idx) {
			d = &r->dev[r->n_dev];
			d->name = NULL;
			d->busy_s = d->idle_s = d->energy_j = NAN;
			r->n_dev++;
		}
		d = &r->dev[idx];
		free(d->name);
		if (col_str(s, 1, 0, &d->name) < 0) {
			view_set_err(err, errlen, "out of memory");
			ret = -ENOMEM;
			goto error;
		}
		d->busy_s = col_real(s, 2);
		d->idle_s = col_real(s, 3);
		d->energy_j = col_real(s, 4);
	}
	if (rc != SQLITE_DONE)
		ret = sql_fail(h, "devices", err, errlen);
error:
	sqlite3_finalize(s);
	return ret;
}

int view_runs_load(sqlite3 *h, const int64_t *ids, size_t n_ids,
                   struct view_runs *out, char *err, size_t errlen)
{
	sqlite3_stmt *s = NULL;
	struct view_runs rs = { NULL, 0 };
	size_t cap = 0;
	int rc, ret = 0;
	size_t want = 0;

	out->v = NULL;
	out->n = 0;
	{
		char sql[sizeof run_sql + 64];

		snprintf(sql, sizeof sql, "%s%s", run_sql,
		         n_ids ? "WHERE r.id = ?1" : "ORDER BY r.id");
		rc = sqlite3_prepare_v2(h, sql, -1, &s, NULL);
	}
	if (rc != SQLITE_OK) {
		ret = sql_fail(h, "runs", err, errlen);
		goto error;
	}
	for (;;) {
		struct view_run *r;

		if (n_ids) {
			if (want == n_ids)
				break;
			sqlite3_reset(s);
			sqlite3_bind_int64(s, 1, ids[want]);
		}
		rc = sqlite3_step(s);
		if (rc == SQLITE_DONE) {
			if (n_ids) {
				view_set_err(err, errlen,
				             "run %lld does not exist in this "
				             "database",
				             (long long)ids[want]);
				ret = -ENOENT;
				goto error;
			}
			break;
		}
		if (rc != SQLITE_ROW) {
			ret = sql_fail(h, "runs", err, errlen);
			goto error;
		}
		if (rs.n == cap) {
			const size_t ncap = cap ? 2 * cap : 16;
			struct view_run *nv = realloc(rs.v, ncap * sizeof *nv);

			if (!nv) {
				view_set_err(err, errlen, "out of memory");
				ret = -ENOMEM;
				goto error;
			}
			rs.v = nv;
			cap = ncap;
		}
		r = &rs.v[rs.n];
		rs.n++;
		if (fill_run(s, r) < 0) {
			view_set_err(err, errlen, "out of memory");
			ret = -ENOMEM;
			goto error;
		}
		ret = load_devices(h, r, err, errlen);
		if (ret < 0)
			goto error;
		want++;
	}
	*out = rs;
	rs.v = NULL;
	rs.n = 0;
error:
	sqlite3_finalize(s);
	view_runs_clear(&rs);
	return ret;
}
