{{/* The prefix of every object's name, cluster-scoped ones included: derived from the release, so two
releases never share an object. Release "kpo-sweeper" (or any name containing it): the release name. */}}
{{- define "kpo-sweeper.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else if contains "kpo-sweeper" .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-kpo-sweeper" .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Where the sweeper, its ServiceAccount, its parameters and the database Secret live. */}}
{{- define "kpo-sweeper.sweeperNamespace" -}}
{{- .Values.sweeper.namespace | default .Release.Namespace -}}
{{- end -}}

{{/* Whether this release runs the webhook (webhook.enabled and stamping: webhook). */}}
{{- define "kpo-sweeper.webhookServer" -}}
{{- if and .Values.webhook.enabled (eq .Values.stamping "webhook") }}true{{ end -}}
{{- end -}}

{{/* The namespaces the stamp covers: webhook.namespaceSelector, default all but ours and kube-system. */}}
{{- define "kpo-sweeper.stampNamespaceSelector" -}}
{{- if .Values.webhook.namespaceSelector -}}
{{- toYaml .Values.webhook.namespaceSelector -}}
{{- else -}}
matchExpressions:
  - key: kubernetes.io/metadata.name
    operator: NotIn
    values: [{{ .Release.Namespace | quote }}, "kube-system"]
{{- end -}}
{{- end -}}

{{/* Labels on every pod of this release (the NetworkPolicies select by them: never Airflow's pods). */}}
{{- define "kpo-sweeper.podLabels" -}}
app.kubernetes.io/part-of: kpo-sweeper
app.kubernetes.io/instance: {{ .Release.Name }}
{{- with .Values.podLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Pod-level settings shared by every pod: pull secrets and scheduling. */}}
{{- define "kpo-sweeper.podScheduling" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* The pod template's metadata annotations (podAnnotations), if any. */}}
{{- define "kpo-sweeper.podAnnotations" -}}
{{- with .Values.podAnnotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
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
{{- with .Values.sweeper.extraEnv }}
{{ toYaml . }}
{{- end }}
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

{{/* The namespaces the guards are bound to: targetNamespaces; clusterWide, the namespaces stamped. */}}
{{- define "kpo-sweeper.guardNamespaceSelector" -}}
{{- if .Values.clusterWide -}}
{{- include "kpo-sweeper.stampNamespaceSelector" . -}}
{{- else -}}
matchExpressions:
  - key: kubernetes.io/metadata.name
    operator: In
    values: {{ toJson .Values.targetNamespaces }}
{{- end -}}
{{- end -}}
