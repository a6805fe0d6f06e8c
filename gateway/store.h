/*
 * store: durable state behind one interface.
 *
 * The front end (store.c) looks a back end up by the scheme of the location
 * ("sqlite:/var/lib/hegn/hegn.db", or a bare path meaning sqlite) in a
 * NULL-terminated registry of const tables of functions; store_sqlite.c is
 * the first.  Every operation runs inside a transaction: a write transaction
 * is durable once store_commit() returns 0, and only then may anything be
 * acknowledged to a sender.
 */
#ifndef HEGN_STORE_H
#define HEGN_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "util.h"

/* Delivery states, as in the status JSON. */
#define STORE_STATE_SUBMITTED    "submitted"
#define STORE_STATE_DELIVERED    "delivered"
#define STORE_STATE_ACKNOWLEDGED "acknowledged"
#define STORE_STATE_REJECTED     "rejected"
#define STORE_STATE_FALLBACK     "fallback"
#define STORE_STATE_FAILED       "failed"

/* One submitted message, as the sender signed it. */
struct store_message {
	char id[65];
	char sender[65];
	char kind[33];
	char content_sha256[65];  /* hex SHA-256 of the submitted content, for idempotency */
	char citizen_ref[65];     /* keyed hash of the CPR (hex); never the CPR itself */
	int64_t created_ms;
	int64_t deadline_ms;      /* 0: none */
	struct buf signed_der;    /* the sender's CMS SignedData */
};

/*
 * A sealed copy that waits for its transaction in a spill file
 * (store_spill_open) instead of memory: len bytes at off of fd.
 */
struct store_spilled {
	int fd;
	uint64_t off;
	uint64_t len;             /* 0: nothing spilled */
};

/* One copy of a message for one recipient. */
struct store_delivery {
	char message_id[65];
	char recipient[65];
	char state[17];
	char channel[17];         /* "pull", ... */
	int64_t seq;              /* monotonically increasing; the inbox cursor */
	int64_t updated_ms;
	char sealed_sha256[65];   /* hex SHA-256 of sealed */
	struct buf sealed;        /* CMS (Auth)EnvelopedData for the recipient */
	/*
	 * delivery_insert only: with spilled.len > 0 (and sealed empty) the
	 * copy is read back from the spill file in pieces, and refused unless
	 * its SHA-256 is sealed_sha256.
	 */
	struct store_spilled spilled;
};

/* One line of a message's delivery log. */
struct store_event {
	int64_t id;
	int64_t at_ms;
	char message_id[65];
	char recipient[65];       /* "" when the event concerns the whole message */
	char event[25];           /* submitted, sealed, fetched, acknowledged, rejected, ... */
	char actor[65];           /* the party that caused it */
	char detail[257];         /* no personal data */
};

/* The recipient's signed receipt. */
struct store_receipt {
	char message_id[65];
	char recipient[65];
	char status[17];          /* accepted | rejected */
	char reason[513];
	int64_t received_ms;
	struct buf signed_der;
};

/* One line of an inbox listing. */
struct store_inbox_item {
	char id[65];
	char kind[33];
	char from[65];
	int64_t seq;
	int64_t created_ms;
};

/*
 * An assignment: a provider serves a citizen with some service categories
 * from one date to another.  Ending one sets to_date; rows are never
 * deleted, so an audit can ask who was entitled on a past date.
 */
struct store_assignment {
	int64_t id;               /* assigned by the store on insert */
	char citizen_ref[65];     /* keyed hash of the CPR */
	char provider[65];
	char services[257];       /* comma-separated service categories */
	char from_date[11];       /* YYYY-MM-DD, inclusive */
	char to_date[11];         /* YYYY-MM-DD inclusive, or "" while open-ended */
	char source[97];          /* the message id, or "manual:<user or party>" */
	char end_reason[129];     /* why it ended; "" while not ended */
	int64_t created_ms;
	int64_t updated_ms;
};

/* A staff user within a party. */
struct store_user {
	char username[65];
	char party[65];
	char role[17];            /* caseworker, dispatcher, auditor, administrator */
	char pw_hash[129];        /* libsodium crypto_pwhash_str (Argon2id) */
	int disabled;
	int failed_logins;        /* consecutive failures since the last success */
	int64_t locked_until_ms;  /* 0: not locked */
	int64_t created_ms;
	int64_t updated_ms;
};

/*
 * One audit log entry: a leaf of the Merkle tree.  entry holds the
 * canonical JSON the leaf hash is computed over; the other fields repeat
 * parts of it for queries and are checked against it by `hegn audit verify`.
 */
struct store_audit {
	int64_t seq;              /* leaf index from 0, assigned by the store */
	int64_t at_ms;
	char actor[65];           /* party */
	char action[33];
	char message_id[65];      /* "" when none */
	char citizen_ref[65];     /* "" when none */
	uint8_t leaf_hash[32];
	struct buf entry;
};

/* A signed tree head (C2SP checkpoint) over the first size entries. */
struct store_checkpoint {
	int64_t size;
	int64_t at_ms;
	uint8_t root[32];
	char note[1024];          /* the signed note text */
};

/*
 * The delivery schedule of one copy (migration 3): which channel of the
 * recipient's fallback chain it is on, how often it was tried and resent,
 * and when the scheduler looks at it next.
 */
struct store_schedule {
	char message_id[65];
	char recipient[65];
	char state[17];
	char channel[17];
	int channel_index;        /* position in the recipient's chain */
	int attempts;             /* tries on the current channel */
	int resends;              /* MedCom resends so far */
	int duplicates;           /* fetches or receipts after the first */
	int64_t next_ms;          /* when the scheduler looks at it next; 0: never */
	int64_t deadline_ms;      /* fall back when not acknowledged by then; 0: none */
	int64_t created_ms;       /* when the message was submitted */
	int64_t delivered_ms;     /* first handed over (fetched, pushed, mailed); 0: not yet */
	int64_t acked_ms;         /* receipt taken; 0: none */
	char fallback_reason[257];
	char last_error[257];     /* of the last failed try; no personal data */
};

/* One copy's outcome for the reports, with its message's kind and sender. */
struct store_outcome {
	char message_id[65];
	char recipient[65];
	char sender[65];
	char kind[33];
	char state[17];
	char channel[17];
	int resends;
	int duplicates;
	int64_t created_ms, delivered_ms, acked_ms;
	char fallback_reason[257];
};

/* Communication that went outside hegn (fax, phone, post), registered by staff. */
struct store_external {
	int64_t id;               /* assigned on insert */
	int64_t at_ms;
	char party[65];           /* the other party */
	char kind[33];            /* a message kind, or "other" */
	char channel[17];         /* fax, phone, post */
	char direction[9];        /* "outbound" (from the municipality) or "inbound" */
	char reason[257];
	char registered_by[65];
};

/*
 * A MedCom message received (migration 4): one row per envelope (Bundle.id)
 * per sender, so that a duplicate or a resend gets the first
 * Acknowledgement again, byte for byte (docs/medcom.md).
 */
struct store_medcom {
	char sender[65];          /* the sending party */
	char bundle_id[65];       /* Bundle.id: the envelope, new on every send */
	char header_id[65];       /* MessageHeader.id: the letter */
	char message_id[65];      /* hegn's id of the message the letter became */
	int64_t received_ms;
	struct buf ack;           /* the first Acknowledgement, as sent */
};

/* What store_medcom_get looks a row up by (besides the sender). */
enum store_medcom_key {
	STORE_MEDCOM_BY_BUNDLE = 0,   /* the sender's Bundle.id */
	STORE_MEDCOM_BY_HEADER,       /* the sender's MessageHeader.id: the first row */
	STORE_MEDCOM_BY_MESSAGE       /* hegn's message id (sender may be NULL): the first row */
};

typedef int (*store_outcome_fn)(const struct store_outcome *o, void *arg);
typedef int (*store_external_fn)(const struct store_external *e, void *arg);

/* A back end: every function returns 0 or a HEGN_ERR_* code with why. */
struct store_backend {
	const char *name;     /* the location scheme, e.g. "sqlite" */
	int (*open)(const char *location, int flags, void **impl, struct why *why);
	void (*close)(void *impl);
	/* The schema version the opened store is at. */
	int (*schema_version)(void *impl);
	/* Start a transaction; *tx is back-end state until commit or rollback. */
	int (*begin)(void *impl, int write, void **tx, struct why *why);
	int (*commit)(void *tx, struct why *why);
	void (*rollback)(void *tx);
	/* See store_sync_snapshots; NULL when commits are durable once visible. */
	void (*sync_snapshots)(void *impl);

	int (*message_insert)(void *tx, const struct store_message *m, struct why *why);
	/* HEGN_ERR_NOT_FOUND when absent; with_der == 0 skips loading signed_der. */
	int (*message_get)(void *tx, const char *id, int with_der, struct store_message *out,
	    struct why *why);
	/*
	 * A file on the store's own file system for what a transaction will
	 * write but should not hold in memory until then: unnamed, mode 0600,
	 * gone when closed (or when the process dies).
	 */
	int (*spill_open)(void *impl, int *fd, struct why *why);
	/* The store assigns d->seq (the value passed is ignored). */
	int (*delivery_insert)(void *tx, const struct store_delivery *d, struct why *why);
	int (*delivery_get)(void *tx, const char *id, const char *recipient, int with_sealed,
	    struct store_delivery *out, struct why *why);
	/*
	 * Up to n bytes of the sealed copy from offset (*got of them; *total,
	 * its whole length), if its SHA-256 is still sha.  HEGN_ERR_NOT_FOUND
	 * when the copy is gone or another; offset past the end is
	 * HEGN_ERR_INVALID.  Reads only the pages of those bytes.
	 */
	int (*sealed_read)(void *tx, const char *id, const char *recipient, const char *sha,
	    uint64_t offset, uint8_t *out, size_t n, size_t *got, uint64_t *total,
	    struct why *why);
	/* All deliveries of a message (without sealed blobs), in recipient order. */
	int (*delivery_list)(void *tx, const char *id, struct store_delivery **out, size_t *n,
	    struct why *why);
	int (*delivery_set_state)(void *tx, const char *id, const char *recipient,
	    const char *state, int64_t at_ms, struct why *why);
	/* Undelivered (state submitted) copies for recipient with seq > after, oldest first. */
	int (*inbox)(void *tx, const char *recipient, int64_t after, size_t limit,
	    struct store_inbox_item **out, size_t *n, struct why *why);
	/* The store assigns e->id (the value passed is ignored). */
	int (*event_add)(void *tx, const struct store_event *e, struct why *why);
	/* All events of a message, oldest (lowest id) first. */
	int (*event_list)(void *tx, const char *id, struct store_event **out, size_t *n,
	    struct why *why);
	/* HEGN_ERR_CONFLICT when a receipt for (id, recipient) exists. */
	int (*receipt_insert)(void *tx, const struct store_receipt *r, struct why *why);
	int (*receipt_get)(void *tx, const char *id, const char *recipient,
	    struct store_receipt *out, struct why *why);

	/*
	 * Assignments: insert sets a->id; update replaces the row with a->id
	 * (all but created_ms; HEGN_ERR_NOT_FOUND when absent).
	 */
	int (*assignment_insert)(void *tx, struct store_assignment *a, struct why *why);
	int (*assignment_update)(void *tx, const struct store_assignment *a, struct why *why);
	/* Rows for citizen_ref and/or provider (NULL: any), by id. */
	int (*assignment_list)(void *tx, const char *citizen_ref, const char *provider,
	    struct store_assignment **out, size_t *n, struct why *why);

	/*
	 * Users: HEGN_ERR_CONFLICT on a taken username; update replaces all
	 * but created_ms by username (HEGN_ERR_NOT_FOUND when absent).
	 */
	int (*user_insert)(void *tx, const struct store_user *u, struct why *why);
	int (*user_get)(void *tx, const char *username, struct store_user *out, struct why *why);
	int (*user_update)(void *tx, const struct store_user *u, struct why *why);
	int (*user_list)(void *tx, struct store_user **out, size_t *n, struct why *why);

	/* The audit log: append sets e->seq to the next leaf index. */
	int (*audit_append)(void *tx, struct store_audit *e, struct why *why);
	int (*audit_count)(void *tx, int64_t *n, struct why *why);
	/* Entries with seq >= from, at most limit, in seq order (with entry text). */
	int (*audit_range)(void *tx, int64_t from, size_t limit, struct store_audit **out,
	    size_t *n, struct why *why);
	/* Entries about citizen_ref with from_ms <= at_ms < to_ms (0: open), in seq order. */
	int (*audit_query)(void *tx, const char *citizen_ref, int64_t from_ms, int64_t to_ms,
	    struct store_audit **out, size_t *n, struct why *why);
	int (*checkpoint_insert)(void *tx, const struct store_checkpoint *c, struct why *why);
	/* All checkpoints by size; the latest is the last. */
	int (*checkpoint_list)(void *tx, struct store_checkpoint **out, size_t *n, struct why *why);

	/*
	 * Retention: drop the content (signed_der, sealed) of messages created
	 * before before_ms; *n counts the messages purged, *failed the copies
	 * failed for it.
	 */
	int (*purge_content)(void *tx, int64_t before_ms, int64_t now_ms, size_t limit, int64_t *n,
	    int64_t *failed, int *more, struct why *why);

	/* Scheduling (migration 3).  HEGN_ERR_NOT_FOUND when there is no such copy. */
	int (*schedule_get)(void *tx, const char *id, const char *recipient,
	    struct store_schedule *out, struct why *why);
	/* Write every field of s (state and channel included) for its copy. */
	int (*schedule_update)(void *tx, const struct store_schedule *s, struct why *why);
	/* Copies with 0 < next_ms <= now, soonest first, at most limit. */
	int (*schedule_due)(void *tx, int64_t now_ms, size_t limit, struct store_schedule **out,
	    size_t *n, struct why *why);
	/* Every copy of messages submitted in [from_ms, to_ms) (0: open), in submission order. */
	int (*outcomes)(void *tx, int64_t from_ms, int64_t to_ms, store_outcome_fn fn, void *arg,
	    struct why *why);
	int (*external_insert)(void *tx, struct store_external *e, struct why *why);
	int (*external_list)(void *tx, int64_t from_ms, int64_t to_ms, store_external_fn fn,
	    void *arg, struct why *why);
	/* Copies not yet acknowledged (state submitted or delivered) and the oldest one's submission time. */
	int (*queue_stats)(void *tx, int64_t *depth, int64_t *oldest_ms, struct why *why);
	/* MedCom de-duplication (migration 4). */
	int (*medcom_insert)(void *tx, const struct store_medcom *m, struct why *why);
	int (*medcom_get)(void *tx, enum store_medcom_key key, const char *sender,
	    const char *value, struct store_medcom *out, struct why *why);
};

/* At most this many inbox items per call; a limit of 0 or above means this. */
#define STORE_INBOX_MAX 1000

/*
 * At most this many audit entries per call of store_audit_range (a limit of
 * 0 or above means this) or store_audit_query (which has no cursor: when it
 * returns this many, narrow the time window).
 */
#define STORE_AUDIT_MAX 10000

/* At most this many copies per call of store_schedule_due; a limit of 0 or above means this. */
#define STORE_SCHEDULE_MAX 1000

/* The registered back ends, NULL-terminated. */
extern const struct store_backend *const store_backends[];

struct store;
struct store_tx;

/*
 * Open (creating and migrating as needed) the store at location:
 * "scheme:rest" (scheme: a letter, then letters, digits, '+', '-', '.')
 * picks the back end named scheme and hands it rest; any other location
 * (such as "/var/lib/hegn/hegn.db" or "./a:b.db") is a path for sqlite.  Returns 0,
 * HEGN_ERR_CONFIG (unknown back end, unsafe file), HEGN_ERR_INVALID
 * (empty location) or the back end's error.
 */
int store_open(const char *location, struct store **out, struct why *why);
/*
 * store_open with flags: STORE_NO_MIGRATE refuses (HEGN_ERR_STORE) a store
 * whose schema is not the latest, changing nothing in it, instead of
 * migrating it.  For the hegn command: a newer hegn run beside an older
 * hegnd must not migrate the database under it; only hegnd migrates.
 */
#define STORE_NO_MIGRATE 0x01
int store_open_flags(const char *location, int flags, struct store **out, struct why *why);
/* Close s; accepts NULL.  No transaction of s may be open. */
void store_close(struct store *s);
/*
 * For a process that uses a store beside the one that writes it (the hegn
 * command beside hegnd): from now on every transaction of s, once it has
 * its snapshot, makes all it can see durable, whoever committed it, before
 * it reads anything (docs/store.md, "Readers").  Another process's commit
 * is visible from its COMMIT on, and its sync cannot be waited for from
 * here.  A transaction whose sync fails is refused, as is every later one.
 */
void store_sync_snapshots(struct store *s);

/* The schema version the store is at. */
int store_schema_version(struct store *s);

/*
 * A spill file for sealed copies that wait for their transaction
 * (store_delivery.spilled): on the store's file system, unnamed, mode
 * 0600, gone once closed.  The caller closes *fd.  HEGN_ERR_STORE when
 * none can be made.
 */
int store_spill_open(struct store *s, int *fd, struct why *why);

/*
 * Begin a read (write == 0) or write transaction.  Write transactions are
 * serialised; reads see a consistent snapshot beside them.  A transaction
 * belongs to the thread that began it and must not be nested with another
 * of the same store in that thread.  HEGN_ERR_BUSY when none could be had
 * in time (retryable).
 */
int store_begin(struct store *s, int write, struct store_tx **out, struct why *why);
/* Commit durably and free tx; on failure the transaction is rolled back. */
int store_commit(struct store_tx *tx, struct why *why);
/* Roll back and free tx; accepts NULL. */
void store_rollback(struct store_tx *tx);
/*
 * End a read whose result becomes an answer, and set *tx to NULL.  With
 * rc == 0 it ends as store_commit does, which reports a failed sync of a
 * commit the read may have seen (docs/store.md, "Readers"); store_rollback
 * waits for that sync too but cannot report it.  Otherwise *tx is rolled
 * back and rc returned: a read that failed has nothing to answer.
 */
int store_end_read(struct store_tx **tx, int rc, struct why *why);

/*
 * The record functions.  Inserts return HEGN_ERR_CONFLICT when the key exists,
 * HEGN_ERR_NOT_FOUND when a referenced record (the message of a delivery,
 * the delivery of a receipt) does not, HEGN_ERR_INVALID for a field that is
 * empty where a key is needed or not NUL-terminated inside its array.  Gets
 * reset *out first and return HEGN_ERR_NOT_FOUND when absent; a stored value
 * too long for its field is HEGN_ERR_STORE, never truncated.  Lists return
 * a malloc'd array, or *out == NULL when *n == 0.  Writes in a read
 * transaction are HEGN_ERR_INTERNAL.
 */
int store_message_insert(struct store_tx *tx, const struct store_message *m, struct why *why);
int store_message_get(struct store_tx *tx, const char *id, int with_der,
    struct store_message *out, struct why *why);
int store_delivery_insert(struct store_tx *tx, const struct store_delivery *d, struct why *why);
int store_delivery_get(struct store_tx *tx, const char *id, const char *recipient,
    int with_sealed, struct store_delivery *out, struct why *why);
int store_sealed_read(struct store_tx *tx, const char *id, const char *recipient,
    const char *sha, uint64_t offset, uint8_t *out, size_t n, size_t *got, uint64_t *total,
    struct why *why);
int store_delivery_list(struct store_tx *tx, const char *id, struct store_delivery **out,
    size_t *n, struct why *why);
int store_delivery_set_state(struct store_tx *tx, const char *id, const char *recipient,
    const char *state, int64_t at_ms, struct why *why);
int store_inbox(struct store_tx *tx, const char *recipient, int64_t after, size_t limit,
    struct store_inbox_item **out, size_t *n, struct why *why);
int store_event_add(struct store_tx *tx, const struct store_event *e, struct why *why);
int store_event_list(struct store_tx *tx, const char *id, struct store_event **out,
    size_t *n, struct why *why);
int store_receipt_insert(struct store_tx *tx, const struct store_receipt *r, struct why *why);
int store_receipt_get(struct store_tx *tx, const char *id, const char *recipient,
    struct store_receipt *out, struct why *why);

int store_assignment_insert(struct store_tx *tx, struct store_assignment *a, struct why *why);
int store_assignment_update(struct store_tx *tx, const struct store_assignment *a,
    struct why *why);
int store_assignment_list(struct store_tx *tx, const char *citizen_ref, const char *provider,
    struct store_assignment **out, size_t *n, struct why *why);
int store_user_insert(struct store_tx *tx, const struct store_user *u, struct why *why);
int store_user_get(struct store_tx *tx, const char *username, struct store_user *out,
    struct why *why);
int store_user_update(struct store_tx *tx, const struct store_user *u, struct why *why);
int store_user_list(struct store_tx *tx, struct store_user **out, size_t *n, struct why *why);
int store_audit_append(struct store_tx *tx, struct store_audit *e, struct why *why);
int store_audit_count(struct store_tx *tx, int64_t *n, struct why *why);
int store_audit_range(struct store_tx *tx, int64_t from, size_t limit,
    struct store_audit **out, size_t *n, struct why *why);
int store_audit_query(struct store_tx *tx, const char *citizen_ref, int64_t from_ms,
    int64_t to_ms, struct store_audit **out, size_t *n, struct why *why);
int store_checkpoint_insert(struct store_tx *tx, const struct store_checkpoint *c,
    struct why *why);
int store_checkpoint_list(struct store_tx *tx, struct store_checkpoint **out, size_t *n,
    struct why *why);
/*
 * Retention: delete the content (signed copy, sealed copies) of messages
 * created before before_ms, in batches of about limit messages (all of one
 * millisecond go together), each from where the last stopped (a cursor the
 * store keeps, so content once purged is never read again).  *n: messages
 * whose signed copy went; *more: 1 when there is more before before_ms.
 * The rows stay, with their digests and states, as evidence.  A copy not
 * yet delivered (state submitted) fails at now_ms, with an event saying
 * why; *failed counts those.  No copy of a purged message stays scheduled.
 */
int store_purge_content(struct store_tx *tx, int64_t before_ms, int64_t now_ms, size_t limit,
    int64_t *n, int64_t *failed, int *more, struct why *why);
/*
 * Scheduling, reports and the metrics (schema version 3).  store_schedule_due
 * returns an array to free(); its limit is capped at STORE_SCHEDULE_MAX.
 * store_outcomes and store_external_list call fn once per row as it is
 * read, in order, and hold no list: a non-zero return from fn stops the
 * walk and is returned as it is.  fn must not call the same function on tx
 * again (HEGN_ERR_INTERNAL) nor write through tx.  Time windows are
 * [from_ms, to_ms) with 0 leaving an end open.  store_external_insert sets
 * e->id; a channel or direction outside the lists is HEGN_ERR_INVALID.
 */
int store_schedule_get(struct store_tx *tx, const char *id, const char *recipient,
    struct store_schedule *out, struct why *why);
int store_schedule_update(struct store_tx *tx, const struct store_schedule *s, struct why *why);
int store_schedule_due(struct store_tx *tx, int64_t now_ms, size_t limit,
    struct store_schedule **out, size_t *n, struct why *why);
int store_outcomes(struct store_tx *tx, int64_t from_ms, int64_t to_ms, store_outcome_fn fn,
    void *arg, struct why *why);
int store_external_insert(struct store_tx *tx, struct store_external *e, struct why *why);
int store_external_list(struct store_tx *tx, int64_t from_ms, int64_t to_ms,
    store_external_fn fn, void *arg, struct why *why);
int store_queue_stats(struct store_tx *tx, int64_t *depth, int64_t *oldest_ms,
    struct why *why);
/* Free an array from store_audit_range/store_audit_query (entry texts included). */
void store_audit_list_free(struct store_audit *a, size_t n);

/* True when state is one of the STORE_STATE_* values. */
int store_state_valid(const char *state);

/*
 * The back end's own handle for tx when tx belongs to back end be, else
 * NULL: for back-end specific diagnostics (store_sqlite.h).
 */
void *store_tx_impl(struct store_tx *tx, const struct store_backend *be);

/* Release the buffers inside records; accept NULL. */
void store_message_clear(struct store_message *m);
void store_delivery_clear(struct store_delivery *d);
void store_receipt_clear(struct store_receipt *r);
/*
 * Free arrays returned by store_delivery_list (clearing each element);
 * accepts NULL.  Inbox and event arrays hold no buffers: free() them.
 */
void store_delivery_list_free(struct store_delivery *d, size_t n);

/*
 * MedCom de-duplication (schema version 4, issue 7).  store_medcom_insert
 * returns HEGN_ERR_CONFLICT when the sender's Bundle.id is known and
 * HEGN_ERR_NOT_FOUND when message_id names no message; store_medcom_get
 * resets *out and returns HEGN_ERR_NOT_FOUND when there is no such row.
 */
int store_medcom_insert(struct store_tx *tx, const struct store_medcom *m, struct why *why);
int store_medcom_get(struct store_tx *tx, enum store_medcom_key key, const char *sender,
    const char *value, struct store_medcom *out, struct why *why);
void store_medcom_clear(struct store_medcom *m);

#endif
