/* edc.c - see edc.h. */
#include "edc.h"

#include <math.h>
#include <string.h>

void edc_init(struct edc *e, double h_max, unsigned pht_init)
{
	memset(e, 0, sizeof *e);
	e->h_max = h_max;
	memset(e->pht, (int)(pht_init & 3u), sizeof e->pht);
}

unsigned edc_bin(const struct edc *e, double mean_entropy)
{
	if (!(mean_entropy > 0.0))
		return 0;
	double b = floor(mean_entropy / e->h_max * 8.0);
	return b >= 7.0 ? 7u : (unsigned)b;
}

unsigned edc_hist_get(const struct edc_hist *h, unsigned i)
{
	return h->bin[(h->wp + EDC_HIST - 1u - (i & 7u)) & 7u];
}

static void hist_push(struct edc_hist *h, unsigned bin)
{
	h->bin[h->wp] = (uint8_t)(bin & 7u);
	h->wp = (uint8_t)((h->wp + 1u) & 7u);
}

void edc_batch(struct edc *e, unsigned bin)
{
	hist_push(&e->leht, bin);
	if (e->llr < 7)
		e->llr++;
}

unsigned edc_index(const struct edc *e)
{
	unsigned recent = 0, older = 0;
	for (unsigned i = 0; i < 4; i++) {
		recent += edc_hist_get(&e->leht, i);
		older += edc_hist_get(&e->leht, i + 4);
	}
	/* averages of four 3-bit values, floor: still 3 bits */
	return ((older >> 2) << 6) | ((recent >> 2) << 3) | e->llr;
}

int edc_predict(const struct edc *e, unsigned index)
{
	return (e->pht[index & (EDC_PHT_SIZE - 1)] & 2u) != 0;
}

void edc_verify(struct edc *e, unsigned index, unsigned bin, int full)
{
	uint8_t *c = &e->pht[index & (EDC_PHT_SIZE - 1)];
	if (e->llr > 0)
		e->llr--;
	if (full) {
		if (*c < 3)
			(*c)++;
		hist_push(&e->lceht, bin);
	} else {
		if (*c > 0)
			(*c)--;
		e->leht = e->lceht;
		e->llr = 0;
	}
}

void edc_discard(struct edc *e, unsigned n)
{
	e->llr = (uint8_t)(e->llr > n ? e->llr - n : 0);
	e->leht = e->lceht;
}

void edc_verify_corrected(struct edc *e, unsigned index)
{
	uint8_t *c = &e->pht[index & (EDC_PHT_SIZE - 1)];
	if (e->llr > 0)
		e->llr--;
	if (*c > 0)
		(*c)--;
}
