/*
 * replay: main() for a fuzz target built without libFuzzer.  It runs the
 * target once over every file of its seed corpus and reports the count, so
 * the corpus (valid seeds, malformed seeds and regressions) is checked by
 * every `make check`.
 *
 * usage: fuzz_NAME [FILE|DIR ...]
 * Without arguments the corpus is $FUZZ_CORPUS, else
 * tests/fuzz/corpus/NAME/ (see fuzz_path()), NAME taken from argv[0].
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

/* Larger than any seed; a bigger file is a mistake in the corpus. */
#define REPLAY_MAX_FILE (16u * 1024 * 1024)

/* Run the target on one file; 0, or -1 when the file cannot be read. */
static int
replay_file(const char *path)
{
	FILE *f = NULL;
	struct stat st;
	uint8_t *data = NULL;
	size_t size;
	int r = -1;

	if ((f = fopen(path, "rb")) == NULL || fstat(fileno(f), &st) == -1) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		goto out;
	}
	if (st.st_size < 0 || (uintmax_t)st.st_size > REPLAY_MAX_FILE) {
		fprintf(stderr, "replay: %s: larger than %u bytes\n", path, REPLAY_MAX_FILE);
		goto out;
	}
	size = (size_t)st.st_size;
	/* Exactly size bytes, so that AddressSanitizer sees any over-read. */
	if ((data = malloc(size == 0 ? 1 : size)) == NULL) {
		fprintf(stderr, "replay: %s: out of memory\n", path);
		goto out;
	}
	if (size > 0 && fread(data, 1, size, f) != size) {
		fprintf(stderr, "replay: %s: short read\n", path);
		goto out;
	}
	LLVMFuzzerTestOneInput(data, size);
	r = 0;
 out:
	free(data);
	if (f != NULL)
		fclose(f);
	return r;
}

/* Run the target on every regular file of dir, in name order; the count or -1. */
static long
replay_dir(const char *dir)
{
	struct dirent **names = NULL;
	struct stat st;
	char path[4096];
	long count = 0;
	int i, n;

	if ((n = scandir(dir, &names, NULL, alphasort)) == -1) {
		fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (count >= 0 && names[i]->d_name[0] != '.') {
			snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
			if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
				count = replay_file(path) == 0 ? count + 1 : -1;
		}
		free(names[i]);
	}
	free(names);
	return count;
}

/* The target's name: argv[0] without folder, libtool's "lt-" and "fuzz_". */
static const char *
target_name(const char *argv0)
{
	const char *s;

	if ((s = strrchr(argv0, '/')) != NULL)
		argv0 = s + 1;
	if (strncmp(argv0, "lt-", 3) == 0)
		argv0 += 3;
	if (strncmp(argv0, "fuzz_", 5) == 0)
		argv0 += 5;
	return argv0;
}

int
main(int argc, char **argv)
{
	struct stat st;
	char dir[4096], rel[256];
	const char *name, *env;
	long n, total = 0;
	int i;

	name = target_name(argc > 0 ? argv[0] : "fuzz");
	if (argc > 1) {
		for (i = 1; i < argc; i++) {
			if (stat(argv[i], &st) == -1) {
				fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
				return 1;
			}
			n = S_ISDIR(st.st_mode) ? replay_dir(argv[i]) :
			    (replay_file(argv[i]) == 0 ? 1 : -1);
			if (n < 0)
				return 1;
			total += n;
		}
		printf("fuzz_%s: replayed %ld inputs\n", name, total);
		return 0;
	}
	if ((env = getenv("FUZZ_CORPUS")) != NULL && *env != '\0')
		snprintf(dir, sizeof(dir), "%s", env);
	else {
		snprintf(rel, sizeof(rel), "corpus/%s", name);
		fuzz_path(rel, dir, sizeof(dir));
	}
	if ((n = replay_dir(dir)) < 0)
		return 1;
	/* A corpus that went missing must not pass as a clean run. */
	if (n == 0) {
		fprintf(stderr, "replay: %s holds no inputs\n", dir);
		return 1;
	}
	printf("fuzz_%s: replayed %ld inputs from %s\n", name, n, dir);
	return 0;
}
