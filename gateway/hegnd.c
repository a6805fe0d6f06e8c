/*
 * hegnd: the hegn daemon.
 *
 *   hegnd -c FILE        serve in the foreground
 *   hegnd -c FILE -D     detach once listening (the parent exits 0 only then)
 *   hegnd -t -c FILE     check the configuration and exit
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <malloc.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <sodium.h>
#ifdef HAVE_SECCOMP
#include <seccomp.h>
#endif

#include "conf.h"
#include "http.h"
#include "keyd.h"
#include "log.h"
#include "relay.h"
#include "util.h"

static volatile sig_atomic_t want_quit;

/*
 * The delivery scheduler runs on a thread of its own: a hand-over may wait on
 * a slow peer for its whole timeout, and signals, checkpoints and reloads
 * must not wait with it.
 */
static atomic_int scheduler_stop;

static void *
scheduler_main(void *arg)
{
	struct relay *relay = arg;
	struct why why;
	int acted;

	while (!atomic_load(&scheduler_stop)) {
		struct timespec ts = { 0, 500 * 1000 * 1000 };

		memset(&why, 0, sizeof(why));
		if (relay_deliver(relay, util_now_ms(), &acted, &why) != 0)
			log_error("hegnd: delivery pass failed (%s)", why.text);
		if (acted == 0)
			nanosleep(&ts, NULL);
	}
	return NULL;
}
static volatile sig_atomic_t want_reload;

static void
on_signal(int sig)
{
	if (sig == SIGHUP)
		want_reload = 1;
	else
		want_quit = 1;
}

static void
usage(void)
{
	fprintf(stderr, "usage: hegnd [-tDV] -c FILE\n"
	    "  -c FILE  configuration (hegn.conf)\n"
	    "  -t       check the configuration, keys and certificates, then exit\n"
	    "  -D       detach into the background once listening\n"
	    "  -V       print the version\n");
	exit(2);
}

static int
write_pid_file(const char *path)
{
	char line[32];
	int fd, n;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd == -1)
		return -1;
	n = snprintf(line, sizeof(line), "%ld\n", (long)getpid());
	if (write(fd, line, (size_t)n) != n) {
		close(fd);
		return -1;
	}
	return close(fd);
}

/*
 * Fork; the parent waits until the child reports (over a pipe) that it is
 * listening, so "hegnd -D && curl ..." works without sleeping.
 */
static int
detach(int *notify_fd)
{
	int p[2];
	pid_t pid;
	char c = 1;

	if (pipe(p) == -1)
		return -1;
	if ((pid = fork()) == -1)
		return -1;
	if (pid > 0) {
		close(p[1]);
		if (read(p[0], &c, 1) != 1 || c != 0)
			_exit(1);
		_exit(0);
	}
	close(p[0]);
	setsid();
	*notify_fd = p[1];
	return 0;
}

static void
detach_done(int fd, int ok)
{
	char c = ok ? 0 : 1;
	int devnull;

	if (fd == -1)
		return;
	if (write(fd, &c, 1) != 1)
		log_warn("hegnd: cannot tell the parent we started (%s)", strerror(errno));
	close(fd);
	if (ok && (devnull = open("/dev/null", O_RDWR)) != -1) {
		dup2(devnull, STDIN_FILENO);
		dup2(devnull, STDOUT_FILENO);
		close(devnull);
	}
}

/*
 * Privilege separation (docs/PRIVSEP.md).  Started as root, hegnd forks the
 * key process before anything reads the network, then gives up root in the
 * process that serves HTTP.
 */
struct privsep {
	const char *conf_path;
	char user[64];
	uid_t uid;
	gid_t gid;
	int keyd_fds[KEYD_WORKERS_MAX]; /* the network process's ends, a pool */
	size_t nkeyd;
	size_t workers;         /* the key process's workers */
	pid_t keyd_pid;
	int seccomp;            /* [server] seccomp */
};

static int
keyd_init(void *arg, const int *fds, size_t n)
{
	struct privsep *ps = arg;
	struct why why = { 0 };

	log_init("hegnd-keys", LOG_LVL_INFO, 0);
	if (relay_keyd_serve(ps->conf_path, fds, n, &why) != 0) {
		log_error("keyd: stopped (%s)", why.text);
		return 1;
	}
	return 0;
}

/* The account of [server] user, else hegn, else nobody; never root. */
static int
privsep_user(const struct conf *c, struct privsep *ps, struct why *why)
{
	struct passwd *pw = NULL;

	if (c->user != NULL) {
		pw = getpwnam(c->user);
		if (pw == NULL)
			return why_set(why, HEGN_ERR_CONFIG, "[server] user: no account %s", c->user);
	} else if ((pw = getpwnam("hegn")) == NULL) {
		if ((pw = getpwnam("nobody")) == NULL)
			return why_set(why, HEGN_ERR_CONFIG, "no account hegn or nobody to run as: "
			    "create one (useradd --system hegn) or set [server] user");
		log_warn("hegnd: no account hegn: the network process runs as nobody "
		    "(create hegn, or set [server] user)");
	}
	if (pw->pw_uid == 0 || pw->pw_gid == 0)
		return why_set(why, HEGN_ERR_CONFIG, "[server] user: %s is root or in group root",
		    pw->pw_name);
	snprintf(ps->user, sizeof(ps->user), "%s", pw->pw_name);
	ps->uid = pw->pw_uid;
	ps->gid = pw->pw_gid;
	return 0;
}

/*
 * Give the account a file it must write (the database and its journals):
 * opened without following links and refused when hard-linked, so the
 * account cannot point root's chown at another file.  A missing file is fine.
 */
static int
privsep_chown_file(const char *path, const struct privsep *ps, struct why *why)
{
	struct stat st;
	int fd, r;

	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) == -1) {
		if (errno == ENOENT)
			return 0;
		return why_set(why, HEGN_ERR_CONFIG, "%s: %s", path, strerror(errno));
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) || st.st_nlink != 1)
		r = why_set(why, HEGN_ERR_CONFIG, "%s: not a regular file with one link", path);
	else if (fchown(fd, ps->uid, ps->gid) == -1)
		r = why_set(why, HEGN_ERR_CONFIG, "%s: chown: %s", path, strerror(errno));
	else
		r = 0;
	close(fd);
	return r;
}

/*
 * Let the account create files in dir (the store's folder, the pid file's)
 * while root's files there (the audit and citizen keys in the demo) stay
 * out of its reach: group-writable for the account's group and sticky, so
 * it can neither read, rename nor delete what it does not own.
 */
static int
privsep_dir(const char *path, const struct privsep *ps, struct why *why)
{
	char copy[4096], *dir;
	struct stat st;
	mode_t mode;
	int fd, r;

	snprintf(copy, sizeof(copy), "%s", path);
	dir = dirname(copy);
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		return why_set(why, HEGN_ERR_CONFIG, "%s: %s", dir, strerror(errno));
	if (fstat(fd, &st) == -1) {
		r = why_set(why, HEGN_ERR_CONFIG, "%s: %s", dir, strerror(errno));
		goto out;
	}
	/* A folder the account owns already, or a shared sticky one like /tmp, stays as it is. */
	if (st.st_uid == ps->uid || (st.st_mode & (S_ISVTX | S_IWOTH)) == (S_ISVTX | S_IWOTH)) {
		r = 0;
		goto out;
	}
	if (st.st_uid != 0) {
		r = why_set(why, HEGN_ERR_CONFIG, "%s: owned by uid %lu, neither root nor %s", dir,
		    (unsigned long)st.st_uid, ps->user);
		goto out;
	}
	mode = (st.st_mode & 07777 & ~(mode_t)S_IWOTH) | S_IRWXG | S_ISVTX;
	if ((st.st_gid != ps->gid && fchown(fd, (uid_t)-1, ps->gid) == -1) ||
	    ((st.st_mode & 07777) != mode && fchmod(fd, mode) == -1)) {
		r = why_set(why, HEGN_ERR_CONFIG, "%s: %s", dir, strerror(errno));
		goto out;
	}
	r = 0;
out:
	close(fd);
	return r;
}

/*
 * A database that does not exist yet is created empty (SQLite takes an empty
 * file for a new database) and owned by the account, so that it is the
 * account's from the start: nothing here may open the file once SQLite has
 * (closing any descriptor of a file drops the process's POSIX locks on it).
 * SQLite, run as root, gives the journals it creates the database's owner.
 */
static int
privsep_create_db(const char *path, const struct privsep *ps, struct why *why)
{
	int fd, r = 0;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd == -1)
		return errno == EEXIST ? 0 : why_set(why, HEGN_ERR_CONFIG, "%s: %s", path,
		    strerror(errno));
	if (fchown(fd, ps->uid, ps->gid) == -1)
		r = why_set(why, HEGN_ERR_CONFIG, "%s: chown: %s", path, strerror(errno));
	close(fd);
	return r;
}

/* Before the store is opened: see privsep_create_db. */
static int
privsep_prepare_files(const struct conf *c, const struct privsep *ps, struct why *why)
{
	static const char *const suffixes[] = { "", "-wal", "-shm", "-journal", "-scheduler" };
	const char *db = strncmp(c->store, "sqlite:", 7) == 0 ? c->store + 7 : c->store;
	char path[4096];
	size_t i;
	int r;

	if ((r = privsep_dir(db, ps, why)) != 0 || (r = privsep_create_db(db, ps, why)) != 0)
		return r;
	/* The scheduler lock (relay.c) belongs to the account too, as the database's files do. */
	relay_scheduler_lock_path(c->store, path, sizeof(path));
	if ((r = privsep_create_db(path, ps, why)) != 0)
		return r;
	for (i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		snprintf(path, sizeof(path), "%s%s", db, suffixes[i]);
		if ((r = privsep_chown_file(path, ps, why)) != 0)
			return r;
	}
	/* A pid file left by an earlier start must stay writable too. */
	if (c->pid_file != NULL && ((r = privsep_dir(c->pid_file, ps, why)) != 0 ||
	    (r = privsep_chown_file(c->pid_file, ps, why)) != 0))
		return r;
	return 0;
}

#ifdef HAVE_SECCOMP
/*
 * What the network process may ask of the kernel: files, memory, threads,
 * sockets, time, signals, and starting the delivery commands (which inherit
 * the filter).  Missing on purpose: ptrace and process_vm_*, mount and
 * namespaces, modules, kexec, bpf, perf_event_open, keyrings, io_uring,
 * userfaultfd, every set*id and capset, personality, clock setting.  Other
 * calls fail with ENOSYS rather than kill: libraries treat that as "not
 * implemented" and fall back, so a rarely used path degrades instead of
 * taking the daemon down, while the calls above stay out of reach.
 */
static const char *const seccomp_allowed[] = {
	/* files */
	"read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev", "lseek",
	"close", "close_range", "open", "openat", "creat", "stat", "fstat", "lstat", "newfstatat",
	"statx", "statfs", "fstatfs", "access", "faccessat", "faccessat2", "readlink",
	"readlinkat", "getdents64", "getcwd", "chdir", "fchdir", "mkdir", "mkdirat", "rmdir",
	"unlink", "unlinkat", "rename", "renameat", "renameat2", "link", "linkat", "symlink",
	"symlinkat", "chmod", "fchmod", "fchmodat", "utimensat", "truncate", "ftruncate", "fsync",
	"fdatasync", "sync_file_range", "fallocate", "fadvise64", "flock", "fcntl", "dup", "dup2",
	"dup3", "pipe", "pipe2", "ioctl", "copy_file_range", "sendfile", "splice", "umask",
	"inotify_init1", "inotify_add_watch", "inotify_rm_watch",
	/* memory */
	"brk", "mmap", "munmap", "mremap", "mprotect", "madvise", "mlock", "munlock", "msync",
	"mincore", "membarrier",
	/* threads and processes */
	"clone", "clone3", "fork", "vfork", "execve", "execveat", "wait4", "waitid", "exit",
	"exit_group", "futex", "set_robust_list", "get_robust_list", "rseq", "set_tid_address",
	"gettid", "getpid", "getppid", "sched_yield", "sched_getaffinity", "getpriority",
	"arch_prctl", "prctl", "prlimit64", "getrlimit", "getrusage", "setpgid", "getpgid",
	"getpgrp", "setsid", "getsid",
	"getuid", "geteuid", "getgid", "getegid", "getgroups", "getresuid", "getresgid",
	"uname", "sysinfo", "getrandom", "capget",
	/* signals */
	"rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigtimedwait", "rt_sigsuspend",
	"sigaltstack", "kill", "tgkill", "tkill", "restart_syscall",
	/* time */
	"clock_gettime", "clock_getres", "clock_nanosleep", "nanosleep", "gettimeofday", "time",
	"timerfd_create", "timerfd_settime", "timerfd_gettime",
	/* waiting */
	"poll", "ppoll", "select", "pselect6", "epoll_create", "epoll_create1", "epoll_ctl",
	"epoll_wait", "epoll_pwait", "epoll_pwait2", "eventfd", "eventfd2",
	/* sockets: HTTP, push and mail delivery, DNS */
	"socket", "socketpair", "connect", "accept", "accept4", "bind", "listen", "getsockname",
	"getpeername", "getsockopt", "setsockopt", "sendto", "recvfrom", "sendmsg", "recvmsg",
	"sendmmsg", "recvmmsg", "shutdown",
};

static int
privsep_seccomp(struct why *why)
{
	scmp_filter_ctx ctx;
	size_t i;
	int nr, e, r;

	if ((ctx = seccomp_init(SCMP_ACT_ERRNO(ENOSYS))) == NULL)
		return why_set(why, HEGN_ERR_INTERNAL, "seccomp_init failed");
	for (i = 0; i < sizeof(seccomp_allowed) / sizeof(seccomp_allowed[0]); i++) {
		/* A name this architecture does not have is simply not there to allow. */
		if ((nr = seccomp_syscall_resolve_name(seccomp_allowed[i])) == __NR_SCMP_ERROR ||
		    nr < 0)
			continue;
		if ((e = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0)) != 0) {
			r = why_set(why, HEGN_ERR_INTERNAL, "seccomp: cannot allow %s (%s)",
			    seccomp_allowed[i], strerror(-e));
			goto out;
		}
	}
	if ((e = seccomp_load(ctx)) != 0) {
		r = why_set(why, HEGN_ERR_INTERNAL, "seccomp: cannot load the filter (%s)",
		    strerror(-e));
		goto out;
	}
	r = 0;
out:
	seccomp_release(ctx);
	return r;
}
#else
static int
privsep_seccomp(struct why *why)
{
	return why_set(why, HEGN_ERR_CONFIG, "[server] seccomp: hegnd was built without "
	    "libseccomp (install libseccomp-dev and rebuild, or set seccomp = no)");
}
#endif

/* Called by http_start_dropping once the socket is bound and the TLS files read. */
static int
privsep_drop(void *arg, struct why *why)
{
	struct privsep *ps = arg;
	int r;

	if (setgroups(1, &ps->gid) == -1 || setresgid(ps->gid, ps->gid, ps->gid) == -1 ||
	    setresuid(ps->uid, ps->uid, ps->uid) == -1)
		return why_set(why, HEGN_ERR_INTERNAL, "cannot become %s (%s)", ps->user,
		    strerror(errno));
	/* Paranoia as in OpenSSH's permanently_set_uid: the way back must be shut. */
	if (setuid(0) != -1 || seteuid(0) != -1 || getuid() != ps->uid || geteuid() != ps->uid ||
	    getegid() != ps->gid)
		return why_set(why, HEGN_ERR_INTERNAL, "privileges could be regained after "
		    "dropping them");
	/* Nor can a delivery command (fax, print) gain privileges through a set-id program. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		return why_set(why, HEGN_ERR_INTERNAL, "PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
	if (ps->seccomp && (r = privsep_seccomp(why)) != 0)
		return r;
	log_info("hegnd: privilege separation: serving as %s (uid %lu), keys in process %ld "
	    "with %zu worker%s%s", ps->user, (unsigned long)ps->uid, (long)ps->keyd_pid,
	    ps->workers, ps->workers == 1 ? "" : "s",
	    ps->seccomp ? ", system calls filtered (seccomp)" : "");
	return 0;
}

/* Start the key process and get the files ready; 0 or an error (logged by the caller). */
static int
privsep_start(const char *conf_path, struct privsep *ps, struct why *why)
{
	struct conf *c = NULL;
	size_t n;
	int r;

	ps->conf_path = conf_path;
	if ((r = conf_load(conf_path, &c, why)) != 0 || (r = privsep_user(c, ps, why)) != 0)
		goto out;
	ps->seccomp = c->seccomp;
#ifndef HAVE_SECCOMP
	/* Refuse before forking anything rather than after binding the port. */
	if (ps->seccomp && (r = privsep_seccomp(why)) != 0)
		goto out;
#endif
	/* A connection, and a key worker, per private-key operation that may run at once. */
	n = keyd_workers(c->crypto_workers);
	if ((r = keyd_spawn(keyd_init, ps, n, ps->keyd_fds, &ps->keyd_pid, why)) != 0)
		goto out;
	ps->nkeyd = n;
	ps->workers = n;
	r = privsep_prepare_files(c, ps, why);
out:
	conf_free(c);
	return r;
}

/* True (and logs why) when the key process has ended: hegnd cannot work without it. */
static int
keyd_gone(pid_t pid)
{
	int status;

	if (pid <= 0 || waitpid(pid, &status, WNOHANG) != pid)
		return 0;
	if (WIFSIGNALED(status))
		log_error("hegnd: the key process was killed by signal %d: stopping",
		    WTERMSIG(status));
	else
		log_error("hegnd: the key process exited with status %d: stopping",
		    WEXITSTATUS(status));
	return 1;
}

int
main(int argc, char **argv)
{
	const char *conf_path = NULL;
	struct relay *relay = NULL;
	struct http_server *http = NULL;
	struct sigaction sa;
	struct why why = { 0 };
	struct privsep ps = { .nkeyd = 0, .keyd_pid = -1 };
	int ch, check_only = 0, background = 0, notify_fd = -1, rc = 1, scheduler = 0;
	size_t nkeyd, i;
	pthread_t scheduler_thread;
	char *pid_file = NULL;

#ifdef M_MMAP_THRESHOLD
	/*
	 * Buffers of 1 MiB and more (a large body, its signed and sealed
	 * copies) are mapped and unmapped whole.  glibc would raise the
	 * threshold to the largest buffer freed and serve the next ones from a
	 * thread's arena, whose freed memory stays with the process: each
	 * large submission raised the peak again.  Fixing it also fixes the
	 * trim threshold, at 128 KiB: an arena would then give back and fault
	 * in again the memory of every 200 KB message (+20% CPU), so up to
	 * 8 MiB free stays with an arena (docs/performance.md, 13).
	 */
	mallopt(M_MMAP_THRESHOLD, 1 << 20);
	mallopt(M_TRIM_THRESHOLD, 8 << 20);
#endif
	while ((ch = getopt(argc, argv, "c:tDVh")) != -1) {
		switch (ch) {
		case 'c':
			conf_path = optarg;
			break;
		case 't':
			check_only = 1;
			break;
		case 'D':
			background = 1;
			break;
		case 'V':
			printf("hegnd %s\n", PACKAGE_VERSION);
			return 0;
		default:
			usage();
		}
	}
	if (conf_path == NULL || optind != argc)
		usage();
	if (sodium_init() < 0) {
		fprintf(stderr, "hegnd: libsodium failed to initialise\n");
		return 1;
	}
	log_init("hegnd", LOG_LVL_INFO, 0);
	/* libcurl's global state is set up before any thread could race for it. */
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (check_only) {
		int errors = relay_check(conf_path, stdout);

		if (errors == 0)
			printf("configuration OK\n");
		return errors == 0 ? 0 : 1;
	}
	if (background && detach(&notify_fd) == -1) {
		fprintf(stderr, "hegnd: cannot detach (%s)\n", strerror(errno));
		return 1;
	}
	umask(077);
	/* What -t refuses, a start refuses too: unsafe files, bad keys, broken policies. */
	if (relay_check(conf_path, stderr) != 0) {
		log_error("hegnd: not starting: the configuration has errors (listed above)");
		goto out;
	}
	if (geteuid() == 0) {
		if (privsep_start(conf_path, &ps, &why) != 0) {
			log_error("hegnd: cannot start the key process (%s)", why.text);
			goto out;
		}
	} else {
		log_info("hegnd: not started as root: privilege separation is off, this "
		    "process holds the keys (docs/PRIVSEP.md)");
	}
	nkeyd = ps.nkeyd;
	ps.nkeyd = 0;
	if (relay_open_keyd(conf_path, RELAY_KEYS | RELAY_STORE | RELAY_SCHEDULER, ps.keyd_fds,
	    nkeyd, &relay, &why) != 0) {
		log_error("hegnd: cannot start (%s)", why.text);
		goto out;
	}
	if (ps.keyd_pid <= 0 && relay_conf(relay)->seccomp)
		log_warn("hegnd: [server] seccomp applies to the network process of privilege "
		    "separation only: not filtering");

	log_set_level((enum log_level)relay_conf(relay)->log_level);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);

	if ((ps.keyd_pid > 0 ? http_start_dropping(relay, privsep_drop, &ps, &http, &why) :
	    http_start(relay, &http, &why)) != 0) {
		log_error("hegnd: cannot serve (%s)", why.text);
		goto out;
	}
	if (relay_conf(relay)->pid_file != NULL && write_pid_file(relay_conf(relay)->pid_file) == -1) {
		log_error("hegnd: cannot write pid file %s (%s)", relay_conf(relay)->pid_file,
		    strerror(errno));
		goto out;
	}
	log_info("hegnd: listening on %s port %d", relay_conf(relay)->listen,
	    relay_conf(relay)->port);
	if (relay_audit_gateway(relay, "gateway.start", "hegnd started", &why) != 0 ||
	    relay_audit_parties(relay, &why) != 0)
		log_error("hegnd: cannot write the audit log (%s)", why.text);
	detach_done(notify_fd, 1);
	notify_fd = -1;
	if (pthread_create(&scheduler_thread, NULL, scheduler_main, relay) != 0) {
		log_error("hegnd: cannot start the delivery scheduler");
		goto out;
	}
	scheduler = 1;

	while (!want_quit) {
		struct timespec ts = { 0, 200 * 1000 * 1000 };

		nanosleep(&ts, NULL);
		if (keyd_gone(ps.keyd_pid)) {
			ps.keyd_pid = -1;
			rc = 1;
			goto out;
		}
		if (want_reload) {
			want_reload = 0;
			why_clear(&why);
			if (relay_reload(relay, &why) != 0)
				log_error("hegnd: reload failed, keeping the old trust store and "
				    "policies (%s)", why.text);
			else
				log_info("hegnd: reloaded trust anchors, CRLs and policies");
		}
		why_clear(&why);
		if (relay_tick(relay, 0, &why) != 0)
			log_error("hegnd: housekeeping failed (%s)", why.text);

	}
	log_info("hegnd: stopping");
	rc = 0;
out:
	detach_done(notify_fd, 0);
	/* Requests in flight and the scheduler's pass finish before the store closes. */
	http_stop(http);
	if (scheduler) {
		atomic_store(&scheduler_stop, 1);
		pthread_join(scheduler_thread, NULL);
	}
	if (rc == 0) {
		why_clear(&why);
		if (relay_audit_gateway(relay, "gateway.stop", "hegnd stopped", &why) != 0 ||
		    relay_tick(relay, 1, &why) != 0)
			log_error("hegnd: cannot close the audit log (%s)", why.text);
	}
	/* The pid file goes last: when it is gone, the database is closed too. */
	pid_file = relay != NULL && relay_conf(relay)->pid_file != NULL && rc == 0 ?
	    strdup(relay_conf(relay)->pid_file) : NULL;
	/* Closing the sockets (in relay_close) is what tells the key process to end. */
	relay_close(relay);
	for (i = 0; i < ps.nkeyd; i++)
		close(ps.keyd_fds[i]);
	if (ps.keyd_pid > 0)
		waitpid(ps.keyd_pid, NULL, 0);
	if (pid_file != NULL)
		unlink(pid_file);
	free(pid_file);
	return rc;
}
