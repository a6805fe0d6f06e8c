#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ratelimit.h"
#include "xmalloc.h"

/*
 * Integer arithmetic: one token is 60000 units and a bucket gains
 * per_minute units a millisecond, so refill is exact whatever the rate.
 */
#define UNITS_PER_TOKEN 60000LL

struct bucket {
	char *key;
	int64_t level;          /* units */
	int64_t last_ms;        /* when level was last brought up to date */
};

struct ratelimit {
	pthread_mutex_t lock;
	int64_t per_minute;
	int64_t capacity;       /* units */
	struct bucket *b;
	size_t n, cap;
};

struct ratelimit *
ratelimit_new(unsigned int per_minute, unsigned int burst)
{
	struct ratelimit *rl;

	rl = xcalloc(1, sizeof(*rl));
	pthread_mutex_init(&rl->lock, NULL);
	rl->per_minute = per_minute;
	rl->capacity = (int64_t)(burst != 0 ? burst : per_minute) * UNITS_PER_TOKEN;
	return rl;
}

void
ratelimit_free(struct ratelimit *rl)
{
	size_t i;

	if (rl == NULL)
		return;
	for (i = 0; i < rl->n; i++)
		free(rl->b[i].key);
	free(rl->b);
	pthread_mutex_destroy(&rl->lock);
	free(rl);
}

/* Bring b up to now_ms. */
static void
refill(struct ratelimit *rl, struct bucket *b, int64_t now_ms)
{
	uint64_t elapsed;

	if (now_ms <= b->last_ms)
		return;
	/* Unsigned: the difference of any two int64_t fits. */
	elapsed = (uint64_t)now_ms - (uint64_t)b->last_ms;
	/* Past this the bucket is full anyway; the cap keeps the product small. */
	if (elapsed > (uint64_t)(rl->capacity / rl->per_minute) + 1)
		b->level = rl->capacity;
	else
		b->level += (int64_t)elapsed * rl->per_minute;
	if (b->level > rl->capacity)
		b->level = rl->capacity;
	b->last_ms = now_ms;
}

/* key's bucket, made full when new; when the table is full the longest idle one makes room. */
static struct bucket *
bucket_for(struct ratelimit *rl, const char *key, int64_t now_ms)
{
	struct bucket *b;
	size_t i, idle = 0;

	for (i = 0; i < rl->n; i++) {
		if (strcmp(rl->b[i].key, key) == 0)
			return &rl->b[i];
		if (rl->b[i].last_ms < rl->b[idle].last_ms)
			idle = i;
	}
	if (rl->n == RATELIMIT_MAX_KEYS) {
		b = &rl->b[idle];
		free(b->key);
	} else {
		if (rl->n == rl->cap) {
			rl->cap = rl->cap ? rl->cap * 2 : 16;
			rl->b = xrealloc(rl->b, rl->cap * sizeof(*rl->b));
		}
		b = &rl->b[rl->n++];
	}
	b->key = xstrdup(key);
	b->level = rl->capacity;
	b->last_ms = now_ms;
	return b;
}

int
ratelimit_take(struct ratelimit *rl, const char *key, int64_t now_ms,
    unsigned int *retry_after, struct why *why)
{
	struct bucket *b;
	int64_t wait_ms;
	int r = 0;

	*retry_after = 0;
	if (rl == NULL || rl->per_minute == 0)
		return 0;
	pthread_mutex_lock(&rl->lock);
	b = bucket_for(rl, key, now_ms);
	refill(rl, b, now_ms);
	if (b->level >= UNITS_PER_TOKEN) {
		b->level -= UNITS_PER_TOKEN;
		goto out;
	}
	wait_ms = (UNITS_PER_TOKEN - b->level + rl->per_minute - 1) / rl->per_minute;
	*retry_after = (unsigned int)((wait_ms + 999) / 1000);
	if (*retry_after == 0)
		*retry_after = 1;
	r = why_set(why, HEGN_ERR_RATE,
	    "more than %lld requests a minute (bursts of %lld) from %s: retry after %u s",
	    (long long)rl->per_minute, (long long)(rl->capacity / UNITS_PER_TOKEN), key,
	    *retry_after);
out:
	pthread_mutex_unlock(&rl->lock);
	return r;
}

unsigned int
ratelimit_keys(struct ratelimit *rl)
{
	unsigned int n;

	if (rl == NULL)
		return 0;
	pthread_mutex_lock(&rl->lock);
	n = (unsigned int)rl->n;
	pthread_mutex_unlock(&rl->lock);
	return n;
}

void
ratelimit_client_key(const struct sockaddr *sa, const char *party, char key[RATELIMIT_KEY_MAX])
{
	struct in6_addr net;
	char addr[INET6_ADDRSTRLEN + 3];

	if (party != NULL) {
		snprintf(key, RATELIMIT_KEY_MAX, "party %s", party);
		return;
	}
	snprintf(addr, sizeof(addr), "unknown");
	if (sa != NULL && sa->sa_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr,
		    addr, sizeof(addr));
	} else if (sa != NULL && sa->sa_family == AF_INET6) {
		net = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(&net)) {
			inet_ntop(AF_INET6, &net, addr, sizeof(addr));
		} else {
			memset(net.s6_addr + 8, 0, 8);
			inet_ntop(AF_INET6, &net, addr, INET6_ADDRSTRLEN);
			strcat(addr, "/64");
		}
	}
	snprintf(key, RATELIMIT_KEY_MAX, "address %s", addr);
}
