/* tvc.c - see tvc.h. */
#include "tvc.h"

#include <math.h>

static void table_init(struct tvc_table *tab, unsigned size, double per_unit)
{
	tab->size = size < 1                 ? 1
	            : size > TVC_MAX_ENTRIES ? TVC_MAX_ENTRIES
	                                     : size;
	tab->wp = 0;
	for (unsigned i = 0; i < tab->size; i++) {
		tab->cycles[i] = per_unit;
		tab->len[i] = 1.0;
	}
}

void tvc_init(struct tvc *t, unsigned size, double nvct_per_kv,
              double pdct_per_token, double pvct_per_token)
{
	table_init(&t->nvct, size, nvct_per_kv);
	table_init(&t->pdct, size, pdct_per_token);
	table_init(&t->pvct, size, pvct_per_token);
}

void tvc_record(struct tvc_table *tab, double cycles, double len)
{
	if (!(len > 0.0))
		return;
	tab->cycles[tab->wp] = cycles;
	tab->len[tab->wp] = len;
	tab->wp = (tab->wp + 1) % tab->size;
}

double tvc_ratio(const struct tvc_table *tab)
{
	double sum = 0.0;
	for (unsigned i = 0; i < tab->size; i++)
		sum += tab->cycles[i] / tab->len[i];
	return sum / tab->size;
}

double tvc_pim_left(const struct tvc *t, uint32_t kv_len, double npu_now_cycles,
                    double freq_ratio)
{
	double c_npu = tvc_ratio(&t->nvct) * kv_len * freq_ratio;
	double c_now = npu_now_cycles * freq_ratio;
	return c_npu - (c_now + tvc_ratio(&t->pdct) * 1.0);
}

uint32_t tvc_preverify_len(const struct tvc *t, double pim_left)
{
	double per = tvc_ratio(&t->pvct);
	if (!(pim_left > 0.0) || !(per > 0.0))
		return 0;
	double n = floor(pim_left / per);
	return n >= 4294967295.0 ? UINT32_MAX : (uint32_t)n;
}
