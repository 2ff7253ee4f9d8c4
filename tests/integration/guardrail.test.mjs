// Guardrails on input: a deny-list rule and the prompt length cap block the
// request before it reaches the provider, and say which rule did.
import { MODES, assert, assertError, describe, it, nonce, useGateway } from './lib.mjs';

for (const mode of MODES) {
  describe(`guardrail (${mode})`, () => {
    const gw = useGateway({
      mode,
      config: {
        guardrail: {
          max_prompt_chars: 2000,
          deny: [{ name: 'no-passwords', pattern: '(?i)password\\s*[:=]' }],
        },
      },
    });

    it('blocks a prompt that matches a deny rule, naming the rule', async () => {
      const before = await gw.mock.stats();
      const res = await gw.chat(`my PassWord: hunter2 ${nonce()}`);
      assertError(res, { status: 400, type: 'guardrail_error', code: 'deny_list',
                         message: /no-passwords/ });
      const after = await gw.mock.stats();
      assert.equal(after.chat, before.chat, 'a blocked request reached the provider');
    });

    it('lets a prompt through that does not match', async () => {
      const res = await gw.chat(`what is a password manager? ${nonce()}`);
      assert.equal(res.status, 200, res.text);
    });

    it('blocks a deny match in any message, not just the last', async () => {
      const res = await gw.fetch('/v1/chat/completions', {
        body: {
          model: 'gpt-4o-mini',
          messages: [
            { role: 'system', content: 'password = swordfish' },
            { role: 'user', content: `hello ${nonce()}` },
          ],
        },
      });
      assertError(res, { status: 400, type: 'guardrail_error', code: 'deny_list',
                         message: /no-passwords/ });
    });

    it('blocks a prompt over max_prompt_chars', async () => {
      const before = await gw.mock.stats();
      const res = await gw.chat(`${nonce()} ${'a'.repeat(2500)}`);
      assertError(res, { status: 400, type: 'guardrail_error', code: 'max_prompt_length' });
      const after = await gw.mock.stats();
      assert.equal(after.chat, before.chat, 'a blocked request reached the provider');
    });

    it('lets a prompt under max_prompt_chars through', async () => {
      const res = await gw.chat(`${nonce()} ${'a'.repeat(1500)}`);
      assert.equal(res.status, 200, res.text);
    });

    it('blocks streamed requests too', async () => {
      const s = await gw.chatStream(`password: hunter2 ${nonce()}`);
      assert.equal(s.status, 400, `streamed request was not blocked: ${s.status}`);
      assert.match(s.text, /no-passwords/);
    });
  });
}
