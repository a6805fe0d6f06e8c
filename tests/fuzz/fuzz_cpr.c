/*
 * fuzz_cpr: cpr_check() and cpr_normalize() on a NUL-terminated copy of the
 * input.  They must agree, a normalised number must check to the same date,
 * and no reason may repeat the number.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "cpr.h"
#include "fuzz.h"

/* Only digits and hyphens: what could be (part of) a CPR number. */
static int
cpr_like(const char *s)
{
	return *s != '\0' && s[strspn(s, "0123456789-")] == '\0';
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct why why = { 0 };
	char *s, norm[11];
	int y, m, d, y2, m2, d2, r;

	if ((s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';

	r = cpr_check(s, &y, &m, &d, &why);
	FUZZ_ASSERT(r == 0 || r == HEGN_ERR_INVALID);
	if (r != 0 && strlen(s) >= 6 && cpr_like(s))
		FUZZ_ASSERT(strstr(why.text, s) == NULL);
	FUZZ_ASSERT((cpr_normalize(s, norm) == 0) == (r == 0));
	if (r == 0) {
		FUZZ_ASSERT(strlen(norm) == 10 && strspn(norm, "0123456789") == 10);
		FUZZ_ASSERT(y >= 1858 && y <= 2057 && m >= 1 && m <= 12 && d >= 1 && d <= 31);
		FUZZ_ASSERT(cpr_check(norm, &y2, &m2, &d2, NULL) == 0);
		FUZZ_ASSERT(y2 == y && m2 == m && d2 == d);
	} else
		FUZZ_ASSERT(norm[0] == '\0');
	free(s);
	return 0;
}
