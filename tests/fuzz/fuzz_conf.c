/*
 * fuzz_conf: conf_load() on a configuration file.  inih reads from a path,
 * so each input is written to /tmp/hegn-fuzz-conf-PID.conf and removed again.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conf *c = NULL;
	struct why why = { 0 };
	char path[64];
	FILE *f;
	size_t i;
	int r;

	snprintf(path, sizeof(path), "/tmp/hegn-fuzz-conf-%ld.conf", (long)getpid());
	f = fopen(path, "wb");
	FUZZ_ASSERT(f != NULL);
	FUZZ_ASSERT(fwrite(data, 1, size, f) == size);
	FUZZ_ASSERT(fclose(f) == 0);

	r = conf_load(path, &c, &why);
	FUZZ_ASSERT((r == 0) == (c != NULL));
	if (r != 0)
		FUZZ_ASSERT(r == HEGN_ERR_CONFIG && why.text[0] != '\0');
	for (i = 0; c != NULL && i < c->nparties; i++) {
		FUZZ_ASSERT(c->parties[i].name != NULL);
		FUZZ_ASSERT(conf_party(c, c->parties[i].name) == &c->parties[i]);
		FUZZ_ASSERT(conf_role_name(c->parties[i].role) != NULL);
	}
	conf_free(c);
	unlink(path);
	return 0;
}
