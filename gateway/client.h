/*
 * client: an HTTPS client for hegn's API (libcurl), used by the command
 * line's send, fetch and agent.  It authenticates with a client certificate
 * and verifies the server against the given CA file; one connection is kept
 * alive across requests.
 */
#ifndef HEGN_CLIENT_H
#define HEGN_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "util.h"

struct client;

struct client_response {
	long status;
	char content_type[128];
	char digest[80];          /* Digest-SHA256 header, if any */
	unsigned retry_after;     /* Retry-After in seconds, if any (429, 503) */
	struct buf body;
};

/* base is "https://host:port"; cert/key may be NULL (no client certificate). */
int client_new(const char *base, const char *cert, const char *key, const char *ca,
    struct client **out, struct why *why);
void client_free(struct client *c);

/*
 * One request.  Returns 0 when an HTTP answer came (any status: look at
 * out->status), HEGN_ERR_IO when none did.  A 429 or 503 that says when to
 * come back (Retry-After, at most CLIENT_RETRY_WAIT seconds) is tried again
 * then, up to CLIENT_RETRIES times, with a warning each time: hegnd refused
 * it before acting on it (the rate, or the memory for large bodies).
 */
#define CLIENT_RETRIES 5
#define CLIENT_RETRY_WAIT 60
int client_request(struct client *c, const char *method, const char *path,
    const char *content_type, const char *accept, const uint8_t *body, size_t len,
    struct client_response *out, struct why *why);

void client_response_clear(struct client_response *r);

/* The "message" of an error body, or the body itself, for showing the user. */
const char *client_error_text(const struct client_response *r, char *buf, size_t len);

#endif
