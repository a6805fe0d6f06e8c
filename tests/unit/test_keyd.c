#include "config.h"

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "audit.h"
#include "checkpoint.h"
#include "envelope.h"
#include "err.h"
#include "keyd.h"
#include "pki.h"
#include "signer.h"
#include "testcerts.h"
#include "testlib.h"
#include "util.h"
#include "xmalloc.h"

#define MAX (1024 * 1024)

static const char msg[] = "{\"kind\":\"observation\",\"care\":{}}";

static void
put_be(uint8_t *p, uint32_t v, int n)
{
	int i;

	for (i = n - 1; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static void
sign_request(struct buf *out, const char *party, const char *id, const void *data, size_t len)
{
	struct keyd_request req;

	memset(&req, 0, sizeof(req));
	req.type = KEYD_SIGN;
	snprintf(req.party, sizeof(req.party), "%s", party);
	if (id != NULL) {
		req.has_content_id = 1;
		snprintf(req.content_id, sizeof(req.content_id), "%s", id);
	}
	req.data = data;
	req.len = len;
	ck_assert_int_eq(keyd_request_encode(&req, out, NULL), 0);
}

START_TEST(test_roundtrip)
{
	struct keyd_request req, got;
	struct keyd_reply rep;
	struct buf m = { 0 };
	struct why why = { 0 };
	int i;

	sign_request(&m, "ringsted-visitation", "m-1", msg, strlen(msg));
	ck_assert_uint_eq(m.len, KEYD_HDR_LEN + 2 + 19 + 1 + 2 + 3 + 4 + strlen(msg));
	ck_assert_int_eq(keyd_request_decode(m.data, m.len, MAX, &got, &why), 0);
	ck_assert_int_eq(got.type, KEYD_SIGN);
	ck_assert_str_eq(got.party, "ringsted-visitation");
	ck_assert_int_eq(got.has_content_id, 1);
	ck_assert_str_eq(got.content_id, "m-1");
	ck_assert_uint_eq(got.len, strlen(msg));
	ck_assert_mem_eq(got.data, msg, got.len);
	buf_free(&m, 0);

	sign_request(&m, "gateway", NULL, "", 0);
	ck_assert_int_eq(keyd_request_decode(m.data, m.len, MAX, &got, &why), 0);
	ck_assert_int_eq(got.has_content_id, 0);
	ck_assert_uint_eq(got.len, 0);
	buf_free(&m, 0);

	for (i = 0; i < 2; i++) {
		memset(&req, 0, sizeof(req));
		req.type = i == 0 ? KEYD_RSA_DECRYPT : KEYD_ECDH;
		snprintf(req.party, sizeof(req.party), "gateway");
		req.data = (const uint8_t *)"\x04\x03\x02\x01\x00";
		req.len = 5;
		ck_assert_int_eq(keyd_request_encode(&req, &m, &why), 0);
		ck_assert_int_eq(keyd_request_decode(m.data, m.len, MAX, &got, &why), 0);
		ck_assert_int_eq(got.type, req.type);
		ck_assert_str_eq(got.party, "gateway");
		ck_assert_uint_eq(got.len, 5);
		ck_assert_mem_eq(got.data, "\x04\x03\x02\x01\x00", 5);
		/* Type 2 was DECRYPT, a whole EnvelopedData for the key process to parse: gone. */
		if (i == 0) {
			m.data[7] = 2;
			ck_assert_int_eq(keyd_request_decode(m.data, m.len, MAX, &got, &why),
			    HEGN_ERR_UNSUPPORTED);
		}
		buf_free(&m, 0);
	}

	memset(&req, 0, sizeof(req));
	req.type = KEYD_CHECKPOINT;
	req.size = 0x0102030405060708ULL;
	for (i = 0; i < 32; i++)
		req.root[i] = (uint8_t)i;
	ck_assert_int_eq(keyd_request_encode(&req, &m, &why), 0);
	ck_assert_uint_eq(m.len, KEYD_HDR_LEN + 8 + 32);
	ck_assert_int_eq(keyd_request_decode(m.data, m.len, MAX, &got, &why), 0);
	ck_assert_int_eq(got.type, KEYD_CHECKPOINT);
	ck_assert(got.size == 0x0102030405060708ULL);
	ck_assert_mem_eq(got.root, req.root, 32);
	buf_free(&m, 0);

	ck_assert_int_eq(keyd_reply_encode(HEGN_ERR_DECRYPT, "not for us", NULL, 0, &m, &why), 0);
	ck_assert_int_eq(keyd_reply_decode(m.data, m.len, MAX, &rep, &why), 0);
	ck_assert_int_eq(rep.status, HEGN_ERR_DECRYPT);
	ck_assert_str_eq(rep.why, "not for us");
	buf_free(&m, 0);
	ck_assert_int_eq(keyd_reply_encode(0, NULL, (const uint8_t *)"abc", 3, &m, &why), 0);
	ck_assert_int_eq(keyd_reply_decode(m.data, m.len, MAX, &rep, &why), 0);
	ck_assert_int_eq(rep.status, 0);
	ck_assert_uint_eq(rep.len, 3);
	ck_assert_mem_eq(rep.payload, "abc", 3);
	buf_free(&m, 0);

	/* What cannot be encoded is refused before it reaches the socket. */
	memset(&req, 0, sizeof(req));
	req.type = KEYD_SIGN;
	ck_assert_int_eq(keyd_request_encode(&req, &m, &why), HEGN_ERR_INVALID);
	req.type = KEYD_REPLY;
	snprintf(req.party, sizeof(req.party), "gateway");
	ck_assert_int_eq(keyd_request_encode(&req, &m, &why), HEGN_ERR_INVALID);
	ck_assert_ptr_null(m.data);
}
END_TEST

/* Every prefix of a message is refused, whether or not its header was adjusted to match. */
START_TEST(test_truncated)
{
	struct keyd_request got;
	struct keyd_reply rep;
	struct buf m = { 0 };
	struct why why = { 0 };
	uint8_t *copy;
	size_t n;

	sign_request(&m, "gateway", "m-1", msg, strlen(msg));
	copy = xmalloc(m.len);
	for (n = 0; n < m.len; n++) {
		ck_assert_int_ne(keyd_request_decode(m.data, n, MAX, &got, &why), 0);
		if (n < KEYD_HDR_LEN)
			continue;
		memcpy(copy, m.data, n);
		put_be(copy + 8, (uint32_t)(n - KEYD_HDR_LEN), 4);
		ck_assert_int_eq(keyd_request_decode(copy, n, MAX, &got, &why), HEGN_ERR_INVALID);
	}
	free(copy);
	ck_assert_int_ne(keyd_request_decode(NULL, 0, MAX, &got, &why), 0);
	buf_free(&m, 0);

	ck_assert_int_eq(keyd_reply_encode(0, "", (const uint8_t *)"abc", 3, &m, &why), 0);
	for (n = 0; n < m.len; n++)
		ck_assert_int_ne(keyd_reply_decode(m.data, n, MAX, &rep, &why), 0);
	buf_free(&m, 0);
}
END_TEST

START_TEST(test_bad_header)
{
	struct keyd_request got;
	struct keyd_reply rep;
	struct buf m = { 0 };
	struct why why = { 0 };

	sign_request(&m, "gateway", NULL, msg, strlen(msg));

	/* Too large for the limit: refused on the header alone. */
	ck_assert_int_eq(keyd_request_decode(m.data, m.len, 10, &got, &why), HEGN_ERR_TOO_LARGE);
	ck_assert_ptr_nonnull(strstr(why.text, "exceeds"));

	m.data[0] ^= 0xff;
	ck_assert_int_eq(keyd_request_decode(m.data, m.len, MAX, &got, &why), HEGN_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why.text, "magic"));
	m.data[0] ^= 0xff;

	put_be(m.data + 4, KEYD_VERSION + 1, 2);
	ck_assert_int_eq(keyd_request_decode(m.data, m.len, MAX, &got, &why), HEGN_ERR_UNSUPPORTED);
	ck_assert_ptr_nonnull(strstr(why.text, "version"));
	put_be(m.data + 4, KEYD_VERSION, 2);

	put_be(m.data + 6, 99, 2);
	ck_assert_int_eq(keyd_request_decode(m.data, m.len, MAX, &got, &why), HEGN_ERR_UNSUPPORTED);
	put_be(m.data + 6, KEYD_REPLY, 2);
	ck_assert_int_eq(keyd_request_decode(m.data, m.len, MAX, &got, &why), HEGN_ERR_UNSUPPORTED);
	/* A request is not a reply either. */
	put_be(m.data + 6, KEYD_SIGN, 2);
	ck_assert_int_eq(keyd_reply_decode(m.data, m.len, MAX, &rep, &why), HEGN_ERR_UNSUPPORTED);

	/* The length field disagrees with the message either way. */
	put_be(m.data + 8, (uint32_t)(m.len - KEYD_HDR_LEN + 1), 4);
	ck_assert_int_eq(keyd_request_decode(m.data, m.len, MAX, &got, &why), HEGN_ERR_INVALID);
	put_be(m.data + 8, (uint32_t)(m.len - KEYD_HDR_LEN - 1), 4);
	ck_assert_int_eq(keyd_request_decode(m.data, m.len, MAX, &got, &why), HEGN_ERR_INVALID);
	put_be(m.data + 8, 0xffffffffU, 4);
	ck_assert_int_eq(keyd_request_decode(m.data, m.len, MAX, &got, &why), HEGN_ERR_TOO_LARGE);
	buf_free(&m, 0);
}
END_TEST

/* A hand-made SIGN body: party, flag, [id], content. */
static void
raw_sign(struct buf *out, const uint8_t *party, size_t plen, int flag, size_t extra)
{
	size_t len = KEYD_HDR_LEN + 2 + plen + 1 + 4 + 2 + extra;

	out->data = xcalloc(1, len);
	out->len = len;
	put_be(out->data, KEYD_MAGIC, 4);
	put_be(out->data + 4, KEYD_VERSION, 2);
	put_be(out->data + 6, KEYD_SIGN, 2);
	put_be(out->data + 8, (uint32_t)(len - KEYD_HDR_LEN), 4);
	put_be(out->data + 12, (uint32_t)plen, 2);
	memcpy(out->data + 14, party, plen);
	out->data[14 + plen] = (uint8_t)flag;
	put_be(out->data + 15 + plen, 2, 4);
	memcpy(out->data + 19 + plen, "{}", 2);
}

START_TEST(test_bad_fields)
{
	struct keyd_request got;
	struct keyd_reply rep;
	struct buf m = { 0 };
	struct why why = { 0 };
	uint8_t name[KEYD_NAME_MAX + 2];

	raw_sign(&m, (const uint8_t *)"gateway", 7, 0, 0);
	ck_assert_int_eq(keyd_request_decode(m.data, m.len, MAX, &got, &why), 0);
	ck_assert_str_eq(got.party, "gateway");
	ck_assert_mem_eq(got.data, "{}", 2);
	buf_free(&m, 0);

	raw_sign(&m, (const uint8_t *)"", 0, 0, 0);
	ck_assert_int_eq(keyd_request_decode(m.data, m.len, MAX, &got, &why), HEGN_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why.text, "party"));
	buf_free(&m, 0);
	raw_sign(&m, (const uint8_t *)"gate\0way", 8, 0, 0);
	ck_assert_int_eq(keyd_request_decode(m.data, m.len, MAX, &got, &why), HEGN_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why.text, "NUL"));
	buf_free(&m, 0);
	memset(name, 'a', sizeof(name));
	raw_sign(&m, name, KEYD_NAME_MAX, 0, 0);
	ck_assert_int_eq(keyd_request_decode(m.data, m.len, MAX, &got, &why), 0);
	buf_free(&m, 0);
	raw_sign(&m, name, KEYD_NAME_MAX + 1, 0, 0);
	ck_assert_int_eq(keyd_request_decode(m.data, m.len, MAX, &got, &why), HEGN_ERR_INVALID);
	buf_free(&m, 0);
	/* A content-id flag other than 0 or 1. */
	raw_sign(&m, (const uint8_t *)"gateway", 7, 2, 0);
	ck_assert_int_eq(keyd_request_decode(m.data, m.len, MAX, &got, &why), HEGN_ERR_INVALID);
	buf_free(&m, 0);
	/* Bytes after the last field. */
	raw_sign(&m, (const uint8_t *)"gateway", 7, 0, 3);
	ck_assert_int_eq(keyd_request_decode(m.data, m.len, MAX, &got, &why), HEGN_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why.text, "left over"));
	buf_free(&m, 0);

	/* Replies: only known codes, no payload with a failure. */
	ck_assert_int_eq(keyd_reply_encode(5, "", NULL, 0, &m, &why), 0);
	ck_assert_int_eq(keyd_reply_decode(m.data, m.len, MAX, &rep, &why), HEGN_ERR_INVALID);
	buf_free(&m, 0);
	ck_assert_int_eq(keyd_reply_encode(-1000, "", NULL, 0, &m, &why), 0);
	ck_assert_int_eq(keyd_reply_decode(m.data, m.len, MAX, &rep, &why), HEGN_ERR_INVALID);
	buf_free(&m, 0);
	ck_assert_int_eq(keyd_reply_encode(HEGN_ERR_CRYPTO, "x", (const uint8_t *)"ab", 2, &m,
	    &why), 0);
	ck_assert_int_eq(keyd_reply_decode(m.data, m.len, MAX, &rep, &why), HEGN_ERR_INVALID);
	buf_free(&m, 0);
}
END_TEST

static void
pair(int sv[2])
{
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
}

/* Raw packets from a thread, so a sender never waits on a reader that has not started. */
struct sender {
	pthread_t thread;
	int fd;
	const uint8_t *data;
	size_t len, packet;
	int close_after;
};

static void *
send_packets(void *arg)
{
	struct sender *sd = arg;
	size_t off = 0, n;

	while (off < sd->len) {
		n = sd->len - off > sd->packet ? sd->packet : sd->len - off;
		if (send(sd->fd, sd->data + off, n, MSG_NOSIGNAL) != (ssize_t)n)
			break;
		off += n;
	}
	if (sd->close_after)
		close(sd->fd);
	return NULL;
}

static void
send_async(struct sender *sd, int fd, const uint8_t *data, size_t len, size_t packet,
    int close_after)
{
	sd->fd = fd;
	sd->data = data;
	sd->len = len;
	sd->packet = packet;
	sd->close_after = close_after;
	ck_assert_int_eq(pthread_create(&sd->thread, NULL, send_packets, sd), 0);
}

START_TEST(test_transport)
{
	struct sender sd;
	struct buf m = { 0 }, in = { 0 };
	struct why why = { 0 };
	uint8_t *big, hdr[KEYD_HDR_LEN + 8];
	size_t n = 300000, i;
	int sv[2];

	/* A message of several packets arrives whole, in order. */
	big = xmalloc(n);
	for (i = 0; i < n; i++)
		big[i] = (uint8_t)(i * 7);
	sign_request(&m, "gateway", NULL, big, n);
	pair(sv);
	send_async(&sd, sv[0], m.data, m.len, KEYD_PACKET, 0);
	ck_assert_int_eq(keyd_recv(sv[1], MAX, &in, &why), 0);
	pthread_join(sd.thread, NULL);
	ck_assert_uint_eq(in.len, m.len);
	ck_assert_mem_eq(in.data, m.data, m.len);
	buf_free(&in, 0);
	close(sv[0]);
	close(sv[1]);

	/* The same message against a smaller limit: refused on its first packet. */
	pair(sv);
	send_async(&sd, sv[0], m.data, m.len, KEYD_PACKET, 1);
	ck_assert_int_eq(keyd_recv(sv[1], 1000, &in, &why), HEGN_ERR_TOO_LARGE);
	ck_assert_ptr_null(in.data);
	close(sv[1]);
	pthread_join(sd.thread, NULL);

	/* A closed peer: an empty message, not an error. */
	pair(sv);
	close(sv[0]);
	ck_assert_int_eq(keyd_recv(sv[1], MAX, &in, &why), 0);
	ck_assert_uint_eq(in.len, 0);
	close(sv[1]);

	/* Closed half-way through a message. */
	pair(sv);
	send_async(&sd, sv[0], m.data, 2 * KEYD_PACKET, KEYD_PACKET, 1);
	ck_assert_int_eq(keyd_recv(sv[1], MAX, &in, &why), HEGN_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why.text, "inside a message"));
	pthread_join(sd.thread, NULL);
	close(sv[1]);

	/* A packet larger than KEYD_PACKET is not silently cut. */
	pair(sv);
	send_async(&sd, sv[0], m.data, KEYD_PACKET + 100, KEYD_PACKET + 100, 1);
	ck_assert_int_eq(keyd_recv(sv[1], MAX, &in, &why), HEGN_ERR_TOO_LARGE);
	pthread_join(sd.thread, NULL);
	close(sv[1]);

	/* The last packet runs past the end of the message (padded to a full packet). */
	{
		size_t padded = (m.len + KEYD_PACKET - 1) / KEYD_PACKET * KEYD_PACKET;
		uint8_t *over = xcalloc(1, padded);

		ck_assert_uint_ne(padded, m.len);
		memcpy(over, m.data, m.len);
		pair(sv);
		send_async(&sd, sv[0], over, padded, KEYD_PACKET, 1);
		ck_assert_int_eq(keyd_recv(sv[1], MAX, &in, &why), HEGN_ERR_TOO_LARGE);
		ck_assert_ptr_null(in.data);
		close(sv[1]);
		pthread_join(sd.thread, NULL);
		free(over);
	}
	buf_free(&m, 0);
	free(big);

	/* A packet shorter than the header; one with bytes beyond its message. */
	pair(sv);
	ck_assert_int_eq(send(sv[0], "HGNK\0", 5, 0), 5);
	ck_assert_int_eq(keyd_recv(sv[1], MAX, &in, &why), HEGN_ERR_INVALID);
	put_be(hdr, KEYD_MAGIC, 4);
	put_be(hdr + 4, KEYD_VERSION, 2);
	put_be(hdr + 6, KEYD_CHECKPOINT, 2);
	put_be(hdr + 8, 4, 4);
	ck_assert_int_eq(send(sv[0], hdr, sizeof(hdr), 0), (ssize_t)sizeof(hdr));
	ck_assert_int_eq(keyd_recv(sv[1], MAX, &in, &why), HEGN_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why.text, "beyond"));
	/* Wrong version and magic on the wire. */
	put_be(hdr + 4, 7, 2);
	ck_assert_int_eq(send(sv[0], hdr, KEYD_HDR_LEN, 0), KEYD_HDR_LEN);
	ck_assert_int_eq(keyd_recv(sv[1], MAX, &in, &why), HEGN_ERR_UNSUPPORTED);
	put_be(hdr, 0x11111111, 4);
	ck_assert_int_eq(send(sv[0], hdr, KEYD_HDR_LEN, 0), KEYD_HDR_LEN);
	ck_assert_int_eq(keyd_recv(sv[1], MAX, &in, &why), HEGN_ERR_INVALID);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

/* The key process's side in a thread, with real keys. */
static struct {
	char dir[64];
	EVP_PKEY *ca_key, *a_key, *b_key, *c_key;
	X509 *ca, *a, *b, *c;
	struct pki *pki;
	char *vkey;
} w;

static char *
wpath(const char *name)
{
	static char p[8][128];
	static int n;

	n = (n + 1) % 8;
	snprintf(p[n], sizeof(p[n]), "%s/%s", w.dir, name);
	return p[n];
}

static void
setup_world(void)
{
	STACK_OF(X509) *anchors;
	long year = 365L * 86400;
	char *skey = NULL;
	FILE *f;

	snprintf(w.dir, sizeof(w.dir), "/tmp/hegn-test-keyd-XXXXXX");
	if (mkdtemp(w.dir) == NULL)
		abort();
	w.ca_key = testcerts_rsa(2048);
	w.a_key = testcerts_rsa(2048);
	w.b_key = testcerts_rsa(2048);
	w.ca = testcerts_cert(NULL, NULL, w.ca_key, "Test Root CA", 1, -86400, 10 * year,
	    TESTCERTS_CA);
	w.a = testcerts_cert(w.ca, w.ca_key, w.a_key, "gateway", 2, -86400, year,
	    TESTCERTS_SIGN | TESTCERTS_ENCRYPT);
	w.b = testcerts_cert(w.ca, w.ca_key, w.b_key, "hovmand-care", 3, -86400, year,
	    TESTCERTS_SIGN | TESTCERTS_ENCRYPT);
	w.c_key = testcerts_ec();
	w.c = testcerts_cert(w.ca, w.ca_key, w.c_key, "ec-provider", 4, -86400, year,
	    TESTCERTS_SIGN | TESTCERTS_ENCRYPT);
	if (w.a == NULL || w.b == NULL || w.c == NULL)
		abort();
	anchors = sk_X509_new_null();
	sk_X509_push(anchors, w.ca);
	if (pki_from_objects(anchors, NULL, NULL, 0, &w.pki, NULL) != 0)
		abort();
	sk_X509_free(anchors);
	if (testcerts_write_cert(wpath("a.pem"), w.a) != 0 ||
	    testcerts_write_key(wpath("a.key"), w.a_key) != 0 ||
	    testcerts_write_cert(wpath("b.pem"), w.b) != 0 ||
	    testcerts_write_cert(wpath("c.pem"), w.c) != 0 ||
	    testcerts_write_key(wpath("c.key"), w.c_key) != 0 ||
	    chmod(wpath("a.key"), 0600) != 0 || chmod(wpath("c.key"), 0600) != 0)
		abort();
	if (checkpoint_keygen("test.audit", &skey, &w.vkey, NULL) != 0 ||
	    (f = fopen(wpath("audit.key"), "w")) == NULL)
		abort();
	fprintf(f, "%s\n", skey);
	fclose(f);
	checkpoint_key_free(skey);
	if (chmod(wpath("audit.key"), 0600) != 0)
		abort();
}

static void
teardown_world(void)
{
	pki_free(w.pki);
	X509_free(w.ca);
	X509_free(w.a);
	X509_free(w.b);
	EVP_PKEY_free(w.ca_key);
	EVP_PKEY_free(w.a_key);
	EVP_PKEY_free(w.b_key);
	X509_free(w.c);
	EVP_PKEY_free(w.c_key);
	free(w.vkey);
	testcerts_rmtree(w.dir);
}

struct server {
	pthread_t thread;
	int fd;
	struct signer *keys;
	struct audit_signer *audit;
	int rc;
	struct why why;
};

static void *
serve(void *arg)
{
	struct server *sv = arg;

	sv->rc = keyd_serve(sv->fd, sv->keys, sv->audit, MAX, &sv->why);
	return NULL;
}

/* The key side holds the gateway's key only; the client believes in hovmand-care's too. */
static struct keyd_client *
start(struct server *sv, struct signer **client)
{
	struct why why = { 0 };
	int p[2];

	memset(sv, 0, sizeof(*sv));
	pair(p);
	sv->fd = p[1];
	sv->keys = signer_new();
	ck_assert_int_eq(signer_load(sv->keys, "gateway", wpath("a.key"), wpath("a.pem"), NULL,
	    ENVELOPE_PSS, &why), 0);
	ck_assert_int_eq(signer_load(sv->keys, "ec-provider", wpath("c.key"), wpath("c.pem"), NULL,
	    ENVELOPE_PSS, &why), 0);
	ck_assert_msg(audit_signer_load(wpath("audit.key"), "test.audit", &sv->audit, &why) == 0,
	    "%s", why.text);
	ck_assert_int_eq(pthread_create(&sv->thread, NULL, serve, sv), 0);
	*client = signer_new();
	ck_assert_int_eq(signer_load_cert(*client, "gateway", wpath("a.pem"), NULL, &why), 0);
	ck_assert_int_eq(signer_load_cert(*client, "hovmand-care", wpath("b.pem"), NULL, &why), 0);
	ck_assert_int_eq(signer_load_cert(*client, "ec-provider", wpath("c.pem"), NULL, &why), 0);
	return keyd_client_new(p[0], MAX);
}

static void
stop(struct server *sv)
{
	pthread_join(sv->thread, NULL);
	close(sv->fd);
	signer_free(sv->keys);
	audit_signer_free(sv->audit);
}

START_TEST(test_served)
{
	struct server sv;
	struct keyd_client *kc;
	struct signer *s;
	struct envelope_signed *v = NULL;
	struct buf der = { 0 }, env = { 0 }, out = { 0 };
	struct why why = { 0 };
	uint8_t root[32], vroot[32];
	uint64_t vsize = 0;
	char *note = NULL, *origin = NULL;
	const uint8_t *c;
	size_t clen;

	kc = start(&sv, &s);
	/* Before signer_connect the certificate-only entries have nowhere to go. */
	ck_assert_int_eq(signer_sign(s, "gateway", (const uint8_t *)msg, strlen(msg), NULL, &der,
	    &why), HEGN_ERR_INTERNAL);
	signer_connect(s, kc);
	ck_assert(signer_has(s, "gateway"));
	ck_assert_int_eq(X509_cmp(signer_cert(s, "gateway"), w.a), 0);

	ck_assert_msg(signer_sign(s, "gateway", (const uint8_t *)msg, strlen(msg), "m-7", &der,
	    &why) == 0, "%s", why.text);
	ck_assert_int_eq(envelope_verify(w.pki, der.data, der.len, 0, &v, &why), 0);
	c = envelope_signed_content(v, &clen);
	ck_assert_mem_eq(c, msg, clen);
	ck_assert_str_eq(envelope_signed_content_id(v), "m-7");
	ck_assert_int_eq(X509_cmp(envelope_signed_signer(v), w.a), 0);
	envelope_signed_free(v);
	buf_free(&der, 0);

	ck_assert_int_eq(envelope_seal(w.a, ENVELOPE_AES256_GCM, (const uint8_t *)msg, strlen(msg),
	    0, &env, &why), 0);
	ck_assert_int_eq(signer_decrypt(s, "gateway", env.data, env.len, &out, &why), 0);
	ck_assert_uint_eq(out.len, strlen(msg));
	ck_assert_mem_eq(out.data, msg, out.len);
	buf_free(&out, 1);
	/* Damaged input fails here, as with the key at hand; the connection survives. */
	env.data[env.len / 2] ^= 0x55;
	ck_assert_int_lt(signer_decrypt(s, "gateway", env.data, env.len, &out, &why), 0);
	ck_assert_ptr_null(out.data);
	buf_free(&env, 0);
	/* The key process takes one block as long as the modulus, below it, and nothing else. */
	ck_assert_int_eq(keyd_client_rsa_decrypt(kc, "gateway", (const uint8_t *)"junk", 4, &out,
	    &why), HEGN_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why.text, "4-byte block"));
	{
		uint8_t block[256], raw[256];
		BIGNUM *m = BN_new(), *ct = BN_new(), *n = NULL, *e = NULL;
		BN_CTX *bc = BN_CTX_new();

		memset(block, 0xff, sizeof(block));
		ck_assert_int_eq(keyd_client_rsa_decrypt(kc, "gateway", block, sizeof(block), &out,
		    &why), HEGN_ERR_INVALID);
		/* A block below the modulus: the raw operation, undone by the public key. */
		ck_assert_int_eq(EVP_PKEY_get_bn_param(w.a_key, "n", &n), 1);
		ck_assert_int_eq(EVP_PKEY_get_bn_param(w.a_key, "e", &e), 1);
		ck_assert_int_eq(BN_set_word(m, 0x12345678), 1);
		ck_assert_int_eq(BN_mod_exp(ct, m, e, n, bc), 1);
		ck_assert_int_eq(BN_bn2binpad(ct, block, sizeof(block)), (int)sizeof(block));
		ck_assert_msg(keyd_client_rsa_decrypt(kc, "gateway", block, sizeof(block), &out,
		    &why) == 0, "%s", why.text);
		ck_assert_uint_eq(out.len, sizeof(block));
		ck_assert_int_eq(BN_bn2binpad(m, raw, sizeof(raw)), (int)sizeof(raw));
		ck_assert_mem_eq(out.data, raw, sizeof(raw));
		buf_free(&out, 1);
		/* ECDH of an RSA key, and a party the key process does not hold. */
		ck_assert_int_eq(keyd_client_ecdh(kc, "gateway", block, 65, &out, &why),
		    HEGN_ERR_UNSUPPORTED);
		ck_assert_int_eq(keyd_client_rsa_decrypt(kc, "hovmand-care", block, sizeof(block),
		    &out, &why), HEGN_ERR_NOT_FOUND);
		BN_free(m);
		BN_free(ct);
		BN_free(n);
		BN_free(e);
		BN_CTX_free(bc);
	}

	/*
	 * stock openssl's default key transport, PKCS#1 v1.5, as a sender's
	 * software may use it: the padding is checked here, in constant time.
	 */
	{
		FILE *f;

		ck_assert_ptr_nonnull(f = fopen(wpath("v15.txt"), "w"));
		fputs(msg, f);
		fclose(f);
		ck_assert_int_eq(testcerts_run("openssl cms -encrypt -binary -aes-256-cbc -in %s "
		    "-recip %s -outform DER -out %s", wpath("v15.txt"), wpath("a.pem"),
		    wpath("v15.der")), 0);
		ck_assert_int_eq(util_read_file(wpath("v15.der"), 1 << 20, &env, &why), 0);
		ck_assert_msg(signer_decrypt(s, "gateway", env.data, env.len, &out, &why) == 0,
		    "%s", why.text);
		ck_assert_uint_eq(out.len, strlen(msg));
		ck_assert_mem_eq(out.data, msg, out.len);
		buf_free(&out, 1);
		buf_free(&env, 0);
	}

	/* EC: the key agreement there, the key derivation and the content here. */
	ck_assert_int_eq(envelope_seal(w.c, ENVELOPE_AES256_GCM, (const uint8_t *)msg, strlen(msg),
	    0, &env, &why), 0);
	ck_assert_msg(signer_decrypt(s, "ec-provider", env.data, env.len, &out, &why) == 0, "%s",
	    why.text);
	ck_assert_mem_eq(out.data, msg, out.len);
	buf_free(&out, 1);
	buf_free(&env, 0);
	{
		/* A point off the curve (an invalid-curve attack) and one of the wrong length. */
		uint8_t point[65];
		size_t i;

		point[0] = 0x04;
		for (i = 1; i < sizeof(point); i++)
			point[i] = (uint8_t)i;
		ck_assert_int_eq(keyd_client_ecdh(kc, "ec-provider", point, sizeof(point), &out,
		    &why), HEGN_ERR_INVALID);
		ck_assert_int_eq(keyd_client_ecdh(kc, "ec-provider", point, 7, &out, &why),
		    HEGN_ERR_INVALID);
		ck_assert_int_eq(keyd_client_rsa_decrypt(kc, "ec-provider", point, 7, &out, &why),
		    HEGN_ERR_UNSUPPORTED);
	}

	/* Known here, unknown to the key process; unknown to both. */
	ck_assert_int_eq(signer_sign(s, "hovmand-care", (const uint8_t *)msg, strlen(msg), NULL,
	    &der, &why), HEGN_ERR_NOT_FOUND);
	ck_assert_ptr_nonnull(strstr(why.text, "hovmand-care"));
	ck_assert_int_eq(signer_sign(s, "nobody", (const uint8_t *)msg, strlen(msg), NULL, &der,
	    &why), HEGN_ERR_NOT_FOUND);
	ck_assert_int_eq(keyd_client_sign(kc, "", (const uint8_t *)msg, 1, NULL, &der, &why),
	    HEGN_ERR_INVALID);

	/*
	 * Larger than any message the key process takes: only its digest goes
	 * there, so it is signed all the same, and attached here whole.
	 */
	{
		uint8_t *huge = xcalloc(1, MAX + 1);

		huge[MAX] = 0x42;
		ck_assert_msg(signer_sign(s, "gateway", huge, MAX + 1, "m-8", &der, &why) == 0, "%s",
		    why.text);
		ck_assert_int_eq(envelope_verify(w.pki, der.data, der.len, 0, &v, &why), 0);
		c = envelope_signed_content(v, &clen);
		ck_assert_uint_eq(clen, MAX + 1);
		ck_assert_mem_eq(c, huge, clen);
		envelope_signed_free(v);
		buf_free(&der, 0);
		free(huge);
	}
	/*
	 * A signature the key process made for other content is not attached
	 * to this one, nor one by another certificate.
	 */
	{
		struct buf detached = { 0 };
		uint8_t digest[32], other[32];

		util_sha256(msg, strlen(msg), digest);
		util_sha256(msg, strlen(msg) - 1, other);
		ck_assert_int_eq(keyd_client_sign(kc, "gateway", digest, sizeof(digest), NULL,
		    &detached, &why), 0);
		ck_assert_int_eq(envelope_attach(detached.data, detached.len, w.a, NULL,
		    (const uint8_t *)msg, strlen(msg) - 1, other, &der, &why), HEGN_ERR_CRYPTO);
		ck_assert_ptr_nonnull(strstr(why.text, "not one over this content"));
		ck_assert_int_eq(envelope_attach(detached.data, detached.len, w.b, NULL,
		    (const uint8_t *)msg, strlen(msg), digest, &der, &why), HEGN_ERR_CRYPTO);
		ck_assert_ptr_null(der.data);
		ck_assert_int_eq(envelope_attach(detached.data, detached.len, w.a, NULL,
		    (const uint8_t *)msg, strlen(msg), digest, &der, &why), 0);
		buf_free(&der, 0);
		buf_free(&detached, 0);
		/* Content instead of a digest: the key process refuses, naming why. */
		ck_assert_int_eq(keyd_client_sign(kc, "gateway", (const uint8_t *)"not a digest", 12,
		    NULL, &detached, &why), HEGN_ERR_INVALID);
		ck_assert_ptr_nonnull(strstr(why.text, "32 bytes"));
		buf_free(&detached, 0);
	}

	/* Checkpoints: signed by the key process, and never for a smaller tree. */
	memset(root, 0xab, sizeof(root));
	ck_assert_msg(keyd_client_checkpoint(kc, 5, root, &note, &why) == 0, "%s", why.text);
	ck_assert_int_eq(checkpoint_verify(w.vkey, note, strlen(note), &origin, &vsize, vroot,
	    &why), 0);
	ck_assert_str_eq(origin, "test.audit");
	ck_assert(vsize == 5);
	ck_assert_mem_eq(vroot, root, 32);
	free(note);
	free(origin);
	ck_assert_int_eq(keyd_client_checkpoint(kc, 4, root, &note, &why), HEGN_ERR_CONFLICT);
	ck_assert_ptr_null(note);
	ck_assert_int_eq(keyd_client_checkpoint(kc, 5, root, &note, &why), 0);
	free(note);

	/* Closing the client ends the key process's loop cleanly. */
	signer_free(s);
	keyd_client_free(kc);
	stop(&sv);
	ck_assert_msg(sv.rc == 0, "%s", sv.why.text);
}
END_TEST

/* A framing error ends the key process; the client then refuses every request. */
/*
 * A key process that cannot be reached while a message is opened is the
 * gateway's fault, not a message addressed elsewhere.
 */
START_TEST(test_decrypt_unreachable)
{
	struct keyd_client *kc;
	struct signer *s;
	struct buf env = { 0 }, out = { 0 };
	struct why why = { 0 };
	int p[2];

	pair(p);
	close(p[1]);
	kc = keyd_client_new(p[0], MAX);
	s = signer_new();
	ck_assert_int_eq(signer_load_cert(s, "gateway", wpath("a.pem"), NULL, &why), 0);
	ck_assert_int_eq(signer_load_cert(s, "ec-provider", wpath("c.pem"), NULL, &why), 0);
	signer_connect(s, kc);
	ck_assert_int_eq(envelope_seal(w.a, ENVELOPE_AES256_GCM, (const uint8_t *)msg, strlen(msg),
	    0, &env, &why), 0);
	ck_assert_int_eq(signer_decrypt(s, "gateway", env.data, env.len, &out, &why),
	    HEGN_ERR_INTERNAL);
	ck_assert_ptr_nonnull(strstr(why.text, "unreachable"));
	ck_assert_ptr_null(out.data);
	buf_free(&env, 0);
	ck_assert_int_eq(envelope_seal(w.c, ENVELOPE_AES256_CBC, (const uint8_t *)msg, strlen(msg),
	    0, &env, &why), 0);
	ck_assert_int_eq(signer_decrypt(s, "ec-provider", env.data, env.len, &out, &why),
	    HEGN_ERR_INTERNAL);
	buf_free(&env, 0);
	signer_free(s);
	keyd_client_free(kc);
}
END_TEST

START_TEST(test_framing_error_ends)
{
	struct server sv;
	struct keyd_client *kc;
	struct signer *s;
	struct buf der = { 0 };
	struct why why = { 0 };
	int p[2];

	kc = start(&sv, &s);
	signer_free(s);
	keyd_client_free(kc);
	stop(&sv);

	/* Garbage straight onto the key process's socket. */
	memset(&sv, 0, sizeof(sv));
	pair(p);
	sv.fd = p[1];
	sv.keys = signer_new();
	ck_assert_int_eq(pthread_create(&sv.thread, NULL, serve, &sv), 0);
	ck_assert_int_eq(send(p[0], "GARBAGE-GARBAGE", 15, 0), 15);
	pthread_join(sv.thread, NULL);
	ck_assert_int_eq(sv.rc, HEGN_ERR_INVALID);
	close(p[1]);
	signer_free(sv.keys);

	/* The key process is gone: the request fails, and so does every later one. */
	kc = keyd_client_new(p[0], MAX);
	ck_assert_int_eq(keyd_client_sign(kc, "gateway", (const uint8_t *)msg, strlen(msg), NULL,
	    &der, &why), HEGN_ERR_INTERNAL);
	ck_assert_ptr_nonnull(strstr(why.text, "unreachable"));
	ck_assert_int_eq(keyd_client_sign(kc, "gateway", (const uint8_t *)msg, strlen(msg), NULL,
	    &der, &why), HEGN_ERR_INTERNAL);
	ck_assert_ptr_null(der.data);
	keyd_client_free(kc);
	keyd_client_free(NULL);
}
END_TEST

/*
 * The pool (docs/PRIVSEP.md "Concurrency").  A fake key side, one thread per
 * connection: it echoes a SIGN request's content as the reply's payload, so
 * a reply that reached the wrong thread shows, and it notes a second request
 * queued on a connection before the first was answered.
 */
#define POOL_N 2

struct fake_side {
	pthread_mutex_t lock;
	pthread_cond_t cv;
	int in_flight, most, met; /* met: POOL_N requests were at the key side at once */
	int overlapped;         /* a connection carried two requests at once */
	int held;               /* HOLD: the request arrived */
	int gate;               /* HOLD: may hang up now */
};

enum fake_mode { FAKE_ECHO, FAKE_HOLD };

struct fake_conn {
	pthread_t thread;
	int fd;
	enum fake_mode mode;
	struct fake_side *side;
	int served;
};

static void *
fake_serve(void *arg)
{
	struct fake_conn *fc = arg;
	struct fake_side *fs = fc->side;
	struct keyd_request req;
	struct buf m = { 0 }, rep = { 0 };
	struct timespec until;
	uint8_t peek[16];

	for (;;) {
		if (keyd_recv(fc->fd, MAX, &m, NULL) != 0 || m.len == 0 ||
		    keyd_request_decode(m.data, m.len, MAX, &req, NULL) != 0)
			break;
		pthread_mutex_lock(&fs->lock);
		if (fc->mode == FAKE_HOLD) {
			/* Take the request and hang up without a reply, when told. */
			fs->held = 1;
			pthread_cond_broadcast(&fs->cv);
			while (!fs->gate)
				pthread_cond_wait(&fs->cv, &fs->lock);
			pthread_mutex_unlock(&fs->lock);
			break;
		}
		if (++fs->in_flight > fs->most)
			fs->most = fs->in_flight;
		if (fs->in_flight >= POOL_N)
			fs->met = 1;
		pthread_cond_broadcast(&fs->cv);
		/*
		 * Until the pool has had POOL_N requests out at once, hold this
		 * one: a pool that used one connection at a time never gets
		 * there.  The bound only keeps such a pool from hanging the test.
		 */
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 30;
		while (!fs->met && pthread_cond_timedwait(&fs->cv, &fs->lock, &until) == 0)
			;
		pthread_mutex_unlock(&fs->lock);
		if (recv(fc->fd, peek, sizeof(peek), MSG_PEEK | MSG_DONTWAIT) > 0) {
			pthread_mutex_lock(&fs->lock);
			fs->overlapped = 1;
			pthread_mutex_unlock(&fs->lock);
		}
		ck_assert_int_eq(keyd_reply_encode(0, NULL, req.data, req.len, &rep, NULL), 0);
		pthread_mutex_lock(&fs->lock);
		fs->in_flight--;
		pthread_mutex_unlock(&fs->lock);
		fc->served++;
		buf_free(&m, 0);
		if (keyd_send(fc->fd, rep.data, rep.len, NULL) != 0)
			break;
		buf_free(&rep, 0);
	}
	buf_free(&m, 0);
	buf_free(&rep, 0);
	close(fc->fd);
	return NULL;
}

static struct keyd_client *
fake_start(struct fake_side *fs, struct fake_conn *fc, size_t n, const enum fake_mode *modes)
{
	int fds[POOL_N], p[2];
	size_t i;

	memset(fs, 0, sizeof(*fs));
	pthread_mutex_init(&fs->lock, NULL);
	pthread_cond_init(&fs->cv, NULL);
	for (i = 0; i < n; i++) {
		memset(&fc[i], 0, sizeof(fc[i]));
		pair(p);
		fds[i] = p[0];
		fc[i].fd = p[1];
		fc[i].mode = modes[i];
		fc[i].side = fs;
		ck_assert_int_eq(pthread_create(&fc[i].thread, NULL, fake_serve, &fc[i]), 0);
	}
	return keyd_client_new_pool(fds, n, MAX);
}

static void
fake_stop(struct fake_side *fs, struct fake_conn *fc, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		pthread_join(fc[i].thread, NULL);
	pthread_cond_destroy(&fs->cv);
	pthread_mutex_destroy(&fs->lock);
}

struct asker {
	pthread_t thread;
	struct keyd_client *kc;
	int id, rounds;
	int ok, wrong, failed, last_rc;
	char last_why[KEYD_WHY_MAX + 1];
};

static void *
ask(void *arg)
{
	struct asker *a = arg;
	struct buf out = { 0 };
	struct why why = { 0 };
	char content[64];
	int i, n, rc;

	for (i = 0; i < a->rounds; i++) {
		n = snprintf(content, sizeof(content), "asker %d, request %d", a->id, i);
		rc = keyd_client_sign(a->kc, "gateway", (const uint8_t *)content, (size_t)n, NULL,
		    &out, &why);
		a->last_rc = rc;
		if (rc != 0) {
			snprintf(a->last_why, sizeof(a->last_why), "%s", why.text);
			a->failed++;
			continue;
		}
		if (out.len == (size_t)n && memcmp(out.data, content, out.len) == 0)
			a->ok++;
		else
			a->wrong++;
		buf_free(&out, 0);
	}
	return NULL;
}

/* Six threads share two connections: both are used at once, each by one thread at a time. */
START_TEST(test_pool_shared)
{
	static const enum fake_mode modes[POOL_N] = { FAKE_ECHO, FAKE_ECHO };
	struct fake_side fs;
	struct fake_conn fc[POOL_N];
	struct asker as[6];
	struct keyd_client *kc;
	size_t i, peak = 0;
	int served = 0;

	kc = fake_start(&fs, fc, POOL_N, modes);
	ck_assert_uint_eq(keyd_client_size(kc, &peak), POOL_N);
	ck_assert_uint_eq(peak, 0);
	for (i = 0; i < 6; i++) {
		memset(&as[i], 0, sizeof(as[i]));
		as[i].kc = kc;
		as[i].id = (int)i;
		as[i].rounds = 25;
		ck_assert_int_eq(pthread_create(&as[i].thread, NULL, ask, &as[i]), 0);
	}
	for (i = 0; i < 6; i++) {
		pthread_join(as[i].thread, NULL);
		ck_assert_msg(as[i].failed == 0, "asker %zu: %s", i, as[i].last_why);
		ck_assert_int_eq(as[i].wrong, 0);
		ck_assert_int_eq(as[i].ok, 25);
	}
	ck_assert_msg(fs.met, "the pool never had %d requests out at once", POOL_N);
	ck_assert_int_eq(fs.most, POOL_N);
	ck_assert_int_eq(fs.overlapped, 0);
	ck_assert_uint_eq(keyd_client_size(kc, &peak), POOL_N);
	ck_assert_uint_eq(peak, POOL_N);
	keyd_client_free(kc);
	fake_stop(&fs, fc, POOL_N);
	for (i = 0; i < POOL_N; i++) {
		ck_assert_int_gt(fc[i].served, 0);
		served += fc[i].served;
	}
	ck_assert_int_eq(served, 6 * 25);
}
END_TEST

/*
 * The key side hangs up on a request in flight while another thread waits
 * for the only connection: both get an error, neither hangs, and so does
 * every later request.
 */
START_TEST(test_pool_dead)
{
	static const enum fake_mode modes[1] = { FAKE_HOLD };
	struct fake_side fs;
	struct fake_conn fc[1];
	struct asker as[2];
	struct keyd_client *kc;
	struct buf out = { 0 };
	struct why why = { 0 };
	size_t i;

	kc = fake_start(&fs, fc, 1, modes);
	for (i = 0; i < 2; i++) {
		memset(&as[i], 0, sizeof(as[i]));
		as[i].kc = kc;
		as[i].id = (int)i;
		as[i].rounds = 1;
		ck_assert_int_eq(pthread_create(&as[i].thread, NULL, ask, &as[i]), 0);
	}
	pthread_mutex_lock(&fs.lock);
	while (!fs.held)
		pthread_cond_wait(&fs.cv, &fs.lock);
	fs.gate = 1;
	pthread_cond_broadcast(&fs.cv);
	pthread_mutex_unlock(&fs.lock);
	for (i = 0; i < 2; i++) {
		pthread_join(as[i].thread, NULL);
		ck_assert_int_eq(as[i].failed, 1);
		ck_assert_int_eq(as[i].last_rc, HEGN_ERR_INTERNAL);
		ck_assert_ptr_nonnull(strstr(as[i].last_why, "unreachable"));
	}
	ck_assert_int_eq(keyd_client_sign(kc, "gateway", (const uint8_t *)msg, strlen(msg), NULL,
	    &out, &why), HEGN_ERR_INTERNAL);
	ck_assert_ptr_null(out.data);
	keyd_client_free(kc);
	fake_stop(&fs, fc, 1);
	/* A pool of nothing refuses at once. */
	kc = keyd_client_new_pool(NULL, 0, MAX);
	ck_assert_uint_eq(keyd_client_size(kc, NULL), 0);
	ck_assert_int_eq(keyd_client_sign(kc, "gateway", (const uint8_t *)msg, strlen(msg), NULL,
	    &out, &why), HEGN_ERR_INTERNAL);
	keyd_client_free(kc);
}
END_TEST

/* The workers of a key process, forked as hegnd forks its key process. */
struct keyside {
	pid_t pid;
	int fds[POOL_N];
};

static void
keyside_start(struct keyside *ks)
{
	struct signer *keys;
	struct audit_signer *audit = NULL;
	struct why why = { 0 };
	int sv[POOL_N][2], mine[POOL_N], rc;
	size_t i;

	for (i = 0; i < POOL_N; i++)
		pair(sv[i]);
	ks->pid = fork();
	ck_assert_int_ne(ks->pid, -1);
	if (ks->pid == 0) {
		for (i = 0; i < POOL_N; i++) {
			close(sv[i][0]);
			mine[i] = sv[i][1];
		}
		keys = signer_new();
		if (signer_load(keys, "gateway", wpath("a.key"), wpath("a.pem"), NULL, ENVELOPE_PSS,
		    &why) != 0 || audit_signer_load(wpath("audit.key"), "test.audit", &audit,
		    &why) != 0)
			_exit(3);
		rc = keyd_serve_workers(mine, POOL_N, keys, audit, MAX, &why);
		if (rc != 0)
			fprintf(stderr, "key side: %s\n", why.text);
		_exit(rc == 0 ? 0 : 1);
	}
	for (i = 0; i < POOL_N; i++) {
		close(sv[i][1]);
		ks->fds[i] = sv[i][0];
	}
}

/* The key side's exit status once it has ended. */
static int
keyside_wait(struct keyside *ks)
{
	int status;

	ck_assert_int_eq(waitpid(ks->pid, &status, 0), ks->pid);
	ck_assert(WIFEXITED(status));
	return WEXITSTATUS(status);
}

/* The workers of pid, from /proc (each thread's children; the key side has one). */
static size_t
keyside_workers(pid_t pid, pid_t *out, size_t max)
{
	char path[64];
	FILE *f;
	size_t n = 0;
	int child;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	while (n < max && fscanf(f, "%d", &child) == 1)
		out[n++] = (pid_t)child;
	fclose(f);
	return n;
}

static void
sign_ok(struct keyd_client *kc, const char *content)
{
	struct envelope_signed *v = NULL;
	struct buf der = { 0 };
	struct why why = { 0 };
	const uint8_t *c;
	size_t clen;

	struct buf detached = { 0 };
	uint8_t digest[32];

	/* What signer_sign does with a key in the key process: the digest there, the content here. */
	util_sha256(content, strlen(content), digest);
	ck_assert_msg(keyd_client_sign(kc, "gateway", digest, sizeof(digest), NULL, &detached,
	    &why) == 0, "%s", why.text);
	ck_assert_msg(envelope_attach(detached.data, detached.len, w.a, NULL,
	    (const uint8_t *)content, strlen(content), digest, &der, &why) == 0, "%s", why.text);
	buf_free(&detached, 0);
	ck_assert_int_eq(envelope_verify(w.pki, der.data, der.len, 0, &v, &why), 0);
	c = envelope_signed_content(v, &clen);
	ck_assert_uint_eq(clen, strlen(content));
	ck_assert_mem_eq(c, content, clen);
	envelope_signed_free(v);
	buf_free(&der, 0);
}

/*
 * Two worker processes: one answers while the other is stuck inside a
 * request; the checkpoint floor holds across them; a clean close ends them.
 */
START_TEST(test_workers)
{
	struct keyside ks;
	struct keyd_client *one, *two;
	struct buf big = { 0 }, in = { 0 };
	struct keyd_reply rep;
	struct why why = { 0 };
	uint8_t root[32], *content;
	pid_t workers[8];
	size_t n = 200000;
	char *note = NULL;

	keyside_start(&ks);
	/* A client per connection, so the test says which worker gets what. */
	one = keyd_client_new(ks.fds[0], MAX);
	two = keyd_client_new(ks.fds[1], MAX);
	sign_ok(one, "on the first connection");
	sign_ok(two, "on the second connection");
	ck_assert_uint_eq(keyside_workers(ks.pid, workers, 8), POOL_N);

	/* The floor is shared: a checkpoint on one connection binds the other. */
	memset(root, 0x5a, sizeof(root));
	ck_assert_msg(keyd_client_checkpoint(one, 9, root, &note, &why) == 0, "%s", why.text);
	free(note);
	ck_assert_int_eq(keyd_client_checkpoint(two, 8, root, &note, &why), HEGN_ERR_CONFLICT);
	ck_assert_ptr_null(note);
	ck_assert_int_eq(keyd_client_checkpoint(two, 9, root, &note, &why), 0);
	free(note);
	ck_assert_int_eq(keyd_client_checkpoint(one, 8, root, &note, &why), HEGN_ERR_CONFLICT);

	/*
	 * The first packet of a large request leaves the first worker waiting
	 * for the rest; the second still answers.  A key side serving its
	 * connections one at a time would hang here.
	 */
	content = xmalloc(n);
	memset(content, 'x', n);
	{
		struct keyd_request req;

		/* No request needs this much; one that comes is framed, read and refused. */
		memset(&req, 0, sizeof(req));
		req.type = KEYD_RSA_DECRYPT;
		snprintf(req.party, sizeof(req.party), "gateway");
		req.data = (const uint8_t *)content;
		req.len = n;
		ck_assert_int_eq(keyd_request_encode(&req, &big, NULL), 0);
	}
	ck_assert_int_gt(big.len, KEYD_PACKET);
	ck_assert_int_eq(send(ks.fds[0], big.data, KEYD_PACKET, MSG_NOSIGNAL), KEYD_PACKET);
	sign_ok(two, "while the first worker waits");
	ck_assert_int_eq(keyd_send(ks.fds[0], big.data + KEYD_PACKET, big.len - KEYD_PACKET, &why),
	    0);
	ck_assert_int_eq(keyd_recv(ks.fds[0], MAX + KEYD_SLACK, &in, &why), 0);
	ck_assert_int_eq(keyd_reply_decode(in.data, in.len, MAX + KEYD_SLACK, &rep, &why), 0);
	ck_assert_int_eq(rep.status, HEGN_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(rep.why, "block"));
	buf_free(&in, 0);
	buf_free(&big, 0);
	free(content);
	sign_ok(one, "the first again");

	/* Closing every connection ends the workers and the key side cleanly. */
	keyd_client_free(one);
	keyd_client_free(two);
	ck_assert_int_eq(keyside_wait(&ks), 0);
}
END_TEST

/* A worker killed: the key side kills the other and exits 1; no request hangs. */
START_TEST(test_worker_killed)
{
	struct keyside ks;
	struct keyd_client *kc;
	struct buf der = { 0 };
	struct why why = { 0 };
	pid_t workers[8];
	int i, failed = 0;

	keyside_start(&ks);
	kc = keyd_client_new_pool(ks.fds, POOL_N, MAX);
	sign_ok(kc, "before the kill");
	ck_assert_uint_eq(keyside_workers(ks.pid, workers, 8), POOL_N);
	ck_assert_int_eq(kill(workers[0], SIGKILL), 0);
	ck_assert_int_eq(keyside_wait(&ks), 1);
	ck_assert_int_ne(kill(workers[1], 0), 0);
	/* Both connections are dead now: the first request to find out fails, and all after it. */
	for (i = 0; i < 3; i++) {
		if (keyd_client_sign(kc, "gateway", (const uint8_t *)msg, strlen(msg), NULL, &der,
		    &why) != 0) {
			ck_assert_ptr_nonnull(strstr(why.text, "unreachable"));
			failed++;
		}
		buf_free(&der, 0);
	}
	ck_assert_int_eq(failed, 3);
	keyd_client_free(kc);
}
END_TEST

static Suite *
keyd_suite(void)
{
	Suite *s = suite_create("keyd");
	TCase *tc = tcase_create("framing");
	TCase *tk = tcase_create("served");

	tcase_add_test(tc, test_roundtrip);
	tcase_add_test(tc, test_truncated);
	tcase_add_test(tc, test_bad_header);
	tcase_add_test(tc, test_bad_fields);
	tcase_add_test(tc, test_transport);
	suite_add_tcase(s, tc);
	tcase_add_unchecked_fixture(tk, setup_world, teardown_world);
	tcase_set_timeout(tk, 60);
	tcase_add_test(tk, test_served);
	tcase_add_test(tk, test_decrypt_unreachable);
	tcase_add_test(tk, test_framing_error_ends);
	tcase_add_test(tk, test_pool_shared);
	tcase_add_test(tk, test_pool_dead);
	tcase_add_test(tk, test_workers);
	tcase_add_test(tk, test_worker_killed);
	suite_add_tcase(s, tk);
	return s;
}

TESTLIB_MAIN(keyd_suite)
