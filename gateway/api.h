/*
 * api: one handler per endpoint of the HTTP API (docs/api.md), routed from
 * one table.  Handlers translate between HTTP and relay; they hold no state.
 */
#ifndef HEGN_API_H
#define HEGN_API_H

#include "http.h"
#include "relay.h"

/* Answer req into resp; never fails (errors become error responses). */
void api_handle(struct relay *r, const struct http_request *req, struct http_response *resp);

/*
 * Whether req is refused before its body is read (unknown endpoint, or a
 * party's endpoint without a verified party): then 1 with resp filled.
 * The web page (/, /web...) is never refused here.
 */
int api_refuse_unread(const struct http_request *req, struct http_response *resp);

/*
 * Route method and path: the index of the route and its id (one path
 * segment, at most 64 characters, into id), or -1 (with *path_known set when
 * the path exists for another method).  Pure, for tests and fuzzing.
 */
int api_route(const char *method, const char *path, char id[65], int *path_known);

/* Fill resp with the JSON error body for code and reason. */
void api_error(struct http_response *resp, int code, const char *message);

#endif
