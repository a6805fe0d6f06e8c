#include "config.h"

#include <sys/stat.h>

#include <ftw.h>
#include <stdint.h>
#include <unistd.h>

#include "assign.h"
#include "err.h"
#include "store.h"
#include "testlib.h"
#include "util.h"

/* The directory the tests of a case work under; removed by the fixture. */
static char base[] = "/tmp/hegn-test-assign-XXXXXX";

/* The citizens, as keyed hashes (the module never sees a CPR). */
static char cit_a[65], cit_b[65];

#define NOW 1795772760000LL

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void
base_setup(void)
{
	snprintf(base, sizeof(base), "/tmp/hegn-test-assign-XXXXXX");
	if (mkdtemp(base) == NULL) {
		perror("mkdtemp");
		exit(1);
	}
	util_sha256_hex("citizen-a", 9, cit_a);
	util_sha256_hex("citizen-b", 9, cit_b);
}

static void
base_teardown(void)
{
	nftw(base, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh store for the calling test, with a write transaction on it. */
static struct store *
open_fresh(const char *name, struct store_tx **tx)
{
	char path[512];
	struct store *s = NULL;
	struct why why = { 0 };

	snprintf(path, sizeof(path), "%s/%s-%ld.db", base, name, (long)getpid());
	ck_assert_msg(store_open(path, &s, &why) == 0, "store_open: %s", why.text);
	ck_assert_msg(store_begin(s, 1, tx, &why) == 0, "begin: %s", why.text);
	return s;
}

static void
done(struct store *s, struct store_tx *tx)
{
	store_rollback(tx);
	store_close(s);
}

static void
refer_ok(struct store_tx *tx, const char *cit, const char *provider, const char *services,
    const char *from, const char *to, const char *source)
{
	struct why why = { 0 };
	int r;

	r = assign_refer(tx, cit, provider, services, from, to, source, NOW, &why);
	ck_assert_msg(r == 0, "assign_refer %s %s: %s", provider, services, why.text);
}

/* The rows for cit (and provider, when not NULL); free() the array. */
static struct store_assignment *
rows_of(struct store_tx *tx, const char *cit, const char *provider, size_t *n)
{
	struct store_assignment *a = NULL;
	struct why why = { 0 };

	ck_assert_msg(store_assignment_list(tx, cit, provider, &a, n, &why) == 0, "list: %s",
	    why.text);
	return a;
}

static enum assign_state
state_on(struct store_tx *tx, const char *cit, const char *provider, const char *date,
    char services[257])
{
	enum assign_state st = ASSIGN_ACTIVE;
	struct why why = { 0 };
	char tmp[257];

	if (services == NULL)
		services = tmp;
	ck_assert_msg(assign_state_of(tx, cit, provider, date, &st, services, &why) == 0,
	    "assign_state_of: %s", why.text);
	if (st != ASSIGN_ACTIVE)
		ck_assert_str_eq(services, "");
	return st;
}

START_TEST(test_names_and_today)
{
	char today[11];
	int y, m, d;

	ck_assert_str_eq(assign_state_name(ASSIGN_NONE), "none");
	ck_assert_str_eq(assign_state_name(ASSIGN_ACTIVE), "active");
	ck_assert_str_eq(assign_state_name(ASSIGN_ENDED), "ended");
	ck_assert_str_eq(assign_state_name((enum assign_state)42), "none");
	assign_today(today);
	ck_assert_int_eq(strlen(today), 10);
	ck_assert_int_eq(util_parse_date(today, &y, &m, &d), 0);
}
END_TEST

START_TEST(test_refer_creates)
{
	struct store_tx *tx = NULL;
	struct store *s = open_fresh("creates", &tx);
	struct store_assignment *a;
	char services[257];
	size_t n = 0;

	ck_assert_int_eq(state_on(tx, cit_a, "hovmand-care", "2026-06-01", NULL), ASSIGN_NONE);
	refer_ok(tx, cit_a, "hovmand-care", "practical_help", "2026-01-01", NULL, "msg-1");
	a = rows_of(tx, cit_a, NULL, &n);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(a[0].citizen_ref, cit_a);
	ck_assert_str_eq(a[0].provider, "hovmand-care");
	ck_assert_str_eq(a[0].services, "practical_help");
	ck_assert_str_eq(a[0].from_date, "2026-01-01");
	ck_assert_str_eq(a[0].to_date, "");
	ck_assert_str_eq(a[0].source, "msg-1");
	ck_assert_str_eq(a[0].end_reason, "");
	ck_assert_int_eq(a[0].created_ms, NOW);
	free(a);

	ck_assert_int_eq(state_on(tx, cit_a, "hovmand-care", "2026-01-01", services),
	    ASSIGN_ACTIVE);
	ck_assert_str_eq(services, "practical_help");
	/* Open-ended: still active far ahead. */
	ck_assert_int_eq(state_on(tx, cit_a, "hovmand-care", "2031-12-31", NULL), ASSIGN_ACTIVE);
	/* Another provider, another citizen: nothing. */
	ck_assert_int_eq(state_on(tx, cit_a, "solsikken", "2026-06-01", NULL), ASSIGN_NONE);
	ck_assert_int_eq(state_on(tx, cit_b, "hovmand-care", "2026-06-01", NULL), ASSIGN_NONE);
	done(s, tx);
}
END_TEST

START_TEST(test_refer_extends)
{
	struct store_tx *tx = NULL;
	struct store *s = open_fresh("extends", &tx);
	struct store_assignment *a;
	char services[257];
	size_t n = 0;

	refer_ok(tx, cit_a, "hovmand-care", "practical_help", "2026-02-01", "2026-06-30", "msg-1");
	/* Overlapping, earlier start, later end, one new service and one known. */
	refer_ok(tx, cit_a, "hovmand-care", "personal_care,practical_help", "2026-01-15",
	    "2026-09-30", "msg-2");
	a = rows_of(tx, cit_a, "hovmand-care", &n);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(a[0].services, "practical_help,personal_care");
	ck_assert_str_eq(a[0].from_date, "2026-01-15");
	ck_assert_str_eq(a[0].to_date, "2026-09-30");
	ck_assert_str_eq(a[0].source, "msg-2");
	free(a);

	/* A narrower referral never shrinks what is there. */
	refer_ok(tx, cit_a, "hovmand-care", "meals", "2026-03-01", "2026-04-30", "msg-3");
	a = rows_of(tx, cit_a, "hovmand-care", &n);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(a[0].services, "practical_help,personal_care,meals");
	ck_assert_str_eq(a[0].from_date, "2026-01-15");
	ck_assert_str_eq(a[0].to_date, "2026-09-30");
	free(a);

	/* An open end widens a closed one. */
	refer_ok(tx, cit_a, "hovmand-care", "meals", "2026-05-01", "", "msg-4");
	a = rows_of(tx, cit_a, "hovmand-care", &n);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(a[0].to_date, "");
	free(a);
	ck_assert_int_eq(state_on(tx, cit_a, "hovmand-care", "2027-01-01", services),
	    ASSIGN_ACTIVE);
	ck_assert_str_eq(services, "practical_help,personal_care,meals");

	/* Another provider for the same citizen gets a row of its own. */
	refer_ok(tx, cit_a, "solsikken", "nursing", "2026-02-01", NULL, "msg-5");
	a = rows_of(tx, cit_a, NULL, &n);
	ck_assert_uint_eq(n, 2);
	free(a);
	done(s, tx);
}
END_TEST

START_TEST(test_refer_after_end_is_new)
{
	struct store_tx *tx = NULL;
	struct store *s = open_fresh("renew", &tx);
	struct store_assignment *a;
	struct why why = { 0 };
	size_t n = 0;

	/* A period that lapsed before the new referral starts is not reopened. */
	refer_ok(tx, cit_a, "hovmand-care", "practical_help", "2026-01-01", "2026-02-28", "msg-1");
	refer_ok(tx, cit_a, "hovmand-care", "meals", "2026-05-01", NULL, "msg-2");
	a = rows_of(tx, cit_a, "hovmand-care", &n);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(a[0].services, "practical_help");
	ck_assert_str_eq(a[0].to_date, "2026-02-28");
	ck_assert_str_eq(a[1].services, "meals");
	ck_assert_str_eq(a[1].from_date, "2026-05-01");
	free(a);
	ck_assert_int_eq(state_on(tx, cit_a, "hovmand-care", "2026-03-15", NULL), ASSIGN_ENDED);

	/* Nor is one that was ended: a referral after a cancellation starts afresh. */
	ck_assert_int_eq(assign_end(tx, cit_a, "hovmand-care", NULL, "2026-06-30", "cancellation",
	    "msg-3", NOW, &why), 0);
	refer_ok(tx, cit_a, "hovmand-care", "personal_care", "2026-06-15", NULL, "msg-4");
	a = rows_of(tx, cit_a, "hovmand-care", &n);
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(a[1].end_reason, "cancellation");
	ck_assert_str_eq(a[1].to_date, "2026-06-30");
	ck_assert_str_eq(a[2].services, "personal_care");
	ck_assert_str_eq(a[2].end_reason, "");
	free(a);
	done(s, tx);
}
END_TEST

START_TEST(test_refer_refusals)
{
	struct store_tx *tx = NULL;
	struct store *s = open_fresh("refusals", &tx);
	struct store_assignment *a;
	struct why why = { 0 };
	size_t n = 0;

	ck_assert_int_eq(assign_refer(tx, cit_a, "hovmand-care", "meals", NULL, NULL, "msg-1",
	    NOW, &why), HEGN_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why.text, "from"));
	ck_assert_int_eq(assign_refer(tx, cit_a, "hovmand-care", "meals", "2026-02-30", NULL,
	    "msg-1", NOW, &why), HEGN_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why.text, "from"));
	ck_assert_int_eq(assign_refer(tx, cit_a, "hovmand-care", "meals", "2026-01-01", "soon",
	    "msg-1", NOW, &why), HEGN_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why.text, "to"));
	ck_assert_int_eq(assign_refer(tx, cit_a, "hovmand-care", "meals", "2026-03-01",
	    "2026-02-28", "msg-1", NOW, &why), HEGN_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why.text, "to"));
	ck_assert_int_eq(assign_refer(tx, cit_a, "hovmand-care", "", "2026-03-01", NULL, "msg-1",
	    NOW, &why), HEGN_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why.text, "services"));
	ck_assert_int_eq(assign_end(tx, cit_a, NULL, NULL, "31-12-2026", "cancellation", "msg-2",
	    NOW, &why), HEGN_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why.text, "date"));
	a = rows_of(tx, cit_a, NULL, &n);
	ck_assert_uint_eq(n, 0);
	free(a);
	done(s, tx);
}
END_TEST

START_TEST(test_state_by_date)
{
	struct store_tx *tx = NULL;
	struct store *s = open_fresh("state", &tx);
	char services[257];

	refer_ok(tx, cit_a, "hovmand-care", "practical_help,meals", "2026-03-01", "2026-05-31",
	    "msg-1");
	ck_assert_int_eq(state_on(tx, cit_a, "hovmand-care", "2026-02-28", services), ASSIGN_NONE);
	ck_assert_int_eq(state_on(tx, cit_a, "hovmand-care", "2026-03-01", services),
	    ASSIGN_ACTIVE);
	ck_assert_str_eq(services, "practical_help,meals");
	ck_assert_int_eq(state_on(tx, cit_a, "hovmand-care", "2026-04-15", NULL), ASSIGN_ACTIVE);
	/* Both ends are inclusive. */
	ck_assert_int_eq(state_on(tx, cit_a, "hovmand-care", "2026-05-31", NULL), ASSIGN_ACTIVE);
	ck_assert_int_eq(state_on(tx, cit_a, "hovmand-care", "2026-06-01", services),
	    ASSIGN_ENDED);
	ck_assert_int_eq(state_on(tx, cit_a, "hovmand-care", "2030-01-01", NULL), ASSIGN_ENDED);

	/* An ended row beside an active one: active wins, whatever the order. */
	refer_ok(tx, cit_a, "hovmand-care", "nursing", "2026-08-01", NULL, "msg-2");
	ck_assert_int_eq(state_on(tx, cit_a, "hovmand-care", "2026-07-01", NULL), ASSIGN_ENDED);
	ck_assert_int_eq(state_on(tx, cit_a, "hovmand-care", "2026-08-01", services),
	    ASSIGN_ACTIVE);
	ck_assert_str_eq(services, "nursing");
	done(s, tx);
}
END_TEST

START_TEST(test_providers)
{
	struct store_tx *tx = NULL;
	struct store *s = open_fresh("providers", &tx);
	struct store_assignment row;
	char (*p)[65] = NULL;
	struct why why = { 0 };
	size_t n = 42;

	ck_assert_int_eq(assign_providers(tx, cit_a, "2026-06-01", &p, &n, &why), 0);
	ck_assert_uint_eq(n, 0);
	free(p);

	refer_ok(tx, cit_a, "hovmand-care", "practical_help", "2026-01-01", NULL, "msg-1");
	refer_ok(tx, cit_a, "solsikken", "nursing", "2026-01-01", "2026-03-31", "msg-2");
	refer_ok(tx, cit_a, "fremtid-pleje", "meals", "2027-01-01", NULL, "msg-3");
	refer_ok(tx, cit_b, "other-care", "meals", "2026-01-01", NULL, "msg-4");
	/* Two overlapping rows for one provider (made by hand) are listed once. */
	memset(&row, 0, sizeof(row));
	snprintf(row.citizen_ref, sizeof(row.citizen_ref), "%s", cit_a);
	snprintf(row.provider, sizeof(row.provider), "hovmand-care");
	snprintf(row.services, sizeof(row.services), "nursing");
	snprintf(row.from_date, sizeof(row.from_date), "2026-05-01");
	snprintf(row.source, sizeof(row.source), "manual:test");
	ck_assert_msg(store_assignment_insert(tx, &row, &why) == 0, "%s", why.text);

	ck_assert_int_eq(assign_providers(tx, cit_a, "2026-06-01", &p, &n, &why), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(p[0], "hovmand-care");
	free(p);

	ck_assert_int_eq(assign_providers(tx, cit_a, "2026-02-01", &p, &n, &why), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(p[0], "hovmand-care");
	ck_assert_str_eq(p[1], "solsikken");
	free(p);

	ck_assert_int_eq(assign_providers(tx, cit_a, "2027-02-01", &p, &n, &why), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(p[0], "hovmand-care");
	ck_assert_str_eq(p[1], "fremtid-pleje");
	free(p);

	ck_assert_int_eq(assign_providers(tx, cit_a, "2025-12-31", &p, &n, &why), 0);
	ck_assert_uint_eq(n, 0);
	free(p);
	done(s, tx);
}
END_TEST

START_TEST(test_end_all_services)
{
	struct store_tx *tx = NULL;
	struct store *s = open_fresh("endall", &tx);
	struct store_assignment *a;
	struct why why = { 0 };
	size_t n = 0;

	refer_ok(tx, cit_a, "hovmand-care", "practical_help,personal_care", "2026-01-01", NULL,
	    "msg-1");
	ck_assert_int_eq(assign_end(tx, cit_a, "hovmand-care", NULL, "2026-05-31", "cancellation",
	    "msg-2", NOW + 1, &why), 0);
	a = rows_of(tx, cit_a, NULL, &n);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(a[0].from_date, "2026-01-01");
	ck_assert_str_eq(a[0].to_date, "2026-05-31");
	ck_assert_str_eq(a[0].end_reason, "cancellation");
	ck_assert_str_eq(a[0].source, "msg-2");
	ck_assert_str_eq(a[0].services, "practical_help,personal_care");
	ck_assert_int_eq(a[0].updated_ms, NOW + 1);
	free(a);
	ck_assert_int_eq(state_on(tx, cit_a, "hovmand-care", "2026-05-31", NULL), ASSIGN_ACTIVE);
	ck_assert_int_eq(state_on(tx, cit_a, "hovmand-care", "2026-06-01", NULL), ASSIGN_ENDED);

	/* "" means all services too. */
	refer_ok(tx, cit_a, "solsikken", "nursing", "2026-01-01", NULL, "msg-3");
	ck_assert_int_eq(assign_end(tx, cit_a, "solsikken", "", "2026-02-28", "cancellation",
	    "msg-4", NOW, &why), 0);
	a = rows_of(tx, cit_a, "solsikken", &n);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(a[0].to_date, "2026-02-28");
	free(a);

	/* Nothing left to end. */
	ck_assert_int_eq(assign_end(tx, cit_a, "hovmand-care", NULL, "2026-07-01", "cancellation",
	    "msg-5", NOW, &why), HEGN_ERR_NOT_FOUND);
	ck_assert_int_eq(why.code, HEGN_ERR_NOT_FOUND);
	ck_assert_ptr_nonnull(strstr(why.text, "no active assignment"));
	done(s, tx);
}
END_TEST

START_TEST(test_end_some_services)
{
	struct store_tx *tx = NULL;
	struct store *s = open_fresh("endsome", &tx);
	struct store_assignment *a;
	struct why why = { 0 };
	char services[257];
	size_t n = 0;

	refer_ok(tx, cit_a, "hovmand-care", "practical_help,personal_care,meals", "2026-01-01",
	    "2027-06-30", "msg-1");
	ck_assert_int_eq(assign_end(tx, cit_a, "hovmand-care", "personal_care", "2026-12-31",
	    "cancellation", "msg-2", NOW, &why), 0);
	a = rows_of(tx, cit_a, "hovmand-care", &n);
	ck_assert_uint_eq(n, 2);
	/* The old row ends with every service it had... */
	ck_assert_str_eq(a[0].services, "practical_help,personal_care,meals");
	ck_assert_str_eq(a[0].from_date, "2026-01-01");
	ck_assert_str_eq(a[0].to_date, "2026-12-31");
	ck_assert_str_eq(a[0].end_reason, "cancellation");
	/* ...and the rest go on from the next day (across the year) to the old end. */
	ck_assert_str_eq(a[1].services, "practical_help,meals");
	ck_assert_str_eq(a[1].from_date, "2027-01-01");
	ck_assert_str_eq(a[1].to_date, "2027-06-30");
	ck_assert_str_eq(a[1].end_reason, "");
	ck_assert_str_eq(a[1].source, "msg-2");
	free(a);

	ck_assert_int_eq(state_on(tx, cit_a, "hovmand-care", "2026-12-31", services),
	    ASSIGN_ACTIVE);
	ck_assert(assign_services_cover(services, "personal_care"));
	ck_assert_int_eq(state_on(tx, cit_a, "hovmand-care", "2027-01-01", services),
	    ASSIGN_ACTIVE);
	ck_assert_str_eq(services, "practical_help,meals");
	ck_assert(!assign_services_cover(services, "personal_care"));
	ck_assert_int_eq(state_on(tx, cit_a, "hovmand-care", "2027-07-01", NULL), ASSIGN_ENDED);

	/* Ending the remaining services leaves no new row behind. */
	ck_assert_int_eq(assign_end(tx, cit_a, "hovmand-care", "meals,practical_help",
	    "2027-02-28", "cancellation", "msg-3", NOW, &why), 0);
	a = rows_of(tx, cit_a, "hovmand-care", &n);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(a[1].to_date, "2027-02-28");
	ck_assert_str_eq(a[1].end_reason, "cancellation");
	free(a);
	ck_assert_int_eq(state_on(tx, cit_a, "hovmand-care", "2027-03-01", NULL), ASSIGN_ENDED);
	done(s, tx);
}
END_TEST

START_TEST(test_end_service_not_held)
{
	struct store_tx *tx = NULL;
	struct store *s = open_fresh("nothold", &tx);
	struct store_assignment *a;
	struct why why = { 0 };
	size_t n = 0;

	/* Ending a service the provider does not deliver changes nothing. */
	refer_ok(tx, cit_a, "hovmand-care", "practical_help", "2026-01-01", NULL, "msg-1");
	ck_assert_int_eq(assign_end(tx, cit_a, "hovmand-care", "meals", "2026-05-31",
	    "cancellation", "msg-2", NOW, &why), HEGN_ERR_NOT_FOUND);
	a = rows_of(tx, cit_a, NULL, &n);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(a[0].to_date, "");
	ck_assert_str_eq(a[0].end_reason, "");
	free(a);

	/* Ending some services on the last day leaves no empty row behind. */
	refer_ok(tx, cit_b, "hovmand-care", "practical_help,meals", "2026-01-01", "2026-05-31",
	    "msg-3");
	ck_assert_int_eq(assign_end(tx, cit_b, "hovmand-care", "meals", "2026-05-31",
	    "cancellation", "msg-4", NOW, &why), 0);
	a = rows_of(tx, cit_b, NULL, &n);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(a[0].end_reason, "cancellation");
	free(a);
	done(s, tx);
}
END_TEST

START_TEST(test_end_nothing_active)
{
	struct store_tx *tx = NULL;
	struct store *s = open_fresh("endnone", &tx);
	struct store_assignment *a;
	struct why why = { 0 };
	size_t n = 0;

	/* No assignment at all. */
	ck_assert_int_eq(assign_end(tx, cit_a, "hovmand-care", NULL, "2026-05-31", "cancellation",
	    "msg-1", NOW, &why), HEGN_ERR_NOT_FOUND);
	ck_assert_int_eq(assign_end(tx, cit_a, NULL, NULL, "2026-05-31", "death notice", "msg-1",
	    NOW, &why), HEGN_ERR_NOT_FOUND);

	/* One that lapsed before the end date. */
	refer_ok(tx, cit_a, "hovmand-care", "practical_help", "2026-01-01", "2026-03-31", "msg-2");
	ck_assert_int_eq(assign_end(tx, cit_a, "hovmand-care", NULL, "2026-05-31", "cancellation",
	    "msg-3", NOW, &why), HEGN_ERR_NOT_FOUND);

	/* Another provider's: untouched. */
	refer_ok(tx, cit_a, "solsikken", "nursing", "2026-01-01", NULL, "msg-4");
	ck_assert_int_eq(assign_end(tx, cit_a, "hovmand-care", NULL, "2026-05-31", "cancellation",
	    "msg-5", NOW, &why), HEGN_ERR_NOT_FOUND);
	a = rows_of(tx, cit_a, NULL, &n);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(a[0].end_reason, "");
	ck_assert_str_eq(a[0].to_date, "2026-03-31");
	ck_assert_str_eq(a[1].end_reason, "");
	ck_assert_str_eq(a[1].to_date, "");
	free(a);
	done(s, tx);
}
END_TEST

START_TEST(test_death_ends_every_provider)
{
	struct store_tx *tx = NULL;
	struct store *s = open_fresh("death", &tx);
	struct store_assignment *a;
	struct why why = { 0 };
	char (*p)[65] = NULL;
	size_t n = 0, i;

	refer_ok(tx, cit_a, "hovmand-care", "practical_help", "2026-01-01", NULL, "msg-1");
	refer_ok(tx, cit_a, "solsikken", "nursing", "2026-02-01", "2026-12-31", "msg-2");
	/* Referred to start after the death: it must never become active. */
	refer_ok(tx, cit_a, "fremtid-pleje", "meals", "2026-07-01", NULL, "msg-3");
	refer_ok(tx, cit_b, "hovmand-care", "practical_help", "2026-01-01", NULL, "msg-4");

	ck_assert_int_eq(assign_end(tx, cit_a, NULL, NULL, "2026-06-10", "death notice", "msg-5",
	    NOW, &why), 0);
	a = rows_of(tx, cit_a, NULL, &n);
	ck_assert_uint_eq(n, 3);
	for (i = 0; i < n; i++) {
		ck_assert_str_eq(a[i].end_reason, "death notice");
		ck_assert_str_eq(a[i].source, "msg-5");
	}
	free(a);
	ck_assert_int_eq(assign_providers(tx, cit_a, "2026-06-10", &p, &n, &why), 0);
	ck_assert_uint_eq(n, 2);
	free(p);
	ck_assert_int_eq(assign_providers(tx, cit_a, "2026-06-11", &p, &n, &why), 0);
	ck_assert_uint_eq(n, 0);
	free(p);
	ck_assert_int_eq(assign_providers(tx, cit_a, "2026-07-01", &p, &n, &why), 0);
	ck_assert_uint_eq(n, 0);
	free(p);
	ck_assert_int_eq(state_on(tx, cit_a, "fremtid-pleje", "2026-07-01", NULL), ASSIGN_ENDED);
	ck_assert_int_eq(state_on(tx, cit_a, "solsikken", "2026-08-01", NULL), ASSIGN_ENDED);

	/* The other citizen keeps the provider. */
	ck_assert_int_eq(state_on(tx, cit_b, "hovmand-care", "2026-07-01", NULL), ASSIGN_ACTIVE);
	done(s, tx);
}
END_TEST

START_TEST(test_rollback_undoes)
{
	struct store_tx *tx = NULL;
	struct store *s = open_fresh("rollback", &tx);
	struct store_assignment *a;
	size_t n = 0;

	/* The functions work inside the caller's transaction. */
	refer_ok(tx, cit_a, "hovmand-care", "practical_help", "2026-01-01", NULL, "msg-1");
	store_rollback(tx);
	tx = NULL;
	{
		struct why why = { 0 };

		ck_assert_msg(store_begin(s, 0, &tx, &why) == 0, "begin: %s", why.text);
	}
	a = rows_of(tx, cit_a, NULL, &n);
	ck_assert_uint_eq(n, 0);
	ck_assert_ptr_null(a);
	done(s, tx);
}
END_TEST

START_TEST(test_services_cover)
{
	ck_assert(assign_services_cover("practical_help,personal_care,meals", "meals"));
	ck_assert(assign_services_cover("practical_help,personal_care,meals",
	    "meals,practical_help"));
	ck_assert(!assign_services_cover("practical_help,meals", "meals,nursing"));
	ck_assert(!assign_services_cover("", "meals"));
	ck_assert(assign_services_cover("", ""));
	ck_assert(assign_services_cover("meals", ""));
	/* Whole names only: neither a prefix nor an extension matches. */
	ck_assert(!assign_services_cover("practical_help", "practical"));
	ck_assert(!assign_services_cover("practical", "practical_help"));
	ck_assert(!assign_services_cover("meals_extra", "meals"));
	/* Empty items are no demand. */
	ck_assert(assign_services_cover("meals,nursing", "meals,,nursing,"));
	ck_assert(!assign_services_cover("meals,nursing", ",personal_care"));
}
END_TEST

static Suite *
assign_suite(void)
{
	Suite *s = suite_create("assign");
	TCase *tc = tcase_create("core");

	tcase_add_unchecked_fixture(tc, base_setup, base_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_names_and_today);
	tcase_add_test(tc, test_refer_creates);
	tcase_add_test(tc, test_refer_extends);
	tcase_add_test(tc, test_refer_after_end_is_new);
	tcase_add_test(tc, test_refer_refusals);
	tcase_add_test(tc, test_state_by_date);
	tcase_add_test(tc, test_providers);
	tcase_add_test(tc, test_end_all_services);
	tcase_add_test(tc, test_end_some_services);
	tcase_add_test(tc, test_end_service_not_held);
	tcase_add_test(tc, test_end_nothing_active);
	tcase_add_test(tc, test_death_ends_every_provider);
	tcase_add_test(tc, test_rollback_undoes);
	tcase_add_test(tc, test_services_cover);
	suite_add_tcase(s, tc);
	return s;
}

TESTLIB_MAIN(assign_suite)
