-- wrk script: every request is a distinct BitTorrent HTTP announce (BEP 3/23): an info_hash drawn
-- uniformly from a list, a fresh peer_id and a fresh port, binary values percent-encoded. It does
-- not follow the returned peers; with HTTP_ANNOUNCE_CHECK=1 it also checks each body.
--
-- usage: wrk -t1 -c32 -d10s -s bench/http_announce.lua http://127.0.0.1:PORT/announce \
--            -- HASH_FILE [NUMWANT]
--   HASH_FILE: 40-hex info-hashes, one a line (udp_load --print-hashes --torrents N > file)
--   add -H 'Connection: close' for one request per connection.
-- At the end it prints one line "JSON {...}" with requests, rps, errors and latency.

local threads = {}

-- Runs in the main state, once per thread, before init.
function setup(thread)
  thread:set("thread_id", #threads)
  table.insert(threads, thread)
end

local hashes = {}
local counter = 0
local numwant = 50
local base_path = "/announce"
failures = 0
checked = 0

local function percent_encode(raw)
  -- RFC 3986 unreserved bytes stay as they are; everything else becomes %XX.
  return (raw:gsub("[^%w%-%._~]", function(c)
    return string.format("%%%02X", string.byte(c))
  end))
end

local function hex_to_bytes(hex)
  return (hex:gsub("%x%x", function(pair)
    return string.char(tonumber(pair, 16))
  end))
end

function init(args)
  local file = args[1]
  if file == nil then
    error("http_announce.lua needs the info-hash file: wrk ... -- HASH_FILE [NUMWANT]")
  end
  if args[2] ~= nil then numwant = tonumber(args[2]) end
  for line in io.lines(file) do
    local hex = line:match("^%s*(%x+)%s*$")
    if hex ~= nil and #hex == 40 then
      table.insert(hashes, percent_encode(hex_to_bytes(hex)))
    end
  end
  if #hashes == 0 then error("no 40-hex info-hashes in " .. file) end
  if wrk.path ~= nil and wrk.path ~= "" and wrk.path ~= "/" then base_path = wrk.path end
  math.randomseed(12345 + 7919 * (thread_id or 0))
end

function request()
  counter = counter + 1
  local id = thread_id or 0
  -- peer_id: 8-byte client prefix + thread (4 hex) + request number (8 hex) = 20 bytes.
  local peer_id = string.format("-WK0001-%04x%08x", id % 65536, counter % 4294967296)
  -- One source address, so ports give distinct peers (trackers key peers by ip:port).
  local port = 1024 + (counter * 8 + id) % 64512
  local left = (counter % 5 == 0) and 0 or 1048576
  local path = base_path .. "?info_hash=" .. hashes[math.random(#hashes)] ..
      "&peer_id=" .. peer_id .. "&port=" .. port ..
      "&uploaded=0&downloaded=0&left=" .. left ..
      "&event=started&compact=1&numwant=" .. numwant .. "&key=" .. string.format("%08x", counter)
  return wrk.format("GET", path)
end

if os.getenv("HTTP_ANNOUNCE_CHECK") == "1" then
  -- Defining response() makes wrk hand over every body, which costs load-generator time.
  function response(status, headers, body)
    checked = checked + 1
    if status ~= 200 or body:find("failure reason", 1, true) ~= nil or
        body:find("8:intervali", 1, true) == nil or body:find("5:peers", 1, true) == nil then
      failures = failures + 1
      if failures == 1 then io.stderr:write("http_announce: bad answer: " .. status .. " " ..
          body:sub(1, 200) .. "\n") end
    end
  end
end

function done(summary, latency, requests)
  local bad, seen = 0, 0
  for _, t in ipairs(threads) do
    bad = bad + (t:get("failures") or 0)
    seen = seen + (t:get("checked") or 0)
  end
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
      "JSON {\"requests\":%d,\"duration_s\":%.3f,\"rps\":%.1f,\"connect_errors\":%d," ..
      "\"read_errors\":%d,\"write_errors\":%d,\"status_errors\":%d,\"timeouts\":%d," ..
      "\"checked\":%d,\"check_failures\":%d,\"p50_us\":%d,\"p99_us\":%d}\n",
      summary.requests, secs, summary.requests / secs, e.connect, e.read, e.write, e.status,
      e.timeout, seen, bad, latency:percentile(50), latency:percentile(99)))
end
