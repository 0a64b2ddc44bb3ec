-- Shared by claims.lua and post.lua: unique request bodies, a bearer token, per-status counts
-- and one machine-readable result line (bench.py parses it).
--
-- wrk runs one Lua state per thread plus one for setup()/done(): counters live in each
-- thread's state and done() collects them with thread:get().
--
-- Environment:
--   TOKEN / TOKEN_FILE  bearer token sent on every request (a dummy of similar size otherwise)
--   RUN_ID              prefix that keeps prescription ids unique across runs (default: time)

local M = {}

local threads = {}
local next_id = 0

function M.setup(thread)
  thread:set("thread_id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local function read_file(path)
  local f, err = io.open(path, "r")
  if not f then error("cannot open " .. path .. ": " .. tostring(err)) end
  local text = f:read("*a")
  f:close()
  return text
end

function M.read_lines(path)
  local lines = {}
  for line in read_file(path):gmatch("[^\r\n]+") do
    if line:match("%S") then table.insert(lines, (line:gsub("^%s+", ""):gsub("%s+$", ""))) end
  end
  return lines
end

function M.token()
  local token = os.getenv("TOKEN")
  if (token == nil or token == "") and os.getenv("TOKEN_FILE") then
    token = read_file(os.getenv("TOKEN_FILE")):gsub("%s+", "")
  end
  if token == nil or token == "" then
    token = string.rep("x", 220) -- same header size as a real JWT, for the bare endpoints
  end
  return token
end

-- Called from each script's init(): per-thread state (globals of this thread's Lua state).
function M.init_thread()
  statuses = {}
  counter = 0
  local tid = thread_id or 0
  run_id = os.getenv("RUN_ID") or tostring(os.time())
  math.randomseed(os.time() * 1000 + tid * 7919 + math.floor((os.clock() * 1e6) % 1000))
  headers = {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. M.token(),
  }
end

-- A claim body with a prescription id unique per run, thread and request.
function M.body()
  counter = counter + 1
  local cents = math.random(1000, 50000) -- 10.00 .. 500.00 EGP
  return string.format('{"prescriptionId":"rx-%s-%d-%d","totalAmount":%d.%02d}',
    run_id, thread_id or 0, counter, math.floor(cents / 100), cents % 100)
end

function M.response(status)
  statuses[status] = (statuses[status] or 0) + 1
end

function M.done(summary, latency, requests)
  local counts = {}
  for _, thread in ipairs(threads) do
    local s = thread:get("statuses") or {}
    for code, n in pairs(s) do counts[code] = (counts[code] or 0) + n end
  end
  local codes = {}
  for code in pairs(counts) do table.insert(codes, code) end
  table.sort(codes)
  local non2xx = 0
  local parts = {}
  io.write("status codes:")
  for _, code in ipairs(codes) do
    io.write(string.format(" %d=%d", code, counts[code]))
    table.insert(parts, string.format('"%d":%d', code, counts[code]))
    if code < 200 or code > 299 then non2xx = non2xx + counts[code] end
  end
  io.write(string.format("  (non-2xx: %d)\n", non2xx))
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,"non2xx":%d,'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
      .. '"latency_us":{"p50":%d,"p90":%d,"p95":%d,"p99":%d,"max":%d,"mean":%.1f},'
      .. '"statuses":{%s}}\n',
    summary.requests, summary.duration, summary.bytes, non2xx,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(95),
    latency:percentile(99), latency.max, latency.mean,
    table.concat(parts, ",")))
end

return M
