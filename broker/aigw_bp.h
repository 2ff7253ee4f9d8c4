/*  aigw_bp: wire helpers shared by the two peer sides of AIGW-BP/1 (the
    worker and the client); see schemas/broker-protocol.md. */
#ifndef AIGW_BP_H_INCLUDED
#define AIGW_BP_H_INCLUDED

#include <czmq.h>

//  Frames every peer message carries before its last (payload) frame:
//  header, command and two more (client: request id, flags or status;
//  worker: client identity, request id).
#define AIGW_BP_SMALL_FRAMES 4

//  Receive one message without blocking: the first AIGW_BP_SMALL_FRAMES
//  frames into FRAMES (the caller closes the ones counted), the next into
//  *LAST (the caller owns it), and discard any beyond, setting *OVERSIZED.
//  Returns the frame count, 0 if none waits, -1 on error.
int aigw_bp_recv (void *handle, zmq_msg_t *frames, zframe_t **last, bool *oversized);

//  Payloads this small are copied into a message, not handed over.
#define AIGW_BP_COPY_MAX 32

//  Initialise MSG with the SIZE bytes at *DATA, taking the malloc'd buffer
//  (small ones are copied and freed) and nulling *DATA.
void aigw_bp_msg_take (zmq_msg_t *msg, char **data, size_t size);

#endif
