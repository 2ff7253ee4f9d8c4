// Start-up is checked: `aigw run`, `aigw edge`, `aigw broker` and `aigw actor`
// exit non-zero, by themselves, with a message naming what failed, when any
// part cannot start; none stays up half-started.
import { assert, describe, freePort, it, spawnProcess } from './lib.mjs';
import fs from 'node:fs';
import net from 'node:net';

// Run aigw ARGS with ENV; it must exit by itself within 10 s. Returns the
// process handle and its stderr.
async function runToExit(name, args, env = {}) {
  const proc = spawnProcess(name, args, { env, splitStderr: true });
  const timer = setTimeout(() => proc.kill('SIGKILL'), 10000);
  await proc.done;
  clearTimeout(timer);
  const log = fs.readFileSync(proc.stderrFile, 'utf8');
  assert.equal(proc.signal, null, `aigw ${args.join(' ')} did not exit by itself:\n${log}`);
  assert.notEqual(proc.exitCode, 0, `aigw ${args.join(' ')} exited 0:\n${log}`);
  return { proc, log };
}

// A TCP listener on a free port of 127.0.0.1, so that aigw finds it taken.
async function occupy() {
  const port = await freePort();
  const server = net.createServer((socket) => socket.destroy());
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  return { port, close: () => new Promise((resolve) => server.close(resolve)) };
}

describe('start-up failures exit non-zero with the reason', () => {
  it('aigw actor with an unknown stage name', async () => {
    const port = await freePort();
    const { proc, log } = await runToExit('actor-unknown',
      ['actor', 'auth,nosuch', '--broker', `tcp://127.0.0.1:${port}`]);
    assert.equal(proc.exitCode, 2);
    assert.match(log, /unknown actor 'nosuch'/, log);
  });

  it('aigw run when its HTTP port is taken', async () => {
    const taken = await occupy();
    try {
      const { log } = await runToExit('run-port-taken', ['run'], {
        AIGW_PORT: String(taken.port), AIGW_HOST: '127.0.0.1' });
      assert.match(log, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${taken.port}`), log);
    } finally {
      await taken.close();
    }
  });

  it('aigw edge when its HTTP port is taken', async () => {
    const taken = await occupy();
    const broker = await freePort();
    try {
      const { log } = await runToExit('edge-port-taken',
        ['edge', '--broker', `tcp://127.0.0.1:${broker}`, '--port', String(taken.port)],
        { AIGW_HOST: '127.0.0.1' });
      assert.match(log, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${taken.port}`), log);
    } finally {
      await taken.close();
    }
  });

  it('aigw broker when its endpoint is taken', async () => {
    const taken = await occupy();
    try {
      const { log } = await runToExit('broker-taken',
        ['broker', '--bind', `tcp://127.0.0.1:${taken.port}`]);
      assert.match(log, new RegExp(`broker cannot bind tcp://127\\.0\\.0\\.1:${taken.port}`), log);
    } finally {
      await taken.close();
    }
  });
});

// Peers on other hosts: the inbox address each process gives the broker.
// 127.0.0.2 is loopback too, so a whole split gateway can run on it here.
describe('peer inbox addresses', () => {
  it('AIGW_PEER_ADVERTISE alone: binds every address, advertises that host, and serves', async () => {
    const { startGateway } = await import('./lib.mjs');
    const gw = await startGateway({ mode: 'split', name: 'advertise',
                                    env: { AIGW_PEER_ADVERTISE: '127.0.0.2' } });
    try {
      const res = await gw.chat('hello over 127.0.0.2');
      assert.equal(res.status, 200, res.text);
      const auth = gw.actorProcs('auth')[0];
      const log = fs.readFileSync(auth.logFile, 'utf8');
      assert.match(log, /auth: peer inbox tcp:\/\/127\.0\.0\.2:\d+#[0-9a-f]{16} \(bound to tcp:\/\/0\.0\.0\.0:\*\)/, log);
    } finally {
      await gw.stop();
    }
  });

  it('a wildcard AIGW_PEER_BIND alone advertises an address others can reach', async () => {
    const port = await freePort();
    const broker = spawnProcess('bind-broker', ['broker', '--bind', `tcp://127.0.0.1:${port}`]);
    const actor = spawnProcess('bind-actor', ['actor', 'auth', '--broker', `tcp://127.0.0.1:${port}`],
                               { env: { AIGW_PEER_BIND: 'tcp://0.0.0.0:*' } });
    try {
      let log = '';
      for (let i = 0; i < 50 && !/peer inbox/.test(log); i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        log = fs.readFileSync(actor.logFile, 'utf8');
      }
      assert.match(log, /auth: peer inbox tcp:\/\/127\.0\.0\.1:\d+#[0-9a-f]{16} \(bound to tcp:\/\/0\.0\.0\.0:\*\)/, log);
    } finally {
      await actor.stop();
      await broker.stop();
    }
  });
});
