-- Argo CD health check for rayref.io/RayJobRef (see docs/status.md).
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
  hs.message = "Waiting for the operator to read the remote job"
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

local phase = obj.status.phase
if phase == "Succeeded" then
  hs.status = "Healthy"
  hs.message = "Ray job succeeded"
  return hs
end
if phase == "Failed" or phase == "Cancelled" or phase == "Timeout" then
  hs.status = "Degraded"
  hs.message = "Ray job " .. phase
  if obj.status.message ~= nil and obj.status.message ~= "" then
    hs.message = hs.message .. ": " .. obj.status.message
  end
  return hs
end

local suspended = condition("Suspended")
if suspended ~= nil and suspended.status == "True" then
  hs.status = "Suspended"
  hs.message = describe(suspended)
  return hs
end

hs.status = "Progressing"
hs.message = "Ray job is " .. tostring(phase)
local synced = condition("Synced")
if synced ~= nil and synced.status == "False" then
  hs.message = hs.message .. " (last read failed: " .. describe(synced) .. ")"
end
return hs
