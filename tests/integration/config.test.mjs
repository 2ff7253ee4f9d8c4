// A bad config file stops start-up with a message that names the file, the
// line and the setting.
import { BIN, assert, describe, it, spawnProcess, writeConfig } from './lib.mjs';
import fs from 'node:fs';

// Run `aigw run --config FILE` (FILE: TEXT written to a temp file, or a
// path); it must exit by itself within 10 s. LOG is its stderr.
async function runWithConfig(name, text) {
  const file = text === null ? name : writeConfig(name, text);
  const proc = spawnProcess(`config-${name.replace(/\W/g, '_')}`, ['run', '--config', file],
                            { splitStderr: true });
  const timer = setTimeout(() => proc.kill('SIGKILL'), 10000);
  await proc.done;
  clearTimeout(timer);
  return { proc, file, log: fs.readFileSync(proc.stderrFile, 'utf8') };
}

describe('config errors', () => {
  it('rejects an out-of-range port, naming file, line and setting', async () => {
    const { proc, log } = await runWithConfig('cfg.yaml', [
      'server:',
      '  port: 70000',
      '  host: 127.0.0.1',
      '',
    ].join('\n'));
    assert.equal(proc.signal, null, `aigw did not exit by itself (it was killed):\n${log}`);
    assert.notEqual(proc.exitCode, 0, `aigw exited 0 with a bad config:\n${log}`);
    assert.match(log, /cfg\.yaml:2: server\.port: /, `no FILE:LINE: SETTING: message on stderr:\n${log}`);
  });

  it('rejects a port that is not a number', async () => {
    const { proc, log } = await runWithConfig('notanumber.yaml', [
      '# a comment first',
      'server:',
      '  host: 127.0.0.1',
      '  port: eighty',
      '',
    ].join('\n'));
    assert.equal(proc.signal, null, `aigw did not exit by itself (it was killed):\n${log}`);
    assert.notEqual(proc.exitCode, 0, `aigw exited 0 with a bad config:\n${log}`);
    assert.match(log, /notanumber\.yaml:4: server\.port: /, `no FILE:LINE: SETTING: message on stderr:\n${log}`);
  });

  it('rejects a missing config file', async () => {
    const { proc, log } = await runWithConfig('/nonexistent/aigw.yaml', null);
    assert.equal(proc.signal, null, `aigw did not exit by itself:\n${log}`);
    assert.notEqual(proc.exitCode, 0, `aigw exited 0 without its config file:\n${log}`);
    assert.match(log, /\/nonexistent\/aigw\.yaml/, `the message does not name the file:\n${log}`);
  });

  it('the binary under test exists', () => {
    assert.ok(fs.existsSync(BIN), `no aigw binary at ${BIN}`);
  });
});
