/*  aigw_log: leveled logging to stderr. */
#include "aigw_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define AIGW_LOG_LINE_MAX 2048

static volatile int s_level = AIGW_LOG_INFO;
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
aigw_log_set_ident (const char *ident)
{
    snprintf (s_ident, sizeof s_ident, "%s", ident);
}

//  Formats into a stack buffer and writes once, so lines from many threads
//  never interleave.
void
aigw_log (aigw_log_level_t level, const char *format, ...)
{
    if ((int) level > s_level)
        return;
    char line[AIGW_LOG_LINE_MAX];
    struct timeval tv;
    gettimeofday (&tv, NULL);
    struct tm tm;
    gmtime_r (&tv.tv_sec, &tm);
    int len
        = snprintf (line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %s %s[%d] ",
                    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                    (int) (tv.tv_usec / 1000), s_names[level], s_ident, (int) getpid ());
    va_list args;
    va_start (args, format);
    int body = vsnprintf (line + len, sizeof line - len - 1, format, args);
    va_end (args);
    if (body < 0)
        body = 0;
    len += body;
    if (len > (int) sizeof line - 2)
        len = sizeof line - 2;
    line[len++] = '\n';
    if (write (STDERR_FILENO, line, len) < 0) {
        //  Nothing sensible to do when stderr is gone.
    }
}
