// count_tokens cost (issue 15): one client calling POST /v1/messages/count_tokens
// back to back against `aigw run`, for an OpenAI-format model (the gateway's
// estimate, no upstream call) and an Anthropic-format one (the mock's count
// endpoint). Prints the client's time per call and the gateway process's CPU
// time per call (/proc/PID/stat utime + stime), which is what 50 calls a
// second cost the gateway.
// Usage: node bench/count_tokens.mjs [calls]   (AIGW_BIN: the build to measure)
import fs from 'node:fs';
import { startGateway, startMock, stopAll } from '../tests/integration/lib.mjs';

const calls = Number(process.argv[2] || 2000);
const HZ = 100;  // USER_HZ: clock ticks per second in /proc/PID/stat
const cpuS = (pid) => {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / HZ;
};
const body = (model) => JSON.stringify({
  model, system: 'You are a helpful assistant.',
  messages: [{ role: 'user', content: 'How many tokens does this short question take, roughly?' }],
  tools: [{ name: 'get_weather', description: 'Weather in a city',
            input_schema: { type: 'object', properties: { city: { type: 'string' } } } }],
});

const mock = await startMock({ name: 'bench-count-mock' });
const gw = await startGateway({
  name: 'bench-count', mock,
  config: {
    cache: { enabled: false },
    models: [
      { name: 'b-openai', deployments: [{ provider: 'openai_compatible', model: 'gpt-4o-mini',
                                          base_url: mock.baseURL, api_key: mock.apiKey }] },
      { name: 'b-anthropic', deployments: [{ provider: 'anthropic', model: 'claude-up',
                                             base_url: mock.url, api_key: mock.apiKey }] },
    ],
  },
});
const pid = gw.procs[0].pid;
try {
  for (const model of ['b-openai', 'b-anthropic']) {
    const payload = body(model);
    const call = async () => {
      const res = await fetch(`${gw.url}/v1/messages/count_tokens`, {
        method: 'POST', body: payload,
        headers: { 'content-type': 'application/json', 'x-api-key': gw.masterKey,
                   'anthropic-version': '2023-06-01' } });
      if (res.status !== 200) throw new Error(`${res.status} ${await res.text()}`);
      return res.headers.get('x-aigw-token-count');
    };
    for (let i = 0; i < 100; i++) await call();  // warm up
    const cpu0 = cpuS(pid);
    const t0 = performance.now();
    let who = '';
    for (let i = 0; i < calls; i++) who = await call();
    const ms = performance.now() - t0;
    const cpu = cpuS(pid) - cpu0;
    console.log(`${model} (${who}): ${calls} calls, ${(ms * 1000 / calls).toFixed(0)} µs per call ` +
                `at the client, gateway CPU ${(cpu * 1e6 / calls).toFixed(0)} µs per call ` +
                `(50 calls/s = ${(cpu * 50 * 100 / calls).toFixed(2)}% of one core)`);
  }
} finally {
  await gw.stop();
  await mock.stop();
  await stopAll();
}
