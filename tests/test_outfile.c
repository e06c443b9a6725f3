/* test_outfile.c - every writer of a user-named file (ahasd-trace synth -o,
 * ahasd-capture import -o, ahasd-view -o) treats the path the same way:
 *
 *   regular file or new name  replaced atomically (temporary file beside
 *                             it, then rename)
 *   symlink                   followed: its final target is replaced
 *                             atomically, the link itself stays a link
 *   FIFO, socket, directory   refused with a message naming what it is;
 *                             the node is left as it was
 *   "-"                       standard output
 *
 * The binaries run as child processes on nodes made in a private temporary
 * folder (no test touches anything under /dev). A child that has not
 * exited after 30 s is killed and the test fails: opening a FIFO for
 * writing blocks when nobody reads it, which is the hang these checks
 * catch. */
#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fixtures.h"

static void setup(void)
{
	fx_tmpdir_make("outfile");
}

/* Run build-tree binary rel (e.g. "tools/ahasd-trace") with args; stdout
 * and stderr land in fx_out/fx_err. Killed after 30 s (a failure).
 * @return the exit status. */
static int run(const char *rel, const char *const *args)
{
	return fx_run(fx_build_path(rel), args,
	              &(struct fx_run_opts){ .timeout_s = 30 });
}

#define RUN(rel, ...) run(rel, (const char *const[]){ __VA_ARGS__, NULL })

/* ------------------------------------------------------------------------ */
/* the three writers, each as "write to PATH" */

typedef int (*writer_fn)(const char *path);

static int synth_to(const char *path)
{
	return RUN("tools/ahasd-trace", "synth", "--sequences", "2", "--tokens",
	           "8", "--draft-model", "tiny", "--target-model", "tiny", "-o",
	           path);
}

static const char *import_input(void)
{
	static char in[512];
	FILE *f;

	snprintf(in, sizeof in, "%s", fx_path("in.jsonl"));
	f = fopen(in, "w");
	cr_assert_not_null(f);
	fputs("{\"version\": 1, \"lookahead\": 1, \"sampled\": false, "
	      "\"models\": {\"draft\": {\"name\": \"d\", \"dim\": 32, "
	      "\"hidden_dim\": 64, \"n_layers\": 1, \"n_heads\": 4, "
	      "\"n_kv_heads\": 4, \"vocab_size\": 64, \"seq_len\": 64, "
	      "\"weight_bits\": 8, \"ops\": \"llama\"}, \"target\": {\"name\": "
	      "\"t\", \"dim\": 32, \"hidden_dim\": 64, \"n_layers\": 2, "
	      "\"n_heads\": 4, \"n_kv_heads\": 4, \"vocab_size\": 64, "
	      "\"seq_len\": 64, \"weight_bits\": 8, \"ops\": \"llama\"}}}\n"
	      "{\"prompt_len\": 2, \"entropy\": [0.5, 1], \"top1\": [0.9, "
	      "0.5], "
	      "\"accept\": [1, 0], \"cont\": [[1, [2]]]}\n",
	      f);
	fclose(f);
	return in;
}

static int import_to(const char *path)
{
	return RUN("capture/ahasd-capture", "import", import_input(), "-o",
	           path);
}

/* A results database with one run, made once per test. */
static const char *results_db(void)
{
	static char db[512];
	const char *trace = fx_path("for-view.msgpack");

	snprintf(db, sizeof db, "%s", fx_path("results.db"));
	if (access(db, F_OK) == 0)
		return db;
	cr_assert_eq(synth_to(trace), 0, "%s", fx_err);
	cr_assert_eq(RUN("tools/ahasd-replay", "-q", "--db", db, "-p", "sync",
	                 trace),
	             0, "%s", fx_err);
	return db;
}

static int view_to(const char *path)
{
	const char *db = results_db();

	return RUN("viewer/ahasd-view", db, "-o", path);
}

static const struct {
	const char *name;
	writer_fn write;
	const char *magic; /* how the output starts */
} writers[] = {
	{ "ahasd-trace synth", synth_to, "\x8b\xa4type" },
	{ "ahasd-capture import", import_to, "\x8b\xa4type" },
	{ "ahasd-view", view_to, "<!DOCTYPE html>" },
};
#define N_WRITERS (sizeof writers / sizeof writers[0])

static bool starts_with_file(const char *path, const char *magic)
{
	char buf[64];
	const size_t n = strlen(magic);
	FILE *f = fopen(path, "rb");
	size_t got;

	if (!f)
		return false;
	got = fread(buf, 1, n, f);
	fclose(f);
	return got == n && memcmp(buf, magic, n) == 0;
}

/* Names in dir other than the expected ones (temporary files left). */
static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	cr_assert_not_null(d);
	while ((e = readdir(d)))
		n += e->d_name[0] != '.' || (strcmp(e->d_name, ".") != 0 &&
		                             strcmp(e->d_name, "..") != 0);
	closedir(d);
	return n;
}

TestSuite(outfile, .init = setup, .fini = fx_tmpdir_remove, .timeout = 240);

Test(outfile, regular_file_replaced_in_place)
{
	for (size_t i = 0; i < N_WRITERS; i++) {
		const char *p = fx_path("out.file");
		struct stat st;
		FILE *f = fopen(p, "w");

		fputs("old contents", f);
		fclose(f);
		cr_assert_eq(writers[i].write(p), 0, "%s: %s", writers[i].name,
		             fx_err);
		cr_assert(lstat(p, &st) == 0 && S_ISREG(st.st_mode));
		cr_assert(starts_with_file(p, writers[i].magic), "%s",
		          writers[i].name);
		unlink(p);
	}
}

Test(outfile, symlink_followed_link_kept)
{
	char sub[512], real[600], link_path[600], target[600];

	snprintf(sub, sizeof sub, "%s", fx_path("sub"));
	cr_assert_eq(mkdir(sub, 0755), 0);
	snprintf(real, sizeof real, "%s/real.out", sub);
	snprintf(link_path, sizeof link_path, "%s", fx_path("link.out"));
	/* relative link, resolved against the link's folder */
	cr_assert_eq(symlink("sub/real.out", link_path), 0);
	for (size_t i = 0; i < N_WRITERS; i++) {
		struct stat st;
		ssize_t n;
		FILE *f = fopen(real, "w");

		fputs("old", f);
		fclose(f);
		cr_assert_eq(writers[i].write(link_path), 0, "%s: %s",
		             writers[i].name, fx_err);
		cr_assert(lstat(link_path, &st) == 0 && S_ISLNK(st.st_mode),
		          "%s replaced the symlink", writers[i].name);
		n = readlink(link_path, target, sizeof target - 1);
		cr_assert_gt(n, 0);
		target[n] = '\0';
		cr_assert_str_eq(target, "sub/real.out");
		cr_assert(lstat(real, &st) == 0 && S_ISREG(st.st_mode));
		cr_assert(starts_with_file(real, writers[i].magic),
		          "%s did not write the link's target",
		          writers[i].name);
		/* nothing left beside the link or the target */
		cr_assert_eq(count_entries(sub), 1, "%s left a file in sub/",
		             writers[i].name);
	}
}

Test(outfile, dangling_symlink_and_chain)
{
	const char *a = fx_path("a.out"), *b = fx_path("b.out");
	const char *real = fx_path("new.out");
	struct stat st;

	/* a -> b -> new.out (which does not exist yet) */
	cr_assert_eq(symlink("new.out", b), 0);
	cr_assert_eq(symlink(b, a), 0);
	cr_assert_eq(synth_to(a), 0, "%s", fx_err);
	cr_assert(lstat(a, &st) == 0 && S_ISLNK(st.st_mode));
	cr_assert(lstat(b, &st) == 0 && S_ISLNK(st.st_mode));
	cr_assert(lstat(real, &st) == 0 && S_ISREG(st.st_mode));
	cr_assert(starts_with_file(real, writers[0].magic));
}

Test(outfile, fifo_refused_and_kept)
{
	const char *p = fx_path("out.fifo");

	cr_assert_eq(mkfifo(p, 0644), 0);
	for (size_t i = 0; i < N_WRITERS; i++) {
		struct stat st;
		const int rc = writers[i].write(p);

		cr_assert_neq(rc, 0, "%s accepted a FIFO", writers[i].name);
		cr_assert(strstr(fx_err, p) && strstr(fx_err, "FIFO"), "%s: %s",
		          writers[i].name, fx_err);
		cr_assert(lstat(p, &st) == 0 && S_ISFIFO(st.st_mode),
		          "%s replaced the FIFO", writers[i].name);
	}
	/* a symlink to a FIFO is refused the same way */
	cr_assert_eq(symlink("out.fifo", fx_path("to-fifo")), 0);
	cr_assert_neq(synth_to(fx_path("to-fifo")), 0);
	cr_assert(strstr(fx_err, "FIFO"), "%s", fx_err);
}

Test(outfile, socket_and_directory_refused)
{
	const char *sock = fx_path("out.sock"), *dir = fx_path("adir");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	cr_assert_geq(fd, 0);
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	cr_assert_eq(mkdir(dir, 0755), 0);
	for (size_t i = 0; i < N_WRITERS; i++) {
		cr_assert_neq(writers[i].write(sock), 0, "%s", writers[i].name);
		cr_assert(strstr(fx_err, "socket"), "%s: %s", writers[i].name,
		          fx_err);
		cr_assert(lstat(sock, &st) == 0 && S_ISSOCK(st.st_mode));
		cr_assert_neq(writers[i].write(dir), 0, "%s", writers[i].name);
		cr_assert(strstr(fx_err, "directory"), "%s: %s",
		          writers[i].name, fx_err);
		cr_assert(lstat(dir, &st) == 0 && S_ISDIR(st.st_mode));
	}
	close(fd);
}

Test(outfile, dash_is_stdout)
{
	/* the trace writers stamp the time into the header: fix it, or two
	 * writes a second apart differ (a flaky comparison) */
	setenv("SOURCE_DATE_EPOCH", "1700000000", 1);
	for (size_t i = 0; i < N_WRITERS; i++) {
		const char *p = fx_path("ref.out");
		static char ref[1 << 20];
		size_t n;

		cr_assert_eq(writers[i].write(p), 0, "%s: %s", writers[i].name,
		             fx_err);
		n = fx_read_text(p, ref, sizeof ref);
		cr_assert_eq(writers[i].write("-"), 0, "%s: %s",
		             writers[i].name, fx_err);
		cr_assert(access(fx_path("-"), F_OK) != 0,
		          "%s wrote a file named '-'", writers[i].name);
		cr_assert_eq(strncmp(fx_out, writers[i].magic,
		                     strlen(writers[i].magic)),
		             0, "%s", writers[i].name);
		if (i < 2) { /* traces are byte-identical */
			cr_assert_eq(fx_out_len, n,
			             "%s: %zu bytes on stdout, %zu "
			             "in the file",
			             writers[i].name, fx_out_len, n);
			cr_assert_eq(memcmp(fx_out, ref, n), 0, "%s",
			             writers[i].name);
		}
		unlink(p);
	}
}

/* ------------------------------------------------------------------------ */
/* the module itself (replay/outfile.h) */

#include "outfile.h"

Test(outfile, abort_keeps_the_old_file_and_commit_keeps_its_mode)
{
	const char *p = fx_path("kept.txt");
	struct outfile *o = NULL;
	char err[512], buf[64];
	struct stat st;
	FILE *f = fopen(p, "w");

	fputs("old", f);
	fclose(f);
	cr_assert_eq(chmod(p, 0640), 0);
	cr_assert_eq(outfile_open(&o, p, err, sizeof err), 0, "%s", err);
	fputs("new", outfile_stream(o));
	outfile_abort(&o);
	cr_assert_null(o);
	outfile_abort(&o); /* accepts NULL */
	fx_read_text(p, buf, sizeof buf);
	cr_assert_str_eq(buf, "old");
	cr_assert_eq(count_entries(fx_dir), 1, "the temporary file was left");

	cr_assert_eq(outfile_open(&o, p, err, sizeof err), 0, "%s", err);
	cr_assert(!outfile_is_stdout(o));
	cr_assert_str_eq(outfile_path(o), p);
	fputs("new", outfile_stream(o));
	cr_assert_eq(outfile_commit(&o, err, sizeof err), 0, "%s", err);
	cr_assert_null(o);
	fx_read_text(p, buf, sizeof buf);
	cr_assert_str_eq(buf, "new");
	cr_assert(stat(p, &st) == 0 && (st.st_mode & 07777) == 0640, "mode %o",
	          st.st_mode & 07777);
	cr_assert_eq(count_entries(fx_dir), 1);
}

Test(outfile, refused_nodes_and_missing_folder)
{
	const char *fifo = fx_path("n.fifo");
	struct outfile *o = NULL;
	char err[512], missing[600];

	cr_assert_eq(mkfifo(fifo, 0600), 0);
	cr_assert_eq(outfile_open(&o, fifo, err, sizeof err), -EINVAL);
	cr_assert_null(o);
	cr_assert(strstr(err, fifo) && strstr(err, "is a FIFO"), "%s", err);
	cr_assert_eq(outfile_open(&o, fx_dir, err, sizeof err), -EINVAL);
	cr_assert(strstr(err, "is a directory"), "%s", err);
	snprintf(missing, sizeof missing, "%s/no/such/file", fx_dir);
	cr_assert_eq(outfile_open(&o, missing, err, sizeof err), -ENOENT);
	cr_assert(strstr(err, missing), "%s", err);
	/* a symlink loop */
	cr_assert_eq(symlink("loop2", fx_path("loop1")), 0);
	cr_assert_eq(symlink("loop1", fx_path("loop2")), 0);
	cr_assert_eq(outfile_open(&o, fx_path("loop1"), err, sizeof err),
	             -ELOOP);
	cr_assert_eq(count_entries(fx_dir), 3); /* fifo, loop1, loop2 */
}
