/* bench-replay - replay speed of the engine and trace reader.
 *
 * For every policy x drafter it forks a child that replays the whole trace
 * R times without any database (trace reader -> hardware plan -> plugins ->
 * replay engine, as ahasd-replay wires them) and reports the best wall time
 * (CLOCK_MONOTONIC), simulated tokens per wall second, and the child's peak
 * RSS from wait4(): one process per measurement, so every peak belongs to one
 * policy. A last line times the full ahasd-replay CLI with a SQLite database
 * in a temporary directory, for reference.
 */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "results.h"
#include "run.h"
#include "trace.h"

#define BENCH_MAX_LIST 16
#define BENCH_ERRLEN   1024

#ifndef BENCH_REPLAY_CLI
#define BENCH_REPLAY_CLI ""
#endif

struct bench_opts {
	const char *policies[BENCH_MAX_LIST];
	size_t n_policies;
	const char *drafters[BENCH_MAX_LIST];
	size_t n_drafters;
	const char *preset;
	const char *cli; /* ahasd-replay binary, "" to skip */
	unsigned repeat;
	uint64_t budget; /* run_source mem_max: 0 streams every replay */
	uint64_t seed;
	uint32_t queue_capacity, max_draft;
	int no_intervals; /* --no-intervals: the engine alone */
};

/* What a child sends back through its pipe. */
struct bench_result {
	int ok;
	uint64_t sequences, committed;
	uint64_t events; /* draft steps + verifications + pre-verifies */
	double best_wall_s, mean_wall_s;
	double best_cpu_s; /* CPU time of the best-CPU repeat */
	double sim_time_s;
	char err[BENCH_ERRLEN];
};

static double bench_clock(clockid_t id)
{
	struct timespec t;
	clock_gettime(id, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static double bench_now(void)
{
	return bench_clock(CLOCK_MONOTONIC);
}

/* One full replay of the trace held by src through the run assembly (no
 * database), timed from loading the preset to replay_finish(): the trace
 * is decoded and checked once per child, as a sweep does it (streamed:
 * each replay re-reads it). @return 0 or negative with err filled. */
static int bench_replay_once(const struct bench_opts *o,
                             const struct run_source *src, const char *policy,
                             const char *drafter, struct bench_result *res,
                             double *wall, double *cpu)
{
	const struct run_spec spec = {
		.preset = o->preset,
		.policy = policy,
		.drafter = drafter,
		.seed = o->seed,
		.queue_capacity = o->queue_capacity,
		.max_draft = o->max_draft,
		.no_intervals = o->no_intervals,
	};
	struct run_result rr;
	const double c0 = bench_clock(CLOCK_PROCESS_CPUTIME_ID);
	const double t0 = bench_now();
	int rc = run_execute(&spec, &src->stream, NULL, &rr, res->err,
	                     sizeof res->err);
	*wall = bench_now() - t0;
	*cpu = bench_clock(CLOCK_PROCESS_CPUTIME_ID) - c0;
	if (rc < 0)
		return rc;
	const struct replay_metrics *m = &rr.m;
	res->sequences = m->sequences;
	res->committed = m->committed;
	res->events = m->drafted + m->verifications + m->preverify_tasks;
	res->sim_time_s = m->time_s;
	return 0;
}

/* Decode and check the trace (the (load) row times this alone).
 * @return 0 or negative with err filled. */
static int bench_load(const struct bench_opts *o, const char *path,
                      struct run_source *src, struct bench_result *res,
                      double *wall, double *cpu)
{
	const double c0 = bench_clock(CLOCK_PROCESS_CPUTIME_ID);
	const double t0 = bench_now();
	const int rc = run_source_open(src, path, o->budget, NULL, res->err,
	                               sizeof res->err);
	if (rc < 0)
		return rc;
	*wall = bench_now() - t0;
	*cpu = bench_clock(CLOCK_PROCESS_CPUTIME_ID) - c0;
	trace_reader_totals(src->rd, &res->sequences, &res->committed);
	res->events = 0;
	res->sim_time_s = 0;
	return 0;
}

static void bench_child(const struct bench_opts *o, const char *path,
                        const char *policy, const char *drafter, int fd)
{
	struct bench_result res = { 0 };
	struct run_source src;
	int open = 0;
	double best = 0, best_cpu = 0, sum = 0;
	for (unsigned i = 0; i < o->repeat; i++) {
		double wall = 0, cpu = 0;
		if (!open || !policy) {
			if (open)
				run_source_close(&src);
			open = bench_load(o, path, &src, &res, &wall, &cpu) ==
			       0;
			if (!open)
				goto send;
		}
		if (policy && bench_replay_once(o, &src, policy, drafter, &res,
		                                &wall, &cpu) < 0)
			goto send;
		if (i == 0 || wall < best)
			best = wall;
		if (i == 0 || cpu < best_cpu)
			best_cpu = cpu;
		sum += wall;
	}
	res.ok = 1;
	res.best_wall_s = best;
	res.best_cpu_s = best_cpu;
	res.mean_wall_s = sum / o->repeat;
send:
	if (open)
		run_source_close(&src);
	const char *p = (const char *)&res;
	size_t left = sizeof res;
	while (left) {
		const ssize_t n = write(fd, p, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		p += n;
		left -= (size_t)n;
	}
	close(fd);
	_exit(res.ok ? 0 : 1);
}

/* Run one measurement in a child. @return 0 or negative errno. */
static int bench_measure(const struct bench_opts *o, const char *path,
                         const char *policy, const char *drafter,
                         struct bench_result *res, long *maxrss_kb)
{
	int fds[2];
	if (pipe(fds) < 0)
		return -errno;
	fflush(stdout);
	const pid_t pid = fork();
	if (pid < 0) {
		const int e = errno;
		close(fds[0]);
		close(fds[1]);
		return -e;
	}
	if (pid == 0) {
		close(fds[0]);
		bench_child(o, path, policy, drafter, fds[1]);
	}
	close(fds[1]);
	memset(res, 0, sizeof *res);
	char *p = (char *)res;
	size_t got = 0;
	while (got < sizeof *res) {
		const ssize_t n = read(fds[0], p + got, sizeof *res - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fds[0]);
	int st = 0;
	struct rusage ru;
	while (wait4(pid, &st, 0, &ru) < 0)
		if (errno != EINTR)
			return -errno;
	*maxrss_kb = ru.ru_maxrss;
	if (got != sizeof *res || !WIFEXITED(st)) {
		snprintf(res->err, sizeof res->err, "child died (status %d)",
		         st);
		res->ok = 0;
	}
	return 0;
}

/* Time the whole ahasd-replay CLI with a database in a temp directory. */
static int bench_cli(const struct bench_opts *o, const char *path, double *wall,
                     double *cpu, long *maxrss_kb, char *cmdline, size_t cmdlen)
{
	char dir[] = "/tmp/bench-replay-XXXXXX";
	char db[sizeof dir + 16];
	const char *argv[8 + 2 * BENCH_MAX_LIST];
	size_t n = 0;
	int ret = 0;

	if (!mkdtemp(dir))
		return -errno;
	snprintf(db, sizeof db, "%s/r.db", dir);
	argv[n++] = o->cli;
	argv[n++] = "-q";
	for (size_t i = 0; i < o->n_policies; i++) {
		argv[n++] = "-p";
		argv[n++] = o->policies[i];
	}
	argv[n++] = "-d";
	argv[n++] = o->drafters[0];
	argv[n++] = "-w";
	argv[n++] = o->preset;
	argv[n++] = "--db";
	argv[n++] = db;
	argv[n++] = path;
	argv[n] = NULL;
	size_t at = 0;
	for (size_t i = 0; i < n && at < cmdlen; i++) {
		const int w = snprintf(cmdline + at, cmdlen - at, "%s%s",
		                       i ? " " : "", argv[i]);
		if (w < 0)
			break;
		at += (size_t)w;
	}
	fflush(stdout);
	const double t0 = bench_now();
	const pid_t pid = fork();
	if (pid < 0) {
		ret = -errno;
		goto out;
	}
	if (pid == 0) {
		execv(o->cli, (char *const *)argv);
		_exit(127);
	}
	int st = 0;
	struct rusage ru;
	while (wait4(pid, &st, 0, &ru) < 0)
		if (errno != EINTR) {
			ret = -errno;
			goto out;
		}
	*wall = bench_now() - t0;
	*cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
	*maxrss_kb = ru.ru_maxrss;
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		ret = -ECHILD;
out:
	unlink(db);
	{
		char side[sizeof db + 8];
		snprintf(side, sizeof side, "%s-wal", db);
		unlink(side);
		snprintf(side, sizeof side, "%s-shm", db);
		unlink(side);
	}
	rmdir(dir);
	return ret;
}

static void bench_print_row(const char *policy, const char *drafter,
                            const struct bench_result *r, long rss_kb)
{
	char evtok[16] = "-", nsev[16] = "-";
	if (r->events) {
		snprintf(evtok, sizeof evtok, "%.2f",
		         (double)r->events / (double)r->committed);
		snprintf(nsev, sizeof nsev, "%.1f",
		         r->best_cpu_s * 1e9 / (double)r->events);
	}
	printf("%-8s %-8s %6llu %9llu %7.3f %7.3f %9.0f %7.3f %9.0f %6s %6s "
	       "%7.1f\n",
	       policy, drafter, (unsigned long long)r->sequences,
	       (unsigned long long)r->committed, r->best_wall_s, r->mean_wall_s,
	       (double)r->committed / r->best_wall_s, r->best_cpu_s,
	       (double)r->committed / r->best_cpu_s, evtok, nsev,
	       (double)rss_kb / 1024.0);
}

static void bench_usage(FILE *f)
{
	fprintf(f, "usage: bench-replay [options] TRACE...\n"
	           "Replay speed of the engine and trace reader, no database.\n"
	           "  -p, --policy P     policy to measure; repeatable "
	           "(default sync, async,\n"
	           "                     ahasd)\n"
	           "  -d, --drafter D    drafter; repeatable (default adaedl "
	           "and fixed)\n"
	           "  -w, --hw PRESET    hardware preset (default npu-pim)\n"
	           "  -r, --repeat R     replays per measurement, best "
	           "reported (default 3)\n"
	           "      --seed N       seed of acceptance coins (default 1)\n"
	           "      --stream       re-read the trace for every replay "
	           "instead of\n"
	           "                     decoding it once per measurement into "
	           "memory\n"
	           "      --no-intervals time the engine alone: skip the "
	           "bootstrap\n"
	           "                     intervals a run computes over its "
	           "sequences\n"
	           "      --cli PATH     ahasd-replay binary for the reference "
	           "line with a\n"
	           "                     SQLite database; 'none' to skip "
	           "(default: the one\n"
	           "                     built next to this program)\n"
	           "  -h, --help         this text\n");
}

static int bench_push(const char **list, size_t *n, const char *v)
{
	if (*n == BENCH_MAX_LIST) {
		fprintf(stderr, "bench-replay: too many values (max %d)\n",
		        BENCH_MAX_LIST);
		return -1;
	}
	list[(*n)++] = v;
	return 0;
}

int main(int argc, char **argv)
{
	struct bench_opts o = { .preset = "npu-pim",
		                .cli = BENCH_REPLAY_CLI,
		                .repeat = 3,
		                .budget = RUN_MEM_MAX_DEFAULT,
		                .seed = 1,
		                .queue_capacity = 32,
		                .max_draft = 64 };
	enum { O_SEED = 256, O_CLI, O_STREAM, O_NOCI };
	static const struct option lo[] = {
		{ "policy", required_argument, NULL, 'p' },
		{ "drafter", required_argument, NULL, 'd' },
		{ "hw", required_argument, NULL, 'w' },
		{ "repeat", required_argument, NULL, 'r' },
		{ "seed", required_argument, NULL, O_SEED },
		{ "cli", required_argument, NULL, O_CLI },
		{ "stream", no_argument, NULL, O_STREAM },
		{ "no-intervals", no_argument, NULL, O_NOCI },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "p:d:w:r:h", lo, NULL)) != -1) {
		char *end;
		switch (c) {
		case 'p':
			if (bench_push(o.policies, &o.n_policies, optarg))
				return 2;
			break;
		case 'd':
			if (bench_push(o.drafters, &o.n_drafters, optarg))
				return 2;
			break;
		case 'w': o.preset = optarg; break;
		case 'r': {
			const unsigned long v = strtoul(optarg, &end, 10);
			if (*end || end == optarg || v < 1 || v > 1000) {
				fprintf(stderr,
				        "bench-replay: --repeat: 1..1000\n");
				return 2;
			}
			o.repeat = (unsigned)v;
			break;
		}
		case O_SEED:
			o.seed = strtoull(optarg, &end, 10);
			if (*end || end == optarg) {
				fprintf(stderr,
				        "bench-replay: --seed: integer\n");
				return 2;
			}
			break;
		case O_CLI: o.cli = strcmp(optarg, "none") ? optarg : ""; break;
		case O_STREAM: o.budget = 0; break;
		case O_NOCI: o.no_intervals = 1; break;
		case 'h': bench_usage(stdout); return 0;
		default: bench_usage(stderr); return 2;
		}
	}
	if (optind >= argc) {
		bench_usage(stderr);
		return 2;
	}
	if (!o.n_policies) {
		o.policies[o.n_policies++] = "sync";
		o.policies[o.n_policies++] = "async";
		o.policies[o.n_policies++] = "ahasd";
	}
	if (!o.n_drafters) {
		o.drafters[o.n_drafters++] = "adaedl";
		o.drafters[o.n_drafters++] = "fixed";
	}

	int status = 0;
	for (int t = optind; t < argc; t++) {
		const char *path = argv[t];
		struct stat sb;
		if (stat(path, &sb) < 0) {
			fprintf(stderr, "bench-replay: %s: %s\n", path,
			        strerror(errno));
			return 1;
		}
		printf("trace %s (%.1f MB), preset %s, best of %u, %s\n", path,
		       (double)sb.st_size / 1e6, o.preset, o.repeat,
		       o.budget ? "decoded once per row, replayed from memory"
		                : "streamed: read again for every replay");
		printf("%-8s %-8s %6s %9s %7s %7s %9s %7s %9s %6s %6s "
		       "%7s\n",
		       "policy", "drafter", "seqs", "committed", "best_s",
		       "mean_s", "tok/s", "cpu_s", "tok/cpu_s", "ev/tok",
		       "ns/ev", "rss_MiB");
		uint64_t tokens = 0; /* committed tokens of one replay */
		/* row -1: decoding and checking the trace alone */
		const long rows = (long)(o.n_policies * o.n_drafters);
		for (long row = -1; row < rows; row++) {
			const char *pol = row < 0 ? NULL
			                          : o.policies[(size_t)row /
			                                       o.n_drafters];
			const char *dra = row < 0 ? NULL
			                          : o.drafters[(size_t)row %
			                                       o.n_drafters];
			struct bench_result r;
			long rss = 0;
			const int rc = bench_measure(&o, path, pol, dra, &r,
			                             &rss);
			if (rc < 0 || !r.ok) {
				fprintf(stderr, "bench-replay: %s/%s: %s\n",
				        pol ? pol : "(load)", dra ? dra : "-",
				        rc < 0 ? strerror(-rc) : r.err);
				status = 1;
				continue;
			}
			if (pol)
				tokens = r.committed;
			bench_print_row(pol ? pol : "(load)", dra ? dra : "-",
			                &r, rss);
		}
		if (o.cli[0]) {
			char cmd[2048] = "";
			double wall = 0, cpu = 0;
			long rss = 0;
			const int rc = bench_cli(&o, path, &wall, &cpu, &rss,
			                         cmd, sizeof cmd);
			if (rc < 0) {
				fprintf(stderr,
				        "bench-replay: cli: %s failed "
				        "(%s)\n",
				        cmd, strerror(-rc));
				status = 1;
			} else {
				const double all = (double)tokens *
				                   (double)o.n_policies;
				printf("cli: %s\n     %zu runs x %llu tokens, "
				       "one pass each, with SQLite and the "
				       "trace's sha256: %.3f s wall = %.0f "
				       "tok/s, %.3f s cpu = %.0f tok/cpu_s, "
				       "peak RSS %.1f MiB\n",
				       cmd, o.n_policies,
				       (unsigned long long)tokens, wall,
				       wall > 0 ? all / wall : 0, cpu,
				       cpu > 0 ? all / cpu : 0,
				       (double)rss / 1024.0);
			}
		}
		printf("\n");
	}
	return status;
}
