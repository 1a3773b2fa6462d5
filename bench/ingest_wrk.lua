-- wrk script of bench/ingest.py: POSTs Lago events, each with a transaction_id of its own.
--
-- wrk -s bench/ingest_wrk.lua URL -- API_KEY PREFIX single|batch EVENTS_PER_REQUEST
--
-- transaction_id = PREFIX-<wrk thread>-<request of that thread>-<event of that request>, so the
-- benchmark can count in the warehouse what was stored under PREFIX. done() prints one line
-- "WRK_RESULT {json}" with the request counts and latency percentiles (microseconds).

local threads = {}

function setup(thread)
  thread:set("thread_index", #threads)
  table.insert(threads, thread)
end

local requests_sent = 0
local path, headers, pieces, thread_prefix

function init(args)
  local api_key, prefix, mode, per_request = args[1], args[2], args[3], tonumber(args[4])
  headers = {["Authorization"] = "Bearer " .. api_key, ["Content-Type"] = "application/json"}
  local opening, closing
  if mode == "single" then
    path, opening, closing, per_request = "/api/v1/events", '{"event":', "}", 1
  else
    path, opening, closing = "/api/v1/events/batch", '{"events":[', "]}"
  end
  -- A body is these pieces joined by "PREFIX-thread-request" (the only part that changes from
  -- request to request): built once, so each request costs one table.concat in C rather than a
  -- Lua loop over its events.
  local id_opening = '{"transaction_id":"'
  pieces = {opening .. id_opening}
  for i = 0, per_request - 1 do
    local after = (i == per_request - 1) and closing or ("," .. id_opening)
    pieces[i + 2] = string.format(
      '-%d","external_subscription_id":"sub-%d","code":"api_calls","timestamp":%d,'
        .. '"properties":{"value":%d}}',
      i, i % 1000, 1700000000 + i, i % 97) .. after
  end
  thread_prefix = prefix .. "-" .. thread_index .. "-"
end

function request()
  requests_sent = requests_sent + 1
  return wrk.format("POST", path, headers, table.concat(pieces, thread_prefix .. requests_sent))
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests":%d,"duration_us":%d,"non_2xx":%d,"connect_errors":%d,'
      .. '"read_errors":%d,"write_errors":%d,"timeouts":%d,"p50_us":%d,"p99_us":%d,'
      .. '"max_us":%d}\n',
    summary.requests, summary.duration, errors.status, errors.connect, errors.read,
    errors.write, errors.timeout, latency:percentile(50), latency:percentile(99), latency.max))
end
