-- Argo CD health of a securepipe.io TrainingPartition (README: "GitOps").
-- Only the base and table libraries: Argo CD runs argocd-cm scripts without the others.
--   no status yet, or status of an older generation    -> Progressing
--   Reconciling=True (an extraction Job running)        -> Progressing, its message
--   Stalled=True (only someone can fix it: NotGranted,
--     SecretConflict, InvalidSpec, PolicyTooLarge, ...)  -> Degraded, its message
--     (checked before Ready: also while the session in the Secret is still valid, since
--     it stops working at its expiry unless someone acts)
--   Ready=True                                           -> Healthy, Ready's message; also
--     when Degraded=True with a transient failure (renewal retried) while the session in
--     the Secret is still valid: pods work, and Ready turns False at its expiry
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
-- The first of Reconciling and Stalled that is True decides, in list order, as in kstatus.
for _, c in ipairs(obj.status.conditions or {}) do
  if c.type == "Reconciling" and c.status == "True" then
    return { status = "Progressing", message = c.message }
  end
  if c.type == "Stalled" and c.status == "True" then
    return { status = "Degraded", message = c.message }
  end
end
local ready = condition("Ready")
if ready == nil then
  return { status = "Progressing", message = "Waiting for the operator to report Ready" }
end
if ready.status == "True" then
  return { status = "Healthy", message = ready.message }
end
return { status = "Progressing", message = ready.message }
