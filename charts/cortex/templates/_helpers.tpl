{{/*
Chart name, truncated to the 63 characters of a DNS label.
*/}}
{{- define "cortex.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name: the release name, prefixed to the chart name unless it contains it.
Component objects append `-<component>`, so keep room for the longest (`-messaging`).
*/}}
{{- define "cortex.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "cortex.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Standard labels. Call with (dict "root" $ "component" "gateway").
*/}}
{{- define "cortex.labels" -}}
helm.sh/chart: {{ include "cortex.chart" .root }}
{{ include "cortex.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: cortex
{{- end }}

{{/*
Selector labels. Call with (dict "root" $ "component" "gateway"); without a component they
select every pod of the release.
*/}}
{{- define "cortex.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cortex.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end }}

{{- define "cortex.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) }}
{{- end }}

{{- define "cortex.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "cortex.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The enabled processes, as JSON {"items": [{"name", "role", "config"}]}: the gateway, each enabled
entry of `services`, and the agent hosts. One Deployment is rendered per item. The module run is
`cortex.<name>`.
*/}}
{{- define "cortex.components" -}}
{{- $items := list }}
{{- if .Values.gateway.enabled }}
{{- $items = append $items (dict "name" "gateway" "role" "gateway" "config" .Values.gateway) }}
{{- end }}
{{- range $name, $svc := .Values.services }}
{{- if $svc.enabled }}
{{- $items = append $items (dict "name" $name "role" "service" "config" $svc) }}
{{- end }}
{{- end }}
{{- if .Values.hosts.enabled }}
{{- $items = append $items (dict "name" "host" "role" "host" "config" .Values.hosts) }}
{{- end }}
{{- dict "items" $items | toJson }}
{{- end }}

{{/*
Secret and key holding the event store URL; empty name when no store is configured.
*/}}
{{- define "cortex.storeSecretName" -}}
{{- if .Values.store.existingSecret }}
{{- .Values.store.existingSecret }}
{{- else if .Values.store.url }}
{{- printf "%s-store" (include "cortex.fullname" .) }}
{{- end }}
{{- end }}

{{- define "cortex.storeSecretKey" -}}
{{- if .Values.store.existingSecret }}
{{- .Values.store.existingSecretKey | default "url" }}
{{- else }}
{{- "url" }}
{{- end }}
{{- end }}

{{- define "cortex.adminTokenSecretName" -}}
{{- .Values.adminToken.existingSecret | default (printf "%s-admin-token" (include "cortex.fullname" .)) }}
{{- end }}

{{- define "cortex.adminTokenSecretKey" -}}
{{- if .Values.adminToken.existingSecret }}
{{- .Values.adminToken.existingSecretKey | default "token" }}
{{- else }}
{{- "token" }}
{{- end }}
{{- end }}

{{/*
Refuse values that would deploy something broken, beyond what values.schema.json says of
each value alone.
*/}}
{{- define "cortex.validate" -}}
{{- $services := list }}
{{- range $name, $svc := .Values.services }}
{{- if $svc.enabled }}
{{- $services = append $services $name }}
{{- end }}
{{- end }}
{{- if and $services (not (include "cortex.storeSecretName" .)) }}
{{- fail (printf "enabled services (%s) need an event store: set store.existingSecret (a Secret holding the URL, e.g. arangodb://user:pw@host:8529/db) or store.url" (join ", " $services)) }}
{{- end }}
{{- if and (not .Values.store.existingSecret) (hasPrefix "sqlite:" .Values.store.url) }}
{{- range $name, $svc := .Values.services }}
{{- if and $svc.enabled (gt (int $svc.replicas) 1) }}
{{- fail (printf "store.url is SQLite, a file inside each pod: services.%s.replicas must be 1 (use ArangoDB for more)" $name) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The environment every process shares (and the agents' pods, through their own copy).
*/}}
{{- define "cortex.envData" -}}
CORTEX_NATS_URL: {{ .Values.nats.url | quote }}
CORTEX_NATS_PREFIX: {{ .Values.nats.prefix | quote }}
CORTEX_NATS_REPLICAS: {{ .Values.nats.replicas | quote }}
CORTEX_LOG_FORMAT: "json"
CORTEX_LOG_LEVEL: {{ .Values.logLevel | quote }}
CORTEX_ADMIN_HOST: "0.0.0.0"
CORTEX_ADMIN_PORT: {{ .Values.adminPort | quote }}
CORTEX_DATA_DIR: "/tmp/cortex"
CORTEX_METRICS_PER_AGENT: {{ .Values.metrics.perAgent | quote }}
CORTEX_LOGS_MAX_BYTES: {{ .Values.logs.maxBytes | int64 | quote }}
CORTEX_EVENTS_DAYS: {{ .Values.events.days | quote }}
CORTEX_AGENT_MODULES: {{ join "," .Values.agentModules | quote }}
CORTEX_HTTP_STEP_ALLOW: {{ join "," .Values.workflows.httpStepAllow | quote }}
CORTEX_HTTP_STEP_MAX_BYTES: {{ .Values.workflows.httpStepMaxBytes | int64 | quote }}
{{- with .Values.metrics.natsMonitorUrls }}
CORTEX_NATS_MONITOR_URLS: {{ join "," . | quote }}
{{- end }}
{{- range $key, $value := .Values.extraEnv }}
{{ $key }}: {{ $value | toString | quote }}
{{- end }}
{{- end }}

{{/*
Where the agents of runtime `kubernetes` run.
*/}}
{{- define "cortex.agentsNamespace" -}}
{{- .Values.kubernetesAgents.namespace | default .Release.Namespace }}
{{- end }}
