/*  aigw_keys: API key secrets.

    A secret is "sk-aigw-" followed by 48 lowercase hex digits: 24 bytes
    (192 bits) from OpenSSL's CSPRNG. Only its SHA-256 is stored
    (api_keys.secret_sha256), with a prefix, the first 12 characters, shown
    to humans so they can tell keys apart. A fast hash is the right one for
    192 random bits: no dictionary to try. */
#ifndef AIGW_KEYS_H_INCLUDED
#define AIGW_KEYS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

//  What every secret starts with.
#define AIGW_KEY_SCHEME "sk-aigw-"
//  Random bytes in a secret.
#define AIGW_KEY_RANDOM_BYTES 24
//  Characters in a secret: the scheme and two hex digits per random byte.
#define AIGW_KEY_SECRET_LEN (sizeof AIGW_KEY_SCHEME - 1 + 2 * AIGW_KEY_RANDOM_BYTES)
//  Characters of the prefix shown to humans.
#define AIGW_KEY_PREFIX_LEN 12
//  Bytes of a secret's hash.
#define AIGW_KEY_HASH_LEN 32
//  Characters of a hash in hex.
#define AIGW_KEY_HASH_HEX_LEN (2 * AIGW_KEY_HASH_LEN)

//  Generate a new secret into SECRET and its prefix into PREFIX, both NUL
//  terminated. Returns 0, or -1 (both emptied) if the CSPRNG fails. The
//  caller wipes SECRET (OPENSSL_cleanse) once it is shown and hashed.
int aigw_keys_generate (char secret[AIGW_KEY_SECRET_LEN + 1], char prefix[AIGW_KEY_PREFIX_LEN + 1]);

//  SHA-256 of SECRET into OUT (what api_keys.secret_sha256 holds).
void aigw_keys_hash (const char *secret, unsigned char out[AIGW_KEY_HASH_LEN]);

//  SHA-256 of SECRET as 64 lowercase hex digits into OUT.
void aigw_keys_hash_hex (const char *secret, char out[AIGW_KEY_HASH_HEX_LEN + 1]);

//  True if SECRET has the shape of a generated secret (scheme, 48 lowercase
//  hex digits). Other keys (config, master) may have any shape.
bool aigw_keys_well_formed (const char *secret);

//  Selftest.
void aigw_keys_test (bool verbose);

#endif
