#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api.h"
#include "log.h"
#include "relay.h"
#include "report.h"
#include "web.h"
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

/*
 * MedCom (issue 7): the answer to a FHIR submission is its Acknowledgement,
 * sent as relay built it.  Returns 1 when resp is filled.
 */
static int
medcom_answer(struct http_response *resp, int rc, const struct why *why, json_t *j,
    int created)
{
	const char *ack = json_string_value(json_object_get(j, RELAY_MEDCOM_ACK));
	const char *id = json_string_value(json_object_get(j, "id"));
	size_t len = json_string_length(json_object_get(j, RELAY_MEDCOM_ACK));

	if (ack == NULL)
		return 0;
	if (rc != 0 && err_http_status(rc) >= 500)
		log_error("api: request failed (%s)", why->text);
	buf_free(&resp->body, 0);
	resp->status = rc != 0 ? err_http_status(rc) : created ? 201 : 200;
	resp->content_type = "application/fhir+json";
	resp->body.data = xmalloc(len + 1);
	memcpy(resp->body.data, ack, len + 1);
	resp->body.len = len;
	if (rc == 0 && id != NULL)
		snprintf(resp->location, sizeof(resp->location), "/v1/messages/%s", id);
	json_decref(j);
	return 1;
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
	if (req->release != NULL)
		rc = relay_submit_buf(r, req->party, ctype, req->release, &j, &created, &why);
	else
		rc = relay_submit(r, req->party, ctype, req->body.data, req->body.len, &j, &created,
		    &why);
	if (medcom_answer(resp, rc, &why, j, created))
		return;
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

/* The http layer's reader of a fetched copy: a piece at a time, from the store. */
static int
sealed_stream_read(void *arg, uint64_t offset, uint8_t *out, size_t n, size_t *got)
{
	struct relay_sealed *s = arg;
	struct why why = { 0 };

	if (relay_sealed_read(s, offset, out, n, got, &why) != 0) {
		log_error("api: sending a sealed copy stopped at byte %llu of %llu: %s",
		    (unsigned long long)offset, (unsigned long long)relay_sealed_size(s), why.text);
		return -1;
	}
	return 0;
}

static void
sealed_stream_free(void *arg)
{
	relay_sealed_free(arg);
}

static void
get_message(struct relay *r, const struct http_request *req, const char *id,
    struct http_response *resp)
{
	struct why why = { 0 };
	struct relay_sealed *sealed = NULL;
	json_t *j = NULL;
	int rc;

	/*
	 * The sealed copy for a recipient that asks for it (or asks for
	 * nothing); the status for everyone else, without touching the copy.
	 */
	if (accepts(req, "application/pkcs7-mime") ||
	    (!accepts(req, "application/json") && relay_is_recipient(r, req->party, id))) {
		rc = relay_fetch(r, req->party, id, &sealed, &why);
		if (rc != 0) {
			api_why(resp, rc, &why);
			return;
		}
		resp->status = 200;
		resp->content_type = "application/pkcs7-mime; smime-type=enveloped-data";
		snprintf(resp->digest, sizeof(resp->digest), "%s", relay_sealed_sha256(sealed));
		resp->stream.size = relay_sealed_size(sealed);
		resp->stream.read = sealed_stream_read;
		resp->stream.free = sealed_stream_free;
		resp->stream.arg = sealed;
		return;
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

/* Only the roles listed may call; everyone else gets 403 naming the rule. */
static int
role_in(const struct http_request *req, enum party_role a, enum party_role b,
    struct http_response *resp)
{
	if (req->party->role == a || req->party->role == b)
		return 1;
	api_error(resp, HEGN_ERR_DENIED, "this endpoint is not open to your party's role");
	return 0;
}

static json_t *
body_json(const struct http_request *req, struct http_response *resp)
{
	json_error_t err;
	json_t *j;
	char msg[300];

	j = json_loadb((const char *)req->body.data, req->body.len, JSON_REJECT_DUPLICATES, &err);
	if (j == NULL) {
		snprintf(msg, sizeof(msg), "body: malformed JSON at line %d column %d", err.line,
		    err.column);
		api_error(resp, HEGN_ERR_INVALID, msg);
	}
	return j;
}

/* An optional RFC 3339 query argument as ms; -1 (and resp filled) when malformed. */
static int64_t
time_arg(const struct http_request *req, const char *name, struct http_response *resp)
{
	const char *v = http_query(req, name);
	char msg[80];
	time_t t;

	if (v == NULL || *v == '\0')
		return 0;
	if (util_parse_rfc3339(v, &t) != 0) {
		snprintf(msg, sizeof(msg), "%s: an RFC 3339 time with a zone", name);
		api_error(resp, HEGN_ERR_INVALID, msg);
		return -1;
	}
	return (int64_t)t * 1000;
}

static void
post_fallback(struct relay *r, const struct http_request *req, const char *id,
    struct http_response *resp)
{
	struct why why = { 0 };
	json_t *j, *out = NULL;
	int rc;

	if (!role_in(req, ROLE_VISITATION, ROLE_VISITATION, resp))
		return;
	/* Only the sender says how its message went; others see the same 404 as for no message. */
	if (!relay_is_sender(r, req->party, id)) {
		api_error(resp, HEGN_ERR_NOT_FOUND, "no message for you with that id");
		return;
	}
	if ((j = body_json(req, resp)) == NULL)
		return;
	rc = relay_fallback(r, req->party->name, id,
	    json_string_value(json_object_get(j, "recipient")),
	    json_string_value(json_object_get(j, "channel")),
	    json_string_value(json_object_get(j, "reason")), &out, &why);
	json_decref(j);
	if (rc != 0) {
		api_why(resp, rc, &why);
		return;
	}
	api_json(resp, 200, out);
}

static void
post_fallbacks(struct relay *r, const struct http_request *req, const char *id,
    struct http_response *resp)
{
	struct why why = { 0 };
	json_t *j, *out = NULL;
	int rc;

	(void)id;
	if (!role_in(req, ROLE_VISITATION, ROLE_PROVIDER, resp) || (j = body_json(req, resp)) == NULL)
		return;
	rc = relay_external(r, req->party->name, j, &out, &why);
	json_decref(j);
	if (rc != 0) {
		api_why(resp, rc, &why);
		return;
	}
	api_json(resp, 201, out);
}

static void
get_report(struct relay *r, const struct http_request *req, const char *id,
    struct http_response *resp)
{
	struct report *rep = NULL;
	struct why why = { 0 };
	int64_t from, to;
	int rc;

	(void)id;
	if (!role_in(req, ROLE_AUDITOR, ROLE_VISITATION, resp))
		return;
	if ((from = time_arg(req, "from", resp)) < 0 || (to = time_arg(req, "to", resp)) < 0)
		return;
	if ((rc = report_collect(relay_store(r), relay_parties(r), from, to, &rep, &why)) != 0) {
		api_why(resp, rc, &why);
		return;
	}
	api_json(resp, 200, report_delivery_json(rep));
	report_free(rep);
}

static void
get_metrics(struct relay *r, const struct http_request *req, const char *id,
    struct http_response *resp)
{
	struct why why = { 0 };
	int rc;

	(void)id;
	if (!role_in(req, ROLE_AUDITOR, ROLE_VISITATION, resp))
		return;
	if ((rc = report_metrics(relay_store(r), relay_parties(r), &resp->body, &why)) != 0) {
		api_why(resp, rc, &why);
		return;
	}
	resp->status = 200;
	resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
}

/* The citizen access report as a page: who saw the citizen's data, when and why. */
static void
access_page(json_t *j, struct http_response *resp)
{
	struct buf b = { 0 };
	json_t *e;
	size_t i;
	char *s;
	FILE *f;

	f = open_memstream((char **)&b.data, &b.len);
	fprintf(f, "<!doctype html><html lang=\"da\"><head><meta charset=\"utf-8\">"
	    "<title>Indsigt: adgang til borgerens oplysninger</title>"
	    "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
	    "td,th{border:1px solid #999;padding:.3em .6em;text-align:left}</style></head><body>"
	    "<h1>Adgang til borgerens oplysninger / Access to the citizen's data</h1>"
	    "<p>Borgeren er identificeret ved en nøglet hash af CPR-nummeret: <code>%s</code></p>"
	    "<table><thead><tr><th scope=\"col\">Tid / time</th><th scope=\"col\">Part / party</th>"
	    "<th scope=\"col\">Handling / action</th><th scope=\"col\">Udfald / outcome</th>"
	    "<th scope=\"col\">Regel / rule</th><th scope=\"col\">Besked / message</th>"
	    "<th scope=\"col\">Detalje / detail</th></tr></thead><tbody>",
	    json_string_value(json_object_get(j, "citizen")));
	json_array_foreach(json_object_get(j, "entries"), i, e) {
		static const char *const cols[] = { "time", "actor", "action", "outcome", "rule",
			"message", "detail" };
		size_t c;

		fputs("<tr>", f);
		for (c = 0; c < sizeof(cols) / sizeof(cols[0]); c++) {
			const char *v = json_string_value(json_object_get(e, cols[c]));

			fputs("<td>", f);
			/* Everything in the log is escaped: it is data, never markup. */
			for (s = (char *)(v ? v : ""); *s; s++) {
				if (*s == '<')
					fputs("&lt;", f);
				else if (*s == '>')
					fputs("&gt;", f);
				else if (*s == '&')
					fputs("&amp;", f);
				else if (*s == '"')
					fputs("&quot;", f);
				else
					fputc(*s, f);
			}
			fputs("</td>", f);
		}
		fputs("</tr>", f);
	}
	fprintf(f, "</tbody></table><p>%zu hændelser / events.</p></body></html>\n",
	    json_array_size(json_object_get(j, "entries")));
	fclose(f);
	resp->status = 200;
	resp->content_type = "text/html; charset=utf-8";
	resp->body = b;
}

static void
get_audit(struct relay *r, const struct http_request *req, const char *id,
    struct http_response *resp)
{
	struct why why = { 0 };
	const char *cpr = http_query(req, "cpr");
	int64_t from, to;
	json_t *j = NULL;
	int rc;

	(void)id;
	if (cpr == NULL) {
		api_error(resp, HEGN_ERR_INVALID, "cpr: missing");
		return;
	}
	if ((from = time_arg(req, "from", resp)) < 0 || (to = time_arg(req, "to", resp)) < 0)
		return;
	if ((rc = relay_audit_query(r, req->party, NULL, cpr, from, to, &j, &why)) != 0) {
		api_why(resp, rc, &why);
		return;
	}
	if (accepts(req, "text/html") || (http_query(req, "format") != NULL &&
	    strcmp(http_query(req, "format"), "html") == 0)) {
		access_page(j, resp);
		json_decref(j);
		return;
	}
	api_json(resp, 200, j);
}

static void
get_assignments(struct relay *r, const struct http_request *req, const char *id,
    struct http_response *resp)
{
	struct why why = { 0 };
	json_t *j = NULL;
	int rc;

	(void)id;
	if (!role_in(req, ROLE_VISITATION, ROLE_AUDITOR, resp))
		return;
	if ((rc = relay_assign_list(r, http_query(req, "cpr"), http_query(req, "provider"), &j,
	    &why)) != 0) {
		api_why(resp, rc, &why);
		return;
	}
	api_json(resp, 200, j);
}

/* A string member of j, or "" when absent. */
static const char *
jstr(const json_t *j, const char *name)
{
	const char *v = json_string_value(json_object_get(j, name));

	return v != NULL ? v : "";
}

static void
post_assignments(struct relay *r, const struct http_request *req, const char *id,
    struct http_response *resp)
{
	struct why why = { 0 };
	json_t *j;
	const char *action;
	int rc;

	(void)id;
	if (!role_in(req, ROLE_VISITATION, ROLE_VISITATION, resp) || (j = body_json(req, resp)) == NULL)
		return;
	action = json_string_value(json_object_get(j, "action"));
	if (action != NULL && strcmp(action, "end") == 0)
		rc = relay_assign_end(r, req->party->name,
		    jstr(j, "cpr"),
		    json_string_value(json_object_get(j, "provider")),
		    json_string_value(json_object_get(j, "services")),
		    jstr(j, "date"),
		    json_string_value(json_object_get(j, "reason")), &why);
	else
		rc = relay_assign_add(r, req->party->name,
		    jstr(j, "cpr"),
		    jstr(j, "provider"),
		    jstr(j, "services"),
		    jstr(j, "from"),
		    json_string_value(json_object_get(j, "to")), &why);
	json_decref(j);
	if (rc != 0) {
		api_why(resp, rc, &why);
		return;
	}
	api_json(resp, 200, json_pack("{s:s}", "result", action && strcmp(action, "end") == 0 ?
	    "ended" : "assigned"));
}

static const struct route routes[] = {
	{ "POST", "/v1/messages", NULL, AUTH_OPTIONAL, post_message },
	{ "GET", "/v1/inbox", NULL, AUTH_PARTY, get_inbox },
	{ "GET", "/v1/messages/", "", AUTH_PARTY, get_message },
	{ "POST", "/v1/messages/", "/receipt", AUTH_OPTIONAL, post_receipt },
	{ "POST", "/v1/messages/", "/fallback", AUTH_PARTY, post_fallback },
	{ "POST", "/v1/fallbacks", NULL, AUTH_PARTY, post_fallbacks },
	{ "GET", "/v1/reports/delivery", NULL, AUTH_PARTY, get_report },
	{ "GET", "/metrics", NULL, AUTH_PARTY, get_metrics },
	{ "GET", "/v1/audit", NULL, AUTH_PARTY, get_audit },
	{ "GET", "/v1/assignments", NULL, AUTH_PARTY, get_assignments },
	{ "POST", "/v1/assignments", NULL, AUTH_PARTY, post_assignments },
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

int
api_route(const char *method, const char *path, char id[ID_MAX + 1], int *path_known)
{
	size_t i;

	*path_known = 0;
	id[0] = '\0';
	for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (!route_match(&routes[i], path, id))
			continue;
		*path_known = 1;
		if (strcmp(routes[i].method, method) == 0)
			return (int)i;
	}
	return -1;
}

/*
 * The refusals that need no body: an unknown path or method, or a party's
 * endpoint without a verified party.  Answers resp and returns 1, or 0.
 * The route's index goes to *route.
 */
static int
refuse_unread(const struct http_request *req, struct http_response *resp, size_t *route,
    char id[ID_MAX + 1])
{
	size_t i;
	int path_known = 0;

	if ((i = (size_t)api_route(req->method, req->path, id, &path_known)) == (size_t)-1) {
		if (path_known) {
			api_error(resp, HEGN_ERR_INVALID, "method not allowed on this path");
			resp->status = 405;
			return 1;
		}
		api_error(resp, HEGN_ERR_NOT_FOUND, "no such endpoint");
		return 1;
	}
	*route = i;
	if (routes[i].auth == AUTH_PARTY && req->party == NULL) {
		api_error(resp, HEGN_ERR_UNAUTH, req->auth.text);
		return 1;
	}
	/*
	 * A client that presented a certificate we refuse is refused,
	 * even where a signature could stand in for it.
	 */
	if (req->party == NULL && req->cert_presented) {
		api_error(resp, HEGN_ERR_UNAUTH, req->auth.text);
		return 1;
	}
	return 0;
}

int
api_refuse_unread(const struct http_request *req, struct http_response *resp)
{
	char id[ID_MAX + 1];
	size_t i;

	/* The staff web page decides for itself (session cookies). */
	if (strncmp(req->path, "/web", 4) == 0 || strcmp(req->path, "/") == 0)
		return 0;
	return refuse_unread(req, resp, &i, id);
}

void
api_handle(struct relay *r, const struct http_request *req, struct http_response *resp)
{
	char id[ID_MAX + 1];
	size_t i;

	/* The staff web page authenticates by session cookie, not by certificate. */
	if (strncmp(req->path, "/web", 4) == 0 || strcmp(req->path, "/") == 0) {
		web_handle(r, req, resp);
		return;
	}
	if (!refuse_unread(req, resp, &i, id))
		routes[i].fn(r, req, id, resp);
}
