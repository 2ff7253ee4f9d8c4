/*  aigw_bp: AIGW-BP/1 wire helpers shared by worker and client. */
#include "aigw_bp.h"

int
aigw_bp_recv (void *handle, zmq_msg_t *frames, zframe_t **last, bool *oversized)
{
    zmq_msg_init (&frames[0]);
    if (zmq_msg_recv (&frames[0], handle, ZMQ_DONTWAIT) == -1) {
        zmq_msg_close (&frames[0]);
        return errno == EAGAIN ? 0 : -1;
    }
    int count = 1;
    bool more = zmq_msg_more (&frames[0]);
    while (more) {
        if (count < AIGW_BP_SMALL_FRAMES) {
            zmq_msg_init (&frames[count]);
            if (zmq_msg_recv (&frames[count], handle, 0) == -1) {
                zmq_msg_close (&frames[count]);
                *oversized = true;
                break;
            }
            more = zmq_msg_more (&frames[count]);
        }
        else if (count == AIGW_BP_SMALL_FRAMES) {
            *last = zframe_recv (handle);
            if (!*last) {
                *oversized = true;
                break;
            }
            more = zframe_more (*last);
        }
        else {
            zmq_msg_t scratch;
            zmq_msg_init (&scratch);
            int rc = zmq_msg_recv (&scratch, handle, 0);
            more = rc != -1 && zmq_msg_more (&scratch);
            zmq_msg_close (&scratch);
            *oversized = true;
        }
        count++;
    }
    return count;
}

#define S_FNV_OFFSET 0xcbf29ce484222325ULL
#define S_FNV_PRIME 0x100000001b3ULL

uint64_t
aigw_bp_fnv1a (const void *data, size_t size)
{
    const byte *bytes = (const byte *) data;
    uint64_t hash = S_FNV_OFFSET;
    for (size_t i = 0; i < size; i++) {
        hash ^= bytes[i];
        hash *= S_FNV_PRIME;
    }
    return hash;
}

uint64_t
aigw_bp_mix64 (uint64_t hash)
{
    hash ^= hash >> 33;
    hash *= 0xff51afd7ed558ccdULL;
    hash ^= hash >> 33;
    hash *= 0xc4ceb9fe1a85ec53ULL;
    hash ^= hash >> 33;
    return hash;
}

uint64_t
aigw_bp_id_hash (const char *worker_id)
{
    return aigw_bp_mix64 (aigw_bp_fnv1a (worker_id, strlen (worker_id)));
}

uint64_t
aigw_bp_shard_score (uint64_t key_hash, uint64_t id_hash)
{
    return aigw_bp_mix64 (key_hash ^ id_hash);
}

void
aigw_bp_directory_keep (zmq_msg_t *version, zmq_msg_t *text, char **version_p,
                        char **text_p)
{
    char *v = strndup ((const char *) zmq_msg_data (version), zmq_msg_size (version));
    char *t = strndup ((const char *) zmq_msg_data (text), zmq_msg_size (text));
    if (v && t) {
        free (*version_p);
        free (*text_p);
        *version_p = v;
        *text_p = t;
    }
    else {
        free (v);
        free (t);
    }
}

//  Free a buffer handed to ZeroMQ.
static void
s_free_data (void *data, void *hint)
{
    free (data);
}

void
aigw_bp_msg_take (zmq_msg_t *msg, char **data, size_t size)
{
    if (!*data || size <= AIGW_BP_COPY_MAX
        || zmq_msg_init_data (msg, *data, size, s_free_data, NULL) == -1) {
        zmq_msg_init_size (msg, *data ? size : 0);
        if (*data && size)
            memcpy (zmq_msg_data (msg), *data, size);
        free (*data);
    }
    *data = NULL;
}
