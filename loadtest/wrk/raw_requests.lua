-- Replay whole pre-built HTTP/1.1 requests, each once, and count the responses by
-- status. The harness writes the requests (any provider, signed ahead of time) with
-- hookgate.loadtest._mix.write_raw_pool.
--
-- Usage: wrk -s raw_requests.lua URL -- POOL_FILE THREADS
--
-- THREADS must equal wrk's -t value: thread k sends requests k+1, k+1+THREADS, ...
-- Pool file layout: the line "hookgate-raw-pool 1", then per request a line with
-- its length in bytes followed by exactly that many bytes.
-- The output lines are those of signed_requests.lua, so one parser reads both.

local threads = {}

function setup(thread)
   thread:set("thread_index", #threads)
   table.insert(threads, thread)
end

function init(args)
   local path, thread_count = args[1], tonumber(args[2])
   if path == nil or thread_count == nil then
      error("usage: wrk -s raw_requests.lua URL -- POOL_FILE THREADS")
   end

   local file = assert(io.open(path, "rb"))
   local marker = file:read("*l")
   if marker ~= "hookgate-raw-pool 1" then
      error(path .. ": not a raw request pool, first line is " .. tostring(marker))
   end
   requests = {}
   local number = 0
   while true do
      local length = file:read("*n")
      if length == nil then
         break
      end
      file:read(1) -- the newline after the length
      local request = file:read(length)
      number = number + 1
      if (number - 1) % thread_count == thread_index then
         table.insert(requests, request)
      end
   end
   file:close()
   if #requests == 0 then
      error(path .. ": no requests for thread " .. thread_index)
   end

   position = 0
   -- Requests sent after the pool ran out repeat an earlier one.
   wrapped = false
   repeated = 0
   statuses = {}
end

function request()
   position = position + 1
   if position > #requests then
      position = 1
      wrapped = true
   end
   if wrapped then
      repeated = repeated + 1
   end
   return requests[position]
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
end

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
