/*
 * render: a message as a PDF for paper channels (fax, post) and for the
 * agent: a cover sheet, then the content by data class.  See
 * docs/delivery.md for the layout.
 */
#ifndef HEGN_RENDER_H
#define HEGN_RENDER_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "err.h"
#include "util.h"

struct render_doc {
	const char *id, *kind;          /* message id and kind */
	const char *sender, *recipient; /* party names */
	const char *sender_name;        /* organisation names; may be NULL */
	const char *recipient_name;
	const uint8_t *content;         /* the message JSON (docs/messages.md); other text is printed as is */
	size_t content_len;
	time_t when;                    /* the date on the cover sheet; 0: now */
};

/*
 * Render doc as a PDF into *out (the caller wipes it: it holds personal
 * data).  Returns 0, HEGN_ERR_INVALID when id, kind or content is missing,
 * or HEGN_ERR_INTERNAL when the PDF library fails.
 */
int render_pdf(const struct render_doc *doc, struct buf *out, struct why *why);

/*
 * UTF-8 to Windows-1252 (the encoding of the PDF base fonts' WinAnsi
 * encoding): characters it lacks and invalid bytes become '?', control
 * characters other than LF are dropped, tab becomes a space.  Returns a new
 * string.
 */
char *render_winansi(const char *utf8, size_t len);

#endif
