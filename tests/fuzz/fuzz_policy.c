/*
 * fuzz_policy: policy_load_string() on a policy file; what it accepts must
 * decide every context without failing, and explain itself.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "policy.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct policy *p = NULL;
	struct policy_ctx ctx;
	struct policy_decision d;
	struct why why = { 0 };
	char *text;
	FILE *devnull;
	int a, k;

	text = malloc(size + 1);
	memcpy(text, data, size);
	text[size] = '\0';
	if (policy_load_string("fuzz.policy", text, &p, &why) != 0) {
		FUZZ_ASSERT(strncmp(why.text, "fuzz.policy", 11) == 0);
		goto out;
	}
	memset(&ctx, 0, sizeof(ctx));
	ctx.approvals = "practical_help,nursing";
	ctx.services = "practical_help";
	for (a = 0; a < POLICY_ACTION_COUNT; a++)
		for (k = 0; k < MSG_KIND_COUNT; k++) {
			ctx.action = (enum policy_action)a;
			ctx.kind = (enum message_kind)k;
			ctx.actor_role = (enum party_role)(k % ROLE_COUNT);
			ctx.peer_role = (enum party_role)((k + a) % ROLE_COUNT);
			ctx.direction = policy_direction_to(ctx.peer_role);
			ctx.assignment = (enum policy_assignment)(a % POLICY_ASSIGN_COUNT);
			FUZZ_ASSERT(policy_decide(p, &ctx, &d) == 0);
			FUZZ_ASSERT(d.rule_id[0] != '\0');
		}
	if ((devnull = fopen("/dev/null", "w")) != NULL) {
		policy_explain(p, devnull);
		fclose(devnull);
	}
 out:
	policy_free(p);
	free(text);
	return 0;
}
