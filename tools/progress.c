/* progress.c - see progress.h. */
#include "progress.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define REDRAW_S 0.1

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Seconds as "42 s", "3 min 20 s", "2 h 05 min". */
static void fmt_time(double s, char *buf, size_t len)
{
	if (!(s >= 0))
		s = 0;
	const unsigned long t = (unsigned long)(s + 0.5);
	if (t < 60)
		snprintf(buf, len, "%lu s", t);
	else if (t < 3600)
		snprintf(buf, len, "%lu min %02lu s", t / 60, t % 60);
	else
		snprintf(buf, len, "%lu h %02lu min", t / 3600, t / 60 % 60);
}

void progress_start(struct progress *p, const char *prog, const char *what,
                    size_t total, int quiet)
{
	memset(p, 0, sizeof *p);
	p->prog = prog;
	p->what = what;
	p->total = total;
	p->on = !quiet && isatty(STDERR_FILENO);
	p->t0 = now_s();
}

void progress_add(struct progress *p, size_t more)
{
	if (p)
		p->total += more;
}

void progress_format(const struct progress *p, double now, char *buf,
                     size_t len)
{
	char el[32], eta[32];
	const double elapsed = now - p->t0;
	fmt_time(elapsed, el, sizeof el);
	size_t off = (size_t)snprintf(buf, len, "%s: %zu/%zu %s", p->prog,
	                              p->done, p->total, p->what);
	if (p->failed && off < len)
		off += (size_t)snprintf(buf + off, len - off, ", %zu failed",
		                        p->failed);
	if (off < len)
		off += (size_t)snprintf(buf + off, len - off, ", %s", el);
	if (p->done && p->done < p->total && off < len) {
		fmt_time(elapsed / (double)p->done *
		                 (double)(p->total - p->done),
		         eta, sizeof eta);
		snprintf(buf + off, len - off, ", ETA %s", eta);
	}
}

static void draw(struct progress *p, double now)
{
	char line[256];
	progress_format(p, now, line, sizeof line);
	fprintf(stderr, "\r%s\033[K", line);
	fflush(stderr);
	p->shown = 1;
	p->drawn = now;
}

void progress_step(struct progress *p, size_t done, size_t failed)
{
	if (!p)
		return;
	p->done += done;
	p->failed += failed;
	if (!p->on)
		return;
	const double t = now_s();
	if (!p->shown || t - p->drawn >= REDRAW_S || p->done >= p->total)
		draw(p, t);
}

void progress_clear(struct progress *p)
{
	if (!p || !p->on || !p->shown)
		return;
	fputs("\r\033[K", stderr);
	fflush(stderr);
	p->shown = 0;
}

void progress_end(struct progress *p)
{
	progress_clear(p);
	if (p)
		p->on = 0;
}
