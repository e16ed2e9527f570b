package.path = os.getenv("BENCH_LUA") .. "/?.lua;" .. package.path
local common = require("common")
local emails = common.lines(os.getenv("BENCH_EMAILS"))
local token = os.getenv("BENCH_TOKEN")
local channels = {"email", "sms", "phone", "post"}
local size = tonumber(os.getenv("BENCH_BATCH") or "1000")

request = function()
  local items = {}
  for i = 1, size do
    items[i] = string.format('{"email":"%s","channel":"%s"}', common.pick(emails), common.pick(channels))
  end
  return wrk.format("POST", "/v1/marketing/check", {["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/json"}, '{"contacts":[' .. table.concat(items, ",") .. ']}')
end
