#include "config.h"

#include <sys/stat.h>

#include <dirent.h>
#include <pthread.h>
#include <unistd.h>

#include "conf.h"
#include "err.h"
#include "message.h"
#include "policy.h"
#include "testlib.h"
#include "util.h"

#define V ROLE_VISITATION
#define P ROLE_PROVIDER
#define H ROLE_HOSPITAL
#define A ROLE_AUDITOR

#define U_NONE POLICY_USER_NONE
#define U_CASE POLICY_USER_CASEWORKER
#define U_DISP POLICY_USER_DISPATCHER
#define U_AUD POLICY_USER_AUDITOR
#define U_ADM POLICY_USER_ADMINISTRATOR

#define S_NONE POLICY_ASSIGN_NONE
#define S_ACT POLICY_ASSIGN_ACTIVE
#define S_END POLICY_ASSIGN_ENDED

/* The demo's approvals: hovmand-care and ringsted-homecare. */
#define HOVMAND "practical_help,meals"
#define HOMECARE "practical_help,personal_care,nursing"

static struct policy *
load_defaults(void)
{
	const char *top = getenv("HEGN_TOP_SRCDIR");
	struct policy *p = NULL;
	struct why why = { 0 };
	char dir[4096];

	if (top == NULL || *top == '\0')
		top = HEGN_TOP_SRCDIR;
	snprintf(dir, sizeof(dir), "%s/policies", top);
	ck_assert_msg(policy_load_dir(dir, &p, &why) == 0, "%s", why.text);
	ck_assert_ptr_nonnull(p);
	return p;
}

/* A run of 6 digits anywhere could be a CPR number. */
static int
has_digit_run(const char *s)
{
	int run = 0;

	for (; *s != '\0'; s++) {
		run = (*s >= '0' && *s <= '9') ? run + 1 : 0;
		if (run >= 6)
			return 1;
	}
	return 0;
}

/*
 * One expectation.  For send and receive, actor is the sender and peer
 * the recipient; for fetch, actor is the fetching recipient and peer the
 * sender; view, audit and admin have only the actor.
 */
struct row {
	enum policy_action action;
	enum party_role actor;
	enum policy_user_role user;
	enum party_role peer;
	enum message_kind kind;
	enum policy_assignment assignment;
	const char *approvals;
	const char *services;
	enum message_class cls;
	int allow;
	const char *rule;
};

static void
row_ctx(const struct row *r, struct policy_ctx *c)
{
	memset(c, 0, sizeof(*c));
	c->action = r->action;
	c->actor_role = r->actor;
	c->user_role = r->user;
	c->peer_role = r->peer;
	c->kind = r->kind;
	c->assignment = r->assignment;
	c->approvals = r->approvals;
	c->services = r->services;
	c->data_class = r->cls;
	if (r->action == POLICY_SEND || r->action == POLICY_RECEIVE)
		c->direction = policy_direction_to(r->peer);
	else if (r->action == POLICY_FETCH)
		c->direction = policy_direction_to(r->actor);
}

#define SEND POLICY_SEND
#define FETCH POLICY_FETCH
#define RECV POLICY_RECEIVE
#define VIEW POLICY_VIEW
#define AUDIT POLICY_AUDIT
#define ADMIN POLICY_ADMIN
#define DD POLICY_DEFAULT_DENY

static const struct row rows[] = {
	/* Referrals: any assignment state, approved for every service named. */
	{ SEND, V, U_NONE, P, MSG_REFERRAL, S_NONE, HOVMAND, "practical_help", CLASS_BASIC, 1, "refer" },
	{ SEND, V, U_CASE, P, MSG_REFERRAL, S_END, HOVMAND, "practical_help,meals", CLASS_BASIC, 1, "refer" },
	{ SEND, V, U_CASE, P, MSG_REFERRAL, S_ACT, HOMECARE, "nursing", CLASS_BASIC, 1, "refer" },
	{ SEND, V, U_NONE, P, MSG_REFERRAL, S_NONE, HOVMAND, "practical_help,nursing", CLASS_BASIC, 0, DD },
	{ SEND, V, U_NONE, P, MSG_REFERRAL, S_NONE, HOVMAND, NULL, CLASS_BASIC, 0, DD },
	{ SEND, V, U_NONE, P, MSG_REFERRAL, S_NONE, NULL, "practical_help", CLASS_BASIC, 0, DD },
	{ SEND, V, U_ADM, P, MSG_REFERRAL, S_NONE, HOMECARE, "nursing", CLASS_BASIC, 0, DD },
	{ SEND, V, U_DISP, P, MSG_REFERRAL, S_NONE, HOMECARE, "nursing", CLASS_BASIC, 0, DD },
	{ SEND, V, U_NONE, V, MSG_REFERRAL, S_NONE, HOMECARE, "nursing", CLASS_BASIC, 0, DD },
	{ SEND, V, U_NONE, H, MSG_REFERRAL, S_NONE, HOMECARE, "nursing", CLASS_BASIC, 0, DD },
	/* Care updates and cancellations need the provider's active assignment. */
	{ SEND, V, U_NONE, P, MSG_CARE_UPDATE, S_ACT, HOVMAND, NULL, CLASS_BASIC, 1, "case-update" },
	{ SEND, V, U_CASE, P, MSG_CANCELLATION, S_ACT, HOVMAND, NULL, CLASS_BASIC, 1, "case-update" },
	{ SEND, V, U_NONE, P, MSG_CARE_UPDATE, S_END, HOVMAND, NULL, CLASS_BASIC, 0, DD },
	{ SEND, V, U_NONE, P, MSG_CANCELLATION, S_NONE, HOVMAND, NULL, CLASS_BASIC, 0, DD },
	{ SEND, V, U_AUD, P, MSG_CARE_UPDATE, S_ACT, HOVMAND, NULL, CLASS_BASIC, 0, DD },
	/* Notices passed on by the visitation office. */
	{ SEND, V, U_NONE, P, MSG_DEATH_NOTICE, S_ACT, HOVMAND, NULL, CLASS_BASIC, 1, "notice-forward" },
	{ SEND, V, U_CASE, P, MSG_DISCHARGE_NOTICE, S_ACT, HOMECARE, NULL, CLASS_BASIC, 1, "notice-forward" },
	{ SEND, V, U_NONE, P, MSG_ADMISSION_NOTICE, S_END, HOVMAND, NULL, CLASS_BASIC, 0, DD },
	{ SEND, V, U_NONE, P, MSG_LEAVE_NOTICE, S_NONE, HOVMAND, NULL, CLASS_BASIC, 0, DD },
	/* Hospitals: to the municipality always, to providers only when serving. */
	{ SEND, H, U_NONE, V, MSG_ADMISSION_NOTICE, S_NONE, NULL, NULL, CLASS_BASIC, 1, "hospital-notice" },
	{ SEND, H, U_NONE, V, MSG_DEATH_NOTICE, S_ACT, NULL, NULL, CLASS_BASIC, 1, "hospital-notice" },
	{ SEND, H, U_NONE, V, MSG_LEAVE_NOTICE, S_END, NULL, NULL, CLASS_BASIC, 1, "hospital-notice" },
	{ SEND, H, U_NONE, V, MSG_REFERRAL, S_NONE, NULL, NULL, CLASS_BASIC, 0, DD },
	/* A MedCom CareCommunication from a hospital arrives as an observation (30-medcom). */
	{ SEND, H, U_NONE, V, MSG_OBSERVATION, S_NONE, NULL, NULL, CLASS_BASIC, 1, "medcom-hospital-letter" },
	{ SEND, H, U_CASE, V, MSG_OBSERVATION, S_NONE, NULL, NULL, CLASS_BASIC, 0, DD },
	{ SEND, H, U_NONE, P, MSG_OBSERVATION, S_ACT, HOVMAND, NULL, CLASS_BASIC, 0, DD },
	{ FETCH, V, U_NONE, H, MSG_OBSERVATION, S_NONE, NULL, NULL, CLASS_BASIC, 1, "medcom-fetch-hospital-letter" },
	{ FETCH, P, U_NONE, H, MSG_OBSERVATION, S_ACT, HOVMAND, NULL, CLASS_BASIC, 0, DD },
	{ SEND, H, U_NONE, A, MSG_ADMISSION_NOTICE, S_NONE, NULL, NULL, CLASS_BASIC, 0, DD },
	{ SEND, H, U_NONE, P, MSG_LEAVE_NOTICE, S_ACT, HOVMAND, NULL, CLASS_BASIC, 1, "hospital-route" },
	{ SEND, H, U_NONE, P, MSG_DISCHARGE_NOTICE, S_NONE, HOVMAND, NULL, CLASS_BASIC, 0, "hospital-unassigned" },
	{ SEND, H, U_NONE, P, MSG_DEATH_NOTICE, S_END, HOMECARE, NULL, CLASS_BASIC, 0, "hospital-unassigned" },
	/* Providers report about their own citizens only. */
	{ SEND, P, U_NONE, V, MSG_CHANGE_REQUEST, S_ACT, HOVMAND, NULL, CLASS_BASIC, 1, "provider-report" },
	{ SEND, P, U_NONE, V, MSG_OBSERVATION, S_ACT, HOVMAND, NULL, CLASS_BASIC, 1, "provider-report" },
	{ SEND, P, U_NONE, V, MSG_TIME_USAGE, S_ACT, HOMECARE, NULL, CLASS_BASIC, 1, "provider-report" },
	{ SEND, P, U_NONE, V, MSG_TIME_USAGE, S_END, HOVMAND, NULL, CLASS_BASIC, 0, "provider-unassigned" },
	{ SEND, P, U_NONE, V, MSG_OBSERVATION, S_NONE, HOVMAND, NULL, CLASS_BASIC, 0, "provider-unassigned" },
	{ SEND, P, U_DISP, V, MSG_CHANGE_REQUEST, S_NONE, HOVMAND, NULL, CLASS_BASIC, 0, "provider-unassigned" },
	{ SEND, P, U_DISP, V, MSG_CHANGE_REQUEST, S_ACT, HOVMAND, NULL, CLASS_BASIC, 1, "provider-report" },
	{ SEND, P, U_NONE, P, MSG_OBSERVATION, S_ACT, HOVMAND, NULL, CLASS_BASIC, 0, DD },
	{ SEND, P, U_NONE, A, MSG_OBSERVATION, S_ACT, HOVMAND, NULL, CLASS_BASIC, 0, DD },
	{ SEND, P, U_NONE, V, MSG_REFERRAL, S_ACT, HOVMAND, NULL, CLASS_BASIC, 0, DD },
	{ SEND, P, U_NONE, V, MSG_DEATH_NOTICE, S_ACT, HOVMAND, NULL, CLASS_BASIC, 0, DD },
	{ SEND, A, U_NONE, V, MSG_OBSERVATION, S_ACT, NULL, NULL, CLASS_BASIC, 0, DD },
	{ SEND, A, U_AUD, P, MSG_REFERRAL, S_NONE, HOVMAND, "practical_help", CLASS_BASIC, 0, DD },
	/* Fetching: actor is the recipient, peer the sender. */
	{ FETCH, P, U_NONE, V, MSG_REFERRAL, S_NONE, HOVMAND, NULL, CLASS_BASIC, 1, "fetch-case" },
	{ FETCH, P, U_NONE, V, MSG_CANCELLATION, S_END, HOVMAND, NULL, CLASS_BASIC, 1, "fetch-case" },
	{ FETCH, P, U_NONE, H, MSG_DEATH_NOTICE, S_ACT, HOVMAND, NULL, CLASS_BASIC, 1, "fetch-notice" },
	{ FETCH, P, U_NONE, V, MSG_ADMISSION_NOTICE, S_ACT, HOVMAND, NULL, CLASS_BASIC, 1, "fetch-notice" },
	{ FETCH, V, U_NONE, P, MSG_TIME_USAGE, S_ACT, NULL, NULL, CLASS_BASIC, 1, "fetch-report" },
	{ FETCH, V, U_NONE, H, MSG_DISCHARGE_NOTICE, S_NONE, NULL, NULL, CLASS_BASIC, 1, "fetch-hospital" },
	{ FETCH, P, U_NONE, V, MSG_OBSERVATION, S_ACT, HOVMAND, NULL, CLASS_BASIC, 0, DD },
	{ FETCH, P, U_NONE, H, MSG_REFERRAL, S_ACT, HOVMAND, NULL, CLASS_BASIC, 0, DD },
	{ FETCH, H, U_NONE, V, MSG_REFERRAL, S_NONE, NULL, NULL, CLASS_BASIC, 0, DD },
	{ FETCH, A, U_NONE, V, MSG_REFERRAL, S_NONE, NULL, NULL, CLASS_BASIC, 0, DD },
	{ FETCH, V, U_NONE, H, MSG_REFERRAL, S_NONE, NULL, NULL, CLASS_BASIC, 0, DD },
	{ FETCH, V, U_NONE, P, MSG_REFERRAL, S_NONE, NULL, NULL, CLASS_BASIC, 0, DD },
	/* Minimisation: actor is the sender, peer the recipient. */
	{ RECV, V, U_NONE, P, MSG_REFERRAL, S_NONE, HOVMAND, NULL, CLASS_BASIC, 1, "min-provider" },
	{ RECV, V, U_NONE, P, MSG_REFERRAL, S_NONE, HOVMAND, NULL, CLASS_CARE, 1, "min-provider" },
	{ RECV, V, U_NONE, P, MSG_REFERRAL, S_NONE, HOVMAND, NULL, CLASS_HEALTH, 0, DD },
	{ RECV, V, U_NONE, P, MSG_CARE_UPDATE, S_ACT, "practical_help", NULL, CLASS_HEALTH, 0, DD },
	{ RECV, V, U_NONE, P, MSG_CARE_UPDATE, S_ACT, "meals", NULL, CLASS_HEALTH, 0, DD },
	{ RECV, V, U_NONE, P, MSG_CARE_UPDATE, S_ACT, "rehabilitation", NULL, CLASS_HEALTH, 0, DD },
	{ RECV, V, U_NONE, P, MSG_CARE_UPDATE, S_ACT, NULL, NULL, CLASS_HEALTH, 0, DD },
	{ RECV, V, U_NONE, P, MSG_CARE_UPDATE, S_ACT, NULL, NULL, CLASS_CARE, 1, "min-provider" },
	{ RECV, V, U_NONE, P, MSG_REFERRAL, S_NONE, HOMECARE, NULL, CLASS_HEALTH, 1, "min-provider-health" },
	{ RECV, V, U_NONE, P, MSG_REFERRAL, S_NONE, "personal_care", NULL, CLASS_HEALTH, 1, "min-provider-health" },
	{ RECV, V, U_NONE, P, MSG_REFERRAL, S_NONE, " meals , nursing ", NULL, CLASS_HEALTH, 1, "min-provider-health" },
	{ RECV, V, U_NONE, P, MSG_REFERRAL, S_NONE, "nursing_home", NULL, CLASS_HEALTH, 0, DD },
	{ RECV, H, U_NONE, P, MSG_DEATH_NOTICE, S_ACT, HOVMAND, NULL, CLASS_HEALTH, 0, DD },
	{ RECV, H, U_NONE, P, MSG_DEATH_NOTICE, S_ACT, HOVMAND, NULL, CLASS_BASIC, 1, "min-provider" },
	{ RECV, P, U_NONE, V, MSG_OBSERVATION, S_ACT, NULL, NULL, CLASS_HEALTH, 1, "min-visitation" },
	{ RECV, H, U_NONE, V, MSG_ADMISSION_NOTICE, S_NONE, NULL, NULL, CLASS_BASIC, 1, "min-visitation" },
	{ RECV, V, U_NONE, H, MSG_REFERRAL, S_NONE, NULL, NULL, CLASS_BASIC, 0, DD },
	{ RECV, V, U_NONE, A, MSG_REFERRAL, S_NONE, NULL, NULL, CLASS_BASIC, 0, DD },
	/* Staff. */
	{ VIEW, V, U_CASE, P, MSG_REFERRAL, S_NONE, NULL, NULL, CLASS_BASIC, 1, "view-caseworker" },
	{ VIEW, V, U_NONE, P, MSG_REFERRAL, S_NONE, NULL, NULL, CLASS_BASIC, 0, DD },
	{ VIEW, P, U_DISP, V, MSG_OBSERVATION, S_ACT, NULL, NULL, CLASS_BASIC, 1, "view-dispatcher" },
	{ VIEW, P, U_CASE, V, MSG_OBSERVATION, S_ACT, NULL, NULL, CLASS_BASIC, 0, DD },
	{ VIEW, V, U_ADM, P, MSG_REFERRAL, S_NONE, NULL, NULL, CLASS_BASIC, 0, DD },
	{ VIEW, A, U_AUD, V, MSG_REFERRAL, S_NONE, NULL, NULL, CLASS_BASIC, 0, "view-auditor" },
	{ VIEW, V, U_AUD, P, MSG_REFERRAL, S_NONE, NULL, NULL, CLASS_BASIC, 0, "view-auditor" },
	{ AUDIT, A, U_NONE, V, MSG_REFERRAL, S_NONE, NULL, NULL, CLASS_BASIC, 1, "audit" },
	{ AUDIT, A, U_AUD, V, MSG_REFERRAL, S_NONE, NULL, NULL, CLASS_BASIC, 1, "audit" },
	{ AUDIT, V, U_CASE, V, MSG_REFERRAL, S_NONE, NULL, NULL, CLASS_BASIC, 0, DD },
	{ AUDIT, P, U_NONE, V, MSG_REFERRAL, S_NONE, NULL, NULL, CLASS_BASIC, 0, DD },
	{ AUDIT, A, U_ADM, V, MSG_REFERRAL, S_NONE, NULL, NULL, CLASS_BASIC, 0, DD },
	{ ADMIN, V, U_ADM, V, MSG_REFERRAL, S_NONE, NULL, NULL, CLASS_BASIC, 1, "admin" },
	{ ADMIN, V, U_CASE, V, MSG_REFERRAL, S_NONE, NULL, NULL, CLASS_BASIC, 0, DD },
	{ ADMIN, V, U_NONE, V, MSG_REFERRAL, S_NONE, NULL, NULL, CLASS_BASIC, 0, DD },
	{ ADMIN, P, U_ADM, V, MSG_REFERRAL, S_NONE, NULL, NULL, CLASS_BASIC, 0, DD },
	{ ADMIN, A, U_ADM, V, MSG_REFERRAL, S_NONE, NULL, NULL, CLASS_BASIC, 0, DD },
};
#define NROWS (sizeof(rows) / sizeof(rows[0]))

START_TEST(test_default_table)
{
	struct policy *p = load_defaults();
	struct policy_decision d;
	struct policy_ctx c;
	size_t i, j;
	int hit;

	for (i = 0; i < NROWS; i++) {
		row_ctx(&rows[i], &c);
		ck_assert_int_eq(policy_decide(p, &c, &d), 0);
		ck_assert_msg(d.allow == rows[i].allow && strcmp(d.rule_id, rows[i].rule) == 0,
		    "row %zu (%s %s): got %s by %s (%s), want %s by %s", i,
		    policy_action_name(rows[i].action), message_kind_name(rows[i].kind),
		    d.allow ? "allow" : "deny", d.rule_id, d.reason,
		    rows[i].allow ? "allow" : "deny", rows[i].rule);
		ck_assert(d.reason[0] != '\0');
		ck_assert(!has_digit_run(d.reason));
	}
	/* Every shipped rule is exercised by some row, and so is the default. */
	for (j = 0; j <= policy_rule_count(p); j++) {
		const char *id = j < policy_rule_count(p) ? policy_rule_id(p, j) : DD;

		for (i = 0, hit = 0; i < NROWS && !hit; i++)
			hit = strcmp(rows[i].rule, id) == 0;
		ck_assert_msg(hit, "no table row for rule %s", id);
	}
	ck_assert_ptr_null(policy_rule_id(p, policy_rule_count(p)));
	policy_free(p);
}
END_TEST

/*
 * The whole space role x user x peer x kind x assignment x approval x
 * class: invariants of the design hold for every combination.
 */
static const char *const sweep_approvals[] = {
	NULL, "practical_help", HOVMAND, HOMECARE, "nursing", "personal_care", "rehabilitation"
};
#define NAPPROVALS (sizeof(sweep_approvals) / sizeof(sweep_approvals[0]))

static int
health_approved(const char *a)
{
	return a != NULL && (strstr(a, "nursing") != NULL || strstr(a, "personal_care") != NULL);
}

START_TEST(test_default_invariants)
{
	struct policy *p = load_defaults();
	struct policy_decision d;
	struct policy_ctx c;
	int act, ar, u, pr, k, s, ap, cl, n = 0;

	for (act = 0; act < POLICY_ACTION_COUNT; act++)
	for (ar = 0; ar < ROLE_COUNT; ar++)
	for (u = 0; u < POLICY_USER_COUNT; u++)
	for (pr = 0; pr < ROLE_COUNT; pr++)
	for (k = 0; k < MSG_KIND_COUNT; k++)
	for (s = 0; s < POLICY_ASSIGN_COUNT; s++)
	for (ap = 0; ap < (int)NAPPROVALS; ap++)
	for (cl = 0; cl < CLASS_COUNT; cl++) {
		memset(&c, 0, sizeof(c));
		c.action = act;
		c.actor_role = ar;
		c.user_role = u;
		c.peer_role = pr;
		c.kind = k;
		c.assignment = s;
		c.approvals = sweep_approvals[ap];
		c.services = "practical_help";
		c.data_class = cl;
		c.direction = policy_direction_to(act == POLICY_FETCH ? ar : pr);
		ck_assert_int_eq(policy_decide(p, &c, &d), 0);
		n++;
		ck_assert(!has_digit_run(d.reason));
		ck_assert(d.reason[0] != '\0');
		if (d.allow)
			ck_assert_str_ne(d.rule_id, DD);
		if (!d.allow)
			continue;
		/* Health data only to the municipality or a nursing/personal-care provider. */
		if (act == POLICY_RECEIVE && cl == CLASS_HEALTH)
			ck_assert(pr == V || (pr == P && health_approved(c.approvals)));
		/* Providers write only about their own citizens, to visitation. */
		if (act == POLICY_SEND && ar == P) {
			ck_assert_int_eq(s, S_ACT);
			ck_assert(u == U_NONE || u == U_DISP);   /* the system, or a dispatcher at the page */
			ck_assert_int_eq(pr, V);
		}
		/* A provider hears about a citizen only while serving it (a referral starts that). */
		if (act == POLICY_SEND && pr == P && k != MSG_REFERRAL)
			ck_assert_int_eq(s, S_ACT);
		/* Only the auditor audits; only an administrator administers. */
		if (act == POLICY_AUDIT)
			ck_assert_int_eq(ar, A);
		if (act == POLICY_ADMIN)
			ck_assert_int_eq(u, U_ADM);
		if (act == POLICY_VIEW)
			ck_assert(u == U_CASE || u == U_DISP);
		ck_assert(ar != A || act == POLICY_AUDIT || act == POLICY_RECEIVE);
	}
	ck_assert_int_gt(n, 100000);
	policy_free(p);
}
END_TEST

START_TEST(test_classes_for)
{
	struct policy *p = load_defaults();
	struct policy_decision per[CLASS_COUNT];
	struct policy_ctx c;
	unsigned set;

	memset(&c, 0, sizeof(c));
	c.action = POLICY_SEND;  /* ignored: each class is decided as receive */
	c.actor_role = V;
	c.peer_role = P;
	c.kind = MSG_REFERRAL;
	c.direction = POLICY_DIR_OUTBOUND;
	c.approvals = HOVMAND;
	c.data_class = CLASS_HEALTH;  /* ignored too */
	set = policy_classes_for(p, &c, per);
	ck_assert_uint_eq(set, (1u << CLASS_BASIC) | (1u << CLASS_CARE));
	ck_assert_str_eq(per[CLASS_BASIC].rule_id, "min-provider");
	ck_assert_str_eq(per[CLASS_CARE].rule_id, "min-provider");
	ck_assert_str_eq(per[CLASS_HEALTH].rule_id, DD);
	ck_assert(!per[CLASS_HEALTH].allow);
	ck_assert_ptr_nonnull(strstr(per[CLASS_HEALTH].reason, "health"));

	c.approvals = HOMECARE;
	set = policy_classes_for(p, &c, per);
	ck_assert_uint_eq(set, 7u);
	ck_assert_str_eq(per[CLASS_HEALTH].rule_id, "min-provider-health");
	ck_assert_uint_eq(policy_classes_for(p, &c, NULL), 7u);

	c.actor_role = P;
	c.peer_role = V;
	c.kind = MSG_OBSERVATION;
	c.approvals = NULL;
	ck_assert_uint_eq(policy_classes_for(p, &c, per), 7u);
	ck_assert_str_eq(per[CLASS_HEALTH].rule_id, "min-visitation");

	c.peer_role = H;
	ck_assert_uint_eq(policy_classes_for(p, &c, per), 0u);
	ck_assert_str_eq(per[CLASS_BASIC].rule_id, DD);

	/* A context out of range yields nothing. */
	c.peer_role = (enum party_role)42;
	ck_assert_uint_eq(policy_classes_for(p, &c, per), 0u);
	ck_assert(!per[CLASS_BASIC].allow);
	ck_assert_uint_eq(policy_classes_for(p, NULL, per), 0u);
	ck_assert_str_eq(per[CLASS_CARE].rule_id, DD);
	policy_free(p);
}
END_TEST

struct bad {
	const char *text;
	int line;
	const char *needle;
};

static const struct bad bads[] = {
	{ "rul a1 allow send", 1, "did you mean 'rule'" },
	{ "allow send referral", 1, "'rule' at the start" },
	{ "rule", 1, "expected a rule id after 'rule', found the end" },
	{ "rule \"x\"", 1, "expected a rule id" },
	{ "rule a1 alow send", 1, "did you mean 'allow'" },
	{ "rule a1", 1, "'allow' or 'deny'" },
	{ "rule a1 allow sned", 1, "did you mean 'send'" },
	{ "rule a1 allow frobnicate", 1, "unknown word 'frobnicate'" },
	{ "rule a1 allow send referal", 1, "did you mean 'referral'" },
	{ "rule a1 allow send referral by provder", 1, "did you mean 'provider'" },
	{ "rule a1 allow send referral by caseworker", 1, "is a user role: write 'user caseworker'" },
	{ "rule a1 allow send referral by", 1, "a party role after 'by'" },
	{ "rule a1 allow send referral,", 1, "may not end with ','" },
	{ "rule a1 allow send referral, by visitation", 1, "unknown word 'by' where a message kind" },
	{ "rule a1 allow send , referral", 1, "unexpected ','" },
	{ "rule a1 allow send referral by visitation by provider", 1, "named twice" },
	{ "rule a1 allow send referral by visitation from visitation", 1, "named twice" },
	{ "rule a1 allow send referral user none user caseworker", 1, "'user' given twice" },
	{ "rule a1 allow send referral \"unterminated", 1, "not closed" },
	{ "rule a1 allow send referral \"ok\" by visitation", 1, "after the reason" },
	{ "rule a1 allow send \"a\" \"b\"", 1, "after the reason" },
	{ "rule a1 allow send \"\"", 1, "empty reason" },
	{ "rule a1 allow audit referral", 1, "audit rules take no message kind" },
	{ "rule a1 allow send class health", 1, "'class' applies only to receive" },
	{ "rule a1 allow receive class health class care", 1, "'class' given twice" },
	{ "rule a1 allow receive class helth", 1, "did you mean 'health'" },
	{ "rule a1 allow receive class health by provider", 1, "receive rules name the sender with 'from'" },
	{ "rule a1 allow view to provider", 1, "does not apply to view rules" },
	{ "rule a1 allow audit from auditor", 1, "does not apply to audit rules" },
	{ "rule a1 allow receive user caseworker", 1, "'user' does not apply to receive" },
	{ "rule a1 allow send user clerk", 1, "a user role after 'user'" },
	{ "rule a1 allow send if assignment actve", 1, "did you mean 'active'" },
	{ "rule a1 allow send if approved nursin", 1, "did you mean 'nursing'" },
	{ "rule a1 allow send if approved any-name", 1, "did you mean 'any-named'" },
	{ "rule a1 allow send if approved nursing,", 1, "may not end with ','" },
	{ "rule a1 allow send if direction inbond", 1, "did you mean 'inbound'" },
	{ "rule a1 allow send if direction none", 1, "a direction after 'direction'" },
	{ "rule a1 allow send if assignment active if approved nursing", 1, "'if' given twice" },
	{ "rule a1 allow send if assignment active and assignment ended", 1, "'assignment' given twice" },
	{ "rule a1 allow send if approved meals and approved nursing", 1, "'approved' given twice" },
	{ "rule a1 allow send if direction inbound and direction outbound", 1, "'direction' given twice" },
	{ "rule a1 allow send if", 1, "expected a condition (assignment, approved or direction), found the end" },
	{ "rule a1 allow send if assignment active and", 1, "found the end of the rule" },
	{ "rule a1 allow send if colour red", 1, "unknown word 'colour'" },
	{ "rule a1 allow audit if assignment active", 1, "audit rules take no 'if'" },
	{ "rule default-deny allow send", 1, "reserved" },
	{ "rule -x allow send", 1, "rule id '-x' must be" },
	{ "rule aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa allow send", 1, "must be 1 to 31" },
	{ "rule a1 allow send referral \\ by visitation", 1, "backslash may only end a line" },
	{ "rule a1 allow send referral \\", 1, "nothing follows" },
	{ "rule a1 allow send referral; by visitation", 1, "unexpected character ';'" },
	{ "rule a1 allow send r\xc3\xa9" "ferral", 1, "unexpected byte 0xc3" },
	{ "rule a1 allow send \"tab\x01\"", 1, "control character" },
	{ "rule a1 allow send \"citizen 0101011234\"", 1, "CPR" },
	{ "rule a1 allow send \"citizen 010101-1234\"", 1, "CPR" },
	{ "rule a1 allow send visitation", 1, "party role 'visitation' needs 'by', 'to' or 'from'" },
	{ "rule a1 allow send by visitation referral", 1, "kinds follow the action directly" },
	{ "rule a1 allow send referral by visitation care_update", 1, "kinds follow the action once" },
	{ "rule a1 allow send by visitation cancelation", 1, "unknown word 'cancelation'" },
	{ "rule a1 allow send by visitation and to provider", 1, "unknown word 'and'" },
	{ "rule a1 allow send \"" "0123456789012345678901234567890123456789"
	  "0123456789012345678901234567890123456789" "0123456789012345678901234567890123456789"
	  "0123456789012345678901234567890123456789" "0123456789012345678901234567890123456789"
	  "x\"", 1, "longer than 200" },
	{ "rule a1 allow send aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 1,
	  "longer than 64" },
	/* Line numbers count comments, blank lines and continuations. */
	{ "# a comment\n\n   # indented comment\nrule a1 allow sendd\n", 4, "did you mean 'send'" },
	{ "rule a1 allow send \\\n  referral \\\n  by visitaton\n", 3, "did you mean 'visitation'" },
	{ "rule a1 allow send\nrule a2 allow fetch\r\nrule a1 deny view\n", 3,
	  "rule id 'a1' already used at t.policy:1" },
	{ "rule a1 allow send \\\n\n", 2, "continues the rule above" },
	{ "rule a1 allow send \\\n  # a comment\n  referral\n", 2, "continues the rule above" },
};
#define NBADS (sizeof(bads) / sizeof(bads[0]))

START_TEST(test_parse_errors)
{
	struct policy *p;
	struct why why;
	char prefix[64];
	size_t i;
	int r;

	for (i = 0; i < NBADS; i++) {
		p = (struct policy *)&why;  /* must be reset */
		why_clear(&why);
		r = policy_load_string("t.policy", bads[i].text, &p, &why);
		ck_assert_msg(r == HEGN_ERR_CONFIG, "case %zu (%s) loaded", i, bads[i].text);
		ck_assert_ptr_null(p);
		snprintf(prefix, sizeof(prefix), "t.policy:%d: ", bads[i].line);
		ck_assert_msg(strncmp(why.text, prefix, strlen(prefix)) == 0,
		    "case %zu: \"%s\" does not start with \"%s\"", i, why.text, prefix);
		ck_assert_msg(strstr(why.text, bads[i].needle) != NULL,
		    "case %zu: \"%s\" lacks \"%s\"", i, why.text, bads[i].needle);
		ck_assert(!has_digit_run(why.text));
	}
	/* A NUL byte inside a file cannot hide the rest of it. */
	ck_assert_int_eq(policy_load_string(NULL, "", &p, &why), HEGN_ERR_CONFIG);
	ck_assert_int_eq(policy_load_string("t", NULL, &p, NULL), HEGN_ERR_CONFIG);
}
END_TEST

START_TEST(test_comments_and_layout)
{
	const char *text =
	    "# leading comment\n"
	    "\n"
	    "\t  \n"
	    "rule c1 allow send referral , care_update by visitation to provider # trailing comment\n"
	    "rule c2 allow fetch referral \\\n"
	    "    to provider\n"
	    "\n"
	    "rule c3 allow receive class basic to provider \"reason with # and \\\\ inside\"\r\n"
	    "rule c4 allow view user caseworker \"r\"   # comment after a reason\n"
	    "rule c5 allow admin \"m\xc3\xa5 administrere\"\n"
	    "   # the end";
	struct policy *p = NULL;
	struct policy_decision d;
	struct policy_ctx c;
	struct why why = { 0 };

	ck_assert_msg(policy_load_string("t.policy", text, &p, &why) == 0, "%s", why.text);
	ck_assert_uint_eq(policy_rule_count(p), 5);
	ck_assert_str_eq(policy_rule_id(p, 1), "c2");

	memset(&c, 0, sizeof(c));
	c.action = POLICY_SEND;
	c.actor_role = V;
	c.peer_role = P;
	c.kind = MSG_CARE_UPDATE;
	ck_assert_int_eq(policy_decide(p, &c, &d), 0);
	ck_assert(d.allow);
	ck_assert_str_eq(d.rule_id, "c1");
	/* Without a written reason the rule as understood is the reason. */
	ck_assert_str_eq(d.reason,
	    "allow send referral,care_update by visitation to provider");
	c.kind = MSG_CANCELLATION;
	ck_assert_int_eq(policy_decide(p, &c, &d), 0);
	ck_assert(!d.allow);
	ck_assert_str_eq(d.rule_id, DD);

	c.action = POLICY_RECEIVE;
	c.kind = MSG_REFERRAL;
	c.data_class = CLASS_BASIC;
	ck_assert_int_eq(policy_decide(p, &c, &d), 0);
	ck_assert_str_eq(d.rule_id, "c3");
	ck_assert_str_eq(d.reason, "reason with # and \\\\ inside");

	/* 'to' in a fetch rule names the fetching party, like 'by'. */
	c.action = POLICY_FETCH;
	c.actor_role = P;
	c.peer_role = H;
	ck_assert_int_eq(policy_decide(p, &c, &d), 0);
	ck_assert_str_eq(d.rule_id, "c2");
	c.actor_role = V;
	ck_assert_int_eq(policy_decide(p, &c, &d), 0);
	ck_assert_str_eq(d.rule_id, DD);

	/* A reason may be written in Danish. */
	c.action = POLICY_ADMIN;
	ck_assert_int_eq(policy_decide(p, &c, &d), 0);
	ck_assert_str_eq(d.rule_id, "c5");
	ck_assert_str_eq(d.reason, "m\xc3\xa5 administrere");
	policy_free(p);
}
END_TEST

START_TEST(test_empty_denies)
{
	static const char *const empties[] = { "", "\n\n", "# only a comment\n# and another" };
	struct policy *p;
	struct policy_decision d;
	struct policy_ctx c;
	struct why why = { 0 };
	size_t i;
	int act, ar, u;

	for (i = 0; i <= sizeof(empties) / sizeof(empties[0]); i++) {
		p = NULL;
		if (i < sizeof(empties) / sizeof(empties[0])) {
			ck_assert_int_eq(policy_load_string("e.policy", empties[i], &p, &why), 0);
			ck_assert_uint_eq(policy_rule_count(p), 0);
		}
		/* i == last: no policy at all (NULL) denies as well. */
		for (act = 0; act < POLICY_ACTION_COUNT; act++)
		for (ar = 0; ar < ROLE_COUNT; ar++)
		for (u = 0; u < POLICY_USER_COUNT; u++) {
			memset(&c, 0, sizeof(c));
			c.action = act;
			c.actor_role = ar;
			c.user_role = u;
			c.assignment = POLICY_ASSIGN_ACTIVE;
			c.approvals = HOMECARE;
			ck_assert_int_eq(policy_decide(p, &c, &d), 0);
			ck_assert(!d.allow);
			ck_assert_str_eq(d.rule_id, DD);
			ck_assert_ptr_nonnull(strstr(d.reason, "no rule allows"));
		}
		ck_assert_uint_eq(policy_classes_for(p, &c, NULL), 0);
		policy_free(p);
	}
}
END_TEST

START_TEST(test_deny_overrides)
{
	/* An allow before and after a deny, and two allows: order decides only the naming. */
	const char *text =
	    "rule a-first allow send observation by provider\n"
	    "rule a-second allow send observation,time_usage\n"
	    "rule d-late deny send observation if assignment ended \"ended\"\n"
	    "rule a-third allow send observation if assignment ended\n"
	    "rule d-later deny send observation if assignment ended,none \"never\"\n";
	struct policy *p = NULL;
	struct policy_decision d;
	struct policy_ctx c;
	struct why why = { 0 };

	ck_assert_int_eq(policy_load_string("o.policy", text, &p, &why), 0);
	memset(&c, 0, sizeof(c));
	c.action = POLICY_SEND;
	c.actor_role = P;
	c.kind = MSG_OBSERVATION;
	c.assignment = POLICY_ASSIGN_ACTIVE;
	ck_assert_int_eq(policy_decide(p, &c, &d), 0);
	ck_assert(d.allow);
	ck_assert_str_eq(d.rule_id, "a-first");
	c.actor_role = V;
	ck_assert_int_eq(policy_decide(p, &c, &d), 0);
	ck_assert_str_eq(d.rule_id, "a-second");
	c.assignment = POLICY_ASSIGN_ENDED;
	ck_assert_int_eq(policy_decide(p, &c, &d), 0);
	ck_assert(!d.allow);
	ck_assert_str_eq(d.rule_id, "d-late");
	ck_assert_str_eq(d.reason, "ended");
	c.assignment = POLICY_ASSIGN_NONE;
	ck_assert_int_eq(policy_decide(p, &c, &d), 0);
	ck_assert(!d.allow);
	ck_assert_str_eq(d.rule_id, "d-later");
	policy_free(p);
}
END_TEST

START_TEST(test_conditions)
{
	const char *text =
	    "rule any allow send referral if approved any-named\n"
	    "rule all allow send care_update if approved all-named\n"
	    "rule list allow send cancellation if approved meals,nursing\n"
	    "rule in allow send observation if direction inbound\n"
	    "rule out allow send time_usage if direction outbound and assignment active,ended\n"
	    "rule kinds-any allow fetch any user none\n";
	struct policy *p = NULL;
	struct policy_decision d;
	struct policy_ctx c;
	struct why why = { 0 };
	static const struct {
		enum message_kind kind;
		const char *approvals, *services;
		int allow;
	} cases[] = {
		{ MSG_REFERRAL, "meals,nursing", "nursing,rehabilitation", 1 },
		{ MSG_REFERRAL, "meals", "nursing,rehabilitation", 0 },
		{ MSG_REFERRAL, "meals", NULL, 0 },
		{ MSG_REFERRAL, "meals", "", 0 },
		{ MSG_REFERRAL, NULL, "meals", 0 },
		{ MSG_REFERRAL, "nurs", "nursing", 0 },
		{ MSG_REFERRAL, "nursing", "nurs", 0 },
		{ MSG_CARE_UPDATE, "meals,nursing", "nursing , meals", 1 },
		{ MSG_CARE_UPDATE, "meals,nursing", "nursing,rehabilitation", 0 },
		{ MSG_CARE_UPDATE, "meals,nursing", ",,", 0 },
		{ MSG_CARE_UPDATE, "meals", "meals,", 1 },
		{ MSG_CANCELLATION, "practical_help, nursing", NULL, 1 },
		{ MSG_CANCELLATION, "practical_help", NULL, 0 },
		{ MSG_CANCELLATION, "nursingx,mealsy", NULL, 0 },
		{ MSG_CANCELLATION, "", NULL, 0 },
	};
	size_t i;

	ck_assert_msg(policy_load_string("c.policy", text, &p, &why) == 0, "%s", why.text);
	memset(&c, 0, sizeof(c));
	c.action = POLICY_SEND;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		c.kind = cases[i].kind;
		c.approvals = cases[i].approvals;
		c.services = cases[i].services;
		ck_assert_int_eq(policy_decide(p, &c, &d), 0);
		ck_assert_msg(d.allow == cases[i].allow, "case %zu: %s", i, d.reason);
	}
	c.kind = MSG_OBSERVATION;
	c.direction = POLICY_DIR_NONE;
	ck_assert_int_eq(policy_decide(p, &c, &d), 0);
	ck_assert(!d.allow);
	c.direction = POLICY_DIR_OUTBOUND;
	ck_assert_int_eq(policy_decide(p, &c, &d), 0);
	ck_assert(!d.allow);
	c.direction = POLICY_DIR_INBOUND;
	ck_assert_int_eq(policy_decide(p, &c, &d), 0);
	ck_assert_str_eq(d.rule_id, "in");
	c.kind = MSG_TIME_USAGE;
	c.direction = POLICY_DIR_OUTBOUND;
	c.assignment = POLICY_ASSIGN_NONE;
	ck_assert_int_eq(policy_decide(p, &c, &d), 0);
	ck_assert(!d.allow);
	c.assignment = POLICY_ASSIGN_ENDED;
	ck_assert_int_eq(policy_decide(p, &c, &d), 0);
	ck_assert_str_eq(d.rule_id, "out");

	c.action = POLICY_FETCH;
	c.kind = MSG_DEATH_NOTICE;
	ck_assert_int_eq(policy_decide(p, &c, &d), 0);
	ck_assert_str_eq(d.rule_id, "kinds-any");
	c.user_role = POLICY_USER_DISPATCHER;
	ck_assert_int_eq(policy_decide(p, &c, &d), 0);
	ck_assert(!d.allow);

	/* Citizen data never reaches a reason, even through the context's strings. */
	c.action = POLICY_SEND;
	c.kind = MSG_REFERRAL;
	c.approvals = "0101011234";
	c.services = "0202022345";
	ck_assert_int_eq(policy_decide(p, &c, &d), 0);
	ck_assert(!d.allow);
	ck_assert(!has_digit_run(d.reason));
	policy_free(p);
}
END_TEST

START_TEST(test_invalid_ctx)
{
	struct policy *p = load_defaults();
	struct policy_decision d;
	struct policy_ctx c, base;

	memset(&base, 0, sizeof(base));
	base.action = POLICY_AUDIT;
	base.actor_role = A;
	ck_assert_int_eq(policy_decide(p, &base, &d), 0);
	ck_assert(d.allow);

#define BAD(field, value) do {                                          \
		c = base;                                               \
		c.field = value;                                        \
		d.allow = 1;                                            \
		ck_assert_int_eq(policy_decide(p, &c, &d), HEGN_ERR_INVALID); \
		ck_assert(!d.allow);                                    \
		ck_assert_str_eq(d.rule_id, DD);                        \
	} while (0)
	BAD(action, POLICY_ACTION_COUNT);
	BAD(action, (enum policy_action)-1);
	BAD(actor_role, ROLE_COUNT);
	BAD(user_role, POLICY_USER_COUNT);
	BAD(peer_role, (enum party_role)-7);
	BAD(kind, MSG_KIND_COUNT);
	BAD(direction, POLICY_DIR_COUNT);
	BAD(assignment, POLICY_ASSIGN_COUNT);
	BAD(data_class, CLASS_COUNT);
#undef BAD
	ck_assert_int_eq(policy_decide(p, NULL, &d), HEGN_ERR_INVALID);
	ck_assert(!d.allow);
	policy_free(p);
}
END_TEST

/* A fresh temporary directory. */
static void
tmpdir(char *dir, size_t len)
{
	snprintf(dir, len, "/tmp/hegn-test-policy-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void
put(const char *dir, const char *name, const char *text, int mode)
{
	char path[4200];
	struct why why = { 0 };

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	ck_assert_msg(util_write_file(path, text, strlen(text), 0644, &why) == 0, "%s", why.text);
	ck_assert_int_eq(chmod(path, mode), 0);
}

static void
rmtree(const char *dir)
{
	char path[4200];
	struct dirent *de;
	DIR *d;

	if ((d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(dir);
}

START_TEST(test_load_dir)
{
	char dir[64], want[256];
	struct policy *p = NULL;
	struct why why = { 0 };

	tmpdir(dir, sizeof(dir));
	/* No files: refused, an empty directory is most likely a wrong path. */
	ck_assert_int_eq(policy_load_dir(dir, &p, &why), HEGN_ERR_CONFIG);
	ck_assert_ptr_nonnull(strstr(why.text, "no *.policy files"));
	ck_assert_ptr_null(p);

	put(dir, "README", "not a policy at all", 0644);
	put(dir, ".hidden.policy", "garbage", 0644);
	put(dir, "x.policy~", "garbage", 0644);
	put(dir, "20-b.policy", "rule b1 allow audit\n", 0644);
	put(dir, "10-a.policy", "rule a1 allow admin\nrule a2 allow view\n", 0644);
	ck_assert_msg(policy_load_dir(dir, &p, &why) == 0, "%s", why.text);
	ck_assert_uint_eq(policy_rule_count(p), 3);
	/* Name order: 10-a before 20-b. */
	ck_assert_str_eq(policy_rule_id(p, 0), "a1");
	ck_assert_str_eq(policy_rule_id(p, 2), "b1");
	policy_free(p);

	/* Duplicate ids across files name both places. */
	put(dir, "30-c.policy", "# c\nrule a2 deny view\n", 0644);
	ck_assert_int_eq(policy_load_dir(dir, &p, &why), HEGN_ERR_CONFIG);
	ck_assert_ptr_null(p);
	snprintf(want, sizeof(want), "%s/30-c.policy:2: rule id 'a2' already used at %s/10-a.policy:2",
	    dir, dir);
	ck_assert_str_eq(why.text, want);
	put(dir, "30-c.policy", "rule c1 deny view\n", 0644);

	/* A file others may write is refused, naming it. */
	put(dir, "40-d.policy", "rule d1 deny view\n", 0666);
	ck_assert_int_eq(policy_load_dir(dir, &p, &why), HEGN_ERR_CONFIG);
	ck_assert_ptr_nonnull(strstr(why.text, "40-d.policy"));
	ck_assert_ptr_nonnull(strstr(why.text, "writable"));
	put(dir, "40-d.policy", "rule d1 deny view\n", 0644);

	/* A syntax error in a later file names that file and line. */
	put(dir, "50-e.policy", "\n\nrule e1 allow sand\n", 0644);
	ck_assert_int_eq(policy_load_dir(dir, &p, &why), HEGN_ERR_CONFIG);
	snprintf(want, sizeof(want), "%s/50-e.policy:3: ", dir);
	ck_assert_msg(strncmp(why.text, want, strlen(want)) == 0, "%s", why.text);
	put(dir, "50-e.policy", "rule e1 allow send\n", 0644);

	/* A NUL byte is refused. */
	{
		char path[4200];
		struct why w2 = { 0 };

		snprintf(path, sizeof(path), "%s/60-f.policy", dir);
		ck_assert_int_eq(util_write_file(path, "rule f1 allow send\0rule f2", 26, 0644, &w2), 0);
		ck_assert_int_eq(policy_load_dir(dir, &p, &why), HEGN_ERR_CONFIG);
		ck_assert_ptr_nonnull(strstr(why.text, "NUL"));
		unlink(path);
	}
	ck_assert_msg(policy_load_dir(dir, &p, &why) == 0, "%s", why.text);
	ck_assert_uint_eq(policy_rule_count(p), 6);
	policy_free(p);

	rmtree(dir);
	ck_assert_int_eq(policy_load_dir(dir, &p, &why), HEGN_ERR_CONFIG);
	ck_assert_ptr_nonnull(strstr(why.text, dir));
	ck_assert_ptr_null(p);
}
END_TEST

/*
 * What `hegn policy show` prints is the policy as understood; fed back as
 * rules it must decide exactly as the original over the whole space.
 */
START_TEST(test_explain_roundtrip)
{
	struct policy *p = load_defaults(), *q = NULL;
	struct policy_decision d1, d2;
	struct policy_ctx c;
	struct why why = { 0 };
	char *text = NULL, *rules, *line, *save = NULL, *s;
	size_t len = 0, n = 0;
	FILE *f;
	int act, ar, u, pr, k, st, ap, cl;

	ck_assert_ptr_nonnull(f = open_memstream(&text, &len));
	ck_assert_int_eq(policy_explain(p, f), 0);
	fclose(f);
	ck_assert_ptr_nonnull(strstr(text, "00-base.policy:16: rule refer allow send referral by "
	    "visitation to provider user none,caseworker if approved all-named \"the visitation"));
	ck_assert_ptr_nonnull(strstr(text, "a matching deny rule wins"));
	ck_assert_ptr_nonnull(strstr(text, "rule min-provider-health allow receive class health to "
	    "provider if approved personal_care,nursing"));
	ck_assert_ptr_nonnull(strstr(text, "rule fetch-notice allow fetch admission_notice,"
	    "discharge_notice,leave_notice,death_notice by provider from visitation,hospital"));

	rules = calloc(1, len + 1);
	for (line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		if (line[0] == '#')
			continue;
		ck_assert_ptr_nonnull(s = strstr(line, ": rule "));
		strcat(rules, s + 2);
		strcat(rules, "\n");
		n++;
	}
	ck_assert_uint_eq(n, policy_rule_count(p));
	ck_assert_msg(policy_load_string("shown", rules, &q, &why) == 0, "%s", why.text);

	for (act = 0; act < POLICY_ACTION_COUNT; act++)
	for (ar = 0; ar < ROLE_COUNT; ar++)
	for (u = 0; u < POLICY_USER_COUNT; u++)
	for (pr = 0; pr < ROLE_COUNT; pr++)
	for (k = 0; k < MSG_KIND_COUNT; k++)
	for (st = 0; st < POLICY_ASSIGN_COUNT; st++)
	for (ap = 0; ap < (int)NAPPROVALS; ap++)
	for (cl = 0; cl < CLASS_COUNT; cl++) {
		memset(&c, 0, sizeof(c));
		c.action = act;
		c.actor_role = ar;
		c.user_role = u;
		c.peer_role = pr;
		c.kind = k;
		c.assignment = st;
		c.approvals = sweep_approvals[ap];
		c.services = ap % 2 ? "practical_help" : "practical_help,nursing";
		c.data_class = cl;
		c.direction = (act + ar + k) % POLICY_DIR_COUNT;
		ck_assert_int_eq(policy_decide(p, &c, &d1), 0);
		ck_assert_int_eq(policy_decide(q, &c, &d2), 0);
		ck_assert_int_eq(d1.allow, d2.allow);
		ck_assert_str_eq(d1.rule_id, d2.rule_id);
		ck_assert_str_eq(d1.reason, d2.reason);
	}

	/* The decision line `hegn policy check` prints. */
	free(text);
	text = NULL;
	ck_assert_ptr_nonnull(f = open_memstream(&text, &len));
	ck_assert_int_eq(policy_print_decision(&d1, f), 0);
	fclose(f);
	ck_assert_ptr_nonnull(strstr(text, d1.allow ? "allow (rule " : "deny (rule "));
	ck_assert_ptr_nonnull(strstr(text, d1.rule_id));

	/* The empty policy explains itself too. */
	free(text);
	text = NULL;
	ck_assert_ptr_nonnull(f = open_memstream(&text, &len));
	ck_assert_int_eq(policy_explain(NULL, f), 0);
	fclose(f);
	ck_assert_ptr_nonnull(strstr(text, "# 0 rules from 0 files"));
	free(text);
	free(rules);
	policy_free(q);
	policy_free(p);
}
END_TEST

START_TEST(test_names)
{
	enum policy_action a;
	enum policy_user_role u;
	enum policy_direction d;
	enum policy_assignment s;
	int i;

	for (i = 0; i < POLICY_ACTION_COUNT; i++) {
		ck_assert_int_eq(policy_action_from_name(policy_action_name(i), &a), 0);
		ck_assert_int_eq(a, i);
	}
	for (i = 0; i < POLICY_USER_COUNT; i++) {
		ck_assert_int_eq(policy_user_role_from_name(policy_user_role_name(i), &u), 0);
		ck_assert_int_eq(u, i);
	}
	for (i = 0; i < POLICY_DIR_COUNT; i++) {
		ck_assert_int_eq(policy_direction_from_name(policy_direction_name(i), &d), 0);
		ck_assert_int_eq(d, i);
	}
	for (i = 0; i < POLICY_ASSIGN_COUNT; i++) {
		ck_assert_int_eq(policy_assignment_from_name(policy_assignment_name(i), &s), 0);
		ck_assert_int_eq(s, i);
	}
	ck_assert_ptr_null(policy_action_name(POLICY_ACTION_COUNT));
	ck_assert_ptr_null(policy_user_role_name(POLICY_USER_COUNT));
	ck_assert_ptr_null(policy_direction_name(POLICY_DIR_COUNT));
	ck_assert_ptr_null(policy_assignment_name((enum policy_assignment)-1));
	ck_assert_int_eq(policy_action_from_name("Send", &a), HEGN_ERR_INVALID);
	ck_assert_int_eq(policy_action_from_name(NULL, &a), HEGN_ERR_INVALID);
	ck_assert_int_eq(policy_user_role_from_name("clerk", &u), HEGN_ERR_INVALID);
	ck_assert_str_eq(policy_action_name(POLICY_RECEIVE), "receive");
	ck_assert_str_eq(policy_user_role_name(POLICY_USER_DISPATCHER), "dispatcher");
	ck_assert_int_eq(policy_direction_to(ROLE_VISITATION), POLICY_DIR_INBOUND);
	ck_assert_int_eq(policy_direction_to(ROLE_AUDITOR), POLICY_DIR_INBOUND);
	ck_assert_int_eq(policy_direction_to(ROLE_PROVIDER), POLICY_DIR_OUTBOUND);
	ck_assert_int_eq(policy_direction_to(ROLE_HOSPITAL), POLICY_DIR_OUTBOUND);
	ck_assert_int_eq(policy_direction_to(ROLE_COUNT), POLICY_DIR_NONE);
}
END_TEST

/* Concurrency: threads decide with one shared policy while its creator lets go of it. */
struct worker {
	struct policy *p;
	int rounds;
	int wrong;
};

static void *
work(void *arg)
{
	struct worker *w = arg;
	struct policy_decision d, per[CLASS_COUNT];
	struct policy_ctx c;
	size_t i;
	int n;

	for (n = 0; n < w->rounds; n++) {
		for (i = 0; i < NROWS; i++) {
			row_ctx(&rows[i], &c);
			if (policy_decide(w->p, &c, &d) != 0 || d.allow != rows[i].allow ||
			    strcmp(d.rule_id, rows[i].rule) != 0)
				w->wrong++;
		}
		row_ctx(&rows[0], &c);
		c.approvals = n % 2 ? HOVMAND : HOMECARE;
		if (policy_classes_for(w->p, &c, per) != (n % 2 ? 3u : 7u))
			w->wrong++;
	}
	policy_free(w->p);
	return NULL;
}

START_TEST(test_threads)
{
	struct policy *p = load_defaults();
	struct worker w[4];
	pthread_t t[4];
	int i;

	for (i = 0; i < 4; i++) {
		w[i].p = policy_ref(p);
		w[i].rounds = 300;
		w[i].wrong = 0;
		ck_assert_int_eq(pthread_create(&t[i], NULL, work, &w[i]), 0);
	}
	/* As a reload would: drop our reference while the workers still decide. */
	policy_free(p);
	for (i = 0; i < 4; i++) {
		ck_assert_int_eq(pthread_join(t[i], NULL), 0);
		ck_assert_int_eq(w[i].wrong, 0);
	}
	ck_assert_ptr_null(policy_ref(NULL));
	policy_free(NULL);
}
END_TEST

static Suite *
policy_suite(void)
{
	Suite *s = suite_create("policy");
	TCase *tc = tcase_create("policy");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_default_table);
	tcase_add_test(tc, test_default_invariants);
	tcase_add_test(tc, test_classes_for);
	tcase_add_test(tc, test_parse_errors);
	tcase_add_test(tc, test_comments_and_layout);
	tcase_add_test(tc, test_empty_denies);
	tcase_add_test(tc, test_deny_overrides);
	tcase_add_test(tc, test_conditions);
	tcase_add_test(tc, test_invalid_ctx);
	tcase_add_test(tc, test_load_dir);
	tcase_add_test(tc, test_explain_roundtrip);
	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_threads);
	suite_add_tcase(s, tc);
	return s;
}

TESTLIB_MAIN(policy_suite)
