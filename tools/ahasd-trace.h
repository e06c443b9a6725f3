/* ahasd-trace.h - what the files of the ahasd-trace program share. */
#ifndef AHASD_TOOLS_AHASD_TRACE_H
#define AHASD_TOOLS_AHASD_TRACE_H

#define EXIT_INVALID 1
#define EXIT_USAGE   2

/** ahasd-trace synth (tools/trace_synth.c): argv[0] is "synth".
 * @return the exit status. */
int cmd_synth(int argc, char **argv);

#endif
