/*  aigw_secret: AES-256-GCM sealing of secrets at rest, with a keyring.

    Why GCM with a random nonce: one key seals a few thousand values at
    most (one per deployment, again per rotation), far below the 2^32
    values after which random 96-bit nonces start to risk a repeat. Why a
    key id in the value rather than trying every key: a wrong key is then
    told apart from a tampered value, and opening costs one decryption. */
#include "aigw_secret.h"
#include "aigw_hex.h"
#include "aigw_log.h"

#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

//  What the derived key id hashes before the key, so the id is no hash of
//  the key alone.
#define S_KID_LABEL "aigw secret key id\n"
//  Hex digits of a derived key id.
#define S_KID_DERIVED_HEX 8
//  Longest key text, an "ID:" included.
#define S_KEY_TEXT_MAX 128
//  What every key-format refusal says; never the value.
#define S_KEY_FORMAT                                                               \
    "expected a 32-byte key as 64 hex digits or base64, optionally after \"ID:\" " \
    "(openssl rand -hex 32 makes one)"

//  One key of the ring.
typedef struct {
    char id[AIGW_SECRET_KID_MAX + 1];          //  its id, as values name it
    unsigned char key[AIGW_SECRET_KEY_BYTES];  //  the AES-256 key
} s_key_t;

struct _aigw_secret_t {
    s_key_t keys[AIGW_SECRET_KEYS_MAX];  //  keys[0] is the current one when current
    size_t count;                        //  entries used in keys
    bool current;                        //  keys[0] seals
};

//  --------------------------------------------------------------------------
//  Key texts

//  Value of base64 digit C (either alphabet), or -1.
static int
s_b64_digit (char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

//  Decode LEN characters of base64 TEXT (padding optional) into OUT (room
//  for SIZE bytes). Returns the bytes written, or -1 on a bad digit, bad
//  padding or overflow.
static long
s_b64_decode (const char *text, size_t len, unsigned char *out, size_t size)
{
    size_t pad = 0;
    while (len > 0 && text[len - 1] == '=' && pad < 2)
        len--, pad++;
    if (len % 4 == 1 || (pad && (len + pad) % 4))
        return -1;
    uint32_t acc = 0;
    int bits = 0;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        int d = s_b64_digit (text[i]);
        if (d < 0)
            return -1;
        acc = (acc << 6) | (uint32_t) d;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n == size)
                return -1;
            out[n++] = (unsigned char) (acc >> bits);
        }
    }
    //  Left-over bits must be zero, so each key has one spelling.
    if (bits && (acc & ((1u << bits) - 1)))
        return -1;
    return (long) n;
}

//  Encode LEN bytes as standard base64 with padding into OUT (room for
//  4 * ((LEN + 2) / 3) + 1).
static void
s_b64_encode (const unsigned char *bytes, size_t len, char *out)
{
    static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t) bytes[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t) bytes[i + 1] << 8;
        if (i + 2 < len)
            v |= bytes[i + 2];
        out[n++] = digits[(v >> 18) & 63];
        out[n++] = digits[(v >> 12) & 63];
        out[n++] = i + 1 < len ? digits[(v >> 6) & 63] : '=';
        out[n++] = i + 2 < len ? digits[v & 63] : '=';
    }
    out[n] = 0;
}

//  True when C may appear in a key id.
static bool
s_kid_char (char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'
           || c == '_' || c == '.';
}

//  Parse one key text of LEN characters ("[ID:]KEY") into KEY. Returns 0,
//  or -1 with PROBLEM (which never quotes the text).
static int
s_key_parse (const char *text, size_t len, s_key_t *key, char *problem, size_t problem_size)
{
    memset (key, 0, sizeof *key);
    const char *colon = memchr (text, ':', len);
    const char *body = text;
    size_t body_len = len;
    if (colon) {
        size_t id_len = (size_t) (colon - text);
        bool valid = id_len >= 1 && id_len <= AIGW_SECRET_KID_MAX;
        for (size_t i = 0; valid && i < id_len; i++)
            valid = s_kid_char (text[i]);
        if (!valid) {
            snprintf (problem, problem_size,
                      "a key id (before ':') must be 1 to %d letters, digits, '-', '_' or '.'",
                      AIGW_SECRET_KID_MAX);
            return -1;
        }
        memcpy (key->id, text, id_len);
        body = colon + 1;
        body_len = len - id_len - 1;
    }
    bool hex = body_len == 2 * AIGW_SECRET_KEY_BYTES;
    for (size_t i = 0; hex && i < body_len; i++)
        hex = aigw_hex_digit (body[i]) >= 0;
    if (hex)
        for (size_t i = 0; i < AIGW_SECRET_KEY_BYTES; i++)
            key->key[i] = (unsigned char) (aigw_hex_digit (body[2 * i]) << 4
                                           | aigw_hex_digit (body[2 * i + 1]));
    else if (body_len > S_KEY_TEXT_MAX
             || s_b64_decode (body, body_len, key->key, sizeof key->key) != AIGW_SECRET_KEY_BYTES) {
        OPENSSL_cleanse (key, sizeof *key);
        snprintf (problem, problem_size, "%s", S_KEY_FORMAT);
        return -1;
    }
    if (!key->id[0]) {
        unsigned char digest[EVP_MAX_MD_SIZE];
        unsigned int digest_len = 0;
        EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
        if (!ctx || EVP_DigestInit_ex (ctx, EVP_sha256 (), NULL) != 1
            || EVP_DigestUpdate (ctx, S_KID_LABEL, strlen (S_KID_LABEL)) != 1
            || EVP_DigestUpdate (ctx, key->key, sizeof key->key) != 1
            || EVP_DigestFinal_ex (ctx, digest, &digest_len) != 1) {
            EVP_MD_CTX_free (ctx);
            OPENSSL_cleanse (key, sizeof *key);
            snprintf (problem, problem_size, "out of memory");
            return -1;
        }
        EVP_MD_CTX_free (ctx);
        aigw_hex_encode (digest, S_KID_DERIVED_HEX / 2, key->id);
    }
    return 0;
}

//  Separators of a key list.
static bool
s_separator (char c)
{
    return c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

//  Add every key of LIST (keys separated by commas or white space; with
//  LINES, one a line and '#' comments) to SELF. Returns 0, or -1 with
//  PROBLEM.
static int
s_add_list (aigw_secret_t *self, const char *list, bool lines, char *problem, size_t problem_size)
{
    const char *p = list;
    while (*p) {
        while (*p && s_separator (*p))
            p++;
        if (!*p)
            break;
        const char *end = p;
        while (*end && !s_separator (*end))
            end++;
        if (lines && *p == '#') {
            while (*end && *end != '\n')
                end++;
            p = end;
            continue;
        }
        if (self->count == AIGW_SECRET_KEYS_MAX) {
            snprintf (problem, problem_size, "at most %d keys", AIGW_SECRET_KEYS_MAX);
            return -1;
        }
        s_key_t *key = &self->keys[self->count];
        if (s_key_parse (p, (size_t) (end - p), key, problem, problem_size))
            return -1;
        for (size_t i = 0; i < self->count; i++)
            if (strcmp (self->keys[i].id, key->id) == 0) {
                OPENSSL_cleanse (key, sizeof *key);
                snprintf (problem, problem_size, "key id %s is given twice", self->keys[i].id);
                return -1;
            }
        self->count++;
        p = end;
    }
    return 0;
}

//  The whole of file PATH, NUL-terminated (caller wipes and frees), or NULL
//  with PROBLEM.
static char *
s_read_file (const char *path, char *problem, size_t problem_size)
{
    FILE *file = fopen (path, "rb");
    if (!file) {
        snprintf (problem, problem_size, "cannot read the key file: %s", strerror (errno));
        return NULL;
    }
    char *data = calloc (1, AIGW_SECRET_FILE_MAX + 1);
    size_t size = data ? fread (data, 1, AIGW_SECRET_FILE_MAX + 1, file) : 0;
    bool failed = ferror (file);
    fclose (file);
    if (!data || failed || size > AIGW_SECRET_FILE_MAX) {
        if (data)
            OPENSSL_cleanse (data, AIGW_SECRET_FILE_MAX + 1);
        free (data);
        snprintf (problem, problem_size,
                  !data    ? "out of memory"
                  : failed ? "cannot read the key file"
                           : "the key file is over 64 KiB");
        return NULL;
    }
    return data;
}

//  Add the keys of file PATH to SELF: the first becomes the current one.
static int
s_add_file (aigw_secret_t *self, const char *path, char *problem, size_t problem_size)
{
    char *data = s_read_file (path, problem, problem_size);
    if (!data)
        return -1;
    size_t before = self->count;
    int rc = s_add_list (self, data, true, problem, problem_size);
    OPENSSL_cleanse (data, AIGW_SECRET_FILE_MAX + 1);
    free (data);
    if (rc == 0 && self->count == before) {
        snprintf (problem, problem_size, "the key file holds no key");
        rc = -1;
    }
    return rc;
}

//  --------------------------------------------------------------------------
//  Settings

//  aigw_config_check_fn of secrets.key: one key.
static int
s_check_key (const char *value, char *problem, size_t problem_size)
{
    aigw_secret_t ring = {0};
    int rc = s_add_list (&ring, value, false, problem, problem_size);
    if (rc == 0 && ring.count != 1) {
        snprintf (problem, problem_size, "expected one key (older ones go in previous_keys)");
        rc = -1;
    }
    OPENSSL_cleanse (&ring, sizeof ring);
    return rc;
}

//  aigw_config_check_fn of secrets.previous_keys: keys.
static int
s_check_keys (const char *value, char *problem, size_t problem_size)
{
    aigw_secret_t ring = {0};
    int rc = s_add_list (&ring, value, false, problem, problem_size);
    OPENSSL_cleanse (&ring, sizeof ring);
    return rc;
}

//  aigw_config_check_fn of secrets.key_file: a readable file of keys.
static int
s_check_key_file (const char *value, char *problem, size_t problem_size)
{
    aigw_secret_t ring = {0};
    int rc = s_add_file (&ring, value, problem, problem_size);
    OPENSSL_cleanse (&ring, sizeof ring);
    return rc;
}

static const aigw_config_keyword_t s_secrets_keywords[]
    = {AIGW_CONFIG_KW_STRING ("key", aigw_config_t, secret_key, s_check_key, NULL,
                              .env = AIGW_SECRET_ENV),
       AIGW_CONFIG_KW_STRING ("key_file", aigw_config_t, secret_key_file, s_check_key_file, NULL,
                              .env = "AIGW_SECRET_KEY_FILE"),
       AIGW_CONFIG_KW_STRING ("previous_keys", aigw_config_t, secret_previous_keys, s_check_keys,
                              NULL, .env = "AIGW_SECRET_PREVIOUS_KEYS"),
       AIGW_CONFIG_KW_END};
AIGW_CONFIG_KEYWORDS ("secrets", s_secrets_keywords)

//  --------------------------------------------------------------------------
//  The ring

aigw_secret_t *
aigw_secret_new_from (const char *current, const char *previous, char *err, size_t err_size)
{
    aigw_secret_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, err_size, "out of memory");
        return NULL;
    }
    char problem[256] = "";
    if (current && *current) {
        if (s_check_key (current, problem, sizeof problem)
            || s_add_list (self, current, false, problem, sizeof problem)) {
            snprintf (err, err_size, "secrets.key (%s): %s", AIGW_SECRET_ENV, problem);
            aigw_secret_destroy (&self);
            return NULL;
        }
        self->current = true;
    }
    if (previous && *previous && s_add_list (self, previous, false, problem, sizeof problem)) {
        snprintf (err, err_size, "secrets.previous_keys: %s", problem);
        aigw_secret_destroy (&self);
    }
    return self;
}

aigw_secret_t *
aigw_secret_new (const aigw_config_t *config, char *err, size_t err_size)
{
    assert (config);
    const char *key = config->secret_key, *file = config->secret_key_file;
    if (key && *key && file && *file) {
        snprintf (err, err_size,
                  "secrets.key (%s) and secrets.key_file (AIGW_SECRET_KEY_FILE) are both set: "
                  "set one",
                  AIGW_SECRET_ENV);
        return NULL;
    }
    aigw_secret_t *self = aigw_secret_new_from (key, NULL, err, err_size);
    if (!self)
        return NULL;
    char problem[256] = "";
    if (file && *file) {
        if (s_add_file (self, file, problem, sizeof problem)) {
            snprintf (err, err_size, "secrets.key_file: %s", problem);
            aigw_secret_destroy (&self);
            return NULL;
        }
        self->current = true;
    }
    const char *previous = config->secret_previous_keys;
    if (previous && *previous && s_add_list (self, previous, false, problem, sizeof problem)) {
        snprintf (err, err_size, "secrets.previous_keys: %s", problem);
        aigw_secret_destroy (&self);
    }
    return self;
}

void
aigw_secret_destroy (aigw_secret_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        OPENSSL_cleanse (*self_p, sizeof **self_p);
        free (*self_p);
        *self_p = NULL;
    }
}

bool
aigw_secret_ready (const aigw_secret_t *self)
{
    return self && self->current;
}

const char *
aigw_secret_current_id (const aigw_secret_t *self)
{
    return aigw_secret_ready (self) ? self->keys[0].id : NULL;
}

bool
aigw_secret_is_sealed (const char *value)
{
    return value && strncmp (value, AIGW_SECRET_PREFIX, strlen (AIGW_SECRET_PREFIX)) == 0;
}

//  Split the sealed VALUE: its key id into KID, the start of its base64.
//  Returns that start, or NULL when VALUE is not well formed.
static const char *
s_split (const char *value, char kid[AIGW_SECRET_KID_MAX + 1])
{
    if (!aigw_secret_is_sealed (value))
        return NULL;
    const char *id = value + strlen (AIGW_SECRET_PREFIX);
    const char *colon = strchr (id, ':');
    size_t len = colon ? (size_t) (colon - id) : 0;
    if (len < 1 || len > AIGW_SECRET_KID_MAX)
        return NULL;
    for (size_t i = 0; i < len; i++)
        if (!s_kid_char (id[i]))
            return NULL;
    memcpy (kid, id, len);
    kid[len] = 0;
    return colon + 1;
}

int
aigw_secret_key_id (const char *value, char *kid, size_t kid_size)
{
    char id[AIGW_SECRET_KID_MAX + 1];
    if (!s_split (value, id) || strlen (id) >= kid_size)
        return -1;
    memcpy (kid, id, strlen (id) + 1);
    return 0;
}

//  Run AES-256-GCM over IN (LEN bytes) into OUT with KEY, NONCE and AAD;
//  ENCRYPT writes TAG, else checks it. Returns 0, or -1 (on decryption: the
//  tag did not verify).
static int
s_gcm (bool encrypt, const unsigned char *key, const unsigned char *nonce, const char *aad,
       const unsigned char *in, size_t len, unsigned char *out, unsigned char *tag)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new ();
    int n = 0, rc = -1;
    if (!ctx)
        return -1;
    if (EVP_CipherInit_ex (ctx, EVP_aes_256_gcm (), NULL, NULL, NULL, encrypt ? 1 : 0) == 1
        && EVP_CIPHER_CTX_ctrl (ctx, EVP_CTRL_GCM_SET_IVLEN, AIGW_SECRET_NONCE_BYTES, NULL) == 1
        && EVP_CipherInit_ex (ctx, NULL, NULL, key, nonce, -1) == 1
        && EVP_CipherUpdate (ctx, NULL, &n, (const unsigned char *) aad, (int) strlen (aad)) == 1
        && (len == 0 || EVP_CipherUpdate (ctx, out, &n, in, (int) len) == 1)
        && (encrypt
            || EVP_CIPHER_CTX_ctrl (ctx, EVP_CTRL_GCM_SET_TAG, AIGW_SECRET_TAG_BYTES, tag) == 1)
        && EVP_CipherFinal_ex (ctx, out + (len ? n : 0), &n) == 1
        && (!encrypt
            || EVP_CIPHER_CTX_ctrl (ctx, EVP_CTRL_GCM_GET_TAG, AIGW_SECRET_TAG_BYTES, tag) == 1))
        rc = 0;
    EVP_CIPHER_CTX_free (ctx);
    return rc;
}

char *
aigw_secret_seal (aigw_secret_t *self, const char *plain, const char *aad, char *err,
                  size_t err_size)
{
    assert (plain && aad);
    if (!aigw_secret_ready (self)) {
        snprintf (err, err_size, "no secret key is configured (set %s)", AIGW_SECRET_ENV);
        return NULL;
    }
    size_t len = strlen (plain);
    if (len > AIGW_SECRET_PLAIN_MAX) {
        snprintf (err, err_size, "the secret is over %d bytes", AIGW_SECRET_PLAIN_MAX);
        return NULL;
    }
    size_t raw_len = AIGW_SECRET_NONCE_BYTES + len + AIGW_SECRET_TAG_BYTES;
    unsigned char *raw = malloc (raw_len);
    size_t b64_len = 4 * ((raw_len + 2) / 3);
    const s_key_t *key = &self->keys[0];
    size_t head = strlen (AIGW_SECRET_PREFIX) + strlen (key->id) + 1;
    char *out = malloc (head + b64_len + 1);
    if (!raw || !out) {
        free (raw);
        free (out);
        snprintf (err, err_size, "out of memory");
        return NULL;
    }
    unsigned char *nonce = raw, *body = raw + AIGW_SECRET_NONCE_BYTES;
    if (RAND_bytes (nonce, AIGW_SECRET_NONCE_BYTES) != 1
        || s_gcm (true, key->key, nonce, aad, (const unsigned char *) plain, len, body,
                  body + len)) {
        free (raw);
        free (out);
        snprintf (err, err_size, "the secret could not be sealed (OpenSSL failed)");
        return NULL;
    }
    snprintf (out, head + 1, "%s%s:", AIGW_SECRET_PREFIX, key->id);
    s_b64_encode (raw, raw_len, out + head);
    free (raw);
    return out;
}

char *
aigw_secret_open (aigw_secret_t *self, const char *value, const char *aad, char *err,
                  size_t err_size)
{
    assert (value && aad);
    char kid[AIGW_SECRET_KID_MAX + 1];
    const char *b64 = s_split (value, kid);
    if (!b64) {
        snprintf (err, err_size, "the stored value is not in the %s format", AIGW_SECRET_PREFIX);
        return NULL;
    }
    const s_key_t *key = NULL;
    for (size_t i = 0; self && i < self->count && !key; i++)
        if (strcmp (self->keys[i].id, kid) == 0)
            key = &self->keys[i];
    if (!key) {
        snprintf (err, err_size,
                  "it was sealed with key id %s, which is not configured (%s, "
                  "secrets.previous_keys)",
                  kid, AIGW_SECRET_ENV);
        return NULL;
    }
    size_t b64_len = strlen (b64);
    size_t size = b64_len / 4 * 3 + 3;
    unsigned char *raw = b64_len <= 2 * AIGW_SECRET_PLAIN_MAX ? malloc (size) : NULL;
    long raw_len = raw ? s_b64_decode (b64, b64_len, raw, size) : -1;
    if (raw_len < AIGW_SECRET_NONCE_BYTES + AIGW_SECRET_TAG_BYTES) {
        free (raw);
        snprintf (err, err_size, "the stored value is malformed");
        return NULL;
    }
    size_t len = (size_t) raw_len - AIGW_SECRET_NONCE_BYTES - AIGW_SECRET_TAG_BYTES;
    char *plain = malloc (len + 1);
    unsigned char *body = raw + AIGW_SECRET_NONCE_BYTES;
    if (!plain
        || s_gcm (false, key->key, raw, aad, body, len, (unsigned char *) plain, body + len)) {
        if (plain)
            OPENSSL_cleanse (plain, len + 1);
        free (plain);
        free (raw);
        snprintf (err, err_size,
                  "it does not verify under key id %s (another key with that id, another "
                  "row's value, or altered)",
                  kid);
        return NULL;
    }
    free (raw);
    plain[len] = 0;
    //  A secret with a NUL inside would be cut short where it is used.
    if (strlen (plain) != len) {
        OPENSSL_cleanse (plain, len);
        free (plain);
        snprintf (err, err_size, "the stored value holds a NUL byte");
        return NULL;
    }
    return plain;
}

//  --------------------------------------------------------------------------
//  Selftest

void
aigw_secret_test (bool verbose)
{
    printf (" * aigw_secret: ");
    char err[256];
    const char *hex_a = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    //  The same 32 bytes in base64, padded and not, URL alphabet.
    const char *b64_b = "q83vASNFZ4mrze8BI0VniavN7wEjRWeJq83vASNFZ4k=";
    const char *b64_b_bare = "q83vASNFZ4mrze8BI0VniavN7wEjRWeJq83vASNFZ4k";

    //  Round trip, key ids derived and given.
    aigw_secret_t *a = aigw_secret_new_from (hex_a, NULL, err, sizeof err);
    assert (a && aigw_secret_ready (a));
    assert (strlen (aigw_secret_current_id (a)) == S_KID_DERIVED_HEX);
    char *sealed = aigw_secret_seal (a, "sk-secret-value", "row-1", err, sizeof err);
    assert (sealed && aigw_secret_is_sealed (sealed) && !strstr (sealed, "sk-secret"));
    char kid[AIGW_SECRET_KID_MAX + 1];
    assert (aigw_secret_key_id (sealed, kid, sizeof kid) == 0
            && strcmp (kid, aigw_secret_current_id (a)) == 0);
    char *plain = aigw_secret_open (a, sealed, "row-1", err, sizeof err);
    assert (plain && strcmp (plain, "sk-secret-value") == 0);
    free (plain);
    //  A fresh nonce each time: two seals of one secret differ.
    char *again = aigw_secret_seal (a, "sk-secret-value", "row-1", err, sizeof err);
    assert (again && strcmp (again, sealed) != 0);
    free (again);
    //  An empty secret seals too.
    char *empty = aigw_secret_seal (a, "", "row-1", err, sizeof err);
    plain = empty ? aigw_secret_open (a, empty, "row-1", err, sizeof err) : NULL;
    assert (plain && *plain == 0);
    free (plain);
    free (empty);

    //  Wrong associated data: another row's value does not open.
    assert (!aigw_secret_open (a, sealed, "row-2", err, sizeof err) && strstr (err, "verify"));

    //  Tampering: any flipped bit of the body fails.
    size_t head = strlen (AIGW_SECRET_PREFIX) + strlen (kid) + 1;
    for (size_t i = head; sealed[i] && sealed[i] != '='; i++) {
        char saved = sealed[i];
        sealed[i] = sealed[i] == 'A' ? 'B' : 'A';
        assert (!aigw_secret_open (a, sealed, "row-1", err, sizeof err));
        sealed[i] = saved;
    }
    char *cut = strdup (sealed);
    cut[strlen (cut) - 8] = 0;
    assert (!aigw_secret_open (a, cut, "row-1", err, sizeof err));
    free (cut);
    assert (!aigw_secret_open (a, "aigw:v1:", "row-1", err, sizeof err));
    assert (!aigw_secret_open (a, "aigw:v1:x:", "row-1", err, sizeof err));
    assert (!aigw_secret_open (a, "plain-text", "row-1", err, sizeof err));

    //  Unknown key id: named in the message, no key material.
    aigw_secret_t *b = aigw_secret_new_from (b64_b, NULL, err, sizeof err);
    assert (b && strcmp (aigw_secret_current_id (a), aigw_secret_current_id (b)) != 0);
    assert (!aigw_secret_open (b, sealed, "row-1", err, sizeof err) && strstr (err, kid)
            && strstr (err, "not configured"));
    //  Same id, other key: does not verify.
    aigw_secret_t *liar = aigw_secret_new_from (b64_b, NULL, err, sizeof err);
    char forged[256];
    const char *liar_id = liar ? aigw_secret_current_id (liar) : NULL;
    assert (liar_id);
    //  (Spelled out for gcc: with asserts compiled out it sees a NULL %s.)
    snprintf (forged, sizeof forged, "aigw:v1:%s:%s", liar_id ? liar_id : "", sealed + head);
    assert (!aigw_secret_open (liar, forged, "row-1", err, sizeof err));
    aigw_secret_destroy (&liar);

    //  Rotation: B current, A previous opens both, seals under B.
    char previous[160];
    snprintf (previous, sizeof previous, " %s ,", hex_a);
    aigw_secret_t *ring = aigw_secret_new_from (b64_b_bare, previous, err, sizeof err);
    assert (ring && strcmp (aigw_secret_current_id (ring), aigw_secret_current_id (b)) == 0);
    plain = aigw_secret_open (ring, sealed, "row-1", err, sizeof err);
    assert (plain && strcmp (plain, "sk-secret-value") == 0);
    char *resealed = aigw_secret_seal (ring, plain, "row-1", err, sizeof err);
    free (plain);
    assert (resealed && aigw_secret_key_id (resealed, kid, sizeof kid) == 0
            && strcmp (kid, aigw_secret_current_id (b)) == 0);
    plain = aigw_secret_open (b, resealed, "row-1", err, sizeof err);
    assert (plain && strcmp (plain, "sk-secret-value") == 0);
    free (plain);
    free (resealed);
    aigw_secret_destroy (&ring);

    //  Given ids.
    char given[160];
    snprintf (given, sizeof given, "k2025:%s", hex_a);
    aigw_secret_t *named = aigw_secret_new_from (given, NULL, err, sizeof err);
    assert (named && strcmp (aigw_secret_current_id (named), "k2025") == 0);
    char *sealed_named = aigw_secret_seal (named, "x", "r", err, sizeof err);
    assert (sealed_named && strncmp (sealed_named, "aigw:v1:k2025:", 14) == 0);
    free (sealed_named);
    aigw_secret_destroy (&named);

    //  Bad key formats: refused, the value never echoed.
    const char *bad[]
        = {"",
           "short",
           "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e",
           "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f00",
           "zz0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
           "q83vASNFZ4mrze8BI0VniavN7wEjRWeJq83vASNFZ4k==",
           "q83vASNFZ4mrze8BI0VniavN7wEjRWeJq83vASNFZ4",
           "q83vASNFZ4mrze8BI0VniavN7wEjRWeJq83vASNFZ4l",
           "bad id:q83vASNFZ4mrze8BI0VniavN7wEjRWeJq83vASNFZ4k",
           ":q83vASNFZ4mrze8BI0VniavN7wEjRWeJq83vASNFZ4k",
           "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:q83vASNFZ4mrze8BI0VniavN7wEjRWeJq83vASNFZ4k",
           NULL};
    for (int i = 0; bad[i]; i++) {
        char problem[256] = "";
        assert (s_check_key (bad[i], problem, sizeof problem) == -1 && *problem);
        assert (!*bad[i] || !strstr (problem, bad[i]));
        aigw_secret_t *none = aigw_secret_new_from (bad[i], NULL, err, sizeof err);
        assert (!*bad[i] || (!none && strstr (err, "secrets.key")));
        aigw_secret_destroy (&none);
    }
    char problem[256];
    assert (s_check_key (hex_a, problem, sizeof problem) == 0);
    snprintf (given, sizeof given, "%s %s", hex_a, b64_b);
    assert (s_check_key (given, problem, sizeof problem) == -1);
    assert (s_check_keys (given, problem, sizeof problem) == 0);
    snprintf (given, sizeof given, "%s,%s", hex_a, hex_a);
    assert (s_check_keys (given, problem, sizeof problem) == -1 && strstr (problem, "twice"));

    //  No key: nothing seals; an empty ring opens nothing.
    aigw_secret_t *empty_ring = aigw_secret_new_from (NULL, NULL, err, sizeof err);
    assert (empty_ring && !aigw_secret_ready (empty_ring) && !aigw_secret_current_id (empty_ring));
    assert (!aigw_secret_seal (empty_ring, "x", "r", err, sizeof err)
            && strstr (err, AIGW_SECRET_ENV));
    assert (!aigw_secret_open (empty_ring, sealed, "row-1", err, sizeof err));
    aigw_secret_destroy (&empty_ring);

    //  A key file: current first, older after, comments skipped; and the
    //  config's settings.
    char path[] = "/tmp/aigw-secret-test-XXXXXX";
    int fd = mkstemp (path);
    assert (fd >= 0);
    FILE *file = fdopen (fd, "w");
    fprintf (file, "# aigw keys\n%s\n\nold:%s\n", b64_b, hex_a);
    fclose (file);
    assert (s_check_key_file (path, problem, sizeof problem) == 0);
    //  (aigw_config_t is large: not on the stack)
    aigw_config_t *config = calloc (1, sizeof *config);
    assert (config);
    config->secret_key_file = path;
    aigw_secret_t *filed = aigw_secret_new (config, err, sizeof err);
    assert (filed && strcmp (aigw_secret_current_id (filed), aigw_secret_current_id (b)) == 0);
    char *old = aigw_secret_seal (a, "from-a", "r", err, sizeof err);
    //  "old:" renamed A's key: its values name the derived id, not "old".
    assert (old && !aigw_secret_open (filed, old, "r", err, sizeof err));
    free (old);
    aigw_secret_destroy (&filed);
    config->secret_key = (char *) hex_a;
    assert (!aigw_secret_new (config, err, sizeof err) && strstr (err, "both"));
    config->secret_key_file = NULL;
    config->secret_previous_keys = (char *) b64_b;
    filed = aigw_secret_new (config, err, sizeof err);
    free (config);
    assert (filed && aigw_secret_ready (filed));
    plain = aigw_secret_open (filed, sealed, "row-1", err, sizeof err);
    assert (plain && strcmp (plain, "sk-secret-value") == 0);
    free (plain);
    aigw_secret_destroy (&filed);
    file = fopen (path, "w");
    fprintf (file, "# no key\n");
    fclose (file);
    assert (s_check_key_file (path, problem, sizeof problem) == -1);
    unlink (path);
    assert (s_check_key_file (path, problem, sizeof problem) == -1 && strstr (problem, "read"));

    free (sealed);
    aigw_secret_destroy (&a);
    aigw_secret_destroy (&b);
    aigw_secret_destroy (&b);
    if (verbose)
        printf ("(keys, seal, open, tamper, rotate) ");
    printf ("OK\n");
}
