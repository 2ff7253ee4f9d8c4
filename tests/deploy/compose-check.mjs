// tests/deploy/compose-check.mjs: checks the model `docker-compose config`
// printed for deploy/docker-compose.yml (tests/deploy/check.sh runs it).
//
//   node compose-check.mjs CONFIG.yaml --actors auth,ratelimit,... \
//        [--port 8000] [--replicas auth=2,...]
//
// What the troubleshooting guide and deploy/README.md promise: a service
// postgres (user postgres, a volume, a health check) that
// `docker-compose exec postgres psql -U postgres` reaches; migrate; aigw on
// port 8000 with DATABASE_URL to postgres, after a healthy postgres and a
// finished migrate; a scaled profile with broker, edge and each actor as a
// service with replicas, all finding the broker by its service name.
// Prints one line per problem; exits 1 when there is any.
import { readFileSync } from "node:fs";
import { parse } from "yaml";

const args = process.argv.slice(2);
const file = args.shift();
const opts = {};
while (args.length) opts[args.shift().replace(/^--/, "")] = args.shift();
const actors = (opts.actors || "").split(",").filter(Boolean);
const port = Number(opts.port || 8000);
const replicas = Object.fromEntries((opts.replicas || "").split(",").filter(Boolean)
  .map((r) => r.split("=")).map(([k, v]) => [k, Number(v)]));

const problems = [];
const fail = (msg) => problems.push(msg);
const model = parse(readFileSync(file, "utf8"), { uniqueKeys: true });
const services = model.services || {};
const svc = (name) => services[name] || (fail(`no service ${name}`), null);
const profiles = (s) => s?.profiles || [];
const env = (s) => s?.environment || {};
const published = (s) => (s?.ports || []).map((p) => [Number(p.published), Number(p.target)]);
const dependsOn = (s, name, condition) => {
  if (s?.depends_on?.[name]?.condition !== condition)
    fail(`${Object.keys(services).find((k) => services[k] === s)}: does not wait for ${name} (${condition})`);
};

// postgres
const pg = svc("postgres");
if (pg) {
  if (!/^postgres:/.test(pg.image || "")) fail(`postgres: image ${pg.image}`);
  if (env(pg).POSTGRES_USER !== "postgres") fail("postgres: POSTGRES_USER is not postgres");
  if (!env(pg).POSTGRES_PASSWORD) fail("postgres: no POSTGRES_PASSWORD (the image refuses to start)");
  // docker-compose 1.x prints volumes short (NAME:PATH:rw), 2.x long.
  const named = (v) => typeof v === "string"
    ? /^[A-Za-z0-9][\w.-]*:\/var\/lib\/postgresql\/data(:rw)?$/.test(v)
    : v.type === "volume" && v.target === "/var/lib/postgresql/data";
  if (!(pg.volumes || []).some(named))
    fail("postgres: no named volume on /var/lib/postgresql/data");
  const test = (pg.healthcheck?.test || []).join(" ");
  if (!/pg_isready/.test(test)) fail(`postgres: health check '${test}'`);
  if (profiles(pg).length) fail("postgres: in a profile (it must always run)");
}
const db = pg && env(pg).POSTGRES_DB;
const dbUrl = new RegExp(`^postgres(ql)?://postgres:[^@]+@postgres:5432/${db}$`);

// every aigw service: the image, the database, a command aigw knows
const aigwServices = Object.entries(services).filter(([n]) => n !== "postgres");
for (const [name, s] of aigwServices) {
  if (!s.build || !/deploy\/Dockerfile$/.test(s.build.dockerfile || "")) fail(`${name}: not built from deploy/Dockerfile`);
  if (!dbUrl.test(env(s).DATABASE_URL || "")) fail(`${name}: DATABASE_URL ${env(s).DATABASE_URL}`);
  const cmd = s.command || [];
  if (!["run", "broker", "edge", "actor", "migrate"].includes(cmd[0])) fail(`${name}: command ${cmd}`);
}

// migrate
const migrate = svc("migrate");
if (migrate) {
  if ((migrate.command || []).join(" ") !== "migrate") fail(`migrate: command ${migrate.command}`);
  dependsOn(migrate, "postgres", "service_healthy");
  if (profiles(migrate).length) fail("migrate: in a profile (every profile needs it)");
  if (migrate.restart && migrate.restart !== "no") fail(`migrate: restart ${migrate.restart}`);
}

// aigw: everything in one process, the default profile
const one = svc("aigw");
if (one) {
  if ((one.command || []).join(" ") !== "run") fail(`aigw: command ${one.command}`);
  if (!published(one).some(([p, t]) => p === port && t === 8000)) fail(`aigw: port ${port}:8000 not published`);
  dependsOn(one, "postgres", "service_healthy");
  dependsOn(one, "migrate", "service_completed_successfully");
  if (one.healthcheck?.disable) fail("aigw: health check disabled");
}

// the scaled-out profile
const broker = svc("broker");
let brokerPort = null;
if (broker) {
  const cmd = broker.command || [];
  const bind = cmd[cmd.indexOf("--bind") + 1] || "";
  const m = /^tcp:\/\/0\.0\.0\.0:(\d+)$/.exec(bind);
  if (cmd[0] !== "broker" || !m) fail(`broker: command ${cmd}`);
  else brokerPort = m[1];
  if (!(broker.healthcheck?.test || []).join(" ").includes(`/${brokerPort}`)) fail("broker: health check is not on its port");
}
const split = (name, s) => {
  if (!profiles(s).includes("scaled")) fail(`${name}: not in the scaled profile`);
  if (brokerPort && env(s).AIGW_BROKER !== `tcp://broker:${brokerPort}`)
    fail(`${name}: AIGW_BROKER ${env(s).AIGW_BROKER}`);
  dependsOn(s, "broker", "service_started");
  dependsOn(s, "migrate", "service_completed_successfully");
};
if (broker && !profiles(broker).includes("scaled")) fail("broker: not in the scaled profile");
const edge = svc("edge");
if (edge) {
  split("edge", edge);
  if ((edge.command || []).join(" ") !== "edge") fail(`edge: command ${edge.command}`);
  if (!published(edge).some(([p, t]) => p === port && t === 8000)) fail(`edge: port ${port}:8000 not published`);
}
for (const a of actors) {
  const s = svc(a);
  if (!s) continue;
  split(a, s);
  if ((s.command || []).join(" ") !== `actor ${a}`) fail(`${a}: command ${s.command}`);
  const n = s.deploy?.replicas;
  if (!Number.isInteger(n) || n < 1) fail(`${a}: deploy.replicas ${n}`);
  if (replicas[a] !== undefined && n !== replicas[a]) fail(`${a}: replicas ${n}, expected ${replicas[a]}`);
  // The entrypoint binds the peer inbox on 5556 (AIGW_PEER_PORT).
  if (!(s.healthcheck?.test || []).join(" ").includes("/5556")) fail(`${a}: health check is not on the peer port`);
}
// Profiles keep the two ways apart: both publish the HTTP port.
if (one && !profiles(one).includes("single")) fail("aigw: not in the single profile");
if (one && profiles(one).includes("scaled")) fail("aigw: in the scaled profile too");
if (!model.volumes || !Object.keys(model.volumes).length) fail("no named volume");

for (const p of problems) console.log(`compose-check: ${p}`);
console.log(`compose-check: ${Object.keys(services).length} services, ${problems.length} problems`);
process.exit(problems.length ? 1 : 0);
