/* hw.h - hardware timing and energy model.
 *
 * A platform is one or two devices (compute: NPU or GPU; optionally a PIM)
 * read from a preset file (replay/presets/NAME.ini; every constant carries
 * its source in a comment). A plan binds a platform to the draft and target
 * models' operator lists and precomputes, per task kind and tokens-per-step
 * M, linear-in-L coefficients so that a task's cost at KV length L is
 * O(number of ops) to evaluate.
 *
 * Cost model per operator on a device (documented in replay/HWMODEL.md):
 *   t = overhead + max(MACs / (peak * util), bytes / (bw * bw_eff))
 *   nonlinear/norm/elementwise ops use the device's vector throughput.
 *   E_dyn = MACs * e_mac + elements * e_vec + bits moved * e_bit(path)
 * Static energy = P_static(device) * simulated time (added by the caller).
 */
#ifndef AHASD_HW_H
#define AHASD_HW_H

#include <stddef.h>
#include <stdint.h>

#include "trace.h"

#define HW_MAX_DEV 2
#define HW_MAX_M 256   /* largest tokens-per-step a plan supports */

enum hw_dev_kind { HW_DEV_NPU = 0, HW_DEV_GPU, HW_DEV_PIM };

enum hw_task {
	HW_TASK_DRAFT = 0,     /* DLM forward, M = 1 */
	HW_TASK_VERIFY,        /* TLM forward, M = drafts + 1 */
	HW_TASK_PREVERIFY,     /* TLM forward on the PIM, M = tokens */
	HW_TASK_COUNT
};

struct hw_device {
	char name[16];           /* "npu", "gpu", "pim" */
	enum hw_dev_kind kind;
	double freq_hz;
	double matrix_ops;       /* peak INT8 ops/s (2 ops per MAC) */
	double vector_ops;       /* peak elementwise ops/s */
	double util;             /* achieved fraction of compute peak */
	double mem_bw;           /* bytes/s to where the weights live */
	double bw_eff;           /* achieved fraction of mem_bw */
	double op_overhead_s;    /* fixed cost per operator launch */
	double task_overhead_s;  /* fixed cost per task (kernel graph, cmd) */
	double pj_per_mac;
	double pj_per_vec_op;
	double pj_per_bit;       /* weight/KV access energy on this device's path */
	double static_w;         /* static power, watts */
};

struct hw_platform {
	char name[64];
	char path[512];          /* file it was read from */
	unsigned n_dev;
	struct hw_device dev[HW_MAX_DEV];
	int compute;             /* index of NPU/GPU */
	int pim;                 /* index of PIM or -1 */
	unsigned weight_bits;    /* weights as deployed (8: INT8) */
	unsigned kv_bits;        /* KV cache element bits */
	unsigned act_bits;       /* activation element bits for transfers */
	int aau;                 /* 1: draft nonlinear ops stay in the PIM */
	int gated_switch;        /* 1: gated PIM rank switch */
	double switch_gated_s;   /* PIM DLM<->TLM switch, gated */
	double switch_slow_s;    /* the same without gating */
	double link_bw;          /* bytes/s between devices (activations) */
	double link_latency_s;   /* per transfer */
	double link_pj_per_bit;
	double queue_latency_s;  /* hand-off of a batch/feedback between devices */
};

/** Load a preset by name (looked up in the presets directory) or by path.
 * @return 0, -ENOENT, or -EINVAL with the file, line and key in err. */
int hw_platform_load(struct hw_platform *p, const char *name_or_path,
                     char *err, size_t errlen);
/** Override one constant, "key=value" or "device.key=value" (e.g.
 * "aau=0", "pim.mem_bw=512e9"). Unknown keys are an error. */
int hw_platform_set(struct hw_platform *p, const char *key, const char *value,
                    char *err, size_t errlen);
/** Check the device mix and set compute/pim indices (after any change of
 * the devices). @return 0 or -EINVAL with a reason in why. */
int hw_platform_finish(struct hw_platform *p, char *why, size_t whylen);
/** Directory searched for presets by name: $AHASD_PRESET_PATH, then the
 * build tree, then the installed data dir. */
const char *hw_preset_dir(void);
/** Write the platform as "key = value" lines (for the run record). */
int hw_platform_describe(const struct hw_platform *p, char *buf, size_t len);

/* Cost of one task; time on its device, busy per device, dynamic energy. */
struct hw_cost {
	double time_s;
	double busy_s[HW_MAX_DEV];
	double energy_j;         /* dynamic only, all devices */
	double energy_dev_j[HW_MAX_DEV]; /* dynamic, per device it is spent on */
};

struct hw_plan;

/** Precompute a plan for the platform and the two models.
 * Task placement: draft on the PIM if present, else on the compute device;
 * verify on the compute device; pre-verify on the PIM (else compute). */
int hw_plan_create(struct hw_plan **out, const struct hw_platform *p,
                   const struct trace_model *draft,
                   const struct trace_model *target,
                   char *err, size_t errlen);
void hw_plan_free(struct hw_plan **plan);
const struct hw_platform *hw_plan_platform(const struct hw_plan *plan);

/** Device index a whole task runs on in task-level (async) execution. */
int hw_task_device(const struct hw_plan *plan, enum hw_task t);

/** Whole-task cost on its device (async mode). m in [1, HW_MAX_M].
 * kv_len is the number of keys the last of the m tokens attends to
 * (prompt + committed + m). Without the AAU a PIM draft ships its
 * nonlinear/norm/softmax work to the compute device: the transfers and that
 * work lengthen time_s (the PIM waits) and their energy is charged to the
 * compute device in energy_dev_j; busy_s counts only the task's device. */
void hw_task_cost(const struct hw_plan *plan, enum hw_task t, unsigned m,
                  unsigned kv_len, struct hw_cost *out);

/** Operator-level split cost (sync mode): each operator on the device where
 * it is fastest, plus activation transfers when consecutive operators sit on
 * different devices; time_s is the sum (devices wait on each other). */
void hw_step_cost_split(const struct hw_plan *plan, enum hw_task t,
                        unsigned m, unsigned kv_len, struct hw_cost *out);

/** PIM rank switch cost (0 without a PIM). */
double hw_switch_cost(const struct hw_plan *plan, double *energy_j);

/* Per-operator breakdown, for ahasd-hw and tests. */
struct hw_op_cost {
	const struct trace_op *op;
	int device;
	double time_s;
	double compute_s, memory_s; /* roofline sides, before overhead */
	double macs, bytes, energy_j;
};
/** Fill up to max rows for task t at (m, kv_len) in async placement;
 * @return number of rows (ops of the model for that task). */
size_t hw_task_breakdown(const struct hw_plan *plan, enum hw_task t,
                         unsigned m, unsigned kv_len,
                         struct hw_op_cost *rows, size_t max);

#endif
