-- wrk script for bench/ingest.py: sends pre-rendered, really signed HTTP requests, each ONCE.
--
-- $BENCH_REQUESTS names a file of "<byte length>\n<raw HTTP/1.1 request>" records written by
-- bench/ingest.py. With -t N, thread k sends records k, k+N, k+2N ... so that no two requests
-- share an order id (no duplicate fast path). A thread that runs out stops itself (the run is
-- bounded in count as well as by -d); with $BENCH_WRAP=1 it starts over instead (for the bare
-- Flask ceiling, which stores nothing). done() writes a JSON report to $BENCH_REPORT.

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  local stride = tonumber(os.getenv("BENCH_THREADS") or "1")
  local file = assert(io.open(os.getenv("BENCH_REQUESTS"), "rb"))
  reqs = {}
  local index = 0
  while true do
    local size = file:read("*l")
    if not size then break end
    local raw = file:read(tonumber(size))
    if index % stride == id then reqs[#reqs + 1] = raw end
    index = index + 1
  end
  file:close()
  wrap = os.getenv("BENCH_WRAP") == "1"
  sent, wrapped, exhausted = 0, 0, 0
  ok, duplicate, other = 0, 0, 0
end

function request()
  if sent >= #reqs then
    if wrap then
      sent, wrapped = 0, wrapped + 1
    else
      exhausted = exhausted + 1
      wrk.thread:stop()
      return reqs[#reqs]
    end
  end
  sent = sent + 1
  return reqs[sent]
end

function response(status, headers, body)
  if status == 200 then
    ok = ok + 1
    if body and body:find("duplicate", 1, true) then duplicate = duplicate + 1 end
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local totals = {sent = 0, wrapped = 0, exhausted = 0, ok = 0, duplicate = 0, other = 0, loaded = 0}
  for _, thread in ipairs(threads) do
    for name, _ in pairs(totals) do
      if name ~= "loaded" then totals[name] = totals[name] + (thread:get(name) or 0) end
    end
  end
  local e = summary.errors
  local report = assert(io.open(os.getenv("BENCH_REPORT"), "w"))
  report:write(string.format(
    '{"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_us": {"mean": %.1f, "p50": %d, "p90": %d, "p99": %d, "max": %d}, ' ..
    '"ok": %d, "duplicate": %d, "other": %d, "sent": %d, "wrapped": %d, "exhausted": %d}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    totals.ok, totals.duplicate, totals.other, totals.sent, totals.wrapped, totals.exhausted))
  report:close()
end
