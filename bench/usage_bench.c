/*  usage_bench: usage records per second into PostgreSQL through the usage
    stage (batches by COPY, staging table, INSERT ... ON CONFLICT DO
    NOTHING), in one host driven by this thread, with an inproc broker.
    Records are made as the edge makes them and handed to the stage as
    one-way requests (no acknowledgement travels back here).

    Usage: DATABASE_URL=... aigw_bench_usage [records] (the database must
    be migrated). Prints records/s from the first record handed over until
    the table holds them all. */
#include "aigw_broker.h"
#include "aigw_config.h"
#include "aigw_stage.h"

#include <assert.h>
#include <libpq-fe.h>

static long
s_count (PGconn *db)
{
    PGresult *r = PQexec (db, "SELECT count (*) FROM usage_records");
    long n = PQresultStatus (r) == PGRES_TUPLES_OK ? atol (PQgetvalue (r, 0, 0)) : -1;
    PQclear (r);
    return n;
}

int
main (int argc, char *argv[])
{
    long records = argc > 1 ? atol (argv[1]) : 200000;
    const char *url = getenv ("DATABASE_URL");
    if (!url || records <= 0) {
        fprintf (stderr, "usage: DATABASE_URL=... aigw_bench_usage [records]\n");
        return 2;
    }
    char err[256];
    aigw_config_t *config = aigw_config_new (NULL, err, sizeof err);
    assert (config);
    char spool[64];
    snprintf (spool, sizeof spool, "/tmp/aigw-bench-usage-%d.spool", (int) getpid ());
    free (config->usage_spool_path);
    config->usage_spool_path = strdup (spool);
    free (config->broker_endpoint);
    config->broker_endpoint = strdup ("inproc://bench-usage");
    aigw_broker_args_t args = {.endpoint = config->broker_endpoint,
                               .heartbeat_ms = config->heartbeat_ms,
                               .liveness = config->liveness,
                               .queue_max = config->queue_max};
    zactor_t *broker = zactor_new (aigw_broker_actor, &args);
    assert (broker);
    aigw_host_t *host
        = aigw_host_new (config, config->broker_endpoint, "usage", true, err, sizeof err);
    assert (host);
    PGconn *db = PQconnectdb (url);
    assert (PQstatus (db) == CONNECTION_OK);
    long before = s_count (db);
    assert (before >= 0);

    aigw_envelope_t *env = aigw_envelope_new ();
    aigw_envelope_set (&env->model, "gpt-4o-mini");
    aigw_envelope_set (&env->provider, "bench-deployment");
    aigw_envelope_set (&env->provider_kind, "openai");
    aigw_envelope_set (&env->tenant, "bench");
    aigw_envelope_set (&env->tenant_id, "7c9e6679-7425-40de-944b-e07fc1f90ae7");
    aigw_envelope_set (&env->key_id, "k1");
    aigw_envelope_set (&env->key_name, "bench key");
    aigw_envelope_set (&env->principal_type, "key");
    aigw_envelope_set (&env->cache_status, "MISS");
    env->kind = AIGW_KIND_CHAT;
    env->status = 200;
    env->tokens_in = 120;
    env->tokens_out = 40;
    env->cost_nusd = 560000;
    env->attempts = 1;
    env->latency_ms = 12;
    env->first_ms = 12;
    aigw_envelope_set (&env->route[0], "usage");
    env->route_len = 1;

    int64_t start = zclock_usecs ();
    long sent = 0;
    zmq_pollitem_t items[AIGW_HOST_POLLITEMS_MAX];
    long done = 0;
    int64_t last_check = 0;
    while (done < records) {
        //  Hand over a slice, then let the host run.
        for (int i = 0; i < 2000 && sent < records; i++, sent++) {
            char id[64], uuid[40];
            snprintf (id, sizeof id, "bench-%ld", sent);
            snprintf (uuid, sizeof uuid, "%08x-0000-4000-8000-%012lx", (unsigned) getpid (), sent);
            aigw_envelope_set (&env->id, id);
            aigw_envelope_set (&env->record_id, uuid);
            env->started_ms = aigw_now_ms ();
            aigw_envelope_t *copy = aigw_envelope_dup (env);
            assert (copy);
            aigw_host_oneway (host, "usage", "", &copy);
            aigw_host_process (host, items, 0);
        }
        int count = aigw_host_pollitems (host, items, AIGW_HOST_POLLITEMS_MAX);
        zmq_poll (items, count, sent < records ? 0 : aigw_host_timeout (host, 50));
        aigw_host_process (host, items, count);
        if (sent == records && zclock_usecs () - last_check > 50000) {
            last_check = zclock_usecs ();
            done = s_count (db) - before;
        }
    }
    double secs = (double) (zclock_usecs () - start) / 1e6;
    printf ("usage records into PostgreSQL: %ld records in %.2f s: %.0f records/s\n", records, secs,
            (double) records / secs);
    aigw_envelope_destroy (&env);
    aigw_host_destroy (&host);
    zactor_destroy (&broker);
    PQfinish (db);
    aigw_config_destroy (&config);
    unlink (spool);
    return 0;
}
