package.path = os.getenv("BENCH_LUA") .. "/?.lua;" .. package.path
local common = require("common")
local subjects = common.lines(os.getenv("BENCH_SUBJECTS"))
local token = os.getenv("BENCH_TOKEN")
local purposes = {"newsletter", "marketing", "analytics", "service", "billing"}
local size = tonumber(os.getenv("BENCH_BATCH") or "1000")

request = function()
  local items = {}
  for i = 1, size do
    items[i] = string.format('{"subject_id":"%s","purpose":"%s"}', common.pick(subjects), common.pick(purposes))
  end
  return wrk.format("POST", "/v1/decisions/batch", {["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/json"}, '{"items":[' .. table.concat(items, ",") .. ']}')
end
