/*  aigw_semindex: the semantic cache's vector index. Entries (an id the
    cache stage chooses, and a unit vector) live in partitions named by a
    key the stage computes from everything that changes an answer (tenant,
    model, system prompt, tools, sampling, format), so no lookup ever
    crosses those lines. A lookup is a flat scan of the partition: every
    vector's dot product with the query (AVX2 with FMA where the CPU has
    it, SSE2 on any x86-64, plain C elsewhere), keeping the best K above a
    floor. A flat scan is exact, has no build step, and for 100,000
    entries of 100 floats takes about a millisecond (bench/RESULTS.md,
    Issue 13), so no approximate graph (HNSW) is needed at that size.
    Not thread-safe: one owner, as every cache entry has. */
#ifndef AIGW_SEMINDEX_H_INCLUDED
#define AIGW_SEMINDEX_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  Longest partition key, most neighbours one search returns.
#define AIGW_SEMINDEX_KEY_MAX 256
#define AIGW_SEMINDEX_K_MAX   64
//  Most floats per vector: the built-in embedder's 100, or an embeddings
//  model's (text-embedding-3-large has 3072).
#define AIGW_SEMINDEX_DIM_MAX 4096

//  One neighbour.
typedef struct {
    uint64_t id;  //  the entry's id
    float score;  //  cosine with the query
} aigw_semindex_hit_t;

typedef struct _aigw_semindex_t aigw_semindex_t;

//  An empty index of DIM-float vectors (1..AIGW_SEMINDEX_DIM_MAX). NULL when out of memory.
aigw_semindex_t *aigw_semindex_new (size_t dim);

//  Destroy; safe twice, nulls the caller's pointer.
void aigw_semindex_destroy (aigw_semindex_t **self_p);

//  Add ID with VECTOR (dim floats, unit length; copied) to PARTITION,
//  replacing ID's vector if it is there. 0, or -1 when out of memory or
//  the key is empty or longer than AIGW_SEMINDEX_KEY_MAX.
int aigw_semindex_add (aigw_semindex_t *self, const char *partition, uint64_t id,
                       const float *vector);

//  Remove ID from PARTITION; true when it was there.
bool aigw_semindex_remove (aigw_semindex_t *self, const char *partition, uint64_t id);

//  Remove PARTITION whole; returns how many entries it held.
size_t aigw_semindex_drop (aigw_semindex_t *self, const char *partition);

//  The best K (<= AIGW_SEMINDEX_K_MAX) entries of PARTITION whose cosine
//  with QUERY (dim floats, unit) is at least MIN_SCORE, best first, into
//  HITS. Returns how many.
size_t aigw_semindex_search (aigw_semindex_t *self, const char *partition, const float *query,
                             size_t k, float min_score, aigw_semindex_hit_t *hits);

//  Entries in PARTITION (0 when none), in the whole index, and the bytes
//  the index holds for them.
size_t aigw_semindex_count (aigw_semindex_t *self, const char *partition);
size_t aigw_semindex_size (aigw_semindex_t *self);
size_t aigw_semindex_bytes (aigw_semindex_t *self);

//  The scan in use: "avx2", "sse2" or "scalar".
const char *aigw_semindex_simd (aigw_semindex_t *self);

void aigw_semindex_test (bool verbose);

#endif
