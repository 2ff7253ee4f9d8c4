/*  aigw_client: the client side of AIGW-BP/1, used by the HTTP edge's I/O
    actor. Owns one DEALER socket. Not thread-safe: one owning thread.
    Over tcp the socket reconnects by itself after a broker restart; over
    inproc a restarted broker needs a new client. */
#ifndef AIGW_CLIENT_H_INCLUDED
#define AIGW_CLIENT_H_INCLUDED

#include "aigw_bp.h"
#include "aigw_envelope.h"

typedef struct _aigw_client_t aigw_client_t;

//  One message from the broker; the caller owns it.
typedef struct {
    int type;              //  AIGW_BP_CLIENT_REPLY (an envelope chunk; LAST
                           //  in flags ends it), _ERROR (broker-made, always
                           //  final), or _STATUS, _METRICS, _REPORTS (the
                           //  answers to aigw_client_status, _metrics, _reports)
    char *request_id;      //  REPLY and ERROR
    bool last;             //  REPLY: final message of the request
    zframe_t *envelope;    //  REPLY: encoded envelope
    aigw_envelope_t *env;  //  REPLY from a stage in this process: the
                           //  envelope itself, and no envelope frame
    int status;            //  ERROR: HTTP status
    char *text;            //  ERROR message, STATUS, METRICS or REPORTS text
} aigw_client_event_t;

aigw_client_t *aigw_client_new (const char *endpoint, int heartbeat_ms, int liveness);
void aigw_client_destroy (aigw_client_t **self_p);
zsock_t *aigw_client_sock (aigw_client_t *self);

//  Send a request to SERVICE. Takes *DATA (malloc'd, SIZE bytes).
int aigw_client_send (aigw_client_t *self, const char *service, const char *shard_key,
                      const char *request_id, int64_t deadline_ms, char **data, size_t size);

//  Ask for STATUS / METRICS; the answer arrives as an event.
int aigw_client_status (aigw_client_t *self);
int aigw_client_metrics (aigw_client_t *self);

//  Ask for the latest worker reports of SERVICE (AIGW-BP/1 section 4a); the
//  answer arrives as an AIGW_BP_CLIENT_REPORTS event whose text is a JSON
//  array (see schemas/broker-protocol.md). Answers come in the order asked.
//  A broker that predates REPORTS never answers: wait with a deadline.
//  Returns 0, or -1 if SERVICE is NULL or the socket would not take it.
int aigw_client_reports (aigw_client_t *self, const char *service);

//  Blocking one-shot for a thread that holds no client (the admin actor):
//  connects a temporary client to ENDPOINT (inproc, ipc or tcp), asks
//  REPORTS for SERVICE and waits for the answer, never past DEADLINE_MS
//  (Unix ms, as aigw_now_ms gives). Returns the JSON array text, which the
//  caller frees, or NULL with a reason in ERR (ERR_SIZE bytes; ERR may be
//  NULL) if the client could not be made or no answer came in time.
char *aigw_client_reports_once (const char *endpoint, const char *service, int64_t deadline_ms,
                                char *err, size_t err_size);

//  AIGW-BP/2: ask the broker for its directory at every heartbeat from now
//  on; it answers when it changed. The answer is kept, not returned as an
//  event.
void aigw_client_want_directory (aigw_client_t *self);

//  The latest directory (NULL before one came) and its version token in
//  *VERSION; both owned by the client, valid until the next recv.
const char *aigw_client_directory (aigw_client_t *self, const char **version);

//  Next waiting event without blocking, or NULL. Heartbeats handled inside.
aigw_client_event_t *aigw_client_recv (aigw_client_t *self);

//  Send heartbeats; returns ms until the next call is due.
int aigw_client_tick (aigw_client_t *self);

//  True while the broker answered within liveness intervals.
bool aigw_client_connected (aigw_client_t *self);

void aigw_client_event_destroy (aigw_client_event_t **self_p);

void aigw_client_test (bool verbose);

#endif
