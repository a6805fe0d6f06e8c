/*
 * fuzz_message: message_parse() on JSON from a client, and for what it
 * accepts, the canonical form: it must succeed, parse again and be a fixed
 * point (idempotency and signatures depend on it).
 */
#include "config.h"

#include <string.h>

#include "fuzz.h"
#include "message.h"
#include "util.h"

/* Use every accessor, so a field left unset or dangling shows under ASan. */
static void
touch(const struct message *m)
{
	const char *s;
	size_t n = 0;

	if ((s = message_id(m)) != NULL)
		n += strlen(s);
	if ((s = message_from(m)) != NULL)
		n += strlen(s);
	FUZZ_ASSERT(message_kind_name(message_kind(m)) != NULL);
	FUZZ_ASSERT(message_to(m) != NULL);
	n += strlen(message_to(m));
	FUZZ_ASSERT(message_cpr(m) != NULL && strlen(message_cpr(m)) == 10);
	FUZZ_ASSERT((message_classes(m) & ~((1u << CLASS_COUNT) - 1)) == 0);
	FUZZ_ASSERT(message_json(m) != NULL);
	(void)message_deadline(m);
	(void)n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct message_limits tight = { 1, 64 };
	struct message *m = NULL, *again = NULL, *small = NULL;
	struct buf canon = { 0 }, canon2 = { 0 };
	struct why why = { 0 };
	int r;

	/* Small limits reach the size checks with small inputs. */
	r = message_parse(data, size, &tight, &small, &why);
	FUZZ_ASSERT((r == 0) == (small != NULL));
	message_free(small);

	if (message_parse(data, size, NULL, &m, &why) != 0) {
		FUZZ_ASSERT(m == NULL);
		goto out;
	}
	touch(m);
	FUZZ_ASSERT(message_canonical(m, &canon, &why) == 0);
	FUZZ_ASSERT(canon.data != NULL && canon.len > 0);
	if (message_parse(canon.data, canon.len, NULL, &again, &why) != 0) {
		fprintf(stderr, "canonical form refused: %s\n", why.text);
		FUZZ_ASSERT(!"the canonical form of an accepted message parses");
	}
	touch(again);
	FUZZ_ASSERT(message_kind(again) == message_kind(m));
	FUZZ_ASSERT(strcmp(message_cpr(again), message_cpr(m)) == 0);
	FUZZ_ASSERT(message_classes(again) == message_classes(m));
	FUZZ_ASSERT(message_canonical(again, &canon2, &why) == 0);
	FUZZ_ASSERT(canon2.len == canon.len &&
	    memcmp(canon2.data, canon.data, canon.len) == 0);
 out:
	buf_free(&canon, 1);
	buf_free(&canon2, 1);
	message_free(again);
	message_free(m);
	return 0;
}
