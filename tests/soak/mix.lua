-- wrk script for exchange_guard's soak and fault tests.
--
--   wrk -t2 -c200 -d300s -s tests/soak/mix.lua http://127.0.0.1:PORT/ -- MIX.lua
--
-- MIX.lua comes from tests/soak/make_mix.py: raw requests from the corpus,
-- each tagged "X-EG-Soak: attack-<n>" or "benign-<n>".  Each thread cycles
-- through them from its own starting point.  The guard's server echoes the
-- tag back (add_header X-EG-Soak $http_x_eg_soak always), so response()
-- knows what each answer was for.  done() adds up the per-thread counters
-- and prints them as "SOAK name=value" lines.

local requests, kinds, n, i

-- per-thread counters: globals, so that done() can read them with get()
attack_sent, benign_sent = 0, 0
attack_403, attack_other = 0, 0
benign_2xx, benign_other = 0, 0
untagged = 0
benign_bad = ""         -- the first few tags and statuses that went wrong
attack_bad = ""

local threads = {}
local counter = 0

function setup(thread)
   thread:set("id", counter)
   counter = counter + 1
   table.insert(threads, thread)
end

function init(args)
   local mix = dofile(args[1])
   requests, kinds = mix.requests, mix.kinds
   n = #requests
   i = ((id or 0) * 7919) % n
end

function request()
   i = i % n + 1
   if kinds[i] == "a" then
      attack_sent = attack_sent + 1
   else
      benign_sent = benign_sent + 1
   end
   return requests[i]
end

function response(status, headers, body)
   local tag = headers["X-EG-Soak"]
   if tag == nil or tag == "" then
      untagged = untagged + 1
   elseif string.sub(tag, 1, 7) == "attack-" then
      if status == 403 then
         attack_403 = attack_403 + 1
      else
         attack_other = attack_other + 1
         if #attack_bad < 200 then
            attack_bad = attack_bad .. tag .. ":" .. status .. " "
         end
      end
   else
      if status >= 200 and status < 300 then
         benign_2xx = benign_2xx + 1
      else
         benign_other = benign_other + 1
         if #benign_bad < 200 then
            benign_bad = benign_bad .. tag .. ":" .. status .. " "
         end
      end
   end
end

function done(summary, latency, reqs)
   local names = { "attack_sent", "benign_sent", "attack_403", "attack_other",
                   "benign_2xx", "benign_other", "untagged" }
   for _, name in ipairs(names) do
      local total = 0
      for _, t in ipairs(threads) do
         total = total + (t:get(name) or 0)
      end
      io.write(string.format("SOAK %s=%d\n", name, total))
   end
   for _, name in ipairs({ "attack_bad", "benign_bad" }) do
      local all = ""
      for _, t in ipairs(threads) do
         all = all .. (t:get(name) or "")
      end
      io.write(string.format("SOAK %s=%s\n", name, all))
   end
   local e = summary.errors
   io.write(string.format("SOAK requests=%d\n", summary.requests))
   io.write(string.format("SOAK duration_us=%d\n", summary.duration))
   io.write(string.format("SOAK errors_connect=%d\n", e.connect))
   io.write(string.format("SOAK errors_read=%d\n", e.read))
   io.write(string.format("SOAK errors_write=%d\n", e.write))
   io.write(string.format("SOAK errors_status=%d\n", e.status))
   io.write(string.format("SOAK errors_timeout=%d\n", e.timeout))
   io.write(string.format("SOAK latency_p99_us=%d\n", latency:percentile(99)))
   io.write(string.format("SOAK latency_max_us=%d\n", latency.max))
end
