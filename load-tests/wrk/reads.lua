-- wrk script for the read path: the GraphQL card query (POST /graphql) or the REST card read
-- (GET /api/v1/medcards/{id}), rotating over cards, each request with its card owner's token.
--
--   READS_FILE=reads.tsv READ_KIND=graphql \
--     wrk -t2 -c16 -d20s -s load-tests/wrk/reads.lua http://127.0.0.1:3100
--
-- READS_FILE: "<card id> <member token>" a line (read_bench.py writes it).
-- READ_KIND: graphql (default) or rest. The bare apps (bare_apps.py) answer any POST, so the
-- graphql kind also drives them with the very same requests.
-- Prints common.lua's per-status counts and WRK_RESULT line, then
-- READ_CHECK {"bad_bodies":n}: answers with "errors" or a null medcard (a 200 that read nothing).

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(here .. "common.lua")

local QUERY = "query Card($id: ID!) { medcard(id: $id) { id currentMonthSpent remainingThisMonth"
  .. " beneficiaries { name } claims(first: 10) { edges { node { id coveredAmount } } } } }"

local threads = {}

function setup(thread)
  common.setup(thread)
  table.insert(threads, thread)
end

function init(args)
  common.init_thread()
  bad = 0
  local path = os.getenv("READS_FILE")
  if path == nil or path == "" then error("READS_FILE is not set") end
  local kind = os.getenv("READ_KIND") or "graphql"
  if kind ~= "graphql" and kind ~= "rest" then error("READ_KIND must be graphql or rest") end
  check_body = kind == "graphql"
  -- every request is formatted once here; request() only picks the next one
  prepared = {}
  for i, line in ipairs(common.read_lines(path)) do
    local card, token = line:match("^(%S+)%s+(%S+)$")
    if card == nil then error("bad line " .. i .. " in " .. path) end
    local h = { ["Authorization"] = "Bearer " .. token }
    if kind == "graphql" then
      h["Content-Type"] = "application/json"
      local body = string.format('{"query":"%s","variables":{"id":"%s"}}', QUERY, card)
      prepared[i] = wrk.format("POST", "/graphql", h, body)
    else
      prepared[i] = wrk.format("GET", "/api/v1/medcards/" .. card, h)
    end
  end
  if #prepared == 0 then error("no cards in " .. path) end
  -- threads start at different cards, then walk them in order (every card read alike)
  next_card = ((thread_id or 0) * 7919) % #prepared
end

function request()
  next_card = next_card % #prepared + 1
  return prepared[next_card]
end

function response(status, hdrs, body)
  common.response(status)
  if check_body and body ~= nil
    and (body:find('"errors"', 1, true) or body:find('"medcard":null', 1, true)) then
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  common.done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do total = total + (thread:get("bad") or 0) end
  io.write(string.format('READ_CHECK {"bad_bodies":%d}\n', total))
end
