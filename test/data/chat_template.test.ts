// Chat template (Jinja) tests: outputs worked out from Jinja's rules with transformers' settings
// (trim_blocks, lstrip_blocks, Python value semantics), then the templates rendered by transformers.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ChatTemplateError, ChatTemplateRaisedError, renderChatTemplate, strftime } from "../../src/data/chat_template.js";
import { Tokenizer } from "../../src/data/tokenizer.js";

const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));
const render = (template: string, extra: Record<string, unknown> = {}) => renderChatTemplate(template, { messages: [], ...extra });

test("whitespace control: -, trim_blocks, lstrip_blocks, +, trailing newline", () => {
  assert.equal(render("a  {%- if true %} b {% endif -%}  c"), "a b c");
  assert.equal(render("{% if true %}\nX\n{% endif %}\nY"), "X\nY");
  assert.equal(render("  {% if true %}X{% endif %}"), "X");
  assert.equal(render("  {%+ if true %}X{% endif %}"), "  X");
  assert.equal(render("line\n    {% if true %}\n    X\n    {% endif %}\nY"), "line\n    X\nY");
  // Variables are not lstripped and keep the newline after them.
  assert.equal(render("  {{ 'X' }}\nY"), "  X\nY");
  assert.equal(render("{{- '  ' -}}  X  {{- '' }}"), "  X");
  // One trailing newline of the template is dropped (keep_trailing_newline=False); \r\n becomes \n.
  assert.equal(render("A\n"), "A");
  assert.equal(render("A\r\n\r\n"), "A\n");
  assert.equal(render("a {# comment #}\nb"), "a b");
  assert.equal(render("{% raw %}{{ x }}{% endraw %}"), "{{ x }}");
});

test("for loops: loop variables, else, filters, unpacking, break/continue", () => {
  const xs = ["a", "b"];
  assert.equal(
    render("{% for x in xs %}{{ x }}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.revindex }},{% endfor %}", { xs }),
    "a10TrueFalse22,b21FalseTrue21,",
  );
  assert.equal(render("{% for x in [] %}x{% else %}empty{% endfor %}"), "empty");
  assert.equal(render("{% for x in range(6) if x is odd %}{{ x }}{{ loop.length }} {% endfor %}"), "13 33 53 ");
  assert.equal(render("{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }} {% endfor %}"), "a=1 b=2 ");
  assert.equal(render("{% for i in range(9) %}{% if i == 1 %}{% continue %}{% endif %}{% if i == 4 %}{% break %}{% endif %}{{ i }}{% endfor %}"), "023");
  assert.equal(render("{% for m in ms %}{{ loop.previtem.r if loop.previtem is defined else '-' }}{% endfor %}", { ms: [{ r: "x" }, { r: "y" }] }), "-x");
});

test("scoping: set in a loop stays in the iteration; namespace() carries state out", () => {
  assert.equal(render("{% set c = 0 %}{% for x in [1, 2, 3] %}{% set c = c + x %}{{ c }}{% endfor %}|{{ c }}"), "123|0");
  assert.equal(render("{% set ns = namespace(c=0) %}{% for x in [1, 2, 3] %}{% set ns.c = ns.c + x %}{% endfor %}{{ ns.c }}"), "6");
  assert.equal(render("{% if true %}{% set y = 5 %}{% endif %}{{ y }}"), "5");
  assert.equal(render("{% set a, b = [1, 2] %}{{ b }}{{ a }}"), "21");
  assert.equal(render("{% set t %}in {{ 1 + 1 }}{% endset %}[{{ t }}]"), "[in 2]");
  assert.throws(() => render("{% set x = 1 %}{% set x.y = 2 %}"), /non-namespace/);
});

test("Python values: str(), repr inside containers, arithmetic, comparisons", () => {
  assert.equal(render("{{ [1, 'a', none, true, {'k': \"it's\"}] }}"), "[1, 'a', None, True, {'k': \"it's\"}]");
  assert.equal(render("{{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 2 ** 3 }} {{ 1 + 2 * 3 }} {{ 'ab' * 2 }} {{ 1.5 + 1 }}"), "3 -4 2 8 7 abab 2.5");
  assert.equal(render("{{ 'a' ~ 1 ~ none ~ undefined_name }}"), "a1None");
  assert.equal(render("{{ 1 < 2 < 3 }} {{ 'b' in 'abc' }} {{ 3 not in [1, 2] }} {{ 'k' in {'k': 1} }} {{ [1, 2] == [1, 2] }} {{ true == 1 }}"), "True True True True True True");
  assert.equal(render("{{ 0 or 'x' }} {{ 'y' and 0 }} {{ not '' }} {{ 'yes' if [] else 'no' }}"), "x 0 True no");
  assert.equal(render("{{ 'abcdef'[1:4] }} {{ 'abcdef'[::-1] }} {{ [1, 2, 3][-1] }} {{ 'héllo'[1] }} {{ [1, 2, 3][:-1] }}"), "bcd fedcba 3 é [1, 2]");
  assert.throws(() => render("{{ 'a' + 1 }}"), /can only concatenate str/);
  assert.throws(() => render("{{ undefined_name + 1 }}"), /'undefined_name' is undefined/);
});

test("filters and tests used by chat templates", () => {
  const messages = [
    { role: "system", content: "S" },
    { role: "user", content: "U1" },
    { role: "assistant", content: "A" },
    { role: "user", content: "U2" },
  ];
  const ctx = { messages };
  assert.equal(render("{{ messages | selectattr('role', 'equalto', 'user') | map(attribute='content') | join(',') }}", ctx), "U1,U2");
  assert.equal(render("{{ messages | rejectattr('role', 'eq', 'user') | list | length }}", ctx), "2");
  assert.equal(render("{{ messages | map(attribute='role') | unique | list }}", ctx), "['system', 'user', 'assistant']");
  assert.equal(render("{{ messages | first | attr('role') }}|{{ (messages | last).role }}", ctx), "|user");
  assert.equal(render("{{ '  Hi  ' | trim }}|{{ 'hi there' | title }}|{{ 'hELLO' | capitalize }}|{{ 'a-b' | replace('-', '+') }}|{{ 'ab' | upper }}"), "Hi|Hi There|Hello|a+b|AB");
  assert.equal(render("{{ x | default('d') }} {{ '' | default('e', true) }} {{ '42' | int + 1 }} {{ 'x' | int }} {{ [3, 1, 2] | sort | list }} {{ [1, 2] | sum }}"), "d e 43 0 [1, 2, 3] 3");
  assert.equal(render("{{ {'b': 1, 'a': 2} | dictsort | first | first }} {{ {'b': 1} | items | list | length }} {{ [1, 2] | reverse | join }}"), "a 1 21");
  assert.equal(
    render("{{ 1 is number }}{{ 'a' is string }}{{ none is none }}{{ {} is mapping }}{{ [] is iterable }}{{ x is defined }}{{ 3 is odd }}{{ 4 is divisibleby 2 }}{{ 'a' is not string }}"),
    "TrueTrueTrueTrueTrueFalseTrueTrueFalse",
  );
  assert.equal(render("{% filter upper %}up{% endfilter %}{% with v = 'w' %}{{ v }}{% endwith %}{% generation %}g{% endgeneration %}"), "UPwg");
});

test("string, list and dict methods; the sandbox refuses mutation", () => {
  assert.equal(render("{{ '  Hi There  '.strip().lower().split(' ') }}"), "['hi', 'there']");
  assert.equal(render("{{ ' a  b '.split() }} {{ 'a,b,,c'.split(',', 1) }} {{ 'xxhixx'.strip('x') }} {{ '--a'.lstrip('-') }}"), "['a', 'b'] ['a', 'b,,c'] hi a");
  assert.equal(render("{{ 'Hello'.startswith('He') }} {{ 'Hello'.endswith(('x', 'lo')) }} {{ 'a b'.replace(' ', '') }} {{ \"they're\".title() }}"), "True True ab They'Re");
  assert.equal(render("{{ d.get('a') }} {{ d.get('z', 'dflt') }} {{ d.keys() | list }} {{ d.values() | list }} {{ d['a'] }} {{ d.a }}", { d: { a: 1, b: 2 } }), "1 dflt ['a', 'b'] [1, 2] 1 1");
  assert.equal(render("{{ '{} and {name}'.format(1, name='n') }} {{ '%s-%d' % ('x', 3) }}"), "1 and n x-3");
  assert.throws(() => render("{{ xs.append(3) }}", { xs: [1] }), /unsafe/);
});

test("macros: defaults, keyword arguments, varargs", () => {
  const template = "{% macro tag(name, value='v', sep=':') %}<{{ name }}{{ sep }}{{ value }}{{ varargs | length }}>{% endmacro %}";
  assert.equal(render(template + "{{ tag('a') }}{{ tag('b', sep='=') }}{{ tag('c', 1, '/', 'extra') }}"), "<a:v0><b=v0><c/11>");
});

test("tojson uses Python's json.dumps formatting (ensure_ascii=False)", () => {
  assert.equal(render("{{ {'a': [1, 2], 'b': 'é\"', 'c': none, 'd': true} | tojson }}"), '{"a": [1, 2], "b": "é\\"", "c": null, "d": true}');
  assert.equal(render("{{ {'a': [1], 'e': {}} | tojson(indent=2) }}"), '{\n  "a": [\n    1\n  ],\n  "e": {}\n}');
  assert.equal(render("{{ x | tojson }}", { x: [{ n: "\n" }] }), '[{"n": "\\n"}]');
  assert.equal(render("{{ 'é😀' | tojson(ensure_ascii=true) }}"), '"\\u00e9\\ud83d\\ude00"');
  assert.equal(render("{{ {'b': 1, 'a': 2} | tojson(sort_keys=true, separators=(',', ':')) }}"), '{"a":2,"b":1}');
});

test("raise_exception throws the template's message; errors name the template line", () => {
  assert.throws(
    () => render("ok\n{{ raise_exception('Roles must alternate') }}"),
    (e: Error) => e instanceof ChatTemplateRaisedError && e.message === "Roles must alternate",
  );
  assert.throws(
    () => render("a\nb\n{% frobnicate %}"),
    (e: Error) => e instanceof ChatTemplateError && (e as ChatTemplateError).line === 3 && /syntax error at line 3: unknown tag 'frobnicate'/.test(e.message),
  );
  assert.throws(() => render("a\n{{ 1 + }}"), /syntax error at line 2/);
  assert.throws(() => render("{% for x in xs %}\n{{ x }}"), /syntax error at line 2: unexpected end of template; expected 'endfor' or 'else'/);
  assert.throws(() => render("{% if x %}{% endfor %}"), /syntax error at line 1/);
  assert.throws(() => render("x\n\n{{ missing.attr }}"), /undefined value at line 3: 'missing' is undefined/);
});

test("strftime_now formats the current local date like Python's strftime", () => {
  const before = strftime(new Date(), "%d %b %Y");
  const rendered = render("{{ strftime_now('%d %b %Y') }}");
  const after = strftime(new Date(), "%d %b %Y");
  assert.ok(rendered === before || rendered === after, rendered);
  const fixed = new Date(2024, 6, 4, 15, 5, 9);
  assert.equal(strftime(fixed, "%Y-%m-%d %H:%M:%S %a %A %b %B %j %I%p %-d %%"), "2024-07-04 15:05:09 Thu Thursday Jul July 186 03PM 4 %");
});

const bpeFolder = join(repoRoot, "fixtures", "tokenizer-bpe");
const bpeGoldens = join(bpeFolder, "tokenizer_goldens.json");
test("reference templates (Llama-3, Qwen2, Qwen2-VL, LLaVA, Idefics3, Llama-2, tools, features) render as in transformers", {
  skip: !existsSync(bpeGoldens) && "fixtures missing: run `python3 tools/reference/fixtures_tokenizer.py fixtures` (or tools/reference/make_fixtures.py)",
}, () => {
  const goldens = JSON.parse(readFileSync(bpeGoldens, "utf8"));
  const tok = Tokenizer.fromFolder(bpeFolder);
  let checked = 0;
  for (const suite of goldens.templates) {
    for (const c of suite.cases) {
      const label = `${suite.name} / ${c.conversation} / ${JSON.stringify(c.kwargs).slice(0, 40)} / generation prompt ${c.add_generation_prompt}`;
      const run = () => tok.applyChatTemplate(c.messages, { chatTemplate: suite.template, addGenerationPrompt: c.add_generation_prompt, ...c.kwargs });
      if (c.error !== undefined) assert.throws(run, (e: Error) => e.message === c.error, label);
      else assert.equal(run(), c.rendered, label);
      checked++;
    }
  }
  assert.ok(checked > 40, `only ${checked} template cases in the goldens`);
});
