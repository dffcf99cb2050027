{{/* Names, labels and the pieces every PhoneFleet pod shares. */}}

{{- define "phonefleet.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "phonefleet.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one component: include "phonefleet.selectorLabels" (dict "root" $ "component" "api") */}}
{{- define "phonefleet.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "phonefleet.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{- define "phonefleet.secretName" -}}
{{- .Values.existingSecret | default (printf "%s-secrets" (include "phonefleet.fullname" .)) -}}
{{- end -}}

{{- define "phonefleet.claimName" -}}
{{- .Values.persistence.existingClaim | default (printf "%s-data" (include "phonefleet.fullname" .)) -}}
{{- end -}}

{{/* The environment of every PhoneFleet container: secrets from the Secret, the rest plain. */}}
{{- define "phonefleet.env" -}}
- name: PHONEFLEET_ENV
  value: prod
- name: PHONEFLEET_DATA_DIR
  value: /var/lib/phonefleet
- name: PHONEFLEET_PERSONAL_PHONES__DATA_DIR  # on the shared data volume: the API's and the pool's
  value: /var/lib/phonefleet/personal-phones
- name: PHONEFLEET_POOL__PROVIDER  # every workload: the API exports personal phones as redroid volumes
  value: redroid
{{- with .Values.storage.retentionDays }}
- name: PHONEFLEET_STORAGE__RETENTION_DAYS
  value: {{ . | quote }}
{{- end }}
- name: PHONEFLEET_MODEL__BASE_URL
  value: {{ include "phonefleet.modelUrl" . | quote }}
- name: PHONEFLEET_MODEL__NAME
  value: {{ .Values.model.name | quote }}
- name: PHONEFLEET_MODEL__LANG
  value: {{ .Values.model.lang | quote }}
- name: PHONEFLEET_LOG_FORMAT
  value: {{ .Values.logFormat | default "json" | quote }}
- name: PHONEFLEET_LOG_LEVEL
  value: {{ .Values.logLevel | default "INFO" | quote }}
{{- range $name, $value := .Values.extraEnv }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- end -}}

{{- define "phonefleet.envFrom" -}}
- secretRef:
    name: {{ include "phonefleet.secretName" . }}
{{- end -}}

{{- define "phonefleet.dataVolume" -}}
- name: data
{{- if .Values.persistence.enabled }}
  persistentVolumeClaim:
    claimName: {{ include "phonefleet.claimName" . }}
{{- else }}
  emptyDir: {}
{{- end }}
{{- end -}}

{{- define "phonefleet.modelUrl" -}}
{{- if .Values.model.baseUrl -}}
{{- .Values.model.baseUrl -}}
{{- else if .Values.vllm.enabled -}}
{{- printf "http://%s-vllm:8000/v1" (include "phonefleet.fullname" .) -}}
{{- else -}}
{{- fail "model.baseUrl is required unless vllm.enabled" -}}
{{- end -}}
{{- end -}}
