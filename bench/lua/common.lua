-- Shared by the scripts: lines of a file, and a pseudo-random pick from them.
local M = {}

function M.lines(path)
  local items = {}
  for line in io.lines(path) do items[#items + 1] = line end
  return items
end

function M.pick(items)
  return items[math.random(1, #items)]
end

return M
