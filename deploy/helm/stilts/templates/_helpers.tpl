{{/* Names ------------------------------------------------------------------------------- */}}
{{- define "stilts.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "stilts.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Component names; leave room for StatefulSet pod suffixes. */}}
{{- define "stilts.coordinator.fullname" -}}{{ include "stilts.fullname" . | trunc 45 | trimSuffix "-" }}-coordinator{{- end -}}
{{- define "stilts.coordinator.headless" -}}{{ include "stilts.fullname" . | trunc 45 | trimSuffix "-" }}-coordinator-hl{{- end -}}
{{- define "stilts.worker.fullname" -}}{{ include "stilts.fullname" . | trunc 45 | trimSuffix "-" }}-worker{{- end -}}
{{- define "stilts.etcd.fullname" -}}{{ include "stilts.fullname" . | trunc 45 | trimSuffix "-" }}-etcd{{- end -}}
{{- define "stilts.etcd.headless" -}}{{ include "stilts.fullname" . | trunc 45 | trimSuffix "-" }}-etcd-hl{{- end -}}
{{- define "stilts.config.name" -}}{{ include "stilts.fullname" . }}-config{{- end -}}
{{- define "stilts.artifacts.claim" -}}
{{- default (printf "%s-artifacts" (include "stilts.fullname" .)) .Values.artifacts.existingClaim -}}
{{- end -}}
{{- define "stilts.auth.secret" -}}
{{- default (printf "%s-token" (include "stilts.fullname" .)) .Values.auth.existingSecret -}}
{{- end -}}
{{- define "stilts.tls.secret" -}}
{{- default (printf "%s-tls" (include "stilts.fullname" .)) .Values.tls.existingSecret -}}
{{- end -}}
{{- define "stilts.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "stilts.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Labels ------------------------------------------------------------------------------ */}}
{{- define "stilts.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "stilts.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: stilts
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one component: include with (dict "ctx" $ "component" "worker"). */}}
{{- define "stilts.selectorLabels" -}}
app.kubernetes.io/name: {{ include "stilts.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Images: digest wins over tag; tag defaults to appVersion (dict "image" … "ctx" $). */}}
{{- define "stilts.image" -}}
{{- if .image.digest -}}
{{ .image.repository }}@{{ .image.digest }}
{{- else -}}
{{ .image.repository }}:{{ default .ctx.Chart.AppVersion .image.tag }}
{{- end -}}
{{- end -}}

{{/* Topology ---------------------------------------------------------------------------- */}}
{{- define "stilts.validate" -}}
{{- $c := .Values.coordinator -}}
{{- if and (eq $c.store "sqlite") (ne (int $c.replicas) 1) -}}
{{- fail "coordinator.store=sqlite runs exactly one coordinator replica; use coordinator.store=etcd for several" -}}
{{- end -}}
{{- if and (eq $c.store "etcd") (not .Values.etcd.enabled) (empty .Values.etcd.externalEndpoints) -}}
{{- fail "coordinator.store=etcd needs etcd.enabled=true or etcd.externalEndpoints" -}}
{{- end -}}
{{- if and .Values.auth.enabled (not .Values.auth.existingSecret) (not .Values.auth.token) -}}
{{- fail "auth.enabled needs auth.existingSecret or auth.token" -}}
{{- end -}}
{{- if and .Values.tls.enabled (not .Values.tls.existingSecret) (or (not .Values.tls.cert) (not .Values.tls.key)) -}}
{{- fail "tls.enabled needs tls.existingSecret or tls.cert and tls.key" -}}
{{- end -}}
{{- end -}}

{{- define "stilts.etcd.enabled" -}}
{{- if and (eq .Values.coordinator.store "etcd") .Values.etcd.enabled -}}true{{- end -}}
{{- end -}}

{{/* Comma-separated etcd client URLs. */}}
{{- define "stilts.etcd.endpoints" -}}
{{- if .Values.etcd.enabled -}}
{{- $urls := list -}}
{{- $name := include "stilts.etcd.fullname" . -}}
{{- $hl := include "stilts.etcd.headless" . -}}
{{- range $i := until (int .Values.etcd.replicas) -}}
{{- $urls = append $urls (printf "http://%s-%d.%s.%s.svc:2379" $name $i $hl $.Release.Namespace) -}}
{{- end -}}
{{- join "," $urls -}}
{{- else -}}
{{- join "," .Values.etcd.externalEndpoints -}}
{{- end -}}
{{- end -}}

{{/* Comma-separated coordinator URLs for workers: the Service with one replica, every replica
     by its stable name with several (a worker tries them in turn). */}}
{{- define "stilts.coordinator.urls" -}}
{{- if .Values.worker.coordinatorUrls -}}
{{- join "," .Values.worker.coordinatorUrls -}}
{{- else -}}
{{- $scheme := .Values.tls.urlScheme -}}
{{- $port := int .Values.coordinator.service.port -}}
{{- if eq (int .Values.coordinator.replicas) 1 -}}
{{- printf "%s://%s.%s.svc:%d" $scheme (include "stilts.coordinator.fullname" .) .Release.Namespace $port -}}
{{- else -}}
{{- $urls := list -}}
{{- $name := include "stilts.coordinator.fullname" . -}}
{{- $hl := include "stilts.coordinator.headless" . -}}
{{- range $i := until (int .Values.coordinator.replicas) -}}
{{- $urls = append $urls (printf "%s://%s-%d.%s.%s.svc:%d" $scheme $name $i $hl $.Release.Namespace $port) -}}
{{- end -}}
{{- join "," $urls -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Pieces shared by the stilts containers ------------------------------------------------ */}}
{{- define "stilts.commonEnv" -}}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
{{- if .Values.auth.enabled }}
- name: STILTS_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "stilts.auth.secret" . }}
      key: {{ .Values.auth.secretKey }}
{{- end }}
{{- end -}}

{{- define "stilts.tlsVolumeMount" -}}
{{- if .Values.tls.enabled -}}
- name: tls
  mountPath: /etc/stilts/tls
  readOnly: true
{{- end }}
{{- end -}}

{{- define "stilts.tlsVolume" -}}
{{- if .Values.tls.enabled -}}
- name: tls
  secret:
    secretName: {{ include "stilts.tls.secret" . }}
    defaultMode: 0440
{{- end }}
{{- end -}}
