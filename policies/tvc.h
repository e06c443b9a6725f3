/* tvc.h - Time-Aware Pre-Verification Control (AHASD, PAPER.md).
 *
 * Three small tables of recent (cycles, length) samples, each started from
 * offline-profiled per-token values:
 *   NVCT: NPU verification cycles per KV length,
 *   PDCT: PIM drafting cycles per draft token,
 *   PVCT: PIM pre-verification cycles per token.
 * When EDC stops look-ahead drafting while the NPU verifies:
 *   C_NPU      = mean(NVCT ratio) * L_KV * (f_PIM / f_NPU)     [PIM cycles]
 *   C_PIM_Left = C_NPU - (C_now + C_PIM_Draft(1))
 * with C_now the NPU's cycles into the current verification (converted),
 *   length     = floor(C_PIM_Left / mean(PVCT ratio)).
 * A length < 1 means keep drafting; otherwise pre-verify that many of the
 * earliest unverified drafts on the PIM.
 */
#ifndef AHASD_TVC_H
#define AHASD_TVC_H

#include <stdint.h>

#define TVC_MAX_ENTRIES 64

struct tvc_table {
	double cycles[TVC_MAX_ENTRIES];
	double len[TVC_MAX_ENTRIES];
	unsigned size, wp;
};

struct tvc {
	struct tvc_table nvct, pdct, pvct;
};

/** size entries per table (1..TVC_MAX_ENTRIES); each table starts full of
 * the profiled per-unit value (cycles for length 1). */
void tvc_init(struct tvc *t, unsigned size, double nvct_per_kv,
              double pdct_per_token, double pvct_per_token);
void tvc_record(struct tvc_table *tab, double cycles, double len);
/** Mean of cycles/len over the table. */
double tvc_ratio(const struct tvc_table *tab);
/** C_PIM_Left in PIM cycles. npu_now_cycles: NPU cycles since the current
 * verification started; freq_ratio = f_PIM / f_NPU. */
double tvc_pim_left(const struct tvc *t, uint32_t kv_len, double npu_now_cycles,
                    double freq_ratio);
/** Pre-verify length for a C_PIM_Left (0 if it is below one token). */
uint32_t tvc_preverify_len(const struct tvc *t, double pim_left);

#endif
