{{/*
Names and labels.
*/}}
{{- define "qinqing.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{/*
The prefix of every resource name, at most 40 characters so that
"<fullname>-subsidy-disbursal" stays a valid DNS label for Knative.
*/}}
{{- define "qinqing.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "qinqing.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
A DNS-label resource name from a prefix and a suffix: kept as is when it
fits in 63 characters, otherwise cut and made unique with a hash.
Usage: include "qinqing.dnsName" (list $prefix $suffix)
*/}}
{{- define "qinqing.dnsName" -}}
{{- $full := printf "%s-%s" (index . 0) (index . 1) -}}
{{- if le (len $full) 63 -}}
{{- $full -}}
{{- else -}}
{{- printf "%s-%s" ($full | trunc 54 | trimSuffix "-") ($full | sha256sum | trunc 8) -}}
{{- end -}}
{{- end -}}

{{- define "qinqing.selectorLabels" -}}
app.kubernetes.io/name: {{ include "qinqing.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "qinqing.labels" -}}
helm.sh/chart: {{ include "qinqing.chart" . }}
{{ include "qinqing.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: qinqing
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
The subscription table generated from event.Catalog by
`go run ./cmd/gen-subscriptions`: which function consumes which event types
and PingSource jobs. It is the only place the chart learns about functions.
*/}}
{{- define "qinqing.subscriptions" -}}
{{- $raw := .Files.Get "files/subscriptions.yaml" -}}
{{- if not $raw -}}
{{- fail "files/subscriptions.yaml is missing: run go run ./cmd/gen-subscriptions" -}}
{{- end -}}
{{- $raw -}}
{{- end -}}

{{/*
What each function needs from its environment besides QINQING_TIMEZONE,
LOG_LEVEL and K_SINK: a database, the document store.
*/}}
{{- define "qinqing.needs" -}}
forum-signup: {database: true, documents: true}
appeal-router: {database: true, documents: false}
deadline-check: {database: true, documents: true}
subsidy-disbursal: {database: true, documents: false}
recycling-trade: {database: true, documents: true}
award-ceremony: {database: true, documents: true}
webhook-ingress: {database: false, documents: false}
webhook-egress: {database: true, documents: false}
open311: {database: true, documents: false}
dead-letter: {database: true, documents: false}
{{- end -}}

{{- define "qinqing.serviceName" -}}
{{- include "qinqing.dnsName" (list (include "qinqing.fullname" .root) .name) -}}
{{- end -}}

{{- define "qinqing.brokerName" -}}
{{- default (include "qinqing.fullname" .) .Values.broker.name -}}
{{- end -}}

{{- define "qinqing.pingSourceName" -}}
{{- include "qinqing.dnsName" (list (include "qinqing.fullname" .root) (printf "cron-%s" .job)) -}}
{{- end -}}

{{- define "qinqing.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "qinqing.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
The effective values of one function: functionDefaults with
functions.<name> laid over it. Map-valued keys are merged one level deep,
other keys replaced, so an explicit 0 or "" overrides a default.
Usage: include "qinqing.functionValues" (dict "root" $ "name" "forum-signup") | fromYaml
*/}}
{{- define "qinqing.functionValues" -}}
{{- $out := deepCopy .root.Values.functionDefaults -}}
{{- $over := index .root.Values.functions .name | default dict -}}
{{- range $k, $v := $over -}}
{{- $d := index $out $k -}}
{{- if and (kindIs "map" $v) (kindIs "map" $d) -}}
{{- $m := deepCopy $d -}}
{{- range $k2, $v2 := $v -}}
{{- $_ := set $m $k2 $v2 -}}
{{- end -}}
{{- $_ := set $out $k $m -}}
{{- else -}}
{{- $_ := set $out $k $v -}}
{{- end -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/*
An image reference. Per-function repository/tag/digest win (a repository
that already holds a tag or digest, as skaffold sets it, is used as is);
otherwise
image.registry + the binary's base name + image.tag (or appVersion), as
`ko build --base-import-paths` publishes them; otherwise the ko:// reference
that ko resolve and skaffold replace.
Usage: include "qinqing.image" (dict "root" $ "image" $imageValues "importPath" "functions/forum-signup")
*/}}
{{- define "qinqing.image" -}}
{{- $img := .image | default dict -}}
{{- $g := .root.Values.image -}}
{{- $base := base .importPath -}}
{{- $repo := get $img "repository" -}}
{{- $tag := get $img "tag" -}}
{{- $digest := get $img "digest" -}}
{{- if and (not $repo) $g.registry -}}
{{- $repo = printf "%s/%s" (trimSuffix "/" $g.registry) $base -}}
{{- $tag = $tag | default $g.tag | default .root.Chart.AppVersion -}}
{{- end -}}
{{- $last := last (splitList "/" $repo) -}}
{{- if not $repo -}}
{{- printf "ko://github.com/qinqing/qinqing/%s" .importPath -}}
{{- else if contains "@" $repo -}}
{{- $repo -}}
{{- else if $digest -}}
{{- printf "%s@%s" $repo $digest -}}
{{- else if and $tag (not (contains ":" $last)) -}}
{{- printf "%s:%s" $repo $tag -}}
{{- else -}}
{{- $repo -}}
{{- end -}}
{{- end -}}

{{/*
The restricted pod security profile, at container level (Knative Serving
only allows container-level security contexts by default).
*/}}
{{- define "qinqing.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ get . "runAsUser" | default 65532 }}
runAsGroup: {{ get . "runAsUser" | default 65532 }}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "qinqing.databaseEnv" -}}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.database.existingSecret }}
      key: {{ .Values.database.urlKey }}
{{- end -}}

{{/*
validateValues fails early with readable messages for what the schema
cannot express (cross-field rules and rules that depend on the
subscription table).
*/}}
{{- define "qinqing.validateValues" -}}
{{- $subs := include "qinqing.subscriptions" . | fromYaml -}}
{{- $msgs := list -}}
{{- if not .Values.database.existingSecret -}}
{{- $msgs = append $msgs "database.existingSecret: name the existing Secret that holds the Postgres URL (key database.urlKey)." -}}
{{- end -}}
{{- if not .Values.s3.bucket -}}
{{- $msgs = append $msgs "s3.bucket: set the document bucket; forum-signup, deadline-check, recycling-trade and award-ceremony store documents in it." -}}
{{- end -}}
{{- if and (not .Values.broker.sinkBinding) (not .Values.broker.url) -}}
{{- $msgs = append $msgs "broker.url: with broker.sinkBinding=false, set broker.url to the broker's ingress URL so that every function gets K_SINK." -}}
{{- end -}}
{{- if and .Values.broker.sinkBinding .Values.broker.url -}}
{{- $msgs = append $msgs "broker.url: only used when broker.sinkBinding=false; unset one of them." -}}
{{- end -}}
{{- if and (not .Values.serviceAccount.create) (not .Values.serviceAccount.name) (not (empty .Values.serviceAccount.annotations)) -}}
{{- $msgs = append $msgs "serviceAccount.annotations: only applied to a created ServiceAccount; set serviceAccount.create=true." -}}
{{- end -}}
{{- $known := list -}}
{{- $jobs := list -}}
{{- $subsidyTypes := list -}}
{{- range $subs.functions -}}
{{- $known = append $known .name -}}
{{- $jobs = concat $jobs .jobs -}}
{{- if eq .name "subsidy-disbursal" -}}
{{- $subsidyTypes = .types -}}
{{- end -}}
{{- end -}}
{{- range $name, $_ := .Values.functions -}}
{{- if not (has $name $known) -}}
{{- $msgs = append $msgs (printf "functions.%s: no such function; the functions are %s." $name (join ", " $known)) -}}
{{- end -}}
{{- end -}}
{{- range $job := $jobs -}}
{{- if not (hasKey $.Values.cron $job) -}}
{{- $msgs = append $msgs (printf "cron.%s.schedule: the job %s has no schedule." $job $job) -}}
{{- end -}}
{{- end -}}
{{- range $job, $_ := .Values.cron -}}
{{- if not (has $job $jobs) -}}
{{- $msgs = append $msgs (printf "cron.%s: no function runs this job; the jobs are %s." $job (join ", " $jobs)) -}}
{{- end -}}
{{- end -}}
{{- $needs := include "qinqing.needs" . | fromYaml -}}
{{- $conns := 0 -}}
{{- $unbounded := list -}}
{{- range $name := $known -}}
{{- $fv := include "qinqing.functionValues" (dict "root" $ "name" $name) | fromYaml -}}
{{- if and (gt (int $fv.maxScale) 0) (gt (int $fv.minScale) (int $fv.maxScale)) -}}
{{- $msgs = append $msgs (printf "functions.%s: minScale %d is above maxScale %d." $name (int $fv.minScale) (int $fv.maxScale)) -}}
{{- end -}}
{{- if (index $needs $name | default dict).database -}}
{{- if eq (int $fv.maxScale) 0 -}}
{{- $unbounded = append $unbounded $name -}}
{{- end -}}
{{- /* each replica: its pool plus the outbox relay's LISTEN connection */ -}}
{{- $conns = add $conns (mul (int $fv.maxScale) (add (int $fv.databaseMaxConns) 1)) -}}
{{- end -}}
{{- end -}}
{{- $max := int .Values.database.maxConnections -}}
{{- if and (gt $max 0) $unbounded -}}
{{- $msgs = append $msgs (printf "functions.<name>.maxScale: %s use the database and may scale without limit; set maxScale, or database.maxConnections=0 to skip the connection budget." (join ", " $unbounded)) -}}
{{- else if and (gt $max 0) (gt (int $conns) $max) -}}
{{- $msgs = append $msgs (printf "database.maxConnections: at maxScale the functions may open %d connections (sum of maxScale x (databaseMaxConns + 1 for the outbox relay), more than the %d the database accepts; lower maxScale or databaseMaxConns, or raise database.maxConnections (e.g. behind PgBouncer)." (int $conns) $max) -}}
{{- end -}}
{{- range $i, $p := .Values.subsidyDisbursal.policies -}}
{{- if not (has $p.trigger $subsidyTypes) -}}
{{- $msgs = append $msgs (printf "subsidyDisbursal.policies[%d].trigger: %s is not an event type subsidy-disbursal consumes (%s)." $i $p.trigger (join ", " $subsidyTypes)) -}}
{{- end -}}
{{- end -}}
{{- range $portal, $p := .Values.webhookIngress.portals -}}
{{- range $t := $p.allowedTypes -}}
{{- $consumed := false -}}
{{- range $subs.functions -}}
{{- /* webhook-egress consumes outbound updates; a portal never sends those */ -}}
{{- if and (ne .name "webhook-egress") (has $t .types) -}}{{- $consumed = true -}}{{- end -}}
{{- end -}}
{{- if not $consumed -}}
{{- $msgs = append $msgs (printf "webhookIngress.portals.%s.allowedTypes: no function consumes %s." $portal $t) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if $msgs -}}
{{- printf "\nVALUES VALIDATION:\n  - %s" (join "\n  - " $msgs) | fail -}}
{{- end -}}
{{- end -}}
