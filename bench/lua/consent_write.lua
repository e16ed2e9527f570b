package.path = os.getenv("BENCH_LUA") .. "/?.lua;" .. package.path
local common = require("common")
local subjects = common.lines(os.getenv("BENCH_SUBJECTS"))
local token = os.getenv("BENCH_TOKEN")
local purposes = {"newsletter", "marketing", "analytics"}
local statuses = {"granted", "withdrawn"}

request = function()
  local body = string.format('{"purpose":"%s","status":"%s","channel":"web"}', common.pick(purposes), common.pick(statuses))
  return wrk.format("POST", "/v1/subjects/" .. common.pick(subjects) .. "/consents",
    {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"}, body)
end
