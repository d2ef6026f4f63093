// Run-file YAML: what it reads (compared with the values YAML 1.2 gives), including anchors, merge keys, block
// scalars and multi-line flow lists; the line of each key; what it refuses (with file:line, and the column for syntax
// errors); and that what it writes reads back equal.
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseYaml, stringifyYaml, YamlError, type YamlValue } from "../../src/runs/yaml.js";

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
  const scalar = (text: string) => (parseYaml(`v: ${text}`).value as { v: YamlValue }).v;
  const cases: [string, unknown][] = [
    ["1e-4", 1e-4], ["-3", -3], ["+7", 7], ["0.5", 0.5], [".5", 0.5], ["3.", 3], ["0x1F", 31], ["0o17", 15],
    ["true", true], ["False", false], ["null", null], ["~", null], ["", null], [".inf", Infinity], ["-.inf", -Infinity],
    ["yes", "yes"], ["on", "on"], ["1e", "1e"], ["1_000", "1_000"], ["v1.2", "v1.2"],
  ];
  for (const [text, expected] of cases) assert.deepEqual(scalar(text), expected, text);
  assert.ok(Number.isNaN(scalar(".nan") as number));
  assert.deepEqual(parseYaml('a: "1e-4"\nb: \'true\'').value, { a: "1e-4", b: "true" });
  // a %YAML 1.1 directive does not bring back 1.1's booleans
  assert.deepEqual(parseYaml("%YAML 1.1\n---\na: yes\nb: on").value, { a: "yes", b: "on" });
});

test("anchors, aliases and << merge keys: values as YAML gives them, lines where their text is", () => {
  const text = [
    "components:",
    "  vision: &adapt",
    "    mode: lora",
    "    r: 8",
    "  projector: *adapt",
    "  language:",
    "    <<: *adapt",
    "    r: 16",
    "    alpha: 32",
    "many:",
    "  <<: [{a: 1, b: 1}, {b: 2, c: 2}]",
    "  c: 3",
  ].join("\n");
  const { value, lines } = parseYaml(text, "run.yaml");
  assert.deepEqual(value, {
    components: { vision: { mode: "lora", r: 8 }, projector: { mode: "lora", r: 8 }, language: { mode: "lora", r: 16, alpha: 32 } },
    // keys written in the map win, then the first merged map
    many: { a: 1, b: 1, c: 3 },
  });
  assert.equal(lines.get("components.projector"), 5);
  assert.equal(lines.get("components.projector.r"), 4);
  assert.equal(lines.get("components.language.mode"), 3);
  assert.equal(lines.get("components.language.r"), 8);
  assert.equal(lines.get("components.language.alpha"), 9);
  assert.equal(lines.get("many.b"), 11);
  assert.equal(lines.get("many.c"), 12);
});

test("block scalars and multi-line flow collections", () => {
  const text = [
    "literal: |",
    "  line one",
    "    indented",
    "",
    "  after a blank",
    "folded: >-",
    "  folded",
    "  into one",
    "strip: |-",
    "  no newline",
    "targets: [",
    "  q_proj,   # a comment inside",
    "  v_proj,",
    "]",
    "map: {a: 1,",
    "      b: [x,",
    "          y]}",
    "last: 1",
  ].join("\n");
  const { value, lines } = parseYaml(text, "run.yaml");
  assert.deepEqual(value, {
    literal: "line one\n  indented\n\nafter a blank\n",
    folded: "folded into one",
    strip: "no newline",
    targets: ["q_proj", "v_proj"],
    map: { a: 1, b: ["x", "y"] },
    last: 1,
  });
  assert.equal(lines.get("folded"), 6);
  assert.equal(lines.get("targets.1"), 13);
  assert.equal(lines.get("map.b"), 16);
  assert.equal(lines.get("map.b.1"), 17);
  assert.equal(lines.get("last"), 18);
});

test("a list under a key may sit at the key's indentation", () => {
  assert.deepEqual(parseYaml("a:\n- 1\n- 2\nb: 3").value, { a: [1, 2], b: 3 });
});

test("what is refused names the file and line, and the column for syntax errors", () => {
  const refused: [string, RegExp][] = [
    ["a: 1\n  b: 2", /^run\.yaml:1:4: Nested mappings are not allowed/],
    ["a: 1\na: 2", /^run\.yaml:2: duplicate key 'a' \(first at line 1\)$/],
    ["a:\n  b: 1\n  c: 2\n  b: 3", /^run\.yaml:4: duplicate key 'b' \(first at line 2\)$/],
    ["a: {x: 1, x: 2}", /^run\.yaml:1: duplicate key 'x'/],
    ["a: [1, 2", /^run\.yaml:1:9: Flow sequence in block collection must be sufficiently indented and end with a \]/],
    ["a:\n\tb: 1", /^run\.yaml:2:1: Tabs are not allowed as indentation/],
    ["a: \"open", /^run\.yaml:1:9: Missing closing "quote/],
    ["a: 1\n- b", /^run\.yaml:2:1: /],
    ["a: 1\n---\nb: 2", /^run\.yaml:2:1: only one YAML document per file is supported$/],
    ['a: "\\q"', /^run\.yaml:1:5: Invalid escape sequence \\q/],
    ["a: @x", /^run\.yaml:1:4: Plain value cannot start with reserved character @/],
    ["a: 1\nb: *nope", /^run\.yaml:2: unknown alias \*nope/],
    ["a: &x [1, *x]", /^run\.yaml:1: alias \*x refers to a collection that contains it/],
    ["a: 1\nb:\n  <<: 3", /^run\.yaml:3: a merge key \(<<\) takes a map/],
    ["a: !custom 1", /^run\.yaml:1:4: Unresolved tag: !custom/],
    ["a:\n  b: !!binary aGk=", /^run\.yaml:2: !!binary values are not supported in run files/],
    ["a: !!set {x}", /^run\.yaml:1: !!set values are not supported/],
    ["[a]: 1", /^run\.yaml:1: a key must be a name, not a list or a map/],
    ["a: 1\n'': 2", /^run\.yaml:2: empty key/],
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
    tricky: ["1e-4", "true", "a: b", "# not a comment", "", " padded ", "it's", "line\nbreak", "-dash", "[x]", "*alias", "&anchor", "<<", "0x1F", "~", "yes"],
    long: `^language_model\\.layers\\.(${Array.from({ length: 40 }, (_, i) => i).join("|")})\\.self_attn\\.(q|k|v|o)_proj$`,
    special: [Infinity, -Infinity, 0.1 + 0.2, 123456789012],
    nested: { list: [{ name: "a", match: "^x\\." }, { name: "b" }], empty: [], emptyMap: {} },
    "key with space": "v",
  };
  const text = stringifyYaml(value);
  assert.deepEqual(parseYaml(text).value, value);
  // block style, one key per line, and a long regex kept on one line
  assert.match(text, /^task: generation\nn: 3\nlr: 0\.0001\n/);
  assert.match(text, /\nlong: \S+\n/);
});
