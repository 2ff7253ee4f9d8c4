/*  aigw_keys: API key secrets (see aigw_keys.h). */
#include "aigw_keys.h"
#include "aigw_hex.h"
#include "aigw_config.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

//  Digits a generated secret may hold (lowercase only).
static const char s_hex_digits[] = "0123456789abcdef";

//  Generate a new secret and its prefix. Returns 0, or -1 with both empty.
int
aigw_keys_generate (char secret[AIGW_KEY_SECRET_LEN + 1], char prefix[AIGW_KEY_PREFIX_LEN + 1])
{
    assert (secret && prefix);
    unsigned char random[AIGW_KEY_RANDOM_BYTES];
    secret[0] = prefix[0] = 0;
    if (RAND_bytes (random, sizeof random) != 1) {
        OPENSSL_cleanse (random, sizeof random);
        return -1;
    }
    size_t scheme = strlen (AIGW_KEY_SCHEME);
    memcpy (secret, AIGW_KEY_SCHEME, scheme);
    aigw_hex_encode (random, sizeof random, secret + scheme);
    OPENSSL_cleanse (random, sizeof random);
    memcpy (prefix, secret, AIGW_KEY_PREFIX_LEN);
    prefix[AIGW_KEY_PREFIX_LEN] = 0;
    return 0;
}

//  SHA-256 of SECRET into OUT.
void
aigw_keys_hash (const char *secret, unsigned char out[AIGW_KEY_HASH_LEN])
{
    assert (secret);
    aigw_config_hash_secret (secret, out);
}

//  SHA-256 of SECRET as lowercase hex into OUT.
void
aigw_keys_hash_hex (const char *secret, char out[AIGW_KEY_HASH_HEX_LEN + 1])
{
    unsigned char hash[AIGW_KEY_HASH_LEN];
    aigw_keys_hash (secret, hash);
    aigw_hex_encode (hash, sizeof hash, out);
}

//  True if SECRET looks like a generated secret.
bool
aigw_keys_well_formed (const char *secret)
{
    if (!secret || strlen (secret) != AIGW_KEY_SECRET_LEN
        || strncmp (secret, AIGW_KEY_SCHEME, strlen (AIGW_KEY_SCHEME)) != 0)
        return false;
    for (const char *c = secret + strlen (AIGW_KEY_SCHEME); *c; c++)
        if (!strchr (s_hex_digits, *c))
            return false;
    return true;
}

//  How many secrets the selftest draws.
#define S_TEST_DRAWS 1000

//  Selftest: shape, prefix, uniqueness, hash.
void
aigw_keys_test (bool verbose)
{
    assert (AIGW_KEY_SECRET_LEN == 56);
    char secret[AIGW_KEY_SECRET_LEN + 1];
    char prefix[AIGW_KEY_PREFIX_LEN + 1];
    char first[AIGW_KEY_SECRET_LEN + 1];
    int seen[2 * AIGW_KEY_RANDOM_BYTES][16];
    memset (seen, 0, sizeof seen);
    for (int i = 0; i < S_TEST_DRAWS; i++) {
        assert (aigw_keys_generate (secret, prefix) == 0);
        assert (strlen (secret) == AIGW_KEY_SECRET_LEN);
        assert (strncmp (secret, "sk-aigw-", 8) == 0);
        assert (strlen (prefix) == AIGW_KEY_PREFIX_LEN);
        assert (strncmp (secret, prefix, AIGW_KEY_PREFIX_LEN) == 0);
        assert (aigw_keys_well_formed (secret));
        for (int d = 0; d < 2 * AIGW_KEY_RANDOM_BYTES; d++) {
            const char *digit = strchr (s_hex_digits, secret[8 + d]);
            assert (digit && *digit);
            seen[d][digit - s_hex_digits]++;
        }
        if (i == 0)
            memcpy (first, secret, sizeof first);
        else
            assert (strcmp (first, secret) != 0);
    }
    //  Every digit value turns up in every position: the hex is not stuck.
    for (int d = 0; d < 2 * AIGW_KEY_RANDOM_BYTES; d++)
        for (int v = 0; v < 16; v++)
            assert (seen[d][v] > 0);
    if (verbose)
        printf ("\n    e.g. prefix %s", prefix);

    //  The hash is SHA-256 of the whole secret, as aigw_config hashes.
    unsigned char hash[AIGW_KEY_HASH_LEN];
    unsigned char expect[AIGW_KEY_HASH_LEN];
    aigw_keys_hash (secret, hash);
    aigw_config_hash_secret (secret, expect);
    assert (memcmp (hash, expect, sizeof hash) == 0);
    char hex[AIGW_KEY_HASH_HEX_LEN + 1];
    aigw_keys_hash_hex ("abc", hex);
    assert (strcmp (hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);

    //  Shapes that are not generated secrets.
    assert (!aigw_keys_well_formed (NULL));
    assert (!aigw_keys_well_formed (""));
    assert (!aigw_keys_well_formed ("sk-aigw-"));
    secret[AIGW_KEY_SECRET_LEN - 1] = 'G';
    assert (!aigw_keys_well_formed (secret));
    secret[AIGW_KEY_SECRET_LEN - 1] = 'A';
    assert (!aigw_keys_well_formed (secret));
    secret[AIGW_KEY_SECRET_LEN - 1] = '0';
    assert (aigw_keys_well_formed (secret));
    secret[0] = 'p';
    assert (!aigw_keys_well_formed (secret));
    OPENSSL_cleanse (secret, sizeof secret);
    OPENSSL_cleanse (first, sizeof first);
}
