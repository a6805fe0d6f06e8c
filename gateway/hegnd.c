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
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <sodium.h>

#include "http.h"
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

int
main(int argc, char **argv)
{
	const char *conf_path = NULL;
	struct relay *relay = NULL;
	struct http_server *http = NULL;
	struct sigaction sa;
	struct why why = { 0 };
	int ch, check_only = 0, background = 0, notify_fd = -1, rc = 1, scheduler = 0;
	pthread_t scheduler_thread;
	char *pid_file = NULL;

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
	if (relay_open(conf_path, RELAY_KEYS | RELAY_STORE, &relay, &why) != 0) {
		log_error("hegnd: cannot start (%s)", why.text);
		goto out;
	}
	log_set_level((enum log_level)relay_conf(relay)->log_level);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);

	if (http_start(relay, &http, &why) != 0) {
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
	relay_close(relay);
	if (pid_file != NULL)
		unlink(pid_file);
	free(pid_file);
	return rc;
}
