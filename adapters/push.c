/*
 * push: POST the sealed message to the party's HTTPS endpoint with mutual
 * TLS.  A 2xx answer is a hand-over; when its body is application/pkcs7-mime
 * it is the party's signed receipt, which the caller verifies like any other.
 * Receipts that come later arrive through POST /v1/messages/{id}/receipt.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "adapter.h"
#include "err.h"
#include "util.h"

#define PUSH_TIMEOUT_S 60
#define PUSH_CONNECT_TIMEOUT_S 15

struct sink {
	struct buf *b;
	size_t cap;
	int overflow;
};

static size_t
push_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct sink *s = arg;
	size_t n = size * nmemb, ncap;
	uint8_t *p;

	if (n == 0)
		return 0;
	if (s->b->len + n > ADAPTER_MAX_RECEIPT) {
		s->overflow = 1;
		return 0;
	}
	if (s->b->len + n + 1 > s->cap) {
		ncap = s->cap == 0 ? 4096 : s->cap;
		while (ncap < s->b->len + n + 1)
			ncap *= 2;
		if ((p = realloc(s->b->data, ncap)) == NULL)
			return 0;
		s->b->data = p;
		s->cap = ncap;
	}
	memcpy(s->b->data + s->b->len, ptr, n);
	s->b->len += n;
	s->b->data[s->b->len] = '\0';
	return n;
}

/* Map a transfer failure to what the caller should do about it. */
static int
push_curl_error(CURLcode cc, const char *errbuf, const char *url, int timeout,
    struct adapter_result *res, struct why *why)
{
	const char *text = *errbuf != '\0' ? errbuf : curl_easy_strerror(cc);
	int code;

	switch (cc) {
	case CURLE_OPERATION_TIMEDOUT:
		snprintf(res->detail, sizeof(res->detail), "timed out after %d s", timeout);
		return why_set(why, HEGN_ERR_IO, "push: %s: no answer within %d s", url, timeout);
	case CURLE_PEER_FAILED_VERIFICATION:
		/* The endpoint is not who the configuration says: never retry blindly. */
		code = HEGN_ERR_CERT;
		break;
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
		code = HEGN_ERR_CONFIG;
		break;
	default:
		code = HEGN_ERR_IO;
		break;
	}
	snprintf(res->detail, sizeof(res->detail), "%s", curl_easy_strerror(cc));
	return why_set(why, code, "push: %s: %s", url, text);
}

static int
content_type_is(const char *ct, const char *want)
{
	size_t n = strlen(want);

	if (ct == NULL || strncasecmp(ct, want, n) != 0)
		return 0;
	return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ';
}

static int
push_deliver(const struct adapter_msg *msg, const struct adapter_target *t,
    struct adapter_result *res, struct why *why)
{
	CURL *curl = NULL;
	struct curl_slist *hdrs = NULL, *h;
	struct sink sink;
	struct buf body = { NULL, 0 };
	char errbuf[CURL_ERROR_SIZE], line[160];
	const char *stype, *ct = NULL;
	long status = 0;
	int timeout, r;
	CURLcode cc;

	adapter_result_init(res);
	memset(&sink, 0, sizeof(sink));
	sink.b = &body;
	errbuf[0] = '\0';
	if ((r = adapter_check_msg(msg, 1, why)) != 0)
		goto out;
	stype = adapter_smime_type(msg->sealed, msg->sealed_len);
	if (t == NULL || t->url == NULL || strncasecmp(t->url, "https://", 8) != 0) {
		r = why_set(why, HEGN_ERR_CONFIG, "push: endpoint missing or not an https:// URL");
		goto out;
	}
	if ((t->cert == NULL || t->key == NULL) && (t->cert_pem == NULL || t->key_pem == NULL)) {
		r = why_set(why, HEGN_ERR_CONFIG,
		    "push: %s: a client certificate and key are required (mutual TLS)", t->url);
		goto out;
	}
	timeout = t->timeout_s > 0 ? t->timeout_s : PUSH_TIMEOUT_S;
	if ((curl = curl_easy_init()) == NULL) {
		r = why_set(why, HEGN_ERR_NOMEM, "push: cannot start a transfer");
		goto out;
	}
	snprintf(line, sizeof(line), "Content-Type: application/pkcs7-mime; smime-type=%s", stype);
	if ((h = curl_slist_append(hdrs, line)) == NULL)
		goto nomem;
	hdrs = h;
	if ((h = curl_slist_append(hdrs, "Accept: application/pkcs7-mime")) == NULL)
		goto nomem;
	hdrs = h;
	snprintf(line, sizeof(line), "X-Hegn-Message-Id: %s", msg->id);
	if ((h = curl_slist_append(hdrs, line)) == NULL)
		goto nomem;
	hdrs = h;
	snprintf(line, sizeof(line), "X-Hegn-Kind: %s", msg->kind);
	if ((h = curl_slist_append(hdrs, line)) == NULL)
		goto nomem;
	hdrs = h;
	/* No 100-continue round trip: the body is small and the peer known. */
	if ((h = curl_slist_append(hdrs, "Expect:")) == NULL)
		goto nomem;
	hdrs = h;

	curl_easy_setopt(curl, CURLOPT_URL, t->url);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
	if (t->ca != NULL)
		curl_easy_setopt(curl, CURLOPT_CAINFO, t->ca);
	adapter_curl_client_cert(curl, t);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, (long)timeout);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT,
	    (long)(timeout < PUSH_CONNECT_TIMEOUT_S ? timeout : PUSH_CONNECT_TIMEOUT_S));
	curl_easy_setopt(curl, CURLOPT_POST, 1L);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, (const char *)msg->sealed);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)msg->sealed_len);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, push_body);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "hegn/" PACKAGE_VERSION);

	cc = curl_easy_perform(curl);
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	if (cc == CURLE_WRITE_ERROR && sink.overflow && status >= 200 && status < 300) {
		/* Delivered, but what came back is too big to be a receipt. */
		snprintf(res->detail, sizeof(res->detail), "HTTP %ld, answer over %u bytes ignored",
		    status, ADAPTER_MAX_RECEIPT);
		res->delivered = 1;
		r = 0;
		goto out;
	}
	if (cc != CURLE_OK) {
		r = push_curl_error(cc, errbuf, t->url, timeout, res, why);
		goto out;
	}
	snprintf(res->detail, sizeof(res->detail), "HTTP %ld", status);
	if (status < 200 || status > 299) {
		/*
		 * 5xx, 408, 425 and 429 are the endpoint's passing trouble; any
		 * other answer is a refusal of this message that resending the
		 * same bytes will not change.
		 */
		if (status >= 500 || status == 408 || status == 425 || status == 429 ||
		    status < 200)
			r = why_set(why, HEGN_ERR_IO, "push: %s answered HTTP %ld", t->url, status);
		else
			r = why_set(why, HEGN_ERR_UNPROCESSABLE,
			    "push: %s refused message %s with HTTP %ld", t->url, msg->id, status);
		goto out;
	}
	res->delivered = 1;
	curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &ct);
	if (body.len > 0 && content_type_is(ct, "application/pkcs7-mime")) {
		res->receipt = body;
		body.data = NULL;
		body.len = 0;
		snprintf(res->detail, sizeof(res->detail), "HTTP %ld with receipt", status);
	}
	r = 0;
	goto out;
nomem:
	r = why_set(why, HEGN_ERR_NOMEM, "push: out of memory");
out:
	buf_free(&body, 0);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(curl);
	return r;
}

const struct adapter adapter_push = {
	.name = "push",
	.electronic = 1,
	.deliver = push_deliver,
	.receipts = NULL,
};
