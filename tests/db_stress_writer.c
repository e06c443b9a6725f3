/* db_stress_writer.c - one writer process of the database stress tests
 * (test_db_conc.c): a sweep's use of db.h without the engine.
 *
 *   db-stress-writer --open DB
 *       open DB (creating it) and close it again
 *   db-stress-writer DB W RUNS SEQS SEQ_MS EVENTS
 *       RUNS runs, each of SEQS sequences; before each sequence the writer
 *       sleeps SEQ_MS milliseconds (the replay), then stores the sequence
 *       and EVENTS events. The rows are those of db_stress.h.
 *
 * Both first read standard input to its end: the test holds every writer
 * there and closes the pipe to start them at the same moment. Around each
 * commit the writer prints "commit RUN_ID W R" and "done RUN_ID W R" on
 * standard output, so the test knows which runs finished before a kill,
 * and can aim one at a commit. Exit 0, or 1 with the error on standard
 * error. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "db.h"
#include "db_stress.h"

static void wait_for_start(void)
{
	char buf[64];

	while (read(STDIN_FILENO, buf, sizeof buf) > 0 || errno == EINTR)
		errno = 0;
}

static unsigned arg_uint(const char *s, const char *what)
{
	char *end = NULL;
	const unsigned long v = strtoul(s, &end, 10);

	if (!*s || *end || v > 1000000ul) {
		fprintf(stderr, "db-stress-writer: bad %s '%s'\n", what, s);
		exit(2);
	}
	return (unsigned)v;
}

static int one_run(struct db *d, unsigned w, unsigned r, unsigned n_seq,
                   unsigned seq_ms, unsigned n_ev, char *err, size_t errlen)
{
	char label[64];
	struct db_run_info in = {
		.tool_version = "stress",
		.label = label,
		.policy = "stress-policy",
		.policy_version = "1",
		.policy_params = "",
		.policy_path = "/stress/policy.so",
		.drafter = "stress-drafter",
		.drafter_version = "1",
		.drafter_params = "",
		.drafter_path = "/stress/drafter.so",
		.hw_preset = "stress",
		.hw_config = "stress = 1\n",
		.trace_path = "stress.msgpack",
		.trace_sha256 = "00",
		.draft_model = "d",
		.target_model = "t",
		.seed = 1,
		.queue_capacity = 32,
		.max_draft = 64,
		.device_names = { "npu", "pim" },
		.n_dev = STRESS_N_DEV,
	};
	const struct timespec nap = { seq_ms / 1000,
		                      (long)(seq_ms % 1000) * 1000000L };
	const char *names[STRESS_EXTRA] = { "stress.writer", "stress.run" };
	const double values[STRESS_EXTRA] = { w, r };
	struct replay_metrics m = { 0 };
	int64_t id = 0;
	int rc;

	stress_label(label, sizeof label, w, r);
	rc = db_run_begin(d, &in, &id, err, errlen);
	if (rc < 0)
		return rc;
	for (unsigned s = 0; s < n_seq; s++) {
		const struct replay_seq_result q = stress_seq(w, r, s);

		nanosleep(&nap, NULL);
		rc = db_run_sequence(d, id, &q, err, errlen);
		if (rc < 0)
			return rc;
		for (unsigned e = 0; e < n_ev; e++) {
			const struct replay_event ev = stress_event(w, r, s, e);

			rc = db_run_event(d, id, &ev, err, errlen);
			if (rc < 0)
				return rc;
		}
	}
	m.sequences = n_seq;
	m.committed = stress_committed(w, r, n_seq);
	m.time_s = 1.0 + w;
	m.energy_j = 2.0 + r;
	m.busy_s[0] = 0.5;
	m.idle_s[1] = 0.25;
	printf("commit %lld %u %u\n", (long long)id, w, r);
	fflush(stdout);
	rc = db_run_commit(d, id, &m, 0.001, names, values, STRESS_EXTRA, err,
	                   errlen);
	if (rc < 0)
		return rc;
	printf("done %lld %u %u\n", (long long)id, w, r);
	fflush(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	char err[1024] = "";
	struct db *d = NULL;
	unsigned w = 0, runs, n_seq, seq_ms, n_ev;
	int rc;

	if (argc == 3 && strcmp(argv[1], "--open") == 0) {
		wait_for_start();
		rc = db_open(&d, argv[2], err, sizeof err);
		db_close(&d);
		if (rc < 0) {
			fprintf(stderr, "db-stress-writer: %s\n", err);
			return 1;
		}
		return 0;
	}
	if (argc != 7) {
		fprintf(stderr, "usage: db-stress-writer --open DB\n"
		                "       db-stress-writer DB W RUNS SEQS SEQ_MS "
		                "EVENTS\n");
		return 2;
	}
	w = arg_uint(argv[2], "writer");
	runs = arg_uint(argv[3], "runs");
	n_seq = arg_uint(argv[4], "sequences");
	seq_ms = arg_uint(argv[5], "milliseconds");
	n_ev = arg_uint(argv[6], "events");

	wait_for_start();
	rc = db_open(&d, argv[1], err, sizeof err);
	for (unsigned r = 0; rc == 0 && r < runs; r++)
		rc = one_run(d, w, r, n_seq, seq_ms, n_ev, err, sizeof err);
	db_close(&d);
	if (rc < 0) {
		fprintf(stderr, "db-stress-writer %u: %s\n", w, err);
		return 1;
	}
	return 0;
}
