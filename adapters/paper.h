/*
 * paper: what fax and post share: render the message as a PDF into a
 * private temporary folder and hand the file to a configured command.
 */
#ifndef HEGN_PAPER_H
#define HEGN_PAPER_H

#include "adapter.h"

/* Default limit on the command's run time (seconds). */
#define PAPER_TIMEOUT_S 120

/*
 * Render msg's content and run t->command (or default_command) with the PDF:
 * the command is split on spaces and tabs (no shell, no quoting); an
 * argument "{file}" becomes the PDF's path, "{number}" the fax number and
 * "{id}" the message id; without "{file}" the path is appended.  The PDF is
 * removed afterwards.  Exit status 0 is a hand-over.  Returns 0,
 * HEGN_ERR_INVALID (message), HEGN_ERR_CONFIG (command or number) or
 * HEGN_ERR_IO (the command failed, was killed or timed out).
 */
int paper_deliver(const char *channel, const char *default_command,
    const struct adapter_msg *msg, const struct adapter_target *t,
    struct adapter_result *res, struct why *why);

#endif
