// The stages of a Hugging Face `tokenizers` pipeline, built from the JSON of a tokenizer.json file:
// normalizer -> pre-tokenizer -> model -> post-processor, and the decoder. Each builder mirrors the
// Rust implementation's behaviour for token ids (offsets are not tracked).
import { WHITESPACE_CLASS_BODY, compileTokenizerPattern, escapeRegexLiteral, findAllMatches } from "./onig_regex.js";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

/** A piece of text on its way through the pipeline; `atStart` is true when it begins the original input. */
export interface Piece {
  text: string;
  atStart: boolean;
}

export type Normalizer = (text: string) => string;
export type PreTokenizer = (pieces: Piece[]) => Piece[];
/** A decoder works on the list of token strings, like the Rust `decode_chain`. */
export type Decoder = (tokens: string[]) => string[];

export interface TokenizerModel {
  /** Ids of one pre-tokenized piece. */
  tokenize(text: string): number[];
  tokenToId(token: string): number | undefined;
  idToToken(id: number): string | undefined;
  /** Number of entries of the model's vocabulary (added tokens excluded). */
  readonly vocabSize: number;
  vocab(): Map<string, number>;
}

export interface PostProcessor {
  /** Adds the special tokens around one sequence (or a pair). */
  process(ids: number[], pairIds: number[] | undefined, addSpecialTokens: boolean): number[];
  /** How many special tokens `process` adds, used to leave room for them when truncating. */
  addedTokenCount(isPair: boolean): number;
}

function unsupported(stage: string, type: unknown, where: string): never {
  throw new Error(
    `unsupported ${stage} type ${JSON.stringify(type)} in ${where}. ` +
      `Supported ${stage}s: ${SUPPORTED[stage]?.join(", ") ?? "none"}.`,
  );
}

const SUPPORTED: Record<string, string[]> = {
  normalizer: ["NFC", "NFD", "NFKC", "NFKD", "Lowercase", "Prepend", "Replace", "Sequence", "Strip", "StripAccents", "BertNormalizer", "ByteLevel"],
  "pre-tokenizer": ["ByteLevel", "Split", "Metaspace", "Digits", "Punctuation", "Whitespace", "WhitespaceSplit", "BertPreTokenizer", "CharDelimiterSplit", "Sequence"],
  model: ["BPE", "WordPiece", "WordLevel"],
  decoder: ["ByteLevel", "Metaspace", "ByteFallback", "Fuse", "Strip", "Replace", "WordPiece", "BPEDecoder", "Sequence"],
  "post-processor": ["TemplateProcessing", "ByteLevel", "RobertaProcessing", "BertProcessing", "Sequence"],
};

// ---------------------------------------------------------------------------------------------
// Character classes as the Rust side defines them.

const WHITESPACE = new RegExp(`^[${WHITESPACE_CLASS_BODY}]$`, "u");
export const isWhitespace = (ch: string) => WHITESPACE.test(ch);
const NUMERIC = /^\p{N}$/u;
// Rust's char::is_ascii_punctuation() || unicode P* categories (tokenizers' is_punc / is_bert_punc).
const PUNCTUATION = /^[\p{P}!-/:-@[-`{-~]$/u;
const ALPHANUMERIC = /^[\p{Alphabetic}\p{N}]$/u;

/** Rust str::trim family for White_Space. */
function stripWhitespace(text: string, left: boolean, right: boolean): string {
  const chars = [...text];
  let start = 0;
  let end = chars.length;
  if (left) while (start < end && isWhitespace(chars[start])) start++;
  if (right) while (end > start && isWhitespace(chars[end - 1])) end--;
  return chars.slice(start, end).join("");
}

// ---------------------------------------------------------------------------------------------
// GPT-2's reversible byte <-> printable character map (bytes_to_unicode).

function buildByteMaps(): { byteToChar: string[]; charToByte: Map<string, number> } {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const byteToChar: string[] = new Array(256);
  const printableSet = new Set(printable);
  for (const b of printable) byteToChar[b] = String.fromCodePoint(b);
  let next = 0;
  for (let b = 0; b < 256; b++) {
    if (!printableSet.has(b)) byteToChar[b] = String.fromCodePoint(256 + next++);
  }
  const charToByte = new Map<string, number>();
  byteToChar.forEach((ch, b) => charToByte.set(ch, b));
  return { byteToChar, charToByte };
}
export const { byteToChar: BYTE_TO_CHAR, charToByte: CHAR_TO_BYTE } = buildByteMaps();

const utf8Encoder = new TextEncoder();
// ignoreBOM keeps a decoded U+FEFF (TextDecoder would otherwise drop a leading one).
const lossyDecoder = new TextDecoder("utf-8", { ignoreBOM: true });
const strictDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function toByteLevelChars(text: string): string {
  let out = "";
  for (const b of utf8Encoder.encode(text)) out += BYTE_TO_CHAR[b];
  return out;
}

// ---------------------------------------------------------------------------------------------
// Splitting a piece the way NormalizedString::split does.

type SplitBehavior = "Removed" | "Isolated" | "MergedWithPrevious" | "MergedWithNext" | "Contiguous";
/** [start, end, isMatch] ranges covering the whole text. */
type MatchRanges = Array<[number, number, boolean]>;

function rangesFromMatches(text: string, matches: Array<[number, number]>): MatchRanges {
  if (text.length === 0) return [[0, 0, false]];
  const ranges: MatchRanges = [];
  let previous = 0;
  for (const [start, end] of matches) {
    if (previous !== start) ranges.push([previous, start, false]);
    ranges.push([start, end, true]);
    previous = end;
  }
  if (previous !== text.length) ranges.push([previous, text.length, false]);
  return ranges;
}

/** Each character for which `test` holds is its own match; runs of the others are gaps. */
function rangesFromCharTest(text: string, test: (ch: string) => boolean): MatchRanges {
  if (text.length === 0) return [[0, 0, false]];
  const ranges: MatchRanges = [];
  let lastOffset = 0;
  let offset = 0;
  for (const ch of text) {
    const end = offset + ch.length;
    if (test(ch)) {
      if (lastOffset < offset) ranges.push([lastOffset, offset, false]);
      ranges.push([offset, end, true]);
      lastOffset = end;
    }
    offset = end;
  }
  if (offset > lastOffset) ranges.push([lastOffset, offset, false]);
  return ranges;
}

function splitPiece(piece: Piece, ranges: MatchRanges, behavior: SplitBehavior, invert = false): Piece[] {
  const flagged: MatchRanges = invert ? ranges.map(([s, e, m]) => [s, e, !m]) : ranges;
  // [start, end, remove]
  let splits: Array<[number, number, boolean]>;
  switch (behavior) {
    case "Isolated":
      splits = flagged.map(([s, e]) => [s, e, false]);
      break;
    case "Removed":
      splits = flagged;
      break;
    case "Contiguous": {
      splits = [];
      let previousMatch = false;
      for (const [s, e, isMatch] of flagged) {
        if (isMatch === previousMatch && splits.length > 0) splits[splits.length - 1][1] = e;
        else splits.push([s, e, false]);
        previousMatch = isMatch;
      }
      break;
    }
    case "MergedWithPrevious": {
      splits = [];
      let previousMatch = false;
      for (const [s, e, isMatch] of flagged) {
        if (isMatch && !previousMatch && splits.length > 0) splits[splits.length - 1][1] = e;
        else splits.push([s, e, false]);
        previousMatch = isMatch;
      }
      break;
    }
    case "MergedWithNext": {
      splits = [];
      let previousMatch = false;
      for (let k = flagged.length - 1; k >= 0; k--) {
        const [s, e, isMatch] = flagged[k];
        if (isMatch && !previousMatch && splits.length > 0) splits[splits.length - 1][0] = s;
        else splits.push([s, e, false]);
        previousMatch = isMatch;
      }
      splits.reverse();
      break;
    }
    default:
      throw new Error(`unknown split behavior ${JSON.stringify(behavior)}`);
  }
  const pieces: Piece[] = [];
  for (const [s, e, remove] of splits) {
    if (remove || e <= s) continue;
    pieces.push({ text: piece.text.slice(s, e), atStart: piece.atStart && s === 0 });
  }
  return pieces;
}

// Empty pieces are dropped before and after each split, as PreTokenizedString::split does.
const splitEach = (pieces: Piece[], fn: (piece: Piece) => Piece[]): Piece[] =>
  pieces.flatMap((p) => (p.text.length === 0 ? [] : fn(p).filter((q) => q.text.length > 0)));

function parseBehavior(value: unknown, where: string): SplitBehavior {
  // Old files spell the behaviour in lower case ("isolated"); serde accepts both.
  const name = String(value ?? "Isolated");
  const canonical = ({ removed: "Removed", isolated: "Isolated", merged_with_previous: "MergedWithPrevious", merged_with_next: "MergedWithNext", contiguous: "Contiguous" } as Record<string, SplitBehavior>)[name.toLowerCase()] ?? (name as SplitBehavior);
  if (!["Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"].includes(canonical)) {
    throw new Error(`unknown split behavior ${JSON.stringify(value)} in ${where}`);
  }
  return canonical;
}

// ---------------------------------------------------------------------------------------------
// Normalizers.

function replaceMatches(text: string, regex: RegExp, content: string): string {
  const matches = findAllMatches(regex, text);
  if (matches.length === 0) return text;
  let out = "";
  let previous = 0;
  for (const [start, end] of matches) {
    out += text.slice(previous, start) + content;
    previous = end;
  }
  return out + text.slice(previous);
}

const isBertControl = (ch: string) => ch !== "\t" && ch !== "\n" && ch !== "\r" && /^[\p{Cc}\p{Cf}\p{Cn}\p{Co}]$/u.test(ch);
const isBertWhitespace = (ch: string) => isWhitespace(ch);
function isChineseChar(ch: string): boolean {
  const c = ch.codePointAt(0)!;
  return (
    (c >= 0x4e00 && c <= 0x9fff) || (c >= 0x3400 && c <= 0x4dbf) || (c >= 0x20000 && c <= 0x2a6df) || (c >= 0x2a700 && c <= 0x2b73f) ||
    (c >= 0x2b740 && c <= 0x2b81f) || (c >= 0x2b920 && c <= 0x2ceaf) || (c >= 0xf900 && c <= 0xfaff) || (c >= 0x2f800 && c <= 0x2fa1f)
  );
}
const lowercaseChars = (text: string) => [...text].map((ch) => ch.toLowerCase()).join("");
const stripMarks = (text: string) => text.replace(/\p{M}/gu, "");

export function buildNormalizer(spec: Json, where: string): Normalizer | undefined {
  if (spec === null || spec === undefined) return undefined;
  switch (spec.type) {
    case "NFC":
    case "NFD":
    case "NFKC":
    case "NFKD":
      return (text) => text.normalize(spec.type);
    case "Lowercase":
      return lowercaseChars;
    case "Prepend":
      return (text) => (text.length > 0 ? spec.prepend + text : text);
    case "Replace": {
      const regex = compileTokenizerPattern(spec.pattern, where);
      const content = String(spec.content);
      return (text) => replaceMatches(text, regex, content);
    }
    case "Strip":
      return (text) => stripWhitespace(text, spec.strip_left ?? true, spec.strip_right ?? true);
    case "StripAccents":
      return stripMarks;
    case "ByteLevel":
      return toByteLevelChars;
    case "BertNormalizer": {
      const cleanText = spec.clean_text ?? true;
      const chinese = spec.handle_chinese_chars ?? true;
      const lowercase = spec.lowercase ?? true;
      const stripAccents = spec.strip_accents ?? lowercase;
      return (text) => {
        let out = "";
        for (const ch of text) {
          if (cleanText && (ch === "\0" || ch === "\ufffd" || isBertControl(ch))) continue;
          const cleaned = cleanText && isBertWhitespace(ch) ? " " : ch;
          out += chinese && isChineseChar(cleaned) ? ` ${cleaned} ` : cleaned;
        }
        if (stripAccents) out = stripMarks(out.normalize("NFD"));
        if (lowercase) out = lowercaseChars(out);
        return out;
      };
    }
    case "Sequence": {
      const stages = (spec.normalizers as Json[]).map((s) => buildNormalizer(s, where)).filter((s): s is Normalizer => !!s);
      return (text) => stages.reduce((t, stage) => stage(t), text);
    }
    default:
      return unsupported("normalizer", spec.type, where);
  }
}

// ---------------------------------------------------------------------------------------------
// Pre-tokenizers.

// GPT-2's split pattern, the one ByteLevel uses when use_regex is true.
const GPT2_PATTERN = { Regex: "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+" };
// The Whitespace pre-tokenizer's pattern.
const WORD_PATTERN = { Regex: "\\w+|[^\\w\\s]+" };

export function buildPreTokenizer(spec: Json, where: string): PreTokenizer | undefined {
  if (spec === null || spec === undefined) return undefined;
  switch (spec.type) {
    case "ByteLevel": {
      const addPrefixSpace = spec.add_prefix_space ?? true;
      const useRegex = spec.use_regex ?? true;
      const regex = compileTokenizerPattern(GPT2_PATTERN, where);
      return (pieces) => {
        const split = splitEach(pieces, (piece) => {
          const text = addPrefixSpace && !piece.text.startsWith(" ") ? " " + piece.text : piece.text;
          const prefixed = { text, atStart: piece.atStart };
          return useRegex ? splitPiece(prefixed, rangesFromMatches(text, findAllMatches(regex, text)), "Isolated") : [prefixed];
        });
        return split.map((p) => ({ text: toByteLevelChars(p.text), atStart: p.atStart }));
      };
    }
    case "Split": {
      const regex = compileTokenizerPattern(spec.pattern, where);
      const behavior = parseBehavior(spec.behavior, where);
      const invert = !!spec.invert;
      return (pieces) => splitEach(pieces, (p) => splitPiece(p, rangesFromMatches(p.text, findAllMatches(regex, p.text)), behavior, invert));
    }
    case "Metaspace": {
      const replacement: string = spec.replacement ?? "▁";
      // Files written before tokenizers 0.19 carry add_prefix_space instead of prepend_scheme.
      const scheme: string = spec.prepend_scheme ?? (spec.add_prefix_space === false ? "never" : "always");
      const split = spec.split ?? true;
      return (pieces) =>
        splitEach(pieces, (piece) => {
          let text = piece.text.split(" ").join(replacement);
          if (scheme === "always" || (scheme === "first" && piece.atStart)) {
            if (!text.startsWith(replacement)) text = replacement + text;
          }
          const replaced = { text, atStart: piece.atStart };
          return split ? splitPiece(replaced, rangesFromCharTest(text, (ch) => ch === replacement), "MergedWithNext") : [replaced];
        });
    }
    case "Digits": {
      const behavior: SplitBehavior = spec.individual_digits ? "Isolated" : "Contiguous";
      return (pieces) => splitEach(pieces, (p) => splitPiece(p, rangesFromCharTest(p.text, (ch) => NUMERIC.test(ch)), behavior));
    }
    case "Punctuation": {
      const behavior = parseBehavior(spec.behavior ?? "Isolated", where);
      return (pieces) => splitEach(pieces, (p) => splitPiece(p, rangesFromCharTest(p.text, (ch) => PUNCTUATION.test(ch)), behavior));
    }
    case "Whitespace": {
      const regex = compileTokenizerPattern(WORD_PATTERN, where);
      return (pieces) => splitEach(pieces, (p) => splitPiece(p, rangesFromMatches(p.text, findAllMatches(regex, p.text)), "Removed", true));
    }
    case "WhitespaceSplit":
      return (pieces) => splitEach(pieces, (p) => splitPiece(p, rangesFromCharTest(p.text, isWhitespace), "Removed"));
    case "BertPreTokenizer":
      return (pieces) =>
        splitEach(
          splitEach(pieces, (p) => splitPiece(p, rangesFromCharTest(p.text, isWhitespace), "Removed")),
          (p) => splitPiece(p, rangesFromCharTest(p.text, (ch) => PUNCTUATION.test(ch)), "Isolated"),
        );
    case "CharDelimiterSplit": {
      const delimiter = String(spec.delimiter);
      return (pieces) => splitEach(pieces, (p) => splitPiece(p, rangesFromCharTest(p.text, (ch) => ch === delimiter), "Removed"));
    }
    case "Sequence": {
      const stages = (spec.pretokenizers as Json[]).map((s) => buildPreTokenizer(s, where)).filter((s): s is PreTokenizer => !!s);
      return (pieces) => stages.reduce((ps, stage) => stage(ps), pieces);
    }
    default:
      return unsupported("pre-tokenizer", spec.type, where);
  }
}

// ---------------------------------------------------------------------------------------------
// Models.

/** Reads a vocab that is either {token: id} or (WordLevel/Unigram style) [[token, score], ...]. */
function readVocab(vocab: Json, where: string): Map<string, number> {
  if (vocab === null || typeof vocab !== "object" || Array.isArray(vocab)) {
    throw new Error(`${where}: model.vocab must be an object mapping tokens to ids`);
  }
  const map = new Map<string, number>();
  for (const [token, id] of Object.entries(vocab)) map.set(token, id as number);
  return map;
}

function reverseVocab(vocab: Map<string, number>): Map<number, string> {
  const reverse = new Map<number, string>();
  for (const [token, id] of vocab) reverse.set(id, token);
  return reverse;
}

// Merge keys pack two ids into one number; vocabularies stay far below 2^22 entries.
const PAIR_STRIDE = 4194304;

/** A pending merge of the symbol at `pos` with its right neighbour. */
interface MergeCandidate {
  pos: number;
  rank: number;
  newId: number;
}

/** Binary min-heap ordered by (rank, pos), like tokenizers' BinaryHeap<Merge>. */
class MergeQueue {
  private items: MergeCandidate[] = [];
  get size(): number {
    return this.items.length;
  }
  private less(a: MergeCandidate, b: MergeCandidate): boolean {
    return a.rank !== b.rank ? a.rank < b.rank : a.pos < b.pos;
  }
  push(item: MergeCandidate): void {
    const items = this.items;
    items.push(item);
    let k = items.length - 1;
    while (k > 0) {
      const parent = (k - 1) >> 1;
      if (!this.less(items[k], items[parent])) break;
      [items[k], items[parent]] = [items[parent], items[k]];
      k = parent;
    }
  }
  pop(): MergeCandidate | undefined {
    const items = this.items;
    if (items.length === 0) return undefined;
    const top = items[0];
    const last = items.pop()!;
    if (items.length > 0) {
      items[0] = last;
      let k = 0;
      for (;;) {
        const left = 2 * k + 1;
        const right = left + 1;
        let smallest = k;
        if (left < items.length && this.less(items[left], items[smallest])) smallest = left;
        if (right < items.length && this.less(items[right], items[smallest])) smallest = right;
        if (smallest === k) break;
        [items[k], items[smallest]] = [items[smallest], items[k]];
        k = smallest;
      }
    }
    return top;
  }
}

/** The model's unk_token, which must be in the vocab when given (else every unknown word fails later, far from the file). */
function readUnkToken(spec: Json, vocab: Map<string, number>, where: string, model: string): string | undefined {
  const unk = spec.unk_token;
  if (unk === undefined || unk === null) return undefined;
  if (typeof unk !== "string") throw new Error(`${where}: model.unk_token must be a string, got ${JSON.stringify(unk)}`);
  if (!vocab.has(unk)) throw new Error(`${where}: the ${model} model's unk_token ${JSON.stringify(unk)} is not in model.vocab; add it to the vocab or fix model.unk_token in tokenizer.json`);
  return unk;
}

export class BpeModel implements TokenizerModel {
  private readonly vocabMap: Map<string, number>;
  private readonly reverse: Map<number, string>;
  // pair key -> [rank, new id]
  private readonly merges = new Map<number, [number, number]>();
  private readonly unkToken: string | undefined;
  private readonly continuingSubwordPrefix: string | undefined;
  private readonly endOfWordSuffix: string | undefined;
  private readonly fuseUnk: boolean;
  private readonly byteFallback: boolean;
  private readonly ignoreMerges: boolean;
  private readonly cache = new Map<string, number[]>();

  constructor(spec: Json, where: string) {
    this.vocabMap = readVocab(spec.vocab, where);
    this.reverse = reverseVocab(this.vocabMap);
    this.unkToken = readUnkToken(spec, this.vocabMap, where, "BPE");
    this.continuingSubwordPrefix = spec.continuing_subword_prefix ?? undefined;
    this.endOfWordSuffix = spec.end_of_word_suffix ?? undefined;
    this.fuseUnk = !!spec.fuse_unk;
    this.byteFallback = !!spec.byte_fallback;
    this.ignoreMerges = !!spec.ignore_merges;
    if (spec.dropout) throw new Error(`${where}: BPE dropout ${spec.dropout} is not supported (it makes encoding random)`);
    const merges: Json[] = spec.merges ?? [];
    const prefixLength = this.continuingSubwordPrefix?.length ?? 0;
    merges.forEach((merge, rank) => {
      let left: string;
      let right: string;
      if (Array.isArray(merge)) {
        [left, right] = merge;
      } else {
        // The legacy form "a b" splits at the first space.
        const space = String(merge).indexOf(" ");
        if (space < 0) throw new Error(`${where}: merge #${rank} ${JSON.stringify(merge)} is not of the form "a b"`);
        left = merge.slice(0, space);
        right = merge.slice(space + 1);
      }
      const leftId = this.vocabMap.get(left);
      const rightId = this.vocabMap.get(right);
      if (leftId === undefined || rightId === undefined) {
        throw new Error(`${where}: merge #${rank} (${JSON.stringify(left)}, ${JSON.stringify(right)}) uses a token missing from the vocab`);
      }
      const merged = left + (this.continuingSubwordPrefix && right.startsWith(this.continuingSubwordPrefix) ? right.slice(prefixLength) : right);
      const newId = this.vocabMap.get(merged);
      if (newId === undefined) throw new Error(`${where}: merge #${rank} makes ${JSON.stringify(merged)}, which is missing from the vocab`);
      const key = leftId * PAIR_STRIDE + rightId;
      // A pair listed twice keeps its last rank, as the Rust HashMap built from the list does.
      this.merges.set(key, [rank, newId]);
    });
  }

  get vocabSize(): number {
    return this.vocabMap.size;
  }
  vocab(): Map<string, number> {
    return this.vocabMap;
  }
  tokenToId(token: string): number | undefined {
    return this.vocabMap.get(token);
  }
  idToToken(id: number): string | undefined {
    return this.reverse.get(id);
  }

  tokenize(text: string): number[] {
    if (text.length === 0) return [];
    if (this.ignoreMerges) {
      const whole = this.vocabMap.get(text);
      if (whole !== undefined) return [whole];
    }
    const cached = this.cache.get(text);
    if (cached) return cached;
    const ids = this.mergeWord(text);
    if (this.cache.size > 20000) this.cache.clear();
    this.cache.set(text, ids);
    return ids;
  }

  private unkId(): number {
    const id = this.vocabMap.get(this.unkToken!);
    if (id === undefined) throw new Error(`the BPE unknown token ${JSON.stringify(this.unkToken)} is not in the vocab`);
    return id;
  }

  private mergeWord(word: string): number[] {
    const chars = [...word];
    const symbols: number[] = [];
    let pendingUnk = false;
    chars.forEach((ch, index) => {
      let piece = ch;
      if (index > 0 && this.continuingSubwordPrefix) piece = this.continuingSubwordPrefix + piece;
      if (index === chars.length - 1 && this.endOfWordSuffix) piece = piece + this.endOfWordSuffix;
      const id = this.vocabMap.get(piece);
      if (id !== undefined) {
        if (pendingUnk) symbols.push(this.unkId());
        pendingUnk = false;
        symbols.push(id);
        return;
      }
      if (this.byteFallback) {
        const byteIds = [...utf8Encoder.encode(piece)].map((b) => this.vocabMap.get(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`));
        if (byteIds.every((b) => b !== undefined)) {
          // tokenizers adds the byte tokens without flushing a pending unknown token first.
          symbols.push(...(byteIds as number[]));
          return;
        }
      }
      if (this.unkToken !== undefined) {
        if (pendingUnk && !this.fuseUnk) symbols.push(this.unkId());
        pendingUnk = true;
      }
    });
    if (pendingUnk) symbols.push(this.unkId());
    return this.mergeAll(symbols);
  }

  /** Applies merges lowest rank first (leftmost on ties) until none applies, like Word::merge_all. */
  private mergeAll(ids: number[]): number[] {
    const n = ids.length;
    if (n < 2 || this.merges.size === 0) return ids;
    const symbol = ids.slice();
    const prev = ids.map((_, k) => k - 1);
    const next = ids.map((_, k) => (k + 1 < n ? k + 1 : -1));
    const removed = new Array<boolean>(n).fill(false);
    const queue = new MergeQueue();
    for (let k = 0; k + 1 < n; k++) {
      const merge = this.merges.get(symbol[k] * PAIR_STRIDE + symbol[k + 1]);
      if (merge) queue.push({ pos: k, rank: merge[0], newId: merge[1] });
    }
    while (queue.size > 0) {
      const top = queue.pop()!;
      if (removed[top.pos]) continue;
      const right = next[top.pos];
      if (right === -1) continue;
      const current = this.merges.get(symbol[top.pos] * PAIR_STRIDE + symbol[right]);
      if (!current || current[1] !== top.newId) continue;
      symbol[top.pos] = top.newId;
      removed[right] = true;
      next[top.pos] = next[right];
      if (next[right] !== -1) prev[next[right]] = top.pos;
      const before = prev[top.pos];
      if (before >= 0) {
        const merge = this.merges.get(symbol[before] * PAIR_STRIDE + symbol[top.pos]);
        if (merge) queue.push({ pos: before, rank: merge[0], newId: merge[1] });
      }
      const after = next[top.pos];
      if (after !== -1) {
        const merge = this.merges.get(symbol[top.pos] * PAIR_STRIDE + symbol[after]);
        if (merge) queue.push({ pos: top.pos, rank: merge[0], newId: merge[1] });
      }
    }
    const out: number[] = [];
    for (let k = 0; k < n; k++) if (!removed[k]) out.push(symbol[k]);
    return out;
  }
}

class WordPieceModel implements TokenizerModel {
  private readonly vocabMap: Map<string, number>;
  private readonly reverse: Map<number, string>;
  private readonly unkToken: string;
  private readonly prefix: string;
  private readonly maxChars: number;

  constructor(spec: Json, where: string) {
    this.vocabMap = readVocab(spec.vocab, where);
    this.reverse = reverseVocab(this.vocabMap);
    this.unkToken = readUnkToken(spec, this.vocabMap, where, "WordPiece") ?? "[UNK]";
    this.prefix = spec.continuing_subword_prefix ?? "##";
    this.maxChars = spec.max_input_chars_per_word ?? 100;
  }
  get vocabSize(): number {
    return this.vocabMap.size;
  }
  vocab(): Map<string, number> {
    return this.vocabMap;
  }
  tokenToId(token: string): number | undefined {
    return this.vocabMap.get(token);
  }
  idToToken(id: number): string | undefined {
    return this.reverse.get(id);
  }
  private unk(): number[] {
    const id = this.vocabMap.get(this.unkToken);
    if (id === undefined) throw new Error(`the WordPiece unknown token ${JSON.stringify(this.unkToken)} is not in the vocab`);
    return [id];
  }
  tokenize(text: string): number[] {
    const chars = [...text];
    if (chars.length > this.maxChars) return this.unk();
    const ids: number[] = [];
    let start = 0;
    while (start < chars.length) {
      let end = chars.length;
      let found: number | undefined;
      while (start < end) {
        let candidate = chars.slice(start, end).join("");
        if (start > 0) candidate = this.prefix + candidate;
        found = this.vocabMap.get(candidate);
        if (found !== undefined) break;
        end--;
      }
      if (found === undefined) return this.unk();
      ids.push(found);
      start = end;
    }
    return ids;
  }
}

class WordLevelModel implements TokenizerModel {
  private readonly vocabMap: Map<string, number>;
  private readonly reverse: Map<number, string>;
  private readonly unkToken: string | undefined;
  constructor(spec: Json, where: string) {
    this.vocabMap = readVocab(spec.vocab, where);
    this.reverse = reverseVocab(this.vocabMap);
    this.unkToken = readUnkToken(spec, this.vocabMap, where, "WordLevel");
  }
  get vocabSize(): number {
    return this.vocabMap.size;
  }
  vocab(): Map<string, number> {
    return this.vocabMap;
  }
  tokenToId(token: string): number | undefined {
    return this.vocabMap.get(token);
  }
  idToToken(id: number): string | undefined {
    return this.reverse.get(id);
  }
  tokenize(text: string): number[] {
    const id = this.vocabMap.get(text) ?? (this.unkToken !== undefined ? this.vocabMap.get(this.unkToken) : undefined);
    if (id === undefined) throw new Error(`WordLevel: ${JSON.stringify(text)} is not in the vocab and there is no unknown token`);
    return [id];
  }
}

export function buildModel(spec: Json, where: string): TokenizerModel {
  if (!spec) throw new Error(`${where} has no "model"`);
  // Very old files omit the type of a BPE model.
  const type = spec.type ?? (spec.merges ? "BPE" : undefined);
  switch (type) {
    case "BPE":
      return new BpeModel(spec, where);
    case "WordPiece":
      return new WordPieceModel(spec, where);
    case "WordLevel":
      return new WordLevelModel(spec, where);
    default:
      return unsupported("model", type, where);
  }
}

// ---------------------------------------------------------------------------------------------
// Decoders.

function decodeByteFallback(tokens: string[]): string[] {
  const out: string[] = [];
  let pendingBytes: number[] = [];
  const flush = () => {
    if (pendingBytes.length === 0) return;
    try {
      out.push(strictDecoder.decode(new Uint8Array(pendingBytes)));
    } catch {
      // Invalid UTF-8 becomes one replacement character per byte.
      for (let k = 0; k < pendingBytes.length; k++) out.push("\ufffd");
    }
    pendingBytes = [];
  };
  for (const token of tokens) {
    const m = token.length === 6 ? /^<0x([0-9A-Fa-f]{2})>$/.exec(token) : null;
    if (m) {
      pendingBytes.push(parseInt(m[1], 16));
      continue;
    }
    flush();
    out.push(token);
  }
  flush();
  return out;
}

function decodeByteLevel(tokens: string[]): string[] {
  const bytes: number[] = [];
  for (const token of tokens) {
    const mapped: number[] = [];
    let allMapped = true;
    for (const ch of token) {
      const b = CHAR_TO_BYTE.get(ch);
      if (b === undefined) {
        allMapped = false;
        break;
      }
      mapped.push(b);
    }
    // A token with characters outside the byte alphabet (an added token, say) passes through as UTF-8.
    if (allMapped) bytes.push(...mapped);
    else bytes.push(...utf8Encoder.encode(token));
  }
  return [lossyDecoder.decode(new Uint8Array(bytes))];
}

function wordPieceCleanup(text: string): string {
  return text
    .replaceAll(" .", ".")
    .replaceAll(" ?", "?")
    .replaceAll(" !", "!")
    .replaceAll(" ,", ",")
    .replaceAll(" ' ", "'")
    .replaceAll(" n't", "n't")
    .replaceAll(" 'm", "'m")
    .replaceAll(" do not", " don't")
    .replaceAll(" 's", "'s")
    .replaceAll(" 've", "'ve")
    .replaceAll(" 're", "'re");
}

export function buildDecoder(spec: Json, where: string): Decoder | undefined {
  if (spec === null || spec === undefined) return undefined;
  switch (spec.type) {
    case "ByteLevel":
      return decodeByteLevel;
    case "Metaspace": {
      const replacement: string = spec.replacement ?? "▁";
      const scheme: string = spec.prepend_scheme ?? (spec.add_prefix_space === false ? "never" : "always");
      return (tokens) =>
        tokens.map((token, index) => {
          let out = "";
          for (const ch of token) {
            // tokenizers drops every replacement character of the first token unless the scheme is "never".
            if (ch === replacement) out += index === 0 && scheme !== "never" ? "" : " ";
            else out += ch;
          }
          return out;
        });
    }
    case "ByteFallback":
      return decodeByteFallback;
    case "Fuse":
      return (tokens) => [tokens.join("")];
    case "Strip": {
      const content: string = spec.content;
      const startCount: number = spec.start ?? 0;
      const stopCount: number = spec.stop ?? 0;
      return (tokens) =>
        tokens.map((token) => {
          const chars = [...token];
          let startCut = 0;
          for (let k = 0; k < Math.min(startCount, chars.length); k++) {
            if (chars[k] === content) startCut = k + 1;
            else break;
          }
          let stopCut = chars.length;
          for (let k = 0; k < Math.min(stopCount, chars.length); k++) {
            const index = chars.length - k - 1;
            if (chars[index] === content) stopCut = index;
            else break;
          }
          return chars.slice(startCut, Math.max(startCut, stopCut)).join("");
        });
    }
    case "Replace": {
      const regex = compileTokenizerPattern(spec.pattern, where);
      const content = String(spec.content);
      return (tokens) => tokens.map((token) => replaceMatches(token, regex, content));
    }
    case "WordPiece": {
      const prefix: string = spec.prefix ?? "##";
      const cleanup = spec.cleanup ?? true;
      return (tokens) =>
        tokens.map((token, index) => {
          let out = token;
          if (index !== 0) out = out.startsWith(prefix) ? out.slice(prefix.length) : " " + out;
          return cleanup ? wordPieceCleanup(out) : out;
        });
    }
    case "BPEDecoder": {
      const suffix: string = spec.suffix ?? "</w>";
      return (tokens) => tokens.map((token, index) => token.split(suffix).join(index === tokens.length - 1 ? "" : " "));
    }
    case "Sequence": {
      const stages = (spec.decoders as Json[]).map((s) => buildDecoder(s, where)).filter((s): s is Decoder => !!s);
      return (tokens) => stages.reduce((ts, stage) => stage(ts), tokens);
    }
    default:
      return unsupported("decoder", spec.type, where);
  }
}

// ---------------------------------------------------------------------------------------------
// Post-processors.

export function buildPostProcessor(spec: Json, where: string): PostProcessor | undefined {
  if (spec === null || spec === undefined) return undefined;
  switch (spec.type) {
    case "ByteLevel":
      // Only adjusts offsets.
      return { process: (ids, pair) => (pair ? [...ids, ...pair] : ids), addedTokenCount: () => 0 };
    case "TemplateProcessing": {
      const specialIds = (name: string): number[] => {
        const entry = spec.special_tokens?.[name];
        if (!entry) throw new Error(`${where}: TemplateProcessing uses special token ${JSON.stringify(name)} missing from its special_tokens`);
        return entry.ids as number[];
      };
      type Part = { sequence: "A" | "B" } | { special: number[] };
      const parse = (template: Json[] | undefined): Part[] =>
        (template ?? []).map((item) => {
          if (item.Sequence) return { sequence: item.Sequence.id as "A" | "B" };
          if (item.SpecialToken) return { special: specialIds(item.SpecialToken.id) };
          throw new Error(`${where}: unknown TemplateProcessing item ${JSON.stringify(item)}`);
        });
      const single = parse(spec.single);
      const pair = parse(spec.pair);
      const count = (parts: Part[]) => parts.reduce((sum, part) => sum + ("special" in part ? part.special.length : 0), 0);
      return {
        process(ids, pairIds, addSpecialTokens) {
          if (!addSpecialTokens) return pairIds ? [...ids, ...pairIds] : ids;
          const out: number[] = [];
          for (const part of pairIds ? pair : single) {
            if ("special" in part) out.push(...part.special);
            else out.push(...(part.sequence === "A" ? ids : (pairIds ?? [])));
          }
          return out;
        },
        addedTokenCount: (isPair) => count(isPair ? pair : single),
      };
    }
    case "RobertaProcessing":
    case "BertProcessing": {
      const [, sepId] = spec.sep as [string, number];
      const [, clsId] = spec.cls as [string, number];
      const roberta = spec.type === "RobertaProcessing";
      return {
        process(ids, pairIds, addSpecialTokens) {
          if (!addSpecialTokens) return pairIds ? [...ids, ...pairIds] : ids;
          const out = [clsId, ...ids, sepId];
          if (pairIds) out.push(...(roberta ? [sepId] : []), ...pairIds, sepId);
          return out;
        },
        addedTokenCount: (isPair) => (isPair ? (roberta ? 4 : 3) : 2),
      };
    }
    case "Sequence": {
      const stages = (spec.processors as Json[]).map((s) => buildPostProcessor(s, where)).filter((s): s is PostProcessor => !!s);
      return {
        process(ids, pairIds, addSpecialTokens) {
          // Only the first stage sees the pair; later stages see the merged sequence.
          let out = ids;
          let pending = pairIds;
          for (const stage of stages) {
            out = stage.process(out, pending, addSpecialTokens);
            pending = undefined;
          }
          return pending ? [...out, ...pending] : out;
        },
        addedTokenCount: (isPair) => stages.reduce((sum, stage) => sum + stage.addedTokenCount(isPair), 0),
      };
    }
    default:
      return unsupported("post-processor", spec.type, where);
  }
}

export { isWhitespace as isUnicodeWhitespace, escapeRegexLiteral };
export const isAlphanumericOrUnderscore = (ch: string) => ch === "_" || ALPHANUMERIC.test(ch);
