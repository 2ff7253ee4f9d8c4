/*  zmq_hop: what one libzmq hop between two processes costs on this machine,
    with nothing of aigw in it: the floor under the split deployment's
    per-hop latency (bench/RESULTS.md, issue 8).

    A DEALER in this process sends SIZE bytes to a ROUTER in a forked child,
    which sends them straight back; one message in flight. Prints the round
    trip's p50 and p99 and the context switches per round trip of both
    processes (voluntary + involuntary, from /proc).

        cc -O2 -o /tmp/zmq_hop bench/zmq_hop.c -lzmq
        /tmp/zmq_hop tcp://127.0.0.1:5599 20000 1024
        /tmp/zmq_hop ipc:///tmp/zmq_hop.sock 20000 1024 */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

static long long
s_now_ns (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

//  Context switches of PID so far (voluntary + involuntary, summed over its
//  threads: libzmq's I/O thread does half the work).
static long long
s_switches (pid_t pid)
{
    char path[64];
    snprintf (path, sizeof path, "/proc/%d/task", (int) pid);
    DIR *dir = opendir (path);
    if (!dir)
        return -1;
    long long total = 0, n;
    struct dirent *entry;
    while ((entry = readdir (dir))) {
        if (entry->d_name[0] == '.')
            continue;
        char status[sizeof path + sizeof entry->d_name + 8];
        snprintf (status, sizeof status, "%s/%s/status", path, entry->d_name);
        FILE *f = fopen (status, "r");
        if (!f)
            continue;
        char line[256];
        while (fgets (line, sizeof line, f))
            if (sscanf (line, "voluntary_ctxt_switches: %lld", &n) == 1
                || sscanf (line, "nonvoluntary_ctxt_switches: %lld", &n) == 1)
                total += n;
        fclose (f);
    }
    closedir (dir);
    return total;
}

static int
s_cmp (const void *a, const void *b)
{
    long long x = *(const long long *) a, y = *(const long long *) b;
    return x < y ? -1 : x > y;
}

//  The echo side: ROUTER, every message straight back, until "stop".
static void
s_echo (const char *endpoint)
{
    void *ctx = zmq_ctx_new ();
    void *router = zmq_socket (ctx, ZMQ_ROUTER);
    if (zmq_bind (router, endpoint)) {
        perror ("bind");
        _exit (1);
    }
    char id[256], body[1 << 16];
    while (1) {
        int idn = zmq_recv (router, id, sizeof id, 0);
        int n = zmq_recv (router, body, sizeof body, 0);
        if (idn < 0 || n < 0 || (n == 4 && memcmp (body, "stop", 4) == 0))
            break;
        zmq_send (router, id, (size_t) idn, ZMQ_SNDMORE);
        zmq_send (router, body, (size_t) n, 0);
    }
    zmq_close (router);
    zmq_ctx_term (ctx);
    _exit (0);
}

int
main (int argc, char **argv)
{
    if (argc != 4) {
        fprintf (stderr, "usage: zmq_hop ENDPOINT ROUND_TRIPS SIZE\n");
        return 2;
    }
    const char *endpoint = argv[1];
    int count = atoi (argv[2]);
    size_t size = (size_t) atoi (argv[3]);
    if (count < 100 || size < 1 || size > (1 << 16)) {
        fprintf (stderr, "zmq_hop: ROUND_TRIPS >= 100, SIZE 1..65536\n");
        return 2;
    }
    pid_t child = fork ();
    if (child == 0)
        s_echo (endpoint);
    usleep (200000);  //  the child binds
    void *ctx = zmq_ctx_new ();
    void *dealer = zmq_socket (ctx, ZMQ_DEALER);
    zmq_connect (dealer, endpoint);
    char *body = calloc (1, size), *back = malloc (1 << 16);
    long long *rtt = malloc (sizeof (long long) * (size_t) count);
    for (int i = 0; i < 200; i++) {  //  warm up: connection, page faults
        zmq_send (dealer, body, size, 0);
        zmq_recv (dealer, back, 1 << 16, 0);
    }
    long long cs0 = s_switches (getpid ()) + s_switches (child);
    for (int i = 0; i < count; i++) {
        long long t0 = s_now_ns ();
        zmq_send (dealer, body, size, 0);
        zmq_recv (dealer, back, 1 << 16, 0);
        rtt[i] = s_now_ns () - t0;
    }
    long long cs1 = s_switches (getpid ()) + s_switches (child);
    zmq_send (dealer, "stop", 4, 0);
    waitpid (child, NULL, 0);
    qsort (rtt, (size_t) count, sizeof rtt[0], s_cmp);
    printf ("%s size %zu: round trip p50 %.1f us, p99 %.1f us; one way ~%.1f us; "
            "%.1f context switches per round trip\n",
            endpoint, size, rtt[count / 2] / 1000.0, rtt[count * 99 / 100] / 1000.0,
            rtt[count / 2] / 2000.0, (double) (cs1 - cs0) / count);
    zmq_close (dealer);
    zmq_ctx_term (ctx);
    free (body);
    free (back);
    free (rtt);
    return 0;
}
