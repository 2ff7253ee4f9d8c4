/*  aigw_broker: the AIGW-BP/1 broker (schemas/broker-protocol.md) as a CZMQ
    actor. Start with zactor_new (aigw_broker_actor, &args); it signals 0 on
    the pipe once bound, -1 if the bind failed. Commands on the pipe: "$TERM". */
#ifndef AIGW_BROKER_H_INCLUDED
#define AIGW_BROKER_H_INCLUDED

#include <czmq.h>

//  Start-up settings; copied by the actor, so the caller may free them.
typedef struct {
    const char *endpoint;       //  ROUTER bind endpoint
    int heartbeat_ms;           //  heartbeat interval
    int liveness;               //  intervals of silence before a peer is dead
    int queue_max;              //  queued requests per service
} aigw_broker_args_t;

void aigw_broker_actor (zsock_t *pipe, void *args);

void aigw_broker_test (bool verbose);

#endif
