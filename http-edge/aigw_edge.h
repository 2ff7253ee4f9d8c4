/*  aigw_edge: the HTTP edge. CivetWeb turns each request into an envelope;
    one I/O thread (aigw_edge_io) owns the broker connection for all handler
    threads (ZeroMQ sockets are not thread-safe, and 10,000 of them would be
    the wrong shape) and may host pipeline stages itself. A handler queues
    its request to the I/O thread and waits on its own slot, bounded by the
    request's deadline, for the replies. */
#ifndef AIGW_EDGE_H_INCLUDED
#define AIGW_EDGE_H_INCLUDED

#include "aigw_config.h"

typedef struct _aigw_edge_t aigw_edge_t;

//  Start serving on config->host:config->port, talking to the broker at
//  BROKER_ENDPOINT, with STAGES (comma-separated, "" for none) run in the
//  edge's I/O thread (OWNS_SHARDS as in aigw_host_new). Returns NULL with
//  the reason in ERR on failure.
aigw_edge_t *aigw_edge_new (const aigw_config_t *config, const char *broker_endpoint,
                            const char *stages, bool owns_shards, char *err, size_t err_size);

//  The port actually bound.
int aigw_edge_port (aigw_edge_t *self);

//  Stop serving and free; safe on NULL and twice.
void aigw_edge_destroy (aigw_edge_t **self_p);

void aigw_edge_test (bool verbose);

#endif
