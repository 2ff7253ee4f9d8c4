/*  zmq_hop: what one libzmq hop between two processes costs on this machine,
    with nothing of aigw in it: the floor under the split deployment's
    per-hop latency (bench/RESULTS.md, issue 8).

    A DEALER in this process sends SIZE bytes to a ROUTER in a forked child,
    which sends them straight back; one message in flight. Prints the round
    trip's p50 and p99, the context switches per round trip of all the
    processes (voluntary + involuntary, from /proc) and their CPU time per
    round trip (user + system).

    With HOPS > 2 it is a ring like the split deployment's route: this
    process and HOPS - 1 children, each child a ROUTER inbox that forwards
    every message to the next one's inbox through a DEALER, the last back to
    this process's ROUTER. POLL (0 or a count) makes each child wait in
    zmq_poll over its inbox and POLL - 1 idle sockets, as aigw's host loop
    does, rather than in a blocking zmq_recv. FRAMES splits the message into
    that many frames, the body last.

        cc -O2 -o /tmp/zmq_hop bench/zmq_hop.c -lzmq
        /tmp/zmq_hop tcp://127.0.0.1:5599 20000 1024
        /tmp/zmq_hop ipc:///tmp/zmq_hop.sock 20000 1024
        /tmp/zmq_hop tcp://127.0.0.1:5599 20000 512 6 3 8   # 6 hops, poll 3, 8 frames

    A ring's tcp endpoints are PORT, PORT + 1, ...; ipc ones get ".N". */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
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

//  Endpoint N of a ring based on BASE: tcp port + N, or BASE ".N".
static void
s_endpoint (char *buf, size_t size, const char *base, int n)
{
    const char *colon = strrchr (base, ':');
    if (strncmp (base, "tcp://", 6) == 0 && colon)
        snprintf (buf, size, "%.*s:%d", (int) (colon - base), base, atoi (colon + 1) + n);
    else
        snprintf (buf, size, "%s.%d", base, n);
}

//  Send FRAMES frames (the last holds BODY) on SOCK.
static void
s_send_frames (void *sock, const char *body, size_t size, int frames)
{
    for (int i = 0; i + 1 < frames; i++)
        zmq_send (sock, "frame", 5, ZMQ_SNDMORE);
    zmq_send (sock, body, size, 0);
}

//  A ring's forwarder N: inbox N, everything to N + 1 (0 after the last).
static void
s_forward (const char *base, int n, int hops, int poll)
{
    char in[256], out[256];
    s_endpoint (in, sizeof in, base, n);
    s_endpoint (out, sizeof out, base, (n + 1) % hops);
    void *ctx = zmq_ctx_new ();
    void *router = zmq_socket (ctx, ZMQ_ROUTER);
    void *dealer = zmq_socket (ctx, ZMQ_DEALER);
    if (zmq_bind (router, in)) {
        perror ("bind");
        _exit (1);
    }
    usleep (200000);  //  every inbox is bound
    zmq_connect (dealer, out);
    zmq_pollitem_t items[16];
    void *idle[16];
    if (poll > 16)
        poll = 16;
    items[0] = (zmq_pollitem_t){router, 0, ZMQ_POLLIN, 0};
    for (int i = 1; i < poll; i++) {
        idle[i] = zmq_socket (ctx, ZMQ_PAIR);
        char name[64];
        snprintf (name, sizeof name, "inproc://idle-%d", i);
        zmq_bind (idle[i], name);
        items[i] = (zmq_pollitem_t){idle[i], 0, ZMQ_POLLIN, 0};
    }
    static char frame[1 << 16];
    int stop = 0;
    while (!stop) {
        if (poll > 0) {
            zmq_poll (items, poll, 1000);
            if (!(items[0].revents & ZMQ_POLLIN))
                continue;
        }
        int more = 1, first = 1;
        while (more) {
            int size = zmq_recv (router, frame, sizeof frame, poll > 0 ? ZMQ_DONTWAIT : 0);
            if (size < 0)
                break;
            more = 0;
            size_t more_size = sizeof more;
            zmq_getsockopt (router, ZMQ_RCVMORE, &more, &more_size);
            if (first) {  //  the identity frame stays here
                first = 0;
                continue;
            }
            if (size == 4 && memcmp (frame, "stop", 4) == 0)
                stop = 1;
            zmq_send (dealer, frame, (size_t) size, more ? ZMQ_SNDMORE : 0);
        }
    }
    usleep (100000);  //  "stop" goes on before we close
    _exit (0);
}

//  HOPS processes in a ring; prints as main does.
static int
s_ring (const char *base, int count, size_t size, int hops, int poll, int frames)
{
    pid_t child[64];
    for (int n = 1; n < hops; n++)
        if ((child[n] = fork ()) == 0)
            s_forward (base, n, hops, poll);
    char in[256], out[256];
    s_endpoint (in, sizeof in, base, 0);
    s_endpoint (out, sizeof out, base, 1);
    void *ctx = zmq_ctx_new ();
    void *router = zmq_socket (ctx, ZMQ_ROUTER);
    void *dealer = zmq_socket (ctx, ZMQ_DEALER);
    if (zmq_bind (router, in)) {
        perror ("bind");
        return 1;
    }
    usleep (400000);
    zmq_connect (dealer, out);
    char *body = calloc (1, size), *back = malloc (1 << 16);
    long long *rtt = malloc (sizeof (long long) * (size_t) count);
    struct rusage ru;
    long long cs0 = 0, cs1 = 0, cpu0 = 0, cpu1 = 0;
    for (int i = -200; i < count; i++) {
        if (i == 0) {
            cs0 = s_switches (getpid ());
            cpu0 = 0;
            for (int n = 1; n < hops; n++) {
                cs0 += s_switches (child[n]);
                char path[64];
                snprintf (path, sizeof path, "/proc/%d/stat", (int) child[n]);
                FILE *f = fopen (path, "r");
                unsigned long ut = 0, st = 0;
                if (f
                    && fscanf (f, "%*d %*s %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
                               &ut, &st)
                           == 2)
                    cpu0 += (long long) (ut + st) * 1000000 / sysconf (_SC_CLK_TCK);
                if (f)
                    fclose (f);
            }
            getrusage (RUSAGE_SELF, &ru);
            cpu0 += ru.ru_utime.tv_sec * 1000000LL + ru.ru_utime.tv_usec
                    + ru.ru_stime.tv_sec * 1000000LL + ru.ru_stime.tv_usec;
        }
        long long t0 = s_now_ns ();
        s_send_frames (dealer, body, size, frames);
        int more = 1;
        while (more) {
            zmq_recv (router, back, 1 << 16, 0);
            size_t more_size = sizeof more;
            zmq_getsockopt (router, ZMQ_RCVMORE, &more, &more_size);
        }
        if (i >= 0)
            rtt[i] = s_now_ns () - t0;
    }
    cs1 = s_switches (getpid ());
    for (int n = 1; n < hops; n++)
        cs1 += s_switches (child[n]);
    s_send_frames (dealer, "stop", 4, 1);
    for (int n = 1; n < hops; n++) {
        waitpid (child[n], NULL, 0);
    }
    getrusage (RUSAGE_SELF, &ru);
    cpu1 = ru.ru_utime.tv_sec * 1000000LL + ru.ru_utime.tv_usec + ru.ru_stime.tv_sec * 1000000LL
           + ru.ru_stime.tv_usec;
    getrusage (RUSAGE_CHILDREN, &ru);
    cpu1 += ru.ru_utime.tv_sec * 1000000LL + ru.ru_utime.tv_usec + ru.ru_stime.tv_sec * 1000000LL
            + ru.ru_stime.tv_usec;
    qsort (rtt, (size_t) count, sizeof rtt[0], s_cmp);
    printf ("%s ring of %d hops, size %zu, %d frames, poll %d: round trip p50 %.1f us, "
            "p99 %.1f us; per hop ~%.1f us; %.1f context switches and %.1f us CPU "
            "per round trip (CPU includes warm-up and set-up)\n",
            base, hops, size, frames, poll, rtt[count / 2] / 1000.0, rtt[count * 99 / 100] / 1000.0,
            rtt[count / 2] / 1000.0 / hops, (double) (cs1 - cs0) / count,
            (double) (cpu1 - cpu0) / count);
    zmq_close (dealer);
    zmq_close (router);
    zmq_ctx_term (ctx);
    free (body);
    free (back);
    free (rtt);
    return 0;
}

int
main (int argc, char **argv)
{
    if (argc < 4 || argc > 7) {
        fprintf (stderr, "usage: zmq_hop ENDPOINT ROUND_TRIPS SIZE [HOPS [POLL [FRAMES]]]\n");
        return 2;
    }
    const char *endpoint = argv[1];
    int count = atoi (argv[2]);
    size_t size = (size_t) atoi (argv[3]);
    if (count < 100 || size < 1 || size > (1 << 16)) {
        fprintf (stderr, "zmq_hop: ROUND_TRIPS >= 100, SIZE 1..65536\n");
        return 2;
    }
    int hops = argc > 4 ? atoi (argv[4]) : 2;
    int poll = argc > 5 ? atoi (argv[5]) : 0;
    int frames = argc > 6 ? atoi (argv[6]) : 1;
    if (hops < 2 || hops > 64 || poll < 0 || frames < 1) {
        fprintf (stderr, "zmq_hop: HOPS 2..64, POLL >= 0, FRAMES >= 1\n");
        return 2;
    }
    if (hops > 2 || poll > 0 || frames > 1)
        return s_ring (endpoint, count, size, hops, poll, frames);
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
