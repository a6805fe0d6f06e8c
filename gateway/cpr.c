/*
 * cpr: Danish civil registration numbers.
 *
 * Only the shape and the birth date are checked.  The modulus-11 check is
 * deliberately absent: CPR numbers issued since 2007 need not satisfy it, and
 * MedCom's published test numbers fail it on purpose.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "cpr.h"
#include "err.h"
#include "util.h"

/*
 * Copy the ten digits of cpr into out.  The only accepted spellings are ten
 * digits, or six digits, a hyphen and four digits.
 */
static int
cpr_digits(const char *cpr, char out[11])
{
	size_t len, i, n = 0;

	out[0] = '\0';
	if (cpr == NULL)
		return -1;
	len = strnlen(cpr, 12);
	if (len != 10 && !(len == 11 && cpr[6] == '-'))
		return -1;
	for (i = 0; i < len; i++) {
		if (len == 11 && i == 6)
			continue;
		if (cpr[i] < '0' || cpr[i] > '9') {
			out[0] = '\0';
			return -1;
		}
		out[n++] = cpr[i];
	}
	out[n] = '\0';
	return 0;
}

/*
 * The century follows from the seventh digit (the first of the serial
 * number) and the two-digit year, as the CPR office assigns them.
 */
static int
cpr_year(int yy, int d7)
{
	if (d7 <= 3)
		return 1900 + yy;
	if (d7 == 4 || d7 == 9)
		return yy <= 36 ? 2000 + yy : 1900 + yy;
	return yy <= 57 ? 2000 + yy : 1800 + yy;
}

int
cpr_check(const char *cpr, int *year, int *month, int *day, struct why *why)
{
	char d[11];
	int y, m, dd, r = HEGN_ERR_INVALID;

	if (year != NULL)
		*year = 0;
	if (month != NULL)
		*month = 0;
	if (day != NULL)
		*day = 0;
	if (cpr_digits(cpr, d) != 0) {
		why_set(why, r, "not ten digits");
		goto out;
	}
	dd = (d[0] - '0') * 10 + (d[1] - '0');
	m = (d[2] - '0') * 10 + (d[3] - '0');
	y = cpr_year((d[4] - '0') * 10 + (d[5] - '0'), d[6] - '0');
	if (m < 1 || m > 12) {
		why_set(why, r, "month %02d does not exist", m);
		goto out;
	}
	if (dd < 1 || dd > util_days_in_month(y, m)) {
		why_set(why, r, "day %02d does not exist in month %02d of %d", dd, m, y);
		goto out;
	}
	if (year != NULL)
		*year = y;
	if (month != NULL)
		*month = m;
	if (day != NULL)
		*day = dd;
	r = 0;
 out:
	return r;
}

int
cpr_normalize(const char *cpr, char out[11])
{
	out[0] = '\0';
	if (cpr_check(cpr, NULL, NULL, NULL, NULL) != 0)
		return HEGN_ERR_INVALID;
	return cpr_digits(cpr, out) == 0 ? 0 : HEGN_ERR_INVALID;
}

/*
 * X-eCPR (HL7 Denmark's DkCoreXeCprIdentifier): ten digits or capital
 * letters.  Its "date" need not be a date, so only the shape is checked.
 */
int
cpr_ecpr_check(const char *ecpr, struct why *why)
{
	if (ecpr == NULL || strlen(ecpr) != 10 ||
	    strspn(ecpr, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") != 10)
		return why_set(why, HEGN_ERR_INVALID,
		    "not an X-eCPR (10 digits or capital letters)");
	return 0;
}

int
cpr_ecpr_key(const char *ecpr, char *out, size_t size, struct why *why)
{
	int r;

	if (size > 0)
		out[0] = '\0';
	if ((r = cpr_ecpr_check(ecpr, why)) != 0)
		return r;
	if ((size_t)snprintf(out, size, "%s%s", CPR_ECPR_PREFIX, ecpr) >= size) {
		out[0] = '\0';
		return why_set(why, HEGN_ERR_INTERNAL, "X-eCPR key buffer too small");
	}
	return 0;
}
