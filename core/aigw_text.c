/*  aigw_text: UTF-8 length and strict integer parsing. */
#include "aigw_text.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Code points in valid UTF-8: every byte but a continuation byte starts one.
size_t
aigw_text_utf8_length (const char *text, size_t len)
{
    size_t count = 0;
    for (size_t i = 0; i < len; i++)
        if (((unsigned char) text[i] & 0xC0) != 0x80)
            count++;
    return count;
}

//  Code points in TEXT, or -1 when it is not valid UTF-8.
int64_t
aigw_text_utf8_check (const char *text)
{
    const unsigned char *p = (const unsigned char *) text;
    int64_t count = 0;
    while (*p) {
        uint32_t c = *p++;
        int extra;
        uint32_t min;
        if (c < 0x80) {
            extra = 0;
            min = 0;
        }
        else if ((c & 0xE0) == 0xC0) {
            extra = 1;
            min = 0x80;
            c &= 0x1F;
        }
        else if ((c & 0xF0) == 0xE0) {
            extra = 2;
            min = 0x800;
            c &= 0x0F;
        }
        else if ((c & 0xF8) == 0xF0) {
            extra = 3;
            min = 0x10000;
            c &= 0x07;
        }
        else
            return -1;
        for (int i = 0; i < extra; i++, p++) {
            if ((*p & 0xC0) != 0x80)
                return -1;  //  also stops at the NUL
            c = (c << 6) | (*p & 0x3F);
        }
        if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
            return -1;
        count++;
    }
    return count;
}

//  A decimal integer within MIN..MAX, or -1.
int
aigw_text_integer (const char *text, int64_t min, int64_t max, int64_t *value)
{
    size_t len = strlen (text);
    if (len == 0 || len > AIGW_TEXT_INT_DIGITS_MAX)
        return -1;
    int64_t result = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '9')
            return -1;
        result = result * 10 + (text[i] - '0');
    }
    if (result < min || result > max)
        return -1;
    *value = result;
    return 0;
}

bool
aigw_text_uuid_valid (const char *text)
{
    if (!text || strlen (text) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? text[i] != '-' : !isxdigit ((unsigned char) text[i]))
            return false;
    }
    return true;
}

//  True when the LEN characters at TEXT are lowercase hex; *NONZERO says
//  whether one differs from '0'.
static bool
s_lower_hex (const char *text, size_t len, bool *nonzero)
{
    *nonzero = false;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
        *nonzero = *nonzero || c != '0';
    }
    return true;
}

bool
aigw_text_traceparent (const char *text, char *trace_id, char *span_id, int *flags)
{
    bool trace_set, span_set, flags_set;
    if (!text || strlen (text) != 55 || strncmp (text, "00-", 3) != 0 || text[35] != '-'
        || text[52] != '-' || !s_lower_hex (text + 3, 32, &trace_set)
        || !s_lower_hex (text + 36, 16, &span_set) || !s_lower_hex (text + 53, 2, &flags_set)
        || !trace_set || !span_set)
        return false;
    if (trace_id) {
        memcpy (trace_id, text + 3, 32);
        trace_id[32] = 0;
    }
    if (span_id) {
        memcpy (span_id, text + 36, 16);
        span_id[16] = 0;
    }
    if (flags)
        *flags = (int) strtol (text + 53, NULL, 16);
    return true;
}

//  Read COUNT digits at *P into *VALUE; advances *P. Returns 0 or -1.
static int
s_time_digits (const char **p, int count, int *value)
{
    *value = 0;
    for (int i = 0; i < count; i++) {
        if (!isdigit ((unsigned char) (*p)[i]))
            return -1;
        *value = *value * 10 + ((*p)[i] - '0');
    }
    *p += count;
    return 0;
}

//  Days from 1970-01-01 to Y-M-D in the proleptic Gregorian calendar
//  (Howard Hinnant's days_from_civil).
static int64_t
s_days_from_civil (int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int
s_days_in_month (int y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

int
aigw_text_time_parse (const char *text, int64_t *ms)
{
    if (!text)
        return -1;
    const char *p = text;
    int year, month, day, hour, minute, second;
    if (s_time_digits (&p, 4, &year) || *p++ != '-' || s_time_digits (&p, 2, &month) || *p++ != '-'
        || s_time_digits (&p, 2, &day))
        return -1;
    if (*p != 'T' && *p != 't')
        return -1;
    p++;
    if (s_time_digits (&p, 2, &hour) || *p++ != ':' || s_time_digits (&p, 2, &minute) || *p++ != ':'
        || s_time_digits (&p, 2, &second))
        return -1;
    if (year < 1 || month < 1 || month > 12 || day < 1 || day > s_days_in_month (year, month)
        || hour > 23 || minute > 59 || second > 59)
        return -1;
    int millis = 0;
    if (*p == '.') {
        p++;
        int digits = 0;
        while (isdigit ((unsigned char) *p)) {
            if (digits < 3)
                millis = millis * 10 + (*p - '0');
            digits++;
            p++;
        }
        if (digits == 0 || digits > 9)
            return -1;
        for (; digits < 3; digits++)
            millis *= 10;
    }
    int offset = 0;  //  minutes east of UTC
    if (*p == 'Z' || *p == 'z')
        p++;
    else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1, oh, om;
        if (s_time_digits (&p, 2, &oh) || *p++ != ':' || s_time_digits (&p, 2, &om) || oh > 23
            || om > 59)
            return -1;
        offset = sign * (oh * 60 + om);
    }
    else
        return -1;
    if (*p)
        return -1;
    if (ms) {
        int64_t seconds = s_days_from_civil (year, month, day) * 86400 + hour * 3600 + minute * 60
                          + second - (int64_t) offset * 60;
        *ms = seconds * 1000 + millis;
    }
    return 0;
}

int
aigw_text_append (char **buf, size_t *len, size_t *cap, const char *data, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t grown = *cap ? *cap : 256;
        while (grown < *len + n + 1)
            grown *= 2;
        char *bigger = realloc (*buf, grown);
        if (!bigger)
            return -1;
        *buf = bigger;
        *cap = grown;
    }
    if (n)
        memcpy (*buf + *len, data, n);
    *len += n;
    (*buf)[*len] = 0;
    return 0;
}

void
aigw_text_test (bool verbose)
{
    {
        char *buf = NULL;
        size_t len = 0, cap = 0;
        for (int i = 0; i < 100; i++)
            assert (aigw_text_append (&buf, &len, &cap, "abcdefghij", 10) == 0);
        assert (aigw_text_append (&buf, &len, &cap, "", 0) == 0);
        assert (len == 1000 && cap >= 1001 && buf[1000] == 0
                && memcmp (buf + 990, "abcdefghij", 10) == 0);
        free (buf);
    }
    assert (aigw_text_uuid_valid ("3f0c2b1a-0000-4000-8000-00000000abcd"));
    assert (!aigw_text_uuid_valid ("3f0c2b1a00000-4000-8000-00000000abcd"));
    assert (!aigw_text_uuid_valid ("3f0c2b1a-0000-4000-8000-00000000abcg"));
    assert (!aigw_text_uuid_valid ("") && !aigw_text_uuid_valid (NULL));

    //  RFC 3339 times
    int64_t ms;
    assert (aigw_text_time_parse ("1970-01-01T00:00:00Z", &ms) == 0 && ms == 0);
    assert (aigw_text_time_parse ("2030-01-31T12:00:00.5+01:00", &ms) == 0);
    assert (ms == 1896087600500LL);
    assert (aigw_text_time_parse ("2024-02-29T23:59:59.123456789z", &ms) == 0);
    assert (aigw_text_time_parse ("2023-02-29T00:00:00Z", NULL) == -1);
    assert (aigw_text_time_parse ("2030-01-31 12:00:00Z", NULL) == -1);
    assert (aigw_text_time_parse ("2030-01-31T12:00:00", NULL) == -1);
    assert (aigw_text_time_parse ("2030-01-31T24:00:00Z", NULL) == -1);
    assert (aigw_text_time_parse ("2030-01-31T12:00:00.Z", NULL) == -1);
    assert (aigw_text_time_parse ("0000-01-01T00:00:00Z", NULL) == -1);
    char trace_id[33], span_id[17];
    int flags;
    const char *given = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    assert (aigw_text_traceparent (given, trace_id, span_id, &flags));
    assert (strcmp (trace_id, "4bf92f3577b34da6a3ce929d0e0e4736") == 0);
    assert (strcmp (span_id, "00f067aa0ba902b7") == 0 && flags == 1);
    const char *bad[] = {NULL,
                         "",
                         "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                         "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                         "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                         "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                         "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
                         "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
                         "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0F",
                         "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert (!aigw_text_traceparent (bad[i], NULL, NULL, NULL));
    //  "héllo" is 5 characters in 6 bytes; "€" 1 in 3; "😀" 1 in 4.
    const char *mixed = "h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80";
    assert (aigw_text_utf8_length (mixed, strlen (mixed)) == 9);
    assert (aigw_text_utf8_check (mixed) == 9);
    assert (aigw_text_utf8_length ("", 0) == 0);
    assert (aigw_text_utf8_check ("") == 0);
    //  A NUL inside LEN counts as one character.
    assert (aigw_text_utf8_length ("a\0b", 3) == 3);
    //  Invalid: a lone continuation, an overlong '/', a surrogate, past
    //  U+10FFFF, a truncated sequence.
    assert (aigw_text_utf8_check ("\x80") == -1);
    assert (aigw_text_utf8_check ("\xC0\xAF") == -1);
    assert (aigw_text_utf8_check ("\xED\xA0\x80") == -1);
    assert (aigw_text_utf8_check ("\xF4\x90\x80\x80") == -1);
    assert (aigw_text_utf8_check ("ab\xE2\x82") == -1);

    int64_t value = -7;
    assert (aigw_text_integer ("0", 0, 10, &value) == 0 && value == 0);
    assert (aigw_text_integer ("65535", 1, 65535, &value) == 0 && value == 65535);
    assert (aigw_text_integer ("007", 0, 10, &value) == 0 && value == 7);
    assert (aigw_text_integer ("999999999999999999", 0, INT64_MAX, &value) == 0);
    value = -7;
    assert (aigw_text_integer ("", 0, 10, &value) == -1);
    assert (aigw_text_integer ("-1", -5, 10, &value) == -1);
    assert (aigw_text_integer ("+1", 0, 10, &value) == -1);
    assert (aigw_text_integer ("1.5", 0, 10, &value) == -1);
    assert (aigw_text_integer (" 1", 0, 10, &value) == -1);
    assert (aigw_text_integer ("11", 0, 10, &value) == -1);
    assert (aigw_text_integer ("0", 1, 10, &value) == -1);
    assert (aigw_text_integer ("1000000000000000000", 0, INT64_MAX, &value) == -1);
    assert (value == -7);
    if (verbose)
        printf ("text: ok\n");
}
