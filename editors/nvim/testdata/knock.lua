-- :PlldbKnock in real Neovim with real nvim-dap, over editors/nvim/lua/plldb.lua and the hello sample app in a
-- selective local launch. knock_test.go runs it like session.lua, with:
--   PLLDB_NVIM_RESULT     JSON file this script writes: the steps, the knocks it got, what the user saw
--   PLLDB_NVIM_PLLDB      the plldb binary
--   PLLDB_NVIM_APP        app.py of a copy of testfixtures/apps/hello
--   PLLDB_NVIM_BP_LINE    the "# BREAKPOINT" line of handler() in that file
--   PLLDB_NVIM_PYTHON     the Python with debugpy
--   PLLDB_NVIM_TIMEOUT_MS how long to wait for any one thing
--   PLLDB_KNOCK_DIR       where the launch keeps its knock session file (copied into the result's folder, for the
--                         Go side to verify the knocks with the session's key)
local lib = dofile(vim.fs.joinpath(vim.fs.dirname(debug.getinfo(1, 'S').source:sub(2)), 'testlib.lua'))
local env, fail, check, wait_for, TIMEOUT = lib.env, lib.fail, lib.check, lib.wait_for, lib.TIMEOUT
local RESULT = env('PLLDB_NVIM_RESULT')
local PLLDB = env('PLLDB_NVIM_PLLDB')
local APP = env('PLLDB_NVIM_APP')
local BP_LINE = tonumber(env('PLLDB_NVIM_BP_LINE'))
local PYTHON = env('PLLDB_NVIM_PYTHON')
local KNOCK_DIR = env('PLLDB_KNOCK_DIR')

local result = { steps = {}, notifications = {}, picks = {}, knocks = {} }

lib.record_notifications(result.notifications)

-- The last notification, once one more than n has arrived.
-- knock calls the Lua API and waits for its callback, answering the callback's error and body.
local function knock(opts)
  local done, err, body = false, nil, nil
  require('plldb').knock(opts, function(e, b)
    done, err, body = true, e, b
  end)
  wait_for('the knock', function()
    return done
  end)
  return err, body
end

local function next_notification(n)
  wait_for('a message', function()
    return #result.notifications > n
  end)
  return result.notifications[#result.notifications]
end

-- The user's pick in vim.ui.select: the entry labelled choose, recording what was offered.
local choose
vim.ui.select = function(items, opts, on_choice)
  local labels = {}
  for i, item in ipairs(items) do
    labels[i] = opts.format_item and opts.format_item(item) or tostring(item)
  end
  table.insert(result.picks, { prompt = opts.prompt, labels = labels })
  for i, label in ipairs(labels) do
    if label == choose then
      return on_choice(items[i], i)
    end
  end
  on_choice(nil, nil)
end

local dap, endpoint, stopped
local steps = {
  {
    'no session',
    function()
      require('plldb').setup({ path = PLLDB, configurations = false })
      dap = require('dap')
      check(vim.fn.exists(':PlldbKnock') == 2, 'setup() did not define :PlldbKnock')
      local n = #result.notifications
      vim.cmd('PlldbKnock')
      local m = next_notification(n)
      check(m.level == vim.log.levels.ERROR and m.msg:find('no debug session is running', 1, true), 'told %s',
        vim.inspect(m))
      m.expected = true
    end,
  },
  {
    'selective launch',
    function()
      dap.listeners.after.event_output['plldb-test'] = function(_, body)
        endpoint = endpoint or (body.output or ''):match('Invoke API at (http://[%d%.]+:%d+)')
      end
      dap.listeners.before.event_stopped['plldb-test'] = function(_, body)
        stopped = body
      end
      vim.cmd('filetype on')
      vim.cmd.edit(vim.fn.fnameescape(APP))
      vim.api.nvim_win_set_cursor(0, { BP_LINE, 0 })
      dap.set_breakpoint()
      local hello = vim.fs.dirname(vim.fs.dirname(APP))
      dap.run({
        type = 'plldb', request = 'launch', name = 'knock', mode = 'local', selective = true,
        template = hello .. '/template.yaml', cwd = hello, python = PYTHON, invokePort = 0,
        functions = { 'HelloFunction', 'PackageFunction' },
      })
      wait_for('the session and the "Invoke API at" line', function()
        return dap.session() ~= nil and endpoint ~= nil
      end)
    end,
  },
  {
    ':PlldbKnock asks for the function and fills the register',
    function()
      choose = 'HelloFunction'
      local n = #result.notifications
      vim.fn.setreg('"', '')
      vim.cmd('PlldbKnock')
      local m = next_notification(n)
      check(m.level == vim.log.levels.INFO, 'told %s', vim.inspect(m))
      local reg = vim.fn.has('clipboard') == 1 and '+' or '"'
      local line = vim.fn.getreg(reg)
      local tok = line:match('^X%-Plldb%-Knock: (%S+)$')
      check(tok, 'register %s holds %q', reg, line)
      check(m.msg:find('for local/HelloFunction in register ' .. reg, 1, true), 'told %q', m.msg)
      check(not m.msg:find(tok, 1, true), 'the message shows the token: %q', m.msg)
      local picked = result.picks[#result.picks]
      check(picked and vim.deep_equal(picked.labels, { 'Every function (local)', 'HelloFunction', 'PackageFunction' }),
        'offered %s', vim.inspect(picked))
      table.insert(result.knocks, { token = tok, want = 'local/HelloFunction' })
    end,
  },
  {
    ':PlldbKnock * 5m and the Lua API',
    function()
      local n = #result.picks
      vim.cmd('PlldbKnock * 5m')
      wait_for('the knock', function()
        return vim.fn.getreg('"'):find('X-Plldb-Knock: ', 1, true) == 1 or vim.fn.getreg('+'):find('X-Plldb-Knock: ', 1, true) == 1
      end)
      check(#result.picks == n, 'a function was given, yet the user was asked')
      local err, body = knock({ fn = 'PackageFunction', ttl = '2h', format = 'curl', url = 'http://localhost:8080/x',
        register = 'k' })
      check(not err, 'knock failed: %s', tostring(err))
      check(vim.fn.getreg('k') == "curl -H 'X-Plldb-Knock: " .. body.value .. "' 'http://localhost:8080/x'\n",
        'register k holds %q', vim.fn.getreg('k'))
      table.insert(result.knocks, { token = body.value, want = 'local/PackageFunction', ttl_s = 7200 })
      -- The message names what the register holds in words, for every format ("a awsCli line" was no English).
      for _, f in ipairs({ { 'curl', 'a curl command' }, { 'awsCli', 'an AWS CLI command' }, { 'boto3', 'a boto3 snippet' } }) do
        local n = #result.notifications
        err = knock({ fn = 'HelloFunction', format = f[1], url = 'http://localhost:8080/x', register = 'k' })
        check(not err, 'knock failed: %s', tostring(err))
        local m = next_notification(n)
        check(m.msg:find('plldb: ' .. f[2] .. ' with a knock for local/HelloFunction in register k; it expires at ', 1, true) == 1,
          '%s: told %q', f[1], m.msg)
      end
      -- For every function, the AWS CLI and boto3 lines invoke FUNCTION, and the message says to replace it.
      for _, f in ipairs({ 'awsCli', 'boto3' }) do
        local n = #result.notifications
        err = knock({ fn = '*', format = f, register = 'k' })
        check(not err, 'knock failed: %s', tostring(err))
        check(vim.fn.getreg('k'):find('FUNCTION', 1, true), '%s: register k holds %q', f, vim.fn.getreg('k'))
        local m = next_notification(n)
        check(m.msg:find(' for local in register k; it expires at ', 1, true), '%s: told %q', f, m.msg)
        check(vim.endswith(m.msg, '. Replace FUNCTION with the name of the function to invoke.'), '%s: told %q', f, m.msg)
      end
      err = knock({ fn = 'HelloFunction', ttl = '13h' })
      check(err and err:find('"for" must be a duration between 1s and 12h', 1, true), 'a 13 h knock: %s', tostring(err))
      result.notifications[#result.notifications].expected = true
    end,
  },
  {
    'the knock stops the invocation',
    function()
      local host, port = endpoint:match('^http://([%d%.]+):(%d+)$')
      local payload = vim.json.encode({ name = 'knocked', headers = { ['X-Plldb-Knock'] = result.knocks[1].token } })
      local tcp = assert(vim.uv.new_tcp())
      tcp:connect(host, tonumber(port), function(cerr)
        assert(not cerr, cerr)
        tcp:write(table.concat({ 'POST /2015-03-31/functions/HelloFunction/invocations HTTP/1.1',
          'Host: ' .. host .. ':' .. port, 'Content-Type: application/json', 'Content-Length: ' .. #payload,
          'Connection: close', '', payload }, '\r\n'))
        tcp:read_start(function(_, data)
          if not data then
            tcp:close()
          end
        end)
      end)
      wait_for('the stop at the breakpoint', function()
        return stopped ~= nil
      end)
      check(stopped.reason == 'breakpoint', 'stopped for %s', vim.inspect(stopped))
      wait_for('nvim-dap to show the stopped frame', function()
        return dap.session().current_frame ~= nil
      end)
      local cf = dap.session().current_frame
      check(cf.line == BP_LINE and cf.name == 'handler', 'stopped in %s', vim.inspect(cf))
      -- The session file is the launch's key: the Go side verifies the knocks with it.
      local f = assert(io.open(KNOCK_DIR .. '/local.json'))
      result.session_file = f:read('*a')
      f:close()
    end,
  },
}

for _, s in ipairs(steps) do
  local t0 = vim.uv.hrtime()
  local ok, err = pcall(s[2])
  table.insert(result.steps, { name = s[1], ok = ok, error = (not ok) and tostring(err) or nil,
    ms = math.floor((vim.uv.hrtime() - t0) / 1e6) })
  if not ok then
    break
  end
end

local s = dap and dap.session()
if s then
  dap.terminate()
  vim.wait(TIMEOUT, function()
    return s.closed and dap.session() == nil
  end, 20)
end

local f = assert(io.open(RESULT, 'w'))
f:write(vim.json.encode(result))
f:close()
