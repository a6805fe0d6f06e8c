/*
 * receipt: the recipient's acknowledgement of one message, as JSON before it
 * is signed.  The parser is as strict as message's: unknown members and
 * duplicate keys are refused, so that what the gateway records is exactly
 * what the recipient signed.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "err.h"
#include "receipt.h"
#include "util.h"

#define REASON_MAX 512

static int
valid_sha256_hex(const char *s)
{
	size_t i;

	if (strlen(s) != 64)
		return 0;
	for (i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

/* Check r's fields; the rules are the same in both directions. */
static int
check_receipt(const char *id, const char *sha256, int accepted, const char *reason,
    size_t reason_len, struct why *why)
{
	if (id == NULL)
		return why_set(why, HEGN_ERR_INVALID, "receipt.message_id: missing");
	if (!util_valid_id(id))
		return why_set(why, HEGN_ERR_INVALID,
		    "receipt.message_id: not 1 to 64 of letters, digits, '.', '_', ':' and '-'");
	if (sha256 == NULL)
		return why_set(why, HEGN_ERR_INVALID, "receipt.sha256: missing");
	if (!valid_sha256_hex(sha256))
		return why_set(why, HEGN_ERR_INVALID,
		    "receipt.sha256: not 64 lower-case hexadecimal digits");
	if (reason != NULL && strlen(reason) != reason_len)
		return why_set(why, HEGN_ERR_INVALID, "receipt.reason: contains a NUL character");
	if (reason_len > REASON_MAX)
		return why_set(why, HEGN_ERR_INVALID, "receipt.reason: longer than %d bytes",
		    REASON_MAX);
	if (!accepted && reason_len == 0)
		return why_set(why, HEGN_ERR_INVALID,
		    "receipt.reason: required when the status is rejected");
	return 0;
}

int
receipt_parse(const uint8_t *json, size_t len, struct receipt *out, struct why *why)
{
	json_error_t err;
	json_t *root = NULL, *v;
	const char *key, *id = NULL, *sha = NULL, *status = NULL, *reason = NULL;
	char *near;
	size_t reason_len = 0;
	int accepted = 0, r = HEGN_ERR_INVALID;

	memset(out, 0, sizeof(*out));
	if (json == NULL) {
		why_set(why, r, "receipt: no input");
		goto out;
	}
	/* A receipt is flat: JSON_DECODE_ANY stays off, nesting is refused below. */
	if ((root = json_loadb((const char *)json, len, JSON_REJECT_DUPLICATES, &err)) == NULL) {
		err.text[sizeof(err.text) - 1] = '\0';
		if ((near = strstr(err.text, " near ")) != NULL)
			*near = '\0';
		why_set(why, r, "receipt: malformed JSON at line %d column %d: %s",
		    err.line, err.column, err.text);
		goto out;
	}
	if (!json_is_object(root)) {
		why_set(why, r, "receipt: not a JSON object");
		goto out;
	}
	json_object_foreach(root, key, v) {
		if (strcmp(key, "message_id") != 0 && strcmp(key, "sha256") != 0 &&
		    strcmp(key, "status") != 0 && strcmp(key, "reason") != 0) {
			why_set(why, r, "receipt: unknown field");
			goto out;
		}
		if (!json_is_string(v)) {
			why_set(why, r, "receipt.%s: not a string", key);
			goto out;
		}
	}
	id = json_string_value(json_object_get(root, "message_id"));
	sha = json_string_value(json_object_get(root, "sha256"));
	status = json_string_value(json_object_get(root, "status"));
	if ((v = json_object_get(root, "reason")) != NULL) {
		reason = json_string_value(v);
		reason_len = json_string_length(v);
	}
	if (status == NULL) {
		why_set(why, r, "receipt.status: missing");
		goto out;
	}
	if (strcmp(status, "accepted") == 0)
		accepted = 1;
	else if (strcmp(status, "rejected") != 0) {
		why_set(why, r, "receipt.status: not 'accepted' or 'rejected'");
		goto out;
	}
	if ((r = check_receipt(id, sha, accepted, reason, reason_len, why)) != 0)
		goto out;
	memcpy(out->message_id, id, strlen(id) + 1);
	memcpy(out->sha256, sha, 65);
	out->accepted = accepted;
	if (reason != NULL)
		memcpy(out->reason, reason, reason_len + 1);
	r = 0;
 out:
	json_decref(root);
	return r;
}

int
receipt_build(const struct receipt *r, struct buf *out, struct why *why)
{
	json_t *root = NULL;
	uint8_t *data = NULL;
	size_t need, idlen, shalen, reason_len;
	int ret = HEGN_ERR_INVALID;

	out->data = NULL;
	out->len = 0;
	idlen = strnlen(r->message_id, sizeof(r->message_id));
	shalen = strnlen(r->sha256, sizeof(r->sha256));
	reason_len = strnlen(r->reason, sizeof(r->reason));
	if (idlen == sizeof(r->message_id) || shalen == sizeof(r->sha256) ||
	    reason_len == sizeof(r->reason)) {
		why_set(why, ret, "receipt: a field is not terminated");
		goto out;
	}
	if ((ret = check_receipt(r->message_id, r->sha256, r->accepted, r->reason,
	    reason_len, why)) != 0)
		goto out;
	ret = HEGN_ERR_INVALID;
	if ((root = json_pack("{s:s, s:s, s:s}", "message_id", r->message_id,
	    "sha256", r->sha256, "status", r->accepted ? "accepted" : "rejected")) == NULL) {
		why_set(why, HEGN_ERR_NOMEM, "receipt: out of memory");
		ret = HEGN_ERR_NOMEM;
		goto out;
	}
	/* json_string() refuses text that is not UTF-8. */
	if (reason_len > 0 &&
	    json_object_set_new(root, "reason", json_string(r->reason)) != 0) {
		why_set(why, ret, "receipt.reason: not UTF-8");
		goto out;
	}
	if ((need = json_dumpb(root, NULL, 0, JSON_COMPACT | JSON_SORT_KEYS)) == 0 ||
	    (data = malloc(need + 1)) == NULL ||
	    json_dumpb(root, (char *)data, need, JSON_COMPACT | JSON_SORT_KEYS) != need) {
		ret = why_set(why, HEGN_ERR_NOMEM, "receipt: cannot serialise");
		goto out;
	}
	data[need] = '\0';
	out->data = data;
	out->len = need;
	data = NULL;
	ret = 0;
 out:
	free(data);
	json_decref(root);
	return ret;
}
