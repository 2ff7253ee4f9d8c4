/*  aigw_secret: a keyring that seals secrets kept at rest (a provider's
    api_key in model_deployments) with AES-256-GCM.

    A sealed value is text that fits any column:

        aigw:v1:KID:BASE64 (12-byte nonce | ciphertext | 16-byte tag)

    KID names the key that sealed it, so keys can rotate: the current key
    seals, every key in the ring opens. Each value has its own random
    96-bit nonce, and the caller's associated data (the row's id) is bound
    in, so a value copied to another row does not open.

    Keys are 32 bytes, written as 64 hex digits or base64 (standard or URL
    alphabet, padding optional), optionally after "ID:". Without an ID the
    key's id is the first 8 hex digits of a SHA-256 over a label and the
    key: stable across restarts and hosts, and no help to an attacker.

    Settings (section "secrets", registered here):
        key            AIGW_SECRET_KEY            the current key
        key_file       AIGW_SECRET_KEY_FILE       a file: the current key on
                                                  its first line, older keys
                                                  on the next ones
        previous_keys  AIGW_SECRET_PREVIOUS_KEYS  older keys, separated by
                                                  commas or white space
    Keys never reach a log line or an error message. */
#ifndef AIGW_SECRET_H_INCLUDED
#define AIGW_SECRET_H_INCLUDED

#include "aigw_config.h"

#include <stdbool.h>
#include <stddef.h>

#define AIGW_SECRET_PREFIX      "aigw:v1:"  //  what every sealed value starts with
#define AIGW_SECRET_KEY_BYTES   32          //  AES-256
#define AIGW_SECRET_NONCE_BYTES 12          //  GCM's 96-bit nonce
#define AIGW_SECRET_TAG_BYTES   16          //  GCM's full tag
#define AIGW_SECRET_KID_MAX     32          //  longest key id, in characters
#define AIGW_SECRET_KEYS_MAX    16          //  keys in one ring, the current one included
#define AIGW_SECRET_PLAIN_MAX   65536       //  longest secret sealed or opened
#define AIGW_SECRET_FILE_MAX    65536       //  longest key file read

//  The environment variable operators set; named in messages.
#define AIGW_SECRET_ENV "AIGW_SECRET_KEY"

typedef struct _aigw_secret_t aigw_secret_t;

//  The ring that CONFIG's secrets settings describe. With no key set the
//  ring is empty (aigw_secret_ready is false): it seals nothing, and opens
//  nothing sealed. NULL with ERR on a bad key, an unreadable key file, a
//  repeated key id, or both secrets.key and secrets.key_file set. Caller
//  owns the result.
aigw_secret_t *aigw_secret_new (const aigw_config_t *config, char *err, size_t err_size);

//  The same from the texts themselves: CURRENT one key (or NULL), PREVIOUS
//  keys separated by commas or white space (or NULL).
aigw_secret_t *aigw_secret_new_from (const char *current, const char *previous, char *err,
                                     size_t err_size);

//  Destroy, wiping the keys; safe on NULL and twice.
void aigw_secret_destroy (aigw_secret_t **self_p);

//  True when the ring has a current key, so it can seal.
bool aigw_secret_ready (const aigw_secret_t *self);

//  The current key's id, or NULL when none.
const char *aigw_secret_current_id (const aigw_secret_t *self);

//  True when VALUE is a sealed value (it starts with AIGW_SECRET_PREFIX);
//  anything else is taken for a legacy plaintext.
bool aigw_secret_is_sealed (const char *value);

//  Write the key id of the sealed VALUE into KID. Returns 0, or -1 when
//  VALUE is not a well-formed sealed value.
int aigw_secret_key_id (const char *value, char *kid, size_t kid_size);

//  Seal PLAIN under the current key, binding AAD. Returns a new string
//  (caller frees; it holds nothing secret), or NULL with ERR (no key, too
//  long, out of memory).
char *aigw_secret_seal (aigw_secret_t *self, const char *plain, const char *aad, char *err,
                        size_t err_size);

//  Open the sealed VALUE with the key it names, checking AAD. Returns a new
//  string (caller wipes and frees it: aigw_config_string_free), or NULL
//  with ERR naming the key id when the key is not in the ring, or saying the
//  value does not verify (wrong key, wrong row, tampered).
char *aigw_secret_open (aigw_secret_t *self, const char *value, const char *aad, char *err,
                        size_t err_size);

void aigw_secret_test (bool verbose);

#endif
