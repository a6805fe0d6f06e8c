/*
 * testadapter: the shared test world of the adapter tests (test-only).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "certgen.h"
#include "envelope.h"
#include "err.h"
#include "testadapter.h"
#include "util.h"

static void
die(const char *what, const struct why *why)
{
	fprintf(stderr, "testadapter: %s: %s\n", what, why != NULL ? why->text : "");
	abort();
}

static X509 *
issue(EVP_PKEY *key, const char *cn, const char *cvr, enum certgen_profile prof,
    X509 *icert, EVP_PKEY *ikey, uint64_t serial)
{
	struct certgen_subject s = { cn, "hegn adapter test", cvr, NULL };
	struct why why;
	time_t now = time(NULL);
	X509 *x = NULL;

	if (certgen_cert(key, &s, prof, icert, ikey, now - 86400, now + 30L * 86400, serial,
	    &x, &why) != 0)
		die("certgen_cert", &why);
	return x;
}

static EVP_PKEY *
key(void)
{
	struct why why;
	EVP_PKEY *k = NULL;

	if (certgen_key(CERTGEN_RSA, 2048, &k, &why) != 0)
		die("certgen_key", &why);
	return k;
}

static void
save(const struct tworld *w, const char *name, X509 *cert, EVP_PKEY *k)
{
	char p[128];
	struct why why;

	snprintf(p, sizeof(p), "%s/%s.pem", w->dir, name);
	if (certgen_write_cert(p, cert, &why) != 0)
		die("certgen_write_cert", &why);
	if (k == NULL)
		return;
	snprintf(p, sizeof(p), "%s/%s.key", w->dir, name);
	if (certgen_write_key(p, k, &why) != 0)
		die("certgen_write_key", &why);
}

void
tw_setup(struct tworld *w, const char *name)
{
	memset(w, 0, sizeof(*w));
	snprintf(w->dir, sizeof(w->dir), "/tmp/hegn-test-%s-XXXXXX", name);
	if (mkdtemp(w->dir) == NULL)
		abort();
	w->ca_key = key();
	w->other_key = key();
	w->server_key = key();
	w->client_key = key();
	w->stranger_key = key();
	w->sender_key = key();
	w->rcpt_key = key();
	w->ca = issue(w->ca_key, "Adapter Test Root", NULL, CERTGEN_ROOT_CA, NULL, w->ca_key, 1);
	w->other = issue(w->other_key, "Other Test Root", NULL, CERTGEN_ROOT_CA, NULL, w->other_key, 1);
	w->server = issue(w->server_key, "receiver", "11111111", CERTGEN_SERVER, w->ca,
	    w->ca_key, 10);
	w->client = issue(w->client_key, "hegn-gateway", "22222222", CERTGEN_SERVER, w->ca,
	    w->ca_key, 11);
	w->stranger = issue(w->stranger_key, "stranger", "33333333", CERTGEN_SERVER, w->other,
	    w->other_key, 12);
	w->sender = issue(w->sender_key, "ringsted-visitation", "29189927", CERTGEN_ORG, w->ca,
	    w->ca_key, 13);
	w->rcpt = issue(w->rcpt_key, "hovmand-care", "44444444", CERTGEN_ORG, w->ca, w->ca_key,
	    14);
	save(w, "ca", w->ca, NULL);
	save(w, "other-ca", w->other, NULL);
	save(w, "server", w->server, w->server_key);
	save(w, "client", w->client, w->client_key);
	save(w, "stranger", w->stranger, w->stranger_key);
	save(w, "sender", w->sender, w->sender_key);
	save(w, "rcpt", w->rcpt, w->rcpt_key);
}

void
tw_teardown(struct tworld *w)
{
	EVP_PKEY_free(w->ca_key);
	EVP_PKEY_free(w->other_key);
	EVP_PKEY_free(w->server_key);
	EVP_PKEY_free(w->client_key);
	EVP_PKEY_free(w->stranger_key);
	EVP_PKEY_free(w->sender_key);
	EVP_PKEY_free(w->rcpt_key);
	X509_free(w->ca);
	X509_free(w->other);
	X509_free(w->server);
	X509_free(w->client);
	X509_free(w->stranger);
	X509_free(w->sender);
	X509_free(w->rcpt);
	if (w->dir[0] != '\0')
		tw_run("rm -rf '%s'", w->dir);
	memset(w, 0, sizeof(*w));
}

const char *
tw_path(const struct tworld *w, const char *name)
{
	static char p[8][256];
	static int n;

	n = (n + 1) % 8;
	snprintf(p[n], sizeof(p[n]), "%s/%s", w->dir, name);
	return p[n];
}

void
tw_seal(const struct tworld *w, enum envelope_cipher cipher, const char *content,
    struct buf *out)
{
	struct buf signed_der = { NULL, 0 };
	struct why why;

	if (envelope_sign(w->sender_key, w->sender, NULL, ENVELOPE_PSS,
	    (const uint8_t *)content, strlen(content), "msg-1", &signed_der, &why) != 0)
		die("envelope_sign", &why);
	if (envelope_seal(w->rcpt, cipher, signed_der.data, signed_der.len, 1, out, &why) != 0)
		die("envelope_seal", &why);
	buf_free(&signed_der, 0);
}

const char *
tw_python(const char *module)
{
	static const char *const cands[] = { "/usr/bin/python3", "/bin/python3", NULL };
	size_t i;

	for (i = 0; cands[i] != NULL; i++) {
		if (access(cands[i], X_OK) != 0)
			continue;
		if (module == NULL || tw_run("%s -c 'import %s' >/dev/null 2>&1", cands[i], module) == 0)
			return cands[i];
	}
	return NULL;
}

const char *
tw_srcdir(void)
{
	const char *top = getenv("HEGN_TOP_SRCDIR");

	return top != NULL && *top != '\0' ? top : HEGN_TOP_SRCDIR;
}

pid_t
tw_spawn(char *const argv[], const char *portfile, int *port)
{
	struct timespec nap = { 0, 50 * 1000 * 1000 };
	FILE *f;
	pid_t pid;
	int i, st;

	*port = 0;
	unlink(portfile);
	if ((pid = fork()) == -1)
		return -1;
	if (pid == 0) {
		char log[512];
		int fd;

		/* The peer's own complaints (refused handshakes) go to a log, not the test output. */
		snprintf(log, sizeof(log), "%s.log", portfile);
		if ((fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600)) != -1) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		execv(argv[0], argv);
		_exit(127);
	}
	/* Up to a minute for the interpreter to start under sanitizers. */
	for (i = 0; i < 1200; i++) {
		if ((f = fopen(portfile, "r")) != NULL) {
			if (fscanf(f, "%d", port) != 1)
				*port = 0;
			fclose(f);
			if (*port > 0)
				return pid;
		}
		if (waitpid(pid, &st, WNOHANG) == pid)
			return -1;
		nanosleep(&nap, NULL);
	}
	tw_stop(pid);
	return -1;
}

void
tw_stop(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	while (waitpid(pid, NULL, 0) == -1 && errno == EINTR)
		;
}

int
tw_run(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if ((st = system(cmd)) == -1)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int
tw_file_has(const char *path, const char *needle)
{
	struct buf b = { NULL, 0 };
	int found;

	if (util_read_file(path, 64u * 1024 * 1024, &b, NULL) != 0)
		return 0;
	found = b.len > 0 && memmem(b.data, b.len, needle, strlen(needle)) != NULL;
	buf_free(&b, 0);
	return found;
}
