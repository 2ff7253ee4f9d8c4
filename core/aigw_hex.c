/*  aigw_hex: lowercase hexadecimal. */
#include "aigw_hex.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

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
aigw_hex_test (bool verbose)
{
    char out[9];
    const unsigned char bytes[] = {0x00, 0x9f, 0xa0, 0xff};
    aigw_hex_encode (bytes, sizeof bytes, out);
    assert (strcmp (out, "009fa0ff") == 0);
    aigw_hex_encode (bytes, 0, out);
    assert (out[0] == 0);
    assert (aigw_hex_digit ('0') == 0 && aigw_hex_digit ('9') == 9);
    assert (aigw_hex_digit ('a') == 10 && aigw_hex_digit ('F') == 15);
    assert (aigw_hex_digit ('g') == -1 && aigw_hex_digit (' ') == -1);
    if (verbose)
        printf ("hex: ok\n");
}
