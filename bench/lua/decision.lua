package.path = os.getenv("BENCH_LUA") .. "/?.lua;" .. package.path
local common = require("common")
local subjects = common.lines(os.getenv("BENCH_SUBJECTS"))
local token = os.getenv("BENCH_TOKEN")
local purposes = {"newsletter", "marketing", "analytics", "service", "billing"}

request = function()
  local body = string.format('{"subject_id":"%s","purpose":"%s"}', common.pick(subjects), common.pick(purposes))
  return wrk.format("POST", "/v1/decisions", {["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/json"}, body)
end
