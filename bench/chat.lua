-- wrk script: one small non-streaming chat completion per request.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_KEY") or "x")
wrk.body = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello in one word."}]}'

done = function(summary, latency, requests)
    io.write(string.format(
        "BENCH p50_us=%d p99_us=%d requests=%d rps=%.0f non2xx=%d sockerr=%d\n",
        latency:percentile(50), latency:percentile(99), summary.requests,
        summary.requests / (summary.duration / 1e6), summary.errors.status,
        summary.errors.connect + summary.errors.read + summary.errors.write
            + summary.errors.timeout))
end
