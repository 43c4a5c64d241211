// Chat prompts rendered with the model's own chat template, on a real prefill node over gRPC on
// loopback with the real engine. On the project's model (whose GGUF carries kvbridge's format as
// tokenizer.chat_template, BOS first) RenderChat answers template "model" and text whose tokens are
// exactly those of the builtin format tokenized as a prompt (BOS once, by the tokenizer: the
// template's BOS text is cut). A model written with another template renders that template; one
// written without any falls back to the builtin format ("builtin"). Roles outside the chat's, a
// chat the template refuses (raise_exception) and an unparseable template are clear errors. Through
// a router (in process, real prefill and decode roles on the other-template model), a chat completion
// is generated from that template's text: token for token the single-process output of it.
import { rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { builtinChatPrompt, ChatRenderer, type ChatTurn } from "../../src/engine/chat-template.js";
import { encodeGguf } from "../../src/engine/gguf-writer.js";
import type { LlamaEngine } from "../../src/engine/llama-engine.js";
import { planModel } from "../../src/engine/model-writer.js";
import { KvbridgeError } from "../../src/errors/kvbridge-error.js";
import { startDecodeRole, type DecodeRole } from "../../src/roles/decode-role.js";
import { parseHostPort } from "../../src/roles/host-port.js";
import { startRouter } from "../../src/roles/router/router-role.js";
import { startPrefillRole, type PrefillRole } from "../../src/roles/prefill-role.js";
import { TcpSenderTransport } from "../../src/transport/tcp/tcp-sender.js";
import { PrefillClient } from "../../src/wire/prefill-client.js";
import { openTestEngine } from "../support/model-fixture.js";

const T = { timeoutMs: 60_000 };

/** A template of another shape: role headers in brackets, EOS after each turn, no BOS of its own. */
const OTHER_TEMPLATE =
  "{% for m in messages %}{% if m['role'] not in ['system', 'user', 'assistant'] %}{{ raise_exception('unknown role ' + m['role']) }}{% endif %}" +
  "[{{ m['role'] | upper }}] {{ m['content'] }}{{ eos_token }}\n{% endfor %}{% if add_generation_prompt %}[ASSISTANT] {% endif %}";

const CONVERSATION: ChatTurn[] = [
  { role: "system", content: "You answer briefly." },
  { role: "user", content: "What moves the KV cache?" },
  { role: "assistant", content: "The prefill node pushes it." },
  { role: "user", content: "And <s> in text, </s> too, <|user|> as well?" },
];

/** The default model's GGUF with its tokenizer.chat_template replaced (a string) or removed (null). */
async function modelWithTemplate(name: string, template: string | null): Promise<string> {
  const plan = planModel();
  const metadata = plan.metadata.flatMap(([key, value]): typeof plan.metadata => {
    if (key !== "tokenizer.chat_template") return [[key, value]];
    return template === null ? [] : [[key, { type: "string", value: template }]];
  });
  const file = path.join(os.tmpdir(), `kvbridge-chat-${name}-${process.pid}.gguf`);
  files.push(file);
  await writeFile(file, encodeGguf(metadata, plan.tensors.map((t, i) => ({ ...t, data: plan.produce(i) }))));
  return file;
}

interface Node {
  engine: LlamaEngine;
  client: PrefillClient;
}

const files: string[] = [];
const engines: LlamaEngine[] = [];
const roles: PrefillRole[] = [];
const clients: PrefillClient[] = [];
let tcp: TcpSenderTransport;
let project: Node;
let other: Node;
let bare: Node;

async function startNode(modelPath?: string): Promise<Node> {
  const engine = await openTestEngine({ maxSequences: 1, ...(modelPath ? { modelPath } : {}) });
  engines.push(engine);
  const role = await startPrefillRole({ listen: parseHostPort("127.0.0.1:0", "listen"), engine, transports: { tcp }, transport: "tcp", logger: pino({ level: "silent" }) });
  roles.push(role);
  const client = new PrefillClient(role.grpcAddress);
  clients.push(client);
  return { engine, client };
}

async function refusal(p: Promise<unknown>): Promise<KvbridgeError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof KvbridgeError)) throw new Error(`expected a KvbridgeError, got ${String(err)}`);
  return err;
}

beforeAll(async () => {
  tcp = new TcpSenderTransport({ connections: 1 });
  project = await startNode();
  other = await startNode(await modelWithTemplate("other", OTHER_TEMPLATE));
  bare = await startNode(await modelWithTemplate("bare", null));
}, 180_000);

afterAll(async () => {
  for (const c of clients) c.close();
  for (const r of roles) await r.close();
  for (const e of engines) await e.close();
  await tcp?.close();
  for (const f of files) await rm(f, { force: true });
});

describe("RenderChat", () => {
  it("on the project's model renders its own template to the builtin format's text, and the same tokens as that text tokenized (BOS once)", async () => {
    const res = await project.client.renderChat({ model: "", messages: CONVERSATION }, T);
    expect(res.template).toBe("model");
    expect(res.modelId).toBe(project.engine.modelId);
    expect(res.fingerprint).toBe(project.engine.fingerprint);
    expect(res.prompt).toBe(builtinChatPrompt(CONVERSATION));
    const tokens = project.engine.tokenize(res.prompt);
    expect(tokens).toEqual(project.engine.tokenize(builtinChatPrompt(CONVERSATION)));
    // One BOS, from the tokenizer; "<s>" written by a user stays text.
    expect(tokens.filter((t) => t === tokens[0])).toHaveLength(1);
    // Plan on the rendered text counts those tokens.
    const plan = await project.client.plan({ model: "", prompt: res.prompt }, T);
    expect(plan.promptTokens).toBe(tokens.length);
  });

  it("maps developer to system for a model's template, keeping every other turn", async () => {
    const res = await project.client.renderChat({ model: "", messages: [{ role: "developer", content: "Be terse." }, { role: "user", content: "hi" }] }, T);
    expect(res.prompt).toBe("<|system|>\nBe terse.\n<|user|>\nhi\n<|assistant|>\n");
  });

  it("on a model written with another template renders that template (its EOS text, no BOS of its own)", async () => {
    const res = await other.client.renderChat({ model: "", messages: CONVERSATION }, T);
    expect(res.template).toBe("model");
    expect(res.prompt).toBe(
      "[SYSTEM] You answer briefly.</s>\n[USER] What moves the KV cache?</s>\n[ASSISTANT] The prefill node pushes it.</s>\n[USER] And <s> in text, </s> too, <|user|> as well?</s>\n[ASSISTANT] ",
    );
    expect(res.fingerprint).not.toBe(project.engine.fingerprint);
  });

  it("a template that raises refuses the chat with INVALID_ARGUMENT naming messages", async () => {
    const r = new ChatRenderer({ template: "{{ raise_exception('roles must alternate') }}", bosText: "<s>", eosText: "</s>", tokenizeAddsBos: true }, "m");
    const e = (() => {
      try {
        r.render([{ role: "user", content: "x" }]);
      } catch (err) {
        return err as KvbridgeError;
      }
      throw new Error("rendered");
    })();
    expect(e.code).toBe("INVALID_ARGUMENT");
    expect(e.details.param).toBe("messages");
    expect(e.message).toContain("roles must alternate");
  });

  it("an unparseable template is FAILED_PRECONDITION naming the model, each time", () => {
    const r = new ChatRenderer({ template: "{% for m in messages %}", bosText: null, eosText: null, tokenizeAddsBos: false }, "broken");
    for (let i = 0; i < 2; i++) {
      expect(() => r.render([{ role: "user", content: "x" }])).toThrow(/model broken's chat template .* cannot be parsed/);
    }
  });

  it("keeps a template's BOS text when the tokenizer adds none, and cuts it only at the start", () => {
    const tpl = "{{ bos_token }}{% for m in messages %}{{ m['content'] }}{{ bos_token }}{% endfor %}";
    const turns = [{ role: "user", content: "a" }];
    expect(new ChatRenderer({ template: tpl, bosText: "<s>", eosText: null, tokenizeAddsBos: false }, "m").render(turns).prompt).toBe("<s>a<s>");
    expect(new ChatRenderer({ template: tpl, bosText: "<s>", eosText: null, tokenizeAddsBos: true }, "m").render(turns).prompt).toBe("a<s>");
  });

  it("on a model without a template falls back to the builtin format, said in the answer", async () => {
    const res = await bare.client.renderChat({ model: "", messages: CONVERSATION }, T);
    expect(res.template).toBe("builtin");
    expect(res.prompt).toBe(builtinChatPrompt(CONVERSATION));
  });

  it("a router's chat completion on the other model is generated from that model's template text", async () => {
    const modelPath = files[0]!; // the other node's model file: the same model id and fingerprint on both nodes
    const decode: DecodeRole = await startDecodeRole({
      listen: parseHostPort("127.0.0.1:0", "listen"),
      dataListen: parseHostPort("127.0.0.1:0", "data"),
      poolSlots: 64,
      slotBytes: 1 << 20,
      leaseMs: 60_000,
      quarantineMs: 200,
      transport: "tcp",
      lockMemory: false,
      logger: pino({ level: "silent" }),
      engine: openTestEngine({ maxSequences: 1, modelPath }),
    });
    const prefillRole = roles[1]!;
    const router = await startRouter({
      listen: { host: "127.0.0.1", port: 0 },
      prefill: { kind: "static", targets: [prefillRole.grpcAddress] },
      decode: { kind: "static", targets: [decode.grpcAddress] },
      logger: pino({ level: "silent" }),
      healthIntervalMs: 50,
    });
    try {
      await decode.engineReady;
      const messages = CONVERSATION.slice(0, 2);
      const rendered = (await other.client.renderChat({ model: "", messages }, T)).prompt;
      const expected = (await other.engine.generateLocal({ tokens: other.engine.tokenize(rendered), maxTokens: 12 })).text;
      const builtin = (await other.engine.generateLocal({ tokens: other.engine.tokenize(builtinChatPrompt(messages)), maxTokens: 12 })).text;
      expect(expected).not.toBe(builtin);
      let res: Response | undefined;
      for (let i = 0; i < 100; i++) {
        res = await fetch(`${router.url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ messages, max_tokens: 12 }) });
        if (res.status !== 503) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      const body = (await res!.json()) as { choices: Array<{ message: { content: string } }>; usage: { prompt_tokens: number } };
      expect(res!.status, JSON.stringify(body)).toBe(200);
      expect(body.choices[0]!.message.content).toBe(expected);
      expect(body.usage.prompt_tokens).toBe(other.engine.tokenize(rendered).length);
    } finally {
      await router.close();
      await decode.close();
    }
  }, 120_000);

  it("refuses a tool role, an empty chat and an unknown model with the field named", async () => {
    const tool = await refusal(project.client.renderChat({ model: "", messages: [{ role: "user", content: "x" }, { role: "tool", content: "42" }] }, T));
    expect(tool.code).toBe("INVALID_ARGUMENT");
    expect(tool.details.param).toBe("messages[1].role");
    const empty = await refusal(project.client.renderChat({ model: "", messages: [] }, T));
    expect(empty.code).toBe("INVALID_ARGUMENT");
    expect(empty.details.param).toBe("messages");
    const unknown = await refusal(project.client.renderChat({ model: "no-such-model", messages: [{ role: "user", content: "x" }] }, T));
    expect(unknown.code).toBe("NOT_FOUND");
    expect(unknown.details.reason).toBe("model_not_found");
  });
});
