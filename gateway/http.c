#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <unistd.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <openssl/x509.h>
#include <openssl/evp.h>

#include "api.h"
#include "http.h"
#include "log.h"
#include "ratelimit.h"
#include "xmalloc.h"

/*
 * Request bodies larger than this draw on [limits] body_memory; smaller ones
 * are bounded by max_connections alone (16 MiB with the defaults).
 */
#define HTTP_BODY_FREE (64 * 1024)

/* "party NAME" or "address ADDR": NAME is at most 64 bytes, an address 50. */
#define HTTP_CLIENT_KEY RATELIMIT_KEY_MAX

struct http_server {
	struct MHD_Daemon *mhd;
	struct relay *relay;
	size_t max_body;
	struct ratelimit *rl;           /* requests per party per minute */
	struct buf cert_pem, key_pem, trust_pem;
	pthread_mutex_t body_lock;      /* guards the members below */
	size_t body_memory;             /* 0: no limit */
	size_t body_held;               /* reserved by the requests in progress */
	size_t body_share;              /* what one client may hold of it */
	struct body_client *clients;    /* the clients holding some, unordered */
	size_t nclients, clients_cap;
	unsigned long body_refused;     /* since the last warning */
	int64_t body_warned_ms;
};

/*
 * What one client (a party, or an address) holds of body_memory.  Without
 * a share, a client that announces large bodies and sends them slowly, or
 * not at all until the connection times out, holds all of body_memory with
 * a few connections, and every other large upload gets 503.
 */
struct body_client {
	char key[HTTP_CLIENT_KEY];
	size_t held;
};

/* Per-request state between libmicrohttpd's calls. */
struct pending {
	struct http_request req;
	/*
	 * A request refused before its body is read: what it is answered.  Its
	 * body is then read and dropped, never held.
	 */
	struct http_response early;
	int answered;
	size_t cap;
	size_t announced;               /* Content-Length, when sent and within the limit */
	size_t reserved;                /* bytes of body_memory this request holds */
	char client[HTTP_CLIENT_KEY];   /* whose share they count against (client_key) */
};

const char *
http_header(const struct http_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *
http_query(const struct http_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

/* Most certificates read from a TLS client's chain (leaf included). */
#define HTTP_MAX_PEER_CERTS 16

/*
 * Take the peer's chain from the GnuTLS session and verify it with OpenSSL:
 * libmicrohttpd's own client-certificate support requests a certificate but
 * serves the request whatever the client sent.
 */
static void
authenticate(struct http_server *s, struct MHD_Connection *conn, struct http_request *req)
{
	const union MHD_ConnectionInfo *ci;
	const gnutls_datum_t *peers;
	unsigned int n = 0, i;
	STACK_OF(X509) *chain = NULL;
	X509 *leaf = NULL, *x;
	const unsigned char *p;
	uint8_t key[32];
	char fp[65];
	int cacheable;

	req->party = NULL;
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (ci == NULL || ci->tls_session == NULL) {
		why_set(&req->auth, HEGN_ERR_UNAUTH, "not a TLS connection");
		return;
	}
	peers = gnutls_certificate_get_peers((gnutls_session_t)ci->tls_session, &n);
	if (peers == NULL || n == 0) {
		why_set(&req->auth, HEGN_ERR_UNAUTH, "no client certificate presented");
		return;
	}
	req->cert_presented = 1;
	/* A real chain is two or three certificates; a long one is refused unread. */
	if (n > HTTP_MAX_PEER_CERTS) {
		why_set(&req->auth, HEGN_ERR_UNAUTH,
		    "client certificate chain of %u certificates is longer than the %d accepted",
		    n, HTTP_MAX_PEER_CERTS);
		return;
	}
	/* A chain accepted within the last minute is not verified again (relay.c). */
	{
		EVP_MD_CTX *md = EVP_MD_CTX_new();
		uint32_t l;
		int ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;

		for (i = 0; ok && i < n; i++) {
			l = htonl(peers[i].size);
			ok = EVP_DigestUpdate(md, &l, sizeof(l)) == 1 &&
			    EVP_DigestUpdate(md, peers[i].data, peers[i].size) == 1;
		}
		cacheable = ok && EVP_DigestFinal_ex(md, key, NULL) == 1;
		EVP_MD_CTX_free(md);
		if (cacheable && relay_auth_cached(s->relay, key, &req->party, fp) == 0) {
			relay_request_cert(fp);
			return;
		}
	}
	chain = sk_X509_new_null();
	for (i = 0; i < n; i++) {
		p = peers[i].data;
		if ((x = d2i_X509(NULL, &p, (long)peers[i].size)) == NULL ||
		    p != peers[i].data + peers[i].size) {
			X509_free(x);
			why_set(&req->auth, HEGN_ERR_UNAUTH, "client certificate %u is not valid DER", i);
			goto out;
		}
		if (i == 0)
			leaf = x;
		else
			sk_X509_push(chain, x);
	}
	if ((cacheable ? relay_authenticate_key(s->relay, key, leaf, chain, &req->party, &req->auth) :
	    relay_authenticate(s->relay, leaf, chain, &req->party, &req->auth)) != 0) {
		req->party = NULL;
	} else {
		pki_fingerprint(leaf, fp);
		relay_request_cert(fp);
	}
out:
	X509_free(leaf);
	sk_X509_pop_free(chain, X509_free);
}

/* A body read in pieces while it is sent (http_response.stream). */
struct stream {
	int (*read)(void *arg, uint64_t offset, uint8_t *out, size_t n, size_t *got);
	void (*free)(void *arg);
	void *arg;
};

#define STREAM_BLOCK (64 * 1024)

static ssize_t
stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct stream *st = cls;
	size_t got = 0;

	if (st->read(st->arg, pos, (uint8_t *)buf, max, &got) != 0)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	/* libmicrohttpd stops at the announced size: a short copy ends the connection. */
	if (got == 0)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	return (ssize_t)got;
}

static void
stream_free(void *cls)
{
	struct stream *st = cls;

	if (st->free != NULL)
		st->free(st->arg);
	free(st);
}

static enum MHD_Result
send_response(struct MHD_Connection *conn, struct http_response *resp)
{
	struct MHD_Response *r;
	struct stream *st;
	enum MHD_Result ret;

	if (resp->stream.read != NULL) {
		st = xmalloc(sizeof(*st));
		st->read = resp->stream.read;
		st->free = resp->stream.free;
		st->arg = resp->stream.arg;
		resp->stream.read = NULL;
		buf_free(&resp->body, 0);
		r = MHD_create_response_from_callback(resp->stream.size, STREAM_BLOCK, stream_read,
		    st, stream_free);
		if (r == NULL) {
			stream_free(st);
			return MHD_NO;
		}
	} else {
		r = MHD_create_response_from_buffer(resp->body.len, resp->body.data,
		    MHD_RESPMEM_MUST_FREE);
		if (r == NULL) {
			buf_free(&resp->body, 0);
			return MHD_NO;
		}
		resp->body.data = NULL;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
	    resp->content_type ? resp->content_type : "application/json");
	MHD_add_response_header(r, "Cache-Control", "no-store");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "Strict-Transport-Security", "max-age=31536000");
	if (resp->location[0] != '\0')
		MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION, resp->location);
	if (resp->digest[0] != '\0')
		MHD_add_response_header(r, "Digest-SHA256", resp->digest);
	if (resp->cookie[0][0] != '\0')
		MHD_add_response_header(r, MHD_HTTP_HEADER_SET_COOKIE, resp->cookie[0]);
	if (resp->cookie[1][0] != '\0')
		MHD_add_response_header(r, MHD_HTTP_HEADER_SET_COOKIE, resp->cookie[1]);
	if (resp->csp != NULL)
		MHD_add_response_header(r, "Content-Security-Policy", resp->csp);
	if (resp->retry_after != 0) {
		char ra[16];

		snprintf(ra, sizeof(ra), "%u", resp->retry_after);
		MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, ra);
	}
	ret = MHD_queue_response(conn, (unsigned int)resp->status, r);
	MHD_destroy_response(r);
	return ret;
}

/*
 * Who a request counts against for its rate and its share of body_memory:
 * the party of its certificate, else its client address (a sealed
 * submission may stand on its signature alone), as ratelimit_client_key
 * words it.
 */
static void
client_key(struct MHD_Connection *conn, const struct http_request *req, char key[HTTP_CLIENT_KEY])
{
	const union MHD_ConnectionInfo *ci;

	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	ratelimit_client_key(ci != NULL ? ci->client_addr : NULL,
	    req->party != NULL ? req->party->name : NULL, key);
}

/* A party over its requests per minute (or an address, see client_key) gets 429 and when to come back. */
static int
rate_limited(struct http_server *s, const char *key, struct http_response *resp)
{
	struct why w = { 0 };
	unsigned int retry_after = 0;

	if (ratelimit_take(s->rl, key, util_now_ms(), &retry_after, &w) == 0)
		return 0;
	log_debug("http: %s", w.text);
	api_error(resp, HEGN_ERR_RATE, w.text);
	resp->retry_after = retry_after;
	return 1;
}

/*
 * Reserve body_memory for pd's body to be want bytes in all: 0, or -1 when
 * there is no room.  Each body is taken whole or not at all: a body
 * announced by its Content-Length reserves that before any of it is read,
 * so an upload that starts is never refused halfway for another's sake.
 */
static struct body_client *
body_client(struct http_server *s, const char *key, int add)
{
	size_t i;

	for (i = 0; i < s->nclients; i++)
		if (strcmp(s->clients[i].key, key) == 0)
			return &s->clients[i];
	if (!add)
		return NULL;
	if (s->nclients == s->clients_cap) {
		s->clients_cap = s->clients_cap ? 2 * s->clients_cap : 16;
		s->clients = xrealloc(s->clients, s->clients_cap * sizeof(*s->clients));
	}
	memset(&s->clients[s->nclients], 0, sizeof(s->clients[0]));
	snprintf(s->clients[s->nclients].key, sizeof(s->clients[0].key), "%s", key);
	return &s->clients[s->nclients++];
}

/*
 * Reserve body_memory for pd's body to be want bytes in all: 0, or -1 when
 * there is no room, in all or in its client's share.  Each body is taken
 * whole or not at all: a body announced by its Content-Length reserves that
 * before any of it is read, so an upload that starts is never refused
 * halfway for another's sake.
 */
static int
body_reserve(struct http_server *s, struct pending *pd, size_t want)
{
	struct body_client *c;
	int64_t now;
	unsigned long refused;
	size_t more;
	int rc = 0;

	if (s->body_memory == 0 || want <= HTTP_BODY_FREE || want <= pd->reserved)
		return 0;
	more = want - pd->reserved;
	pthread_mutex_lock(&s->body_lock);
	c = body_client(s, pd->client, 1);
	if (more > s->body_memory - s->body_held || more > s->body_share - c->held) {
		rc = -1;
		if (c->held == 0)
			*c = s->clients[--s->nclients];
		s->body_refused++;
		/* Once a minute at most: a burst of refusals must not flood the log. */
		now = util_now_ms();
		if (now - s->body_warned_ms >= 60000) {
			refused = s->body_refused;
			s->body_refused = 0;
			s->body_warned_ms = now;
			pthread_mutex_unlock(&s->body_lock);
			log_warn("http: %lu request bod%s refused with 503: [limits] body_memory "
			    "(%zu bytes), or one client's share of it (%zu bytes), is held by the "
			    "uploads in progress", refused, refused == 1 ? "y" : "ies",
			    s->body_memory, s->body_share);
			return rc;
		}
	} else {
		s->body_held += more;
		c->held += more;
		pd->reserved = want;
	}
	pthread_mutex_unlock(&s->body_lock);
	return rc;
}

static void
body_release(struct http_server *s, struct pending *pd)
{
	struct body_client *c;

	if (pd->reserved == 0)
		return;
	pthread_mutex_lock(&s->body_lock);
	s->body_held -= pd->reserved;
	if ((c = body_client(s, pd->client, 0)) != NULL) {
		c->held -= pd->reserved;
		if (c->held == 0)
			*c = s->clients[--s->nclients];
	}
	pthread_mutex_unlock(&s->body_lock);
	pd->reserved = 0;
}

/* Answer pd with code and message, and read and drop the rest of its body. */
static void
answer_unread(struct http_server *s, struct pending *pd, int code, const char *message)
{
	buf_free(&pd->req.body, 1);
	pd->cap = 0;
	body_release(s, pd);
	api_error(&pd->early, code, message);
	if (code == HEGN_ERR_BUSY)
		pd->early.retry_after = 1;
	pd->answered = 1;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
    const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	struct http_server *s = cls;
	struct pending *pd = *con_cls;
	struct http_response resp;
	const char *cl;
	char msg[96];
	enum MHD_Result ret;

	if (pd == NULL) {
		pd = xcalloc(1, sizeof(*pd));
		*con_cls = pd;
		pd->req.method = method;
		pd->req.path = url;
		pd->req.conn = conn;
		pd->req.release = &pd->req.body;
		(void)version;
		/*
		 * Everything that can refuse a request without its body is
		 * decided here, before any of it is read: who is asking, the
		 * rate, the endpoint, the size.  Else anyone could make hegnd
		 * hold max_body for every connection it accepts.
		 */
		cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl != NULL && strtoull(cl, NULL, 10) > s->max_body) {
			snprintf(msg, sizeof(msg), "body: larger than the limit of %zu bytes", s->max_body);
			answer_unread(s, pd, HEGN_ERR_TOO_LARGE, msg);
			return MHD_YES;
		}
		if (cl != NULL)
			pd->announced = (size_t)strtoull(cl, NULL, 10);
		/* The audit's certificate of the request: set here, for this thread. */
		relay_request_cert(NULL);
		authenticate(s, conn, &pd->req);
		client_key(conn, &pd->req, pd->client);
		if (rate_limited(s, pd->client, &pd->early) ||
		    api_refuse_unread(&pd->req, &pd->early)) {
			pd->answered = 1;
			return MHD_YES;
		}
		if (pd->announced > 0 && body_reserve(s, pd, pd->announced) != 0)
			answer_unread(s, pd, HEGN_ERR_BUSY,
			    "body: hegn holds as many large request bodies as it may; try again later");
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		if (pd->answered) {
			/* Refused: the rest is read and dropped. */
		} else if (pd->req.body.len + *upload_data_size > s->max_body) {
			snprintf(msg, sizeof(msg), "body: larger than the limit of %zu bytes", s->max_body);
			answer_unread(s, pd, HEGN_ERR_TOO_LARGE, msg);
		} else {
			size_t need = pd->req.body.len + *upload_data_size + 1, cap;

			/*
			 * The buffer doubles as data arrives (what is allocated
			 * was sent, whatever a client announces), but never past
			 * the announced size: a large body is not held twice.
			 */
			if (need > pd->cap) {
				cap = need * 2;
				if (pd->announced >= need && cap > pd->announced + 1)
					cap = pd->announced + 1;
				if (cap > s->max_body + 1)
					cap = s->max_body + 1;
				/*
				 * What is reserved is body, not the terminating
				 * NUL; short of room for the doubling, exactly
				 * what came.
				 */
				if (body_reserve(s, pd, cap - 1) != 0) {
					cap = need;
					if (body_reserve(s, pd, cap - 1) != 0) {
						answer_unread(s, pd, HEGN_ERR_BUSY, "body: hegn holds as many "
						    "large request bodies as it may; try again later");
						*upload_data_size = 0;
						return MHD_YES;
					}
				}
				pd->cap = cap;
				pd->req.body.data = xrealloc(pd->req.body.data, pd->cap);
			}
			memcpy(pd->req.body.data + pd->req.body.len, upload_data, *upload_data_size);
			pd->req.body.len += *upload_data_size;
			pd->req.body.data[pd->req.body.len] = '\0';
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (pd->answered)
		return send_response(conn, &pd->early);
	memset(&resp, 0, sizeof(resp));
	api_handle(s->relay, &pd->req, &resp);
	ret = send_response(conn, &resp);
	return ret;
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct pending *pd = *con_cls;

	(void)conn;
	(void)toe;
	if (pd == NULL)
		return;
	/* Bodies can hold personal data: wipe them. */
	buf_free(&pd->req.body, 1);
	body_release(cls, pd);
	buf_free(&pd->early.body, 0);
	free(pd);
	*con_cls = NULL;
}

static void
on_mhd_error(void *cls, const char *fmt, va_list ap)
{
	char line[512];

	(void)cls;
	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	log_debug("http: %s", line);
}

int
http_start(struct relay *r, struct http_server **out, struct why *why)
{
	return http_start_dropping(r, NULL, NULL, out, why);
}

/* Privilege separation: the listening socket, bound while still root. */
static int
bind_listener(const struct conf *c, const struct sockaddr_storage *ss, int *fd,
    struct why *why)
{
	socklen_t len = ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) :
	    sizeof(struct sockaddr_in);
	int s, on = 1;

	*fd = -1;
	if ((s = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return why_set(why, HEGN_ERR_CONFIG, "cannot create a socket (%s)", strerror(errno));
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (ss->ss_family == AF_INET6)
		setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
	if (bind(s, (const struct sockaddr *)ss, len) == -1 || listen(s, 128) == -1) {
		close(s);
		return why_set(why, HEGN_ERR_CONFIG, "cannot listen on %s port %d (%s)", c->listen,
		    c->port, strerror(errno));
	}
	*fd = s;
	return 0;
}

int
http_start_dropping(struct relay *r, int (*drop)(void *arg, struct why *why), void *arg,
    struct http_server **out, struct why *why)
{
	struct MHD_OptionItem listen_opts[2];
	int listen_fd = -1;
	const struct conf *c = relay_conf(r);
	struct http_server *s;
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	unsigned int flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
	    MHD_USE_TLS | MHD_USE_ERROR_LOG;
	sigset_t block, old;
	int rc;

	*out = NULL;
	s = xcalloc(1, sizeof(*s));
	s->relay = r;
	s->max_body = (size_t)c->max_body;
	s->body_memory = (size_t)c->body_memory;
	/* A quarter, and room for one body of max_body (conf.c keeps body_memory >= max_body). */
	s->body_share = s->body_memory / 4 > s->max_body ? s->body_memory / 4 : s->max_body;
	pthread_mutex_init(&s->body_lock, NULL);
	s->rl = ratelimit_new((unsigned int)c->requests_per_minute, (unsigned int)c->request_burst);
	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, c->listen, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)c->port);
	} else if (inet_pton(AF_INET6, c->listen, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)c->port);
		flags |= MHD_USE_IPv6;
	} else {
		rc = why_set(why, HEGN_ERR_CONFIG, "listen: '%s' is not an IPv4 or IPv6 address",
		    c->listen);
		goto out;
	}
	if ((rc = util_read_file(c->tls_cert, 1 << 20, &s->cert_pem, why)) != 0 ||
	    (rc = util_read_file(c->tls_key, 1 << 20, &s->key_pem, why)) != 0 ||
	    (rc = util_read_file(c->anchors, 1 << 22, &s->trust_pem, why)) != 0) {
		rc = HEGN_ERR_CONFIG;
		goto out;
	}
	memset(listen_opts, 0, sizeof(listen_opts));
	listen_opts[0].option = MHD_OPTION_SOCK_ADDR;
	listen_opts[0].ptr_value = &ss;
	listen_opts[1].option = MHD_OPTION_END;
	if (drop != NULL) {
		if ((rc = bind_listener(c, &ss, &listen_fd, why)) != 0 || (rc = drop(arg, why)) != 0)
			goto out;
		listen_opts[0].option = MHD_OPTION_LISTEN_SOCKET;
		listen_opts[0].value = listen_fd;
		listen_opts[0].ptr_value = NULL;
	}
	/* Our threads leave signals to the main loop. */
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	s->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s,
	    MHD_OPTION_ARRAY, listen_opts,
	    MHD_OPTION_HTTPS_MEM_CERT, (const char *)s->cert_pem.data,
	    MHD_OPTION_HTTPS_MEM_KEY, (const char *)s->key_pem.data,
	    MHD_OPTION_HTTPS_MEM_TRUST, (const char *)s->trust_pem.data,
	    MHD_OPTION_HTTPS_PRIORITIES, HTTP_TLS_PRIORITIES,
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned int)c->max_connections,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)c->connection_timeout,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)c->max_header_bytes,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)c->connections_per_ip,
	    MHD_OPTION_EXTERNAL_LOGGER, on_mhd_error, s,
	    MHD_OPTION_END);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (s->mhd == NULL) {
		rc = why_set(why, HEGN_ERR_CONFIG,
		    "cannot listen on %s port %d (in use, or the TLS certificate/key is unusable)",
		    c->listen, c->port);
		goto out;
	}
	/* The daemon owns the listening socket now and closes it when it stops. */
	listen_fd = -1;
	*out = s;
	s = NULL;
	rc = 0;
out:
	if (listen_fd != -1)
		close(listen_fd);
	http_stop(s);
	return rc;
}

void
http_stop(struct http_server *s)
{
	if (s == NULL)
		return;
	if (s->mhd != NULL)
		MHD_stop_daemon(s->mhd);
	buf_free(&s->cert_pem, 0);
	buf_free(&s->key_pem, 1);
	buf_free(&s->trust_pem, 0);
	ratelimit_free(s->rl);
	pthread_mutex_destroy(&s->body_lock);
	free(s->clients);
	free(s);
}
