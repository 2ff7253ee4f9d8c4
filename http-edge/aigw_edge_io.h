/*  aigw_edge_io: the edge's I/O thread, shared by every handler thread.

    Handlers hand requests over through a lock-free queue (the thread is
    woken only when it sleeps) and each waits on its own slot for the
    replies. The I/O thread owns the broker connection and, in `aigw run`,
    hosts the pipeline's stages itself (aigw_stage.h): a request then runs
    auth through provider in this thread, by function calls, and its reply
    wakes the handler once. Handler threads call the aigw_edge_io_* and
    aigw_slot_* functions; only the I/O thread touches a socket. */
#ifndef AIGW_EDGE_IO_H_INCLUDED
#define AIGW_EDGE_IO_H_INCLUDED

#include "aigw_client.h"
#include "aigw_config.h"
#include "aigw_envelope.h"

typedef struct _aigw_edge_io_t aigw_edge_io_t;
typedef struct _aigw_slot_t aigw_slot_t;

//  Connect to the broker at ENDPOINT and host STAGES (comma-separated, ""
//  for none: every request then goes through the broker). OWNS_SHARDS as
//  in aigw_host_new. Returns NULL, with the reason in ERR, on failure.
aigw_edge_io_t *aigw_edge_io_new (const aigw_config_t *config, const char *endpoint,
                                  const char *stages, bool owns_shards, char *err, size_t err_size);
void aigw_edge_io_destroy (aigw_edge_io_t **self_p);

//  Send a request (takes *ENV_P) to its first stage, env->route[env->hop],
//  and return the slot its replies arrive on. The caller owns the slot and
//  must free it with aigw_slot_destroy. Never NULL: a failure arrives as an
//  ERROR event. CLIENT_FD (-1: unknown) is the client's socket: when the
//  client hangs up, the request is cancelled through the stages and the
//  slot gets a final ERROR (499).
aigw_slot_t *aigw_edge_io_request (aigw_edge_io_t *self, aigw_envelope_t **env_p, int client_fd);

//  Ask the broker for its METRICS; the answer arrives on the slot.
aigw_slot_t *aigw_edge_io_metrics (aigw_edge_io_t *self);

//  Ask the broker for the latest worker reports of SERVICE (AIGW-BP/1
//  section 4a). The answer arrives on the slot as an AIGW_BP_CLIENT_REPORTS
//  event whose text is the JSON array; an ERROR event instead when the
//  broker is unreachable (503), SERVICE is not a valid service name (400) or
//  DEADLINE_MS (Unix ms) passed before the question left (504). Wait for it
//  with aigw_slot_wait (slot, DEADLINE_MS): a broker that predates REPORTS
//  never answers. The caller owns the slot (aigw_slot_destroy). Never NULL.
aigw_slot_t *aigw_edge_io_reports (aigw_edge_io_t *self, const char *service, int64_t deadline_ms);

//  Wait for the next event on SLOT until DEADLINE_MS (Unix ms). Returns an
//  event the caller owns, or NULL when the deadline passed.
aigw_client_event_t *aigw_slot_wait (aigw_slot_t *slot, int64_t deadline_ms);

//  Leave the slot; later replies for it are dropped, and a request that
//  has not had its final event is cancelled. Nulls *SELF_P.
void aigw_slot_destroy (aigw_slot_t **self_p);

//  Hand a finished request's usage record (takes *RECORD_P) to the I/O
//  thread. When the record holds a reservation, the thread sends the
//  rate-limit owner its settle (schemas/limits.md 3), one-way; with KEEP
//  it sends the record to the usage actor and sends it again later when
//  that fails (the record id makes a repeat harmless). Never wakes the I/O
//  thread: the record leaves at its next pass.
void aigw_edge_io_usage (aigw_edge_io_t *self, aigw_envelope_t **record_p, bool keep);

//  Hand RECORD's settle alone (its reservation and use so far) to the
//  I/O thread, as aigw_edge_io_usage would send it; RECORD stays the
//  caller's.
void aigw_edge_io_settle (aigw_edge_io_t *self, const aigw_envelope_t *record);

//  Readiness: writes a JSON object of live workers per stage into BUF and
//  returns true when the broker answers and every required stage has a
//  live worker.
bool aigw_edge_io_ready (aigw_edge_io_t *self, char *buf, size_t size);

void aigw_edge_io_test (bool verbose);

#endif
