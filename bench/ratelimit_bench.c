/*  ratelimit_bench: the rate-limit owner's decision cost inside the
    engine (aigw_rlengine), with a million keys live, and its memory per
    million keys.

    Usage: aigw_bench_ratelimit [keys] [checks]. Fills KEYS keys (each in a
    tenant of 100 keys, with key and tenant rpm and a key tpm, as auth's
    lm writes them: two counters per key), then times CHECKS checks on random keys: each one
    finds the parsed lm, rolls and checks three counters, and reserves
    (a lease for the tpm, settled at once, as the edge would later). */
#include "aigw_rlengine.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double
s_now_s (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

//  Resident set size now, bytes.
static long
s_rss (void)
{
    FILE *f = fopen ("/proc/self/statm", "r");
    long pages = 0, rss = 0;
    if (f) {
        if (fscanf (f, "%ld %ld", &pages, &rss) != 2)
            rss = 0;
        fclose (f);
    }
    return rss * 4096;
}

int
main (int argc, char *argv[])
{
    long keys = argc > 1 ? atol (argv[1]) : 1000000;
    long checks = argc > 2 ? atol (argv[2]) : 2000000;
    const char *lm = "k=rpm:1000000,tpm:100000000;t=rpm:100000000";
    long rss0 = s_rss ();
    aigw_rlengine_t *engine = aigw_rlengine_new (1);
    assert (engine);
    int64_t now = 1700000000000LL;
    char key[32], tenant[32];
    aigw_rl_verdict_t v;
    double t0 = s_now_s ();
    for (long i = 0; i < keys; i++) {
        snprintf (key, sizeof key, "key-%ld", i);
        snprintf (tenant, sizeof tenant, "tenant-%ld", i / 100);
        aigw_rl_request_t req = {tenant, key, tenant, "gpt-4o", lm, 300, 0, now + 30000};
        assert (aigw_rlengine_check (engine, &req, now, &v) == 0 && v.ok);
        aigw_rlengine_settle (engine, v.reservation, 250, 0, now);
    }
    double fill = s_now_s () - t0;
    long rss1 = s_rss ();
    size_t counters = aigw_rlengine_counters (engine);
    size_t bytes = aigw_rlengine_bytes (engine);
    printf ("filled %ld keys (%zu counters) in %.2f s\n", keys, counters, fill);
    printf ("memory: engine's own %.1f MB, resident +%.1f MB: %.0f bytes per key\n", bytes / 1e6,
            (rss1 - rss0) / 1e6, (double) (rss1 - rss0) / keys);

    //  Random keys, full spec: three counters per check plus a lease.
    unsigned seed = 42;
    t0 = s_now_s ();
    long passed = 0;
    for (long i = 0; i < checks; i++) {
        long k = (long) (rand_r (&seed) % keys);
        snprintf (key, sizeof key, "key-%ld", k);
        snprintf (tenant, sizeof tenant, "tenant-%ld", k / 100);
        aigw_rl_request_t req = {tenant, key, tenant, "gpt-4o", lm, 300, 0, now + 30000};
        aigw_rlengine_check (engine, &req, now, &v);
        passed += v.ok;
        if (*v.reservation)
            aigw_rlengine_settle (engine, v.reservation, 250, 0, now);
    }
    double spent = s_now_s () - t0;
    printf ("%ld checks (%ld passed) with %zu counters live: %.3f us per check "
            "(reserve and settle included)\n",
            checks, passed, aigw_rlengine_counters (engine), spent * 1e6 / checks);

    //  The rpm-only path (no lease), as most keys have it.
    t0 = s_now_s ();
    for (long i = 0; i < checks; i++) {
        long k = (long) (rand_r (&seed) % keys);
        snprintf (key, sizeof key, "key-%ld", k);
        snprintf (tenant, sizeof tenant, "tenant-%ld", k / 100);
        aigw_rl_request_t req = {tenant, key, tenant, "gpt-4o", "k=rpm:1000000", 0, 0, now};
        aigw_rlengine_check (engine, &req, now, &v);
    }
    spent = s_now_s () - t0;
    printf ("%ld rpm-only checks: %.3f us per check\n", checks, spent * 1e6 / checks);
    aigw_rlengine_destroy (&engine);
    return 0;
}
