/* edc.h - Entropy-History-Aware Drafting Control (AHASD, PAPER.md).
 *
 * A branch-predictor-like unit deciding whether look-ahead drafting goes on:
 *  - LEHT: 8 x 3-bit entropy bins of recent draft batches. Logical index 0
 *    is the most recent batch, 7 the oldest (a circular buffer read
 *    backwards from its write pointer).
 *  - LCEHT: the same for committed (fully accepted) batches; LEHT is rolled
 *    back to it when a verification finds a rejection.
 *  - LLR: 3-bit count of unverified batches ahead of verification.
 *  - PHT: 512 x 2-bit saturating counters indexed by
 *    {avg(LEHT[4..7]), avg(LEHT[0..3]), LLR} (3+3+3 bits, MSB first);
 *    look-ahead continues iff the counter's high bit is set.
 */
#ifndef AHASD_EDC_H
#define AHASD_EDC_H

#include <stdint.h>

#define EDC_HIST     8
#define EDC_PHT_SIZE 512

struct edc_hist {
	uint8_t bin[EDC_HIST];
	uint8_t wp; /* next slot to write */
};

struct edc {
	double h_max; /* entropy range [0, h_max] in 8 bins */
	struct edc_hist leht, lceht;
	uint8_t llr;
	uint8_t pht[EDC_PHT_SIZE];
};

void edc_init(struct edc *e, double h_max, unsigned pht_init);
/** 3-bit bin of a mean entropy: floor(H / h_max * 8), clamped to [0, 7]. */
unsigned edc_bin(const struct edc *e, double mean_entropy);
/** Logical read: i = 0 most recent. */
unsigned edc_hist_get(const struct edc_hist *h, unsigned i);
/** A draft batch closed: its bin into LEHT, LLR += 1 (saturating at 7). */
void edc_batch(struct edc *e, unsigned bin);
/** The 9-bit PHT index for the current state. */
unsigned edc_index(const struct edc *e);
/** 1 if look-ahead drafting should continue for this index. */
int edc_predict(const struct edc *e, unsigned index);
/** A verification of a batch finished. index is the PHT index recorded
 * when the batch closed, bin its entropy bin, full whether it was fully
 * accepted. LLR -= 1; the counter moves up if full else down; a full batch
 * goes into LCEHT; a rejection rolls LEHT back to LCEHT and clears LLR
 * (every look-ahead batch is discarded with it). */
void edc_verify(struct edc *e, unsigned index, unsigned bin, int full);
/** A batch a pre-verification corrected was verified: LLR -= 1 and the
 * counter moves down (look-ahead past it was wrong), but LEHT is not rolled
 * back again: edc_discard() did that when the batches after it were
 * dropped, and the ones drafted since are live. */
void edc_verify_corrected(struct edc *e, unsigned index);
/** Batches discarded without verification (e.g. by pre-verification):
 * LLR -= n and LEHT rolls back to LCEHT. */
void edc_discard(struct edc *e, unsigned n);

#endif
