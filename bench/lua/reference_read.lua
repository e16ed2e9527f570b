package.path = os.getenv("BENCH_LUA") .. "/?.lua;" .. package.path
local common = require("common")
local rows = common.lines(os.getenv("BENCH_ROWS"))

request = function()
  return wrk.format("GET", "/rows/" .. common.pick(rows))
end
