/*  aigw_edge_dashboard: the web dashboard at /dashboard. Serves the
    front end built from web/ and embedded in the binary at build time
    (web/embed.cmake), and keeps the dashboard's sign-in sessions.

    A session is the edge's: POST /dashboard/api/login takes an API key or
    admin token, checks it with auth (GET auth/me through the pipeline) and
    answers an HttpOnly, SameSite=Strict cookie (Secure over TLS) that maps,
    in this process's memory, to the credential. An admin API call that
    carries the cookie and no credential of its own goes through auth with
    the session's credential, so roles, tenants and revocation apply as for
    the key itself; a call that changes anything must also carry the
    session's CSRF token in X-CSRF-Token. The key never reaches the page's
    storage. Sessions live in one edge process: behind several edges, a
    balancer must keep a browser on one (or the user signs in at each). */
#ifndef AIGW_EDGE_DASHBOARD_H_INCLUDED
#define AIGW_EDGE_DASHBOARD_H_INCLUDED

#include "aigw_config.h"
#include "aigw_edge_io.h"

#include <civetweb.h>

//  One embedded file of the built front end (the generated
//  aigw_dashboard_assets.c holds the table; empty without a dashboard).
typedef struct {
    const char *path;           //  below /dashboard/, e.g. "app.js"
    const char *content_type;   //  its Content-Type
    const unsigned char *data;  //  its bytes
    size_t size;                //  bytes in data
    const char *etag;           //  SHA-256 of the bytes, hex (the ETag)
} aigw_dashboard_asset_t;
extern const aigw_dashboard_asset_t aigw_dashboard_assets[];
extern const size_t aigw_dashboard_assets_count;

typedef struct _aigw_edge_dashboard_t aigw_edge_dashboard_t;

//  What a session said about an admin API call.
typedef enum {
    AIGW_DASHBOARD_NONE = 0,  //  no session cookie: the call goes on as it is
    AIGW_DASHBOARD_SESSION,   //  a live session: use its credential
    AIGW_DASHBOARD_REFUSED    //  refused: status, code and message say why
} aigw_dashboard_verdict_t;

//  The sessions and the assets. CONFIG is borrowed (dashboard.* settings);
//  IO (borrowed) carries the sign-in's auth/me check.
aigw_edge_dashboard_t *aigw_edge_dashboard_new (const aigw_config_t *config, aigw_edge_io_t *io);

//  Free every session (their credentials wiped); safe on NULL and twice.
void aigw_edge_dashboard_destroy (aigw_edge_dashboard_t **self_p);

//  Answer a request under /dashboard on CONN: the pages, and the session
//  endpoints (api/login, api/logout, api/session). ID is the request's
//  X-Request-ID, HEAD whether to leave the body out. Returns the status.
int aigw_edge_dashboard_serve (aigw_edge_dashboard_t *self, struct mg_connection *conn,
                               const char *id, bool head);

//  For an admin API call on CONN with METHOD and no credential header: the
//  session cookie's credential (*CREDENTIAL, a copy the caller frees), or
//  why the call is refused (*STATUS, *CODE and *MESSAGE, static text): an
//  unknown or expired session (401), a change without the session's CSRF
//  token (403).
aigw_dashboard_verdict_t aigw_edge_dashboard_credential (aigw_edge_dashboard_t *self,
                                                         struct mg_connection *conn,
                                                         const char *method, char **credential,
                                                         int *status, const char **code,
                                                         const char **message);

void aigw_edge_dashboard_test (bool verbose);

#endif
