-- wrk script: DEPTH pipelined GETs of the URL's path, written at once on
-- each connection; the next batch goes once all DEPTH responses are in.
--   wrk -t1 -c64 -d10s -s pipeline.lua http://127.0.0.1:8080/plaintext -- 16
-- wrk times one sample per batch, and its own percentile table is wrong for
-- pipelined runs (it divides by the response count), so done() walks the
-- raw samples and prints the batch latency's p99 in microseconds.
init = function(args)
   local depth = tonumber(args[1]) or 16
   local r = {}
   for i = 1, depth do
      r[i] = wrk.format()
   end
   req = table.concat(r)
end

request = function()
   return req
end

done = function(summary, latency, requests)
   local n, total = #latency, 0
   for i = 0, n - 1 do
      local _, count = latency(i)
      total = total + count
   end
   local seen = 0
   for i = 0, n - 1 do
      local value, count = latency(i)
      seen = seen + count
      if count > 0 and seen >= 0.99 * total then
         io.write(string.format("batch p99 %d us\n", value))
         return
      end
   end
end
