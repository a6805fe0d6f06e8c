#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <pthread.h>
#include <stdio.h>

#include "err.h"
#include "ratelimit.h"
#include "testlib.h"

/* A burst is served, the next request is refused, and a token comes back on time. */
START_TEST(test_burst_then_refill)
{
	struct ratelimit *rl = ratelimit_new(60, 5);
	struct why why = { 0 };
	unsigned int ra = 99;
	int i;

	for (i = 0; i < 5; i++) {
		ck_assert_int_eq(ratelimit_take(rl, "hovmand-care", 1000, &ra, &why), 0);
		ck_assert_uint_eq(ra, 0);
	}
	ck_assert_int_eq(ratelimit_take(rl, "hovmand-care", 1000, &ra, &why), HEGN_ERR_RATE);
	/* 60 a minute: one a second. */
	ck_assert_uint_eq(ra, 1);
	ck_assert_ptr_nonnull(strstr(why.text, "60 requests a minute"));
	ck_assert_ptr_nonnull(strstr(why.text, "hovmand-care"));
	/* 999 ms later the token is not whole yet; at 1000 ms it is. */
	ck_assert_int_eq(ratelimit_take(rl, "hovmand-care", 1999, &ra, &why), HEGN_ERR_RATE);
	ck_assert_uint_eq(ra, 1);
	ck_assert_int_eq(ratelimit_take(rl, "hovmand-care", 2000, &ra, &why), 0);
	ck_assert_int_eq(ratelimit_take(rl, "hovmand-care", 2000, &ra, &why), HEGN_ERR_RATE);
	ratelimit_free(rl);
}
END_TEST

/* Retry-After is the whole seconds until one token is back, rounded up. */
START_TEST(test_retry_after)
{
	struct ratelimit *rl = ratelimit_new(2, 1);     /* one every 30 s */
	unsigned int ra = 0;

	ck_assert_int_eq(ratelimit_take(rl, "a", 0, &ra, NULL), 0);
	ck_assert_int_eq(ratelimit_take(rl, "a", 0, &ra, NULL), HEGN_ERR_RATE);
	ck_assert_uint_eq(ra, 30);
	ck_assert_int_eq(ratelimit_take(rl, "a", 10500, &ra, NULL), HEGN_ERR_RATE);
	ck_assert_uint_eq(ra, 20);      /* 19.5 s rounds up */
	ck_assert_int_eq(ratelimit_take(rl, "a", 29999, &ra, NULL), HEGN_ERR_RATE);
	ck_assert_uint_eq(ra, 1);
	ck_assert_int_eq(ratelimit_take(rl, "a", 30000, &ra, NULL), 0);
	/* Refused requests took nothing: exactly one more after another 30 s. */
	ck_assert_int_eq(ratelimit_take(rl, "a", 60000, &ra, NULL), 0);
	ck_assert_int_eq(ratelimit_take(rl, "a", 60000, &ra, NULL), HEGN_ERR_RATE);
	ratelimit_free(rl);
}
END_TEST

/* Parties have their own buckets: one party's flood does not starve another. */
START_TEST(test_per_key)
{
	struct ratelimit *rl = ratelimit_new(10, 2);
	unsigned int ra;

	ck_assert_int_eq(ratelimit_take(rl, "a", 0, &ra, NULL), 0);
	ck_assert_int_eq(ratelimit_take(rl, "a", 0, &ra, NULL), 0);
	ck_assert_int_eq(ratelimit_take(rl, "a", 0, &ra, NULL), HEGN_ERR_RATE);
	ck_assert_int_eq(ratelimit_take(rl, "b", 0, &ra, NULL), 0);
	ck_assert_int_eq(ratelimit_take(rl, "b", 0, &ra, NULL), 0);
	ck_assert_int_eq(ratelimit_take(rl, "b", 0, &ra, NULL), HEGN_ERR_RATE);
	ck_assert_uint_eq(ratelimit_keys(rl), 2);
	ratelimit_free(rl);
}
END_TEST

/* An idle bucket fills up to the burst and no further; a clock going back adds nothing. */
START_TEST(test_cap_and_clock)
{
	struct ratelimit *rl = ratelimit_new(600, 3);
	unsigned int ra;
	int i;

	for (i = 0; i < 3; i++)
		ck_assert_int_eq(ratelimit_take(rl, "a", 1000000, &ra, NULL), 0);
	ck_assert_int_eq(ratelimit_take(rl, "a", 1000000, &ra, NULL), HEGN_ERR_RATE);
	/* Back in time: still empty. */
	ck_assert_int_eq(ratelimit_take(rl, "a", 0, &ra, NULL), HEGN_ERR_RATE);
	/* A year later: full, that is three, not millions. */
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(ratelimit_take(rl, "a", 1000000 + 31536000000LL, &ra, NULL), 0);
	ck_assert_int_eq(ratelimit_take(rl, "a", 1000000 + 31536000000LL, &ra, NULL),
	    HEGN_ERR_RATE);
	/* Extreme times do not overflow. */
	ck_assert_int_eq(ratelimit_take(rl, "b", INT64_MIN, &ra, NULL), 0);
	ck_assert_int_eq(ratelimit_take(rl, "b", INT64_MAX, &ra, NULL), 0);
	ratelimit_free(rl);
}
END_TEST

/* 0 a minute: no limit; NULL limiter: no limit; burst 0: the rate itself. */
START_TEST(test_unlimited_and_defaults)
{
	struct ratelimit *rl = ratelimit_new(0, 0);
	unsigned int ra = 7;
	int i;

	for (i = 0; i < 10000; i++)
		ck_assert_int_eq(ratelimit_take(rl, "a", 0, &ra, NULL), 0);
	ck_assert_uint_eq(ra, 0);
	ratelimit_free(rl);
	ck_assert_int_eq(ratelimit_take(NULL, "a", 0, &ra, NULL), 0);
	ck_assert_uint_eq(ratelimit_keys(NULL), 0);
	ratelimit_free(NULL);

	rl = ratelimit_new(4, 0);
	for (i = 0; i < 4; i++)
		ck_assert_int_eq(ratelimit_take(rl, "a", 0, &ra, NULL), 0);
	ck_assert_int_eq(ratelimit_take(rl, "a", 0, &ra, NULL), HEGN_ERR_RATE);
	ck_assert_uint_eq(ra, 15);
	ratelimit_free(rl);
}
END_TEST

/* The table is bounded: the longest idle key makes room, and comes back full. */
START_TEST(test_bounded_table)
{
	struct ratelimit *rl = ratelimit_new(1, 1);
	unsigned int ra;
	char key[32];
	int i;

	ck_assert_int_eq(ratelimit_take(rl, "first", 0, &ra, NULL), 0);
	ck_assert_int_eq(ratelimit_take(rl, "first", 0, &ra, NULL), HEGN_ERR_RATE);
	for (i = 1; i < RATELIMIT_MAX_KEYS + 10; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		ck_assert_int_eq(ratelimit_take(rl, key, i, &ra, NULL), 0);
	}
	ck_assert_uint_eq(ratelimit_keys(rl), RATELIMIT_MAX_KEYS);
	/* The newest keys are still remembered as empty. */
	snprintf(key, sizeof(key), "k%d", RATELIMIT_MAX_KEYS + 9);
	ck_assert_int_eq(ratelimit_take(rl, key, RATELIMIT_MAX_KEYS + 9, &ra, NULL),
	    HEGN_ERR_RATE);
	ratelimit_free(rl);
}
END_TEST

struct hammer {
	struct ratelimit *rl;
	int granted;
};

static void *
hammer_run(void *arg)
{
	struct hammer *h = arg;
	unsigned int ra;
	int i;

	for (i = 0; i < 1000; i++)
		if (ratelimit_take(h->rl, "shared", 0, &ra, NULL) == 0)
			h->granted++;
	return NULL;
}

/* Concurrent takes at one instant grant exactly the burst, no more. */
static void
key_of6(const char *ip, char key[RATELIMIT_KEY_MAX])
{
	struct sockaddr_in6 a6;

	memset(&a6, 0, sizeof(a6));
	a6.sin6_family = AF_INET6;
	ck_assert_int_eq(inet_pton(AF_INET6, ip, &a6.sin6_addr), 1);
	ratelimit_client_key((const struct sockaddr *)&a6, NULL, key);
}

/* A party by name, an IPv4 client by its address, an IPv6 client by its /64. */
START_TEST(test_client_key)
{
	struct sockaddr_in a4;
	char k1[RATELIMIT_KEY_MAX], k2[RATELIMIT_KEY_MAX];

	memset(&a4, 0, sizeof(a4));
	a4.sin_family = AF_INET;
	ck_assert_int_eq(inet_pton(AF_INET, "192.0.2.7", &a4.sin_addr), 1);
	ratelimit_client_key((const struct sockaddr *)&a4, "hovmand-care", k1);
	ck_assert_str_eq(k1, "party hovmand-care");
	ratelimit_client_key((const struct sockaddr *)&a4, NULL, k1);
	ck_assert_str_eq(k1, "address 192.0.2.7");
	ratelimit_client_key(NULL, NULL, k1);
	ck_assert_str_eq(k1, "address unknown");

	/* Every address of one /64 is one client... */
	key_of6("2001:db8:1:2:aaaa:bbbb:cccc:dddd", k1);
	ck_assert_str_eq(k1, "address 2001:db8:1:2::/64");
	key_of6("2001:db8:1:2::1", k2);
	ck_assert_str_eq(k1, k2);
	/* ...and the next /64 another. */
	key_of6("2001:db8:1:3::1", k2);
	ck_assert_str_eq(k2, "address 2001:db8:1:3::/64");
	/* An IPv4 client on an IPv6 socket keeps its whole address. */
	key_of6("::ffff:192.0.2.7", k1);
	ck_assert_str_eq(k1, "address ::ffff:192.0.2.7");
	key_of6("::ffff:192.0.2.8", k2);
	ck_assert_str_ne(k1, k2);
	/* The longest IPv6 form and a long party name fit, cut rather than overrun. */
	key_of6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", k1);
	ck_assert_str_eq(k1, "address ffff:ffff:ffff:ffff::/64");
	ratelimit_client_key(NULL, "a-party-name-longer-than-any-configuration-allows-"
	    "and-then-some-more-characters", k1);
	ck_assert_uint_eq(strlen(k1), RATELIMIT_KEY_MAX - 1);
}
END_TEST

START_TEST(test_threads)
{
	struct ratelimit *rl = ratelimit_new(100, 250);
	struct hammer h[4];
	pthread_t t[4];
	int i, total = 0;

	for (i = 0; i < 4; i++) {
		h[i].rl = rl;
		h[i].granted = 0;
		ck_assert_int_eq(pthread_create(&t[i], NULL, hammer_run, &h[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		total += h[i].granted;
	}
	ck_assert_int_eq(total, 250);
	ratelimit_free(rl);
}
END_TEST

static Suite *
ratelimit_suite(void)
{
	Suite *s = suite_create("ratelimit");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_burst_then_refill);
	tcase_add_test(tc, test_retry_after);
	tcase_add_test(tc, test_per_key);
	tcase_add_test(tc, test_cap_and_clock);
	tcase_add_test(tc, test_unlimited_and_defaults);
	tcase_add_test(tc, test_bounded_table);
	tcase_add_test(tc, test_client_key);
	tcase_add_test(tc, test_threads);
	suite_add_tcase(s, tc);
	return s;
}

TESTLIB_MAIN(ratelimit_suite)
