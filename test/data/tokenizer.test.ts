// Tokenizer tests: hand-built tokenizer.json files whose splits are worked out by hand from the BPE rules,
// then parity with transformers/tokenizers goldens (fixtures made by tools/reference/fixtures_tokenizer.py).
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Tokenizer, readChatTemplate } from "../../src/data/tokenizer.js";
import { buildDecoder, buildNormalizer, buildPreTokenizer, BYTE_TO_CHAR } from "../../src/data/tokenizer_pipeline.js";
import { translateOnigRegex } from "../../src/data/onig_regex.js";

const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));
const fixture = (name: string) => join(repoRoot, "fixtures", name);
const SKIP_NO_FIXTURES = "fixtures missing: run `python3 tools/reference/fixtures_tokenizer.py fixtures` (or tools/reference/make_fixtures.py)";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

/** A BPE tokenizer.json with the given vocab (tokens in id order) and merges. */
function bpeJson(vocabTokens: string[], merges: Json[], model: Json = {}, rest: Json = {}): Json {
  const vocab: Record<string, number> = {};
  vocabTokens.forEach((t, id) => (vocab[t] = id));
  return {
    version: "1.0",
    added_tokens: [],
    normalizer: null,
    pre_tokenizer: null,
    post_processor: null,
    decoder: null,
    ...rest,
    model: { type: "BPE", dropout: null, unk_token: null, fuse_unk: false, byte_fallback: false, vocab, merges, ...model },
  };
}

const ids = (tok: Tokenizer, text: string) => tok.encode(text, { addSpecialTokens: false });

test("BPE applies merges by rank, not left to right", () => {
  const vocab = ["a", "b", "c", "ab", "bc", "abc"];
  // (b,c) has the better rank, so "abc" -> a + bc; no merge joins a and bc.
  const bcFirst = new Tokenizer({ tokenizer: bpeJson(vocab, [["b", "c"], ["a", "b"]]) });
  assert.deepEqual(ids(bcFirst, "abc"), [0, 4]);
  // (a,b) first -> ab + c, then (ab,c) -> abc.
  const abFirst = new Tokenizer({ tokenizer: bpeJson(vocab, [["a", "b"], ["b", "c"], ["ab", "c"]]) });
  assert.deepEqual(ids(abFirst, "abc"), [5]);
  // Legacy "a b" merges give the same model.
  const legacy = new Tokenizer({ tokenizer: bpeJson(vocab, ["a b", "b c", "ab c"]) });
  assert.deepEqual(ids(legacy, "abc"), [5]);
});

test("BPE breaks rank ties leftmost first and re-queues new pairs", () => {
  const tok = new Tokenizer({ tokenizer: bpeJson(["a", "aa", "aaaa"], [["a", "a"], ["aa", "aa"]]) });
  // a a a -> (aa) a ; five a's -> aa aa a -> aaaa a
  assert.deepEqual(ids(tok, "aaa"), [1, 0]);
  assert.deepEqual(ids(tok, "aaaaa"), [2, 0]);
  assert.deepEqual(tok.convertIdsToTokens(ids(tok, "aaaaaaa")), ["aaaa", "aa", "a"]);
});

test("BPE byte fallback, unknown tokens and fuse_unk", () => {
  const bytes = Array.from({ length: 256 }, (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
  const withBytes = new Tokenizer({ tokenizer: bpeJson(["<unk>", "h", "i", ...bytes], [], { unk_token: "<unk>", byte_fallback: true }) });
  // "é" is C3 A9 in UTF-8: ids 3 + 0xC3 and 3 + 0xA9.
  assert.deepEqual(ids(withBytes, "hé"), [1, 3 + 0xc3, 3 + 0xa9]);
  const fused = new Tokenizer({ tokenizer: bpeJson(["<unk>", "h", "i"], [], { unk_token: "<unk>", fuse_unk: true }) });
  assert.deepEqual(ids(fused, "hxyzi"), [1, 0, 2]);
  const unfused = new Tokenizer({ tokenizer: bpeJson(["<unk>", "h", "i"], [], { unk_token: "<unk>", fuse_unk: false }) });
  assert.deepEqual(ids(unfused, "hxyzi"), [1, 0, 0, 0, 2]);
  // Without an unknown token, unknown characters are dropped.
  const dropping = new Tokenizer({ tokenizer: bpeJson(["h", "i"], []) });
  assert.deepEqual(ids(dropping, "hxi"), [0, 1]);
});

test("BPE ignore_merges takes a whole word from the vocab", () => {
  const vocab = ["a", "b", "c", "ab", "abc"];
  const merges = [["a", "b"]];
  assert.deepEqual(ids(new Tokenizer({ tokenizer: bpeJson(vocab, merges) }), "abc"), [3, 2]);
  assert.deepEqual(ids(new Tokenizer({ tokenizer: bpeJson(vocab, merges, { ignore_merges: true }) }), "abc"), [4]);
});

test("BPE continuing_subword_prefix and end_of_word_suffix", () => {
  const vocab = ["l", "##o", "##w</w>", "##w", "lo", "low</w>"];
  const tok = new Tokenizer({
    tokenizer: bpeJson(vocab, [["l", "##o"], ["lo", "##w</w>"]], { continuing_subword_prefix: "##", end_of_word_suffix: "</w>" }),
  });
  assert.deepEqual(tok.convertIdsToTokens(ids(tok, "low")), ["low</w>"]);
});

test("byte-level pipeline: GPT-2 byte map and the regex split", () => {
  // The byte map sends printable ASCII to itself and space to U+0120 (Ġ), newline to U+010A (Ċ).
  assert.equal(BYTE_TO_CHAR[0x41], "A");
  assert.equal(BYTE_TO_CHAR[0x20], "\u0120");
  assert.equal(BYTE_TO_CHAR[0x0a], "\u010a");
  const pre = buildPreTokenizer({ type: "ByteLevel", add_prefix_space: true, use_regex: true }, "test")!;
  // " Hello world's 42!!" splits as " Hello", " world", "'s", " 42", "!!"; spaces become U+0120.
  assert.deepEqual(
    pre([{ text: "Hello world's 42!!", atStart: true }]).map((p) => p.text),
    ["\u0120Hello", "\u0120world", "'s", "\u012042", "!!"],
  );
  const decode = buildDecoder({ type: "ByteLevel" }, "test")!;
  assert.equal(decode(["\u0120Hello", "\u0120w\u00c3\u00b6rld"]).join(""), " Hello wörld");
});

test("Metaspace prepend_scheme first only prefixes the start of the input", () => {
  const tok = new Tokenizer({
    tokenizer: bpeJson(["<s>", "\u2581", "a", "b", "\u2581a"], [["\u2581", "a"]], {}, {
      added_tokens: [{ id: 0, content: "<s>", special: true, normalized: false, lstrip: false, rstrip: false, single_word: false }],
      pre_tokenizer: { type: "Metaspace", replacement: "\u2581", prepend_scheme: "first", split: true },
    }),
  });
  assert.deepEqual(tok.convertIdsToTokens(ids(tok, "a b")), ["\u2581a", "\u2581", "b"]);
  // After an added token the piece does not start the input: no prefix.
  assert.deepEqual(tok.convertIdsToTokens(ids(tok, "<s>a")), ["<s>", "a"]);
});

test("added tokens: matched before the model, lstrip/rstrip/single_word, normalized matching", () => {
  const chars = ["<unk>", " ", "a", "b", "c", "x", "."];
  const added = [
    { id: 7, content: "<L>", special: true, normalized: false, lstrip: true, rstrip: false, single_word: false },
    { id: 8, content: "<R>", special: false, normalized: false, lstrip: false, rstrip: true, single_word: false },
    { id: 9, content: "cab", special: false, normalized: true, lstrip: false, rstrip: false, single_word: true },
    { id: 10, content: "<L><R>", special: true, normalized: false, lstrip: false, rstrip: false, single_word: false },
  ];
  const tok = new Tokenizer({
    tokenizer: bpeJson(chars, [], { unk_token: "<unk>" }, { added_tokens: added, normalizer: { type: "Lowercase" } }),
  });
  const tokens = (text: string) => tok.convertIdsToTokens(ids(tok, text));
  assert.deepEqual(tokens("a  <L>b"), ["a", "<L>", "b"]);
  assert.deepEqual(tokens("a<R>   b"), ["a", "<R>", "b"]);
  // Longest match wins at a position.
  assert.deepEqual(tokens("a<L><R>b"), ["a", "<L><R>", "b"]);
  // single_word: only when not inside a word; matched after lowercasing (normalized).
  assert.deepEqual(tokens("CAB x"), ["cab", " ", "x"]);
  assert.deepEqual(tokens("xcab"), ["x", "c", "a", "b"]);
  assert.deepEqual(tokens("cab."), ["cab", "."]);
  // Special tokens are skipped on request when decoding; non-special added tokens are not.
  assert.equal(tok.decode(ids(tok, "a<L>b<R>c"), { skipSpecialTokens: true }), "a b <R> c");
});

test("TemplateProcessing adds BOS/EOS; truncation keeps room for them", () => {
  const tok = new Tokenizer({
    tokenizer: bpeJson(["<s>", "</s>", "a", "b", "c"], [], {}, {
      added_tokens: [
        { id: 0, content: "<s>", special: true, normalized: false, lstrip: false, rstrip: false, single_word: false },
        { id: 1, content: "</s>", special: true, normalized: false, lstrip: false, rstrip: false, single_word: false },
      ],
      post_processor: {
        type: "TemplateProcessing",
        single: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: "</s>", type_id: 0 } }],
        pair: [],
        special_tokens: { "<s>": { id: "<s>", ids: [0], tokens: ["<s>"] }, "</s>": { id: "</s>", ids: [1], tokens: ["</s>"] } },
      },
    }),
    config: { bos_token: "<s>", eos_token: "</s>", pad_token: "</s>", padding_side: "left" },
  });
  assert.deepEqual(tok.encode("abc"), [0, 2, 3, 4, 1]);
  assert.deepEqual(tok.encode("abc", { addSpecialTokens: false }), [2, 3, 4]);
  assert.deepEqual(tok.encode("abcabc", { truncation: true, maxLength: 4 }), [0, 2, 3, 1]);
  assert.deepEqual(tok.encode("abcabc", { truncation: true, maxLength: 4, truncationSide: "left" }), [0, 3, 4, 1]);
  assert.equal(tok.bosTokenId, 0);
  assert.equal(tok.eosTokenId, 1);
  const batch = tok.encodeBatch(["a", "abc"], { padding: "longest" });
  // padding_side "left" comes from tokenizer_config.json.
  assert.deepEqual(batch.input_ids, [[1, 1, 0, 2, 1], [0, 2, 3, 4, 1]]);
  assert.deepEqual(batch.attention_mask, [[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]]);
  const right = tok.encodeBatch(["a", "abc"], { padding: "max_length", maxLength: 6, paddingSide: "right" });
  assert.deepEqual(right.input_ids, [[0, 2, 1, 1, 1, 1], [0, 2, 3, 4, 1, 1]]);
  assert.deepEqual(right.attention_mask, [[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 0]]);
  assert.equal(tok.decode([0, 2, 3, 1], { skipSpecialTokens: true }), "a b");
});

test("padding without a pad token is an error that says how to fix it", () => {
  const tok = new Tokenizer({ tokenizer: bpeJson(["a"], []), source: "/models/x/tokenizer.json" });
  assert.throws(() => tok.encodeBatch(["a", "aa"], { padding: true }), /no pad token.*pad_token/s);
  tok.setPadToken("a");
  assert.deepEqual(tok.encodeBatch(["a", "aa"], { padding: true }).input_ids, [[0, 0], [0, 0]]);
});

test("errors name the folder, the file and the unsupported type", () => {
  const dir = mkdtempSync(join(tmpdir(), "vlmkit-tok-"));
  assert.throws(() => Tokenizer.fromFolder(dir), (e: Error) => e.message.includes(dir) && e.message.includes("tokenizer.json"));
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(bpeJson(["a"], [], {}, { normalizer: { type: "Precompiled", precompiled_charsmap: "" } })));
  assert.throws(
    () => Tokenizer.fromFolder(dir),
    (e: Error) => e.message.includes('"Precompiled"') && e.message.includes(join(dir, "tokenizer.json")) && e.message.includes("normalizer"),
  );
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify({ ...bpeJson(["a"], []), model: { type: "Unigram", vocab: [] } }));
  assert.throws(() => Tokenizer.fromFolder(dir), /unsupported model type "Unigram"/);
});

test("chat template lookup follows transformers' precedence", () => {
  const dir = mkdtempSync(join(tmpdir(), "vlmkit-tpl-"));
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(bpeJson(["a"], [])));
  writeFileSync(join(dir, "chat_template.json"), JSON.stringify({ chat_template: "from-json" }));
  assert.equal(readChatTemplate(dir, {}), "from-json");
  assert.equal(readChatTemplate(dir, { chat_template: "from-config" }), "from-config");
  writeFileSync(join(dir, "chat_template.jinja"), "from-jinja");
  assert.equal(readChatTemplate(dir, { chat_template: "from-config" }), "from-jinja");
  const named = [
    { name: "default", template: "D{{ messages | length }}" },
    { name: "tool_use", template: "T{% if tools %}{{ tools | length }}{% endif %}" },
  ];
  writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify({ chat_template: named }));
  const listDir = mkdtempSync(join(tmpdir(), "vlmkit-tpl-"));
  writeFileSync(join(listDir, "tokenizer.json"), JSON.stringify(bpeJson(["a"], [])));
  writeFileSync(join(listDir, "tokenizer_config.json"), JSON.stringify({ chat_template: named }));
  const tok = Tokenizer.fromFolder(listDir);
  const messages = [{ role: "user", content: "a" }];
  assert.equal(tok.applyChatTemplate(messages), "D1");
  assert.equal(tok.applyChatTemplate(messages, { tools: [{}, {}] }), "T2");
  assert.equal(tok.applyChatTemplate(messages, { chatTemplate: "tool_use" }), "T");
  assert.equal(tok.applyChatTemplate(messages, { chatTemplate: "X{{ messages[0].content }}" }), "Xa");
  mkdirSync(join(listDir, "additional_chat_templates"));
  writeFileSync(join(listDir, "additional_chat_templates", "rag.jinja"), "R");
  assert.deepEqual(Object.keys(readChatTemplate(listDir, { chat_template: named }) as object).sort(), ["default", "rag", "tool_use"]);
  const none = Tokenizer.fromFolder(writeTokenizerOnly());
  assert.throws(() => none.applyChatTemplate(messages), /no chat template found.*chat_template\.jinja/s);
});

function writeTokenizerOnly(): string {
  const dir = mkdtempSync(join(tmpdir(), "vlmkit-tpl-"));
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(bpeJson(["a"], [])));
  return dir;
}

test("regex translation: Unicode \\s, case-insensitive groups, possessive quantifiers", () => {
  const compile = (p: string) => {
    const { source, flags } = translateOnigRegex(p);
    return new RegExp(source, flags);
  };
  // Oniguruma's \s includes U+0085 and excludes U+FEFF, unlike JS.
  assert.ok(compile("^\\s$").test("\u0085"));
  assert.ok(!compile("^\\s$").test("\ufeff"));
  assert.ok(compile("^(?i:'s|'ll)$").test("'LL"));
  assert.ok(!compile("^(?i:'s)x$").test("'SX"));
  // a++ never gives back: "aaa" cannot match a++a.
  assert.ok(!compile("^a++a$").test("aaa"));
  assert.ok(compile("^a+a$").test("aaa"));
  assert.ok(!compile("^(?>a+)a$").test("aaa"));
  assert.ok(compile("^x{2}\\{y$").test("xx{y"));
});

test("normalizers: Prepend only on non-empty text, Replace with literal content", () => {
  const prepend = buildNormalizer({ type: "Prepend", prepend: "\u2581" }, "t")!;
  assert.equal(prepend(""), "");
  assert.equal(prepend("a"), "\u2581a");
  const replace = buildNormalizer({ type: "Replace", pattern: { String: " " }, content: "$&" }, "t")!;
  assert.equal(replace("a b"), "a$&b");
});

// ---------------------------------------------------------------------------------------------
// Parity with transformers (goldens from tools/reference/fixtures_tokenizer.py)

for (const name of ["tokenizer-bpe", "tokenizer-sp"]) {
  const goldensPath = join(fixture(name), "tokenizer_goldens.json");
  test(`${name}: encode, decode, batch and chat templates match transformers`, { skip: !existsSync(goldensPath) && SKIP_NO_FIXTURES }, () => {
    const goldens = JSON.parse(readFileSync(goldensPath, "utf8"));
    const tok = Tokenizer.fromFolder(fixture(name));
    assert.equal(tok.vocabSize, goldens.vocab_size);
    assert.equal(tok.length, goldens.len);
    assert.equal(tok.paddingSide, goldens.padding_side);
    for (const key of ["bos_token", "eos_token", "unk_token", "pad_token"]) {
      const camel = key.replace(/_(\w)/g, (_, c: string) => c.toUpperCase()) as "bosToken";
      assert.equal(tok[camel] ?? null, goldens.special[key], key);
      assert.equal(tok[`${camel}Id` as "bosTokenId"] ?? null, goldens.special[`${key}_id`], `${key}_id`);
    }
    for (const [token, id] of Object.entries(goldens.convert_tokens_to_ids)) assert.equal(tok.convertTokensToIds(token) ?? null, id, token);
    for (const c of goldens.encode) {
      const label = JSON.stringify(c.text);
      assert.deepEqual(tok.encode(c.text), c.ids, `ids of ${label}`);
      const plain = tok.encode(c.text, { addSpecialTokens: false });
      assert.deepEqual(plain, c.ids_no_special, `ids without special tokens of ${label}`);
      assert.deepEqual(tok.convertIdsToTokens(plain), c.tokens, `tokens of ${label}`);
      assert.equal(tok.decode(c.ids), c.decoded, `decode of ${label}`);
      assert.equal(tok.decode(c.ids, { skipSpecialTokens: true }), c.decoded_skip_special, `decode(skip) of ${label}`);
      assert.deepEqual(tok.encode(c.text, { truncation: true, maxLength: 5 }), c.truncated_5, `truncated ${label}`);
    }
    for (const c of goldens.decode) {
      assert.equal(tok.decode(c.ids), c.decoded, `decode ${JSON.stringify(c.ids)}`);
      assert.equal(tok.decode(c.ids, { skipSpecialTokens: true }), c.decoded_skip_special, `decode(skip) ${JSON.stringify(c.ids)}`);
    }
    const batchTexts = ["Hello world", "A much longer sentence with many more tokens than the others.", "", "日本語"];
    for (const c of goldens.batch) {
      const out = tok.encodeBatch(batchTexts, {
        padding: c.padding,
        paddingSide: c.padding_side ?? undefined,
        truncation: c.truncation,
        truncationSide: c.truncation_side ?? undefined,
        maxLength: c.max_length ?? undefined,
      });
      const label = JSON.stringify({ ...c, input_ids: undefined, attention_mask: undefined });
      assert.deepEqual(out.input_ids, c.input_ids, label);
      assert.deepEqual(out.attention_mask, c.attention_mask, label);
    }
    for (const c of goldens.chat) {
      const render = () =>
        tok.applyChatTemplate(c.messages, { addGenerationPrompt: c.add_generation_prompt ?? false, continueFinalMessage: c.continue_final_message ?? false });
      if (c.error !== undefined) {
        assert.throws(render, (e: Error) => e.message === c.error, c.name);
        continue;
      }
      assert.equal(render(), c.rendered, c.name);
      if (c.ids) assert.deepEqual(tok.applyChatTemplate(c.messages, { addGenerationPrompt: c.add_generation_prompt, tokenize: true }), c.ids, c.name);
    }
  });
}

const componentsPath = join(fixture("tokenizer-components"), "components_goldens.json");
test("normalizers, pre-tokenizers and decoders match the tokenizers library", { skip: !existsSync(componentsPath) && SKIP_NO_FIXTURES }, () => {
  const goldens = JSON.parse(readFileSync(componentsPath, "utf8"));
  const texts: string[] = goldens.texts;
  for (const n of goldens.normalizers) {
    const normalize = buildNormalizer(n.spec, n.name)!;
    texts.forEach((text, k) => assert.equal(normalize(text), n.outputs[k], `normalizer ${n.name} on ${JSON.stringify(text)}`));
  }
  for (const p of goldens.pre_tokenizers) {
    const preTokenize = buildPreTokenizer(p.spec, p.name)!;
    texts.forEach((text, k) =>
      assert.deepEqual(preTokenize([{ text, atStart: true }]).map((piece) => piece.text), p.outputs[k], `pre-tokenizer ${p.name} on ${JSON.stringify(text)}`),
    );
  }
  for (const d of goldens.decoders) {
    const decode = buildDecoder(d.spec, d.name)!;
    goldens.decoder_inputs.forEach((tokens: string[], k: number) => {
      if (typeof d.outputs[k] !== "string") return;
      assert.equal(decode(tokens).join(""), d.outputs[k], `decoder ${d.name} on ${JSON.stringify(tokens)}`);
    });
  }
});

test("whole tokenizers of other styles (BERT, GPT-2, Llama-3, Mistral) match the tokenizers library", { skip: !existsSync(componentsPath) && SKIP_NO_FIXTURES }, () => {
  const goldens = JSON.parse(readFileSync(componentsPath, "utf8"));
  for (const entry of goldens.tokenizers) {
    const tok = new Tokenizer({ tokenizer: entry.tokenizer, source: entry.name });
    for (const c of entry.cases) {
      const label = `${entry.name} ${JSON.stringify(c.text)}`;
      assert.deepEqual(tok.encode(c.text), c.ids, label);
      assert.deepEqual(tok.encode(c.text, { addSpecialTokens: false }), c.ids_no_special, label);
      assert.equal(tok.decode(c.ids), c.decoded, label);
      assert.equal(tok.decode(c.ids, { skipSpecialTokens: true }), c.decoded_skip_special, label);
    }
  }
});

test("unk_token missing from the vocab is refused at load, naming tokenizer.json and model.unk_token", () => {
  const vocab = { a: 0, b: 1 };
  for (const type of ["WordLevel", "WordPiece", "BPE"]) {
    const model: Json = { type, vocab, unk_token: "<unk>", ...(type === "BPE" ? { merges: [] } : {}) };
    assert.throws(
      () => new Tokenizer({ tokenizer: { model }, source: "/m/tokenizer.json" }),
      new RegExp(`/m/tokenizer\\.json: the ${type} model's unk_token "<unk>" is not in model\\.vocab`),
      type,
    );
    // In the vocab it loads and maps unknown text to it
    const ok = new Tokenizer({ tokenizer: { model: { ...model, vocab: { ...vocab, "<unk>": 2 } } } });
    assert.deepEqual(ok.encode("z", { addSpecialTokens: false }), [2], type);
  }
});

test("an added token without content is refused, naming the file and the entry", () => {
  const model = { type: "WordLevel", vocab: { a: 0 }, unk_token: "a" };
  assert.throws(
    () => new Tokenizer({ tokenizer: { model, added_tokens: [{ id: 1, content: "<x>", special: true }, { id: 2, special: true }] }, source: "/m/tokenizer.json" }),
    /\/m\/tokenizer\.json: added_tokens\[1\] needs a non-empty string "content"/,
  );
  assert.throws(
    () => new Tokenizer({ tokenizer: { model }, config: { added_tokens_decoder: { "5": { special: true } } }, source: "/m/tokenizer.json" }),
    /\/m\/tokenizer_config\.json: added_tokens_decoder\["5"\] needs a non-empty string "content"/,
  );
});

test("a tokenizer_config.json that is not an object is blamed, not tokenizer.json", () => {
  const dir = mkdtempSync(join(tmpdir(), "vlmkit-tok-"));
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify({ model: { type: "WordLevel", vocab: { a: 0 }, unk_token: "a" } }));
  writeFileSync(join(dir, "tokenizer_config.json"), "[]");
  assert.throws(() => Tokenizer.fromFolder(dir), new RegExp(`${join(dir, "tokenizer_config.json").replace(/[.\\/]/g, "\\$&")}: must be a JSON object, got an array`));
});
