/*
 * cpr: Danish civil registration numbers (CPR).
 *
 * A CPR is DDMMYY-SSSS written without the hyphen.  The seventh digit and
 * the year give the century.  The modulus-11 check is never applied: numbers
 * without it have been issued since 2007.
 */
#ifndef HEGN_CPR_H
#define HEGN_CPR_H

#include <stddef.h>

#include "err.h"

/*
 * Check that cpr is ten digits (a hyphen after the sixth is accepted) naming
 * a real birth date under the century rules.  Returns 0 and the date in
 * *year, *month, *day (each may be NULL), or HEGN_ERR_INVALID with why saying
 * what is wrong (never repeating the number).
 */
int cpr_check(const char *cpr, int *year, int *month, int *day, struct why *why);

/* Copy the ten digits of a valid cpr into out (hyphen removed); 0 or HEGN_ERR_INVALID. */
int cpr_normalize(const char *cpr, char out[11]);

/*
 * A citizen without a CPR may be known by an X-eCPR (system
 * urn:oid:1.2.208.176.1.6.1.1).  Its key, wherever hegn keys citizens (the
 * keyed hash, assignments), is CPR_ECPR_PREFIX followed by the X-eCPR, so it
 * can never equal a CPR.
 */
#define CPR_ECPR_PREFIX "X-eCPR:"
/* 0 when ecpr is ten digits or capital letters, HEGN_ERR_INVALID otherwise (never quoting it). */
int cpr_ecpr_check(const char *ecpr, struct why *why);
/* The key of a valid ecpr into out (size bytes); 0 or HEGN_ERR_INVALID / HEGN_ERR_INTERNAL. */
int cpr_ecpr_key(const char *ecpr, char *out, size_t size, struct why *why);

#endif
