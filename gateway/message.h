/*
 * message: hegn's JSON message format (docs/messages.md), parsed and
 * validated strictly.
 *
 * {"id": "<optional client id>", "kind": "referral", "to": "hovmand-care",
 *  "citizen": {"cpr": "...", "name": "..."}, "deadline": "<RFC 3339>",
 *  "basic": {...}, "care": {...}, "health": {...}, "attachments": [...]}
 *
 * Content sits in objects named by its data class so that minimisation can
 * drop a whole class.
 */
#ifndef HEGN_MESSAGE_H
#define HEGN_MESSAGE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "err.h"
#include "util.h"

enum message_kind {
	MSG_REFERRAL = 0,
	MSG_CARE_UPDATE,
	MSG_CANCELLATION,
	MSG_ADMISSION_NOTICE,
	MSG_DISCHARGE_NOTICE,
	MSG_LEAVE_NOTICE,
	MSG_DEATH_NOTICE,
	MSG_CHANGE_REQUEST,
	MSG_OBSERVATION,
	MSG_TIME_USAGE,
	MSG_KIND_COUNT
};

enum message_class { CLASS_BASIC = 0, CLASS_CARE, CLASS_HEALTH, CLASS_COUNT };

/* "referral", ...; NULL for an out-of-range kind. */
const char *message_kind_name(enum message_kind kind);
/* 0 and *kind for a known name, HEGN_ERR_INVALID otherwise. */
int message_kind_from_name(const char *name, enum message_kind *kind);
/* "basic", "care", "health". */
const char *message_class_name(enum message_class c);
int message_class_from_name(const char *name, enum message_class *c);

/* Known service categories ("practical_help", ...), NULL-terminated. */
extern const char *const message_service_categories[];

/* Limits applied while parsing (configurable in hegn.conf). */
#define MESSAGE_DEFAULT_MAX_ATTACHMENTS 20
#define MESSAGE_DEFAULT_MAX_ATTACHMENT_BYTES ((size_t)20 * 1024 * 1024)
struct message_limits {
	size_t max_attachments;       /* count */
	size_t max_attachment_bytes;  /* decoded size of one attachment */
};

struct message;

/*
 * Parse and validate a message.  Returns 0 and *out, or HEGN_ERR_INVALID
 * (malformed JSON, unknown kind, missing or bad field: why names the field
 * path like "citizen.cpr" and the reason) or HEGN_ERR_TOO_LARGE (an
 * attachment limit).  limits may be NULL for the defaults; a zero limit
 * means zero.
 */
int message_parse(const uint8_t *json, size_t len, const struct message_limits *limits,
    struct message **out, struct why *why);

void message_free(struct message *m);

/* The client-chosen id, or NULL (valid until the next message_set_id). */
const char *message_id(const struct message *m);
/* Set (replace) the id; NULL removes it.  0, or HEGN_ERR_NOMEM (jansson). */
int message_set_id(struct message *m, const char *id);
/* The sender as recorded by the gateway ("from"), or NULL. */
const char *message_from(const struct message *m);
/*
 * Set "from" (NULL removes it): the gateway records the authenticated sender
 * in what is signed.  0, or HEGN_ERR_NOMEM (jansson).
 */
int message_set_from(struct message *m, const char *from);
enum message_kind message_kind(const struct message *m);
const char *message_to(const struct message *m);
/*
 * The citizen's key: the CPR normalised to ten digits, or, for a citizen
 * known by an X-eCPR only (citizen.ecpr), CPR_ECPR_PREFIX and the X-eCPR.
 * Never empty, so two citizens never share a keyed hash.
 */
const char *message_cpr(const struct message *m);
/* The "deadline" override, or 0 when absent. */
time_t message_deadline(const struct message *m);
/* The classes present in the message, as a bit set of 1 << enum message_class. */
unsigned message_classes(const struct message *m);
/* The validated document (borrowed). */
json_t *message_json(const struct message *m);

/* The classes a kind requires, as a bit set of 1 << enum message_class. */
unsigned message_required_classes(enum message_kind kind);

/*
 * A copy of m without the classes outside keep (bit set of 1 << class):
 * their objects and their attachments are removed.  *removed gets the
 * classes actually dropped.  Returns 0, or HEGN_ERR_UNPROCESSABLE when a
 * class the kind requires would go (why names it).
 */
int message_minimise(const struct message *m, unsigned keep, struct message **out,
    unsigned *removed, struct why *why);

/*
 * Let go of the attachments' data (each "data" becomes ""), for once the
 * signed form is made and no minimised copy will be made from m: a large
 * attachment is then not held a second time through the signing and
 * sealing.  Everything else of m stays.
 */
void message_drop_attachment_data(struct message *m);

/*
 * Mark m as a minimised copy: "minimised": {"original_sha256": the SHA-256
 * of the original's signed content, "removed": the classes dropped,
 * "signed_by": who signs the copy ("sender" or "gateway")}.
 */
int message_set_minimised(struct message *m, const char *original_sha256, unsigned removed,
    const char *signed_by);

/* A string member of a class object ("basic", "start_date"), or NULL. */
const char *message_field(const struct message *m, const char *class_name, const char *name);

/* The "services" list of the basic class as a comma list into out (empty if none). */
void message_services(const struct message *m, char out[257]);

/*
 * The canonical bytes: compact JSON, keys sorted, no trailing newline.  This
 * is what is signed for a hosted sender and what idempotency compares.
 */
int message_canonical(const struct message *m, struct buf *out, struct why *why);

/*
 * The same form of any JSON object or list: the bytes json_dumpb writes with
 * JSON_COMPACT | JSON_SORT_KEYS, made in one pass.  0; HEGN_ERR_UNSUPPORTED
 * for a real number (which message_canonical then leaves to jansson),
 * HEGN_ERR_NOMEM.
 */
int message_canonical_json(json_t *j, struct buf *out, struct why *why);

/*
 * Write an example of kind (valid under message_parse) addressed to the party
 * to, as pretty JSON with keys sorted and a final newline; referral has a
 * health section and an attachment.  0, HEGN_ERR_INVALID (bad kind or party
 * name) or HEGN_ERR_NOMEM.
 */
int message_example(enum message_kind kind, const char *to, struct buf *out);

#endif
