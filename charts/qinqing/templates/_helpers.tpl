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
The subscription table generated from contract.Catalog by
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
The function table: one entry per function says what it needs from its
environment besides QINQING_TIMEZONE, LOG_LEVEL and K_SINK (a database, the
document store), who may call it (traffic) and whether it has admin
endpoints (admin: its pods also admit networkPolicy.adminFrom):
  events       a consumer of broker events: eventing, serving, ingress
  public       called from outside (portals): serving and ingress only
  dead-letter  the dead-letter sink: eventing and serving only
Adding a function is one line here (plus its values and schema entry).
*/}}
{{- define "qinqing.needs" -}}
forum-signup: {database: true, documents: true, traffic: events}
appeal-router: {database: true, documents: false, traffic: events}
deadline-check: {database: true, documents: true, traffic: events}
subsidy-disbursal: {database: true, documents: false, traffic: events}
recycling-trade: {database: true, documents: true, traffic: events}
award-ceremony: {database: true, documents: true, traffic: events}
webhook-ingress: {database: false, documents: false, traffic: public}
webhook-egress: {database: true, documents: false, traffic: events, admin: true}
open311: {database: true, documents: false, traffic: public}
dead-letter: {database: true, documents: false, traffic: dead-letter, admin: true}
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

{{/*
The ServiceAccount of one function: its own <fullname>-<function> with
serviceAccount.perFunction, else the shared one (empty: the namespace
default).
Usage: include "qinqing.serviceAccountName" (dict "root" $ "name" "forum-signup")
*/}}
{{- define "qinqing.serviceAccountName" -}}
{{- $sa := .root.Values.serviceAccount -}}
{{- if $sa.perFunction -}}
{{- include "qinqing.serviceName" . -}}
{{- else if $sa.create -}}
{{- default (include "qinqing.fullname" .root) $sa.name -}}
{{- else -}}
{{- $sa.name -}}
{{- end -}}
{{- end -}}

{{/*
The effective container concurrency of one function's values ($fv) and
traits ($need): "auto" is the pool size for a database function (one
connection per request) and 0 (no limit) otherwise.
Usage: include "qinqing.containerConcurrency" (dict "fv" $fv "need" $need)
*/}}
{{- define "qinqing.containerConcurrency" -}}
{{- if eq (toString .fv.containerConcurrency) "auto" -}}
{{- if .need.database -}}{{- .fv.databaseMaxConns | int -}}{{- else -}}0{{- end -}}
{{- else -}}
{{- .fv.containerConcurrency | int -}}
{{- end -}}
{{- end -}}

{{/*
The effective autoscaling target: "auto" is the container concurrency, or
50 when that is unlimited.
Usage: include "qinqing.target" (dict "fv" $fv "need" $need)
*/}}
{{- define "qinqing.target" -}}
{{- $cc := include "qinqing.containerConcurrency" . | int -}}
{{- if ne (toString .fv.target) "auto" -}}
{{- .fv.target | int -}}
{{- else if gt $cc 0 -}}
{{- $cc -}}
{{- else -}}
50
{{- end -}}
{{- end -}}

{{/*
Milliseconds of a Go duration made of h, m, s and ms parts ("1m30s",
"500ms"), the forms values.schema.json admits.
Usage: include "qinqing.durationMs" "1m30s" | int
*/}}
{{- define "qinqing.durationMs" -}}
{{- $ms := 0 -}}
{{- range $part := regexFindAll "[0-9]+(ms|h|m|s)" (toString .) -1 -}}
{{- $n := regexFind "^[0-9]+" $part | atoi -}}
{{- $unit := regexReplaceAll "^[0-9]+" $part "" -}}
{{- $ms = add $ms (mul $n (get (dict "h" 3600000 "m" 60000 "s" 1000 "ms" 1) $unit)) -}}
{{- end -}}
{{- $ms -}}
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
{{- if and (not $repo) (not $g.ko) -}}
{{- fail "image.registry: no image to run; set image.registry (and image.tag) to where `ko build --base-import-paths` published the images, or image.ko=true to render ko:// references for `ko resolve`" -}}
{{- else if not $repo -}}
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

{{/*
The database environment of one function: its URLs from its own Secret or
the shared one, the pooler mode, the pool size and the database timeouts.
Usage: include "qinqing.databaseEnv" (dict "root" $ "fv" $fv)
*/}}
{{- define "qinqing.databaseEnv" -}}
{{- $db := .root.Values.database -}}
{{- $secret := .fv.databaseSecret | default $db.existingSecret -}}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $db.urlKey }}
{{- if $db.listenUrlKey }}
- name: DATABASE_LISTEN_URL
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $db.listenUrlKey }}
{{- end }}
- name: DATABASE_POOLER
  value: {{ $db.pooler | quote }}
- name: DATABASE_MAX_CONNS
  value: {{ .fv.databaseMaxConns | int | quote }}
- name: DATABASE_CONNECT_TIMEOUT
  value: {{ .fv.databaseConnectTimeout | quote }}
- name: DATABASE_STATEMENT_TIMEOUT
  value: {{ .fv.databaseStatementTimeout | quote }}
- name: DATABASE_LOCK_TIMEOUT
  value: {{ .fv.databaseLockTimeout | quote }}
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
{{- if and (not .Values.serviceAccount.create) (not (empty .Values.serviceAccount.annotations)) -}}
{{- $msgs = append $msgs "serviceAccount.annotations: only applied to created ServiceAccounts; set serviceAccount.create=true." -}}
{{- end -}}
{{- if and .Values.serviceAccount.perFunction .Values.serviceAccount.name -}}
{{- $msgs = append $msgs "serviceAccount.name: names the shared ServiceAccount, but serviceAccount.perFunction=true gives each function its own (<fullname>-<function>); unset one of them." -}}
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
{{- $db := .Values.database -}}
{{- $pooled := 0 -}}{{- /* client connections on DATABASE_URL: pools, plus LISTEN where it shares the URL */ -}}
{{- $listen := 0 -}}{{- /* direct LISTEN connections on DATABASE_LISTEN_URL */ -}}
{{- $unbounded := list -}}
{{- range $name := $known -}}
{{- $fv := include "qinqing.functionValues" (dict "root" $ "name" $name) | fromYaml -}}
{{- $need := index $needs $name | default dict -}}
{{- if and (gt (int $fv.maxScale) 0) (gt (int $fv.minScale) (int $fv.maxScale)) -}}
{{- $msgs = append $msgs (printf "functions.%s: minScale %d is above maxScale %d." $name (int $fv.minScale) (int $fv.maxScale)) -}}
{{- end -}}
{{- $delay := include "qinqing.durationMs" $fv.scaleDownDelay | int -}}
{{- if gt $delay 3600000 -}}
{{- $msgs = append $msgs (printf "functions.%s.scaleDownDelay: %s is more than 1h, the longest Knative allows." $name $fv.scaleDownDelay) -}}
{{- end -}}
{{- if ge (include "qinqing.durationMs" $fv.requestTimeout | int) (mul (int $fv.timeoutSeconds) 1000) -}}
{{- $msgs = append $msgs (printf "functions.%s.requestTimeout: %s is not shorter than timeoutSeconds %d; the function must answer before Knative cuts the request." $name $fv.requestTimeout (int $fv.timeoutSeconds)) -}}
{{- end -}}
{{- $cc := include "qinqing.containerConcurrency" (dict "fv" $fv "need" $need) | int -}}
{{- $target := include "qinqing.target" (dict "fv" $fv "need" $need) | int -}}
{{- if and $need.database (or (eq $cc 0) (gt $cc (int $fv.databaseMaxConns))) -}}
{{- $many := ternary "0 admits any number of requests" (printf "%d admits %d requests" $cc $cc) (eq $cc 0) -}}
{{- $msgs = append $msgs (printf "functions.%s.containerConcurrency: %s at once, but its pool has %d connections (databaseMaxConns) and each request needs one; set 1 to %d, or auto." $name $many (int $fv.databaseMaxConns) (int $fv.databaseMaxConns)) -}}
{{- else if and (gt $cc 0) (gt $target $cc) -}}
{{- $msgs = append $msgs (printf "functions.%s.target: %d is above containerConcurrency %d, so it is never reached; set at most %d, or auto." $name $target $cc $cc) -}}
{{- end -}}
{{- if and (not $need.database) $fv.databaseSecret -}}
{{- $msgs = append $msgs (printf "functions.%s.databaseSecret: %s does not use the database." $name $name) -}}
{{- end -}}
{{- if and (not (empty $fv.serviceAccountAnnotations)) (not (and $.Values.serviceAccount.create $.Values.serviceAccount.perFunction)) -}}
{{- $msgs = append $msgs (printf "functions.%s.serviceAccountAnnotations: only applied to a ServiceAccount of its own; set serviceAccount.create=true and serviceAccount.perFunction=true." $name) -}}
{{- end -}}
{{- if $need.database -}}
{{- if eq (int $fv.maxScale) 0 -}}
{{- $unbounded = append $unbounded $name -}}
{{- end -}}
{{- $pooled = add $pooled (mul (int $fv.maxScale) (int $fv.databaseMaxConns)) -}}
{{- if $db.listenUrlKey -}}
{{- $listen = add $listen (int $fv.maxScale) -}}
{{- else if ne $db.pooler "pgbouncer-transaction" -}}
{{- /* the relay LISTENs on a connection of DATABASE_URL (none under a transaction pooler: it polls) */ -}}
{{- $pooled = add $pooled (int $fv.maxScale) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- /* cmd/migrate may hold two connections: goose's lock and the migration */ -}}
{{- $migrate := ternary 2 0 .Values.migrations.enabled -}}
{{- $migrateDirect := ternary $migrate 0 (ne .Values.migrations.urlKey "") -}}
{{- $max := int $db.maxConnections -}}
{{- $maxClients := int $db.pgbouncer.maxClientConnections -}}
{{- if and (or (gt $max 0) (and (ne $db.pooler "none") (gt $maxClients 0))) $unbounded -}}
{{- $msgs = append $msgs (printf "functions.<name>.maxScale: %s use the database and may scale without limit; set maxScale, or database.maxConnections=0 (and database.pgbouncer.maxClientConnections=0) to skip the connection budget." (join ", " $unbounded)) -}}
{{- else if eq $db.pooler "none" -}}
{{- $total := add $pooled $listen $migrate -}}
{{- if and (gt $max 0) (gt (int $total) $max) -}}
{{- $msgs = append $msgs (printf "database.maxConnections: at maxScale the functions may open %d connections to Postgres (%d pooled and LISTEN, %d direct LISTEN, %d migrations; see docs/deploy.md), more than the %d it accepts; lower maxScale or databaseMaxConns, raise database.maxConnections, or put PgBouncer in front (database.pooler)." (int $total) (int $pooled) (int $listen) (int $migrate) $max) -}}
{{- end -}}
{{- else -}}
{{- $server := int $db.pgbouncer.serverConnections -}}
{{- if and (gt $max 0) (eq $server 0) -}}
{{- $msgs = append $msgs (printf "database.pgbouncer.serverConnections: with database.pooler=%s, say how many server connections PgBouncer opens to Postgres for qinqing (the sum of its pool sizes), so the budget against database.maxConnections holds; or set database.maxConnections=0." $db.pooler) -}}
{{- end -}}
{{- $direct := add $server $listen $migrateDirect -}}
{{- if and (gt $max 0) (gt $server 0) (gt (int $direct) $max) -}}
{{- $msgs = append $msgs (printf "database.maxConnections: Postgres would see %d connections (%d PgBouncer server connections, %d direct LISTEN, %d migrations around the pooler), more than the %d it accepts." (int $direct) $server (int $listen) (int $migrateDirect) $max) -}}
{{- end -}}
{{- $clients := add $pooled (sub $migrate $migrateDirect) -}}
{{- if and (gt $maxClients 0) (gt (int $clients) $maxClients) -}}
{{- $msgs = append $msgs (printf "database.pgbouncer.maxClientConnections: at maxScale the functions may open %d client connections to PgBouncer (%d pooled and LISTEN, %d migrations), more than its %d; lower maxScale or databaseMaxConns, or raise max_client_conn." (int $clients) (int $pooled) (int (sub $migrate $migrateDirect)) $maxClients) -}}
{{- end -}}
{{- end -}}
{{- /* the five fields of a cron schedule: name, range of values, pattern of one list item */ -}}
{{- $cronFields := list
  (list "minute" "0-59" "(0?[0-9]|[1-5][0-9])")
  (list "hour" "0-23" "(0?[0-9]|1[0-9]|2[0-3])")
  (list "day of month" "1-31" "(0?[1-9]|[12][0-9]|3[01])")
  (list "month" "1-12" "(0?[1-9]|1[0-2])")
  (list "day of week" "0-6" "0?[0-6]") -}}
{{- range $job, $c := .Values.cron -}}
{{- range $i, $field := splitList " " $c.schedule -}}
{{- $f := index $cronFields $i -}}
{{- $item := printf "(\\*|%s(-%s)?)(/[1-9][0-9]*)?" (index $f 2) (index $f 2) -}}
{{- if not (regexMatch (printf "^%s(,%s)*$" $item $item) $field) -}}
{{- $msgs = append $msgs (printf "cron.%s.schedule: %q has %s %q; use numbers in %s, *, ranges a-b, lists a,b and steps /n." $job $c.schedule (index $f 0) $field (index $f 1)) -}}
{{- end -}}
{{- end -}}
{{- range $r := regexFindAll "[0-9]+-[0-9]+" $c.schedule -1 -}}
{{- $ends := splitList "-" $r -}}
{{- if gt (atoi (index $ends 0)) (atoi (index $ends 1)) -}}
{{- $msgs = append $msgs (printf "cron.%s.schedule: the range %s runs backwards." $job $r) -}}
{{- end -}}
{{- end -}}
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

{{/*
The OIDC audience of dead letters: deadLetter.oidc.audience, or the
dead-letter Service's name. Usage: include "qinqing.deadLetterAudience" $
*/}}
{{- define "qinqing.deadLetterAudience" -}}
{{- default (include "qinqing.serviceName" (dict "root" . "name" "dead-letter")) .Values.deadLetter.oidc.audience -}}
{{- end -}}
