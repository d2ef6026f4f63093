// The run-file YAML subset: what it reads (compared with the values YAML 1.2 gives), the line of each key, what it
// refuses (with file:line), and that what it writes reads back equal.
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseYaml, stringifyYaml, resolvePlainScalar, YamlError, type YamlValue } from "../../src/runs/yaml.js";

test("block maps and lists, flow collections, quoting and comments", () => {
  const text = [
    "# a run file",
    "task: classification   # trailing comment",
    "model:",
    "  path: ./models/llava   ",
    "data:",
    "  labels: [red circle, 'it''s', \"tab\\tand # hash\", 3]",
    "  empty:",
    "components: {language: {mode: lora, r: 8}, vision: {}}",
    "groups:",
    "- name: head",
    "  match: ^head\\.",
    "- {name: rest, lr: 1e-3}",
    "- - nested",
    "  - list",
    "tags:",
    "  - a",
    "  -   b # spaced",
    "url: http://x.org/a#b",
    "quote in text: it's fine",
  ].join("\n");
  const { value, lines } = parseYaml(text, "run.yaml");
  assert.deepEqual(value, {
    task: "classification",
    model: { path: "./models/llava" },
    data: { labels: ["red circle", "it's", "tab\tand # hash", 3], empty: null },
    components: { language: { mode: "lora", r: 8 }, vision: {} },
    groups: [{ name: "head", match: "^head\\." }, { name: "rest", lr: 0.001 }, ["nested", "list"]],
    tags: ["a", "b"],
    url: "http://x.org/a#b",
    "quote in text": "it's fine",
  });
  assert.equal(lines.get("task"), 2);
  assert.equal(lines.get("model.path"), 4);
  assert.equal(lines.get("groups.0.match"), 11);
  assert.equal(lines.get("groups.1"), 12);
});

test("scalars resolve as YAML 1.2's core schema", () => {
  const cases: [string, unknown][] = [
    ["1e-4", 1e-4], ["-3", -3], ["+7", 7], ["0.5", 0.5], [".5", 0.5], ["3.", 3], ["0x1F", 31], ["0o17", 15],
    ["true", true], ["False", false], ["null", null], ["~", null], ["", null], [".inf", Infinity], ["-.inf", -Infinity],
    ["yes", "yes"], ["on", "on"], ["1e", "1e"], ["1_000", "1_000"], ["v1.2", "v1.2"],
  ];
  for (const [text, expected] of cases) assert.deepEqual(resolvePlainScalar(text), expected, text);
  assert.ok(Number.isNaN(resolvePlainScalar(".nan") as number));
  assert.deepEqual(parseYaml('a: "1e-4"\nb: \'true\'').value, { a: "1e-4", b: "true" });
});

test("a list under a key may sit at the key's indentation", () => {
  assert.deepEqual(parseYaml("a:\n- 1\n- 2\nb: 3").value, { a: [1, 2], b: 3 });
});

test("what is refused names the file and line", () => {
  const refused: [string, RegExp][] = [
    ["a: 1\n  b: 2", /^run\.yaml:2: unexpected indentation/],
    ["a: 1\na: 2", /^run\.yaml:2: duplicate key 'a' \(first at line 1\)/],
    ["a: [1, 2", /^run\.yaml:1: a flow list \[ \.\.\. \] must close on the same line/],
    ["a: |\n  text", /^run\.yaml:1: block scalars/],
    ["a: &anchor 1", /^run\.yaml:1: '&' \(anchors/],
    ["a:\n\tb: 1", /^run\.yaml:2: tabs are not allowed/],
    ["a: \"open", /^run\.yaml:1: unterminated double-quoted string/],
    ["a: 1\n- b", /^run\.yaml:2: a list item where a 'key: value' line was expected/],
    ["just text\nmore", /^run\.yaml:2: unexpected line 'more'/],
    ["a: 1\n---\nb: 2", /^run\.yaml:2: only one YAML document/],
    ['a: "\\q"', /^run\.yaml:1: unknown escape \\q/],
  ];
  for (const [text, message] of refused) {
    assert.throws(() => parseYaml(text, "run.yaml"), (error: unknown) => error instanceof YamlError && message.test((error as Error).message), text);
  }
});

test("stringifyYaml writes what parseYaml reads back equal", () => {
  const value: YamlValue = {
    task: "generation",
    n: 3,
    lr: 1e-4,
    off: false,
    none: null,
    tricky: ["1e-4", "true", "a: b", "# not a comment", "", " padded ", "it's", "line\nbreak", "-dash", "[x]"],
    nested: { list: [{ name: "a", match: "^x\\." }, { name: "b" }], empty: [], emptyMap: {} },
    "key with space": "v",
  };
  const text = stringifyYaml(value);
  assert.deepEqual(parseYaml(text).value, value);
});
