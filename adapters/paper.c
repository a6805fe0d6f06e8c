/*
 * paper: the PDF for fax and post, handed to a command.  The command runs
 * without a shell (posix_spawnp, argv split on blanks), in its own process
 * group so a timeout can stop everything it started, with stdin from
 * /dev/null and its output kept only for the first line of the detail.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "adapter.h"
#include "err.h"
#include "log.h"
#include "paper.h"
#include "render.h"
#include "util.h"
#include "xmalloc.h"

extern char **environ;

#define PAPER_MAX_ARGS 64

/* A fax number: an optional '+' and 3 to 20 digits, so it never reads as an option. */
static int
valid_number(const char *s)
{
	size_t n = 0;

	if (s == NULL)
		return 0;
	if (*s == '+')
		s++;
	for (; *s != '\0'; s++, n++) {
		if (*s < '0' || *s > '9')
			return 0;
	}
	return n >= 3 && n <= 20;
}

static void
free_argv(char **argv)
{
	size_t i;

	if (argv == NULL)
		return;
	for (i = 0; argv[i] != NULL; i++)
		free(argv[i]);
	free(argv);
}

/* *out: argv from command with {file}, {number} and {id} filled in; 0 or HEGN_ERR_CONFIG. */
static int
build_argv(const char *channel, const char *command, const char *pdf,
    const struct adapter_msg *msg, const struct adapter_target *t, char ***out,
    struct why *why)
{
	char **argv = NULL, *copy = xstrdup(command), *tok, *save = NULL;
	int argc = 0, file = 0, r = HEGN_ERR_CONFIG;

	*out = NULL;
	argv = xcalloc(PAPER_MAX_ARGS + 2, sizeof(*argv));
	for (tok = strtok_r(copy, " \t", &save); tok != NULL; tok = strtok_r(NULL, " \t", &save)) {
		if (argc >= PAPER_MAX_ARGS) {
			r = why_set(why, HEGN_ERR_CONFIG, "%s: command has more than %d words", channel,
			    PAPER_MAX_ARGS);
			goto out;
		}
		if (strcmp(tok, "{file}") == 0) {
			argv[argc++] = xstrdup(pdf);
			file = 1;
		} else if (strcmp(tok, "{number}") == 0) {
			if (!valid_number(t->number)) {
				r = why_set(why, HEGN_ERR_CONFIG, "%s: the command needs a fax number, and %s",
				    channel, t->number == NULL ? "none is configured" :
				    "the one configured is not '+' and 3 to 20 digits");
				goto out;
			}
			argv[argc++] = xstrdup(t->number);
		} else if (strcmp(tok, "{id}") == 0) {
			argv[argc++] = xstrdup(msg->id);
		} else
			argv[argc++] = xstrdup(tok);
	}
	if (argc == 0) {
		r = why_set(why, HEGN_ERR_CONFIG, "%s: the command is empty", channel);
		goto out;
	}
	if (!file)
		argv[argc++] = xstrdup(pdf);
	*out = argv;
	argv = NULL;
	r = 0;
out:
	free(copy);
	free_argv(argv);
	return r;
}

/* The first non-empty line of the command's output, printable ASCII, short. */
static void
first_line(const char *path, char *out, size_t n)
{
	char raw[1024];
	size_t len, i, o = 0;
	int fd;
	ssize_t got;

	out[0] = '\0';
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return;
	got = read(fd, raw, sizeof(raw) - 1);
	close(fd);
	if (got <= 0)
		return;
	len = (size_t)got;
	for (i = 0; i < len && (raw[i] == '\n' || raw[i] == '\r' || raw[i] == ' '); i++)
		;
	for (; i < len && raw[i] != '\n' && raw[i] != '\r' && o + 1 < n; i++)
		out[o++] = (raw[i] >= 0x20 && raw[i] < 0x7f) ? raw[i] : '?';
	out[o] = '\0';
}

static const char *
base_name(const char *p)
{
	const char *s = strrchr(p, '/');

	return s != NULL ? s + 1 : p;
}

/* Run argv to completion or the timeout; 0 with *status, or an error. */
static int
run(const char *channel, char **argv, const char *outpath, int timeout, int *status,
    struct adapter_result *res, struct why *why)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	struct timespec nap = { 0, 20 * 1000 * 1000 };
	int64_t deadline;
	pid_t pid = -1, w;
	int r, e, killed = 0;

	*status = 0;
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&attr);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, outpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
#ifdef HAVE_POSIX_SPAWN_FILE_ACTIONS_ADDCLOSEFROM_NP
	/* The daemon's sockets and database stay out of the child. */
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
#endif
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
	if ((e = posix_spawnp(&pid, argv[0], &fa, &attr, argv, environ)) != 0) {
		snprintf(res->detail, sizeof(res->detail), "%s: not started", base_name(argv[0]));
		r = why_set(why, e == ENOENT || e == EACCES ? HEGN_ERR_CONFIG : HEGN_ERR_IO,
		    "%s: cannot run %s (%s)", channel, argv[0], strerror(e));
		pid = -1;
		goto out;
	}
	deadline = util_now_ms() + (int64_t)timeout * 1000;
	for (;;) {
		if ((w = waitpid(pid, status, killed ? 0 : WNOHANG)) == pid)
			break;
		if (w == -1 && errno != EINTR) {
			r = why_set(why, HEGN_ERR_INTERNAL, "%s: cannot wait for %s (%s)", channel,
			    argv[0], strerror(errno));
			goto out;
		}
		if (!killed && util_now_ms() >= deadline) {
			/* The whole group: a wrapper script's children go too. */
			kill(-pid, SIGKILL);
			killed = 1;
			continue;
		}
		if (!killed)
			nanosleep(&nap, NULL);
	}
	pid = -1;
	if (killed) {
		snprintf(res->detail, sizeof(res->detail), "%s: stopped after %d s",
		    base_name(argv[0]), timeout);
		r = why_set(why, HEGN_ERR_IO, "%s: %s did not finish within %d s and was stopped",
		    channel, argv[0], timeout);
		goto out;
	}
	r = 0;
out:
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	return r;
}

int
paper_deliver(const char *channel, const char *default_command,
    const struct adapter_msg *msg, const struct adapter_target *t,
    struct adapter_result *res, struct why *why)
{
	struct render_doc doc;
	struct buf pdf = { NULL, 0 };
	char dir[] = "/tmp/hegn-paper-XXXXXX", *path = NULL, *outpath = NULL;
	char **argv = NULL, line[160];
	const char *command, *job;
	int r, status = 0, timeout, made = 0;

	adapter_result_init(res);
	if ((r = adapter_check_msg(msg, 0, why)) != 0)
		goto out;
	if (msg->content == NULL || msg->content_len == 0) {
		r = why_set(why, HEGN_ERR_INVALID, "%s: message %s has no content to print", channel,
		    msg->id);
		goto out;
	}
	command = t != NULL && t->command != NULL ? t->command : default_command;
	timeout = t != NULL && t->timeout_s > 0 ? t->timeout_s : PAPER_TIMEOUT_S;
	if (mkdtemp(dir) == NULL) {
		r = why_set(why, HEGN_ERR_IO, "%s: cannot make a private temporary folder (%s)",
		    channel, strerror(errno));
		goto out;
	}
	made = 1;
	path = xasprintf("%s/%s.pdf", dir, msg->id);
	outpath = xasprintf("%s/.output", dir);
	if ((r = build_argv(channel, command, path, msg, t, &argv, why)) != 0)
		goto out;
	memset(&doc, 0, sizeof(doc));
	doc.id = msg->id;
	doc.kind = msg->kind;
	doc.sender = msg->sender;
	doc.recipient = msg->recipient;
	doc.sender_name = msg->sender_name;
	doc.recipient_name = msg->recipient_name;
	doc.content = msg->content;
	doc.content_len = msg->content_len;
	if ((r = render_pdf(&doc, &pdf, why)) != 0)
		goto out;
	if ((r = util_write_file(path, pdf.data, pdf.len, 0600, why)) != 0)
		goto out;
	if ((r = run(channel, argv, outpath, timeout, &status, res, why)) != 0)
		goto out;
	first_line(outpath, line, sizeof(line));
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		res->delivered = 1;
		/* HylaFAX's sendfax answers "request id is 17 (group id 17) ...". */
		if ((job = strstr(line, "request id is ")) != NULL)
			snprintf(res->detail, sizeof(res->detail), "fax job %ld",
			    strtol(job + 14, NULL, 10));
		else if (line[0] != '\0')
			snprintf(res->detail, sizeof(res->detail), "%s: %s", base_name(argv[0]), line);
		else
			snprintf(res->detail, sizeof(res->detail), "%s: exit 0", base_name(argv[0]));
		r = 0;
		goto out;
	}
	if (WIFEXITED(status)) {
		snprintf(res->detail, sizeof(res->detail), "%s: exit %d%s%s", base_name(argv[0]),
		    WEXITSTATUS(status), line[0] != '\0' ? ": " : "", line);
		r = why_set(why, HEGN_ERR_IO, "%s: %s exited with status %d%s%s%s", channel,
		    argv[0], WEXITSTATUS(status), line[0] != '\0' ? " (" : "", line,
		    line[0] != '\0' ? ")" : "");
	} else {
		snprintf(res->detail, sizeof(res->detail), "%s: signal %d", base_name(argv[0]),
		    WIFSIGNALED(status) ? WTERMSIG(status) : 0);
		r = why_set(why, HEGN_ERR_IO, "%s: %s was killed by signal %d", channel, argv[0],
		    WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	}
out:
	/* The command may have moved the PDF away (consumed it): then it is not ours. */
	if (path != NULL && unlink(path) == -1 && errno != ENOENT)
		log_warn("%s: cannot remove %s (%s)", channel, path, strerror(errno));
	if (outpath != NULL)
		unlink(outpath);
	if (made && rmdir(dir) == -1)
		log_warn("%s: cannot remove %s (%s)", channel, dir, strerror(errno));
	if (r != 0 && res != NULL && res->detail[0] == '\0')
		snprintf(res->detail, sizeof(res->detail), "not handed over");
	buf_free(&pdf, 1);
	free_argv(argv);
	free(path);
	free(outpath);
	return r;
}
