/*  aigw_testhttp: a loopback HTTP server for the selftests of classes that
    call out over HTTP (the provider's upstreams, the webhook guardrail):
    every request is answered with one status and body, after a delay,
    with Connection: close, and the last request is kept to look at. */
#ifndef AIGW_TESTHTTP_H_INCLUDED
#define AIGW_TESTHTTP_H_INCLUDED

#include <pthread.h>
#include <stddef.h>

//  Longest request the server reads, head and body.
#define AIGW_TESTHTTP_REQUEST_MAX 65536

typedef struct {
    int listener;                          //  listening socket on 127.0.0.1
    int port;                              //  its port
    int status;                            //  status of every answer
    const char *body;                      //  body of every answer
    int delay_ms;                          //  wait before answering
    int requests;                          //  requests read (under lock)
    char last[AIGW_TESTHTTP_REQUEST_MAX];  //  the last request (under lock)
    pthread_mutex_t lock;                  //  guards requests and last
    pthread_t thread;                      //  the accept loop
} aigw_testhttp_t;

//  Start SELF on an ephemeral port of 127.0.0.1, answering STATUS and BODY
//  after DELAY_MS. Aborts when it cannot.
void aigw_testhttp_start (aigw_testhttp_t *self, int status, const char *body, int delay_ms);

//  Stop the accept loop and close the listener.
void aigw_testhttp_stop (aigw_testhttp_t *self);

//  The client side, for selftests of servers: send REQUEST to
//  127.0.0.1:PORT and read the answer into OUT (SIZE bytes, NUL-ended)
//  until the server closes or OUT is full. Aborts when it cannot connect.
void aigw_testhttp_ask (int port, const char *request, char *out, size_t size);

#endif
