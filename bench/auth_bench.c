/*  auth_bench: the auth actor's decision for a key already in its cache,
    measured in-process (no sockets): SHA-256 of the secret, cache lookup,
    expiry/permission/model checks, principal copied into the envelope.
    Usage: aigw_bench_auth [iterations]  (prints ns per decision) */
#include "aigw_auth.h"

#include <stdio.h>
#include <stdlib.h>

//  Iterations when none are given: enough for a stable mean.
#define AUTH_BENCH_ITERATIONS 1000000

int
main (int argc, char **argv)
{
    int iterations = argc > 1 ? atoi (argv[1]) : AUTH_BENCH_ITERATIONS;
    if (iterations <= 0) {
        fprintf (stderr, "usage: aigw_bench_auth [iterations]\n");
        return 2;
    }
    aigw_auth_bench_cached (iterations / 10);  //  warm caches and allocator
    double ns = aigw_auth_bench_cached (iterations);
    printf ("auth decision, cached key: %.0f ns (%.2f us) over %d decisions\n", ns, ns / 1000.0,
            iterations);
    return 0;
}
