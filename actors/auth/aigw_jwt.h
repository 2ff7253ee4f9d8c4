/*  aigw_jwt: verifies the JSON Web Tokens that `Authorization: Bearer` may
    carry instead of an API key (RFC 7519, JWS compact form, RFC 7515).

    Accepted algorithms: HS256 with one configured shared secret, RS256 and
    ES256 (P-256) with public keys from a JWKS (RFC 7517) read from a file or
    fetched over HTTP(S). "none" and every other algorithm are refused, and
    an algorithm only ever meets a key of its own type: an RS256 or ES256
    token never reaches the HMAC secret and an HS256 token never reaches a
    JWKS key, which closes the key-confusion attack.

    A token must carry "exp"; "nbf" and "iat" are checked when present, "iss"
    and "aud" when the settings require them. The claims the gateway uses
    (subject, tenant, role) come out as copies; a tenant of "*" is accepted
    only with the role "admin".

    Errors are short fixed phrases ("token expired", "bad signature", ...):
    they never hold the token, a claim value or the secret, so they are safe
    to log and to return to the client.

    Not thread-safe: one object per thread (the auth actor owns one). There
    is no global state, and no network I/O outside aigw_jwt_new and
    aigw_jwt_refresh. Fetching a JWKS URL needs curl_global_init to have run
    (aigw_main does it). */
#ifndef AIGW_JWT_H_INCLUDED
#define AIGW_JWT_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  Defaults and limits; the settings can override those marked "default".
#define AIGW_JWT_DEFAULT_TENANT_CLAIM       "tenant_id"
#define AIGW_JWT_DEFAULT_ROLE_CLAIM         "role"
#define AIGW_JWT_DEFAULT_LEEWAY_S           60             //  clock skew on exp, nbf, iat
#define AIGW_JWT_LEEWAY_NONE                (-1)           //  leeway_s value for no skew
#define AIGW_JWT_LEEWAY_MAX_S               3600           //  largest leeway_s accepted
#define AIGW_JWT_DEFAULT_MAX_TOKEN_BYTES    8192           //  longest token verified
#define AIGW_JWT_MAX_TOKEN_BYTES_CEILING    65536          //  largest max_token_bytes
#define AIGW_JWT_DEFAULT_FETCH_TIMEOUT_MS   5000           //  JWKS URL fetch, total
#define AIGW_JWT_FETCH_TIMEOUT_MS_MAX       60000          //  largest fetch_timeout_ms
#define AIGW_JWT_DEFAULT_JWKS_MAX_BYTES     (1024 * 1024)  //  JWKS file or body
#define AIGW_JWT_JWKS_MAX_BYTES_CEILING     (16 * 1024 * 1024)
#define AIGW_JWT_DEFAULT_REFRESH_INTERVAL_S 300  //  periodic JWKS re-fetch
#define AIGW_JWT_REFRESH_MIN_INTERVAL_S     30   //  fastest re-fetch on demand
#define AIGW_JWT_HS256_MIN_SECRET_BYTES     32   //  RFC 7518 3.2: >= hash size
#define AIGW_JWT_ERR_MAX                    256  //  err buffer that always fits

//  The role that may hold the wildcard tenant.
#define AIGW_JWT_ROLE_ADMIN "admin"
#define AIGW_JWT_TENANT_ANY "*"

typedef struct _aigw_jwt_t aigw_jwt_t;

//  How tokens are checked. Strings are copied by aigw_jwt_new; an empty
//  string counts as NULL. Numbers at 0 take their default.
typedef struct {
    const char *hs256_secret;  //  shared secret for HS256 (>= 32 bytes), or NULL
    const char *jwks_file;     //  path to a JWKS JSON file, or NULL
    const char *jwks_url;      //  http(s) URL of a JWKS, or NULL (not with jwks_file)
    const char *issuer;        //  required "iss", or NULL to skip the check
    const char *audience;      //  required in "aud" (string or array), or NULL to skip
    const char *tenant_claim;  //  claim naming the tenant id, NULL = "tenant_id"
    const char *role_claim;    //  claim naming the role, NULL = "role"
    int leeway_s;              //  clock skew on exp/nbf/iat: 0 = 60, AIGW_JWT_LEEWAY_NONE = 0
    size_t max_token_bytes;    //  longest token, 0 = 8 KiB
    long fetch_timeout_ms;     //  JWKS URL fetch deadline, 0 = 5 s
    size_t jwks_max_bytes;     //  largest JWKS document, 0 = 1 MiB
    int refresh_interval_s;    //  aigw_jwt_wants_refresh period, 0 = 300 s
} aigw_jwt_settings_t;

//  What a valid token says. Owned by the caller: free with
//  aigw_jwt_claims_clear.
typedef struct {
    char *subject;       //  "sub"
    char *tenant_id;     //  from tenant_claim; "*" only with role admin
    char *role;          //  from role_claim
    int64_t expires_at;  //  "exp", Unix seconds (always present)
} aigw_jwt_claims_t;

//  Create a verifier. Needs at least one of hs256_secret, jwks_file and
//  jwks_url. Reads the JWKS file (which must hold a usable key) or fetches
//  the URL; a failed fetch is not fatal: the verifier starts with no keys
//  and aigw_jwt_wants_refresh asks for a retry. Returns NULL on bad
//  settings, with the reason (never the secret) in ERR.
aigw_jwt_t *aigw_jwt_new (const aigw_jwt_settings_t *settings, char *err, size_t err_size);

//  Destroy a verifier and wipe its secret. Safe twice; nulls *SELF_P.
void aigw_jwt_destroy (aigw_jwt_t **self_p);

//  True if CREDENTIAL has the shape of a JWS compact token: three runs of
//  base64url characters joined by two dots, the first two non-empty. Cheap,
//  no decoding: it only routes the credential to JWT or API-key checking.
bool aigw_jwt_looks_like (const char *credential);

//  Verify TOKEN at time NOW (Unix seconds). Returns 0 and fills CLAIMS
//  (overwritten, never read: clear it before reuse), or -1 with a short
//  reason in ERR and CLAIMS left empty.
int aigw_jwt_verify (aigw_jwt_t *self, const char *token, int64_t now, aigw_jwt_claims_t *claims,
                     char *err, size_t err_size);

//  Re-read the JWKS file or re-fetch the URL; blocks up to fetch_timeout_ms.
//  On success the new key set replaces the old; on failure the old set
//  stays, -1 is returned with the reason in ERR. A no-op (0) without a JWKS.
int aigw_jwt_refresh (aigw_jwt_t *self, char *err, size_t err_size);

//  True when the caller should call aigw_jwt_refresh now (NOW in Unix
//  seconds): every refresh_interval_s, and soon after a token named an
//  unknown kid or a load failed, but never twice within
//  AIGW_JWT_REFRESH_MIN_INTERVAL_S, so forged kids cannot trigger a fetch
//  storm. Always false without a JWKS.
bool aigw_jwt_wants_refresh (aigw_jwt_t *self, int64_t now);

//  Number of usable JWKS keys held.
size_t aigw_jwt_key_count (aigw_jwt_t *self);

//  Free the strings of CLAIMS and zero it. Safe on a zeroed struct.
void aigw_jwt_claims_clear (aigw_jwt_claims_t *claims);

//  Selftest.
void aigw_jwt_test (bool verbose);

#endif
