/*
 * post: the same PDF as fax, handed to a print queue (lp by default) for
 * printing and mailing.  A fallback: not electronic.
 */
#include "config.h"

#include "adapter.h"
#include "paper.h"

static int
post_deliver(const struct adapter_msg *msg, const struct adapter_target *t,
    struct adapter_result *res, struct why *why)
{
	return paper_deliver("post", "lp", msg, t, res, why);
}

const struct adapter adapter_post = {
	.name = "post",
	.electronic = 0,
	.deliver = post_deliver,
	.receipts = NULL,
};
