#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "client.h"
#include "log.h"
#include "xmalloc.h"

#define CLIENT_MAX_RESPONSE (256u * 1024 * 1024)

struct client {
	CURL *curl;
	char *base;
	char errbuf[CURL_ERROR_SIZE];
};

int
client_new(const char *base, const char *cert, const char *key, const char *ca,
    struct client **out, struct why *why)
{
	static int inited;
	struct client *c;

	*out = NULL;
	if (!inited) {
		curl_global_init(CURL_GLOBAL_DEFAULT);
		inited = 1;
	}
	if (strncmp(base, "https://", 8) != 0)
		return why_set(why, HEGN_ERR_INVALID, "server: %s is not an https:// URL", base);
	c = xcalloc(1, sizeof(*c));
	c->base = xstrdup(base);
	if (c->base[strlen(c->base) - 1] == '/')
		c->base[strlen(c->base) - 1] = '\0';
	if ((c->curl = curl_easy_init()) == NULL) {
		client_free(c);
		return why_set(why, HEGN_ERR_INTERNAL, "libcurl failed to initialise");
	}
	curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, c->errbuf);
	curl_easy_setopt(c->curl, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->curl, CURLOPT_TIMEOUT, 120L);
	if (ca != NULL)
		curl_easy_setopt(c->curl, CURLOPT_CAINFO, ca);
	if (cert != NULL)
		curl_easy_setopt(c->curl, CURLOPT_SSLCERT, cert);
	if (key != NULL)
		curl_easy_setopt(c->curl, CURLOPT_SSLKEY, key);
	*out = c;
	return 0;
}

void
client_free(struct client *c)
{
	if (c == NULL)
		return;
	if (c->curl != NULL)
		curl_easy_cleanup(c->curl);
	free(c->base);
	free(c);
}

static size_t
on_body(char *data, size_t size, size_t n, void *arg)
{
	struct buf *b = arg;
	size_t len = size * n;

	if (b->len + len > CLIENT_MAX_RESPONSE)
		return 0;
	b->data = xrealloc(b->data, b->len + len + 1);
	memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return len;
}

static size_t
on_header(char *data, size_t size, size_t n, void *arg)
{
	struct client_response *r = arg;
	size_t len = size * n;
	char line[256];

	if (len >= sizeof(line))
		return len;
	memcpy(line, data, len);
	line[len] = '\0';
	line[strcspn(line, "\r\n")] = '\0';
	if (strncasecmp(line, "Content-Type:", 13) == 0)
		snprintf(r->content_type, sizeof(r->content_type), "%s", line + 13 + strspn(line + 13, " "));
	else if (strncasecmp(line, "Digest-SHA256:", 14) == 0)
		snprintf(r->digest, sizeof(r->digest), "%s", line + 14 + strspn(line + 14, " "));
	else if (strncasecmp(line, "Retry-After:", 12) == 0)
		r->retry_after = (unsigned)strtoul(line + 12, NULL, 10);
	return len;
}

int
client_request(struct client *c, const char *method, const char *path, const char *content_type,
    const char *accept, const uint8_t *body, size_t len, struct client_response *out,
    struct why *why)
{
	struct curl_slist *headers = NULL;
	char *url, line[160];
	CURLcode cc;
	int rc, tries;

	memset(out, 0, sizeof(*out));
	url = xasprintf("%s%s", c->base, path);
	c->errbuf[0] = '\0';
	curl_easy_setopt(c->curl, CURLOPT_URL, url);
	curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, method);
	if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(c->curl, CURLOPT_POST, 1L);
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body ? (const char *)body : "");
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	} else {
		curl_easy_setopt(c->curl, CURLOPT_HTTPGET, 1L);
	}
	if (content_type != NULL) {
		snprintf(line, sizeof(line), "Content-Type: %s", content_type);
		headers = curl_slist_append(headers, line);
	}
	if (accept != NULL) {
		snprintf(line, sizeof(line), "Accept: %s", accept);
		headers = curl_slist_append(headers, line);
	}
	headers = curl_slist_append(headers, "Expect:");
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &out->body);
	curl_easy_setopt(c->curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c->curl, CURLOPT_HEADERDATA, out);
	for (tries = 0;; tries++) {
		cc = curl_easy_perform(c->curl);
		if (cc != CURLE_OK) {
			rc = why_set(why, HEGN_ERR_IO, "%s %s: %s", method, url,
			    c->errbuf[0] ? c->errbuf : curl_easy_strerror(cc));
			client_response_clear(out);
			goto out;
		}
		curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &out->status);
		if ((out->status != 429 && out->status != 503) || out->retry_after == 0 ||
		    out->retry_after > CLIENT_RETRY_WAIT || tries == CLIENT_RETRIES)
			break;
		log_warn("client: %s %s: %ld (%s), again in %u s (%d of %d)", method, path,
		    out->status, out->status == 429 ? "too many requests" : "busy",
		    out->retry_after, tries + 1, CLIENT_RETRIES);
		sleep(out->retry_after);
		client_response_clear(out);
		out->retry_after = 0;
	}
	rc = 0;
out:
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(headers);
	free(url);
	return rc;
}

void
client_response_clear(struct client_response *r)
{
	if (r == NULL)
		return;
	buf_free(&r->body, 1);
	r->status = 0;
	r->content_type[0] = '\0';
	r->digest[0] = '\0';
	r->retry_after = 0;
}

const char *
client_error_text(const struct client_response *r, char *buf, size_t len)
{
	json_t *j, *m;

	j = json_loadb((const char *)r->body.data, r->body.len, 0, NULL);
	m = json_object_get(json_object_get(j, "error"), "message");
	if (json_is_string(m))
		snprintf(buf, len, "%ld %s", r->status, json_string_value(m));
	else
		snprintf(buf, len, "%ld %.*s", r->status, (int)(r->body.len > 200 ? 200 : r->body.len),
		    r->body.data ? (const char *)r->body.data : "");
	json_decref(j);
	return buf;
}
