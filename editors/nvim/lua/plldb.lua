-- plldb for nvim-dap: debug AWS Lambda functions written in Python from Neovim.
--
--   require('plldb').setup()                        -- plldb on PATH, server transport
--   require('plldb').setup({ path = '/path/to/plldb', transport = 'stdio' })
--
-- setup() registers the adapter `dap.adapters.plldb` and two configurations for Python buffers. See
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

--- Registers the plldb adapter with nvim-dap and, unless opts.configurations is false, the configurations
--- for opts.filetypes.
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
  if opts.configurations then
    for _, ft in ipairs(opts.filetypes) do
      dap.configurations[ft] = dap.configurations[ft] or {}
      vim.list_extend(dap.configurations[ft], M.configurations(opts))
    end
  end
end

return M
