/* hw.h - hardware timing and energy model.
 *
 * A platform is one compute device (an NPU or GPU) and optionally one PIM,
 * read from a preset file (replay/presets/NAME.ini; every constant carries
 * its source in a comment). Each device kind costs an operator the way its
 * hardware moves data (replay/HWMODEL.md has the derivations):
 *   - NPU: a weight-stationary systolic array after ONNXim: weights stream
 *     once, activations are re-read once per output-column tile, compute is
 *     bounded by weight preloads, and every GEMM pays the array's drain;
 *   - PIM: the all-bank GEMV kernel of SAIT's PIMSimulator: fixed-size tiles
 *     with a command overhead per tile and per pass, padding to whole tiles,
 *     weights re-read for every input vector (M tokens = M GEMVs unless the
 *     PIM buffers vectors), ranks split between the two models or striped;
 *   - GPU: a roofline with a fraction of peak and a kernel launch cost.
 * A plan binds a platform to the draft and target models: placement of
 * every task (and, in synchronous modes, of every operator), the ranks and
 * channels each model occupies, what stays resident and what streams over
 * the host link, and the constant part of every task cost.
 *
 * Energy: MACs x pJ/MAC + vector elements x pJ/op + bits moved x pJ/bit of
 * the path, per device; static power x simulated time is the engine's.
 */
#ifndef AHASD_HW_H
#define AHASD_HW_H

#include <stddef.h>
#include <stdint.h>

#include "trace.h"

#define HW_MAX_DEV 2
#define HW_MAX_M   256 /* largest tokens-per-step a plan supports */

enum hw_dev_kind { HW_DEV_NPU = 0, HW_DEV_GPU, HW_DEV_PIM };

enum hw_task {
	HW_TASK_DRAFT = 0, /* DLM forward, M = 1 */
	HW_TASK_VERIFY,    /* TLM forward, M = drafts + 1 */
	HW_TASK_PREVERIFY, /* TLM forward on the PIM, M = tokens */
	HW_TASK_COUNT
};

/* Without the AAU, what of a PIM task runs on the compute device. */
enum hw_aau_offload {
	HW_AAU_NONLINEAR = 0, /* norms, activations, the attention softmax */
	HW_AAU_ATTENTION,     /* those and all of attention (KV reads too) */
};

/* Where the two models' weights live among the PIM's ranks. */
enum hw_pim_layout {
	HW_PIM_PARTITIONED = 0, /* each model in its own ranks, by capacity */
	HW_PIM_STRIPED,         /* both models across every rank */
};

/* How many ranks each model gets under the partitioned layout. */
enum hw_rank_alloc {
	HW_RANKS_CAPACITY = 0, /* as many as its weights and KV cache fill */
	HW_RANKS_ALL,          /* every rank, split in proportion to bytes */
};

/* Operator placement of the synchronous (`sync`) schedule. */
enum hw_sync_placement {
	HW_SYNC_TASK = 0, /* draft model on the draft device (PIM), target
	                        * on the compute device; one device: both */
	HW_SYNC_SPECPIM,  /* SpecPIM: each operator whole on the device a
	                        * fixed offline mapping chose */
	HW_SYNC_BEST,     /* each operator where it is fastest at every
	                        * step: an idealised best case */
};

/* What happens when the models and KV caches exceed memory_bytes. */
enum hw_capacity_policy {
	HW_CAP_STREAM = 0, /* the overflow streams over the host link */
	HW_CAP_ERROR,      /* the plan is refused */
};

struct hw_device {
	char name[16]; /* "npu", "gpu", "pim" */
	enum hw_dev_kind kind;
	double freq_hz;         /* PIM: derived (command clock, see mem_bw) */
	double matrix_ops;      /* peak INT8 ops/s (2 ops per MAC) */
	double vector_ops;      /* peak elementwise ops/s (PIM: the AAU) */
	double util;            /* GPU: fraction of matrix peak; NPU, GPU:
	                          * fraction of vector peak */
	double mem_bw;          /* peak bytes/s to the weights (PIM: in-bank,
	                          * all ranks) */
	double bw_eff;          /* NPU, GPU: achieved fraction of mem_bw */
	double op_overhead_s;   /* per operator launch (NPU: non-GEMM ops) */
	double task_overhead_s; /* per task (dispatch, completion) */
	double pj_per_mac;
	double pj_per_vec_op;
	double pj_per_bit; /* weight/KV access energy on this device's path */
	double static_w;   /* static power, watts (GPU: per GPU) */
	/* GPU */
	unsigned count;   /* identical GPUs, tensor parallel */
	double tp_sync_s; /* one all-reduce between them */
	/* NPU: ONNXim weight-stationary array */
	unsigned array_dim; /* D of a D x D array */
	double accum_bytes; /* accumulator SRAM per core */
	/* PIM: PIMSimulator all-bank dataflow */
	unsigned ranks;        /* independent PIM command streams (units) */
	double rank_bytes;     /* capacity of one rank */
	unsigned channels;     /* off-chip channels the ranks sit on */
	unsigned blocks;       /* PIM blocks per rank, in lockstep */
	unsigned burst_bytes;  /* bytes per block per MAC command */
	unsigned row_bytes;    /* DRAM row (page) size */
	unsigned grf_a, grf_b; /* input / output registers per block */
	unsigned
	        vector_buffers; /* input vectors a pass serves (1: none held) */
	unsigned mode_cycles;   /* PIM-mode entry and exit per task */
	unsigned t_ccd_l, t_bl, t_rl, t_wl, t_wtr_l, t_rtp_l, t_rtrs, t_wr,
	        t_rp, t_rcd_rd, t_rcd_wr, t_ras, t_rfc, t_refi; /* cycles */
};

struct hw_platform {
	char name[64];
	char path[512]; /* file it was read from */
	unsigned n_dev;
	struct hw_device dev[HW_MAX_DEV];
	int compute;           /* index of NPU/GPU */
	int pim;               /* index of PIM or -1 */
	unsigned weight_bits;  /* weights as deployed (8: INT8) */
	unsigned kv_bits;      /* KV cache element bits */
	unsigned act_bits;     /* activation element bits for transfers */
	int aau;               /* 1: the PIM does its own nonlinear work */
	int aau_offload;       /* enum hw_aau_offload (aau = 0 only) */
	int gated_switch;      /* 1: gated PIM rank switch */
	double switch_gated_s; /* PIM DLM<->TLM switch, gated */
	double switch_slow_s;  /* the same without gating */
	double link_bw;        /* bytes/s between devices (activations) */
	double link_latency_s; /* per transfer */
	double link_pj_per_bit;
	double queue_latency_s; /* hand-off of a batch/feedback between devices */
	unsigned verify_batches;  /* queued batches one pass verifies (0: all
	                          * that are ready) */
	int sync_placement;       /* enum hw_sync_placement */
	unsigned sync_ref_tokens; /* SpecPIM mapping: verification M */
	unsigned sync_ref_kv;     /* SpecPIM mapping: KV length */
	int pim_layout;           /* enum hw_pim_layout */
	unsigned pim_draft_ranks; /* partitioned: ranks of the draft (0: by
	                          * pim_rank_alloc) */
	int pim_rank_alloc;       /* enum hw_rank_alloc */
	double pim_bus_block;     /* share of a channel's bandwidth the compute
	                          * device loses while a PIM rank on it works */
	int pim_blocking;         /* 1: a rank in PIM mode serves no normal
	                          * reads (existing PIMs); 0: it does, at the
	                          * bus share left (NeuPIMs' dual row buffers) */
	double memory_bytes; /* DRAM holding weights and KV (0: no limit) */
	unsigned kv_reserve_tokens; /* KV cache reserved per model, in tokens
	                          * (0: the target's context length) */
	double host_link_bw; /* bytes/s of the link overflow streams over */
	double host_link_latency_s;
	double host_link_pj_per_bit;
	int offload_overlap; /* 1: streaming overlaps the pass */
	int capacity_policy; /* enum hw_capacity_policy */
	/* a draft without a model (n-gram, prompt lookup; trace format 1.1
	 * draft_lookup), on the device of the draft task */
	double lookup_s;       /* one proposal: a batch's first token */
	double lookup_token_s; /* each further token of the batch */
};

/** Static power of a device entry (a GPU entry stands for `count`). */
static inline double hw_device_static_w(const struct hw_device *d)
{
	return d->static_w * (d->kind == HW_DEV_GPU && d->count ? d->count : 1);
}

/** Load a preset by name (looked up in the presets directory) or by path.
 * @return 0, -ENOENT, or -EINVAL with the file, line and key in err. */
int hw_platform_load(struct hw_platform *p, const char *name_or_path, char *err,
                     size_t errlen);
/** Override one constant, "key=value" or "device.key=value" (e.g.
 * "aau=0", "pim.mem_bw=512e9"). Unknown keys are an error. */
int hw_platform_set(struct hw_platform *p, const char *key, const char *value,
                    char *err, size_t errlen);
/** Check the device mix, set compute/pim indices and derived constants
 * (after any change). @return 0 or -EINVAL with a reason in why. */
int hw_platform_finish(struct hw_platform *p, char *why, size_t whylen);
/** Directory searched for presets by name after each directory of
 * $AHASD_PRESET_PATH (colon-separated): the source tree's replay/presets
 * when the executable is in the build tree, else the installed data dir. */
const char *hw_preset_dir(void);
/** The keys a preset may set: platform keys (device 0) or the keys of a
 * [device NAME] section (device 1), with their defaults (NULL: required).
 * @return how many, at most max. */
size_t hw_key_names(int device, const char **names, const char **defaults,
                    size_t max);
/** 1 if a platform key only matters on a platform with a PIM device. */
int hw_key_needs_pim(const char *key);
/** Write the platform as "key = value" lines (for the run record); every
 * number reads back as the value the platform holds. */
int hw_platform_describe(const struct hw_platform *p, char *buf, size_t len);

/* Cost of one task or synchronous step. */
struct hw_cost {
	double time_s;             /* start to end on its device */
	double busy_s[HW_MAX_DEV]; /* work per device inside it */
	double energy_j;           /* dynamic only, all devices */
	double energy_dev_j
	        [HW_MAX_DEV];   /* dynamic, per device it is spent on */
	double time_while_s[2]; /* a verification's time if the PIM drafts
	                          * [0] or pre-verifies [1] all along: it then
	                          * streams at hw_compute_bw_share (INFINITY
	                          * if none is left); time_s otherwise */
	double offload_bytes;   /* weights streamed over the host link */
};

struct hw_plan;

/** Precompute a plan for the platform and the two models. draft may be
 * NULL: a draft without a model (a lookup), which holds no weights, KV
 * cache or ranks, and whose draft task costs hw_lookup_cost().
 * @return 0, or -EINVAL (e.g. the models do not fit and the platform
 * cannot stream) with a message in err. */
int hw_plan_create(struct hw_plan **out, const struct hw_platform *p,
                   const struct trace_model *draft,
                   const struct trace_model *target, char *err, size_t errlen);
void hw_plan_free(struct hw_plan **plan);
const struct hw_platform *hw_plan_platform(const struct hw_plan *plan);

/** 1 if the plan's draft is a lookup (hw_plan_create with draft NULL). */
int hw_plan_lookup(const struct hw_plan *plan);

/** A lookup draft step: the batch's first token (first = 1, one proposal,
 * lookup_s) or a further one (lookup_token_s), on the draft task's device,
 * with no dynamic energy and no work on any other device. */
void hw_lookup_cost(const struct hw_plan *plan, int first, struct hw_cost *out);

/** Device index a whole task runs on in task-level placement: draft and
 * pre-verification on the PIM if there is one, verification on the
 * compute device. */
int hw_task_device(const struct hw_plan *plan, enum hw_task t);

/** Whole-task cost on its device (task-level placement), m in
 * [1, HW_MAX_M], kv_len = keys the last of the m tokens attends to. A PIM
 * task without the AAU ships work to the compute device: it lengthens
 * time_s (the PIM waits for it) and is busy_s[compute] (that device must
 * find the time for it). */
void hw_task_cost(const struct hw_plan *plan, enum hw_task t, unsigned m,
                  unsigned kv_len, struct hw_cost *out);

/** Cost of a synchronous step under the platform's sync_placement:
 * time_s is the sum over its operators and transfers (the devices wait on
 * each other), busy_s the share of each device. */
void hw_step_cost(const struct hw_plan *plan, enum hw_task t, unsigned m,
                  unsigned kv_len, struct hw_cost *out);

/** Fraction of its off-chip bandwidth the compute device keeps for a
 * verification while the PIM runs task pim_task (1 with no PIM). */
double hw_compute_bw_share(const struct hw_plan *plan, enum hw_task pim_task);

/** PIM rank switch cost (0 without a PIM). */
double hw_switch_cost(const struct hw_plan *plan, double *energy_j);

/* What a plan decided about memory, for the run record and ahasd-hw. */
struct hw_plan_info {
	double draft_bytes, target_bytes;               /* weights */
	double draft_kv_bytes, target_kv_bytes;         /* KV caches reserved */
	double draft_stream_bytes, target_stream_bytes; /* per pass, streamed */
	unsigned draft_ranks, target_ranks;       /* PIM ranks (0 without) */
	unsigned draft_channels, target_channels; /* channels they span */
};
void hw_plan_get_info(const struct hw_plan *plan, struct hw_plan_info *info);

/* One operator's cost, for ahasd-hw and tests. */
enum hw_bound { HW_BOUND_COMPUTE = 0, HW_BOUND_MEMORY, HW_BOUND_COMMAND };
struct hw_op_cost {
	const struct trace_op *op;
	int device;                 /* where it runs */
	double time_s;              /* all `repeat` executions, with overheads,
	                          * transfers and shipped work */
	double compute_s, memory_s; /* the two sides, before overheads */
	double macs, bytes, energy_j;
	enum hw_bound bound;
};
/** Fill up to max rows for task t at (m, kv_len) in task-level placement.
 * @return number of rows (ops of the model for that task). */
size_t hw_task_breakdown(const struct hw_plan *plan, enum hw_task t, unsigned m,
                         unsigned kv_len, struct hw_op_cost *rows, size_t max);
/** One operator alone on device dev of a platform (no task overhead, no
 * shipping), with `ranks` of the PIM's ranks working on it (0: all).
 * @return 0 or -EINVAL with a reason in err. */
int hw_op_eval(const struct hw_platform *p, int dev, const struct trace_op *op,
               unsigned m, unsigned kv_len, unsigned ranks,
               struct hw_op_cost *out, char *err, size_t errlen);

#endif
