/* ahasd-hw - the hardware model, by the task or by the operator.
 *
 *   ahasd-hw [--hw PRESET] [--set key=value ...] [--m M] [--kv L] TRACE
 *   ahasd-hw [--hw PRESET] ... --models DRAFT:TARGET
 *   ahasd-hw op [--hw PRESET] [--set k=v ...] --device NAME [--ranks R]
 *               [--kv L] KIND DIMS...
 *
 * The first form prints, for the draft step (M = 1), verification (M,
 * default 5) and pre-verification (M = 2) of the two models, every
 * operator's MACs, bytes, compute and memory sides, bound, time and
 * energy, the task totals in task-level and synchronous placement, where
 * the models live (ranks, channels, streamed bytes) and the platform's
 * constants. `op` prints one operator's cost, so that a single number can
 * be checked against a cycle-level simulator.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "hw.h"
#include "models.h"
#include "trace.h"

#define MAX_SETS 64

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: ahasd-hw [--hw PRESET] [--set key=value ...] [--m M] "
	        "[--kv L] TRACE\n"
	        "       ahasd-hw [--hw PRESET] [...] --models DRAFT:TARGET\n"
	        "       ahasd-hw op [--hw PRESET] [--set key=value ...] "
	        "--device NAME\n"
	        "                   [--ranks R] [--kv L] KIND DIMS...\n"
	        "  -w, --hw PRESET  preset name (in %s) or path (default "
	        "npu-pim)\n"
	        "  --set key=value  override a constant: key or device.key "
	        "(repeatable)\n"
	        "  --m M            verification tokens per step (default 5)\n"
	        "  --kv L           KV length the last token attends to "
	        "(default 1024)\n"
	        "  --models D:T     model presets (in %s) or .ini paths\n"
	        "                   instead of a trace\n"
	        "  op: one operator on one device (no task overhead):\n"
	        "    gemm M K N                     M tokens through a K x N "
	        "matrix\n"
	        "    attention M HEADS KV_HEADS HEAD_DIM   at KV length --kv\n"
	        "    norm|nonlinear|elementwise M N\n"
	        "    embed M ROWS N\n"
	        "    --device NAME   a device of the preset (npu, gpu, pim)\n"
	        "    --ranks R       PIM ranks working on it (default all)\n",
	        hw_preset_dir(), model_preset_dir());
}

static void fmt_count(char *buf, size_t n, double v)
{
	if (v >= 1e9)
		snprintf(buf, n, "%.3fG", v / 1e9);
	else if (v >= 1e6)
		snprintf(buf, n, "%.3fM", v / 1e6);
	else if (v >= 1e3)
		snprintf(buf, n, "%.3fk", v / 1e3);
	else
		snprintf(buf, n, "%.0f", v);
}

static const char *bound_name(enum hw_bound b)
{
	return b == HW_BOUND_COMMAND  ? "command"
	       : b == HW_BOUND_MEMORY ? "memory"
	                              : "compute";
}

static int print_task(const struct hw_plan *plan, enum hw_task t,
                      const char *title, const struct trace_model *mdl,
                      unsigned m, unsigned kv)
{
	const struct hw_platform *p = hw_plan_platform(plan);
	struct hw_op_cost *rows;
	struct hw_cost c, s;
	double sum_t = 0, sum_e = 0, sum_macs = 0, sum_bytes = 0;
	size_t n;
	int dev = hw_task_device(plan, t);

	rows = calloc(mdl->n_ops ? mdl->n_ops : 1, sizeof *rows);
	if (!rows)
		return -ENOMEM;
	n = hw_task_breakdown(plan, t, m, kv, rows, mdl->n_ops);
	printf("\n%s: %s, M = %u, L = %u, on %s\n", title, mdl->name, m, kv,
	       p->dev[dev].name);
	printf("%-16s %-11s %-4s %5s %10s %10s %11s %11s %-7s %11s %10s\n",
	       "op", "kind", "dev", "rep", "MACs", "bytes", "compute_us",
	       "memory_us", "bound", "time_us", "energy_uJ");
	for (size_t i = 0; i < n; i++) {
		const struct hw_op_cost *r = &rows[i];
		char macs[32], bytes[32], devname[40];

		fmt_count(macs, sizeof macs, r->macs);
		fmt_count(bytes, sizeof bytes, r->bytes);
		if (r->device != dev) /* shipped whole to the compute device */
			snprintf(devname, sizeof devname, "%s",
			         p->dev[r->device].name);
		else if (dev == p->pim && !p->aau &&
		         r->op->kind == TRACE_OP_ATTENTION)
			snprintf(devname, sizeof devname, "%s+",
			         p->dev[dev].name);
		else
			snprintf(devname, sizeof devname, "%s",
			         p->dev[dev].name);
		printf("%-16s %-11s %-4s %5u %10s %10s %11.3f %11.3f %-7s "
		       "%11.3f %10.3f\n",
		       r->op->name, trace_op_kind_name(r->op->kind), devname,
		       r->op->repeat, macs, bytes, r->compute_s * 1e6,
		       r->memory_s * 1e6, bound_name(r->bound), r->time_s * 1e6,
		       r->energy_j * 1e6);
		sum_t += r->time_s;
		sum_e += r->energy_j;
		sum_macs += r->macs;
		sum_bytes += r->bytes;
	}
	hw_task_cost(plan, t, m, kv, &c);
	hw_step_cost(plan, t, m, kv, &s);
	{
		char macs[32], bytes[32];

		fmt_count(macs, sizeof macs, sum_macs);
		fmt_count(bytes, sizeof bytes, sum_bytes);
		printf("%-16s %-11s %-4s %5s %10s %10s %11s %11s %-7s %11.3f "
		       "%10.3f\n",
		       "ops total", "", "", "", macs, bytes, "", "", "",
		       sum_t * 1e6, sum_e * 1e6);
	}
	printf("task overhead %.3f us; task time %.3f us (%.3f us/token), "
	       "dynamic energy %.3f uJ (%.3f uJ/token)\n",
	       p->dev[dev].task_overhead_s * 1e6, c.time_s * 1e6,
	       c.time_s * 1e6 / m, c.energy_j * 1e6, c.energy_j * 1e6 / m);
	for (unsigned d = 0; d < p->n_dev; d++)
		printf("  %s: busy %.3f us, energy %.3f uJ, static %.3f uJ\n",
		       p->dev[d].name, c.busy_s[d] * 1e6,
		       c.energy_dev_j[d] * 1e6,
		       hw_device_static_w(&p->dev[d]) * c.time_s * 1e6);
	if (c.offload_bytes > 0)
		printf("  streams %.3f GB over the host link\n",
		       c.offload_bytes / 1e9);
	printf("synchronous (%s placement): time %.3f us, energy %.3f uJ",
	       p->sync_placement == HW_SYNC_TASK      ? "task"
	       : p->sync_placement == HW_SYNC_SPECPIM ? "specpim"
	                                              : "best",
	       s.time_s * 1e6, s.energy_j * 1e6);
	for (unsigned d = 0; d < p->n_dev; d++)
		printf(", %s busy %.3f us", p->dev[d].name, s.busy_s[d] * 1e6);
	printf("\n");
	free(rows);
	return 0;
}

static int parse_dim(const char *s, unsigned max, unsigned *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (*s == '\0' || *end || errno || v < 1 || v > max || *s == '-')
		return -1;
	*out = (unsigned)v;
	return 0;
}

/* ahasd-hw op ... KIND DIMS: one operator. @return exit status. */
static int cmd_op(const struct hw_platform *p, const char *dev_name,
                  unsigned ranks, unsigned kv, int argc, char **argv)
{
	static const struct {
		const char *name;
		enum trace_op_kind kind;
		int ndim;
		const char *dims;
	} kinds[] = {
		{ "gemm", TRACE_OP_GEMM, 3, "M K N" },
		{ "attention", TRACE_OP_ATTENTION, 4,
		  "M HEADS KV_HEADS HEAD_DIM" },
		{ "norm", TRACE_OP_NORM, 2, "M N" },
		{ "nonlinear", TRACE_OP_NONLINEAR, 2, "M N" },
		{ "elementwise", TRACE_OP_ELEMENTWISE, 2, "M N" },
		{ "embed", TRACE_OP_EMBED, 3, "M ROWS N" },
	};
	char err[512];
	int dev = -1;
	for (unsigned i = 0; i < p->n_dev; i++)
		if (dev_name && !strcmp(p->dev[i].name, dev_name))
			dev = (int)i;
	if (dev < 0) {
		fprintf(stderr,
		        "ahasd-hw op: --device %s: not a device of %s "
		        "(",
		        dev_name ? dev_name : "(none)", p->name);
		for (unsigned i = 0; i < p->n_dev; i++)
			fprintf(stderr, "%s%s", i ? ", " : "", p->dev[i].name);
		fprintf(stderr, ")\n");
		return 2;
	}
	if (argc < 1) {
		fprintf(stderr,
		        "ahasd-hw op: missing KIND (gemm, attention, norm, "
		        "nonlinear, elementwise, embed)\n");
		return 2;
	}
	size_t k = 0;
	while (k < sizeof kinds / sizeof *kinds &&
	       strcmp(kinds[k].name, argv[0]))
		k++;
	if (k == sizeof kinds / sizeof *kinds) {
		fprintf(stderr,
		        "ahasd-hw op: unknown KIND '%s' (gemm, attention, "
		        "norm, nonlinear, elementwise, embed)\n",
		        argv[0]);
		return 2;
	}
	if (argc - 1 != kinds[k].ndim) {
		fprintf(stderr, "ahasd-hw op: %s wants %s\n", kinds[k].name,
		        kinds[k].dims);
		return 2;
	}
	unsigned d[4] = { 0 };
	for (int i = 0; i < kinds[k].ndim; i++) {
		if (parse_dim(argv[1 + i], i == 0 ? HW_MAX_M : 1u << 30,
		              &d[i])) {
			fprintf(stderr,
			        "ahasd-hw op: %s: '%s' is not a dimension "
			        "(1..%u)\n",
			        kinds[k].name, argv[1 + i],
			        i == 0 ? HW_MAX_M : 1u << 30);
			return 2;
		}
	}
	struct trace_op op;
	memset(&op, 0, sizeof op);
	snprintf(op.name, sizeof op.name, "%s", kinds[k].name);
	op.kind = kinds[k].kind;
	op.repeat = 1;
	switch (op.kind) {
	case TRACE_OP_GEMM:
	case TRACE_OP_EMBED:
		op.k = d[1];
		op.n = d[2];
		break;
	case TRACE_OP_ATTENTION:
		op.heads = d[1];
		op.kv_heads = d[2];
		op.head_dim = d[3];
		if (op.heads % op.kv_heads) {
			fprintf(stderr,
			        "ahasd-hw op: HEADS %u is not a multiple of "
			        "KV_HEADS %u\n",
			        op.heads, op.kv_heads);
			return 2;
		}
		break;
	default: op.n = d[1]; break;
	}
	struct hw_op_cost r;
	if (hw_op_eval(p, dev, &op, d[0], kv, ranks, &r, err, sizeof err)) {
		fprintf(stderr, "ahasd-hw op: %s\n", err);
		return 2;
	}
	printf("preset %s, device %s (%s), %s", p->name, p->dev[dev].name,
	       p->dev[dev].kind == HW_DEV_PIM   ? "pim"
	       : p->dev[dev].kind == HW_DEV_GPU ? "gpu"
	                                        : "npu",
	       kinds[k].name);
	for (int i = 0; i < kinds[k].ndim; i++)
		printf(" %u", d[i]);
	if (op.kind == TRACE_OP_ATTENTION)
		printf(", KV %u", kv);
	if (p->dev[dev].kind == HW_DEV_PIM)
		printf(", %u of %u ranks", ranks ? ranks : p->dev[dev].ranks,
		       p->dev[dev].ranks);
	printf("\n");
	printf("time_us     %.6f\n", r.time_s * 1e6);
	printf("energy_uj   %.6f\n", r.energy_j * 1e6);
	printf("bound       %s\n", bound_name(r.bound));
	printf("compute_us  %.6f\n", r.compute_s * 1e6);
	printf("memory_us   %.6f\n", r.memory_s * 1e6);
	printf("bytes       %.0f\n", r.bytes);
	printf("macs        %.0f\n", r.macs);
	return 0;
}

static void print_plan(const struct hw_plan *plan)
{
	const struct hw_platform *p = hw_plan_platform(plan);
	struct hw_plan_info in;
	hw_plan_get_info(plan, &in);
	printf("weights: draft %.3f GB, target %.3f GB; KV reserved: draft "
	       "%.3f GB, target %.3f GB\n",
	       in.draft_bytes / 1e9, in.target_bytes / 1e9,
	       in.draft_kv_bytes / 1e9, in.target_kv_bytes / 1e9);
	if (in.draft_stream_bytes > 0 || in.target_stream_bytes > 0)
		printf("streamed every pass: draft %.3f GB, target %.3f GB "
		       "(memory %.3g GB)\n",
		       in.draft_stream_bytes / 1e9,
		       in.target_stream_bytes / 1e9, p->memory_bytes / 1e9);
	if (p->pim >= 0) {
		const struct hw_device *pd = &p->dev[p->pim];
		printf("PIM: %.4g GHz command clock; draft on %u rank(s) over "
		       "%u "
		       "channel(s), target on %u over %u; the %s keeps %.3f of "
		       "its "
		       "bandwidth while the PIM drafts, %.3f while it "
		       "pre-verifies\n",
		       pd->freq_hz / 1e9, in.draft_ranks, in.draft_channels,
		       in.target_ranks, in.target_channels,
		       p->dev[p->compute].name,
		       hw_compute_bw_share(plan, HW_TASK_DRAFT),
		       hw_compute_bw_share(plan, HW_TASK_PREVERIFY));
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "hw", required_argument, NULL, 'h' },
		{ "set", required_argument, NULL, 's' },
		{ "m", required_argument, NULL, 'm' },
		{ "kv", required_argument, NULL, 'k' },
		{ "models", required_argument, NULL, 'M' },
		{ "device", required_argument, NULL, 'D' },
		{ "ranks", required_argument, NULL, 'R' },
		{ "help", no_argument, NULL, 'H' },
		{ NULL, 0, NULL, 0 },
	};
	const char *preset = "npu-pim", *models = NULL;
	const char *sets[MAX_SETS];
	size_t nsets = 0;
	unsigned m = 5, kv = 1024;
	struct hw_platform plat;
	struct hw_plan *plan = NULL;
	struct trace_reader *rd = NULL;
	struct trace_model draft = { 0 }, target = { 0 };
	const struct trace_model *dm, *tm;
	char err[512], desc[8192];
	const char *device = NULL;
	unsigned ranks = 0;
	int c, rc = 1, op_mode = 0;

	if (argc > 1 && !strcmp(argv[1], "op")) {
		op_mode = 1;
		argv++;
		argc--;
	} else if (argc > 1 && !strcmp(argv[1], "task")) {
		argv++;
		argc--;
	}
	while ((c = getopt_long(argc, argv, "w:", opts, NULL)) != -1) {
		char *end;
		unsigned long v;

		switch (c) {
		case 'h':
		case 'w': preset = optarg; break;
		case 'D': device = optarg; break;
		case 'R':
			if (parse_dim(optarg, 1u << 16, &ranks)) {
				fprintf(stderr, "ahasd-hw: bad --ranks '%s'\n",
				        optarg);
				return 2;
			}
			break;
		case 's':
			if (nsets == MAX_SETS) {
				fprintf(stderr, "ahasd-hw: too many --set\n");
				return 2;
			}
			sets[nsets++] = optarg;
			break;
		case 'm':
		case 'k':
			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (*optarg == '\0' || *end || errno || v < 1 ||
			    (c == 'm' && v > HW_MAX_M) || v > 100000000) {
				fprintf(stderr, "ahasd-hw: bad --%s '%s'%s\n",
				        c == 'm' ? "m" : "kv", optarg,
				        c == 'm' ? " (1..256)" : "");
				return 2;
			}
			if (c == 'm')
				m = (unsigned)v;
			else
				kv = (unsigned)v;
			break;
		case 'M': models = optarg; break;
		case 'H': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!op_mode && ((models == NULL) == (optind >= argc) ||
	                 optind + (models ? 0 : 1) < argc)) {
		usage(stderr);
		return 2;
	}
	if (hw_platform_load(&plat, preset, err, sizeof err)) {
		fprintf(stderr, "ahasd-hw: %s\n", err);
		return 1;
	}
	for (size_t i = 0; i < nsets; i++) {
		char key[128];
		const char *eq = strchr(sets[i], '=');

		if (!eq || (size_t)(eq - sets[i]) >= sizeof key) {
			fprintf(stderr,
			        "ahasd-hw: --set wants key=value, got '%s'\n",
			        sets[i]);
			return 2;
		}
		memcpy(key, sets[i], (size_t)(eq - sets[i]));
		key[eq - sets[i]] = '\0';
		if (hw_platform_set(&plat, key, eq + 1, err, sizeof err)) {
			fprintf(stderr, "ahasd-hw: %s\n", err);
			return 2;
		}
	}
	if (op_mode)
		return cmd_op(&plat, device, ranks, kv, argc - optind,
		              argv + optind);
	if (models) {
		char dname[64];
		const char *colon = strchr(models, ':');

		if (!colon || (size_t)(colon - models) >= sizeof dname) {
			fprintf(stderr,
			        "ahasd-hw: --models wants DRAFT:TARGET\n");
			return 2;
		}
		memcpy(dname, models, (size_t)(colon - models));
		dname[colon - models] = '\0';
		if (model_preset_load(&draft, dname, err, sizeof err) ||
		    model_preset_load(&target, colon + 1, err, sizeof err)) {
			fprintf(stderr, "ahasd-hw: %s\n", err);
			goto out;
		}
		dm = &draft;
		tm = &target;
	} else {
		const struct trace_header *h;

		if (trace_reader_open(&rd, argv[optind], err, sizeof err)) {
			fprintf(stderr, "ahasd-hw: %s\n", err);
			goto out;
		}
		h = trace_reader_header(rd);
		/* a lookup draft (format 1.1) has no model */
		dm = h->features & TRACE_F_DRAFT_LOOKUP ? NULL : &h->draft;
		tm = &h->target;
	}
	if (hw_plan_create(&plan, &plat, dm, tm, err, sizeof err)) {
		fprintf(stderr, "ahasd-hw: %s\n", err);
		goto out;
	}
	printf("platform %s (%s)\n", plat.name, plat.path);
	if (hw_platform_describe(&plat, desc, sizeof desc) == 0)
		fputs(desc, stdout);
	{
		double se;
		double st = hw_switch_cost(plan, &se);

		printf("PIM switch: %.3f us\n", st * 1e6);
	}
	print_plan(plan);
	if (!dm) {
		struct hw_cost c1, c2;

		hw_lookup_cost(plan, 1, &c1);
		hw_lookup_cost(plan, 0, &c2);
		printf("\ndraft step: a lookup (no model), on %s: %.3f us for "
		       "a batch's first token, %.3f us for each further one "
		       "(lookup_s, lookup_token_s)\n",
		       plat.dev[hw_task_device(plan, HW_TASK_DRAFT)].name,
		       c1.time_s * 1e6, c2.time_s * 1e6);
	}
	if ((dm && print_task(plan, HW_TASK_DRAFT, "draft step", dm, 1, kv)) ||
	    print_task(plan, HW_TASK_VERIFY, "verification", tm, m, kv) ||
	    print_task(plan, HW_TASK_PREVERIFY, "pre-verification", tm, 2,
	               kv)) {
		fprintf(stderr, "ahasd-hw: out of memory\n");
		goto out;
	}
	rc = 0;
out:
	hw_plan_free(&plan);
	trace_reader_close(&rd);
	model_preset_clear(&draft);
	model_preset_clear(&target);
	return rc;
}
