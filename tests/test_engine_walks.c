/* test_engine_walks.c - the shipped captures replayed against an
 * independent walk of speculative decoding, total and per sequence, greedy
 * and sampled (the coin of each position decides).
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rig.h"

/* Captures, sync policy, fixed k: the replay must walk the trace as
 * speculative decoding does. Position p is on the target's path when
 * a_p == 1, never when a_p == 0, and otherwise when the counter coin
 * replay_coin(seed, seq, p) < a_p (greedy traces hold only 0 and 1, so the
 * seed does not matter there). From committed position t the batch drafts
 * positions t..min(t+k, N)-1; a = the run of on-path positions starting at
 * t inside it; the verification commits a + 1 tokens (the a drafts, then
 * the correction or the bonus, dropped past the end of the sequence), so
 * t += a + 1; the other drafts of the batch are wasted. Accepted = sum of
 * a, verifications = batches = number of steps, committed = N. A bonus
 * never lands on a drafted position, so accepted is not simply the count
 * of on-path positions. Async with queue capacity 1 and k = 1 walks the
 * same way: one draft at C, verified before the next may start. */
struct walk {
	uint64_t drafted, accepted, wasted, verifications, committed;
};

static int walk_on_path(const struct trace_seq *s, uint64_t seed, uint32_t p)
{
	if (s->accept[p] >= 1.0f)
		return 1;
	if (s->accept[p] <= 0.0f)
		return 0;
	return replay_coin(seed, s->id, p) < (double)s->accept[p];
}

static void walk(const struct trace_seq *s, uint32_t k, uint64_t seed,
                 struct walk *w)
{
	uint32_t t = 0;
	while (t < s->n) {
		uint32_t end = t + k < s->n ? t + k : s->n, a = 0;
		while (t + a < end && walk_on_path(s, seed, t + a))
			a++;
		w->drafted += end - t;
		w->accepted += a;
		w->wasted += end - t - a;
		w->verifications++;
		t += a + 1;
	}
	w->committed += s->n;
}

/* The shipped greedy captures, sync with fixed k = 1..4. */
struct greedy_case {
	char trace[64];
	uint32_t k;
};

ParameterizedTestParameters(walks, greedy_captures_follow_the_walk)
{
	static const char *const traces[] = {
		"stories260K-skip3-greedy.msgpack",
		"stories260K-int4-greedy.msgpack",
		"aidreams260K-skip2-greedy.msgpack",
	};
	struct greedy_case cases[3 * 4];
	size_t n = 0;
	for (size_t i = 0; i < 3; i++)
		for (uint32_t k = 1; k <= 4; k++) {
			snprintf(cases[n].trace, sizeof cases[n].trace, "%s",
			         traces[i]);
			cases[n++].k = k;
		}
	return FX_PARAMS(struct greedy_case, cases, n);
}

ParameterizedTest(struct greedy_case *c, walks, greedy_captures_follow_the_walk)
{
	const char *path = rig_shipped(c->trace);
	const uint32_t k = c->k;
	char err[512], kv[8];
	struct walk w = { 0 };
	struct trace_reader *rd = NULL;
	cr_assert_eq(trace_reader_open(&rd, path, err, sizeof err), 0, "%s",
	             err);
	cr_assert_eq(trace_reader_header(rd)->sampled, 0);
	struct trace_seq s;
	while (trace_reader_next(rd, &s, err, sizeof err) == 1)
		walk(&s, k, 1, &w);
	trace_reader_close(&rd);

	snprintf(kv, sizeof kv, "%u", k);
	struct rig g;
	RIG_OPEN(&g, .trace = path, .preset = "npu-pim", .policy = "sync",
	         .drafter = "fixed", .dkey = "k", .dval = kv);
	rig_run(&g);
	const struct replay_metrics *m = replay_metrics(g.r);
	cr_assert_eq(m->committed, w.committed, "%s k=%u", c->trace, k);
	cr_assert_eq(m->accepted, w.accepted,
	             "%s k=%u: accepted %llu, walk "
	             "%llu",
	             c->trace, k, (unsigned long long)m->accepted,
	             (unsigned long long)w.accepted);
	cr_assert_eq(m->drafted, w.drafted, "%s k=%u", c->trace, k);
	cr_assert_eq(m->verifications, w.verifications, "%s k=%u", c->trace, k);
	rig_close(&g);
}

/* One replay of a capture checked sequence by sequence against walk():
 * the per-sequence results must equal the walk's, and their digest (an
 * FNV-1a fold of every sequence's counters) tells runs apart. */
struct walk_run {
	struct replay_metrics m;
	uint64_t digest;
	uint64_t fractional; /* positions with 0 < a_p < 1 */
};

static uint64_t fold(uint64_t h, uint64_t x)
{
	for (int i = 0; i < 8; i++) {
		h ^= (x >> (8 * i)) & 0xff;
		h *= 0x100000001b3ull;
	}
	return h;
}

static void replay_against_walk(const char *path, const char *policy,
                                uint32_t k, uint32_t qcap, uint64_t seed,
                                struct walk_run *out)
{
	char err[1024], kv[8], who[1200];
	snprintf(kv, sizeof kv, "%u", k);
	snprintf(who, sizeof who, "%s %s k=%u cap=%u seed=%llu", path, policy,
	         k, qcap, (unsigned long long)seed);
	struct rig g;
	RIG_OPEN(&g, .trace = path, .preset = "npu-pim", .policy = policy,
	         .drafter = "fixed", .dkey = "k", .dval = kv, .qcap = qcap,
	         .seed = seed);
	cr_assert_eq(trace_reader_header(g.rd)->sampled, 1, "%s", who);
	struct walk tot = { 0 };
	struct trace_seq s;
	int rc;
	memset(out, 0, sizeof *out);
	out->digest = 0xcbf29ce484222325ull;
	while ((rc = trace_reader_next(g.rd, &s, err, sizeof err)) == 1) {
		struct replay_seq_result res;
		struct walk w = { 0 };
		cr_assert_eq(replay_sequence(g.r, &s, &res, err, sizeof err), 0,
		             "%s: %s", who, err);
		walk(&s, k, seed, &w);
		for (uint32_t p = 0; p < s.n; p++)
			out->fractional += s.accept[p] > 0.0f &&
			                   s.accept[p] < 1.0f;
		cr_assert_eq(res.seq, s.id, "%s", who);
		cr_assert_eq(res.committed, w.committed, "%s seq %u", who,
		             s.id);
		cr_assert_eq(res.drafted, w.drafted,
		             "%s seq %u: drafted %llu, "
		             "walk %llu",
		             who, s.id, (unsigned long long)res.drafted,
		             (unsigned long long)w.drafted);
		cr_assert_eq(res.accepted, w.accepted,
		             "%s seq %u: accepted "
		             "%llu, walk %llu",
		             who, s.id, (unsigned long long)res.accepted,
		             (unsigned long long)w.accepted);
		cr_assert_eq(res.wasted, w.wasted, "%s seq %u", who, s.id);
		cr_assert_eq(res.verifications, w.verifications, "%s seq %u",
		             who, s.id);
		cr_assert_eq(res.batches, w.verifications, "%s seq %u", who,
		             s.id);
		tot.drafted += w.drafted;
		tot.accepted += w.accepted;
		tot.verifications += w.verifications;
		tot.committed += w.committed;
		out->digest = fold(out->digest, s.id);
		out->digest = fold(out->digest, res.drafted);
		out->digest = fold(out->digest, res.accepted);
		out->digest = fold(out->digest, res.verifications);
	}
	cr_assert_eq(rc, 0, "%s", err);
	replay_finish(g.r);
	out->m = *replay_metrics(g.r);
	cr_assert_eq(out->m.committed, tot.committed, "%s", who);
	cr_assert_eq(out->m.drafted, tot.drafted, "%s", who);
	cr_assert_eq(out->m.accepted, tot.accepted, "%s", who);
	cr_assert_eq(out->m.verifications, tot.verifications, "%s", who);
	rig_close(&g);
}

/* Sampled captures: sync with fixed k = 1 and k = 3, and async with queue
 * capacity 1 and k = 1, follow the coin walk per sequence for seeds 1 and
 * 2. The seeds must give different per-sequence results (the coin
 * decides), the same seed twice bit-identical metrics. */
struct sampled_case {
	char trace[64], policy[16];
	uint32_t k, qcap;
};

ParameterizedTestParameters(walks, sampled_captures_follow_the_coin_walk)
{
	static const char *const traces[] = {
		"stories260K-skip3-sampled.msgpack",
		"stories260K-int4-sampled.msgpack",
		"aidreams260K-skip2-sampled.msgpack",
	};
	static const struct {
		const char *policy;
		uint32_t k, qcap;
	} modes[] = { { "sync", 1, 32 }, { "async", 1, 1 }, { "sync", 3, 32 } };
	struct sampled_case cases[3 * 3];
	size_t n = 0;
	for (size_t i = 0; i < 3; i++)
		for (size_t j = 0; j < 3; j++, n++) {
			snprintf(cases[n].trace, sizeof cases[n].trace, "%s",
			         traces[i]);
			snprintf(cases[n].policy, sizeof cases[n].policy, "%s",
			         modes[j].policy);
			cases[n].k = modes[j].k;
			cases[n].qcap = modes[j].qcap;
		}
	return FX_PARAMS(struct sampled_case, cases, n);
}

ParameterizedTest(struct sampled_case *c, walks,
                  sampled_captures_follow_the_coin_walk)
{
	const char *path = rig_shipped(c->trace);
	struct walk_run s1, s2, again;
	replay_against_walk(path, c->policy, c->k, c->qcap, 1, &s1);
	replay_against_walk(path, c->policy, c->k, c->qcap, 2, &s2);
	replay_against_walk(path, c->policy, c->k, c->qcap, 1, &again);
	cr_assert_gt(s1.fractional, 0, "%s: no 0 < a_p < 1", c->trace);
	cr_assert_neq(s1.digest, s2.digest,
	              "%s %s k=%u: seeds 1 and 2 replay "
	              "alike",
	              c->trace, c->policy, c->k);
	cr_assert_neq(s1.m.time_s, s2.m.time_s, "%s %s k=%u", c->trace,
	              c->policy, c->k);
	cr_assert_eq(s1.digest, again.digest);
	cr_assert_eq(memcmp(&s1.m, &again.m, sizeof s1.m), 0,
	             "%s %s k=%u: seed 1 twice differs", c->trace, c->policy,
	             c->k);
}
