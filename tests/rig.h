/* rig.h - the engine under test, for the test_engine_*.c programs: a trace,
 * a hardware plan and two plugins bound into one replay, the hardware
 * model's own task costs to check schedules against, and the events of a
 * run summed per device lane (check_events).
 *
 * The engine test programs, by kind:
 *   test_engine_hand.c        hand-built traces whose schedule and figures
 *                             are worked out in a comment, one boundary each
 *   test_engine_invariants.c  conservation (time, tokens, energy) and the
 *                             counters against each other, over every
 *                             policy x drafter x preset
 *   test_engine_walks.c       the shipped captures against an independent
 *                             walk of speculative decoding
 *   test_engine_feedback.c    what the drafter is told against the metrics
 */
#ifndef AHASD_TEST_RIG_H
#define AHASD_TEST_RIG_H

#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "fixtures.h"
#include "hw.h"
#include "plugin.h"
#include "trace.h"

#define P_LEN FX_P_LEN /* prompt length of the hand-built sequences */
/* npu-pim without bus contention (the PIM's ranks neither hold the NPU's
 * channels nor block its reads): hand schedules of the scheduling logic.
 * Contention has hand-worked tests of its own. */
#define NPU_PIM_FREE "npu-pim?pim_blocking=0&pim_bus_block=0"

/* A loaded run: trace, plan and plugins. */
struct rig {
	struct trace_reader *rd;
	struct hw_platform plat;
	struct hw_plan *plan;
	struct plugin pol, dr;
	struct replay *r;
};

struct rig_opts {
	const char *trace;
	const char *preset; /* "NAME" or "NAME?key=value&key=value" */
	const char *policy; /* a built-in name or a path, or: */
	const struct ahasd_plugin *policy_desc; /* a descriptor made through
	                          * the host's plugin_create with np params */
	const char *const *pkeys, *const *pvals;
	size_t np;
	const char *drafter;     /* a name or a path */
	const char *dkey, *dval; /* one drafter parameter, or NULL */
	uint32_t qcap;           /* queue capacity; 0: 32 */
	uint64_t seed;           /* coin seed; 0: 1 */
	replay_event_fn on_event;
	void *user;
};

void rig_open(struct rig *g, const struct rig_opts *o);
#define RIG_OPEN(g, ...) rig_open((g), &(struct rig_opts){ __VA_ARGS__ })
/** Replay every sequence (asserting each succeeds) and finish the run. */
void rig_run(struct rig *g);
/** The same, keeping the first max sequences' results; *n = how many. */
void rig_run_results(struct rig *g, struct replay_seq_result *res, size_t max,
                     size_t *n);
void rig_close(struct rig *g);
int rig_is_sync(const struct rig *g);

/** The hardware model's cost of a whole task / a synchronous step. */
double rig_task(struct rig *g, enum hw_task t, unsigned m, unsigned L);
double rig_step(struct rig *g, enum hw_task t, unsigned m, unsigned L);
/** Their dynamic energy, all devices (J). */
double rig_task_j(struct rig *g, enum hw_task t, unsigned m, unsigned L);
double rig_step_j(struct rig *g, enum hw_task t, unsigned m, unsigned L);
/** Static power of device d from the preset's fields (a GPU entry stands
 * for `count` GPUs), computed here rather than by hw_device_static_w(),
 * and of all devices. */
double rig_static_w(const struct rig *g, unsigned d);
double rig_static_w_all(const struct rig *g);

void assert_within(double got, double want, double rel, const char *what);
/** Equal to 1e-12 relative. */
void assert_close(double got, double want, const char *what);

/* ---- events, summed per device lane ----
 * The engine's busy_s is summed from task durations as tasks start and
 * idle_s is time - busy, so busy + idle == time holds by construction;
 * what can fail is the agreement between the metrics and the timeline
 * drawn by the events.
 *   task-level (async) modes: draft, verify, pre-verify and switch events
 *     are the busy time; idle events fill every gap, so busy events + idle
 *     events tile [0, time] on every lane, with no transfer events.
 *   operator-level sync (engine.c sync_step): each step's share on each
 *     device is drawn one device after another, then the cross-device
 *     transfer time on the verify device's lane; transfers count as busy
 *     on no device (idle_s includes them). Lanes other than the verify
 *     lane tile as in async. On the verify lane, once a transfer is drawn
 *     the time its device waited while later devices drew their shares
 *     gets no event (on gpu-pim about a quarter of the run), so there
 *     only busy events == busy_s and idle + transfer events <= idle_s.
 * Tolerances are relative to the run's time: each event's end - start is
 * rounded at the magnitude of the absolute clock, thousands of them on a
 * capture. */
struct evsum {
	double last_end[HW_MAX_DEV];
	double busy[HW_MAX_DEV], idle[HW_MAX_DEV], xfer[HW_MAX_DEV];
	double wasted_s; /* draft events whose outcome is wasted */
	uint64_t wasted_n;
	unsigned n;
	int overlap, bad_kind;
};
void sum_event(void *user, const struct replay_event *ev);
#define EV_REL 1e-9
void check_events(const struct rig *g, const struct evsum *l, const char *who);

/* ---- plugins ---- */

/* A scheduling policy with fixed decisions, for hand-computed schedules of
 * pre-verification (AHASD's TVC decides by timing, which a hand schedule
 * cannot follow). Task-level async; after the closed batches number
 * from .. from+times-1 of each sequence (1-based) it answers PREVERIFY
 * with `count` tokens, after every other batch DRAFT. It lives in the
 * test and is made through the host's plugin_create (parameter checks and
 * create as for a loaded plugin); the engine sees only the descriptor and
 * the state, as with a dlopen()ed one. Counter: preverify_decisions. */
extern const struct ahasd_plugin rig_script_policy;

/** tests/feedback_drafter.so in the build tree. */
const char *rig_feedback_drafter(void);
/** A plugin counter by name (asserts it exists). */
double rig_counter(const struct plugin *p, const char *name);
/** traces/NAME in the source tree. */
const char *rig_shipped(const char *name);
#define DEFAULT_TRACE "stories260K-skip3-greedy.msgpack"

#endif
