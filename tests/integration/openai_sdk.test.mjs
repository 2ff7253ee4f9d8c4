// The official OpenAI SDK, pointed at the gateway, works as it does against
// OpenAI itself.
import OpenAI from 'openai';
import { MODES, assert, describe, it, nonce, useGateway } from './lib.mjs';

for (const mode of MODES) {
  describe(`OpenAI SDK (${mode})`, () => {
    const gw = useGateway({ mode });
    const client = (apiKey = gw.masterKey) =>
      new OpenAI({ baseURL: gw.baseURL, apiKey, maxRetries: 0, timeout: 15000 });

    it('creates a chat completion', async () => {
      const question = `Hello from the SDK ${nonce()}`;
      const completion = await client().chat.completions.create({
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: question }],
      });
      assert.equal(completion.choices[0].message.content, `Mock reply to: ${question}`);
      assert.ok(completion.usage.total_tokens > 0);
    });

    it('streams the same text as the plain answer', async () => {
      const question = `Stream through the SDK ${nonce()}`;
      const messages = [{ role: 'user', content: question }];
      const plain = await client().chat.completions.create({ model: 'gpt-4o-mini', messages });

      const stream = await client().chat.completions.create({
        model: 'gpt-4o-mini', messages, stream: true,
      });
      let text = '';
      let chunks = 0;
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta?.content ?? '';
        chunks++;
      }
      assert.ok(chunks >= 2, `only ${chunks} chunks`);
      assert.equal(text, plain.choices[0].message.content);
    });

    it('lists models', async () => {
      const ids = [];
      for await (const model of client().models.list()) ids.push(model.id);
      assert.ok(ids.includes('gpt-4o-mini'), `models: ${ids.join(', ')}`);
    });

    it('creates embeddings', async () => {
      const res = await client().embeddings.create({
        model: 'text-embedding-3-small', input: `embed ${nonce()}`, encoding_format: 'float',
      });
      assert.ok(res.data[0].embedding.length > 0);
    });

    it('throws AuthenticationError for a wrong key', async () => {
      await assert.rejects(
        client(`sk-wrong-${nonce(16)}`).chat.completions.create({
          model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }],
        }),
        (err) => {
          assert.ok(err instanceof OpenAI.AuthenticationError, `got ${err?.constructor?.name}`);
          assert.equal(err.status, 401);
          assert.ok(err.requestID || err.headers?.get?.('x-request-id'), 'no request id');
          return true;
        },
      );
    });

    it('surfaces model_not_found as NotFoundError', async () => {
      await assert.rejects(
        client().chat.completions.create({
          model: 'no-such-model', messages: [{ role: 'user', content: 'hi' }],
        }),
        (err) => {
          assert.ok(err instanceof OpenAI.NotFoundError, `got ${err?.constructor?.name}`);
          assert.equal(err.code, 'model_not_found');
          return true;
        },
      );
    });
  });
}
