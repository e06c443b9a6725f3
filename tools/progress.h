/* progress.h - one progress line on stderr for the programs that run or
 * merge many things (ahasd-replay, ahasd-repro, ahasd-db merge):
 *
 *   ahasd-replay: 120/480 runs, 2 failed, 14 s, ETA 42 s
 *
 * redrawn in place (carriage return, erase to the end of the line) at
 * most ten times a second, and only when stderr is a terminal and the
 * program was not asked to be quiet; otherwise every call does nothing.
 * The ETA is the mean time per item so far times the items left.
 * Anything else a program prints while the line is up goes after
 * progress_clear(): the next progress_step() draws the line again.
 * A NULL progress is allowed everywhere but progress_start (nothing to
 * show). libc only.
 */
#ifndef AHASD_PROGRESS_H
#define AHASD_PROGRESS_H

#include <stddef.h>

struct progress {
	const char *prog; /* "ahasd-replay" */
	const char *what; /* "runs" */
	size_t total, done, failed;
	int on;           /* drawing at all */
	int shown;        /* a line is up */
	double t0, drawn; /* monotonic seconds: start, last draw */
};

/** Start: total items (more may be added); on only when stderr is a tty
 * and quiet is 0. */
void progress_start(struct progress *p, const char *prog, const char *what,
                    size_t total, int quiet);
/** More items to do (a stage whose size is known only now). */
void progress_add(struct progress *p, size_t more);
/** done more items, failed of them failed; redraw when due. */
void progress_step(struct progress *p, size_t done, size_t failed);
/** Take the line down (before other output). */
void progress_clear(struct progress *p);
/** The end: take the line down for good. */
void progress_end(struct progress *p);
/** The line as drawn now (for tests and for progress_step). */
void progress_format(const struct progress *p, double now, char *buf,
                     size_t len);

#endif
