/*
 * smime-mail: the sealed message as an S/MIME e-mail (RFC 8551: the CMS
 * object base64-encoded as application/pkcs7-mime), sent over SMTP with
 * STARTTLS (or smtps) through libcurl.  The mail's headers carry the message
 * id and kind only: a subject line is seen by every relay on the way.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "adapter.h"
#include "err.h"
#include "util.h"
#include "xmalloc.h"

#define SMIME_TIMEOUT_S 120
#define SMIME_CONNECT_TIMEOUT_S 15

struct source {
	const char *data;
	size_t len, off;
};

static size_t
smime_read(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct source *s = arg;
	size_t n = size * nmemb;

	if (n > s->len - s->off)
		n = s->len - s->off;
	memcpy(ptr, s->data + s->off, n);
	s->off += n;
	return n;
}

/*
 * Keep the server reply that tells the story, printable ASCII only, for the
 * detail: the first refusal, else the last reply before the closing 221.
 */
static size_t
smime_reply(char *ptr, size_t size, size_t nmemb, void *arg)
{
	char *last = arg;
	size_t n = size * nmemb, i, j = 0;

	if (n < 3 || ptr[0] < '2' || ptr[0] > '5' || strncmp(ptr, "221", 3) == 0 ||
	    last[0] == '4' || last[0] == '5')
		return n;
	for (i = 0; i < n && j < 127; i++) {
		if (ptr[i] == '\r' || ptr[i] == '\n')
			break;
		last[j++] = (ptr[i] >= 0x20 && ptr[i] < 0x7f) ? ptr[i] : '?';
	}
	last[j] = '\0';
	return n;
}

/* A plain addr-spec: dot-atom local part, a domain of letters, digits, '-', '.'. */
static int
valid_addr(const char *a)
{
	const char *at, *p;

	if (a == NULL || strlen(a) > 254 || (at = strchr(a, '@')) == NULL || at == a ||
	    at[1] == '\0' || strchr(at + 1, '@') != NULL)
		return 0;
	for (p = a; p < at; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr(".!#$%&'*+-/=?^_`{|}~", *p) != NULL))
			return 0;
	}
	if (*a == '.' || at[-1] == '.')
		return 0;
	for (p = at + 1; *p != '\0'; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.'))
			return 0;
	}
	return at[1] != '.' && p[-1] != '.';
}

/* RFC 5322 date in UTC, without the locale's day and month names. */
static void
mail_date(time_t t, char out[40])
{
	static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul",
		"Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm tm;

	gmtime_r(&t, &tm);
	snprintf(out, 40, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday],
	    tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/*
 * The whole mail, CRLF line ends, the DER in base64 lines of 76 characters.
 * Returns a new string and its length.
 */
static char *
smime_build(const struct adapter_msg *msg, const struct adapter_target *t,
    const char *stype, size_t *lenp)
{
	char date[40], uuid[37], *head = NULL, *mail = NULL, *p;
	size_t hlen, lines, blen, off, n;

	mail_date(time(NULL), date);
	util_uuid(uuid);
	head = xasprintf(
	    "From: <%s>\r\n"
	    "To: <%s>\r\n"
	    "Subject: hegn message %s (%s)\r\n"
	    "Date: %s\r\n"
	    "Message-ID: <hegn-%s@%s>\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: application/pkcs7-mime; smime-type=%s; name=smime.p7m\r\n"
	    "Content-Transfer-Encoding: base64\r\n"
	    "Content-Disposition: attachment; filename=smime.p7m\r\n"
	    "X-Hegn-Message-Id: %s\r\n"
	    "X-Hegn-Kind: %s\r\n"
	    "\r\n",
	    t->mail_from, t->mail_to, msg->id, msg->kind, date, uuid,
	    strchr(t->mail_from, '@') + 1, stype, msg->id, msg->kind);
	hlen = strlen(head);
	lines = (msg->sealed_len + 56) / 57;
	blen = lines * (76 + 2);
	mail = xmalloc(hlen + blen + 1);
	memcpy(mail, head, hlen);
	p = mail + hlen;
	for (off = 0; off < msg->sealed_len; off += n) {
		n = msg->sealed_len - off < 57 ? msg->sealed_len - off : 57;
		p += EVP_EncodeBlock((unsigned char *)p, msg->sealed + off, (int)n);
		*p++ = '\r';
		*p++ = '\n';
	}
	*p = '\0';
	*lenp = (size_t)(p - mail);
	free(head);
	return mail;
}

static int
smime_deliver(const struct adapter_msg *msg, const struct adapter_target *t,
    struct adapter_result *res, struct why *why)
{
	CURL *curl = NULL;
	struct curl_slist *rcpt = NULL;
	struct source src;
	char errbuf[CURL_ERROR_SIZE], reply[128], from[260], to[260];
	const char *stype, *text;
	char *mail = NULL;
	size_t len = 0;
	long code = 0;
	int timeout, r;
	CURLcode cc;

	adapter_result_init(res);
	errbuf[0] = '\0';
	reply[0] = '\0';
	if ((r = adapter_check_msg(msg, 1, why)) != 0)
		goto out;
	stype = adapter_smime_type(msg->sealed, msg->sealed_len);
	if (t == NULL || t->smtp_url == NULL ||
	    (strncasecmp(t->smtp_url, "smtp://", 7) != 0 &&
	    strncasecmp(t->smtp_url, "smtps://", 8) != 0)) {
		r = why_set(why, HEGN_ERR_CONFIG,
		    "smime-mail: mail server missing or not an smtp:// or smtps:// URL");
		goto out;
	}
	if (!valid_addr(t->mail_to) || !valid_addr(t->mail_from)) {
		r = why_set(why, HEGN_ERR_CONFIG,
		    "smime-mail: the %s address is missing or not a plain user@domain",
		    valid_addr(t->mail_to) ? "sender" : "recipient");
		goto out;
	}
	timeout = t->timeout_s > 0 ? t->timeout_s : SMIME_TIMEOUT_S;
	mail = smime_build(msg, t, stype, &len);
	src.data = mail;
	src.len = len;
	src.off = 0;
	snprintf(from, sizeof(from), "<%s>", t->mail_from);
	snprintf(to, sizeof(to), "<%s>", t->mail_to);
	if ((curl = curl_easy_init()) == NULL || (rcpt = curl_slist_append(NULL, to)) == NULL) {
		r = why_set(why, HEGN_ERR_NOMEM, "smime-mail: cannot start a transfer");
		goto out;
	}
	curl_easy_setopt(curl, CURLOPT_URL, t->smtp_url);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_USE_SSL,
	    (long)(t->smtp_insecure ? CURLUSESSL_TRY : CURLUSESSL_ALL));
	curl_easy_setopt(curl, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
	if (t->ca != NULL)
		curl_easy_setopt(curl, CURLOPT_CAINFO, t->ca);
	if ((t->cert != NULL && t->key != NULL) || (t->cert_pem != NULL && t->key_pem != NULL)) {
		adapter_curl_client_cert(curl, t);
	}
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, (long)timeout);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT,
	    (long)(timeout < SMIME_CONNECT_TIMEOUT_S ? timeout : SMIME_CONNECT_TIMEOUT_S));
	curl_easy_setopt(curl, CURLOPT_MAIL_FROM, from);
	curl_easy_setopt(curl, CURLOPT_MAIL_RCPT, rcpt);
	curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(curl, CURLOPT_READFUNCTION, smime_read);
	curl_easy_setopt(curl, CURLOPT_READDATA, &src);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, smime_reply);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, reply);

	cc = curl_easy_perform(curl);
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
	if (cc == CURLE_OK) {
		res->delivered = 1;
		if (reply[0] != '\0')
			snprintf(res->detail, sizeof(res->detail), "SMTP %s", reply);
		else
			snprintf(res->detail, sizeof(res->detail), "SMTP %ld", code);
		r = 0;
		goto out;
	}
	text = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(cc);
	if (reply[0] != '\0')
		snprintf(res->detail, sizeof(res->detail), "SMTP %s", reply);
	else
		snprintf(res->detail, sizeof(res->detail), "%s", curl_easy_strerror(cc));
	switch (cc) {
	case CURLE_USE_SSL_FAILED:
		r = why_set(why, HEGN_ERR_CONFIG,
		    "smime-mail: %s does not offer STARTTLS; not sending in clear", t->smtp_url);
		break;
	case CURLE_PEER_FAILED_VERIFICATION:
		r = why_set(why, HEGN_ERR_CERT, "smime-mail: %s: %s", t->smtp_url, text);
		break;
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_URL_MALFORMAT:
		r = why_set(why, HEGN_ERR_CONFIG, "smime-mail: %s: %s", t->smtp_url, text);
		break;
	case CURLE_OPERATION_TIMEDOUT:
		snprintf(res->detail, sizeof(res->detail), "timed out after %d s", timeout);
		r = why_set(why, HEGN_ERR_IO, "smime-mail: %s: no answer within %d s",
		    t->smtp_url, timeout);
		break;
	default:
		/* A 5xx reply is the server's final word on this mail; 4xx and the rest pass. */
		if (code >= 500 && code <= 599)
			r = why_set(why, HEGN_ERR_UNPROCESSABLE,
			    "smime-mail: %s refused message %s (SMTP %ld)", t->smtp_url, msg->id, code);
		else
			r = why_set(why, HEGN_ERR_IO, "smime-mail: %s: %s", t->smtp_url, text);
		break;
	}
out:
	free(mail);
	curl_slist_free_all(rcpt);
	curl_easy_cleanup(curl);
	return r;
}

const struct adapter adapter_smime = {
	.name = "smime-mail",
	.electronic = 1,
	.deliver = smime_deliver,
	.receipts = NULL,
};
