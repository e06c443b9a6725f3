/* test_db_conc.c - the results database under concurrent processes (issue
 * 15, item 2): real processes (tests/db_stress_writer.c, linked with db/)
 * on a real SQLite file in a temporary directory, read back with the plain
 * sqlite3 API. No mocks.
 *
 * AHASD_DB_STRESS_ROUNDS=N runs N rounds of the kill -9 stress test (and
 * 15 x N fresh-database trials); the default is 3. */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "db.h"
#include "db_stress.h"

#define WRITERS 8

static char tmpdir[256];
static char writer_path[512];
static char err[512];

static int rm_entry(const char *p, const struct stat *st, int flag,
                    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static void setup(void)
{
	const char *root = getenv("AHASD_BUILD_ROOT");

	strcpy(tmpdir, "/tmp/ahasd-test-dbconc-XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
	cr_assert_not_null(root, "AHASD_BUILD_ROOT not set");
	snprintf(writer_path, sizeof writer_path, "%s/tests/db-stress-writer",
	         root);
	cr_assert_eq(access(writer_path, X_OK), 0, "%s", writer_path);
	unsetenv("AHASD_DB_BUSY_MS");
	err[0] = '\0';
}

static void teardown(void)
{
	if (tmpdir[0])
		nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(db_conc, .init = setup, .fini = teardown, .timeout = 120);

static unsigned rounds(void)
{
	const char *s = getenv("AHASD_DB_STRESS_ROUNDS");
	char *end = NULL;
	unsigned long v;

	if (!s || !*s)
		return 3;
	v = strtoul(s, &end, 10);
	cr_assert(*end == '\0' && v >= 1 && v <= 10000,
	          "AHASD_DB_STRESS_ROUNDS=%s", s);
	return (unsigned)v;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Start the writer with argv; its standard input is start_fd (the read end
 * of the start pipe), its standard output a new pipe whose read end goes to
 * *out_fd (or /dev/null when out_fd is NULL). */
static pid_t spawn(char *const argv[], int start_fd, int *out_fd)
{
	int out[2] = { -1, -1 };
	pid_t pid;

	if (out_fd)
		cr_assert_eq(pipe2(out, O_CLOEXEC), 0);
	pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		const int o = out_fd ? out[1] : open("/dev/null", O_WRONLY);

		if (dup2(start_fd, STDIN_FILENO) < 0 ||
		    dup2(o, STDOUT_FILENO) < 0)
			_exit(126);
		execv(argv[0], argv);
		_exit(127);
	}
	if (out_fd) {
		close(out[1]);
		*out_fd = out[0];
	}
	return pid;
}

/* Issue 15, defect 2: eight processes open one new file at the same moment.
 * Each must find either no schema (and make it) or a whole one: the header
 * check used to read application_id, user_version and the table list in
 * three separate queries, outside the migration's transaction, and a
 * process that read between another's commit called the file "not an
 * ahasd-replay database (application_id 0, user_version 1, 8 schema
 * objects)". */
Test(db_conc, fresh_database_concurrent_opens, .timeout = 3600)
{
	const unsigned trials = 15 * rounds();
	unsigned failed = 0;

	for (unsigned t = 0; t < trials; t++) {
		char db[512];
		char *argv[] = { writer_path, "--open", db, NULL };
		pid_t pid[WRITERS];
		int start[2];
		sqlite3 *h = NULL;
		sqlite3_stmt *s = NULL;

		snprintf(db, sizeof db, "%s/fresh-%u.db", tmpdir, t);
		cr_assert_eq(pipe2(start, O_CLOEXEC), 0);
		for (int k = 0; k < WRITERS; k++)
			pid[k] = spawn(argv, start[0], NULL);
		close(start[0]);
		close(start[1]); /* all go */
		for (int k = 0; k < WRITERS; k++) {
			int st;

			cr_assert_eq(waitpid(pid[k], &st, 0), pid[k]);
			if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
				failed++;
		}
		/* and the schema is whole, made once (read-write: a WAL
		 * that no closing writer could checkpoint is left for the
		 * next opener, which a read-only handle may not be) */
		cr_assert_eq(
		        sqlite3_open_v2(db, &h, SQLITE_OPEN_READWRITE, NULL),
		        SQLITE_OK);
		sqlite3_busy_timeout(h, 5000);
		cr_assert_eq(sqlite3_prepare_v2(h, "PRAGMA user_version", -1,
		                                &s, NULL),
		             SQLITE_OK);
		cr_assert_eq(sqlite3_step(s), SQLITE_ROW, "%s: %s", db,
		             sqlite3_errmsg(h));
		cr_assert_eq(sqlite3_column_int(s, 0), DB_SCHEMA_VERSION);
		sqlite3_finalize(s);
		sqlite3_close(h);
	}
	cr_assert_eq(failed, 0,
	             "%u of %u processes could not open a fresh database "
	             "opened by %d at once (%u trials; messages above)",
	             failed, trials * WRITERS, WRITERS, trials);
}

static struct db_run_info info(const char *label)
{
	struct db_run_info in = {
		.tool_version = "t",
		.label = label,
		.policy = "p",
		.policy_version = "1",
		.policy_params = "",
		.policy_path = "p.so",
		.drafter = "d",
		.drafter_version = "1",
		.drafter_params = "",
		.drafter_path = "d.so",
		.hw_preset = "hw",
		.hw_config = "",
		.trace_path = "t.msgpack",
		.trace_sha256 = "00",
		.draft_model = "dm",
		.target_model = "tm",
		.device_names = { "npu", "pim" },
		.n_dev = 2,
	};
	return in;
}

/* Issue 15, defect 3, without timing: while one connection has a run open
 * (begun, with sequences and events, not committed), another writes a
 * whole run of its own at once, with a busy timeout of 0. A run used to
 * hold the write lock from db_run_begin to db_run_commit, for the whole
 * replay. */
Test(db_conc, open_run_holds_no_lock)
{
	char p[512];
	const struct db_run_info a_in = info("a"), b_in = info("b");
	const struct replay_metrics m = { .sequences = 1, .committed = 1 };
	struct db *a = NULL, *b = NULL;
	int64_t a_id = 0, b_id = 0;
	sqlite3 *h = NULL;
	char *msg = NULL;
	int rc;

	snprintf(p, sizeof p, "%s/lock.db", tmpdir);
	cr_assert_eq(db_open(&a, p, err, sizeof err), 0, "%s", err);
	cr_assert_eq(db_run_begin(a, &a_in, &a_id, err, sizeof err), 0, "%s",
	             err);
	for (unsigned s = 0; s < 3; s++) {
		const struct replay_seq_result q = stress_seq(0, 0, s);
		const struct replay_event ev = stress_event(0, 0, s, 0);

		cr_assert_eq(db_run_sequence(a, a_id, &q, err, sizeof err), 0,
		             "%s", err);
		cr_assert_eq(db_run_event(a, a_id, &ev, err, sizeof err), 1,
		             "%s", err);
	}

	/* a plain connection writes without waiting */
	cr_assert_eq(sqlite3_open_v2(p, &h, SQLITE_OPEN_READWRITE, NULL),
	             SQLITE_OK);
	sqlite3_busy_timeout(h, 0);
	rc = sqlite3_exec(h, "BEGIN IMMEDIATE; COMMIT", NULL, NULL, &msg);
	cr_assert_eq(rc, SQLITE_OK,
	             "another connection cannot write while a run is open: %s",
	             msg ? msg : "");
	sqlite3_close(h);

	/* and so does a second handle of db.h, a whole run */
	cr_assert_eq(setenv("AHASD_DB_BUSY_MS", "0", 1), 0);
	cr_assert_eq(db_open(&b, p, err, sizeof err), 0, "%s", err);
	cr_assert_eq(db_run_begin(b, &b_in, &b_id, err, sizeof err), 0,
	             "a second writer cannot begin while a run is open: %s",
	             err);
	cr_assert_eq(db_run_sequence(b, b_id,
	                             &(struct replay_seq_result){
	                                     .seq = 0, .committed = 1 },
	                             err, sizeof err),
	             0, "%s", err);
	cr_assert_eq(
	        db_run_commit(b, b_id, &m, 0, NULL, NULL, 0, err, sizeof err),
	        0, "%s", err);
	db_close(&b);
	cr_assert_neq(a_id, b_id);

	cr_assert_eq(
	        db_run_commit(a, a_id, &m, 0, NULL, NULL, 0, err, sizeof err),
	        0, "%s", err);
	db_close(&a);

	cr_assert_eq(sqlite3_open_v2(p, &h, SQLITE_OPEN_READWRITE, NULL),
	             SQLITE_OK);
	{
		sqlite3_stmt *s = NULL;

		cr_assert_eq(sqlite3_prepare_v2(
		                     h,
		                     "SELECT (SELECT count(*) FROM runs), "
		                     "(SELECT count(*) FROM sequences WHERE "
		                     "run_id = ?1), "
		                     "(SELECT count(*) FROM events WHERE "
		                     "run_id = ?1), "
		                     "(SELECT count(*) FROM sequences WHERE "
		                     "run_id = ?2)",
		                     -1, &s, NULL),
		             SQLITE_OK);
		sqlite3_bind_int64(s, 1, a_id);
		sqlite3_bind_int64(s, 2, b_id);
		cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
		cr_assert_eq(sqlite3_column_int(s, 0), 2);
		cr_assert_eq(sqlite3_column_int(s, 1), 3);
		cr_assert_eq(sqlite3_column_int(s, 2), 3);
		cr_assert_eq(sqlite3_column_int(s, 3), 1);
		sqlite3_finalize(s);
	}
	sqlite3_close(h);
}

/* --- the 8-writer stress test with kill -9 --- */

#define RUNS 5  /* per writer */
#define SEQS 10 /* per run */
#define SEQ_MS \
	40        /* "replay" time per sequence: 0.4 s a run, 2 s a
                      * writer */
#define EVENTS 20 /* per sequence */

struct writer {
	pid_t pid;
	int fd; /* its standard output, -1 at EOF */
	char buf[4096];
	size_t len;
	int status;
};

/* A finished run, as the writer said on its standard output. */
struct done {
	long long id;
	unsigned w, r;
};

static sqlite3_stmt *prep(sqlite3 *h, const char *sql)
{
	sqlite3_stmt *s = NULL;

	cr_assert_eq(sqlite3_prepare_v2(h, sql, -1, &s, NULL), SQLITE_OK,
	             "%s: %s", sql, sqlite3_errmsg(h));
	return s;
}

/* Run id is complete: its runs row, every sequence, event, metric and
 * device, each with the values the writer stored (db_stress.h). Returns
 * 0, or 1 with a message on stderr. */
static int check_run(sqlite3 *h, long long id, unsigned w, unsigned r,
                     int n_seq, int n_ev)
{
	char label[64], want[64];
	sqlite3_stmt *s;
	int bad = 0, n;

	stress_label(want, sizeof want, w, r);
	s = prep(h, "SELECT label, wall_s FROM runs WHERE id = ?1");
	sqlite3_bind_int64(s, 1, id);
	if (sqlite3_step(s) != SQLITE_ROW) {
		fprintf(stderr, "run %lld (%s): missing\n", id, want);
		sqlite3_finalize(s);
		return 1;
	}
	snprintf(label, sizeof label, "%s",
	         (const char *)sqlite3_column_text(s, 0));
	if (strcmp(label, want) || sqlite3_column_double(s, 1) != 0.001) {
		fprintf(stderr, "run %lld: label '%s', want '%s'\n", id, label,
		        want);
		bad = 1;
	}
	sqlite3_finalize(s);

	s = prep(h, "SELECT seq, prompt_len, committed, time_s, energy_j, "
	            "drafted, accepted, wasted, preverified, batches, "
	            "verifications FROM sequences WHERE run_id = ?1 "
	            "ORDER BY seq");
	sqlite3_bind_int64(s, 1, id);
	for (n = 0; sqlite3_step(s) == SQLITE_ROW; n++) {
		const struct replay_seq_result q = stress_seq(w, r,
		                                              (unsigned)n);

		if (sqlite3_column_int64(s, 0) != n ||
		    sqlite3_column_int64(s, 1) != q.prompt_len ||
		    sqlite3_column_int64(s, 2) != q.committed ||
		    sqlite3_column_double(s, 3) != q.time_s ||
		    sqlite3_column_double(s, 4) != q.energy_j ||
		    sqlite3_column_int64(s, 5) != (int64_t)q.drafted ||
		    sqlite3_column_int64(s, 6) != (int64_t)q.accepted ||
		    sqlite3_column_int64(s, 7) != (int64_t)q.wasted ||
		    sqlite3_column_int64(s, 8) != (int64_t)q.preverified ||
		    sqlite3_column_int64(s, 9) != (int64_t)q.batches ||
		    sqlite3_column_int64(s, 10) != (int64_t)q.verifications) {
			fprintf(stderr, "run %lld: sequence row %d differs\n",
			        id, n);
			bad = 1;
		}
	}
	sqlite3_finalize(s);
	if (n != n_seq) {
		fprintf(stderr, "run %lld: %d sequences, want %d\n", id, n,
		        n_seq);
		bad = 1;
	}

	s = prep(h, "SELECT idx, device, kind, start_s, end_s, tokens, seq, "
	            "batch, outcome FROM events WHERE run_id = ?1 "
	            "ORDER BY idx");
	sqlite3_bind_int64(s, 1, id);
	for (n = 0; sqlite3_step(s) == SQLITE_ROW; n++) {
		static const char *const kinds[] = { "draft",     "verify",
			                             "preverify", "switch",
			                             "transfer",  "idle",
			                             "offload" };
		static const char *const outcomes[] = { "none", "accepted",
			                                "rejected", "wasted" };
		const struct replay_event ev = stress_event(
		        w, r, (unsigned)(n / n_ev), (unsigned)(n % n_ev));

		if (sqlite3_column_int64(s, 0) != n ||
		    sqlite3_column_int(s, 1) != ev.device ||
		    strcmp((const char *)sqlite3_column_text(s, 2),
		           kinds[ev.kind]) ||
		    sqlite3_column_double(s, 3) != ev.start_s ||
		    sqlite3_column_double(s, 4) != ev.end_s ||
		    sqlite3_column_int64(s, 5) != ev.tokens ||
		    sqlite3_column_int64(s, 6) != ev.seq ||
		    sqlite3_column_int64(s, 7) != (int64_t)ev.batch ||
		    strcmp((const char *)sqlite3_column_text(s, 8),
		           outcomes[ev.outcome])) {
			fprintf(stderr, "run %lld: event %d differs\n", id, n);
			bad = 1;
			break;
		}
	}
	sqlite3_finalize(s);
	if (!bad && n != n_seq * n_ev) {
		fprintf(stderr, "run %lld: %d events, want %d\n", id, n,
		        n_seq * n_ev);
		bad = 1;
	}

	s = prep(h, "SELECT count(*), "
	            "sum(name = 'committed' AND value = ?2), "
	            "sum(name = 'stress.writer' AND value = ?3), "
	            "sum(name = 'stress.run' AND value = ?4), "
	            "(SELECT count(*) FROM devices WHERE run_id = ?1) "
	            "FROM metrics WHERE run_id = ?1");
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2,
	                   (int64_t)stress_committed(w, r, (unsigned)n_seq));
	sqlite3_bind_int(s, 3, (int)w);
	sqlite3_bind_int(s, 4, (int)r);
	cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
	if (sqlite3_column_int(s, 0) != STRESS_METRICS ||
	    sqlite3_column_int(s, 1) != 1 || sqlite3_column_int(s, 2) != 1 ||
	    sqlite3_column_int(s, 3) != 1 ||
	    sqlite3_column_int(s, 4) != STRESS_N_DEV) {
		fprintf(stderr,
		        "run %lld: %d metrics (want %d), committed/"
		        "writer/run matched %d/%d/%d, %d devices\n",
		        id, sqlite3_column_int(s, 0), STRESS_METRICS,
		        sqlite3_column_int(s, 1), sqlite3_column_int(s, 2),
		        sqlite3_column_int(s, 3), sqlite3_column_int(s, 4));
		bad = 1;
	}
	sqlite3_finalize(s);
	return bad;
}

/* No row of run id in any table. Returns 0, or 1 with a message. */
static int check_empty_run(sqlite3 *h, long long id)
{
	static const char *const tables[] = { "sequences", "events", "metrics",
		                              "devices" };
	int bad = 0;

	for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
		char sql[128];
		sqlite3_stmt *s;

		snprintf(sql, sizeof sql,
		         "SELECT count(*) FROM %s WHERE run_id = ?1",
		         tables[i]);
		s = prep(h, sql);
		sqlite3_bind_int64(s, 1, id);
		cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
		if (sqlite3_column_int(s, 0) != 0) {
			fprintf(stderr,
			        "run %lld: no runs row, but %d rows in "
			        "%s\n",
			        id, sqlite3_column_int(s, 0), tables[i]);
			bad = 1;
		}
		sqlite3_finalize(s);
	}
	return bad;
}

/* Read what the writers print until each has closed its output; kill the
 * victim with SIGKILL at kill_at seconds after t0. */
static void collect(struct writer *wr, double t0, int victim, double kill_at,
                    int *killed)
{
	const double deadline = t0 + 120.0;
	int open_fds = WRITERS;

	while (open_fds > 0) {
		struct pollfd pf[WRITERS];
		int idx[WRITERS], n = 0;

		if (!*killed && now_s() - t0 >= kill_at) {
			cr_assert_eq(kill(wr[victim].pid, SIGKILL), 0);
			*killed = 1;
		}
		cr_assert(now_s() < deadline, "writers still running after "
		                              "120 s");
		for (int k = 0; k < WRITERS; k++) {
			if (wr[k].fd < 0)
				continue;
			pf[n].fd = wr[k].fd;
			pf[n].events = POLLIN;
			idx[n++] = k;
		}
		if (poll(pf, (nfds_t)n, 5) < 0) {
			cr_assert_eq(errno, EINTR);
			continue;
		}
		for (int i = 0; i < n; i++) {
			struct writer *x = &wr[idx[i]];
			ssize_t got;

			if (!(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			got = read(x->fd, x->buf + x->len,
			           sizeof x->buf - 1 - x->len);
			if (got <= 0) {
				close(x->fd);
				x->fd = -1;
				open_fds--;
				continue;
			}
			x->len += (size_t)got;
			cr_assert_lt(x->len, sizeof x->buf - 1);
		}
	}
	if (!*killed) { /* every writer ended before the kill time */
		kill(wr[victim].pid, SIGKILL);
		*killed = 1;
	}
	for (int k = 0; k < WRITERS; k++)
		cr_assert_eq(waitpid(wr[k].pid, &wr[k].status, 0), wr[k].pid);
}

/* Parse "done ID W R" lines ("commit" lines say a commit began), whole
 * lines only (a killed writer may leave
 * half of one, which does not count as reported). */
static size_t parse_done(const struct writer *x, unsigned w, struct done *out,
                         size_t n)
{
	const char *p = x->buf, *end = x->buf + x->len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		struct done d;

		if (!nl)
			break;
		if (strncmp(p, "commit ", 7) == 0) {
			p = nl + 1;
			continue;
		}
		cr_assert_eq(sscanf(p, "done %lld %u %u", &d.id, &d.w, &d.r), 3,
		             "writer %u printed '%.*s'", w, (int)(nl - p), p);
		cr_assert_eq(d.w, w);
		out[n++] = d;
		p = nl + 1;
	}
	return n;
}

/* One round: a fresh file, eight writers started at the same moment, each
 * RUNS runs of 0.4 s of "replay"; writer `victim` is killed with SIGKILL
 * at kill_at s, in the middle of its runs. Busy timeout 3 s: far longer
 * than the commit of one of these runs (milliseconds), far shorter than
 * the queue a lock held for a whole replay builds (7 x 2 s). */
static void stress_round(unsigned round, int victim, double kill_at)
{
	char db[512], wbuf[16], rbuf[16], sbuf[16], mbuf[16], ebuf[16];
	struct writer wr[WRITERS];
	struct done done[WRITERS * RUNS];
	size_t n_done = 0;
	int start[2], killed = 0, bad = 0;
	sqlite3 *h = NULL;
	sqlite3_stmt *s;
	double t0;

	snprintf(db, sizeof db, "%s/stress-%u.db", tmpdir, round);
	snprintf(rbuf, sizeof rbuf, "%d", RUNS);
	snprintf(sbuf, sizeof sbuf, "%d", SEQS);
	snprintf(mbuf, sizeof mbuf, "%d", SEQ_MS);
	snprintf(ebuf, sizeof ebuf, "%d", EVENTS);
	cr_assert_eq(setenv("AHASD_DB_BUSY_MS", "3000", 1), 0);
	cr_assert_eq(pipe2(start, O_CLOEXEC), 0);
	for (int k = 0; k < WRITERS; k++) {
		char *argv[] = { writer_path, db,   wbuf, rbuf,
			         sbuf,        mbuf, ebuf, NULL };

		snprintf(wbuf, sizeof wbuf, "%d", k);
		memset(&wr[k], 0, sizeof wr[k]);
		wr[k].pid = spawn(argv, start[0], &wr[k].fd);
	}
	unsetenv("AHASD_DB_BUSY_MS");
	close(start[0]);
	t0 = now_s();
	close(start[1]); /* all go */
	collect(wr, t0, victim, kill_at, &killed);

	for (int k = 0; k < WRITERS; k++) {
		const size_t before = n_done;

		n_done = parse_done(&wr[k], (unsigned)k, done, n_done);
		if (k == victim) {
			if (!WIFSIGNALED(wr[k].status) ||
			    WTERMSIG(wr[k].status) != SIGKILL) {
				fprintf(stderr,
				        "round %u: writer %d ended before "
				        "its kill\n",
				        round, k);
				bad = 1;
			}
			continue;
		}
		if (!WIFEXITED(wr[k].status) || WEXITSTATUS(wr[k].status) ||
		    n_done - before != RUNS) {
			fprintf(stderr,
			        "round %u: writer %d: status 0x%x, %zu "
			        "of %d runs finished (its message above)\n",
			        round, k, (unsigned)wr[k].status,
			        n_done - before, RUNS);
			bad = 1;
		}
	}

	cr_assert_eq(sqlite3_open_v2(db, &h, SQLITE_OPEN_READWRITE, NULL),
	             SQLITE_OK, "%s", db);
	sqlite3_busy_timeout(h, 5000);
	s = prep(h, "PRAGMA integrity_check");
	cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
	if (strcmp((const char *)sqlite3_column_text(s, 0), "ok")) {
		fprintf(stderr, "round %u: integrity_check: %s\n", round,
		        sqlite3_column_text(s, 0));
		bad = 1;
	}
	sqlite3_finalize(s);
	s = prep(h, "PRAGMA foreign_key_check");
	if (sqlite3_step(s) == SQLITE_ROW) {
		fprintf(stderr,
		        "round %u: foreign_key_check: a row of %s has "
		        "no run\n",
		        round, sqlite3_column_text(s, 0));
		bad = 1;
	}
	sqlite3_finalize(s);

	/* every run that was reported finished is there, whole */
	for (size_t i = 0; i < n_done; i++)
		bad |= check_run(h, done[i].id, done[i].w, done[i].r, SEQS,
		                 EVENTS);
	/* and every run that is there is whole: the victim's open run is
	 * absent, or (killed between its COMMIT and its "done" line) whole */
	{
		size_t n_rows = 0, unreported = 0;

		s = prep(h, "SELECT id, label FROM runs ORDER BY id");
		while (sqlite3_step(s) == SQLITE_ROW) {
			const long long id = sqlite3_column_int64(s, 0);
			unsigned w, r;
			int seen = 0;

			n_rows++;
			if (sscanf((const char *)sqlite3_column_text(s, 1),
			           "stress w%u r%u", &w, &r) != 2 ||
			    w >= WRITERS || r >= RUNS) {
				fprintf(stderr, "run %lld: label '%s'\n", id,
				        sqlite3_column_text(s, 1));
				bad = 1;
				continue;
			}
			for (size_t i = 0; i < n_done; i++)
				seen |= done[i].id == id;
			if (!seen) {
				unreported++;
				if ((int)w != victim) {
					fprintf(stderr,
					        "run %lld: w%u r%u stored "
					        "but never reported\n",
					        id, w, r);
					bad = 1;
				}
				bad |= check_run(h, id, w, r, SEQS, EVENTS);
			}
		}
		sqlite3_finalize(s);
		if (unreported > 1) {
			fprintf(stderr,
			        "round %u: %zu runs stored unreported\n", round,
			        unreported);
			bad = 1;
		}
		fprintf(stderr,
		        "round %u: %zu runs finished and stored (%zu "
		        "rows), writer %d killed at %.2f s\n",
		        round, n_done, n_rows, victim, kill_at);
	}
	sqlite3_close(h);
	cr_assert_eq(bad, 0, "round %u: runs lost or incomplete (above)",
	             round);
}

/* Issue 15, defect 3 and the stress test of item 2: eight writer processes
 * on a fresh database, runs long enough to overlap, one writer killed with
 * kill -9 in the middle; then every finished run is present and complete
 * and PRAGMA integrity_check is ok. A run used to hold the write lock for
 * its whole replay, so writers queued behind one another for longer than
 * the busy timeout and lost their runs. */
Test(db_conc, eight_writers_kill9, .timeout = 3600)
{
	const unsigned n = rounds();

	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	for (unsigned i = 0; i < n; i++) {
		/* a writer's runs span about 0.0 .. 2.0 s: kill between 0.3
		 * and 1.5 s, at a random moment of some run */
		const double kill_at = 0.3 + 1.2 * (double)rand() / RAND_MAX;

		stress_round(i, (int)(i % WRITERS), kill_at);
	}
}

/* kill -9 aimed at a commit: one writer, runs of 20,000 events (a commit of
 * some 80 ms), killed 0 to 120 ms after it says its second run's commit
 * (run id 2) begins: mostly inside the commit, at times just after it
 * (the writer has 50 runs to do, so it is never done by then). The first
 * run is whole; the second is absent, or whole if the
 * commit made it; integrity_check is ok; and the next writer on the file
 * (which recovers the WAL) stores a run as usual. Two kills a round. */
Test(db_conc, kill9_during_commit)
{
	const unsigned n = 2 * rounds();
	unsigned stored = 0;

	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	for (unsigned i = 0; i < n; i++) {
		char db[512];
		char *argv[] = { writer_path, db,  "0",    "50",
			         "10",        "0", "2000", NULL };
		char *argv2[] = {
			writer_path, db, "1", "1", "1", "0", "1", NULL
		};
		const double delay = 0.12 * (double)rand() / RAND_MAX;
		struct writer x = { 0 };
		int start[2], st, bad = 0, second_stored;
		sqlite3 *h = NULL;
		sqlite3_stmt *s;
		double seen = 0;

		snprintf(db, sizeof db, "%s/commit-%u.db", tmpdir, i);
		cr_assert_eq(pipe2(start, O_CLOEXEC), 0);
		x.pid = spawn(argv, start[0], &x.fd);
		close(start[0]);
		close(start[1]);
		/* read until "commit 2 0 1", then kill after the delay */
		for (;;) {
			ssize_t got = read(x.fd, x.buf + x.len,
			                   sizeof x.buf - 1 - x.len);

			cr_assert_gt(got, 0,
			             "writer ended before its second "
			             "commit");
			x.len += (size_t)got;
			x.buf[x.len] = '\0';
			if (strstr(x.buf, "commit 2 0 1\n")) {
				seen = now_s();
				break;
			}
		}
		while (now_s() < seen + delay)
			;
		cr_assert_eq(kill(x.pid, SIGKILL), 0);
		cr_assert_eq(waitpid(x.pid, &st, 0), x.pid);
		cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
		          "the writer ended by itself, status 0x%x", st);
		close(x.fd);

		cr_assert_eq(
		        sqlite3_open_v2(db, &h, SQLITE_OPEN_READWRITE, NULL),
		        SQLITE_OK);
		s = prep(h, "PRAGMA integrity_check");
		cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
		cr_assert_str_eq((const char *)sqlite3_column_text(s, 0), "ok");
		sqlite3_finalize(s);
		bad |= check_run(h, 1, 0, 0, 10, 2000);
		s = prep(h, "SELECT count(*) FROM runs WHERE id = 2");
		cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
		second_stored = sqlite3_column_int(s, 0);
		sqlite3_finalize(s);
		if (second_stored)
			bad |= check_run(h, 2, 0, 1, 10, 2000);
		else
			bad |= check_empty_run(h, 2);
		stored += (unsigned)second_stored;
		sqlite3_close(h);
		cr_assert_eq(bad, 0,
		             "kill %u, %.0f ms into the commit: run 2 "
		             "incomplete (above)",
		             i, delay * 1e3);

		/* the next writer finds the file in order */
		cr_assert_eq(pipe2(start, O_CLOEXEC), 0);
		x.pid = spawn(argv2, start[0], NULL);
		close(start[0]);
		close(start[1]);
		cr_assert_eq(waitpid(x.pid, &st, 0), x.pid);
		cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		          "a writer after the kill failed");
	}
	fprintf(stderr,
	        "kill9_during_commit: %u kills, the run being "
	        "committed stored whole %u times, absent %u times\n",
	        n, stored, n - stored);
}
