/*
 * keyd: the IPC between the network process and the key process
 * (docs/PRIVSEP.md).
 *
 * The key process holds every private key and answers four requests: SIGN
 * (CMS SignedData for a party), RSA_DECRYPT (the bare RSA private-key
 * operation on one ciphertext block), ECDH (the shared secret with a peer's
 * public point) and CHECKPOINT (sign an audit-log tree head).  It parses no
 * message: opening a CMS (Auth)EnvelopedData happens in the network
 * process, which asks for the one private-key operation (keyproxy.c).
 *
 * A message is a 12-byte header in network byte order
 *
 *	magic   u32   "HGNK"
 *	version u16   KEYD_VERSION
 *	type    u16   enum keyd_type
 *	length  u32   bytes of body that follow
 *
 * then the body.  On the SOCK_SEQPACKET socket a message travels as one or
 * more packets of at most KEYD_PACKET bytes, the first starting with the
 * header.  Body fields: str = u16 length + bytes (no NUL), blob = u32 length
 * + bytes.
 *
 *	SIGN        str party, u8 has_id, [str content_id], blob content
 *	RSA_DECRYPT str party, blob block (as long as the modulus)
 *	ECDH        str party, blob point (X9.62 encoding on the key's curve)
 *	CHECKPOINT  u64 size, 32 bytes root hash
 *	REPLY       i32 status (0 or HEGN_ERR_*), str why, blob payload
 *
 * Anything else (a short packet, bytes left over, an unknown magic, version
 * or type, a length over the limit) is refused, and the key process closes
 * the connection on a framing error.
 */
#ifndef HEGN_KEYD_H
#define HEGN_KEYD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"
#include "util.h"

#define KEYD_MAGIC      0x48474e4bU     /* "HGNK" */
/* 2: SIGN carries the content's SHA-256; 3: RSA_DECRYPT and ECDH instead of DECRYPT */
#define KEYD_VERSION    3
#define KEYD_HDR_LEN    12
#define KEYD_PACKET     65536           /* largest packet on the socket */
#define KEYD_NAME_MAX   128             /* party names and content ids */
#define KEYD_WHY_MAX    480             /* reason text in a reply */
/* Room beyond the largest request body for a reply (a SignedData without content, a note). */
#define KEYD_SLACK      (1024 * 1024)
/*
 * The largest request body hegnd's key side takes.  Each request is names
 * and a digest, one RSA block (2 KiB for a 16384-bit key), one EC point or
 * a tree head, whatever the size of the message it is for.
 */
#define KEYD_REQUEST_MAX 16384

enum keyd_type {
	KEYD_SIGN = 1,
	/* 2 was DECRYPT, a whole EnvelopedData: never reused */
	KEYD_CHECKPOINT = 3,
	KEYD_RSA_DECRYPT = 4,
	KEYD_ECDH = 5,
	KEYD_REPLY = 0x80,
};

/* A decoded request; data points into the message it was decoded from. */
struct keyd_request {
	enum keyd_type type;
	char party[KEYD_NAME_MAX + 1];
	int has_content_id;
	char content_id[KEYD_NAME_MAX + 1];
	const uint8_t *data;            /* SIGN: the content's SHA-256; RSA_DECRYPT, ECDH: block, point */
	size_t len;
	uint64_t size;                  /* CHECKPOINT */
	uint8_t root[32];
};

/* A decoded reply; payload points into the message it was decoded from. */
struct keyd_reply {
	int status;
	char why[KEYD_WHY_MAX + 1];
	const uint8_t *payload;
	size_t len;
};

/* Encode req as a whole message (header and body) into *out; 0 or HEGN_ERR_INVALID. */
int keyd_request_encode(const struct keyd_request *req, struct buf *out, struct why *why);

/*
 * Decode a whole message of len bytes whose body may be at most max bytes.
 * 0, or HEGN_ERR_INVALID / HEGN_ERR_TOO_LARGE / HEGN_ERR_UNSUPPORTED naming
 * what is wrong.
 */
int keyd_request_decode(const uint8_t *msg, size_t len, size_t max, struct keyd_request *req,
    struct why *why);

/* Encode a reply (why may be NULL or ""); 0 or HEGN_ERR_INVALID. */
int keyd_reply_encode(int status, const char *why_text, const uint8_t *payload, size_t len,
    struct buf *out, struct why *why);

/* Decode a reply message; like keyd_request_decode. */
int keyd_reply_decode(const uint8_t *msg, size_t len, size_t max, struct keyd_reply *rep,
    struct why *why);

/* Send a whole message (from an encode function) as packets; 0 or HEGN_ERR_IO. */
int keyd_send(int fd, const uint8_t *msg, size_t len, struct why *why);

/*
 * Receive one whole message whose body may be at most max bytes into *out.
 * 0 (out->len 0 when the peer closed between messages); HEGN_ERR_IO;
 * HEGN_ERR_INVALID / HEGN_ERR_TOO_LARGE / HEGN_ERR_UNSUPPORTED for a bad
 * header or packet, after which the connection is unusable.
 */
int keyd_recv(int fd, size_t max, struct buf *out, struct why *why);

struct signer;
struct audit_signer;

/*
 * The key process's loop: answer requests on fd with the keys in s and the
 * checkpoint key in a (may be NULL) until the peer closes (returns 0) or
 * breaks the framing (returns the error).  Checkpoints must not shrink.
 */
int keyd_serve(int fd, struct signer *s, struct audit_signer *a, size_t max, struct why *why);

/* The most connections (and workers) a key side has. */
#define KEYD_WORKERS_MAX 64

/*
 * Fork the key process on n (1..KEYD_WORKERS_MAX) socketpairs.  In the
 * child, whose ends are descriptors 3 .. 3+n-1 and nothing else beyond
 * standard input, output and error, init(arg, fds, n) loads the keys and
 * serves (its return value is the exit status); the child dies with its
 * parent.  In the parent: 0, fds[0..n-1] and *pid.
 */
int keyd_spawn(int (*init)(void *arg, const int *fds, size_t n), void *arg, size_t n,
    int *fds, pid_t *pid, struct why *why);

/* The number of key-side connections for [limits] crypto_workers (0: online CPUs), at most KEYD_WORKERS_MAX. */
size_t keyd_workers(int configured);

/*
 * State the connections of one key side share, across the processes forked
 * after keyd_shared_new: the largest checkpoint signed.  NULL (why set) when
 * no shared mapping can be made.
 */
struct keyd_shared;
struct keyd_shared *keyd_shared_new(struct why *why);
void keyd_shared_free(struct keyd_shared *sh);

/* keyd_serve with the checkpoint floor in sh, shared with other connections. */
int keyd_serve_shared(int fd, struct signer *s, struct audit_signer *a, struct keyd_shared *sh,
    size_t max, struct why *why);

/*
 * The key process with several connections: fork a worker process per
 * fds[i] (each serving only that socket, dying with this process), close
 * every fds[i] here, and wait.  0 when every worker ended because the
 * network process closed its socket; when one worker fails or is killed,
 * the others are killed and HEGN_ERR_INTERNAL says which way it ended.
 */
int keyd_serve_workers(const int *fds, size_t n, struct signer *s, struct audit_signer *a,
    size_t max, struct why *why);

/*
 * The network process's side: a pool of connections shared by every thread.
 * A request takes an idle connection (waiting for one when all are busy) and
 * gives it back with the reply.  After a request fails half-way (the key
 * side closed, a framing error), every request fails, waiting ones too.
 */
struct keyd_client;

/* A client on the n connections fds (taken, like keyd_client_new's). */
struct keyd_client *keyd_client_new_pool(const int *fds, size_t n, size_t max);

/* The connections of c, and in *peak (may be NULL) the most ever in use at once. */
size_t keyd_client_size(struct keyd_client *c, size_t *peak);

/*
 * A client on fd (taken: keyd_client_free closes it) for request bodies up to
 * max bytes (larger ones fail with HEGN_ERR_TOO_LARGE without being sent) and
 * replies up to max + KEYD_SLACK.
 */
struct keyd_client *keyd_client_new(int fd, size_t max);

/*
 * Ask party's key for a SignedData without content or certificates, for
 * content whose SHA-256 is digest (len 32); like signer_sign_digest.
 * signer_sign attaches the content (envelope_attach).
 */
int keyd_client_sign(struct keyd_client *c, const char *party, const uint8_t *digest,
    size_t len, const char *content_id, struct buf *out, struct why *why);

/* Ask for party's RSA private-key operation on block; like signer_rsa_decrypt_raw. */
int keyd_client_rsa_decrypt(struct keyd_client *c, const char *party, const uint8_t *block,
    size_t len, struct buf *out, struct why *why);

/* Ask for party's ECDH shared secret with point; like signer_ecdh. */
int keyd_client_ecdh(struct keyd_client *c, const char *party, const uint8_t *point,
    size_t len, struct buf *out, struct why *why);

/* Ask for a signed checkpoint note (*note, free()) of the tree head; like checkpoint_sign. */
int keyd_client_checkpoint(struct keyd_client *c, uint64_t size, const uint8_t root[32],
    char **note, struct why *why);

/* Close the connection (the key process then exits) and free c; accepts NULL. */
void keyd_client_free(struct keyd_client *c);

#endif
