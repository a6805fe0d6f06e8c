/*
 * cpr: Danish civil registration numbers (CPR).
 *
 * A CPR is DDMMYY-SSSS written without the hyphen.  The seventh digit and
 * the year give the century.  The modulus-11 check is never applied: numbers
 * without it have been issued since 2007.
 */
#ifndef HEGN_CPR_H
#define HEGN_CPR_H

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

#endif
