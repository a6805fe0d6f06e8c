/*
 * testadapter: what the adapter tests share: a small PKI on disk (a CA, a
 * TLS server and client, a sender and a recipient organisation, and a
 * stranger CA), a sealed message, and helpers that start a real peer
 * (a Python receiver on a loopback port) and stop it again.
 */
#ifndef HEGN_TESTADAPTER_H
#define HEGN_TESTADAPTER_H

#include <sys/types.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "envelope.h"
#include "util.h"

struct tworld {
	char dir[64];
	EVP_PKEY *ca_key, *other_key, *server_key, *client_key, *stranger_key;
	EVP_PKEY *sender_key, *rcpt_key;
	X509 *ca, *other, *server, *client, *stranger, *sender, *rcpt;
};

/*
 * Make the world in a new /tmp/hegn-test-<name>-XXXXXX with PEM files
 * ca.pem, other-ca.pem, server.{pem,key}, client.{pem,key},
 * stranger.{pem,key} (issued by other-ca), sender.{pem,key},
 * rcpt.{pem,key}.  Aborts on failure (a broken test world).
 */
void tw_setup(struct tworld *w, const char *name);
void tw_teardown(struct tworld *w);

/* DIR/name (rotating static buffers: up to 8 at a time). */
const char *tw_path(const struct tworld *w, const char *name);

/* content signed by sender and sealed to rcpt; aborts on failure. */
void tw_seal(const struct tworld *w, enum envelope_cipher cipher, const char *content,
    struct buf *out);

/* Debian's python3 when it can import module (NULL: skip the test). */
const char *tw_python(const char *module);

/* The source tree (for the Python receivers in tests/integration). */
const char *tw_srcdir(void);

/*
 * Start argv (argv[0] a full path) and wait until it writes its port to
 * portfile; returns the pid and *port, or -1.
 */
pid_t tw_spawn(char *const argv[], const char *portfile, int *port);

/* Stop a process tw_spawn started and reap it. */
void tw_stop(pid_t pid);

/* Run a shell command; its exit status, or -1. */
int tw_run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Whether file contains needle (a plain substring). */
int tw_file_has(const char *path, const char *needle);

#endif
