/*  fuzz_vectors: libFuzzer target for the word vectors loader
    (actors/cache/aigw_vectors). Any bytes given as a vectors file are
    either refused or give an object whose every word is found again at
    its own rank, whose vectors are finite, and whose lookups of arbitrary
    words stay inside the buffer (ASan watches the reads). CMake builds it
    (fuzz.vectors, seeded with tests/fixtures/vectors). */
#include "aigw_vectors.h"

#include <assert.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

//  Most words checked per input, so one input stays fast.
#define S_WORDS_CHECKED 4096

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    //  A copy of exactly SIZE bytes, 4-aligned as a map is, so ASan sees
    //  any read past the end.
    void *copy = malloc (size ? size : 1);
    assert (copy);
    memcpy (copy, data, size);
    char err[256];
    aigw_vectors_t *v = aigw_vectors_new_from (copy, size, err, sizeof err);
    if (v) {
        size_t count = aigw_vectors_count (v), dim = aigw_vectors_dim (v);
        float *x = malloc (dim * sizeof *x);
        assert (x);
        for (size_t r = 0; r < count && r < S_WORDS_CHECKED; r++) {
            size_t len;
            const char *w = aigw_vectors_word (v, r, &len);
            assert (len >= 1 && len <= AIGW_VECTORS_WORD_MAX);
            assert (aigw_vectors_find (v, w, len) == (int64_t) r);
            aigw_vectors_get (v, r, x);
            for (size_t d = 0; d < dim; d++)
                assert (isfinite (x[d]));
            assert (aigw_vectors_prob (v, r) > 0);
        }
        //  Words that may or may not be there: the input's own bytes.
        for (size_t at = 0; at + 3 <= size && at < 64; at++)
            (void) aigw_vectors_find (v, (const char *) data + at, 3);
        double sim = aigw_vectors_similarity (v, 0, count - 1);
        assert (sim >= -1.001 && sim <= 1.001);
        free (x);
        aigw_vectors_destroy (&v);
    }
    else
        assert (err[0]);
    free (copy);
    return 0;
}
