// tests/deploy/helm-check.mjs: validates manifests that `helm template`
// rendered from deploy/helm/aigw (tests/deploy/check.sh runs it).
//
//   node helm-check.mjs RENDERED.yaml --actors auth,ratelimit,... \
//        --secret NAME [--secret-rendered yes|no] [--job yes|no]
//        [--config yes|no] [--stages a=x,y;b=z] [--known auth,ratelimit,...]
//
// 1. Every document is YAML without duplicate keys and validates against the
//    Kubernetes OpenAPI schema of its kind (kubernetes-models: types,
//    required fields, enums; it does not reject unknown fields).
// 2. The chart's contract: the broker, the edge behind a Service, one
//    Deployment per actor, each with an HPA unless it is off, the migration
//    Job when asked for, every container's secrets from the Secret, peers
//    advertising the pod IP, non-root pods, probes on declared ports.
// Prints one line per problem; exits 1 when there is any.
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";

const args = process.argv.slice(2);
const file = args.shift();
const opts = {};
while (args.length) {
  const name = args.shift().replace(/^--/, "");
  opts[name] = args.shift();
}
const expectedActors = (opts.actors || "").split(",").filter(Boolean);
const stagesOf = Object.fromEntries(
  (opts.stages || "").split(";").filter(Boolean).map((s) => s.split("=")));
const problems = [];
const fail = (msg) => problems.push(msg);

// --- parse ---------------------------------------------------------------------
const docs = [];
for (const doc of parseAllDocuments(readFileSync(file, "utf8"), { uniqueKeys: true })) {
  for (const e of doc.errors) fail(`YAML: ${e.message}`);
  const obj = doc.toJS();
  if (obj !== null && obj !== undefined) docs.push(obj);
}

// --- schema --------------------------------------------------------------------
async function modelOf(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  const path = group ? `kubernetes-models/${group}/${version}/${kind}` : `kubernetes-models/${version}/${kind}`;
  const mod = await import(path);
  return mod[kind];
}
for (const obj of docs) {
  const where = `${obj.kind}/${obj.metadata?.name}`;
  if (!obj.apiVersion || !obj.kind) { fail(`${where}: no apiVersion or kind`); continue; }
  let Model;
  try { Model = await modelOf(obj.apiVersion, obj.kind); }
  catch { fail(`${where}: unknown apiVersion ${obj.apiVersion} for ${obj.kind}`); continue; }
  try { new Model(obj).validate(); }
  catch (e) { fail(`${where}: schema: ${e.message}`); }
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(obj.metadata?.name || "") || obj.metadata.name.length > 63)
    fail(`${where}: not a valid DNS-1123 label`);
}

// --- the chart's contract ---------------------------------------------------------
const of = (kind) => docs.filter((d) => d.kind === kind);
const component = (d) => d.metadata?.labels?.["app.kubernetes.io/component"];
const deployments = of("Deployment");
const byComponent = Object.fromEntries(deployments.map((d) => [component(d), d]));
const services = of("Service");
const hpas = of("HorizontalPodAutoscaler");
const jobs = of("Job");
const commands = new Set(["run", "broker", "edge", "actor", "migrate"]);
// The actors aigw knows (check.sh passes the binary's own list).
const actorNames = new Set((opts.known || "auth,ratelimit,guardrail,cache,provider,admin,usage").split(","));
const secretish = /^(DATABASE_URL|AIGW_MASTER_KEY|.*_API_KEY|.*SECRET.*|.*TOKEN.*)$/;

const containerOf = (d) => d.spec.template.spec.containers[0];
const envOf = (c) => Object.fromEntries((c.env || []).map((e) => [e.name, e]));
const selects = (selector, labels) =>
  Object.entries(selector || {}).every(([k, v]) => labels?.[k] === v);
const portNames = (c) => new Set((c.ports || []).map((p) => p.name));

function checkPod(where, pod) {
  const spec = pod.spec;
  if (spec.securityContext?.runAsNonRoot !== true) fail(`${where}: pod not runAsNonRoot`);
  for (const c of spec.containers) {
    if (!commands.has(c.args?.[0])) fail(`${where}: container args ${JSON.stringify(c.args)} name no aigw command`);
    const refs = (c.envFrom || []).map((e) => e.secretRef?.name).filter(Boolean);
    if (!refs.includes(opts.secret)) fail(`${where}: secrets not from Secret ${opts.secret} (envFrom ${refs})`);
    for (const e of c.env || [])
      if (secretish.test(e.name) && e.value !== undefined) fail(`${where}: ${e.name} set in plain text`);
    if (c.securityContext?.allowPrivilegeEscalation !== false) fail(`${where}: privilege escalation allowed`);
    for (const probe of ["livenessProbe", "readinessProbe", "startupProbe"]) {
      const port = c[probe]?.httpGet?.port ?? c[probe]?.tcpSocket?.port;
      if (typeof port === "string" && !portNames(c).has(port)) fail(`${where}: ${probe} on undeclared port ${port}`);
    }
    const hasConfig = (c.args || []).includes("--config");
    if (opts.config === "yes" && !hasConfig) fail(`${where}: no --config`);
    if (opts.config === "no" && hasConfig) fail(`${where}: --config without a config`);
  }
}

// broker
const broker = byComponent.broker;
let brokerEndpoint = null;
if (!broker) fail("no broker Deployment");
else {
  const c = containerOf(broker);
  if (c.args[0] !== "broker") fail(`broker: args ${c.args}`);
  if (broker.spec.replicas !== 1) fail("broker: not exactly one replica");
  const svc = services.find((s) => selects(s.spec.selector, broker.spec.template.metadata.labels));
  if (!svc) fail("broker: no Service selects it");
  else brokerEndpoint = `tcp://${svc.metadata.name}:${svc.spec.ports[0].port}`;
  if (!c.livenessProbe) fail("broker: no liveness probe");
  checkPod("broker", broker.spec.template);
}

function checkSplit(where, d) {
  const c = containerOf(d);
  const env = envOf(c);
  if (brokerEndpoint && env.AIGW_BROKER?.value !== brokerEndpoint)
    fail(`${where}: AIGW_BROKER ${env.AIGW_BROKER?.value}, the broker's Service is ${brokerEndpoint}`);
  if (env.AIGW_PEER_ADVERTISE?.valueFrom?.fieldRef?.fieldPath !== "status.podIP")
    fail(`${where}: AIGW_PEER_ADVERTISE is not the pod IP`);
  const bind = env.AIGW_PEER_BIND?.value || "";
  const peer = (c.ports || []).find((p) => p.name === "peer");
  if (!/^tcp:\/\/0\.0\.0\.0:\d+$/.test(bind) || !peer || bind !== `tcp://0.0.0.0:${peer.containerPort}`)
    fail(`${where}: AIGW_PEER_BIND ${bind} does not bind the declared peer port`);
  checkPod(where, d.spec.template);
}

function checkScaling(where, d) {
  const hpa = hpas.find((h) => h.spec.scaleTargetRef.kind === "Deployment"
                            && h.spec.scaleTargetRef.name === d.metadata.name);
  if (hpa) {
    if (d.spec.replicas !== undefined) fail(`${where}: replicas set beside an HPA`);
    const cpu = containerOf(d).resources?.requests?.cpu;
    if (!cpu) fail(`${where}: an HPA on CPU without a CPU request`);
    if (hpa.spec.minReplicas > hpa.spec.maxReplicas) fail(`${where}: HPA min > max`);
  }
  return hpa;
}

// edge
const edge = byComponent.edge;
if (!edge) fail("no edge Deployment");
else {
  const c = containerOf(edge);
  if (c.args[0] !== "edge") fail(`edge: args ${c.args}`);
  checkSplit("edge", edge);
  const env = envOf(c);
  if (env.AIGW_HOST?.value !== "0.0.0.0") fail("edge: AIGW_HOST is not 0.0.0.0");
  const http = (c.ports || []).find((p) => p.name === "http");
  if (!http || String(http.containerPort) !== env.AIGW_PORT?.value) fail("edge: AIGW_PORT is not the http port");
  if (c.livenessProbe?.httpGet?.path !== "/healthz") fail("edge: liveness is not /healthz");
  if (c.readinessProbe?.httpGet?.path !== "/readyz") fail("edge: readiness is not /readyz");
  const svc = services.find((s) => selects(s.spec.selector, edge.spec.template.metadata.labels));
  if (!svc) fail("edge: no Service selects it");
  else if (!svc.spec.ports.some((p) => p.targetPort === "http")) fail("edge: its Service does not target http");
  if (!checkScaling("edge", edge) && edge.spec.replicas === undefined) fail("edge: neither replicas nor an HPA");
}

// actors
const seen = [];
for (const d of deployments) {
  const comp = component(d);
  if (!comp?.startsWith("actor-")) continue;
  const name = comp.slice("actor-".length);
  seen.push(name);
  const c = containerOf(d);
  if (c.args[0] !== "actor") fail(`${name}: args ${c.args}`);
  const stages = c.args[1] || "";
  const want = stagesOf[name] || name;
  if (stages !== want) fail(`${name}: runs ${stages}, expected ${want}`);
  for (const s of stages.split(",")) if (!actorNames.has(s)) fail(`${name}: unknown actor ${s}`);
  if (!c.livenessProbe) fail(`${name}: no liveness probe`);
  checkSplit(name, d);
  const hpa = checkScaling(name, d);
  if (!hpa && d.spec.replicas === undefined) fail(`${name}: neither replicas nor an HPA`);
}
if (seen.sort().join(",") !== [...expectedActors].sort().join(","))
  fail(`actor Deployments ${seen}, expected ${expectedActors}`);
const covered = new Set(seen.flatMap((n) => (stagesOf[n] || n).split(",")));
for (const a of actorNames)
  if (!covered.has(a)) fail(`no Deployment runs the ${a} actor`);
for (const h of hpas)
  if (!deployments.some((d) => d.metadata.name === h.spec.scaleTargetRef.name))
    fail(`HPA ${h.metadata.name} targets a missing Deployment`);

// migration Job
if (opts.job === "yes") {
  if (jobs.length !== 1) fail(`expected one migration Job, found ${jobs.length}`);
  for (const j of jobs) {
    const c = j.spec.template.spec.containers[0];
    if (c.args?.[0] !== "migrate") fail(`Job ${j.metadata.name}: does not run migrate`);
    const hook = j.metadata.annotations?.["helm.sh/hook"] || "";
    if (!hook.includes("pre-upgrade") || !hook.includes("post-install"))
      fail(`Job ${j.metadata.name}: hook is '${hook}'`);
    checkPod(`Job ${j.metadata.name}`, j.spec.template);
  }
} else if (opts.job === "no" && jobs.length) fail("a migration Job without a database");

// the Secret
const secrets = of("Secret");
const own = secrets.find((s) => s.metadata.name === opts.secret);
if (opts["secret-rendered"] === "yes" && !own) fail(`no Secret ${opts.secret} rendered`);
if (opts["secret-rendered"] === "no" && secrets.length) fail("a Secret rendered beside existingSecret");
if (opts.config === "yes" && !of("ConfigMap").some((m) => m.data?.["aigw.yaml"]))
  fail("no ConfigMap with aigw.yaml");

for (const p of problems) console.log(`helm-check: ${p}`);
console.log(`helm-check: ${docs.length} documents, ${problems.length} problems`);
process.exit(problems.length ? 1 : 0);
