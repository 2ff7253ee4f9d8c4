/*  aigw_log: leveled logging to stderr, one line per event.
    Thread-safe (one write(2) per line). Never pass a secret to it. */
#ifndef AIGW_LOG_H_INCLUDED
#define AIGW_LOG_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    AIGW_LOG_ERROR = 0,
    AIGW_LOG_WARN = 1,
    AIGW_LOG_INFO = 2,
    AIGW_LOG_DEBUG = 3
} aigw_log_level_t;

//  Set the process-wide level; lines above it are dropped.
void aigw_log_set_level (aigw_log_level_t level);

//  Current level, so hot paths can skip formatting.
aigw_log_level_t aigw_log_level (void);

//  Parse "error", "warn", "info" or "debug". Returns 0, or -1 if unknown.
int aigw_log_level_parse (const char *name, aigw_log_level_t *level);

//  Write lines as JSON objects ({"ts", "level", "ident", "pid", "msg", ...})
//  rather than text: log_format json.
void aigw_log_set_json (bool json);

//  True when lines are JSON.
bool aigw_log_json (void);

//  Parse "text" or "json". Returns 0, or -1 if unknown.
int aigw_log_format_parse (const char *name, bool *json);

//  Set the name printed on every line (process role, e.g. "run", "actor/auth").
void aigw_log_set_ident (const char *ident);

//  Log one line at LEVEL.
void aigw_log (aigw_log_level_t level, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

//  Log one JSON line at LEVEL (JSON mode only; nothing in text mode) with
//  MSG and the members in FIELDS: a fragment such as "\"status\":200" that
//  the caller built with aigw_log_escape, or NULL.
void aigw_log_event (aigw_log_level_t level, const char *msg, const char *fields);

//  Append TEXT (NULL: null) to OUT[*LEN..SIZE) as a JSON string, quotes
//  included; control characters escaped, bytes >= 0x80 copied. Stops
//  short, still valid, when OUT is full. Returns 0, or -1 when cut.
int aigw_log_escape (char *out, size_t size, size_t *len, const char *text);

void aigw_log_test (bool verbose);

#define aigw_error(...) aigw_log (AIGW_LOG_ERROR, __VA_ARGS__)
#define aigw_warn(...)  aigw_log (AIGW_LOG_WARN, __VA_ARGS__)
#define aigw_info(...)  aigw_log (AIGW_LOG_INFO, __VA_ARGS__)
#define aigw_debug(...)                             \
    do {                                            \
        if (aigw_log_level () >= AIGW_LOG_DEBUG)    \
            aigw_log (AIGW_LOG_DEBUG, __VA_ARGS__); \
    } while (0)

#endif
