/*  civetweb_ceiling: the throughput ceiling of a CivetWeb edge (a thread per
    connection), with no gateway work at all, so bench/ceiling.sh can put it
    beside an nginx proxy_pass hop in one run.

    Modes:
      fixed    the handler reads the body and answers a fixed chat
               completion at once: what bare CivetWeb costs.
      handoff  the handler queues the request for one answering thread and
               waits for its reply, the way `aigw run` hands a request to its
               I/O thread (a lock-free stack, an eventfd written only while
               that thread sleeps, a mutex and condvar per request): CivetWeb
               plus one hand-off pair.
      proxy    the handler posts the body to UPSTREAM_URL over its thread's
               own keep-alive libcurl easy handle (blocking) and returns the
               upstream's answer: a CivetWeb proxy that does nothing else.

    Usage: civetweb_ceiling fixed|handoff|proxy PORT THREADS [UPSTREAM_URL]
    It serves 127.0.0.1:PORT until SIGTERM or SIGINT. Every path and method
    gets the same treatment (bench/lib.sh's readiness probe is a GET).
    CIVETWEB_CEILING_FUTEX_SLOTS=N first calls prctl (PR_FUTEX_HASH,
    PR_FUTEX_HASH_SET_SLOTS, N) (Linux 6.17+; 0: the global hash), to see
    what the 16-bucket private futex hash of a 2-CPU machine costs when
    thousands of idle workers wait on one condvar.
    Build (bench/ceiling.sh does):
      cc -O2 -std=gnu11 bench/civetweb_ceiling.c -lcivetweb $(pkg-config --cflags --libs libcurl) -lpthread */
#include <civetweb.h>
#include <curl/curl.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <unistd.h>

//  Asserts stay on (STYLE.md): a failed allocation here is a broken
//  benchmark, not input to answer.
#undef NDEBUG
#include <assert.h>

//  The same options http-edge/aigw_edge.c gives mg_start, so only the
//  handler differs from `aigw run`'s edge.
#define CEIL_KEEP_ALIVE_MS    "15000"
#define CEIL_CONNECTION_QUEUE "4096"
#define CEIL_LISTEN_BACKLOG   "4096"
#define CEIL_HEAD_BYTES_MAX   "16384"
#define CEIL_READ_TIMEOUT_MS  "30000"
//  prctl's futex hash calls, from Linux 6.17's uapi (older headers lack them).
#ifndef PR_FUTEX_HASH
#define PR_FUTEX_HASH           78
#define PR_FUTEX_HASH_SET_SLOTS 1
#endif
//  Largest request body read; bench/chat.lua sends about 130 bytes.
#define CEIL_BODY_MAX 65536
//  Largest upstream answer kept (the bench upstream's is about 350 bytes).
#define CEIL_REPLY_MAX 65536
//  How long one upstream call may take, ms.
#define CEIL_UPSTREAM_TIMEOUT_MS 10000L

//  The chat completion bench/lib.sh's upstream nginx answers, byte for
//  byte (BENCH_CHAT_JSON), so fixed and handoff write what proxy relays.
static const char s_chat_json[]
    = "{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion\",\"created\":1700000000,"
      "\"model\":\"gpt-4o-mini\",\"system_fingerprint\":\"fp_bench\",\"choices\":[{\"index\":0,"
      "\"message\":{\"role\":\"assistant\",\"content\":\"Hello.\",\"refusal\":null},"
      "\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":12,"
      "\"completion_tokens\":2,\"total_tokens\":14}}";

typedef enum { S_FIXED, S_HANDOFF, S_PROXY } s_mode_t;

//  One request handed to the answering thread (handoff mode). On the heap
//  with two references, the handler's and the answerer's, as in aigw: the
//  answerer signals after unlocking, when the handler may already be gone.
typedef struct s_slot {
    struct s_slot *next;    //  next in the lock-free stack
    atomic_int refs;        //  the last to let go frees the slot
    pthread_mutex_t mutex;  //  guards done
    pthread_cond_t cond;    //  signalled once, when done is set
    bool done;              //  the reply is ready
    const char *reply;      //  the answer's body (static), set before done
    size_t reply_len;       //  its length
} s_slot_t;

//  What every handler thread works with; one per server.
typedef struct {
    s_mode_t mode;               //  which handler runs
    const char *upstream;        //  proxy mode: the URL bodies are posted to
    _Atomic (s_slot_t *) queue;  //  handoff: slots waiting, newest first
    atomic_bool sleeping;        //  handoff: the answering thread waits on evfd
    int evfd;                    //  handoff: wakes the answering thread
    atomic_bool stop;            //  handoff: the answering thread exits
} s_server_t;

//  Per handler thread, made at its first request: CivetWeb keeps a
//  connection on one thread for its life, so a thread's curl handle keeps
//  its upstream connection alive across requests.
typedef struct {
    char body[CEIL_BODY_MAX];    //  the request body just read
    char reply[CEIL_REPLY_MAX];  //  proxy: the upstream's answer
    size_t reply_len;            //  bytes of it
    bool reply_cut;              //  it was longer than CEIL_REPLY_MAX
    CURL *curl;                  //  proxy: this thread's easy handle
    struct curl_slist *headers;  //  proxy: the headers every post sends
} s_worker_t;

static _Thread_local s_worker_t *tl_worker;

//  Write a complete answer with a Content-Length, which CivetWeb needs to
//  keep the connection alive.
static void
s_answer (struct mg_connection *conn, int status, const char *body, size_t len)
{
    char head[160];
    int n = snprintf (head, sizeof head,
                      "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                      "Content-Length: %zu\r\n\r\n",
                      status, status == 200 ? "OK" : "Error", len);
    mg_write (conn, head, (size_t) n);
    mg_write (conn, body, len);
}

//  curl's write callback: append to the worker's reply, dropping what does
//  not fit (and saying so).
static size_t
s_curl_write (char *data, size_t size, size_t count, void *arg)
{
    s_worker_t *worker = arg;
    size_t len = size * count;
    size_t room = CEIL_REPLY_MAX - worker->reply_len;
    size_t take = len < room ? len : room;
    memcpy (worker->reply + worker->reply_len, data, take);
    worker->reply_len += take;
    if (take < len)
        worker->reply_cut = true;
    return len;
}

//  This thread's worker, made on first use. The thread owns it and frees
//  it in s_exit_thread.
static s_worker_t *
s_worker (const s_server_t *server)
{
    if (tl_worker)
        return tl_worker;
    s_worker_t *worker = calloc (1, sizeof *worker);
    assert (worker);
    if (server->mode == S_PROXY) {
        worker->curl = curl_easy_init ();
        assert (worker->curl);
        worker->headers = curl_slist_append (NULL, "Content-Type: application/json");
        //  No "Expect: 100-continue" round trip (curl adds it only to large
        //  bodies, but say it once).
        worker->headers = curl_slist_append (worker->headers, "Expect:");
        curl_easy_setopt (worker->curl, CURLOPT_URL, server->upstream);
        curl_easy_setopt (worker->curl, CURLOPT_HTTPHEADER, worker->headers);
        curl_easy_setopt (worker->curl, CURLOPT_WRITEFUNCTION, s_curl_write);
        curl_easy_setopt (worker->curl, CURLOPT_WRITEDATA, worker);
        curl_easy_setopt (worker->curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt (worker->curl, CURLOPT_TCP_NODELAY, 1L);
        curl_easy_setopt (worker->curl, CURLOPT_TIMEOUT_MS, CEIL_UPSTREAM_TIMEOUT_MS);
    }
    tl_worker = worker;
    return worker;
}

//  CivetWeb calls this in each of its threads as it ends.
static void
s_exit_thread (const struct mg_context *ctx, int thread_type, void *thread_pointer)
{
    s_worker_t *worker = tl_worker;
    if (!worker)
        return;
    if (worker->curl)
        curl_easy_cleanup (worker->curl);
    curl_slist_free_all (worker->headers);
    free (worker);
    tl_worker = NULL;
}

//  Drop one reference to *SLOT_P; the last frees it. Nulls the pointer.
static void
s_slot_unref (s_slot_t **slot_p)
{
    s_slot_t *slot = *slot_p;
    *slot_p = NULL;
    if (atomic_fetch_sub (&slot->refs, 1) != 1)
        return;
    pthread_cond_destroy (&slot->cond);
    pthread_mutex_destroy (&slot->mutex);
    free (slot);
}

//  Hand SLOT to the answering thread and wake it only if it sleeps (as
//  http-edge/aigw_edge_io.c does), then wait for its reply.
static void
s_handoff (s_server_t *server, s_slot_t *slot)
{
    s_slot_t *head = atomic_load (&server->queue);
    do
        slot->next = head;
    while (!atomic_compare_exchange_weak (&server->queue, &head, slot));
    if (atomic_exchange (&server->sleeping, false)) {
        uint64_t one = 1;
        if (write (server->evfd, &one, sizeof one) < 0) {
            //  The counter is saturated: the thread is awake anyway.
        }
    }
    pthread_mutex_lock (&slot->mutex);
    while (!slot->done)
        pthread_cond_wait (&slot->cond, &slot->mutex);
    pthread_mutex_unlock (&slot->mutex);
}

//  The answering thread (handoff mode): takes every queued slot, answers
//  each with the fixed body, sleeps on the eventfd when none is left.
static void *
s_answerer (void *arg)
{
    s_server_t *server = arg;
    while (!atomic_load (&server->stop)) {
        s_slot_t *slot = atomic_exchange (&server->queue, NULL);
        if (!slot) {
            //  Say we sleep, then look once more: a handler that pushed
            //  before seeing the flag is found here, one after writes evfd.
            atomic_store (&server->sleeping, true);
            slot = atomic_exchange (&server->queue, NULL);
            if (!slot) {
                //  Bounded, so a stop is seen without a write.
                struct pollfd item = {.fd = server->evfd, .events = POLLIN};
                if (poll (&item, 1, 500) > 0) {
                    uint64_t count;
                    if (read (server->evfd, &count, sizeof count) < 0) {
                        //  Raced with another read: nothing to drain.
                    }
                }
                continue;
            }
            atomic_store (&server->sleeping, false);
        }
        while (slot) {
            s_slot_t *next = slot->next;
            pthread_mutex_lock (&slot->mutex);
            slot->reply = s_chat_json;
            slot->reply_len = sizeof s_chat_json - 1;
            slot->done = true;
            pthread_mutex_unlock (&slot->mutex);
            //  Signal after unlocking, so the woken handler does not block
            //  on the mutex at once (aigw_edge_io.c learned this).
            pthread_cond_signal (&slot->cond);
            s_slot_unref (&slot);
            slot = next;
        }
    }
    return NULL;
}

//  Every request: read the body, then answer by the server's mode.
static int
s_handle (struct mg_connection *conn, void *arg)
{
    s_server_t *server = arg;
    s_worker_t *worker = s_worker (server);
    size_t used = 0;
    for (;;) {
        if (used == CEIL_BODY_MAX) {
            static const char too_large[] = "{\"error\":\"body too large\"}";
            mg_disable_connection_keep_alive (conn);
            s_answer (conn, 413, too_large, sizeof too_large - 1);
            return 413;
        }
        int n = mg_read (conn, worker->body + used, CEIL_BODY_MAX - used);
        if (n <= 0)
            break;
        used += (size_t) n;
    }
    if (server->mode == S_FIXED) {
        s_answer (conn, 200, s_chat_json, sizeof s_chat_json - 1);
        return 200;
    }
    if (server->mode == S_HANDOFF) {
        //  A slot per request, as aigw makes one per request.
        s_slot_t *slot = calloc (1, sizeof *slot);
        assert (slot);
        atomic_init (&slot->refs, 2);
        pthread_mutex_init (&slot->mutex, NULL);
        pthread_cond_init (&slot->cond, NULL);
        s_handoff (server, slot);
        s_answer (conn, 200, slot->reply, slot->reply_len);
        s_slot_unref (&slot);
        return 200;
    }
    worker->reply_len = 0;
    worker->reply_cut = false;
    curl_easy_setopt (worker->curl, CURLOPT_POSTFIELDS, worker->body);
    curl_easy_setopt (worker->curl, CURLOPT_POSTFIELDSIZE, (long) used);
    long status = 0;
    CURLcode rc = curl_easy_perform (worker->curl);
    if (rc == CURLE_OK)
        curl_easy_getinfo (worker->curl, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK || worker->reply_cut) {
        static const char bad_gateway[] = "{\"error\":\"upstream failed\"}";
        s_answer (conn, 502, bad_gateway, sizeof bad_gateway - 1);
        return 502;
    }
    s_answer (conn, (int) status, worker->reply, worker->reply_len);
    return (int) status;
}

int
main (int argc, char *argv[])
{
    if (argc < 4 || argc > 5) {
        fprintf (stderr,
                 "usage: civetweb_ceiling fixed|handoff|proxy PORT THREADS [UPSTREAM_URL]\n");
        return 2;
    }
    s_server_t server = {.evfd = -1};
    if (strcmp (argv[1], "fixed") == 0)
        server.mode = S_FIXED;
    else if (strcmp (argv[1], "handoff") == 0)
        server.mode = S_HANDOFF;
    else if (strcmp (argv[1], "proxy") == 0 && argc == 5)
        server.mode = S_PROXY;
    else {
        fprintf (stderr, "civetweb_ceiling: unknown mode '%s' (proxy needs a URL)\n", argv[1]);
        return 2;
    }
    server.upstream = argc == 5 ? argv[4] : NULL;
    atomic_init (&server.queue, NULL);
    atomic_init (&server.sleeping, false);
    atomic_init (&server.stop, false);
    if (curl_global_init (CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf (stderr, "civetweb_ceiling: curl_global_init failed\n");
        return 1;
    }
    //  Every thread started from here on inherits the blocked signals, so
    //  only sigwait below sees TERM and INT.
    sigset_t stop_signals;
    sigemptyset (&stop_signals);
    sigaddset (&stop_signals, SIGTERM);
    sigaddset (&stop_signals, SIGINT);
    pthread_sigmask (SIG_BLOCK, &stop_signals, NULL);

    //  Before any thread exists; CivetWeb's workers share the hash.
    const char *slots = getenv ("CIVETWEB_CEILING_FUTEX_SLOTS");
    if (slots && *slots && prctl (PR_FUTEX_HASH, PR_FUTEX_HASH_SET_SLOTS, atol (slots), 0, 0) != 0)
        fprintf (stderr, "civetweb_ceiling: PR_FUTEX_HASH_SET_SLOTS %s: %s\n", slots,
                 strerror (errno));
    pthread_t answerer;
    if (server.mode == S_HANDOFF) {
        server.evfd = eventfd (0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (server.evfd < 0 || pthread_create (&answerer, NULL, s_answerer, &server) != 0) {
            fprintf (stderr, "civetweb_ceiling: cannot start the answering thread\n");
            return 1;
        }
    }
    char ports[64];
    snprintf (ports, sizeof ports, "127.0.0.1:%s", argv[2]);
    const char *options[] = {"listening_ports",
                             ports,
                             "num_threads",
                             argv[3],
                             "enable_keep_alive",
                             "yes",
                             "keep_alive_timeout_ms",
                             CEIL_KEEP_ALIVE_MS,
                             "tcp_nodelay",
                             "1",
                             "connection_queue",
                             CEIL_CONNECTION_QUEUE,
                             "listen_backlog",
                             CEIL_LISTEN_BACKLOG,
                             "enable_auth_domain_check",
                             "no",
                             "max_request_size",
                             CEIL_HEAD_BYTES_MAX,
                             "request_timeout_ms",
                             CEIL_READ_TIMEOUT_MS,
                             NULL};
    struct mg_callbacks callbacks = {0};
    callbacks.exit_thread = s_exit_thread;
    struct mg_context *ctx = mg_start (&callbacks, &server, options);
    if (!ctx) {
        fprintf (stderr, "civetweb_ceiling: cannot listen on %s\n", ports);
        return 1;
    }
    mg_set_request_handler (ctx, "/", s_handle, &server);
    fprintf (stderr, "civetweb_ceiling: %s mode on %s, %s threads\n", argv[1], ports, argv[3]);

    int signal_number;
    sigwait (&stop_signals, &signal_number);
    mg_stop (ctx);
    if (server.mode == S_HANDOFF) {
        atomic_store (&server.stop, true);
        pthread_join (answerer, NULL);
        close (server.evfd);
    }
    curl_global_cleanup ();
    return 0;
}
