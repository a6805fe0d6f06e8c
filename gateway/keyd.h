/*
 * keyd: the IPC between the network process and the key process
 * (docs/PRIVSEP.md).
 *
 * The key process holds every private key and answers three requests:
 * SIGN (CMS SignedData for a party), DECRYPT (open CMS (Auth)EnvelopedData
 * addressed to a party) and CHECKPOINT (sign an audit-log tree head).
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
 *	DECRYPT     str party, blob der
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
#define KEYD_VERSION    1
#define KEYD_HDR_LEN    12
#define KEYD_PACKET     65536           /* largest packet on the socket */
#define KEYD_NAME_MAX   128             /* party names and content ids */
#define KEYD_WHY_MAX    480             /* reason text in a reply */
/* Room beyond the largest request body for the CMS structure around it. */
#define KEYD_SLACK      (1024 * 1024)

enum keyd_type {
	KEYD_SIGN = 1,
	KEYD_DECRYPT = 2,
	KEYD_CHECKPOINT = 3,
	KEYD_REPLY = 0x80,
};

/* A decoded request; data points into the message it was decoded from. */
struct keyd_request {
	enum keyd_type type;
	char party[KEYD_NAME_MAX + 1];
	int has_content_id;
	char content_id[KEYD_NAME_MAX + 1];
	const uint8_t *data;            /* SIGN: content; DECRYPT: der */
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

/*
 * Fork the key process on a socketpair.  In the child, init(arg, fd) loads
 * the keys and serves (its return value is the exit status); the child
 * dies with its parent.  In the parent: 0, *fd and *pid.
 */
int keyd_spawn(int (*init)(void *arg, int fd), void *arg, int *fd, pid_t *pid,
    struct why *why);

/* The network process's side: one connection shared by every thread. */
struct keyd_client;

/*
 * A client on fd (taken: keyd_client_free closes it) for request bodies up to
 * max bytes (larger ones fail with HEGN_ERR_TOO_LARGE without being sent) and
 * replies up to max + KEYD_SLACK.
 */
struct keyd_client *keyd_client_new(int fd, size_t max);

/* Ask for a SignedData of content by party; like signer_sign. */
int keyd_client_sign(struct keyd_client *c, const char *party, const uint8_t *content,
    size_t len, const char *content_id, struct buf *out, struct why *why);

/* Ask to open der addressed to party; like signer_decrypt. */
int keyd_client_decrypt(struct keyd_client *c, const char *party, const uint8_t *der,
    size_t len, struct buf *out, struct why *why);

/* Ask for a signed checkpoint note (*note, free()) of the tree head; like checkpoint_sign. */
int keyd_client_checkpoint(struct keyd_client *c, uint64_t size, const uint8_t root[32],
    char **note, struct why *why);

/* Close the connection (the key process then exits) and free c; accepts NULL. */
void keyd_client_free(struct keyd_client *c);

#endif
