{{- /*
Every name the chart gives a resource is spelled here, once.
*/}}

{{- define "kubecache.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- /* "<release>-<chart>", or the release name when it already holds the chart name. */}}
{{- define "kubecache.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "kubecache.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- /* Component names (the fullname leaves room for these suffixes). */}}
{{- define "kubecache.cacher.fullname" -}}
{{- printf "%s-cacher" (include "kubecache.fullname" . | trunc 56 | trimSuffix "-") }}
{{- end }}

{{- define "kubecache.cacher.config" -}}
{{- printf "%s-config" (include "kubecache.cacher.fullname" .) }}
{{- end }}

{{- define "kubecache.cacher.serviceAccountName" -}}
{{- if .Values.cacher.serviceAccount.create }}
{{- default (include "kubecache.cacher.fullname" .) .Values.cacher.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.cacher.serviceAccount.name }}
{{- end }}
{{- end }}

{{- /* Cluster-scoped names carry the namespace: two releases may share a name. */}}
{{- define "kubecache.cacher.clusterRoleName" -}}
{{- printf "%s-%s" .Release.Namespace (include "kubecache.cacher.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kubecache.cacher.leaseName" -}}
{{- default (include "kubecache.cacher.fullname" .) .Values.cacher.leaderElection.leaseName }}
{{- end }}

{{- define "kubecache.redis.fullname" -}}
{{- printf "%s-redis" (include "kubecache.fullname" . | trunc 57 | trimSuffix "-") }}
{{- end }}

{{- define "kubecache.redis.config" -}}
{{- printf "%s-config" (include "kubecache.redis.fullname" .) }}
{{- end }}

{{- /* Labels: the common set, and the selector set of one component. */}}
{{- define "kubecache.labels" -}}
helm.sh/chart: {{ include "kubecache.chart" .root }}
app.kubernetes.io/name: {{ include "kubecache.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: kubecache
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "kubecache.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kubecache.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "kubecache.image" -}}
{{- printf "%s:%s" .image.name (toString (default .default .image.tag)) }}
{{- end }}

{{- /* Where Redis is, and the Secret (name, key) holding its password, if any. */}}
{{- define "kubecache.redis.url" -}}
{{- if .Values.redis.enabled }}
{{- printf "redis://%s.%s.svc:%d/0" (include "kubecache.redis.fullname" .) .Release.Namespace (int .Values.redis.port) }}
{{- else }}
{{- .Values.externalRedis.url }}
{{- end }}
{{- end }}

{{- define "kubecache.redis.passwordSecretName" -}}
{{- if .Values.redis.enabled }}
{{- default (include "kubecache.redis.fullname" .) .Values.redis.auth.existingSecret }}
{{- else }}
{{- .Values.externalRedis.passwordSecret.name }}
{{- end }}
{{- end }}

{{- define "kubecache.redis.passwordSecretKey" -}}
{{- if .Values.redis.enabled }}
{{- if .Values.redis.auth.existingSecret }}{{ .Values.redis.auth.existingSecretPasswordKey }}{{ else }}password{{ end }}
{{- else }}
{{- .Values.externalRedis.passwordSecret.key }}
{{- end }}
{{- end }}

{{- /*
The generated Redis password: the one already in the cluster (so upgrades keep
it), else a new random one. Memoised in the values so that the Secret and the
checksum annotations of one render see the same password.
*/}}
{{- define "kubecache.redis.generatedPassword" -}}
{{- $memo := .Values.redis.auth }}
{{- if not (hasKey $memo "_generatedPassword") }}
{{- $password := randAlphaNum 40 }}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "kubecache.redis.fullname" .) }}
{{- if and $existing $existing.data (hasKey $existing.data "password") }}
{{- $password = index $existing.data "password" | b64dec }}
{{- end }}
{{- $_ := set $memo "_generatedPassword" $password }}
{{- end }}
{{- index $memo "_generatedPassword" }}
{{- end }}

{{- /* Configuration mistakes the schema cannot express, with what to do. */}}
{{- define "kubecache.validate" -}}
{{- if and .Values.redis.enabled .Values.externalRedis.url }}
{{- fail "redis.enabled and externalRedis.url are both set: choose the in-chart Redis (redis.enabled=true) or an external one (redis.enabled=false with externalRedis.url)" }}
{{- end }}
{{- if and (not .Values.redis.enabled) (not .Values.externalRedis.url) }}
{{- fail "no Redis configured: keep redis.enabled=true, or set redis.enabled=false and externalRedis.url (redis://, rediss:// or redis+sentinel://)" }}
{{- end }}
{{- if and .Values.externalRedis.tls.caSecret.name (not .Values.redis.enabled) (not (hasPrefix "rediss" .Values.externalRedis.url)) }}
{{- fail "externalRedis.tls.caSecret is set but externalRedis.url does not use TLS: use a rediss:// (or rediss+sentinel://) URL" }}
{{- end }}
{{- end }}
