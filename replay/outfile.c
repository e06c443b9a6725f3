/* outfile.c - see outfile.h. */
#include "outfile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define OUTFILE_MAX_LINKS 40 /* as the kernel's ELOOP limit */

struct outfile {
	char *path;   /* as given */
	char *target; /* final target after following symlinks */
	char *tmp;    /* temporary file beside target, NULL for stdout */
	FILE *f;
};

__attribute__((format(printf, 3, 4))) static void set_err(char *err,
                                                          size_t errlen,
                                                          const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static const char *node_kind(mode_t m)
{
	if (S_ISFIFO(m))
		return "a FIFO";
	if (S_ISCHR(m))
		return "a character device";
	if (S_ISBLK(m))
		return "a block device";
	if (S_ISSOCK(m))
		return "a socket";
	if (S_ISDIR(m))
		return "a directory";
	return "not a regular file";
}

/* dir part of path ("." when none), malloc'd */
static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	size_t n;
	char *d;

	if (!slash)
		return strdup(".");
	n = slash == path ? 1 : (size_t)(slash - path);
	d = malloc(n + 1);
	if (d) {
		memcpy(d, path, n);
		d[n] = '\0';
	}
	return d;
}

/* Follow symlinks from path to the final name. *exists and *mode tell
 * whether that names a regular file and its permission bits. */
static int resolve(const char *path, char **final, int *exists, mode_t *mode,
                   char *err, size_t errlen)
{
	char *cur = strdup(path);
	struct stat st;
	int ret = 0;

	*exists = 0;
	if (!cur)
		goto nomem;
	for (int hops = 0;; hops++) {
		char link[PATH_MAX];
		ssize_t n;

		if (lstat(cur, &st) != 0) {
			if (errno == ENOENT)
				break; /* a new file */
			ret = -errno;
			set_err(err, errlen, "%s: %s", path, strerror(errno));
			goto error;
		}
		if (S_ISREG(st.st_mode)) {
			*exists = 1;
			*mode = st.st_mode & 07777;
			break;
		}
		if (!S_ISLNK(st.st_mode)) {
			ret = -EINVAL;
			if (strcmp(cur, path) == 0)
				set_err(err, errlen,
				        "%s: is %s; output goes to "
				        "regular files only (use - for "
				        "standard "
				        "output)",
				        path, node_kind(st.st_mode));
			else
				set_err(err, errlen,
				        "%s: links to %s, which is %s; "
				        "output goes to regular files only "
				        "(use - "
				        "for standard output)",
				        path, cur, node_kind(st.st_mode));
			goto error;
		}
		if (hops == OUTFILE_MAX_LINKS) {
			ret = -ELOOP;
			set_err(err, errlen, "%s: %s", path, strerror(ELOOP));
			goto error;
		}
		n = readlink(cur, link, sizeof link - 1);
		if (n < 0) {
			ret = -errno;
			set_err(err, errlen, "%s: readlink %s: %s", path, cur,
			        strerror(errno));
			goto error;
		}
		link[n] = '\0';
		if (link[0] == '/') {
			free(cur);
			cur = strdup(link);
		} else {
			/* relative to the folder holding the link */
			char *dir = dir_of(cur), *next = NULL;

			if (dir && asprintf(&next, "%s/%s", dir, link) < 0)
				next = NULL;
			free(dir);
			free(cur);
			cur = next;
		}
		if (!cur)
			goto nomem;
	}
	*final = cur;
	return 0;
nomem:
	ret = -ENOMEM;
	set_err(err, errlen, "%s: out of memory", path);
error:
	free(cur);
	return ret;
}

static void outfile_free(struct outfile *o)
{
	free(o->path);
	free(o->target);
	free(o->tmp);
	free(o);
}

int outfile_open(struct outfile **out, const char *path, char *err,
                 size_t errlen)
{
	struct outfile *o;
	mode_t mode = 0, mask;
	int exists, fd, ret;

	if (!out || !path || !*path) {
		set_err(err, errlen, "outfile_open: no path given");
		return -EINVAL;
	}
	*out = NULL;
	o = calloc(1, sizeof *o);
	if (!o || !(o->path = strdup(path))) {
		free(o);
		set_err(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	if (strcmp(path, "-") == 0) {
		o->f = stdout;
		*out = o;
		return 0;
	}
	ret = resolve(path, &o->target, &exists, &mode, err, errlen);
	if (ret < 0)
		goto error;
	if (asprintf(&o->tmp, "%s.XXXXXX.tmp", o->target) < 0) {
		o->tmp = NULL;
		ret = -ENOMEM;
		set_err(err, errlen, "%s: out of memory", path);
		goto error;
	}
	fd = mkostemps(o->tmp, 4, O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		set_err(err, errlen,
		        "%s: cannot create a temporary file beside "
		        "%s: %s",
		        path, o->target, strerror(errno));
		free(o->tmp);
		o->tmp = NULL;
		goto error;
	}
	if (!exists) {
		mask = umask(0);
		umask(mask);
		mode = 0666 & ~mask;
	}
	(void)fchmod(fd, mode); /* mkstemp made it 0600 */
	o->f = fdopen(fd, "wb");
	if (!o->f) {
		ret = -errno;
		set_err(err, errlen, "%s: %s", o->tmp, strerror(errno));
		close(fd);
		unlink(o->tmp);
		goto error;
	}
	setvbuf(o->f, NULL, _IOFBF, 256 * 1024);
	*out = o;
	return 0;
error:
	outfile_free(o);
	return ret;
}

FILE *outfile_stream(const struct outfile *o)
{
	return o->f;
}

const char *outfile_path(const struct outfile *o)
{
	return o->path;
}

int outfile_is_stdout(const struct outfile *o)
{
	return o->tmp == NULL;
}

/* fsync the folder holding path so the rename is durable (best effort) */
static void sync_dir(const char *path)
{
	char *dir = dir_of(path);
	int fd;

	if (!dir)
		return;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
	free(dir);
}

int outfile_commit(struct outfile **op, char *err, size_t errlen)
{
	struct outfile *o;
	int ret = 0;

	if (!op || !*op) {
		set_err(err, errlen, "outfile_commit: no file");
		return -EINVAL;
	}
	o = *op;
	*op = NULL;
	if (!o->tmp) {
		if (fflush(o->f) != 0 || ferror(o->f)) {
			ret = -(errno ? errno : EIO);
			set_err(err, errlen, "standard output: write error: %s",
			        strerror(-ret));
		}
		outfile_free(o);
		return ret;
	}
	errno = 0;
	if (fflush(o->f) != 0 || ferror(o->f)) {
		ret = -(errno ? errno : EIO);
		set_err(err, errlen, "%s: write error: %s", o->path,
		        strerror(-ret));
	} else if (fsync(fileno(o->f)) != 0) {
		ret = -errno;
		set_err(err, errlen, "%s: fsync: %s", o->path, strerror(errno));
	}
	if (fclose(o->f) != 0 && ret == 0) {
		ret = -errno;
		set_err(err, errlen, "%s: close: %s", o->path, strerror(errno));
	}
	o->f = NULL;
	if (ret == 0 && rename(o->tmp, o->target) != 0) {
		ret = -errno;
		set_err(err, errlen, "%s: rename %s -> %s: %s", o->path, o->tmp,
		        o->target, strerror(errno));
	}
	if (ret < 0)
		unlink(o->tmp);
	else
		sync_dir(o->target);
	outfile_free(o);
	return ret;
}

void outfile_abort(struct outfile **op)
{
	struct outfile *o;

	if (!op || !*op)
		return;
	o = *op;
	*op = NULL;
	if (o->tmp) {
		if (o->f)
			fclose(o->f);
		unlink(o->tmp);
	} else if (o->f) {
		fflush(o->f);
	}
	outfile_free(o);
}
