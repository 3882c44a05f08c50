{{/* Chart name, truncated to the 63 characters a label value allows. */}}
{{- define "securepipe.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Base name of every object: the release name, or <release>-securepipe when the release
name does not contain the chart name. Release "securepipe" gives the names in the
repository's config/rbac/ (securepipe-operator, securepipe-leader-election).
*/}}
{{- define "securepipe.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 54 | trimSuffix "-" }}
{{- else if contains (include "securepipe.name" .) .Release.Name }}
{{- .Release.Name | trunc 54 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "securepipe.name" .) | trunc 54 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* <fullname>-operator: Deployment, Service, ClusterRole, Lease (54 + 9 = 63 characters at most). */}}
{{- define "securepipe.operatorName" -}}
{{- printf "%s-operator" (include "securepipe.fullname" .) }}
{{- end }}

{{- define "securepipe.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "securepipe.operatorName" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "securepipe.selectorLabels" -}}
app.kubernetes.io/name: {{ include "securepipe.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "securepipe.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "securepipe.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: securepipe
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "securepipe.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
The namespaces where the operator may write Secrets, as a JSON array: the watched
namespace when one is, else rbac.tenantNamespaces.
*/}}
{{- define "securepipe.tenantNamespaces" -}}
{{- if .Values.watchNamespace -}}
{{- list .Values.watchNamespace | toJson -}}
{{- else -}}
{{- .Values.rbac.tenantNamespaces | default list | uniq | toJson -}}
{{- end -}}
{{- end }}
