/*
 * pull: the party's own system fetches from GET /v1/inbox.  Nothing leaves
 * hegn here: the message waits in the inbox, and the relay records the
 * hand-over when the party fetches it.
 */
#include "config.h"

#include <stdio.h>

#include "adapter.h"

static int
pull_deliver(const struct adapter_msg *msg, const struct adapter_target *target,
    struct adapter_result *res, struct why *why)
{
	int r;

	adapter_result_init(res);
	if ((r = adapter_check_msg(msg, 0, why)) != 0)
		return r;
	snprintf(res->detail, sizeof(res->detail), "ready in the inbox");
	return 0;
}

const struct adapter adapter_pull = {
	.name = "pull",
	.electronic = 1,
	.deliver = pull_deliver,
	.receipts = NULL,
};
