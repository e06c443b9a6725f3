/* view_perfetto.c - one run's events as Chrome trace-event JSON.
 *
 * Loads in ui.perfetto.dev and chrome://tracing: one process per device
 * (pid = device index + 1, named with process_name metadata), one thread
 * per task kind (tid = kind + 1), one complete event ("ph":"X") per stored
 * event with ts/dur in microseconds and the task's tokens, sequence, batch
 * and outcome in args.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>

#include <sqlite3.h>

#include "view.h"

/* JSON has no inf/nan; times are finite in any database db.c wrote. */
static void put_num(FILE *f, double v)
{
	fprintf(f, "%.15g", isfinite(v) ? v : 0.0);
}

static const char *dev_name(const struct view_run *run, int64_t dev, char *buf,
                            size_t len)
{
	if (dev >= 0 && dev < (int64_t)run->n_dev && run->dev[dev].name)
		return run->dev[dev].name;
	snprintf(buf, len, "device %lld", (long long)dev);
	return buf;
}

/* Objects in traceEvents are separated by ",\n"; *n counts them. */
static void sep(FILE *out, int64_t *n)
{
	if ((*n)++)
		fputs(",\n", out);
}

static int put_metadata(sqlite3 *h, const struct view_run *run, FILE *out,
                        int64_t *n, char *err, size_t errlen)
{
	sqlite3_stmt *s = NULL;
	int64_t last_dev = -1;
	int rc, ret = 0;

	rc = sqlite3_prepare_v2(h,
	                        "SELECT DISTINCT device, kind FROM events "
	                        "WHERE run_id = ?1 ORDER BY device, kind",
	                        -1, &s, NULL);
	if (rc != SQLITE_OK)
		goto sql_error;
	sqlite3_bind_int64(s, 1, run->id);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const int64_t dev = sqlite3_column_int64(s, 0);
		const char *kind = (const char *)sqlite3_column_text(s, 1);
		const enum view_kind k = view_kind_parse(kind);
		char buf[32];

		if (dev != last_dev) {
			sep(out, n);
			fprintf(out,
			        "{\"ph\":\"M\",\"name\":\"process_name\","
			        "\"pid\":%lld,\"tid\":0,\"args\":{\"name\":",
			        (long long)dev + 1);
			view_put_json(out, dev_name(run, dev, buf, sizeof buf));
			fprintf(out,
			        "}},\n{\"ph\":\"M\",\"name\":"
			        "\"process_sort_index\",\"pid\":%lld,\"tid\":0,"
			        "\"args\":{\"sort_index\":%lld}}",
			        (long long)dev + 1, (long long)dev);
			last_dev = dev;
		}
		sep(out, n);
		fprintf(out,
		        "{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":%lld,"
		        "\"tid\":%d,\"args\":{\"name\":",
		        (long long)dev + 1, (int)k + 1);
		view_put_json(out, view_kind_name(k));
		fprintf(out,
		        "}},\n{\"ph\":\"M\",\"name\":\"thread_sort_index\","
		        "\"pid\":%lld,\"tid\":%d,\"args\":{\"sort_index\":%d}}",
		        (long long)dev + 1, (int)k + 1, (int)k);
	}
	if (rc != SQLITE_DONE)
		goto sql_error;
	sqlite3_finalize(s);
	return 0;

sql_error:
	view_set_err(err, errlen, "reading events of run %lld: %s",
	             (long long)run->id, sqlite3_errmsg(h));
	ret = -EIO;
	sqlite3_finalize(s);
	return ret;
}

int view_write_perfetto(sqlite3 *h, const struct view_run *run, FILE *out,
                        char *err, size_t errlen)
{
	sqlite3_stmt *s = NULL;
	int64_t n = 0;
	int rc, ret = 0;

	if (run->n_events == 0) {
		view_set_err(err, errlen,
		             "run %lld has no events recorded; rerun it with "
		             "ahasd-replay --events",
		             (long long)run->id);
		return -ENODATA;
	}
	fputs("{\"displayTimeUnit\":\"ms\",\"otherData\":{\"run\":", out);
	fprintf(out, "%lld,\"policy\":", (long long)run->id);
	view_put_json(out, run->policy);
	fputs(",\"drafter\":", out);
	view_put_json(out, run->drafter);
	fputs(",\"hw_preset\":", out);
	view_put_json(out, run->hw_preset);
	fputs(",\"draft_model\":", out);
	view_put_json(out, run->draft_model);
	fputs(",\"target_model\":", out);
	view_put_json(out, run->target_model);
	fputs(",\"trace\":", out);
	view_put_json(out, run->trace_path);
	fprintf(out, ",\"events_dropped\":%.0f},\n\"traceEvents\":[\n",
	        isfinite(run->events_dropped) ? run->events_dropped : 0.0);

	ret = put_metadata(h, run, out, &n, err, errlen);
	if (ret < 0)
		goto error;

	rc = sqlite3_prepare_v2(h,
	                        "SELECT idx, device, kind, start_s, end_s, "
	                        "tokens, seq, batch, outcome FROM events "
	                        "WHERE run_id = ?1 ORDER BY idx",
	                        -1, &s, NULL);
	if (rc != SQLITE_OK)
		goto sql_error;
	sqlite3_bind_int64(s, 1, run->id);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const int64_t dev = sqlite3_column_int64(s, 1);
		const char *kind = (const char *)sqlite3_column_text(s, 2);
		const double t0 = sqlite3_column_double(s, 3);
		const double t1 = sqlite3_column_double(s, 4);

		sep(out, &n);
		fputs("{\"ph\":\"X\",\"name\":", out);
		view_put_json(out, kind);
		fputs(",\"cat\":", out);
		view_put_json(out, kind);
		fprintf(out,
		        ",\"pid\":%lld,\"tid\":%d,\"ts\":", (long long)dev + 1,
		        (int)view_kind_parse(kind) + 1);
		put_num(out, t0 * 1e6);
		fputs(",\"dur\":", out);
		put_num(out, (t1 > t0 ? t1 - t0 : 0.0) * 1e6);
		fprintf(out,
		        ",\"args\":{\"idx\":%lld,\"tokens\":%lld,\"seq\":%lld,"
		        "\"batch\":%lld,\"outcome\":",
		        (long long)sqlite3_column_int64(s, 0),
		        (long long)sqlite3_column_int64(s, 5),
		        (long long)sqlite3_column_int64(s, 6),
		        (long long)sqlite3_column_int64(s, 7));
		view_put_json(out, (const char *)sqlite3_column_text(s, 8));
		fputs("}}", out);
	}
	if (rc != SQLITE_DONE)
		goto sql_error;
	fputs("\n]}\n", out);
	sqlite3_finalize(s);
	return 0;

sql_error:
	view_set_err(err, errlen, "reading events of run %lld: %s",
	             (long long)run->id, sqlite3_errmsg(h));
	ret = -EIO;
error:
	sqlite3_finalize(s);
	return ret;
}
