/*
 * conf: hegn.conf, an INI file (see hegn.conf(5)).
 *
 * Every keyword lives in one table with its type, range and default;
 * conf_load() reports the first problem with its line number.  Relative
 * paths are taken relative to the configuration file's directory.
 *
 * struct conf is a plain record: it is read by every layer and written
 * only by conf_load(), so it has no accessors.
 */
#ifndef HEGN_CONF_H
#define HEGN_CONF_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "message.h"

enum party_role {
	ROLE_VISITATION = 0,  /* the purchaser: owns the case */
	ROLE_PROVIDER,        /* a home-care provider, private or municipal */
	ROLE_HOSPITAL,        /* sends admission, leave, discharge and death notices */
	ROLE_AUDITOR,         /* reads the audit log and reports */
	ROLE_COUNT
};

/* "visitation", ...; NULL when out of range. */
const char *conf_role_name(enum party_role role);
int conf_role_from_name(const char *name, enum party_role *role);

struct conf_party {
	char *name;
	int line;                 /* where its section starts, for messages */
	enum party_role role;
	char *cert;               /* PEM: one or more registered certificates (rollover) */
	char *key;                /* PEM private key when hegn holds it (a hosted party), else NULL */
	char *organisation;       /* its name, for cover sheets; may be NULL */
	char *cvr, *sor, *gln;    /* identifiers; may be NULL */
	char *delivery;           /* delivery channels in fallback order: "push,smime-mail,fax" */
	char *push_url, *mail, *folder, *receipt_folder, *fax;
	char *format;             /* "hegn" or "medcom" */
	int cipher;               /* enum envelope_cipher */
	int padding;              /* enum envelope_padding for signatures made for it */
	char *services;           /* approved service categories, comma-separated; may be NULL */
};

struct conf {
	char *path;
	/* [server] */
	char *listen;
	int port;
	char *tls_cert, *tls_key;
	int64_t max_body;
	int64_t max_connections;
	char *pid_file;
	char *user;               /* privilege separation: the network process's account */
	int seccomp;              /* ... and its system-call filter */
	int log_level;            /* enum log_level */
	/* [store] */
	char *store;
	/* [pki] */
	char *anchors, *chain, *crl;
	int crl_check;
	/* [gateway] */
	char *gateway_cert, *gateway_key, *citizen_key;
	/* [policy] */
	char *policy_dir;
	/* [audit] */
	char *audit_key, *audit_pubkey, *audit_origin;
	int checkpoint_interval;
	int retention_days;
	/* [delivery] */
	char *delivery_ca, *mail_from, *smtp_url, *fax_command, *post_command;
	int smtp_insecure;
	int resend_after, max_resends, retry_base, retry_max;
	int deadline[MSG_KIND_COUNT + 1];   /* seconds per kind; [MSG_KIND_COUNT] is the default */
	/* [limits] */
	int64_t max_attachments;
	int64_t max_attachment_bytes;
	/* [limits], hardening (issue 8) */
	int requests_per_minute;  /* per party; 0: no limit */
	int request_burst;        /* 0: requests_per_minute */
	int connections_per_ip;   /* 0: no limit */
	int max_header_bytes;     /* request line and headers, per connection */
	int connection_timeout;   /* seconds a connection may idle */
	/* [limits], performance (issue 9) */
	int crypto_workers;       /* concurrent private-key operations; 0: online CPUs */
	int64_t body_memory;      /* request bodies over 64 KiB held at once; 0: no limit */
	/* [party NAME] sections, in file order */
	struct conf_party *parties;
	size_t nparties;
};

/*
 * Parse path.  Returns 0 and *out, or HEGN_ERR_CONFIG with why reading
 * "FILE:LINE: what is wrong".
 */
int conf_load(const char *path, struct conf **out, struct why *why);

void conf_free(struct conf *c);

/* The party called name, or NULL. */
const struct conf_party *conf_party(const struct conf *c, const char *name);

/*
 * Check that the files the configuration names exist with safe permissions:
 * key files not readable or writable by group or others; certificate,
 * policy and configuration files not writable by group or others.
 * Returns 0 or HEGN_ERR_CONFIG naming the file.
 */
int conf_check_file(const char *path, int is_secret, struct why *why);

/* Write the keyword reference (for hegn.conf(5) and `hegn config keywords`). */
void conf_print_keywords(void *stream);

#endif
