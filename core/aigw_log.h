/*  aigw_log: leveled logging to stderr, one line per event.
    Thread-safe (one write(2) per line). Never pass a secret to it. */
#ifndef AIGW_LOG_H_INCLUDED
#define AIGW_LOG_H_INCLUDED

#include <stdbool.h>

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

//  Set the name printed on every line (process role, e.g. "run", "actor/auth").
void aigw_log_set_ident (const char *ident);

//  Log one line at LEVEL.
void aigw_log (aigw_log_level_t level, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

#define aigw_error(...) aigw_log (AIGW_LOG_ERROR, __VA_ARGS__)
#define aigw_warn(...)  aigw_log (AIGW_LOG_WARN, __VA_ARGS__)
#define aigw_info(...)  aigw_log (AIGW_LOG_INFO, __VA_ARGS__)
#define aigw_debug(...)                             \
    do {                                            \
        if (aigw_log_level () >= AIGW_LOG_DEBUG)    \
            aigw_log (AIGW_LOG_DEBUG, __VA_ARGS__); \
    } while (0)

#endif
