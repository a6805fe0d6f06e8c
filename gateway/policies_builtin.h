/*
 * policies_builtin: the policy files shipped in policies/, compiled in (by
 * scripts/embed-policies.sh) so `hegn demo init` can write them out.
 */
#ifndef HEGN_POLICIES_BUILTIN_H
#define HEGN_POLICIES_BUILTIN_H

struct policy_file {
	const char *name;
	const char *text;
};

/* Terminated by an entry with name NULL. */
extern const struct policy_file policies_builtin[];

#endif
