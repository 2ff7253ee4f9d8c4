/*  aigw_webhook: the webhook guardrail's HTTP client. See aigw_webhook.h. */
#include "aigw_webhook.h"
#include "aigw_curlepoll.h"
#include "aigw_text.h"
#include "aigw_testhttp.h"

#include <assert.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

struct _aigw_webhook_call_t {
    aigw_webhook_t *owner;       //  the client that runs it
    CURL *easy;                  //  the transfer
    struct curl_slist *headers;  //  its request headers
    char *body;                  //  the request body (curl reads it in place)
    char *answer;                //  the answer so far, NUL-terminated
    size_t answer_len;           //  its length
    size_t answer_max;           //  room in answer
    bool too_large;              //  the answer passed AIGW_WEBHOOK_ANSWER_MAX
    aigw_webhook_done_fn *done;  //  the caller's callback
    void *arg;                   //  its argument
    aigw_webhook_call_t *prev;   //  in the client's list of calls
    aigw_webhook_call_t *next;   //  in the client's list of calls
};

struct _aigw_webhook_t {
    CURLM *multi;               //  every call's transfer (this thread's alone)
    int epfd;                   //  the transfers' sockets
    int64_t timer_at;           //  when curl wants its timeout action, monotonic ms; -1 none
    aigw_webhook_call_t *head;  //  calls under way
    size_t active;              //  their number
};

//  Monotonic milliseconds.
static int64_t
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

//  curl socket callback: mirror curl's interest in the epoll set.
static int
s_on_socket (CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    aigw_webhook_t *self = (aigw_webhook_t *) userp;
    aigw_curlepoll_socket (self->epfd, self->multi, fd, what, socketp, (epoll_data_t){.fd = fd},
                           self);
    return 0;
}

//  curl timer callback: one timer for the whole multi.
static int
s_on_timer (CURLM *multi, long timeout_ms, void *userp)
{
    aigw_webhook_t *self = (aigw_webhook_t *) userp;
    self->timer_at = timeout_ms < 0 ? -1 : s_now_ms () + timeout_ms;
    return 0;
}

//  curl write callback: keep the answer, up to AIGW_WEBHOOK_ANSWER_MAX.
static size_t
s_on_data (char *data, size_t size, size_t count, void *userp)
{
    aigw_webhook_call_t *call = (aigw_webhook_call_t *) userp;
    size_t len = size * count;
    if (call->answer_len + len > AIGW_WEBHOOK_ANSWER_MAX) {
        call->too_large = true;
        return 0;  //  curl ends the transfer
    }
    if (aigw_text_append (&call->answer, &call->answer_len, &call->answer_max, data, len))
        return 0;  //  out of memory: curl ends the transfer
    return len;
}

aigw_webhook_t *
aigw_webhook_new (void)
{
    aigw_webhook_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->timer_at = -1;
    self->epfd = epoll_create1 (EPOLL_CLOEXEC);
    self->multi = curl_multi_init ();
    if (self->epfd < 0 || !self->multi) {
        aigw_webhook_destroy (&self);
        return NULL;
    }
    curl_multi_setopt (self->multi, CURLMOPT_SOCKETFUNCTION, s_on_socket);
    curl_multi_setopt (self->multi, CURLMOPT_SOCKETDATA, self);
    curl_multi_setopt (self->multi, CURLMOPT_TIMERFUNCTION, s_on_timer);
    curl_multi_setopt (self->multi, CURLMOPT_TIMERDATA, self);
    return self;
}

//  Take CALL off the client and free it (its transfer aborted if still on).
static void
s_call_destroy (aigw_webhook_call_t **call_p)
{
    aigw_webhook_call_t *call = *call_p;
    if (!call)
        return;
    aigw_webhook_t *self = call->owner;
    if (call->prev)
        call->prev->next = call->next;
    else
        self->head = call->next;
    if (call->next)
        call->next->prev = call->prev;
    self->active--;
    if (call->easy) {
        curl_multi_remove_handle (self->multi, call->easy);
        curl_easy_cleanup (call->easy);
    }
    //  The headers may hold a credential.
    for (struct curl_slist *h = call->headers; h; h = h->next)
        explicit_bzero (h->data, strlen (h->data));
    curl_slist_free_all (call->headers);
    free (call->body);
    free (call->answer);
    free (call);
    *call_p = NULL;
}

void
aigw_webhook_destroy (aigw_webhook_t **self_p)
{
    aigw_webhook_t *self = *self_p;
    if (!self)
        return;
    while (self->head) {
        aigw_webhook_call_t *call = self->head;
        s_call_destroy (&call);
    }
    if (self->multi)
        curl_multi_cleanup (self->multi);
    if (self->epfd >= 0)
        close (self->epfd);
    free (self);
    *self_p = NULL;
}

aigw_webhook_call_t *
aigw_webhook_post (aigw_webhook_t *self, const char *url, const char *const *headers,
                   const char *body, size_t len, long timeout_ms, aigw_webhook_done_fn *done,
                   void *arg)
{
    aigw_webhook_call_t *call = calloc (1, sizeof *call);
    if (!call)
        return NULL;
    call->owner = self;
    call->done = done;
    call->arg = arg;
    call->next = self->head;
    if (self->head)
        self->head->prev = call;
    self->head = call;
    self->active++;
    call->body = malloc (len + 1);
    call->easy = curl_easy_init ();
    if (!call->body || !call->easy) {
        s_call_destroy (&call);
        return NULL;
    }
    memcpy (call->body, body, len);
    call->body[len] = 0;
    //  curl sends Expect: 100-continue on large bodies: a round trip more.
    const char *fixed[]
        = {"Content-Type: application/json", "Accept: application/json", "Expect:", NULL};
    for (int pass = 0; pass < 2; pass++) {
        const char *const *list = pass == 0 ? fixed : headers;
        for (size_t i = 0; list && list[i]; i++) {
            struct curl_slist *more = curl_slist_append (call->headers, list[i]);
            if (!more) {
                s_call_destroy (&call);
                return NULL;
            }
            call->headers = more;
        }
    }
    CURL *easy = call->easy;
    if (timeout_ms < 1)
        timeout_ms = 1;
    curl_easy_setopt (easy, CURLOPT_URL, url);
    curl_easy_setopt (easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt (easy, CURLOPT_PRIVATE, call);
    curl_easy_setopt (easy, CURLOPT_HTTPHEADER, call->headers);
    curl_easy_setopt (easy, CURLOPT_POST, 1L);
    curl_easy_setopt (easy, CURLOPT_POSTFIELDS, call->body);
    curl_easy_setopt (easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) len);
    curl_easy_setopt (easy, CURLOPT_WRITEFUNCTION, s_on_data);
    curl_easy_setopt (easy, CURLOPT_WRITEDATA, call);
    curl_easy_setopt (easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (easy, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt (easy, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt (easy, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    if (curl_multi_add_handle (self->multi, easy) != CURLM_OK) {
        s_call_destroy (&call);
        return NULL;
    }
    return call;
}

void
aigw_webhook_cancel (aigw_webhook_t *self, aigw_webhook_call_t **call_p)
{
    assert (!*call_p || (*call_p)->owner == self);
    s_call_destroy (call_p);
}

size_t
aigw_webhook_active (aigw_webhook_t *self)
{
    return self->active;
}

int
aigw_webhook_pollitems (aigw_webhook_t *self, zmq_pollitem_t *items, int max)
{
    if (max < 1 || !self->active)
        return 0;
    items[0] = (zmq_pollitem_t){NULL, self->epfd, ZMQ_POLLIN, 0};
    return 1;
}

int
aigw_webhook_timeout (aigw_webhook_t *self)
{
    if (self->timer_at < 0)
        return -1;
    int64_t wait = self->timer_at - s_now_ms ();
    return wait > 0 ? (int) wait : 0;
}

//  Call back CALL, which curl finished with CODE, and free it.
static void
s_call_done (aigw_webhook_call_t *call, CURLcode code)
{
    long status = 0;
    curl_easy_getinfo (call->easy, CURLINFO_RESPONSE_CODE, &status);
    aigw_webhook_result_t result = {
        .status = (int) status,
        .body = call->answer ? call->answer : "",
        .body_len = call->answer_len,
        .reason = curl_easy_strerror (code),
    };
    if (call->too_large) {
        result.outcome = AIGW_WEBHOOK_FAILED;
        result.reason = "the answer is too large";
    }
    else if (code == CURLE_OPERATION_TIMEDOUT)
        result.outcome = AIGW_WEBHOOK_TIMEOUT;
    else if (code != CURLE_OK)
        result.outcome = AIGW_WEBHOOK_FAILED;
    else if (status < 200 || status > 299) {
        result.outcome = AIGW_WEBHOOK_STATUS;
        result.reason = "the answer's status is not 2xx";
    }
    else {
        result.outcome = AIGW_WEBHOOK_ANSWERED;
        result.reason = "answered";
    }
    //  Off curl first: the callback may start or cancel other calls.
    curl_multi_remove_handle (call->owner->multi, call->easy);
    call->done (call->arg, &result);
    s_call_destroy (&call);
}

void
aigw_webhook_process (aigw_webhook_t *self, zmq_pollitem_t *items, int count)
{
    int running;
    if (count > 0 && (items[0].revents & ZMQ_POLLIN)) {
        struct epoll_event events[AIGW_WEBHOOK_EPOLL_BATCH];
        int ready = epoll_wait (self->epfd, events, AIGW_WEBHOOK_EPOLL_BATCH, 0);
        for (int i = 0; i < ready; i++) {
            curl_multi_socket_action (self->multi, events[i].data.fd,
                                      aigw_curlepoll_mask (events[i].events), &running);
        }
    }
    if (self->timer_at >= 0 && s_now_ms () >= self->timer_at) {
        self->timer_at = -1;
        curl_multi_socket_action (self->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    }
    //  One message at a time: a callback may cancel another call, whose
    //  message curl then drops.
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read (self->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        aigw_webhook_call_t *call = NULL;
        curl_easy_getinfo (msg->easy_handle, CURLINFO_PRIVATE, (char **) &call);
        s_call_done (call, msg->data.result);
    }
}

//  True when RULE (LEN bytes) is 1 to AIGW_WEBHOOK_RULE_MAX of A-Z a-z 0-9
//  _ . -: it goes into verdicts (comma- and colon-separated) and messages.
static bool
s_rule_valid (const char *rule, size_t len)
{
    if (len == 0 || len > AIGW_WEBHOOK_RULE_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = rule[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'
              || c == '.' || c == '-'))
            return false;
    }
    return true;
}

int
aigw_webhook_parse (const char *body, size_t len, size_t texts, aigw_webhook_answer_t *answer,
                    char *err, size_t err_size)
{
    memset (answer, 0, sizeof *answer);
    json_error_t jerr;
    json_t *root = json_loadb (body, len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *allowed = json_object_get (root, "allowed");
    json_t *action = json_object_get (root, "action");
    json_t *rule = json_object_get (root, "rule");
    json_t *replaced = json_object_get (root, "texts");
    const char *problem = NULL;
    if (!json_is_object (root))
        problem = "not a JSON object";
    else if (!json_is_boolean (allowed))
        problem = "allowed: expected true or false";
    else if (action && !json_is_null (action)) {
        const char *name = json_string_value (action);
        answer->has_action = true;
        if (name && strcmp (name, "block") == 0)
            answer->action = AIGW_POLICY_BLOCK;
        else if (name && strcmp (name, "redact") == 0)
            answer->action = AIGW_POLICY_REDACT;
        else if (name && strcmp (name, "flag") == 0)
            answer->action = AIGW_POLICY_FLAG;
        else
            problem = "action: expected block, redact or flag";
    }
    if (!problem && rule && !json_is_null (rule)
        && (!json_is_string (rule)
            || !s_rule_valid (json_string_value (rule), json_string_length (rule))))
        problem = "rule: expected 1 to 64 of A-Z a-z 0-9 _ . -";
    if (!problem && replaced && !json_is_null (replaced)) {
        if (!json_is_array (replaced) || json_array_size (replaced) != texts)
            problem = "texts: expected one string for each text sent";
        size_t i;
        json_t *entry;
        json_array_foreach (replaced, i, entry) {
            if (!problem && !json_is_string (entry))
                problem = "texts: expected one string for each text sent";
        }
    }
    if (problem) {
        snprintf (err, err_size, "%s", problem);
        json_decref (root);
        memset (answer, 0, sizeof *answer);
        return -1;
    }
    answer->allowed = json_is_true (allowed);
    snprintf (answer->rule, sizeof answer->rule, "%s",
              json_is_string (rule) ? json_string_value (rule) : AIGW_WEBHOOK_RULE_DEFAULT);
    if (json_is_array (replaced))
        answer->texts = json_incref (replaced);
    json_decref (root);
    return 0;
}

void
aigw_webhook_answer_free (aigw_webhook_answer_t *answer)
{
    json_decref (answer->texts);
    answer->texts = NULL;
}

//  --------------------------------------------------------------------------
//  Selftest: against a loopback server (tests/aigw_testhttp).

//  What the test's callback saw.
typedef struct {
    int calls;                       //  callbacks made
    aigw_webhook_outcome_t outcome;  //  the last one's outcome
    int status;                      //  its status
    char body[1024];                 //  its body
} s_test_seen_t;

static void
s_test_done (void *arg, const aigw_webhook_result_t *result)
{
    s_test_seen_t *seen = (s_test_seen_t *) arg;
    seen->calls++;
    seen->outcome = result->outcome;
    seen->status = result->status;
    snprintf (seen->body, sizeof seen->body, "%s", result->body);
}

//  Run SELF's loop until SEEN has a callback, or for at most WAIT_MS.
static void
s_test_loop (aigw_webhook_t *self, s_test_seen_t *seen, int64_t wait_ms)
{
    int64_t give_up = s_now_ms () + wait_ms;
    int calls = seen ? seen->calls : 0;
    while ((!seen || seen->calls == calls) && s_now_ms () < give_up) {
        zmq_pollitem_t items[1];
        int count = aigw_webhook_pollitems (self, items, 1);
        int timeout = aigw_webhook_timeout (self);
        if (timeout < 0 || timeout > 20)
            timeout = 20;
        zmq_poll (items, count, timeout);
        aigw_webhook_process (self, items, count);
    }
}

void
aigw_webhook_test (bool verbose)
{
    aigw_webhook_t *self = aigw_webhook_new ();
    assert (self);
    char url[128];
    const char *headers[] = {"Authorization: Bearer tok-1", "X-Team: blue", NULL};
    const char *body = "{\"text\":\"hello\",\"texts\":[\"hello\"]}";

    //  An answer: the request carries the body and the headers.
    aigw_testhttp_t server;
    aigw_testhttp_start (&server, 200, "{\"allowed\":false,\"rule\":\"r1\"}", 0);
    snprintf (url, sizeof url, "http://127.0.0.1:%d/check", server.port);
    s_test_seen_t seen = {0};
    assert (aigw_webhook_post (self, url, headers, body, strlen (body), 2000, s_test_done, &seen));
    assert (aigw_webhook_active (self) == 1);
    s_test_loop (self, &seen, 5000);
    assert (seen.calls == 1 && seen.outcome == AIGW_WEBHOOK_ANSWERED && seen.status == 200);
    assert (strcmp (seen.body, "{\"allowed\":false,\"rule\":\"r1\"}") == 0);
    assert (aigw_webhook_active (self) == 0);
    pthread_mutex_lock (&server.lock);
    assert (strncmp (server.last, "POST /check HTTP/1.1\r\n", 22) == 0);
    assert (strcasestr (server.last, "\r\nAuthorization: Bearer tok-1\r\n"));
    assert (strcasestr (server.last, "\r\nX-Team: blue\r\n"));
    assert (strcasestr (server.last, "\r\nContent-Type: application/json\r\n"));
    assert (strstr (server.last, body));
    pthread_mutex_unlock (&server.lock);
    aigw_testhttp_stop (&server);

    //  A status that is not 2xx.
    aigw_testhttp_start (&server, 500, "{\"allowed\":true}", 0);
    snprintf (url, sizeof url, "http://127.0.0.1:%d/", server.port);
    assert (aigw_webhook_post (self, url, NULL, body, strlen (body), 2000, s_test_done, &seen));
    s_test_loop (self, &seen, 5000);
    assert (seen.calls == 2 && seen.outcome == AIGW_WEBHOOK_STATUS && seen.status == 500);
    aigw_testhttp_stop (&server);

    //  Too slow: a timeout, from the client's own timer.
    aigw_testhttp_start (&server, 200, "{\"allowed\":true}", 600);
    snprintf (url, sizeof url, "http://127.0.0.1:%d/", server.port);
    assert (aigw_webhook_post (self, url, NULL, body, strlen (body), 100, s_test_done, &seen));
    s_test_loop (self, &seen, 5000);
    assert (seen.calls == 3 && seen.outcome == AIGW_WEBHOOK_TIMEOUT);

    //  Cancelled: no callback, nothing left.
    aigw_webhook_call_t *call
        = aigw_webhook_post (self, url, NULL, body, strlen (body), 2000, s_test_done, &seen);
    assert (call);
    s_test_loop (self, NULL, 100);
    aigw_webhook_cancel (self, &call);
    assert (!call && aigw_webhook_active (self) == 0);
    s_test_loop (self, NULL, 100);
    assert (seen.calls == 3);
    //  Destroy drops a call under way without its callback.
    assert (aigw_webhook_post (self, url, NULL, body, strlen (body), 2000, s_test_done, &seen));
    aigw_testhttp_stop (&server);

    //  Nobody listening: a failure.
    aigw_webhook_destroy (&self);
    aigw_webhook_destroy (&self);
    assert (seen.calls == 3);
    self = aigw_webhook_new ();
    snprintf (url, sizeof url, "http://127.0.0.1:%d/", server.port);
    assert (aigw_webhook_post (self, url, NULL, body, strlen (body), 2000, s_test_done, &seen));
    s_test_loop (self, &seen, 5000);
    assert (seen.calls == 4 && seen.outcome == AIGW_WEBHOOK_FAILED && seen.status == 0);
    aigw_webhook_destroy (&self);

    //  Answers, read.
    aigw_webhook_answer_t answer;
    char err[128];
    const char *good = "{\"allowed\": false, \"action\": \"redact\", \"rule\": \"pii.name-1\","
                       " \"texts\": [\"a\", \"b\"], \"reason\": \"ignored\"}";
    assert (aigw_webhook_parse (good, strlen (good), 2, &answer, err, sizeof err) == 0);
    assert (!answer.allowed && answer.has_action && answer.action == AIGW_POLICY_REDACT);
    assert (strcmp (answer.rule, "pii.name-1") == 0 && json_array_size (answer.texts) == 2);
    aigw_webhook_answer_free (&answer);
    aigw_webhook_answer_free (&answer);
    assert (aigw_webhook_parse ("{\"allowed\":true}", 16, 3, &answer, err, sizeof err) == 0);
    assert (answer.allowed && !answer.has_action && !answer.texts);
    assert (strcmp (answer.rule, AIGW_WEBHOOK_RULE_DEFAULT) == 0);
    aigw_webhook_answer_free (&answer);
    const char *bad[] = {
        "",
        "nope",
        "[]",
        "{}",
        "{\"allowed\": \"no\"}",
        "{\"allowed\": false, \"action\": \"deny\"}",
        "{\"allowed\": false, \"rule\": \"has space\"}",
        "{\"allowed\": false, \"rule\": \"a:b\"}",
        "{\"allowed\": false, \"rule\": \"\"}",
        "{\"allowed\": false, \"rule\": "
        "\"x123456789x123456789x123456789x123456789x123456789x123456789xxxxx\"}",
        "{\"allowed\": false, \"texts\": [\"only one\"]}",
        "{\"allowed\": false, \"texts\": [\"a\", 5]}",
        "{\"allowed\": false, \"texts\": \"ab\"}",
        "{\"allowed\": true, \"allowed\": false}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        assert (aigw_webhook_parse (bad[i], strlen (bad[i]), 2, &answer, err, sizeof err) == -1);
        assert (*err && !answer.texts);
        if (verbose)
            printf ("  %s\n", err);
    }
    if (verbose)
        printf ("webhook: ok\n");
}
