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

//  Rendezvous hashing (AIGW-BP section 5): the score of WORKER_ID for
//  SHARD_KEY is mix64 (fnv1a64 (shard key) XOR mix64 (fnv1a64 (worker id)));
//  the owner is the live worker with the highest score, ties to the greater
//  worker id. KEY_HASH is aigw_bp_fnv1a of the shard key, ID_HASH
//  aigw_bp_id_hash of the worker id.
uint64_t aigw_bp_fnv1a (const void *data, size_t size);
uint64_t aigw_bp_mix64 (uint64_t hash);
uint64_t aigw_bp_id_hash (const char *worker_id);
uint64_t aigw_bp_shard_score (uint64_t key_hash, uint64_t id_hash);

//  Keep a DIRECTORY answer (section 7): copies of the VERSION and TEXT
//  frames replace *VERSION_P and *TEXT_P (malloc'd strings), or nothing
//  changes when a copy cannot be made.
void aigw_bp_directory_keep (zmq_msg_t *version, zmq_msg_t *text, char **version_p,
                             char **text_p);

//  Payloads this small are copied into a message, not handed over.
#define AIGW_BP_COPY_MAX 32

//  Initialise MSG with the SIZE bytes at *DATA, taking the malloc'd buffer
//  (small ones are copied and freed) and nulling *DATA.
void aigw_bp_msg_take (zmq_msg_t *msg, char **data, size_t size);

#endif
