-- A user's debug session in real Neovim with real nvim-dap, at nvim-dap's default settings, over
-- editors/nvim/lua/plldb.lua and the hello sample app. nvim_test.go runs it:
--
--   nvim --headless -u NONE -i NONE -n --cmd 'set rtp^=<nvim-dap>' --cmd 'set rtp^=<plldb>/editors/nvim' -l session.lua
--
-- with these environment variables:
--   PLLDB_NVIM_RESULT     JSON file this script writes: every step, passed or failed, and what the user saw
--   PLLDB_NVIM_TRANSPORT  "server" (the module's default, setup() without transport) or "stdio"
--   PLLDB_NVIM_PLLDB      the plldb binary
--   PLLDB_NVIM_APP        app.py of a copy of testfixtures/apps/hello, with .venv/bin/python beside its template
--   PLLDB_NVIM_BP_LINE    the "# BREAKPOINT" line of handler() in that file
--   PLLDB_NVIM_TIMEOUT_MS how long to wait for any one thing
--
-- The script does what a user does (setup, open the file, set a breakpoint, continue, pick the configuration,
-- invoke, look around, continue, terminate) and checks what the user would see. The steps run in order; the
-- first that fails ends the scenario, then the session is terminated and the result written either way.
local lib = dofile(vim.fs.joinpath(vim.fs.dirname(debug.getinfo(1, 'S').source:sub(2)), 'testlib.lua'))
local env, fail, check, wait_for, TIMEOUT = lib.env, lib.fail, lib.check, lib.wait_for, lib.TIMEOUT
local RESULT = env('PLLDB_NVIM_RESULT')
local TRANSPORT = env('PLLDB_NVIM_TRANSPORT')
local PLLDB = env('PLLDB_NVIM_PLLDB')
local APP = env('PLLDB_NVIM_APP')
local BP_LINE = tonumber(env('PLLDB_NVIM_BP_LINE'))
local PAUSE_MS = 3000 -- how long a paused invocation must stay paused

local result = {
  transport = TRANSPORT,
  nvim = tostring(vim.version()),
  steps = {},
  notifications = {}, -- vim.notify calls: nvim-dap's messages to the user
  output = {}, -- output events (what the REPL shows)
  events = {}, -- stopped / continued / thread / terminated / exited events, in order
  continues = {}, -- continue requests nvim-dap sent, with the thread each resumed
  calls = {}, -- the Invoke API calls and their answers
}

-- Everything nvim-dap tells the user goes through vim.notify.
lib.record_notifications(result.notifications)

local function realpath(p)
  return p and (vim.uv.fs_realpath(p) or p)
end

-- An HTTP POST on the Invoke API, as `aws lambda invoke` makes it, without waiting: the answer lands in the
-- returned table (done, status, body, err) when it comes.
local function invoke(endpoint, fn, payload)
  local host, port = endpoint:match('^http://([%d%.]+):(%d+)$')
  local path = '/2015-03-31/functions/' .. fn .. '/invocations'
  local call = { fn = fn, payload = payload, done = false }
  table.insert(result.calls, call)
  local tcp = assert(vim.uv.new_tcp())
  local chunks = {}
  local function finish(err)
    if call.done then
      return
    end
    call.err = err
    local raw = table.concat(chunks)
    local head, body = raw:match('^(.-)\r\n\r\n(.*)$')
    if head then
      call.status = tonumber(head:match('^HTTP/1%.%d (%d+)'))
      if head:lower():find('\ntransfer%-encoding:%s*chunked') then
        local decoded, rest = {}, body
        while true do
          local size, after = rest:match('^(%x+)[^\r\n]*\r\n(.*)$')
          size = size and tonumber(size, 16)
          if not size or size == 0 then
            break
          end
          table.insert(decoded, after:sub(1, size))
          rest = after:sub(size + 3)
        end
        body = table.concat(decoded)
      end
      call.body = body
    elseif not err then
      call.err = 'connection closed without an HTTP answer: ' .. raw
    end
    call.done = true
    if not tcp:is_closing() then
      tcp:close()
    end
  end
  tcp:connect(host, tonumber(port), function(cerr)
    if cerr then
      return finish('connect: ' .. cerr)
    end
    tcp:write(table.concat({
      'POST ' .. path .. ' HTTP/1.1',
      'Host: ' .. host .. ':' .. port,
      'Content-Type: application/json',
      'Content-Length: ' .. #payload,
      'Connection: close',
      '',
      payload,
    }, '\r\n'))
    tcp:read_start(function(rerr, data)
      if rerr then
        return finish('read: ' .. rerr)
      end
      if data then
        table.insert(chunks, data)
      else
        finish(nil)
      end
    end)
  end)
  return call
end

local function describe_call(call)
  if not call.done then
    return 'not answered'
  end
  if call.err then
    return 'failed: ' .. call.err
  end
  return string.format('HTTP %s %s', tostring(call.status), tostring(call.body))
end

-- The events and continue requests seen so far, for failure messages.
local function history()
  local lines = {}
  for _, e in ipairs(result.events) do
    table.insert(lines, string.format('  event %s %s', e.event, vim.json.encode(e.body or vim.empty_dict())))
  end
  local auto = false
  for _, c in ipairs(result.continues) do
    table.insert(lines, string.format('  nvim-dap sent continue for thread %s (%s)', tostring(c.threadId), c.thread))
    auto = auto or not c.user
  end
  if auto then
    table.insert(lines, '  (continues the user did not ask for: nvim-dap resumes a thread that stops while another'
      .. ' is stopped, auto_continue_if_many_stopped, on by default)')
  end
  return table.concat(lines, '\n')
end

local dap -- require('dap'), once setup ran
local user_continue = false -- the next continue request is the user's
local session -- the plldb session
local endpoint -- the Invoke API, from the adapter's "Invoke API at …" output

local function request(command, args)
  local done, err, resp = false, nil, nil
  session:request(command, args, function(e, r)
    done, err, resp = true, e, r
  end)
  wait_for(command .. ' response', function()
    return done
  end)
  if err then
    fail('%s failed: %s', command, err.message or vim.inspect(err))
  end
  return resp
end

local function thread_name(id)
  local t = session and session.threads[id]
  return t and t.name or '?'
end

-- Waits until nvim-dap focuses a stopped thread (the one whose frame it jumps to) and returns its id.
local function wait_for_focus()
  wait_for('nvim-dap to stop at the breakpoint', function()
    return session.stopped_thread_id ~= nil and session.current_frame ~= nil
  end)
  return session.stopped_thread_id
end

-- Whether a thread name names an invocation of fn: "<fn> <request id, or its start>", with a request id the
-- adapter announced in its "→ <fn> <request id> started" output.
local function invocation_thread(name, fn)
  local f, id = (name or ''):match('^(%S+) (%S+)$')
  if f ~= fn or #id < 8 then
    return false
  end
  for _, line in ipairs(result.output) do
    local of, rid = line:match('(%S+) (%S+) started')
    if of == fn and rid:sub(1, #id) == id then
      return true
    end
  end
  return false
end

-- Whether a stopped event is a stop at the user's breakpoint (its id from the setBreakpoints answer).
local function hit_breakpoint(body)
  local bp = result.set_breakpoints and (result.set_breakpoints.breakpoints or {})[1]
  if body.reason ~= 'breakpoint' or not bp then
    return false
  end
  for _, id in ipairs(body.hitBreakpointIds or {}) do
    if id == bp.id then
      return true
    end
  end
  return false
end

local function variables(ref)
  return request('variables', { variablesReference = ref }).variables
end

local function find_var(vars, name)
  for _, v in ipairs(vars) do
    if v.name == name then
      return v
    end
  end
  local names = {}
  for _, v in ipairs(vars) do
    table.insert(names, v.name)
  end
  fail('no variable %s among %s', name, table.concat(names, ', '))
end

local function answer_json(call)
  check(call.done and not call.err, 'the caller has no answer: %s', describe_call(call))
  check(call.status == 200, 'the caller got %s', describe_call(call))
  local ok, payload = pcall(vim.json.decode, call.body)
  check(ok and type(payload) == 'table', 'the caller got no JSON object: %s', tostring(call.body))
  check(payload.statusCode == 200, 'the handler answered %s', tostring(call.body))
  local ok2, body = pcall(vim.json.decode, payload.body)
  check(ok2 and type(body) == 'table', 'the handler\'s body is not JSON: %s', tostring(payload.body))
  return body
end

-- The scenario: each step's name is what the Go test reports.
local tid, frame, event_var, first_call, call_a, tid_a

local steps = {
  {
    'module options',
    function()
      local plldb = require('plldb')
      local server, stdio = plldb.adapter(), plldb.adapter({ transport = 'stdio' })
      check(server.type == 'server' and server.port == '${port}' and server.executable.command == 'plldb'
        and table.concat(server.executable.args, ' ') == 'dap --listen 127.0.0.1:${port}',
        'adapter() is %s', vim.inspect(server))
      check(stdio.type == 'executable' and stdio.command == 'plldb' and table.concat(stdio.args, ' ') == 'dap',
        'adapter({ transport = "stdio" }) is %s', vim.inspect(stdio))
      local ok, err = pcall(plldb.adapter, { transport = 'tcp' })
      check(not ok and tostring(err):find('"tcp" is not supported', 1, true), 'transport tcp: %s', tostring(err))
      local n = #result.notifications
      plldb.setup({ path = '/nonexistent/plldb', configurations = false })
      local warned = result.notifications[n + 1]
      check(warned and warned.level == vim.log.levels.WARN and warned.msg:find('/nonexistent/plldb', 1, true),
        'setup() with a missing binary told the user %s', vim.inspect(warned))
      check(require('dap').configurations.python == nil, 'configurations = false added %s',
        vim.inspect(require('dap').configurations.python))
    end,
  },
  {
    'setup',
    function()
      local opts = { path = PLLDB, invoke_port = 0 }
      if TRANSPORT ~= 'server' then
        opts.transport = TRANSPORT -- the server transport is the module's default
      end
      require('plldb').setup(opts)
      dap = require('dap')
      -- Logging only (every DAP message to dap.log, which the Go test prints when a step fails): nvim-dap's
      -- behaviour stays at its defaults.
      dap.set_log_level('TRACE')
      local a = dap.adapters.plldb
      if TRANSPORT == 'server' then
        check(a and a.type == 'server' and a.executable and a.executable.command == PLLDB,
          'setup() registered %s', vim.inspect(a))
      else
        check(a and a.type == 'executable' and a.command == PLLDB, 'setup() registered %s', vim.inspect(a))
      end
      check(#(dap.configurations.python or {}) == 2, 'python configurations: %s',
        vim.inspect(dap.configurations.python))
      for _, what in ipairs({ 'stopped', 'continued', 'thread', 'terminated', 'exited' }) do
        dap.listeners.before['event_' .. what]['plldb-test'] = function(_, body)
          table.insert(result.events, { event = what, body = body })
        end
      end
      dap.listeners.after.event_output['plldb-test'] = function(_, body)
        table.insert(result.output, body.output)
        endpoint = endpoint or (body.output or ''):match('Invoke API at (http://[%d%.]+:%d+)')
      end
      dap.listeners.after.continue['plldb-test'] = function(s, _, _, req)
        local id = req and req.threadId
        local t = id and s.threads[id]
        table.insert(result.continues, { threadId = id, thread = t and t.name or '?', user = user_continue })
        user_continue = false
      end
      dap.listeners.after.setBreakpoints['plldb-test'] = function(_, err, resp)
        result.set_breakpoints = err and { error = err.message } or resp
      end
    end,
  },
  {
    'breakpoint set before launch',
    function()
      vim.cmd('filetype on') -- as in every user's Neovim; -u NONE leaves it off
      vim.cmd.edit(vim.fn.fnameescape(APP))
      check(vim.bo.filetype == 'python', 'app.py has filetype %q', vim.bo.filetype)
      local text = vim.api.nvim_buf_get_lines(0, BP_LINE - 1, BP_LINE, true)[1]
      check(text:find('# BREAKPOINT', 1, true), 'line %d of app.py is %q', BP_LINE, text)
      vim.api.nvim_win_set_cursor(0, { BP_LINE, 0 })
      dap.set_breakpoint()
      local bps = require('dap.breakpoints').get(0)[vim.api.nvim_get_current_buf()] or {}
      check(#bps == 1 and bps[1].line == BP_LINE, 'breakpoints: %s', vim.inspect(bps))
    end,
  },
  {
    'configuration picker',
    function()
      local picked
      vim.ui.select = function(items, opts, on_choice)
        local labels = {}
        for i, item in ipairs(items) do
          labels[i] = opts.format_item and opts.format_item(item) or tostring(item)
        end
        picked = { prompt = opts.prompt, labels = labels }
        on_choice(items[1], 1) -- the user picks the first entry
      end
      dap.continue()
      wait_for('the configuration picker', function()
        return picked ~= nil
      end)
      result.picker = picked
      check(picked.labels[1] == 'Lambda: debug a SAM app locally' and picked.labels[2] == 'Lambda: debug a deployed stack',
        'the picker offered %s', vim.inspect(picked.labels))
    end,
  },
  {
    'launch',
    function()
      wait_for('the session and the "Invoke API at" line', function()
        return dap.session() ~= nil and endpoint ~= nil
      end)
      session = dap.session()
      local cfg = session.config
      local hello = vim.fs.dirname(vim.fs.dirname(APP))
      check(cfg.template == hello .. '/template.yaml', 'template resolved to %s', tostring(cfg.template))
      check(cfg.python == hello .. '/.venv/bin/python', 'python resolved to %s', tostring(cfg.python))
      check(cfg.cwd == hello, 'cwd resolved to %s', tostring(cfg.cwd))
      check(endpoint:match('^http://127%.0%.0%.1:%d+$'), 'Invoke API at %s', endpoint)
      wait_for('the breakpoint to be sent', function()
        return result.set_breakpoints ~= nil
      end)
      local bp = (result.set_breakpoints.breakpoints or {})[1]
      check(bp and bp.verified and bp.line == BP_LINE, 'setBreakpoints answered %s', vim.inspect(result.set_breakpoints))
    end,
  },
  {
    'invoke and stop at the breakpoint',
    function()
      first_call = invoke(endpoint, 'HelloFunction', '{"name":"plldb","n":7}')
      wait_for_focus()
      tid = session.stopped_thread_id
      check(invocation_thread(thread_name(tid), 'HelloFunction'),
        'stopped in thread %q, not one named after an invocation of HelloFunction', thread_name(tid))
      check(not first_call.done, 'the caller got its answer at the stop: %s', describe_call(first_call))
    end,
  },
  {
    'still paused 3 s later',
    function()
      vim.wait(PAUSE_MS, function()
        return first_call.done
      end, 20)
      local problems = {}
      if first_call.done then
        vim.wait(500) -- let nvim-dap's last messages land, for the history below
        table.insert(problems, 'the caller was answered while the handler should be paused at the breakpoint: '
          .. describe_call(first_call))
      end
      if not (session.stopped_thread_id == tid and session.threads[tid] and session.threads[tid].stopped) then
        table.insert(problems, string.format('nvim-dap no longer shows thread %d (%s) stopped', tid, thread_name(tid)))
      end
      check(#problems == 0, '%s\nnvim-dap saw:\n%s', table.concat(problems, '\n'), history())
    end,
  },
  {
    'jump to frame',
    function()
      local cf = session.current_frame
      check(cf and cf.line == BP_LINE and cf.name == 'handler', 'current_frame is %s', vim.inspect(cf))
      check(realpath(cf.source and cf.source.path) == realpath(APP), 'current_frame source is %s',
        vim.inspect(cf.source))
      check(realpath(vim.api.nvim_buf_get_name(0)) == realpath(APP), 'the current buffer is %s',
        vim.api.nvim_buf_get_name(0))
      local cursor = vim.api.nvim_win_get_cursor(0)
      check(cursor[1] == BP_LINE, 'the cursor is on line %d, not the breakpoint line %d', cursor[1], BP_LINE)
      local placed = vim.fn.sign_getplaced(vim.api.nvim_get_current_buf(), { group = session.sign_group })[1]
      local signs = placed and placed.signs or {}
      check(#signs == 1 and signs[1].name == 'DapStopped' and signs[1].lnum == BP_LINE, 'stop signs: %s',
        vim.inspect(signs))
    end,
  },
  {
    'stackTrace',
    function()
      local frames = request('stackTrace', { threadId = tid, startFrame = 0 }).stackFrames
      frame = frames[1]
      check(frame and frame.name == 'handler' and frame.line == BP_LINE, 'top frame %s', vim.inspect(frame))
      check(realpath(frame.source.path) == realpath(APP), 'top frame source %s', vim.inspect(frame.source))
    end,
  },
  {
    'scopes and variables',
    function()
      local scopes = request('scopes', { frameId = frame.id }).scopes
      local locals
      for _, s in ipairs(scopes) do
        if s.name:lower():find('locals') then
          locals = s
        end
      end
      check(locals, 'no Locals scope in %s', vim.inspect(scopes))
      local vars = variables(locals.variablesReference)
      event_var = find_var(vars, 'event')
      check(event_var.value:find("'name': 'plldb'", 1, true), 'event is %s', event_var.value)
      check(event_var.variablesReference > 0, 'event cannot be expanded')
      find_var(vars, 'context')
      local fields = variables(event_var.variablesReference)
      check(find_var(fields, "'n'").value == '7', 'event["n"] is %s', find_var(fields, "'n'").value)
    end,
  },
  {
    'evaluate',
    function()
      local r = request('evaluate', { expression = 'event["name"].upper() + str(event["n"] * 6)', frameId = frame.id,
        context = 'repl' })
      check(r.result == "'PLLDB42'", 'evaluate gave %s', vim.inspect(r))
    end,
  },
  {
    'setVariable',
    function()
      local r = request('setVariable', { variablesReference = event_var.variablesReference, name = "'name'",
        value = "'nvim-dap'" })
      check(r.value == "'nvim-dap'", 'setVariable answered %s', vim.inspect(r))
    end,
  },
  {
    "continue and the caller's result",
    function()
      user_continue = true
      dap.continue() -- the user's continue: resumes the focused thread
      wait_for("the caller's answer", function()
        return first_call.done
      end)
      local body = answer_json(first_call)
      check(body.event and body.event.name == 'nvim-dap' and body.event.n == 7,
        'the caller got %s, not the event changed by setVariable', first_call.body)
      check(body.greeting == 'hello from dev', 'greeting %s', tostring(body.greeting))
    end,
  },
  {
    'a second invocation while the first is paused',
    function()
      call_a = invoke(endpoint, 'HelloFunction', '{"name":"first"}')
      tid_a = wait_for_focus()
      local seen = #result.events
      local call_b = invoke(endpoint, 'HelloFunction', '{"name":"second"}')
      -- The second invocation's stop: a stop at the user's breakpoint in another thread.
      local tid_b
      wait_for('the second invocation to stop at the breakpoint', function()
        for i = seen + 1, #result.events do
          local e = result.events[i]
          if e.event == 'stopped' and e.body.threadId ~= tid_a and hit_breakpoint(e.body) then
            tid_b = e.body.threadId
          end
        end
        return tid_b ~= nil
      end)
      local names = {}
      for _, t in ipairs(request('threads', nil).threads) do
        names[t.id] = t.name
      end
      check(names[tid_a] and names[tid_b], 'threads answered %s; want threads %d and %d', vim.inspect(names), tid_a,
        tid_b)
      check(invocation_thread(names[tid_a], 'HelloFunction'),
        'the first stop is in thread %q, not one named after an invocation of HelloFunction', names[tid_a])
      -- nvim-dap keeps the focus on the first stop. At its defaults it resumes a thread that stops while another
      -- is stopped (auto_continue_if_many_stopped), so the second caller gets its answer; otherwise the second
      -- thread stays stopped until the user resumes it.
      if dap.defaults.fallback.auto_continue_if_many_stopped then
        wait_for("the second caller's answer (nvim-dap resumes the second stop)", function()
          return call_b.done
        end)
        local body = answer_json(call_b)
        check(body.event and body.event.name == 'second', 'the second caller got %s', call_b.body)
      else
        vim.wait(500)
        check(session.threads[tid_b] and session.threads[tid_b].stopped and not call_b.done,
          'the second invocation is not stopped (%s); nvim-dap saw:\n%s', describe_call(call_b), history())
        check(invocation_thread(names[tid_b], 'HelloFunction') and names[tid_b] ~= names[tid_a],
          'the second stop is in thread %q, the first in %q', names[tid_b], names[tid_a])
      end
      check(not call_a.done, 'the first caller was answered while paused: %s', describe_call(call_a))
      check(session.stopped_thread_id == tid_a and session.threads[tid_a].stopped,
        'nvim-dap no longer focuses the first stop (thread %d); it saw:\n%s', tid_a, history())
    end,
  },
}

local function record(name, fn)
  local t0 = vim.uv.hrtime()
  local ok, err = xpcall(fn, function(e)
    if type(e) == 'string' and not e:find('\n%s*%[C%]') and not e:find('stack traceback') then
      -- Assertion messages (error(msg, 0)) carry no location; Lua errors keep their traceback.
      if e:match('^[^:]+%.lua:%d+:') then
        return debug.traceback(e, 2)
      end
      return e
    end
    return debug.traceback(tostring(e), 2)
  end)
  table.insert(result.steps, { name = name, ok = ok, error = (not ok) and tostring(err) or nil,
    ms = math.floor((vim.uv.hrtime() - t0) / 1e6) })
  return ok
end

for _, s in ipairs(steps) do
  if not record(s[1], s[2]) then
    break
  end
end

-- terminate: always, so nothing is left running whatever failed above.
record('terminate', function()
  check(dap ~= nil and dap.session() ~= nil, 'no session to terminate')
  local s = dap.session()
  dap.terminate()
  wait_for('the session to end', function()
    return s.closed and dap.session() == nil
  end)
  -- No invocation is lost: callers still waiting get an answer when the session ends.
  for _, call in ipairs(result.calls) do
    wait_for('an answer to every caller', function()
      return call.done
    end)
    check(call.status ~= nil, 'a caller got no HTTP answer: %s', describe_call(call))
  end
end)

-- What nvim-dap told the user over the whole session: a normal stop has a location, and nothing failed.
vim.wait(300) -- messages nvim-dap scheduled as the session ended
record('no "stopped at unavailable location" message', function()
  for _, n in ipairs(result.notifications) do
    check(not n.msg:find('unavailable location', 1, true), 'nvim-dap told the user: %s', n.msg)
  end
end)
record('no error messages', function()
  local errors = {}
  for _, n in ipairs(result.notifications) do
    if n.level >= vim.log.levels.ERROR then
      table.insert(errors, n.msg)
    end
  end
  check(#errors == 0, 'nvim-dap showed errors:\n  %s', table.concat(errors, '\n  '))
end)

for _, call in ipairs(result.calls) do
  call.answer = describe_call(call)
end

local f = assert(io.open(RESULT, 'w'))
f:write(vim.json.encode(result))
f:close()
