/* run_pool.c - see run_pool.h.
 *
 * Each worker is forked with a socket pair (SOCK_SEQPACKET: one message
 * per send, and no SIGPIPE with MSG_NOSIGNAL when the other side is
 * gone). It reports READY once (its database open), then waits for RUN
 * messages, each naming a job, and answers each with DONE and the job's
 * return value. The sweep keeps up to QUEUE jobs handed to each worker,
 * so a worker starts its next job without waiting for the sweep: on a
 * busy machine a round trip per job costs scheduling delays, not CPU.
 * The first job a worker holds is the one in progress; the others have
 * not started, and go back to the pool when the worker fails.
 *
 * Each job's result has a slot of its own in one shared anonymous
 * mapping, made before any worker is forked; each worker's watch and the
 * message of its job in progress sit at the mapping's head, one slot per
 * worker. A job's time-out counts from the DONE of the job before it on
 * the same worker (or from when it was handed to an idle worker), as the
 * sweep receives it. A worker stops after a job that fails, dies with
 * the sweep (PR_SET_PDEATHSIG) and leaves with _exit(): the sweep's
 * stdio buffers and atexit handlers are not its own.
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
/* jobs handed to one worker at a time: the one it runs and the next */
#define QUEUE 2
/* bound on workers (-j) */
#define WORKERS_MAX 1024

/* A worker's slot at the head of the mapping; then one result slot per
 * job, out_size bytes each (rounded up to 64). */
struct shared {
	struct run_watch watch; /* of the job in progress */
	char err[ERR_MAX];      /* the message of a failed job */
};
#define ALIGN64(x) (((x) + 63) & ~(size_t)63)
#define SLOT_SIZE  ALIGN64(sizeof(struct shared))

enum { MSG_READY = 1, MSG_NOSTART, MSG_DONE, MSG_RUN };

struct msg {
	int32_t kind, rc;
	uint64_t index;
};

struct worker {
	pid_t pid; /* -1: none */
	int fd;
	size_t q[QUEUE], nq; /* jobs handed to it, oldest first:
	                               * q[0] is in progress */
	double started;      /* when q[0] began, at most */
};

/* How a failed job ended, kept until its turn for done(). */
enum { END_RC = 1, END_TIMEOUT, END_DIED };
struct ending {
	int how;
	int status;             /* the worker's wait status */
	struct run_watch watch; /* as the job left it */
	char err[ERR_MAX];      /* END_RC: the job's message */
};

enum { JOB_WAITING = 0, JOB_HANDED, JOB_ENDED };

/* The pool while run_pool_exec() runs. */
struct pool {
	struct run_pool *p;
	size_t n, nw; /* jobs, worker slots */
	char *map;
	size_t map_size;
	struct worker *w;
	unsigned char *state;   /* JOB_* of each job */
	struct ending **ending; /* of each failed job not yet done() */
	size_t next;            /* the lowest job never handed out */
	size_t *back, nback;    /* jobs handed back by a failed worker */
	size_t deliver;         /* the next job for done() */
};

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static struct shared *slot_of(const struct pool *P, size_t w)
{
	return (struct shared *)(P->map + w * SLOT_SIZE);
}

static void *out_of(const struct pool *P, size_t i)
{
	return P->map + P->nw * SLOT_SIZE + i * ALIGN64(P->p->out_size);
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
			             ? (int)(left * 1e3 + 1)
			             : INT_MAX;
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

/* In worker slot `self`, for good: the jobs the sweep hands over, one
 * after the other, until one fails or the sweep closes the socket. */
__attribute__((noreturn)) static void worker_main(const struct pool *P,
                                                  size_t self, int fd,
                                                  pid_t sweep)
{
#ifdef __linux__
	prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
	if (getppid() != sweep)
		_exit(1); /* the sweep is gone already */
	/* the sweep's ends of the other workers' sockets: a copy held here
	 * would keep them from seeing the sweep close theirs */
	for (size_t k = 0; k < P->nw; k++)
		if (k != self && P->w[k].pid >= 0)
			close(P->w[k].fd);
	const struct run_pool *p = P->p;
	struct shared *sh = slot_of(P, self);
	struct db *db = NULL;
	struct msg m = { .kind = MSG_READY };
	if (p->db_path && db_open(&db, p->db_path, sh->err, sizeof sh->err) < 0)
		m.kind = MSG_NOSTART;
	if (send_msg(fd, &m) < 0 || m.kind != MSG_READY)
		_exit(1);
	while (recv_msg(fd, &m, 0) == 1 && m.kind == MSG_RUN &&
	       m.index < P->n) {
		const size_t i = (size_t)m.index;
		struct run_watch *w = &sh->watch;
		w->where = 0;
		w->run_id = -1;
		w->policy[0] = w->drafter[0] = '\0';
		sh->err[0] = '\0';
		struct run_job job = {
			.index = i,
			.db = db,
			.watch = w,
			.out = out_of(P, i),
			.err = sh->err,
			.errlen = sizeof sh->err,
		};
		memset(job.out, 0, p->out_size);
		m = (struct msg){ .kind = MSG_DONE, .index = i };
		m.rc = p->run(p->ctx, &job);
		if (send_msg(fd, &m) < 0 || m.rc != 0)
			break; /* the sweep is gone, or replaces this worker */
	}
	db_close(&db);
	_exit(0);
}

/* End a worker: close its socket (it leaves on its own), or kill it
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

/* Fork the worker of slot k and wait for it to be ready. */
static int worker_start(struct pool *P, size_t k, char *err, size_t errlen)
{
	const struct run_pool *p = P->p;
	struct worker *w = &P->w[k];
	struct shared *sh = slot_of(P, k);
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		util_set_err(err, errlen, "cannot make a worker's socket: %s",
		             strerror(errno));
		return -errno;
	}
	const pid_t sweep = getpid();
	sh->err[0] = '\0';
	fflush(NULL); /* or the worker's copy of the buffers could print */
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
		worker_main(P, k, sv[1], sweep);
	}
	close(sv[1]);
	*w = (struct worker){ .pid = pid, .fd = sv[0] };
	struct msg m;
	const int r = recv_msg(w->fd, &m, deadline_of(p));
	if (r == 1 && m.kind == MSG_READY)
		return 0;
	const int st = worker_stop(w, 1);
	sh->err[sizeof sh->err - 1] = '\0';
	if (r == 1 && m.kind == MSG_NOSTART) {
		util_set_err(err, errlen, "%s", sh->err);
	} else if (r == -ETIMEDOUT) {
		util_set_err(err, errlen,
		             "a worker process did not start "
		             "within %g s",
		             p->timeout_s);
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

/* Job i's turn: count it, record it when it failed, hand it to done(). */
static void deliver(struct pool *P, size_t i)
{
	struct run_pool *p = P->p;
	struct ending *e = P->ending[i];
	struct run_outcome o = { .run_id = -1 };
	p->runs++;
	if (!e) {
		o.ok = 1;
		o.out = out_of(P, i);
		if (p->done)
			p->done(p->ctx, i, &o);
		return;
	}
	/* failed: where, who, why */
	p->failed++;
	o.timed_out = e->how == END_TIMEOUT;
	o.signal = e->how != END_RC && WIFSIGNALED(e->status)
	                   ? WTERMSIG(e->status)
	                   : 0;
	struct db_failure f = { 0 };
	if (p->describe)
		p->describe(p->ctx, i, &f);
	const struct run_watch *wa = &e->watch;
	const uint32_t where = wa->where;
	const uint32_t kind = PLUGIN_WHERE_KIND(where);
	char pname[64], msg[ERR_MAX + 256], how[128], rerr[512] = "";
	const char *kname = kind == AHASD_PLUGIN_POLICY ? "policy" : "drafter";
	if (where) {
		snprintf(pname, sizeof pname, "%s",
		         kind == AHASD_PLUGIN_POLICY ? wa->policy
		                                     : wa->drafter);
		if (!pname[0]) /* not loaded yet: as the sweep named it */
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
	if (e->how == END_RC)
		snprintf(msg, sizeof msg, "%s",
		         e->err[0] ? e->err
		                   : "the run failed without a message");
	else if (o.timed_out)
		snprintf(msg, sizeof msg,
		         "%sthe run timed out after %g s %s "
		         "(killed; --run-timeout)",
		         at, p->timeout_s, in);
	else {
		describe_status(e->status, how, sizeof how);
		snprintf(msg, sizeof msg, "%sthe run's process %s %s", at, how,
		         in);
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
		snprintf(msg + l, sizeof msg - l, " (not recorded: %s)", rerr);
	}
	if (p->done)
		p->done(p->ctx, i, &o);
	free(e);
	P->ending[i] = NULL;
}

/* Every job that ended and whose turn it is, in the order of indices. */
static void deliver_ready(struct pool *P)
{
	while (P->deliver < P->n && P->state[P->deliver] == JOB_ENDED)
		deliver(P, P->deliver++);
}

/* Worker k's job in progress ended well (how 0) or not. */
static int job_ended(struct pool *P, size_t k, int how, int status)
{
	struct worker *w = &P->w[k];
	const size_t i = w->q[0];
	if (how) {
		struct ending *e = calloc(1, sizeof *e);
		if (!e)
			return -ENOMEM;
		const struct shared *sh = slot_of(P, k);
		e->how = how;
		e->status = status;
		e->watch.where = sh->watch.where;
		e->watch.run_id = sh->watch.run_id;
		memcpy(e->watch.policy, sh->watch.policy,
		       sizeof e->watch.policy);
		memcpy(e->watch.drafter, sh->watch.drafter,
		       sizeof e->watch.drafter);
		e->watch.policy[sizeof e->watch.policy - 1] = '\0';
		e->watch.drafter[sizeof e->watch.drafter - 1] = '\0';
		if (how == END_RC) {
			memcpy(e->err, sh->err, sizeof e->err);
			e->err[sizeof e->err - 1] = '\0';
		}
		P->ending[i] = e;
	}
	P->state[i] = JOB_ENDED;
	memmove(w->q, w->q + 1, (w->nq - 1) * sizeof *w->q);
	w->nq--;
	w->started = now_s();
	return 0;
}

/* Worker k is gone (stopped): the jobs it held but had not started go
 * back to the pool. */
static void hand_back(struct pool *P, size_t k)
{
	struct worker *w = &P->w[k];
	for (size_t j = 0; j < w->nq; j++) {
		P->state[w->q[j]] = JOB_WAITING;
		P->back[P->nback++] = w->q[j];
	}
	w->nq = 0;
}

/* The next job to hand out (the lowest waiting), or n. */
static size_t next_job(struct pool *P)
{
	if (P->nback) {
		size_t m = 0;
		for (size_t j = 1; j < P->nback; j++)
			if (P->back[j] < P->back[m])
				m = j;
		const size_t i = P->back[m];
		P->back[m] = P->back[--P->nback];
		return i;
	}
	return P->next < P->n ? P->next++ : P->n;
}

static int jobs_waiting(const struct pool *P)
{
	return P->nback > 0 || P->next < P->n;
}

/* Hand worker k job i. A worker gone by now fails the job when the sweep
 * next reads its socket, as if it had died running it. */
static void hand(struct pool *P, size_t k, size_t i)
{
	struct worker *w = &P->w[k];
	const struct msg m = { .kind = MSG_RUN, .index = i };
	if (w->nq == 0)
		w->started = now_s();
	w->q[w->nq++] = i;
	P->state[i] = JOB_HANDED;
	(void)send_msg(w->fd, &m);
}

/* A message (or the end) from worker k, which holds jobs. */
static int from_worker(struct pool *P, size_t k)
{
	struct worker *w = &P->w[k];
	struct msg m;
	ssize_t r;
	do
		r = recv(w->fd, &m, sizeof m, MSG_DONTWAIT);
	while (r < 0 && errno == EINTR);
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 0;
	if (r == (ssize_t)sizeof m && m.kind == MSG_DONE &&
	    m.index == w->q[0]) {
		const int rc = job_ended(P, k, m.rc ? END_RC : 0, 0);
		if (m.rc) { /* it leaves: not reused */
			worker_stop(w, 0);
			hand_back(P, k);
		}
		return rc;
	}
	/* gone (or speaking nonsense): its job in progress failed */
	const int st = worker_stop(w, 1);
	const int rc = job_ended(P, k, END_DIED, st);
	hand_back(P, k);
	return rc;
}

size_t run_pool_workers(uint64_t n)
{
	if (n == 0) {
		const long c = sysconf(_SC_NPROCESSORS_ONLN);
		n = c > 0 ? (uint64_t)c : 1;
	}
	return n > WORKERS_MAX ? WORKERS_MAX : (size_t)n;
}

int run_pool_exec(struct run_pool *p, size_t n, char *err, size_t errlen)
{
	struct pool P = { .p = p, .n = n };
	int rc = 0;
	if (n == 0)
		return 0;
	P.nw = p->workers > 1 ? p->workers : 1;
	if (P.nw > WORKERS_MAX)
		P.nw = WORKERS_MAX;
	if (P.nw > n)
		P.nw = n;
	P.map_size = P.nw * SLOT_SIZE + n * ALIGN64(p->out_size);
	P.map = mmap(NULL, P.map_size, PROT_READ | PROT_WRITE,
	             MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (P.map == MAP_FAILED) {
		util_set_err(err, errlen,
		             "cannot map memory for the workers: "
		             "%s",
		             strerror(errno));
		return -ENOMEM;
	}
	P.w = calloc(P.nw, sizeof *P.w);
	P.state = calloc(n, 1);
	P.ending = calloc(n, sizeof *P.ending);
	P.back = calloc(P.nw * QUEUE, sizeof *P.back);
	struct pollfd *pf = calloc(P.nw, sizeof *pf);
	size_t *pk = calloc(P.nw, sizeof *pk);
	if (!P.w || !P.state || !P.ending || !P.back || !pf || !pk) {
		util_set_err(err, errlen, "out of memory for %zu jobs", n);
		rc = -ENOMEM;
		goto out;
	}
	for (size_t k = 0; k < P.nw; k++)
		P.w[k] = (struct worker){ .pid = -1, .fd = -1 };
	int stopping = 0; /* a worker could not start: no more jobs out */
	for (;;) {
		/* workers for the jobs waiting, then up to QUEUE jobs each,
		 * one round at a time so that every worker gets one first */
		size_t alive = 0, waiting = P.nback + (n - P.next);
		for (size_t k = 0; k < P.nw; k++)
			if (P.w[k].pid >= 0)
				waiting -= waiting < QUEUE - P.w[k].nq
				                   ? waiting
				                   : QUEUE - P.w[k].nq;
		for (size_t k = 0; k < P.nw && !stopping && waiting; k++) {
			if (P.w[k].pid >= 0)
				continue;
			waiting -= waiting < QUEUE ? waiting : QUEUE;
			const int r = worker_start(&P, k, err, errlen);
			if (r < 0) {
				rc = r;
				stopping = 1;
			}
		}
		for (size_t d = 1; d <= QUEUE && !stopping; d++)
			for (size_t k = 0; k < P.nw && jobs_waiting(&P); k++)
				if (P.w[k].pid >= 0 && P.w[k].nq < d)
					hand(&P, k, next_job(&P));
		deliver_ready(&P);
		/* wait for the workers that hold jobs, to the first deadline */
		size_t np = 0;
		double deadline = 0;
		for (size_t k = 0; k < P.nw; k++) {
			const struct worker *w = &P.w[k];
			if (w->pid < 0 || w->nq == 0)
				continue;
			alive++;
			pf[np] = (struct pollfd){ .fd = w->fd,
				                  .events = POLLIN };
			pk[np++] = k;
			if (p->timeout_s > 0 &&
			    (deadline == 0 ||
			     w->started + p->timeout_s < deadline))
				deadline = w->started + p->timeout_s;
		}
		if (!alive)
			break; /* all done, or stopping with nothing running */
		int ms = -1;
		if (deadline > 0) {
			const double left = deadline - now_s();
			ms = left <= 0 ? 0
			     : left * 1e3 + 1 < (double)INT_MAX
			             ? (int)(left * 1e3 + 1)
			             : INT_MAX;
		}
		const int r = poll(pf, np, ms);
		if (r < 0 && errno != EINTR) {
			util_set_err(err, errlen, "waiting for the workers: %s",
			             strerror(errno));
			rc = -errno;
			break;
		}
		int oom = 0;
		for (size_t j = 0; r > 0 && j < np; j++)
			if (pf[j].revents)
				oom |= from_worker(&P, pk[j]) < 0;
		/* past the time-out: killed */
		const double t = now_s();
		for (size_t k = 0; p->timeout_s > 0 && k < P.nw; k++) {
			struct worker *w = &P.w[k];
			if (w->pid < 0 || w->nq == 0 ||
			    t < w->started + p->timeout_s)
				continue;
			const int st = worker_stop(w, 1);
			oom |= job_ended(&P, k, END_TIMEOUT, st) < 0;
			hand_back(&P, k);
		}
		if (oom) {
			util_set_err(err, errlen, "out of memory");
			rc = -ENOMEM;
			break;
		}
	}
	/* stopping early: what ended still goes to done(), in order */
	deliver_ready(&P);
	for (size_t i = P.deliver; i < n; i++)
		if (P.state[i] == JOB_ENDED)
			deliver(&P, i);
out:
	for (size_t k = 0; P.w && k < P.nw; k++)
		worker_stop(&P.w[k], rc == -ENOMEM);
	for (size_t i = 0; P.ending && i < n; i++)
		free(P.ending[i]);
	free(P.w);
	free(P.state);
	free(P.ending);
	free(P.back);
	free(pf);
	free(pk);
	munmap(P.map, P.map_size);
	return rc;
}
