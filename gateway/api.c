#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api.h"
#include "log.h"
#include "relay.h"
#include "xmalloc.h"

#define ID_MAX 64

typedef void (*api_fn)(struct relay *, const struct http_request *, const char *id,
    struct http_response *);

/* How a route authenticates. */
enum api_auth {
	AUTH_PARTY,     /* a verified TLS client certificate of a registered party */
	AUTH_OPTIONAL,  /* the body's signature may stand in for the TLS client */
};

struct route {
	const char *method;
	const char *prefix;     /* path up to the id, or the whole path */
	const char *suffix;     /* after the id; NULL: no id in the path */
	enum api_auth auth;
	api_fn fn;
};

void
api_error(struct http_response *resp, int code, const char *message)
{
	json_t *j;
	char *s;

	buf_free(&resp->body, 0);
	resp->status = err_http_status(code);
	resp->content_type = "application/json";
	j = json_pack("{s:{s:s, s:s}}", "error", "code", err_name(code), "message",
	    message && *message ? message : hegn_strerror(code));
	s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	resp->body.data = (uint8_t *)s;
	resp->body.len = s ? strlen(s) : 0;
}

static void
api_why(struct http_response *resp, int code, const struct why *why)
{
	if (err_http_status(code) >= 500)
		log_error("api: request failed (%s)", why->text[0] ? why->text : hegn_strerror(code));
	/* Our own faults are reported without internals. */
	api_error(resp, code, err_http_status(code) >= 500 ? hegn_strerror(code) : why->text);
}

static void
api_json(struct http_response *resp, int status, json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);

	json_decref(j);
	resp->status = status;
	resp->content_type = "application/json";
	resp->body.data = (uint8_t *)s;
	resp->body.len = s ? strlen(s) : 0;
}

/* The media type of a Content-Type header, without parameters, lower case. */
static void
media_type(const char *header, char *out, size_t outlen)
{
	size_t i;

	out[0] = '\0';
	if (header == NULL)
		return;
	while (*header == ' ')
		header++;
	for (i = 0; i + 1 < outlen && header[i] != '\0' && header[i] != ';' && header[i] != ' '; i++)
		out[i] = (char)(header[i] >= 'A' && header[i] <= 'Z' ? header[i] + 32 : header[i]);
	out[i] = '\0';
}

static int
accepts(const struct http_request *req, const char *type)
{
	const char *a = http_header(req, "Accept");

	return a != NULL && strstr(a, type) != NULL;
}

static void
post_message(struct relay *r, const struct http_request *req, const char *id,
    struct http_response *resp)
{
	struct why why = { 0 };
	char ctype[64];
	json_t *j = NULL;
	int created = 0, rc;

	(void)id;
	media_type(http_header(req, "Content-Type"), ctype, sizeof(ctype));
	rc = relay_submit(r, req->party, ctype, req->body.data, req->body.len, &j, &created, &why);
	if (rc != 0) {
		api_why(resp, rc, &why);
		return;
	}
	snprintf(resp->location, sizeof(resp->location), "/v1/messages/%s",
	    json_string_value(json_object_get(j, "id")));
	api_json(resp, created ? 201 : 200, j);
}

static void
get_inbox(struct relay *r, const struct http_request *req, const char *id,
    struct http_response *resp)
{
	struct why why = { 0 };
	json_t *j = NULL;
	int rc;

	(void)id;
	rc = relay_inbox(r, req->party, http_query(req, "after"), http_query(req, "limit"), &j, &why);
	if (rc != 0) {
		api_why(resp, rc, &why);
		return;
	}
	api_json(resp, 200, j);
}

static void
get_message(struct relay *r, const struct http_request *req, const char *id,
    struct http_response *resp)
{
	struct why why = { 0 };
	char sha[65];
	json_t *j = NULL;
	int rc;

	if (!accepts(req, "application/json")) {
		rc = relay_fetch(r, req->party, id, &resp->body, sha, &why);
		if (rc == 0) {
			resp->status = 200;
			resp->content_type = "application/pkcs7-mime; smime-type=enveloped-data";
			snprintf(resp->digest, sizeof(resp->digest), "%s", sha);
			return;
		}
		/* The sender asking without an Accept header gets the status. */
		if (rc != HEGN_ERR_NOT_FOUND || accepts(req, "application/pkcs7-mime")) {
			api_why(resp, rc, &why);
			return;
		}
		why_clear(&why);
	}
	rc = relay_status(r, req->party, id, &j, &why);
	if (rc != 0) {
		api_why(resp, rc, &why);
		return;
	}
	api_json(resp, 200, j);
}

static void
post_receipt(struct relay *r, const struct http_request *req, const char *id,
    struct http_response *resp)
{
	struct why why = { 0 };
	char ctype[64];
	json_t *j = NULL;
	int rc;

	media_type(http_header(req, "Content-Type"), ctype, sizeof(ctype));
	if (strcmp(ctype, "application/pkcs7-mime") != 0) {
		api_error(resp, HEGN_ERR_UNSUPPORTED,
		    "Content-Type: a receipt is a CMS SignedData sent as application/pkcs7-mime");
		return;
	}
	rc = relay_receipt(r, req->party, id, req->body.data, req->body.len, &j, &why);
	if (rc != 0) {
		api_why(resp, rc, &why);
		return;
	}
	api_json(resp, 200, j);
}

static const struct route routes[] = {
	{ "POST", "/v1/messages", NULL, AUTH_OPTIONAL, post_message },
	{ "GET", "/v1/inbox", NULL, AUTH_PARTY, get_inbox },
	{ "GET", "/v1/messages/", "", AUTH_PARTY, get_message },
	{ "POST", "/v1/messages/", "/receipt", AUTH_OPTIONAL, post_receipt },
};

/*
 * Match path against a route: a fixed path, or prefix + id + suffix where
 * the id is one path segment.  Writes the id (empty when none) to id.
 */
static int
route_match(const struct route *rt, const char *path, char id[ID_MAX + 1])
{
	size_t plen = strlen(rt->prefix), slen, idlen;
	const char *rest;

	id[0] = '\0';
	if (rt->suffix == NULL)
		return strcmp(path, rt->prefix) == 0;
	if (strncmp(path, rt->prefix, plen) != 0)
		return 0;
	rest = path + plen;
	idlen = strcspn(rest, "/");
	slen = strlen(rt->suffix);
	if (idlen == 0 || idlen > ID_MAX || strcmp(rest + idlen, rt->suffix) != 0)
		return 0;
	(void)slen;
	memcpy(id, rest, idlen);
	id[idlen] = '\0';
	return 1;
}

void
api_handle(struct relay *r, const struct http_request *req, struct http_response *resp)
{
	char id[ID_MAX + 1];
	size_t i;
	int path_known = 0;

	for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (!route_match(&routes[i], req->path, id))
			continue;
		path_known = 1;
		if (strcmp(routes[i].method, req->method) != 0)
			continue;
		if (routes[i].auth == AUTH_PARTY && req->party == NULL) {
			api_error(resp, HEGN_ERR_UNAUTH, req->auth.text);
			return;
		}
		/*
		 * A client that presented a certificate we refuse is refused,
		 * even where a signature could stand in for it.
		 */
		if (req->party == NULL && req->cert_presented) {
			api_error(resp, HEGN_ERR_UNAUTH, req->auth.text);
			return;
		}
		routes[i].fn(r, req, id, resp);
		return;
	}
	if (path_known) {
		api_error(resp, HEGN_ERR_INVALID, "method not allowed on this path");
		resp->status = 405;
		return;
	}
	api_error(resp, HEGN_ERR_NOT_FOUND, "no such endpoint");
}
