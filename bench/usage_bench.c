/*  usage_bench: usage records per second through the usage stage, in one
    host driven by this thread, with an inproc broker. Records are made as
    the edge makes them and handed to the stage as one-way requests (no
    acknowledgement travels back here).

    Usage (the database must be migrated):
      DATABASE_URL=... aigw_bench_usage [records]
        into PostgreSQL (batches by COPY, staging table, INSERT ... ON
        CONFLICT DO NOTHING, roll-ups): records/s from the first record
        handed over until the table holds them all.
      DATABASE_URL=... aigw_bench_usage spool [records]
        the spool: first with the database unreachable (a closed port on
        127.0.0.1), every batch goes to the spool (fdatasync'ed): records/s
        and MB/s until the last is in it; then a new host with DATABASE_URL
        replays it: records/s until the table holds them all and the spool
        is empty. */
#include "aigw_broker.h"
#include "aigw_config.h"
#include "aigw_log.h"
#include "aigw_spool.h"
#include "aigw_stage.h"

#include <arpa/inet.h>
#include <assert.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

static long
s_count (PGconn *db)
{
    PGresult *r = PQexec (db, "SELECT count (*) FROM usage_records");
    long n = PQresultStatus (r) == PGRES_TUPLES_OK ? atol (PQgetvalue (r, 0, 0)) : -1;
    PQclear (r);
    return n;
}

//  A port on 127.0.0.1 nobody listens on (bound, then closed).
static int
s_closed_port (void)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    assert (fd >= 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    assert (bind (fd, (struct sockaddr *) &addr, sizeof addr) == 0);
    assert (getsockname (fd, (struct sockaddr *) &addr, &len) == 0);
    close (fd);
    return ntohs (addr.sin_port);
}

static off_t
s_file_size (const char *path)
{
    struct stat st;
    return stat (path, &st) == 0 ? st.st_size : -1;
}

//  A record as the edge makes it, for a chat answered by one upstream.
static aigw_envelope_t *
s_record_new (void)
{
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
    return env;
}

//  Hand RECORDS records to HOST's usage stage, a slice at a time, letting
//  the host run between slices.
static void
s_feed (aigw_host_t *host, long records)
{
    aigw_envelope_t *env = s_record_new ();
    zmq_pollitem_t items[AIGW_HOST_POLLITEMS_MAX];
    for (long sent = 0; sent < records;) {
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
        zmq_poll (items, count, 0);
        aigw_host_process (host, items, count);
    }
    aigw_envelope_destroy (&env);
}

//  Run HOST until the table holds WANT rows more than BEFORE and, with
//  SPOOL, the spool file is empty (it is truncated once replayed).
static void
s_drain (aigw_host_t *host, PGconn *db, long before, long want, const char *spool)
{
    zmq_pollitem_t items[AIGW_HOST_POLLITEMS_MAX];
    int64_t last_check = 0;
    while (true) {
        int count = aigw_host_pollitems (host, items, AIGW_HOST_POLLITEMS_MAX);
        zmq_poll (items, count, aigw_host_timeout (host, 50));
        aigw_host_process (host, items, count);
        if (zclock_usecs () - last_check > 50000) {
            last_check = zclock_usecs ();
            if (s_count (db) - before >= want && (!spool || s_file_size (spool) == 0))
                break;
        }
    }
}

int
main (int argc, char *argv[])
{
    bool spool_mode = argc > 1 && streq (argv[1], "spool");
    int arg = spool_mode ? 2 : 1;
    long records = argc > arg ? atol (argv[arg]) : 200000;
    const char *url = getenv ("DATABASE_URL");
    if (!url || records <= 0) {
        fprintf (stderr, "usage: DATABASE_URL=... aigw_bench_usage [spool] [records]\n");
        return 2;
    }
    char err[256];
    aigw_config_t *config = aigw_config_new (NULL, err, sizeof err);
    assert (config);
    aigw_log_level_t level;
    if (aigw_log_level_parse (config->log_level, &level) == 0)
        aigw_log_set_level (level);
    char spool[64];
    snprintf (spool, sizeof spool, "/tmp/aigw-bench-usage-%d.spool", (int) getpid ());
    unlink (spool);
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
    PGconn *db = PQconnectdb (url);
    assert (PQstatus (db) == CONNECTION_OK);
    long before = s_count (db);
    assert (before >= 0);

    if (!spool_mode) {
        aigw_host_t *host
            = aigw_host_new (config, config->broker_endpoint, "usage", true, err, sizeof err);
        assert (host);
        int64_t start = zclock_usecs ();
        s_feed (host, records);
        s_drain (host, db, before, records, NULL);
        double secs = (double) (zclock_usecs () - start) / 1e6;
        printf ("usage records into PostgreSQL: %ld records in %.2f s: %.0f records/s\n", records,
                secs, (double) records / secs);
        aigw_host_destroy (&host);
    }
    else {
        //  Writes: the database is a closed port, so every batch is spooled
        //  as it fills; the last, partial one when the host stops.
        char down[128];
        snprintf (down, sizeof down, "postgresql://postgres@127.0.0.1:%d/aigw", s_closed_port ());
        free (config->database_url);
        config->database_url = strdup (down);
        aigw_host_t *host
            = aigw_host_new (config, config->broker_endpoint, "usage", true, err, sizeof err);
        assert (host);
        int64_t start = zclock_usecs ();
        s_feed (host, records);
        aigw_host_destroy (&host);
        double secs = (double) (zclock_usecs () - start) / 1e6;
        aigw_spool_t *file = aigw_spool_new (spool, config->usage_spool_max_bytes, err, sizeof err);
        assert (file);
        uint64_t spooled = aigw_spool_records (file);
        size_t frames = aigw_spool_frames (file);
        size_t bytes = aigw_spool_bytes (file);
        aigw_spool_destroy (&file);
        printf ("spool writes (database down): %" PRIu64 " records in %zu frames, %.2f s: %.0f "
                "records/s, %.1f MB/s, %.0f bytes/record, %.2f ms per frame (write + fdatasync)\n",
                spooled, frames, secs, (double) spooled / secs, (double) bytes / secs / 1e6,
                (double) bytes / (double) spooled, secs * 1e3 / (double) frames);
        if (spooled != (uint64_t) records)
            printf ("  MISSING: %ld records handed over, %" PRIu64 " in the spool\n", records,
                    spooled);

        //  Replays: a new host with the database; the spool goes first.
        free (config->database_url);
        config->database_url = strdup (url);
        host = aigw_host_new (config, config->broker_endpoint, "usage", true, err, sizeof err);
        assert (host);
        start = zclock_usecs ();
        s_drain (host, db, before, (long) spooled, spool);
        secs = (double) (zclock_usecs () - start) / 1e6;
        printf ("spool replay (database back): %" PRIu64 " records in %.2f s: %.0f records/s, "
                "spool file %lld bytes after\n",
                spooled, secs, (double) spooled / secs, (long long) s_file_size (spool));
        aigw_host_destroy (&host);
    }
    aigw_config_destroy (&config);
    zactor_destroy (&broker);
    PQfinish (db);
    unlink (spool);
    return 0;
}
