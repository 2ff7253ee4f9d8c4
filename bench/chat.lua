-- wrk script: one small non-streaming chat completion per request, each with a
-- prompt no other request had: a per-thread counter, the thread's number and
-- BENCH_NONCE (bench/lib.sh sets one per wrk run), so a gateway's response
-- cache misses every time (X-Cache: MISS) while staying on.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_KEY") or "x")

local nonce = os.getenv("BENCH_NONCE") or tostring(os.time())
local body = '{"model":"gpt-4o-mini","messages":[{"role":"user",'
    .. '"content":"Say hello in one word. %s-%d-%d"}]}'

-- setup runs in the main state; thread:set gives each thread its number.
local threads = 0
function setup(thread)
    threads = threads + 1
    thread:set("tid", threads)
end

local counter = 0
function request()
    counter = counter + 1
    return wrk.format(nil, nil, nil, string.format(body, nonce, tid or 0, counter))
end

-- wrk counts status >= 400 in errors.status (reported as non2xx).
function done(summary, latency, requests)
    io.write(string.format(
        "BENCH p50_us=%d p99_us=%d requests=%d rps=%.0f non2xx=%d sockerr=%d\n",
        latency:percentile(50), latency:percentile(99), summary.requests,
        summary.requests / (summary.duration / 1e6), summary.errors.status,
        summary.errors.connect + summary.errors.read + summary.errors.write
            + summary.errors.timeout))
end
