-- wrk script for the bare reference endpoints (load-tests/bare_apps.py): the same request
-- shape and the same load-generator work per request as claims.lua (unique body, bearer
-- header, status counting), so the two are comparable on a box whose cores wrk shares.
--
--   wrk -t2 -c64 -d15s -s load-tests/wrk/post.lua http://127.0.0.1:8001
--
-- POST_PATH: the path posted to (default: a claim-shaped path with a fixed card id).

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(here .. "common.lua")

function setup(thread) common.setup(thread) end

function init(args)
  common.init_thread()
  post_path = os.getenv("POST_PATH")
  if post_path == nil or post_path == "" then
    post_path = "/api/v1/medcards/00000000-0000-4000-8000-000000000000/claims/prescriptions"
  end
end

function request()
  return wrk.format("POST", post_path, headers, common.body())
end

function response(status, hdrs, body) common.response(status) end

function done(summary, latency, requests) common.done(summary, latency, requests) end
