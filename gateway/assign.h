/*
 * assign: which provider serves which citizen, for which service categories,
 * from and to which date.  Referrals create or extend an assignment,
 * cancellations and death notices end one, and staff may manage them by hand.
 * Ended assignments stay, so "who was entitled on that date" can be answered.
 *
 * Dates are calendar dates (YYYY-MM-DD) in UTC.  Every function works inside
 * the caller's transaction, so an assignment changes in the same commit as
 * the message that changed it.
 */
#ifndef HEGN_ASSIGN_H
#define HEGN_ASSIGN_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "store.h"

enum assign_state {
	ASSIGN_NONE = 0,   /* never assigned, or only in the future */
	ASSIGN_ACTIVE,     /* assigned on the date asked about */
	ASSIGN_ENDED,      /* was assigned, but no longer on that date */
};

/* "none", "active", "ended". */
const char *assign_state_name(enum assign_state s);

/* Today's date (UTC) into out. */
void assign_today(char out[11]);

/*
 * The state of provider's assignment for the citizen on date (NULL: today),
 * and in *services (may be NULL) the categories of the active assignment
 * (empty otherwise).  0 or a store error.
 */
int assign_state_of(struct store_tx *tx, const char *citizen_ref, const char *provider,
    const char *date, enum assign_state *out, char services[257], struct why *why);

/*
 * The providers with an active assignment for the citizen on date (NULL:
 * today): a malloc'd array of names (free with free()), *n may be 0.
 */
int assign_providers(struct store_tx *tx, const char *citizen_ref, const char *date,
    char (**out)[65], size_t *n, struct why *why);

/*
 * A referral: create the provider's assignment, or extend the one that is
 * active or starts later (services united, dates widened).  to may be "" or
 * NULL for open-ended.  source names the message.  0 or an error.
 */
int assign_refer(struct store_tx *tx, const char *citizen_ref, const char *provider,
    const char *services, const char *from, const char *to, const char *source,
    int64_t now_ms, struct why *why);

/*
 * End the provider's (NULL: every provider's) active assignments for the
 * citizen on end_date, for the listed services only (NULL: all of them: the
 * rest continue in a new row from the next day).  HEGN_ERR_NOT_FOUND when
 * there was nothing to end.
 */
int assign_end(struct store_tx *tx, const char *citizen_ref, const char *provider,
    const char *services, const char *end_date, const char *reason, const char *source,
    int64_t now_ms, struct why *why);

/* True when every category in the comma list need is in the comma list have. */
int assign_services_cover(const char *have, const char *need);

#endif
