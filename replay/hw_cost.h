/* hw_cost.h - one operator's cost on one device (private to the hardware
 * model: hw_cost.c computes, hw_plan.c places and sums).
 *
 * The device's dataflow decides the cost (replay/HWMODEL.md):
 *   NPU  ONNXim weight-stationary array: bytes = weights + activations
 *        re-read per output-column tile + outputs; compute bounded by weight
 *        preloads; a drain tail per GEMM.
 *   PIM  PIMSimulator all-bank GEMV: tiles of grf_a x grf_b bursts per
 *        block, command overheads per tile and pass, padding, one pass per
 *        input vector (or per vector_buffers vectors), refresh.
 *   GPU  roofline: fraction of compute and bandwidth peaks plus launch.
 */
#ifndef AHASD_HW_COST_H
#define AHASD_HW_COST_H

#include "hw.h"

/* Where an operator runs and what it may use there. */
struct hw_dctx {
	const struct hw_platform *p;
	int dev;
	double bw;      /* NPU/GPU: peak bytes/s to this model's memory */
	unsigned ranks; /* PIM: ranks (command streams) working on it */
};

/* One operator (all its `repeat` executions) on one device, shipped work
 * included. */
struct hw_opc {
	double time;             /* wall time of the operator */
	double busy[HW_MAX_DEV]; /* work per device */
	double e[HW_MAX_DEV];    /* dynamic energy per device */
	/* for the breakdown */
	double compute_s, memory_s, macs, bytes;
	enum hw_bound bound;
	int dev; /* device of the main work */
};

/* Derived PIM constants (cycles), from the timing keys. */
struct hw_pim_tiles {
	double f;     /* command clock, Hz */
	double tccd;  /* column command spacing, max(tCCD_L, BL/2) */
	double lanes; /* weights per burst */
	double alu;   /* ALU cycles per MAC command (one vector) */
	double r2w, w2r, r2p, w2p; /* read/write turnarounds (PIMSimulator's
	                            * Configuration.h) */
	double t_row;              /* row switch inside a tile */
	double g_out;              /* last MAC -> first GRF write */
	double f_ref;              /* refresh factor */
	unsigned r_rows;           /* DRAM rows per tile */
};
void hw_pim_tiles(const struct hw_platform *p, const struct hw_device *d,
                  struct hw_pim_tiles *t);

/* Does op need the AAU on a PIM, under the platform's reading? Whole:
 * the op moves to the compute device; else only its softmax does. */
int hw_op_ships(const struct hw_platform *p, const struct trace_op *op,
                int *whole);

/** Cost of op at m tokens and KV length kv on dc (a PIM without the AAU
 * ships what it cannot do to the compute device, whose context is cc). */
void hw_op_cost(const struct hw_dctx *dc, const struct hw_dctx *cc,
                const struct trace_op *op, unsigned m, unsigned kv,
                struct hw_opc *out);

/* Width of the activations entering op (for transfers between devices). */
double hw_op_in_width(const struct trace_op *op);

/* Is op's cost a function of the KV length? */
int hw_op_kv_dependent(const struct trace_op *op);

#endif
