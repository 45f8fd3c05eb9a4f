-- wrk script: POST /api/profile-import with Klaviyo headers and a unique email per request.
-- Usage: wrk -t2 -c32 -d10s -s scripts/bench/profile-import.lua http://127.0.0.1:8089
-- Env: SIM_API_KEY (default pk_bench), SIM_UNIQUE=0 to upsert the same profile every time.
local key = os.getenv("SIM_API_KEY") or "pk_bench"
local unique = os.getenv("SIM_UNIQUE") ~= "0"
local counter = 0
local thread_id = 0

function setup(thread)
  thread_id = thread_id + 1
  thread:set("tid", thread_id)
end

wrk.method = "POST"
wrk.path = "/api/profile-import"
wrk.headers["revision"] = "2025-10-15"
wrk.headers["Authorization"] = "Klaviyo-API-Key " .. key
wrk.headers["Content-Type"] = "application/vnd.api+json"
wrk.headers["Accept"] = "application/vnd.api+json"

function request()
  counter = counter + 1
  local email = unique and string.format("user-%d-%d@example.com", tid or 0, counter) or "same@example.com"
  local body = '{"data":{"type":"profile","attributes":{"email":"' .. email ..
    '","first_name":"Bench","properties":{"plan":"pro","n":' .. counter .. '}}}}'
  return wrk.format(nil, nil, nil, body)
end

local statuses = {}
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  io.write(string.format("non-2xx/3xx (wrk count): %d\n", summary.errors.status))
end
