// A Jinja2 interpreter for Hugging Face chat templates. It reproduces what transformers renders:
// the sandboxed environment with trim_blocks and lstrip_blocks, the loopcontrols extension, the
// {% generation %} tag, the raise_exception/strftime_now globals and transformers' tojson filter,
// with Python's semantics for values (truthiness, str(), comparisons, string and dict methods).

/** One chat message; content is a string or a list of blocks ({type: "text", text} / {type: "image"} ...). */
export interface ChatMessage {
  role: string;
  content?: unknown;
  [key: string]: unknown;
}

export interface ChatTemplateContext {
  messages: ChatMessage[];
  add_generation_prompt?: boolean;
  bos_token?: string;
  eos_token?: string;
  tools?: unknown[] | null;
  [extra: string]: unknown;
}

/** A template's syntax error or a failure while rendering it; `line` is the template line (1-based). */
export class ChatTemplateError extends Error {
  constructor(
    message: string,
    readonly line?: number,
  ) {
    super(message);
    this.name = "ChatTemplateError";
  }
}

/** Thrown by the template itself through raise_exception(message); the message is the template's. */
export class ChatTemplateRaisedError extends ChatTemplateError {
  constructor(message: string, line?: number) {
    super(message, line);
    this.name = "ChatTemplateRaisedError";
  }
}

// =============================================================================================
// Lexer

type TokenType = "text" | "var_begin" | "var_end" | "block_begin" | "block_end" | "name" | "string" | "integer" | "float" | "op" | "eof";

interface Token {
  type: TokenType;
  value: string;
  line: number;
  number?: number;
}

// Python's str.isspace(): Unicode White_Space plus the ASCII separators \x1c-\x1f.
const PY_WHITESPACE = "\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const PY_SPACE_RE = new RegExp(`[${PY_WHITESPACE}]`, "u");
const PY_TRAILING_SPACE_RE = new RegExp(`[${PY_WHITESPACE}]+$`, "u");
const PY_LEADING_SPACE_RE = new RegExp(`^[${PY_WHITESPACE}]+`, "u");
const PY_ALL_SPACE_RE = new RegExp(`^[${PY_WHITESPACE}]+$`, "u");

const OPERATORS = ["//", "**", "==", "!=", ">=", "<=", "+", "-", "/", "*", "%", "~", "[", "]", "(", ")", "{", "}", "|", ".", ",", ":", ";", "=", "<", ">"];

/** Decodes a Jinja string literal's escapes the way Python's unicode-escape codec does. */
function unescapePython(body: string): string {
  let out = "";
  for (let k = 0; k < body.length; k++) {
    const ch = body[k];
    if (ch !== "\\" || k + 1 >= body.length) {
      out += ch;
      continue;
    }
    const next = body[++k];
    const simple: Record<string, string> = { n: "\n", t: "\t", r: "\r", "\\": "\\", "'": "'", '"': '"', a: "\x07", b: "\b", f: "\f", v: "\v", "\n": "" };
    if (next in simple) {
      out += simple[next];
    } else if (next === "x" && /^[0-9a-fA-F]{2}$/.test(body.slice(k + 1, k + 3))) {
      out += String.fromCharCode(parseInt(body.slice(k + 1, k + 3), 16));
      k += 2;
    } else if (next === "u" && /^[0-9a-fA-F]{4}$/.test(body.slice(k + 1, k + 5))) {
      out += String.fromCharCode(parseInt(body.slice(k + 1, k + 5), 16));
      k += 4;
    } else if (next === "U" && /^[0-9a-fA-F]{8}$/.test(body.slice(k + 1, k + 9))) {
      out += String.fromCodePoint(parseInt(body.slice(k + 1, k + 9), 16));
      k += 8;
    } else if (/[0-7]/.test(next)) {
      const digits = /^[0-7]{1,3}/.exec(body.slice(k))![0];
      out += String.fromCharCode(parseInt(digits, 8));
      k += digits.length - 1;
    } else {
      out += "\\" + next;
    }
  }
  return out;
}

class Lexer {
  private readonly src: string;
  private readonly lineStarts: number[] = [0];
  readonly tokens: Token[] = [];

  constructor(source: string) {
    // Jinja normalizes newlines to "\n" and, without keep_trailing_newline, drops one final newline.
    const lines = source.split(/\r\n|\r|\n/);
    if (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
    this.src = lines.join("\n");
    for (let k = 0; k < this.src.length; k++) if (this.src[k] === "\n") this.lineStarts.push(k + 1);
    this.run();
  }

  lineAt(index: number): number {
    let lo = 0;
    let hi = this.lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.lineStarts[mid] <= index) lo = mid;
      else hi = mid - 1;
    }
    return lo + 1;
  }

  private fail(message: string, index: number): never {
    throw syntaxError(message, this.lineAt(index), this.src);
  }

  private pushText(text: string, index: number): void {
    if (text.length > 0) this.tokens.push({ type: "text", value: text, line: this.lineAt(index) });
  }

  private run(): void {
    const src = this.src;
    let pos = 0;
    // Jinja's lexer state: whether the previous token ended a line (lstrip_blocks then strips at line start).
    let lineStarting = true;
    const tagStart = /\{\{|\{%|\{#/g;
    while (pos < src.length) {
      tagStart.lastIndex = pos;
      const found = tagStart.exec(src);
      if (!found) {
        this.pushText(src.slice(pos), pos);
        break;
      }
      const start = found.index;
      const kind = src[start + 1]; // "{", "%" or "#"
      const signChar = src[start + 2];
      const leftSign = signChar === "-" || signChar === "+" ? signChar : "";
      let text = src.slice(pos, start);
      if (leftSign === "-") {
        text = text.replace(PY_TRAILING_SPACE_RE, "");
      } else if (leftSign !== "+" && kind !== "{") {
        // lstrip_blocks: a block or comment alone on its line takes the line's indentation with it.
        const lineStart = text.lastIndexOf("\n") + 1;
        const tail = text.slice(lineStart);
        if ((lineStart > 0 || lineStarting) && PY_ALL_SPACE_RE.test(tail)) text = text.slice(0, lineStart);
      }
      this.pushText(text, pos);

      if (kind === "#") {
        const end = src.indexOf("#}", start + 2);
        if (end < 0) this.fail("missing end of comment tag", start);
        const rightSign = src[end - 1] === "-" && end - 1 >= start + 2 ? "-" : src[end - 1] === "+" ? "+" : "";
        pos = this.afterTagEnd(end + 2, rightSign, true);
        lineStarting = this.consumedNewline;
        continue;
      }

      if (kind === "%") {
        const raw = /\{%[-+]?\s*raw\s*([-+]?)%\}/y;
        raw.lastIndex = start;
        const rawMatch = raw.exec(src);
        if (rawMatch) {
          const endRaw = /\{%([-+]?)\s*endraw\s*([-+]?)%\}/g;
          endRaw.lastIndex = raw.lastIndex;
          const endMatch = endRaw.exec(src);
          if (!endMatch) this.fail("missing {% endraw %}", start);
          let bodyStart = raw.lastIndex;
          if (rawMatch[1] === "-") while (bodyStart < src.length && PY_SPACE_RE.test(src[bodyStart])) bodyStart++;
          else if (rawMatch[1] !== "+" && src[bodyStart] === "\n") bodyStart++;
          let body = src.slice(bodyStart, endMatch!.index);
          if (endMatch![1] === "-") body = body.replace(PY_TRAILING_SPACE_RE, "");
          this.pushText(body, bodyStart);
          pos = this.afterTagEnd(endRaw.lastIndex, endMatch![2], true);
          lineStarting = this.consumedNewline;
          continue;
        }
      }

      const isBlock = kind === "%";
      this.tokens.push({ type: isBlock ? "block_begin" : "var_begin", value: "", line: this.lineAt(start) });
      pos = this.lexInside(start + 2 + leftSign.length, isBlock);
      lineStarting = this.consumedNewline;
    }
    this.tokens.push({ type: "eof", value: "", line: this.lineAt(src.length) });
  }

  // Whether the last tag end swallowed a newline (trim_blocks or "-%}"), for lstrip_blocks.
  private consumedNewline = false;

  /** Applies the right-hand whitespace control of a tag ending at `end`; returns the new position. */
  private afterTagEnd(end: number, rightSign: string, isBlock: boolean): number {
    const src = this.src;
    this.consumedNewline = false;
    if (rightSign === "-") {
      let p = end;
      while (p < src.length && PY_SPACE_RE.test(src[p])) p++;
      this.consumedNewline = p > end && src[p - 1] === "\n";
      return p;
    }
    if (rightSign !== "+" && isBlock && src[end] === "\n") {
      // trim_blocks: the first newline after a block tag is removed.
      this.consumedNewline = true;
      return end + 1;
    }
    return end;
  }

  /** Lexes the expression tokens of a {{ }} or {% %} tag; returns the position after it. */
  private lexInside(from: number, isBlock: boolean): number {
    const src = this.src;
    const endText = isBlock ? "%}" : "}}";
    let p = from;
    const brackets: string[] = [];
    for (;;) {
      while (p < src.length && /\s/.test(src[p])) p++;
      if (p >= src.length) this.fail(`unexpected end of template, expected '${endText}'`, from);
      // End tags only count when brackets are balanced (so "{{ {'a': {'b': 1}} }}" works).
      if (brackets.length === 0) {
        for (const sign of ["-", "+", ""]) {
          if ((sign === "+" && !isBlock) || !src.startsWith(sign + endText, p)) continue;
          this.tokens.push({ type: isBlock ? "block_end" : "var_end", value: "", line: this.lineAt(p) });
          return this.afterTagEnd(p + sign.length + 2, sign, isBlock);
        }
      }
      const line = this.lineAt(p);
      const ch = src[p];
      if (ch === "'" || ch === '"') {
        const re = ch === "'" ? /'([^'\\]*(?:\\.[^'\\]*)*)'/sy : /"([^"\\]*(?:\\.[^"\\]*)*)"/sy;
        re.lastIndex = p;
        const m = re.exec(src);
        if (!m) this.fail("unterminated string literal", p);
        this.tokens.push({ type: "string", value: unescapePython(m![1]), line });
        p = re.lastIndex;
        continue;
      }
      if (/[0-9]/.test(ch)) {
        const afterDot = p > 0 && src[p - 1] === ".";
        const floatRe = /(\d+_)*\d+((\.(\d+_)*\d+)?e[+-]?(\d+_)*\d+|\.(\d+_)*\d+)/iy;
        const intRe = /0[bB](_?[01])+|0[oO](_?[0-7])+|0[xX](_?[\da-fA-F])+|[1-9](_?\d)*|0(_?0)*/y;
        floatRe.lastIndex = p;
        const fm = afterDot ? null : floatRe.exec(src);
        if (fm) {
          this.tokens.push({ type: "float", value: fm[0], number: parseFloat(fm[0].replaceAll("_", "")), line });
          p = floatRe.lastIndex;
          continue;
        }
        intRe.lastIndex = p;
        const im = intRe.exec(src)!;
        const digits = im[0].replaceAll("_", "");
        const value = /^0[bB]/.test(digits) ? parseInt(digits.slice(2), 2) : /^0[oO]/.test(digits) ? parseInt(digits.slice(2), 8) : Number(digits);
        this.tokens.push({ type: "integer", value: im[0], number: value, line });
        p = intRe.lastIndex;
        continue;
      }
      const nameRe = /[a-zA-Z_][a-zA-Z0-9_]*/y;
      nameRe.lastIndex = p;
      const nm = nameRe.exec(src);
      if (nm) {
        this.tokens.push({ type: "name", value: nm[0], line });
        p = nameRe.lastIndex;
        continue;
      }
      const op = OPERATORS.find((o) => src.startsWith(o, p));
      if (!op) this.fail(`unexpected character ${JSON.stringify(ch)}`, p);
      if (op === "(" || op === "[" || op === "{") brackets.push(op);
      else if (op === ")" || op === "]" || op === "}") {
        const open = brackets.pop();
        const expected = { ")": "(", "]": "[", "}": "{" }[op as ")" | "]" | "}"];
        if (open !== expected) this.fail(`unexpected '${op}'`, p);
      }
      this.tokens.push({ type: "op", value: op!, line });
      p += op!.length;
    }
  }
}

function syntaxError(message: string, line: number, source: string): ChatTemplateError {
  const text = source.split("\n")[line - 1] ?? "";
  const shown = text.length > 160 ? text.slice(0, 160) + "..." : text;
  return new ChatTemplateError(`chat template syntax error at line ${line}: ${message}\n  ${line} | ${shown}`, line);
}

// =============================================================================================
// Syntax tree

type Expr =
  | { kind: "const"; value: unknown; line: number }
  | { kind: "name"; name: string; line: number }
  | { kind: "list"; items: Expr[]; line: number }
  | { kind: "tuple"; items: Expr[]; line: number }
  | { kind: "dict"; pairs: Array<[Expr, Expr]>; line: number }
  | { kind: "getattr"; object: Expr; name: string; line: number }
  | { kind: "getitem"; object: Expr; index: Expr; line: number }
  | { kind: "slice"; object: Expr; start?: Expr; stop?: Expr; step?: Expr; line: number }
  | { kind: "call"; callee: Expr; args: Expr[]; kwargs: Array<[string, Expr]>; line: number }
  | { kind: "filter"; value: Expr | undefined; name: string; args: Expr[]; kwargs: Array<[string, Expr]>; line: number }
  | { kind: "test"; value: Expr; name: string; args: Expr[]; kwargs: Array<[string, Expr]>; line: number }
  | { kind: "unary"; op: "-" | "+" | "not"; operand: Expr; line: number }
  | { kind: "binary"; op: string; left: Expr; right: Expr; line: number }
  | { kind: "compare"; first: Expr; rest: Array<[string, Expr]>; line: number }
  | { kind: "concat"; items: Expr[]; line: number }
  | { kind: "cond"; test: Expr; then: Expr; otherwise?: Expr; line: number };

type SetTarget = { kind: "name"; name: string } | { kind: "names"; names: string[] } | { kind: "attr"; object: string; attr: string };

type Node =
  | { kind: "text"; value: string; line: number }
  | { kind: "output"; expr: Expr; line: number }
  | { kind: "if"; branches: Array<{ test: Expr; body: Node[] }>; otherwise: Node[]; line: number }
  | { kind: "for"; targets: string[]; unpack: boolean; iter: Expr; filter?: Expr; body: Node[]; otherwise: Node[]; line: number }
  | { kind: "set"; target: SetTarget; value: Expr; line: number }
  | { kind: "setblock"; target: SetTarget; body: Node[]; filters: Expr[]; line: number }
  | { kind: "macro"; name: string; params: Array<{ name: string; default?: Expr }>; body: Node[]; line: number }
  | { kind: "with"; assignments: Array<[string, Expr]>; body: Node[]; line: number }
  | { kind: "filterblock"; filters: Expr[]; body: Node[]; line: number }
  | { kind: "block"; body: Node[]; line: number }
  | { kind: "break"; line: number }
  | { kind: "continue"; line: number };

// =============================================================================================
// Parser (follows jinja2/parser.py's grammar and precedence)

class Parser {
  private k = 0;
  constructor(
    private readonly tokens: Token[],
    private readonly source: string,
  ) {}

  private get current(): Token {
    return this.tokens[this.k];
  }
  private look(offset = 1): Token {
    return this.tokens[Math.min(this.k + offset, this.tokens.length - 1)];
  }
  private next(): Token {
    return this.tokens[this.k++];
  }
  private fail(message: string, token: Token = this.current): never {
    throw syntaxError(message, token.line, this.source);
  }
  private isOp(value: string, token: Token = this.current): boolean {
    return token.type === "op" && token.value === value;
  }
  private isName(value: string, token: Token = this.current): boolean {
    return token.type === "name" && token.value === value;
  }
  private describe(token: Token): string {
    switch (token.type) {
      case "block_end":
        return "end of statement block";
      case "var_end":
        return "end of print statement";
      case "eof":
        return "end of template";
      case "string":
        return `string ${JSON.stringify(token.value)}`;
      default:
        return `'${token.value}'`;
    }
  }
  private expectOp(value: string): Token {
    if (!this.isOp(value)) this.fail(`expected '${value}', got ${this.describe(this.current)}`);
    return this.next();
  }
  private expectName(value?: string): Token {
    if (this.current.type !== "name" || (value !== undefined && this.current.value !== value)) {
      this.fail(`expected ${value ? `'${value}'` : "a name"}, got ${this.describe(this.current)}`);
    }
    return this.next();
  }
  private expectType(type: TokenType): Token {
    if (this.current.type !== type) this.fail(`expected ${this.describe({ type, value: "", line: 0 })}, got ${this.describe(this.current)}`);
    return this.next();
  }

  parseTemplate(): Node[] {
    const body = this.subparse([]);
    if (this.current.type !== "eof") this.fail(`unexpected '${this.look().value}'`);
    return body;
  }

  /** Parses nodes until a block tag whose name is in `endNames` (left unconsumed) or the end. */
  private subparse(endNames: string[]): Node[] {
    const body: Node[] = [];
    for (;;) {
      const token = this.current;
      if (token.type === "eof") {
        if (endNames.length > 0) this.fail(`unexpected end of template; expected ${endNames.map((n) => `'${n}'`).join(" or ")}`);
        return body;
      }
      if (token.type === "text") {
        body.push({ kind: "text", value: token.value, line: token.line });
        this.next();
      } else if (token.type === "var_begin") {
        this.next();
        const expr = this.parseTuple(true);
        this.expectType("var_end");
        body.push({ kind: "output", expr, line: token.line });
      } else if (token.type === "block_begin") {
        const keyword = this.look();
        if (keyword.type !== "name") this.fail("expected a tag name after '{%'", keyword);
        if (endNames.includes(keyword.value)) return body;
        this.next();
        body.push(this.parseStatement());
      } else {
        this.fail(`unexpected ${this.describe(token)}`);
      }
    }
  }

  /** Consumes `{% name %}` (the closing tag of a block). */
  private closeTag(name: string): void {
    this.expectType("block_begin");
    this.expectName(name);
    this.expectType("block_end");
  }

  private parseStatement(): Node {
    const keyword = this.next();
    const line = keyword.line;
    switch (keyword.value) {
      case "if": {
        const branches: Array<{ test: Expr; body: Node[] }> = [];
        let test = this.parseTuple(false);
        this.expectType("block_end");
        let otherwise: Node[] = [];
        for (;;) {
          const body = this.subparse(["elif", "else", "endif"]);
          branches.push({ test, body });
          this.expectType("block_begin");
          const tag = this.next().value;
          if (tag === "elif") {
            test = this.parseTuple(false);
            this.expectType("block_end");
            continue;
          }
          this.expectType("block_end");
          if (tag === "else") {
            otherwise = this.subparse(["endif"]);
            this.closeTag("endif");
          }
          break;
        }
        return { kind: "if", branches, otherwise, line };
      }
      case "for": {
        const { names, unpack } = this.parseAssignNames();
        this.expectName("in");
        const iter = this.parseTuple(false, ["recursive"]);
        let filter: Expr | undefined;
        if (this.isName("if")) {
          this.next();
          filter = this.parseExpression(true);
        }
        if (this.isName("recursive")) this.fail("recursive loops are not supported");
        this.expectType("block_end");
        const body = this.subparse(["endfor", "else"]);
        let otherwise: Node[] = [];
        if (this.isName("else", this.look())) {
          this.closeTag("else");
          otherwise = this.subparse(["endfor"]);
        }
        this.closeTag("endfor");
        return { kind: "for", targets: names, unpack, iter, filter, body, otherwise, line };
      }
      case "set": {
        const target = this.parseSetTarget();
        if (this.isOp("=")) {
          this.next();
          const value = this.parseTuple(true);
          this.expectType("block_end");
          return { kind: "set", target, value, line };
        }
        const filters: Expr[] = [];
        while (this.isOp("|")) {
          this.next();
          filters.push(this.parseFilterCall(undefined));
        }
        this.expectType("block_end");
        const body = this.subparse(["endset"]);
        this.closeTag("endset");
        return { kind: "setblock", target, body, filters, line };
      }
      case "macro": {
        const name = this.expectName().value;
        this.expectOp("(");
        const params: Array<{ name: string; default?: Expr }> = [];
        while (!this.isOp(")")) {
          if (params.length > 0) this.expectOp(",");
          if (this.isOp(")")) break;
          const param = this.expectName().value;
          let defaultValue: Expr | undefined;
          if (this.isOp("=")) {
            this.next();
            defaultValue = this.parseExpression(true);
          }
          params.push({ name: param, default: defaultValue });
        }
        this.expectOp(")");
        this.expectType("block_end");
        const body = this.subparse(["endmacro"]);
        this.closeTag("endmacro");
        return { kind: "macro", name, params, body, line };
      }
      case "with": {
        const assignments: Array<[string, Expr]> = [];
        while (this.current.type !== "block_end") {
          if (assignments.length > 0) this.expectOp(",");
          const name = this.expectName().value;
          this.expectOp("=");
          assignments.push([name, this.parseExpression(true)]);
        }
        this.expectType("block_end");
        const body = this.subparse(["endwith"]);
        this.closeTag("endwith");
        return { kind: "with", assignments, body, line };
      }
      case "filter": {
        const filters = [this.parseFilterCall(undefined)];
        while (this.isOp("|")) {
          this.next();
          filters.push(this.parseFilterCall(undefined));
        }
        this.expectType("block_end");
        const body = this.subparse(["endfilter"]);
        this.closeTag("endfilter");
        return { kind: "filterblock", filters, body, line };
      }
      case "generation": {
        // transformers' AssistantTracker: marks assistant text; rendering is unchanged.
        this.expectType("block_end");
        const body = this.subparse(["endgeneration"]);
        this.closeTag("endgeneration");
        return { kind: "block", body, line };
      }
      case "break":
      case "continue":
        this.expectType("block_end");
        return { kind: keyword.value, line };
      case "include":
      case "import":
      case "from":
      case "extends":
      case "block":
      case "call":
        return this.fail(`the '${keyword.value}' tag is not supported in chat templates`, keyword);
      default:
        return this.fail(`unknown tag '${keyword.value}'`, keyword);
    }
  }

  private parseAssignNames(): { names: string[]; unpack: boolean } {
    const parenthesized = this.isOp("(");
    if (parenthesized) this.next();
    const names = [this.expectName().value];
    let unpack = parenthesized;
    while (this.isOp(",")) {
      this.next();
      unpack = true;
      if (this.current.type !== "name" || this.isName("in")) break;
      names.push(this.expectName().value);
    }
    if (parenthesized) this.expectOp(")");
    return { names, unpack };
  }

  private parseSetTarget(): SetTarget {
    if (this.current.type === "name" && this.isOp(".", this.look())) {
      const object = this.next().value;
      this.next();
      const attr = this.expectName().value;
      return { kind: "attr", object, attr };
    }
    const { names, unpack } = this.parseAssignNames();
    return unpack ? { kind: "names", names } : { kind: "name", name: names[0] };
  }

  // ---- expressions

  /** A comma-separated list becomes a tuple; a single expression stays itself. */
  private parseTuple(withCondexpr: boolean, extraEnd: string[] = []): Expr {
    const line = this.current.line;
    const items: Expr[] = [];
    let sawComma = false;
    for (;;) {
      if (items.length > 0) {
        if (!this.isOp(",")) break;
        this.next();
        sawComma = true;
      }
      if (this.isTupleEnd(extraEnd)) break;
      items.push(this.parseExpression(withCondexpr));
    }
    if (!sawComma) {
      if (items.length === 0) this.fail(`expected an expression, got ${this.describe(this.current)}`);
      return items[0];
    }
    return { kind: "tuple", items, line };
  }

  private isTupleEnd(extraEnd: string[]): boolean {
    const t = this.current;
    if (t.type === "var_end" || t.type === "block_end" || t.type === "eof") return true;
    if (this.isOp(")")) return true;
    return t.type === "name" && extraEnd.includes(t.value);
  }

  private parseExpression(withCondexpr: boolean): Expr {
    return withCondexpr ? this.parseCondexpr() : this.parseOr();
  }

  private parseCondexpr(): Expr {
    const line = this.current.line;
    let expr = this.parseOr();
    while (this.isName("if")) {
      this.next();
      const test = this.parseOr();
      let otherwise: Expr | undefined;
      if (this.isName("else")) {
        this.next();
        otherwise = this.parseCondexpr();
      }
      expr = { kind: "cond", test, then: expr, otherwise, line };
    }
    return expr;
  }

  private parseOr(): Expr {
    let left = this.parseAnd();
    while (this.isName("or")) {
      const line = this.next().line;
      left = { kind: "binary", op: "or", left, right: this.parseAnd(), line };
    }
    return left;
  }

  private parseAnd(): Expr {
    let left = this.parseNot();
    while (this.isName("and")) {
      const line = this.next().line;
      left = { kind: "binary", op: "and", left, right: this.parseNot(), line };
    }
    return left;
  }

  private parseNot(): Expr {
    if (this.isName("not")) {
      const line = this.next().line;
      return { kind: "unary", op: "not", operand: this.parseNot(), line };
    }
    return this.parseCompare();
  }

  private parseCompare(): Expr {
    const line = this.current.line;
    const first = this.parseMath1();
    const rest: Array<[string, Expr]> = [];
    for (;;) {
      const t = this.current;
      if (t.type === "op" && ["==", "!=", "<", ">", "<=", ">="].includes(t.value)) {
        this.next();
        rest.push([t.value, this.parseMath1()]);
      } else if (this.isName("in")) {
        this.next();
        rest.push(["in", this.parseMath1()]);
      } else if (this.isName("not") && this.isName("in", this.look())) {
        this.next();
        this.next();
        rest.push(["notin", this.parseMath1()]);
      } else break;
    }
    return rest.length === 0 ? first : { kind: "compare", first, rest, line };
  }

  private parseMath1(): Expr {
    let left = this.parseConcat();
    while (this.isOp("+") || this.isOp("-")) {
      const t = this.next();
      left = { kind: "binary", op: t.value, left, right: this.parseConcat(), line: t.line };
    }
    return left;
  }

  private parseConcat(): Expr {
    const line = this.current.line;
    const items = [this.parseMath2()];
    while (this.isOp("~")) {
      this.next();
      items.push(this.parseMath2());
    }
    return items.length === 1 ? items[0] : { kind: "concat", items, line };
  }

  private parseMath2(): Expr {
    let left = this.parsePow();
    while (this.isOp("*") || this.isOp("/") || this.isOp("//") || this.isOp("%")) {
      const t = this.next();
      left = { kind: "binary", op: t.value, left, right: this.parsePow(), line: t.line };
    }
    return left;
  }

  private parsePow(): Expr {
    let left = this.parseUnary(true);
    while (this.isOp("**")) {
      const t = this.next();
      left = { kind: "binary", op: "**", left, right: this.parseUnary(true), line: t.line };
    }
    return left;
  }

  private parseUnary(withFilter: boolean): Expr {
    const t = this.current;
    let node: Expr;
    if (this.isOp("-") || this.isOp("+")) {
      this.next();
      node = { kind: "unary", op: t.value as "-" | "+", operand: this.parseUnary(false), line: t.line };
    } else {
      node = this.parsePrimary();
    }
    node = this.parsePostfix(node);
    if (withFilter) node = this.parseFilterExpr(node);
    return node;
  }

  private parsePrimary(): Expr {
    const t = this.current;
    const line = t.line;
    if (t.type === "name") {
      this.next();
      if (t.value === "true" || t.value === "True") return { kind: "const", value: true, line };
      if (t.value === "false" || t.value === "False") return { kind: "const", value: false, line };
      if (t.value === "none" || t.value === "None") return { kind: "const", value: null, line };
      return { kind: "name", name: t.value, line };
    }
    if (t.type === "string") {
      let value = "";
      while (this.current.type === "string") value += this.next().value;
      return { kind: "const", value, line };
    }
    if (t.type === "integer" || t.type === "float") {
      this.next();
      return { kind: "const", value: t.number, line };
    }
    if (this.isOp("(")) {
      this.next();
      if (this.isOp(")")) {
        this.next();
        return { kind: "tuple", items: [], line };
      }
      const first = this.parseExpression(true);
      if (this.isOp(")")) {
        this.next();
        return first;
      }
      const items = [first];
      while (this.isOp(",")) {
        this.next();
        if (this.isOp(")")) break;
        items.push(this.parseExpression(true));
      }
      this.expectOp(")");
      return { kind: "tuple", items, line };
    }
    if (this.isOp("[")) {
      this.next();
      const items: Expr[] = [];
      while (!this.isOp("]")) {
        if (items.length > 0) this.expectOp(",");
        if (this.isOp("]")) break;
        items.push(this.parseExpression(true));
      }
      this.expectOp("]");
      return { kind: "list", items, line };
    }
    if (this.isOp("{")) {
      this.next();
      const pairs: Array<[Expr, Expr]> = [];
      while (!this.isOp("}")) {
        if (pairs.length > 0) this.expectOp(",");
        if (this.isOp("}")) break;
        const key = this.parseExpression(true);
        this.expectOp(":");
        pairs.push([key, this.parseExpression(true)]);
      }
      this.expectOp("}");
      return { kind: "dict", pairs, line };
    }
    return this.fail(`unexpected ${this.describe(t)}`);
  }

  private parsePostfix(node: Expr): Expr {
    for (;;) {
      if (this.isOp(".")) {
        const t = this.next();
        const attr = this.current;
        if (attr.type === "name") {
          this.next();
          node = { kind: "getattr", object: node, name: attr.value, line: t.line };
        } else if (attr.type === "integer") {
          this.next();
          node = { kind: "getitem", object: node, index: { kind: "const", value: attr.number, line: t.line }, line: t.line };
        } else this.fail("expected an attribute name after '.'");
      } else if (this.isOp("[")) {
        node = this.parseSubscript(node);
      } else if (this.isOp("(")) {
        node = this.parseCall(node);
      } else return node;
    }
  }

  private parseSubscript(object: Expr): Expr {
    const line = this.next().line; // "["
    const parts: Array<Expr | { slice: [Expr?, Expr?, Expr?] }> = [];
    while (!this.isOp("]")) {
      if (parts.length > 0) this.expectOp(",");
      parts.push(this.parseSubscribed());
    }
    this.expectOp("]");
    if (parts.length !== 1) {
      if (parts.some((p) => "slice" in p)) this.fail("multi-dimensional slices are not supported");
      return { kind: "getitem", object, index: { kind: "tuple", items: parts as Expr[], line }, line };
    }
    const only = parts[0];
    if ("slice" in only) return { kind: "slice", object, start: only.slice[0], stop: only.slice[1], step: only.slice[2], line };
    return { kind: "getitem", object, index: only as Expr, line };
  }

  private parseSubscribed(): Expr | { slice: [Expr?, Expr?, Expr?] } {
    let start: Expr | undefined;
    if (!this.isOp(":")) {
      start = this.parseExpression(true);
      if (!this.isOp(":")) return start;
    }
    this.next(); // ":"
    let stop: Expr | undefined;
    let step: Expr | undefined;
    if (!this.isOp("]") && !this.isOp(",") && !this.isOp(":")) stop = this.parseExpression(true);
    if (this.isOp(":")) {
      this.next();
      if (!this.isOp("]") && !this.isOp(",")) step = this.parseExpression(true);
    }
    return { slice: [start, stop, step] };
  }

  private parseCallArgs(): { args: Expr[]; kwargs: Array<[string, Expr]> } {
    this.expectOp("(");
    const args: Expr[] = [];
    const kwargs: Array<[string, Expr]> = [];
    while (!this.isOp(")")) {
      if (args.length + kwargs.length > 0) {
        this.expectOp(",");
        if (this.isOp(")")) break;
      }
      if (this.isOp("*") || this.isOp("**")) this.fail("*args and **kwargs in calls are not supported");
      if (this.current.type === "name" && this.isOp("=", this.look())) {
        const key = this.next().value;
        this.next();
        kwargs.push([key, this.parseExpression(true)]);
      } else {
        if (kwargs.length > 0) this.fail("positional argument after a keyword argument");
        args.push(this.parseExpression(true));
      }
    }
    this.expectOp(")");
    return { args, kwargs };
  }

  private parseCall(callee: Expr): Expr {
    const line = this.current.line;
    const { args, kwargs } = this.parseCallArgs();
    return { kind: "call", callee, args, kwargs, line };
  }

  private parseFilterCall(value: Expr | undefined): Expr {
    const t = this.expectName();
    let name = t.value;
    while (this.isOp(".")) {
      this.next();
      name += "." + this.expectName().value;
    }
    const { args, kwargs } = this.isOp("(") ? this.parseCallArgs() : { args: [], kwargs: [] };
    return { kind: "filter", value, name, args, kwargs, line: t.line };
  }

  private parseFilterExpr(node: Expr): Expr {
    for (;;) {
      if (this.isOp("|")) {
        this.next();
        node = this.parseFilterCall(node);
      } else if (this.isName("is")) {
        node = this.parseTest(node);
      } else if (this.isOp("(")) {
        node = this.parseCall(node);
      } else return node;
    }
  }

  private parseTest(value: Expr): Expr {
    const line = this.next().line; // "is"
    let negated = false;
    if (this.isName("not")) {
      this.next();
      negated = true;
    }
    let name = this.expectName().value;
    while (this.isOp(".")) {
      this.next();
      name += "." + this.expectName().value;
    }
    let args: Expr[] = [];
    let kwargs: Array<[string, Expr]> = [];
    const t = this.current;
    if (this.isOp("(")) {
      ({ args, kwargs } = this.parseCallArgs());
    } else if (
      (["name", "string", "integer", "float"].includes(t.type) || this.isOp("[") || this.isOp("{")) &&
      !(t.type === "name" && ["else", "or", "and"].includes(t.value))
    ) {
      if (this.isName("is")) this.fail("you cannot chain multiple tests with 'is'");
      args = [this.parsePostfix(this.parsePrimary())];
    }
    const test: Expr = { kind: "test", value, name, args, kwargs, line };
    return negated ? { kind: "unary", op: "not", operand: test, line } : test;
  }
}

// =============================================================================================
// Values with Python semantics

/** Jinja's Undefined: renders as "", is falsy and iterates as empty; most other uses raise. */
class Undefined {
  constructor(readonly hint: string) {}
}

/** A callable value: globals, macros, bound methods of strings/lists/dicts. */
class PyFunction {
  constructor(
    readonly name: string,
    readonly call: (args: unknown[], kwargs: Record<string, unknown>) => unknown,
  ) {}
}

/** jinja2's namespace(): the one object whose attributes {% set ns.x = ... %} may assign. */
class Namespace {
  readonly attrs = new Map<string, unknown>();
}

class LoopContext {
  constructor(
    readonly items: unknown[],
    public index0: number,
  ) {}
  attr(name: string): unknown {
    const length = this.items.length;
    switch (name) {
      case "index":
        return this.index0 + 1;
      case "index0":
        return this.index0;
      case "revindex":
        return length - this.index0;
      case "revindex0":
        return length - this.index0 - 1;
      case "first":
        return this.index0 === 0;
      case "last":
        return this.index0 === length - 1;
      case "length":
        return length;
      case "depth":
        return 1;
      case "depth0":
        return 0;
      case "previtem":
        return this.index0 > 0 ? this.items[this.index0 - 1] : new Undefined("there is no previous item");
      case "nextitem":
        return this.index0 < length - 1 ? this.items[this.index0 + 1] : new Undefined("there is no next item");
      case "cycle":
        return new PyFunction("cycle", (args) => {
          if (args.length === 0) throw new TypeError("no items for cycling given");
          return args[this.index0 % args.length];
        });
      default:
        return new Undefined(`'LoopContext object' has no attribute '${name}'`);
    }
  }
}

class UndefinedError extends Error {}
class SecurityError extends Error {}

const isUndefined = (v: unknown): v is Undefined => v instanceof Undefined;

function isMapping(v: unknown): v is Record<string, unknown> {
  return (
    typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Undefined) && !(v instanceof PyFunction) &&
    !(v instanceof Namespace) && !(v instanceof LoopContext)
  );
}

const hasOwn = (obj: object, key: string) => Object.prototype.hasOwnProperty.call(obj, key);

function typeName(v: unknown): string {
  if (v === null) return "NoneType";
  if (v instanceof Undefined) return "Undefined";
  if (typeof v === "boolean") return "bool";
  if (typeof v === "number") return Number.isInteger(v) ? "int" : "float";
  if (typeof v === "string") return "str";
  if (Array.isArray(v)) return "list";
  if (v instanceof PyFunction) return "function";
  if (v instanceof Namespace) return "Namespace";
  if (v instanceof LoopContext) return "LoopContext";
  return "dict";
}

function failUndefined(v: Undefined): never {
  throw new UndefinedError(v.hint);
}

function truthy(v: unknown): boolean {
  if (v === null || v === undefined || v instanceof Undefined) return false;
  if (typeof v === "boolean") return v;
  if (typeof v === "number") return v !== 0 && !Number.isNaN(v);
  if (typeof v === "string") return v.length > 0;
  if (Array.isArray(v)) return v.length > 0;
  if (isMapping(v)) return Object.keys(v).length > 0;
  return true;
}

/** Python's repr of a float (shortest round-trip digits, exponent from 1e16 and below 1e-4). */
function pyFloat(x: number): string {
  if (Number.isNaN(x)) return "nan";
  if (!Number.isFinite(x)) return x > 0 ? "inf" : "-inf";
  if (Number.isInteger(x) && Math.abs(x) < 1e16) return String(x);
  const abs = Math.abs(x);
  if (abs >= 1e16 || abs < 1e-4) {
    const [mantissa, exponent] = x.toExponential().split("e");
    const sign = exponent.startsWith("-") ? "-" : "+";
    const digits = exponent.replace(/^[+-]/, "").padStart(2, "0");
    return `${mantissa}e${sign}${digits}`;
  }
  return String(x);
}

function pyReprString(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of s) {
    const code = ch.codePointAt(0)!;
    if (ch === quote || ch === "\\") out += "\\" + ch;
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (code < 0x20 || (code >= 0x7f && code < 0xa0)) out += "\\x" + code.toString(16).padStart(2, "0");
    else if (/[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}]/u.test(ch) || (/\p{Zs}/u.test(ch) && ch !== " ")) {
      out += code > 0xffff ? "\\U" + code.toString(16).padStart(8, "0") : code > 0xff ? "\\u" + code.toString(16).padStart(4, "0") : "\\x" + code.toString(16).padStart(2, "0");
    } else out += ch;
  }
  return out + quote;
}

function pyRepr(v: unknown): string {
  return typeof v === "string" ? pyReprString(v) : pyStr(v);
}

/** Python's str() of a value, which is what {{ }} prints. */
function pyStr(v: unknown): string {
  if (typeof v === "string") return v;
  if (v === undefined || v instanceof Undefined) return "";
  if (v === null) return "None";
  if (typeof v === "boolean") return v ? "True" : "False";
  if (typeof v === "number") return pyFloat(v);
  if (Array.isArray(v)) return "[" + v.map(pyRepr).join(", ") + "]";
  if (v instanceof PyFunction) return `<function ${v.name}>`;
  if (v instanceof Namespace) return `<Namespace ${[...v.attrs].map(([k, x]) => `${k}=${pyRepr(x)}`).join(", ")}>`;
  if (v instanceof LoopContext) return `<LoopContext ${v.index0 + 1}/${v.items.length}>`;
  if (isMapping(v)) return "{" + Object.entries(v).map(([k, x]) => `${pyReprString(k)}: ${pyRepr(x)}`).join(", ") + "}";
  return String(v);
}

function pyEquals(a: unknown, b: unknown): boolean {
  if (a instanceof Undefined || b instanceof Undefined) return a instanceof Undefined && b instanceof Undefined;
  if ((typeof a === "number" || typeof a === "boolean") && (typeof b === "number" || typeof b === "boolean")) return Number(a) === Number(b);
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, k) => pyEquals(x, b[k]));
  if (isMapping(a) && isMapping(b)) {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length && keys.every((k) => hasOwn(b, k) && pyEquals(a[k], b[k]));
  }
  return a === b;
}

function comparePy(a: unknown, b: unknown, op: string): number {
  if (a instanceof Undefined) failUndefined(a);
  if (b instanceof Undefined) failUndefined(b);
  if ((typeof a === "number" || typeof a === "boolean") && (typeof b === "number" || typeof b === "boolean")) {
    return Number(a) < Number(b) ? -1 : Number(a) > Number(b) ? 1 : 0;
  }
  if (typeof a === "string" && typeof b === "string") {
    const x = [...a];
    const y = [...b];
    for (let k = 0; k < Math.min(x.length, y.length); k++) {
      const d = x[k].codePointAt(0)! - y[k].codePointAt(0)!;
      if (d !== 0) return d < 0 ? -1 : 1;
    }
    return x.length - y.length < 0 ? -1 : x.length > y.length ? 1 : 0;
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    for (let k = 0; k < Math.min(a.length, b.length); k++) {
      if (!pyEquals(a[k], b[k])) return comparePy(a[k], b[k], op);
    }
    return a.length < b.length ? -1 : a.length > b.length ? 1 : 0;
  }
  throw new TypeError(`'${op}' not supported between instances of '${typeName(a)}' and '${typeName(b)}'`);
}

function pyContains(container: unknown, item: unknown): boolean {
  if (container instanceof Undefined) return false;
  if (typeof container === "string") {
    if (typeof item !== "string") throw new TypeError(`'in <string>' requires string as left operand, not ${typeName(item)}`);
    return container.includes(item);
  }
  if (Array.isArray(container)) return container.some((x) => pyEquals(x, item));
  if (isMapping(container)) return typeof item === "string" && hasOwn(container, item);
  throw new TypeError(`argument of type '${typeName(container)}' is not iterable`);
}

/** The items a for loop (or list()) sees. */
function iterate(v: unknown): unknown[] {
  if (v instanceof Undefined) return [];
  if (Array.isArray(v)) return v;
  if (typeof v === "string") return [...v];
  if (isMapping(v)) return Object.keys(v);
  throw new TypeError(`'${typeName(v)}' object is not iterable`);
}

function lengthOf(v: unknown): number {
  if (v instanceof Undefined) return 0;
  if (typeof v === "string") return [...v].length;
  if (Array.isArray(v)) return v.length;
  if (isMapping(v)) return Object.keys(v).length;
  throw new TypeError(`object of type '${typeName(v)}' has no len()`);
}

function normalizeIndex(index: number, length: number): number {
  return index < 0 ? index + length : index;
}

function pySlice(value: unknown, start: unknown, stop: unknown, step: unknown): unknown {
  if (value instanceof Undefined) failUndefined(value);
  const isString = typeof value === "string";
  const items: unknown[] = isString ? [...(value as string)] : Array.isArray(value) ? value : iterate(value);
  const n = items.length;
  const stepValue = step === undefined || step === null ? 1 : Number(step);
  if (stepValue === 0) throw new Error("slice step cannot be zero");
  const clamp = (v: unknown, fallback: number, low: number, high: number) => {
    if (v === undefined || v === null) return fallback;
    let x = Number(v);
    if (x < 0) x += n;
    return Math.min(Math.max(x, low), high);
  };
  const out: unknown[] = [];
  if (stepValue > 0) {
    const from = clamp(start, 0, 0, n);
    const to = clamp(stop, n, 0, n);
    for (let k = from; k < to; k += stepValue) out.push(items[k]);
  } else {
    const from = clamp(start, n - 1, -1, n - 1);
    const to = clamp(stop, -1, -1, n - 1);
    for (let k = from; k > to; k += stepValue) out.push(items[k]);
  }
  return isString ? out.join("") : out;
}

function pyStripChars(s: string, chars: unknown, left: boolean, right: boolean): string {
  if (chars === undefined || chars === null) {
    let out = s;
    if (left) out = out.replace(PY_LEADING_SPACE_RE, "");
    if (right) out = out.replace(PY_TRAILING_SPACE_RE, "");
    return out;
  }
  const set = new Set([...String(chars)]);
  const cps = [...s];
  let a = 0;
  let b = cps.length;
  if (left) while (a < b && set.has(cps[a])) a++;
  if (right) while (b > a && set.has(cps[b - 1])) b--;
  return cps.slice(a, b).join("");
}

function pySplit(s: string, sep: unknown, maxsplit: number): string[] {
  if (sep === undefined || sep === null) {
    const out: string[] = [];
    let rest = s.replace(PY_LEADING_SPACE_RE, "");
    while (rest.length > 0) {
      if (maxsplit >= 0 && out.length === maxsplit) {
        out.push(rest);
        break;
      }
      const m = PY_SPACE_RE.exec(rest);
      if (!m) {
        out.push(rest);
        break;
      }
      out.push(rest.slice(0, m.index));
      rest = rest.slice(m.index).replace(PY_LEADING_SPACE_RE, "");
    }
    return out;
  }
  const separator = String(sep);
  if (separator === "") throw new Error("ValueError: empty separator");
  const parts = s.split(separator);
  if (maxsplit < 0 || parts.length <= maxsplit + 1) return parts;
  return [...parts.slice(0, maxsplit), parts.slice(maxsplit).join(separator)];
}

const isCased = (ch: string) => ch.toLowerCase() !== ch.toUpperCase();

function pyTitle(s: string): string {
  let out = "";
  let previousCased = false;
  for (const ch of s) {
    if (isCased(ch)) {
      out += previousCased ? ch.toLowerCase() : ch.toUpperCase();
      previousCased = true;
    } else {
      out += ch;
      previousCased = false;
    }
  }
  return out;
}

function pyCapitalize(s: string): string {
  const cps = [...s];
  if (cps.length === 0) return "";
  return cps[0].toUpperCase() + cps.slice(1).join("").toLowerCase();
}

/** printf-style formatting for `"%s" % value` and the format filter. */
function percentFormat(template: string, values: unknown): string {
  const args = Array.isArray(values) ? values : [values];
  let k = 0;
  return template.replace(/%(\([^)]*\))?([-+ 0#]*)(\d+|\*)?(?:\.(\d+))?([sdirfeEgGxXoc%])/g, (whole, key, flags, width, precision, conversion) => {
    if (conversion === "%") return "%";
    const value = key ? (values as Record<string, unknown>)[key.slice(1, -1)] : args[k++];
    let text: string;
    switch (conversion) {
      case "s":
        text = pyStr(value);
        break;
      case "r":
        text = pyRepr(value);
        break;
      case "d":
      case "i":
        text = String(Math.trunc(Number(value)));
        break;
      case "f":
        text = Number(value).toFixed(precision === undefined ? 6 : Number(precision));
        break;
      case "x":
        text = Math.trunc(Number(value)).toString(16);
        break;
      case "X":
        text = Math.trunc(Number(value)).toString(16).toUpperCase();
        break;
      case "c":
        text = typeof value === "number" ? String.fromCodePoint(value) : String(value);
        break;
      default:
        text = pyStr(value);
    }
    if (width && width !== "*") {
      const w = Number(width);
      text = flags.includes("-") ? text.padEnd(w) : text.padStart(w, flags.includes("0") && conversion !== "s" ? "0" : " ");
    }
    return text;
  });
}

/** str.format with {} / {0} / {name} fields (no format specs beyond plain conversion). */
function braceFormat(template: string, args: unknown[], kwargs: Record<string, unknown>): string {
  let auto = 0;
  return template.replace(/\{\{|\}\}|\{([^{}]*)\}/g, (whole, field: string | undefined) => {
    if (whole === "{{") return "{";
    if (whole === "}}") return "}";
    const name = (field ?? "").split(/[:!]/)[0];
    const value = name === "" ? args[auto++] : /^\d+$/.test(name) ? args[Number(name)] : kwargs[name];
    return pyStr(value);
  });
}

/** transformers' tojson: json.dumps(x, ensure_ascii=False, indent=indent, separators=..., sort_keys=...). */
function pyJsonDumps(value: unknown, indent: number | string | null, separators: [string, string] | null, sortKeys: boolean, ensureAscii = false): string {
  const quote = (s: string) => {
    const json = JSON.stringify(s);
    // ensure_ascii writes every non-ASCII UTF-16 unit as \uXXXX (surrogate pairs as two escapes).
    return ensureAscii ? json.replace(/[\u0080-\uffff]/g, (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0")) : json;
  };
  const indentText = indent === null || indent === undefined ? null : typeof indent === "number" ? " ".repeat(indent) : String(indent);
  const [itemSep, keySep] = separators ?? (indentText === null ? [", ", ": "] : [",", ": "]);
  const encode = (v: unknown, level: number): string => {
    if (v === null) return "null";
    if (v === true) return "true";
    if (v === false) return "false";
    if (typeof v === "number") {
      if (Number.isNaN(v)) return "NaN";
      if (!Number.isFinite(v)) return v > 0 ? "Infinity" : "-Infinity";
      return pyFloat(v);
    }
    if (typeof v === "string") return quote(v);
    const inner = indentText === null ? "" : "\n" + indentText.repeat(level + 1);
    const outer = indentText === null ? "" : "\n" + indentText.repeat(level);
    if (Array.isArray(v)) {
      if (v.length === 0) return "[]";
      return "[" + inner + v.map((x) => encode(x, level + 1)).join(itemSep + inner) + outer + "]";
    }
    if (isMapping(v)) {
      let keys = Object.keys(v);
      if (keys.length === 0) return "{}";
      if (sortKeys) keys = keys.sort();
      return "{" + inner + keys.map((k) => quote(k) + keySep + encode(v[k], level + 1)).join(itemSep + inner) + outer + "}";
    }
    throw new TypeError(`Object of type ${typeName(v)} is not JSON serializable`);
  };
  return encode(value, 0);
}

const MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];
const WEEKDAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

/** Python's datetime.strftime for the common directives (and glibc's %-d style unpadded ones). */
export function strftime(date: Date, format: string): string {
  const pad = (n: number, width = 2) => String(n).padStart(width, "0");
  return format.replace(/%(-?)([a-zA-Z%])/g, (whole, unpadded: string, directive: string) => {
    const p = (n: number, width = 2) => (unpadded ? String(n) : pad(n, width));
    const hours12 = date.getHours() % 12 === 0 ? 12 : date.getHours() % 12;
    const startOfYear = new Date(date.getFullYear(), 0, 1);
    const dayOfYear = Math.floor((date.getTime() - startOfYear.getTime()) / 86400000) + 1;
    switch (directive) {
      case "a":
        return WEEKDAYS[date.getDay()].slice(0, 3);
      case "A":
        return WEEKDAYS[date.getDay()];
      case "b":
      case "h":
        return MONTHS[date.getMonth()].slice(0, 3);
      case "B":
        return MONTHS[date.getMonth()];
      case "d":
        return p(date.getDate());
      case "e":
        return String(date.getDate()).padStart(2, " ");
      case "H":
        return p(date.getHours());
      case "I":
        return p(hours12);
      case "j":
        return p(dayOfYear, 3);
      case "m":
        return p(date.getMonth() + 1);
      case "M":
        return p(date.getMinutes());
      case "S":
        return p(date.getSeconds());
      case "p":
        return date.getHours() < 12 ? "AM" : "PM";
      case "y":
        return p(date.getFullYear() % 100);
      case "Y":
        return String(date.getFullYear());
      case "w":
        return String(date.getDay());
      case "f":
        return pad(date.getMilliseconds() * 1000, 6);
      case "%":
        return "%";
      default:
        return whole;
    }
  });
}

// =============================================================================================
// Attribute and item access, as jinja2's sandboxed environment does it

function method(name: string, fn: (args: unknown[], kwargs: Record<string, unknown>) => unknown): PyFunction {
  return new PyFunction(name, fn);
}

function unsafe(owner: string, name: string): PyFunction {
  return method(name, () => {
    throw new SecurityError(`access to attribute '${name}' of '${owner}' object is unsafe.`);
  });
}

const arg = (args: unknown[], kwargs: Record<string, unknown>, index: number, name: string, fallback?: unknown) =>
  index < args.length ? args[index] : name in kwargs ? kwargs[name] : fallback;

function stringMethod(s: string, name: string): unknown {
  switch (name) {
    case "strip":
    case "lstrip":
    case "rstrip":
      return method(name, (a, k) => pyStripChars(s, arg(a, k, 0, "chars"), name !== "rstrip", name !== "lstrip"));
    case "split":
      return method(name, (a, k) => pySplit(s, arg(a, k, 0, "sep"), Number(arg(a, k, 1, "maxsplit", -1))));
    case "rsplit":
      return method(name, (a, k) => {
        const sep = arg(a, k, 0, "sep");
        const maxsplit = Number(arg(a, k, 1, "maxsplit", -1));
        if (maxsplit < 0) return pySplit(s, sep, -1);
        if (sep === undefined || sep === null) {
          const parts = pySplit(s, null, -1);
          if (parts.length <= maxsplit + 1) return parts;
          const kept = parts.slice(parts.length - maxsplit);
          const headEnd = s.replace(PY_TRAILING_SPACE_RE, "").length;
          let head = s.slice(0, headEnd);
          for (let j = 0; j < maxsplit; j++) head = head.replace(new RegExp(`[${PY_WHITESPACE}]*[^${PY_WHITESPACE}]+$`, "u"), "");
          return [head.replace(PY_TRAILING_SPACE_RE, "").replace(PY_LEADING_SPACE_RE, ""), ...kept].filter((x, j) => j > 0 || x.length > 0);
        }
        const parts = s.split(String(sep));
        if (parts.length <= maxsplit + 1) return parts;
        return [parts.slice(0, parts.length - maxsplit).join(String(sep)), ...parts.slice(parts.length - maxsplit)];
      });
    case "splitlines":
      return method(name, (a, k) => {
        const keepends = truthy(arg(a, k, 0, "keepends", false));
        const out: string[] = [];
        const re = /\r\n|[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]/g;
        let last = 0;
        for (let m = re.exec(s); m; m = re.exec(s)) {
          out.push(s.slice(last, keepends ? m.index + m[0].length : m.index));
          last = m.index + m[0].length;
        }
        if (last < s.length) out.push(s.slice(last));
        return out;
      });
    case "startswith":
    case "endswith":
      return method(name, (a, k) => {
        const prefixes = arg(a, k, 0, name === "startswith" ? "prefix" : "suffix");
        const options = Array.isArray(prefixes) ? prefixes : [prefixes];
        const start = arg(a, k, 1, "start");
        const end = arg(a, k, 2, "end");
        const view = start !== undefined || end !== undefined ? (pySlice(s, start ?? null, end ?? null, null) as string) : s;
        return options.some((p) => (name === "startswith" ? view.startsWith(String(p)) : view.endsWith(String(p))));
      });
    case "upper":
      return method(name, () => s.toUpperCase());
    case "lower":
      return method(name, () => s.toLowerCase());
    case "title":
      return method(name, () => pyTitle(s));
    case "capitalize":
      return method(name, () => pyCapitalize(s));
    case "swapcase":
      return method(name, () => [...s].map((c) => (c === c.toUpperCase() ? c.toLowerCase() : c.toUpperCase())).join(""));
    case "replace":
      return method(name, (a, k) => {
        const old = String(arg(a, k, 0, "old"));
        const replacement = String(arg(a, k, 1, "new"));
        const count = Number(arg(a, k, 2, "count", -1));
        return pyReplace(s, old, replacement, count);
      });
    case "find":
    case "index":
    case "rfind":
    case "rindex":
      return method(name, (a, k) => {
        const sub = String(arg(a, k, 0, "sub"));
        const position = name.startsWith("r") ? s.lastIndexOf(sub) : s.indexOf(sub);
        if (position < 0) {
          if (name.endsWith("index")) throw new Error("ValueError: substring not found");
          return -1;
        }
        return [...s.slice(0, position)].length;
      });
    case "count":
      return method(name, (a, k) => {
        const sub = String(arg(a, k, 0, "sub"));
        if (sub === "") return [...s].length + 1;
        return s.split(sub).length - 1;
      });
    case "join":
      return method(name, (a, k) => iterate(arg(a, k, 0, "iterable")).map((x) => {
        if (typeof x !== "string") throw new TypeError(`sequence item: expected str instance, ${typeName(x)} found`);
        return x;
      }).join(s));
    case "format":
      return method(name, (a, k) => braceFormat(s, a, k));
    case "isdigit":
    case "isnumeric":
    case "isdecimal":
      return method(name, () => s.length > 0 && /^\p{N}+$/u.test(s));
    case "isalpha":
      return method(name, () => s.length > 0 && /^\p{L}+$/u.test(s));
    case "isalnum":
      return method(name, () => s.length > 0 && /^[\p{L}\p{N}]+$/u.test(s));
    case "isspace":
      return method(name, () => PY_ALL_SPACE_RE.test(s));
    case "islower":
      return method(name, () => [...s].some(isCased) && s === s.toLowerCase());
    case "isupper":
      return method(name, () => [...s].some(isCased) && s === s.toUpperCase());
    case "removeprefix":
      return method(name, (a, k) => {
        const p = String(arg(a, k, 0, "prefix"));
        return p && s.startsWith(p) ? s.slice(p.length) : s;
      });
    case "removesuffix":
      return method(name, (a, k) => {
        const p = String(arg(a, k, 0, "suffix"));
        return p && s.endsWith(p) ? s.slice(0, s.length - p.length) : s;
      });
    case "zfill":
      return method(name, (a, k) => {
        const width = Number(arg(a, k, 0, "width"));
        const sign = /^[+-]/.test(s) ? s[0] : "";
        return sign + s.slice(sign.length).padStart(width - sign.length, "0");
      });
    case "center":
    case "ljust":
    case "rjust":
      return method(name, (a, k) => {
        const width = Number(arg(a, k, 0, "width"));
        const fill = String(arg(a, k, 1, "fillchar", " "));
        const n = [...s].length;
        if (width <= n) return s;
        if (name === "ljust") return s + fill.repeat(width - n);
        if (name === "rjust") return fill.repeat(width - n) + s;
        const total = width - n;
        const left = Math.floor(total / 2) + (total & width & 1);
        return fill.repeat(left) + s + fill.repeat(total - left);
      });
    default:
      return new Undefined(`'str object' has no attribute '${name}'`);
  }
}

function pyReplace(s: string, old: string, replacement: string, count: number): string {
  if (count < 0) {
    if (old === "") return replacement + [...s].join(replacement) + (s.length > 0 ? replacement : "");
    return s.split(old).join(replacement);
  }
  let out = s;
  let from = 0;
  for (let n = 0; n < count; n++) {
    const at = out.indexOf(old, from);
    if (at < 0 || old === "") break;
    out = out.slice(0, at) + replacement + out.slice(at + old.length);
    from = at + replacement.length;
  }
  return out;
}

const LIST_MUTATORS = new Set(["append", "extend", "insert", "pop", "remove", "reverse", "sort", "clear", "__setitem__"]);
const DICT_MUTATORS = new Set(["update", "pop", "popitem", "setdefault", "clear", "__setitem__"]);

function listMethod(list: unknown[], name: string): unknown {
  if (LIST_MUTATORS.has(name)) return unsafe("list", name);
  switch (name) {
    case "count":
      return method(name, (a) => list.filter((x) => pyEquals(x, a[0])).length);
    case "index":
      return method(name, (a) => {
        const at = list.findIndex((x) => pyEquals(x, a[0]));
        if (at < 0) throw new Error(`ValueError: ${pyRepr(a[0])} is not in list`);
        return at;
      });
    case "copy":
      return method(name, () => [...list]);
    default:
      return new Undefined(`'list object' has no attribute '${name}'`);
  }
}

function dictMethod(dict: Record<string, unknown>, name: string): unknown {
  if (DICT_MUTATORS.has(name)) return unsafe("dict", name);
  switch (name) {
    case "items":
      return method(name, () => Object.entries(dict).map(([k, v]) => [k, v]));
    case "keys":
      return method(name, () => Object.keys(dict));
    case "values":
      return method(name, () => Object.values(dict));
    case "get":
      return method(name, (a, k) => {
        const key = arg(a, k, 0, "key");
        return typeof key === "string" && hasOwn(dict, key) ? dict[key] : arg(a, k, 1, "default", null);
      });
    case "copy":
      return method(name, () => ({ ...dict }));
    default:
      return undefined;
  }
}

function getAttr(object: unknown, name: string): unknown {
  if (object instanceof Undefined) failUndefined(object);
  if (typeof object === "string") return stringMethod(object, name);
  if (Array.isArray(object)) return listMethod(object, name);
  if (object instanceof Namespace) return object.attrs.has(name) ? object.attrs.get(name) : new Undefined(`'Namespace object' has no attribute '${name}'`);
  if (object instanceof LoopContext) return object.attr(name);
  if (isMapping(object)) {
    const bound = dictMethod(object, name);
    if (bound !== undefined) return bound;
    return hasOwn(object, name) && object[name] !== undefined ? object[name] : new Undefined(`'dict object' has no attribute '${name}'`);
  }
  return new Undefined(`'${typeName(object)} object' has no attribute '${name}'`);
}

function getItem(object: unknown, key: unknown): unknown {
  if (object instanceof Undefined) failUndefined(object);
  if (typeof key === "number" || typeof key === "boolean") {
    const index = Number(key);
    if (Array.isArray(object)) {
      const k = normalizeIndex(index, object.length);
      return k >= 0 && k < object.length ? object[k] : new Undefined(`list object has no element ${index}`);
    }
    if (typeof object === "string") {
      const cps = [...object];
      const k = normalizeIndex(index, cps.length);
      return k >= 0 && k < cps.length ? cps[k] : new Undefined(`str object has no element ${index}`);
    }
    return new Undefined(`'${typeName(object)} object' has no element ${index}`);
  }
  if (typeof key === "string") {
    if (isMapping(object) && hasOwn(object, key) && object[key] !== undefined) return object[key];
    return getAttr(object, key);
  }
  return new Undefined(`'${typeName(object)} object' has no element ${pyRepr(key)}`);
}

/** Jinja's make_attrgetter: "a.b.0" walks items/attributes. */
function getAttrPath(object: unknown, path: unknown): unknown {
  if (typeof path === "number") return getItem(object, path);
  let value = object;
  for (const part of String(path).split(".")) value = getItem(value, /^\d+$/.test(part) ? Number(part) : part);
  return value;
}

// =============================================================================================
// Filters and tests

type FilterFn = (value: unknown, args: unknown[], kwargs: Record<string, unknown>, env: Interpreter) => unknown;

const softStr = (v: unknown) => pyStr(v);

function sortKeyValue(v: unknown, caseSensitive: boolean): unknown {
  return !caseSensitive && typeof v === "string" ? v.toLowerCase() : v;
}

const FILTERS: Record<string, FilterFn> = {
  abs: (v) => Math.abs(Number(v)),
  // Python getattr only: a dict's keys are not attributes here (unlike obj.name in an expression).
  attr: (v, a, k) => {
    const name = String(arg(a, k, 0, "name"));
    if (isMapping(v)) return dictMethod(v, name) ?? new Undefined(`'dict object' has no attribute '${name}'`);
    return getAttr(v, name);
  },
  capitalize: (v) => pyCapitalize(softStr(v)),
  center: (v, a, k) => (stringMethod(softStr(v), "center") as PyFunction).call([arg(a, k, 0, "width", 80)], {}),
  count: (v) => lengthOf(v),
  length: (v) => lengthOf(v),
  default: (v, a, k) => {
    const fallback = arg(a, k, 0, "default_value", "");
    const boolean = truthy(arg(a, k, 1, "boolean", false));
    return v instanceof Undefined || (boolean && !truthy(v)) ? fallback : v;
  },
  dictsort: (v, a, k) => {
    const caseSensitive = truthy(arg(a, k, 0, "case_sensitive", false));
    const by = arg(a, k, 1, "by", "key");
    const reverse = truthy(arg(a, k, 2, "reverse", false));
    if (!isMapping(v)) throw new TypeError("dictsort needs a mapping");
    const position = by === "value" ? 1 : 0;
    const items = Object.entries(v).map(([key, value]) => [key, value] as [string, unknown]);
    items.sort((x, y) => comparePy(sortKeyValue(x[position], caseSensitive), sortKeyValue(y[position], caseSensitive), "<"));
    return reverse ? items.reverse() : items;
  },
  escape: (v) => softStr(v).replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll('"', "&#34;").replaceAll("'", "&#39;"),
  first: (v) => {
    const items = iterate(v);
    return items.length > 0 ? items[0] : new Undefined("No first item, sequence was empty.");
  },
  last: (v) => {
    const items = iterate(v);
    return items.length > 0 ? items[items.length - 1] : new Undefined("No last item, sequence was empty.");
  },
  float: (v, a, k) => {
    const fallback = arg(a, k, 0, "default", 0.0);
    if (typeof v === "number" || typeof v === "boolean") return Number(v);
    const parsed = typeof v === "string" && v.trim() !== "" ? Number(v.trim()) : NaN;
    return Number.isNaN(parsed) ? fallback : parsed;
  },
  int: (v, a, k) => {
    const fallback = arg(a, k, 0, "default", 0);
    const base = Number(arg(a, k, 1, "base", 10));
    if (typeof v === "number" || typeof v === "boolean") return Math.trunc(Number(v));
    if (typeof v === "string") {
      const text = v.trim().replaceAll("_", "");
      if (base === 10 && /^[+-]?\d+$/.test(text)) return parseInt(text, 10);
      if (base !== 10 && text !== "" && !Number.isNaN(parseInt(text, base))) return parseInt(text, base);
      const asFloat = Number(text);
      return text !== "" && !Number.isNaN(asFloat) ? Math.trunc(asFloat) : fallback;
    }
    return fallback;
  },
  format: (v, a, k) => percentFormat(softStr(v), Object.keys(k).length > 0 ? k : a),
  indent: (v, a, k) => {
    const width = arg(a, k, 0, "width", 4);
    const first = truthy(arg(a, k, 1, "first", false));
    const blank = truthy(arg(a, k, 2, "blank", false));
    const pad = typeof width === "string" ? width : " ".repeat(Number(width));
    let s = softStr(v);
    const trailingNewline = s.endsWith("\n");
    if (trailingNewline) s = s.slice(0, -1);
    const lines = s.split("\n");
    const body = lines
      .map((line, idx) => {
        if (idx === 0) return first && (blank || line) ? pad + line : line;
        return blank || line ? pad + line : line;
      })
      .join("\n");
    return trailingNewline ? body + "\n" : body;
  },
  items: (v) => {
    if (v instanceof Undefined) return [];
    if (!isMapping(v)) throw new TypeError(`Can only get item pairs from a mapping, not ${typeName(v)}`);
    return Object.entries(v).map(([key, value]) => [key, value]);
  },
  join: (v, a, k) => {
    const separator = softStr(arg(a, k, 0, "d", ""));
    const attribute = arg(a, k, 1, "attribute", null);
    let items = iterate(v);
    if (attribute !== null) items = items.map((x) => getAttrPath(x, attribute));
    return items.map(softStr).join(separator);
  },
  list: (v) => [...iterate(v)],
  lower: (v) => softStr(v).toLowerCase(),
  upper: (v) => softStr(v).toUpperCase(),
  map: (v, a, k, env) => {
    const items = iterate(v);
    if ("attribute" in k) {
      const fallback = k.default;
      return items.map((x) => {
        const value = getAttrPath(x, k.attribute);
        return value instanceof Undefined && fallback !== undefined ? fallback : value;
      });
    }
    if (a.length === 0) return items;
    const filterName = String(a[0]);
    return items.map((x) => env.applyFilter(filterName, x, a.slice(1), k));
  },
  max: (v, a, k) => extremum(v, a, k, 1),
  min: (v, a, k) => extremum(v, a, k, -1),
  reject: (v, a, k, env) => selectOrReject(v, a, k, env, false, false),
  rejectattr: (v, a, k, env) => selectOrReject(v, a, k, env, false, true),
  select: (v, a, k, env) => selectOrReject(v, a, k, env, true, false),
  selectattr: (v, a, k, env) => selectOrReject(v, a, k, env, true, true),
  replace: (v, a, k) => pyReplace(softStr(v), softStr(arg(a, k, 0, "old")), softStr(arg(a, k, 1, "new")), Number(arg(a, k, 2, "count", -1) ?? -1)),
  reverse: (v) => (typeof v === "string" ? [...v].reverse().join("") : [...iterate(v)].reverse()),
  round: (v, a, k) => {
    const precision = Number(arg(a, k, 0, "precision", 0));
    const mode = String(arg(a, k, 1, "method", "common"));
    const factor = 10 ** precision;
    const x = Number(v) * factor;
    const rounded = mode === "ceil" ? Math.ceil(x) : mode === "floor" ? Math.floor(x) : Math.sign(x) * Math.round(Math.abs(x));
    return rounded / factor;
  },
  safe: (v) => v,
  sort: (v, a, k) => {
    const reverse = truthy(arg(a, k, 0, "reverse", false));
    const caseSensitive = truthy(arg(a, k, 1, "case_sensitive", false));
    const attribute = arg(a, k, 2, "attribute", null);
    const key = (x: unknown) => sortKeyValue(attribute === null ? x : getAttrPath(x, attribute), caseSensitive);
    const sorted = [...iterate(v)].sort((x, y) => comparePy(key(x), key(y), "<"));
    return reverse ? sorted.reverse() : sorted;
  },
  string: (v) => softStr(v),
  sum: (v, a, k) => {
    const attribute = arg(a, k, 0, "attribute", null);
    let total = Number(arg(a, k, 1, "start", 0));
    for (const x of iterate(v)) total += Number(attribute === null ? x : getAttrPath(x, attribute));
    return total;
  },
  title: (v) =>
    softStr(v)
      .split(/([-\s({[<]+)/u)
      .filter((item) => item.length > 0)
      .map((item) => {
        const cps = [...item];
        return cps[0].toUpperCase() + cps.slice(1).join("").toLowerCase();
      })
      .join(""),
  tojson: (v, a, k) => {
    const indent = arg(a, k, 0, "indent", null) as number | string | null;
    const separators = k.separators as [string, string] | undefined;
    return pyJsonDumps(v, indent, separators ?? null, truthy(k.sort_keys ?? false), truthy(k.ensure_ascii ?? false));
  },
  trim: (v, a, k) => pyStripChars(softStr(v), arg(a, k, 0, "chars", null), true, true),
  truncate: (v, a, k) => {
    const s = softStr(v);
    const length = Number(arg(a, k, 0, "length", 255));
    const killwords = truthy(arg(a, k, 1, "killwords", false));
    const end = softStr(arg(a, k, 2, "end", "..."));
    const leeway = Number(arg(a, k, 3, "leeway", 5));
    const cps = [...s];
    if (cps.length <= length + leeway) return s;
    if (killwords) return cps.slice(0, length - end.length).join("") + end;
    const cut = cps.slice(0, length - end.length).join("");
    const space = cut.lastIndexOf(" ");
    return (space >= 0 ? cut.slice(0, space) : cut) + end;
  },
  unique: (v, a, k) => {
    const caseSensitive = truthy(arg(a, k, 0, "case_sensitive", false));
    const attribute = arg(a, k, 1, "attribute", null);
    const seen: unknown[] = [];
    const out: unknown[] = [];
    for (const x of iterate(v)) {
      const key = sortKeyValue(attribute === null ? x : getAttrPath(x, attribute), caseSensitive);
      if (!seen.some((s) => pyEquals(s, key))) {
        seen.push(key);
        out.push(x);
      }
    }
    return out;
  },
  wordcount: (v) => (softStr(v).match(/\w+/gu) ?? []).length,
};
FILTERS.d = FILTERS.default;
FILTERS.e = FILTERS.escape;

function extremum(v: unknown, a: unknown[], k: Record<string, unknown>, sign: 1 | -1): unknown {
  const caseSensitive = truthy(arg(a, k, 0, "case_sensitive", false));
  const attribute = arg(a, k, 1, "attribute", null);
  const items = iterate(v);
  if (items.length === 0) return new Undefined(`No aggregated item, sequence was empty.`);
  const key = (x: unknown) => sortKeyValue(attribute === null ? x : getAttrPath(x, attribute), caseSensitive);
  return items.reduce((best, x) => (comparePy(key(x), key(best), sign > 0 ? ">" : "<") * sign > 0 ? x : best));
}

function selectOrReject(v: unknown, a: unknown[], k: Record<string, unknown>, env: Interpreter, select: boolean, byAttribute: boolean): unknown[] {
  let rest = a;
  let attribute: unknown = null;
  if (byAttribute) {
    attribute = rest[0];
    rest = rest.slice(1);
  }
  const valueOf = (x: unknown) => (byAttribute ? getAttrPath(x, attribute) : x);
  const check =
    rest.length === 0
      ? (x: unknown) => truthy(valueOf(x))
      : (x: unknown) => truthy(env.applyTest(String(rest[0]), valueOf(x), rest.slice(1), k));
  return iterate(v).filter((x) => check(x) === select);
}

type TestFn = (value: unknown, args: unknown[]) => boolean;

const TESTS: Record<string, TestFn> = {
  boolean: (v) => typeof v === "boolean",
  callable: (v) => v instanceof PyFunction,
  defined: (v) => !(v instanceof Undefined),
  undefined: (v) => v instanceof Undefined,
  divisibleby: (v, a) => Number(v) % Number(a[0]) === 0,
  eq: (v, a) => pyEquals(v, a[0]),
  ne: (v, a) => !pyEquals(v, a[0]),
  lt: (v, a) => comparePy(v, a[0], "<") < 0,
  le: (v, a) => comparePy(v, a[0], "<=") <= 0,
  gt: (v, a) => comparePy(v, a[0], ">") > 0,
  ge: (v, a) => comparePy(v, a[0], ">=") >= 0,
  escaped: () => false,
  even: (v) => Number(v) % 2 === 0,
  odd: (v) => Math.abs(Number(v) % 2) === 1,
  false: (v) => v === false,
  true: (v) => v === true,
  float: (v) => typeof v === "number" && !Number.isInteger(v),
  integer: (v) => typeof v === "number" && Number.isInteger(v),
  number: (v) => typeof v === "number" || typeof v === "boolean",
  in: (v, a) => pyContains(a[0], v),
  iterable: (v) => typeof v === "string" || Array.isArray(v) || isMapping(v) || v instanceof Undefined,
  sequence: (v) => typeof v === "string" || Array.isArray(v) || isMapping(v),
  lower: (v) => typeof v === "string" && v === v.toLowerCase(),
  upper: (v) => typeof v === "string" && v === v.toUpperCase(),
  mapping: (v) => isMapping(v),
  none: (v) => v === null,
  sameas: (v, a) => v === a[0],
  string: (v) => typeof v === "string",
};
Object.assign(TESTS, {
  equalto: TESTS.eq,
  "==": TESTS.eq,
  "!=": TESTS.ne,
  lessthan: TESTS.lt,
  "<": TESTS.lt,
  "<=": TESTS.le,
  greaterthan: TESTS.gt,
  ">": TESTS.gt,
  ">=": TESTS.ge,
  filter: (v: unknown) => typeof v === "string" && v in FILTERS,
  test: (v: unknown) => typeof v === "string" && v in TESTS,
});

// =============================================================================================
// Interpreter

class Frame {
  readonly vars = new Map<string, unknown>();
  constructor(readonly parent?: Frame) {}
  lookup(name: string): unknown {
    for (let f: Frame | undefined = this; f; f = f.parent) if (f.vars.has(name)) return f.vars.get(name);
    return new Undefined(`'${name}' is undefined`);
  }
}

type Signal = "break" | "continue" | undefined;

class Interpreter {
  constructor(private readonly source: string) {}

  private wrap(error: unknown, line: number): never {
    if (error instanceof ChatTemplateError) throw error;
    const message = error instanceof Error ? error.message : String(error);
    const kind = error instanceof UndefinedError ? "undefined value" : error instanceof SecurityError ? "sandbox" : "error";
    const text = this.source.split("\n")[line - 1] ?? "";
    const shown = text.length > 160 ? text.slice(0, 160) + "..." : text;
    throw new ChatTemplateError(`chat template ${kind} at line ${line}: ${message}\n  ${line} | ${shown}`, line);
  }

  render(nodes: Node[], frame: Frame, out: string[]): Signal {
    for (const node of nodes) {
      let signal: Signal;
      try {
        signal = this.renderNode(node, frame, out);
      } catch (error) {
        this.wrap(error, node.line);
      }
      if (signal) return signal;
    }
    return undefined;
  }

  private renderNode(node: Node, frame: Frame, out: string[]): Signal {
    switch (node.kind) {
      case "text":
        out.push(node.value);
        return undefined;
      case "output":
        out.push(pyStr(this.evaluate(node.expr, frame)));
        return undefined;
      case "if":
        for (const branch of node.branches) {
          if (truthy(this.evaluate(branch.test, frame))) return this.render(branch.body, frame, out);
        }
        return this.render(node.otherwise, frame, out);
      case "for":
        return this.renderFor(node, frame, out);
      case "set":
        this.assign(node.target, this.evaluate(node.value, frame), frame);
        return undefined;
      case "setblock": {
        const parts: string[] = [];
        this.render(node.body, new Frame(frame), parts);
        let value: unknown = parts.join("");
        for (const filter of node.filters) value = this.evaluateFilter(filter as Extract<Expr, { kind: "filter" }>, value, frame);
        this.assign(node.target, value, frame);
        return undefined;
      }
      case "macro":
        frame.vars.set(node.name, this.makeMacro(node, frame));
        return undefined;
      case "with": {
        const inner = new Frame(frame);
        for (const [name, expr] of node.assignments) inner.vars.set(name, this.evaluate(expr, frame));
        return this.render(node.body, inner, out);
      }
      case "filterblock": {
        const parts: string[] = [];
        this.render(node.body, new Frame(frame), parts);
        let value: unknown = parts.join("");
        for (const filter of node.filters) value = this.evaluateFilter(filter as Extract<Expr, { kind: "filter" }>, value, frame);
        out.push(pyStr(value));
        return undefined;
      }
      case "block":
        return this.render(node.body, frame, out);
      case "break":
      case "continue":
        return node.kind;
    }
  }

  private renderFor(node: Extract<Node, { kind: "for" }>, frame: Frame, out: string[]): Signal {
    const bind = (target: Frame, item: unknown) => {
      if (!node.unpack) {
        target.vars.set(node.targets[0], item);
        return;
      }
      const values = Array.isArray(item) ? item : typeof item === "string" ? [...item] : iterate(item);
      if (values.length !== node.targets.length) {
        throw new Error(`cannot unpack ${values.length} values into ${node.targets.length} loop variables (${node.targets.join(", ")})`);
      }
      node.targets.forEach((name, k) => target.vars.set(name, values[k]));
    };
    let items = iterate(this.evaluate(node.iter, frame));
    if (node.filter) {
      items = items.filter((item) => {
        const scope = new Frame(frame);
        bind(scope, item);
        return truthy(this.evaluate(node.filter!, scope));
      });
    }
    if (items.length === 0) return this.render(node.otherwise, frame, out);
    const loop = new LoopContext(items, 0);
    for (let k = 0; k < items.length; k++) {
      // Each iteration gets a fresh scope: {% set %} inside a loop does not outlive it (hence namespace()).
      const scope = new Frame(frame);
      loop.index0 = k;
      scope.vars.set("loop", loop);
      bind(scope, items[k]);
      const signal = this.render(node.body, scope, out);
      if (signal === "break") break;
    }
    return undefined;
  }

  private assign(target: SetTarget, value: unknown, frame: Frame): void {
    if (target.kind === "name") {
      frame.vars.set(target.name, value);
    } else if (target.kind === "names") {
      const values = iterate(value);
      if (values.length !== target.names.length) throw new Error(`cannot unpack ${values.length} values into ${target.names.length} names`);
      target.names.forEach((name, k) => frame.vars.set(name, values[k]));
    } else {
      const object = frame.lookup(target.object);
      if (!(object instanceof Namespace)) throw new Error(`cannot assign attribute on non-namespace object '${target.object}'`);
      object.attrs.set(target.attr, value);
    }
  }

  private makeMacro(node: Extract<Node, { kind: "macro" }>, definingFrame: Frame): PyFunction {
    return new PyFunction(node.name, (args, kwargs) => {
      const scope = new Frame(definingFrame);
      const extraKwargs: Record<string, unknown> = { ...kwargs };
      node.params.forEach((param, k) => {
        if (k < args.length) scope.vars.set(param.name, args[k]);
        else if (param.name in kwargs) scope.vars.set(param.name, kwargs[param.name]);
        else if (param.default) scope.vars.set(param.name, this.evaluate(param.default, scope));
        else scope.vars.set(param.name, new Undefined(`parameter '${param.name}' was not provided`));
        delete extraKwargs[param.name];
      });
      scope.vars.set("varargs", args.slice(node.params.length));
      scope.vars.set("kwargs", extraKwargs);
      const parts: string[] = [];
      this.render(node.body, scope, parts);
      return parts.join("");
    });
  }

  applyFilter(name: string, value: unknown, args: unknown[], kwargs: Record<string, unknown>): unknown {
    const filter = FILTERS[name];
    if (!filter) throw new Error(`no filter named '${name}'`);
    return filter(value, args, kwargs, this);
  }

  applyTest(name: string, value: unknown, args: unknown[], _kwargs: Record<string, unknown>): boolean {
    const test = TESTS[name];
    if (!test) throw new Error(`no test named '${name}'`);
    return test(value, args);
  }

  private evaluateArgs(args: Expr[], kwargs: Array<[string, Expr]>, frame: Frame): [unknown[], Record<string, unknown>] {
    const values = args.map((a) => this.evaluate(a, frame));
    const named: Record<string, unknown> = {};
    for (const [key, expr] of kwargs) named[key] = this.evaluate(expr, frame);
    return [values, named];
  }

  private evaluateFilter(expr: Extract<Expr, { kind: "filter" }>, value: unknown, frame: Frame): unknown {
    const [args, kwargs] = this.evaluateArgs(expr.args, expr.kwargs, frame);
    // Filters that turn their input into text treat an undefined value as "" (Undefined.__str__).
    return this.applyFilter(expr.name, value, args, kwargs);
  }

  evaluate(expr: Expr, frame: Frame): unknown {
    switch (expr.kind) {
      case "const":
        return expr.value;
      case "name":
        return frame.lookup(expr.name);
      case "list":
      case "tuple":
        return expr.items.map((item) => this.evaluate(item, frame));
      case "dict": {
        const out: Record<string, unknown> = {};
        for (const [keyExpr, valueExpr] of expr.pairs) {
          const key = this.evaluate(keyExpr, frame);
          out[typeof key === "string" ? key : pyStr(key)] = this.evaluate(valueExpr, frame);
        }
        return out;
      }
      case "getattr":
        return getAttr(this.evaluate(expr.object, frame), expr.name);
      case "getitem":
        return getItem(this.evaluate(expr.object, frame), this.evaluate(expr.index, frame));
      case "slice":
        return pySlice(
          this.evaluate(expr.object, frame),
          expr.start ? this.evaluate(expr.start, frame) : null,
          expr.stop ? this.evaluate(expr.stop, frame) : null,
          expr.step ? this.evaluate(expr.step, frame) : null,
        );
      case "call": {
        const callee = this.evaluate(expr.callee, frame);
        const [args, kwargs] = this.evaluateArgs(expr.args, expr.kwargs, frame);
        if (callee instanceof Undefined) failUndefined(callee);
        if (!(callee instanceof PyFunction)) throw new TypeError(`'${typeName(callee)}' object is not callable`);
        return callee.call(args, kwargs);
      }
      case "filter":
        return this.evaluateFilter(expr, expr.value ? this.evaluate(expr.value, frame) : new Undefined("no value"), frame);
      case "test": {
        const [args, kwargs] = this.evaluateArgs(expr.args, expr.kwargs, frame);
        return this.applyTest(expr.name, this.evaluate(expr.value, frame), args, kwargs);
      }
      case "unary": {
        const operand = this.evaluate(expr.operand, frame);
        if (expr.op === "not") return !truthy(operand);
        if (operand instanceof Undefined) failUndefined(operand);
        if (typeof operand !== "number" && typeof operand !== "boolean") throw new TypeError(`bad operand type for unary ${expr.op}: '${typeName(operand)}'`);
        return expr.op === "-" ? -Number(operand) : Number(operand);
      }
      case "binary": {
        if (expr.op === "and") {
          const left = this.evaluate(expr.left, frame);
          return truthy(left) ? this.evaluate(expr.right, frame) : left;
        }
        if (expr.op === "or") {
          const left = this.evaluate(expr.left, frame);
          return truthy(left) ? left : this.evaluate(expr.right, frame);
        }
        return binaryOp(expr.op, this.evaluate(expr.left, frame), this.evaluate(expr.right, frame));
      }
      case "compare": {
        let left = this.evaluate(expr.first, frame);
        for (const [op, rightExpr] of expr.rest) {
          const right = this.evaluate(rightExpr, frame);
          let ok: boolean;
          switch (op) {
            case "==":
              ok = pyEquals(left, right);
              break;
            case "!=":
              ok = !pyEquals(left, right);
              break;
            case "in":
              ok = pyContains(right, left);
              break;
            case "notin":
              ok = !pyContains(right, left);
              break;
            default: {
              const c = comparePy(left, right, op);
              ok = op === "<" ? c < 0 : op === ">" ? c > 0 : op === "<=" ? c <= 0 : c >= 0;
            }
          }
          if (!ok) return false;
          left = right;
        }
        return true;
      }
      case "concat":
        return expr.items.map((item) => pyStr(this.evaluate(item, frame))).join("");
      case "cond":
        if (truthy(this.evaluate(expr.test, frame))) return this.evaluate(expr.then, frame);
        return expr.otherwise ? this.evaluate(expr.otherwise, frame) : new Undefined("the inline if expression evaluated to false and no else section was defined.");
    }
  }
}

function binaryOp(op: string, a: unknown, b: unknown): unknown {
  if (a instanceof Undefined) failUndefined(a);
  if (b instanceof Undefined) failUndefined(b);
  const numeric = (x: unknown): x is number | boolean => typeof x === "number" || typeof x === "boolean";
  const bad = (): never => {
    throw new TypeError(`unsupported operand type(s) for ${op}: '${typeName(a)}' and '${typeName(b)}'`);
  };
  switch (op) {
    case "+":
      if (numeric(a) && numeric(b)) return Number(a) + Number(b);
      if (typeof a === "string" && typeof b === "string") return a + b;
      if (Array.isArray(a) && Array.isArray(b)) return [...a, ...b];
      if (typeof a === "string" || typeof b === "string") {
        throw new TypeError(`can only concatenate str (not "${typeName(typeof a === "string" ? b : a)}") to str`);
      }
      return bad();
    case "-":
      return numeric(a) && numeric(b) ? Number(a) - Number(b) : bad();
    case "*":
      if (numeric(a) && numeric(b)) return Number(a) * Number(b);
      if (typeof a === "string" && numeric(b)) return a.repeat(Math.max(0, Number(b)));
      if (numeric(a) && typeof b === "string") return b.repeat(Math.max(0, Number(a)));
      if (Array.isArray(a) && numeric(b)) return Array.from({ length: Math.max(0, Number(b)) }, () => a).flat();
      return bad();
    case "/":
      if (!numeric(a) || !numeric(b)) return bad();
      if (Number(b) === 0) throw new Error("ZeroDivisionError: division by zero");
      return Number(a) / Number(b);
    case "//":
      if (!numeric(a) || !numeric(b)) return bad();
      if (Number(b) === 0) throw new Error("ZeroDivisionError: integer division or modulo by zero");
      return Math.floor(Number(a) / Number(b));
    case "%":
      if (typeof a === "string") return percentFormat(a, b);
      if (!numeric(a) || !numeric(b)) return bad();
      if (Number(b) === 0) throw new Error("ZeroDivisionError: integer division or modulo by zero");
      return ((Number(a) % Number(b)) + Number(b)) % Number(b);
    case "**":
      return numeric(a) && numeric(b) ? Number(a) ** Number(b) : bad();
    default:
      throw new Error(`unknown operator ${op}`);
  }
}

// =============================================================================================
// Entry points

function globalsFrame(): Frame {
  const frame = new Frame();
  frame.vars.set(
    "raise_exception",
    new PyFunction("raise_exception", (args) => {
      throw new ChatTemplateRaisedError(pyStr(args[0]));
    }),
  );
  frame.vars.set("strftime_now", new PyFunction("strftime_now", (args) => strftime(new Date(), pyStr(args[0]))));
  frame.vars.set(
    "namespace",
    new PyFunction("namespace", (args, kwargs) => {
      const ns = new Namespace();
      for (const a of args) if (isMapping(a)) for (const [k, v] of Object.entries(a)) ns.attrs.set(k, v);
      for (const [k, v] of Object.entries(kwargs)) ns.attrs.set(k, v);
      return ns;
    }),
  );
  frame.vars.set(
    "range",
    new PyFunction("range", (args) => {
      const [start, stop, step] = args.length === 1 ? [0, Number(args[0]), 1] : [Number(args[0]), Number(args[1]), Number(args[2] ?? 1)];
      if (step === 0) throw new Error("range() arg 3 must not be zero");
      const out: number[] = [];
      for (let k = start; step > 0 ? k < stop : k > stop; k += step) out.push(k);
      if (out.length > 100000) throw new SecurityError("range too big");
      return out;
    }),
  );
  frame.vars.set("dict", new PyFunction("dict", (args, kwargs) => ({ ...(isMapping(args[0]) ? args[0] : {}), ...kwargs })));
  return frame;
}

const compiled = new Map<string, Node[]>();

/** Parses a template (cached); throws ChatTemplateError naming the line of a syntax error. */
export function compileChatTemplate(template: string): Node[] {
  let nodes = compiled.get(template);
  if (!nodes) {
    const lexer = new Lexer(template);
    const normalized = template.split(/\r\n|\r|\n/).join("\n");
    nodes = new Parser(lexer.tokens, normalized).parseTemplate();
    if (compiled.size > 64) compiled.clear();
    compiled.set(template, nodes);
  }
  return nodes;
}

/**
 * Renders a Hugging Face chat template with transformers' Jinja settings. The context's keys become the
 * template's variables (messages, add_generation_prompt, bos_token, eos_token, tools, ...); JS `undefined`
 * values count as not defined.
 */
export function renderChatTemplate(template: string, context: ChatTemplateContext): string {
  const nodes = compileChatTemplate(template);
  const frame = new Frame(globalsFrame());
  for (const [key, value] of Object.entries(context)) {
    if (value !== undefined) frame.vars.set(key, value);
  }
  const out: string[] = [];
  new Interpreter(template.split(/\r\n|\r|\n/).join("\n")).render(nodes, frame, out);
  return out.join("");
}
