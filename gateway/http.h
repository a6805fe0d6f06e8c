/*
 * http: the HTTPS server (libmicrohttpd over GnuTLS).
 *
 * It terminates TLS, collects the request body within the configured
 * limit, authenticates the client certificate itself (libmicrohttpd only
 * requests one: it does not verify it), and hands each complete request to
 * the api layer.
 */
#ifndef HEGN_HTTP_H
#define HEGN_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "party.h"
#include "relay.h"
#include "util.h"

/* One request as the api layer sees it. */
struct http_request {
	const char *method;
	const char *path;
	const struct party *party;      /* verified TLS client, or NULL */
	struct why auth;                /* why party is NULL */
	int cert_presented;             /* the client sent a certificate (valid or not) */
	struct buf body;
	/*
	 * &body, for a handler that is done with the body before the end of
	 * the request to wipe and free it early; NULL where it may not.
	 */
	struct buf *release;
	void *conn;                     /* the MHD connection, for headers */
};

/* A header value of req, or NULL. */
const char *http_header(const struct http_request *req, const char *name);
/* A query argument of req, or NULL. */
const char *http_query(const struct http_request *req, const char *name);

struct http_response {
	int status;
	const char *content_type;
	struct buf body;                /* owned; freed after sending */
	char location[160];             /* "Location" when non-empty */
	char digest[80];                /* "Digest-SHA256" when non-empty */
	char cookie[2][200];            /* "Set-Cookie" values when non-empty (web page) */
	const char *csp;                /* "Content-Security-Policy" when set (web page) */
	unsigned int retry_after;       /* "Retry-After" seconds when non-zero (429) */
	/*
	 * With read set, the body is stream.size bytes that read puts in
	 * pieces (0, or -1 to break the response off), and free releases arg
	 * once the response is done; body is then unused.
	 */
	struct {
		uint64_t size;
		int (*read)(void *arg, uint64_t offset, uint8_t *out, size_t n, size_t *got);
		void (*free)(void *arg);
		void *arg;
	} stream;
};

/*
 * The TLS priority string: TLS 1.2 and 1.3, AEAD suites only (no CBC),
 * forward-secret key exchange only (no static RSA), server preference.
 * tests/integration/test_tls.sh holds it to testssl.sh.
 */
#define HTTP_TLS_PRIORITIES \
	"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-256-GCM:+AES-128-GCM:" \
	"+CHACHA20-POLY1305:-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:+DHE-RSA:" \
	"%SERVER_PRECEDENCE"

struct http_server;

/* Listen as the configuration says and serve requests through api_handle(). */
int http_start(struct relay *r, struct http_server **out, struct why *why);
/*
 * Privilege separation (docs/PRIVSEP.md): like http_start, but bind the
 * socket and read the TLS files first, then call drop(arg, why) (which gives
 * up root), and only then accept connections, so no network input is
 * parsed with privileges.  A failing drop fails the start.
 */
int http_start_dropping(struct relay *r, int (*drop)(void *arg, struct why *why), void *arg,
    struct http_server **out, struct why *why);
/* Stop accepting, finish requests in flight, free. */
void http_stop(struct http_server *s);

#endif
