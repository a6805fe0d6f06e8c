/*
 * fuzz: what the fuzz targets share (test-only).
 *
 * Each tests/fuzz/fuzz_<name>.c defines LLVMFuzzerTestOneInput().  Built
 * with --enable-fuzzing it links libFuzzer; otherwise replay.c supplies a
 * main() that runs it over the seed corpus tests/fuzz/corpus/<name>/, so
 * every target is an ordinary `make check` test.
 *
 * A target aborts only when one of hegn's own promises is broken (a parse
 * that succeeds but cannot be serialised again, an id that is not what the
 * header promises): libFuzzer then keeps the input as a finding.  Refusing
 * bad input is the expected outcome, not a finding.
 */
#ifndef HEGN_FUZZ_H
#define HEGN_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef FUZZ_DIR
#define FUZZ_DIR "tests/fuzz"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * The path of name under tests/fuzz/: below $HEGN_TOP_SRCDIR when set (make
 * check sets it), else below the source folder the target was built from.
 */
static inline const char *
fuzz_path(const char *name, char *out, size_t len)
{
	const char *top = getenv("HEGN_TOP_SRCDIR");

	if (top != NULL && *top != '\0')
		snprintf(out, len, "%s/tests/fuzz/%s", top, name);
	else
		snprintf(out, len, "%s/%s", FUZZ_DIR, name);
	return out;
}

/* A broken promise, or fixtures that cannot be loaded: stop with the reason. */
#define FUZZ_ASSERT(cond) do {                                              \
	if (!(cond)) {                                                      \
		fprintf(stderr, "%s:%d: fuzz assertion failed: %s\n",       \
		    __FILE__, __LINE__, #cond);                             \
		abort();                                                    \
	}                                                                   \
} while (0)

#endif
