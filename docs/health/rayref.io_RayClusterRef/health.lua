-- Argo CD health check for rayref.io/RayClusterRef (see docs/status.md).
local hs = {}

local function condition(kind)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local function describe(c)
  if c.message ~= nil and c.message ~= "" then
    return c.reason .. ": " .. c.message
  end
  return c.reason
end

if obj.status == nil or obj.status.observedGeneration == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to read the remote cluster"
  return hs
end

if obj.metadata ~= nil and obj.metadata.generation ~= nil
    and obj.status.observedGeneration < obj.metadata.generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe the latest spec"
  return hs
end

local stalled = condition("Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(stalled)
  return hs
end

local suspended = condition("Suspended")
if suspended ~= nil and suspended.status == "True" then
  hs.status = "Suspended"
  hs.message = describe(suspended)
  return hs
end

local state = obj.status.state
if state == "Stopped" then
  hs.status = "Suspended"
  hs.message = "Ray cluster is stopped"
  return hs
end

if state == "Running" then
  local ready = obj.status.readyInstances or 0
  local total = obj.status.totalInstances or 0
  if ready >= total then
    hs.status = "Healthy"
    hs.message = "Ray cluster is running, " .. ready .. "/" .. total .. " nodes running"
  else
    hs.status = "Degraded"
    local c = condition("Ready")
    hs.message = "Ray cluster is running with nodes down"
    if c ~= nil then
      hs.message = describe(c)
    end
  end
  return hs
end

hs.status = "Progressing"
hs.message = "Ray cluster is " .. tostring(state)
return hs
