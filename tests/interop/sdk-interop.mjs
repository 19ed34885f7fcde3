// Drives the official npm SDKs (@anthropic-ai/sdk and openai) against a Coinop market whose provider fronts the
// simulator (sim-small: text only; sim-vision: takes images): tools, streamed tool use, tool results, images,
// thinking, count_tokens, chat tool calls, and the Responses API (create, stream, function call round trip with
// previous_response_id, retrieve).
// Usage: node sdk-interop.mjs MARKET_URL
// Prints one JSON line: {"ok":true,"checks":[...]} or {"ok":false,"error":"...","checks":[...]}; exit code 0 only on success.
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';

const [marketUrl] = process.argv.slice(2);
const checks = [];
const check = (condition, message) => {
  if (!condition) throw new Error(message);
};
const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAIAAAABCAYAAAD0In+KAAAAEUlEQVR4nGP4z8DwHwQZGBgAQfMF+5Ed8E0AAAAASUVORK5CYII=';
const weather = { name: 'get_weather', description: 'The weather in a city', input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } };
const time = { name: 'get_time', input_schema: { type: 'object', properties: { zone: { type: 'string' } } } };

async function anthropicChecks() {
  const client = new Anthropic({ apiKey: 'unused', baseURL: marketUrl, maxRetries: 0 });

  const called = await client.messages.create({
    model: 'sim-small', max_tokens: 256, tools: [weather, time], tool_choice: { type: 'auto' },
    messages: [{ role: 'user', content: 'weather and time [[sim:tool-calls=2]]' }],
  });
  const uses = called.content.filter((b) => b.type === 'tool_use');
  check(called.stop_reason === 'tool_use', `stop_reason ${called.stop_reason}`);
  check(uses.length === 2 && uses[0].input.city === 'city-0' && uses[1].input.zone === 'zone-1', `tool_use inputs ${JSON.stringify(uses)}`);
  checks.push('anthropic: tool_use blocks with parsed input, stop_reason tool_use');

  const stream = client.messages.stream({
    model: 'sim-small', max_tokens: 256, tools: [weather, time],
    messages: [{ role: 'user', content: 'stream tools [[sim:tool-calls=3]] [[sim:arg-chunk=3]]' }],
  });
  let pieces = 0;
  stream.on('inputJson', () => { pieces++; });
  const streamed = await stream.finalMessage();
  const kinds = streamed.content.map((b) => b.type);
  const streamedUses = streamed.content.filter((b) => b.type === 'tool_use');
  check(JSON.stringify(kinds) === JSON.stringify(['text', 'tool_use', 'text', 'tool_use', 'text', 'tool_use']), `streamed blocks ${kinds}`);
  check(streamedUses.map((u) => u.input.city ?? u.input.zone).join() === 'city-0,zone-1,city-2', `streamed inputs ${JSON.stringify(streamedUses)}`);
  check(pieces > 6, `input_json_delta pieces ${pieces}`);
  check(streamed.stop_reason === 'tool_use' && streamed.usage.output_tokens > 0, `streamed stop ${streamed.stop_reason} usage ${JSON.stringify(streamed.usage)}`);
  checks.push('anthropic: streamed tool_use blocks interleaved with text, input_json_delta pieces, stop_reason tool_use');

  const answered = await client.messages.create({
    model: 'sim-vision', max_tokens: 64, tools: [weather],
    messages: [
      { role: 'user', content: 'weather?' },
      { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Paris' } }] },
      { role: 'user', content: [
        { type: 'tool_result', tool_use_id: 'toolu_1', is_error: false, content: [{ type: 'text', text: 'sunny' }, { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG } }] },
        { type: 'text', text: 'and so?' },
      ] },
    ],
  });
  check(answered.stop_reason === 'end_turn' && answered.content[0].type === 'text', `after tool_result ${JSON.stringify(answered)}`);
  checks.push('anthropic: tool_result with text and an image answered');

  let refused;
  try {
    await client.messages.create({ model: 'sim-small', max_tokens: 16, messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG } }] }] });
  } catch (e) {
    refused = e;
  }
  check(refused instanceof Anthropic.BadRequestError && /vision/.test(refused.message), `image to a text model: ${refused}`);
  checks.push('anthropic: image to a text-only model is a 400');

  const thinking = await client.messages.create({
    model: 'sim-small', max_tokens: 2048, thinking: { type: 'enabled', budget_tokens: 1024 },
    messages: [{ role: 'user', content: 'think [[sim:reasoning=3]]' }],
  });
  const thought = await client.messages.stream({
    model: 'sim-small', max_tokens: 2048, thinking: { type: 'enabled', budget_tokens: 1024 },
    messages: [{ role: 'user', content: 'think [[sim:reasoning=3]]' }],
  }).finalMessage();
  check(thinking.content[0].type === 'thinking' && thinking.content[0].thinking.length > 0, `thinking ${JSON.stringify(thinking.content)}`);
  check(thought.content[0].type === 'thinking' && thought.content[0].thinking === thinking.content[0].thinking, `streamed thinking ${JSON.stringify(thought.content)}`);
  checks.push('anthropic: thinking blocks from reasoning_content, whole and streamed');

  const counted = await client.messages.countTokens({
    model: 'gpt-4o', system: 'You are a helpful assistant.', tools: [weather],
    messages: [{ role: 'user', content: 'Hello world' }],
  });
  check(Number.isInteger(counted.input_tokens) && counted.input_tokens > 15, `count_tokens ${JSON.stringify(counted)}`);
  checks.push('anthropic: count_tokens');
}

async function openaiChecks() {
  const client = new OpenAI({ apiKey: 'unused', baseURL: `${marketUrl}/v1`, maxRetries: 0 });
  const tools = [{ type: 'function', name: 'get_weather', description: 'The weather', parameters: { type: 'object', properties: { city: { type: 'string' } } }, strict: false }];

  const chat = await client.chat.completions.create({
    model: 'sim-small', tools: [{ type: 'function', function: { name: 'get_weather', parameters: tools[0].parameters } }],
    messages: [{ role: 'user', content: 'chat tools [[sim:tool-calls=2]]' }],
  });
  check(chat.choices[0].finish_reason === 'tool_calls' && chat.choices[0].message.tool_calls.length === 2, `chat tool calls ${JSON.stringify(chat.choices[0])}`);
  checks.push('openai: chat tool calls pass through');

  // A chat stream that asks for usage ends with the market's usage chunk (no choices, the usage billed) before [DONE].
  const chunks = [];
  for await (const chunk of await client.chat.completions.create({
    model: 'sim-small', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'count to three' }],
  })) chunks.push(chunk);
  const last = chunks[chunks.length - 1];
  const chatText = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
  check(chatText.length > 0 && chunks.slice(0, -1).every((c) => !c.usage), `chat stream ${JSON.stringify(chunks)}`);
  check(last.choices.length === 0 && last.id === chunks[0].id && last.usage.completion_tokens > 0
    && last.usage.total_tokens === last.usage.prompt_tokens + last.usage.completion_tokens, `chat stream usage ${JSON.stringify(last)}`);
  checks.push('openai: chat stream with include_usage ends with the usage billed');

  const called = await client.responses.create({ model: 'sim-small', instructions: 'use tools', tools, input: 'weather? [[sim:tool-calls=1]]' });
  const call = called.output.find((o) => o.type === 'function_call');
  check(call && JSON.parse(call.arguments).city === 'city-0', `function_call ${JSON.stringify(called.output)}`);
  const answered = await client.responses.create({
    model: 'sim-small', tools, previous_response_id: called.id,
    input: [{ type: 'function_call_output', call_id: call.call_id, output: 'sunny' }],
  });
  check(answered.status === 'completed' && answered.output_text.length > 0 && answered.previous_response_id === called.id, `continued ${JSON.stringify(answered)}`);
  checks.push('openai: responses function_call, function_call_output with previous_response_id');

  const retrieved = await client.responses.retrieve(called.id);
  check(retrieved.id === called.id && retrieved.output.some((o) => o.type === 'function_call'), `retrieve ${JSON.stringify(retrieved)}`);
  checks.push('openai: responses.retrieve');

  const stream = client.responses.stream({ model: 'sim-small', input: 'stream [[sim:tokens=7]] [[sim:reasoning=2]]', max_output_tokens: 50 });
  const types = [];
  let text = '';
  stream.on('event', (e) => types.push(e.type));
  stream.on('response.output_text.delta', (e) => { text += e.delta; });
  const final = await stream.finalResponse();
  check(types[0] === 'response.created' && types.at(-1) === 'response.completed', `event sequence ${types}`);
  check(types.includes('response.output_item.added') && types.includes('response.reasoning_text.delta'), `event kinds ${types}`);
  check(final.output_text === text && text.split(' ').length === 7 && final.usage.output_tokens === 9, `streamed response ${JSON.stringify(final)}`);
  checks.push('openai: responses.stream event sequence and final response');

  const toolStream = client.responses.stream({ model: 'sim-small', tools, input: 'tools [[sim:tool-calls=2]] [[sim:arg-chunk=4]]' });
  let argDeltas = 0;
  toolStream.on('response.function_call_arguments.delta', () => { argDeltas++; });
  const toolFinal = await toolStream.finalResponse();
  const calls = toolFinal.output.filter((o) => o.type === 'function_call');
  check(calls.length === 2 && calls.every((c) => JSON.parse(c.arguments).city.startsWith('city-')) && argDeltas > 4, `streamed calls ${JSON.stringify(toolFinal.output)} ${argDeltas}`);
  checks.push('openai: responses.stream function_call_arguments deltas');
}

try {
  await anthropicChecks();
  await openaiChecks();
  console.log(JSON.stringify({ ok: true, checks }));
} catch (e) {
  console.log(JSON.stringify({ ok: false, error: String(e?.stack ?? e), checks }));
  process.exitCode = 1;
}
