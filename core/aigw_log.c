/*  aigw_log: leveled logging to stderr. */
#include "aigw_log.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define AIGW_LOG_LINE_MAX 2048

static volatile int s_level = AIGW_LOG_INFO;
static volatile bool s_json = false;
static char s_ident[32] = "aigw";

static const char *s_names[] = {"error", "warn", "info", "debug"};

void
aigw_log_set_level (aigw_log_level_t level)
{
    s_level = level;
}

aigw_log_level_t
aigw_log_level (void)
{
    return (aigw_log_level_t) s_level;
}

int
aigw_log_level_parse (const char *name, aigw_log_level_t *level)
{
    for (int i = 0; i < 4; i++)
        if (name && strcmp (name, s_names[i]) == 0) {
            *level = (aigw_log_level_t) i;
            return 0;
        }
    return -1;
}

void
aigw_log_set_json (bool json)
{
    s_json = json;
}

bool
aigw_log_json (void)
{
    return s_json;
}

int
aigw_log_format_parse (const char *name, bool *json)
{
    if (name && (strcmp (name, "text") == 0 || strcmp (name, "json") == 0)) {
        *json = strcmp (name, "json") == 0;
        return 0;
    }
    return -1;
}

int
aigw_log_escape (char *out, size_t size, size_t *len, const char *text)
{
    static const char hex[] = "0123456789abcdef";
    //  Room kept for the closing quote and a NUL.
    if (*len + 3 > size)
        return -1;
    if (!text) {
        if (*len + 5 > size)
            return -1;
        memcpy (out + *len, "null", 5);
        *len += 4;
        return 0;
    }
    size_t at = *len;
    out[at++] = '"';
    int rc = 0;
    for (const unsigned char *p = (const unsigned char *) text; *p; p++) {
        char buf[6];
        size_t n = 0;
        if (*p == '"' || *p == '\\') {
            buf[n++] = '\\';
            buf[n++] = (char) *p;
        }
        else if (*p < 0x20) {
            memcpy (buf, "\\u00", 4);
            buf[4] = hex[*p >> 4];
            buf[5] = hex[*p & 15];
            n = 6;
        }
        else
            buf[n++] = (char) *p;
        if (at + n + 2 > size) {
            rc = -1;
            break;
        }
        memcpy (out + at, buf, n);
        at += n;
    }
    out[at++] = '"';
    out[at] = 0;
    *len = at;
    return rc;
}

void
aigw_log_set_ident (const char *ident)
{
    snprintf (s_ident, sizeof s_ident, "%s", ident);
}

//  The line's head into LINE: the text prefix, or the JSON object's first
//  members. Returns its length.
static int
s_head (char *line, size_t size, aigw_log_level_t level)
{
    struct timeval tv;
    gettimeofday (&tv, NULL);
    struct tm tm;
    gmtime_r (&tv.tv_sec, &tm);
    return snprintf (line, size,
                     s_json ? "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\",\"level\":\"%s\","
                              "\"ident\":\"%s\",\"pid\":%d,\"msg\":"
                            : "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %s %s[%d] ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (int) (tv.tv_usec / 1000), s_names[level], s_ident, (int) getpid ());
}

//  Close LINE (LEN used) and write it once, so lines from many threads
//  never interleave.
static void
s_write (char *line, size_t len, size_t size)
{
    if (s_json) {
        if (len > size - 3)
            len = size - 3;
        line[len++] = '}';
    }
    if (len > size - 2)
        len = size - 2;
    line[len++] = '\n';
    if (write (STDERR_FILENO, line, len) < 0) {
        //  Nothing sensible to do when stderr is gone.
    }
}

void
aigw_log (aigw_log_level_t level, const char *format, ...)
{
    if ((int) level > s_level)
        return;
    char line[AIGW_LOG_LINE_MAX];
    int head = s_head (line, sizeof line, level);
    char text[AIGW_LOG_LINE_MAX];
    char *body = s_json ? text : line + head;
    size_t room = s_json ? sizeof text : sizeof line - head - 1;
    va_list args;
    va_start (args, format);
    int n = vsnprintf (body, room, format, args);
    va_end (args);
    if (n < 0)
        n = 0;
    if ((size_t) n >= room)
        n = (int) room - 1;
    size_t len = (size_t) head;
    if (s_json)
        aigw_log_escape (line, sizeof line - 2, &len, text);
    else
        len += (size_t) n;
    s_write (line, len, sizeof line);
}

void
aigw_log_event (aigw_log_level_t level, const char *msg, const char *fields)
{
    if (!s_json || (int) level > s_level)
        return;
    char line[AIGW_LOG_LINE_MAX];
    size_t len = (size_t) s_head (line, sizeof line, level);
    aigw_log_escape (line, sizeof line - 2, &len, msg);
    if (fields && *fields) {
        size_t n = strlen (fields);
        //  A fragment that does not fit is left out whole: half of one
        //  would not parse.
        if (len + 1 + n < sizeof line - 3) {
            line[len++] = ',';
            memcpy (line + len, fields, n);
            len += n;
        }
    }
    s_write (line, len, sizeof line);
}

void
aigw_log_test (bool verbose)
{
    (void) verbose;
    char out[64];
    size_t len = 0;
    assert (aigw_log_escape (out, sizeof out, &len, "a\"b\\c\n\x01\xc3\xa9") == 0);
    assert (strcmp (out, "\"a\\\"b\\\\c\\u000a\\u0001\xc3\xa9\"") == 0);
    assert (len == strlen (out));
    len = 0;
    assert (aigw_log_escape (out, sizeof out, &len, NULL) == 0 && strcmp (out, "null") == 0);
    //  Cut short, still a closed string.
    char small[8];
    len = 0;
    assert (aigw_log_escape (small, sizeof small, &len, "abcdefghij") == -1);
    assert (len < sizeof small && small[0] == '"' && small[len - 1] == '"' && small[len] == 0);
    bool json;
    assert (aigw_log_format_parse ("json", &json) == 0 && json);
    assert (aigw_log_format_parse ("text", &json) == 0 && !json);
    assert (aigw_log_format_parse ("xml", &json) == -1);
}
