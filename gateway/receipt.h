/*
 * receipt: the recipient's acknowledgement of one message, before signing:
 * {"message_id": "...", "sha256": "<hex of the sealed DER as fetched>",
 *  "status": "accepted" | "rejected", "reason": "..."}.
 */
#ifndef HEGN_RECEIPT_H
#define HEGN_RECEIPT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "util.h"

struct receipt {
	char message_id[65];
	char sha256[65];     /* 64 lower-case hex digits */
	int accepted;        /* 1 accepted, 0 rejected */
	char reason[513];    /* required when rejected, may be empty when accepted */
};

/*
 * Parse and validate a receipt JSON strictly (unknown members refused).
 * Returns 0, or HEGN_ERR_INVALID with why naming the field.
 */
int receipt_parse(const uint8_t *json, size_t len, struct receipt *out, struct why *why);

/* Serialise r as compact JSON into out; 0 or HEGN_ERR_INVALID. */
int receipt_build(const struct receipt *r, struct buf *out, struct why *why);

#endif
