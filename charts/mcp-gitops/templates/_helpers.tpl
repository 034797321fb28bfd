{{/* The chart's name, truncated to a DNS label. */}}
{{- define "mcp-gitops.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The full name of the release's objects. */}}
{{- define "mcp-gitops.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "mcp-gitops.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "mcp-gitops.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mcp-gitops.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "mcp-gitops.labels" -}}
helm.sh/chart: {{ include "mcp-gitops.chart" . }}
{{ include "mcp-gitops.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: controller
{{- end }}

{{- define "mcp-gitops.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "mcp-gitops.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "mcp-gitops.leaseName" -}}
{{- default (printf "%s-leader" (include "mcp-gitops.fullname" .)) .Values.leaderElection.leaseName }}
{{- end }}

{{- define "mcp-gitops.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The API group of the three custom resources (the files under crds/). */}}
{{- define "mcp-gitops.crdGroup" -}}
gitops.mcp-gitops.dev
{{- end }}

{{/* Refuse value combinations the schema cannot express, before anything is rendered. */}}
{{- define "mcp-gitops.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) }}
{{- fail "replicaCount > 1 needs leaderElection.enabled=true: without a Lease every replica would write" }}
{{- end }}
{{- end }}
