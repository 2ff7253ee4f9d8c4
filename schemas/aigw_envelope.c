/*  aigw_envelope: the message every pipeline stage reads and writes, and its
    codec, the only code in aigw that touches msgpack. The wire form is
    specified in schemas/envelope.md; the table s_fields below is that
    specification in code, and the two must change together.

    Decoding is in two steps. s_scan first walks the raw bytes without
    recursion and without allocating: it checks that they hold exactly one
    well-formed msgpack map, no deeper than AIGW_ENVELOPE_MAX_DEPTH, with at
    most AIGW_ENVELOPE_MAX_OBJECTS objects, and that no array or map claims
    more items than there are bytes left. Only then does msgpack_unpack_next
    build its object tree, so its zone stays small (msgpack-c allocates a
    container's item array from the count in the header, before it reads the
    items: five bytes claiming 2^32 items would otherwise ask for 96 GB), and
    its fixed parse stack (MSGPACK_EMBED_STACK_SIZE, 32) is never exceeded.
    Strings and bin objects point into the input (msgpack-c does not copy
    them); the envelope gets its own NUL-terminated copies. */
//  For explicit_bzero and strdup when built outside CMake (which sets it).
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "aigw_envelope.h"

#include <assert.h>
#include <inttypes.h>
#include <limits.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Deepest nesting of arrays and maps accepted anywhere in an envelope (the
//  known fields need 2). Must stay below msgpack-c's MSGPACK_EMBED_STACK_SIZE.
#ifndef AIGW_ENVELOPE_MAX_DEPTH
#define AIGW_ENVELOPE_MAX_DEPTH 16
#endif
//  Most msgpack objects (keys, values, items) in one envelope. The known
//  fields use under 80; the rest is room for keys of later versions. Bounds
//  the memory msgpack-c's zone may take for one decode.
#ifndef AIGW_ENVELOPE_MAX_OBJECTS
#define AIGW_ENVELOPE_MAX_OBJECTS 4096
#endif

//  Wire key of the version, the one key always present (one byte long).
#define S_VERSION_KEY "v"
//  Encoding size budget per field beyond its payload: key (fixstr, at most
//  4 bytes) plus the largest value header (9 bytes for an int64).
#define S_FIELD_OVERHEAD 16
//  Encoding size budget for the map header and the version field.
#define S_ENVELOPE_OVERHEAD 16
//  Largest msgpack header in front of a str or bin payload, or of an array.
#define S_HEADER_MAX 5

//  How a field is held in aigw_envelope_t and written on the wire.
typedef enum {
    S_STRING,  //  char *, msgpack str
    S_BOOL,    //  bool, msgpack bool
    S_UINT8,   //  uint8_t, msgpack int
    S_UINT32,  //  uint32_t, msgpack int
    S_INT,     //  int, msgpack int
    S_INT64,   //  int64_t, msgpack int
    S_ROUTE,   //  route + route_len, msgpack array of str
    S_BODY,    //  body + body_len, msgpack bin
    S_TIMES,   //  stage_us, msgpack array of an even number of ints
    S_VECTOR   //  cache_vector + cache_dim, msgpack bin of little-endian float32s
} s_type_t;

//  One known field: its wire key, its place in the struct, and its default
//  (a field holding its default is left off the wire).
typedef struct {
    const char *key;   //  msgpack key
    size_t key_len;    //  its length
    const char *name;  //  C field name, for error messages
    s_type_t type;     //  storage and wire type
    size_t offset;     //  offsetof the field in aigw_envelope_t
    int64_t dflt;      //  default of an integer field
} s_field_t;

#define S_FIELD(key, name, type, dflt)                                             \
    {                                                                              \
        key, sizeof (key) - 1, #name, type, offsetof (aigw_envelope_t, name), dflt \
    }

//  The wire keys, in the order encode writes them (after "v"). Keep in step
//  with schemas/envelope.md.
static const s_field_t s_fields[] = {
    S_FIELD ("id", id, S_STRING, 0),
    S_FIELD ("k", kind, S_UINT8, 0),
    S_FIELD ("dl", deadline_ms, S_INT64, 0),
    S_FIELD ("st", stream, S_BOOL, 0),
    S_FIELD ("cr", credential, S_STRING, 0),
    S_FIELD ("m", model, S_STRING, 0),
    S_FIELD ("mt", method, S_STRING, 0),
    S_FIELD ("pa", path, S_STRING, 0),
    S_FIELD ("qs", query, S_STRING, 0),
    S_FIELD ("rt", route, S_ROUTE, 0),
    S_FIELD ("hp", hop, S_UINT8, 0),
    S_FIELD ("kid", key_id, S_STRING, 0),
    S_FIELD ("kn", key_name, S_STRING, 0),
    S_FIELD ("tn", tenant, S_STRING, 0),
    S_FIELD ("ro", role, S_STRING, 0),
    S_FIELD ("rpm", rpm, S_INT64, 0),
    S_FIELD ("pt", principal_type, S_STRING, 0),
    S_FIELD ("tid", tenant_id, S_STRING, 0),
    S_FIELD ("pm", permissions, S_STRING, 0),
    S_FIELD ("ms", models, S_STRING, 0),
    S_FIELD ("ex", expires_ms, S_INT64, 0),
    S_FIELD ("rll", rl_limit, S_INT64, -1),
    S_FIELD ("rlr", rl_remaining, S_INT64, 0),
    S_FIELD ("rlt", rl_reset, S_INT64, 0),
    S_FIELD ("lm", limits, S_STRING, 0),
    S_FIELD ("rv", reservation, S_STRING, 0),
    S_FIELD ("rlk", rl_kind, S_STRING, 0),
    S_FIELD ("rtl", rl_tokens_limit, S_INT64, -1),
    S_FIELD ("rtr", rl_tokens_remaining, S_INT64, 0),
    S_FIELD ("rtt", rl_tokens_reset, S_INT64, 0),
    S_FIELD ("ck", cache_key, S_STRING, 0),
    S_FIELD ("cs", cache_status, S_STRING, 0),
    S_FIELD ("cc", cache_control, S_STRING, 0),
    S_FIELD ("ce", cache_embed, S_STRING, 0),
    S_FIELD ("cv", cache_vector, S_VECTOR, 0),
    S_FIELD ("pv", provider, S_STRING, 0),
    S_FIELD ("pk", provider_kind, S_STRING, 0),
    S_FIELD ("tk", token_count, S_STRING, 0),
    S_FIELD ("ti", tokens_in, S_INT64, 0),
    S_FIELD ("to", tokens_out, S_INT64, 0),
    S_FIELD ("tc", tokens_cached, S_INT64, 0),
    S_FIELD ("cn", cost_nusd, S_INT64, 0),
    S_FIELD ("at", attempts, S_UINT32, 0),
    S_FIELD ("ri", record_id, S_STRING, 0),
    S_FIELD ("t0", started_ms, S_INT64, 0),
    S_FIELD ("lt", latency_ms, S_INT64, 0),
    S_FIELD ("lf", first_ms, S_INT64, -1),
    S_FIELD ("tp", traceparent, S_STRING, 0),
    S_FIELD ("sx", stage_us, S_TIMES, 0),
    S_FIELD ("ua", upstream, S_STRING, 0),
    S_FIELD ("gv", verdict, S_STRING, 0),
    S_FIELD ("gp", guard_policy, S_STRING, 0),
    S_FIELD ("pr", previous, S_STRING, 0),
    S_FIELD ("sc", store_content, S_BOOL, 0),
    S_FIELD ("rq", content_request, S_STRING, 0),
    S_FIELD ("s", status, S_INT, 0),
    S_FIELD ("ct", content_type, S_STRING, 0),
    S_FIELD ("sq", seq, S_UINT32, 0),
    S_FIELD ("la", last, S_BOOL, 0),
    S_FIELD ("ra", retry_after, S_INT, 0),
    S_FIELD ("et", err_type, S_STRING, 0),
    S_FIELD ("ec", err_code, S_STRING, 0),
    S_FIELD ("em", err_message, S_STRING, 0),
    S_FIELD ("ep", err_param, S_STRING, 0),
    S_FIELD ("al", allow, S_STRING, 0),
    S_FIELD ("b", body, S_BODY, 0),
};

#define S_FIELD_COUNT (sizeof s_fields / sizeof s_fields[0])
//  decode marks the fields it has seen in a mask of S_SEEN_WORDS words.
#define S_SEEN_WORDS 2
_Static_assert(S_FIELD_COUNT <= 64 * S_SEEN_WORDS, "too many fields for the seen mask");

//  Format a decode error into ERR (may be NULL). Never pass a field value:
//  it may be a secret.
static void s_error (char *err, size_t err_size, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

static void
s_error (char *err, size_t err_size, const char *format, ...)
{
    if (!err || err_size == 0)
        return;
    va_list args;
    va_start (args, format);
    vsnprintf (err, err_size, format, args);
    va_end (args);
}

//  Wipe and free the string at *FIELD, and null it. Wiping every string
//  costs little next to a malloc and keeps the credential (and whatever
//  else a caller clears) out of freed memory.
static void
s_string_free (char **field)
{
    if (*field) {
        explicit_bzero (*field, strlen (*field));
        free (*field);
        *field = NULL;
    }
}

//  Address of FIELD's storage in SELF.
static inline void *
s_slot (const aigw_envelope_t *self, const s_field_t *field)
{
    return (char *) self + field->offset;
}

//  How many of SELF's stage_us go on the wire: every pair up to the last
//  that holds a figure.
static size_t
s_times_used (const aigw_envelope_t *self)
{
    size_t used = 2 * AIGW_ROUTE_MAX;
    while (used > 0 && self->stage_us[used - 1] == 0 && self->stage_us[used - 2] == 0)
        used -= 2;
    return used;
}

//  Value of the integer or bool FIELD of SELF, widened to int64_t.
static int64_t
s_get_int (const aigw_envelope_t *self, const s_field_t *field)
{
    const void *slot = s_slot (self, field);
    switch (field->type) {
        case S_BOOL: return *(const bool *) slot;
        case S_UINT8: return *(const uint8_t *) slot;
        case S_UINT32: return *(const uint32_t *) slot;
        case S_INT: return *(const int *) slot;
        case S_INT64: return *(const int64_t *) slot;
        default: assert (false); return 0;
    }
}

//  Store VALUE into the integer FIELD of SELF when it fits the field's C
//  type. Returns 0, or -1 (SELF untouched) when it does not.
static int
s_put_int (aigw_envelope_t *self, const s_field_t *field, int64_t value)
{
    void *slot = s_slot (self, field);
    switch (field->type) {
        case S_UINT8:
            if (value < 0 || value > UINT8_MAX)
                return -1;
            *(uint8_t *) slot = (uint8_t) value;
            return 0;
        case S_UINT32:
            if (value < 0 || value > UINT32_MAX)
                return -1;
            *(uint32_t *) slot = (uint32_t) value;
            return 0;
        case S_INT:
            if (value < INT_MIN || value > INT_MAX)
                return -1;
            *(int *) slot = (int) value;
            return 0;
        case S_INT64: *(int64_t *) slot = value; return 0;
        default: assert (false); return -1;
    }
}

aigw_envelope_t *
aigw_envelope_new (void)
{
    //  Caller owns the result; every field is at its default.
    aigw_envelope_t *self = calloc (1, sizeof *self);
    if (self) {
        self->rl_limit = -1;
        self->rl_tokens_limit = -1;
        self->first_ms = -1;
    }
    return self;
}

void
aigw_envelope_destroy (aigw_envelope_t **self_p)
{
    //  Frees everything the envelope owns and nulls *SELF_P; safe on NULL
    //  and twice. Strings (the credential among them) are wiped first.
    assert (self_p);
    aigw_envelope_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < S_FIELD_COUNT; i++)
        if (s_fields[i].type == S_STRING)
            s_string_free ((char **) s_slot (self, &s_fields[i]));
    for (size_t i = 0; i < AIGW_ROUTE_MAX; i++)
        free (self->route[i]);
    free (self->body);
    free (self->cache_vector);
    aigw_envelope_set_memo (self, NULL, NULL);
    free (self);
    *self_p = NULL;
}

aigw_envelope_t *
aigw_envelope_dup (const aigw_envelope_t *self)
{
    aigw_envelope_t *copy = malloc (sizeof *copy);
    if (!copy)
        return NULL;
    *copy = *self;
    copy->memo = NULL;
    copy->memo_free = NULL;
    //  Every owned pointer is replaced by its own copy; a failed copy leaves
    //  NULL behind, so the destroy below is always safe.
    bool failed = false;
    for (size_t i = 0; i < S_FIELD_COUNT; i++)
        if (s_fields[i].type == S_STRING) {
            char **field = (char **) s_slot (copy, &s_fields[i]);
            if (*field && !(*field = strdup (*field)))
                failed = true;
        }
    for (size_t i = 0; i < AIGW_ROUTE_MAX; i++)
        if (copy->route[i] && !(copy->route[i] = strdup (copy->route[i])))
            failed = true;
    if (self->body) {
        //  NUL-terminated, as decode leaves it.
        copy->body = malloc (self->body_len + 1);
        if (copy->body) {
            memcpy (copy->body, self->body, self->body_len);
            copy->body[self->body_len] = 0;
        }
        else
            failed = true;
    }
    if (self->cache_vector) {
        copy->cache_vector = malloc (self->cache_dim * sizeof (float));
        if (copy->cache_vector)
            memcpy (copy->cache_vector, self->cache_vector, self->cache_dim * sizeof (float));
        else
            failed = true;
    }
    if (failed)
        aigw_envelope_destroy (&copy);
    return copy;
}

int
aigw_envelope_set (char **field, const char *value)
{
    //  Copies VALUE first, so VALUE may be the field's own string; the old
    //  string is wiped and freed. On failure the field is unchanged.
    assert (field);
    char *copy = NULL;
    if (value) {
        copy = strdup (value);
        if (!copy)
            return -1;
    }
    s_string_free (field);
    *field = copy;
    return 0;
}

int
aigw_envelope_set_body (aigw_envelope_t *self, const void *data, size_t len)
{
    //  Copies LEN bytes (DATA may point into the old body). The copy has a
    //  NUL after its LEN bytes, not counted in body_len. LEN 0 clears body.
    //  On failure the body is unchanged.
    assert (self);
    assert (data || len == 0);
    char *copy = NULL;
    if (len > 0) {
        if (len == SIZE_MAX)
            return -1;
        copy = malloc (len + 1);
        if (!copy)
            return -1;
        memcpy (copy, data, len);
        copy[len] = 0;
    }
    free (self->body);
    self->body = copy;
    self->body_len = len;
    aigw_envelope_set_memo (self, NULL, NULL);
    return 0;
}

void
aigw_envelope_set_memo (aigw_envelope_t *self, void *memo, void (*memo_free) (void *memo))
{
    assert (self);
    if (self->memo && self->memo_free)
        self->memo_free (self->memo);
    self->memo = memo;
    self->memo_free = memo_free;
}

int
aigw_envelope_set_vector (aigw_envelope_t *self, const float *vector, size_t dim)
{
    assert (self);
    free (self->cache_vector);
    self->cache_vector = NULL;
    self->cache_dim = 0;
    if (!vector || dim == 0)
        return 0;
    if (dim > AIGW_ENVELOPE_VECTOR_MAX || !(self->cache_vector = malloc (dim * sizeof (float))))
        return -1;
    memcpy (self->cache_vector, vector, dim * sizeof (float));
    self->cache_dim = (uint32_t) dim;
    return 0;
}

//  Float F as 4 little-endian bytes at OUT, and back: the wire's order
//  whatever the host's.
static void
s_float_put (float f, uint8_t *out)
{
    uint32_t bits;
    memcpy (&bits, &f, sizeof bits);
    for (int i = 0; i < 4; i++)
        out[i] = (uint8_t) (bits >> (8 * i));
}

static float
s_float_get (const uint8_t *in)
{
    uint32_t bits = 0;
    for (int i = 0; i < 4; i++)
        bits |= (uint32_t) in[i] << (8 * i);
    float f;
    memcpy (&f, &bits, sizeof f);
    return f;
}

void
aigw_envelope_take_body (aigw_envelope_t *self, char *data, size_t len)
{
    //  The envelope owns DATA (malloc'd, or NULL with LEN 0) from now on.
    assert (self);
    assert (data || len == 0);
    if (self->body != data)
        free (self->body);
    self->body = data;
    self->body_len = len;
    aigw_envelope_set_memo (self, NULL, NULL);
}

void
aigw_envelope_set_error (aigw_envelope_t *self, int status, const char *type, const char *code,
                         const char *param, const char *message)
{
    //  Makes SELF the final answer: STATUS, the err_* fields (NULL clears
    //  one), content_type application/json, last. The body is cleared: an
    //  error reply carries its payload in err_*, which the edge renders in
    //  the SPEC's JSON shape. Allocation failure leaves a string NULL; the
    //  status is set regardless, so the reply is still an error.
    assert (self);
    self->status = status;
    self->last = true;
    aigw_envelope_set (&self->err_type, type);
    aigw_envelope_set (&self->err_code, code);
    aigw_envelope_set (&self->err_param, param);
    aigw_envelope_set (&self->err_message, message);
    aigw_envelope_set (&self->content_type, "application/json");
    aigw_envelope_take_body (self, NULL, 0);
}

const char *
aigw_envelope_stage (const aigw_envelope_t *self)
{
    //  Returns a string owned by SELF, or NULL when hop is past the route.
    assert (self);
    if (self->hop >= self->route_len || self->hop >= AIGW_ROUTE_MAX)
        return NULL;
    return self->route[self->hop];
}

char *
aigw_envelope_encode (const aigw_envelope_t *self, size_t *size)
{
    //  Caller owns the result (free it) and gets its length in *SIZE.
    //  Returns NULL on allocation failure, and also when decode would refuse
    //  the result: a string over AIGW_ENVELOPE_MAX_STRING, route_len over
    //  AIGW_ROUTE_MAX or a NULL stage in the route, or more than
    //  AIGW_ENVELOPE_MAX_BYTES in all. A hop past the end of the route is
    //  written as route_len: both mean "no stage left".
    assert (self);
    assert (size);
    if (self->route_len > AIGW_ROUTE_MAX || self->body_len > AIGW_ENVELOPE_MAX_BYTES)
        return NULL;

    //  Pass 1: which fields go on the wire, and a size that holds them all,
    //  so the buffer is allocated once and handed over without a copy.
    size_t lengths[S_FIELD_COUNT];  //  string lengths, measured once
    bool present[S_FIELD_COUNT];    //  field differs from its default
    size_t count = 1;               //  map entries, "v" included
    size_t capacity = S_ENVELOPE_OVERHEAD;
    for (size_t i = 0; i < S_FIELD_COUNT; i++) {
        const s_field_t *field = &s_fields[i];
        const void *slot = s_slot (self, field);
        lengths[i] = 0;
        if (field->type == S_STRING) {
            const char *value = *(char *const *) slot;
            present[i] = value != NULL;
            if (value) {
                lengths[i] = strlen (value);
                if (lengths[i] > AIGW_ENVELOPE_MAX_STRING)
                    return NULL;
            }
        }
        else if (field->type == S_ROUTE) {
            present[i] = self->route_len > 0;
            for (size_t stage = 0; stage < self->route_len; stage++) {
                if (!self->route[stage])
                    return NULL;
                size_t length = strlen (self->route[stage]);
                if (length > AIGW_ENVELOPE_MAX_STRING)
                    return NULL;
                lengths[i] += S_HEADER_MAX + length;
            }
        }
        else if (field->type == S_BODY) {
            present[i] = self->body_len > 0;
            lengths[i] = self->body_len;
        }
        else if (field->type == S_VECTOR) {
            if (self->cache_dim > AIGW_ENVELOPE_VECTOR_MAX
                || (self->cache_dim && !self->cache_vector))
                return NULL;
            present[i] = self->cache_dim > 0;
            lengths[i] = self->cache_dim * 4;
        }
        else if (field->type == S_TIMES) {
            //  lengths[i]: ints written, up to the last hop with a figure
            lengths[i] = s_times_used (self);
            present[i] = lengths[i] > 0;
            capacity += lengths[i] * 9;
        }
        else
            present[i] = s_get_int (self, field) != field->dflt;
        if (present[i]) {
            count++;
            capacity += S_FIELD_OVERHEAD + lengths[i];
        }
    }

    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    buffer.data = malloc (capacity);
    if (!buffer.data)
        return NULL;
    buffer.alloc = capacity;
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);

    //  Pass 2: pack. The sbuffer grows by itself should the budget be short,
    //  so every call can fail only on allocation.
    int rc = msgpack_pack_map (&pk, count);
    rc |= msgpack_pack_str_with_body (&pk, S_VERSION_KEY, strlen (S_VERSION_KEY));
    rc |= msgpack_pack_uint8 (&pk, AIGW_ENVELOPE_VERSION);
    for (size_t i = 0; i < S_FIELD_COUNT && rc == 0; i++) {
        if (!present[i])
            continue;
        const s_field_t *field = &s_fields[i];
        const void *slot = s_slot (self, field);
        rc |= msgpack_pack_str_with_body (&pk, field->key, field->key_len);
        switch (field->type) {
            case S_STRING:
                rc |= msgpack_pack_str_with_body (&pk, *(char *const *) slot, lengths[i]);
                break;
            case S_BOOL:
                rc |= *(const bool *) slot ? msgpack_pack_true (&pk) : msgpack_pack_false (&pk);
                break;
            case S_ROUTE:
                rc |= msgpack_pack_array (&pk, self->route_len);
                for (size_t stage = 0; stage < self->route_len; stage++)
                    rc |= msgpack_pack_str_with_body (&pk, self->route[stage],
                                                      strlen (self->route[stage]));
                break;
            case S_BODY: rc |= msgpack_pack_bin_with_body (&pk, self->body, self->body_len); break;
            case S_VECTOR: {
                uint8_t *bytes = malloc (lengths[i]);
                if (!bytes) {
                    rc = -1;
                    break;
                }
                for (size_t n = 0; n < self->cache_dim; n++)
                    s_float_put (self->cache_vector[n], bytes + 4 * n);
                rc |= msgpack_pack_bin_with_body (&pk, bytes, lengths[i]);
                free (bytes);
                break;
            }
            case S_TIMES:
                rc |= msgpack_pack_array (&pk, lengths[i]);
                for (size_t n = 0; n < lengths[i]; n++)
                    rc |= msgpack_pack_int64 (&pk, self->stage_us[n]);
                break;
            default: {
                int64_t value = s_get_int (self, field);
                if (field->offset == offsetof (aigw_envelope_t, hop) && self->hop > self->route_len)
                    value = self->route_len;
                rc |= msgpack_pack_int64 (&pk, value);
                break;
            }
        }
    }
    if (rc != 0 || buffer.size > AIGW_ENVELOPE_MAX_BYTES) {
        msgpack_sbuffer_destroy (&buffer);
        return NULL;
    }
    *size = buffer.size;
    return msgpack_sbuffer_release (&buffer);
}

//  Read an N-byte big-endian unsigned at DATA + *POS into *VALUE and advance
//  *POS. Returns 0, or -1 when fewer than N bytes are left.
static int
s_read_be (const uint8_t *data, size_t size, size_t *pos, size_t n, uint64_t *value)
{
    if (n > size - *pos)
        return -1;
    uint64_t result = 0;
    for (size_t i = 0; i < n; i++)
        result = (result << 8) | data[*pos + i];
    *pos += n;
    *value = result;
    return 0;
}

//  Check that SIZE bytes at DATA hold exactly one well-formed msgpack
//  object within the depth and object limits, with no item count beyond the
//  bytes left. Walks without recursion and allocates nothing. Returns 0, or
//  -1 with the reason in ERR.
static int
s_scan (const uint8_t *data, size_t size, char *err, size_t err_size)
{
    //  pending[d]: items still to read at nesting level d (0 is the root).
    uint64_t pending[AIGW_ENVELOPE_MAX_DEPTH + 1];
    size_t depth = 1;
    size_t objects = 0;
    size_t pos = 0;
    pending[0] = 1;
    while (depth > 0) {
        if (pending[depth - 1] == 0) {
            depth--;
            continue;
        }
        pending[depth - 1]--;
        if (++objects > AIGW_ENVELOPE_MAX_OBJECTS) {
            s_error (err, err_size, "more than %d msgpack objects", AIGW_ENVELOPE_MAX_OBJECTS);
            return -1;
        }
        if (pos >= size)
            goto truncated;
        size_t at = pos;
        uint8_t byte = data[pos++];
        uint64_t skip = 0;   //  payload bytes after the header
        uint64_t items = 0;  //  objects this container holds
        uint64_t length;     //  a length or count read from the header
        if (byte <= 0x7f || byte >= 0xe0)
            ;  //  positive or negative fixint
        else if (byte <= 0x8f)
            items = 2 * (uint64_t) (byte & 0x0f);
        else if (byte <= 0x9f)
            items = byte & 0x0f;
        else if (byte <= 0xbf)
            skip = byte & 0x1f;
        else
            switch (byte) {
                case 0xc0:  //  nil
                case 0xc2:  //  false
                case 0xc3:  //  true
                    break;
                case 0xc4:    //  bin 8
                case 0xd9:    //  str 8
                case 0xc5:    //  bin 16
                case 0xda:    //  str 16
                case 0xc6:    //  bin 32
                case 0xdb: {  //  str 32
                    size_t width = byte == 0xc4 || byte == 0xd9   ? 1
                                   : byte == 0xc5 || byte == 0xda ? 2
                                                                  : 4;
                    if (s_read_be (data, size, &pos, width, &length))
                        goto truncated;
                    skip = length;
                    break;
                }
                case 0xc7:  //  ext 8
                case 0xc8:  //  ext 16
                case 0xc9:  //  ext 32
                    if (s_read_be (data, size, &pos, (size_t) 1 << (byte - 0xc7), &length))
                        goto truncated;
                    skip = length + 1;  //  the type byte, then the data
                    break;
                case 0xca:  //  float 32
                    skip = 4;
                    break;
                case 0xcb:  //  float 64
                    skip = 8;
                    break;
                case 0xcc:  //  uint 8 .. uint 64
                case 0xcd:
                case 0xce:
                case 0xcf: skip = (uint64_t) 1 << (byte - 0xcc); break;
                case 0xd0:  //  int 8 .. int 64
                case 0xd1:
                case 0xd2:
                case 0xd3: skip = (uint64_t) 1 << (byte - 0xd0); break;
                case 0xd4:  //  fixext 1 .. fixext 16, after a type byte
                case 0xd5:
                case 0xd6:
                case 0xd7:
                case 0xd8: skip = 1 + ((uint64_t) 1 << (byte - 0xd4)); break;
                case 0xdc:  //  array 16, array 32
                case 0xdd:
                    if (s_read_be (data, size, &pos, byte == 0xdc ? 2 : 4, &length))
                        goto truncated;
                    items = length;
                    break;
                case 0xde:  //  map 16, map 32
                case 0xdf:
                    if (s_read_be (data, size, &pos, byte == 0xde ? 2 : 4, &length))
                        goto truncated;
                    items = 2 * length;
                    break;
                default:  //  0xc1, never used
                    s_error (err, err_size, "invalid msgpack byte 0x%02x at %zu", byte, at);
                    return -1;
            }
        if (skip > size - pos)
            goto truncated;
        pos += skip;
        if (items > 0) {
            //  Every item takes at least one byte.
            if (items > size - pos)
                goto truncated;
            if (depth > AIGW_ENVELOPE_MAX_DEPTH) {
                s_error (err, err_size, "msgpack nested deeper than %d", AIGW_ENVELOPE_MAX_DEPTH);
                return -1;
            }
            pending[depth++] = items;
        }
    }
    if (pos != size) {
        s_error (err, err_size, "%zu trailing bytes after the envelope", size - pos);
        return -1;
    }
    return 0;

truncated:
    s_error (err, err_size, "truncated msgpack (%zu bytes)", size);
    return -1;
}

//  Integer value of OBJECT, if it is a msgpack int within [MIN, MAX], into
//  *VALUE. Returns 0, or -1 for another type or out of range.
static int
s_object_int (const msgpack_object *object, int64_t min, int64_t max, int64_t *value)
{
    if (object->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        if (object->via.u64 > (uint64_t) max)
            return -1;
        *value = (int64_t) object->via.u64;
    }
    else if (object->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        *value = object->via.i64;
    else
        return -1;
    return *value < min || *value > max ? -1 : 0;
}

//  Format into ERR why FIELD was refused: PROBLEM.
static void
s_field_error (char *err, size_t err_size, const s_field_t *field, const char *problem)
{
    s_error (err, err_size, "\"%s\" (%s): %s", field->key, field->name, problem);
}

//  Copy the str OBJECT, the value of FIELD, into a new NUL-terminated
//  string at *TARGET (which is NULL). Returns 0, or -1 with the reason in
//  ERR.
static int
s_object_string (const msgpack_object *object, char **target, const s_field_t *field, char *err,
                 size_t err_size)
{
    if (object->type != MSGPACK_OBJECT_STR) {
        s_field_error (err, err_size, field, "expected a string");
        return -1;
    }
    size_t length = object->via.str.size;
    if (length > AIGW_ENVELOPE_MAX_STRING) {
        s_field_error (err, err_size, field, "string longer than AIGW_ENVELOPE_MAX_STRING");
        return -1;
    }
    if (memchr (object->via.str.ptr, 0, length)) {
        s_field_error (err, err_size, field, "string holds a NUL byte");
        return -1;
    }
    char *copy = malloc (length + 1);
    if (!copy) {
        s_error (err, err_size, "out of memory");
        return -1;
    }
    memcpy (copy, object->via.str.ptr, length);
    copy[length] = 0;
    *target = copy;
    return 0;
}

//  True when the SIZE bytes at A and B are equal. Wire keys are a few
//  bytes long: a plain loop beats a call to memcmp.
static inline bool
s_key_equal (const char *a, const char *b, size_t size)
{
    for (size_t i = 0; i < size; i++)
        if (a[i] != b[i])
            return false;
    return true;
}

//  Known field whose wire key is KEY, or NULL when KEY is not a str or not
//  known. *NEXT is where the search starts, and is left just past the
//  match: encode writes keys in table order, so one compare usually does.
static const s_field_t *
s_field_lookup (const msgpack_object *key, size_t *next)
{
    if (key->type != MSGPACK_OBJECT_STR)
        return NULL;
    size_t i = *next;
    for (size_t tried = 0; tried < S_FIELD_COUNT; tried++, i++) {
        if (i == S_FIELD_COUNT)
            i = 0;
        if (s_fields[i].key_len == key->via.str.size
            && s_key_equal (s_fields[i].key, key->via.str.ptr, key->via.str.size)) {
            *next = i + 1;
            return &s_fields[i];
        }
    }
    return NULL;
}

//  True when KEY is the str "v".
static inline bool
s_is_version_key (const msgpack_object *key)
{
    return key->type == MSGPACK_OBJECT_STR && key->via.str.size == 1
           && key->via.str.ptr[0] == S_VERSION_KEY[0];
}

//  Check the version in MAP: present once, an integer, equal to ours.
//  Returns 0, or -1 with the reason in ERR.
static int
s_check_version (const msgpack_object_map *map, char *err, size_t err_size)
{
    const msgpack_object *version = NULL;
    for (uint32_t i = 0; i < map->size; i++)
        if (s_is_version_key (&map->ptr[i].key)) {
            if (version) {
                s_error (err, err_size, "duplicate key \"v\"");
                return -1;
            }
            version = &map->ptr[i].val;
        }
    if (!version) {
        s_error (err, err_size, "missing version \"v\"");
        return -1;
    }
    if (version->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        s_error (err, err_size, "unsupported envelope version %" PRId64 " (want %d)",
                 version->via.i64, AIGW_ENVELOPE_VERSION);
        return -1;
    }
    if (version->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        s_error (err, err_size, "version \"v\": expected an integer");
        return -1;
    }
    if (version->via.u64 != AIGW_ENVELOPE_VERSION) {
        s_error (err, err_size, "unsupported envelope version %" PRIu64 " (want %d)",
                 version->via.u64, AIGW_ENVELOPE_VERSION);
        return -1;
    }
    return 0;
}

//  Set FIELD of SELF from VALUE (not nil). Returns 0, or -1 with the reason
//  in ERR.
static int
s_decode_field (aigw_envelope_t *self, const s_field_t *field, const msgpack_object *value,
                char *err, size_t err_size)
{
    void *slot = s_slot (self, field);
    switch (field->type) {
        case S_STRING: return s_object_string (value, (char **) slot, field, err, err_size);
        case S_BOOL:
            if (value->type != MSGPACK_OBJECT_BOOLEAN) {
                s_field_error (err, err_size, field, "expected a bool");
                return -1;
            }
            *(bool *) slot = value->via.boolean;
            return 0;
        case S_ROUTE:
            if (value->type != MSGPACK_OBJECT_ARRAY) {
                s_field_error (err, err_size, field, "expected an array");
                return -1;
            }
            if (value->via.array.size > AIGW_ROUTE_MAX) {
                s_field_error (err, err_size, field, "more stages than AIGW_ROUTE_MAX");
                return -1;
            }
            for (uint32_t i = 0; i < value->via.array.size; i++) {
                if (s_object_string (&value->via.array.ptr[i], &self->route[i], field, err,
                                     err_size))
                    return -1;
                self->route_len = (uint8_t) (i + 1);
            }
            return 0;
        case S_TIMES:
            if (value->type != MSGPACK_OBJECT_ARRAY || value->via.array.size % 2
                || value->via.array.size > 2 * AIGW_ROUTE_MAX) {
                s_field_error (
                    err, err_size, field,
                    "expected an array of at most 2 * AIGW_ROUTE_MAX integers, in pairs");
                return -1;
            }
            for (uint32_t i = 0; i < value->via.array.size; i++)
                if (s_object_int (&value->via.array.ptr[i], 0, INT64_MAX, &self->stage_us[i])) {
                    s_field_error (err, err_size, field, "expected integers of 0 or more");
                    return -1;
                }
            return 0;
        case S_VECTOR: {
            uint32_t bytes = value->type == MSGPACK_OBJECT_BIN ? value->via.bin.size : 0;
            if (value->type != MSGPACK_OBJECT_BIN || bytes == 0 || bytes % 4
                || bytes / 4 > AIGW_ENVELOPE_VECTOR_MAX) {
                s_field_error (err, err_size, field,
                               "expected bin of 1 to AIGW_ENVELOPE_VECTOR_MAX float32s");
                return -1;
            }
            free (self->cache_vector);
            self->cache_dim = 0;
            self->cache_vector = malloc (bytes);
            if (!self->cache_vector) {
                s_error (err, err_size, "out of memory");
                return -1;
            }
            const uint8_t *in = (const uint8_t *) value->via.bin.ptr;
            for (uint32_t n = 0; n < bytes / 4; n++)
                self->cache_vector[n] = s_float_get (in + 4 * n);
            self->cache_dim = bytes / 4;
            return 0;
        }
        case S_BODY:
            if (value->type != MSGPACK_OBJECT_BIN) {
                s_field_error (err, err_size, field, "expected bin");
                return -1;
            }
            if (aigw_envelope_set_body (self, value->via.bin.ptr, value->via.bin.size)) {
                s_error (err, err_size, "out of memory");
                return -1;
            }
            return 0;
        default: {
            int64_t number;
            if (s_object_int (value, INT64_MIN, INT64_MAX, &number)
                || s_put_int (self, field, number)) {
                s_field_error (err, err_size, field, "expected an integer in the field's range");
                return -1;
            }
            return 0;
        }
    }
}

aigw_envelope_t *
aigw_envelope_decode (const void *data, size_t size, char *err, size_t err_size)
{
    //  Caller owns the result. Reads only DATA[0..SIZE) and keeps no pointer
    //  into it. On NULL, ERR (when not NULL) says why, without any value
    //  from the input.
    if (err && err_size > 0)
        err[0] = 0;
    const uint8_t *bytes = data;
    if (!bytes || size == 0) {
        s_error (err, err_size, "empty envelope");
        return NULL;
    }
    if (size > AIGW_ENVELOPE_MAX_BYTES) {
        s_error (err, err_size, "envelope of %zu bytes exceeds %d", size, AIGW_ENVELOPE_MAX_BYTES);
        return NULL;
    }
    if (!(bytes[0] >= 0x80 && bytes[0] <= 0x8f) && bytes[0] != 0xde && bytes[0] != 0xdf) {
        s_error (err, err_size, "envelope is not a msgpack map");
        return NULL;
    }
    if (s_scan (bytes, size, err, err_size))
        return NULL;

    aigw_envelope_t *self = NULL;
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    size_t offset = 0;
    msgpack_unpack_return rc = msgpack_unpack_next (&unpacked, (const char *) bytes, size, &offset);
    if (rc != MSGPACK_UNPACK_SUCCESS || offset != size
        || unpacked.data.type != MSGPACK_OBJECT_MAP) {
        //  s_scan accepted it, so only an allocation can have failed.
        s_error (err, err_size,
                 rc == MSGPACK_UNPACK_NOMEM_ERROR ? "out of memory" : "malformed msgpack");
        goto failed;
    }
    const msgpack_object_map *map = &unpacked.data.via.map;
    if (s_check_version (map, err, err_size))
        goto failed;
    self = aigw_envelope_new ();
    if (!self) {
        s_error (err, err_size, "out of memory");
        goto failed;
    }
    uint64_t seen[S_SEEN_WORDS] = {0};  //  bit i: s_fields[i] already decoded
    size_t next = 0;                    //  where the next key lookup starts
    for (uint32_t i = 0; i < map->size; i++) {
        if (s_is_version_key (&map->ptr[i].key))
            continue;  //  checked above
        const s_field_t *field = s_field_lookup (&map->ptr[i].key, &next);
        if (!field)
            continue;  //  a key we do not know: skip it
        size_t index = (size_t) (field - s_fields);
        uint64_t bit = (uint64_t) 1 << (index % 64);
        if (seen[index / 64] & bit) {
            s_error (err, err_size, "duplicate key \"%s\"", field->key);
            goto failed;
        }
        seen[index / 64] |= bit;
        if (map->ptr[i].val.type == MSGPACK_OBJECT_NIL)
            continue;  //  nil is the same as absent
        if (s_decode_field (self, field, &map->ptr[i].val, err, err_size))
            goto failed;
    }
    if (self->hop > self->route_len) {
        s_error (err, err_size, "hop %u is past the route's %u stages", self->hop, self->route_len);
        goto failed;
    }
    msgpack_unpacked_destroy (&unpacked);
    return self;

failed:
    msgpack_unpacked_destroy (&unpacked);
    aigw_envelope_destroy (&self);
    if (err && err_size > 0 && err[0] == 0)
        s_error (err, err_size, "malformed envelope");
    return NULL;
}

int
aigw_envelope_batch_add (aigw_envelope_t *batch, const aigw_envelope_t *record)
{
    size_t size;
    char *data = aigw_envelope_encode (record, &size);
    if (!data)
        return -1;
    if (batch->body_len + 4 + size > AIGW_ENVELOPE_MAX_BYTES / 2) {
        free (data);
        return -1;
    }
    size_t len = batch->body_len + 4 + size;
    char *body = realloc (batch->body, len + 1);
    if (!body) {
        free (data);
        return -1;
    }
    unsigned char *at = (unsigned char *) body + batch->body_len;
    at[0] = (unsigned char) (size >> 24);
    at[1] = (unsigned char) (size >> 16);
    at[2] = (unsigned char) (size >> 8);
    at[3] = (unsigned char) size;
    memcpy (at + 4, data, size);
    body[len] = 0;
    free (data);
    batch->body = body;
    batch->body_len = len;
    return 0;
}

//  Length of the frame at POS in BATCH's body, or -1 when there is not a
//  whole one.
static int64_t
s_frame_len (const aigw_envelope_t *batch, size_t pos)
{
    if (batch->body_len < 4 || pos > batch->body_len - 4)
        return -1;
    const unsigned char *at = (const unsigned char *) batch->body + pos;
    uint64_t size = (uint64_t) at[0] << 24 | (uint64_t) at[1] << 16 | (uint64_t) at[2] << 8 | at[3];
    return size <= batch->body_len - pos - 4 ? (int64_t) size : -1;
}

aigw_envelope_t *
aigw_envelope_batch_next (const aigw_envelope_t *batch, size_t *pos, char *err, size_t err_size)
{
    if (err && err_size)
        err[0] = 0;
    if (*pos >= batch->body_len)
        return NULL;
    int64_t size = s_frame_len (batch, *pos);
    if (size < 0) {
        s_error (err, err_size, "truncated frame at %zu of a %zu-byte batch", *pos,
                 batch->body_len);
        *pos = batch->body_len;
        return NULL;
    }
    aigw_envelope_t *env
        = aigw_envelope_decode (batch->body + *pos + 4, (size_t) size, err, err_size);
    *pos += 4 + (size_t) size;
    if (!env && err && err_size && !err[0])
        s_error (err, err_size, "bad frame");
    return env;
}

size_t
aigw_envelope_batch_count (const aigw_envelope_t *batch)
{
    size_t count = 0;
    int64_t size;
    for (size_t pos = 0; (size = s_frame_len (batch, pos)) >= 0; pos += 4 + (size_t) size)
        count++;
    return count;
}

//  --------------------------------------------------------------------------
//  Selftest

//  Small fast PRNG for the selftest (xorshift64*), seeded for repeatability.
static uint64_t
s_random (uint64_t *state)
{
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return *state * 2685821657736338717ULL;
}

//  True when strings A and B are both NULL or equal.
static bool
s_string_equal (const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp (a, b) == 0);
}

//  Assert that envelopes A and B carry the same values.
static void
s_assert_equal (const aigw_envelope_t *a, const aigw_envelope_t *b)
{
    for (size_t i = 0; i < S_FIELD_COUNT; i++) {
        const s_field_t *field = &s_fields[i];
        if (field->type == S_STRING)
            assert (s_string_equal (*(char *const *) s_slot (a, field),
                                    *(char *const *) s_slot (b, field)));
        else if (field->type == S_ROUTE) {
            assert (a->route_len == b->route_len);
            for (size_t stage = 0; stage < a->route_len; stage++)
                assert (s_string_equal (a->route[stage], b->route[stage]));
        }
        else if (field->type == S_TIMES)
            assert (memcmp (a->stage_us, b->stage_us, sizeof a->stage_us) == 0);
        else if (field->type == S_BODY) {
            assert (a->body_len == b->body_len);
            assert (a->body_len == 0 || memcmp (a->body, b->body, a->body_len) == 0);
        }
        else if (field->type == S_VECTOR) {
            assert (a->cache_dim == b->cache_dim);
            assert (a->cache_dim == 0
                    || memcmp (a->cache_vector, b->cache_vector, a->cache_dim * sizeof (float))
                           == 0);
        }
        else
            assert (s_get_int (a, field) == s_get_int (b, field));
    }
}

//  Decode SIZE bytes at DATA, which must fail with a reason.
static void
s_assert_refused (const void *data, size_t size)
{
    char err[128] = "";
    aigw_envelope_t *env = aigw_envelope_decode (data, size, err, sizeof err);
    assert (env == NULL);
    assert (strlen (err) > 0);
}

//  Decode SIZE bytes at DATA; when it works, check that it encodes and
//  decodes back to the same values. Returns true when DATA was accepted.
static bool
s_decode_any (const void *data, size_t size)
{
    char err[128];
    aigw_envelope_t *env = aigw_envelope_decode (data, size, err, sizeof err);
    if (!env) {
        assert (strlen (err) > 0);
        return false;
    }
    size_t again_size;
    char *again = aigw_envelope_encode (env, &again_size);
    assert (again);
    aigw_envelope_t *copy = aigw_envelope_decode (again, again_size, err, sizeof err);
    assert (copy);
    s_assert_equal (env, copy);
    free (again);
    aigw_envelope_destroy (&copy);
    aigw_envelope_destroy (&env);
    return true;
}

//  Wrap one map entry, KEY then the msgpack VALUE bytes, in a map that also
//  holds "v": 1, into OUT. Returns the size.
static size_t
s_one_field (uint8_t *out, const char *key, const void *value, size_t value_size)
{
    size_t size = 0;
    size_t key_len = strlen (key);
    out[size++] = 0x82;
    out[size++] = 0xa1;
    out[size++] = 'v';
    out[size++] = AIGW_ENVELOPE_VERSION;
    out[size++] = (uint8_t) (0xa0 | key_len);
    memcpy (out + size, key, key_len);
    size += key_len;
    memcpy (out + size, value, value_size);
    return size + value_size;
}

void
aigw_envelope_test (bool verbose)
{
    //  Exercises the public API only; aborts on the first failure.
    char err[128];

    //  An empty envelope: defaults, the smallest wire form, a round trip
    aigw_envelope_t *empty = aigw_envelope_new ();
    assert (empty);
    assert (empty->rl_limit == -1 && empty->rl_tokens_limit == -1);
    assert (aigw_envelope_stage (empty) == NULL);
    size_t size;
    char *data = aigw_envelope_encode (empty, &size);
    assert (data);
    assert (size == 4);  //  {"v": 1}
    aigw_envelope_t *copy = aigw_envelope_decode (data, size, err, sizeof err);
    assert (copy);
    s_assert_equal (empty, copy);
    assert (copy->rl_limit == -1);
    aigw_envelope_destroy (&copy);
    free (data);

    //  A fully populated envelope, binary body with NUL bytes
    aigw_envelope_t *full = aigw_envelope_new ();
    assert (full);
    assert (aigw_envelope_set (&full->id, "req-0001") == 0);
    full->kind = AIGW_KIND_CHAT;
    full->deadline_ms = 1700000000123LL;
    full->stream = true;
    assert (aigw_envelope_set (&full->credential, "sk-test-secret") == 0);
    assert (aigw_envelope_set (&full->model, "gpt-4o-mini") == 0);
    const char *stages[]
        = {"auth", "ratelimit", "guardrail", "cache", "provider", "usage", "x", ""};
    for (size_t i = 0; i < AIGW_ROUTE_MAX; i++)
        assert (aigw_envelope_set (&full->route[i], stages[i]) == 0);
    full->route_len = AIGW_ROUTE_MAX;
    full->hop = 2;
    assert (s_string_equal (aigw_envelope_stage (full), "guardrail"));
    assert (aigw_envelope_set (&full->key_id, "key_42") == 0);
    assert (aigw_envelope_set (&full->key_name, "ci key") == 0);
    assert (aigw_envelope_set (&full->tenant, "acme") == 0);
    assert (aigw_envelope_set (&full->role, "developer") == 0);
    full->rpm = 600;
    assert (aigw_envelope_set (&full->principal_type, "key") == 0);
    assert (aigw_envelope_set (&full->tenant_id, "7c9e6679-7425-40de-944b-e07fc1f90ae7") == 0);
    assert (aigw_envelope_set (&full->permissions, "inference,keys:read") == 0);
    assert (aigw_envelope_set (&full->models, "gpt-4o,gpt-4o-mini") == 0);
    full->expires_ms = 1800000000000LL;
    assert (aigw_envelope_set (&full->method, "PATCH") == 0);
    assert (aigw_envelope_set (&full->path, "keys/42") == 0);
    assert (aigw_envelope_set (&full->query, "limit=10&cursor=abc") == 0);
    full->rl_limit = 0;  //  a limit of 0 differs from "not set"
    full->rl_remaining = -3;
    full->rl_reset = INT64_MAX;
    assert (aigw_envelope_set (&full->limits, "k=rpm:100,usd:50000000000/month;t=tpm:200000") == 0);
    assert (aigw_envelope_set (&full->reservation, "3:17") == 0);
    assert (aigw_envelope_set (&full->rl_kind, "rpm") == 0);
    full->rl_tokens_limit = 200000;
    full->rl_tokens_remaining = 199000;
    full->rl_tokens_reset = 1800000060;
    assert (aigw_envelope_set (&full->cache_key, "ab12cd34") == 0);
    assert (aigw_envelope_set (&full->cache_status, "MISS") == 0);
    assert (aigw_envelope_set (&full->cache_control, "no-cache,ttl=60") == 0);
    assert (aigw_envelope_set (&full->cache_embed, "text-embedding-3-small") == 0);
    const float vector[] = {0.5f, -0.25f, 1e-30f, -0.0f, 3.4e38f};
    assert (aigw_envelope_set_vector (full, vector, 5) == 0);
    assert (full->cache_dim == 5 && full->cache_vector[1] == -0.25f);
    assert (aigw_envelope_set (&full->provider, "openai-east") == 0);
    assert (aigw_envelope_set (&full->provider_kind, "openai") == 0);
    full->tokens_in = 1200;
    full->tokens_out = INT64_MAX;
    full->tokens_cached = 1024;
    full->cost_nusd = -1;  //  any int64 round-trips; the usage actor checks sense
    full->attempts = 3;
    assert (aigw_envelope_set (&full->record_id, "0e9f1c2a-4b7d-4c1e-9a2f-3b8c7d6e5f40") == 0);
    full->started_ms = 1700000000123LL;
    full->latency_ms = 250;
    full->first_ms = 0;  //  0 differs from "none" (-1)
    assert (aigw_envelope_set (&full->traceparent,
                               "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
            == 0);
    full->stage_us[0] = 1700000000123456LL;
    full->stage_us[1] = 42;
    full->stage_us[5] = INT64_MAX;  //  a hop with no start: pairs up to it go
    assert (aigw_envelope_set (&full->upstream, "1700000000123500 900 200 00f067aa0ba902b8 dep m\n")
            == 0);
    assert (aigw_envelope_set (&full->verdict, "pass") == 0);
    assert (aigw_envelope_set (&full->guard_policy, "default") == 0);
    assert (aigw_envelope_set (&full->previous, "resp_1\t2\tdep-a") == 0);
    full->store_content = true;
    assert (aigw_envelope_set (&full->content_request, "{\"model\":\"m\"}") == 0);
    const char body[] = "{\"a\":\0\1\2\377}";
    assert (aigw_envelope_set_body (full, body, sizeof body) == 0);
    full->status = 200;
    assert (aigw_envelope_set (&full->content_type, "text/event-stream") == 0);
    full->seq = UINT32_MAX;
    full->last = true;
    full->retry_after = 30;
    assert (aigw_envelope_set (&full->err_type, "t") == 0);
    assert (aigw_envelope_set (&full->err_code, "") == 0);
    assert (aigw_envelope_set (&full->err_message, "m \xe2\x9c\x93") == 0);
    assert (aigw_envelope_set (&full->err_param, "p") == 0);
    assert (aigw_envelope_set (&full->allow, "GET, HEAD") == 0);
    data = aigw_envelope_encode (full, &size);
    assert (data);
    copy = aigw_envelope_decode (data, size, err, sizeof err);
    assert (copy);
    s_assert_equal (full, copy);
    assert (copy->body[copy->body_len] == 0);
    assert (s_string_equal (aigw_envelope_stage (copy), "guardrail"));
    aigw_envelope_t *dup = aigw_envelope_dup (full);
    assert (dup && dup->body != full->body && dup->route[0] != full->route[0]);
    s_assert_equal (full, dup);
    aigw_envelope_destroy (&dup);
    copy->hop = AIGW_ROUTE_MAX;
    assert (aigw_envelope_stage (copy) == NULL);
    aigw_envelope_destroy (&copy);
    aigw_envelope_destroy (&copy);  //  safe twice
    if (verbose)
        printf ("full envelope: %zu bytes\n", size);

    //  Batches: frames in, frames out, a torn tail refused
    aigw_envelope_t *batch = aigw_envelope_new ();
    assert (aigw_envelope_batch_add (batch, full) == 0);
    assert (aigw_envelope_batch_add (batch, empty) == 0);
    assert (aigw_envelope_batch_count (batch) == 2);
    size_t pos = 0;
    copy = aigw_envelope_batch_next (batch, &pos, err, sizeof err);
    assert (copy);
    s_assert_equal (full, copy);
    aigw_envelope_destroy (&copy);
    copy = aigw_envelope_batch_next (batch, &pos, err, sizeof err);
    assert (copy);
    s_assert_equal (empty, copy);
    aigw_envelope_destroy (&copy);
    assert (aigw_envelope_batch_next (batch, &pos, err, sizeof err) == NULL && !err[0]);
    batch->body_len -= 1;
    assert (aigw_envelope_batch_count (batch) == 1);
    pos = 0;
    copy = aigw_envelope_batch_next (batch, &pos, err, sizeof err);
    aigw_envelope_destroy (&copy);
    assert (aigw_envelope_batch_next (batch, &pos, err, sizeof err) == NULL && err[0]);
    assert (pos == batch->body_len);
    aigw_envelope_destroy (&batch);

    //  Every prefix of a valid encoding fails cleanly
    for (size_t prefix = 0; prefix < size; prefix++)
        s_assert_refused (data, prefix);
    //  So does a trailing byte
    char *longer = malloc (size + 1);
    assert (longer);
    memcpy (longer, data, size);
    longer[size] = 0;
    s_assert_refused (longer, size + 1);
    free (longer);
    s_assert_refused (NULL, 0);

    //  Fuzz: mutations of the valid encoding must never crash, and what is
    //  accepted must round-trip
    uint64_t seed = 0x5eed5eed5eed5eedULL;
    uint8_t mutant[2048];
    assert (size + 16 <= sizeof mutant);
    static const uint8_t interesting[]
        = {0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1,
           0xc4, 0xc6, 0xd9, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xff};
    size_t accepted = 0;
    for (int round = 0; round < 100000; round++) {
        memcpy (mutant, data, size);
        size_t length = size;
        int changes = 1 + (int) (s_random (&seed) % 4);
        for (int change = 0; change < changes; change++) {
            size_t at = s_random (&seed) % length;
            uint64_t how = s_random (&seed) % 4;
            if (how == 0)
                mutant[at] ^= (uint8_t) (1u << (s_random (&seed) % 8));
            else if (how == 1)
                mutant[at] = interesting[s_random (&seed) % sizeof interesting];
            else if (how == 2)
                mutant[at] = (uint8_t) s_random (&seed);
            else
                length = at + 1;
        }
        accepted += s_decode_any (mutant, length);
    }
    if (verbose)
        printf ("mutations accepted: %zu of 100000\n", accepted);

    //  Fuzz: random byte strings, half of them opening like a map
    uint8_t noise[64];
    for (int round = 0; round < 100000; round++) {
        size_t length = s_random (&seed) % sizeof noise;
        for (size_t i = 0; i < length; i++)
            noise[i] = (uint8_t) s_random (&seed);
        if (length > 0 && round % 2)
            noise[0] = (uint8_t) (0x80 | (s_random (&seed) % 16));
        s_decode_any (noise, length);
    }
    free (data);

    //  A message that is not a map, or does not parse
    const uint8_t array[] = {0x92, 0xa1, 'v', 0x01};
    s_assert_refused (array, sizeof array);
    const uint8_t scalar[] = {0x01};
    s_assert_refused (scalar, sizeof scalar);
    const uint8_t reserved[] = {0x81, 0xa1, 'v', 0xc1};
    s_assert_refused (reserved, sizeof reserved);

    //  Versions: missing, wrong, of the wrong type, twice
    const uint8_t no_version[] = {0x81, 0xa1, 'm', 0xa1, 'x'};
    s_assert_refused (no_version, sizeof no_version);
    const uint8_t version_2[] = {0x81, 0xa1, 'v', 0x02};
    s_assert_refused (version_2, sizeof version_2);
    aigw_envelope_decode (version_2, sizeof version_2, err, sizeof err);
    assert (strstr (err, "version"));
    const uint8_t version_neg[] = {0x81, 0xa1, 'v', 0xff};
    s_assert_refused (version_neg, sizeof version_neg);
    const uint8_t version_str[] = {0x81, 0xa1, 'v', 0xa1, '1'};
    s_assert_refused (version_str, sizeof version_str);
    const uint8_t version_twice[] = {0x82, 0xa1, 'v', 0x01, 0xa1, 'v', 0x01};
    s_assert_refused (version_twice, sizeof version_twice);

    //  Every known key with a value of the wrong type; nil means absent
    uint8_t *message = malloc (AIGW_ENVELOPE_MAX_STRING + 64);
    assert (message);
    const uint8_t map_value[] = {0x80};
    const uint8_t float_value[] = {0xca, 0, 0, 0, 0};
    const uint8_t nil_value[] = {0xc0};
    for (size_t i = 0; i < S_FIELD_COUNT; i++) {
        size = s_one_field (message, s_fields[i].key, map_value, sizeof map_value);
        s_assert_refused (message, size);
        size = s_one_field (message, s_fields[i].key, float_value, sizeof float_value);
        s_assert_refused (message, size);
        size = s_one_field (message, s_fields[i].key, nil_value, sizeof nil_value);
        copy = aigw_envelope_decode (message, size, err, sizeof err);
        assert (copy);
        s_assert_equal (copy, empty);
        aigw_envelope_destroy (&copy);
    }
    const uint8_t int_for_string[] = {0x05};
    size = s_one_field (message, "m", int_for_string, sizeof int_for_string);
    s_assert_refused (message, size);
    const uint8_t string_for_int[] = {0xa1, '5'};
    size = s_one_field (message, "s", string_for_int, sizeof string_for_int);
    s_assert_refused (message, size);
    const uint8_t string_for_body[] = {0xa1, 'x'};
    size = s_one_field (message, "b", string_for_body, sizeof string_for_body);
    s_assert_refused (message, size);
    //  A vector: little-endian float32s, a whole number of them
    const uint8_t vector_one[] = {0xc4, 0x04, 0x00, 0x00, 0x80, 0x3f};
    size = s_one_field (message, "cv", vector_one, sizeof vector_one);
    copy = aigw_envelope_decode (message, size, err, sizeof err);
    assert (copy && copy->cache_dim == 1 && copy->cache_vector[0] == 1.0f);
    aigw_envelope_destroy (&copy);
    const uint8_t vector_ragged[] = {0xc4, 0x03, 0x00, 0x00, 0x80};
    size = s_one_field (message, "cv", vector_ragged, sizeof vector_ragged);
    s_assert_refused (message, size);
    const uint8_t vector_str[] = {0xa4, 0x00, 0x00, 0x80, 0x3f};
    size = s_one_field (message, "cv", vector_str, sizeof vector_str);
    s_assert_refused (message, size);
    const uint8_t times_odd[] = {0x93, 0x01, 0x02, 0x03};
    size = s_one_field (message, "sx", times_odd, sizeof times_odd);
    s_assert_refused (message, size);
    const uint8_t times_negative[] = {0x92, 0x01, 0xff};
    size = s_one_field (message, "sx", times_negative, sizeof times_negative);
    s_assert_refused (message, size);
    uint8_t times_long[3 + 2 * AIGW_ROUTE_MAX + 2] = {0xdc, 0, 2 * AIGW_ROUTE_MAX + 2};
    size = s_one_field (message, "sx", times_long, sizeof times_long);
    s_assert_refused (message, size);
    const uint8_t times_pair[] = {0x92, 0x05, 0x07};
    size = s_one_field (message, "sx", times_pair, sizeof times_pair);
    copy = aigw_envelope_decode (message, size, err, sizeof err);
    assert (copy && copy->stage_us[0] == 5 && copy->stage_us[1] == 7 && copy->stage_us[2] == 0);
    aigw_envelope_destroy (&copy);
    const uint8_t int_for_bool[] = {0x01};
    size = s_one_field (message, "st", int_for_bool, sizeof int_for_bool);
    s_assert_refused (message, size);
    const uint8_t bin_for_string[] = {0xc4, 0x01, 'x'};
    size = s_one_field (message, "id", bin_for_string, sizeof bin_for_string);
    s_assert_refused (message, size);

    //  Integers out of their field's range
    const uint8_t kind_256[] = {0xcd, 0x01, 0x00};
    size = s_one_field (message, "k", kind_256, sizeof kind_256);
    s_assert_refused (message, size);
    const uint8_t seq_negative[] = {0xff};
    size = s_one_field (message, "sq", seq_negative, sizeof seq_negative);
    s_assert_refused (message, size);
    const uint8_t status_huge[] = {0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0};
    size = s_one_field (message, "s", status_huge, sizeof status_huge);
    s_assert_refused (message, size);
    size = s_one_field (message, "dl", status_huge, sizeof status_huge);
    s_assert_refused (message, size);

    //  Strings holding NUL, and over the length limit
    const uint8_t nul_string[] = {0xa3, 'a', 0, 'b'};
    size = s_one_field (message, "cr", nul_string, sizeof nul_string);
    s_assert_refused (message, size);
    const uint8_t nul_stage[] = {0x91, 0xa3, 'a', 0, 'b'};
    size = s_one_field (message, "rt", nul_stage, sizeof nul_stage);
    s_assert_refused (message, size);
    //  A string of exactly the limit goes through, one byte more does not
    char *long_string = malloc (AIGW_ENVELOPE_MAX_STRING + 2);
    assert (long_string);
    memset (long_string, 'x', AIGW_ENVELOPE_MAX_STRING);
    long_string[AIGW_ENVELOPE_MAX_STRING] = 0;
    copy = aigw_envelope_new ();
    assert (copy);
    assert (aigw_envelope_set (&copy->model, long_string) == 0);
    data = aigw_envelope_encode (copy, &size);
    assert (data);
    aigw_envelope_destroy (&copy);
    copy = aigw_envelope_decode (data, size, err, sizeof err);
    assert (copy);
    assert (strlen (copy->model) == AIGW_ENVELOPE_MAX_STRING);
    free (data);
    strcat (long_string, "x");
    assert (aigw_envelope_set (&copy->model, long_string) == 0);
    assert (aigw_envelope_encode (copy, &size) == NULL);
    aigw_envelope_destroy (&copy);
    uint8_t *str32 = malloc (AIGW_ENVELOPE_MAX_STRING + 8);
    assert (str32);
    str32[0] = 0xdb;
    str32[1] = (uint8_t) ((AIGW_ENVELOPE_MAX_STRING + 1) >> 24);
    str32[2] = (uint8_t) ((AIGW_ENVELOPE_MAX_STRING + 1) >> 16);
    str32[3] = (uint8_t) ((AIGW_ENVELOPE_MAX_STRING + 1) >> 8);
    str32[4] = (uint8_t) (AIGW_ENVELOPE_MAX_STRING + 1);
    memcpy (str32 + 5, long_string, AIGW_ENVELOPE_MAX_STRING + 1);
    size = s_one_field (message, "m", str32, 5 + AIGW_ENVELOPE_MAX_STRING + 1);
    copy = aigw_envelope_decode (message, size, err, sizeof err);
    assert (copy == NULL && strstr (err, "longer"));
    free (str32);
    free (long_string);

    //  Routes: too long, a stage that is not a string, hop past the end
    uint8_t route[2 + 2 * (AIGW_ROUTE_MAX + 1)];
    route[0] = (uint8_t) (0x90 | (AIGW_ROUTE_MAX + 1));
    for (size_t i = 0; i < AIGW_ROUTE_MAX + 1; i++) {
        route[1 + 2 * i] = 0xa1;
        route[2 + 2 * i] = 'a';
    }
    size = s_one_field (message, "rt", route, 1 + 2 * (AIGW_ROUTE_MAX + 1));
    s_assert_refused (message, size);
    const uint8_t nil_stage[] = {0x91, 0xc0};
    size = s_one_field (message, "rt", nil_stage, sizeof nil_stage);
    s_assert_refused (message, size);
    const uint8_t hop_1[]
        = {0x83, 0xa1, 'v', 0x01, 0xa2, 'h', 'p', 0x02, 0xa2, 'r', 't', 0x91, 0xa1, 'a'};
    copy = aigw_envelope_decode (hop_1, sizeof hop_1, err, sizeof err);
    assert (copy == NULL && strstr (err, "hop"));
    const uint8_t hop_end[]
        = {0x83, 0xa1, 'v', 0x01, 0xa2, 'h', 'p', 0x01, 0xa2, 'r', 't', 0x91, 0xa1, 'a'};
    copy = aigw_envelope_decode (hop_end, sizeof hop_end, err, sizeof err);
    assert (copy);
    assert (aigw_envelope_stage (copy) == NULL);
    //  A hop past the end is written as the end
    copy->hop = 200;
    data = aigw_envelope_encode (copy, &size);
    assert (data);
    aigw_envelope_destroy (&copy);
    copy = aigw_envelope_decode (data, size, err, sizeof err);
    assert (copy && copy->hop == 1);
    //  A hole in the route is a bug the encoder refuses to send on
    copy->route_len = 2;
    assert (aigw_envelope_encode (copy, &size) == NULL);
    aigw_envelope_destroy (&copy);
    free (data);

    //  Duplicate known keys are refused
    const uint8_t twice[] = {0x83, 0xa1, 'v', 0x01, 0xa1, 'm', 0xa1, 'a', 0xa1, 'm', 0xa1, 'b'};
    s_assert_refused (twice, sizeof twice);

    //  Unknown keys of any type are skipped, whatever they hold
    const uint8_t unknown[] = {
        0x86, 0xa1, 'v',  0x01,                                         //  "v": 1
        0xa3, 'z',  'z',  'z',  0x92, 0x81, 0x01, 0xc0, 0xc3,           //  "zzz": [{1: nil}, true]
        0x07, 0xd6, 0xff, 0,    0,    0,    0,                          //  7: timestamp ext
        0x92, 0x01, 0x02, 0xcb, 0,    0,    0,    0,    0,    0, 0, 0,  //  [1, 2]: 0.0
        0xa1, 'm',  0xa1, 'x',                                          //  "m": "x"
        0xc4, 0x01, 'm',  0xa1, 'y',                                    //  bin "m": "y"
    };
    copy = aigw_envelope_decode (unknown, sizeof unknown, err, sizeof err);
    assert (copy);
    assert (s_string_equal (copy->model, "x"));
    aigw_envelope_destroy (&copy);

    //  Deep nesting in an unknown key: a little is fine, a lot is refused
    uint8_t deep[AIGW_ENVELOPE_MAX_DEPTH * 4 + 16];
    for (size_t levels = 1; levels < AIGW_ENVELOPE_MAX_DEPTH * 4; levels++) {
        size = 0;
        deep[size++] = 0x82;
        deep[size++] = 0xa1;
        deep[size++] = 'v';
        deep[size++] = 0x01;
        deep[size++] = 0x00;
        for (size_t level = 0; level < levels; level++)
            deep[size++] = 0x91;
        deep[size++] = 0xc0;
        copy = aigw_envelope_decode (deep, size, err, sizeof err);
        //  The envelope's own map is one level
        assert ((copy != NULL) == (levels + 1 <= AIGW_ENVELOPE_MAX_DEPTH));
        aigw_envelope_destroy (&copy);
    }

    //  Counts claiming more items than there are bytes
    const uint8_t huge_array[] = {0x82, 0xa1, 'v', 0x01, 0x00, 0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0};
    s_assert_refused (huge_array, sizeof huge_array);
    const uint8_t huge_map[] = {0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 'v', 0x01};
    s_assert_refused (huge_map, sizeof huge_map);
    const uint8_t huge_string[]
        = {0x82, 0xa1, 'v', 0x01, 0xa1, 'm', 0xdb, 0xff, 0xff, 0xff, 0xff, 'x'};
    s_assert_refused (huge_string, sizeof huge_string);
    //  Too many objects, though each is one byte
    uint8_t *many = malloc (AIGW_ENVELOPE_MAX_OBJECTS + 16);
    assert (many);
    size = 0;
    many[size++] = 0x82;
    many[size++] = 0xa1;
    many[size++] = 'v';
    many[size++] = 0x01;
    many[size++] = 0x00;
    many[size++] = 0xdd;
    many[size++] = (uint8_t) (AIGW_ENVELOPE_MAX_OBJECTS >> 24);
    many[size++] = (uint8_t) (AIGW_ENVELOPE_MAX_OBJECTS >> 16);
    many[size++] = (uint8_t) (AIGW_ENVELOPE_MAX_OBJECTS >> 8);
    many[size++] = (uint8_t) AIGW_ENVELOPE_MAX_OBJECTS;
    memset (many + size, 0xc0, AIGW_ENVELOPE_MAX_OBJECTS);
    size += AIGW_ENVELOPE_MAX_OBJECTS;
    s_assert_refused (many, size);
    free (many);

    //  Oversized input is refused before it is read
    char *oversized = calloc (1, AIGW_ENVELOPE_MAX_BYTES + 1);
    assert (oversized);
    oversized[0] = (char) 0x81;
    s_assert_refused (oversized, AIGW_ENVELOPE_MAX_BYTES + 1);
    //  A body near the limit goes through; one at the limit cannot be sent
    size_t big = AIGW_ENVELOPE_MAX_BYTES - 1024;
    aigw_envelope_take_body (empty, oversized, big);
    data = aigw_envelope_encode (empty, &size);
    assert (data);
    copy = aigw_envelope_decode (data, size, err, sizeof err);
    assert (copy && copy->body_len == big);
    aigw_envelope_destroy (&copy);
    free (data);
    empty->body_len = AIGW_ENVELOPE_MAX_BYTES;
    assert (aigw_envelope_encode (empty, &size) == NULL);
    empty->body_len = big;

    //  Errors: set_error answers, clears the body
    aigw_envelope_set_error (full, 404, "invalid_request_error", "model_not_found", "model",
                             "The model does not exist");
    assert (full->status == 404);
    assert (full->last);
    assert (full->body == NULL && full->body_len == 0);
    assert (s_string_equal (full->content_type, "application/json"));
    assert (s_string_equal (full->err_code, "model_not_found"));
    assert (s_string_equal (full->err_param, "model"));
    aigw_envelope_set_error (full, 500, "server_error", "internal", NULL, "oops");
    assert (full->err_param == NULL);
    data = aigw_envelope_encode (full, &size);
    assert (data);
    copy = aigw_envelope_decode (data, size, err, sizeof err);
    assert (copy);
    s_assert_equal (full, copy);
    aigw_envelope_destroy (&copy);
    free (data);

    //  Setters: aliasing, clearing, taking a body
    assert (aigw_envelope_set (&full->model, full->model) == 0);
    assert (s_string_equal (full->model, "gpt-4o-mini"));
    assert (aigw_envelope_set (&full->credential, NULL) == 0);
    assert (full->credential == NULL);
    char *owned = strdup ("taken");
    assert (owned);
    aigw_envelope_take_body (full, owned, strlen (owned));
    assert (full->body == owned && full->body_len == 5);
    assert (aigw_envelope_set_body (full, full->body + 1, 3) == 0);
    assert (full->body_len == 3 && memcmp (full->body, "ake", 3) == 0);
    assert (aigw_envelope_set_body (full, NULL, 0) == 0);
    assert (full->body == NULL);

    aigw_envelope_destroy (&full);
    aigw_envelope_destroy (&empty);
    aigw_envelope_destroy (&empty);
    assert (empty == NULL);
    free (message);
}
