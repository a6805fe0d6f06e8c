/*
 * web: the staff web page under /web/ (visitation caseworkers, provider
 * dispatchers, auditors), server-rendered HTML in Danish and English.
 *
 * Staff log in with a user name and password (gateway/user.c); a session is
 * a random 32-byte id in an HttpOnly, Secure, SameSite=Strict cookie, kept
 * in memory and forgotten after 30 minutes idle or 12 hours after the login
 * (websession.h).  Every form carries the session's CSRF token, checked on
 * every POST.  No TLS client certificate is needed: staff browsers have none.
 */
#ifndef HEGN_WEB_H
#define HEGN_WEB_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "http.h"
#include "relay.h"
#include "websession.h"

/* Serve "/" (a redirect to /web/) and everything under /web. */
void web_handle(struct relay *r, const struct http_request *req, struct http_response *resp);

/* Write s (NULL: nothing) to f escaped for HTML text and quoted attribute values. */
void web_escape(FILE *f, const char *s);

/*
 * The first value of field name in an application/x-www-form-urlencoded
 * body, decoded ('+' is a space, %XX a byte; a malformed escape stays as
 * it is, NUL bytes are dropped), as a new string; NULL when absent.
 */
char *web_form_value(const uint8_t *body, size_t len, const char *name);

/*
 * Walk the fields of a form body: from *pos, the next field's decoded name
 * and value (new strings, freed by the caller).  1 while there is one, 0 at
 * the end.
 */
int web_form_next(const uint8_t *body, size_t len, size_t *pos, char **name, char **value);

#endif
