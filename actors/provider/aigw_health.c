/*  aigw_health: router health merged across provider processes. */
#include "aigw_health.h"
#include "aigw_client.h"
#include "aigw_router.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Severity of a circuit state name, for "the worst of".
static int
s_circuit_rank (const char *state)
{
    if (state && strcmp (state, "open") == 0)
        return 2;
    if (state && strcmp (state, "half_open") == 0)
        return 1;
    return 0;
}

//  Integer field NAME of OBJ, 0 when missing.
static json_int_t
s_int (json_t *obj, const char *name)
{
    json_t *v = json_object_get (obj, name);
    return json_is_integer (v) ? json_integer_value (v) : 0;
}

//  The nearest-rank percentile PCT of the integers in LIST, or null.
static json_t *
s_percentile (json_t *list, double pct)
{
    size_t n = json_array_size (list);
    int64_t *values = n ? malloc (n * sizeof *values) : NULL;
    if (!values)
        return json_null ();
    for (size_t i = 0; i < n; i++)
        values[i] = (int64_t) json_integer_value (json_array_get (list, i));
    int64_t v = aigw_router_nearest_rank (values, n, pct);
    free (values);
    return json_integer (v);
}

//  Fold one instance's deployment ITEM into the merged entry ACC.
static void
s_fold (json_t *acc, json_t *item)
{
    json_object_set_new (acc, "instances", json_integer (s_int (acc, "instances") + 1));
    static const char *const sums[]
        = {"in_flight", "window_total", "window_failed", "requests_total", "failures_total"};
    for (size_t i = 0; i < sizeof sums / sizeof sums[0]; i++)
        json_object_set_new (acc, sums[i],
                             json_integer (s_int (acc, sums[i]) + s_int (item, sums[i])));
    const char *circuit = json_string_value (json_object_get (item, "circuit"));
    json_t *circuits = json_object_get (acc, "circuits");
    const char *name = circuit ? circuit : "closed";
    json_object_set_new (circuits, name, json_integer (s_int (circuits, name) + 1));
    if (s_circuit_rank (circuit)
        > s_circuit_rank (json_string_value (json_object_get (acc, "circuit"))))
        json_object_set_new (acc, "circuit", json_string (name));
    const char *status = json_string_value (json_object_get (item, "status"));
    json_t *statuses = json_object_get (acc, "_statuses");
    json_array_append_new (statuses, json_string (status ? status : "healthy"));
    const char *error = json_string_value (json_object_get (item, "last_error"));
    if (error && *error)
        json_object_set_new (acc, "last_error", json_string (error));
    static const char *const lists[] = {"latency_samples", "ttft_samples"};
    for (size_t i = 0; i < 2; i++) {
        json_t *from = json_object_get (item, lists[i]);
        json_t *into = json_object_get (acc, lists[i]);
        size_t k;
        json_t *v;
        json_array_foreach (from, k, v)
            if (json_is_integer (v))
                json_array_append (into, v);
    }
}

//  Turn the folded figures of ACC into the published fields.
static void
s_finish (json_t *acc)
{
    json_int_t total = s_int (acc, "window_total");
    json_int_t failed = s_int (acc, "window_failed");
    double rate = total ? (double) failed / (double) total : 0.0;
    json_object_set_new (acc, "error_rate", json_real (rate));
    json_t *lat = json_object_get (acc, "latency_samples");
    json_t *ttft = json_object_get (acc, "ttft_samples");
    json_object_set_new (
        acc, "latency_ms",
        json_pack ("{s:o,s:o}", "p50", s_percentile (lat, 50), "p95", s_percentile (lat, 95)));
    json_object_set_new (
        acc, "ttft_ms",
        json_pack ("{s:o,s:o}", "p50", s_percentile (ttft, 50), "p95", s_percentile (ttft, 95)));
    //  Down only when every instance is down; degraded when any is not
    //  healthy or the merged error rate is high.
    json_t *statuses = json_object_get (acc, "_statuses");
    size_t i, down = 0, unwell = 0;
    json_t *s;
    json_array_foreach (statuses, i, s) {
        const char *name = json_string_value (s);
        if (strcmp (name, "healthy") != 0)
            unwell++;
        if (strcmp (name, "down") == 0)
            down++;
    }
    const char *status = "healthy";
    if (down && down == json_array_size (statuses))
        status = "down";
    else if (unwell || (total >= AIGW_ROUTER_DEGRADED_MIN && rate >= AIGW_ROUTER_DEGRADED_ERROR))
        status = "degraded";
    json_object_set_new (acc, "status", json_string (status));
    json_object_del (acc, "_statuses");
    json_object_del (acc, "latency_samples");
    json_object_del (acc, "ttft_samples");
    json_object_del (acc, "window_total");
    json_object_del (acc, "window_failed");
}

json_t *
aigw_health_merge (const char *reports, size_t len)
{
    json_t *list = json_loadb (reports ? reports : "", len, 0, NULL);
    json_t *merged = json_array ();
    json_t *index = json_object ();  //  "model\nid" -> entry in merged
    size_t i, j;
    json_t *worker, *item;
    json_array_foreach (list, i, worker) {
        json_t *deployments = json_object_get (json_object_get (worker, "report"), "deployments");
        json_array_foreach (deployments, j, item) {
            const char *id = json_string_value (json_object_get (item, "id"));
            const char *model = json_string_value (json_object_get (item, "model"));
            const char *provider = json_string_value (json_object_get (item, "provider"));
            if (!id || !model)
                continue;
            char *key = NULL;
            if (asprintf (&key, "%s\n%s", model, id) < 0)
                continue;
            json_t *acc = json_object_get (index, key);
            if (!acc) {
                acc = json_pack ("{s:s,s:s,s:s,s:s,s:{},s:[],s:[],s:[],s:s}", "id", id, "model",
                                 model, "provider", provider ? provider : "", "circuit", "closed",
                                 "circuits", "_statuses", "latency_samples", "ttft_samples",
                                 "last_error", "");
                json_array_append_new (merged, acc);
                json_object_set (index, key, acc);
            }
            free (key);
            s_fold (acc, item);
        }
    }
    json_array_foreach (merged, i, item)
        s_finish (item);
    json_decref (index);
    json_decref (list);
    return json_pack ("{s:o}", "deployments", merged);
}

json_t *
aigw_health_document (const char *endpoint, int64_t deadline_ms, char *err, size_t err_size)
{
    char *reports = aigw_client_reports_once (endpoint, "provider", deadline_ms, err, err_size);
    if (!reports)
        return NULL;
    json_t *doc = aigw_health_merge (reports, strlen (reports));
    free (reports);
    return doc;
}

//  Write a Prometheus label value to F, escaped.
static void
s_label (FILE *f, const char *value)
{
    for (const char *c = value ? value : ""; *c; c++) {
        if (*c == '\\' || *c == '"')
            fputc ('\\', f);
        if (*c == '\n') {
            fputs ("\\n", f);
            continue;
        }
        fputc (*c, f);
    }
}

//  Write `NAME{model=..,deployment=..,provider=..EXTRA} VALUE`.
static void
s_sample (FILE *f, const char *name, json_t *d, const char *extra, double value)
{
    fprintf (f, "%s{model=\"", name);
    s_label (f, json_string_value (json_object_get (d, "model")));
    fputs ("\",deployment=\"", f);
    s_label (f, json_string_value (json_object_get (d, "id")));
    fputs ("\",provider=\"", f);
    s_label (f, json_string_value (json_object_get (d, "provider")));
    fprintf (f, "\"%s} %.15g\n", extra ? extra : "", value);
}

char *
aigw_health_prometheus (json_t *document)
{
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream (&text, &size);
    if (!f)
        return NULL;
    json_t *list = json_object_get (document, "deployments");
    size_t i;
    json_t *d;
    static const struct {
        const char *name;  //  metric name
        const char *type;  //  counter or gauge
        const char *help;  //  HELP text
    } metrics[] = {
        {"aigw_deployment_requests_total", "counter", "Upstream attempts finished."},
        {"aigw_deployment_failures_total", "counter", "Upstream attempts that failed."},
        {"aigw_deployment_in_flight", "gauge", "Upstream attempts in flight."},
        {"aigw_deployment_error_rate", "gauge", "Failed share of recent attempts."},
        {"aigw_deployment_up", "gauge", "1 unless every instance's circuit is open."},
        {"aigw_deployment_circuit_instances", "gauge", "Provider processes per circuit state."},
        //  Summaries (quantiles only), in seconds: promtool's lint refuses
        //  gauges with a quantile label and units such as _ms in a name.
        {"aigw_deployment_latency_seconds", "summary", "Recent latency percentiles."},
        {"aigw_deployment_ttft_seconds", "summary", "Recent time-to-first-token percentiles."},
    };
    for (size_t m = 0; m < sizeof metrics / sizeof metrics[0]; m++) {
        fprintf (f, "# HELP %s %s\n# TYPE %s %s\n", metrics[m].name, metrics[m].help,
                 metrics[m].name, metrics[m].type);
        json_array_foreach (list, i, d) {
            switch (m) {
                case 0:
                    s_sample (f, metrics[m].name, d, NULL, (double) s_int (d, "requests_total"));
                    break;
                case 1:
                    s_sample (f, metrics[m].name, d, NULL, (double) s_int (d, "failures_total"));
                    break;
                case 2:
                    s_sample (f, metrics[m].name, d, NULL, (double) s_int (d, "in_flight"));
                    break;
                case 3:
                    s_sample (f, metrics[m].name, d, NULL,
                              json_number_value (json_object_get (d, "error_rate")));
                    break;
                case 4: {
                    const char *status = json_string_value (json_object_get (d, "status"));
                    s_sample (f, metrics[m].name, d, NULL,
                              status && strcmp (status, "down") == 0 ? 0 : 1);
                    break;
                }
                case 5: {
                    static const char *const states[] = {"closed", "half_open", "open"};
                    json_t *circuits = json_object_get (d, "circuits");
                    for (int k = 0; k < 3; k++) {
                        char extra[32];
                        snprintf (extra, sizeof extra, ",state=\"%s\"", states[k]);
                        s_sample (f, metrics[m].name, d, extra,
                                  (double) s_int (circuits, states[k]));
                    }
                    break;
                }
                default: {
                    json_t *q = json_object_get (d, m == 6 ? "latency_ms" : "ttft_ms");
                    static const char *const keys[] = {"p50", "p95"};
                    static const char *const labels[] = {",quantile=\"0.5\"", ",quantile=\"0.95\""};
                    for (int k = 0; k < 2; k++) {
                        json_t *v = json_object_get (q, keys[k]);
                        if (json_is_integer (v))
                            s_sample (f, metrics[m].name, d, labels[k],
                                      (double) json_integer_value (v) / 1000.0);
                    }
                }
            }
        }
    }
    fclose (f);
    return text;
}

void
aigw_health_test (bool verbose)
{
    //  Two processes report the same deployment; one also has another.
    const char *reports
        = "[{\"worker\":\"a1\",\"service\":\"provider\",\"age_ms\":5,\"report\":{\"instance\":"
          "\"h:1\",\"deployments\":[{\"id\":\"d1\",\"model\":\"m\",\"provider\":\"openai\","
          "\"status\":\"healthy\",\"circuit\":\"closed\",\"in_flight\":2,\"window_total\":4,"
          "\"window_failed\":1,\"requests_total\":10,\"failures_total\":1,\"last_error\":\"\","
          "\"latency_samples\":[10,20,30],\"ttft_samples\":[5]},"
          "{\"id\":\"d2\",\"model\":\"m\",\"provider\":\"anthropic\",\"status\":\"down\","
          "\"circuit\":\"open\",\"in_flight\":0,\"window_total\":5,\"window_failed\":5,"
          "\"last_error\":\"HTTP 500 \\\"boom\\\"\",\"latency_samples\":[],\"ttft_samples\":[]}]}},"
          "{\"worker\":\"b2\",\"service\":\"provider\",\"age_ms\":9,\"report\":{\"instance\":"
          "\"h:2\",\"deployments\":[{\"id\":\"d1\",\"model\":\"m\",\"provider\":\"openai\","
          "\"status\":\"healthy\",\"circuit\":\"half_open\",\"in_flight\":1,\"window_total\":6,"
          "\"window_failed\":0,\"requests_total\":6,\"failures_total\":0,"
          "\"latency_samples\":[40],\"ttft_samples\":[]}]}},"
          "{\"worker\":\"c3\",\"report\":\"junk\"}]";
    json_t *doc = aigw_health_merge (reports, strlen (reports));
    json_t *list = json_object_get (doc, "deployments");
    assert (json_array_size (list) == 2);
    json_t *d1 = json_array_get (list, 0);
    assert (strcmp (json_string_value (json_object_get (d1, "id")), "d1") == 0);
    assert (s_int (d1, "in_flight") == 3 && s_int (d1, "instances") == 2);
    assert (s_int (d1, "requests_total") == 16);
    assert (fabs (json_real_value (json_object_get (d1, "error_rate")) - 0.1) < 1e-9);
    assert (strcmp (json_string_value (json_object_get (d1, "circuit")), "half_open") == 0);
    assert (strcmp (json_string_value (json_object_get (d1, "status")), "degraded") == 0);
    json_t *lat = json_object_get (d1, "latency_ms");
    assert (json_integer_value (json_object_get (lat, "p50")) == 20);
    assert (json_integer_value (json_object_get (lat, "p95")) == 40);
    assert (json_integer_value (json_object_get (json_object_get (d1, "ttft_ms"), "p50")) == 5);
    assert (!json_object_get (d1, "latency_samples"));
    json_t *d2 = json_array_get (list, 1);
    assert (strcmp (json_string_value (json_object_get (d2, "status")), "down") == 0);
    assert (json_is_null (json_object_get (json_object_get (d2, "latency_ms"), "p50")));
    assert (json_real_value (json_object_get (d2, "error_rate")) == 1.0);

    char *text = aigw_health_prometheus (doc);
    assert (text);
    assert (strstr (text, "aigw_deployment_requests_total{model=\"m\",deployment=\"d1\","
                          "provider=\"openai\"} 16\n"));
    assert (strstr (text, "aigw_deployment_up{model=\"m\",deployment=\"d2\",provider=\""
                          "anthropic\"} 0\n"));
    assert (strstr (text, "aigw_deployment_circuit_instances{model=\"m\",deployment=\"d1\","
                          "provider=\"openai\",state=\"half_open\"} 1\n"));
    assert (strstr (text, "quantile=\"0.95\"} 0.04\n"));
    free (text);
    json_decref (doc);

    //  Nothing reported, or not JSON at all: an empty list.
    doc = aigw_health_merge ("[]", 2);
    assert (json_array_size (json_object_get (doc, "deployments")) == 0);
    json_decref (doc);
    doc = aigw_health_merge ("{oops", 5);
    assert (json_array_size (json_object_get (doc, "deployments")) == 0);
    json_decref (doc);
    if (verbose)
        printf ("health: ok\n");
}
