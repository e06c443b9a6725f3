/* ahasd-hw - print the hardware model's per-operator cost tables.
 *
 *   ahasd-hw [--hw PRESET] [--set key=value ...] [--m M] [--kv L] TRACE
 *   ahasd-hw [--hw PRESET] ... --models DRAFT:TARGET
 *
 * For the draft step (M = 1), verification (M, default 5) and
 * pre-verification (M = 2) of the trace's draft and target models: every
 * operator's MACs, bytes, roofline sides, bound, time and energy, the task
 * totals in async (task-level) and split (operator-level) placement, and
 * the platform constants.
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
	        "usage: ahasd-hw [--hw PRESET] [--set key=value ...] [--m M] [--kv L] TRACE\n"
	        "       ahasd-hw [--hw PRESET] [...] --models DRAFT:TARGET\n"
	        "  --hw PRESET      preset name (in %s) or path (default npu-pim)\n"
	        "  --set key=value  override a constant: key or device.key (repeatable)\n"
	        "  --m M            verification tokens per step (default 5)\n"
	        "  --kv L           KV length the last token attends to (default 1024)\n"
	        "  --models D:T     model presets (in %s) or .ini paths\n"
	        "                   instead of a trace\n",
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
		if (r->device != dev)   /* shipped whole to the compute device */
			snprintf(devname, sizeof devname, "%s", p->dev[r->device].name);
		else if (dev == p->pim && !p->aau &&
		         r->op->kind == TRACE_OP_ATTENTION)
			snprintf(devname, sizeof devname, "%s+", p->dev[dev].name);
		else
			snprintf(devname, sizeof devname, "%s", p->dev[dev].name);
		printf("%-16s %-11s %-4s %5u %10s %10s %11.3f %11.3f %-7s %11.3f %10.3f\n",
		       r->op->name, trace_op_kind_name(r->op->kind), devname,
		       r->op->repeat, macs, bytes, r->compute_s * 1e6,
		       r->memory_s * 1e6,
		       r->compute_s >= r->memory_s ? "compute" : "memory",
		       r->time_s * 1e6, r->energy_j * 1e6);
		sum_t += r->time_s;
		sum_e += r->energy_j;
		sum_macs += r->macs;
		sum_bytes += r->bytes;
	}
	hw_task_cost(plan, t, m, kv, &c);
	hw_step_cost_split(plan, t, m, kv, &s);
	{
		char macs[32], bytes[32];

		fmt_count(macs, sizeof macs, sum_macs);
		fmt_count(bytes, sizeof bytes, sum_bytes);
		printf("%-16s %-11s %-4s %5s %10s %10s %11s %11s %-7s %11.3f %10.3f\n",
		       "ops total", "", "", "", macs, bytes, "", "", "",
		       sum_t * 1e6, sum_e * 1e6);
	}
	printf("task overhead %.3f us; task time %.3f us (%.3f us/token), "
	       "dynamic energy %.3f uJ (%.3f uJ/token)\n",
	       p->dev[dev].task_overhead_s * 1e6, c.time_s * 1e6,
	       c.time_s * 1e6 / m, c.energy_j * 1e6, c.energy_j * 1e6 / m);
	for (unsigned d = 0; d < p->n_dev; d++)
		printf("  %s: busy %.3f us, energy %.3f uJ, static %.3f uJ\n",
		       p->dev[d].name, c.busy_s[d] * 1e6, c.energy_dev_j[d] * 1e6,
		       p->dev[d].static_w * c.time_s * 1e6);
	printf("split (operator-level): time %.3f us, energy %.3f uJ",
	       s.time_s * 1e6, s.energy_j * 1e6);
	for (unsigned d = 0; d < p->n_dev; d++)
		printf(", %s busy %.3f us", p->dev[d].name, s.busy_s[d] * 1e6);
	printf("\n");
	free(rows);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "hw", required_argument, NULL, 'h' },
		{ "set", required_argument, NULL, 's' },
		{ "m", required_argument, NULL, 'm' },
		{ "kv", required_argument, NULL, 'k' },
		{ "models", required_argument, NULL, 'M' },
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
	int c, rc = 1;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		char *end;
		unsigned long v;

		switch (c) {
		case 'h':
			preset = optarg;
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
		case 'M':
			models = optarg;
			break;
		case 'H':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if ((models == NULL) == (optind >= argc) || optind + (models ? 0 : 1) < argc) {
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
			fprintf(stderr, "ahasd-hw: --set wants key=value, got '%s'\n",
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
	if (models) {
		char dname[64];
		const char *colon = strchr(models, ':');

		if (!colon || (size_t)(colon - models) >= sizeof dname) {
			fprintf(stderr, "ahasd-hw: --models wants DRAFT:TARGET\n");
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
		dm = &h->draft;
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
	if (print_task(plan, HW_TASK_DRAFT, "draft step", dm, 1, kv) ||
	    print_task(plan, HW_TASK_VERIFY, "verification", tm, m, kv) ||
	    print_task(plan, HW_TASK_PREVERIFY, "pre-verification", tm, 2, kv)) {
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
