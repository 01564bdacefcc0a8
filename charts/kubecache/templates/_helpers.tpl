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

{{- /* The cacher's password key: the cacher user's in the bundled Redis. */}}
{{- define "kubecache.redis.passwordSecretKey" -}}
{{- if .Values.redis.enabled }}cacher-password
{{- else }}
{{- .Values.externalRedis.passwordSecret.key }}
{{- end }}
{{- end }}

{{- /* The Redis user of the cacher: the bundled Redis' kubecache-cacher, or externalRedis.username. */}}
{{- define "kubecache.redis.cacherUsername" -}}
{{- if .Values.redis.enabled }}kubecache-cacher{{ else }}{{ .Values.externalRedis.username }}{{ end }}
{{- end }}

{{- /*
The generated password of one bundled-Redis user (dict "root" . "role" "hub"):
the one already in the cluster (so upgrades keep it), else a new random one.
An offline render (helm template, GitOps) cannot look the Secret up: it makes
new passwords every time, which NOTES.txt says; set redis.auth.existingSecret
there. Memoised in the values so that the Secret and the checksum annotations
of one render see the same passwords.
*/}}
{{- define "kubecache.redis.generatedPassword" -}}
{{- $root := .root }}
{{- $key := printf "%s-password" .role }}
{{- $memo := $root.Values.redis.auth }}
{{- if not (hasKey $memo "_generated") }}
{{- $_ := set $memo "_generated" dict }}
{{- $existing := lookup "v1" "Secret" $root.Release.Namespace (include "kubecache.redis.fullname" $root) }}
{{- $_ := set $memo "_found" ($existing | default dict) }}
{{- end }}
{{- $generated := index $memo "_generated" }}
{{- if not (hasKey $generated $key) }}
{{- $password := randAlphaNum 40 }}
{{- $found := index $memo "_found" }}
{{- if and $found $found.data (hasKey $found.data $key) }}
{{- $password = index $found.data $key | b64dec }}
{{- end }}
{{- $_ := set $generated $key $password }}
{{- end }}
{{- index $generated $key }}
{{- end }}

{{- /* True when the chart's own Redis Secret was found in the cluster (lookup works). */}}
{{- define "kubecache.redis.secretFound" -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "kubecache.redis.fullname" .) }}
{{- if $existing }}true{{ end }}
{{- end }}

{{- /* The namespaces the cacher watches, comma-separated; empty means cluster-wide. */}}
{{- define "kubecache.cacher.namespaces" -}}
{{- if .Values.cacher.watch.clusterWide }}
{{- else if .Values.cacher.watch.namespaces }}
{{- join "," .Values.cacher.watch.namespaces }}
{{- else }}
{{- .Release.Namespace }}
{{- end }}
{{- end }}

{{- /* The namespaces whose hubs may reach the bundled Redis, comma-separated. */}}
{{- define "kubecache.redis.hubNamespaces" -}}
{{- if .Values.redis.networkPolicy.hubNamespaces }}
{{- join "," .Values.redis.networkPolicy.hubNamespaces }}
{{- else }}
{{- default .Release.Namespace (include "kubecache.cacher.namespaces" .) }}
{{- end }}
{{- end }}

{{- /*
The ACL rules of one kubecache Redis user (dict "root" . "role" "cacher|hub|cli"),
exactly kubecache.acl.rules(role, prefix=keyPrefix, lease_names=hubLeaseNames)
(tests/charts checks they are equal): the cacher reads
and writes the prefix without dangerous commands; the hub reads the prefix and
writes only its hub-standby leases; the CLI reads the prefix.
*/}}
{{- define "kubecache.redis.aclRules" -}}
{{- $root := .root }}
{{- $keys := printf "%s*" $root.Values.keyPrefix }}
{{- $connection := list "ping" "echo" "select" "client|setname" "time" "info" }}
{{- $reads := list "get" "exists" "type" "ttl" "pttl" "hget" "hmget" "hgetall" "hlen" "hexists" "hscan" "lrange" "llen" "lindex" "xread" "xrange" "xrevrange" "xlen" "xinfo|stream" }}
{{- $lease := list "set" "pexpire" "del" "watch" "unwatch" "multi" "exec" "discard" }}
{{- $rules := list "resetkeys" "resetchannels" "-@all" }}
{{- if eq .role "cacher" }}
{{- $rules = concat $rules (list (printf "~%s" $keys) "+@read" "+@write" "+@connection" "+@transaction" "+eval" "+evalsha" "+script|load" "+script|exists" "-@dangerous" "-scan" "-randomkey" "-copy" "-move" "-function") }}
{{- range $connection }}{{ $rules = append $rules (printf "+%s" .) }}{{ end }}
{{- else }}
{{- $rules = append $rules (printf "%%R~%s" $keys) }}
{{- if eq .role "hub" }}
{{- range $root.Values.redis.auth.hubLeaseNames }}{{ $rules = append $rules (printf "%%RW~%shub-lease:%s" $root.Values.keyPrefix .) }}{{ end }}
{{- end }}
{{- range (concat $connection $reads) }}{{ $rules = append $rules (printf "+%s" .) }}{{ end }}
{{- if eq .role "hub" }}
{{- range $lease }}{{ $rules = append $rules (printf "+%s" .) }}{{ end }}
{{- end }}
{{- end }}
{{- join " " $rules }}
{{- end }}

{{- /* Configuration mistakes the schema cannot express, with what to do. */}}
{{- define "kubecache.validate" -}}
{{- if and .Values.cacher.watch.clusterWide .Values.cacher.watch.namespaces }}
{{- fail "cacher.watch.clusterWide is true and cacher.watch.namespaces is set: list namespaces, or watch every namespace (clusterWide: true with namespaces: [])" }}
{{- end }}
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
