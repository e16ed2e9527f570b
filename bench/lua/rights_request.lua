package.path = os.getenv("BENCH_LUA") .. "/?.lua;" .. package.path
local common = require("common")
local subjects = common.lines(os.getenv("BENCH_SUBJECTS"))
local token = os.getenv("BENCH_TOKEN")
local types = {"access", "portability", "rectification", "restriction"}

request = function()
  local body = string.format('{"type":"%s","subject_id":"%s"}', common.pick(types), common.pick(subjects))
  return wrk.format("POST", "/v1/rights-requests", {["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/json"}, body)
end
