/*  aigw_semindex: partitions of unit vectors, scanned flat (see the header).
    Each partition keeps its vectors in one array, padded to a multiple of
    8 floats so the SIMD loops need no tail, and an open-addressing map
    from id to slot; a removal moves the last entry into the hole. */
#include "aigw_semindex.h"
#include "aigw_table.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

//  Slots a new partition starts with.
#define S_INITIAL 64
//  Empty slot in the id map.
#define S_FREE UINT32_MAX

typedef float (s_dot_fn) (const float *a, const float *b, size_t stride);

//  One partition.
typedef struct {
    aigw_table_node_t node;  //  in the index's table, keyed by name
    char *name;              //  partition key (owned)
    float *vectors;          //  count x stride floats
    uint64_t *ids;           //  id of each slot
    size_t count;            //  entries
    size_t cap;              //  slots allocated
    uint64_t *map_keys;      //  id map: ids
    uint32_t *map_slots;     //  id map: slot, or S_FREE
    size_t map_cap;          //  id map size (a power of two)
} s_part_t;

struct _aigw_semindex_t {
    size_t dim;           //  floats per vector
    size_t stride;        //  dim rounded up to 8
    aigw_table_t *parts;  //  partitions by name
    size_t size;          //  entries in all
    size_t bytes;         //  bytes held by partitions
    s_dot_fn *dot;        //  the scan's kernel
    const char *simd;     //  its name
    float *padded;        //  scratch: a query padded to stride
};

static float
s_dot_scalar (const float *a, const float *b, size_t stride)
{
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (size_t i = 0; i < stride; i += 4) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
    }
    return (s0 + s1) + (s2 + s3);
}

#if defined(__x86_64__)
static float
s_dot_sse2 (const float *a, const float *b, size_t stride)
{
    __m128 s0 = _mm_setzero_ps (), s1 = _mm_setzero_ps ();
    for (size_t i = 0; i < stride; i += 8) {
        s0 = _mm_add_ps (s0, _mm_mul_ps (_mm_loadu_ps (a + i), _mm_loadu_ps (b + i)));
        s1 = _mm_add_ps (s1, _mm_mul_ps (_mm_loadu_ps (a + i + 4), _mm_loadu_ps (b + i + 4)));
    }
    float out[4];
    _mm_storeu_ps (out, _mm_add_ps (s0, s1));
    return (out[0] + out[1]) + (out[2] + out[3]);
}

__attribute__ ((target ("avx2,fma"))) static float
s_dot_avx2 (const float *a, const float *b, size_t stride)
{
    __m256 s = _mm256_setzero_ps ();
    for (size_t i = 0; i < stride; i += 8)
        s = _mm256_fmadd_ps (_mm256_loadu_ps (a + i), _mm256_loadu_ps (b + i), s);
    __m128 lo = _mm256_castps256_ps128 (s), hi = _mm256_extractf128_ps (s, 1);
    float out[4];
    _mm_storeu_ps (out, _mm_add_ps (lo, hi));
    return (out[0] + out[1]) + (out[2] + out[3]);
}
#endif

static uint64_t
s_hash_bytes (const char *key, size_t len)
{
    uint64_t h = 1469598103934665603ULL;  //  FNV-1a
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char) key[i]) * 1099511628211ULL;
    return h;
}

static size_t
s_id_hash (uint64_t id, size_t cap)
{
    id ^= id >> 33;
    id *= 0xff51afd7ed558ccdULL;
    id ^= id >> 33;
    return (size_t) id & (cap - 1);
}

static size_t
s_part_bytes (const aigw_semindex_t *self, const s_part_t *p)
{
    return sizeof *p + strlen (p->name) + 1 + p->cap * (self->stride * sizeof (float) + 8)
           + p->map_cap * (8 + 4);
}

//  The map slot holding ID, or the free slot where it would go.
static size_t
s_map_find (const s_part_t *p, uint64_t id)
{
    size_t i = s_id_hash (id, p->map_cap);
    //  Bounded: the map is never more than half full.
    while (p->map_slots[i] != S_FREE && p->map_keys[i] != id)
        i = (i + 1) & (p->map_cap - 1);
    return i;
}

//  Remove map slot I, shifting back the entries its probe runs passed.
static void
s_map_erase (s_part_t *p, size_t i)
{
    size_t mask = p->map_cap - 1, j = i;
    p->map_slots[i] = S_FREE;
    while (true) {
        j = (j + 1) & mask;
        if (p->map_slots[j] == S_FREE)
            return;
        size_t home = s_id_hash (p->map_keys[j], p->map_cap);
        //  J may fill the hole at I when its home is not in (I, J].
        bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
        if (stays)
            continue;
        p->map_keys[i] = p->map_keys[j];
        p->map_slots[i] = p->map_slots[j];
        p->map_slots[j] = S_FREE;
        i = j;
    }
}

//  Make room for one more entry: slots and id map.
static int
s_part_grow (aigw_semindex_t *self, s_part_t *p)
{
    if (p->count == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : S_INITIAL;
        float *vectors = realloc (p->vectors, cap * self->stride * sizeof *vectors);
        if (!vectors)
            return -1;
        p->vectors = vectors;
        uint64_t *ids = realloc (p->ids, cap * sizeof *ids);
        if (!ids)
            return -1;
        p->ids = ids;
        p->cap = cap;
    }
    if ((p->count + 1) * 2 > p->map_cap) {
        size_t cap = p->map_cap ? p->map_cap * 2 : S_INITIAL * 2;
        uint64_t *keys = malloc (cap * sizeof *keys);
        uint32_t *slots = malloc (cap * sizeof *slots);
        if (!keys || !slots) {
            free (keys);
            free (slots);
            return -1;
        }
        for (size_t i = 0; i < cap; i++)
            slots[i] = S_FREE;
        s_part_t grown = *p;
        grown.map_keys = keys;
        grown.map_slots = slots;
        grown.map_cap = cap;
        for (size_t i = 0; i < p->map_cap; i++)
            if (p->map_slots[i] != S_FREE) {
                size_t at = s_map_find (&grown, p->map_keys[i]);
                keys[at] = p->map_keys[i];
                slots[at] = p->map_slots[i];
            }
        free (p->map_keys);
        free (p->map_slots);
        p->map_keys = keys;
        p->map_slots = slots;
        p->map_cap = cap;
    }
    return 0;
}

static void
s_part_free (s_part_t *p)
{
    free (p->name);
    free (p->vectors);
    free (p->ids);
    free (p->map_keys);
    free (p->map_slots);
    free (p);
}

static s_part_t *
s_part_get (aigw_semindex_t *self, const char *name)
{
    size_t len = strlen (name);
    aigw_table_node_t *node = aigw_table_lookup (self->parts, name, len, s_hash_bytes (name, len));
    return (s_part_t *) node;
}

aigw_semindex_t *
aigw_semindex_new (size_t dim)
{
    assert (dim >= 1 && dim <= AIGW_SEMINDEX_DIM_MAX);
    aigw_semindex_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->dim = dim;
    self->stride = (dim + 7) & ~(size_t) 7;
    self->parts = aigw_table_new ();
    self->padded = calloc (self->stride, sizeof *self->padded);
    if (!self->parts || !self->padded) {
        aigw_semindex_destroy (&self);
        return NULL;
    }
    self->dot = s_dot_scalar;
    self->simd = "scalar";
#if defined(__x86_64__)
    self->dot = s_dot_sse2;
    self->simd = "sse2";
    __builtin_cpu_init ();
    if (__builtin_cpu_supports ("avx2") && __builtin_cpu_supports ("fma")) {
        self->dot = s_dot_avx2;
        self->simd = "avx2";
    }
#endif
    return self;
}

void
aigw_semindex_destroy (aigw_semindex_t **self_p)
{
    assert (self_p);
    aigw_semindex_t *self = *self_p;
    if (!self)
        return;
    if (self->parts) {
        aigw_table_node_t *node = aigw_table_first (self->parts);
        while (node) {
            aigw_table_node_t *next = aigw_table_next (self->parts, node);
            aigw_table_remove (self->parts, node);
            s_part_free ((s_part_t *) node);
            node = next;
        }
        aigw_table_destroy (&self->parts);
    }
    free (self->padded);
    free (self);
    *self_p = NULL;
}

int
aigw_semindex_add (aigw_semindex_t *self, const char *partition, uint64_t id, const float *vector)
{
    size_t len = strlen (partition);
    if (len == 0 || len > AIGW_SEMINDEX_KEY_MAX)
        return -1;
    s_part_t *p = s_part_get (self, partition);
    size_t before = p ? s_part_bytes (self, p) : 0;
    if (!p) {
        p = calloc (1, sizeof *p);
        if (!p || !(p->name = strdup (partition))) {
            free (p);
            return -1;
        }
        p->node.hash = s_hash_bytes (partition, len);
        p->node.key = (const unsigned char *) p->name;
        p->node.key_size = len;
        aigw_table_insert (self->parts, &p->node);
    }
    if (s_part_grow (self, p) != 0) {
        if (p->count == 0) {
            //  A new partition that could not take its first entry.
            self->bytes -= before;
            aigw_table_remove (self->parts, &p->node);
            s_part_free (p);
        }
        return -1;
    }
    size_t at = s_map_find (p, id), slot;
    if (p->map_slots[at] != S_FREE)
        slot = p->map_slots[at];
    else {
        slot = p->count++;
        p->map_keys[at] = id;
        p->map_slots[at] = (uint32_t) slot;
        p->ids[slot] = id;
        self->size++;
    }
    float *dst = p->vectors + slot * self->stride;
    memcpy (dst, vector, self->dim * sizeof *dst);
    memset (dst + self->dim, 0, (self->stride - self->dim) * sizeof *dst);
    self->bytes += s_part_bytes (self, p) - before;
    return 0;
}

bool
aigw_semindex_remove (aigw_semindex_t *self, const char *partition, uint64_t id)
{
    s_part_t *p = s_part_get (self, partition);
    if (!p || p->count == 0)
        return false;
    size_t at = s_map_find (p, id);
    if (p->map_slots[at] == S_FREE)
        return false;
    size_t slot = p->map_slots[at], last = p->count - 1;
    s_map_erase (p, at);
    if (slot != last) {
        //  The last entry fills the hole.
        memcpy (p->vectors + slot * self->stride, p->vectors + last * self->stride,
                self->stride * sizeof (float));
        p->ids[slot] = p->ids[last];
        p->map_slots[s_map_find (p, p->ids[slot])] = (uint32_t) slot;
    }
    p->count--;
    self->size--;
    if (p->count == 0)
        aigw_semindex_drop (self, partition);
    return true;
}

size_t
aigw_semindex_drop (aigw_semindex_t *self, const char *partition)
{
    s_part_t *p = s_part_get (self, partition);
    if (!p)
        return 0;
    size_t count = p->count;
    self->size -= count;
    self->bytes -= s_part_bytes (self, p);
    aigw_table_remove (self->parts, &p->node);
    s_part_free (p);
    return count;
}

size_t
aigw_semindex_search (aigw_semindex_t *self, const char *partition, const float *query, size_t k,
                      float min_score, aigw_semindex_hit_t *hits)
{
    s_part_t *p = s_part_get (self, partition);
    if (k > AIGW_SEMINDEX_K_MAX)
        k = AIGW_SEMINDEX_K_MAX;
    if (!p || k == 0)
        return 0;
    memcpy (self->padded, query, self->dim * sizeof *self->padded);
    size_t found = 0;
    float floor = min_score;
    for (size_t slot = 0; slot < p->count; slot++) {
        float score = self->dot (self->padded, p->vectors + slot * self->stride, self->stride);
        if (score < floor)
            continue;
        //  Insert in order; the K-th best raises the floor.
        size_t at = found < k ? found++ : k - 1;
        while (at > 0 && hits[at - 1].score < score) {
            hits[at] = hits[at - 1];
            at--;
        }
        hits[at] = (aigw_semindex_hit_t){p->ids[slot], score};
        if (found == k)
            floor = hits[k - 1].score > min_score ? hits[k - 1].score : min_score;
    }
    return found;
}

size_t
aigw_semindex_count (aigw_semindex_t *self, const char *partition)
{
    s_part_t *p = s_part_get (self, partition);
    return p ? p->count : 0;
}

size_t
aigw_semindex_size (aigw_semindex_t *self)
{
    return self->size;
}

size_t
aigw_semindex_bytes (aigw_semindex_t *self)
{
    return self->bytes;
}

const char *
aigw_semindex_simd (aigw_semindex_t *self)
{
    return self->simd;
}

//  --------------------------------------------------------------------------
//  Selftest

static void
s_test_vector (size_t dim, unsigned seed, float *out)
{
    double norm = 0;
    for (size_t d = 0; d < dim; d++) {
        seed = seed * 1103515245u + 12345u;
        out[d] = (float) ((seed >> 8) % 2001) / 1000.0f - 1.0f;
        norm += (double) out[d] * out[d];
    }
    for (size_t d = 0; d < dim; d++)
        out[d] = (float) (out[d] / sqrt (norm));
}

void
aigw_semindex_test (bool verbose)
{
    enum { DIM = 100, N = 3000 };
    aigw_semindex_t *index = aigw_semindex_new (DIM);
    assert (index);
    if (verbose)
        printf ("semindex: %s\n", aigw_semindex_simd (index));
    static float vectors[N][DIM];
    for (unsigned i = 0; i < N; i++) {
        s_test_vector (DIM, i + 1, vectors[i]);
        assert (aigw_semindex_add (index, i % 2 ? "tenant-b" : "tenant-a", i, vectors[i]) == 0);
    }
    assert (aigw_semindex_size (index) == N);
    assert (aigw_semindex_count (index, "tenant-a") == N / 2);
    assert (aigw_semindex_count (index, "nobody") == 0);
    assert (aigw_semindex_bytes (index) > N * DIM * sizeof (float));

    //  Each vector finds itself first, only in its own partition, and the
    //  kernel agrees with a plain dot product.
    aigw_semindex_hit_t hits[AIGW_SEMINDEX_K_MAX];
    for (unsigned i = 0; i < N; i += 7) {
        const char *part = i % 2 ? "tenant-b" : "tenant-a";
        size_t n = aigw_semindex_search (index, part, vectors[i], 5, -1, hits);
        assert (n == 5 && hits[0].id == i && fabsf (hits[0].score - 1) < 1e-4f);
        for (size_t h = 1; h < n; h++) {
            assert (hits[h].score <= hits[h - 1].score);
            assert (hits[h].id % 2 == i % 2);
            double dot = 0;
            for (size_t d = 0; d < DIM; d++)
                dot += (double) vectors[i][d] * vectors[hits[h].id][d];
            assert (fabs (dot - hits[h].score) < 1e-4);
        }
        //  Brute force agrees on the best other entry.
        double best = -2;
        for (unsigned j = i % 2; j < N; j += 2) {
            if (j == i)
                continue;
            double dot = 0;
            for (size_t d = 0; d < DIM; d++)
                dot += (double) vectors[i][d] * vectors[j][d];
            best = dot > best ? dot : best;
        }
        assert (fabs (best - hits[1].score) < 1e-4);
        //  A floor above every other entry leaves the entry itself.
        assert (aigw_semindex_search (index, part, vectors[i], 5, 0.999f, hits) == 1);
    }
    //  Replace, remove, drop.
    assert (aigw_semindex_add (index, "tenant-a", 0, vectors[2]) == 0);
    assert (aigw_semindex_size (index) == N);
    assert (aigw_semindex_search (index, "tenant-a", vectors[2], 2, 0.999f, hits) == 2);
    for (unsigned i = 0; i < N; i += 4)
        assert (aigw_semindex_remove (index, "tenant-a", i));
    assert (!aigw_semindex_remove (index, "tenant-a", 0));
    assert (!aigw_semindex_remove (index, "nobody", 0));
    assert (aigw_semindex_count (index, "tenant-a") == N / 4);
    for (unsigned i = 2; i < N; i += 4) {
        size_t n = aigw_semindex_search (index, "tenant-a", vectors[i], 1, -1, hits);
        assert (n == 1 && hits[0].id == i);
    }
    assert (aigw_semindex_search (index, "tenant-a", vectors[0], 1, 0.999f, hits) == 0);
    assert (aigw_semindex_drop (index, "tenant-b") == N / 2);
    assert (aigw_semindex_search (index, "tenant-b", vectors[1], 1, -1, hits) == 0);
    assert (aigw_semindex_size (index) == N / 4);
    for (unsigned i = 2; i < N; i += 4)
        assert (aigw_semindex_remove (index, "tenant-a", i));
    assert (aigw_semindex_size (index) == 0 && aigw_semindex_bytes (index) == 0);
    //  Keys: empty or too long refused.
    char key[AIGW_SEMINDEX_KEY_MAX + 2];
    memset (key, 'k', sizeof key - 1);
    key[sizeof key - 1] = 0;
    assert (aigw_semindex_add (index, key, 1, vectors[0]) == -1);
    assert (aigw_semindex_add (index, "", 1, vectors[0]) == -1);
    //  The scalar and SIMD kernels agree.
    float a[104] = {0}, b[104] = {0};
    memcpy (a, vectors[5], sizeof vectors[5]);
    memcpy (b, vectors[6], sizeof vectors[6]);
    assert (fabsf (s_dot_scalar (a, b, 104) - index->dot (a, b, 104)) < 1e-5f);
    aigw_semindex_destroy (&index);
    aigw_semindex_destroy (&index);
}
