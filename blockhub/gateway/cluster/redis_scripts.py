"""The Lua scripts the Redis backend runs (``redis_backend.py``): each is one step that
no other client can see half done.  Plain bytes, so this module is pure.

Keys come in ``KEYS``, the rest in ``ARGV``; only ``NODES`` reads keys it was not
given (each node's record, by its prefix), which one Redis server allows.
"""

# KEYS: the record, the set of nodes, the hub table.  ARGV: the record, its ttl in
# ms, the node.
SET_NODE = b"""
local ms = tonumber(ARGV[2])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ms)
redis.call('SADD', KEYS[2], ARGV[3])
redis.call('PEXPIRE', KEYS[3], ms)
return 1
"""

# KEYS[1] the set of nodes, ARGV[1] the prefix of a node's record key.
NODES = b"""
local found = {}
for _, node in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local record = redis.call('GET', ARGV[1] .. node)
  if record then
    found[#found + 1] = node
    found[#found + 1] = record
  end
end
return found
"""

# ARGV[1] the ttl in ms, then hub, entry, hub, entry...
REPLACE_HUBS = b"""
redis.call('DEL', KEYS[1])
if #ARGV > 1 then
  redis.call('HSET', KEYS[1], unpack(ARGV, 2))
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]))
end
return 1
"""

# A token bucket on Redis's clock: ARGV[1] tokens a minute, ARGV[2] the burst.
TAKE = b"""
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate = tonumber(ARGV[1]) / 60
local burst = tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(state[1]), tonumber(state[2])
if tokens == nil or at == nil then tokens, at = burst, now end
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens),
           'at', string.format('%.6f', now))
local ttl = 86400000
if rate > 0 then ttl = math.ceil((burst / rate + 1) * 1000) end
redis.call('PEXPIRE', KEYS[1], ttl)
return allowed
"""



ALL = (SET_NODE, NODES, REPLACE_HUBS, TAKE)
