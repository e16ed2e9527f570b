package.path = os.getenv("BENCH_LUA") .. "/?.lua;" .. package.path
local common = require("common")
local subjects = common.lines(os.getenv("BENCH_SUBJECTS"))

request = function()
  local body = string.format('{"subject":"%s","payload":"newsletter granted web"}', common.pick(subjects))
  return wrk.format("POST", "/rows", {["Content-Type"] = "application/json"}, body)
end
