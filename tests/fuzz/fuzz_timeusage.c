/*
 * fuzz_timeusage: timeusage_parse() on a spreadsheet's CSV; every report it
 * makes must pass the gateway's own message validation.
 */
#include "config.h"

#include <string.h>

#include "fuzz.h"
#include "message.h"
#include "timeusage.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf *docs = NULL;
	struct message *m;
	struct why why = { 0 };
	size_t n = 0, i;

	if (timeusage_parse(data, size, "ringsted-visitation", &docs, &n, &why) != 0) {
		FUZZ_ASSERT(docs == NULL && why.text[0] != '\0');
		return 0;
	}
	FUZZ_ASSERT(n > 0);
	for (i = 0; i < n; i++) {
		m = NULL;
		FUZZ_ASSERT(message_parse(docs[i].data, docs[i].len, NULL, &m, &why) == 0);
		FUZZ_ASSERT(message_kind(m) == MSG_TIME_USAGE);
		message_free(m);
	}
	timeusage_free(docs, n);
	return 0;
}
