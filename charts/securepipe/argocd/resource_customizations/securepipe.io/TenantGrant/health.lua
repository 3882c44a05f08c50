-- Argo CD health of a securepipe.io TenantGrant (README: "GitOps"). A grant has no
-- status: the operator checks every TrainingPartition and RetentionPolicy against the
-- grants as they are, so a grant is in effect once applied.
return {
  status = "Healthy",
  message = "TenantGrant applied: the operator checks every object against it",
}
