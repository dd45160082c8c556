-- What session.lua and knock.lua share: reading their settings, failing with a message, waiting, and recording
-- what nvim-dap and the plugin tell the user. Each script loads it with dofile from its own folder.
local M = {}

M.TIMEOUT = tonumber(os.getenv('PLLDB_NVIM_TIMEOUT_MS') or '120000')

-- env is a setting the Go side must have given.
function M.env(name)
  return (assert(os.getenv(name), name .. ' is not set'))
end

function M.fail(fmt, ...)
  error(string.format(fmt, ...), 0)
end

function M.check(cond, fmt, ...)
  if not cond then
    M.fail(fmt, ...)
  end
  return cond
end

-- wait_for waits until cond holds, at most timeout ms (default TIMEOUT), and fails naming what it waited for.
function M.wait_for(what, cond, timeout)
  timeout = timeout or M.TIMEOUT
  if not vim.wait(timeout, cond, 20) then
    M.fail('timed out after %.0f s waiting for %s', timeout / 1000, what)
  end
end

-- record_notifications appends every vim.notify call (how nvim-dap and the plugin talk to the user) to list.
function M.record_notifications(list)
  vim.notify = function(msg, level)
    table.insert(list, { msg = tostring(msg), level = level or vim.log.levels.INFO })
  end
end

return M
