/* test_golden.c - the golden digest: does a commit move any result?
 *
 * Replays the whole reproduction study (ahasd-repro --sweep all: the grid
 * of captured traces x model pairs x drafters x configurations, and every
 * sensitivity sweep) plus a native-model grid (every built-in policy x
 * drafter x preset on one sampled capture) into a fresh database, and
 * reduces each run to one line:
 *
 *   key | tokens_per_s tokens_per_j | sha256 of every stored result
 *
 * The hash covers every metric (name and value), every device row, every
 * per-sequence row, the run's bootstrap intervals and its paired ones
 * (by the baseline's policy), with reals printed as %.17g, so any change
 * in any result of any run changes its line. Configuration text (hw_config,
 * parameter strings) is not hashed: adding a key whose default keeps the
 * old behaviour does not move results, and the digest says exactly that.
 *
 * The committed file is tests/golden/results.digest. A commit that moves
 * results regenerates it (`AHASD_UPDATE_GOLDEN=1 meson test -C build
 * golden`, or `ninja -C build golden`) and says why in its message. On a
 * mismatch the test lists the runs that moved, with old and new headline
 * figures, and the runs added or removed. */
#include <criterion/criterion.h>
#include <errno.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sha256.h"

#define DIGEST_REL   "tests/golden/results.digest"
#define NATIVE_TRACE "traces/stories260K-skip3-sampled.msgpack"

struct buf {
	char *p;
	size_t n, cap;
};

static void buf_add(struct buf *b, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
static void buf_add(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	for (;;) {
		va_start(ap, fmt);
		int w = vsnprintf(b->p ? b->p + b->n : NULL,
		                  b->p ? b->cap - b->n : 0, fmt, ap);
		va_end(ap);
		cr_assert_geq(w, 0);
		if (b->p && b->n + (size_t)w < b->cap) {
			b->n += (size_t)w;
			return;
		}
		size_t cap = b->cap ? b->cap : 4096;
		while (cap <= b->n + (size_t)w)
			cap *= 2;
		b->p = realloc(b->p, cap);
		cr_assert_not_null(b->p);
		b->cap = cap;
	}
}

static int run_cmd(const char *cmd)
{
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static sqlite3_stmt *prep(sqlite3 *h, const char *sql)
{
	sqlite3_stmt *st;
	cr_assert_eq(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK,
	             "%s: %s", sql, sqlite3_errmsg(h));
	return st;
}

/* Append every column of the current row: integers as integers, reals as
 * %.17g, text as is. */
static void add_row(struct buf *b, sqlite3_stmt *st)
{
	const int nc = sqlite3_column_count(st);
	for (int i = 0; i < nc; i++) {
		switch (sqlite3_column_type(st, i)) {
		case SQLITE_INTEGER:
			buf_add(b, "%lld",
			        (long long)sqlite3_column_int64(st, i));
			break;
		case SQLITE_FLOAT:
			buf_add(b, "%.17g", sqlite3_column_double(st, i));
			break;
		case SQLITE_NULL: buf_add(b, "NULL"); break;
		default:
			buf_add(b, "%s",
			        (const char *)sqlite3_column_text(st, i));
			break;
		}
		buf_add(b, i + 1 < nc ? "," : "\n");
	}
}

/* The digest of every run in the database, one line each, sorted by key. */
static void digest_db(const char *path, struct buf *out)
{
	sqlite3 *h;
	cr_assert_eq(sqlite3_open_v2(path, &h, SQLITE_OPEN_READONLY, NULL),
	             SQLITE_OK, "%s", path);
	/* the trace by its file name: the checkout's location must not
	 * matter */
	sqlite3_stmt *runs = prep(
	        h, "SELECT id, coalesce(label, '-') || ' | ' || "
	           "replace(trace_path, rtrim(trace_path, replace(trace_path, "
	           "'/', '')), '') "
	           "|| ' | ' || draft_model || ':' || target_model || ' | ' || "
	           "hw_preset || ' | ' || policy || ' | ' || drafter, "
	           "(SELECT value FROM metrics WHERE run_id = runs.id AND name "
	           "= 'tokens_per_s'), "
	           "(SELECT value FROM metrics WHERE run_id = runs.id AND name "
	           "= 'tokens_per_j') "
	           "FROM runs ORDER BY 2");
	sqlite3_stmt *met = prep(h, "SELECT name, value FROM metrics "
	                            "WHERE run_id = ?1 ORDER BY name");
	sqlite3_stmt *dev = prep(h,
	                         "SELECT idx, name, busy_s, idle_s, energy_j "
	                         "FROM devices WHERE run_id = ?1 ORDER BY idx");
	sqlite3_stmt *seq = prep(
	        h, "SELECT seq, prompt_len, committed, time_s, "
	           "energy_j, drafted, accepted, wasted, "
	           "preverified, batches, verifications, "
	           "batch_tokens FROM sequences WHERE run_id = ?1 "
	           "ORDER BY seq");
	sqlite3_stmt *ci = prep(h, "SELECT name, lo, hi FROM intervals "
	                           "WHERE run_id = ?1 ORDER BY name");
	sqlite3_stmt *pci = prep(h,
	                         "SELECT b.policy, p.name, p.ratio, p.lo, "
	                         "p.hi FROM paired_intervals p JOIN runs b ON "
	                         "b.id = p.baseline_run_id WHERE p.run_id = ?1 "
	                         "ORDER BY b.policy, p.name");
	sqlite3_stmt *parts[] = { met, dev, seq, ci, pci };
	const char *prev = NULL;
	char *prevbuf = NULL;
	while (sqlite3_step(runs) == SQLITE_ROW) {
		const sqlite3_int64 id = sqlite3_column_int64(runs, 0);
		const char *key = (const char *)sqlite3_column_text(runs, 1);
		cr_assert(!prev || strcmp(prev, key) != 0,
		          "two runs share the digest key '%s'", key);
		free(prevbuf);
		prevbuf = strdup(key);
		prev = prevbuf;
		struct buf all = { 0 };
		for (size_t k = 0; k < sizeof parts / sizeof *parts; k++) {
			sqlite3_bind_int64(parts[k], 1, id);
			while (sqlite3_step(parts[k]) == SQLITE_ROW)
				add_row(&all, parts[k]);
			sqlite3_reset(parts[k]);
			buf_add(&all, "--\n");
		}
		char hex[65];
		sha256_hex(all.p, all.n, hex);
		free(all.p);
		buf_add(out, "%s | %.17g %.17g | %.32s\n", key,
		        sqlite3_column_double(runs, 2),
		        sqlite3_column_double(runs, 3), hex);
	}
	free(prevbuf);
	for (size_t k = 0; k < sizeof parts / sizeof *parts; k++)
		sqlite3_finalize(parts[k]);
	sqlite3_finalize(runs);
	sqlite3_close(h);
}

/* Lines of a digest text (the text is modified in place). */
static size_t split_lines(char *text, char ***lines)
{
	size_t n = 0, cap = 1024;
	*lines = malloc(cap * sizeof **lines);
	for (char *s = text; s && *s;) {
		char *nl = strchr(s, '\n');
		if (nl)
			*nl = '\0';
		if (*s && *s != '#') {
			if (n == cap)
				*lines = realloc(*lines,
				                 (cap *= 2) * sizeof **lines);
			(*lines)[n++] = s;
		}
		s = nl ? nl + 1 : NULL;
	}
	return n;
}

/* Length of the key part of a digest line ("key | numbers | hash"). */
static size_t key_len(const char *line)
{
	const char *bar = strrchr(line, '|');
	cr_assert_not_null(bar);
	const char *p = bar;
	while (p > line && p[-1] != '|')
		p--;
	cr_assert_gt(p, line, "malformed digest line: %s", line);
	return (size_t)(p - 1 - line);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *s = malloc((size_t)n + 1);
	cr_assert_eq(fread(s, 1, (size_t)n, f), (size_t)n);
	s[n] = '\0';
	fclose(f);
	return s;
}

Test(golden, every_result_of_the_study_is_unchanged, .timeout = 600)
{
	const char *build = getenv("AHASD_BUILD_ROOT");
	const char *src = getenv("AHASD_SOURCE_ROOT");
	cr_assert(build && src);
	char dir[] = "/tmp/ahasd-golden-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	char cmd[8192], db[4200], path[4200];
	snprintf(db, sizeof db, "%s/g.db", dir);
	snprintf(cmd, sizeof cmd,
	         "%s/tools/ahasd-repro -q --sweep all "
	         /* as `ninja repro` (replay/meson.build) */
	         "--workload-sweep acceptance=0.5,0.6,0.7,0.8,0.9 "
	         "--workload-sweep h_sigma=0.75,1.5,3 "
	         "--db %s --traces-dir %s/traces",
	         build, db, src);
	cr_assert_eq(run_cmd(cmd), 0, "%s", cmd);
	snprintf(cmd, sizeof cmd,
	         "%s/tools/ahasd-replay -q --db %s "
	         "-p sync -p async -p ahasd -d fixed -d specdecpp -d svip "
	         "-d adaedl -d banditspec -w npu-pim -w npu-lpddr5 -w gpu "
	         "-w gpu-pim %s/%s >/dev/null",
	         build, db, src, NATIVE_TRACE);
	cr_assert_eq(run_cmd(cmd), 0, "%s", cmd);

	struct buf now = { 0 };
	buf_add(&now,
	        "# golden digest of every stored result (tests/test_golden.c)\n"
	        "# key (label | trace | models | preset | policy | drafter) | "
	        "tokens/s tokens/J | sha256 of metrics, devices, sequences, "
	        "intervals\n");
	digest_db(db, &now);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	run_cmd(cmd);

	snprintf(path, sizeof path, "%s/%s", src, DIGEST_REL);
	const char *upd = getenv("AHASD_UPDATE_GOLDEN");
	if (upd && *upd && strcmp(upd, "0") != 0) {
		FILE *f = fopen(path, "w");
		cr_assert_not_null(f, "%s: %s", path, strerror(errno));
		cr_assert_eq(fwrite(now.p, 1, now.n, f), now.n);
		cr_assert_eq(fclose(f), 0);
		fprintf(stderr, "golden digest rewritten: %s\n", path);
		free(now.p);
		return;
	}
	char *old = slurp(path);
	cr_assert_not_null(old,
	                   "%s missing; create it with "
	                   "AHASD_UPDATE_GOLDEN=1",
	                   path);
	char **ol, **nl;
	size_t no = split_lines(old, &ol), nn = split_lines(now.p, &nl);
	/* both sorted by key: merge */
	size_t i = 0, j = 0, moved = 0, added = 0, removed = 0, shown = 0;
	while (i < no || j < nn) {
		int c;
		if (i == no)
			c = 1;
		else if (j == nn)
			c = -1;
		else {
			size_t ka = key_len(ol[i]), kb = key_len(nl[j]);
			c = strncmp(ol[i], nl[j], ka < kb ? ka : kb);
			if (!c)
				c = (ka > kb) - (ka < kb);
		}
		if (c < 0) {
			removed++;
			if (shown++ < 40)
				cr_log_error("removed: %s", ol[i]);
			i++;
		} else if (c > 0) {
			added++;
			if (shown++ < 40)
				cr_log_error("added:   %s", nl[j]);
			j++;
		} else {
			if (strcmp(ol[i], nl[j]) != 0) {
				moved++;
				if (shown++ < 40)
					cr_log_error(
					        "moved:   %s\n   now:   %s",
					        ol[i], nl[j]);
			}
			i++, j++;
		}
	}
	cr_assert(
	        moved + added + removed == 0,
	        "golden digest: %zu of %zu runs moved, %zu added, %zu removed "
	        "(%s). If the change is intended, regenerate it with "
	        "AHASD_UPDATE_GOLDEN=1 meson test -C build golden and say why "
	        "in the commit message.",
	        moved, no, added, removed, path);
	free(ol);
	free(nl);
	free(old);
	free(now.p);
}
