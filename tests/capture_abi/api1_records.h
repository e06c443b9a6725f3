/* api1_records.h - one capture written with the calls and fields of API 1
 * of ahasd_capture.h, whichever header includes it: tests/capture_abi/
 * api1_writer.c builds it against the frozen API-1 header (v1/), and
 * tests/test_capture_api.c against the current one, to compare the two
 * traces byte for byte. */
#ifndef AHASD_API1_RECORDS_H
#define AHASD_API1_RECORDS_H

#include <stdint.h>
#include <stdio.h>

/* a greedy pair (the target's op list given, the draft's derived), two
 * sequences, one with token ids, rejections with their continuations */
static int api1_write(const char *path)
{
	static const struct ahasd_capture_op ops[] = {
		{ "tok_embedding", "embed", 32, 16, 0, 0, 0, 1 },
		{ "wqkv", "gemm", 16, 48, 0, 0, 0, 2 },
		{ "attention", "attention", 0, 0, 4, 2, 4, 2 },
		{ "classifier", "gemm", 16, 32, 0, 0, 0, 1 },
	};
	static const float ent[] = { 0.5f, 2.25f, 0.125f, 1.0f };
	static const float top[] = { 0.9f, 0.3f, 0.99f, 0.5f };
	static const float acc[] = { 1, 0, 1, 0 };
	static const int32_t tok[] = { 5, 6, 31, 2 };
	static const float cont[2][3] = { { 2.5f, 2.75f, 3.0f },
		                          { 0.25f, 0.5f, 0.75f } };
	struct ahasd_capture_model target = AHASD_CAPTURE_MODEL_INIT;
	struct ahasd_capture_model draft = AHASD_CAPTURE_MODEL_INIT;
	struct ahasd_capture_config cfg = AHASD_CAPTURE_CONFIG_INIT;
	struct ahasd_capture *c = NULL;
	char err[1024];

	target.name = "tgt";
	target.dim = 16;
	target.hidden_dim = 32;
	target.n_layers = 2;
	target.n_heads = 4;
	target.n_kv_heads = 2;
	target.vocab_size = 32;
	target.seq_len = 40;
	target.n_ops = sizeof ops / sizeof ops[0];
	target.ops = ops;
	draft = target;
	draft.name = "drf";
	draft.n_layers = 1;
	draft.weight_bits = 8;
	draft.n_ops = 0;
	draft.ops = NULL;
	cfg.lookahead = 3;
	cfg.seed = 11;
	cfg.target = &target;
	cfg.draft = &draft;
	if (ahasd_capture_open(&c, path, &cfg, err, sizeof err) < 0) {
		fprintf(stderr, "open: %s\n", err);
		return 1;
	}
	ahasd_capture_provenance(c, "runtime", "an API-1 program");
	ahasd_capture_provenance(c, "date", "2026-01-02T03:04:05Z");
	ahasd_capture_begin(c, 7, 4);
	for (int i = 0, r = 0; i < 4; i++)
		ahasd_capture_pos(c, ent[i], top[i], acc[i], tok[i],
		                  acc[i] < 1 ? cont[r++] : NULL);
	ahasd_capture_end(c);
	ahasd_capture_begin(c, 3, 30);
	for (int i = 0; i < 2; i++) {
		struct ahasd_capture_position p = AHASD_CAPTURE_POSITION_INIT;

		p.entropy = ent[i];
		p.top1 = top[i];
		p.accept = acc[i];
		p.cont = acc[i] < 1 ? cont[0] : NULL;
		ahasd_capture_position(c, &p);
	}
	ahasd_capture_end(c);
	if (ahasd_capture_close(&c, err, sizeof err) < 0) {
		fprintf(stderr, "capture: %s\n", err);
		return 1;
	}
	return 0;
}

#endif
