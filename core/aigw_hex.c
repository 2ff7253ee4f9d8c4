/*  aigw_hex: lowercase hexadecimal. */
#include "aigw_hex.h"

#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

void
aigw_hex_encode (const unsigned char *bytes, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * len] = 0;
}

int
aigw_hex_digit (char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

void
aigw_hex_random_bytes (size_t len, unsigned char *out)
{
    //  xorshift128+: fast and plenty for ids that must be unique, not secret.
    static __thread uint64_t state[2];
    if (!state[0] && !state[1]) {
        if (getrandom (state, sizeof state, 0) != sizeof state || (!state[0] && !state[1])) {
            struct timespec ts;
            clock_gettime (CLOCK_MONOTONIC, &ts);
            state[0] = ((uint64_t) ts.tv_sec << 32) ^ (uint64_t) ts.tv_nsec ^ (uint64_t) getpid ();
            state[1] = ~state[0] | 1;
        }
    }
    bool zero = true;
    while (zero) {
        for (size_t at = 0; at < len; at += 8) {
            uint64_t x = state[0], y = state[1];
            state[0] = y;
            x ^= x << 23;
            state[1] = x ^ y ^ (x >> 17) ^ (y >> 26);
            uint64_t v = state[1] + y;
            memcpy (out + at, &v, len - at < 8 ? len - at : 8);
        }
        for (size_t i = 0; i < len && zero; i++)
            zero = out[i] == 0;
        zero = zero && len > 0;
    }
}

void
aigw_hex_random (size_t len, char *out)
{
    unsigned char bytes[64];
    assert (len <= sizeof bytes);
    aigw_hex_random_bytes (len, bytes);
    aigw_hex_encode (bytes, len, out);
}

char *
aigw_hex_id (const char *prefix, size_t len)
{
    size_t prefix_len = strlen (prefix);
    char *id = malloc (prefix_len + 2 * len + 1);
    if (id) {
        memcpy (id, prefix, prefix_len);
        aigw_hex_random (len, id + prefix_len);
    }
    return id;
}

void
aigw_hex_test (bool verbose)
{
    char out[9];
    const unsigned char bytes[] = {0x00, 0x9f, 0xa0, 0xff};
    char *id = aigw_hex_id ("resp_", 12), *other = aigw_hex_id ("resp_", 12);
    assert (id && other && strlen (id) == 29 && strncmp (id, "resp_", 5) == 0);
    assert (strcmp (id, other) != 0);
    free (id);
    free (other);
    aigw_hex_encode (bytes, sizeof bytes, out);
    assert (strcmp (out, "009fa0ff") == 0);
    //  Random ids: the right length, hex, and not the same twice.
    char a[33], b[33];
    aigw_hex_random (16, a);
    aigw_hex_random (16, b);
    assert (strlen (a) == 32 && strspn (a, "0123456789abcdef") == 32 && strcmp (a, b) != 0);
    unsigned char odd[5] = {0};
    aigw_hex_random_bytes (5, odd);
    assert (odd[0] || odd[1] || odd[2] || odd[3] || odd[4]);
    aigw_hex_encode (bytes, 0, out);
    assert (out[0] == 0);
    assert (aigw_hex_digit ('0') == 0 && aigw_hex_digit ('9') == 9);
    assert (aigw_hex_digit ('a') == 10 && aigw_hex_digit ('F') == 15);
    assert (aigw_hex_digit ('g') == -1 && aigw_hex_digit (' ') == -1);
    if (verbose)
        printf ("hex: ok\n");
}
