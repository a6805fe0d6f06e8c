/*
 * fuzz_route: api_route() on a request line's method and path, as
 * libmicrohttpd hands them over; an id it returns is one path segment that
 * the message ids' rules then check.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy, *method, *path, id[65];
	int known = 0, i;

	/* "METHOD PATH": split at the first space; both NUL-terminated. */
	copy = malloc(size + 1);
	memcpy(copy, data, size);
	copy[size] = '\0';
	method = copy;
	path = strchr(copy, ' ');
	if (path != NULL)
		*path++ = '\0';
	else
		path = copy + strlen(copy);
	i = api_route(method, path, id, &known);
	FUZZ_ASSERT(strlen(id) <= 64);
	FUZZ_ASSERT(strchr(id, '/') == NULL);
	if (i >= 0)
		FUZZ_ASSERT(known);
	free(copy);
	return 0;
}
