// Translates the Oniguruma regular expressions found in tokenizer.json files into JavaScript `u` regexes
// with the same matches. The tokenizers library compiles them with Oniguruma (Ruby syntax, UTF-8), whose
// \s, \d and \w are Unicode-aware and which has inline flags, possessive quantifiers and atomic groups.

/** Unicode White_Space: what Oniguruma's \s and Rust's char::is_whitespace match (JS \s adds U+FEFF, lacks U+0085). */
export const WHITESPACE_CLASS_BODY = "\\t\\n\\v\\f\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
// Oniguruma's Unicode \w (UTS #18 "word"): Alphabetic, marks, decimal digits, connector punctuation, joiners.
const WORD_CLASS_BODY = "\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}";
// Characters that may be escaped with a backslash in a JS `u` regex outside a character class.
const SYNTAX_CHARS = new Set("^$\\.*+?()[]{}|/".split(""));

const propertyCache = new Map<string, string>();
/** Oniguruma accepts script names bare (\p{Han}); JavaScript wants \p{Script=Han}. */
function jsProperty(name: string, negated: boolean): string {
  let resolved = propertyCache.get(name);
  if (resolved === undefined) {
    resolved = name;
    try {
      new RegExp(`\\p{${name}}`, "u");
    } catch {
      try {
        new RegExp(`\\p{Script=${name}}`, "u");
        resolved = `Script=${name}`;
      } catch {
        throw new Error(`unsupported Unicode property \\p{${name}} in a tokenizer regex`);
      }
    }
    propertyCache.set(name, resolved);
  }
  return `\\${negated ? "P" : "p"}{${resolved}}`;
}

/** Every character that matches `ch` case-insensitively (s also matches U+017F, k the Kelvin sign). */
function caseVariants(ch: string): string[] {
  const variants = new Set([ch, ch.toLowerCase(), ch.toUpperCase()]);
  for (const special of ["\u017f", "\u212a", "\u212b", "\u0130", "\u0131"]) {
    if (new RegExp(escapeForClass(ch), "iu").test(special)) variants.add(special);
  }
  return [...variants].filter((v) => [...v].length === 1);
}

function escapeForClass(ch: string): string {
  return /[\\\]\[\-^]/.test(ch) ? "\\" + ch : ch;
}

function escapeLiteral(ch: string): string {
  return SYNTAX_CHARS.has(ch) ? "\\" + ch : ch;
}

/** Escapes a literal string for use in a JS regex (a tokenizer.json `{"String": ...}` pattern). */
export function escapeRegexLiteral(text: string): string {
  return [...text].map(escapeLiteral).join("");
}

interface GroupFrame {
  outputStart: number;
  caseInsensitive: boolean;
  atomic: boolean;
  // Case-insensitivity that applied outside this group, restored when it closes.
  outerCaseInsensitive: boolean;
}

/**
 * Returns the source and flags of a JS regex that matches what Oniguruma matches for `pattern`.
 * Throws on the few constructs that have no faithful translation (backreferences, nested classes).
 */
export function translateOnigRegex(pattern: string): { source: string; flags: string } {
  const chars = [...pattern];
  let out = "";
  let i = 0;
  let caseInsensitive = false;
  let globalFlags = "";
  const groups: GroupFrame[] = [];
  let lastAtomStart = -1;
  let helperGroupCount = 0;

  const fail = (what: string): never => {
    throw new Error(`unsupported regex construct ${what} at position ${i} in tokenizer pattern ${JSON.stringify(pattern)}`);
  };

  // Translates the escape at chars[i] (a backslash); returns the JS text and advances i.
  const translateEscape = (insideClass: boolean): string => {
    const next = chars[i + 1];
    if (next === undefined) fail("trailing backslash");
    i += 2;
    switch (next) {
      case "s":
        return insideClass ? WHITESPACE_CLASS_BODY : `[${WHITESPACE_CLASS_BODY}]`;
      case "S":
        if (insideClass) fail("\\S inside a character class");
        return `[^${WHITESPACE_CLASS_BODY}]`;
      case "d":
        return "\\p{Nd}";
      case "D":
        return "\\P{Nd}";
      case "w":
        return insideClass ? WORD_CLASS_BODY : `[${WORD_CLASS_BODY}]`;
      case "W":
        if (insideClass) fail("\\W inside a character class");
        return `[^${WORD_CLASS_BODY}]`;
      case "h":
        return insideClass ? "0-9a-fA-F" : "[0-9a-fA-F]";
      case "H":
        if (insideClass) fail("\\H inside a character class");
        return "[^0-9a-fA-F]";
      case "A":
        return "^";
      case "z":
        return "$";
      case "Z":
        return "(?=\\n?$)";
      case "p":
      case "P": {
        let negated = next === "P";
        if (chars[i] === "{") {
          const close = chars.indexOf("}", i);
          if (close < 0) fail("unterminated \\p{");
          let name = chars.slice(i + 1, close).join("");
          i = close + 1;
          if (name.startsWith("^")) {
            negated = !negated;
            name = name.slice(1);
          }
          return jsProperty(name, negated);
        }
        const single = chars[i++];
        return jsProperty(single, negated);
      }
      case "x": {
        if (chars[i] === "{") {
          const close = chars.indexOf("}", i);
          const hex = chars.slice(i + 1, close).join("");
          i = close + 1;
          return `\\u{${hex}}`;
        }
        const hex = chars.slice(i, i + 2).join("");
        i += 2;
        return `\\x${hex}`;
      }
      case "u": {
        const hex = chars.slice(i, i + 4).join("");
        i += 4;
        return `\\u${hex}`;
      }
      case "t":
      case "n":
      case "r":
      case "f":
      case "v":
      case "b":
      case "B":
        if (next === "b" && insideClass) return "\\x08";
        return "\\" + next;
      case "a":
        return "\\x07";
      case "e":
        return "\\x1b";
      default:
        if (/[1-9]/.test(next)) fail("backreference");
        if (/[A-Za-z0-9]/.test(next)) fail(`escape \\${next}`);
        // A quoted punctuation character is a literal.
        return insideClass ? escapeForClass(next) : escapeLiteral(next);
    }
  };

  const translateClass = (): string => {
    // chars[i] === "["
    i++;
    let body = "";
    let negated = false;
    if (chars[i] === "^") {
      negated = true;
      i++;
    }
    let first = true;
    let previousWasClassEscape = false;
    while (i < chars.length) {
      const ch = chars[i];
      if (ch === "]" && !first) {
        i++;
        return `[${negated ? "^" : ""}${body}]`;
      }
      first = false;
      if (ch === "\\") {
        previousWasClassEscape = /[sSdDwWhHpP]/.test(chars[i + 1] ?? "");
        body += translateEscape(true);
        continue;
      }
      if (ch === "[") fail("nested character class");
      if (ch === "&" && chars[i + 1] === "&") fail("character class intersection");
      if (caseInsensitive && /\p{L}/u.test(ch)) {
        // A range a-z under (?i) also matches A-Z.
        if (chars[i + 1] === "-" && chars[i + 2] !== undefined && chars[i + 2] !== "]") {
          const end = chars[i + 2];
          body += `${escapeForClass(ch)}-${escapeForClass(end)}`;
          const upper = `${escapeForClass(ch.toUpperCase())}-${escapeForClass(end.toUpperCase())}`;
          const lower = `${escapeForClass(ch.toLowerCase())}-${escapeForClass(end.toLowerCase())}`;
          body += upper + lower;
          i += 3;
          continue;
        }
        body += caseVariants(ch).map(escapeForClass).join("");
        i++;
        continue;
      }
      if (ch === "-") {
        // A dash next to a class escape (\p{L}-x) or at either end is a literal; JS `u` regexes insist it be escaped.
        const nextIsClassEscape = chars[i + 1] === "\\" && /[sSdDwWhHpP]/.test(chars[i + 2] ?? "");
        body += body === "" || chars[i + 1] === "]" || previousWasClassEscape || nextIsClassEscape ? "\\-" : "-";
      } else {
        body += ch;
      }
      previousWasClassEscape = false;
      i++;
    }
    return fail("unterminated character class");
  };

  // Reads a quantifier at chars[i] if there is one ({n}, {n,}, {n,m}, {,m}, *, +, ?) and returns its text.
  const readQuantifier = (): string | undefined => {
    const ch = chars[i];
    if (ch === "*" || ch === "+" || ch === "?") {
      i++;
      return ch;
    }
    if (ch === "{") {
      const rest = chars.slice(i).join("");
      const m = /^\{(\d*)(,(\d*))?\}/.exec(rest);
      if (!m || (m[1] === "" && (m[2] === undefined || m[3] === ""))) return undefined;
      i += [...m[0]].length;
      return m[1] === "" ? `{0,${m[3]}}` : m[0];
    }
    return undefined;
  };

  while (i < chars.length) {
    const ch = chars[i];
    if (ch === "(") {
      if (chars[i + 1] === "?") {
        const rest = chars.slice(i + 2).join("");
        const flagGroup = /^([imx]*)(?:-([imx]*))?(:|\))/.exec(rest);
        if (flagGroup && (flagGroup[1] || flagGroup[2] !== undefined)) {
          const on = flagGroup[1];
          const off = flagGroup[2] ?? "";
          if (/[mx]/.test(on + off)) fail(`inline flag group (?${on}${off ? "-" + off : ""})`);
          i += 2 + flagGroup[0].length;
          const turnsOn = on.includes("i");
          const turnsOff = off.includes("i");
          if (flagGroup[3] === ")") {
            // (?i) applies to the rest of the enclosing group, or the whole pattern at the top level.
            if (groups.length === 0 && out === "" && turnsOn) globalFlags += "i";
            else caseInsensitive = turnsOn ? true : turnsOff ? false : caseInsensitive;
            continue;
          }
          groups.push({ outputStart: out.length, caseInsensitive: turnsOn ? true : turnsOff ? false : caseInsensitive, atomic: false, outerCaseInsensitive: caseInsensitive });
          caseInsensitive = groups[groups.length - 1].caseInsensitive;
          out += "(?:";
          continue;
        }
        const kind = chars[i + 2];
        if (kind === ":" || kind === "=" || kind === "!") {
          groups.push({ outputStart: out.length, caseInsensitive, atomic: false, outerCaseInsensitive: caseInsensitive });
          out += `(?${kind}`;
          i += 3;
          continue;
        }
        if (kind === "<" && (chars[i + 3] === "=" || chars[i + 3] === "!")) {
          groups.push({ outputStart: out.length, caseInsensitive, atomic: false, outerCaseInsensitive: caseInsensitive });
          out += `(?<${chars[i + 3]}`;
          i += 4;
          continue;
        }
        if (kind === ">") {
          groups.push({ outputStart: out.length, caseInsensitive, atomic: true, outerCaseInsensitive: caseInsensitive });
          out += "(?:";
          i += 3;
          continue;
        }
        if (kind === "<" || kind === "P") {
          // Named group: keep it as a plain group, we never read captures.
          const close = chars.indexOf(">", i);
          if (close < 0) fail("unterminated group name");
          groups.push({ outputStart: out.length, caseInsensitive, atomic: false, outerCaseInsensitive: caseInsensitive });
          out += "(?:";
          i = close + 1;
          continue;
        }
        fail(`group (?${kind}`);
      }
      groups.push({ outputStart: out.length, caseInsensitive, atomic: false, outerCaseInsensitive: caseInsensitive });
      out += "(?:";
      i++;
      continue;
    }
    if (ch === ")") {
      const group = groups.pop();
      if (!group) fail("unbalanced )");
      i++;
      out += ")";
      caseInsensitive = group!.outerCaseInsensitive;
      if (group!.atomic) {
        // An atomic group (?>X) behaves like (?=(X))\1: the lookahead commits to its first match.
        const body = out.slice(group!.outputStart);
        const name = `atomic${helperGroupCount++}`;
        out = out.slice(0, group!.outputStart) + `(?:(?=(?<${name}>${body}))\\k<${name}>)`;
      }
      lastAtomStart = group!.outputStart;
    } else if (ch === "[") {
      lastAtomStart = out.length;
      out += translateClass();
    } else if (ch === "\\") {
      lastAtomStart = out.length;
      out += translateEscape(false);
    } else if (ch === ".") {
      lastAtomStart = out.length;
      out += "[^\\n]";
      i++;
    } else if (ch === "*" || ch === "+" || ch === "?" || ch === "{") {
      const quantifier = readQuantifier();
      if (quantifier === undefined) {
        // A brace that does not start a quantifier is a literal in Oniguruma.
        lastAtomStart = out.length;
        out += "\\{";
        i++;
        continue;
      }
      if (lastAtomStart < 0) fail("quantifier with nothing to repeat");
      let lazyOrPossessive = "";
      if (chars[i] === "?") {
        lazyOrPossessive = "?";
        i++;
      } else if (chars[i] === "+") {
        lazyOrPossessive = "+";
        i++;
      }
      if (lazyOrPossessive === "+") {
        // A possessive X*+ matches like the atomic group (?>X*).
        const atom = out.slice(lastAtomStart);
        const name = `possessive${helperGroupCount++}`;
        out = out.slice(0, lastAtomStart) + `(?:(?=(?<${name}>${atom}${quantifier}))\\k<${name}>)`;
      } else {
        out += quantifier + lazyOrPossessive;
      }
      continue;
    } else if (ch === "}" || ch === "]") {
      lastAtomStart = out.length;
      out += "\\" + ch;
      i++;
    } else if (ch === "|" || ch === "^" || ch === "$") {
      lastAtomStart = -1;
      out += ch;
      i++;
    } else {
      lastAtomStart = out.length;
      if (caseInsensitive && caseVariants(ch).length > 1) out += `[${caseVariants(ch).map(escapeForClass).join("")}]`;
      else out += escapeLiteral(ch);
      i++;
    }
  }
  if (groups.length > 0) fail("unbalanced (");
  return { source: out, flags: "u" + globalFlags };
}

/** Compiles a tokenizer.json pattern ({"Regex": ...} or {"String": ...}) into a global JS regex. */
export function compileTokenizerPattern(pattern: { Regex?: string; String?: string }, where: string): RegExp {
  if (typeof pattern.Regex === "string") {
    try {
      const { source, flags } = translateOnigRegex(pattern.Regex);
      return new RegExp(source, flags + "g");
    } catch (error) {
      throw new Error(`${where}: ${(error as Error).message}`);
    }
  }
  if (typeof pattern.String === "string") return new RegExp(escapeRegexLiteral(pattern.String), "gu");
  throw new Error(`${where}: pattern must be {"Regex": ...} or {"String": ...}, got ${JSON.stringify(pattern)}`);
}

/**
 * All matches of `regex` in `text` as [start, end] UTF-16 offsets, the way Oniguruma's find_iter yields
 * them: empty matches are kept, except one that ends where the previous match ended.
 */
export function findAllMatches(regex: RegExp, text: string): Array<[number, number]> {
  const matches: Array<[number, number]> = [];
  let searchFrom = 0;
  let lastMatchEnd = -1;
  while (searchFrom <= text.length) {
    regex.lastIndex = searchFrom;
    const m = regex.exec(text);
    if (!m) break;
    const start = m.index;
    const end = start + m[0].length;
    if (start === end && lastMatchEnd === end) {
      const code = text.codePointAt(searchFrom);
      searchFrom += code !== undefined && code > 0xffff ? 2 : 1;
      continue;
    }
    matches.push([start, end]);
    searchFrom = end;
    lastMatchEnd = end;
  }
  return matches;
}
