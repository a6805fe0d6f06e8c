/*
 * adapter: the delivery channels.  Each adapters/<name>.c exports one const
 * struct adapter; the core finds them by name in adapters[] (adapter.c).
 * See docs/delivery.md for what each channel sends and what it needs.
 *
 * An adapter hands one message over and says what happened; it keeps no
 * state between calls.  Scheduling, retries, deadlines and fallback belong
 * to the caller, which decides what to do with an error by
 * err_is_retryable(): HEGN_ERR_IO means "try again later", anything else
 * means this channel will not take this message as configured.
 */
#ifndef HEGN_ADAPTER_H
#define HEGN_ADAPTER_H

#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "err.h"
#include "util.h"

/* One message to hand over. */
struct adapter_msg {
	const char *id;              /* message id (util_valid_id) */
	const char *kind;            /* "referral", ... */
	const char *sender;          /* party names */
	const char *recipient;
	const uint8_t *sealed;       /* the sealed CMS (DER) for the recipient */
	size_t sealed_len;
	const uint8_t *content;      /* the minimised JSON content in clear: fax and post only */
	size_t content_len;
	const char *sender_name;     /* organisation names, for the cover sheet; may be NULL */
	const char *recipient_name;
};

/* Where and how to hand it over; each channel reads only its own fields. */
struct adapter_target {
	const char *url;             /* push: https:// endpoint */
	const char *cert, *key;      /* push, smime-mail: our TLS client certificate and key (PEM) */
	/*
	 * The same, already in memory (PEM): used instead of the files when set,
	 * because the network process cannot read the key file once it has
	 * dropped privileges (docs/PRIVSEP.md).
	 */
	const struct buf *cert_pem, *key_pem;
	const char *ca;              /* push, smime-mail: CA file to verify the peer; NULL: system store */
	const char *mail_to;         /* smime-mail: recipient address */
	const char *mail_from;       /* smime-mail: sender address */
	const char *smtp_url;        /* smime-mail: smtp://host:port (STARTTLS) or smtps://host:port */
	int smtp_insecure;           /* smime-mail: allow plain SMTP (tests only) */
	const char *folder;          /* folder: the drop folder */
	const char *receipt_folder;  /* folder: where receipts appear; NULL: <folder>/../receipts */
	const char *command;         /* fax, post: the command the PDF is handed to */
	const char *number;          /* fax: the fax number ({number} in command) */
	int timeout_s;               /* push, smime-mail, fax, post: limit in seconds; 0: default */
};

/* What happened. */
struct adapter_result {
	int delivered;               /* handed over to the channel */
	struct buf receipt;          /* a signed receipt (CMS DER) the channel returned at once (push) */
	char detail[256];            /* "HTTP 202", "SMTP 250", ...: never personal data */
};

/*
 * Called once per receipt a channel collected later (folder).  Return 0 when
 * the receipt was taken (the channel then forgets it), HEGN_ERR_IO to see it
 * again at the next poll, any other error to set it aside as refused.
 */
typedef int (*adapter_receipt_fn)(const uint8_t *der, size_t len, void *arg,
    struct why *why);

struct adapter {
	const char *name;            /* "push", ... as used in configuration */
	int electronic;              /* counts as electronic and secure for eDag2 */
	/*
	 * Hand msg over through target.  Resets *res first; the caller frees it
	 * with adapter_result_free().  Returns 0 (res->delivered tells whether
	 * the message left hegn: pull leaves it waiting in the inbox) or an error
	 * with res->detail and why filled.
	 */
	int (*deliver)(const struct adapter_msg *msg, const struct adapter_target *target,
	    struct adapter_result *res, struct why *why);
	/*
	 * Collect receipts that arrived since the last call and hand each to fn.
	 * NULL when the channel has none of its own (pull and push receipts come
	 * through the API).  Returns 0 or an error about the channel itself.
	 */
	int (*receipts)(const struct adapter_target *target, adapter_receipt_fn fn,
	    void *arg, struct why *why);
};

extern const struct adapter adapter_pull;
extern const struct adapter adapter_push;
extern const struct adapter adapter_smime;
extern const struct adapter adapter_folder;
extern const struct adapter adapter_fax;
extern const struct adapter adapter_post;

/* Every adapter, NULL-terminated. */
extern const struct adapter *const adapters[];

/* The adapter called name, or NULL. */
const struct adapter *adapter_find(const char *name);

/* Free res's receipt and reset it; accepts NULL. */
void adapter_result_free(struct adapter_result *res);

/* Reset res (no free): what every deliver does first. */
void adapter_result_init(struct adapter_result *res);

/*
 * Check what every channel relies on: a valid id, a kind of [a-z_], party
 * names, and the sealed DER when need_sealed.  0 or HEGN_ERR_INVALID.
 */
int adapter_check_msg(const struct adapter_msg *msg, int need_sealed, struct why *why);

/*
 * The S/MIME type of a sealed DER: "enveloped-data" (EnvelopedData) or
 * "authEnveloped-data" (AuthEnvelopedData, RFC 8551); NULL for anything
 * else, which no channel sends: a channel never carries clear content.
 */
const char *adapter_smime_type(const uint8_t *der, size_t len);

/*
 * Our client certificate for a channel's TLS: from memory when the target
 * carries the PEM (the privilege-separated daemon has no key file to read),
 * else from the files.
 */
void adapter_curl_client_cert(CURL *curl, const struct adapter_target *t);

/* Largest receipt a channel accepts (bytes). */
#define ADAPTER_MAX_RECEIPT (1024u * 1024)

#endif
