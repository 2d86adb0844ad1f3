{{/*
Names.  Every object is "<release>-fma-<component>", so the controllers'
ServiceAccount is "<release>-fma-controllers" and matches the admission
policies' exemption pattern ^system:serviceaccount:[^:]+:[^:]*-fma-controllers$.
*/}}
{{- define "fma.prefix" -}}
{{- printf "%s-fma" .Release.Name | trunc 45 | trimSuffix "-" -}}
{{- end -}}

{{- define "fma.name" -}}
{{- printf "%s-%s" (include "fma.prefix" .root) .component -}}
{{- end -}}

{{- define "fma.controllers" -}}{{ include "fma.name" (dict "root" . "component" "controllers") }}{{- end -}}
{{- define "fma.webhook" -}}{{ include "fma.name" (dict "root" . "component" "webhook") }}{{- end -}}
{{- define "fma.extender" -}}{{ include "fma.name" (dict "root" . "component" "extender") }}{{- end -}}
{{- define "fma.scheduler" -}}{{ include "fma.name" (dict "root" . "component" "scheduler") }}{{- end -}}
{{- define "fma.launcher" -}}{{ include "fma.name" (dict "root" . "component" "launcher") }}{{- end -}}
{{- define "fma.certs" -}}{{ include "fma.name" (dict "root" . "component" "certs") }}{{- end -}}
{{- define "fma.webhookCertSecret" -}}{{ include "fma.webhook" . }}-tls{{- end -}}
{{- define "fma.launcherTokenSecret" -}}{{ include "fma.launcher" . }}-token{{- end -}}

{{/* Labels of every object; "component" names the FMA component. */}}
{{- define "fma.labels" -}}
app.kubernetes.io/name: {{ printf "fma-%s" .component }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/part-of: fma
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The selector labels of one component's Pods. */}}
{{- define "fma.selector" -}}
app.kubernetes.io/name: {{ printf "fma-%s" .component }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end -}}

{{/* The FMA image reference. */}}
{{- define "fma.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The scheduler image: its tag defaults to the cluster's version; with placementNominate plugin, FMA's
build (scheduler.plugin.image), whose tag defaults to the chart's appVersion. */}}
{{- define "fma.schedulerImage" -}}
{{- if eq (include "fma.nominate" .) "plugin" -}}
{{- printf "%s:%s" .Values.scheduler.plugin.image.repository (default .Chart.AppVersion .Values.scheduler.plugin.image.tag) -}}
{{- else -}}
{{- $tag := .Values.scheduler.image.tag | default (regexReplaceAll "[+].*$" .Capabilities.KubeVersion.Version "") -}}
{{- printf "%s:%s" .Values.scheduler.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* placementNominate as a mode: off, gate or plugin (the booleans of earlier releases: true is gate, false off). */}}
{{- define "fma.nominate" -}}
{{- $n := .Values.placementNominate -}}
{{- if kindIs "bool" $n -}}{{ ternary "gate" "off" $n }}{{- else -}}{{ $n }}{{- end -}}
{{- end -}}

{{/* The in-cluster DNS name of a Service of the release. */}}
{{- define "fma.serviceHost" -}}
{{- printf "%s.%s.svc" .name .root.Release.Namespace -}}
{{- end -}}

{{/* Environment every FMA process gets: its Pod IP (each process listens there), name and namespace. */}}
{{- define "fma.podEnv" -}}
- name: POD_IP
  valueFrom:
    fieldRef:
      fieldPath: status.podIP
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
{{- end -}}

{{/* The Pod-level security context of every FMA Pod. */}}
{{- define "fma.podSecurity" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* The container-level security context of every FMA container. */}}
{{- define "fma.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end -}}

{{/* Pod placement knobs of one component (its values block). */}}
{{- define "fma.placement" -}}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{- define "fma.pullSecrets" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- end -}}

{{/*
Replicas of one component on different nodes when possible: the component's
own affinity when set, else a preferred anti-affinity by hostname.
*/}}
{{- define "fma.spread" -}}
{{- if .values.affinity }}
affinity:
  {{- toYaml .values.affinity | nindent 2 }}
{{- else }}
affinity:
  podAntiAffinity:
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        podAffinityTerm:
          topologyKey: kubernetes.io/hostname
          labelSelector:
            matchLabels:
              {{- include "fma.selector" (dict "root" .root "component" .component) | nindent 14 }}
{{- end }}
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Non-empty when the webhook runs the sleeper cache: placement hints or DRA claims by default. */}}
{{- define "fma.readsSleepers" -}}
{{- if or (ne .Values.placement "extender") (eq .Values.gpuClaims "dra") }}true{{ end }}
{{- end }}

{{/* Non-empty when fma-controllers runs the claim keeper (DRA requesters' ResourceClaims). */}}
{{- define "fma.keepsClaims" -}}
{{- if or (eq .Values.gpuClaims "dra") .Values.controllers.enableGpuClaims }}true{{ end }}
{{- end }}
