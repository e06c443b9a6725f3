/* hw_preset.c - hardware presets: the table of keys, reading a preset file
 * (replay/presets/NAME.ini, through ini.c), overriding one key, and writing
 * the resolved platform back as "key = value" lines.
 *
 * A key is required unless its table entry gives a default. A preset may
 * start its [platform] section with "base = NAME" to inherit every key and
 * device of another preset and override some of them.
 */
#include "hw.h"
#include "ini.h"
#include "util.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

#define MAX_BASE_DEPTH 8

enum key_type { KT_DOUBLE, KT_UINT, KT_BOOL, KT_KIND, KT_ENUM };

/* Device kinds a key applies to. */
#define K_NPU (1u << HW_DEV_NPU)
#define K_GPU (1u << HW_DEV_GPU)
#define K_PIM (1u << HW_DEV_PIM)
#define K_ALL (K_NPU | K_GPU | K_PIM)

struct key_desc {
	const char *name;
	enum key_type type;
	size_t off;
	double lo, hi; /* valid range, inclusive unless lo_open */
	bool lo_open;
	const char *def;          /* default value, NULL: required */
	unsigned kinds;           /* device keys: kinds it applies to */
	const char *const *names; /* KT_ENUM: value names, NULL-terminated */
};

static const char *const aau_offload_names[] = { "nonlinear", "attention",
	                                         NULL };
static const char *const pim_layout_names[] = { "partitioned", "striped",
	                                        NULL };
static const char *const sync_placement_names[] = { "task", "specpim", "best",
	                                            NULL };
static const char *const capacity_names[] = { "stream", "error", NULL };
static const char *const rank_alloc_names[] = { "capacity", "all", NULL };

#define PK(n, t, lo, hi, open, def)                                           \
	{                                                                     \
#n, t, offsetof(struct hw_platform, n), lo, hi, open, def, 0, \
		        NULL                                                  \
	}
#define PE(n, names, def)                                                  \
	{                                                                  \
#n, KT_ENUM, offsetof(struct hw_platform, n), 0, 0, false, \
		        def, 0, names                                      \
	}
static const struct key_desc platform_keys[] = {
	PK(weight_bits, KT_UINT, 1, 32, false, NULL),
	PK(kv_bits, KT_UINT, 1, 32, false, NULL),
	PK(act_bits, KT_UINT, 1, 32, false, NULL),
	PK(aau, KT_BOOL, 0, 1, false, NULL),
	PE(aau_offload, aau_offload_names, "nonlinear"),
	PK(gated_switch, KT_BOOL, 0, 1, false, NULL),
	PK(switch_gated_s, KT_DOUBLE, 0, HUGE_VAL, false, NULL),
	PK(switch_slow_s, KT_DOUBLE, 0, HUGE_VAL, false, NULL),
	PK(link_bw, KT_DOUBLE, 0, HUGE_VAL, true, NULL),
	PK(link_latency_s, KT_DOUBLE, 0, HUGE_VAL, false, NULL),
	PK(link_pj_per_bit, KT_DOUBLE, 0, HUGE_VAL, false, NULL),
	PK(queue_latency_s, KT_DOUBLE, 0, HUGE_VAL, false, NULL),
	PK(verify_batches, KT_UINT, 0, HW_MAX_M, false, "1"),
	PE(sync_placement, sync_placement_names, "task"),
	PK(sync_ref_tokens, KT_UINT, 1, HW_MAX_M, false, "9"),
	PK(sync_ref_kv, KT_UINT, 1, 1u << 24, false, "1024"),
	PE(pim_layout, pim_layout_names, "partitioned"),
	PK(pim_draft_ranks, KT_UINT, 0, 4096, false, "0"),
	PE(pim_rank_alloc, rank_alloc_names, "capacity"),
	PK(pim_bus_block, KT_DOUBLE, 0, 1, false, "1"),
	PK(pim_blocking, KT_BOOL, 0, 1, false, "1"),
	PK(memory_bytes, KT_DOUBLE, 0, HUGE_VAL, false, "0"),
	PK(kv_reserve_tokens, KT_UINT, 0, 1u << 24, false, "0"),
	PK(host_link_bw, KT_DOUBLE, 0, HUGE_VAL, false, "0"),
	PK(host_link_latency_s, KT_DOUBLE, 0, HUGE_VAL, false, "0"),
	PK(host_link_pj_per_bit, KT_DOUBLE, 0, HUGE_VAL, false, "0"),
	PK(offload_overlap, KT_BOOL, 0, 1, false, "1"),
	PE(capacity_policy, capacity_names, "stream"),
	/* drafts without a model (HWMODEL.md, "Drafts without a model"):
	 * 35 us per proposal is SpecDecode-Bench's fitted n-gram proposal
	 * time, 0.5875 % of a 6.0 ms Llama-3.1-8B step on H100 */
	PK(lookup_s, KT_DOUBLE, 0, HUGE_VAL, false, "35e-6"),
	PK(lookup_token_s, KT_DOUBLE, 0, HUGE_VAL, false, "0"),
};
#undef PK
#undef PE

#define DK(n, t, lo, hi, open, def, kinds)                               \
	{                                                                \
#n, t, offsetof(struct hw_device, n), lo, hi, open, def, \
		        kinds, NULL                                      \
	}
static const struct key_desc device_keys[] = {
	DK(kind, KT_KIND, 0, 0, false, NULL, K_ALL),
	DK(freq_hz, KT_DOUBLE, 0, HUGE_VAL, true, NULL, K_NPU | K_GPU),
	DK(matrix_ops, KT_DOUBLE, 0, HUGE_VAL, true, NULL, K_ALL),
	DK(vector_ops, KT_DOUBLE, 0, HUGE_VAL, true, NULL, K_ALL),
	DK(util, KT_DOUBLE, 0, 1, true, NULL, K_NPU | K_GPU),
	DK(mem_bw, KT_DOUBLE, 0, HUGE_VAL, true, NULL, K_ALL),
	DK(bw_eff, KT_DOUBLE, 0, 1, true, NULL, K_NPU | K_GPU),
	DK(op_overhead_s, KT_DOUBLE, 0, HUGE_VAL, false, NULL, K_ALL),
	DK(task_overhead_s, KT_DOUBLE, 0, HUGE_VAL, false, NULL, K_ALL),
	DK(pj_per_mac, KT_DOUBLE, 0, HUGE_VAL, false, NULL, K_ALL),
	DK(pj_per_vec_op, KT_DOUBLE, 0, HUGE_VAL, false, NULL, K_ALL),
	DK(pj_per_bit, KT_DOUBLE, 0, HUGE_VAL, false, NULL, K_ALL),
	DK(static_w, KT_DOUBLE, 0, HUGE_VAL, false, NULL, K_ALL),
	DK(count, KT_UINT, 1, 64, false, "1", K_GPU),
	DK(tp_sync_s, KT_DOUBLE, 0, HUGE_VAL, false, "0", K_GPU),
	DK(array_dim, KT_UINT, 1, 4096, false, NULL, K_NPU),
	DK(accum_bytes, KT_DOUBLE, 1, HUGE_VAL, false, NULL, K_NPU),
	DK(ranks, KT_UINT, 1, 4096, false, NULL, K_PIM),
	DK(rank_bytes, KT_DOUBLE, 0, HUGE_VAL, true, NULL, K_PIM),
	DK(channels, KT_UINT, 1, 4096, false, NULL, K_PIM),
	DK(blocks, KT_UINT, 1, 1024, false, NULL, K_PIM),
	DK(burst_bytes, KT_UINT, 1, 4096, false, NULL, K_PIM),
	DK(row_bytes, KT_UINT, 1, 1u << 20, false, NULL, K_PIM),
	DK(grf_a, KT_UINT, 1, 4096, false, NULL, K_PIM),
	DK(grf_b, KT_UINT, 1, 4096, false, NULL, K_PIM),
	DK(vector_buffers, KT_UINT, 1, HW_MAX_M, false, "1", K_PIM),
	DK(mode_cycles, KT_UINT, 0, 1u << 24, false, NULL, K_PIM),
	DK(t_ccd_l, KT_UINT, 1, 4096, false, NULL, K_PIM),
	DK(t_bl, KT_UINT, 1, 4096, false, NULL, K_PIM),
	DK(t_rl, KT_UINT, 0, 4096, false, NULL, K_PIM),
	DK(t_wl, KT_UINT, 0, 4096, false, NULL, K_PIM),
	DK(t_wtr_l, KT_UINT, 0, 4096, false, NULL, K_PIM),
	DK(t_rtp_l, KT_UINT, 0, 4096, false, NULL, K_PIM),
	DK(t_rtrs, KT_UINT, 0, 4096, false, NULL, K_PIM),
	DK(t_wr, KT_UINT, 0, 4096, false, NULL, K_PIM),
	DK(t_rp, KT_UINT, 0, 4096, false, NULL, K_PIM),
	DK(t_rcd_rd, KT_UINT, 0, 4096, false, NULL, K_PIM),
	DK(t_rcd_wr, KT_UINT, 0, 4096, false, NULL, K_PIM),
	DK(t_ras, KT_UINT, 0, 4096, false, NULL, K_PIM),
	DK(t_rfc, KT_UINT, 0, 1u << 20, false, NULL, K_PIM),
	DK(t_refi, KT_UINT, 1, 1u << 24, false, NULL, K_PIM),
};
#undef DK

#define N_PKEYS (sizeof platform_keys / sizeof platform_keys[0])
#define N_DKEYS (sizeof device_keys / sizeof device_keys[0])
_Static_assert(N_PKEYS <= 64 && N_DKEYS <= 64, "key bit masks are 64 bits");

static const char *const kind_names[] = { "npu", "gpu", "pim" };

static const struct key_desc *find_key(const struct key_desc *tab, size_t n,
                                       const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(tab[i].name, name) == 0)
			return &tab[i];
	return NULL;
}

/* " (did you mean 'X'?)" for a key not in tab, or "". */
static const char *key_hint(const struct key_desc *tab, size_t n,
                            const char *name, char *buf, size_t len)
{
	const char *cands[64];
	for (size_t i = 0; i < n && i < 64; i++)
		cands[i] = tab[i].name;
	const char *c = util_closest(name, cands, n < 64 ? n : 64);
	if (c)
		snprintf(buf, len, " (did you mean '%s'?)", c);
	else
		buf[0] = '\0';
	return buf;
}

/* Parse a value for key kd into base+kd->off. @return 0 or -EINVAL with a
 * reason (no location) in why. */
static int parse_value(const struct key_desc *kd, void *base, const char *s,
                       char *why, size_t whylen)
{
	char *end;
	double v;

	if (kd->type == KT_KIND) {
		for (size_t i = 0; i < 3; i++) {
			if (strcmp(s, kind_names[i]) == 0) {
				*(enum hw_dev_kind *)((char *)base + kd->off) =
				        (enum hw_dev_kind)i;
				return 0;
			}
		}
		util_set_err(why, whylen,
		             "'%s' is not a device kind (npu, gpu, pim)", s);
		return -EINVAL;
	}
	if (kd->type == KT_ENUM) {
		char list[256];
		size_t pos = 0;
		for (size_t i = 0; kd->names[i]; i++) {
			if (strcmp(s, kd->names[i]) == 0) {
				*(int *)((char *)base + kd->off) = (int)i;
				return 0;
			}
			pos += (size_t)snprintf(list + pos, sizeof list - pos,
			                        "%s%s", i ? ", " : "",
			                        kd->names[i]);
		}
		util_set_err(why, whylen, "'%s' is not one of %s", s, list);
		return -EINVAL;
	}
	errno = 0;
	v = strtod(s, &end);
	if (end == s || *end != '\0' || errno == ERANGE || !isfinite(v)) {
		util_set_err(why, whylen, "'%s' is not a number", s);
		return -EINVAL;
	}
	if (v < kd->lo || v > kd->hi || (kd->lo_open && v == kd->lo)) {
		if (kd->hi == HUGE_VAL)
			util_set_err(why, whylen, "%s must be %s %g", s,
			             kd->lo_open ? ">" : ">=", kd->lo);
		else
			util_set_err(why, whylen, "%s must be in %c%g, %g]", s,
			             kd->lo_open ? '(' : '[', kd->lo, kd->hi);
		return -EINVAL;
	}
	switch (kd->type) {
	case KT_DOUBLE: *(double *)((char *)base + kd->off) = v; break;
	case KT_UINT:
		if (v != floor(v)) {
			util_set_err(why, whylen, "%s must be an integer", s);
			return -EINVAL;
		}
		*(unsigned *)((char *)base + kd->off) = (unsigned)v;
		break;
	case KT_BOOL:
		if (v != 0 && v != 1) {
			util_set_err(why, whylen, "%s must be 0 or 1", s);
			return -EINVAL;
		}
		*(int *)((char *)base + kd->off) = (int)v;
		break;
	case KT_KIND:
	case KT_ENUM: break;
	}
	return 0;
}

int hw_platform_finish(struct hw_platform *p, char *why, size_t whylen)
{
	p->compute = -1;
	p->pim = -1;
	if (p->n_dev < 1 || p->n_dev > HW_MAX_DEV) {
		util_set_err(why, whylen,
		             "need 1 or 2 [device NAME] sections, found %u",
		             p->n_dev);
		return -EINVAL;
	}
	for (unsigned i = 0; i < p->n_dev; i++) {
		if (p->dev[i].kind == HW_DEV_PIM) {
			if (p->pim >= 0) {
				util_set_err(why, whylen,
				             "more than one pim device");
				return -EINVAL;
			}
			p->pim = (int)i;
		} else {
			if (p->compute >= 0) {
				util_set_err(why, whylen,
				             "more than one compute (npu/gpu) "
				             "device");
				return -EINVAL;
			}
			p->compute = (int)i;
		}
	}
	if (p->compute < 0) {
		util_set_err(why, whylen, "no compute (npu/gpu) device");
		return -EINVAL;
	}
	for (unsigned i = 0; i < p->n_dev; i++) {
		struct hw_device *d = &p->dev[i];
		if (d->kind != HW_DEV_PIM)
			continue;
		if (d->burst_bytes * 8 < p->weight_bits) {
			util_set_err(why, whylen,
			             "%s: a burst of %u bytes holds no "
			             "%u-bit weight",
			             d->name, d->burst_bytes, p->weight_bits);
			return -EINVAL;
		}
		if (d->row_bytes < d->burst_bytes || d->channels > d->ranks ||
		    d->channels > 64) {
			util_set_err(why, whylen,
			             "%s: need burst_bytes <= row_bytes "
			             "and channels <= ranks, channels <= 64",
			             d->name);
			return -EINVAL;
		}
		/* the command clock that gives mem_bw: every rank's blocks read
		 * one burst per column command, one command per max(tCCD_L,
		 * BL/2) cycles */
		const double tccd = d->t_ccd_l > d->t_bl / 2.0 ? d->t_ccd_l
		                                               : d->t_bl / 2.0;
		d->freq_hz = d->mem_bw * tccd /
		             ((double)d->ranks * d->blocks * d->burst_bytes);
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Reading a preset file                                               */

struct loader {
	struct hw_platform *p;
	struct chain *chain;
	int sect; /* -1 none, 0 platform, d + 1 device d */
	bool have_platform, have_name, keys_seen;
	unsigned platform_line;
	unsigned dev_line[HW_MAX_DEV];
	/* keys given so far (by this file or a base), and by this file */
	uint64_t pset, dset[HW_MAX_DEV];
	uint64_t pseen, dseen[HW_MAX_DEV];
};

/* The files being read, outermost first, to refuse an inheritance cycle. */
struct chain {
	const char *path[MAX_BASE_DEPTH + 1];
	int depth;
};

static int load_preset(struct hw_platform *p, const char *name_or_path,
                       struct chain *ch, char *err, size_t errlen);

static int load_base(struct loader *L, const char *name, char *why,
                     size_t whylen)
{
	struct hw_platform b;
	char berr[512];
	if (L->chain->depth >= MAX_BASE_DEPTH) {
		util_set_err(why, whylen,
		             "presets inherit more than %d levels deep",
		             MAX_BASE_DEPTH);
		return -1;
	}
	int rc = load_preset(&b, name, L->chain, berr, sizeof berr);
	if (rc == -ELOOP) {
		util_set_err(why, whylen, "%s", berr);
		return -1;
	}
	if (rc) {
		util_set_err(why, whylen, "base preset: %s", berr);
		return -1;
	}
	/* keep this file's own identity */
	memcpy(b.name, L->p->name, sizeof b.name);
	memcpy(b.path, L->p->path, sizeof b.path);
	*L->p = b;
	L->pset = ~0ull;
	for (unsigned d = 0; d < b.n_dev; d++)
		L->dset[d] = ~0ull;
	return 0;
}

static int on_item(void *user, const struct ini_item *it, char *why,
                   size_t whylen)
{
	struct loader *L = user;
	struct hw_platform *p = L->p;

	if (!it->key) {
		if (!strcmp(it->section, "platform") && !*it->name) {
			if (L->have_platform) {
				util_set_err(why, whylen,
				             "duplicate [platform]");
				return -1;
			}
			L->have_platform = true;
			L->platform_line = it->line;
			L->sect = 0;
			return 0;
		}
		if (!strcmp(it->section, "device") && *it->name) {
			if (strlen(it->name) >= sizeof p->dev[0].name) {
				util_set_err(why, whylen,
				             "device name longer than %zu",
				             sizeof p->dev[0].name - 1);
				return -1;
			}
			for (unsigned i = 0; i < p->n_dev; i++) {
				if (strcmp(p->dev[i].name, it->name))
					continue;
				if (L->dev_line[i]) {
					util_set_err(why, whylen,
					             "duplicate device '%s'",
					             it->name);
					return -1;
				}
				/* a base's device, overridden here */
				L->dev_line[i] = it->line;
				L->sect = (int)i + 1;
				return 0;
			}
			if (p->n_dev == HW_MAX_DEV) {
				util_set_err(why, whylen,
				             "more than %d devices",
				             HW_MAX_DEV);
				return -1;
			}
			struct hw_device *d = &p->dev[p->n_dev];
			memset(d, 0, sizeof *d);
			snprintf(d->name, sizeof d->name, "%s", it->name);
			L->dev_line[p->n_dev] = it->line;
			L->dset[p->n_dev] = L->dseen[p->n_dev] = 0;
			p->n_dev++;
			L->sect = (int)p->n_dev;
			return 0;
		}
		util_set_err(why, whylen,
		             "unknown section [%s%s%s] (want [platform] "
		             "or [device NAME])",
		             it->section, *it->name ? " " : "", it->name);
		return -1;
	}
	if (L->sect < 0) {
		util_set_err(why, whylen, "key outside a section");
		return -1;
	}
	if (L->sect == 0 && !strcmp(it->key, "base")) {
		if (L->keys_seen || p->n_dev) {
			util_set_err(why, whylen,
			             "base must be the first key of the "
			             "file");
			return -1;
		}
		L->keys_seen = true;
		return load_base(L, it->value, why, whylen);
	}
	L->keys_seen = true;
	if (L->sect == 0 && !strcmp(it->key, "name")) {
		if (L->have_name) {
			util_set_err(why, whylen, "duplicate key");
			return -1;
		}
		if (!*it->value || strlen(it->value) >= sizeof p->name) {
			util_set_err(why, whylen, "empty or too long");
			return -1;
		}
		snprintf(p->name, sizeof p->name, "%s", it->value);
		L->have_name = true;
		return 0;
	}
	const struct key_desc *tab = L->sect == 0 ? platform_keys : device_keys;
	size_t n = L->sect == 0 ? N_PKEYS : N_DKEYS;
	const struct key_desc *kd = find_key(tab, n, it->key);
	uint64_t *set = L->sect == 0 ? &L->pset : &L->dset[L->sect - 1];
	uint64_t *seen = L->sect == 0 ? &L->pseen : &L->dseen[L->sect - 1];
	void *base = L->sect == 0 ? (void *)p : (void *)&p->dev[L->sect - 1];
	if (!kd) {
		char hint[96];
		util_set_err(why, whylen, "unknown key in [%s]%s",
		             L->sect == 0 ? "platform" : "device",
		             key_hint(tab, n, it->key, hint, sizeof hint));
		return -1;
	}
	uint64_t bit = 1ull << (kd - tab);
	if (*seen & bit) {
		util_set_err(why, whylen, "duplicate key");
		return -1;
	}
	if (L->sect > 0) {
		const struct hw_device *d = &p->dev[L->sect - 1];
		const bool kind_set = (*set & 1ull) != 0;
		if (kd->type == KT_KIND && kind_set) {
			util_set_err(why, whylen,
			             "the kind of inherited device '%s' "
			             "cannot change",
			             d->name);
			return -1;
		}
		if (kd->type != KT_KIND && !kind_set) {
			util_set_err(why, whylen,
			             "kind must be the first key of "
			             "[device %s]",
			             d->name);
			return -1;
		}
		if (kd->type != KT_KIND && !(kd->kinds & (1u << d->kind))) {
			util_set_err(why, whylen, "not a key of %s devices",
			             kind_names[d->kind]);
			return -1;
		}
	}
	if (!*it->value) {
		util_set_err(why, whylen, "missing value");
		return -1;
	}
	if (parse_value(kd, base, it->value, why, whylen))
		return -1;
	*set |= bit;
	*seen |= bit;
	return 0;
}

static int load_file(struct hw_platform *p, const char *path, struct chain *ch,
                     char *err, size_t errlen)
{
	struct loader L = { .p = p, .chain = ch, .sect = -1 };
	char why[256];
	int rc;

	memset(p, 0, sizeof *p);
	p->compute = -1;
	p->pim = -1;
	if (strlen(path) >= sizeof p->path) {
		util_set_err(err, errlen, "%s: path longer than %zu", path,
		             sizeof p->path - 1);
		return -ENAMETOOLONG;
	}
	memcpy(p->path, path, strlen(path) + 1);
	rc = ini_parse_file(path, on_item, &L, err, errlen);
	if (rc)
		return rc;
	if (!L.have_platform) {
		util_set_err(err, errlen, "%s: no [platform] section", path);
		return -EINVAL;
	}
	if (!L.have_name) {
		util_set_err(err, errlen,
		             "%s:%u:name: missing key in [platform]", path,
		             L.platform_line);
		return -EINVAL;
	}
	for (size_t i = 0; i < N_PKEYS; i++) {
		const struct key_desc *kd = &platform_keys[i];
		if (L.pset & (1ull << i))
			continue;
		if (!kd->def) {
			util_set_err(err, errlen,
			             "%s:%u:%s: missing key in [platform]",
			             path, L.platform_line, kd->name);
			return -EINVAL;
		}
		rc = parse_value(kd, p, kd->def, why, sizeof why);
		assert(rc == 0);
	}
	for (unsigned d = 0; d < p->n_dev; d++) {
		for (size_t i = 0; i < N_DKEYS; i++) {
			const struct key_desc *kd = &device_keys[i];
			if (L.dset[d] & (1ull << i))
				continue;
			if (i > 0 && !(kd->kinds & (1u << p->dev[d].kind)))
				continue;
			if (!kd->def) {
				util_set_err(
				        err, errlen,
				        "%s:%u:%s: missing key in [device %s]",
				        path, L.dev_line[d], kd->name,
				        p->dev[d].name);
				return -EINVAL;
			}
			rc = parse_value(kd, &p->dev[d], kd->def, why,
			                 sizeof why);
			assert(rc == 0);
		}
	}
	rc = hw_platform_finish(p, why, sizeof why);
	if (rc)
		util_set_err(err, errlen, "%s: %s", path, why);
	return rc;
}

const char *hw_preset_dir(void)
{
	if (util_exe_in_build_tree())
		return AHASD_BUILD_PRESET_DIR;
	return AHASD_PRESET_DIR;
}

static int load_preset(struct hw_platform *p, const char *name_or_path,
                       struct chain *ch, char *err, size_t errlen)
{
	char real[PATH_MAX];
	char path[PATH_MAX];
	size_t n = strlen(name_or_path);
	int w;

	if (n == 0) {
		util_set_err(err, errlen, "empty preset name");
		return -EINVAL;
	}
	if (strchr(name_or_path, '/') ||
	    (n > 4 && strcmp(name_or_path + n - 4, ".ini") == 0))
		w = snprintf(path, sizeof path, "%s", name_or_path);
	else if (util_find_ini(getenv("AHASD_PRESET_PATH"), hw_preset_dir(),
	                       name_or_path, path, sizeof path) == 0)
		w = (int)strlen(path);
	else {
		const char *env = getenv("AHASD_PRESET_PATH");
		char sug[64], hint[96] = "";
		if (util_suggest_file(name_or_path, env, hw_preset_dir(),
		                      ".ini", sug))
			snprintf(hint, sizeof hint, " (did you mean '%s'?)",
			         sug);
		util_set_err(err, errlen,
		             "preset '%s' not found%s (looked in "
		             "AHASD_PRESET_PATH=%s, %s)",
		             name_or_path, hint, env && *env ? env : "(unset)",
		             hw_preset_dir());
		return -ENOENT;
	}
	if (w < 0 || (size_t)w >= sizeof path) {
		util_set_err(err, errlen, "preset path too long: %s",
		             name_or_path);
		return -ENAMETOOLONG;
	}
	if (access(path, R_OK) != 0) {
		int e = errno;

		util_set_err(err, errlen, "preset '%s': %s: %s", name_or_path,
		             path, strerror(e));
		return e == ENOENT ? -ENOENT : -e;
	}
	if (!realpath(path, real))
		snprintf(real, sizeof real, "%s", path);
	for (int i = 0; i < ch->depth; i++) {
		if (strcmp(ch->path[i], real) == 0) {
			util_set_err(err, errlen,
			             "preset %s inherits from itself "
			             "(base chain of %d files)",
			             path, ch->depth);
			return -ELOOP;
		}
	}
	ch->path[ch->depth++] = real;
	int rc = load_file(p, path, ch, err, errlen);
	ch->depth--;
	return rc;
}

int hw_platform_load(struct hw_platform *p, const char *name_or_path, char *err,
                     size_t errlen)
{
	struct chain ch = { .depth = 0 };
	return load_preset(p, name_or_path, &ch, err, errlen);
}

int hw_platform_set(struct hw_platform *p, const char *key, const char *value,
                    char *err, size_t errlen)
{
	struct hw_platform tmp = *p;
	const char *dot = strchr(key, '.');
	const struct key_desc *kd;
	void *base;
	char why[256];
	int rc;

	if (!dot) {
		if (strcmp(key, "name") == 0) {
			if (strlen(value) >= sizeof p->name || !*value) {
				util_set_err(err, errlen,
				             "set name: empty or too long");
				return -EINVAL;
			}
			snprintf(p->name, sizeof p->name, "%s", value);
			return 0;
		}
		kd = find_key(platform_keys, N_PKEYS, key);
		if (!kd) {
			char hint[96];
			util_set_err(err, errlen,
			             "set %s: unknown platform key%s", key,
			             key_hint(platform_keys, N_PKEYS, key, hint,
			                      sizeof hint));
			return -EINVAL;
		}
		base = &tmp;
	} else {
		size_t dl = (size_t)(dot - key);
		int di = -1;

		for (unsigned i = 0; i < tmp.n_dev; i++)
			if (strlen(tmp.dev[i].name) == dl &&
			    strncmp(tmp.dev[i].name, key, dl) == 0)
				di = (int)i;
		if (di < 0) {
			util_set_err(err, errlen,
			             "set %s: no device '%.*s' in preset %s",
			             key, (int)dl, key, p->name);
			return -EINVAL;
		}
		kd = find_key(device_keys, N_DKEYS, dot + 1);
		if (!kd) {
			char hint[96];
			util_set_err(err, errlen,
			             "set %s: unknown device key "
			             "'%s'%s",
			             key, dot + 1,
			             key_hint(device_keys, N_DKEYS, dot + 1,
			                      hint, sizeof hint));
			return -EINVAL;
		}
		if (kd->type == KT_KIND) {
			util_set_err(err, errlen,
			             "set %s: a device's kind cannot be "
			             "changed by an override",
			             key);
			return -EINVAL;
		}
		if (!(kd->kinds & (1u << tmp.dev[di].kind))) {
			util_set_err(err, errlen,
			             "set %s: not a key of %s devices", key,
			             kind_names[tmp.dev[di].kind]);
			return -EINVAL;
		}
		base = &tmp.dev[di];
	}
	rc = parse_value(kd, base, value, why, sizeof why);
	if (!rc)
		rc = hw_platform_finish(&tmp, why, sizeof why);
	if (rc) {
		util_set_err(err, errlen, "set %s: %s", key, why);
		return rc;
	}
	*p = tmp;
	return 0;
}

static int describe_key(const struct key_desc *kd, const void *base,
                        const char *prefix, char *buf, size_t len, size_t *pos)
{
	const char *b = base;
	int w;

	if (*pos >= len)
		return -ENOSPC;
	switch (kd->type) {
	case KT_DOUBLE: {
		/* 12 digits as the presets write them; all 17 when that would
		 * not read back as the same double (a swept value such as
		 * 1e11/3), so that the stored configuration is the one run */
		const double v = *(const double *)(b + kd->off);
		char num[32];

		snprintf(num, sizeof num, "%.12g", v);
		if (strtod(num, NULL) != v)
			snprintf(num, sizeof num, "%.17g", v);
		w = snprintf(buf + *pos, len - *pos, "%s%s = %s\n", prefix,
		             kd->name, num);
		break;
	}
	case KT_UINT:
		w = snprintf(buf + *pos, len - *pos, "%s%s = %u\n", prefix,
		             kd->name, *(const unsigned *)(b + kd->off));
		break;
	case KT_BOOL:
		w = snprintf(buf + *pos, len - *pos, "%s%s = %d\n", prefix,
		             kd->name, *(const int *)(b + kd->off));
		break;
	case KT_ENUM:
		w = snprintf(buf + *pos, len - *pos, "%s%s = %s\n", prefix,
		             kd->name, kd->names[*(const int *)(b + kd->off)]);
		break;
	case KT_KIND:
	default:
		w = snprintf(
		        buf + *pos, len - *pos, "%s%s = %s\n", prefix, kd->name,
		        kind_names[*(const enum hw_dev_kind *)(b + kd->off)]);
		break;
	}
	if (w < 0 || (size_t)w >= len - *pos)
		return -ENOSPC;
	*pos += (size_t)w;
	return 0;
}

int hw_platform_describe(const struct hw_platform *p, char *buf, size_t len)
{
	size_t pos = 0;
	char prefix[32];
	int w;

	if (len == 0)
		return -ENOSPC;
	buf[0] = '\0';
	w = snprintf(buf, len, "name = %s\n", p->name);
	if (w < 0 || (size_t)w >= len)
		return -ENOSPC;
	pos = (size_t)w;
	for (size_t i = 0; i < N_PKEYS; i++)
		if (describe_key(&platform_keys[i], p, "", buf, len, &pos))
			return -ENOSPC;
	for (unsigned d = 0; d < p->n_dev; d++) {
		snprintf(prefix, sizeof prefix, "%s.", p->dev[d].name);
		for (size_t i = 0; i < N_DKEYS; i++) {
			if (!(device_keys[i].kinds & (1u << p->dev[d].kind)))
				continue;
			if (describe_key(&device_keys[i], &p->dev[d], prefix,
			                 buf, len, &pos))
				return -ENOSPC;
		}
	}
	return 0;
}

int hw_key_needs_pim(const char *key)
{
	static const char *const pim_only[] = {
		"aau",
		"aau_offload",
		"gated_switch",
		"switch_gated_s",
		"switch_slow_s",
		"pim_layout",
		"pim_draft_ranks",
		"pim_rank_alloc",
		"pim_bus_block",
		"pim_blocking",
	};
	for (size_t i = 0; i < sizeof pim_only / sizeof *pim_only; i++)
		if (!strcmp(key, pim_only[i]))
			return 1;
	return 0;
}

size_t hw_key_names(int device, const char **names, const char **defaults,
                    size_t max)
{
	const struct key_desc *tab = device ? device_keys : platform_keys;
	const size_t n = device ? N_DKEYS : N_PKEYS;
	size_t i;
	for (i = 0; i < n && i < max; i++) {
		names[i] = tab[i].name;
		defaults[i] = tab[i].def;
	}
	return i;
}
