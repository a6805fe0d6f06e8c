#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

#include "err.h"

struct errdesc {
	int code;
	const char *name;
	int http;
	const char *text;
};

/* The one table: code, wire name, HTTP status, description. */
static const struct errdesc errtab[] = {
	{ HEGN_OK, "ok", 200, "success" },
	{ HEGN_ERR_IO, "io", 503, "input/output error" },
	{ HEGN_ERR_BUSY, "busy", 503, "temporarily unavailable" },
	{ HEGN_ERR_RATE, "rate_limited", 429, "too many requests" },
	{ HEGN_ERR_INVALID, "invalid", 400, "invalid input" },
	{ HEGN_ERR_TOO_LARGE, "too_large", 413, "input too large" },
	{ HEGN_ERR_UNSUPPORTED, "unsupported", 415, "unsupported media type or algorithm" },
	{ HEGN_ERR_SIGNATURE, "bad_signature", 400, "signature does not verify" },
	{ HEGN_ERR_CERT, "bad_certificate", 403, "certificate not acceptable" },
	{ HEGN_ERR_DECRYPT, "decrypt_failed", 400, "cannot decrypt" },
	{ HEGN_ERR_UNAUTH, "unauthenticated", 401, "authentication required" },
	{ HEGN_ERR_DENIED, "denied", 403, "denied by policy" },
	{ HEGN_ERR_NOT_FOUND, "not_found", 404, "not found" },
	{ HEGN_ERR_CONFLICT, "conflict", 409, "conflicts with existing state" },
	{ HEGN_ERR_UNPROCESSABLE, "unprocessable", 422, "refused" },
	{ HEGN_ERR_INTERNAL, "internal", 500, "internal error" },
	{ HEGN_ERR_NOMEM, "no_memory", 500, "out of memory" },
	{ HEGN_ERR_CONFIG, "config", 500, "configuration error" },
	{ HEGN_ERR_CRYPTO, "crypto", 500, "cryptographic library failure" },
	{ HEGN_ERR_STORE, "store", 500, "store failure" },
};

static const struct errdesc *
errdesc(int code)
{
	size_t i;

	for (i = 0; i < sizeof(errtab) / sizeof(errtab[0]); i++)
		if (errtab[i].code == code)
			return &errtab[i];
	return errdesc(HEGN_ERR_INTERNAL);
}

const char *
hegn_strerror(int code)
{
	return errdesc(code)->text;
}

const char *
err_name(int code)
{
	return errdesc(code)->name;
}

int
err_http_status(int code)
{
	return errdesc(code)->http;
}

int
err_is_retryable(int code)
{
	return code == HEGN_ERR_IO || code == HEGN_ERR_BUSY || code == HEGN_ERR_RATE;
}

int
why_set(struct why *w, int code, const char *fmt, ...)
{
	va_list ap;

	if (w == NULL)
		return code;
	w->code = code;
	va_start(ap, fmt);
	vsnprintf(w->text, sizeof(w->text), fmt, ap);
	va_end(ap);
	return code;
}

int
why_prefix(struct why *w, int code, const char *fmt, ...)
{
	char prefix[256], old[sizeof(w->text)];
	va_list ap;

	if (w == NULL)
		return code;
	if (w->code != 0)
		code = w->code;
	w->code = code;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, w->text, sizeof(old));
	old[sizeof(old) - 1] = '\0';
	if (old[0] != '\0')
		snprintf(w->text, sizeof(w->text), "%s: %s", prefix, old);
	else
		snprintf(w->text, sizeof(w->text), "%s", prefix);
	return code;
}

void
why_clear(struct why *w)
{
	if (w == NULL)
		return;
	w->code = 0;
	w->text[0] = '\0';
}

void
why_openssl(struct why *w)
{
	unsigned long e;
	char buf[256];
	size_t len;

	e = ERR_peek_last_error();
	if (w != NULL && e != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		len = strlen(w->text);
		if (len + 3 < sizeof(w->text))
			snprintf(w->text + len, sizeof(w->text) - len, " (%s)",
			    ERR_reason_error_string(e) ? ERR_reason_error_string(e) : buf);
	}
	ERR_clear_error();
}
