-- Argo CD health of a securepipe.io RetentionPolicy (README: "GitOps").
-- Only the base and table libraries: Argo CD runs argocd-cm scripts without the others.
--   no status yet, or status of an older generation    -> Progressing
--   Stalled=True (only someone can fix it: NotGranted,
--     Conflict, InvalidSpec, NoSuchBucket, ...)          -> Degraded, its message
--   Ready=True (the bucket holds the rules as specified) -> Healthy, Ready's message
--   Ready=False/Unknown (a transient failure retried)    -> Progressing, Ready's message
local function condition(type_)
  for _, c in ipairs(obj.status.conditions or {}) do
    if c.type == type_ then
      return c
    end
  end
  return nil
end

if obj.status == nil or obj.status.observedGeneration == nil then
  return { status = "Progressing", message = "Waiting for the operator to report status" }
end
if obj.metadata.generation ~= nil and obj.status.observedGeneration ~= obj.metadata.generation then
  return {
    status = "Progressing",
    message = "Waiting for the operator to observe generation " .. obj.metadata.generation ..
      " (status is for generation " .. obj.status.observedGeneration .. ")",
  }
end
local stalled = condition("Stalled")
if stalled ~= nil and stalled.status == "True" then
  return { status = "Degraded", message = stalled.message }
end
local ready = condition("Ready")
if ready == nil then
  return { status = "Progressing", message = "Waiting for the operator to report Ready" }
end
if ready.status == "True" then
  return { status = "Healthy", message = ready.message }
end
return { status = "Progressing", message = ready.message }
