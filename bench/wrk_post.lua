-- wrk script for bench/send_api.py: POST a distinct JSON body every request (no duplicate, no replay),
-- and print one JSON line of figures at the end. Env: BENCH_KIND = "send" | "floor", BENCH_TAG (a run label).
local kind = os.getenv("BENCH_KIND") or "send"
local tag = os.getenv("BENCH_TAG") or "r"
local threads = {}
local counter = 0
tid = 0  -- set per thread by setup() (a global: thread:set writes globals)

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  counter = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  counter = counter + 1
  local n = (tid * 7919 + counter) % 9000000 + 1000000
  local body
  if kind == "floor" then
    body = string.format('{"phone_number": "+1555%07d"}', n)
  else
    body = string.format('{"to": "+1555%07d", "body": "%s %d-%d code %06d", "metadata": {"bench": true, "i": %d}}',
                         n, tag, tid, counter, counter % 999999, counter)
  end
  return wrk.format(nil, nil, nil, body)
end

done = function(summary, latency, requests)
  local bad = summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.timeout
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "bad": %d, "non2xx": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration, bad, summary.errors.status, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.mean))
end
