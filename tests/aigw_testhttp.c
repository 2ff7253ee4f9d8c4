/*  aigw_testhttp: a loopback HTTP server for selftests. See aigw_testhttp.h. */
#include "aigw_testhttp.h"

#include <arpa/inet.h>
#include <assert.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

//  One request per connection: read it whole (head, then Content-Length
//  bytes), keep it, answer. Ends when the listener is shut down.
static void *
s_run (void *arg)
{
    aigw_testhttp_t *self = (aigw_testhttp_t *) arg;
    int fd;
    while ((fd = accept (self->listener, NULL, NULL)) >= 0) {
        char request[AIGW_TESTHTTP_REQUEST_MAX];
        size_t got = 0;
        while (got < sizeof request - 1) {
            ssize_t n = recv (fd, request + got, sizeof request - 1 - got, 0);
            if (n <= 0)
                break;
            got += (size_t) n;
            request[got] = 0;
            char *head_end = strstr (request, "\r\n\r\n");
            const char *length = strcasestr (request, "content-length:");
            if (head_end && length
                && got >= (size_t) (head_end + 4 - request) + (size_t) atoi (length + 15))
                break;
        }
        request[got] = 0;
        pthread_mutex_lock (&self->lock);
        snprintf (self->last, sizeof self->last, "%s", request);
        self->requests++;
        pthread_mutex_unlock (&self->lock);
        if (self->delay_ms)
            usleep ((useconds_t) self->delay_ms * 1000);
        char head[256];
        int head_len = snprintf (head, sizeof head,
                                 "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                                 "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                                 self->status, strlen (self->body));
        //  The client may have given up: a failed send is no test failure.
        if (send (fd, head, (size_t) head_len, MSG_NOSIGNAL) == head_len)
            send (fd, self->body, strlen (self->body), MSG_NOSIGNAL);
        close (fd);
    }
    return NULL;
}

void
aigw_testhttp_start (aigw_testhttp_t *self, int status, const char *body, int delay_ms)
{
    memset (self, 0, sizeof *self);
    self->status = status;
    self->body = body;
    self->delay_ms = delay_ms;
    pthread_mutex_init (&self->lock, NULL);
    self->listener = socket (AF_INET, SOCK_STREAM, 0);
    assert (self->listener >= 0);
    struct sockaddr_in address
        = {.sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
    int rc = bind (self->listener, (struct sockaddr *) &address, sizeof address);
    assert (rc == 0);
    rc = listen (self->listener, 16);
    assert (rc == 0);
    socklen_t len = sizeof address;
    rc = getsockname (self->listener, (struct sockaddr *) &address, &len);
    assert (rc == 0);
    self->port = ntohs (address.sin_port);
    rc = pthread_create (&self->thread, NULL, s_run, self);
    assert (rc == 0);
    (void) rc;
}

void
aigw_testhttp_stop (aigw_testhttp_t *self)
{
    shutdown (self->listener, SHUT_RDWR);
    close (self->listener);
    pthread_join (self->thread, NULL);
    pthread_mutex_destroy (&self->lock);
}

void
aigw_testhttp_ask (int port, const char *request, char *out, size_t size)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    assert (fd >= 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons ((uint16_t) port)};
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    assert (connect (fd, (struct sockaddr *) &addr, sizeof addr) == 0);
    assert (write (fd, request, strlen (request)) == (ssize_t) strlen (request));
    size_t used = 0;
    ssize_t n;
    while (used < size - 1 && (n = read (fd, out + used, size - 1 - used)) > 0)
        used += (size_t) n;
    out[used] = 0;
    close (fd);
}
