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
