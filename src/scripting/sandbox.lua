-- The sandbox scripts run in, as Redis 7.0 builds it (script_lua.c, eval.c): loaded once per
-- Lua state with the internal table `rt` (Rust's hooks) and the real globals table `G`.
-- It returns the protected globals proxy that scripts see and the runner that calls a script
-- under the error handler. Nothing here is reachable from a script but what it puts in G.
local rt, G = ...
local error, type, tostring, tonumber, select, unpack, rawget, rawset, setmetatable,
    getmetatable, xpcall, pcall, setfenv, loadstring, load =
    error, type, tostring, tonumber, select, unpack, rawget, rawset, setmetatable,
    getmetatable, xpcall, pcall, setfenv, loadstring, load
local dbg = debug
G.debug = nil
G.print = nil
G.dofile = nil
G.loadfile = nil

-- Redis's Lua has read-only tables; stock Lua 5.1 does not, so every table a script can reach
-- from the globals is an empty proxy whose writes fail, with the real table behind __index.
local readonly = setmetatable({}, { __mode = 'k' })
local function refuse() error('Attempt to modify a readonly table', 2) end
local function protect(real, index)
    local proxy = {}
    readonly[proxy] = true
    setmetatable(proxy, { __index = index or real, __newindex = refuse, __metatable = false, __readonly = true })
    return proxy
end

local function fail(message) error({ err = 'ERR ' .. message }) end
local function pack(...) return { n = select('#', ...), ... } end

-- redis.* ------------------------------------------------------------------------------------
local redis = {}
-- redis.call and redis.pcall are C functions (call_shim.rs: so `return redis.call(...)` is not
-- a Lua tail call and the error keeps the caller's line, and any number of arguments passes);
-- a raised error table waits in rt.pending.
redis.call = rt.redis_call
redis.pcall = rt.redis_pcall
local function pending(err)
    if type(err) == 'userdata' then
        local table_error = rawget(rt, 'pending')
        rawset(rt, 'pending', nil)
        if table_error then return table_error end
    end
    return err
end
redis.sha1hex = function(...)
    if select('#', ...) ~= 1 then fail('wrong number of arguments') end
    return rt.sha1hex((...))
end
redis.error_reply = function(...)
    local text = ...
    if select('#', ...) ~= 1 or type(text) ~= 'string' then
        return rt.error_table('wrong number or type of arguments')
    end
    if text:sub(1, 1) ~= '-' then text = '-' .. text end
    return rt.error_table(text)
end
redis.status_reply = function(...)
    local text = ...
    if select('#', ...) ~= 1 or type(text) ~= 'string' then
        return rt.error_table('wrong number or type of arguments')
    end
    return { ok = text }
end
redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING = 0, 1, 2, 3
redis.log = function(...)
    local n = select('#', ...)
    if n < 2 then fail('redis.log() requires two arguments or more.') end
    local level = tonumber((...))
    if type((...)) ~= 'number' and level == nil then fail('First argument must be a number (log level).') end
    if level < 0 or level > 3 then fail('Invalid debug level.') end
    local parts = {}
    for i = 2, n do
        local v = select(i, ...)
        if type(v) == 'string' or type(v) == 'number' then parts[#parts + 1] = tostring(v) end
    end
    rt.log(level, table.concat(parts, ' '))
end
redis.setresp = function(...)
    if not rt.running then fail('redis.setresp can only be called inside a script invocation') end
    if select('#', ...) ~= 1 then fail('redis.setresp() requires one argument.') end
    local version = tonumber((...)) or 0
    if version ~= 2 and version ~= 3 then fail('RESP version must be 2 or 3.') end
    rt.setresp(version)
end
redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL = 0, 1, 2, 2, 3
redis.set_repl = function(...)
    if not rt.running then fail('redis.set_repl can only be called inside a script invocation') end
    if select('#', ...) ~= 1 then fail('redis.set_repl() requires two arguments.') end
    local flags = tonumber((...)) or 0
    if flags ~= 0 and flags ~= 1 and flags ~= 2 and flags ~= 3 then
        fail('Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.')
    end
end
redis.replicate_commands = function() return true end
redis.REDIS_VERSION = rt.version
redis.REDIS_VERSION_NUM = rt.version_num

-- Builtins that must keep scripts inside the sandbox --------------------------------------
local globals
G.pcall = function(...)
    local result = pack(pcall(...))
    if not result[1] then result[2] = pending(result[2]) end
    if not result[1] and type(result[2]) == 'table' then
        local message = rawget(result[2], 'err')
        if type(message) == 'string' or type(message) == 'number' then return false, message end
    end
    return unpack(result, 1, result.n)
end
G.rawset = rt.rawset
G.setmetatable = function(t, mt)
    if readonly[t] then error('Attempt to modify a readonly table', 2) end
    return setmetatable(t, mt)
end
G.loadstring = function(...)
    local f, message = loadstring(...)
    if f then setfenv(f, globals) end
    return f, message
end
G.load = function(...)
    local f, message = load(...)
    if f then setfenv(f, globals) end
    return f, message
end
G.setfenv = function(f, env)
    if f == 0 then error('Attempt to modify a readonly table', 2) end
    return setfenv(f, env)
end
G.redis = redis

for _, name in ipairs({ 'redis', 'string', 'math', 'table', 'coroutine', 'cjson', 'bit', 'struct', 'cmsgpack' }) do
    if type(G[name]) == 'table' then G[name] = protect(G[name]) end
end

globals = protect(G, function(_, key)
    local value = rawget(G, key)
    if value == nil then
        error("Script attempted to access nonexistent global variable '" .. tostring(key) .. "'", 2)
    end
    return value
end)
G._G = globals

-- Function libraries (FUNCTION LOAD): while a library's code runs, `redis` is the load-time
-- API (register_function, log, ...); when its functions run later, the whole API.
local function register_function(...)
    if not rawget(rt, 'registering') then
        fail('redis.register_function can only be called on FUNCTION LOAD command')
    end
    local n = select('#', ...)
    if n < 1 or n > 2 then fail('wrong number of arguments to redis.register_function') end
    local name, callback, flags, description
    if n == 1 then
        local named = ...
        if type(named) ~= 'table' then
            fail('calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).')
        end
        for key, value in pairs(named) do
            if type(key) ~= 'string' and type(key) ~= 'number' then
                fail('named argument key given to redis.register_function is not a string')
            end
            key = string.lower(tostring(key))
            if key == 'function_name' then
                if type(value) ~= 'string' and type(value) ~= 'number' then
                    fail('function_name argument given to redis.register_function must be a string')
                end
                name = tostring(value)
            elseif key == 'description' then
                if type(value) ~= 'string' and type(value) ~= 'number' then
                    fail('description argument given to redis.register_function must be a string')
                end
                description = tostring(value)
            elseif key == 'callback' then
                if type(value) ~= 'function' then
                    fail('callback argument given to redis.register_function must be a function')
                end
                callback = value
            elseif key == 'flags' then
                if type(value) ~= 'table' then
                    fail('flags argument to redis.register_function must be a table representing function flags')
                end
                flags = value
            else
                fail('unknown argument given to redis.register_function')
            end
        end
        if name == nil then fail('redis.register_function must get a function name argument') end
        if callback == nil then fail('redis.register_function must get a callback argument') end
    else
        name, callback = ...
        if type(name) ~= 'string' and type(name) ~= 'number' then
            fail('first argument to redis.register_function must be a string')
        end
        if type(callback) ~= 'function' then
            fail('second argument to redis.register_function must be a function')
        end
        name = tostring(name)
    end
    local flag_list = {}
    if flags then
        for _, flag in ipairs(flags) do
            if type(flag) ~= 'string' then fail('unknown flag given') end
            flag_list[#flag_list + 1] = flag
        end
    end
    local refusal = rt.register(name, callback, flag_list, description)
    if refusal then fail(refusal) end
end
-- Only this while a library loads, as Redis 7.0's library API: no other global, no
-- redis.call/setresp; and register_function exists only here.
local load_api = {
    register_function = register_function,
    log = redis.log,
    LOG_DEBUG = 0, LOG_VERBOSE = 1, LOG_NOTICE = 2, LOG_WARNING = 3,
    REDIS_VERSION = redis.REDIS_VERSION,
    REDIS_VERSION_NUM = redis.REDIS_VERSION_NUM,
}
local load_redis = protect(load_api, function(_, key)
    local value = rawget(load_api, key)
    if value == nil then
        error("Script attempted to access nonexistent global variable '" .. tostring(key) .. "'", 2)
    end
    return value
end)
local library_globals = protect(G, function(_, key)
    if rawget(rt, 'registering') then
        if key == 'redis' then return load_redis end
        error("Script attempted to access nonexistent global variable '" .. tostring(key) .. "'", 2)
    end
    local value = rawget(G, key)
    if value == nil then
        error("Script attempted to access nonexistent global variable '" .. tostring(key) .. "'", 2)
    end
    return value
end)
rt.library_globals = library_globals

-- The error handler: a table with `err`, and where in the user's code it happened (the
-- first frame that is neither C nor this file).
local here = dbg.getinfo(1, 'S').source
local function handler(err)
    err = pending(err)
    if type(err) ~= 'table' then err = { err = 'ERR ' .. tostring(err) } end
    for level = 2, 50 do
        local info = dbg.getinfo(level, 'nSl')
        if not info then break end
        if info.what ~= 'C' and info.source ~= here then
            rawset(err, 'source', info.source)
            rawset(err, 'line', info.currentline)
            break
        end
    end
    return err
end

local function run(f, ...)
    local args = pack(...)
    return xpcall(function() return f(unpack(args, 1, args.n)) end, handler)
end

return globals, run
