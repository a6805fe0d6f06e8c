/*
 * merkle: RFC 9162 section 2.1 Merkle tree hashing, inclusion and
 * consistency proofs over SHA-256 (libsodium).
 *
 * Every tree computation walks the leaves once, keeping only a stack of
 * perfect-subtree roots: a tree of n leaves is the fold, from the right, of
 * the perfect subtrees given by the set bits of n, which is exactly how
 * MTH splits at the largest power of two below n.
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include "err.h"
#include "merkle.h"
#include "xmalloc.h"

/* One entry per bit of a 64-bit size, and one more while merging. */
#define STACK_DEPTH 65

struct merkle_tree {
	uint64_t size;
	/* Roots of the perfect subtrees of [0, size), largest first. */
	uint8_t stack[STACK_DEPTH][MERKLE_HASH_LEN];
	int depth;
};

void
merkle_leaf_hash(const void *data, size_t len, uint8_t out[MERKLE_HASH_LEN])
{
	crypto_hash_sha256_state st;
	const uint8_t prefix = 0x00;

	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, &prefix, 1);
	if (len > 0)
		crypto_hash_sha256_update(&st, data, len);
	crypto_hash_sha256_final(&st, out);
}

void
merkle_node_hash(const uint8_t left[MERKLE_HASH_LEN],
    const uint8_t right[MERKLE_HASH_LEN], uint8_t out[MERKLE_HASH_LEN])
{
	crypto_hash_sha256_state st;
	const uint8_t prefix = 0x01;

	/* Both inputs are absorbed before out is written, so out may alias. */
	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, &prefix, 1);
	crypto_hash_sha256_update(&st, left, MERKLE_HASH_LEN);
	crypto_hash_sha256_update(&st, right, MERKLE_HASH_LEN);
	crypto_hash_sha256_final(&st, out);
}

static void
empty_root(uint8_t out[MERKLE_HASH_LEN])
{
	crypto_hash_sha256(out, (const unsigned char *)"", 0);
}

/* Number of significant bits of x (0 for 0). */
static unsigned int
bit_len(uint64_t x)
{
	unsigned int n = 0;

	while (x != 0) {
		n++;
		x >>= 1;
	}
	return n;
}

static unsigned int
pop_count(uint64_t x)
{
	unsigned int n = 0;

	while (x != 0) {
		n += (unsigned int)(x & 1);
		x >>= 1;
	}
	return n;
}

/* The largest power of two strictly below n; n must be at least 2. */
static uint64_t
split_point(uint64_t n)
{
	return (uint64_t)1 << (bit_len(n - 1) - 1);
}

/*
 * Push leaf number i (0-based) onto the stack and merge the completed
 * perfect subtrees: after leaf i, one merge per trailing one bit of i.
 */
static void
stack_push(uint8_t (*stack)[MERKLE_HASH_LEN], int *depth, uint64_t i,
    const uint8_t leaf[MERKLE_HASH_LEN])
{
	memcpy(stack[*depth], leaf, MERKLE_HASH_LEN);
	(*depth)++;
	for (; (i & 1) == 1; i >>= 1) {
		(*depth)--;
		merkle_node_hash(stack[*depth - 1], stack[*depth],
		    stack[*depth - 1]);
	}
}

/* Fold the stack from the right into the tree head. */
static void
stack_fold(const uint8_t (*stack)[MERKLE_HASH_LEN], int depth,
    uint8_t out[MERKLE_HASH_LEN])
{
	uint8_t acc[MERKLE_HASH_LEN];
	int i;

	if (depth == 0) {
		empty_root(out);
		return;
	}
	memcpy(acc, stack[depth - 1], MERKLE_HASH_LEN);
	for (i = depth - 2; i >= 0; i--)
		merkle_node_hash(stack[i], acc, acc);
	memcpy(out, acc, MERKLE_HASH_LEN);
}

void
merkle_root(const uint8_t (*leaves)[MERKLE_HASH_LEN], size_t n,
    uint8_t out[MERKLE_HASH_LEN])
{
	uint8_t stack[STACK_DEPTH][MERKLE_HASH_LEN];
	int depth = 0;
	size_t i;

	for (i = 0; i < n; i++)
		stack_push(stack, &depth, (uint64_t)i, leaves[i]);
	stack_fold((const uint8_t (*)[MERKLE_HASH_LEN])stack, depth, out);
}

struct merkle_tree *
merkle_tree_new(void)
{
	return xcalloc(1, sizeof(struct merkle_tree));
}

int
merkle_tree_append(struct merkle_tree *t, const uint8_t leaf[MERKLE_HASH_LEN])
{
	if (t->size == UINT64_MAX)
		return HEGN_ERR_INVALID;
	stack_push(t->stack, &t->depth, t->size, leaf);
	t->size++;
	return 0;
}

uint64_t
merkle_tree_size(const struct merkle_tree *t)
{
	return t->size;
}

void
merkle_tree_root(const struct merkle_tree *t, uint8_t out[MERKLE_HASH_LEN])
{
	stack_fold((const uint8_t (*)[MERKLE_HASH_LEN])t->stack, t->depth, out);
}

void
merkle_tree_free(struct merkle_tree *t)
{
	free(t);
}

/* Reverse the first n hashes of p: proofs are built root-first. */
static void
reverse_hashes(uint8_t (*p)[MERKLE_HASH_LEN], size_t n)
{
	uint8_t tmp[MERKLE_HASH_LEN];
	size_t i;

	for (i = 0; i < n / 2; i++) {
		memcpy(tmp, p[i], MERKLE_HASH_LEN);
		memcpy(p[i], p[n - 1 - i], MERKLE_HASH_LEN);
		memcpy(p[n - 1 - i], tmp, MERKLE_HASH_LEN);
	}
}

int
merkle_inclusion_proof(const uint8_t (*leaves)[MERKLE_HASH_LEN], size_t n,
    size_t index, uint8_t (*proof)[MERKLE_HASH_LEN], size_t cap,
    size_t *proof_len, struct why *why)
{
	size_t lo = 0, hi = n, m = index, len = 0, k;
	int r = HEGN_ERR_INVALID;

	*proof_len = 0;
	if (index >= n) {
		why_set(why, r, "inclusion proof: leaf index %zu is not below "
		    "the tree size %zu", index, n);
		goto out;
	}
	/*
	 * PATH(m, D[lo:hi]) is PATH of the half holding m followed by the
	 * root of the other half; walk down and reverse at the end.
	 */
	while (hi - lo > 1) {
		k = (size_t)split_point((uint64_t)(hi - lo));
		if (len >= cap) {
			why_set(why, r, "inclusion proof: more than %zu hashes",
			    cap);
			goto out;
		}
		if (m < k) {
			merkle_root(leaves + lo + k, hi - lo - k, proof[len]);
			hi = lo + k;
		} else {
			merkle_root(leaves + lo, k, proof[len]);
			lo += k;
			m -= k;
		}
		len++;
	}
	reverse_hashes(proof, len);
	*proof_len = len;
	r = 0;
 out:
	return r;
}

int
merkle_consistency_proof(const uint8_t (*leaves)[MERKLE_HASH_LEN],
    size_t n_new, size_t m_old, uint8_t (*proof)[MERKLE_HASH_LEN], size_t cap,
    size_t *proof_len, struct why *why)
{
	size_t lo = 0, hi = n_new, m = m_old, len = 0, k;
	int whole = 1, r = HEGN_ERR_INVALID;

	*proof_len = 0;
	if (m_old == 0 || m_old > n_new) {
		why_set(why, r, "consistency proof: old size %zu must be "
		    "between 1 and the new size %zu", m_old, n_new);
		goto out;
	}
	/*
	 * SUBPROOF(m, D[lo:hi], whole): whole says the old tree is the
	 * subtree itself, whose root the verifier already has.
	 */
	for (;;) {
		if (m == hi - lo) {
			if (whole)
				break;
			if (len >= cap)
				goto toolong;
			merkle_root(leaves + lo, hi - lo, proof[len++]);
			break;
		}
		if (len >= cap)
			goto toolong;
		k = (size_t)split_point((uint64_t)(hi - lo));
		if (m <= k) {
			merkle_root(leaves + lo + k, hi - lo - k, proof[len++]);
			hi = lo + k;
		} else {
			merkle_root(leaves + lo, k, proof[len++]);
			lo += k;
			m -= k;
			whole = 0;
		}
	}
	reverse_hashes(proof, len);
	*proof_len = len;
	r = 0;
	goto out;
 toolong:
	why_set(why, r, "consistency proof: more than %zu hashes", cap);
 out:
	return r;
}

/*
 * The length RFC 9162's verifier consumes for an inclusion proof of index
 * in a tree of size: one hash per level below the point where the paths to
 * index and to the last leaf part ("inner"), plus one per left sibling
 * above it ("border").
 */
static void
inclusion_shape(uint64_t index, uint64_t size, unsigned int *inner,
    unsigned int *border)
{
	*inner = bit_len(index ^ (size - 1));
	*border = pop_count(*inner >= 64 ? 0 : index >> *inner);
}

int
merkle_verify_inclusion(uint64_t index, uint64_t size,
    const uint8_t leaf_hash[MERKLE_HASH_LEN],
    const uint8_t (*proof)[MERKLE_HASH_LEN], size_t proof_len,
    const uint8_t root[MERKLE_HASH_LEN], struct why *why)
{
	uint8_t h[MERKLE_HASH_LEN];
	uint64_t fn, sn;
	unsigned int inner, border;
	size_t i;
	int r = HEGN_ERR_INVALID;

	if (index >= size) {
		why_set(why, r, "inclusion proof: leaf index %llu is not below "
		    "the tree size %llu", (unsigned long long)index,
		    (unsigned long long)size);
		goto out;
	}
	inclusion_shape(index, size, &inner, &border);
	if (proof_len != (size_t)inner + border) {
		why_set(why, r, "inclusion proof: %zu hashes where leaf %llu "
		    "of a tree of %llu needs %u", proof_len,
		    (unsigned long long)index, (unsigned long long)size,
		    inner + border);
		goto out;
	}
	/* RFC 9162 section 2.1.3.2, step by step. */
	fn = index;
	sn = size - 1;
	memcpy(h, leaf_hash, MERKLE_HASH_LEN);
	for (i = 0; i < proof_len; i++) {
		if (sn == 0) {
			why_set(why, r, "inclusion proof: hash %zu lies above "
			    "the root", i);
			goto out;
		}
		if ((fn & 1) == 1 || fn == sn) {
			merkle_node_hash(proof[i], h, h);
			while ((fn & 1) == 0 && fn != 0) {
				fn >>= 1;
				sn >>= 1;
			}
		} else
			merkle_node_hash(h, proof[i], h);
		fn >>= 1;
		sn >>= 1;
	}
	if (sn != 0) {
		why_set(why, r, "inclusion proof: too short to reach the root");
		goto out;
	}
	if (sodium_memcmp(h, root, MERKLE_HASH_LEN) != 0) {
		r = why_set(why, HEGN_ERR_SIGNATURE, "inclusion proof does not "
		    "verify: leaf %llu does not lead to the root of the tree of "
		    "%llu", (unsigned long long)index,
		    (unsigned long long)size);
		goto out;
	}
	r = 0;
 out:
	return r;
}

int
merkle_verify_consistency(uint64_t old_size, uint64_t new_size,
    const uint8_t old_root[MERKLE_HASH_LEN],
    const uint8_t new_root[MERKLE_HASH_LEN],
    const uint8_t (*proof)[MERKLE_HASH_LEN], size_t proof_len,
    struct why *why)
{
	uint8_t fr[MERKLE_HASH_LEN], sr[MERKLE_HASH_LEN];
	uint64_t fn, sn;
	unsigned int inner, border, shift;
	size_t i, start, want;
	int r = HEGN_ERR_INVALID;

	if (old_size > new_size) {
		why_set(why, r, "consistency proof: old size %llu exceeds new "
		    "size %llu", (unsigned long long)old_size,
		    (unsigned long long)new_size);
		goto out;
	}
	if (old_size == 0) {
		why_set(why, r, "consistency proof: a proof from the empty "
		    "tree proves nothing");
		goto out;
	}
	if (old_size == new_size) {
		if (proof_len != 0) {
			why_set(why, r, "consistency proof: equal sizes need "
			    "an empty proof, got %zu hashes", proof_len);
			goto out;
		}
		if (sodium_memcmp(old_root, new_root, MERKLE_HASH_LEN) != 0) {
			r = why_set(why, HEGN_ERR_SIGNATURE, "consistency "
			    "proof does not verify: trees of equal size %llu "
			    "have different roots",
			    (unsigned long long)old_size);
			goto out;
		}
		r = 0;
		goto out;
	}

	/*
	 * The proof is the old tree's last perfect subtree root (left out
	 * when the old tree is itself perfect: the verifier has it as the
	 * old root), then the inclusion path of the old tree's last leaf
	 * above that subtree's level.
	 */
	inclusion_shape(old_size - 1, new_size, &inner, &border);
	shift = 0;
	while (((old_size >> shift) & 1) == 0)
		shift++;
	inner -= shift;
	start = (old_size == (uint64_t)1 << shift) ? 0 : 1;
	want = start + inner + border;
	if (proof_len != want) {
		why_set(why, r, "consistency proof: %zu hashes where sizes "
		    "%llu to %llu need %zu", proof_len,
		    (unsigned long long)old_size,
		    (unsigned long long)new_size, want);
		goto out;
	}

	/* RFC 9162 section 2.1.4.2, step by step. */
	fn = old_size - 1;
	sn = new_size - 1;
	while ((fn & 1) == 1) {
		fn >>= 1;
		sn >>= 1;
	}
	memcpy(fr, start == 0 ? old_root : proof[0], MERKLE_HASH_LEN);
	memcpy(sr, fr, MERKLE_HASH_LEN);
	for (i = start; i < proof_len; i++) {
		if (sn == 0) {
			why_set(why, r, "consistency proof: hash %zu lies "
			    "above the root", i);
			goto out;
		}
		if ((fn & 1) == 1 || fn == sn) {
			merkle_node_hash(proof[i], fr, fr);
			merkle_node_hash(proof[i], sr, sr);
			while ((fn & 1) == 0 && fn != 0) {
				fn >>= 1;
				sn >>= 1;
			}
		} else
			merkle_node_hash(sr, proof[i], sr);
		fn >>= 1;
		sn >>= 1;
	}
	if (sn != 0) {
		why_set(why, r, "consistency proof: too short to reach the "
		    "new root");
		goto out;
	}
	if (sodium_memcmp(fr, old_root, MERKLE_HASH_LEN) != 0) {
		r = why_set(why, HEGN_ERR_SIGNATURE, "consistency proof does "
		    "not verify: it does not lead to the old root of size %llu",
		    (unsigned long long)old_size);
		goto out;
	}
	if (sodium_memcmp(sr, new_root, MERKLE_HASH_LEN) != 0) {
		r = why_set(why, HEGN_ERR_SIGNATURE, "consistency proof does "
		    "not verify: it does not lead to the new root of size %llu",
		    (unsigned long long)new_size);
		goto out;
	}
	r = 0;
 out:
	return r;
}
