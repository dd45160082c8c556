-- Smoke test of editors/nvim/lua/plldb.lua under plain Lua with stand-ins for nvim-dap and the parts of the vim
-- API the module uses: `lua5.1 editors/nvim/test/smoke.lua <repo root>` (extension/test/nvim.test.ts runs it
-- when a Lua interpreter is on PATH). Real Neovim behaviour (vim.fs.find, nvim-dap) is not exercised here.
local root = assert(arg[1], 'usage: smoke.lua <repo root>')
package.path = root .. '/editors/nvim/lua/?.lua;' .. package.path
local hello = root .. '/testfixtures/apps/hello'
local dap = { adapters = {}, configurations = {} }
package.loaded.dap = dap
local function extend(_, a, b) local r = {} for k, v in pairs(a) do r[k] = v end for k, v in pairs(b) do r[k] = v end return r end
vim = {
  tbl_extend = extend,
  list_extend = function(a, b) for _, v in ipairs(b) do a[#a + 1] = v end return a end,
  log = { levels = { WARN = 2 } },
  notify = function(m) print('notify: ' .. m) end,
  fn = {
    executable = function(p) return (p == 'plldb' or p:match('/%.venv/bin/python$')) and 1 or 0 end,
    expand = function() return hello .. '/src' end,
    getcwd = function() return '/tmp' end,
    filereadable = function() return 1 end,
    input = function() return 'demo' end,
  },
  fs = {
    find = function(names, o)
      assert(o.upward)
      if o.type == 'directory' then
        assert(o.path == hello)
        return { hello .. '/venv-missing', root .. '/.venv' }
      end
      return { hello .. '/template.yaml' }
    end,
    dirname = function(p) return (p:gsub('/[^/]*$', '')) end,
  },
}
local plldb = require('plldb')
plldb.setup()
local a = dap.adapters.plldb
assert(a.type == 'server' and a.port == '${port}' and a.executable.args[3] == '127.0.0.1:${port}')
assert(#dap.configurations.python == 2)
local c = dap.configurations.python[1]
assert(c.template() == hello .. '/template.yaml', c.template())
assert(c.cwd() == hello)
assert(c.python() == root .. '/.venv/bin/python', c.python())
assert(dap.configurations.python[2].stackName() == 'demo')
assert(plldb.adapter({ transport = 'stdio' }).args[1] == 'dap')
assert(not pcall(plldb.adapter, { transport = 'tcp' }))
plldb.setup({ path = '/nope', configurations = false })
print('lua smoke ok')
