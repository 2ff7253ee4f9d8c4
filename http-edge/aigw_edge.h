/*  aigw_edge: the HTTP edge. CivetWeb turns each request into an envelope;
    one I/O actor owns the broker connection for all handler threads (ZeroMQ
    sockets are not thread-safe, and 10,000 of them would be the wrong
    shape). A handler queues its request to the I/O actor and waits on its
    own condition variable, bounded by the request's deadline; the I/O actor
    routes each reply, by request id, to the waiting handler. */
#ifndef AIGW_EDGE_H_INCLUDED
#define AIGW_EDGE_H_INCLUDED

#include "aigw_config.h"

typedef struct _aigw_edge_t aigw_edge_t;

//  Start serving on config->host:config->port, talking to the broker at
//  BROKER_ENDPOINT. Returns NULL with the reason in ERR on failure.
aigw_edge_t *aigw_edge_new (const aigw_config_t *config, const char *broker_endpoint,
                            char *err, size_t err_size);

//  The port actually bound.
int aigw_edge_port (aigw_edge_t *self);

//  Stop serving and free; safe on NULL and twice.
void aigw_edge_destroy (aigw_edge_t **self_p);

void aigw_edge_test (bool verbose);

#endif
