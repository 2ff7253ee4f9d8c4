/*  aigw_edge_io: the edge's one connection to the broker, shared by every
    handler thread through a locked queue (inbound) and per-request slots
    (outbound). Handler threads call the aigw_edge_io_* functions; the I/O
    actor thread alone touches the ZeroMQ socket. */
#ifndef AIGW_EDGE_IO_H_INCLUDED
#define AIGW_EDGE_IO_H_INCLUDED

#include "aigw_client.h"
#include "aigw_config.h"

typedef struct _aigw_edge_io_t aigw_edge_io_t;
typedef struct _aigw_slot_t aigw_slot_t;

//  Connect to the broker at ENDPOINT. Returns NULL on failure.
aigw_edge_io_t *aigw_edge_io_new (const aigw_config_t *config, const char *endpoint);
void aigw_edge_io_destroy (aigw_edge_io_t **self_p);

//  Send a request (encoded envelope, *DATA taken) to SERVICE and return the
//  slot its replies arrive on. The caller owns the slot and must free it
//  with aigw_slot_destroy. Never NULL: a failure arrives as an ERROR event.
aigw_slot_t *aigw_edge_io_request (aigw_edge_io_t *self, const char *service,
                                   int64_t deadline_ms, char **data, size_t size);

//  Ask the broker for its METRICS; the answer arrives on the slot.
aigw_slot_t *aigw_edge_io_metrics (aigw_edge_io_t *self);

//  Ask the broker for the latest worker reports of SERVICE (AIGW-BP/1
//  section 4a). The answer arrives on the slot as an AIGW_CLIENT_REPORTS
//  event whose text is the JSON array; an ERROR event instead when the
//  broker is unreachable (503), SERVICE is not a valid service name (400) or
//  DEADLINE_MS (Unix ms) passed before the question left (504). Wait for it
//  with aigw_slot_wait (slot, DEADLINE_MS): a broker that predates REPORTS
//  never answers. The caller owns the slot (aigw_slot_destroy). Never NULL.
aigw_slot_t *aigw_edge_io_reports (aigw_edge_io_t *self, const char *service,
                                   int64_t deadline_ms);

//  Wait for the next event on SLOT until DEADLINE_MS (Unix ms). Returns an
//  event the caller owns, or NULL when the deadline passed.
aigw_client_event_t *aigw_slot_wait (aigw_slot_t *slot, int64_t deadline_ms);

//  Unregister and free; later replies for it are dropped.
void aigw_slot_destroy (aigw_slot_t **self_p);

//  Readiness: writes a JSON object of live workers per stage into BUF and
//  returns true when the broker answers and every required stage has a
//  live worker.
bool aigw_edge_io_ready (aigw_edge_io_t *self, char *buf, size_t size);

void aigw_edge_io_test (bool verbose);

#endif
