/*
 * folder: a drop folder (a share the party's system watches).  Each message
 * appears as <folder>/<id>.p7m, the sealed DER, all at once: it is written
 * under a hidden temporary name, synced, renamed and the folder synced, so a
 * reader that takes *.p7m never sees half a file.  The party leaves signed
 * receipts (*.p7m, written the same way) in the receipt folder.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "adapter.h"
#include "err.h"
#include "log.h"
#include "util.h"
#include "xmalloc.h"

#define FOLDER_MODE 0640

static int
sync_dir(const char *dir, struct why *why)
{
	int fd, r = 0;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return why_set(why, HEGN_ERR_IO, "folder: cannot open %s (%s)", dir, strerror(errno));
	if (fsync(fd) == -1)
		r = why_set(why, HEGN_ERR_IO, "folder: cannot sync %s (%s)", dir, strerror(errno));
	close(fd);
	return r;
}

static int
folder_deliver(const struct adapter_msg *msg, const struct adapter_target *t,
    struct adapter_result *res, struct why *why)
{
	char *tmp = NULL, *path = NULL;
	struct stat st;
	size_t off;
	ssize_t n;
	int fd = -1, r;

	adapter_result_init(res);
	if ((r = adapter_check_msg(msg, 1, why)) != 0)
		goto out;
	if (t == NULL || t->folder == NULL || *t->folder == '\0') {
		r = why_set(why, HEGN_ERR_CONFIG, "folder: no drop folder configured");
		goto out;
	}
	if (stat(t->folder, &st) == -1 || !S_ISDIR(st.st_mode)) {
		r = why_set(why, HEGN_ERR_IO, "folder: %s is not a reachable directory", t->folder);
		goto out;
	}
	/* Hidden and without the .p7m ending: a watcher's *.p7m never matches it. */
	tmp = xasprintf("%s/.%s.p7m.XXXXXX", t->folder, msg->id);
	path = xasprintf("%s/%s.p7m", t->folder, msg->id);
	if ((fd = mkostemp(tmp, O_CLOEXEC)) == -1) {
		r = why_set(why, HEGN_ERR_IO, "folder: cannot create a file in %s (%s)", t->folder,
		    strerror(errno));
		goto out;
	}
	if (fchmod(fd, FOLDER_MODE) == -1) {
		r = why_set(why, HEGN_ERR_IO, "folder: cannot chmod %s (%s)", tmp, strerror(errno));
		goto out;
	}
	for (off = 0; off < msg->sealed_len; off += (size_t)n) {
		if ((n = write(fd, msg->sealed + off, msg->sealed_len - off)) == -1) {
			if (errno == EINTR) {
				n = 0;
				continue;
			}
			r = why_set(why, HEGN_ERR_IO, "folder: cannot write %s (%s)", tmp,
			    strerror(errno));
			goto out;
		}
	}
	if (fsync(fd) == -1) {
		r = why_set(why, HEGN_ERR_IO, "folder: cannot sync %s (%s)", tmp, strerror(errno));
		goto out;
	}
	if (close(fd) == -1) {
		fd = -1;
		r = why_set(why, HEGN_ERR_IO, "folder: cannot close %s (%s)", tmp, strerror(errno));
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) == -1) {
		r = why_set(why, HEGN_ERR_IO, "folder: cannot rename %s to %s (%s)", tmp, path,
		    strerror(errno));
		goto out;
	}
	free(tmp);
	tmp = NULL;
	if ((r = sync_dir(t->folder, why)) != 0)
		goto out;
	res->delivered = 1;
	snprintf(res->detail, sizeof(res->detail), "written as %s.p7m", msg->id);
	r = 0;
out:
	if (fd != -1)
		close(fd);
	if (tmp != NULL)
		unlink(tmp);
	if (r != 0 && res->detail[0] == '\0')
		snprintf(res->detail, sizeof(res->detail), "not written");
	free(tmp);
	free(path);
	return r;
}

static int
receipt_name(const char *name)
{
	size_t n = strlen(name);

	return name[0] != '.' && n > 4 && strcmp(name + n - 4, ".p7m") == 0;
}

/* Read one receipt file without following links; 0, 1 (set aside) or an error. */
static int
read_receipt(int dfd, const char *name, struct buf *out)
{
	struct stat st;
	ssize_t n;
	size_t off;
	int fd, r = 1;

	memset(out, 0, sizeof(*out));
	if ((fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)) == -1)
		return errno == ELOOP ? 1 : HEGN_ERR_IO;
	if (fstat(fd, &st) == -1) {
		r = HEGN_ERR_IO;
		goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_size <= 0 || st.st_size > (off_t)ADAPTER_MAX_RECEIPT)
		goto out;
	out->data = xmalloc((size_t)st.st_size);
	for (off = 0; off < (size_t)st.st_size; off += (size_t)n) {
		if ((n = read(fd, out->data + off, (size_t)st.st_size - off)) <= 0) {
			if (n == -1 && errno == EINTR) {
				n = 0;
				continue;
			}
			/* Shrunk while we read: the writer is not done; see it next time. */
			buf_free(out, 0);
			r = HEGN_ERR_IO;
			goto out;
		}
	}
	out->len = off;
	r = 0;
out:
	close(fd);
	return r;
}

static int
folder_receipts(const struct adapter_target *t, adapter_receipt_fn fn, void *arg,
    struct why *why)
{
	struct dirent **ents = NULL;
	struct buf der = { NULL, 0 };
	struct why cw;
	char *dir = NULL, *aside = NULL;
	int i, n = -1, dfd = -1, r, rr;

	if (t == NULL || t->folder == NULL || fn == NULL) {
		r = why_set(why, HEGN_ERR_CONFIG, "folder: no drop folder configured");
		goto out;
	}
	dir = t->receipt_folder != NULL ? xstrdup(t->receipt_folder) :
	    xasprintf("%s/../receipts", t->folder);
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		r = why_set(why, HEGN_ERR_IO, "folder: cannot open receipt folder %s (%s)", dir,
		    strerror(errno));
		goto out;
	}
	if ((n = scandir(dir, &ents, NULL, alphasort)) == -1) {
		r = why_set(why, HEGN_ERR_IO, "folder: cannot list %s (%s)", dir, strerror(errno));
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (!receipt_name(ents[i]->d_name))
			continue;
		why_clear(&cw);
		if ((rr = read_receipt(dfd, ents[i]->d_name, &der)) == 0)
			rr = fn(der.data, der.len, arg, &cw);
		else if (rr == 1)
			why_set(&cw, HEGN_ERR_INVALID, "not a regular file of 1 byte to %u bytes",
			    ADAPTER_MAX_RECEIPT);
		buf_free(&der, 0);
		if (rr == 0) {
			if (unlinkat(dfd, ents[i]->d_name, 0) == -1 && errno != ENOENT)
				log_warn("folder: cannot remove a taken receipt in %s (%s)", dir,
				    strerror(errno));
		} else if (err_is_retryable(rr)) {
			continue;
		} else {
			/* Out of the *.p7m pattern, so it is not offered again. */
			aside = xasprintf("%s.refused", ents[i]->d_name);
			log_warn("folder: a receipt in %s was set aside as *.refused (%s)", dir,
			    cw.text[0] != '\0' ? cw.text : hegn_strerror(rr));
			if (renameat(dfd, ents[i]->d_name, dfd, aside) == -1)
				log_warn("folder: cannot set a receipt aside in %s (%s)", dir,
				    strerror(errno));
			free(aside);
			aside = NULL;
		}
	}
	r = 0;
out:
	for (i = 0; i < n; i++)
		free(ents[i]);
	free(ents);
	if (dfd != -1)
		close(dfd);
	free(dir);
	return r;
}

const struct adapter adapter_folder = {
	.name = "folder",
	.electronic = 1,
	.deliver = folder_deliver,
	.receipts = folder_receipts,
};
