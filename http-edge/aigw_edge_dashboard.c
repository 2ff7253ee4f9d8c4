/*  aigw_edge_dashboard: the dashboard's pages and sign-in sessions. */
#include "aigw_edge_dashboard.h"
#include "aigw_bp.h"
#include "aigw_client.h"
#include "aigw_envelope.h"
#include "aigw_hex.h"
#include "aigw_log.h"
#include "aigw_stage.h"
#include "aigw_testhttp.h"

#include <czmq.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <pthread.h>

//  The session cookie; Path=/ so the admin API under /api/v1/admin gets it.
#define AIGW_DASHBOARD_COOKIE "aigw_session"
//  Random bytes in a session token and in a CSRF token.
#define AIGW_DASHBOARD_TOKEN_BYTES 32
#define AIGW_DASHBOARD_TOKEN_HEX   (2 * AIGW_DASHBOARD_TOKEN_BYTES)
//  Session lifetime (dashboard.session_ttl_s), and its bounds; a session
//  never outlives the credential it holds.
#define AIGW_DASHBOARD_TTL_S     (8 * 3600)
#define AIGW_DASHBOARD_TTL_MIN_S 60
#define AIGW_DASHBOARD_TTL_MAX_S (30 * 86400)
//  Sessions held at once (dashboard.max_sessions); past it the oldest goes.
#define AIGW_DASHBOARD_SESSIONS     10000
#define AIGW_DASHBOARD_SESSIONS_MAX 1000000
//  Largest login body, bytes: a credential (AIGW_EDGE_CREDENTIAL_MAX) and JSON.
#define AIGW_DASHBOARD_LOGIN_MAX 9216
//  Longest credential taken at login (the edge's header cap).
#define AIGW_DASHBOARD_CREDENTIAL_MAX 8192
//  Extra wait past the sign-in check's deadline (the pipeline answers 504 itself).
#define AIGW_DASHBOARD_GRACE_MS 2000
//  Response head buffer.
#define AIGW_DASHBOARD_HEAD_MAX 2048

//  Every dashboard answer: nothing runs or loads but the page's own files
//  (no inline script or style, no other origin), and no site frames it.
#define AIGW_DASHBOARD_CSP                                                            \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " \
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; "      \
    "frame-ancestors 'none'"
#define AIGW_DASHBOARD_SECURITY_HEADERS                            \
    "Content-Security-Policy: " AIGW_DASHBOARD_CSP "\r\n"          \
    "X-Content-Type-Options: nosniff\r\nX-Frame-Options: DENY\r\n" \
    "Referrer-Policy: no-referrer\r\nCross-Origin-Opener-Policy: same-origin\r\n"

//  One signed-in browser.
typedef struct {
    char *credential;                         //  the key or token it signed in with (wiped on free)
    char csrf[AIGW_DASHBOARD_TOKEN_HEX + 1];  //  the token its writes must send
    int64_t expires_ms;                       //  Unix ms, then it is gone
    int64_t created_ms;                       //  Unix ms, for eviction
} s_session_t;

struct _aigw_edge_dashboard_t {
    const aigw_config_t *config;           //  settings (borrowed)
    aigw_edge_io_t *io;                    //  carries the sign-in check (borrowed)
    pthread_mutex_t lock;                  //  guards sessions: every handler thread reads them
    zhashx_t *sessions;                    //  SHA-256 hex of the cookie's token -> s_session_t
    const aigw_dashboard_asset_t *assets;  //  the files served (the build's table; a selftest's)
    size_t assets_count;                   //  entries in assets; 0 when built without
};

//  ---------------------------------------------------------------------
//  Settings (dashboard.*)

static const aigw_config_keyword_t s_dashboard_keywords[] = {
    AIGW_CONFIG_KW_NUMBER ("session_ttl_s", AIGW_CONFIG_INT64, aigw_config_t,
                           dashboard_session_ttl_s, AIGW_DASHBOARD_TTL_MIN_S,
                           AIGW_DASHBOARD_TTL_MAX_S, AIGW_DASHBOARD_TTL_S),
    AIGW_CONFIG_KW_NUMBER ("max_sessions", AIGW_CONFIG_INT, aigw_config_t, dashboard_max_sessions,
                           1, AIGW_DASHBOARD_SESSIONS_MAX, AIGW_DASHBOARD_SESSIONS),
    AIGW_CONFIG_KW_END};
AIGW_CONFIG_KEYWORDS ("dashboard", s_dashboard_keywords)

//  ---------------------------------------------------------------------
//  Sessions

static void
s_session_destroy (s_session_t **self_p)
{
    s_session_t *self = *self_p;
    if (!self)
        return;
    if (self->credential) {
        OPENSSL_cleanse (self->credential, strlen (self->credential));
        free (self->credential);
    }
    free (self);
    *self_p = NULL;
}

static void
s_session_free (void **item)
{
    s_session_destroy ((s_session_t **) item);
}

//  A new secret token: AIGW_DASHBOARD_TOKEN_BYTES from the CSPRNG as hex
//  into OUT (AIGW_DASHBOARD_TOKEN_HEX + 1). Returns 0, -1 when the CSPRNG fails.
static int
s_token (char *out)
{
    unsigned char bytes[AIGW_DASHBOARD_TOKEN_BYTES];
    if (RAND_bytes (bytes, sizeof bytes) != 1)
        return -1;
    aigw_hex_encode (bytes, sizeof bytes, out);
    return 0;
}

//  The table's key for TOKEN: its SHA-256 in hex, so the table holds no
//  usable token and a lookup's timing says nothing about one.
static void
s_digest (const char *token, char *out)
{
    unsigned char sum[SHA256_DIGEST_LENGTH];
    SHA256 ((const unsigned char *) token, strlen (token), sum);
    aigw_hex_encode (sum, sizeof sum, out);
}

//  The session token in CONN's cookie into OUT (AIGW_DASHBOARD_TOKEN_HEX +
//  1); false when there is none of the right shape.
static bool
s_cookie_token (struct mg_connection *conn, char *out)
{
    const char *cookie = mg_get_header (conn, "Cookie");
    char value[AIGW_DASHBOARD_TOKEN_HEX + 2];
    if (!cookie
        || mg_get_cookie (cookie, AIGW_DASHBOARD_COOKIE, value, sizeof value)
               != AIGW_DASHBOARD_TOKEN_HEX)
        return false;
    for (const char *c = value; *c; c++)
        if (aigw_hex_digit (*c) < 0)
            return false;
    memcpy (out, value, AIGW_DASHBOARD_TOKEN_HEX + 1);
    return true;
}

//  Drop expired sessions; then, while more than MAX - 1 are left, the
//  oldest. Under the lock.
static void
s_prune (aigw_edge_dashboard_t *self, int64_t now, size_t max)
{
    zlistx_t *keys = zhashx_keys (self->sessions);
    for (const char *key = zlistx_first (keys); key; key = zlistx_next (keys)) {
        s_session_t *s = zhashx_lookup (self->sessions, key);
        if (s && s->expires_ms <= now)
            zhashx_delete (self->sessions, key);
    }
    zlistx_destroy (&keys);
    while (zhashx_size (self->sessions) >= max) {
        const char *oldest = NULL;
        int64_t at = INT64_MAX;
        for (s_session_t *s = zhashx_first (self->sessions); s; s = zhashx_next (self->sessions))
            if (s->created_ms < at)
                at = s->created_ms, oldest = zhashx_cursor (self->sessions);
        if (!oldest)
            break;
        char key[AIGW_DASHBOARD_TOKEN_HEX + 1];
        snprintf (key, sizeof key, "%s", oldest);
        zhashx_delete (self->sessions, key);
    }
}

//  Start a session for CREDENTIAL until EXPIRES_MS: its cookie token into
//  TOKEN and its CSRF token into CSRF (each AIGW_DASHBOARD_TOKEN_HEX + 1).
//  Returns 0, or -1 when no random bytes could be had.
static int
s_session_start (aigw_edge_dashboard_t *self, const char *credential, int64_t expires_ms,
                 char *token, char *csrf)
{
    s_session_t *s = calloc (1, sizeof *s);
    if (!s || s_token (token) != 0 || s_token (s->csrf) != 0) {
        free (s);
        return -1;
    }
    s->credential = strdup (credential);
    s->expires_ms = expires_ms;
    s->created_ms = aigw_now_ms ();
    memcpy (csrf, s->csrf, AIGW_DASHBOARD_TOKEN_HEX + 1);
    char key[AIGW_DASHBOARD_TOKEN_HEX + 1];
    s_digest (token, key);
    pthread_mutex_lock (&self->lock);
    s_prune (self, s->created_ms, (size_t) self->config->dashboard_max_sessions);
    zhashx_update (self->sessions, key, s);
    pthread_mutex_unlock (&self->lock);
    return 0;
}

//  The live session of TOKEN: copies its credential (*CREDENTIAL, caller
//  frees; may be NULL to skip), CSRF token (CSRF, may be NULL) and expiry.
//  Returns false when there is none (an expired one is dropped).
static bool
s_session_find (aigw_edge_dashboard_t *self, const char *token, char **credential, char *csrf,
                int64_t *expires_ms)
{
    char key[AIGW_DASHBOARD_TOKEN_HEX + 1];
    s_digest (token, key);
    bool found = false;
    pthread_mutex_lock (&self->lock);
    s_session_t *s = zhashx_lookup (self->sessions, key);
    if (s && s->expires_ms <= aigw_now_ms ()) {
        zhashx_delete (self->sessions, key);
        s = NULL;
    }
    if (s) {
        found = true;
        if (credential)
            *credential = strdup (s->credential);
        if (csrf)
            memcpy (csrf, s->csrf, AIGW_DASHBOARD_TOKEN_HEX + 1);
        if (expires_ms)
            *expires_ms = s->expires_ms;
    }
    pthread_mutex_unlock (&self->lock);
    return found;
}

//  End TOKEN's session, if any.
static void
s_session_end (aigw_edge_dashboard_t *self, const char *token)
{
    char key[AIGW_DASHBOARD_TOKEN_HEX + 1];
    s_digest (token, key);
    pthread_mutex_lock (&self->lock);
    zhashx_delete (self->sessions, key);
    pthread_mutex_unlock (&self->lock);
}

//  Whether the request's X-CSRF-Token equals EXPECTED (constant time).
static bool
s_csrf_ok (struct mg_connection *conn, const char *expected)
{
    const char *given = mg_get_header (conn, "X-CSRF-Token");
    return given && strlen (given) == AIGW_DASHBOARD_TOKEN_HEX
           && CRYPTO_memcmp (given, expected, AIGW_DASHBOARD_TOKEN_HEX) == 0;
}

//  ---------------------------------------------------------------------
//  Answers

//  Write a whole answer: STATUS, CONTENT_TYPE, the security headers,
//  EXTRA (whole header lines, or NULL), then BODY (LEN bytes) unless HEAD.
static void
s_write (struct mg_connection *conn, const char *id, bool head, int status,
         const char *content_type, const char *extra, const void *body, size_t len)
{
    char text[AIGW_DASHBOARD_HEAD_MAX];
    int n = snprintf (text, sizeof text,
                      "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nX-Request-ID: %s\r\n"
                      "%s%sContent-Length: %zu\r\n\r\n",
                      status, mg_get_response_code_text (conn, status), content_type, id,
                      AIGW_DASHBOARD_SECURITY_HEADERS, extra ? extra : "", len);
    if (n < 0 || (size_t) n >= sizeof text)
        n = 0;  //  cannot happen: every part is bounded; send nothing rather than half
    mg_write (conn, text, (size_t) n);
    if (!head && len)
        mg_write (conn, body, len);
}

//  Write ROOT (taken) as a JSON answer; sessions are never cached.
static void
s_write_json (struct mg_connection *conn, const char *id, bool head, int status, const char *extra,
              json_t *root)
{
    char *body = json_dumps (root, JSON_COMPACT);
    json_decref (root);
    char headers[512];
    snprintf (headers, sizeof headers, "Cache-Control: no-store\r\n%s", extra ? extra : "");
    s_write (conn, id, head, status, "application/json", headers, body, body ? strlen (body) : 0);
    free (body);
}

//  Answer an error in the SPEC's shape.
static int
s_error (struct mg_connection *conn, const char *id, bool head, int status, const char *type,
         const char *code, const char *message, const char *extra)
{
    json_t *root = json_pack ("{s:{s:s,s:s,s:s,s:n,s:s}}", "error", "message", message, "type",
                              type, "code", code, "param", "request_id", id);
    s_write_json (conn, id, head, status, extra, root);
    return status;
}

//  The Set-Cookie line for TOKEN lasting MAX_AGE_S (0 and "" clear it):
//  HttpOnly (no script reads it), SameSite=Strict (no other site sends
//  it), Secure when the browser came over TLS (here, or to a proxy that
//  says so).
static void
s_cookie_line (struct mg_connection *conn, const char *token, int64_t max_age_s, char *out,
               size_t size)
{
    const struct mg_request_info *ri = mg_get_request_info (conn);
    const char *proto = mg_get_header (conn, "X-Forwarded-Proto");
    bool secure = ri->is_ssl || (proto && strcasecmp (proto, "https") == 0);
    snprintf (out, size,
              "Set-Cookie: " AIGW_DASHBOARD_COOKIE "=%s; Path=/; Max-Age=%lld; HttpOnly; "
              "SameSite=Strict%s\r\n",
              token, (long long) max_age_s, secure ? "; Secure" : "");
}

//  A time as RFC 3339 UTC into OUT (32 bytes).
static void
s_time_text (int64_t ms, char *out)
{
    time_t t = (time_t) (ms / 1000);
    struct tm tm;
    gmtime_r (&t, &tm);
    strftime (out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

//  Whether a cross-site page sent this request: an Origin header whose
//  host is not the Host the browser asked. Browsers send Origin on every
//  POST; a request without one (curl) is not a browser's.
static bool
s_cross_origin (struct mg_connection *conn)
{
    const char *origin = mg_get_header (conn, "Origin");
    const char *host = mg_get_header (conn, "Host");
    if (!origin)
        return false;
    const char *at = strstr (origin, "://");
    if (!at || !host)
        return true;
    return strcmp (at + 3, host) != 0;
}

//  ---------------------------------------------------------------------
//  Sign-in

//  Ask auth and the admin actor who CREDENTIAL is (GET auth/me), as the
//  admin API would. Returns the answer's envelope (caller owns), whose
//  status says how it went; never NULL.
static aigw_envelope_t *
s_whoami (aigw_edge_dashboard_t *self, const char *id, const char *credential)
{
    int64_t deadline = aigw_now_ms () + self->config->request_timeout_ms;
    aigw_envelope_t *env = aigw_envelope_new ();
    aigw_envelope_set (&env->id, id);
    env->kind = AIGW_KIND_ADMIN;
    env->deadline_ms = deadline;
    aigw_envelope_set (&env->credential, credential);
    aigw_envelope_set (&env->method, "GET");
    aigw_envelope_set (&env->path, "auth/me");
    aigw_envelope_set (&env->route[0], "auth");
    aigw_envelope_set (&env->route[1], "admin");
    env->route_len = 2;
    aigw_slot_t *slot = aigw_edge_io_request (self->io, &env, -1);
    aigw_client_event_t *event = aigw_slot_wait (slot, deadline + AIGW_DASHBOARD_GRACE_MS);
    aigw_slot_destroy (&slot);
    aigw_envelope_t *answer = NULL;
    if (event && event->type != AIGW_BP_CLIENT_ERROR) {
        answer = event->env;
        event->env = NULL;
        char err[128];
        if (!answer && event->envelope)
            answer = aigw_envelope_decode (zframe_data (event->envelope),
                                           zframe_size (event->envelope), err, sizeof err);
    }
    if (!answer) {
        answer = aigw_envelope_new ();
        if (!event)
            aigw_envelope_set_error (answer, 504, "timeout_error", "deadline_exceeded", NULL,
                                     "The pipeline did not answer within the request deadline.");
        else
            aigw_envelope_set_error (answer, event->status == 504 ? 504 : 503,
                                     event->status == 504 ? "timeout_error" : "service_unavailable",
                                     "stage_unavailable", NULL,
                                     event->type == AIGW_BP_CLIENT_ERROR && event->text
                                         ? event->text
                                         : "The pipeline failed.");
    }
    aigw_client_event_destroy (&event);
    return answer;
}

//  POST /dashboard/api/login {"key": "..."}: check the credential with
//  auth; on success a new session's cookie, and {"me", "csrf_token",
//  "expires_at"}. A JSON body only (a cross-site form cannot send one),
//  and no other site's Origin.
static int
s_login (aigw_edge_dashboard_t *self, struct mg_connection *conn, const char *id)
{
    const char *type = mg_get_header (conn, "Content-Type");
    if (!type || strncasecmp (type, "application/json", 16) != 0)
        return s_error (conn, id, false, 415, "invalid_request_error", "unsupported_media_type",
                        "Send the credential as JSON: {\"key\": \"...\"}.", NULL);
    if (s_cross_origin (conn))
        return s_error (conn, id, false, 403, "permission_error", "cross_origin",
                        "Sign-in from another site is refused.", NULL);
    const struct mg_request_info *ri = mg_get_request_info (conn);
    if (ri->content_length < 0 || ri->content_length > AIGW_DASHBOARD_LOGIN_MAX)
        return s_error (conn, id, false, 413, "invalid_request_error", "request_too_large",
                        "The sign-in body must have a Content-Length under 9 KiB.", NULL);
    char body[AIGW_DASHBOARD_LOGIN_MAX + 1];
    size_t len = 0;
    while (len < (size_t) ri->content_length) {
        int n = mg_read (conn, body + len, (size_t) ri->content_length - len);
        if (n <= 0)
            break;
        len += (size_t) n;
    }
    body[len] = 0;
    json_error_t jerr;
    json_t *root = json_loadb (body, len, JSON_REJECT_DUPLICATES, &jerr);
    OPENSSL_cleanse (body, len);
    const char *key = json_string_value (json_object_get (root, "key"));
    int status;
    if (!key || !*key || strlen (key) > AIGW_DASHBOARD_CREDENTIAL_MAX)
        status = s_error (conn, id, false, 400, "invalid_request_error", "invalid_field",
                          "\"key\" must be an API key or admin token.", NULL);
    else {
        aigw_envelope_t *me = s_whoami (self, id, key);
        if (me->status != 200 || !me->body) {
            status = s_error (conn, id, false, me->status ? me->status : 500,
                              me->err_type ? me->err_type : "server_error",
                              me->err_code ? me->err_code : "server_error",
                              me->err_message ? me->err_message : "Sign-in failed.", NULL);
        }
        else {
            int64_t now = aigw_now_ms ();
            int64_t expires = now + self->config->dashboard_session_ttl_s * 1000;
            if (me->expires_ms > 0 && me->expires_ms < expires)
                expires = me->expires_ms;
            char token[AIGW_DASHBOARD_TOKEN_HEX + 1], csrf[AIGW_DASHBOARD_TOKEN_HEX + 1];
            json_t *who = json_loadb (me->body, me->body_len, 0, &jerr);
            if (!who || s_session_start (self, key, expires, token, csrf) != 0) {
                json_decref (who);
                status = s_error (conn, id, false, 500, "server_error", "server_error",
                                  "No session could be made.", NULL);
            }
            else {
                char cookie[256], at[32];
                s_cookie_line (conn, token, (expires - now + 999) / 1000, cookie, sizeof cookie);
                s_time_text (expires, at);
                s_write_json (
                    conn, id, false, 200, cookie,
                    json_pack ("{s:o,s:s,s:s}", "me", who, "csrf_token", csrf, "expires_at", at));
                OPENSSL_cleanse (token, sizeof token);
                status = 200;
            }
        }
        aigw_envelope_destroy (&me);
    }
    json_decref (root);
    return status;
}

//  POST /dashboard/api/logout (with the session's CSRF token): ends the
//  session and clears the cookie. Without a live session, clears it too.
static int
s_logout (aigw_edge_dashboard_t *self, struct mg_connection *conn, const char *id)
{
    char token[AIGW_DASHBOARD_TOKEN_HEX + 1], csrf[AIGW_DASHBOARD_TOKEN_HEX + 1];
    char cookie[256];
    s_cookie_line (conn, "", 0, cookie, sizeof cookie);
    if (s_cookie_token (conn, token) && s_session_find (self, token, NULL, csrf, NULL)) {
        if (!s_csrf_ok (conn, csrf))
            return s_error (conn, id, false, 403, "permission_error", "csrf_failed",
                            "Missing or wrong X-CSRF-Token.", NULL);
        s_session_end (self, token);
    }
    s_write_json (conn, id, false, 200, cookie, json_pack ("{s:b}", "signed_out", 1));
    return 200;
}

//  GET /dashboard/api/session: the live session's CSRF token and expiry
//  (the page asks after a reload: it cannot read its cookie), else 401.
static int
s_session_info (aigw_edge_dashboard_t *self, struct mg_connection *conn, const char *id, bool head)
{
    char token[AIGW_DASHBOARD_TOKEN_HEX + 1], csrf[AIGW_DASHBOARD_TOKEN_HEX + 1];
    int64_t expires = 0;
    if (!s_cookie_token (conn, token) || !s_session_find (self, token, NULL, csrf, &expires))
        return s_error (conn, id, head, 401, "authentication_error", "no_session",
                        "Not signed in, or the session expired.", NULL);
    char at[32];
    s_time_text (expires, at);
    s_write_json (conn, id, head, 200, NULL,
                  json_pack ("{s:s,s:s}", "csrf_token", csrf, "expires_at", at));
    return 200;
}

//  ---------------------------------------------------------------------
//  Pages

//  The embedded file at PATH (below /dashboard/), or NULL.
static const aigw_dashboard_asset_t *
s_asset (aigw_edge_dashboard_t *self, const char *path)
{
    for (size_t i = 0; i < self->assets_count; i++)
        if (streq (self->assets[i].path, path))
            return &self->assets[i];
    return NULL;
}

//  GET an embedded file: revalidated each time by its ETag (small, and a
//  new build must show at once), 304 when the browser has it.
static int
s_serve_asset (struct mg_connection *conn, const char *id, bool head,
               const aigw_dashboard_asset_t *asset)
{
    char extra[256];
    snprintf (extra, sizeof extra, "Cache-Control: no-cache\r\nETag: \"%s\"\r\n", asset->etag);
    const char *match = mg_get_header (conn, "If-None-Match");
    char quoted[80];
    snprintf (quoted, sizeof quoted, "\"%s\"", asset->etag);
    if (match && strstr (match, quoted)) {
        s_write (conn, id, true, 304, asset->content_type, extra, NULL, 0);
        return 304;
    }
    s_write (conn, id, head, 200, asset->content_type, extra, asset->data, asset->size);
    return 200;
}

//  ---------------------------------------------------------------------
//  Public

aigw_edge_dashboard_t *
aigw_edge_dashboard_new (const aigw_config_t *config, aigw_edge_io_t *io)
{
    aigw_edge_dashboard_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->config = config;
    self->io = io;
    pthread_mutex_init (&self->lock, NULL);
    self->sessions = zhashx_new ();
    zhashx_set_destructor (self->sessions, s_session_free);
    self->assets = aigw_dashboard_assets;
    self->assets_count = aigw_dashboard_assets_count;
    return self;
}

void
aigw_edge_dashboard_destroy (aigw_edge_dashboard_t **self_p)
{
    aigw_edge_dashboard_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy (&self->sessions);
    pthread_mutex_destroy (&self->lock);
    free (self);
    *self_p = NULL;
}

int
aigw_edge_dashboard_serve (aigw_edge_dashboard_t *self, struct mg_connection *conn, const char *id,
                           bool head)
{
    const struct mg_request_info *ri = mg_get_request_info (conn);
    const char *uri = ri->local_uri ? ri->local_uri : "";
    const char *method = ri->request_method ? ri->request_method : "";
    bool get = streq (method, "GET") || streq (method, "HEAD");
    //  "/dashboard" matches "/dashboardfoo" in CivetWeb's table.
    const char *path = strncmp (uri, "/dashboard", 10) == 0 ? uri + 10 : "-";
    if (*path != 0 && *path != '/')
        return s_error (conn, id, head, 404, "invalid_request_error", "not_found", "Unknown path.",
                        NULL);
    if (*path == '/')
        path++;
    const char *allow = NULL;
    if (streq (path, "api/login") || streq (path, "api/logout")) {
        if (streq (method, "POST"))
            return streq (path, "api/login") ? s_login (self, conn, id) : s_logout (self, conn, id);
        allow = "Allow: POST\r\n";
    }
    else if (get && streq (path, "api/session"))
        return s_session_info (self, conn, id, head);
    else if (get) {
        //  Every page is index.html: the pages route by the URL's #fragment.
        const aigw_dashboard_asset_t *asset = s_asset (self, *path ? path : "index.html");
        if (asset)
            return s_serve_asset (conn, id, head, asset);
        if (self->assets_count == 0)
            return s_error (conn, id, head, 404, "invalid_request_error", "dashboard_not_built",
                            "This aigw was built without the dashboard (web/ needs Node; see "
                            "README: dashboard).",
                            NULL);
        return s_error (conn, id, head, 404, "invalid_request_error", "not_found", "Unknown path.",
                        NULL);
    }
    else
        allow
            = streq (path, "api/session") || !strstr (path, "api/") ? "Allow: GET, HEAD\r\n" : NULL;
    if (!allow)
        return s_error (conn, id, head, 404, "invalid_request_error", "not_found", "Unknown path.",
                        NULL);
    return s_error (conn, id, head, 405, "invalid_request_error", "method_not_allowed",
                    "Method not allowed on this path.", allow);
}

aigw_dashboard_verdict_t
aigw_edge_dashboard_credential (aigw_edge_dashboard_t *self, struct mg_connection *conn,
                                const char *method, char **credential, int *status,
                                const char **code, const char **message)
{
    char token[AIGW_DASHBOARD_TOKEN_HEX + 1], csrf[AIGW_DASHBOARD_TOKEN_HEX + 1];
    *credential = NULL;
    if (!self || !s_cookie_token (conn, token))
        return AIGW_DASHBOARD_NONE;
    if (!s_session_find (self, token, credential, csrf, NULL)) {
        *status = 401, *code = "no_session";
        *message = "The dashboard session expired or was signed out; sign in again.";
        return AIGW_DASHBOARD_REFUSED;
    }
    bool safe = streq (method, "GET") || streq (method, "HEAD");
    if (!safe && !s_csrf_ok (conn, csrf)) {
        OPENSSL_cleanse (*credential, strlen (*credential));
        zstr_free (credential);
        *status = 403, *code = "csrf_failed";
        *message = "Missing or wrong X-CSRF-Token: a change from the dashboard must carry its "
                   "session's token.";
        return AIGW_DASHBOARD_REFUSED;
    }
    return AIGW_DASHBOARD_SESSION;
}

//  ---------------------------------------------------------------------
//  Selftest

//  CivetWeb's handler for the selftest: every path is the dashboard's.
static int
s_test_handle (struct mg_connection *conn, void *arg)
{
    return aigw_edge_dashboard_serve ((aigw_edge_dashboard_t *) arg, conn, "req_test", false);
}

//  GET /dashboard/PATH from PORT, where SELF's pages are served, with
//  ASSETS (COUNT entries) as the build's table; the answer into OUT.
static void
s_test_get (aigw_edge_dashboard_t *self, int port, const aigw_dashboard_asset_t *assets,
            size_t count, const char *path, char *out, size_t size)
{
    self->assets = assets;
    self->assets_count = count;
    char request[256];
    snprintf (request, sizeof request,
              "GET /dashboard%s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path);
    aigw_testhttp_ask (port, request, out, size);
}

void
aigw_edge_dashboard_test (bool verbose)
{
    aigw_config_t config = {.dashboard_session_ttl_s = 60, .dashboard_max_sessions = 3};
    aigw_edge_dashboard_t *self = aigw_edge_dashboard_new (&config, NULL);
    assert (self);
    //  Tokens are 64 hex digits and differ.
    char a[AIGW_DASHBOARD_TOKEN_HEX + 1], b[AIGW_DASHBOARD_TOKEN_HEX + 1];
    assert (s_token (a) == 0 && s_token (b) == 0);
    assert (strlen (a) == AIGW_DASHBOARD_TOKEN_HEX && strcmp (a, b) != 0);
    //  A session finds its credential and CSRF token; the table holds digests.
    char token[AIGW_DASHBOARD_TOKEN_HEX + 1], csrf[AIGW_DASHBOARD_TOKEN_HEX + 1];
    int64_t now = aigw_now_ms ();
    assert (s_session_start (self, "sk-one", now + 60000, token, csrf) == 0);
    assert (zhashx_lookup (self->sessions, token) == NULL);
    char *credential = NULL, seen[AIGW_DASHBOARD_TOKEN_HEX + 1];
    int64_t expires = 0;
    assert (s_session_find (self, token, &credential, seen, &expires));
    assert (streq (credential, "sk-one") && streq (seen, csrf) && expires == now + 60000);
    zstr_free (&credential);
    //  Ended: gone.
    s_session_end (self, token);
    assert (!s_session_find (self, token, NULL, NULL, NULL));
    //  Expired: gone, and dropped from the table.
    assert (s_session_start (self, "sk-old", now - 1, token, csrf) == 0);
    assert (!s_session_find (self, token, NULL, NULL, NULL));
    assert (zhashx_size (self->sessions) == 0);
    //  Past max_sessions the oldest goes.
    char first[AIGW_DASHBOARD_TOKEN_HEX + 1];
    assert (s_session_start (self, "sk-1", now + 60000, first, csrf) == 0);
    for (int i = 0; i < 3; i++) {
        zclock_sleep (2);
        assert (s_session_start (self, "sk-n", now + 60000, token, csrf) == 0);
    }
    assert (zhashx_size (self->sessions) == 3);
    assert (!s_session_find (self, first, NULL, NULL, NULL));
    assert (s_session_find (self, token, NULL, NULL, NULL));
    char text[32];
    s_time_text (86400000, text);
    assert (streq (text, "1970-01-02T00:00:00Z"));
    //  Built without the dashboard (an empty table, as web/embed.cmake
    //  writes it): every page is 404 dashboard_not_built, in the SPEC's
    //  error shape, with the page's security headers.
    static const aigw_dashboard_asset_t none[] = {{0}};
    const char *options[] = {"listening_ports", "127.0.0.1:0", "num_threads", "1", NULL};
    struct mg_callbacks callbacks = {0};
    struct mg_context *ctx = mg_start (&callbacks, NULL, options);
    assert (ctx);
    mg_set_request_handler (ctx, "/dashboard", s_test_handle, self);
    struct mg_server_port bound;
    assert (mg_get_server_ports (ctx, 1, &bound) == 1);
    int port = bound.port;
    char answer[4096];
    const char *pages[] = {"", "/", "/app.js", "/index.html"};
    for (size_t i = 0; i < sizeof pages / sizeof pages[0]; i++) {
        s_test_get (self, port, none, 0, pages[i], answer, sizeof answer);
        if (verbose)
            printf ("%s\n", answer);
        assert (strncmp (answer, "HTTP/1.1 404", 12) == 0);
        assert (strstr (answer, "\r\nContent-Security-Policy: default-src 'none'"));
        assert (strstr (answer, "\"code\":\"dashboard_not_built\""));
        assert (strstr (answer, "\"request_id\":\"req_test\""));
    }
    //  Built with it: the page, and not_found for a file it does not have.
    static const unsigned char page[] = "<!doctype html>";
    static const aigw_dashboard_asset_t one[]
        = {{"index.html", "text/html; charset=utf-8", page, sizeof page - 1, "abc123"}};
    s_test_get (self, port, one, 1, "", answer, sizeof answer);
    assert (strncmp (answer, "HTTP/1.1 200", 12) == 0);
    assert (strstr (answer, "\r\nETag: \"abc123\"\r\n")
            && strstr (answer, "\r\n\r\n<!doctype html>"));
    s_test_get (self, port, one, 1, "/app.js", answer, sizeof answer);
    assert (strncmp (answer, "HTTP/1.1 404", 12) == 0);
    assert (strstr (answer, "\"code\":\"not_found\"") && !strstr (answer, "dashboard_not_built"));
    mg_stop (ctx);
    aigw_edge_dashboard_destroy (&self);
    aigw_edge_dashboard_destroy (&self);
    if (verbose)
        printf ("edge_dashboard: ok\n");
}
