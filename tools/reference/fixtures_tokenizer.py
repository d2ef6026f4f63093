"""Tiny tokenizers and goldens for vlmkit's TypeScript tokenizer and chat-template engine.

Writes, under <out_dir>/:
  tokenizer-bpe/  byte-level BPE in the Qwen2 style (NFC, Split with Qwen2's regex, ByteLevel), added tokens
                  <|endoftext|> <|im_start|> <|im_end|> <image> and a few with lstrip/rstrip/single_word options,
                  a Qwen2 chat template.
  tokenizer-sp/   Llama-2 style: Prepend+Replace normalizer, byte_fallback BPE with <0x00>..<0xFF>, <unk> <s> </s>,
                  TemplateProcessing adding <s>, the Llama-2 chat template.
  tokenizer-components/components_goldens.json: outputs of single normalizers, pre-tokenizers and decoders, and
                  of a few whole tokenizers in other styles (WordPiece/BERT, GPT-2 byte-level with RobertaProcessing,
                  Llama-3 style split with ignore_merges, Mistral style Metaspace), computed with `tokenizers` alone.
Each of the first two folders is saved by transformers (save_pretrained), reloaded with AutoTokenizer, and gets a
tokenizer_goldens.json: encodings with/without special tokens, tokens, decodings, batch padding and
truncation, and chat templates rendered by transformers (tokenizer-bpe also renders several reference templates).

Run (from the repository root):  python3 tools/reference/fixtures_tokenizer.py fixtures
"""

import json
import os
import random
import sys

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
import tokenizers
import transformers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

# --------------------------------------------------------------------------------------------------
# Training text: English prose, code and some non-Latin scripts (a few KB, built in so runs are reproducible).

CORPUS = """The quick brown fox jumps over the lazy dog. The dog was not amused, but the fox didn't care.
It's a truth universally acknowledged that a model in possession of good data must be in want of a tokenizer.
We've seen that they're often used together; I'm sure you'll agree it'd be useful.
Vision-language models read images and text. They describe pictures, answer questions and follow instructions.
A photo of a cat sitting on a red sofa. Two dogs playing in the park with a ball.
The assistant should answer the user's question clearly and politely, in one or two sentences.
Hello world! Hello again, world. How are you today? I am fine, thank you very much.
Numbers like 1, 2, 3, 42, 100, 2024 and 3.14159 appear in text; so do dates such as 2023-10-05.
In the beginning there was the word, and the word was split into tokens, and the tokens were merged.
def add(a, b):
    return a + b

def greet(name):
    print(f"Hello, {name}!")
    return None

for i in range(10):
    if i % 2 == 0:
        print(i)

class Model:
    def __init__(self, hidden_size=64):
        self.hidden_size = hidden_size

function sum(xs) { return xs.reduce((a, b) => a + b, 0); }
const config = { "hidden_size": 64, "num_layers": 2, "vocab_size": 400 };
import torch; x = torch.zeros(2, 3); y = x + 1
SELECT name, age FROM users WHERE age > 30 ORDER BY name;
Le café est délicieux. Où est la bibliothèque? Ça va très bien, merci.
Der schnelle braune Fuchs springt über den faulen Hund. Grüße aus München!
El niño comió una manzana. ¿Dónde está el baño? ¡Qué día tan bonito!
日本語のテキストです。東京は大きな都市です。
中文文本测试。今天天气很好。
Привет, мир! Как дела? Всё хорошо.
Emoji are common too: 😀 🎉 👍 ❤️ 🐱 🐶.
The model outputs a caption: "a small bird on a branch". The caption is short and accurate.
Users ask: What is in this image? The assistant answers: There is a cat on the sofa.
Training loss went down from 2.5 to 0.8 over 1000 steps with a learning rate of 0.0001.
""" * 3

QWEN2_SPLIT = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)

QWEN2_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

LLAMA2_TEMPLATE = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
    "{% set system_message = false %}{% endif %}{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if loop.index0 == 0 and system_message != false %}"
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}"
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}"
)

# Templates in the style of well-known models, rendered by transformers for the goldens.
LLAMA3_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)

QWEN2_VL_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

LLAVA_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] != 'system' %}{{ message['role'].upper() + ': '}}{% endif %}"
    "{# Render all images first #}{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}"
    "{{ '<image>\n' }}{% endfor %}{# Render all text next #}{% if message['role'] != 'assistant' %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] + ' '}}{% endfor %}"
    "{% else %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{% generation %}{{ content['text'] + ' '}}{% endgeneration %}{% endfor %}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)

IDEFICS3_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}"
    "{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)

TOOL_TEMPLATE = """{%- if tools %}<|im_start|>system
You can call these tools:
{%- for tool in tools %}
{{ tool | tojson }}
{%- endfor %}<|im_end|>
{% endif %}
{%- for message in messages %}
{%- if message.role == 'assistant' and message.tool_calls is defined %}<|im_start|>assistant
{%- for call in message.tool_calls %}
<tool_call>{"name": "{{ call.function.name }}", "arguments": {{ call.function.arguments | tojson }}}</tool_call>
{%- endfor %}<|im_end|>
{% elif message.role == 'tool' %}<|im_start|>tool
{{ message.content }}<|im_end|>
{% else %}<|im_start|>{{ message.role }}
{{ message.content }}<|im_end|>
{% endif %}
{%- endfor %}
{%- if add_generation_prompt %}<|im_start|>assistant
{% endif %}
"""

# Exercises the Jinja features chat templates rely on, with trim_blocks/lstrip_blocks whitespace rules.
FEATURES_TEMPLATE = """{#- Jinja features used by chat templates. -#}
{%- set ns = namespace(turns=0, last_role='') -%}
{%- macro render_content(content, sep=' ') -%}
    {%- if content is string -%}
        {{- content | trim -}}
    {%- elif content is iterable and content is not mapping -%}
        {%- for block in content -%}
            {%- if block.type == 'text' -%}{{ block.text }}{%- elif block['type'] == 'image' -%}<image>{%- endif -%}
            {%- if not loop.last %}{{ sep }}{% endif -%}
        {%- endfor -%}
    {%- else -%}
        {{- content | string -}}
    {%- endif -%}
{%- endmacro -%}
{%- if messages[0]['role'] == 'system' %}
SYSTEM({{ messages[0].content | length }}): {{ messages[0]['content'] | upper }}
{%- set rest = messages[1:] %}
{%- else %}
{%- set rest = messages %}
{%- endif %}
{% for m in rest %}
  {% set ns.turns = ns.turns + 1 %}
  [{{ loop.index }}/{{ loop.length }}{{ ' first' if loop.first }}{{ ' last' if loop.last else '' }}] {{ m.role | capitalize }}: {{ render_content(m.content) }}
  {% if loop.previtem is defined %}(after {{ loop.previtem.role }}){% endif %}
  {% set ns.last_role = m.role %}
{% endfor %}
turns={{ ns.turns }} last={{ ns.last_role }} revs={% for m in messages %}{{ loop.revindex }}{{ loop.cycle('a', 'b') }}{% endfor %}
roles={{ messages | map(attribute='role') | unique | list | join('|') }}
users={{ messages | selectattr('role', 'equalto', 'user') | list | length }} others={{ messages | rejectattr('role', 'eq', 'user') | list | length }}
{% if tools is defined and tools is not none %}
tools: {{ tools | tojson }}
{% for t in tools %}{{ t.function.name }}{{ ', ' if not loop.last }}{% endfor %}

pretty: {{ tools[0] | tojson(indent=2) }}
{% endif %}
{%- set d = {'b': 2, 'a': 1, 'c': [1, 'x', none, true, false]} %}
dict: {{ d }} {% for k, v in d | dictsort %}{{ k }}{% endfor %} {% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %} {{ d.get('zz', 'dflt') }} {{ d.keys() | list }} {{ d['a'] }} {{ d.c[1] }}
str: {{ 'a-b-c'.split('-') }} {{ ' a  b '.split() }} {{ 'xxhixx'.strip('x') }} {{ '  pad'.lstrip() }}| {{ 'Hello'.startswith('He') }} {{ 'Hello'.endswith(('lo', 'zz')) }} {{ "they're here".title() }} {{ 'a b'.replace(' ', '_') }} {{ 'MiXeD'.lower() }}{{ 'MiXeD'.upper() }} {{ 'it''s' }} {{ "say \\"hi\\"\\tnow" }}
slices: {{ 'abcdef'[1:4] }} {{ 'abcdef'[::-2] }} {{ [1, 2, 3, 4][-2:] }} {{ messages[-1].role }} {{ 'héllo'[1] }}
math: {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ '3' | int + 4 }} {{ 'ab' * 3 }} {{ [1] + [2] }} {{ 1.5 + 1 }}
logic: {{ true and 'yes' }} {{ false or 'fallback' }} {{ not none }} {{ 1 < 2 < 3 }} {{ 'a' in 'cat' }} {{ 'z' not in ['a'] }} {{ none is none }} {{ undefined_var is defined }} {{ undefined_var | default('def') }} {{ '' | default('empty', true) }} {{ 'b' in {'b': 1} }}
filters: {{ ['b', 'A', 'c'] | sort | join(',') }} {{ [3, 1, 2] | sort(reverse=true) | first }} {{ [3, 1, 2] | max }}{{ [3, 1, 2] | min }}{{ [3, 1, 2] | sum }} {{ 'word ' | trim | replace('w', 'W') }} {{ [1, 2, 3] | reverse | list }} {{ 'hello wORLD-wide' | title }} {{ 'x' ~ 1 ~ none }} {{ messages | length }} {{ messages | last | attr('role') }} {{ 'abc' | list }} {{ '42' | int * 2 }} {{ 'HeLLo' | lower | capitalize }}
{%- set block_var %}Block {{ 1 + 1 }}{% endset %}
{{ block_var }} {% filter upper %}filtered text{% endfilter %} {% with w = 'with-scope' %}{{ w }}{% endwith %}
{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}{% if i > 4 %}{% break %}{% endif %}{{ i }}{% endfor %} {% for x in [] %}never{% else %}empty-else{% endfor %}
{% for x in [1, 2, 3, 4] if x is even %}{{ x }}{% endfor %} {% for a, b in [[1, 2], [3, 4]] %}{{ a + b }}{% endfor %}
{% raw %}{{ not rendered }}{% endraw %}
    {%+ if true %}kept-indent{% endif %}
        {% if true %}stripped-indent{% endif %}
{{- ' joined' }}
{% if add_generation_prompt %}<|im_start|>assistant
{% endif %}
"""

TEXTS = [
    "",
    " ",
    "  ",
    "\n",
    "\n\n",
    "\t",
    " \t\n ",
    "Hello",
    "Hello world",
    " Hello world",
    "Hello world ",
    "  leading and trailing  ",
    "Hello, world! How's it going? I'm fine; they're here, we've seen it, you'd know, she'll go.",
    "HOW'S IT GOING? I'M FINE. WE'LL SEE.",
    "1234567890",
    "3.14159 and 2,718 and 1e-5",
    "Numbers: 7 77 777 7777",
    "def add(a, b):\n    return a + b\n",
    "for (int i = 0; i < n; ++i) { sum += x[i]; }",
    "if x == 1:\n\tprint('tab')\r\n",
    "x = {'key': [1, 2, 3]}  # comment",
    "https://example.com/path?q=1&r=2",
    "café naïve résumé",
    "Crème brûlée à la façon",
    "e\u0301 vs \u00e9",
    "日本語のテキスト",
    "中文测试",
    "한국어",
    "Привет мир",
    "مرحبا بالعالم",
    "😀 🎉👍🏽",
    "👨‍👩‍👧‍👦 family",
    "supercalifragilisticexpialidocious" * 3,
    "a" * 60,
    "<|im_start|>user\nHello<|im_end|>\n",
    "text<|endoftext|>more",
    "<image><image> describe",
    "an <image> inline",
    "<s>already bos</s>",
    "[INST] hi [/INST]",
    "a <mask> b   <mask>",
    "x<sep>   y",
    "blorp blorpy xblorp blorp. _blorp",
    "call <tool_call>{}</tool_call>",
    "say hello world now",
    "\u00a0nbsp\u00a0 and \ufeffbom \u0085nel \u2028ls",
    "\u3000full width space",
    "   multiple    spaces   between   ",
    "Ünïcödé ÇAPS",
    "ﬁ ligature ＡＢＣ",
    "<0x41> literal byte token text",
    "▁already▁has▁metaspace",
    "end with eot <|eot|>   next",
]

BATCH_TEXTS = ["Hello world", "A much longer sentence with many more tokens than the others.", "", "日本語"]

CONVERSATIONS = {
    "user_only": [{"role": "user", "content": "What is in this picture?"}],
    "system_user": [
        {"role": "system", "content": "You are a concise assistant."},
        {"role": "user", "content": "Hello there"},
    ],
    "multi_turn": [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "Hi!"},
        {"role": "assistant", "content": " Hello! How can I help? "},
        {"role": "user", "content": "Tell me a joke.\n"},
    ],
    "ends_with_assistant": [
        {"role": "user", "content": "Count to three."},
        {"role": "assistant", "content": "One, two, three."},
    ],
}

MULTIMODAL_CONVERSATIONS = {
    "image_then_text": [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is shown here?"}]},
    ],
    "two_images_answer": [
        {"role": "system", "content": [{"type": "text", "text": "Describe images."}]},
        {"role": "user", "content": [{"type": "text", "text": "Compare"}, {"type": "image"}, {"type": "image"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "The first is brighter."}]},
        {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "And this?"}]},
    ],
}

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the weather for a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string", "description": "City name, e.g. Paris"}, "days": {"type": "integer"}},
                "required": ["city"],
            },
        },
    },
    {"type": "function", "function": {"name": "now", "description": "Current time \u2014 UTC.", "parameters": {"type": "object", "properties": {}}}},
]

TOOL_CONVERSATION = [
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}}]},
    {"role": "tool", "content": "{\"temp\": 21}"},
    {"role": "assistant", "content": "It is 21 degrees."},
]


def training_lines():
    return CORPUS.splitlines(keepends=True)


def build_bpe_backend():
    backend = Tokenizer(models.BPE(byte_fallback=False))
    backend.normalizer = normalizers.NFC()
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
        ]
    )
    backend.decoder = decoders.ByteLevel()
    backend.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=400, min_frequency=2, show_progress=False, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=[]
    )
    backend.train_from_iterator(training_lines(), trainer=trainer)
    backend.add_special_tokens(
        [
            AddedToken("<|endoftext|>", special=True, normalized=False),
            AddedToken("<|im_start|>", special=True, normalized=False),
            AddedToken("<|im_end|>", special=True, normalized=False),
            AddedToken("<image>", special=True, normalized=False),
            AddedToken("<mask>", special=True, normalized=False, lstrip=True),
        ]
    )
    backend.add_tokens(
        [
            AddedToken("<tool_call>", special=False, normalized=False),
            AddedToken("</tool_call>", special=False, normalized=False),
            AddedToken("<sep>", special=False, normalized=False, rstrip=True),
            AddedToken("blorp", special=False, normalized=True, single_word=True),
        ]
    )
    return backend


def merge_pair(merge):
    if isinstance(merge, str):
        left, right = merge.split(" ", 1)
        return left, right
    return merge[0], merge[1]


def build_sp_backend():
    # Learn merges on Metaspace-split words, then assemble a Llama-2 style tokenizer.json around them.
    trainer_backend = Tokenizer(models.BPE())
    trainer_backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    # A fixed alphabet keeps training deterministic (limit_alphabet alone drops equally rare characters at random);
    # characters outside it are encoded through the <0xNN> byte tokens.
    alphabet = ["\u2581", "\n"] + [chr(c) for c in range(0x21, 0x7F)] + list("éèàçôöüäßñ¿¡")
    trainer = trainers.BpeTrainer(
        vocab_size=230, min_frequency=2, show_progress=False, initial_alphabet=alphabet, limit_alphabet=len(alphabet), special_tokens=[]
    )
    trainer_backend.train_from_iterator(training_lines(), trainer=trainer)
    learned = json.loads(trainer_backend.to_str())["model"]
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for byte in range(256):
        vocab["<0x%02X>" % byte] = len(vocab)
    for token, _ in sorted(learned["vocab"].items(), key=lambda item: item[1]):
        if token not in vocab:
            vocab[token] = len(vocab)
    merges = [" ".join(merge_pair(m)) for m in learned["merges"]]

    def special(content, token_id):
        return {"id": token_id, "content": content, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}

    spec = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [special("<unk>", 0), special("<s>", 1), special("</s>", 2)],
        "normalizer": {
            "type": "Sequence",
            "normalizers": [{"type": "Prepend", "prepend": "\u2581"}, {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}],
        },
        "pre_tokenizer": None,
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [
                {"SpecialToken": {"id": "<s>", "type_id": 0}},
                {"Sequence": {"id": "A", "type_id": 0}},
                {"SpecialToken": {"id": "<s>", "type_id": 1}},
                {"Sequence": {"id": "B", "type_id": 1}},
            ],
            "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}},
        },
        "decoder": {
            "type": "Sequence",
            "decoders": [
                {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
                {"type": "ByteFallback"},
                {"type": "Fuse"},
                {"type": "Strip", "content": " ", "start": 1, "stop": 0},
            ],
        },
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": "<unk>",
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": True,
            "byte_fallback": True,
            "ignore_merges": False,
            "vocab": vocab,
            "merges": merges,
        },
    }
    backend = Tokenizer.from_str(json.dumps(spec))
    backend.add_special_tokens([AddedToken("<image>", special=True, normalized=False), AddedToken("<|eot|>", special=True, normalized=False, rstrip=True)])
    backend.add_tokens([AddedToken("hello world", special=False, normalized=True)])
    return backend


def save_and_reload(backend, folder, chat_template, padding_side, **special_tokens):
    fast = PreTrainedTokenizerFast(
        tokenizer_object=backend, padding_side=padding_side, clean_up_tokenization_spaces=False, model_max_length=4096, **special_tokens
    )
    fast.chat_template = chat_template
    os.makedirs(folder, exist_ok=True)
    fast.save_pretrained(folder)
    try:
        return AutoTokenizer.from_pretrained(folder)
    except Exception as error:  # a tokenizer_class this transformers cannot map: load it generically
        print(f"AutoTokenizer could not load {folder} ({error}); using PreTrainedTokenizerFast", file=sys.stderr)
        return PreTrainedTokenizerFast.from_pretrained(folder)


def ids_of(encoding):
    if hasattr(encoding, "keys") and "input_ids" in encoding:
        encoding = encoding["input_ids"]
    return [int(i) for i in encoding]


def encode_goldens(tok):
    cases = []
    for text in TEXTS:
        ids = ids_of(tok(text))
        plain = ids_of(tok(text, add_special_tokens=False))
        cases.append(
            {
                "text": text,
                "ids": ids,
                "ids_no_special": plain,
                "tokens": tok.convert_ids_to_tokens(plain),
                "decoded": tok.decode(ids),
                "decoded_skip_special": tok.decode(ids, skip_special_tokens=True),
                "truncated_5": ids_of(tok(text, truncation=True, max_length=5)),
            }
        )
    return cases


def decode_goldens(tok):
    rng = random.Random(1234)
    size = len(tok)
    sequences = [[i] for i in range(size)]
    sequences += [[rng.randrange(size) for _ in range(rng.randint(1, 12))] for _ in range(40)]
    return [{"ids": ids, "decoded": tok.decode(ids), "decoded_skip_special": tok.decode(ids, skip_special_tokens=True)} for ids in sequences]


def batch_goldens(tok):
    cases = []
    original_padding, original_truncation = tok.padding_side, tok.truncation_side
    for padding in ["longest", "max_length"]:
        for side in [None, "left", "right"]:
            for truncation in [False, True]:
                for truncation_side in ["right", "left"] if truncation else [None]:
                    kwargs = {"padding": padding}
                    if truncation:
                        kwargs["truncation"] = True
                    if truncation or padding == "max_length":
                        kwargs["max_length"] = 8
                    tok.padding_side = side or original_padding
                    tok.truncation_side = truncation_side or original_truncation
                    out = tok(BATCH_TEXTS, **kwargs)
                    cases.append(
                        {
                            "padding": padding,
                            "padding_side": side,
                            "truncation": truncation,
                            "truncation_side": truncation_side,
                            "max_length": kwargs.get("max_length"),
                            "input_ids": [ids_of(x) for x in out["input_ids"]],
                            "attention_mask": [ids_of(x) for x in out["attention_mask"]],
                        }
                    )
    tok.padding_side, tok.truncation_side = original_padding, original_truncation
    return cases


def render(tok, messages, **kwargs):
    try:
        return {"rendered": tok.apply_chat_template(messages, tokenize=False, **kwargs)}
    except Exception as error:
        return {"error": str(error)}


def chat_goldens(tok):
    cases = []
    for name, messages in CONVERSATIONS.items():
        for add_generation_prompt in [False, True]:
            case = {"name": name, "messages": messages, "add_generation_prompt": add_generation_prompt}
            case.update(render(tok, messages, add_generation_prompt=add_generation_prompt))
            if "rendered" in case:
                case["ids"] = ids_of(tok.apply_chat_template(messages, tokenize=True, add_generation_prompt=add_generation_prompt))
            cases.append(case)
    bad_roles = [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]
    case = {"name": "bad_roles", "messages": bad_roles, "add_generation_prompt": False}
    case.update(render(tok, bad_roles))
    cases.append(case)
    case = {"name": "continue_final_message", "messages": CONVERSATIONS["ends_with_assistant"], "continue_final_message": True}
    case.update(render(tok, CONVERSATIONS["ends_with_assistant"], continue_final_message=True))
    cases.append(case)
    return cases


def template_goldens(tok):
    """Reference templates rendered by transformers with this tokenizer's special tokens."""
    text_convs = {k: CONVERSATIONS[k] for k in ["user_only", "multi_turn"]}
    suites = [
        ("llama3", LLAMA3_TEMPLATE, text_convs, [{"bos_token": "<|begin_of_text|>"}]),
        ("qwen2", QWEN2_TEMPLATE, text_convs, [{}]),
        ("llama2", LLAMA2_TEMPLATE, {**text_convs, "ends_with_assistant": CONVERSATIONS["ends_with_assistant"]}, [{"bos_token": "<s>", "eos_token": "</s>"}]),
        ("qwen2_vl", QWEN2_VL_TEMPLATE, {**MULTIMODAL_CONVERSATIONS, "text": CONVERSATIONS["user_only"]}, [{}, {"add_vision_id": True}]),
        ("llava", LLAVA_TEMPLATE, MULTIMODAL_CONVERSATIONS, [{}]),
        ("idefics3", IDEFICS3_TEMPLATE, MULTIMODAL_CONVERSATIONS, [{}]),
        ("tools", TOOL_TEMPLATE, {"tool_call": TOOL_CONVERSATION}, [{}, {"tools": TOOLS}]),
        ("features", FEATURES_TEMPLATE, {**text_convs, **MULTIMODAL_CONVERSATIONS}, [{}, {"tools": TOOLS}]),
    ]
    out = []
    for name, template, conversations, kwarg_sets in suites:
        cases = []
        for conv_name, messages in conversations.items():
            for kwargs in kwarg_sets:
                for add_generation_prompt in [False, True]:
                    case = {"conversation": conv_name, "kwargs": kwargs, "add_generation_prompt": add_generation_prompt, "messages": messages}
                    case.update(render(tok, messages, chat_template=template, add_generation_prompt=add_generation_prompt, **kwargs))
                    cases.append(case)
        out.append({"name": name, "template": template, "cases": cases})
    return out


def special_goldens(tok):
    names = ["bos_token", "eos_token", "unk_token", "pad_token"]
    info = {name: getattr(tok, name, None) for name in names}
    info.update({name + "_id": getattr(tok, name + "_id", None) for name in names})
    probe = ["<|im_start|>", "<|im_end|>", "<image>", "<s>", "</s>", "<unk>", "Hello", "\u2581the", "not-a-token-at-all", "<0x41>"]
    return {
        "special": info,
        "vocab_size": tok.vocab_size,
        "len": len(tok),
        "all_special_tokens": list(tok.all_special_tokens),
        "added_vocab": {k: int(v) for k, v in tok.get_added_vocab().items()},
        "convert_tokens_to_ids": {t: tok.convert_tokens_to_ids(t) for t in probe},
        "padding_side": tok.padding_side,
    }


def write_goldens(tok, folder, with_templates):
    goldens = {
        "transformers_version": transformers.__version__,
        "tokenizers_version": tokenizers.__version__,
        "tokenizer_class": type(tok).__name__,
        **special_goldens(tok),
        "encode": encode_goldens(tok),
        "decode": decode_goldens(tok),
        "batch": batch_goldens(tok),
        "chat": chat_goldens(tok),
    }
    if with_templates:
        goldens["templates"] = template_goldens(tok)
    with open(os.path.join(folder, "tokenizer_goldens.json"), "w", encoding="utf-8") as f:
        json.dump(goldens, f, ensure_ascii=False, indent=1)
        f.write("\n")


LLAMA3_SPLIT = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
O200K_SPLIT = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)


def component_spec(kind, component):
    """The JSON tokenizers writes for one component (through a throwaway Tokenizer)."""
    holder = Tokenizer(models.BPE())
    setattr(holder, kind, component)
    return json.loads(holder.to_str())[kind]


def normalizer_goldens():
    cases = {
        "nfc": normalizers.NFC(),
        "nfd": normalizers.NFD(),
        "nfkc": normalizers.NFKC(),
        "nfkd": normalizers.NFKD(),
        "lowercase": normalizers.Lowercase(),
        "strip_both": normalizers.Strip(),
        "strip_left": normalizers.Strip(left=True, right=False),
        "strip_accents": normalizers.Sequence([normalizers.NFD(), normalizers.StripAccents()]),
        "replace_regex": normalizers.Replace(Regex(r" {2,}|\t"), "_"),
        "replace_string": normalizers.Replace("a", "AA"),
        "prepend": normalizers.Prepend("\u2581"),
        "bert_default": normalizers.BertNormalizer(),
        "bert_cased": normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=False),
        "sequence": normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase(), normalizers.Strip()]),
    }
    if hasattr(normalizers, "ByteLevel"):
        cases["byte_level"] = normalizers.ByteLevel()
    return [{"name": name, "spec": component_spec("normalizer", n), "outputs": [n.normalize_str(t) for t in TEXTS]} for name, n in cases.items()]


def pre_tokenizer_goldens():
    cases = {
        "byte_level_prefix": pre_tokenizers.ByteLevel(add_prefix_space=True),
        "byte_level": pre_tokenizers.ByteLevel(add_prefix_space=False),
        "byte_level_no_regex": pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        "whitespace": pre_tokenizers.Whitespace(),
        "whitespace_split": pre_tokenizers.WhitespaceSplit(),
        "bert": pre_tokenizers.BertPreTokenizer(),
        "punctuation": pre_tokenizers.Punctuation(),
        "punctuation_merged_previous": pre_tokenizers.Punctuation(behavior="merged_with_previous"),
        "digits_individual": pre_tokenizers.Digits(individual_digits=True),
        "digits_grouped": pre_tokenizers.Digits(individual_digits=False),
        "metaspace_always": pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=True),
        "metaspace_first_nosplit": pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first", split=False),
        "metaspace_never": pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="never", split=True),
        "char_delimiter": pre_tokenizers.CharDelimiterSplit("e"),
        "split_llama3": pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated"),
        "split_qwen2": pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated"),
        "split_o200k": pre_tokenizers.Split(Regex(O200K_SPLIT), behavior="isolated"),
        "split_space_removed": pre_tokenizers.Split(" ", behavior="removed"),
        "split_space_merged_previous": pre_tokenizers.Split(" ", behavior="merged_with_previous"),
        "split_space_merged_next": pre_tokenizers.Split(" ", behavior="merged_with_next"),
        "split_digits_contiguous": pre_tokenizers.Split(Regex(r"\d"), behavior="contiguous"),
        "split_inverted": pre_tokenizers.Split(Regex(r"\s+"), behavior="removed", invert=True),
        "split_possessive_atomic": pre_tokenizers.Split(Regex(r"\p{L}++|(?>\d+)\.|\w+|[^\w\s]"), behavior="isolated"),
        "split_case_insensitive": pre_tokenizers.Split(Regex(r"(?i)hello|(?i:world)|s"), behavior="isolated"),
        "split_escapes": pre_tokenizers.Split(Regex(r"\{[^}]*\}|\.\.\.|[\-\[\]]|\x41"), behavior="isolated"),
        "sequence": pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.Punctuation()]),
    }
    return [
        {"name": name, "spec": component_spec("pre_tokenizer", p), "outputs": [[piece for piece, _ in p.pre_tokenize_str(t)] for t in TEXTS]}
        for name, p in cases.items()
    ]


DECODER_INPUTS = [
    [],
    ["\u2581Hello", "\u2581world", "!"],
    ["Hello", "\u2581\u2581", "wor", "ld", "\u2581"],
    ["\u2581", "<0xE6>", "<0x97>", "<0xA5>", "\u2581ok"],
    ["<0xE6>", "<0x97>", "x", "<0xFF>", "<0x41>", "<0x0A>"],
    ["\u0120Hello", "\u0120w\u00c3\u00b6rld", "\u010a", "<|im_start|>", "a b", "\u00e6\u0139\u00a5"],
    ["un", "##aff", "##able", "run", ",", "don", "'", "t", ".", "##s"],
    ["low</w>", "er</w>", "new", "est</w>"],
    ["  padded  ", " x", "y "],
]


def decoder_goldens():
    cases = {
        "byte_level": decoders.ByteLevel(),
        "metaspace_always": decoders.Metaspace(replacement="\u2581", prepend_scheme="always"),
        "metaspace_never": decoders.Metaspace(replacement="\u2581", prepend_scheme="never"),
        "byte_fallback": decoders.ByteFallback(),
        "fuse": decoders.Fuse(),
        "strip": decoders.Strip(content=" ", left=1, right=1),
        "replace": decoders.Replace("\u2581", " "),
        "wordpiece": decoders.WordPiece(prefix="##", cleanup=True),
        "wordpiece_no_cleanup": decoders.WordPiece(prefix="##", cleanup=False),
        "bpe_suffix": decoders.BPEDecoder(suffix="</w>"),
        "llama2_sequence": decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]),
    }
    out = []
    for name, d in cases.items():
        outputs = []
        for tokens in DECODER_INPUTS:
            try:
                outputs.append(d.decode(tokens))
            except Exception as error:
                outputs.append({"error": str(error)})
        out.append({"name": name, "spec": component_spec("decoder", d), "outputs": outputs})
    return out


def wordpiece_vocab(sp_spec):
    """A WordPiece vocab derived from the Metaspace BPE's (the WordPiece trainer numbers pieces nondeterministically)."""
    sp_vocab = sp_spec["model"]["vocab"]
    pieces = []
    for token in sorted(sp_vocab, key=sp_vocab.get):
        if len(token) > 2 and token.startswith("<") and token.endswith(">"):
            continue  # special and byte tokens
        if token.startswith("\u2581"):
            if len(token) > 1:
                pieces.append(token[1:].lower())
        else:
            pieces.append("##" + token.lower())
    for ch in "abcdefghijklmnopqrstuvwxyz0123456789.,;:!?'\"()[]{}<>/\\-_+=*&%$#@|~`^":
        pieces += [ch, "##" + ch]
    vocab = {}
    for token in ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + pieces:
        vocab.setdefault(token, len(vocab))
    return vocab


def whole_tokenizer_goldens():
    bpe = json.loads(build_bpe_backend().to_str())
    sp = json.loads(build_sp_backend().to_str())

    gpt2 = dict(bpe, normalizer=None, decoder={"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True})
    gpt2["pre_tokenizer"] = component_spec("pre_tokenizer", pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True))
    gpt2["post_processor"] = component_spec("post_processor", processors.RobertaProcessing(("<|im_end|>", 402), ("<|im_start|>", 401)))

    llama3 = dict(bpe)
    llama3["model"] = dict(bpe["model"], ignore_merges=True)
    llama3["pre_tokenizer"] = component_spec(
        "pre_tokenizer",
        pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated"), pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]),
    )
    llama3["post_processor"] = component_spec(
        "post_processor",
        processors.TemplateProcessing(single="<|endoftext|> $A <|im_end|>", pair="<|endoftext|> $A <|im_end|> $B:1 <|im_end|>:1", special_tokens=[("<|endoftext|>", 400), ("<|im_end|>", 402)]),
    )

    mistral = dict(sp, normalizer=None)
    mistral["pre_tokenizer"] = component_spec("pre_tokenizer", pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first", split=False))
    mistral["decoder"] = component_spec("decoder", decoders.Sequence([decoders.ByteFallback(), decoders.Metaspace(replacement="\u2581", prepend_scheme="first"), decoders.Fuse()]))

    wordpiece = Tokenizer(models.WordPiece(vocab=wordpiece_vocab(sp), unk_token="[UNK]", max_input_chars_per_word=30))
    wordpiece.normalizer = normalizers.BertNormalizer(lowercase=True)
    wordpiece.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    wordpiece.decoder = decoders.WordPiece()
    wordpiece.post_processor = processors.BertProcessing(("[SEP]", wordpiece.token_to_id("[SEP]")), ("[CLS]", wordpiece.token_to_id("[CLS]")))

    out = []
    for name, spec in [("gpt2_roberta", gpt2), ("llama3_ignore_merges", llama3), ("mistral_metaspace", mistral), ("bert_wordpiece", json.loads(wordpiece.to_str()))]:
        tk = Tokenizer.from_str(json.dumps(spec))
        cases = []
        for text in TEXTS:
            ids = tk.encode(text).ids
            cases.append(
                {
                    "text": text,
                    "ids": ids,
                    "ids_no_special": tk.encode(text, add_special_tokens=False).ids,
                    "decoded": tk.decode(ids, skip_special_tokens=False),
                    "decoded_skip_special": tk.decode(ids, skip_special_tokens=True),
                }
            )
        out.append({"name": name, "tokenizer": json.loads(tk.to_str()), "cases": cases})
    return out


def write_component_goldens(out_dir):
    folder = os.path.join(out_dir, "tokenizer-components")
    os.makedirs(folder, exist_ok=True)
    goldens = {
        "tokenizers_version": tokenizers.__version__,
        "texts": TEXTS,
        "decoder_inputs": DECODER_INPUTS,
        "normalizers": normalizer_goldens(),
        "pre_tokenizers": pre_tokenizer_goldens(),
        "decoders": decoder_goldens(),
        "tokenizers": whole_tokenizer_goldens(),
    }
    with open(os.path.join(folder, "components_goldens.json"), "w", encoding="utf-8") as f:
        json.dump(goldens, f, ensure_ascii=False)
        f.write("\n")
    return folder


def main(out_dir):
    random.seed(0)
    bpe_dir = os.path.join(out_dir, "tokenizer-bpe")
    bpe = save_and_reload(build_bpe_backend(), bpe_dir, QWEN2_TEMPLATE, "right", eos_token="<|im_end|>", pad_token="<|endoftext|>")
    write_goldens(bpe, bpe_dir, with_templates=True)

    sp_dir = os.path.join(out_dir, "tokenizer-sp")
    sp = save_and_reload(build_sp_backend(), sp_dir, LLAMA2_TEMPLATE, "left", bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<unk>")
    write_goldens(sp, sp_dir, with_templates=False)
    components_dir = write_component_goldens(out_dir)
    print(f"wrote {bpe_dir} ({len(bpe)} tokens), {sp_dir} ({len(sp)} tokens) and {components_dir}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "fixtures")
