/*
 * fax: the message rendered as a PDF with a cover sheet and handed to a fax
 * command, by default HylaFAX's sendfax.  A fallback: not electronic.
 */
#include "config.h"

#include "adapter.h"
#include "paper.h"

static int
fax_deliver(const struct adapter_msg *msg, const struct adapter_target *t,
    struct adapter_result *res, struct why *why)
{
	return paper_deliver("fax", "sendfax -n -d {number}", msg, t, res, why);
}

const struct adapter adapter_fax = {
	.name = "fax",
	.electronic = 0,
	.deliver = fax_deliver,
	.receipts = NULL,
};
