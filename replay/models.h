/* models.h - model-architecture presets (replay/models/NAME.ini).
 *
 * A preset is a published architecture (OPT, LLaMA 2, PaLM-like) given by
 * its dimensions; loading it produces the same struct trace_model a trace
 * header carries, operator list included, so a replay can run a captured
 * token stream against the operator costs of another model pair
 * (ahasd-replay --models DRAFT:TARGET). Every constant in a preset file has
 * its source in a comment; replay/models/README.md lists the choices.
 */
#ifndef AHASD_MODELS_H
#define AHASD_MODELS_H

#include <stddef.h>

#include "trace.h"

/** Load a model preset by name (NAME.ini looked up in $AHASD_MODEL_PATH,
 * colon-separated, then the source tree when run from the build tree, then
 * the installed data dir) or by path (contains '/' or ends in ".ini").
 * Fills name, dims, weight_bits, weight_bytes (stored matrices; a tied LM
 * head counts once) and the operator list (m->ops, malloc'd: release with
 * model_preset_clear()). *m is overwritten, not freed first.
 * @return 0, -ENOENT (not found: the places tried in err), -EINVAL (file,
 * line and key in err) or -ENOMEM. */
int model_preset_load(struct trace_model *m, const char *name_or_path,
                      char *err, size_t errlen);

/** Free the operator list of a model filled by model_preset_load() and zero
 * it. Accepts NULL. */
void model_preset_clear(struct trace_model *m);

/** Directory searched after $AHASD_MODEL_PATH: the source tree's
 * replay/models when the executable is in the build tree, else the
 * installed data dir. */
const char *model_preset_dir(void);

#endif
