-- Replay pre-signed Standard Webhooks requests, one webhook-id per request, and
-- count the responses by status.
--
-- Usage: wrk -s signed_requests.lua URL -- POOL_FILE THREADS
--
-- POOL_FILE is written by hookgate.loadtest._requests.write_pool, which signs every
-- request ahead of time, so wrk does no cryptography and the server still verifies
-- each signature. THREADS must equal wrk's -t value: thread k sends requests
-- k+1, k+1+THREADS, ... so no two threads send the same webhook-id.
--
-- Pool file layout, one value per line:
--   1  "hookgate-request-pool 1"
--   2  webhook-timestamp shared by every request
--   3  string.format pattern of the webhook-id, given the request number
--   4  body text before the webhook-id
--   5  body text after the webhook-id
--   6  signature header of request 1, then one line per request

local threads = {}

function setup(thread)
   thread:set("thread_index", #threads)
   table.insert(threads, thread)
end

function init(args)
   local path, thread_count = args[1], tonumber(args[2])
   if path == nil or thread_count == nil then
      error("usage: wrk -s signed_requests.lua URL -- POOL_FILE THREADS")
   end

   local file = assert(io.open(path, "r"))
   local marker = file:read("*l")
   if marker ~= "hookgate-request-pool 1" then
      error(path .. ": not a request pool, first line is " .. tostring(marker))
   end
   local timestamp = file:read("*l")
   id_format = file:read("*l")
   body_head = file:read("*l")
   body_tail = file:read("*l")

   -- Request numbers are 1-based, matching the signing side.
   numbers, signatures = {}, {}
   local number = 0
   for line in file:lines() do
      number = number + 1
      if (number - 1) % thread_count == thread_index then
         table.insert(numbers, number)
         table.insert(signatures, line)
      end
   end
   file:close()
   if #signatures == 0 then
      error(path .. ": no signed requests for thread " .. thread_index)
   end

   local body_length = #body_head + #string.format(id_format, 1) + #body_tail
   head = "POST " .. wrk.path .. " HTTP/1.1\r\n"
      .. "Host: " .. wrk.host .. ":" .. wrk.port .. "\r\n"
      .. "Content-Type: application/json\r\n"
      .. "Content-Length: " .. body_length .. "\r\n"
      .. "webhook-timestamp: " .. timestamp .. "\r\n"
      .. "webhook-id: "

   position = 0
   -- Requests sent after the pool ran out repeat an earlier webhook-id.
   wrapped = false
   repeated = 0
   statuses = {}
end

function request()
   position = position + 1
   if position > #signatures then
      position = 1
      wrapped = true
   end
   if wrapped then
      repeated = repeated + 1
   end
   local id = string.format(id_format, numbers[position])
   return head .. id .. "\r\nwebhook-signature: " .. signatures[position]
      .. "\r\n\r\n" .. body_head .. id .. body_tail
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
end

-- Print one machine-readable line per figure. The harness reads the lines that
-- start with "result" and "status".
function done(summary, latency, requests)
   local counted, repeated_total = {}, 0
   for _, thread in ipairs(threads) do
      for status, count in pairs(thread:get("statuses")) do
         counted[status] = (counted[status] or 0) + count
      end
      repeated_total = repeated_total + thread:get("repeated")
   end
   for status, count in pairs(counted) do
      io.write(string.format("status %d %d\n", status, count))
   end
   local errors = summary.errors
   io.write(string.format(
      "result requests=%d duration_us=%d p50_us=%d p90_us=%d p99_us=%d"
         .. " max_us=%d connect_errors=%d read_errors=%d write_errors=%d"
         .. " timeouts=%d repeated_ids=%d\n",
      summary.requests, summary.duration, latency:percentile(50),
      latency:percentile(90), latency:percentile(99), latency.max,
      errors.connect, errors.read, errors.write, errors.timeout, repeated_total
   ))
end
