-- plldb for nvim-dap: debug AWS Lambda functions written in Python from Neovim.
--
--   require('plldb').setup()                        -- plldb on PATH, server transport
--   require('plldb').setup({ path = '/path/to/plldb', transport = 'stdio' })
--
-- setup() registers the adapter `dap.adapters.plldb`, two configurations for Python buffers and :PlldbKnock. See
-- docs/neovim.md in the plldb repository for every option and launch attribute.
local M = {}

local TEMPLATE_NAMES = { 'template.yaml', 'template.yml', 'template.json' }

M.defaults = {
  -- The plldb binary; a bare name is looked up on PATH.
  path = 'plldb',
  -- 'server': nvim-dap picks a free port and starts `plldb dap --listen 127.0.0.1:<port>`.
  -- 'stdio':  nvim-dap starts `plldb dap` and speaks DAP over its stdin/stdout.
  transport = 'server',
  -- Filetypes whose buffers offer the plldb configurations (dap.continue() looks them up by filetype).
  filetypes = { 'python' },
  -- Add the two configurations below; false registers the adapter only (for launch.json users).
  configurations = true,
  -- Port of the local Lambda Invoke API; 0 picks a free port (the REPL shows "Invoke API at …").
  invoke_port = 3001,
}

local function is_file(p)
  return p ~= nil and vim.fn.filereadable(p) == 1
end

--- The folder of the nearest SAM/CloudFormation template above the current buffer, else Neovim's cwd.
function M.project_root()
  local start = vim.fn.expand('%:p:h')
  if start == '' then
    start = vim.fn.getcwd()
  end
  local found = vim.fs.find(TEMPLATE_NAMES, { upward = true, path = start, type = 'file' })[1]
  if found then
    return vim.fs.dirname(found), found
  end
  return vim.fn.getcwd(), nil
end

--- The template to debug: the nearest one above the current buffer. nil lets plldb look in cwd itself and
--- answer with a clear error if there is none.
function M.template()
  local _, template = M.project_root()
  return template
end

--- The project's virtualenv interpreter: the nearest .venv or venv at or above the template's folder, or nil
--- for plldb's own default (a virtualenv beside the template or the code, else python3).
function M.python()
  local root = M.project_root()
  local venvs = vim.fs.find({ '.venv', 'venv' }, { upward = true, path = root, type = 'directory', limit = math.huge })
  for _, venv in ipairs(venvs) do
    local py = venv .. '/bin/python'
    if vim.fn.executable(py) == 1 then
      return py
    end
  end
  return nil
end

-- nvim-dap warns "Debug adapter didn't respond" when the launch is not answered within
-- initialize_timeout_sec (4 s by default). plldb answers the launch once every function's debugpy is up, which
-- takes longer on a busy machine or with many functions.
local ADAPTER_OPTIONS = { initialize_timeout_sec = 30 }

--- The adapter table for a transport ('server' or 'stdio').
function M.adapter(opts)
  opts = vim.tbl_extend('force', M.defaults, opts or {})
  if opts.transport == 'stdio' then
    return { type = 'executable', command = opts.path, args = { 'dap' }, options = vim.deepcopy(ADAPTER_OPTIONS) }
  elseif opts.transport == 'server' then
    return {
      type = 'server',
      host = '127.0.0.1',
      port = '${port}',
      executable = {
        command = opts.path,
        args = { 'dap', '--listen', '127.0.0.1:${port}' },
      },
      options = vim.deepcopy(ADAPTER_OPTIONS),
    }
  end
  error(string.format("plldb: transport %q is not supported: use 'server' or 'stdio'", tostring(opts.transport)))
end

--- The configurations setup() adds: the same two the VS Code extension offers as snippets.
function M.configurations(opts)
  opts = vim.tbl_extend('force', M.defaults, opts or {})
  return {
    {
      type = 'plldb',
      request = 'launch',
      name = 'Lambda: debug a SAM app locally',
      mode = 'local',
      cwd = function()
        return (M.project_root())
      end,
      template = M.template,
      python = M.python,
      invokePort = opts.invoke_port,
    },
    {
      type = 'plldb',
      request = 'launch',
      name = 'Lambda: debug a deployed stack',
      mode = 'aws',
      stackName = function()
        return vim.fn.input('Stack name: ')
      end,
      region = function()
        local r = vim.fn.input('Region (empty: the profile\'s): ')
        if r == '' then
          return nil
        end
        return r
      end,
      cwd = function()
        return (M.project_root())
      end,
    },
  }
end

-- What each knock format puts in the register, in the words of VS Code's Copy Knock… messages.
local KNOCK_WHAT = {
  header = 'the X-Plldb-Knock header',
  curl = 'a curl command with a knock',
  awsCli = 'an AWS CLI command with a knock',
  boto3 = 'a boto3 snippet with a knock',
}

--- Asks the running plldb debug session for a knock (the adapter's plldbKnock request, docs/dap.md) and puts
--- its header line, `X-Plldb-Knock: <token>`, in a register: `+` when Neovim has a clipboard, else the unnamed
--- register. The session must be selective ("selective": true). opts, all optional:
---   fn       the function the knock is for (logical id or name); '*' for every function; nil asks with
---            vim.ui.select when the session debugs several
---   ttl      lifetime, a Go duration ('10m', '1h'); default 15 minutes, at most 12 h
---   route    bind it to HTTP requests matching 'METHOD /path/glob'
---   format   'header' (default), 'curl' (with url), 'awsCli' or 'boto3': the register gets that line instead
---   url      the URL of the curl line
---   register where to put it
--- on_done(err, body), if given, hears the outcome: err a message, or body the adapter's answer (body.value is the
--- token). The token is a bearer credential: it goes to the register, never to a message.
function M.knock(opts, on_done)
  opts = opts or {}
  local function finish(err, body)
    if err then
      vim.notify('plldb: ' .. err, vim.log.levels.ERROR)
    end
    if on_done then
      on_done(err, body)
    end
  end
  local session = require('dap').session()
  if not session then
    return finish('no debug session is running: start a plldb launch with selective = true, then :PlldbKnock')
  end
  local function mint(fn)
    -- An empty Lua table would go out as a JSON array.
    local args = vim.empty_dict()
    args['for'], args.route, args.format, args.url = opts.ttl, opts.route, opts.format, opts.url
    if fn and fn ~= '*' then
      args['function'] = fn
    end
    session:request('plldbKnock', args, function(err, body)
      if err then
        return finish(err.message or tostring(err))
      end
      local reg = opts.register or (vim.fn.has('clipboard') == 1 and '+' or '"')
      vim.fn.setreg(reg, body.text or body.line)
      -- Without a function the AWS CLI and boto3 lines invoke FUNCTION: say so, as plldb knock and VS Code do.
      local fill = ''
      if (opts.format == 'awsCli' or opts.format == 'boto3') and not args['function'] then
        fill = '. Replace FUNCTION with the name of the function to invoke.'
      end
      vim.notify(string.format('plldb: %s for %s in register %s; it expires at %s%s',
        KNOCK_WHAT[opts.format or 'header'] or 'the X-Plldb-Knock header', body.audience, reg, body.expires, fill))
      finish(nil, body)
    end)
  end
  session:request('plldbFunctions', vim.empty_dict(), function(err, info)
    if err then
      return finish(err.message or tostring(err))
    end
    if not info.selective then
      return finish('this debug session is not selective, so every invocation already stops at your breakpoints: '
        .. 'add selective = true to its launch configuration to stop only on invocations that carry a knock')
    end
    if opts.fn or #(info.functions or {}) <= 1 then
      return mint(opts.fn)
    end
    local items = { { label = 'Every function (' .. info.audience .. ')', fn = '*' } }
    for _, f in ipairs(info.functions) do
      table.insert(items, { label = f.logicalId, fn = f.logicalId })
    end
    vim.ui.select(items, {
      prompt = 'Knock for which function?',
      format_item = function(item)
        return item.label
      end,
    }, function(item)
      if item then
        mint(item.fn)
      end
    end)
  end)
end

-- :PlldbKnock [FUNCTION|*] [DURATION]
local function knock_command(cmd)
  local fn, ttl = cmd.fargs[1], cmd.fargs[2]
  M.knock({ fn = fn, ttl = ttl })
end

--- Registers the plldb adapter with nvim-dap and, unless opts.configurations is false, the configurations
--- for opts.filetypes; and the :PlldbKnock command.
function M.setup(opts)
  opts = vim.tbl_extend('force', M.defaults, opts or {})
  if vim.fn.executable(opts.path) ~= 1 then
    vim.notify(
      string.format('plldb: %s is not an executable; install plldb or pass setup({ path = ... })', opts.path),
      vim.log.levels.WARN
    )
  end
  local dap = require('dap')
  dap.adapters.plldb = M.adapter(opts)
  vim.api.nvim_create_user_command('PlldbKnock', knock_command, {
    nargs = '*',
    desc = 'plldb: copy an X-Plldb-Knock header for the selective debug session ([FUNCTION|*] [DURATION])',
  })
  if opts.configurations then
    for _, ft in ipairs(opts.filetypes) do
      dap.configurations[ft] = dap.configurations[ft] or {}
      vim.list_extend(dap.configurations[ft], M.configurations(opts))
    end
  end
end

return M
