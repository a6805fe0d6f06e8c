/*
 * merkle: the Merkle tree of the audit log, RFC 9162 section 2.1 (the same
 * tree as RFC 6962 section 2.1) with SHA-256.
 *
 * Leaf hash: SHA-256(0x00 || entry); node hash: SHA-256(0x01 || left ||
 * right); the hash of the empty tree is SHA-256 of the empty string.  The
 * domain-separation bytes keep a leaf from posing as an interior node.
 *
 * Proof functions take the leaf hashes (not the entries) and run in O(n)
 * time with O(log n) extra memory.  Verifiers never allocate.
 *
 * Verification results:
 *   0                   the proof verifies;
 *   HEGN_ERR_INVALID    the question or the proof is malformed: index not
 *                       below size, old size 0 or above new size, a proof
 *                       of the wrong length for the sizes;
 *   HEGN_ERR_SIGNATURE  the proof is well-formed but the hashes it yields
 *                       do not match the root(s): the log, the proof or the
 *                       root was altered.
 */
#ifndef HEGN_MERKLE_H
#define HEGN_MERKLE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define MERKLE_HASH_LEN 32

/*
 * Upper bound on the length of any proof for tree sizes below 2^64: an
 * inclusion proof has at most 64 hashes, a consistency proof at most 65.
 * Proof output arrays of this many hashes are always large enough.
 */
#define MERKLE_MAX_PROOF 65

/* The leaf hash of len bytes of data into out. */
void merkle_leaf_hash(const void *data, size_t len, uint8_t out[MERKLE_HASH_LEN]);

/* The interior node hash over left and right into out (out may alias either). */
void merkle_node_hash(const uint8_t left[MERKLE_HASH_LEN],
    const uint8_t right[MERKLE_HASH_LEN], uint8_t out[MERKLE_HASH_LEN]);

/* MTH(D[0:n]) over n leaf hashes into out; leaves may be NULL when n is 0. */
void merkle_root(const uint8_t (*leaves)[MERKLE_HASH_LEN], size_t n,
    uint8_t out[MERKLE_HASH_LEN]);

/*
 * The current tree head kept in memory: the roots of the perfect subtrees
 * that make up [0, size) (a compact range), so appending costs O(log n)
 * hashes and 2 KiB of memory whatever the size.
 */
struct merkle_tree;

/* A new empty tree; never NULL (allocation failure is fatal). */
struct merkle_tree *merkle_tree_new(void);

/* Append one leaf hash; 0, or HEGN_ERR_INVALID when the tree is full (2^64-1). */
int merkle_tree_append(struct merkle_tree *t, const uint8_t leaf[MERKLE_HASH_LEN]);

/* The number of leaves appended. */
uint64_t merkle_tree_size(const struct merkle_tree *t);

/* The tree head (MTH) of the leaves appended so far into out. */
void merkle_tree_root(const struct merkle_tree *t, uint8_t out[MERKLE_HASH_LEN]);

/* Free t; accepts NULL. */
void merkle_tree_free(struct merkle_tree *t);

/*
 * The audit path PATH(index, D[0:n]) of RFC 9162 section 2.1.3.1, ordered
 * from the leaf's sibling up to the root's child, into proof (room for cap
 * hashes; MERKLE_MAX_PROOF always suffices) and its length into *proof_len.
 * Returns 0, or HEGN_ERR_INVALID when index >= n or cap is too small.
 */
int merkle_inclusion_proof(const uint8_t (*leaves)[MERKLE_HASH_LEN], size_t n,
    size_t index, uint8_t (*proof)[MERKLE_HASH_LEN], size_t cap,
    size_t *proof_len, struct why *why);

/*
 * Verify that leaf_hash is entry index of the tree of the given size with
 * the given root (RFC 9162 section 2.1.3.2).  Returns 0, HEGN_ERR_INVALID
 * or HEGN_ERR_SIGNATURE as described above.
 */
int merkle_verify_inclusion(uint64_t index, uint64_t size,
    const uint8_t leaf_hash[MERKLE_HASH_LEN],
    const uint8_t (*proof)[MERKLE_HASH_LEN], size_t proof_len,
    const uint8_t root[MERKLE_HASH_LEN], struct why *why);

/*
 * The consistency proof PROOF(m_old, D[0:n_new]) of RFC 9162 section
 * 2.1.4.1 (SUBPROOF), into proof (room for cap hashes) and *proof_len.
 * m_old == n_new gives the empty proof.  Returns 0, or HEGN_ERR_INVALID when
 * m_old is 0 or above n_new, or cap is too small.
 */
int merkle_consistency_proof(const uint8_t (*leaves)[MERKLE_HASH_LEN],
    size_t n_new, size_t m_old, uint8_t (*proof)[MERKLE_HASH_LEN], size_t cap,
    size_t *proof_len, struct why *why);

/*
 * Verify that the tree of old_size leaves with old_root is a prefix of the
 * tree of new_size leaves with new_root (RFC 9162 section 2.1.4.2).  Equal
 * sizes need an empty proof and identical roots; a proof from the empty tree
 * is refused as meaningless.  Returns 0, HEGN_ERR_INVALID or
 * HEGN_ERR_SIGNATURE as described above.
 */
int merkle_verify_consistency(uint64_t old_size, uint64_t new_size,
    const uint8_t old_root[MERKLE_HASH_LEN],
    const uint8_t new_root[MERKLE_HASH_LEN],
    const uint8_t (*proof)[MERKLE_HASH_LEN], size_t proof_len,
    struct why *why);

#endif
