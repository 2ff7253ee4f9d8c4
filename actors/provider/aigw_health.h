/*  aigw_health: the router's health, merged across every provider process.
    Each provider process reports its deployments' figures to the broker on
    a schedule; this class asks the broker for the latest reports and merges
    them into the document GET /api/v1/admin/router/health answers, and
    into per-deployment Prometheus metrics. */
#ifndef AIGW_HEALTH_H_INCLUDED
#define AIGW_HEALTH_H_INCLUDED

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

//  {"deployments": [...]} merged from every live provider process, asking
//  the broker at ENDPOINT and waiting until DEADLINE_MS (Unix ms). NULL
//  with a reason in ERR when the broker did not answer. Caller owns it.
json_t *aigw_health_document (const char *endpoint, int64_t deadline_ms, char *err,
                              size_t err_size);

//  Merge the broker's REPORTS answer (REPORTS, LEN bytes: a JSON array of
//  {"worker","service","age_ms","report":{"deployments":[...]}}) into the
//  health document: one entry per (model, deployment) with in-flight and
//  counters summed, the error rate over every instance's window, latency
//  and TTFT percentiles over every instance's samples, the worst circuit
//  (and "circuits": instances per state), and a status that is down only
//  when every instance is down. Malformed input gives an empty list.
json_t *aigw_health_merge (const char *reports, size_t len);

//  The health DOCUMENT as Prometheus text (per-deployment metrics). Caller
//  frees; NULL when out of memory.
char *aigw_health_prometheus (json_t *document);

void aigw_health_test (bool verbose);

#endif
