/*
 * fuzz_receipt: receipt_parse() on a recipient's receipt; what it accepts
 * must build and parse back to the same receipt.
 */
#include "config.h"

#include <string.h>

#include "fuzz.h"
#include "receipt.h"
#include "util.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct receipt r, back;
	struct buf b = { 0 };
	struct why why = { 0 };

	if (receipt_parse(data, size, &r, &why) != 0)
		goto out;
	FUZZ_ASSERT(strlen(r.sha256) == 64);
	FUZZ_ASSERT(r.accepted == 0 || r.accepted == 1);
	FUZZ_ASSERT(r.accepted || r.reason[0] != '\0');
	FUZZ_ASSERT(receipt_build(&r, &b, &why) == 0);
	FUZZ_ASSERT(receipt_parse(b.data, b.len, &back, &why) == 0);
	FUZZ_ASSERT(strcmp(back.message_id, r.message_id) == 0);
	FUZZ_ASSERT(strcmp(back.sha256, r.sha256) == 0);
	FUZZ_ASSERT(back.accepted == r.accepted);
	FUZZ_ASSERT(strcmp(back.reason, r.reason) == 0);
 out:
	buf_free(&b, 0);
	return 0;
}
