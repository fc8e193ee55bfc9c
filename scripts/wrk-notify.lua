-- wrk script for the payment-notification benchmark (scripts/bench-notify.sh): every request
-- posts the next signed notification from a file notify-bench --prepare wrote (one body per
-- line, each paying its own order). One thread only (-t1): the bodies are handed out in
-- order from this thread's list.
--
--   wrk -t1 -c32 -d600s --latency -s scripts/wrk-notify.lua http://127.0.0.1:PORT \
--       -- BODIES_FILE COUNT DONE_FILE
--
-- At its first request it writes DONE_FILE.started; after COUNT answers the thread stops
-- and writes DONE_FILE. wrk's main thread still sleeps
-- out -d, so the caller waits for DONE_FILE and sends wrk SIGINT, which ends the sleep and
-- prints the results. The rate is COUNT over the wall-clock time from the first request to
-- the COUNT-th answer (LuaJIT's FFI, CLOCK_MONOTONIC), not wrk's own duration.
--
-- Prints `wrk-notify: answered N, not SUCCESS M` at the end; the script that runs it
-- checks M = 0 and hands N to `notify-bench --check-wrk N`.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } wrk_notify_timespec;
int clock_gettime(int clk_id, wrk_notify_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local function now()
  local t = ffi.new("wrk_notify_timespec")
  ffi.C.clock_gettime(CLOCK_MONOTONIC, t)
  return tonumber(t.tv_sec) + tonumber(t.tv_nsec) / 1e9
end

local bodies = {}
local count = 0
local sent = 0
local done_file = nil
local first_sent = nil
answered = 0
failed = 0
elapsed = 0
counted = 0

local SUCCESS = "<xml><return_code><![CDATA[SUCCESS]]></return_code>"
  .. "<return_msg><![CDATA[OK]]></return_msg></xml>"

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  if #threads > 1 then
    error("wrk-notify.lua hands out bodies from one thread's list: run wrk with -t1")
  end
end

function init(args)
  local file, limit = args[1], tonumber(args[2])
  done_file = args[3]
  if not file or not limit or not done_file then
    error("usage: wrk ... -s wrk-notify.lua URL -- BODIES_FILE COUNT DONE_FILE")
  end
  for line in io.lines(file) do
    bodies[#bodies + 1] = line
  end
  count = limit or #bodies
  if count > #bodies then
    error("COUNT " .. count .. " is more than the " .. #bodies .. " bodies in " .. file)
  end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "text/xml"
end

function request()
  if first_sent == nil then
    first_sent = now()
    -- Tells the caller the load has begun (reading the bodies is over), for its samples.
    local f = assert(io.open(done_file .. ".started", "w"))
    f:write("started\n")
    f:close()
  end
  sent = sent + 1
  -- The file holds COUNT plus one body per connection: the requests still in flight when
  -- the COUNT-th answer stops the thread pay orders of their own.
  local body = bodies[sent]
  if body == nil then
    error("ran out of bodies after " .. (sent - 1) .. " requests; prepare more")
  end
  return wrk.format(nil, "/wxpay/notify/payment", nil, body)
end

function response(status, headers, body)
  answered = answered + 1
  if status ~= 200 or body ~= SUCCESS then
    failed = failed + 1
  end
  if answered == count then
    elapsed = now() - first_sent
    counted = count
    local f = assert(io.open(done_file, "w"))
    f:write(string.format("%d %d %.6f\n", answered, failed, elapsed))
    f:close()
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local a, f, e, c = 0, 0, 0, 0
  for _, thread in ipairs(threads) do
    a = a + thread:get("answered")
    f = f + thread:get("failed")
    e = math.max(e, thread:get("elapsed"))
    c = c + thread:get("counted")
  end
  io.write(string.format("wrk-notify: answered %d, not SUCCESS %d\n", a, f))
  for _, p in ipairs({ 50, 90, 99, 99.9 }) do
    io.write(string.format("wrk-notify: p%s %.3f ms\n", p, latency:percentile(p) / 1000))
  end
  if e > 0 then
    io.write(string.format("wrk-notify: %.0f requests/s over %.3f s\n", c / e, e))
  end
end
