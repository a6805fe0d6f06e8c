/*
 * keyd: the key process and its IPC.
 *
 * The network process parses everything that arrives from the network and
 * runs unprivileged; the key process keeps the private keys and only ever
 * sees the few fixed-layout requests below, each checked field by field.
 * The framing is deliberately dull: every length is bounded before any
 * allocation, nothing is trusted across a framing error, and the key
 * process gives up the connection rather than try to resynchronise.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "audit.h"
#include "keyd.h"
#include "log.h"
#include "signer.h"
#include "xmalloc.h"

/* Encoding: a growing buffer. */
struct wbuf {
	uint8_t *p;
	size_t len, cap;
};

static void
w_bytes(struct wbuf *w, const void *data, size_t len)
{
	size_t cap;

	if (w->cap - w->len < len) {
		/*
		 * Doubling for the small fields; past that, exactly what is
		 * asked: a large blob is the last field of every message, and
		 * doubling for it would hold up to twice the content.
		 */
		cap = w->cap < 128 ? 256 : w->cap * 2;
		if (cap - w->len < len)
			cap = w->len + len;
		w->p = xrealloc(w->p, cap);
		w->cap = cap;
	}
	if (len > 0)
		memcpy(w->p + w->len, data, len);
	w->len += len;
}

static void
w_u8(struct wbuf *w, uint8_t v)
{
	w_bytes(w, &v, 1);
}

static void
w_u16(struct wbuf *w, uint16_t v)
{
	uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v };

	w_bytes(w, b, 2);
}

static void
w_u32(struct wbuf *w, uint32_t v)
{
	uint8_t b[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };

	w_bytes(w, b, 4);
}

static void
w_u64(struct wbuf *w, uint64_t v)
{
	w_u32(w, (uint32_t)(v >> 32));
	w_u32(w, (uint32_t)v);
}

static void
w_str(struct wbuf *w, const char *s)
{
	size_t n = strlen(s);

	w_u16(w, (uint16_t)n);
	w_bytes(w, s, n);
}

static void
w_blob(struct wbuf *w, const uint8_t *data, size_t len)
{
	w_u32(w, (uint32_t)len);
	w_bytes(w, data, len);
}

/* Start a message: the header with a length filled in by w_finish. */
static void
w_start(struct wbuf *w, enum keyd_type type)
{
	memset(w, 0, sizeof(*w));
	w_u32(w, KEYD_MAGIC);
	w_u16(w, KEYD_VERSION);
	w_u16(w, (uint16_t)type);
	w_u32(w, 0);
}

static void
w_finish(struct wbuf *w, struct buf *out)
{
	uint32_t n = (uint32_t)(w->len - KEYD_HDR_LEN);

	w->p[8] = (uint8_t)(n >> 24);
	w->p[9] = (uint8_t)(n >> 16);
	w->p[10] = (uint8_t)(n >> 8);
	w->p[11] = (uint8_t)n;
	out->data = w->p;
	out->len = w->len;
}

/* Decoding: a cursor that refuses to run past the end. */
struct rbuf {
	const uint8_t *p;
	size_t len, off;
	int bad;
};

static const uint8_t *
r_take(struct rbuf *r, size_t n)
{
	const uint8_t *p;

	if (r->bad || r->len - r->off < n) {
		r->bad = 1;
		return NULL;
	}
	p = r->p + r->off;
	r->off += n;
	return p;
}

static uint32_t
r_be(struct rbuf *r, size_t n)
{
	const uint8_t *p;
	uint32_t v = 0;
	size_t i;

	if ((p = r_take(r, n)) == NULL)
		return 0;
	for (i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

/* A name: 1..KEYD_NAME_MAX bytes, no NUL (it becomes a C string). */
static int
r_name(struct rbuf *r, char *dst, const char *field, struct why *why)
{
	const uint8_t *p;
	size_t n;

	n = r_be(r, 2);
	if (r->bad)
		return why_set(why, HEGN_ERR_INVALID, "keyd: message ends inside %s", field);
	if (n == 0 || n > KEYD_NAME_MAX)
		return why_set(why, HEGN_ERR_INVALID, "keyd: %s has length %zu (1 to %d)", field,
		    n, KEYD_NAME_MAX);
	if ((p = r_take(r, n)) == NULL)
		return why_set(why, HEGN_ERR_INVALID, "keyd: message ends inside %s", field);
	if (memchr(p, '\0', n) != NULL)
		return why_set(why, HEGN_ERR_INVALID, "keyd: %s contains a NUL byte", field);
	memcpy(dst, p, n);
	dst[n] = '\0';
	return 0;
}

static int
r_blob(struct rbuf *r, const uint8_t **data, size_t *len, const char *field, struct why *why)
{
	size_t n;

	n = r_be(r, 4);
	if (r->bad || (*data = r_take(r, n)) == NULL)
		return why_set(why, HEGN_ERR_INVALID, "keyd: message ends inside %s", field);
	*len = n;
	return 0;
}

/* Check the header of a whole message and point r at its body. */
static int
r_header(const uint8_t *msg, size_t len, size_t max, enum keyd_type *type, struct rbuf *r,
    struct why *why)
{
	struct rbuf h = { msg, len, 0, 0 };
	uint32_t magic, body;
	uint16_t version;

	memset(r, 0, sizeof(*r));
	if (msg == NULL || len < KEYD_HDR_LEN)
		return why_set(why, HEGN_ERR_INVALID, "keyd: message of %zu bytes is shorter "
		    "than the header", len);
	magic = r_be(&h, 4);
	version = (uint16_t)r_be(&h, 2);
	*type = (enum keyd_type)r_be(&h, 2);
	body = r_be(&h, 4);
	if (magic != KEYD_MAGIC)
		return why_set(why, HEGN_ERR_INVALID, "keyd: bad magic 0x%08x", (unsigned)magic);
	if (version != KEYD_VERSION)
		return why_set(why, HEGN_ERR_UNSUPPORTED, "keyd: version %u, expected %d",
		    (unsigned)version, KEYD_VERSION);
	if (body > max)
		return why_set(why, HEGN_ERR_TOO_LARGE, "keyd: body of %lu bytes exceeds %zu",
		    (unsigned long)body, max);
	if (body != len - KEYD_HDR_LEN)
		return why_set(why, HEGN_ERR_INVALID, "keyd: header says %lu bytes, message has %zu",
		    (unsigned long)body, len - KEYD_HDR_LEN);
	r->p = msg + KEYD_HDR_LEN;
	r->len = body;
	return 0;
}

static int
r_end(const struct rbuf *r, struct why *why)
{
	if (r->bad)
		return why_set(why, HEGN_ERR_INVALID, "keyd: message is truncated");
	if (r->off != r->len)
		return why_set(why, HEGN_ERR_INVALID, "keyd: %zu bytes left over after the message",
		    r->len - r->off);
	return 0;
}

int
keyd_request_encode(const struct keyd_request *req, struct buf *out, struct why *why)
{
	struct wbuf w;
	size_t n;

	out->data = NULL;
	out->len = 0;
	if (req->type == KEYD_SIGN || req->type == KEYD_RSA_DECRYPT || req->type == KEYD_ECDH) {
		n = strlen(req->party);
		if (n == 0 || n > KEYD_NAME_MAX)
			return why_set(why, HEGN_ERR_INVALID, "keyd: party name of %zu bytes", n);
		if (req->len > UINT32_MAX - KEYD_SLACK)
			return why_set(why, HEGN_ERR_TOO_LARGE, "keyd: %zu bytes is too large", req->len);
	}
	if (req->type == KEYD_SIGN && req->has_content_id &&
	    (strlen(req->content_id) == 0 || strlen(req->content_id) > KEYD_NAME_MAX))
		return why_set(why, HEGN_ERR_INVALID, "keyd: content id of %zu bytes",
		    strlen(req->content_id));
	switch (req->type) {
	case KEYD_SIGN:
		w_start(&w, KEYD_SIGN);
		w_str(&w, req->party);
		w_u8(&w, req->has_content_id ? 1 : 0);
		if (req->has_content_id)
			w_str(&w, req->content_id);
		w_blob(&w, req->data, req->len);
		break;
	case KEYD_RSA_DECRYPT:
	case KEYD_ECDH:
		w_start(&w, req->type);
		w_str(&w, req->party);
		w_blob(&w, req->data, req->len);
		break;
	case KEYD_CHECKPOINT:
		w_start(&w, KEYD_CHECKPOINT);
		w_u64(&w, req->size);
		w_bytes(&w, req->root, sizeof(req->root));
		break;
	default:
		return why_set(why, HEGN_ERR_INVALID, "keyd: no request of type %d", (int)req->type);
	}
	w_finish(&w, out);
	return 0;
}

int
keyd_request_decode(const uint8_t *msg, size_t len, size_t max, struct keyd_request *req,
    struct why *why)
{
	struct rbuf r;
	enum keyd_type type;
	const uint8_t *p;
	uint32_t flag;
	int rc;

	memset(req, 0, sizeof(*req));
	if ((rc = r_header(msg, len, max, &type, &r, why)) != 0)
		return rc;
	req->type = type;
	switch (type) {
	case KEYD_SIGN:
		if ((rc = r_name(&r, req->party, "party", why)) != 0)
			return rc;
		flag = r_be(&r, 1);
		if (r.bad || flag > 1)
			return why_set(why, HEGN_ERR_INVALID, "keyd: bad content id flag");
		req->has_content_id = (int)flag;
		if (flag && (rc = r_name(&r, req->content_id, "content id", why)) != 0)
			return rc;
		if ((rc = r_blob(&r, &req->data, &req->len, "digest", why)) != 0)
			return rc;
		break;
	case KEYD_RSA_DECRYPT:
	case KEYD_ECDH:
		if ((rc = r_name(&r, req->party, "party", why)) != 0 ||
		    (rc = r_blob(&r, &req->data, &req->len,
		    type == KEYD_ECDH ? "point" : "block", why)) != 0)
			return rc;
		break;
	case KEYD_CHECKPOINT:
		req->size = (uint64_t)r_be(&r, 4) << 32;
		req->size |= r_be(&r, 4);
		if ((p = r_take(&r, sizeof(req->root))) != NULL)
			memcpy(req->root, p, sizeof(req->root));
		break;
	default:
		return why_set(why, HEGN_ERR_UNSUPPORTED, "keyd: no request of type %d", (int)type);
	}
	return r_end(&r, why);
}

int
keyd_reply_encode(int status, const char *why_text, const uint8_t *payload, size_t len,
    struct buf *out, struct why *why)
{
	struct wbuf w;
	char text[KEYD_WHY_MAX + 1];

	out->data = NULL;
	out->len = 0;
	if (len > UINT32_MAX - KEYD_SLACK)
		return why_set(why, HEGN_ERR_TOO_LARGE, "keyd: reply of %zu bytes", len);
	/* A long reason is cut, not refused: the status is what matters. */
	snprintf(text, sizeof(text), "%s", why_text == NULL ? "" : why_text);
	w_start(&w, KEYD_REPLY);
	w_u32(&w, (uint32_t)status);
	w_str(&w, text);
	w_blob(&w, payload, len);
	w_finish(&w, out);
	return 0;
}

int
keyd_reply_decode(const uint8_t *msg, size_t len, size_t max, struct keyd_reply *rep,
    struct why *why)
{
	struct rbuf r;
	enum keyd_type type;
	const uint8_t *p;
	size_t n;
	int rc;

	memset(rep, 0, sizeof(*rep));
	if ((rc = r_header(msg, len, max, &type, &r, why)) != 0)
		return rc;
	if (type != KEYD_REPLY)
		return why_set(why, HEGN_ERR_UNSUPPORTED, "keyd: expected a reply, got type %d",
		    (int)type);
	rep->status = (int)(int32_t)r_be(&r, 4);
	n = r_be(&r, 2);
	if (r.bad || n > KEYD_WHY_MAX || (p = r_take(&r, n)) == NULL)
		return why_set(why, HEGN_ERR_INVALID, "keyd: bad reason text in the reply");
	if (memchr(p, '\0', n) != NULL)
		return why_set(why, HEGN_ERR_INVALID, "keyd: reason text contains a NUL byte");
	memcpy(rep->why, p, n);
	rep->why[n] = '\0';
	if ((rc = r_blob(&r, &rep->payload, &rep->len, "payload", why)) != 0)
		return rc;
	if ((rc = r_end(&r, why)) != 0)
		return rc;
	/* Only codes this program knows; anything else is the peer misbehaving. */
	if (rep->status > 0 || rep->status < HEGN_ERR_STORE)
		return why_set(why, HEGN_ERR_INVALID, "keyd: reply status %d is not an error code",
		    rep->status);
	if (rep->status != 0 && rep->len != 0)
		return why_set(why, HEGN_ERR_INVALID, "keyd: a failed reply carries a payload");
	return 0;
}

int
keyd_send(int fd, const uint8_t *msg, size_t len, struct why *why)
{
	size_t off = 0, n;
	ssize_t w;

	do {
		n = len - off > KEYD_PACKET ? KEYD_PACKET : len - off;
		w = send(fd, msg + off, n, MSG_NOSIGNAL);
		if (w == -1 && errno == EINTR)
			continue;
		if (w == -1)
			return why_set(why, HEGN_ERR_IO, "keyd: send: %s", strerror(errno));
		if ((size_t)w != n)
			return why_set(why, HEGN_ERR_IO, "keyd: short send (%zd of %zu)", w, n);
		off += n;
	} while (off < len);
	return 0;
}

/*
 * One packet of at most cap bytes.  A larger packet would be cut silently
 * by recv; MSG_TRUNC makes that an error instead.
 */
static int
recv_packet(int fd, uint8_t *dst, size_t cap, size_t *got, struct why *why)
{
	struct iovec iov;
	struct msghdr mh;
	ssize_t n;

	*got = 0;
	for (;;) {
		memset(&mh, 0, sizeof(mh));
		iov.iov_base = dst;
		iov.iov_len = cap;
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		if ((n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC)) == -1 && errno == EINTR)
			continue;
		break;
	}
	if (n == -1)
		return why_set(why, HEGN_ERR_IO, "keyd: receive: %s", strerror(errno));
	if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))
		return why_set(why, HEGN_ERR_TOO_LARGE, "keyd: a packet is larger than expected");
	*got = (size_t)n;
	return 0;
}

int
keyd_recv(int fd, size_t max, struct buf *out, struct why *why)
{
	uint8_t first[KEYD_PACKET];
	struct rbuf h;
	uint8_t *msg = NULL;
	size_t got, have, want, cap;
	uint32_t magic, body;
	uint16_t version;
	int rc;

	out->data = NULL;
	out->len = 0;
	if ((rc = recv_packet(fd, first, sizeof(first), &got, why)) != 0)
		goto out;
	if (got == 0) {
		/* The peer closed between messages: no message, no error. */
		rc = 0;
		goto out;
	}
	if (got < KEYD_HDR_LEN) {
		rc = why_set(why, HEGN_ERR_INVALID, "keyd: packet of %zu bytes is shorter than "
		    "the header", got);
		goto out;
	}
	/* Check the header before allocating what it asks for. */
	memset(&h, 0, sizeof(h));
	h.p = first;
	h.len = got;
	magic = r_be(&h, 4);
	version = (uint16_t)r_be(&h, 2);
	(void)r_be(&h, 2);
	body = r_be(&h, 4);
	if (magic != KEYD_MAGIC) {
		rc = why_set(why, HEGN_ERR_INVALID, "keyd: bad magic 0x%08x", (unsigned)magic);
		goto out;
	}
	if (version != KEYD_VERSION) {
		rc = why_set(why, HEGN_ERR_UNSUPPORTED, "keyd: version %u, expected %d",
		    (unsigned)version, KEYD_VERSION);
		goto out;
	}
	if (body > max) {
		rc = why_set(why, HEGN_ERR_TOO_LARGE, "keyd: body of %lu bytes exceeds %zu",
		    (unsigned long)body, max);
		goto out;
	}
	want = KEYD_HDR_LEN + (size_t)body;
	if (got > want) {
		rc = why_set(why, HEGN_ERR_INVALID, "keyd: packet carries %zu bytes beyond the "
		    "message", got - want);
		goto out;
	}
	msg = xmalloc(want);
	memcpy(msg, first, got);
	have = got;
	while (have < want) {
		cap = want - have > KEYD_PACKET ? KEYD_PACKET : want - have;
		if ((rc = recv_packet(fd, msg + have, cap, &got, why)) != 0)
			goto out;
		if (got == 0) {
			rc = why_set(why, HEGN_ERR_INVALID, "keyd: closed inside a message "
			    "(%zu of %zu bytes)", have, want);
			goto out;
		}
		have += got;
	}
	out->data = msg;
	out->len = want;
	msg = NULL;
	rc = 0;
out:
	if (msg != NULL)
		freezero(msg, want);
	explicit_bzero(first, sizeof(first));
	return rc;
}

/*
 * What the connections of one key side share: the floor for checkpoints.
 * The workers are processes forked from the one that loaded the keys, so
 * it lives in a shared mapping with a process-shared mutex.
 */
struct keyd_shared {
	pthread_mutex_t lock;
	uint64_t last_size;     /* entries of the largest checkpoint signed */
};

struct keyd_shared *
keyd_shared_new(struct why *why)
{
	pthread_mutexattr_t attr;
	struct keyd_shared *sh;
	void *p;

	p = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		why_set(why, HEGN_ERR_INTERNAL, "keyd: shared memory: %s", strerror(errno));
		return NULL;
	}
	sh = p;
	memset(sh, 0, sizeof(*sh));
	if (pthread_mutexattr_init(&attr) != 0 ||
	    pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED) != 0 ||
	    pthread_mutex_init(&sh->lock, &attr) != 0) {
		munmap(p, sizeof(*sh));
		why_set(why, HEGN_ERR_INTERNAL, "keyd: cannot make a process-shared lock");
		return NULL;
	}
	pthread_mutexattr_destroy(&attr);
	return sh;
}

void
keyd_shared_free(struct keyd_shared *sh)
{
	if (sh == NULL)
		return;
	pthread_mutex_destroy(&sh->lock);
	munmap(sh, sizeof(*sh));
}

/*
 * The key process: one request in, one reply out.  *msg, the message req
 * points into, is freed as soon as req has been used, before the reply is
 * made: a large content is not held three times (request, result, reply).
 */
static int
serve_one(const struct keyd_request *req, struct buf *msg, struct signer *s,
    struct audit_signer *a, struct keyd_shared *sh, struct buf *reply, struct why *why)
{
	struct buf out = { 0 };
	struct why w = { 0 };
	char *note = NULL;
	int status, rc;

	switch (req->type) {
	case KEYD_SIGN:
		status = signer_sign_digest(s, req->party, req->data, req->len,
		    req->has_content_id ? req->content_id : NULL, &out, &w);
		break;
	case KEYD_RSA_DECRYPT:
		status = signer_rsa_decrypt_raw(s, req->party, req->data, req->len, &out, &w);
		break;
	case KEYD_ECDH:
		status = signer_ecdh(s, req->party, req->data, req->len, &out, &w);
		break;
	case KEYD_CHECKPOINT:
		if (a == NULL) {
			status = why_set(&w, HEGN_ERR_NOT_FOUND, "the key process holds no audit key");
			break;
		}
		/*
		 * A checkpoint never covers fewer entries than one already
		 * signed, on any connection: the floor is shared, and held
		 * across the signature so two connections cannot race past it.
		 */
		pthread_mutex_lock(&sh->lock);
		if (req->size < sh->last_size) {
			status = why_set(&w, HEGN_ERR_CONFLICT, "checkpoint of %llu entries after "
			    "one of %llu", (unsigned long long)req->size,
			    (unsigned long long)sh->last_size);
			pthread_mutex_unlock(&sh->lock);
			break;
		}
		if ((status = audit_signer_sign(a, req->size, req->root, &note, &w)) == 0) {
			sh->last_size = req->size;
			out.data = (uint8_t *)note;
			out.len = strlen(note);
			note = NULL;
		}
		pthread_mutex_unlock(&sh->lock);
		break;
	default:
		status = why_set(&w, HEGN_ERR_UNSUPPORTED, "no request of type %d", (int)req->type);
		break;
	}
	buf_free(msg, 1);
	if (status != 0)
		buf_free(&out, 1);
	rc = keyd_reply_encode(status, status == 0 ? "" : w.text, out.data, out.len, reply, why);
	/* A content key or shared secret opens a citizen's data: it does not linger here. */
	buf_free(&out, 1);
	return rc;
}

int
keyd_serve(int fd, struct signer *s, struct audit_signer *a, size_t max, struct why *why)
{
	struct keyd_shared *sh;
	int rc;

	if ((sh = keyd_shared_new(why)) == NULL)
		return HEGN_ERR_INTERNAL;
	rc = keyd_serve_shared(fd, s, a, sh, max, why);
	keyd_shared_free(sh);
	return rc;
}

int
keyd_serve_shared(int fd, struct signer *s, struct audit_signer *a, struct keyd_shared *sh,
    size_t max, struct why *why)
{
	struct keyd_request req;
	struct buf msg = { 0 }, reply = { 0 };
	int rc;

	for (;;) {
		/* The network process closing (an empty message) is the normal end. */
		if ((rc = keyd_recv(fd, max, &msg, why)) != 0 || msg.len == 0)
			break;
		if ((rc = keyd_request_decode(msg.data, msg.len, max, &req, why)) != 0)
			break;
		rc = serve_one(&req, &msg, s, a, sh, &reply, why);
		if (rc != 0 || (rc = keyd_send(fd, reply.data, reply.len, why)) != 0)
			break;
		buf_free(&reply, 1);
	}
	buf_free(&msg, 1);
	buf_free(&reply, 1);
	return rc;
}

int
keyd_spawn(int (*init)(void *arg, const int *fds, size_t n), void *arg, size_t n, int *fds,
    pid_t *pid, struct why *why)
{
	struct sigaction sa;
	pid_t parent = getpid(), child;
	int sv[KEYD_WORKERS_MAX][2], mine[KEYD_WORKERS_MAX], rc = 0;
	size_t i, made = 0;

	*pid = -1;
	for (i = 0; i < n && i < KEYD_WORKERS_MAX; i++)
		fds[i] = -1;
	if (n == 0 || n > KEYD_WORKERS_MAX)
		return why_set(why, HEGN_ERR_INTERNAL, "keyd: %zu connections (1 to %d)", n,
		    KEYD_WORKERS_MAX);
	for (made = 0; made < n; made++) {
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv[made]) == -1) {
			rc = why_set(why, HEGN_ERR_INTERNAL, "keyd: socketpair: %s",
			    strerror(errno));
			goto fail;
		}
	}
	if ((child = fork()) == -1) {
		rc = why_set(why, HEGN_ERR_INTERNAL, "keyd: fork: %s", strerror(errno));
		goto fail;
	}
	if (child > 0) {
		for (i = 0; i < n; i++) {
			close(sv[i][1]);
			fds[i] = sv[i][0];
		}
		*pid = child;
		return 0;
	}
	/* The key process. */
	for (i = 0; i < n; i++)
		close(sv[i][0]);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1 || getppid() != parent)
		_exit(1);
	/*
	 * A terminal's ^C or a group-wide SIGTERM must not take the keys away
	 * from a network process that is still draining requests: the key
	 * process ends when that process closes the sockets, or dies.  The
	 * workers it forks inherit this.
	 */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGPIPE, &sa, NULL);
	/*
	 * Nothing else the parent had open (pipes, sockets) comes along; the
	 * sockets become 3, 4, ...  Each is first moved above that range so
	 * that no dup2 lands on one not yet moved.
	 */
	for (i = 0; i < n; i++) {
		if ((mine[i] = fcntl(sv[i][1], F_DUPFD, 3 + (int)n)) == -1)
			_exit(1);
		close(sv[i][1]);
	}
	for (i = 0; i < n; i++) {
		if (dup2(mine[i], 3 + (int)i) == -1)
			_exit(1);
		close(mine[i]);
		mine[i] = 3 + (int)i;
	}
	closefrom(3 + (int)n);
	_exit(init(arg, mine, n));
fail:
	for (i = 0; i < made; i++) {
		close(sv[i][0]);
		close(sv[i][1]);
	}
	return rc;
}

/*
 * Workers (docs/PRIVSEP.md "Concurrency").  One process answering one
 * request at a time put every private-key operation of the daemon on one
 * core.  The process that loaded the keys forks a worker per connection;
 * each worker serves only its own socket, so requests on different
 * connections run side by side, and none waits for another's reply.
 */
size_t
keyd_workers(int configured)
{
	long n = configured;

	if (n <= 0)
		n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		n = 1;
	return n > KEYD_WORKERS_MAX ? KEYD_WORKERS_MAX : (size_t)n;
}

/* A worker: its own connection only, until the peer closes it or breaks the framing. */
static void
worker_main(const int *fds, size_t n, size_t me, pid_t parent, struct signer *s,
    struct audit_signer *a, struct keyd_shared *sh, size_t max)
{
	struct why w = { 0 };
	size_t i;
	int rc;

	/* Dies with the process that holds the others, so no worker outlives a stop. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1 || getppid() != parent)
		_exit(1);
	for (i = 0; i < n; i++)
		if (i != me)
			close(fds[i]);
	if ((rc = keyd_serve_shared(fds[me], s, a, sh, max, &w)) != 0)
		log_error("keyd: worker %zu stopped (%s)", me + 1, w.text);
	/* No exit handlers: they belong to the process that forked this one. */
	_exit(rc == 0 ? 0 : 1);
}

int
keyd_serve_workers(const int *fds, size_t n, struct signer *s, struct audit_signer *a,
    size_t max, struct why *why)
{
	struct keyd_shared *sh = NULL;
	pid_t pids[KEYD_WORKERS_MAX], me = getpid(), p;
	size_t i, live = 0;
	int rc = 0, status;

	if (n == 0 || n > KEYD_WORKERS_MAX)
		rc = why_set(why, HEGN_ERR_INTERNAL, "keyd: %zu connections (1 to %d)", n,
		    KEYD_WORKERS_MAX);
	else if ((sh = keyd_shared_new(why)) == NULL)
		rc = HEGN_ERR_INTERNAL;
	for (i = 0; rc == 0 && i < n; i++) {
		if ((pids[i] = fork()) == -1) {
			rc = why_set(why, HEGN_ERR_INTERNAL, "keyd: fork: %s", strerror(errno));
			break;
		}
		if (pids[i] == 0)
			worker_main(fds, n, i, me, s, a, sh, max);
		live++;
	}
	/* This process answers no one itself: the workers hold the sockets. */
	for (i = 0; i < n; i++)
		close(fds[i]);
	/*
	 * The workers end together: when the network process closes every
	 * socket (a stop), each exits 0.  A worker that breaks off (a framing
	 * error, a crash, a kill) takes the others with it, and this process
	 * exits, which the network process sees and stops on: it cannot tell
	 * a half-working key side from a broken one.
	 */
	while (rc == 0 && live > 0) {
		if ((p = waitpid(-1, &status, 0)) == -1) {
			if (errno == EINTR)
				continue;
			rc = why_set(why, HEGN_ERR_INTERNAL, "keyd: waitpid: %s", strerror(errno));
			break;
		}
		for (i = 0; i < live && pids[i] != p; i++)
			;
		if (i == live)
			continue;
		pids[i] = pids[--live];
		if (WIFSIGNALED(status))
			rc = why_set(why, HEGN_ERR_INTERNAL, "a key worker was killed by signal %d",
			    WTERMSIG(status));
		else if (WEXITSTATUS(status) != 0)
			rc = why_set(why, HEGN_ERR_INTERNAL, "a key worker exited with status %d",
			    WEXITSTATUS(status));
	}
	for (i = 0; i < live; i++)
		kill(pids[i], SIGKILL);
	for (i = 0; i < live; i++)
		while (waitpid(pids[i], NULL, 0) == -1 && errno == EINTR)
			;
	keyd_shared_free(sh);
	return rc;
}

/*
 * The network process's side: a pool of connections.  A request takes an
 * idle one and gives it back with the reply, so at most as many requests
 * are at the key side as it has workers, and each connection carries one
 * exchange at a time.
 */
struct keyd_client {
	pthread_mutex_t lock;
	pthread_cond_t idle_cv;
	int fds[KEYD_WORKERS_MAX];      /* every connection */
	int idle[KEYD_WORKERS_MAX];     /* those free to take, a stack */
	size_t n, nidle, busy, peak;
	size_t max;
	int broken;             /* a request failed half-way: the key side is going */
};

struct keyd_client *
keyd_client_new_pool(const int *fds, size_t n, size_t max)
{
	struct keyd_client *c;
	size_t i;

	c = xcalloc(1, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->idle_cv, NULL);
	for (i = 0; i < n; i++) {
		if (i >= KEYD_WORKERS_MAX) {
			/* More than the key side ever gets: the rest are not used. */
			close(fds[i]);
			continue;
		}
		c->fds[c->n++] = fds[i];
		c->idle[c->nidle++] = fds[i];
	}
	c->max = max;
	if (c->n == 0)
		c->broken = 1;
	return c;
}

struct keyd_client *
keyd_client_new(int fd, size_t max)
{
	return keyd_client_new_pool(&fd, 1, max);
}

size_t
keyd_client_size(struct keyd_client *c, size_t *peak)
{
	size_t n;

	pthread_mutex_lock(&c->lock);
	n = c->n;
	if (peak != NULL)
		*peak = c->peak;
	pthread_mutex_unlock(&c->lock);
	return n;
}

void
keyd_client_free(struct keyd_client *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < c->n; i++)
		close(c->fds[i]);
	pthread_cond_destroy(&c->idle_cv);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* Send req on an idle connection, wait for its reply there. */
static int
roundtrip(struct keyd_client *c, const struct keyd_request *req, struct buf *out,
    struct why *why)
{
	struct buf msg = { 0 }, in = { 0 };
	struct keyd_reply rep;
	int rc, fd = -1;

	if ((rc = keyd_request_encode(req, &msg, why)) != 0)
		goto out;
	/* The key process would take an oversized request as a broken peer and hang up. */
	if (msg.len - KEYD_HDR_LEN > c->max) {
		rc = why_set(why, HEGN_ERR_TOO_LARGE, "%zu bytes is more than the key process takes "
		    "(%zu)", msg.len - KEYD_HDR_LEN, c->max);
		goto out;
	}
	pthread_mutex_lock(&c->lock);
	while (!c->broken && c->nidle == 0)
		pthread_cond_wait(&c->idle_cv, &c->lock);
	if (!c->broken) {
		fd = c->idle[--c->nidle];
		if (++c->busy > c->peak)
			c->peak = c->busy;
	}
	pthread_mutex_unlock(&c->lock);
	if (fd == -1) {
		rc = why_set(why, HEGN_ERR_INTERNAL, "the key process is unreachable");
		goto out;
	}
	/* The request (the content, for a signature) is not held while the reply comes. */
	if ((rc = keyd_send(fd, msg.data, msg.len, why)) == 0)
		buf_free(&msg, 1);
	if (rc != 0 ||
	    (rc = keyd_recv(fd, c->max + KEYD_SLACK, &in, why)) != 0 ||
	    (in.len == 0 && (rc = why_set(why, HEGN_ERR_IO, "keyd: closed")) != 0) ||
	    (rc = keyd_reply_decode(in.data, in.len, c->max + KEYD_SLACK, &rep, why)) != 0) {
		/*
		 * The stream is out of step and the key side is going down
		 * (its workers end together): every request fails from now
		 * on, and those waiting for a connection are woken to fail.
		 */
		pthread_mutex_lock(&c->lock);
		c->broken = 1;
		c->busy--;
		pthread_cond_broadcast(&c->idle_cv);
		pthread_mutex_unlock(&c->lock);
		log_error("keyd: the key process is unreachable (%s)", why != NULL ? why->text : "");
		rc = why_set(why, HEGN_ERR_INTERNAL, "the key process is unreachable");
		goto out;
	}
	pthread_mutex_lock(&c->lock);
	c->idle[c->nidle++] = fd;
	c->busy--;
	pthread_cond_signal(&c->idle_cv);
	pthread_mutex_unlock(&c->lock);
	if (rep.status != 0) {
		rc = why_set(why, rep.status, "%s", rep.why);
		goto out;
	}
	/* The payload moves to the front of the message it came in: no second copy. */
	memmove(in.data, rep.payload, rep.len);
	in.data[rep.len] = '\0';
	sodium_memzero(in.data + rep.len + 1, in.len - rep.len - 1);
	out->data = in.data;
	out->len = rep.len;
	in.data = NULL;
	in.len = 0;
	rc = 0;
out:
	buf_free(&msg, 1);
	buf_free(&in, 1);
	return rc;
}

int
keyd_client_sign(struct keyd_client *c, const char *party, const uint8_t *digest,
    size_t len, const char *content_id, struct buf *out, struct why *why)
{
	struct keyd_request req;

	out->data = NULL;
	out->len = 0;
	memset(&req, 0, sizeof(req));
	req.type = KEYD_SIGN;
	if (party == NULL || strlen(party) > KEYD_NAME_MAX ||
	    (content_id != NULL && strlen(content_id) > KEYD_NAME_MAX))
		return why_set(why, HEGN_ERR_INVALID, "keyd: party name or content id too long");
	snprintf(req.party, sizeof(req.party), "%s", party);
	if (content_id != NULL) {
		req.has_content_id = 1;
		snprintf(req.content_id, sizeof(req.content_id), "%s", content_id);
	}
	req.data = digest;
	req.len = len;
	return roundtrip(c, &req, out, why);
}

/* A request carrying one party's name and one blob. */
static int
party_blob(struct keyd_client *c, enum keyd_type type, const char *party, const uint8_t *data,
    size_t len, struct buf *out, struct why *why)
{
	struct keyd_request req;

	out->data = NULL;
	out->len = 0;
	memset(&req, 0, sizeof(req));
	req.type = type;
	if (party == NULL || strlen(party) > KEYD_NAME_MAX)
		return why_set(why, HEGN_ERR_INVALID, "keyd: party name too long");
	snprintf(req.party, sizeof(req.party), "%s", party);
	req.data = data;
	req.len = len;
	return roundtrip(c, &req, out, why);
}

int
keyd_client_rsa_decrypt(struct keyd_client *c, const char *party, const uint8_t *block,
    size_t len, struct buf *out, struct why *why)
{
	return party_blob(c, KEYD_RSA_DECRYPT, party, block, len, out, why);
}

int
keyd_client_ecdh(struct keyd_client *c, const char *party, const uint8_t *point,
    size_t len, struct buf *out, struct why *why)
{
	return party_blob(c, KEYD_ECDH, party, point, len, out, why);
}

int
keyd_client_checkpoint(struct keyd_client *c, uint64_t size, const uint8_t root[32],
    char **note, struct why *why)
{
	struct keyd_request req;
	struct buf out = { 0 };
	int rc;

	*note = NULL;
	memset(&req, 0, sizeof(req));
	req.type = KEYD_CHECKPOINT;
	req.size = size;
	memcpy(req.root, root, sizeof(req.root));
	if ((rc = roundtrip(c, &req, &out, why)) != 0)
		return rc;
	if (memchr(out.data, '\0', out.len) != NULL) {
		buf_free(&out, 0);
		return why_set(why, HEGN_ERR_INVALID, "keyd: checkpoint note contains a NUL byte");
	}
	*note = (char *)out.data;
	return 0;
}
