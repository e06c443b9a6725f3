/* results.c - names of event kinds and outcomes, and the table of run
 * metrics (see results.h). */
#include "results.h"

#include <math.h>
#include <string.h>

const char *replay_event_kind_name(enum replay_event_kind k)
{
	static const char *const names[] = { "draft",  "verify",   "preverify",
		                             "switch", "transfer", "idle",
		                             "offload" };
	return (unsigned)k < REPLAY_EV_KIND_COUNT ? names[k] : "?";
}

const char *replay_outcome_name(enum replay_outcome o)
{
	static const char *const names[] = { "none", "accepted", "rejected",
		                             "wasted" };
	return (unsigned)o <= REPLAY_OUT_WASTED ? names[o] : "?";
}

/* A ratio whose denominator is 0 is 0. */
static double ratio(double num, double den)
{
	return den > 0.0 ? num / den : 0.0;
}

#define M(fn) static double fn(const struct replay_metrics *m)
M(m_sequences)
{
	return (double)m->sequences;
}
M(m_committed)
{
	return (double)m->committed;
}
M(m_time)
{
	return m->time_s;
}
M(m_tok_s)
{
	return ratio((double)m->committed, m->time_s);
}
M(m_energy)
{
	return m->energy_j;
}
M(m_dynamic)
{
	return m->dynamic_j;
}
M(m_static)
{
	return m->static_j;
}
M(m_tok_j)
{
	return ratio((double)m->committed, m->energy_j);
}
M(m_j_tok)
{
	return ratio(m->energy_j, (double)m->committed);
}
M(m_drafted)
{
	return (double)m->drafted;
}
M(m_accepted)
{
	return (double)m->accepted;
}
M(m_wasted)
{
	return (double)m->wasted;
}
M(m_wasted_s)
{
	return m->wasted_draft_s;
}
M(m_wasted_j)
{
	return m->wasted_draft_j;
}
M(m_preverified)
{
	return (double)m->preverified;
}
M(m_pv_tasks)
{
	return (double)m->preverify_tasks;
}
M(m_pv_rej)
{
	return (double)m->preverify_rejections;
}
M(m_batches)
{
	return (double)m->batches;
}
M(m_batch_tokens)
{
	return (double)m->batch_tokens;
}
M(m_la_batches)
{
	return (double)m->lookahead_batches;
}
M(m_verifications)
{
	return (double)m->verifications;
}
M(m_switches)
{
	return (double)m->switches;
}
M(m_waits)
{
	return (double)m->waits;
}
M(m_dropped)
{
	return (double)m->events_dropped;
}
M(m_acceptance)
{
	return ratio((double)m->accepted, (double)m->drafted);
}
M(m_draft_len)
{
	return ratio((double)m->batch_tokens, (double)m->batches);
}
M(m_offload_s)
{
	return m->offload_s;
}
M(m_contention)
{
	return m->contention_s;
}
M(m_offload_b)
{
	return m->offload_bytes;
}
M(m_offload_bt)
{
	return ratio(m->offload_bytes, (double)m->committed);
}
M(m_share_min)
{
	return m->share_batches ? m->pim_share_min : NAN;
}
M(m_share_mean)
{
	return m->share_batches ? m->pim_share_sum / (double)m->share_batches
	                        : NAN;
}
M(m_share_max)
{
	return m->share_batches ? m->pim_share_max : NAN;
}
#undef M

const struct metric_def metric_defs[] = {
	{ "sequences", "", "sequences replayed", "sequences", m_sequences },
	{ "committed", "tokens", "tokens committed (the traces' lengths)",
	  "committed", m_committed },
	{ "time_s", "s", "simulated time of the run", "time_s", m_time },
	{ "tokens_per_s", "tokens/s", "throughput", "committed / time_s",
	  m_tok_s },
	{ "energy_j", "J", "energy, dynamic + static", "energy_j", m_energy },
	{ "dynamic_j", "J", "dynamic energy of every task", "dynamic_j",
	  m_dynamic },
	{ "static_j", "J", "static power x simulated time, every device",
	  "static_j", m_static },
	{ "tokens_per_j", "tokens/J", "energy efficiency",
	  "committed / energy_j", m_tok_j },
	{ "energy_per_token_j", "J/token", "energy per committed token",
	  "energy_j / committed", m_j_tok },
	{ "drafted", "tokens", "draft steps run", "drafted", m_drafted },
	{ "accepted", "tokens", "drafted tokens later committed", "accepted",
	  m_accepted },
	{ "wasted", "tokens", "drafted tokens thrown away", "wasted",
	  m_wasted },
	{ "wasted_draft_s", "s", "time of the wasted draft steps",
	  "wasted_draft_s", m_wasted_s },
	{ "wasted_draft_j", "J",
	  "dynamic energy (all devices) of the wasted draft steps",
	  "wasted_draft_j", m_wasted_j },
	{ "preverified", "tokens", "tokens pre-verified", "preverified",
	  m_preverified },
	{ "preverify_tasks", "", "pre-verification tasks", "preverify_tasks",
	  m_pv_tasks },
	{ "preverify_rejections", "tokens",
	  "wrong drafts pre-verification caught", "preverify_rejections",
	  m_pv_rej },
	{ "batches", "", "draft batches closed", "batches", m_batches },
	{ "batch_tokens", "tokens", "tokens in the batches when they closed",
	  "batch_tokens", m_batch_tokens },
	{ "lookahead_batches", "", "batches drafted on top of unverified ones",
	  "lookahead_batches", m_la_batches },
	{ "verifications", "", "verification tasks", "verifications",
	  m_verifications },
	{ "switches", "", "PIM mode switches", "switches", m_switches },
	{ "waits", "", "WAIT decisions of the policy", "waits", m_waits },
	{ "events_dropped", "", "timeline events past the recording bound",
	  "events_dropped", m_dropped },
	{ "acceptance_rate", "", "share of drafted tokens committed",
	  "accepted / drafted", m_acceptance },
	{ "mean_draft_len", "tokens", "tokens per closed batch",
	  "batch_tokens / batches", m_draft_len },
	{ "offload_s", "s",
	  "compute-device time on PIM work shipped to it (no AAU)", "offload_s",
	  m_offload_s },
	{ "contention_s", "s",
	  "time verifications lost to the PIM holding shared channels",
	  "contention_s", m_contention },
	{ "offload_bytes", "B",
	  "weights streamed over the host link (models past memory_bytes)",
	  "offload_bytes", m_offload_b },
	{ "offload_bytes_per_token", "B/token",
	  "host-link bytes per committed token", "offload_bytes / committed",
	  m_offload_bt },
	{ "pim_share_min", "",
	  "smallest PIM share of a batch's latency (sync with a PIM)",
	  "min over batches", m_share_min },
	{ "pim_share_mean", "",
	  "mean PIM share of a batch's latency (sync with a PIM)",
	  "pim_share_sum / share_batches", m_share_mean },
	{ "pim_share_max", "",
	  "largest PIM share of a batch's latency (sync with a PIM)",
	  "max over batches", m_share_max },
};
const size_t metric_defs_count = sizeof metric_defs / sizeof *metric_defs;

const struct metric_def *metric_find(const char *name)
{
	for (size_t i = 0; i < metric_defs_count; i++)
		if (!strcmp(metric_defs[i].name, name))
			return &metric_defs[i];
	return NULL;
}

double metric_value(const struct replay_metrics *m, const char *name)
{
	const struct metric_def *d = metric_find(name);
	return d ? d->value(m) : NAN;
}
