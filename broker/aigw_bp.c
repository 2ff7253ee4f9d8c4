/*  aigw_bp: the broker protocol's shared helpers. */
#include "aigw_bp.h"

#include <stdarg.h>

#define S_DECIMAL_DIGITS_MAX 18  //  fits int64 with room to spare

bool
aigw_bp_name_valid (const char *name, size_t size)
{
    if (!name || size == 0 || size > AIGW_BP_NAME_MAX)
        return false;
    for (size_t i = 0; i < size; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.'
              || c == '_' || c == '-'))
            return false;
    }
    return true;
}

bool
aigw_bp_worker_id_valid (const void *data, size_t size)
{
    const byte *bytes = (const byte *) data;
    if (!data || size == 0 || size > AIGW_BP_WORKER_ID_MAX)
        return false;
    for (size_t i = 0; i < size; i++)
        if (bytes[i] < 0x21 || bytes[i] > 0x7e)
            return false;
    return true;
}

int
aigw_bp_decimal (const void *data, size_t size, size_t digits_max, int64_t *value)
{
    const byte *bytes = (const byte *) data;
    if (size == 0 || size > digits_max || size > S_DECIMAL_DIGITS_MAX)
        return -1;
    int64_t result = 0;
    for (size_t i = 0; i < size; i++) {
        if (bytes[i] < '0' || bytes[i] > '9')
            return -1;
        result = result * 10 + (bytes[i] - '0');
    }
    *value = result;
    return 0;
}

int
aigw_bp_send_head (void *handle, const char *header, byte cmd, bool more)
{
    if (zmq_send (handle, header, AIGW_BP_HEADER_SIZE, ZMQ_SNDMORE | ZMQ_DONTWAIT) == -1)
        return -1;
    zmq_send (handle, &cmd, 1, more ? ZMQ_SNDMORE | ZMQ_DONTWAIT : ZMQ_DONTWAIT);
    return 0;
}

void
aigw_bp_send_str (void *handle, const char *text)
{
    zmq_send (handle, text ? text : "", text ? strlen (text) : 0, ZMQ_SNDMORE | ZMQ_DONTWAIT);
}

int
aigw_bp_command (zmq_msg_t *header_frame, zmq_msg_t *command_frame, const char *header)
{
    if (zmq_msg_size (header_frame) != AIGW_BP_HEADER_SIZE
        || memcmp (zmq_msg_data (header_frame), header, AIGW_BP_HEADER_SIZE) != 0
        || zmq_msg_size (command_frame) != 1)
        return -1;
    return *(byte *) zmq_msg_data (command_frame);
}

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

int
aigw_bp_message_recv (aigw_bp_message_t *self, void *handle, const char *header)
{
    bool oversized = false;
    self->last = NULL;
    self->count = aigw_bp_recv (handle, self->frames, &self->last, &oversized);
    if (self->count <= 0)
        return self->count;
    self->cmd = self->count < 2 || oversized
                    ? -1
                    : aigw_bp_command (&self->frames[0], &self->frames[1], header);
    return 1;
}

void
aigw_bp_message_close (aigw_bp_message_t *self)
{
    for (int i = 0; i < self->count && i < AIGW_BP_SMALL_FRAMES; i++)
        zmq_msg_close (&self->frames[i]);
    zframe_destroy (&self->last);
}

#define S_FNV_OFFSET 0xcbf29ce484222325ULL
#define S_FNV_PRIME  0x100000001b3ULL

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
aigw_bp_directory_keep (zmq_msg_t *version, zmq_msg_t *text, char **version_p, char **text_p)
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

zmsg_t *
aigw_bp_expect (zsock_t *sock, const char *header, byte cmd, int timeout_ms)
{
    zpoller_t *poller = zpoller_new (sock, NULL);
    assert (poller);
    bool router = zsock_type (sock) == ZMQ_ROUTER;
    int64_t until = zclock_mono () + timeout_ms;
    zmsg_t *found = NULL;
    while (!found && zclock_mono () < until) {
        if (!zpoller_wait (poller, 5))
            continue;
        zmsg_t *msg = zmsg_recv (sock);
        assert (msg);
        zframe_t *head = router ? (zmsg_first (msg), zmsg_next (msg)) : zmsg_first (msg);
        zframe_t *command = zmsg_next (msg);
        if (head && command && zframe_streq (head, header) && zframe_size (command) == 1
            && *zframe_data (command) == cmd)
            found = msg;
        else
            zmsg_destroy (&msg);
    }
    zpoller_destroy (&poller);
    return found;
}

void
aigw_bp_test_send (zsock_t *sock, zframe_t *identity, const char *header, byte cmd, ...)
{
    zmsg_t *msg = zmsg_new ();
    assert (msg);
    zmsg_addmem (msg, zframe_data (identity), zframe_size (identity));
    zmsg_addstr (msg, header);
    zmsg_addmem (msg, &cmd, 1);
    va_list args;
    va_start (args, cmd);
    const char *text;
    while ((text = va_arg (args, const char *)))
        zmsg_addstr (msg, text);
    va_end (args);
    int rc = zmsg_send (&msg, sock);
    assert (rc == 0);
}

bool
aigw_bp_frame_is (zmsg_t *msg, size_t i, const char *text)
{
    zframe_t *frame = zmsg_first (msg);
    while (frame && i--)
        frame = zmsg_next (msg);
    return frame && zframe_streq (frame, text);
}

//  --------------------------------------------------------------------------
//  Selftest

//  Receive one message on SOCK, waiting up to a second; returns the count.
static int
s_test_recv (zsock_t *sock, zmq_msg_t *frames, zframe_t **last, bool *oversized)
{
    zsock_set_rcvtimeo (sock, 1000);
    zpoller_t *poller = zpoller_new (sock, NULL);
    assert (zpoller_wait (poller, 1000) == sock);
    zpoller_destroy (&poller);
    *last = NULL;
    *oversized = false;
    return aigw_bp_recv (zsock_resolve (sock), frames, last, oversized);
}

//  Close the small frames of a message of COUNT frames and its last frame.
static void
s_test_close (zmq_msg_t *frames, int count, zframe_t **last)
{
    for (int i = 0; i < count && i < AIGW_BP_SMALL_FRAMES; i++)
        zmq_msg_close (&frames[i]);
    zframe_destroy (last);
}

void
aigw_bp_test (bool verbose)
{
    //  Names, worker ids and numbers as the spec bounds them.
    assert (aigw_bp_name_valid ("auth", 4) && aigw_bp_name_valid ("a.b_c-9", 7));
    assert (!aigw_bp_name_valid ("", 0) && !aigw_bp_name_valid (NULL, 0));
    assert (!aigw_bp_name_valid ("a b", 3) && !aigw_bp_name_valid ("a/b", 3));
    char name[AIGW_BP_NAME_MAX + 2];
    memset (name, 'n', sizeof name);
    assert (aigw_bp_name_valid (name, AIGW_BP_NAME_MAX));
    assert (!aigw_bp_name_valid (name, AIGW_BP_NAME_MAX + 1));
    assert (aigw_bp_worker_id_valid ("auth-host-1-1", 13));
    assert (!aigw_bp_worker_id_valid ("a b", 3) && !aigw_bp_worker_id_valid ("", 0));
    assert (!aigw_bp_worker_id_valid ("a\x7f", 2));
    int64_t value = -1;
    assert (aigw_bp_decimal ("0", 1, 3, &value) == 0 && value == 0);
    assert (aigw_bp_decimal ("503", 3, 3, &value) == 0 && value == 503);
    assert (aigw_bp_decimal ("5030", 4, 3, &value) == -1);
    assert (aigw_bp_decimal ("", 0, 3, &value) == -1);
    assert (aigw_bp_decimal ("-1", 2, 3, &value) == -1);
    assert (aigw_bp_decimal ("1x", 2, 3, &value) == -1);
    assert (aigw_bp_decimal ("999999999999999999", 18, 64, &value) == 0
            && value == 999999999999999999LL);
    assert (aigw_bp_decimal ("1000000000000000000", 19, 64, &value) == -1);

    //  Rendezvous hashing: FNV-1a's published values, and a stable owner.
    assert (aigw_bp_fnv1a ("", 0) == 0xcbf29ce484222325ULL);
    assert (aigw_bp_fnv1a ("a", 1) == 0xaf63dc4c8601ec8cULL);
    assert (aigw_bp_mix64 (0) == 0);
    uint64_t key = aigw_bp_fnv1a ("tenant-7", 8);
    assert (aigw_bp_shard_score (key, aigw_bp_id_hash ("w1"))
            == aigw_bp_mix64 (key ^ aigw_bp_mix64 (aigw_bp_fnv1a ("w1", 2))));
    assert (aigw_bp_shard_score (key, aigw_bp_id_hash ("w1"))
            != aigw_bp_shard_score (key, aigw_bp_id_hash ("w2")));

    //  Frames: a head and strings out, the same frames in.
    zsock_t *out = zsock_new_pair ("@inproc://aigw-bp-test");
    zsock_t *in = zsock_new_pair (">inproc://aigw-bp-test");
    assert (out && in);
    void *handle = zsock_resolve (out);
    zmq_msg_t frames[AIGW_BP_SMALL_FRAMES];
    zframe_t *last;
    bool oversized;
    assert (aigw_bp_send_head (handle, AIGW_BP_WORKER_HEADER, AIGW_BP_WORKER_HEARTBEAT, false)
            == 0);
    int count = s_test_recv (in, frames, &last, &oversized);
    assert (count == 2 && !oversized && !last);
    assert (aigw_bp_command (&frames[0], &frames[1], AIGW_BP_WORKER_HEADER)
            == AIGW_BP_WORKER_HEARTBEAT);
    assert (aigw_bp_command (&frames[0], &frames[1], AIGW_BP_CLIENT_HEADER) == -1);
    s_test_close (frames, count, &last);
    //  A full message: four small frames and the payload, taken whole.
    char *payload = (char *) malloc (AIGW_BP_COPY_MAX * 4);
    assert (payload);
    memset (payload, 'p', AIGW_BP_COPY_MAX * 4);
    zmq_msg_t body;
    aigw_bp_msg_take (&body, &payload, AIGW_BP_COPY_MAX * 4);
    assert (payload == NULL && zmq_msg_size (&body) == AIGW_BP_COPY_MAX * 4);
    aigw_bp_send_head (handle, AIGW_BP_CLIENT_HEADER, AIGW_BP_CLIENT_REPLY, true);
    aigw_bp_send_str (handle, "rid-1");
    aigw_bp_send_str (handle, NULL);
    zmq_msg_send (&body, handle, 0);
    zmq_msg_close (&body);
    count = s_test_recv (in, frames, &last, &oversized);
    assert (count == 5 && !oversized && last);
    assert (aigw_bp_command (&frames[0], &frames[1], AIGW_BP_CLIENT_HEADER)
            == AIGW_BP_CLIENT_REPLY);
    assert (zmq_msg_size (&frames[2]) == 5 && memcmp (zmq_msg_data (&frames[2]), "rid-1", 5) == 0);
    assert (zmq_msg_size (&frames[3]) == 0);
    assert (zframe_size (last) == AIGW_BP_COPY_MAX * 4 && zframe_data (last)[0] == 'p');
    s_test_close (frames, count, &last);
    //  Too many frames: read whole, flagged, the payload kept.
    aigw_bp_send_head (handle, AIGW_BP_CLIENT_HEADER, AIGW_BP_CLIENT_REPLY, true);
    for (int i = 0; i < 4; i++)
        aigw_bp_send_str (handle, "x");
    zmq_send (handle, "end", 3, 0);
    count = s_test_recv (in, frames, &last, &oversized);
    assert (count == 7 && oversized && last);
    s_test_close (frames, count, &last);
    //  A small payload is copied, and NULL data makes an empty frame.
    payload = strdup ("tiny");
    aigw_bp_msg_take (&body, &payload, 4);
    assert (!payload && zmq_msg_size (&body) == 4);
    assert (memcmp (zmq_msg_data (&body), "tiny", 4) == 0);
    zmq_msg_close (&body);
    aigw_bp_msg_take (&body, &payload, 9);
    assert (zmq_msg_size (&body) == 0);
    zmq_msg_close (&body);
    //  Whole messages: the command checked against the expected header.
    aigw_bp_message_t message;
    aigw_bp_send_head (handle, AIGW_BP_CLIENT_HEADER, AIGW_BP_CLIENT_STATUS, true);
    zmq_send (handle, "text", 4, 0);
    aigw_bp_send_head (handle, AIGW_BP_CLIENT_HEADER, AIGW_BP_CLIENT_STATUS, false);
    zclock_sleep (10);
    assert (aigw_bp_message_recv (&message, zsock_resolve (in), AIGW_BP_CLIENT_HEADER) == 1);
    assert (message.count == 3 && message.cmd == AIGW_BP_CLIENT_STATUS && !message.last);
    aigw_bp_message_close (&message);
    assert (aigw_bp_message_recv (&message, zsock_resolve (in), AIGW_BP_WORKER_HEADER) == 1);
    assert (message.count == 2 && message.cmd == -1);
    aigw_bp_message_close (&message);
    //  Nothing waiting: 0.
    count = aigw_bp_recv (zsock_resolve (in), frames, &last, &oversized);
    assert (count == 0);

    //  DIRECTORY answers replace the kept copy.
    char *version = strdup (""), *text = NULL;
    zmq_msg_t v, t;
    zmq_msg_init_size (&v, 3);
    memcpy (zmq_msg_data (&v), "i-1", 3);
    zmq_msg_init_size (&t, 2);
    memcpy (zmq_msg_data (&t), "a\n", 2);
    aigw_bp_directory_keep (&v, &t, &version, &text);
    assert (streq (version, "i-1") && streq (text, "a\n"));
    zmq_msg_close (&v);
    zmq_msg_close (&t);
    free (version);
    free (text);
    zsock_destroy (&in);
    zsock_destroy (&out);
    if (verbose)
        printf ("bp: ok\n");
}
