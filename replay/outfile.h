/* outfile.h - one way to write a file the user named (-o PATH, --out).
 *
 * Every writer of a user-named file goes through this module, so a path
 * means the same to all of them:
 *   "-"                      standard output (nothing is renamed; a commit
 *                            flushes it)
 *   a regular file or a new  written to a temporary file beside it and
 *   name                     renamed over it on commit (atomic: readers
 *                            see the old file or the whole new one; an
 *                            abort or a failure leaves the old one)
 *   a symlink                followed to its final target, which is
 *                            replaced as above through a temporary file
 *                            beside the target; the link stays a link
 *   a FIFO, a device, a      refused with a message naming what it is
 *   socket or a folder       (nothing is opened, created or replaced)
 * A replaced file keeps its permission bits; a new one gets 0666 less the
 * umask. Self-contained (libc only) so it can move to a utilities library.
 */
#ifndef AHASD_OUTFILE_H
#define AHASD_OUTFILE_H

#include <stddef.h>
#include <stdio.h>

struct outfile;

/** Open path for writing as above.
 * @return 0, or a negative errno-style code with "PATH: ..." in err
 * (-EINVAL for a node that is not a regular file, -ELOOP for a symlink
 * loop, or the system's code). */
int outfile_open(struct outfile **out, const char *path, char *err,
                 size_t errlen);
/** The stream to write to (standard output for "-"). */
FILE *outfile_stream(const struct outfile *o);
/** The path as the user gave it, for messages. */
const char *outfile_path(const struct outfile *o);
/** 1 when writing to standard output. */
int outfile_is_stdout(const struct outfile *o);
/** Flush, fsync, close and rename into place (for "-": flush). Frees *o
 * and sets it to NULL whatever happens; on failure the temporary file is
 * removed and the old file is left as it was.
 * @return 0 or a negative errno-style code with the reason in err. */
int outfile_commit(struct outfile **o, char *err, size_t errlen);
/** Discard: close and remove the temporary file. Accepts NULL and *o ==
 * NULL; sets *o to NULL. */
void outfile_abort(struct outfile **o);

#endif
