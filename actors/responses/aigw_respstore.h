/*  aigw_respstore: the responses stage (service "responses"), owner of the
    stored Responses (schemas/sql/013_responses.sql).

    It sits on the data path of POST /v1/responses only when the request
    names a previous_response_id, between guardrail and cache: it reads the
    previous response of the caller's tenant, puts the stored conversation
    in front of the request's input, and passes the request on
    (schemas/envelope.md 2c). It also answers GET and DELETE
    /v1/responses/{id} (and GET .../input_items), and takes the edge's
    store requests (method PUT): the answer the client is about to receive,
    written before the edge releases its end, so a follow-up sent the
    moment the answer arrives finds it. Expired rows (responses.ttl_s) are
    never answered and are deleted every responses.prune_s.

    Why a stage of its own: the edge never talks to the database, the
    provider stays a translator and router, and the table has one owner
    that reads it on the request path and writes it, driving one
    asynchronous connection (aigw_pgconn) from its host's loop, one
    statement at a time, in arrival order, so a store and a later read
    that reach the same process meet in order. Without a database it
    answers 404 (nothing is stored). */
#ifndef AIGW_RESPSTORE_H_INCLUDED
#define AIGW_RESPSTORE_H_INCLUDED

#include "aigw_stage.h"

//  Settings' defaults (deploy/aigw.example.yaml).
#define AIGW_RESPSTORE_DEFAULT_TTL_S         (30 * 24 * 3600)  //  as OpenAI keeps them
#define AIGW_RESPSTORE_DEFAULT_PRUNE_S       60
#define AIGW_RESPSTORE_DEFAULT_STORE_WAIT_MS 2000
//  Longest response id taken from a client.
#define AIGW_RESPSTORE_ID_MAX 256
//  Most operations waiting for the connection; past it, 503.
#define AIGW_RESPSTORE_QUEUE_MAX 10000
//  Most expired rows one prune deletes (the next prune takes the rest).
#define AIGW_RESPSTORE_PRUNE_ROWS 10000

//  The stage, for the host (aigw_stage.h).
extern const aigw_stage_def_t aigw_respstore_stage;

//  The follow-up request BODY (LEN bytes) with the stored conversation in
//  front of its input: INPUT_ITEMS and OUTPUT (JSON arrays: the previous
//  response's input items and output items) become plain Responses items
//  (ids, statuses and reasoning items dropped, so any provider takes
//  them), then the request's own input (a string becomes a user message).
//  Returns a new buffer the caller owns, with *OUT_LEN and *HISTORY (the
//  number of stored items in front); NULL when BODY or the arrays are not
//  what they should be.
char *aigw_respstore_followup (const char *body, size_t len, const char *input_items,
                               const char *output, size_t *out_len, size_t *history);

//  A request's INPUT (a string or an array of items; borrowed) as Responses
//  items: a new JSON array text the caller owns, or NULL.
char *aigw_respstore_items (const char *input_json);

void aigw_respstore_test (bool verbose);

#endif
