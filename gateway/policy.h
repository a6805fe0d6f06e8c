/*
 * policy: the rights model's policy language (docs/policies.md) and its
 * decision engine.
 *
 * Policies are read from policies/ *.policy files, one rule per line:
 *
 *	rule send-referral allow send referral by visitation to provider \
 *	    if approved all-named "the visitation office refers a citizen"
 *
 * Deny by default; a matching deny rule overrides every allow; among
 * rules of the winning effect the first in load order names the
 * decision.  A loaded policy is immutable: any number of threads may
 * decide with it at once, and a reload swaps in a new one while holders
 * of the old keep their reference (policy_ref/policy_free).
 *
 * This module decides; it does not look anything up.  The caller fills
 * a struct policy_ctx with what it knows (roles, the assignment state,
 * approvals) and enforces addressing and routing itself.
 */
#ifndef HEGN_POLICY_H
#define HEGN_POLICY_H

#include <stdio.h>

#include "conf.h"
#include "err.h"
#include "message.h"

enum policy_action {
	POLICY_SEND = 0,  /* a party (or its staff user) submits a message */
	POLICY_FETCH,     /* a party fetches a message addressed to it */
	POLICY_VIEW,      /* a staff user views a message in the web page */
	POLICY_RECEIVE,   /* may the recipient get this data class of the message */
	POLICY_AUDIT,     /* read the audit log and the reports */
	POLICY_ADMIN,     /* manage users, assignments, the gateway */
	POLICY_ACTION_COUNT
};

enum policy_user_role {
	POLICY_USER_NONE = 0,      /* no staff user: the party's own system acts */
	POLICY_USER_CASEWORKER,    /* visitation office staff */
	POLICY_USER_DISPATCHER,    /* provider staff */
	POLICY_USER_AUDITOR,
	POLICY_USER_ADMINISTRATOR,
	POLICY_USER_COUNT
};

/* Toward the municipality (inbound) or away from it (outbound). */
enum policy_direction {
	POLICY_DIR_NONE = 0,  /* not a message action, or unknown: matches no direction condition */
	POLICY_DIR_INBOUND,
	POLICY_DIR_OUTBOUND,
	POLICY_DIR_COUNT
};

/* The provider's assignment for the citizen the message is about. */
enum policy_assignment {
	POLICY_ASSIGN_NONE = 0,  /* never assigned, or no provider involved */
	POLICY_ASSIGN_ACTIVE,
	POLICY_ASSIGN_ENDED,
	POLICY_ASSIGN_COUNT
};

/*
 * What a decision is about.  Zero-initialise it, then fill what the
 * action needs; the zero values are the restrictive ones.
 *
 *   action     sender (actor)   recipient (peer)    notes
 *   send       actor_role       peer_role           user_role: who at the sender
 *   receive    actor_role       peer_role           data_class; the send's ctx reused
 *   fetch      peer_role        actor_role          the fetching party is the actor
 *   view       -                -                   actor_role: the user's party
 *   audit      -                -                   actor_role, user_role
 *   admin      -                -                   actor_role, user_role
 */
struct policy_ctx {
	enum policy_action action;
	enum party_role actor_role;        /* the party acting (see the table) */
	enum policy_user_role user_role;   /* its staff user, or POLICY_USER_NONE */
	enum party_role peer_role;         /* the message's other party (send, receive, fetch) */
	enum message_kind kind;            /* send, receive, fetch, view */
	enum policy_direction direction;   /* of the message (send, receive, fetch) */
	/*
	 * The assignment for the message's citizen held by the provider in the
	 * exchange (the actor or the peer); POLICY_ASSIGN_NONE when there is
	 * no provider or no citizen.
	 */
	enum policy_assignment assignment;
	const char *approvals;  /* the recipient's approved categories, "a,b"; NULL: none */
	const char *services;   /* the categories the message names, "a,b"; NULL: none */
	enum message_class data_class;     /* receive only */
};

#define POLICY_RULE_ID_MAX 32
#define POLICY_DEFAULT_DENY "default-deny"

struct policy_decision {
	int allow;                           /* 1 allow, 0 deny */
	char rule_id[POLICY_RULE_ID_MAX];    /* the deciding rule, or "default-deny" */
	char reason[256];                    /* a sentence for people; never citizen data */
};

struct policy;

/*
 * Load every *.policy file in dir, in byte order of their names.
 * Returns 0 and *out, or HEGN_ERR_CONFIG with why reading
 * "FILE:LINE: what is wrong" (or naming the directory or file).
 */
int policy_load_dir(const char *dir, struct policy **out, struct why *why);

/*
 * Parse text as if it were the file called name.  Returns 0 and *out, or
 * HEGN_ERR_CONFIG with why reading "NAME:LINE: what is wrong".
 */
int policy_load_string(const char *name, const char *text, struct policy **out,
    struct why *why);

/* Take one more reference to p (it is freed by the last policy_free). */
struct policy *policy_ref(struct policy *p);

/* Drop a reference; the last one frees p.  Accepts NULL. */
void policy_free(struct policy *p);

/*
 * Decide ctx under p (NULL: the empty policy).  Returns 0 with *out
 * filled, allow or deny, or HEGN_ERR_INVALID for a ctx with an
 * out-of-range field (*out then denies with "default-deny").
 */
int policy_decide(const struct policy *p, const struct policy_ctx *ctx,
    struct policy_decision *out);

/*
 * The classes the recipient of ctx may receive, as a bit set of
 * 1 << enum message_class; ctx->action and ctx->data_class are ignored
 * (each class is decided as POLICY_RECEIVE).  per_class (may be NULL)
 * gets each class's decision.  An invalid ctx yields 0.
 */
unsigned policy_classes_for(const struct policy *p, const struct policy_ctx *ctx,
    struct policy_decision per_class[CLASS_COUNT]);

/* Number of rules in p (0 for NULL). */
size_t policy_rule_count(const struct policy *p);

/* The id of rule i in load order, or NULL when i is out of range. */
const char *policy_rule_id(const struct policy *p, size_t i);

/*
 * Print the files and every rule of p as understood, in load order with
 * file:line, then the decision procedure, to f.  0 or HEGN_ERR_IO.
 */
int policy_explain(const struct policy *p, FILE *f);

/* Print ctx's decision the way `hegn policy check` shows it. 0 or HEGN_ERR_IO. */
int policy_print_decision(const struct policy_decision *d, FILE *f);

/*
 * The direction of a message to recipient: inbound toward the
 * municipality's administration (visitation, auditor), else outbound.
 */
enum policy_direction policy_direction_to(enum party_role recipient);

/* Names for the enums above ("send", "caseworker", "inbound", "active"); NULL if out of range. */
const char *policy_action_name(enum policy_action a);
const char *policy_user_role_name(enum policy_user_role u);
const char *policy_direction_name(enum policy_direction d);
const char *policy_assignment_name(enum policy_assignment s);

/* 0 and the value for a known name, HEGN_ERR_INVALID otherwise. */
int policy_action_from_name(const char *name, enum policy_action *a);
int policy_user_role_from_name(const char *name, enum policy_user_role *u);
int policy_direction_from_name(const char *name, enum policy_direction *d);
int policy_assignment_from_name(const char *name, enum policy_assignment *s);

#endif
