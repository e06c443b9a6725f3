/* fixtures.c - temporary folders, files and child programs for the tests;
 * see fixtures.h. */
#include "fixtures.h"

#include <criterion/criterion.h>
#include <criterion/alloc.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

char fx_dir[256];
char fx_out[1 << 20], fx_err[1 << 16];
size_t fx_out_len;

/* ---- temporary folder ---- */

void fx_tmpdir_make(const char *tag)
{
	snprintf(fx_dir, sizeof fx_dir, "/tmp/ahasd-test-%s-XXXXXX", tag);
	cr_assert_not_null(mkdtemp(fx_dir), "mkdtemp %s: %s", fx_dir,
	                   strerror(errno));
}

/* Remove path and, for a folder, everything in it; folders are made
 * writable first (tests make read-only ones), links are not followed. */
static void remove_tree(const char *path)
{
	struct stat st;

	if (lstat(path, &st) != 0)
		return;
	if (S_ISDIR(st.st_mode)) {
		DIR *d;
		struct dirent *e;

		chmod(path, 0700);
		d = opendir(path);
		while (d && (e = readdir(d))) {
			char p[1024];

			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			snprintf(p, sizeof p, "%s/%s", path, e->d_name);
			remove_tree(p);
		}
		if (d)
			closedir(d);
		rmdir(path);
	} else {
		unlink(path);
	}
}

void fx_tmpdir_remove(void)
{
	if (fx_dir[0])
		remove_tree(fx_dir);
	fx_dir[0] = '\0';
}

const char *fx_path(const char *name)
{
	static char bufs[8][1024];
	static unsigned i;
	char *b = bufs[i++ % 8];

	cr_assert(fx_dir[0], "fx_path(%s) outside a test folder", name);
	snprintf(b, 1024, "%s/%s", fx_dir, name);
	return b;
}

/* ---- parameterised tests ---- */

void *fx_params_dup(const void *p, size_t size)
{
	void *q = cr_malloc(size);

	cr_assert_not_null(q);
	memcpy(q, p, size);
	return q;
}

void fx_params_free(struct criterion_test_params *crp)
{
	cr_free(crp->params);
}

/* ---- files ---- */

size_t fx_read_text(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "rb");
	size_t n;

	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	n = fread(buf, 1, cap - 1, f);
	buf[n] = '\0';
	fclose(f);
	return n;
}

unsigned char *fx_slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf;
	long len;

	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	cr_assert_eq(fseek(f, 0, SEEK_END), 0);
	len = ftell(f);
	cr_assert_geq(len, 0);
	rewind(f);
	buf = malloc((size_t)len + 1);
	cr_assert_not_null(buf);
	cr_assert_eq(fread(buf, 1, (size_t)len, f), (size_t)len);
	buf[len] = '\0';
	fclose(f);
	*n = (size_t)len;
	return buf;
}

void fx_write_file(const char *path, const void *data, size_t n)
{
	FILE *f = fopen(path, "wb");

	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	cr_assert_eq(fwrite(data, 1, n, f), n);
	cr_assert_eq(fclose(f), 0);
}

void fx_write_text(const char *path, const char *text)
{
	fx_write_file(path, text, strlen(text));
}

/* ---- running programs ---- */

/* (buffers of their own: a program's path must not overwrite the
 * fx_path() results among its arguments) */
static const char *under(const char *var, const char *rel)
{
	static char bufs[8][1024];
	static unsigned i;
	const char *root = getenv(var);
	char *b = bufs[i++ % 8];

	cr_assert_not_null(root, "%s not set (run through meson test)", var);
	snprintf(b, 1024, "%s/%s", root, rel);
	return b;
}

const char *fx_build_path(const char *rel)
{
	return under("AHASD_BUILD_ROOT", rel);
}

const char *fx_source_path(const char *rel)
{
	return under("AHASD_SOURCE_ROOT", rel);
}

static void child(const char *bin, const char *const *argv,
                  const struct fx_run_opts *o, const char *opath,
                  const char *epath)
{
	int out = open(opath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	int err = open(epath, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (out < 0 || err < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
		_exit(127);
	if (o->in_dir && chdir(fx_dir) < 0)
		_exit(127);
	for (const char *const *e = o->env; e && *e; e++) {
		char kv[2048];
		char *eq;

		snprintf(kv, sizeof kv, "%s", *e);
		eq = strchr(kv, '=');
		if (eq) {
			*eq = '\0';
			setenv(kv, eq + 1, 1);
		} else {
			unsetenv(kv);
		}
	}
	execvp(bin, (char *const *)argv);
	_exit(127);
}

int fx_run(const char *bin, const char *const *args,
           const struct fx_run_opts *opts)
{
	static const struct fx_run_opts none;
	const struct fx_run_opts *o = opts ? opts : &none;
	const int timeout = o->timeout_s > 0 ? o->timeout_s : 60;
	char opath[600], epath[600];
	const char *argv[64];
	int n = 0, status = 0;
	pid_t pid;

	cr_assert(fx_dir[0], "fx_run(%s) outside a test folder", bin);
	/* outside the folder, so that listing it sees only what the
	 * program made */
	snprintf(opath, sizeof opath, "%s.stdout", fx_dir);
	snprintf(epath, sizeof epath, "%s.stderr", fx_dir);
	argv[n++] = bin;
	while (args && *args && n < 63)
		argv[n++] = *args++;
	argv[n] = NULL;
	fflush(NULL);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0)
		child(bin, argv, o, opath, epath);
	for (long waited_ms = 0;; waited_ms += 10) {
		pid_t w = waitpid(pid, &status, WNOHANG);

		cr_assert_geq(w, 0);
		if (w == pid)
			break;
		if (waited_ms >= timeout * 1000L) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			unlink(opath);
			unlink(epath);
			cr_assert_fail("%s did not exit within %d s (hangs, or "
			               "is blocked on a node?)",
			               bin, timeout);
		}
		nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
	}
	cr_assert(WIFEXITED(status), "%s did not exit normally (signal %d)",
	          bin, WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	fx_out_len = fx_read_text(opath, fx_out, sizeof fx_out);
	fx_read_text(epath, fx_err, sizeof fx_err);
	unlink(opath);
	unlink(epath);
	return WEXITSTATUS(status);
}
