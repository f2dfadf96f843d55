-- wrk script of `make bench`: every request is a NEW alert (its id varies per thread and request).
--
-- wrk -t2 -c8 -d15s --latency -s bench/wrk_alerts.lua URL -- <generic|alerta> <run id>
--
-- generic: the connector's generic source body (POST /hooks/generic; the no-op endpoint gets it
-- too); alerta: Alerta's POST /alert body. done() prints one line "BENCH_JSON {...}" with the
-- answers counted by HTTP status (only 2xx count as accepted) and the latency percentiles.

local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  kind = args[1] or "generic"
  run = args[2] or "run"
  counter = 0
  statuses = {}
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

local GENERIC = '{"id": "bench-%s", "status": "active", "severity": "critical",'
  .. ' "title": "Disk full on srv-%s", "message": "/var is 99%% full", "host": "srv-%s",'
  .. ' "monitor": "disk", "properties": {"mount": "/var", "used_percent": "99"}}'

local ALERTA = '{"resource": "srv-%s", "event": "DiskFull", "environment": "Production",'
  .. ' "severity": "critical", "service": ["Web"], "group": "OS", "value": "99%%",'
  .. ' "text": "/var is 99%% full on srv-%s", "origin": "bench", "tags": ["bench"],'
  .. ' "attributes": {"mount": "/var"}, "type": "exceptionAlert"}'

function request()
  counter = counter + 1
  local key = run .. "-" .. tid .. "-" .. counter
  local body
  if kind == "alerta" then
    body = string.format(ALERTA, key, key)
  else
    body = string.format(GENERIC, key, key, key)
  end
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local counts = {}
  for _, thread in ipairs(threads) do
    local seen = thread:get("statuses") or {}
    for code, n in pairs(seen) do
      counts[code] = (counts[code] or 0) + n
    end
  end
  local parts = {}
  for code, n in pairs(counts) do
    table.insert(parts, string.format('"%d": %d', code, n))
  end
  local errors = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d,'
      .. ' "p99_us": %d, "max_us": %d, "socket_errors": {"connect": %d, "read": %d,'
      .. ' "write": %d, "timeout": %d}, "statuses": {%s}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, errors.connect, errors.read, errors.write,
    errors.timeout, table.concat(parts, ", ")))
end
