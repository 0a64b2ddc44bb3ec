-- wrk script: prescription claims spread over many cards, one unique prescription id each.
--
--   CARDS_FILE=cards.txt TOKEN=$(healthpay token --role pharmacy --pharmacy-id ph-bench) \
--     wrk -t2 -c64 -d15s -s load-tests/wrk/claims.lua http://127.0.0.1:8000
--
-- CARDS_FILE: card ids (UUIDs), one a line; each request picks one at random.
-- TOKEN / TOKEN_FILE: a pharmacy bearer token. RUN_ID: prefix of the prescription ids.
-- Prints the count of every status code (non-2xx visible) and a WRK_RESULT JSON line.

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(here .. "common.lua")

function setup(thread) common.setup(thread) end

function init(args)
  common.init_thread()
  local path = os.getenv("CARDS_FILE")
  if path == nil or path == "" then error("CARDS_FILE is not set") end
  local cards = common.read_lines(path)
  if #cards == 0 then error("no card ids in " .. path) end
  paths = {}
  for i, card in ipairs(cards) do
    paths[i] = "/api/v1/medcards/" .. card .. "/claims/prescriptions"
  end
end

function request()
  return wrk.format("POST", paths[math.random(#paths)], headers, common.body())
end

function response(status, hdrs, body) common.response(status) end

function done(summary, latency, requests) common.done(summary, latency, requests) end
