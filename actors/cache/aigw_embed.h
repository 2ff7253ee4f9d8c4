/*  aigw_embed: sentence vectors for the semantic cache, behind one
    interface so that a second source can sit beside the built-in one.

    An embedder has a dimension and turns text into a unit vector of that
    many floats. The built-in source is SIF (Arora, Liang and Ma, "A
    Simple but Tough-to-Beat Baseline for Sentence Embeddings", ICLR
    2017): the average of the words' vectors weighted a / (a + p(w)),
    minus its projection on the common component, then normalized. p(w)
    comes from the word's frequency rank (aigw_vectors.h says why), and
    the common component is fixed at import, from the vocabulary's most
    frequent words, not from stored prompts: a component taken from the
    cache's own entries would drift as they come and go, so a vector
    stored yesterday would no longer compare with one made today, and it
    would let one tenant's prompts shape another's vectors.

    The other source, an embeddings model of the router
    (cache.semantic.model), is not an embedder here: the cache stage owns
    no HTTP client, so a provider hop before the cache fetches the vector
    and the envelope brings it (aigw_cache.h). The index and the verifier
    take vectors and text, never an embedder, so both sources share them. */
#ifndef AIGW_EMBED_H_INCLUDED
#define AIGW_EMBED_H_INCLUDED

#include "aigw_vectors.h"

#include <stdbool.h>
#include <stddef.h>

//  Most words of one text the built-in embedder reads; the rest of a
//  longer prompt does not move its vector.
#define AIGW_EMBED_WORDS_MAX 4096
//  Default cosine two SIF prompt vectors need before the verifier looks
//  (chosen on tests/fixtures/semantic/pairs.jsonl: README, Issue 13).
#define AIGW_EMBED_THRESHOLD 0.75

//  A source of sentence vectors.
typedef struct {
    const char *name;             //  e.g. "sif"
    size_t (*dim) (void *state);  //  floats per vector
    //  Write TEXT's unit vector (LEN bytes) into OUT (dim floats): 0, or
    //  -1 when there is nothing to embed (no known word) or it failed.
    int (*embed) (void *state, const char *text, size_t len, float *out);
    void (*destroy) (void *state);  //  free STATE
} aigw_embedder_ops_t;

typedef struct _aigw_embedder_t aigw_embedder_t;

//  An embedder over OPS and STATE; it owns STATE (ops->destroy frees it,
//  here too when this fails). NULL when out of memory.
aigw_embedder_t *aigw_embedder_new (const aigw_embedder_ops_t *ops, void *state);

//  The built-in SIF embedder over VECTORS (borrowed: keep them until this
//  is destroyed). REMOVE_COMMON false skips the common component (for
//  measuring what it does). NULL when out of memory.
aigw_embedder_t *aigw_embedder_sif_new (const aigw_vectors_t *vectors, bool remove_common);

//  Destroy; safe twice, nulls the caller's pointer.
void aigw_embedder_destroy (aigw_embedder_t **self_p);

size_t aigw_embedder_dim (aigw_embedder_t *self);
const char *aigw_embedder_name (aigw_embedder_t *self);

//  TEXT's unit vector into OUT (dim floats): 0, or -1 (nothing to embed).
int aigw_embedder_embed (aigw_embedder_t *self, const char *text, size_t len, float *out);

//  Cosine of two unit vectors of DIM floats.
double aigw_embed_cosine (const float *a, const float *b, size_t dim);

void aigw_embed_test (bool verbose);

#endif
