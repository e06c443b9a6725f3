/* run_pool.h - a sweep's runs, each apart from the sweep: jobs run in a
 * worker process, so a plugin that crashes, aborts, exits or hangs fails
 * its own run, which is recorded in the failures table with the plugin
 * and the hook it was in, and the sweep goes on (issue 15, item 3).
 *
 * run_pool_exec() forks up to `workers` workers (-j), each of which
 * opens its own database connection (never the sweep's: SQLite
 * connections must not cross fork(), and the sweep holds none while a
 * worker lives) and runs the jobs the sweep hands it, one at a time; the
 * sweep hands them out by index, lowest first, to whichever worker is
 * free. A job writes its result into memory shared with the sweep; each
 * worker's struct run_watch lives there too, so when a worker dies or
 * overruns the time-out (then it is killed with SIGKILL) the sweep still
 * reads the hook it was in and the run's id. After a failed job a new
 * worker takes that worker's place. done() sees every job in the order
 * of the indices whatever the number of workers (results that arrive
 * early wait), and a failure is recorded just before its done(): with
 * one worker or many, the output and the failures rows come in the same
 * order.
 *
 * The worker is a copy of the sweep's process as it was when the worker
 * was forked: a job finds its configuration through its index in data
 * that does not change while run_pool_exec() runs.
 */
#ifndef AHASD_RUN_POOL_H
#define AHASD_RUN_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "run.h"

/** Default bound on one run's wall time (--run-timeout), seconds. */
#define RUN_TIMEOUT_DEFAULT 600.0

/* What a job gets, in the worker. */
struct run_job {
	size_t index;
	struct db *db;           /* the worker's connection, or NULL */
	struct run_watch *watch; /* for its run_spec */
	void *out;               /* out_size bytes, zeroed: its result */
	char *err;               /* its message when it fails */
	size_t errlen;
};

/* How a job ended, in the sweep's process (valid during done()). */
struct run_outcome {
	int ok;              /* the job returned 0 */
	const void *out;     /* its result (when ok) */
	const char *message; /* when not ok: what went wrong and where */
	const char *plugin;  /* the plugin at fault, or NULL */
	const char *hook;    /* the hook it was in, or NULL */
	int signal;          /* the signal that ended the worker, or 0 */
	int timed_out;       /* it ran past the time-out (SIGKILL) */
	int64_t run_id;      /* the run's id, -1 if it got none */
	int recorded;        /* the failure is in the failures table */
};

struct run_pool {
	const char *db_path; /* the workers' database, where failures
	                           * are recorded too; NULL: none */
	double timeout_s;    /* bound on one job's wall time; 0: none */
	size_t workers;      /* worker processes at once (-j); 0 or 1:
	                           * one (never more than the jobs) */
	size_t out_size;     /* bytes of a job's result */
	void *ctx;
	/* in the worker: run job->index. @return 0, or negative with a
	 * message in job->err */
	int (*run)(void *ctx, struct run_job *job);
	/* in this process, for a failed job: the configuration fields of
	 * its failures row (label, trace_path, hw_preset, policy, drafter,
	 * config); the pool fills in the rest. Optional. */
	void (*describe)(void *ctx, size_t index, struct db_failure *f);
	/* in this process, after each job, in the order of the indices */
	void (*done)(void *ctx, size_t index, const struct run_outcome *o);
	/* counts, kept by run_pool_exec (added to) */
	size_t runs, failed, unrecorded;
};

/** Workers for -j N: N, or the number of online CPUs when N is 0. */
size_t run_pool_workers(uint64_t n);

/** Run jobs 0 .. n-1 (see the top of this file). A job that fails, in
 * any way, is reported to done() and recorded (when there is a
 * database); the pool goes on. @return 0, or negative with a message
 * when no worker could be started (fork, or the database cannot be
 * opened): then done() was not called for the jobs left. */
int run_pool_exec(struct run_pool *p, size_t n, char *err, size_t errlen);

#endif
