// Conversation datasets: LLaVA's {conversations: [{from, value}]} and the messages format with image parts become
// the same messages; every bad row is an error naming file:line, or skipped and reported with skipBad.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readConversationRecords, referenceAnswer, promptMessages } from "../../src/data/conversations.js";

const dir = mkdtempSync(join(tmpdir(), "vlmkit-conversations-"));
writeFileSync(join(dir, "a.png"), "not decoded here");
const jsonl = (name: string, rows: (object | string)[]) => {
  const path = join(dir, name);
  writeFileSync(path, rows.map((r) => (typeof r === "string" ? r : JSON.stringify(r))).join("\n") + "\n");
  return path;
};

test("LLaVA and messages rows give the same messages; a missing placeholder goes before the first user text", () => {
  const path = jsonl("good.jsonl", [
    { image: "a.png", conversations: [{ from: "human", value: "<image>\nWhat is it?" }, { from: "gpt", value: "a cat" }], label: "cat" },
    { messages: [{ role: "user", content: [{ type: "image", image: "a.png" }, { type: "text", text: "\nWhat is it?" }] }, { role: "assistant", content: "a cat" }] },
    { image: "a.png", conversations: [{ from: "human", value: "What is it?" }, { from: "gpt", value: "a cat" }] },
  ]);
  const { records, skipped } = readConversationRecords(path);
  assert.equal(skipped.length, 0);
  const expected = [{ role: "user", content: "<image>\nWhat is it?" }, { role: "assistant", content: "a cat" }];
  for (const record of records) {
    assert.deepEqual(record.messages, expected);
    assert.deepEqual(record.images, [join(dir, "a.png")]);
  }
  assert.deepEqual(records.map((r) => r.source), [`${path}:1`, `${path}:2`, `${path}:3`]);
  assert.equal(records[0].label, "cat");
  assert.equal(referenceAnswer(records[0]), "a cat");
  assert.deepEqual(promptMessages(records[0]), [expected[0]]);
});

const BAD: [string, object | string, RegExp][] = [
  ["bad JSON", '{"conversations": [', /:1: bad JSON/],
  ["not an object", "[1, 2]", /:1: a row must be a JSON object/],
  ["no conversation", { image: "a.png" }, /:1: a conversation row needs "conversations" \(LLaVA \/ ShareGPT format\), "messages", or "instruction" and "output" \(alpaca format\)/],
  ["bad turn", { conversations: [{ from: "robot", value: "hi" }] }, /:1: conversations\[0\] needs "from"/],
  ["bad role", { messages: [{ role: "robot", content: "hi" }] }, /:1: messages\[0\]\.role must be user, assistant or system/],
  ["bad part", { messages: [{ role: "user", content: [{ type: "audio" }] }, { role: "assistant", content: "x" }] }, /:1: messages\[0\]\.content\[0\] must be/],
  ["no answer", { conversations: [{ from: "human", value: "hi" }] }, /:1: the conversation has no assistant answer to learn/],
  ["missing image", { image: "nope.png", conversations: [{ from: "human", value: "<image>" }, { from: "gpt", value: "x" }] }, /:1: image file not found: .*nope\.png/],
  ["placeholders", { images: ["a.png", "a.png"], conversations: [{ from: "human", value: "<image>" }, { from: "gpt", value: "x" }] }, /:1: 1 <image> placeholder\(s\) for 2 image\(s\)/],
];

test("each kind of bad row is an error naming file:line, or with skipBad is skipped and reported", () => {
  for (const [name, row, message] of BAD) {
    const path = jsonl(`${name.replace(/ /g, "_")}.jsonl`, [row]);
    assert.throws(() => readConversationRecords(path), (error: Error) => message.test(error.message) && error.message.startsWith(path), name);
    const good = { conversations: [{ from: "human", value: "hi" }, { from: "gpt", value: "x" }] };
    const mixed = jsonl(`${name.replace(/ /g, "_")}-mixed.jsonl`, [good, row, good]);
    const { records, skipped } = readConversationRecords(mixed, { skipBad: true });
    assert.equal(records.length, 2, name);
    assert.equal(skipped.length, 1, name);
    assert.equal(skipped[0].source, `${mixed}:2`, name);
  }
  assert.throws(() => readConversationRecords(join(dir, "absent.jsonl")), /absent\.jsonl: file not found/);
});

test("JSON-array dataset files (LLaVA's and LLaMA-Factory's) and alpaca rows; a bad element is named file[index]", () => {
  const path = join(dir, "llava_instruct.json");
  writeFileSync(path, JSON.stringify([
    { id: "000001", image: "a.png", conversations: [{ from: "human", value: "<image>\nWhat is it?" }, { from: "gpt", value: "a cat" }] },
    { instruction: "What is it?", input: "Answer in two words.", output: "a cat", system: "Be brief.", images: ["a.png"] },
    { instruction: "Name an animal.", output: "cat" },
  ], null, 2));
  const { records } = readConversationRecords(path);
  assert.deepEqual(records.map((r) => r.source), [`${path}[0]`, `${path}[1]`, `${path}[2]`]);
  assert.deepEqual(records[0].messages, [{ role: "user", content: "<image>\nWhat is it?" }, { role: "assistant", content: "a cat" }]);
  assert.deepEqual(records[1].messages, [
    { role: "system", content: "Be brief." }, { role: "user", content: "<image>\nWhat is it?\nAnswer in two words." }, { role: "assistant", content: "a cat" },
  ]);
  assert.deepEqual(records[1].images, [join(dir, "a.png")]);
  assert.equal(records[2].images, undefined);
  const bad = join(dir, "bad.json");
  writeFileSync(bad, JSON.stringify([{ instruction: "x", output: "y" }, { instruction: "x" }, 7]));
  assert.throws(() => readConversationRecords(bad), new RegExp(`${bad.replace(/[.\\/]/g, "\\$&")}\\[1\\]: an alpaca row needs a string "output"`));
  const skipping = readConversationRecords(bad, { skipBad: true });
  assert.deepEqual(skipping.skipped.map((s) => s.source), [`${bad}[1]`, `${bad}[2]`]);
  const broken = join(dir, "broken.json");
  writeFileSync(broken, '[{"instruction": "x", "output": "y"},');
  assert.throws(() => readConversationRecords(broken), /broken\.json: bad JSON .*one JSON array of objects/);
  writeFileSync(broken, "[]");
  assert.throws(() => readConversationRecords(broken), /broken\.json: no records in the file \(the array is empty\)/);
});
