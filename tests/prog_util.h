/* prog_util.h - running the built programs from a Criterion test and
 * reading the database they wrote (test_baseline.c, test_sweep.c,
 * test_intervals.c).
 *
 * The including file calls prog_setup() in its fixture's .init and
 * prog_teardown() in its .fini: a temporary directory per test, the
 * binaries of $AHASD_BUILD_ROOT. Programs run as child processes with
 * stdout and stderr captured in prog_out / prog_err.
 */
#ifndef AHASD_TEST_PROG_UTIL_H
#define AHASD_TEST_PROG_UTIL_H

#include <criterion/criterion.h>

#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

static char prog_dir[256];
static char prog_build[1024], prog_src[1024];
static char prog_out[1 << 17], prog_err[1 << 16];

static int prog_rm(const char *p, const struct stat *st, int flag,
                   struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static inline void prog_setup(void)
{
	const char *b = getenv("AHASD_BUILD_ROOT");
	const char *s = getenv("AHASD_SOURCE_ROOT");

	cr_assert(b && s, "AHASD_BUILD_ROOT and AHASD_SOURCE_ROOT must be set "
	                  "(run through meson test)");
	snprintf(prog_build, sizeof prog_build, "%s", b);
	snprintf(prog_src, sizeof prog_src, "%s", s);
	strcpy(prog_dir, "/tmp/ahasd-test-prog-XXXXXX");
	cr_assert_not_null(mkdtemp(prog_dir));
}

static inline void prog_teardown(void)
{
	if (prog_dir[0])
		nftw(prog_dir, prog_rm, 16, FTW_DEPTH | FTW_PHYS);
}

/* A path inside the temporary directory; eight live at once. */
static inline const char *prog_path(const char *name)
{
	static char bufs[8][512];
	static unsigned i;
	char *b = bufs[i++ % 8];

	snprintf(b, 512, "%s/%s", prog_dir, name);
	return b;
}

/* A file of the source tree. */
static inline const char *prog_src_path(const char *rel)
{
	static char bufs[4][1200];
	static unsigned i;
	char *b = bufs[i++ % 4];

	snprintf(b, 1200, "%s/%s", prog_src, rel);
	return b;
}

static inline void prog_read_text(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "rb");
	size_t n;

	cr_assert_not_null(f, "%s", path);
	n = fread(buf, 1, cap - 1, f);
	buf[n] = '\0';
	fclose(f);
}

/* Run $AHASD_BUILD_ROOT/REL (tools/ahasd-replay, ...), or a program on
 * PATH when REL has no '/' (python3), with args (NULL-terminated) in the
 * temporary directory. @return its exit status. */
static inline int prog_run(const char *rel, const char *const *args)
{
	char bin[1200], opath[600], epath[600];
	const char *argv[96];
	int n = 0, status;
	pid_t pid;

	if (strchr(rel, '/'))
		snprintf(bin, sizeof bin, "%s/%s", prog_build, rel);
	else
		snprintf(bin, sizeof bin, "%s", rel);
	snprintf(opath, sizeof opath, "%s/.stdout", prog_dir);
	snprintf(epath, sizeof epath, "%s/.stderr", prog_dir);
	argv[n++] = bin;
	while (args && *args && n < 95)
		argv[n++] = *args++;
	argv[n] = NULL;
	fflush(NULL);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int o = open(opath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int e = open(epath, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0 ||
		    chdir(prog_dir) < 0)
			_exit(127);
		execvp(bin, (char *const *)argv);
		_exit(127);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status), "%s did not exit normally (signal %d)",
	          bin, WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	prog_read_text(opath, prog_out, sizeof prog_out);
	prog_read_text(epath, prog_err, sizeof prog_err);
	return WEXITSTATUS(status);
}

#define PROG_ARGS(...) ((const char *const[]){ __VA_ARGS__, NULL })
#define REPLAY(...)    prog_run("tools/ahasd-replay", PROG_ARGS(__VA_ARGS__))

#define assert_err_has(s)                                                     \
	cr_assert_not_null(strstr(prog_err, (s)), "stderr lacks \"%s\":\n%s", \
	                   (s), prog_err)
#define assert_out_has(s)                                                     \
	cr_assert_not_null(strstr(prog_out, (s)), "stdout lacks \"%s\":\n%s", \
	                   (s), prog_out)

/* ---- the database, through the plain sqlite3 API ---- */

static inline sqlite3 *prog_db(const char *path)
{
	sqlite3 *h = NULL;

	cr_assert_eq(sqlite3_open_v2(path, &h, SQLITE_OPEN_READONLY, NULL),
	             SQLITE_OK, "open %s", path);
	return h;
}

static inline sqlite3_stmt *prog_prep(sqlite3 *h, const char *sql)
{
	sqlite3_stmt *s = NULL;

	cr_assert_eq(sqlite3_prepare_v2(h, sql, -1, &s, NULL), SQLITE_OK,
	             "%s: %s", sql, sqlite3_errmsg(h));
	return s;
}

/* First column of the first row of a printf-formatted query; NAN for
 * NULL. */
static inline double prog_q_dbl(const char *db, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
static inline double prog_q_dbl(const char *db, const char *fmt, ...)
{
	char sql[4096];
	va_list ap;
	sqlite3 *h = prog_db(db);
	sqlite3_stmt *s;
	double v;

	va_start(ap, fmt);
	vsnprintf(sql, sizeof sql, fmt, ap);
	va_end(ap);
	s = prog_prep(h, sql);
	cr_assert_eq(sqlite3_step(s), SQLITE_ROW, "no row: %s", sql);
	v = sqlite3_column_type(s, 0) == SQLITE_NULL
	            ? __builtin_nan("")
	            : sqlite3_column_double(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(h);
	return v;
}

static inline long long prog_q_int(const char *db, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
static inline long long prog_q_int(const char *db, const char *fmt, ...)
{
	char sql[4096];
	va_list ap;
	sqlite3 *h = prog_db(db);
	sqlite3_stmt *s;
	long long v;

	va_start(ap, fmt);
	vsnprintf(sql, sizeof sql, fmt, ap);
	va_end(ap);
	s = prog_prep(h, sql);
	cr_assert_eq(sqlite3_step(s), SQLITE_ROW, "no row: %s", sql);
	v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(h);
	return v;
}

#endif
