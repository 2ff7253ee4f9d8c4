/*  aigw_embed: the embedder interface and the built-in SIF source (see the
    header for the method and why the common component is fixed). */
#include "aigw_embed.h"
#include "aigw_words.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct _aigw_embedder_t {
    const aigw_embedder_ops_t *ops;  //  the source's functions
    void *state;                     //  the source's state (owned)
};

//  The SIF source's state.
typedef struct {
    const aigw_vectors_t *vectors;  //  word vectors (borrowed)
    size_t dim;                     //  their dimension
    bool remove_common;             //  subtract the common component
    aigw_word_t *words;             //  scratch: one text's words
    float *word;                    //  scratch: one word's vector
    double *sum;                    //  scratch: the weighted sum
} s_sif_t;

aigw_embedder_t *
aigw_embedder_new (const aigw_embedder_ops_t *ops, void *state)
{
    assert (ops && ops->dim && ops->embed && ops->destroy);
    aigw_embedder_t *self = calloc (1, sizeof *self);
    if (!self) {
        ops->destroy (state);
        return NULL;
    }
    self->ops = ops;
    self->state = state;
    return self;
}

void
aigw_embedder_destroy (aigw_embedder_t **self_p)
{
    assert (self_p);
    aigw_embedder_t *self = *self_p;
    if (!self)
        return;
    self->ops->destroy (self->state);
    free (self);
    *self_p = NULL;
}

size_t
aigw_embedder_dim (aigw_embedder_t *self)
{
    return self->ops->dim (self->state);
}

const char *
aigw_embedder_name (aigw_embedder_t *self)
{
    return self->ops->name;
}

int
aigw_embedder_embed (aigw_embedder_t *self, const char *text, size_t len, float *out)
{
    return self->ops->embed (self->state, text, len, out);
}

double
aigw_embed_cosine (const float *a, const float *b, size_t dim)
{
    double dot = 0;
    for (size_t d = 0; d < dim; d++)
        dot += (double) a[d] * b[d];
    return dot;
}

static size_t
s_sif_dim (void *state)
{
    return ((s_sif_t *) state)->dim;
}

static int
s_sif_embed (void *state, const char *text, size_t len, float *out)
{
    s_sif_t *self = state;
    const aigw_vectors_t *vectors = self->vectors;
    size_t n = aigw_words_split (text, len, 0, self->words, AIGW_EMBED_WORDS_MAX, NULL);
    double a = aigw_vectors_sif_a (vectors);
    memset (self->sum, 0, self->dim * sizeof *self->sum);
    size_t known = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t rank = aigw_vectors_find (vectors, self->words[i].norm, self->words[i].norm_len);
        if (rank < 0)
            continue;
        double weight = a / (a + aigw_vectors_prob (vectors, (size_t) rank));
        aigw_vectors_get (vectors, (size_t) rank, self->word);
        for (size_t d = 0; d < self->dim; d++)
            self->sum[d] += weight * self->word[d];
        known++;
    }
    if (known == 0)
        return -1;
    //  The average's direction is the sum's: no division needed before
    //  the projection and the normalization.
    if (self->remove_common) {
        const float *c = aigw_vectors_common (vectors);
        double dot = 0;
        for (size_t d = 0; d < self->dim; d++)
            dot += self->sum[d] * c[d];
        for (size_t d = 0; d < self->dim; d++)
            self->sum[d] -= dot * c[d];
    }
    double norm = 0;
    for (size_t d = 0; d < self->dim; d++)
        norm += self->sum[d] * self->sum[d];
    if (!(norm > 1e-20))
        return -1;
    norm = sqrt (norm);
    for (size_t d = 0; d < self->dim; d++)
        out[d] = (float) (self->sum[d] / norm);
    return 0;
}

static void
s_sif_destroy (void *state)
{
    s_sif_t *self = state;
    if (!self)
        return;
    free (self->words);
    free (self->word);
    free (self->sum);
    free (self);
}

static const aigw_embedder_ops_t s_sif_ops = {"sif", s_sif_dim, s_sif_embed, s_sif_destroy};

aigw_embedder_t *
aigw_embedder_sif_new (const aigw_vectors_t *vectors, bool remove_common)
{
    assert (vectors);
    s_sif_t *state = calloc (1, sizeof *state);
    if (!state)
        return NULL;
    state->vectors = vectors;
    state->dim = aigw_vectors_dim (vectors);
    state->remove_common = remove_common;
    state->words = malloc (AIGW_EMBED_WORDS_MAX * sizeof *state->words);
    state->word = malloc (state->dim * sizeof *state->word);
    state->sum = malloc (state->dim * sizeof *state->sum);
    if (!state->words || !state->word || !state->sum) {
        s_sif_destroy (state);
        return NULL;
    }
    return aigw_embedder_new (&s_sif_ops, state);
}

//  --------------------------------------------------------------------------
//  Selftest: SIF over a small vocabulary written by the vectors importer.

//  A test source: every text is the same vector.
static size_t
s_fixed_dim (void *state)
{
    return 2;
}

static int
s_fixed_embed (void *state, const char *text, size_t len, float *out)
{
    out[0] = 0.6f;
    out[1] = 0.8f;
    return len ? 0 : -1;
}

static void
s_fixed_destroy (void *state)
{
    free (state);
}

void
aigw_embed_test (bool verbose)
{
    //  Any source plugs in through the ops.
    static const aigw_embedder_ops_t fixed = {"fixed", s_fixed_dim, s_fixed_embed, s_fixed_destroy};
    aigw_embedder_t *e = aigw_embedder_new (&fixed, malloc (8));
    assert (e && aigw_embedder_dim (e) == 2 && strcmp (aigw_embedder_name (e), "fixed") == 0);
    float v[2];
    assert (aigw_embedder_embed (e, "x", 1, v) == 0 && v[1] == 0.8f);
    assert (aigw_embedder_embed (e, "", 0, v) == -1);
    aigw_embedder_destroy (&e);
    aigw_embedder_destroy (&e);

    //  SIF: four words in two directions; the frequent word weighs least.
    const char *json
        = "{\"dimensions\":3,\"size\":5,\"l2NormIndex\":3,\"wordIndex\":4,"
          "\"words\":[\"the\",\"lights\",\"lamps\",\"rain\",\"on\"],\"vectors\":{"
          "\"the\":[0.5,0.5,0.5,0.87,0],\"lights\":[1,0.1,0,1,1],\"lamps\":[0.9,0.2,0,0.92,2],"
          "\"rain\":[0,0.1,1,1,3],\"on\":[0.1,1,0,1,4]}}";
    char dir[] = "/tmp/aigw_embed_test.XXXXXX";
    assert (mkdtemp (dir));
    char json_path[64], bin_path[64], err[256];
    snprintf (json_path, sizeof json_path, "%s/v.json", dir);
    snprintf (bin_path, sizeof bin_path, "%s/v.bin", dir);
    FILE *f = fopen (json_path, "w");
    assert (f && fputs (json, f) >= 0);
    fclose (f);
    assert (aigw_vectors_import (json_path, bin_path, AIGW_VECTORS_F32, err, sizeof err) == 0);
    aigw_vectors_t *vectors = aigw_vectors_open (bin_path, err, sizeof err);
    assert (vectors);
    for (int common = 0; common < 2; common++) {
        e = aigw_embedder_sif_new (vectors, common);
        assert (e && aigw_embedder_dim (e) == 3 && strcmp (aigw_embedder_name (e), "sif") == 0);
        float a[3], b[3], c[3];
        assert (aigw_embedder_embed (e, "The LIGHTS", 10, a) == 0);
        assert (aigw_embedder_embed (e, "lamps, the!", 11, b) == 0);
        assert (aigw_embedder_embed (e, "rain", 4, c) == 0);
        assert (fabs (aigw_embed_cosine (a, a, 3) - 1) < 1e-5);
        if (verbose)
            printf ("common %d: lights~lamps %.3f lights~rain %.3f\n", common,
                    aigw_embed_cosine (a, b, 3), aigw_embed_cosine (a, c, 3));
        assert (aigw_embed_cosine (a, b, 3) > aigw_embed_cosine (a, c, 3));
        //  Nothing known: no vector.
        assert (aigw_embedder_embed (e, "zzz qqq", 7, a) == -1);
        assert (aigw_embedder_embed (e, "", 0, a) == -1);
        aigw_embedder_destroy (&e);
    }
    aigw_vectors_destroy (&vectors);
    unlink (json_path);
    unlink (bin_path);
    rmdir (dir);
}
