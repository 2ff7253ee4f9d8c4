/*  aigw_jwt: JWT verification for admin and tenant tokens.

    A token is split at its two dots, each part decoded as strict base64url
    (RFC 7515 section 2: no padding, no whitespace, no stray bits). The
    header is parsed first and picks the algorithm and the key; the
    signature is checked over the exact "header.payload" bytes of the token;
    only then is the payload parsed and its claims checked. JSON is parsed
    with duplicate keys refused (a second "alg" or "tenant_id" must not
    change the meaning) and its nesting capped before Jansson sees it.

    Keys: HS256 uses an HMAC-SHA256 context keyed once at start-up (the
    secret itself is not kept); RS256 and ES256 use EVP_PKEYs built from JWK
    parameters with EVP_PKEY_fromdata and checked with EVP_PKEY_public_check.
    A JWKS reload builds a whole new key set and swaps it in only on success.

    Limits: token size, JWKS size, key count, JSON depth and claim length are
    all capped; numbers in date claims must fit a sane range. */
#include "aigw_jwt.h"
#include "aigw_json.h"
#include "aigw_log.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

//  Caps on what the verifier parses.
#define S_JSON_DEPTH_MAX   16                          //  nesting in a header, payload or JWKS
#define S_JWKS_KEYS_MAX    64                          //  keys in one JWKS
#define S_CLAIM_MAX        256                         //  longest string claim copied out
#define S_KID_MAX          256                         //  longest kid
#define S_NUMERIC_DATE_MAX 253402300799LL              //  9999-12-31T23:59:59Z
#define S_RSA_MIN_BITS     2048                        //  weaker RSA keys are refused
#define S_RSA_MAX_BITS     8192                        //  larger ones only cost CPU
#define S_RSA_N_MAX_BYTES  (S_RSA_MAX_BITS / 8 + 1)    //  + a leading zero
#define S_RSA_E_MAX_BYTES  32                          //  e < 2^256 (SP 800-56B)
#define S_EC_COORD_BYTES   32                          //  P-256 x, y, r, s
#define S_EC_POINT_BYTES   (1 + 2 * S_EC_COORD_BYTES)  //  04 || x || y
#define S_SHA256_BYTES     32                          //  HMAC-SHA256 output
#define S_JSON_FLAGS       JSON_REJECT_DUPLICATES
#define S_USER_AGENT       "aigw-jwks"  //  sent on JWKS fetches

//  Algorithms accepted.
typedef enum {
    S_ALG_HS256,  //  HMAC-SHA256, shared secret
    S_ALG_RS256,  //  RSASSA-PKCS1-v1_5 with SHA-256, RSA key
    S_ALG_ES256   //  ECDSA P-256 with SHA-256, EC key
} s_alg_t;

//  Key types a JWKS may offer.
typedef enum {
    S_KTY_RSA,  //  RSA public key, for RS256
    S_KTY_EC    //  EC P-256 public key, for ES256
} s_kty_t;

//  One usable JWKS key.
typedef struct {
    char *kid;       //  key id, NULL if the JWK has none
    s_kty_t kty;     //  key type, fixes the algorithm
    EVP_PKEY *pkey;  //  the public key
} s_key_t;

//  One loaded key set.
typedef struct {
    s_key_t *keys;  //  usable keys, in JWKS order
    size_t count;   //  entries in keys
} s_keyset_t;

struct _aigw_jwt_t {
    EVP_MAC *mac;            //  HMAC implementation, NULL if HS256 is off
    EVP_MAC_CTX *hmac;       //  HMAC-SHA256 keyed with the secret, NULL if off
    char *jwks_file;         //  JWKS path, NULL if none
    char *jwks_url;          //  JWKS URL, NULL if none (may hold credentials)
    char *issuer;            //  required iss, NULL to skip
    char *audience;          //  required aud entry, NULL to skip
    char *tenant_claim;      //  claim holding the tenant id
    char *role_claim;        //  claim holding the role
    int leeway_s;            //  clock skew allowed, seconds
    size_t max_token_bytes;  //  longest token verified
    long fetch_timeout_ms;   //  JWKS URL fetch deadline
    size_t jwks_max_bytes;   //  largest JWKS document
    int refresh_interval_s;  //  periodic refresh, seconds
    s_keyset_t keyset;       //  current JWKS keys
    bool stale;              //  unknown kid seen or last load failed
    bool hinted;             //  wants_refresh has run at least once
    int64_t hinted_at;       //  when wants_refresh last said yes, or first ran
};

//  Write a formatted message into ERR, if there is one. Returns -1, so
//  callers can `return s_fail (...)`.
static int s_fail (char *err, size_t err_size, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));
static int
s_fail (char *err, size_t err_size, const char *format, ...)
{
    if (err && err_size > 0) {
        va_list args;
        va_start (args, format);
        vsnprintf (err, err_size, format, args);
        va_end (args);
    }
    return -1;
}

//  Copy STRING, or NULL if it is NULL or empty. Sets *FAILED on no memory.
static char *
s_strdup_opt (const char *string, bool *failed)
{
    if (!string || !*string)
        return NULL;
    char *copy = strdup (string);
    if (!copy)
        *failed = true;
    return copy;
}

//  Value 0..63 of base64url character C, or -1.
static int
s_b64url_value (unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

//  Decode LEN characters of unpadded base64url into OUT (OUT_MAX bytes).
//  Strict: any character outside the alphabet (padding included), an
//  impossible length or non-zero leftover bits fail. Returns 0 and sets
//  *OUT_LEN, or -1.
static int
s_b64url_decode (const char *in, size_t len, unsigned char *out, size_t out_max, size_t *out_len)
{
    if (len % 4 == 1)
        return -1;
    uint32_t acc = 0;
    int bits = 0;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        int value = s_b64url_value ((unsigned char) in[i]);
        if (value < 0)
            return -1;
        acc = (acc << 6) | (uint32_t) value;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n >= out_max)
                return -1;
            out[n++] = (unsigned char) (acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0)
        return -1;  //  canonical form only
    *out_len = n;
    return 0;
}

//  Decode the base64url in JSON string VALUE into a new buffer of at most
//  MAX bytes. Returns the buffer (caller frees) and sets *OUT_LEN, or NULL.
static unsigned char *
s_b64url_decode_json (json_t *value, size_t max, size_t *out_len)
{
    if (!json_is_string (value))
        return NULL;
    size_t len = json_string_length (value);
    if (len == 0)
        return NULL;
    unsigned char *out = malloc (len);  //  decoded is always shorter
    if (!out)
        return NULL;
    if (s_b64url_decode (json_string_value (value), len, out, max, out_len) != 0) {
        free (out);
        return NULL;
    }
    return out;
}

//  Parse LEN bytes of JSON that must be an object, depth-capped and with
//  duplicate keys refused. Returns a new reference, or NULL.
static json_t *
s_json_object (const unsigned char *text, size_t len)
{
    if (!aigw_json_depth_ok ((const char *) text, len, S_JSON_DEPTH_MAX))
        return NULL;
    json_error_t error;
    json_t *root = json_loadb ((const char *) text, len, S_JSON_FLAGS, &error);
    if (root && !json_is_object (root)) {
        json_decref (root);
        return NULL;
    }
    return root;
}

//  True if VALUE is a JSON string of 1..MAX bytes with no control bytes, so
//  it is safe to copy out, compare with strcmp and log.
static bool
s_json_clean_string (json_t *value, size_t max)
{
    if (!json_is_string (value))
        return false;
    size_t len = json_string_length (value);
    const unsigned char *s = (const unsigned char *) json_string_value (value);
    if (len == 0 || len > max)
        return false;
    for (size_t i = 0; i < len; i++)
        if (s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

//  Read a NumericDate (RFC 7519 section 2) from VALUE into *OUT: an integer
//  or real from 0 to year 9999, fractions dropped. Returns 0 or -1.
static int
s_numeric_date (json_t *value, int64_t *out)
{
    if (json_is_integer (value)) {
        json_int_t v = json_integer_value (value);
        if (v < 0 || v > S_NUMERIC_DATE_MAX)
            return -1;
        *out = (int64_t) v;
        return 0;
    }
    if (json_is_real (value)) {
        double v = json_real_value (value);
        if (!(v >= 0 && v <= (double) S_NUMERIC_DATE_MAX))
            return -1;
        *out = (int64_t) v;
        return 0;
    }
    return -1;
}

//  Free the keys of SET and empty it.
static void
s_keyset_clear (s_keyset_t *set)
{
    for (size_t i = 0; i < set->count; i++) {
        free (set->keys[i].kid);
        EVP_PKEY_free (set->keys[i].pkey);
    }
    free (set->keys);
    set->keys = NULL;
    set->count = 0;
}

//  Build a public EVP_PKEY of TYPE ("RSA" or "EC") from the parameters in
//  BLD, and check it (on-curve point, sane RSA modulus). Returns the key
//  (caller owns) or NULL.
static EVP_PKEY *
s_pkey_from_params (const char *type, OSSL_PARAM_BLD *bld)
{
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param (bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name (NULL, type, NULL);
    if (!params || !ctx || EVP_PKEY_fromdata_init (ctx) != 1
        || EVP_PKEY_fromdata (ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
        pkey = NULL;  //  fromdata frees what it made on failure
    EVP_PKEY_CTX_free (ctx);
    OSSL_PARAM_free (params);
    if (!pkey)
        return NULL;
    EVP_PKEY_CTX *check = EVP_PKEY_CTX_new_from_pkey (NULL, pkey, NULL);
    bool valid = check && EVP_PKEY_public_check (check) == 1;
    EVP_PKEY_CTX_free (check);
    if (!valid)
        EVP_PKEY_free (pkey);
    return valid ? pkey : NULL;
}

//  RSA public key from JWK members n and e. Returns the key or NULL.
static EVP_PKEY *
s_jwk_rsa (json_t *jwk)
{
    size_t n_len = 0, e_len = 0;
    unsigned char *n_bin
        = s_b64url_decode_json (json_object_get (jwk, "n"), S_RSA_N_MAX_BYTES, &n_len);
    unsigned char *e_bin
        = s_b64url_decode_json (json_object_get (jwk, "e"), S_RSA_E_MAX_BYTES, &e_len);
    BIGNUM *n = n_bin ? BN_bin2bn (n_bin, (int) n_len, NULL) : NULL;
    BIGNUM *e = e_bin ? BN_bin2bn (e_bin, (int) e_len, NULL) : NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new ();
    EVP_PKEY *pkey = NULL;
    if (n && e && bld && BN_num_bits (n) >= S_RSA_MIN_BITS && BN_num_bits (n) <= S_RSA_MAX_BITS
        && OSSL_PARAM_BLD_push_BN (bld, OSSL_PKEY_PARAM_RSA_N, n) == 1
        && OSSL_PARAM_BLD_push_BN (bld, OSSL_PKEY_PARAM_RSA_E, e) == 1)
        pkey = s_pkey_from_params ("RSA", bld);
    OSSL_PARAM_BLD_free (bld);
    BN_free (n);
    BN_free (e);
    free (n_bin);
    free (e_bin);
    return pkey;
}

//  EC P-256 public key from JWK members crv, x and y (each coordinate the
//  full 32 bytes, RFC 7518 section 6.2.1). Returns the key or NULL.
static EVP_PKEY *
s_jwk_ec (json_t *jwk)
{
    const char *crv = json_string_value (json_object_get (jwk, "crv"));
    if (!crv || strcmp (crv, "P-256") != 0)
        return NULL;
    size_t x_len = 0, y_len = 0;
    unsigned char *x = s_b64url_decode_json (json_object_get (jwk, "x"), S_EC_COORD_BYTES, &x_len);
    unsigned char *y = s_b64url_decode_json (json_object_get (jwk, "y"), S_EC_COORD_BYTES, &y_len);
    EVP_PKEY *pkey = NULL;
    if (x && y && x_len == S_EC_COORD_BYTES && y_len == S_EC_COORD_BYTES) {
        unsigned char point[S_EC_POINT_BYTES];
        point[0] = POINT_CONVERSION_UNCOMPRESSED;
        memcpy (point + 1, x, S_EC_COORD_BYTES);
        memcpy (point + 1 + S_EC_COORD_BYTES, y, S_EC_COORD_BYTES);
        OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new ();
        if (bld
            && OSSL_PARAM_BLD_push_utf8_string (bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0)
                   == 1
            && OSSL_PARAM_BLD_push_octet_string (bld, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point)
                   == 1)
            pkey = s_pkey_from_params ("EC", bld);
        OSSL_PARAM_BLD_free (bld);
    }
    free (x);
    free (y);
    return pkey;
}

//  True if the JWK is meant for verifying signatures with ALG: its "use"
//  (if any) is "sig", its "alg" (if any) is ALG, its "key_ops" (if any)
//  include "verify".
static bool
s_jwk_for_signing (json_t *jwk, const char *alg)
{
    json_t *use = json_object_get (jwk, "use");
    if (use && (!json_is_string (use) || strcmp (json_string_value (use), "sig") != 0))
        return false;
    json_t *jwk_alg = json_object_get (jwk, "alg");
    if (jwk_alg && (!json_is_string (jwk_alg) || strcmp (json_string_value (jwk_alg), alg) != 0))
        return false;
    json_t *ops = json_object_get (jwk, "key_ops");
    if (ops) {
        size_t index;
        json_t *op;
        json_array_foreach (ops, index, op)
            if (json_is_string (op) && strcmp (json_string_value (op), "verify") == 0)
                return true;
        return false;
    }
    return true;
}

//  Parse the JWKS document TEXT (LEN bytes) into SET, which must be empty.
//  Keys that are not for RS256/ES256 signing are skipped quietly, broken
//  ones with a warning naming their kid. Returns 0 if at least one key is
//  usable, else -1 with the reason in ERR (SET is then empty).
static int
s_keyset_parse (s_keyset_t *set, const unsigned char *text, size_t len, char *err, size_t err_size)
{
    json_t *root = s_json_object (text, len);
    json_t *keys = root ? json_object_get (root, "keys") : NULL;
    if (!json_is_array (keys)) {
        json_decref (root);
        return s_fail (err, err_size, "not a JWKS (no \"keys\" array)");
    }
    if (json_array_size (keys) > S_JWKS_KEYS_MAX) {
        json_decref (root);
        return s_fail (err, err_size, "more than %d keys", S_JWKS_KEYS_MAX);
    }
    set->keys = calloc (json_array_size (keys) + 1, sizeof (s_key_t));
    if (!set->keys) {
        json_decref (root);
        return s_fail (err, err_size, "out of memory");
    }
    size_t index;
    json_t *jwk;
    json_array_foreach (keys, index, jwk) {
        if (!json_is_object (jwk))
            continue;
        const char *kty = json_string_value (json_object_get (jwk, "kty"));
        json_t *kid_json = json_object_get (jwk, "kid");
        if (!kty || (kid_json && !s_json_clean_string (kid_json, S_KID_MAX)))
            continue;
        const char *kid = json_string_value (kid_json);
        s_key_t key = {NULL, S_KTY_RSA, NULL};
        if (strcmp (kty, "RSA") == 0 && s_jwk_for_signing (jwk, "RS256")) {
            key.kty = S_KTY_RSA;
            key.pkey = s_jwk_rsa (jwk);
        }
        else if (strcmp (kty, "EC") == 0 && s_jwk_for_signing (jwk, "ES256")) {
            key.kty = S_KTY_EC;
            key.pkey = s_jwk_ec (jwk);
        }
        else
            continue;  //  oct, OKP, encryption keys, other algs
        if (!key.pkey) {
            aigw_warn ("jwt: JWKS key %s is malformed or too weak, skipped",
                       kid ? kid : "(no kid)");
            continue;
        }
        bool duplicate = false;
        for (size_t i = 0; i < set->count && kid; i++)
            if (set->keys[i].kid && set->keys[i].kty == key.kty
                && strcmp (set->keys[i].kid, kid) == 0)
                duplicate = true;
        if (duplicate) {
            aigw_warn ("jwt: JWKS key %s is listed twice, second skipped", kid);
            EVP_PKEY_free (key.pkey);
            continue;
        }
        if (kid && !(key.kid = strdup (kid))) {
            EVP_PKEY_free (key.pkey);
            json_decref (root);
            s_keyset_clear (set);
            return s_fail (err, err_size, "out of memory");
        }
        set->keys[set->count++] = key;
    }
    json_decref (root);
    if (set->count == 0) {
        s_keyset_clear (set);
        return s_fail (err, err_size, "no usable RS256 or ES256 key");
    }
    return 0;
}

//  Read at most MAX bytes of file PATH. Returns a buffer (caller frees)
//  and sets *LEN, or NULL with the reason in ERR.
static unsigned char *
s_read_file (const char *path, size_t max, size_t *len, char *err, size_t err_size)
{
    FILE *file = fopen (path, "rb");
    if (!file) {
        s_fail (err, err_size, "cannot open %s: %s", path, strerror (errno));
        return NULL;
    }
    unsigned char *buffer = malloc (max + 1);
    size_t size = buffer ? fread (buffer, 1, max + 1, file) : 0;
    bool failed = !buffer || ferror (file);
    fclose (file);
    if (failed) {
        free (buffer);
        s_fail (err, err_size, "cannot read %s", path);
        return NULL;
    }
    if (size > max) {
        free (buffer);
        s_fail (err, err_size, "%s is larger than %zu bytes", path, max);
        return NULL;
    }
    *len = size;
    return buffer;
}

//  A JWKS body being received.
typedef struct {
    unsigned char *data;  //  bytes so far (owned)
    size_t size;          //  bytes in data
    size_t max;           //  cap; past it the transfer is aborted
    bool too_large;       //  true once the cap was hit
} s_fetch_t;

//  libcurl write callback: append to the s_fetch_t in USERDATA, abort the
//  transfer (return 0) past its cap or on no memory.
static size_t
s_fetch_write (char *ptr, size_t size, size_t nmemb, void *userdata)
{
    s_fetch_t *fetch = (s_fetch_t *) userdata;
    size_t bytes = size * nmemb;
    if (bytes > fetch->max - fetch->size) {
        fetch->too_large = true;
        return 0;
    }
    unsigned char *data = realloc (fetch->data, fetch->size + bytes + 1);
    if (!data)
        return 0;
    memcpy (data + fetch->size, ptr, bytes);
    fetch->data = data;
    fetch->size += bytes;
    return bytes;
}

//  GET the JWKS at SELF's URL: no redirects, http(s) only, capped in time
//  and size. Returns the body (caller frees) and sets *LEN, or NULL with a
//  reason in ERR that never names the URL (it may hold credentials).
static unsigned char *
s_fetch_url (aigw_jwt_t *self, size_t *len, char *err, size_t err_size)
{
    CURL *curl = curl_easy_init ();
    if (!curl) {
        s_fail (err, err_size, "cannot start a transfer");
        return NULL;
    }
    s_fetch_t fetch = {NULL, 0, self->jwks_max_bytes, false};
    curl_easy_setopt (curl, CURLOPT_URL, self->jwks_url);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt (curl, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt (curl, CURLOPT_PROTOCOLS, (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt (curl, CURLOPT_TIMEOUT_MS, self->fetch_timeout_ms);
    curl_easy_setopt (curl, CURLOPT_CONNECTTIMEOUT_MS, self->fetch_timeout_ms);
    curl_easy_setopt (curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) self->jwks_max_bytes);
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, s_fetch_write);
    curl_easy_setopt (curl, CURLOPT_WRITEDATA, &fetch);
    curl_easy_setopt (curl, CURLOPT_USERAGENT, S_USER_AGENT);
    CURLcode code = curl_easy_perform (curl);
    long status = 0;
    curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup (curl);
    if (fetch.too_large || code == CURLE_FILESIZE_EXCEEDED)
        s_fail (err, err_size, "larger than %zu bytes", self->jwks_max_bytes);
    else if (code != CURLE_OK)
        s_fail (err, err_size, "fetch failed: %s", curl_easy_strerror (code));
    else if (status != 200)
        s_fail (err, err_size, "HTTP status %ld", status);
    else {
        *len = fetch.size;
        if (!fetch.data)
            fetch.data = malloc (1);  //  empty body: parse fails cleanly
        if (!fetch.data)
            s_fail (err, err_size, "out of memory");
        return fetch.data;
    }
    free (fetch.data);
    return NULL;
}

//  Load the key set from SELF's file or URL into a new set and swap it in.
//  Returns 0, or -1 with the reason in ERR (the old set stays).
static int
s_load (aigw_jwt_t *self, char *err, size_t err_size)
{
    const char *source = self->jwks_file ? "jwks_file" : "jwks_url";
    char reason[AIGW_JWT_ERR_MAX] = "";
    size_t len = 0;
    unsigned char *text = self->jwks_file ? s_read_file (self->jwks_file, self->jwks_max_bytes,
                                                         &len, reason, sizeof reason)
                                          : s_fetch_url (self, &len, reason, sizeof reason);
    s_keyset_t set = {NULL, 0};
    int rc = text ? s_keyset_parse (&set, text, len, reason, sizeof reason) : -1;
    free (text);
    if (rc != 0) {
        self->stale = true;
        return s_fail (err, err_size, "%s: %s", source, reason);
    }
    s_keyset_clear (&self->keyset);
    self->keyset = set;
    aigw_info ("jwt: %zu signing key%s loaded from %s", set.count, set.count == 1 ? "" : "s",
               source);
    return 0;
}

//  Key the HMAC-SHA256 template context with SECRET. Returns 0 or -1.
static int
s_hmac_setup (aigw_jwt_t *self, const char *secret)
{
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string (OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end ()};
    self->mac = EVP_MAC_fetch (NULL, "HMAC", NULL);
    self->hmac = self->mac ? EVP_MAC_CTX_new (self->mac) : NULL;
    if (!self->hmac
        || EVP_MAC_init (self->hmac, (const unsigned char *) secret, strlen (secret), params) != 1)
        return -1;
    return 0;
}

//  Create a verifier from SETTINGS (copied). NULL on bad settings, with
//  the reason in ERR. Caller owns the result.
aigw_jwt_t *
aigw_jwt_new (const aigw_jwt_settings_t *settings, char *err, size_t err_size)
{
    assert (settings);
    const char *secret = settings->hs256_secret;
    bool has_secret = secret && *secret;
    bool has_file = settings->jwks_file && *settings->jwks_file;
    bool has_url = settings->jwks_url && *settings->jwks_url;
    if (!has_secret && !has_file && !has_url) {
        s_fail (err, err_size, "jwt: set hs256_secret, jwks_file or jwks_url");
        return NULL;
    }
    if (has_file && has_url) {
        s_fail (err, err_size, "jwt: set jwks_file or jwks_url, not both");
        return NULL;
    }
    if (has_secret && strlen (secret) < AIGW_JWT_HS256_MIN_SECRET_BYTES) {
        s_fail (err, err_size, "jwt: hs256_secret is shorter than %d bytes",
                AIGW_JWT_HS256_MIN_SECRET_BYTES);
        return NULL;
    }
    if (settings->leeway_s != AIGW_JWT_LEEWAY_NONE
        && (settings->leeway_s < 0 || settings->leeway_s > AIGW_JWT_LEEWAY_MAX_S)) {
        s_fail (err, err_size, "jwt: leeway_s must be 0 to %d", AIGW_JWT_LEEWAY_MAX_S);
        return NULL;
    }
    if (settings->max_token_bytes > AIGW_JWT_MAX_TOKEN_BYTES_CEILING
        || settings->jwks_max_bytes > AIGW_JWT_JWKS_MAX_BYTES_CEILING
        || settings->fetch_timeout_ms < 0
        || settings->fetch_timeout_ms > AIGW_JWT_FETCH_TIMEOUT_MS_MAX
        || settings->refresh_interval_s < 0) {
        s_fail (err, err_size, "jwt: a limit is out of range");
        return NULL;
    }
    if (has_url && strncmp (settings->jwks_url, "https://", 8) != 0
        && strncmp (settings->jwks_url, "http://", 7) != 0) {
        s_fail (err, err_size, "jwt: jwks_url must be http:// or https://");
        return NULL;
    }

    aigw_jwt_t *self = calloc (1, sizeof *self);
    if (!self) {
        s_fail (err, err_size, "jwt: out of memory");
        return NULL;
    }
    bool failed = false;
    self->jwks_file = s_strdup_opt (settings->jwks_file, &failed);
    self->jwks_url = s_strdup_opt (settings->jwks_url, &failed);
    self->issuer = s_strdup_opt (settings->issuer, &failed);
    self->audience = s_strdup_opt (settings->audience, &failed);
    self->tenant_claim = s_strdup_opt (settings->tenant_claim, &failed);
    if (!self->tenant_claim && !failed)
        self->tenant_claim = s_strdup_opt (AIGW_JWT_DEFAULT_TENANT_CLAIM, &failed);
    self->role_claim = s_strdup_opt (settings->role_claim, &failed);
    if (!self->role_claim && !failed)
        self->role_claim = s_strdup_opt (AIGW_JWT_DEFAULT_ROLE_CLAIM, &failed);
    self->leeway_s = settings->leeway_s == AIGW_JWT_LEEWAY_NONE ? 0
                     : settings->leeway_s                       ? settings->leeway_s
                                                                : AIGW_JWT_DEFAULT_LEEWAY_S;
    self->max_token_bytes
        = settings->max_token_bytes ? settings->max_token_bytes : AIGW_JWT_DEFAULT_MAX_TOKEN_BYTES;
    self->fetch_timeout_ms = settings->fetch_timeout_ms ? settings->fetch_timeout_ms
                                                        : AIGW_JWT_DEFAULT_FETCH_TIMEOUT_MS;
    self->jwks_max_bytes
        = settings->jwks_max_bytes ? settings->jwks_max_bytes : AIGW_JWT_DEFAULT_JWKS_MAX_BYTES;
    self->refresh_interval_s = settings->refresh_interval_s ? settings->refresh_interval_s
                                                            : AIGW_JWT_DEFAULT_REFRESH_INTERVAL_S;
    if (failed) {
        aigw_jwt_destroy (&self);
        s_fail (err, err_size, "jwt: out of memory");
        return NULL;
    }
    if (has_secret && s_hmac_setup (self, secret) != 0) {
        aigw_jwt_destroy (&self);
        s_fail (err, err_size, "jwt: cannot set up HMAC-SHA256");
        return NULL;
    }
    if (has_file && s_load (self, err, err_size) != 0) {
        aigw_jwt_destroy (&self);
        return NULL;
    }
    if (has_url) {
        if (strncmp (self->jwks_url, "http://", 7) == 0)
            aigw_warn ("jwt: jwks_url is plain http; use https outside tests");
        char reason[AIGW_JWT_ERR_MAX];
        if (s_load (self, reason, sizeof reason) != 0)
            aigw_warn ("jwt: %s; RS256/ES256 tokens fail until a refresh works", reason);
    }
    return self;
}

//  Destroy; safe twice. The HMAC key is wiped by OpenSSL, the URL here.
void
aigw_jwt_destroy (aigw_jwt_t **self_p)
{
    assert (self_p);
    aigw_jwt_t *self = *self_p;
    if (!self)
        return;
    EVP_MAC_CTX_free (self->hmac);  //  wipes the key
    EVP_MAC_free (self->mac);
    s_keyset_clear (&self->keyset);
    free (self->jwks_file);
    if (self->jwks_url)
        OPENSSL_cleanse (self->jwks_url, strlen (self->jwks_url));
    free (self->jwks_url);
    free (self->issuer);
    free (self->audience);
    free (self->tenant_claim);
    free (self->role_claim);
    free (self);
    *self_p = NULL;
}

//  Shape check only: two dots, base64url between, header and payload
//  non-empty. Never decodes.
bool
aigw_jwt_looks_like (const char *credential)
{
    if (!credential)
        return false;
    int dots = 0;
    size_t part = 0;  //  characters in the current part
    size_t i = 0;
    for (; credential[i] && i <= AIGW_JWT_MAX_TOKEN_BYTES_CEILING; i++) {
        if (credential[i] == '.') {
            if (part == 0 || ++dots > 2)
                return false;  //  empty header or payload, or a fourth part
            part = 0;
        }
        else if (s_b64url_value ((unsigned char) credential[i]) < 0)
            return false;
        else
            part++;
    }
    return dots == 2 && i <= AIGW_JWT_MAX_TOKEN_BYTES_CEILING;
}

//  Find the key for a token of type KTY naming KID (or none). Without a
//  kid, the only key of that type is used. Returns the key, or NULL with
//  the reason in ERR; an unknown kid marks the set stale.
static EVP_PKEY *
s_key_select (aigw_jwt_t *self, s_kty_t kty, const char *kid, char *err, size_t err_size)
{
    s_key_t *found = NULL;
    size_t matches = 0;
    for (size_t i = 0; i < self->keyset.count; i++) {
        s_key_t *key = &self->keyset.keys[i];
        if (key->kty != kty)
            continue;
        if (kid ? key->kid && strcmp (key->kid, kid) == 0 : true) {
            found = key;
            matches++;
        }
    }
    if (kid && !found) {
        self->stale = true;
        s_fail (err, err_size, "unknown kid");
        return NULL;
    }
    if (!kid && matches != 1) {
        s_fail (err, err_size, matches ? "kid required" : "no key for alg");
        return NULL;
    }
    return found->pkey;
}

//  Check SIG (SIG_LEN bytes) over INPUT (INPUT_LEN bytes) with HMAC-SHA256
//  in constant time. Returns 0 if it matches, else -1.
static int
s_verify_hs256 (aigw_jwt_t *self, const char *input, size_t input_len, const unsigned char *sig,
                size_t sig_len)
{
    unsigned char mac[S_SHA256_BYTES];
    size_t mac_len = 0;
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_dup (self->hmac);
    bool ok = ctx && EVP_MAC_update (ctx, (const unsigned char *) input, input_len) == 1
              && EVP_MAC_final (ctx, mac, &mac_len, sizeof mac) == 1 && mac_len == S_SHA256_BYTES
              && sig_len == S_SHA256_BYTES && CRYPTO_memcmp (mac, sig, S_SHA256_BYTES) == 0;
    EVP_MAC_CTX_free (ctx);
    OPENSSL_cleanse (mac, sizeof mac);
    return ok ? 0 : -1;
}

//  Re-encode a JOSE ECDSA signature (r || s, 32 bytes each) as DER, the
//  form OpenSSL verifies. Returns the DER (caller OPENSSL_frees) and sets
//  *DER_LEN, or NULL.
static unsigned char *
s_ecdsa_jose_to_der (const unsigned char *sig, size_t sig_len, size_t *der_len)
{
    if (sig_len != 2 * S_EC_COORD_BYTES)
        return NULL;
    ECDSA_SIG *ecdsa = ECDSA_SIG_new ();
    BIGNUM *r = BN_bin2bn (sig, S_EC_COORD_BYTES, NULL);
    BIGNUM *s = BN_bin2bn (sig + S_EC_COORD_BYTES, S_EC_COORD_BYTES, NULL);
    if (!ecdsa || !r || !s || ECDSA_SIG_set0 (ecdsa, r, s) != 1) {
        BN_free (r);
        BN_free (s);
        ECDSA_SIG_free (ecdsa);
        return NULL;
    }
    unsigned char *der = NULL;
    int len = i2d_ECDSA_SIG (ecdsa, &der);
    ECDSA_SIG_free (ecdsa);  //  frees r and s
    if (len <= 0)
        return NULL;
    *der_len = (size_t) len;
    return der;
}

//  Check SIG over INPUT with public key PKEY and SHA-256 (RS256, or ES256
//  when IS_EC, whose JOSE signature is converted first). Returns 0 or -1.
static int
s_verify_pkey (EVP_PKEY *pkey, bool is_ec, const char *input, size_t input_len,
               const unsigned char *sig, size_t sig_len)
{
    unsigned char *der = NULL;
    if (is_ec) {
        der = s_ecdsa_jose_to_der (sig, sig_len, &sig_len);
        if (!der)
            return -1;
        sig = der;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
    bool ok
        = ctx && EVP_DigestVerifyInit (ctx, NULL, EVP_sha256 (), NULL, pkey) == 1
          && EVP_DigestVerify (ctx, sig, sig_len, (const unsigned char *) input, input_len) == 1;
    EVP_MD_CTX_free (ctx);
    OPENSSL_free (der);
    return ok ? 0 : -1;
}

//  Check the JOSE header HEADER: a known alg, no critical extensions, a JWT
//  type if any. Sets *ALG and *KID (borrowed from HEADER, may be NULL).
//  Returns 0 or -1 with the reason in ERR.
static int
s_check_header (aigw_jwt_t *self, json_t *header, s_alg_t *alg, const char **kid_p, char *err,
                size_t err_size)
{
    const char *name = json_string_value (json_object_get (header, "alg"));
    if (!name)
        return s_fail (err, err_size, "malformed header");
    if (strcmp (name, "HS256") == 0)
        *alg = S_ALG_HS256;
    else if (strcmp (name, "RS256") == 0)
        *alg = S_ALG_RS256;
    else if (strcmp (name, "ES256") == 0)
        *alg = S_ALG_ES256;
    else
        return s_fail (err, err_size, "alg not allowed");
    if ((*alg == S_ALG_HS256 && !self->hmac)
        || (*alg != S_ALG_HS256 && !self->jwks_file && !self->jwks_url))
        return s_fail (err, err_size, "alg not allowed");
    //  RFC 7515 4.1.11: extensions we do not understand must be refused.
    if (json_object_get (header, "crit"))
        return s_fail (err, err_size, "unsupported header");
    json_t *typ = json_object_get (header, "typ");
    if (typ) {
        const char *type = json_string_value (typ);
        if (!type || (strcasecmp (type, "JWT") != 0 && strcasecmp (type, "at+jwt") != 0))
            return s_fail (err, err_size, "not a JWT");
    }
    json_t *kid = json_object_get (header, "kid");
    if (kid && !s_json_clean_string (kid, S_KID_MAX))
        return s_fail (err, err_size, "malformed header");
    *kid_p = json_string_value (kid);
    return 0;
}

//  True if the "aud" claim AUD names AUDIENCE (a string, or an array of
//  strings holding it).
static bool
s_audience_match (json_t *aud, const char *audience)
{
    if (json_is_string (aud))
        return strcmp (json_string_value (aud), audience) == 0;
    if (!json_is_array (aud))
        return false;
    size_t index;
    json_t *entry;
    json_array_foreach (aud, index, entry)
        if (json_is_string (entry) && strcmp (json_string_value (entry), audience) == 0)
            return true;
    return false;
}

//  Check the claims of PAYLOAD at NOW and copy the ones the gateway uses
//  into CLAIMS (empty on entry). Returns 0 or -1 with the reason in ERR.
static int
s_check_claims (aigw_jwt_t *self, json_t *payload, int64_t now, aigw_jwt_claims_t *claims,
                char *err, size_t err_size)
{
    int64_t exp = 0, nbf = 0, iat = 0;
    json_t *value = json_object_get (payload, "exp");
    if (!value)
        return s_fail (err, err_size, "missing exp");
    if (s_numeric_date (value, &exp) != 0)
        return s_fail (err, err_size, "malformed exp");
    if (exp + self->leeway_s <= now)
        return s_fail (err, err_size, "token expired");
    if ((value = json_object_get (payload, "nbf"))) {
        if (s_numeric_date (value, &nbf) != 0)
            return s_fail (err, err_size, "malformed nbf");
        if (nbf - self->leeway_s > now)
            return s_fail (err, err_size, "token not yet valid");
    }
    if ((value = json_object_get (payload, "iat"))) {
        if (s_numeric_date (value, &iat) != 0)
            return s_fail (err, err_size, "malformed iat");
        if (iat - self->leeway_s > now)
            return s_fail (err, err_size, "token issued in the future");
    }
    if (self->issuer) {
        const char *iss = json_string_value (json_object_get (payload, "iss"));
        if (!iss || strcmp (iss, self->issuer) != 0)
            return s_fail (err, err_size, "issuer mismatch");
    }
    if (self->audience && !s_audience_match (json_object_get (payload, "aud"), self->audience))
        return s_fail (err, err_size, "audience mismatch");

    json_t *sub = json_object_get (payload, "sub");
    json_t *tenant = json_object_get (payload, self->tenant_claim);
    json_t *role = json_object_get (payload, self->role_claim);
    if (!s_json_clean_string (sub, S_CLAIM_MAX))
        return s_fail (err, err_size, sub ? "malformed sub" : "missing sub");
    if (!s_json_clean_string (tenant, S_CLAIM_MAX))
        return s_fail (err, err_size, tenant ? "malformed tenant" : "missing tenant");
    if (!s_json_clean_string (role, S_CLAIM_MAX))
        return s_fail (err, err_size, role ? "malformed role" : "missing role");
    if (strcmp (json_string_value (tenant), AIGW_JWT_TENANT_ANY) == 0
        && strcmp (json_string_value (role), AIGW_JWT_ROLE_ADMIN) != 0)
        return s_fail (err, err_size, "wildcard tenant needs role admin");

    claims->subject = strdup (json_string_value (sub));
    claims->tenant_id = strdup (json_string_value (tenant));
    claims->role = strdup (json_string_value (role));
    claims->expires_at = exp;
    if (!claims->subject || !claims->tenant_id || !claims->role) {
        aigw_jwt_claims_clear (claims);
        return s_fail (err, err_size, "out of memory");
    }
    return 0;
}

//  Verify TOKEN at NOW. 0 with CLAIMS filled (caller clears them), or -1
//  with a fixed phrase in ERR and CLAIMS empty.
int
aigw_jwt_verify (aigw_jwt_t *self, const char *token, int64_t now, aigw_jwt_claims_t *claims,
                 char *err, size_t err_size)
{
    assert (self);
    assert (claims);
    memset (claims, 0, sizeof *claims);
    if (!token || !*token)
        return s_fail (err, err_size, "no token");
    size_t len = strnlen (token, self->max_token_bytes + 1);
    if (len > self->max_token_bytes)
        return s_fail (err, err_size, "token too large");
    const char *dot1 = memchr (token, '.', len);
    const char *dot2 = dot1 ? memchr (dot1 + 1, '.', len - (size_t) (dot1 + 1 - token)) : NULL;
    if (!dot2 || memchr (dot2 + 1, '.', len - (size_t) (dot2 + 1 - token)))
        return s_fail (err, err_size, "malformed token");
    size_t header_chars = (size_t) (dot1 - token);
    size_t payload_chars = (size_t) (dot2 - dot1 - 1);
    size_t sig_chars = len - (size_t) (dot2 + 1 - token);
    size_t signed_len = (size_t) (dot2 - token);  //  "header.payload"
    if (header_chars == 0 || payload_chars == 0 || sig_chars == 0 || header_chars % 4 == 1
        || payload_chars % 4 == 1 || sig_chars % 4 == 1)
        return s_fail (err, err_size, "malformed token");
    for (size_t i = 0; i < len; i++)
        if (token[i] != '.' && s_b64url_value ((unsigned char) token[i]) < 0)
            return s_fail (err, err_size, "malformed token");

    //  One buffer serves header, signature and payload in turn.
    unsigned char *buffer = malloc (len);
    if (!buffer)
        return s_fail (err, err_size, "out of memory");
    json_t *header = NULL;
    json_t *payload = NULL;
    size_t size = 0;
    int rc = -1;

    if (s_b64url_decode (token, header_chars, buffer, len, &size) != 0) {
        s_fail (err, err_size, "malformed token");
        goto done;
    }
    if (!aigw_json_depth_ok ((const char *) buffer, size, S_JSON_DEPTH_MAX)) {
        s_fail (err, err_size, "header too deep");
        goto done;
    }
    if (!(header = s_json_object (buffer, size))) {
        s_fail (err, err_size, "malformed header");
        goto done;
    }
    s_alg_t alg = S_ALG_HS256;  //  s_check_header sets it or fails; gcc -O2 cannot tell
    const char *kid = NULL;
    if (s_check_header (self, header, &alg, &kid, err, err_size) != 0)
        goto done;

    if (s_b64url_decode (dot2 + 1, sig_chars, buffer, len, &size) != 0) {
        s_fail (err, err_size, "malformed token");
        goto done;
    }
    if (alg == S_ALG_HS256) {
        if (s_verify_hs256 (self, token, signed_len, buffer, size) != 0) {
            s_fail (err, err_size, "bad signature");
            goto done;
        }
    }
    else {
        EVP_PKEY *pkey
            = s_key_select (self, alg == S_ALG_RS256 ? S_KTY_RSA : S_KTY_EC, kid, err, err_size);
        if (!pkey)
            goto done;
        if (s_verify_pkey (pkey, alg == S_ALG_ES256, token, signed_len, buffer, size) != 0) {
            s_fail (err, err_size, "bad signature");
            goto done;
        }
    }

    if (s_b64url_decode (dot1 + 1, payload_chars, buffer, len, &size) != 0) {
        s_fail (err, err_size, "malformed token");
        goto done;
    }
    if (!aigw_json_depth_ok ((const char *) buffer, size, S_JSON_DEPTH_MAX)) {
        s_fail (err, err_size, "payload too deep");
        goto done;
    }
    if (!(payload = s_json_object (buffer, size))) {
        s_fail (err, err_size, "malformed payload");
        goto done;
    }
    rc = s_check_claims (self, payload, now, claims, err, err_size);
done:
    json_decref (header);
    json_decref (payload);
    free (buffer);
    return rc;
}

//  Reload the JWKS; the old set stays on failure. 0 or -1.
int
aigw_jwt_refresh (aigw_jwt_t *self, char *err, size_t err_size)
{
    assert (self);
    if (!self->jwks_file && !self->jwks_url)
        return 0;
    if (s_load (self, err, err_size) != 0)
        return -1;
    self->stale = false;
    return 0;
}

//  Whether to refresh now; see the header for the schedule.
bool
aigw_jwt_wants_refresh (aigw_jwt_t *self, int64_t now)
{
    assert (self);
    if (!self->jwks_file && !self->jwks_url)
        return false;
    bool due;
    if (!self->hinted)
        due = self->stale;  //  first call: only if the first load failed
    else if (self->stale)
        due = now - self->hinted_at >= AIGW_JWT_REFRESH_MIN_INTERVAL_S;
    else
        due = now - self->hinted_at >= self->refresh_interval_s;
    if (due || !self->hinted)
        self->hinted_at = now;
    self->hinted = true;
    if (due)
        self->stale = false;
    return due;
}

//  Usable JWKS keys held.
size_t
aigw_jwt_key_count (aigw_jwt_t *self)
{
    assert (self);
    return self->keyset.count;
}

//  Free and zero CLAIMS; safe on a zeroed struct and twice.
void
aigw_jwt_claims_clear (aigw_jwt_claims_t *claims)
{
    if (!claims)
        return;
    free (claims->subject);
    free (claims->tenant_id);
    free (claims->role);
    memset (claims, 0, sizeof *claims);
}

//  --------------------------------------------------------------------------
//  Selftest. Keys are generated here, tokens signed by a small signer that
//  only the test uses, the JWKS written to a temporary file and served by a
//  one-thread HTTP server on 127.0.0.1.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#define S_TEST_NOW         1700000000LL  //  the verifier's clock
#define S_TEST_SECRET      "0123456789abcdef0123456789abcdef-test"
#define S_TEST_ISSUER      "https://idp.example"
#define S_TEST_AUDIENCE    "aigw"
#define S_TEST_LOG_SILENT  ((aigw_log_level_t) -1)
#define S_TEST_BIG_BODY    (AIGW_JWT_DEFAULT_JWKS_MAX_BYTES + 4096)
#define S_TEST_REQUEST_MAX 4096

//  Base64url without padding of DATA. Caller frees.
static char *
s_test_b64url (const unsigned char *data, size_t len)
{
    static const char alphabet[]
        = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char *out = malloc (len / 3 * 4 + 5);
    assert (out);
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        acc = (acc << 8) | data[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[n++] = alphabet[(acc >> bits) & 63];
        }
        acc &= (1u << bits) - 1;
    }
    if (bits > 0)
        out[n++] = alphabet[(acc << (6 - bits)) & 63];
    out[n] = 0;
    return out;
}

//  Sign HEADER.PAYLOAD (JSON texts, encoded verbatim, so a test may lie in
//  the header) with SECRET (HMAC-SHA256) if given, else with PKEY (RS256,
//  or ES256 in JOSE r || s form). Caller frees the token.
static char *
s_test_sign (const char *header, const char *payload, EVP_PKEY *pkey, const char *secret,
             size_t secret_len)
{
    char *h = s_test_b64url ((const unsigned char *) header, strlen (header));
    char *p = s_test_b64url ((const unsigned char *) payload, strlen (payload));
    size_t input_len = strlen (h) + 1 + strlen (p);
    char *input = malloc (input_len + 1);
    assert (input);
    snprintf (input, input_len + 1, "%s.%s", h, p);
    free (h);
    free (p);

    unsigned char sig[1024];
    size_t sig_len = sizeof sig;
    if (secret) {
        assert (EVP_Q_mac (NULL, "HMAC", NULL, "SHA256", NULL, secret, secret_len,
                           (unsigned char *) input, input_len, sig, sizeof sig, &sig_len));
    }
    else {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
        unsigned char der[1024];
        size_t der_len = sizeof der;
        assert (ctx);
        assert (EVP_DigestSignInit (ctx, NULL, EVP_sha256 (), NULL, pkey) == 1);
        assert (EVP_DigestSign (ctx, der, &der_len, (unsigned char *) input, input_len) == 1);
        EVP_MD_CTX_free (ctx);
        if (EVP_PKEY_is_a (pkey, "EC")) {
            const unsigned char *cursor = der;
            ECDSA_SIG *ecdsa = d2i_ECDSA_SIG (NULL, &cursor, (long) der_len);
            assert (ecdsa);
            assert (BN_bn2binpad (ECDSA_SIG_get0_r (ecdsa), sig, S_EC_COORD_BYTES) > 0);
            assert (
                BN_bn2binpad (ECDSA_SIG_get0_s (ecdsa), sig + S_EC_COORD_BYTES, S_EC_COORD_BYTES)
                > 0);
            ECDSA_SIG_free (ecdsa);
            sig_len = 2 * S_EC_COORD_BYTES;
        }
        else {
            memcpy (sig, der, der_len);
            sig_len = der_len;
        }
    }
    char *s = s_test_b64url (sig, sig_len);
    size_t token_len = input_len + 1 + strlen (s);
    char *token = malloc (token_len + 1);
    assert (token);
    snprintf (token, token_len + 1, "%s.%s", input, s);
    free (input);
    free (s);
    return token;
}

//  Sign with the test HMAC secret.
static char *
s_test_hs256 (const char *header, const char *payload)
{
    return s_test_sign (header, payload, NULL, S_TEST_SECRET, strlen (S_TEST_SECRET));
}

//  Base64url of the big-endian bytes of BIGNUM parameter NAME of PKEY,
//  padded to PAD bytes (0: minimal). Caller frees.
static char *
s_test_bn_param (EVP_PKEY *pkey, const char *name, int pad)
{
    BIGNUM *bn = NULL;
    assert (EVP_PKEY_get_bn_param (pkey, name, &bn) == 1);
    unsigned char bytes[1024];
    int len = pad ? BN_bn2binpad (bn, bytes, pad) : BN_bn2bin (bn, bytes);
    assert (len > 0);
    BN_free (bn);
    return s_test_b64url (bytes, (size_t) len);
}

//  Append the JWK of public key PKEY (RSA or EC) to array KEYS, with KID
//  (or none) and USE (or none).
static void
s_test_jwk_add (json_t *keys, EVP_PKEY *pkey, const char *kid, const char *use)
{
    json_t *jwk = json_object ();
    if (EVP_PKEY_is_a (pkey, "RSA")) {
        json_object_set_new (jwk, "kty", json_string ("RSA"));
        char *n = s_test_bn_param (pkey, OSSL_PKEY_PARAM_RSA_N, 0);
        char *e = s_test_bn_param (pkey, OSSL_PKEY_PARAM_RSA_E, 0);
        json_object_set_new (jwk, "n", json_string (n));
        json_object_set_new (jwk, "e", json_string (e));
        free (n);
        free (e);
    }
    else {
        json_object_set_new (jwk, "kty", json_string ("EC"));
        json_object_set_new (jwk, "crv", json_string ("P-256"));
        char *x = s_test_bn_param (pkey, OSSL_PKEY_PARAM_EC_PUB_X, S_EC_COORD_BYTES);
        char *y = s_test_bn_param (pkey, OSSL_PKEY_PARAM_EC_PUB_Y, S_EC_COORD_BYTES);
        json_object_set_new (jwk, "x", json_string (x));
        json_object_set_new (jwk, "y", json_string (y));
        free (x);
        free (y);
    }
    if (kid)
        json_object_set_new (jwk, "kid", json_string (kid));
    if (use)
        json_object_set_new (jwk, "use", json_string (use));
    assert (json_array_append_new (keys, jwk) == 0);
}

//  Write TEXT to PATH, replacing it.
static void
s_test_write (const char *path, const char *text)
{
    FILE *file = fopen (path, "wb");
    assert (file);
    assert (fwrite (text, 1, strlen (text), file) == strlen (text));
    assert (fclose (file) == 0);
}

//  A JWKS document for KEYS (steals the reference). Caller frees.
static char *
s_test_jwks (json_t *keys)
{
    json_t *root = json_pack ("{s:o}", "keys", keys);
    assert (root);
    char *text = json_dumps (root, JSON_COMPACT);
    assert (text);
    json_decref (root);
    return text;
}

//  Payload with the usual claims; EXP relative to the test clock.
static char *
s_test_payload (int64_t exp_delta, const char *tenant, const char *role)
{
    char *text = NULL;
    assert (asprintf (&text,
                      "{\"sub\":\"ops@example\",\"iss\":\"%s\",\"aud\":\"%s\","
                      "\"tenant_id\":\"%s\",\"role\":\"%s\",\"iat\":%lld,\"exp\":%lld}",
                      S_TEST_ISSUER, S_TEST_AUDIENCE, tenant, role, (long long) S_TEST_NOW - 10,
                      (long long) (S_TEST_NOW + exp_delta))
            > 0);
    return text;
}

//  Verify TOKEN with JWT at the test clock. WANT NULL: it must pass;
//  otherwise it must fail with exactly the error WANT, leave the claims
//  empty and never echo the secret. Frees TOKEN.
static void
s_test_expect (aigw_jwt_t *jwt, char *token, const char *want)
{
    char err[AIGW_JWT_ERR_MAX] = "";
    aigw_jwt_claims_t claims;
    int rc = aigw_jwt_verify (jwt, token, S_TEST_NOW, &claims, err, sizeof err);
    if (want) {
        if (rc == 0 || strcmp (err, want) != 0)
            fprintf (stderr, "\nexpected \"%s\", got rc %d \"%s\"\n", want, rc, err);
        assert (rc == -1);
        assert (strcmp (err, want) == 0);
        assert (!claims.subject && !claims.tenant_id && !claims.role);
        assert (!strstr (err, S_TEST_SECRET));
    }
    else {
        if (rc != 0)
            fprintf (stderr, "\nexpected success, got \"%s\"\n", err);
        assert (rc == 0);
        assert (claims.subject && claims.tenant_id && claims.role);
    }
    aigw_jwt_claims_clear (&claims);
    free (token);
}

//  The one-thread HTTP server: answers GET /jwks with BODY, GET /big with
//  more than the JWKS cap (no Content-Length), anything else with 404,
//  until its listening socket is shut down.
typedef struct {
    int fd;            //  listening socket
    const char *body;  //  the JWKS served at /jwks (not owned)
    int port;          //  port bound on 127.0.0.1
} s_test_server_t;

//  Send all LEN bytes of DATA on FD, giving up quietly if the peer left.
static void
s_test_send (int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t sent = send (fd, data, len, MSG_NOSIGNAL);
        if (sent <= 0)
            return;
        data += sent;
        len -= (size_t) sent;
    }
}

//  Thread body of the test server.
static void *
s_test_server_run (void *args)
{
    s_test_server_t *server = (s_test_server_t *) args;
    while (true) {
        int fd = accept (server->fd, NULL, NULL);
        if (fd < 0)
            break;
        char request[S_TEST_REQUEST_MAX + 1];
        size_t size = 0;
        while (size < S_TEST_REQUEST_MAX) {
            ssize_t got = recv (fd, request + size, S_TEST_REQUEST_MAX - size, 0);
            if (got <= 0)
                break;
            size += (size_t) got;
            request[size] = 0;
            if (strstr (request, "\r\n\r\n"))
                break;
        }
        request[size] = 0;
        char head[256];
        if (strncmp (request, "GET /jwks ", 10) == 0) {
            int n = snprintf (head, sizeof head,
                              "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                              "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                              strlen (server->body));
            s_test_send (fd, head, (size_t) n);
            s_test_send (fd, server->body, strlen (server->body));
        }
        else if (strncmp (request, "GET /big ", 9) == 0) {
            const char *text = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n";
            s_test_send (fd, text, strlen (text));
            char *big = malloc (S_TEST_BIG_BODY);
            assert (big);
            memset (big, ' ', S_TEST_BIG_BODY);
            s_test_send (fd, big, S_TEST_BIG_BODY);
            free (big);
        }
        else {
            const char *text = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n"
                               "Connection: close\r\n\r\n";
            s_test_send (fd, text, strlen (text));
        }
        close (fd);
    }
    return NULL;
}

//  jwks_url: fetch, refresh, a 404, a body past the cap, a dead port.
static void
s_test_url (const char *jwks, EVP_PKEY *rsa)
{
    s_test_server_t server = {socket (AF_INET, SOCK_STREAM, 0), jwks, 0};
    assert (server.fd >= 0);
    struct sockaddr_in address;
    memset (&address, 0, sizeof address);
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    socklen_t address_len = sizeof address;
    assert (bind (server.fd, (struct sockaddr *) &address, sizeof address) == 0);
    assert (listen (server.fd, 8) == 0);
    assert (getsockname (server.fd, (struct sockaddr *) &address, &address_len) == 0);
    server.port = ntohs (address.sin_port);
    pthread_t thread;
    assert (pthread_create (&thread, NULL, s_test_server_run, &server) == 0);

    char url[128], err[AIGW_JWT_ERR_MAX];
    snprintf (url, sizeof url, "http://127.0.0.1:%d/jwks", server.port);
    aigw_jwt_settings_t settings = {.jwks_url = url, .issuer = S_TEST_ISSUER};
    aigw_jwt_t *jwt = aigw_jwt_new (&settings, err, sizeof err);
    assert (jwt);
    assert (aigw_jwt_key_count (jwt) == 2);
    char *payload = s_test_payload (600, "t1", "developer");
    s_test_expect (jwt, s_test_sign ("{\"alg\":\"RS256\",\"kid\":\"rsa1\"}", payload, rsa, NULL, 0),
                   NULL);
    free (payload);
    assert (aigw_jwt_refresh (jwt, err, sizeof err) == 0);
    aigw_jwt_destroy (&jwt);

    //  A failed fetch is not fatal: no keys, and a retry is wanted at once.
    snprintf (url, sizeof url, "http://127.0.0.1:%d/missing", server.port);
    jwt = aigw_jwt_new (&settings, err, sizeof err);
    assert (jwt);
    assert (aigw_jwt_key_count (jwt) == 0);
    assert (aigw_jwt_wants_refresh (jwt, S_TEST_NOW));
    assert (!aigw_jwt_wants_refresh (jwt, S_TEST_NOW + 1));
    assert (aigw_jwt_refresh (jwt, err, sizeof err) == -1);
    assert (strcmp (err, "jwks_url: HTTP status 404") == 0);
    aigw_jwt_destroy (&jwt);

    snprintf (url, sizeof url, "http://127.0.0.1:%d/big", server.port);
    jwt = aigw_jwt_new (&settings, err, sizeof err);
    assert (jwt);
    assert (aigw_jwt_refresh (jwt, err, sizeof err) == -1);
    assert (strstr (err, "larger than"));
    aigw_jwt_destroy (&jwt);

    shutdown (server.fd, SHUT_RDWR);
    assert (pthread_join (thread, NULL) == 0);
    close (server.fd);

    //  Nobody listens any more: connection refused, reported without the URL.
    snprintf (url, sizeof url, "http://127.0.0.1:%d/jwks?token=hush", server.port);
    jwt = aigw_jwt_new (&settings, err, sizeof err);
    assert (jwt);
    assert (aigw_jwt_refresh (jwt, err, sizeof err) == -1);
    assert (strncmp (err, "jwks_url: fetch failed", 22) == 0);
    assert (!strstr (err, "hush"));
    aigw_jwt_destroy (&jwt);
}

//  Selftest: public API only, plus the test helpers above.
void
aigw_jwt_test (bool verbose)
{
    aigw_log_level_t level = aigw_log_level ();
    aigw_log_set_level (verbose ? AIGW_LOG_DEBUG : S_TEST_LOG_SILENT);
    char err[AIGW_JWT_ERR_MAX];

    //  looks_like: shape only.
    assert (aigw_jwt_looks_like ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"));
    assert (aigw_jwt_looks_like ("a.b.c"));
    assert (aigw_jwt_looks_like ("a.b."));  //  "none"-style: verify says why
    assert (!aigw_jwt_looks_like (NULL));
    assert (!aigw_jwt_looks_like (""));
    assert (!aigw_jwt_looks_like ("sk-aigw-0123456789abcdef"));
    assert (!aigw_jwt_looks_like ("a.b"));
    assert (!aigw_jwt_looks_like ("a.b.c.d"));
    assert (!aigw_jwt_looks_like (".b.c"));
    assert (!aigw_jwt_looks_like ("a..c"));
    assert (!aigw_jwt_looks_like ("a.b=.c"));
    assert (!aigw_jwt_looks_like ("a.b+/.c"));
    assert (!aigw_jwt_looks_like ("a.b c.d"));

    //  Settings refused.
    aigw_jwt_settings_t bad = {0};
    assert (!aigw_jwt_new (&bad, err, sizeof err));
    bad.hs256_secret = "short-secret";
    assert (!aigw_jwt_new (&bad, err, sizeof err));
    assert (strstr (err, "shorter") && !strstr (err, "short-secret"));
    bad.hs256_secret = NULL;
    bad.jwks_file = "/nonexistent/aigw-jwks.json";
    assert (!aigw_jwt_new (&bad, err, sizeof err));
    assert (strncmp (err, "jwks_file: cannot open", 22) == 0);
    bad.jwks_url = "http://127.0.0.1:1/";
    assert (!aigw_jwt_new (&bad, err, sizeof err));
    bad.jwks_file = NULL;
    bad.jwks_url = "file:///etc/passwd";
    assert (!aigw_jwt_new (&bad, err, sizeof err));
    bad.jwks_url = NULL;
    bad.hs256_secret = S_TEST_SECRET;
    bad.leeway_s = AIGW_JWT_LEEWAY_MAX_S + 1;
    assert (!aigw_jwt_new (&bad, err, sizeof err));

    //  Keys: RSA 2048 and two EC P-256, generated now.
    EVP_PKEY *rsa = EVP_RSA_gen (2048);
    EVP_PKEY *ec = EVP_EC_gen ("P-256");
    EVP_PKEY *ec2 = EVP_EC_gen ("P-256");
    assert (rsa && ec && ec2);

    //  JWKS: rsa1, ec1, the RSA key again as an encryption key, an oct key,
    //  and a key with no kid of another kind (all three ignored).
    json_t *keys = json_array ();
    s_test_jwk_add (keys, rsa, "rsa1", "sig");
    s_test_jwk_add (keys, ec, "ec1", NULL);
    s_test_jwk_add (keys, ec2, "enc1", "enc");
    json_array_append_new (
        keys, json_pack ("{s:s,s:s,s:s}", "kty", "oct", "kid", "hmac1", "k", "c2VjcmV0"));
    json_array_append_new (keys, json_pack ("{s:s,s:s}", "kty", "OKP", "crv", "Ed25519"));
    char *jwks = s_test_jwks (keys);
    char path[] = "/tmp/aigw-jwt-test-XXXXXX";
    int fd = mkstemp (path);
    assert (fd >= 0);
    close (fd);
    s_test_write (path, jwks);

    aigw_jwt_settings_t settings = {.hs256_secret = S_TEST_SECRET,
                                    .jwks_file = path,
                                    .issuer = S_TEST_ISSUER,
                                    .audience = S_TEST_AUDIENCE};
    aigw_jwt_t *jwt = aigw_jwt_new (&settings, err, sizeof err);
    assert (jwt);
    assert (aigw_jwt_key_count (jwt) == 2);

    const char *hs = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    const char *rs = "{\"alg\":\"RS256\",\"kid\":\"rsa1\",\"typ\":\"JWT\"}";
    const char *es = "{\"alg\":\"ES256\",\"kid\":\"ec1\"}";

    //  Valid tokens of each algorithm; claims mapped.
    char *payload = s_test_payload (600, "acme", "developer");
    char *token = s_test_hs256 (hs, payload);
    aigw_jwt_claims_t claims;
    assert (aigw_jwt_verify (jwt, token, S_TEST_NOW, &claims, err, sizeof err) == 0);
    assert (strcmp (claims.subject, "ops@example") == 0);
    assert (strcmp (claims.tenant_id, "acme") == 0);
    assert (strcmp (claims.role, "developer") == 0);
    assert (claims.expires_at == S_TEST_NOW + 600);
    aigw_jwt_claims_clear (&claims);
    aigw_jwt_claims_clear (&claims);
    free (token);
    s_test_expect (jwt, s_test_sign (rs, payload, rsa, NULL, 0), NULL);
    s_test_expect (jwt, s_test_sign (es, payload, ec, NULL, 0), NULL);
    //  No kid: the only key of the right type is used (enc1 does not count).
    s_test_expect (jwt, s_test_sign ("{\"alg\":\"RS256\"}", payload, rsa, NULL, 0), NULL);
    s_test_expect (jwt, s_test_sign ("{\"alg\":\"ES256\"}", payload, ec, NULL, 0), NULL);
    s_test_expect (
        jwt, s_test_sign ("{\"alg\":\"RS256\",\"typ\":\"at+jwt\"}", payload, rsa, NULL, 0), NULL);

    //  Bad signature: a flipped character in the middle of each signature,
    //  a token signed by another key, a header swapped after signing.
    const char *signers[] = {"hs", "rs", "es"};
    for (size_t i = 0; i < sizeof signers / sizeof signers[0]; i++) {
        token = i == 0   ? s_test_hs256 (hs, payload)
                : i == 1 ? s_test_sign (rs, payload, rsa, NULL, 0)
                         : s_test_sign (es, payload, ec, NULL, 0);
        char *sig = strrchr (token, '.') + 1;
        size_t middle = strlen (sig) / 2;
        sig[middle] = sig[middle] == 'A' ? 'B' : 'A';
        s_test_expect (jwt, token, "bad signature");
    }
    s_test_expect (jwt, s_test_sign (es, payload, ec2, NULL, 0), "bad signature");
    token = s_test_hs256 (hs, payload);
    char *forged = s_test_hs256 ("{\"alg\":\"HS256\",\"typ\":\"jwt\"}", payload);
    memcpy (strrchr (forged, '.'), strrchr (token, '.'), strlen (strrchr (token, '.')) + 1);
    free (token);
    s_test_expect (jwt, forged, "bad signature");

    //  Time: expired, expired within leeway (still fine), nbf, iat ahead.
    char *text = s_test_payload (-61, "acme", "developer");
    s_test_expect (jwt, s_test_hs256 (hs, text), "token expired");
    free (text);
    text = s_test_payload (-30, "acme", "developer");
    s_test_expect (jwt, s_test_hs256 (hs, text), NULL);
    free (text);
    s_test_expect (jwt,
                   s_test_hs256 (hs,
                                 "{\"sub\":\"a\",\"iss\":\"" S_TEST_ISSUER
                                 "\",\"aud\":\"" S_TEST_AUDIENCE "\",\"tenant_id\":\"t\",\"role\":"
                                 "\"r\",\"exp\":1700000600,\"nbf\":1700000100}"),
                   "token not yet valid");
    s_test_expect (jwt,
                   s_test_hs256 (hs,
                                 "{\"sub\":\"a\",\"iss\":\"" S_TEST_ISSUER
                                 "\",\"aud\":\"" S_TEST_AUDIENCE "\",\"tenant_id\":\"t\",\"role\":"
                                 "\"r\",\"exp\":1700000600,\"nbf\":1700000030.5}"),
                   NULL);
    s_test_expect (jwt,
                   s_test_hs256 (hs,
                                 "{\"sub\":\"a\",\"iss\":\"" S_TEST_ISSUER
                                 "\",\"aud\":\"" S_TEST_AUDIENCE "\",\"tenant_id\":\"t\",\"role\":"
                                 "\"r\",\"exp\":1700000600,\"iat\":1700086400}"),
                   "token issued in the future");
    s_test_expect (jwt,
                   s_test_hs256 (hs, "{\"sub\":\"a\",\"iss\":\"" S_TEST_ISSUER
                                     "\",\"aud\":\"" S_TEST_AUDIENCE
                                     "\",\"tenant_id\":\"t\",\"role\":\"r\"}"),
                   "missing exp");
    s_test_expect (jwt,
                   s_test_hs256 (hs,
                                 "{\"sub\":\"a\",\"iss\":\"" S_TEST_ISSUER
                                 "\",\"aud\":\"" S_TEST_AUDIENCE "\",\"tenant_id\":\"t\",\"role\":"
                                 "\"r\",\"exp\":\"1700000600\"}"),
                   "malformed exp");
    s_test_expect (jwt,
                   s_test_hs256 (hs,
                                 "{\"sub\":\"a\",\"iss\":\"" S_TEST_ISSUER
                                 "\",\"aud\":\"" S_TEST_AUDIENCE "\",\"tenant_id\":\"t\",\"role\":"
                                 "\"r\",\"exp\":1e300}"),
                   "malformed exp");

    //  Issuer and audience, string and array.
    const char *claims_tail = "\"sub\":\"a\",\"tenant_id\":\"t\",\"role\":\"r\",\"exp\":1700000600";
    char buffer[512];
    snprintf (buffer, sizeof buffer, "{\"iss\":\"https://evil.example\",\"aud\":\"aigw\",%s}",
              claims_tail);
    s_test_expect (jwt, s_test_hs256 (hs, buffer), "issuer mismatch");
    snprintf (buffer, sizeof buffer, "{\"aud\":\"aigw\",%s}", claims_tail);
    s_test_expect (jwt, s_test_hs256 (hs, buffer), "issuer mismatch");
    snprintf (buffer, sizeof buffer, "{\"iss\":\"%s\",\"aud\":\"other\",%s}", S_TEST_ISSUER,
              claims_tail);
    s_test_expect (jwt, s_test_hs256 (hs, buffer), "audience mismatch");
    snprintf (buffer, sizeof buffer, "{\"iss\":\"%s\",\"aud\":[\"other\",\"more\"],%s}",
              S_TEST_ISSUER, claims_tail);
    s_test_expect (jwt, s_test_hs256 (hs, buffer), "audience mismatch");
    snprintf (buffer, sizeof buffer, "{\"iss\":\"%s\",%s}", S_TEST_ISSUER, claims_tail);
    s_test_expect (jwt, s_test_hs256 (hs, buffer), "audience mismatch");
    snprintf (buffer, sizeof buffer, "{\"iss\":\"%s\",\"aud\":[\"other\",\"aigw\"],%s}",
              S_TEST_ISSUER, claims_tail);
    s_test_expect (jwt, s_test_hs256 (hs, buffer), NULL);

    //  Claims the gateway needs; the wildcard tenant is for admins only.
    snprintf (buffer, sizeof buffer,
              "{\"iss\":\"%s\",\"aud\":\"aigw\",\"tenant_id\":\"t\",\"role\":\"r\","
              "\"exp\":1700000600}",
              S_TEST_ISSUER);
    s_test_expect (jwt, s_test_hs256 (hs, buffer), "missing sub");
    text = s_test_payload (600, "*", "developer");
    s_test_expect (jwt, s_test_hs256 (hs, text), "wildcard tenant needs role admin");
    free (text);
    text = s_test_payload (600, "*", "admin");
    s_test_expect (jwt, s_test_sign (rs, text, rsa, NULL, 0), NULL);
    free (text);
    text = s_test_payload (600, "a\\u0001b", "admin");
    s_test_expect (jwt, s_test_hs256 (hs, text), "malformed tenant");
    free (text);
    text = s_test_payload (600, "a\\u0000b", "admin");
    s_test_expect (jwt, s_test_hs256 (hs, text), "malformed payload");
    free (text);
    snprintf (buffer, sizeof buffer,
              "{\"iss\":\"%s\",\"aud\":\"aigw\",\"sub\":\"a\",\"tenant_id\":\"t\","
              "\"tenant_id\":\"*\",\"role\":\"admin\",\"exp\":1700000600}",
              S_TEST_ISSUER);
    s_test_expect (jwt, s_test_hs256 (hs, buffer), "malformed payload");

    //  Algorithms and keys: none, unknown algs, duplicate alg, crit, typ,
    //  unknown kid, kid of the wrong type.
    s_test_expect (jwt, s_test_hs256 ("{\"alg\":\"none\"}", payload), "alg not allowed");
    char *unsigned_token = s_test_hs256 ("{\"alg\":\"none\"}", payload);
    strrchr (unsigned_token, '.')[1] = 0;
    s_test_expect (jwt, unsigned_token, "malformed token");
    s_test_expect (jwt, s_test_hs256 ("{\"alg\":\"HS512\"}", payload), "alg not allowed");
    s_test_expect (jwt, s_test_hs256 ("{\"alg\":\"hs256\"}", payload), "alg not allowed");
    s_test_expect (jwt, s_test_hs256 ("{\"typ\":\"JWT\"}", payload), "malformed header");
    s_test_expect (jwt, s_test_hs256 ("{\"alg\":\"RS256\",\"alg\":\"HS256\"}", payload),
                   "malformed header");
    s_test_expect (jwt,
                   s_test_hs256 ("{\"alg\":\"HS256\",\"crit\":[\"b64\"],\"b64\":false}", payload),
                   "unsupported header");
    s_test_expect (jwt, s_test_hs256 ("{\"alg\":\"HS256\",\"typ\":\"JOSE+JSON\"}", payload),
                   "not a JWT");
    s_test_expect (jwt, s_test_sign ("{\"alg\":\"RS256\",\"kid\":\"nope\"}", payload, rsa, NULL, 0),
                   "unknown kid");
    s_test_expect (jwt, s_test_sign ("{\"alg\":\"RS256\",\"kid\":\"ec1\"}", payload, rsa, NULL, 0),
                   "unknown kid");
    s_test_expect (jwt, s_test_sign ("{\"alg\":\"ES256\",\"kid\":\"enc1\"}", payload, ec2, NULL, 0),
                   "unknown kid");
    s_test_expect (jwt, s_test_sign ("{\"alg\":\"RS256\",\"kid\":7}", payload, rsa, NULL, 0),
                   "malformed header");

    //  Key confusion. RS256 and ES256 headers signed with the HMAC secret
    //  never reach the secret; an HS256 token "signed" with the RSA public
    //  key as HMAC key fails here, and where no secret is configured HS256
    //  is not accepted at all.
    s_test_expect (jwt, s_test_hs256 (rs, payload), "bad signature");
    s_test_expect (jwt, s_test_hs256 (es, payload), "bad signature");
    BIO *bio = BIO_new (BIO_s_mem ());
    assert (bio && PEM_write_bio_PUBKEY (bio, rsa) == 1);
    char *pem = NULL;
    long pem_len = BIO_get_mem_data (bio, &pem);
    assert (pem_len > 0);
    s_test_expect (
        jwt,
        s_test_sign ("{\"alg\":\"HS256\",\"kid\":\"rsa1\"}", payload, NULL, pem, (size_t) pem_len),
        "bad signature");
    aigw_jwt_settings_t jwks_only = {.jwks_file = path};
    aigw_jwt_t *public_only = aigw_jwt_new (&jwks_only, err, sizeof err);
    assert (public_only);
    s_test_expect (
        public_only,
        s_test_sign ("{\"alg\":\"HS256\",\"kid\":\"rsa1\"}", payload, NULL, pem, (size_t) pem_len),
        "alg not allowed");
    s_test_expect (public_only, s_test_sign (rs, payload, rsa, NULL, 0), NULL);
    BIO_free (bio);
    //  An HMAC-only verifier refuses public-key algorithms.
    aigw_jwt_settings_t hmac_only = {.hs256_secret = S_TEST_SECRET};
    aigw_jwt_t *secret_only = aigw_jwt_new (&hmac_only, err, sizeof err);
    assert (secret_only);
    assert (aigw_jwt_key_count (secret_only) == 0);
    s_test_expect (secret_only, s_test_sign (rs, payload, rsa, NULL, 0), "alg not allowed");
    s_test_expect (secret_only, s_test_hs256 (hs, payload), NULL);
    assert (aigw_jwt_refresh (secret_only, err, sizeof err) == 0);
    assert (!aigw_jwt_wants_refresh (secret_only, S_TEST_NOW));
    aigw_jwt_destroy (&secret_only);

    //  Malformed input, rejected cleanly.
    s_test_expect (jwt, strdup (""), "no token");
    assert (aigw_jwt_verify (jwt, NULL, S_TEST_NOW, &claims, err, sizeof err) == -1);
    s_test_expect (jwt, strdup ("abc.def"), "malformed token");
    s_test_expect (jwt, strdup ("a.b.c.d"), "malformed token");
    s_test_expect (jwt, strdup (".eyJ9.c2ln"), "malformed token");
    s_test_expect (jwt, strdup ("eyJhbGciOiJIUzI1NiJ9.!!!.c2ln"), "malformed token");
    s_test_expect (jwt, strdup ("eyJhbGciOiJIUzI1NiJ9.eyJ9.c2ln"), "bad signature");
    token = s_test_hs256 (hs, payload);
    char *padded = malloc (strlen (token) + 2);
    assert (padded);
    snprintf (padded, strlen (token) + 2, "%s=", token);
    free (token);
    s_test_expect (jwt, padded, "malformed token");
    //  Non-canonical base64url: the last character of a 32-byte signature
    //  carries 4 unused bits, which must be zero.
    token = s_test_hs256 (hs, payload);
    char *last = token + strlen (token) - 1;
    *last = (char) (*last == 'z' ? 'y' : *last + 1);
    s_test_expect (jwt, token, "malformed token");
    s_test_expect (jwt, strdup ("eyJhbGciOiJIUzI1NiJ9.eyJ9.c2lnB"), "malformed token");
    s_test_expect (jwt, s_test_hs256 ("[\"alg\",\"HS256\"]", payload), "malformed header");
    s_test_expect (jwt, s_test_hs256 ("{\"alg\":\"HS256\"", payload), "malformed header");
    s_test_expect (jwt, s_test_hs256 (hs, "[1,2,3]"), "malformed payload");
    s_test_expect (jwt, s_test_hs256 (hs, "not json"), "malformed payload");
    size_t huge_len = AIGW_JWT_DEFAULT_MAX_TOKEN_BYTES + 16;
    char *huge = malloc (huge_len + 1);
    assert (huge);
    memset (huge, 'a', huge_len);
    huge[10] = '.';
    huge[20] = '.';
    huge[huge_len] = 0;
    assert (aigw_jwt_looks_like (huge));
    s_test_expect (jwt, huge, "token too large");
    //  Deep JSON: far past the cap, and just past it, in header and payload.
    size_t depths[] = {S_JSON_DEPTH_MAX + 1, 2000, 5000};
    for (size_t i = 0; i < sizeof depths / sizeof depths[0]; i++) {
        size_t depth = depths[i];
        char *deep = malloc (2 * depth + 200);
        assert (deep);
        size_t n = (size_t) snprintf (deep, 200, "{\"sub\":\"a\",\"exp\":1700000600,\"x\":");
        for (size_t d = 1; d < depth; d++)
            deep[n++] = '[';
        for (size_t d = 1; d < depth; d++)
            deep[n++] = ']';
        deep[n++] = '}';
        deep[n] = 0;
        token = s_test_hs256 (hs, deep);
        bool too_large = strlen (token) > AIGW_JWT_DEFAULT_MAX_TOKEN_BYTES;
        assert (too_large == (depth == 5000));
        s_test_expect (jwt, token, too_large ? "token too large" : "payload too deep");
        memcpy (deep, "{\"alg\":\"HS256\"     ", 19);
        s_test_expect (jwt, s_test_hs256 (deep, payload),
                       too_large ? "token too large" : "header too deep");
        free (deep);
    }
    {
        //  Depth at the cap parses.
        char deep[512];
        size_t n = (size_t) snprintf (
            deep, 200, "{\"iss\":\"%s\",\"aud\":\"aigw\",%s,\"x\":", S_TEST_ISSUER, claims_tail);
        for (size_t d = 1; d < S_JSON_DEPTH_MAX; d++)
            deep[n++] = '[';
        for (size_t d = 1; d < S_JSON_DEPTH_MAX; d++)
            deep[n++] = ']';
        deep[n++] = '}';
        deep[n] = 0;
        s_test_expect (jwt, s_test_hs256 (hs, deep), NULL);
    }

    //  Other claim names and leeway.
    aigw_jwt_settings_t named = {.hs256_secret = S_TEST_SECRET,
                                 .tenant_claim = "https://aigw.example/org",
                                 .role_claim = "grp",
                                 .leeway_s = AIGW_JWT_LEEWAY_NONE};
    aigw_jwt_t *renamed = aigw_jwt_new (&named, err, sizeof err);
    assert (renamed);
    token = s_test_hs256 (hs, "{\"sub\":\"svc\",\"https://aigw.example/org\":\"o1\","
                              "\"grp\":\"viewer\",\"exp\":1700000001}");
    assert (aigw_jwt_verify (renamed, token, S_TEST_NOW, &claims, err, sizeof err) == 0);
    assert (strcmp (claims.tenant_id, "o1") == 0 && strcmp (claims.role, "viewer") == 0);
    aigw_jwt_claims_clear (&claims);
    //  No leeway: one second later it has expired.
    assert (aigw_jwt_verify (renamed, token, S_TEST_NOW + 1, &claims, err, sizeof err) == -1);
    assert (strcmp (err, "token expired") == 0);
    free (token);
    s_test_expect (renamed, s_test_hs256 (hs, payload), "missing tenant");
    aigw_jwt_destroy (&renamed);

    //  Refresh: rotate ec1 out and ec2 in (under kid ec2), re-read the file.
    keys = json_array ();
    s_test_jwk_add (keys, rsa, "rsa1", "sig");
    s_test_jwk_add (keys, ec2, "ec2", "sig");
    char *rotated = s_test_jwks (keys);
    s_test_write (path, rotated);
    free (rotated);
    const char *es2 = "{\"alg\":\"ES256\",\"kid\":\"ec2\"}";
    s_test_expect (jwt, s_test_sign (es2, payload, ec2, NULL, 0), "unknown kid");
    assert (aigw_jwt_refresh (jwt, err, sizeof err) == 0);
    s_test_expect (jwt, s_test_sign (es2, payload, ec2, NULL, 0), NULL);
    s_test_expect (jwt, s_test_sign (es, payload, ec, NULL, 0), "unknown kid");
    //  A broken file leaves the loaded keys in place.
    s_test_write (path, "{\"keys\": [");
    assert (aigw_jwt_refresh (jwt, err, sizeof err) == -1);
    assert (strncmp (err, "jwks_file: ", 11) == 0);
    s_test_write (path, "{\"keys\": [{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"}]}");
    assert (aigw_jwt_refresh (jwt, err, sizeof err) == -1);
    assert (strcmp (err, "jwks_file: no usable RS256 or ES256 key") == 0);
    assert (aigw_jwt_key_count (jwt) == 2);
    s_test_expect (jwt, s_test_sign (es2, payload, ec2, NULL, 0), NULL);

    //  wants_refresh: periodic, sooner after an unknown kid, never a storm.
    aigw_jwt_destroy (&public_only);
    public_only = aigw_jwt_new (&jwks_only, err, sizeof err);
    assert (!public_only);  //  the file is broken now
    s_test_write (path, jwks);
    public_only = aigw_jwt_new (&jwks_only, err, sizeof err);
    assert (public_only);
    int64_t now = S_TEST_NOW;
    assert (!aigw_jwt_wants_refresh (public_only, now));
    assert (!aigw_jwt_wants_refresh (public_only, now + 60));
    assert (aigw_jwt_wants_refresh (public_only, now + AIGW_JWT_DEFAULT_REFRESH_INTERVAL_S));
    now += AIGW_JWT_DEFAULT_REFRESH_INTERVAL_S;
    assert (!aigw_jwt_wants_refresh (public_only, now + 1));
    s_test_expect (public_only, s_test_sign (es2, payload, ec2, NULL, 0), "unknown kid");
    assert (!aigw_jwt_wants_refresh (public_only, now + AIGW_JWT_REFRESH_MIN_INTERVAL_S - 1));
    assert (aigw_jwt_wants_refresh (public_only, now + AIGW_JWT_REFRESH_MIN_INTERVAL_S));
    s_test_expect (public_only, s_test_sign (es2, payload, ec2, NULL, 0), "unknown kid");
    assert (!aigw_jwt_wants_refresh (public_only, now + AIGW_JWT_REFRESH_MIN_INTERVAL_S + 1));
    aigw_jwt_destroy (&public_only);

    //  The same JWKS over HTTP.
    s_test_url (jwks, rsa);

    free (payload);
    aigw_jwt_destroy (&jwt);
    aigw_jwt_destroy (&jwt);
    assert (unlink (path) == 0);
    free (jwks);
    EVP_PKEY_free (rsa);
    EVP_PKEY_free (ec);
    EVP_PKEY_free (ec2);
    aigw_log_set_level (level);
}
