{{/*
The OpenTelemetry environment of every function (contract section 11),
from .Values.telemetry. Nothing is set when telemetry.otlp.endpoint is
empty and telemetry.prometheus.enabled is false: the functions then start
no exporter at all.
A public function (clusterLocal false: webhook-ingress) never serves
/metrics, whatever telemetry.prometheus.enabled says: its metrics are
pushed only.
Usage: include "qinqing.telemetryEnv" (dict "root" $ "name" $name "public" (not $fv.clusterLocal))
*/}}
{{- define "qinqing.telemetryEnv" -}}
{{- $t := .root.Values.telemetry -}}
{{- if $t.otlp.endpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ $t.otlp.endpoint | quote }}
- name: OTEL_EXPORTER_OTLP_PROTOCOL
  value: http/protobuf
- name: OTEL_SERVICE_NAME
  value: {{ .name | quote }}
{{- $attrs := list (printf "k8s.namespace.name=%s" .root.Release.Namespace) (printf "service.version=%s" .root.Chart.AppVersion) }}
{{- range $k, $v := $t.resourceAttributes }}
{{- $attrs = append $attrs (printf "%s=%s" $k ($v | toString)) }}
{{- end }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ join "," $attrs | quote }}
{{- with $t.tracesSampler }}
- name: OTEL_TRACES_SAMPLER
  value: {{ . | quote }}
{{- end }}
{{- with $t.tracesSamplerArg }}
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ . | quote }}
{{- end }}
{{- with $t.metricExportInterval }}
- name: OTEL_METRIC_EXPORT_INTERVAL
  value: {{ . | int | quote }}
{{- end }}
{{- end }}
{{- if and $t.prometheus.enabled (not .public) }}
- name: METRICS_PROMETHEUS
  value: "true"
{{- end }}
{{- end -}}
