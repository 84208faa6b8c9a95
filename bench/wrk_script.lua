-- wrk script of the payment gateway benchmark (bench/loadgen.py writes its config file and reads its output).
--
-- The first argument after "--" is a config file of tab-separated lines:
--   method <M> | body_file <path> | header <Name: value> | paths_file <path> (one path per line, cycled)
--   idem none|fresh|pool | idem_prefix <text> | idem_pool <n>
-- idem fresh: every request gets a never-used Idempotency-Key (prefix .. thread .. "-" .. counter);
-- idem pool:  keys cycle through prefix .. 0 .. prefix .. (n - 1), all created beforehand by the harness.
-- done() prints one line "BENCH_JSON {...}" with the request count, errors and latency percentiles (us).

local method, body, headers, paths = "GET", nil, {}, {}
local idem, idem_prefix, idem_pool = "none", "", 1
local counter = 0

local function read_file(path)
  local f = assert(io.open(path, "rb"))
  local data = f:read("*a")
  f:close()
  return data
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  for line in io.lines(args[1]) do
    local key, value = line:match("^([%w_]+)\t(.*)$")
    if key == "method" then
      method = value
    elseif key == "body_file" then
      body = read_file(value)
    elseif key == "header" then
      local name, v = value:match("^([^:]+):%s*(.*)$")
      headers[name] = v
    elseif key == "paths_file" then
      for p in io.lines(value) do
        if #p > 0 then table.insert(paths, p) end
      end
    elseif key == "idem" then
      idem = value
    elseif key == "idem_prefix" then
      idem_prefix = value
    elseif key == "idem_pool" then
      idem_pool = tonumber(value)
    end
  end
  if #paths == 0 then paths = { "/" } end
  counter = tid * 7919 -- each thread walks the paths (and the key pool) from its own place
end

function request()
  counter = counter + 1
  local path = paths[(counter % #paths) + 1]
  if idem == "fresh" then
    headers["Idempotency-Key"] = idem_prefix .. tid .. "-" .. counter
  elseif idem == "pool" then
    headers["Idempotency-Key"] = idem_prefix .. (counter % idem_pool)
  end
  return wrk.format(method, path, headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"p50_us":%d,"p95_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
