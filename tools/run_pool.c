/* run_pool.c - see run_pool.h.
 *
 * A worker is forked for jobs i .. n-1 and runs them one after the
 * other without waiting for the sweep: on a busy machine a round trip
 * per job costs scheduling delays, not CPU. It reports over a socket
 * pair (SOCK_SEQPACKET: one message per send, and no SIGPIPE with
 * MSG_NOSIGNAL when the sweep is gone): READY once (its database open),
 * then DONE with each job's index and return value. Each job's result
 * has a slot of its own in one shared anonymous mapping, made before the
 * worker is forked; the watch and the message of the job in progress sit
 * at its head. A job's time-out counts from the DONE of the job before
 * it (or from READY), as the sweep receives it. The worker stops after a
 * job that fails, dies with the sweep (PR_SET_PDEATHSIG) and leaves with
 * _exit(): the sweep's stdio buffers and atexit handlers are not its own.
 */
#include "run_pool.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "plugin.h"
#include "util.h"

#define ERR_MAX 2048

/* The mapping: this header, then one result slot per job from
 * OUT_OFFSET on, out_size bytes each (rounded up to 64). */
struct shared {
	struct run_watch watch;       /* of the job in progress */
	char err[ERR_MAX];            /* the message of a failed job */
};
#define ALIGN64(x) (((x) + 63) & ~(size_t)63)
#define OUT_OFFSET ALIGN64(sizeof(struct shared))

enum { MSG_READY = 1, MSG_NOSTART, MSG_DONE };

struct msg {
	int32_t kind, rc;
	uint64_t index;
};

struct worker {
	pid_t pid;
	int fd;
};

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void *out_of(const struct run_pool *p, struct shared *sh, size_t i)
{
	return (char *)sh + OUT_OFFSET + i * ALIGN64(p->out_size);
}

static int send_msg(int fd, const struct msg *m)
{
	for (;;) {
		ssize_t k = send(fd, m, sizeof *m, MSG_NOSIGNAL);
		if (k == (ssize_t)sizeof *m)
			return 0;
		if (k < 0 && errno == EINTR)
			continue;
		return k < 0 ? -errno : -EIO;
	}
}

/* The next message, waiting until deadline (monotonic seconds; 0: for
 * ever). @return 1, 0 when the other side is gone, -ETIMEDOUT, or
 * another negative errno. */
static int recv_msg(int fd, struct msg *m, double deadline)
{
	for (;;) {
		int ms = -1;
		if (deadline > 0) {
			const double left = deadline - now_s();
			if (left <= 0)
				return -ETIMEDOUT;
			ms = left * 1e3 + 1 < (double)INT_MAX
			             ? (int)(left * 1e3 + 1) : INT_MAX;
		}
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		int r = poll(&pf, 1, ms);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r <= 0)
			continue;
		ssize_t k = recv(fd, m, sizeof *m, 0);
		if (k < 0 && errno == EINTR)
			continue;
		if (k == 0 || (k < 0 && errno == ECONNRESET))
			return 0;
		if (k < 0)
			return -errno;
		return k == (ssize_t)sizeof *m ? 1 : -EPROTO;
	}
}

static double deadline_of(const struct run_pool *p)
{
	return p->timeout_s > 0 ? now_s() + p->timeout_s : 0;
}

/* In the worker, for good: jobs first .. n-1, one after the other, until
 * one fails. */
__attribute__((noreturn))
static void worker_main(const struct run_pool *p, int fd, struct shared *sh,
                        pid_t sweep, size_t first, size_t n)
{
#ifdef __linux__
	prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
	if (getppid() != sweep)
		_exit(1);  /* the sweep is gone already */
	struct db *db = NULL;
	struct msg m = { .kind = MSG_READY };
	if (p->db_path && db_open(&db, p->db_path, sh->err,
	                          sizeof sh->err) < 0)
		m.kind = MSG_NOSTART;
	if (send_msg(fd, &m) < 0 || m.kind != MSG_READY)
		_exit(1);
	for (size_t i = first; i < n; i++) {
		struct run_watch *w = &sh->watch;
		w->where = 0;
		w->run_id = -1;
		w->policy[0] = w->drafter[0] = '\0';
		sh->err[0] = '\0';
		struct run_job job = {
			.index = i,
			.db = db,
			.watch = w,
			.out = out_of(p, sh, i),
			.err = sh->err,
			.errlen = sizeof sh->err,
		};
		memset(job.out, 0, p->out_size);
		m = (struct msg){ .kind = MSG_DONE, .index = i };
		m.rc = p->run(p->ctx, &job);
		if (send_msg(fd, &m) < 0 || m.rc != 0)
			break;   /* the sweep is gone, or replaces this worker */
	}
	db_close(&db);
	_exit(0);
}

/* End the worker: close its socket (it leaves on its own), or kill it
 * first; reap it. @return its wait status. */
static int worker_stop(struct worker *w, int kill_it)
{
	int st = 0;
	if (w->pid < 0)
		return 0;
	if (kill_it)
		kill(w->pid, SIGKILL);
	close(w->fd);
	while (waitpid(w->pid, &st, 0) < 0 && errno == EINTR)
		;
	w->pid = -1;
	w->fd = -1;
	return st;
}

static void describe_status(int st, char *buf, size_t len)
{
	if (WIFSIGNALED(st))
		snprintf(buf, len, "was killed by signal %d (%s)", WTERMSIG(st),
		         strsignal(WTERMSIG(st)));
	else
		snprintf(buf, len, "exited with status %d",
		         WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

/* Fork a worker for jobs first .. n-1 and wait for it to be ready. */
static int worker_start(const struct run_pool *p, struct shared *sh,
                        size_t first, size_t n, struct worker *w,
                        char *err, size_t errlen)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		util_set_err(err, errlen, "cannot make a worker's socket: %s",
		             strerror(errno));
		return -errno;
	}
	const pid_t sweep = getpid();
	sh->err[0] = '\0';
	fflush(NULL);   /* or the worker's copy of the buffers could print */
	const pid_t pid = fork();
	if (pid < 0) {
		const int e = errno;
		close(sv[0]);
		close(sv[1]);
		util_set_err(err, errlen, "cannot start a worker process: %s",
		             strerror(e));
		return -e;
	}
	if (pid == 0) {
		close(sv[0]);
		worker_main(p, sv[1], sh, sweep, first, n);
	}
	close(sv[1]);
	w->pid = pid;
	w->fd = sv[0];
	struct msg m;
	const int r = recv_msg(w->fd, &m, deadline_of(p));
	if (r == 1 && m.kind == MSG_READY)
		return 0;
	const int st = worker_stop(w, 1);
	sh->err[sizeof sh->err - 1] = '\0';
	if (r == 1 && m.kind == MSG_NOSTART) {
		util_set_err(err, errlen, "%s", sh->err);
	} else if (r == -ETIMEDOUT) {
		util_set_err(err, errlen, "a worker process did not start "
		             "within %g s", p->timeout_s);
	} else {
		char how[128];
		describe_status(st, how, sizeof how);
		util_set_err(err, errlen, "a worker process %s as it started",
		             how);
	}
	return -EIO;
}

static void record(struct run_pool *p, struct db_failure *f,
                   struct run_outcome *o, char *rerr, size_t rerrlen)
{
	struct db *db = NULL;
	if (!p->db_path)
		return;
	int rc = db_open(&db, p->db_path, rerr, rerrlen);
	if (rc == 0)
		rc = db_record_failure(db, f, rerr, rerrlen);
	db_close(&db);
	o->recorded = rc == 0;
	p->unrecorded += rc != 0;
}

int run_pool_exec(struct run_pool *p, size_t n, char *err, size_t errlen)
{
	const size_t size = OUT_OFFSET + n * ALIGN64(p->out_size);
	struct shared *sh = mmap(NULL, size, PROT_READ | PROT_WRITE,
	                         MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		util_set_err(err, errlen, "cannot map memory for a worker: %s",
		             strerror(errno));
		return -ENOMEM;
	}
	struct worker w = { -1, -1 };
	double started = 0;   /* when the job in progress began, at most */
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		if (w.pid < 0) {
			rc = worker_start(p, sh, i, n, &w, err, errlen);
			if (rc < 0)
				break;
			started = now_s();
		}
		/* the worker runs job i now (or has run it) */
		struct msg m;
		const int r = recv_msg(w.fd, &m, p->timeout_s > 0
		                       ? started + p->timeout_s : 0);
		struct run_outcome o = { .run_id = -1 };
		int st = 0;
		if (r == 1 && m.kind == MSG_DONE && m.index == i) {
			started = now_s();
			o.ok = m.rc == 0;
			if (!o.ok)
				worker_stop(&w, 0);   /* it leaves: not reused */
		} else {
			o.timed_out = r == -ETIMEDOUT;
			st = worker_stop(&w, 1);
			o.signal = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
		}
		p->runs++;
		if (o.ok) {
			o.out = out_of(p, sh, i);
			if (p->done)
				p->done(p->ctx, i, &o);
			continue;
		}
		/* failed: where, who, why */
		p->failed++;
		struct db_failure f = { 0 };
		if (p->describe)
			p->describe(p->ctx, i, &f);
		const struct run_watch *wa = &sh->watch;
		const uint32_t where = wa->where;
		const uint32_t kind = PLUGIN_WHERE_KIND(where);
		char pname[64], msg[ERR_MAX + 256], how[128], rerr[512] = "";
		const char *kname = kind == AHASD_PLUGIN_POLICY ? "policy"
		                                                : "drafter";
		if (where) {
			snprintf(pname, sizeof pname, "%s",
			         kind == AHASD_PLUGIN_POLICY ? wa->policy
			                                     : wa->drafter);
			if (!pname[0])  /* not loaded yet: as the sweep named it */
				snprintf(pname, sizeof pname, "%s",
				         kind == AHASD_PLUGIN_POLICY
				                 ? (f.policy ? f.policy : "?")
				                 : (f.drafter ? f.drafter : "?"));
			o.plugin = pname;
			o.hook = plugin_hook_name(PLUGIN_WHERE_HOOK(where));
		}
		char at[160];
		if (where)
			snprintf(at, sizeof at, "%s %s: ", kname, pname);
		else
			at[0] = '\0';
		char in[96] = "outside any plugin hook";
		if (where)
			snprintf(in, sizeof in, "in %s", o.hook);
		sh->err[sizeof sh->err - 1] = '\0';
		if (r == 1 && m.kind == MSG_DONE)
			snprintf(msg, sizeof msg, "%s", sh->err[0] ? sh->err
			         : "the run failed without a message");
		else if (o.timed_out)
			snprintf(msg, sizeof msg, "%sthe run timed out after %g s "
			         "%s (killed; --run-timeout)", at, p->timeout_s,
			         in);
		else {
			describe_status(st, how, sizeof how);
			snprintf(msg, sizeof msg, "%sthe run's process %s %s", at,
			         how, in);
		}
		o.message = msg;
		o.run_id = wa->run_id;
		f.plugin = o.plugin;
		f.hook = o.hook;
		f.signal = o.signal;
		f.message = msg;
		f.run_id = o.run_id > 0 ? o.run_id : 0;
		record(p, &f, &o, rerr, sizeof rerr);
		if (!o.recorded && rerr[0]) {
			size_t l = strlen(msg);
			snprintf(msg + l, sizeof msg - l, " (not recorded: %s)",
			         rerr);
		}
		if (p->done)
			p->done(p->ctx, i, &o);
	}
	worker_stop(&w, 0);
	munmap(sh, size);
	return rc;
}
