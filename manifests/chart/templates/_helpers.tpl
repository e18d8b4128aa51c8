{{/* The prefix of every object's name. */}}
{{- define "kpo-sweeper.fullname" -}}
{{- .Values.fullnameOverride | default "kpo-sweeper" | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{- define "kpo-sweeper.labels" -}}
app.kubernetes.io/part-of: kpo-sweeper
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "kpo-sweeper.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* The pod-level securityContext every component runs with (Pod Security `restricted`). */}}
{{- define "kpo-sweeper.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "kpo-sweeper.containerSecurityContext" -}}
runAsNonRoot: true
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
capabilities:
  drop: ["ALL"]
{{- end -}}

{{/* The sweeper container's env: scope and owner from the params ConfigMap, the DB URL from the Secret. */}}
{{- define "kpo-sweeper.sweeperEnv" -}}
{{- $name := include "kpo-sweeper.fullname" . -}}
{{- if .Values.clusterWide }}
- name: KPO_SWEEPER_ALL_NAMESPACES
  value: "true"
{{- else }}
- name: KPO_SWEEPER_NAMESPACE
  valueFrom:
    configMapKeyRef:
      name: {{ $name }}-params
      key: target-namespace
{{- end }}
- name: KPO_SWEEPER_OWNER
  valueFrom:
    configMapKeyRef:
      name: {{ $name }}-params
      key: owner
- name: AIRFLOW__DATABASE__SQL_ALCHEMY_CONN
  valueFrom:
    secretKeyRef:
      name: {{ .Values.database.secretName }}
      key: {{ .Values.database.secretKey }}
{{- end -}}

{{- define "kpo-sweeper.sweeperArgs" -}}
{{- if .Values.sweeper.delete }}
- --delete
{{- end }}
- --max-deletions={{ .Values.sweeper.maxDeletions }}
- --max-fraction={{ .Values.sweeper.maxFraction }}
- --min-age={{ .Values.sweeper.minAge }}
- --output=json
- --log-format=json
{{- if eq .Values.sweeper.mode "interval" }}
- --interval={{ .Values.sweeper.interval }}
- --metrics-listen=[::]:{{ .Values.sweeper.metricsPort }}
{{- end }}
{{- range .Values.sweeper.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end -}}
