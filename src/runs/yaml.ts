// The YAML subset run files use: block maps and lists by indentation, one-line flow lists [a, b] and maps
// {a: 1}, plain / 'single' / "double" quoted scalars, comments. Scalars resolve as YAML 1.2's core schema
// (1e-4 is a number, yes is a string). Anchors, tags, block scalars (| >) and multi-line flow are refused with
// an error naming the line, so a run file never means something other than what it looks like.

export type YamlValue = null | boolean | number | string | YamlValue[] | { [key: string]: YamlValue };

export interface YamlDocument {
  value: YamlValue;
  /** The line of each key or list item, by dotted path ("model.path", "param_groups.0.match"). */
  lines: Map<string, number>;
}

export class YamlError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    message: string,
  ) {
    super(`${file}:${line}: ${message}`);
  }
}

interface Line {
  number: number;
  indent: number;
  /** The text after the indentation, comment removed, trailing spaces trimmed. */
  text: string;
}

/** Where a comment starts: a # at the line start or after a space, outside quotes. */
function stripComment(text: string): string {
  let quote: string | null = null;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quote) {
      if (ch === "\\" && quote === '"') i++;
      else if (ch === quote) {
        if (quote === "'" && text[i + 1] === "'") i++;
        else quote = null;
      }
    } else if (ch === '"' || ch === "'") {
      // a quote only opens a string at the start of a scalar
      const before = text.slice(0, i).trimEnd();
      if (before === "" || /[:\-\[,{]$/.test(before)) quote = ch;
    } else if (ch === "#" && (i === 0 || text[i - 1] === " " || text[i - 1] === "\t")) {
      return text.slice(0, i);
    }
  }
  return text;
}

function splitLines(source: string, file: string): Line[] {
  const lines: Line[] = [];
  source.replace(/^\uFEFF/, "").split(/\r?\n/).forEach((raw, i) => {
    const number = i + 1;
    const indentMatch = /^[ \t]*/.exec(raw)![0];
    if (indentMatch.includes("\t") && raw.trim() !== "") throw new YamlError(file, number, "tabs are not allowed in indentation; use spaces");
    const text = stripComment(raw.slice(indentMatch.length)).trimEnd();
    if (text === "") return;
    if (text === "---" || text === "...") {
      if (lines.length > 0 && text === "---") throw new YamlError(file, number, "only one YAML document per file is supported");
      return;
    }
    lines.push({ number, indent: indentMatch.length, text });
  });
  return lines;
}

const NUMBER = /^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$/;

/** A plain (unquoted) scalar as YAML 1.2's core schema reads it. */
export function resolvePlainScalar(text: string): YamlValue {
  if (text === "" || text === "~" || /^(null|Null|NULL)$/.test(text)) return null;
  if (/^(true|True|TRUE)$/.test(text)) return true;
  if (/^(false|False|FALSE)$/.test(text)) return false;
  if (/^[-+]?[0-9]+$/.test(text)) return Number.parseInt(text, 10);
  if (/^0x[0-9a-fA-F]+$/.test(text)) return Number.parseInt(text.slice(2), 16);
  if (/^0o[0-7]+$/.test(text)) return Number.parseInt(text.slice(2), 8);
  if (NUMBER.test(text)) return Number.parseFloat(text);
  if (/^[-+]?\.(inf|Inf|INF)$/.test(text)) return text.startsWith("-") ? -Infinity : Infinity;
  if (/^\.(nan|NaN|NAN)$/.test(text)) return Number.NaN;
  return text;
}

const ESCAPES: Record<string, string> = { n: "\n", t: "\t", r: "\r", "0": "\0", '"': '"', "\\": "\\", "/": "/", " ": " ", e: "\x1b", b: "\b", f: "\f" };

/** Reads a quoted scalar starting at text[start]; returns the value and the index after the closing quote. */
function readQuoted(text: string, start: number, fail: (message: string) => never): { value: string; end: number } {
  const quote = text[start];
  let value = "";
  for (let i = start + 1; i < text.length; i++) {
    const ch = text[i];
    if (quote === "'") {
      if (ch === "'") {
        if (text[i + 1] === "'") {
          value += "'";
          i++;
          continue;
        }
        return { value, end: i + 1 };
      }
      value += ch;
      continue;
    }
    if (ch === '"') return { value, end: i + 1 };
    if (ch !== "\\") {
      value += ch;
      continue;
    }
    const next = text[++i];
    if (next === "x" || next === "u" || next === "U") {
      const digits = next === "x" ? 2 : next === "u" ? 4 : 8;
      const hex = text.slice(i + 1, i + 1 + digits);
      if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length !== digits) fail(`bad escape \\${next}${hex} in a double-quoted string`);
      value += String.fromCodePoint(Number.parseInt(hex, 16));
      i += digits;
    } else if (next !== undefined && next in ESCAPES) {
      value += ESCAPES[next];
    } else {
      fail(`unknown escape \\${next ?? ""} in a double-quoted string`);
    }
  }
  return fail(`unterminated ${quote === "'" ? "single" : "double"}-quoted string`);
}

/** Parses a one-line flow value: [a, b], {k: v}, a quoted or a plain scalar. */
function parseFlow(text: string, fail: (message: string) => never): YamlValue {
  let i = 0;
  const skipSpaces = () => {
    while (text[i] === " ") i++;
  };
  const parseValue = (inFlow: boolean): YamlValue => {
    skipSpaces();
    const ch = text[i];
    if (ch === "[") {
      i++;
      const list: YamlValue[] = [];
      skipSpaces();
      if (text[i] === "]") {
        i++;
        return list;
      }
      for (;;) {
        list.push(parseValue(true));
        skipSpaces();
        if (text[i] === ",") {
          i++;
          skipSpaces();
          if (text[i] === "]") {
            i++;
            return list;
          }
          continue;
        }
        if (text[i] === "]") {
          i++;
          return list;
        }
        return fail(i >= text.length ? "a flow list [ ... ] must close on the same line" : `expected ',' or ']' in a flow list, found '${text[i]}'`);
      }
    }
    if (ch === "{") {
      i++;
      const map: { [key: string]: YamlValue } = {};
      skipSpaces();
      if (text[i] === "}") {
        i++;
        return map;
      }
      for (;;) {
        skipSpaces();
        const key = parseValue(true);
        if (typeof key !== "string" && typeof key !== "number" && typeof key !== "boolean") fail("a flow map key must be a scalar");
        skipSpaces();
        if (text[i] !== ":") fail(`expected ':' after key '${String(key)}' in a flow map`);
        i++;
        const name = String(key);
        if (Object.hasOwn(map, name)) fail(`duplicate key '${name}'`);
        map[name] = parseValue(true);
        skipSpaces();
        if (text[i] === ",") {
          i++;
          continue;
        }
        if (text[i] === "}") {
          i++;
          return map;
        }
        return fail(i >= text.length ? "a flow map { ... } must close on the same line" : `expected ',' or '}' in a flow map, found '${text[i]}'`);
      }
    }
    if (ch === '"' || ch === "'") {
      const { value, end } = readQuoted(text, i, fail);
      i = end;
      return value;
    }
    // plain scalar: up to a flow indicator inside flow collections, else to the end
    const start = i;
    if (inFlow) {
      while (i < text.length && !",]}".includes(text[i]) && !(text[i] === ":" && (text[i + 1] === " " || text[i + 1] === undefined || ",]}".includes(text[i + 1])))) i++;
    } else {
      i = text.length;
    }
    const plain = text.slice(start, i).trim();
    if (/^[&*!|>%@`]/.test(plain)) fail(`'${plain[0]}' (anchors, aliases, tags, block scalars, directives) is not supported in run files`);
    return resolvePlainScalar(plain);
  };
  const value = parseValue(false);
  skipSpaces();
  if (i < text.length) fail(`unexpected text after the value: '${text.slice(i)}'`);
  return value;
}

/** "key: value" -> key and the rest, or null when the line is not a map entry. */
function splitKey(text: string, fail: (message: string) => never): { key: string; rest: string } | null {
  if (text[0] === '"' || text[0] === "'") {
    const { value, end } = readQuoted(text, 0, fail);
    const after = text.slice(end);
    if (after === ":" || after.startsWith(": ")) return { key: value, rest: after.slice(1).trim() };
    return null;
  }
  if (text.startsWith("[") || text.startsWith("{")) return null;
  const match = /^([^:]*?):(?: +|$)(.*)$/.exec(text);
  if (!match) return null;
  return { key: match[1].trim(), rest: match[2] };
}

/** Parses the YAML subset; `file` names the source in errors ("run.yaml:7: ..."). */
export function parseYaml(source: string, file = "run.yaml"): YamlDocument {
  const lines = splitLines(source, file);
  const lineOf = new Map<string, number>();
  let index = 0;
  const failAt = (line: number) => (message: string): never => {
    throw new YamlError(file, line, message);
  };
  const join = (path: string, key: string | number) => (path === "" ? String(key) : `${path}.${key}`);

  const parseBlock = (indent: number, path: string): YamlValue => {
    const first = lines[index];
    if (first.text === "-" || first.text.startsWith("- ")) return parseList(first.indent, path);
    return parseMap(indent, path);
  };

  /** The value after "key:" or "- ": inline, or a nested block on the following lines, or null. */
  const parseNested = (rest: string, line: Line, parentIndent: number, path: string, allowSameIndentList: boolean): YamlValue => {
    if (rest !== "") {
      if (rest === "|" || rest === ">" || /^[|>][-+0-9]*$/.test(rest)) failAt(line.number)("block scalars (| and >) are not supported; write the text on one line in quotes");
      return parseFlow(rest, failAt(line.number));
    }
    const next = lines[index];
    if (!next) return null;
    if (next.indent > parentIndent) return parseBlock(next.indent, path);
    // YAML lets a list under a key sit at the key's own indentation
    if (allowSameIndentList && next.indent === parentIndent && (next.text === "-" || next.text.startsWith("- "))) return parseList(next.indent, path);
    return null;
  };

  const parseMap = (indent: number, path: string): YamlValue => {
    const map: { [key: string]: YamlValue } = {};
    while (index < lines.length) {
      const line = lines[index];
      if (line.indent < indent) break;
      const fail = failAt(line.number);
      if (line.indent > indent) fail(`unexpected indentation (expected ${indent} spaces, found ${line.indent})`);
      if (line.text === "-" || line.text.startsWith("- ")) fail("a list item where a 'key: value' line was expected");
      const entry = splitKey(line.text, fail);
      if (!entry) fail(`expected 'key: value', found '${line.text}'`);
      const { key, rest } = entry!;
      if (key === "") fail("empty key");
      if (key === "<<") fail("merge keys (<<) are not supported");
      if (Object.hasOwn(map, key)) fail(`duplicate key '${key}' (first at line ${lineOf.get(join(path, key))})`);
      const keyPath = join(path, key);
      lineOf.set(keyPath, line.number);
      index++;
      map[key] = parseNested(rest, line, indent, keyPath, true);
    }
    return map;
  };

  const parseList = (indent: number, path: string): YamlValue => {
    const list: YamlValue[] = [];
    while (index < lines.length) {
      const line = lines[index];
      if (line.indent < indent) break;
      const fail = failAt(line.number);
      if (line.indent > indent) fail(`unexpected indentation (expected ${indent} spaces, found ${line.indent})`);
      if (!(line.text === "-" || line.text.startsWith("- "))) break;
      const itemPath = join(path, list.length);
      lineOf.set(itemPath, line.number);
      const rest = line.text.slice(1).replace(/^ +/, "");
      const column = indent + (line.text.length - rest.length);
      if (rest !== "" && splitKey(rest, fail) && !rest.startsWith("[") && !rest.startsWith("{")) {
        // "- key: value": a map whose keys line up with this first key
        lines[index] = { number: line.number, indent: column, text: rest };
        list.push(parseMap(column, itemPath));
        continue;
      }
      if (rest.startsWith("- ") || rest === "-") {
        lines[index] = { number: line.number, indent: column, text: rest };
        list.push(parseList(column, itemPath));
        continue;
      }
      index++;
      list.push(parseNested(rest, line, indent, itemPath, false));
    }
    return list;
  };

  if (lines.length === 0) return { value: null, lines: lineOf };
  const top = lines[0];
  let value: YamlValue;
  if (top.text === "-" || top.text.startsWith("- ") || splitKey(top.text, failAt(top.number))) {
    value = parseBlock(top.indent, "");
  } else {
    value = parseFlow(top.text, failAt(top.number));
    index = 1;
  }
  if (index < lines.length) {
    const line = lines[index];
    failAt(line.number)(line.indent < top.indent ? "this line is indented less than the first line of the document" : `unexpected line '${line.text}'`);
  }
  return { value, lines: lineOf };
}

/** Writes a value in the same subset (block maps and lists, quoted strings where needed); parseYaml reads it back. */
export function stringifyYaml(value: YamlValue, indent = 0): string {
  const pad = " ".repeat(indent);
  if (Array.isArray(value)) {
    if (value.length === 0) return `${pad}[]\n`;
    return value
      .map((item) => {
        if (item !== null && typeof item === "object" && !(Array.isArray(item) && item.length === 0) && !(isMap(item) && Object.keys(item).length === 0)) {
          const nested = stringifyYaml(item, indent + 2);
          return `${pad}- ${nested.slice(indent + 2)}`;
        }
        return `${pad}- ${scalarText(item)}\n`;
      })
      .join("");
  }
  if (isMap(value)) {
    const entries = Object.entries(value);
    if (entries.length === 0) return `${pad}{}\n`;
    return entries
      .map(([key, item]) => {
        const name = scalarText(key);
        if (item !== null && typeof item === "object" && !(Array.isArray(item) && item.length === 0) && !(isMap(item) && Object.keys(item).length === 0)) {
          return `${pad}${name}:\n${stringifyYaml(item, indent + 2)}`;
        }
        return `${pad}${name}: ${Array.isArray(item) ? "[]" : isMap(item) ? "{}" : scalarText(item)}\n`;
      })
      .join("");
  }
  return `${pad}${scalarText(value)}\n`;
}

function isMap(value: YamlValue): value is { [key: string]: YamlValue } {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function scalarText(value: YamlValue): string {
  if (value === null) return "null";
  if (typeof value === "boolean") return String(value);
  if (typeof value === "number") {
    if (Number.isNaN(value)) return ".nan";
    if (!Number.isFinite(value)) return value > 0 ? ".inf" : "-.inf";
    return String(value);
  }
  if (typeof value === "string") {
    const plainSafe = value !== "" && resolvePlainScalar(value) === value && !/^[\s\-?:,\[\]{}#&*!|>'"%@`]|[\s]$|: |\s#|[\n\t]/.test(value);
    return plainSafe ? value : JSON.stringify(value);
  }
  throw new Error("scalarText: not a scalar");
}
