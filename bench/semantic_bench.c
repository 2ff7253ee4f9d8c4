/*  semantic_bench: the semantic cache's engine (actors/cache) with 100,000
    entries in one partition: the flat index scan (top 4, in µs, with the
    SIMD kernel the CPU has), the index's memory per
    entry, and, given the word vectors file, one whole lookup: embed the
    prompt (SIF), scan, verify the best neighbour; plus the vectors file's
    open time (map and check).

    Usage: aigw_bench_semantic [VECTORS.bin]. The entries are random unit
    vectors (a scan's cost does not depend on what they hold). Each figure
    is the best of a few rounds of at least AIGW_BENCH_SEMANTIC_MS each. */
#include "aigw_embed.h"
#include "aigw_semindex.h"
#include "aigw_vectors.h"
#include "aigw_verify.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

//  Time each round runs at least, ms; rounds per figure (the best counts).
#define AIGW_BENCH_SEMANTIC_MS     300
#define AIGW_BENCH_SEMANTIC_ROUNDS 5
//  Entries in the partition, neighbours asked for.
#define AIGW_BENCH_SEMANTIC_ENTRIES 100000
#define AIGW_BENCH_SEMANTIC_K       4
#define AIGW_BENCH_SEMANTIC_DIM     100

static double
s_now_ns (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void
s_random_unit (float *out, size_t dim)
{
    double norm = 0;
    for (size_t d = 0; d < dim; d++) {
        out[d] = (float) rand () / (float) RAND_MAX - 0.5f;
        norm += (double) out[d] * out[d];
    }
    for (size_t d = 0; d < dim; d++)
        out[d] = (float) (out[d] / sqrt (norm));
}

typedef void (s_op_fn) (void *arg);

//  Best mean time of OP in µs over the rounds.
static double
s_time_us (s_op_fn *op, void *arg)
{
    double best = 1e30;
    for (int round = 0; round < AIGW_BENCH_SEMANTIC_ROUNDS; round++) {
        double start = s_now_ns (), now;
        long n = 0;
        do {
            op (arg);
            n++;
            now = s_now_ns ();
        } while (now - start < AIGW_BENCH_SEMANTIC_MS * 1e6);
        double us = (now - start) / n / 1e3;
        best = us < best ? us : best;
    }
    return best;
}

//  What the timed operations work on.
typedef struct {
    aigw_semindex_t *index;                           //  100,000 entries in "p"
    float *query;                                     //  a query vector
    aigw_embedder_t *embedder;                        //  SIF, when vectors were given
    aigw_verify_t *verify;                            //  the verifier
    const char *prompt;                               //  the lookup's prompt
    const char *neighbour;                            //  the stored prompt it is checked against
    aigw_semindex_hit_t hits[AIGW_BENCH_SEMANTIC_K];  //  the last search's
} s_ctx_t;

static void
s_scan (void *arg)
{
    s_ctx_t *ctx = arg;
    size_t n
        = aigw_semindex_search (ctx->index, "p", ctx->query, AIGW_BENCH_SEMANTIC_K, -1, ctx->hits);
    assert (n == AIGW_BENCH_SEMANTIC_K);
}

static void
s_embed (void *arg)
{
    s_ctx_t *ctx = arg;
    int rc = aigw_embedder_embed (ctx->embedder, ctx->prompt, strlen (ctx->prompt), ctx->query);
    assert (rc == 0);
}

static void
s_verify (void *arg)
{
    s_ctx_t *ctx = arg;
    aigw_verify_same (ctx->verify, ctx->prompt, strlen (ctx->prompt), ctx->neighbour,
                      strlen (ctx->neighbour), NULL);
}

static void
s_lookup (void *arg)
{
    s_embed (arg);
    s_scan (arg);
    s_verify (arg);
}

int
main (int argc, char **argv)
{
    srand (42);
    s_ctx_t ctx = {0};
    ctx.index = aigw_semindex_new (AIGW_BENCH_SEMANTIC_DIM);
    ctx.query = malloc (AIGW_BENCH_SEMANTIC_DIM * sizeof *ctx.query);
    assert (ctx.index && ctx.query);
    float v[AIGW_BENCH_SEMANTIC_DIM];
    for (uint64_t i = 0; i < AIGW_BENCH_SEMANTIC_ENTRIES; i++) {
        s_random_unit (v, AIGW_BENCH_SEMANTIC_DIM);
        assert (aigw_semindex_add (ctx.index, "p", i, v) == 0);
    }
    s_random_unit (ctx.query, AIGW_BENCH_SEMANTIC_DIM);
    printf ("semantic index: %d entries of %d floats in one partition\n",
            AIGW_BENCH_SEMANTIC_ENTRIES, AIGW_BENCH_SEMANTIC_DIM);
    printf ("  scan, top %d (%s)          %8.1f µs\n", AIGW_BENCH_SEMANTIC_K,
            aigw_semindex_simd (ctx.index), s_time_us (s_scan, &ctx));
    printf ("  index memory per entry      %8.0f bytes\n",
            (double) aigw_semindex_bytes (ctx.index) / AIGW_BENCH_SEMANTIC_ENTRIES);
    if (argc > 1) {
        char err[256];
        double start = s_now_ns ();
        aigw_vectors_t *vectors = aigw_vectors_open (argv[1], err, sizeof err);
        double open_ms = (s_now_ns () - start) / 1e6;
        if (!vectors) {
            fprintf (stderr, "semantic_bench: %s\n", err);
            return 1;
        }
        ctx.embedder = aigw_embedder_sif_new (vectors, true);
        ctx.verify = aigw_verify_new (vectors, AIGW_VERIFY_SYNONYM_MIN);
        assert (ctx.embedder && ctx.verify);
        ctx.prompt = "Could you explain how to reverse a linked list in Python, step by step?";
        ctx.neighbour = "In Python, how do I reverse a linked list step by step?";
        printf ("vectors %s: %zu words, %s, open (map + check) %.0f ms\n", argv[1],
                aigw_vectors_count (vectors),
                aigw_vectors_kind (vectors) == AIGW_VECTORS_I8 ? "int8" : "float32", open_ms);
        printf ("  embed (SIF, 14 words)       %8.1f µs\n", s_time_us (s_embed, &ctx));
        printf ("  verify one neighbour        %8.1f µs\n", s_time_us (s_verify, &ctx));
        printf ("  lookup: embed+scan+verify   %8.1f µs\n", s_time_us (s_lookup, &ctx));
        aigw_embedder_destroy (&ctx.embedder);
        aigw_verify_destroy (&ctx.verify);
        aigw_vectors_destroy (&vectors);
    }
    aigw_semindex_destroy (&ctx.index);
    free (ctx.query);
    return 0;
}
