-- wrk script: the same chat request every time (BENCH_PROMPT), so after the
-- first it is answered from the gateway's cache: an exact hit, or, when the
-- prompt is a paraphrase of one already stored, a semantic hit (a paraphrase
-- answered from a neighbour is not stored itself, so every request looks up).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_KEY") or "x")
wrk.body = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"'
    .. (os.getenv("BENCH_PROMPT") or "Say hello") .. '"}]}'

local seen = {}
function response(status, headers, body)
    seen[headers["X-Cache"] or "none"] = true
end

function done(summary, latency, requests)
    io.write(string.format("BENCH p50_us=%d p99_us=%d requests=%d rps=%.0f non2xx=%d\n",
        latency:percentile(50), latency:percentile(99), summary.requests,
        summary.requests / (summary.duration / 1e6), summary.errors.status))
end
