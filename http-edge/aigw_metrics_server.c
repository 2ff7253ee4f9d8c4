/*  aigw_metrics_server: GET /metrics of the process registry, over CivetWeb. */
#include "aigw_metrics_server.h"
#include "aigw_stats.h"
#include "aigw_testhttp.h"

#include <assert.h>
#include <civetweb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Scrapes answered at once: a scraper or two, never a crowd.
#define S_THREADS "2"
//  A scraper that sends nothing for this long is dropped, ms.
#define S_TIMEOUT_MS "5000"
//  Each answer closes its connection: a scrape comes every few seconds, and
//  an idle kept-alive connection would hold one of the two threads (and
//  race the client reusing it against CivetWeb closing it).

struct _aigw_metrics_server_t {
    struct mg_context *ctx;  //  CivetWeb server
    int port;                //  port bound
};

//  Answer CONN: /metrics to GET and HEAD, 405 to other methods there,
//  404 elsewhere.
static int
s_handle (struct mg_connection *conn, void *cbdata)
{
    (void) cbdata;
    const struct mg_request_info *ri = mg_get_request_info (conn);
    bool metrics = ri->local_uri && strcmp (ri->local_uri, "/metrics") == 0;
    bool head = strcmp (ri->request_method, "HEAD") == 0;
    bool get = head || strcmp (ri->request_method, "GET") == 0;
    if (!metrics || !get) {
        const char *body = metrics ? "{\"error\":{\"message\":\"Method not allowed on this path.\","
                                     "\"type\":\"invalid_request_error\","
                                     "\"code\":\"method_not_allowed\"}}"
                                   : "{\"error\":{\"message\":\"Unknown path.\","
                                     "\"type\":\"invalid_request_error\",\"code\":\"not_found\"}}";
        mg_printf (conn,
                   "HTTP/1.1 %s\r\nContent-Type: application/json\r\n%sContent-Length: %zu\r\n"
                   "Connection: close\r\n\r\n"
                   "%s",
                   metrics ? "405 Method Not Allowed" : "404 Not Found",
                   metrics ? "Allow: GET, HEAD\r\n" : "", strlen (body), body);
        return metrics ? 405 : 404;
    }
    char *text = aigw_stats_text ();
    size_t len = strlen (text);
    mg_printf (conn,
               "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
               "Content-Length: %zu\r\nConnection: close\r\n\r\n",
               len);
    if (!head)
        mg_write (conn, text, len);
    free (text);
    return 200;
}

//  Keep CivetWeb's own messages out of stderr.
static int
s_log_message (const struct mg_connection *conn, const char *message)
{
    (void) conn;
    (void) message;
    return 1;
}

aigw_metrics_server_t *
aigw_metrics_server_new (const char *host, int port, char *err, size_t err_size)
{
    aigw_metrics_server_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, err_size, "no memory");
        return NULL;
    }
    char ports[300];
    snprintf (ports, sizeof ports, "%s:%d", host && *host ? host : "0.0.0.0", port);
    const char *options[]
        = {"listening_ports",   ports, "num_threads", S_THREADS, "request_timeout_ms", S_TIMEOUT_MS,
           "enable_keep_alive", "no",  NULL};
    struct mg_callbacks callbacks = {0};
    callbacks.log_message = s_log_message;
    self->ctx = mg_start (&callbacks, self, options);
    if (!self->ctx) {
        snprintf (err, err_size, "metrics: cannot listen on %s (in use, or not allowed)", ports);
        free (self);
        return NULL;
    }
    mg_set_request_handler (self->ctx, "/", s_handle, self);
    struct mg_server_port bound[4];
    int count = mg_get_server_ports (self->ctx, 4, bound);
    self->port = count > 0 ? bound[0].port : port;
    return self;
}

void
aigw_metrics_server_destroy (aigw_metrics_server_t **self_p)
{
    aigw_metrics_server_t *self = *self_p;
    if (self) {
        mg_stop (self->ctx);
        free (self);
    }
    *self_p = NULL;
}

int
aigw_metrics_server_port (aigw_metrics_server_t *self)
{
    return self->port;
}

//  ---------------------------------------------------------------------
//  Selftest

void
aigw_metrics_server_test (bool verbose)
{
    aigw_stat_t *stat = aigw_stats_counter ("aigw_test_scrapes_total", "", "Test figure.");
    aigw_stat_add (stat, 7);
    char err[256];
    aigw_metrics_server_t *self = aigw_metrics_server_new ("127.0.0.1", 0, err, sizeof err);
    assert (self);
    int port = aigw_metrics_server_port (self);
    assert (port > 0);
    char answer[8192];
    aigw_testhttp_ask (port, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                       answer, sizeof answer);
    if (verbose)
        printf ("%s\n", answer);
    assert (strncmp (answer, "HTTP/1.1 200", 12) == 0);
    assert (strstr (answer, "\r\n\r\n# HELP aigw_test_scrapes_total Test figure.\n"));
    assert (strstr (answer, "\naigw_test_scrapes_total 7\n"));
    aigw_testhttp_ask (port, "HEAD /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                       answer, sizeof answer);
    assert (strncmp (answer, "HTTP/1.1 200", 12) == 0);
    assert (!strstr (answer, "aigw_test_scrapes_total"));
    aigw_testhttp_ask (
        port, "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        answer, sizeof answer);
    assert (strncmp (answer, "HTTP/1.1 405", 12) == 0 && strstr (answer, "Allow: GET, HEAD"));
    //  The server closes after each answer, whatever the client asked.
    aigw_testhttp_ask (port, "GET /other HTTP/1.1\r\nHost: x\r\n\r\n", answer, sizeof answer);
    assert (strncmp (answer, "HTTP/1.1 404", 12) == 0 && strstr (answer, "Connection: close"));
    //  The port is taken: a second server there is refused.
    aigw_metrics_server_t *twice = aigw_metrics_server_new ("127.0.0.1", port, err, sizeof err);
    assert (!twice && strstr (err, "cannot listen"));
    aigw_metrics_server_destroy (&self);
    aigw_metrics_server_destroy (&self);
    if (verbose)
        printf ("metrics server: ok\n");
}
