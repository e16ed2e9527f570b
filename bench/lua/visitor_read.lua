package.path = os.getenv("BENCH_LUA") .. "/?.lua;" .. package.path
local common = require("common")
local visitors = common.lines(os.getenv("BENCH_VISITORS"))

request = function()
  return wrk.format("GET", "/v1/visitor-consents/" .. common.pick(visitors))
end
