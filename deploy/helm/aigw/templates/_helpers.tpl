{{/* Names, labels and the parts every aigw pod shares. */}}

{{- define "aigw.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "aigw.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one component: pass (list $ "edge"). */}}
{{- define "aigw.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ $root.Chart.Name }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "aigw.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "aigw.secretName" -}}
{{- .Values.secret.existingSecret | default (printf "%s-secret" (include "aigw.fullname" .)) -}}
{{- end -}}

{{- define "aigw.brokerEndpoint" -}}
tcp://{{ include "aigw.fullname" . }}-broker:{{ .Values.broker.port }}
{{- end -}}

{{/* True (non-empty) when a database is configured. */}}
{{- define "aigw.hasDatabase" -}}
{{- if or .Values.secret.existingSecret .Values.secret.databaseUrl }}true{{ end -}}
{{- end -}}

{{/* Arguments after the command: --config when a config is given. */}}
{{- define "aigw.configArgs" -}}
{{- if .Values.config -}}
- --config
- /etc/aigw/aigw.yaml
{{- end -}}
{{- end -}}

{{/* Pod annotations: roll the pods when the secret or config changes. */}}
{{- define "aigw.podAnnotations" -}}
checksum/config: {{ .Values.config | sha256sum }}
{{- if not .Values.secret.existingSecret }}
checksum/secret: {{ toJson .Values.secret | sha256sum }}
{{- end }}
{{- with .Values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The environment of every aigw container (the Secret comes by envFrom). */}}
{{- define "aigw.env" -}}
{{- range $name, $value := .Values.env }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end -}}

{{/* The environment of a split process: the broker and its own peer address. */}}
{{- define "aigw.splitEnv" -}}
- name: AIGW_BROKER
  value: {{ include "aigw.brokerEndpoint" . | quote }}
- name: AIGW_PEER_BIND
  value: {{ printf "tcp://0.0.0.0:%v" .Values.peer.port | quote }}
- name: AIGW_PEER_ADVERTISE
  valueFrom:
    fieldRef:
      fieldPath: status.podIP
{{- end -}}

{{- define "aigw.envFrom" -}}
- secretRef:
    name: {{ include "aigw.secretName" . }}
{{- end -}}

{{/* Pod-level settings shared by every aigw pod. */}}
{{- define "aigw.podCommon" -}}
automountServiceAccountToken: false
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
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
volumes:
  - name: tmp
    emptyDir: {}
  {{- if .Values.config }}
  - name: config
    configMap:
      name: {{ include "aigw.fullname" . }}-config
  {{- end }}
{{- end -}}

{{/* Container-level settings shared by every aigw container. */}}
{{- define "aigw.containerCommon" -}}
image: {{ include "aigw.image" . | quote }}
imagePullPolicy: {{ .Values.image.pullPolicy }}
securityContext:
  {{- toYaml .Values.securityContext | nindent 2 }}
envFrom:
  {{- include "aigw.envFrom" . | nindent 2 }}
volumeMounts:
  - name: tmp
    mountPath: /tmp
  {{- if .Values.config }}
  - name: config
    mountPath: /etc/aigw
    readOnly: true
  {{- end }}
{{- end -}}
