/* fuzz_preset.c - the two INI parsers: hardware presets
 * (replay/hw_preset.c hw_platform_load) and model presets (replay/models.c
 * model_preset_load). The same input goes to both; whatever one accepts
 * must then hold up in the hardware model: a plan is built and every task
 * costed, and every cost must be finite and non-negative. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "fuzz_util.h"
#include "hw.h"
#include "models.h"
#include "trace.h"

static struct hw_platform base_platform;
static struct trace_model tiny;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[512];

	(void)argc;
	(void)argv;
	if (hw_platform_load(&base_platform, "npu-pim", err, sizeof err) < 0) {
		fprintf(stderr, "fuzz-preset: %s (set AHASD_PRESET_PATH)\n",
		        err);
		return 1;
	}
	memset(&tiny, 0, sizeof tiny);
	snprintf(tiny.name, sizeof tiny.name, "tiny");
	tiny.dim = 64;
	tiny.hidden_dim = 172;
	tiny.n_layers = 2;
	tiny.n_heads = 8;
	tiny.n_kv_heads = 4;
	tiny.vocab_size = 512;
	tiny.seq_len = 512;
	tiny.weight_bits = 8;
	return trace_model_llama_ops(&tiny) < 0;
}

static void check_cost(const struct hw_cost *c)
{
	fuzz_check(isfinite(c->time_s) && c->time_s >= 0);
	fuzz_check(isfinite(c->energy_j) && c->energy_j >= 0);
	for (int d = 0; d < HW_MAX_DEV; d++)
		fuzz_check(isfinite(c->busy_s[d]) && c->busy_s[d] >= 0);
}

static void cost_plan(const struct hw_platform *p,
                      const struct trace_model *draft,
                      const struct trace_model *target)
{
	static const unsigned ms[] = { 1, 2, 17, HW_MAX_M };
	struct hw_plan *plan = NULL;
	char err[512];

	if (hw_plan_create(&plan, p, draft, target, err, sizeof err) < 0)
		return;
	for (int t = 0; t < HW_TASK_COUNT; t++) {
		for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
			struct hw_cost c;

			hw_task_cost(plan, (enum hw_task)t, ms[i], ms[i] + 100,
			             &c);
			check_cost(&c);
			hw_step_cost(plan, (enum hw_task)t, ms[i], ms[i] + 100,
			             &c);
			check_cost(&c);
		}
	}
	hw_plan_free(&plan);
	fuzz_check(plan == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *path = fuzz_input_file(data, size);
	struct hw_platform p;
	struct trace_model m;
	char err[1024], desc[8192];

	if (hw_platform_load(&p, path, err, sizeof err) == 0) {
		hw_platform_describe(&p, desc, sizeof desc);
		cost_plan(&p, &tiny, &tiny);
	} else {
		fuzz_check(memchr(err, '\0', sizeof err));
	}
	if (model_preset_load(&m, path, err, sizeof err) == 0) {
		char why[512];

		fuzz_check(trace_model_check(&m, "preset", why, sizeof why) ==
		           0);
		cost_plan(&base_platform, &m, &m);
		model_preset_clear(&m);
	} else {
		fuzz_check(memchr(err, '\0', sizeof err));
	}
	return 0;
}
