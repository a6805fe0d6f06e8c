/*
 * testlib: what every unit test shares: a main() that runs one Suite, and
 * the location of the conformance data in ../shared (or $HEGN_SHARED).
 */
#ifndef HEGN_TESTLIB_H
#define HEGN_TESTLIB_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef HEGN_TOP_SRCDIR
#define HEGN_TOP_SRCDIR "."
#endif

/*
 * The shared conformance folder: $HEGN_SHARED, else ../shared beside the
 * source tree.  Returns NULL when neither exists (tests then report a skip).
 */
static inline const char *
testlib_shared_dir(void)
{
	static char path[4096];
	const char *env = getenv("HEGN_SHARED");
	const char *top = getenv("HEGN_TOP_SRCDIR");
	struct stat st;

	if (top == NULL || *top == '\0')
		top = HEGN_TOP_SRCDIR;
	if (env != NULL && *env != '\0') {
		snprintf(path, sizeof(path), "%s", env);
	} else {
		snprintf(path, sizeof(path), "%s/../shared", top);
	}
	if (stat(path, &st) == -1 || !S_ISDIR(st.st_mode))
		return NULL;
	return path;
}

/* Print a visible skip line (the suite keeps running). */
#define TESTLIB_SKIP(why) \
	fprintf(stderr, "SKIP: %s:%d: %s\n", __FILE__, __LINE__, (why))

/* main() for a test program whose suite is built by suite_fn(). */
#define TESTLIB_MAIN(suite_fn)                                        \
	int main(void)                                                \
	{                                                             \
		SRunner *sr = srunner_create(suite_fn());             \
		int failed;                                           \
		srunner_run_all(sr, CK_NORMAL);                       \
		failed = srunner_ntests_failed(sr);                   \
		srunner_free(sr);                                     \
		return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;     \
	}

#endif
