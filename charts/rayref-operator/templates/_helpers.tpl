{{/* Names: truncated to 63 characters, the limit of a label value and a DNS label. */}}
{{- define "rayref.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "rayref.fullname" -}}
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

{{- define "rayref.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "rayref.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "rayref.selectorLabels" -}}
app.kubernetes.io/name: {{ include "rayref.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "rayref.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "rayref.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "rayref.leaseName" -}}
{{- default (include "rayref.fullname" .) .Values.leaderElection.leaseName -}}
{{- end -}}

{{/* Leases are held (leader election or sharding): RollingUpdate, Lease settings, pod identity. */}}
{{- define "rayref.leases" -}}
{{- if or .Values.leaderElection.enabled .Values.sharding.enabled -}}true{{- end -}}
{{- end -}}

{{- define "rayref.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/*
Rules the operator needs on its own kinds, events and Secrets wherever it serves
refs: cluster-wide in a ClusterRole, or per watched namespace in a Role. Each verb
is one the operator sends (operator/rayref/controller/kube.py):
- refs: the operator lists and watches them, and writes only the status
  subresource (JSON merge patch). Never spec, never delete.
- events: POST a new Event, PATCH the count of a repeated one.
- secrets: GET a ref's credentials Secret by name; POST and PUT a RayClusterRef's
  connection Secret. No list/watch: nothing enumerates Secrets.
*/}}
{{- define "rayref.namespacedRules" -}}
- apiGroups: ["rayref.io"]
  resources: ["rayjobrefs", "rayclusterrefs"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["rayref.io"]
  resources: ["rayjobrefs/status", "rayclusterrefs/status"]
  verbs: ["patch"]
# Sets (RayJobRefSet, RayClusterRefSet) create the refs they own and delete them by TTL
# (a ref's own ttlSecondsAfterFinished too); they never update a ref.
- apiGroups: ["rayref.io"]
  resources: ["rayjobrefs", "rayclusterrefs"]
  verbs: ["create", "delete"]
{{- if .Values.sharding.enabled }}
# Shard members label each ref with its slot (rayref.io/slot, rayref.io/slots) and
# watch only their slots' labels; a label write touches nothing but the metadata.
- apiGroups: ["rayref.io"]
  resources: ["rayjobrefs", "rayclusterrefs"]
  verbs: ["patch"]
{{- end }}
- apiGroups: ["rayref.io"]
  resources: ["rayjobrefsets", "rayclusterrefsets"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["rayref.io"]
  resources: ["rayjobrefsets/status", "rayclusterrefsets/status"]
  verbs: ["patch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "create", "update"]
{{- end -}}

{{/* Checks a schema cannot express; called from the Deployment. */}}
{{- define "rayref.validate" -}}
{{- if and .Values.credentials.existingSecret.name .Values.credentials.rrsa.enabled -}}
{{- fail "credentials: set credentials.existingSecret.name or credentials.rrsa.enabled, not both (the AccessKey would silently win over RRSA)" -}}
{{- end -}}
{{- $election := .Values.leaderElection -}}
{{- $sharding := .Values.sharding.enabled -}}
{{- if and $sharding $election.enabled -}}
{{- fail "sharding.enabled and leaderElection.enabled exclude each other (each slot is a Lease election of its own): set leaderElection.enabled=false with sharding.enabled=true" -}}
{{- end -}}
{{- if and (gt (int .Values.replicas) 1) (not $election.enabled) (not $sharding) -}}
{{- fail (printf "replicas: %d needs leaderElection.enabled or sharding.enabled (without either every replica would poll and write the same refs)" (int .Values.replicas)) -}}
{{- end -}}
{{- /* The shards' Leases take the leader election's timings, with the same rules. */ -}}
{{- if or $election.enabled $sharding -}}
{{- if not (lt (float64 $election.renewDeadline) (float64 $election.leaseDuration)) -}}
{{- fail "leaderElection.renewDeadline must be shorter than leaderElection.leaseDuration (the difference keeps two leaders apart)" -}}
{{- end -}}
{{- if not (lt (mulf (float64 $election.retryPeriod) 1.2) (float64 $election.renewDeadline)) -}}
{{- fail "leaderElection.retryPeriod x1.2 must be shorter than leaderElection.renewDeadline" -}}
{{- end -}}
{{- end -}}
{{- if and .Values.metrics.enabled (eq (int .Values.metrics.port) (int .Values.health.port)) -}}
{{- fail (printf "metrics.port and health.port must differ (both are %d)" (int .Values.health.port)) -}}
{{- end -}}
{{- end -}}
