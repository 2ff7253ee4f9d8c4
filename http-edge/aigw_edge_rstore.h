/*  aigw_edge_rstore: the edge's part in stored Responses (issue 15): for
    one POST /v1/responses, whether it names a previous response (the
    route then goes through the responses stage) and whether its answer is
    kept ("store" is true unless the client sent false, as in OpenAI's
    API); then, while the answer is relayed, finding its end (the Response
    object, or the stream event that completes it) and handing it to the
    responses stage before the client gets that end (schemas/envelope.md
    2c). What is stored is what the client receives: the edge's guardrail
    output check (aigw_edge_io) has run on every part before the relay
    sees it.

    One per request, used by its handler thread only. */
#ifndef AIGW_EDGE_RSTORE_H_INCLUDED
#define AIGW_EDGE_RSTORE_H_INCLUDED

#include "aigw_edge_io.h"
#include "aigw_envelope.h"

//  Largest partial stream event held while looking for the answer's end;
//  past it, the answer is not stored (it was never one event).
#define AIGW_EDGE_RSTORE_PENDING_MAX (16u * 1024 * 1024)

typedef struct _aigw_edge_rstore_t aigw_edge_rstore_t;

//  For the POST /v1/responses BODY (LEN bytes, a JSON object the edge
//  validated): NULL when the request neither stores nor names a previous
//  response (or out of memory). Caller owns the result.
aigw_edge_rstore_t *aigw_edge_rstore_new (const char *body, size_t len);

//  Destroy; safe on NULL and twice, nulls the caller's pointer.
void aigw_edge_rstore_destroy (aigw_edge_rstore_t **self_p);

//  True when the request names a previous_response_id.
bool aigw_edge_rstore_previous (const aigw_edge_rstore_t *self);

//  ANSWER is a part of the answer (LAST: its final part) about to go to
//  the client. When it holds the answer's end and the request stores,
//  send the store to the responses stage through IO and wait for it, at
//  most WAIT_MS: the client's next turn then finds the response. An
//  answer that cannot be stored still goes out (logged). REQUEST_ID names
//  the request in the log.
void aigw_edge_rstore_feed (aigw_edge_rstore_t *self, aigw_edge_io_t *io,
                            const aigw_envelope_t *answer, bool last, const char *request_id,
                            int64_t wait_ms);

//  The store request for RESPONSE (a Response object's JSON text, LEN
//  bytes) answering the request behind SELF, with ANSWER's principal and
//  deployment; NULL when out of memory. Caller owns it. (The feed's own
//  step, public for the selftest.)
aigw_envelope_t *aigw_edge_rstore_request (aigw_edge_rstore_t *self, const aigw_envelope_t *answer,
                                           const char *response, size_t len);

void aigw_edge_rstore_test (bool verbose);

#endif
