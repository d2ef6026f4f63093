// Hugging Face tokenizers in TypeScript: loads a model folder's tokenizer.json, tokenizer_config.json and
// special_tokens_map.json and encodes/decodes exactly like transformers' fast tokenizers (the Rust
// `tokenizers` library underneath), including added tokens, truncation, padding and chat templates.
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { renderChatTemplate, type ChatMessage } from "./chat_template.js";
import { escapeRegexLiteral } from "./onig_regex.js";
import {
  buildDecoder,
  buildModel,
  buildNormalizer,
  buildPostProcessor,
  buildPreTokenizer,
  isAlphanumericOrUnderscore,
  isUnicodeWhitespace,
  type Decoder,
  type Json,
  type Normalizer,
  type PostProcessor,
  type PreTokenizer,
  type TokenizerModel,
} from "./tokenizer_pipeline.js";

/** An entry of tokenizer.json's `added_tokens` (or tokenizer_config.json's `added_tokens_decoder`). */
export interface AddedToken {
  id: number;
  content: string;
  single_word: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

export type PaddingSide = "left" | "right";

export interface EncodeOptions {
  /** Add the post-processor's special tokens (BOS/EOS...). Default true, like transformers. */
  addSpecialTokens?: boolean;
  /** Cut to `maxLength` tokens (special tokens included). Default false. */
  truncation?: boolean;
  maxLength?: number;
  /** Which end truncation removes tokens from; default tokenizer_config.json's truncation_side or "right". */
  truncationSide?: PaddingSide;
}

export interface EncodeBatchOptions extends EncodeOptions {
  /** "longest" pads to the longest sequence, "max_length" to `maxLength`; true means "longest". Default false. */
  padding?: "longest" | "max_length" | boolean;
  /** Default tokenizer_config.json's padding_side or "right". */
  paddingSide?: PaddingSide;
  padToMultipleOf?: number;
}

export interface BatchEncoding {
  input_ids: number[][];
  attention_mask: number[][];
}

export interface DecodeOptions {
  skipSpecialTokens?: boolean;
  /** Default tokenizer_config.json's clean_up_tokenization_spaces (false when absent). */
  cleanUpTokenizationSpaces?: boolean;
}

export interface ApplyChatTemplateOptions {
  addGenerationPrompt?: boolean;
  /** Return token ids (encoded without adding special tokens, like transformers) instead of the string. */
  tokenize?: boolean;
  /** A template name (when the folder has several) or a template string. */
  chatTemplate?: string;
  tools?: unknown[];
  documents?: unknown[];
  /** Leave the last message open (no end-of-turn) so generation continues it. */
  continueFinalMessage?: boolean;
  /** Extra variables for the template (add_vision_id, date_string, enable_thinking...). */
  [extra: string]: unknown;
}

const SPECIAL_TOKEN_KEYS = ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"] as const;
type SpecialTokenKey = (typeof SPECIAL_TOKEN_KEYS)[number];

/** The content of a special-token entry of tokenizer_config.json: a string or an AddedToken object. */
function tokenContent(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (value && typeof value === "object" && typeof (value as { content?: unknown }).content === "string") return (value as { content: string }).content;
  return undefined;
}

const isObject = (value: unknown): value is Json => typeof value === "object" && value !== null && !Array.isArray(value);
const kindOf = (value: unknown) => (Array.isArray(value) ? "an array" : value === null ? "null" : typeof value);

function readJson(path: string): Json {
  try {
    return JSON.parse(readFileSync(path, "utf8"));
  } catch (error) {
    throw new Error(`cannot read ${path}: ${(error as Error).message}`);
  }
}

/** One match of an added token (or a gap between them) in a text, as UTF-16 offsets. */
interface Segment {
  start: number;
  end: number;
  id?: number;
}

/**
 * Finds added tokens in text before the model sees it, like tokenizers' AddedVocabulary: leftmost-longest
 * matching with the single_word, lstrip and rstrip rules.
 */
class AddedTokenMatcher {
  private readonly regex: RegExp | undefined;
  private readonly byPattern = new Map<string, AddedToken>();

  constructor(tokens: Array<{ token: AddedToken; pattern: string }>) {
    for (const { token, pattern } of tokens) if (pattern.length > 0 && !this.byPattern.has(pattern)) this.byPattern.set(pattern, token);
    // Longest alternatives first make the regex's leftmost match also the longest there.
    const patterns = [...this.byPattern.keys()].sort((a, b) => b.length - a.length);
    this.regex = patterns.length > 0 ? new RegExp(patterns.map(escapeRegexLiteral).join("|"), "gu") : undefined;
  }

  split(text: string): Segment[] {
    if (!this.regex || text.length === 0) return [{ start: 0, end: text.length }];
    const segments: Segment[] = [];
    let startOffset = 0;
    this.regex.lastIndex = 0;
    for (let m = this.regex.exec(text); m; m = this.regex.exec(text)) {
      const token = this.byPattern.get(m[0])!;
      let start = m.index;
      let stop = start + m[0].length;
      if (token.single_word) {
        const before = text.slice(0, start);
        const after = text.slice(stop);
        const lastBefore = [...before].pop();
        const firstAfter = after.length > 0 ? String.fromCodePoint(after.codePointAt(0)!) : undefined;
        const startSpace = lastBefore === undefined || !isAlphanumericOrUnderscore(lastBefore);
        const stopSpace = firstAfter === undefined || !isAlphanumericOrUnderscore(firstAfter);
        if (!startSpace || !stopSpace) continue;
      }
      if (token.lstrip) {
        let newStart = start;
        while (newStart > 0 && isUnicodeWhitespace(charBefore(text, newStart))) newStart -= charBefore(text, newStart).length;
        start = Math.max(newStart, startOffset);
      }
      if (token.rstrip) {
        while (stop < text.length && isUnicodeWhitespace(String.fromCodePoint(text.codePointAt(stop)!))) stop += text.codePointAt(stop)! > 0xffff ? 2 : 1;
        this.regex.lastIndex = stop;
      }
      if (startOffset < start) segments.push({ start: startOffset, end: start });
      segments.push({ start, end: stop, id: token.id });
      startOffset = stop;
    }
    if (startOffset !== text.length) segments.push({ start: startOffset, end: text.length });
    return segments;
  }
}

function charBefore(text: string, index: number): string {
  const low = text.charCodeAt(index - 1);
  if (low >= 0xdc00 && low <= 0xdfff && index >= 2) return text.slice(index - 2, index);
  return text.slice(index - 1, index);
}

/** transformers' clean_up_tokenization: removes spaces before punctuation and English contractions. */
function cleanUpTokenization(text: string): string {
  return text
    .replaceAll(" .", ".")
    .replaceAll(" ?", "?")
    .replaceAll(" !", "!")
    .replaceAll(" ,", ",")
    .replaceAll(" ' ", "'")
    .replaceAll(" n't", "n't")
    .replaceAll(" 'm", "'m")
    .replaceAll(" 's", "'s")
    .replaceAll(" 've", "'ve")
    .replaceAll(" 're", "'re");
}

export interface TokenizerFiles {
  /** Parsed tokenizer.json. */
  tokenizer: Json;
  /** Parsed tokenizer_config.json, if any. */
  config?: Json;
  /** Parsed special_tokens_map.json, if any. */
  specialTokensMap?: Json;
  /** The chat template(s) found in the folder, already resolved (see `Tokenizer.fromFolder`). */
  chatTemplate?: string | Record<string, string>;
  /** Where the files came from, for error messages. */
  source?: string;
}

export class Tokenizer {
  readonly source: string;
  private readonly model: TokenizerModel;
  private readonly normalizer: Normalizer | undefined;
  private readonly preTokenizer: PreTokenizer | undefined;
  private readonly postProcessor: PostProcessor | undefined;
  private readonly decoder: Decoder | undefined;
  private readonly addedTokens: AddedToken[] = [];
  private readonly addedByContent = new Map<string, AddedToken>();
  private readonly addedById = new Map<number, AddedToken>();
  private readonly specialContents = new Set<string>();
  private readonly addedTokenStrings = new Map<number, string>();
  private rawMatcher!: AddedTokenMatcher;
  private normalizedMatcher!: AddedTokenMatcher;
  private readonly specialTokens: Partial<Record<SpecialTokenKey, string>> = {};
  /** Additional special tokens (tokenizer_config.json's additional_special_tokens / extra_special_tokens). */
  readonly additionalSpecialTokens: string[] = [];
  /** Named extra special tokens (extra_special_tokens given as an object, e.g. {image_token: "<image>"}). */
  readonly namedSpecialTokens: Record<string, string> = {};
  readonly paddingSide: PaddingSide;
  readonly truncationSide: PaddingSide;
  readonly modelMaxLength: number;
  readonly cleanUpTokenizationSpaces: boolean;
  /** The chat template string, or named templates ("default", "tool_use", ...). */
  readonly chatTemplate: string | Record<string, string> | undefined;
  /** tokenizer_config.json as loaded (empty object when absent). */
  readonly config: Json;

  constructor(files: TokenizerFiles) {
    const where = files.source ?? "tokenizer.json";
    this.source = where;
    const spec = files.tokenizer;
    // The configs sit beside tokenizer.json; errors in them name them, not tokenizer.json.
    const beside = (name: string) => (where.endsWith("tokenizer.json") ? where.slice(0, -"tokenizer.json".length) + name : name);
    if (!isObject(spec)) throw new Error(`${where}: must be a JSON object, got ${kindOf(spec)}`);
    for (const [name, value] of [["tokenizer_config.json", files.config], ["special_tokens_map.json", files.specialTokensMap]] as const) {
      if (value !== undefined && !isObject(value)) throw new Error(`${beside(name)}: must be a JSON object, got ${kindOf(value)}; fix or remove the file`);
    }
    const config = files.config ?? {};
    this.config = config;
    // The file's own "truncation"/"padding" sections are ignored, as transformers does: they are per-call options.
    this.model = buildModel(spec.model, where);
    this.normalizer = buildNormalizer(spec.normalizer, where);
    this.preTokenizer = buildPreTokenizer(spec.pre_tokenizer, where);
    this.postProcessor = buildPostProcessor(spec.post_processor, where);
    this.decoder = buildDecoder(spec.decoder, where);

    if (spec.added_tokens != null && !Array.isArray(spec.added_tokens)) throw new Error(`${where}: "added_tokens" must be a list, got ${kindOf(spec.added_tokens)}`);
    ((spec.added_tokens ?? []) as Json[]).forEach((entry, i) => {
      // An entry without content would become the token "undefined"
      if (!isObject(entry) || typeof entry.content !== "string" || entry.content === "") {
        throw new Error(`${where}: added_tokens[${i}] needs a non-empty string "content", got ${JSON.stringify(entry)}; fix the entry in tokenizer.json`);
      }
      this.registerAddedToken(entry, entry.id);
    });

    // Special tokens: tokenizer_config.json first, special_tokens_map.json for what it lacks.
    const specialSources = [config, files.specialTokensMap ?? {}];
    for (const key of SPECIAL_TOKEN_KEYS) {
      for (const source of specialSources) {
        if (key in source) {
          const content = tokenContent(source[key]);
          if (content !== undefined) this.specialTokens[key] = content;
          break;
        }
      }
    }
    for (const source of specialSources) {
      const additional = source.additional_special_tokens;
      const extra = source.extra_special_tokens;
      if (Array.isArray(additional) && this.additionalSpecialTokens.length === 0) {
        for (const value of additional) {
          const content = tokenContent(value);
          if (content !== undefined) this.additionalSpecialTokens.push(content);
        }
      }
      if (Array.isArray(extra) && this.additionalSpecialTokens.length === 0) {
        for (const value of extra) {
          const content = tokenContent(value);
          if (content !== undefined) this.additionalSpecialTokens.push(content);
        }
      } else if (extra && typeof extra === "object") {
        for (const [name, value] of Object.entries(extra)) {
          const content = tokenContent(value);
          if (content !== undefined && !(name in this.namedSpecialTokens)) this.namedSpecialTokens[name] = content;
        }
      }
    }

    // Like PreTrainedTokenizerFast.__init__: tokens of added_tokens_decoder missing from tokenizer.json,
    // then special tokens missing from the added vocabulary, are added (as special tokens).
    const decoderEntries = Object.entries((config.added_tokens_decoder ?? {}) as Record<string, Json>).sort((a, b) => Number(a[0]) - Number(b[0]));
    for (const [id, entry] of decoderEntries) {
      if (!isObject(entry) || typeof entry.content !== "string" || entry.content === "") {
        throw new Error(`${beside("tokenizer_config.json")}: added_tokens_decoder["${id}"] needs a non-empty string "content", got ${JSON.stringify(entry)}`);
      }
      if (!this.addedByContent.has(entry.content)) this.registerAddedToken(entry, undefined);
    }
    const allSpecial = [...Object.values(this.specialTokens), ...this.additionalSpecialTokens, ...Object.values(this.namedSpecialTokens)];
    for (const content of allSpecial) {
      if (content !== undefined && !this.addedByContent.has(content)) {
        this.registerAddedToken({ content, special: true, normalized: false, lstrip: false, rstrip: false, single_word: false }, undefined);
      }
    }
    for (const content of allSpecial) if (content !== undefined && this.addedByContent.get(content)) this.specialContents.add(content);
    this.rebuildMatchers();

    this.paddingSide = config.padding_side === "left" ? "left" : "right";
    this.truncationSide = config.truncation_side === "left" ? "left" : "right";
    this.modelMaxLength = typeof config.model_max_length === "number" ? config.model_max_length : 1e30;
    this.cleanUpTokenizationSpaces = config.clean_up_tokenization_spaces === true;
    this.chatTemplate = files.chatTemplate;
  }

  /**
   * Loads a tokenizer from a model folder: tokenizer.json (required), tokenizer_config.json and
   * special_tokens_map.json (optional). The chat template is read like transformers does: the folder's
   * chat_template.jinja (plus additional_chat_templates/*.jinja) first, else tokenizer_config.json's
   * `chat_template`, else chat_template.json (a processor's template).
   */
  static fromFolder(dir: string): Tokenizer {
    const folder = resolve(dir);
    const tokenizerPath = join(folder, "tokenizer.json");
    if (!existsSync(tokenizerPath)) {
      const present = existsSync(folder) ? readdirSync(folder).filter((f) => /token|vocab|merges|\.model$/.test(f)) : undefined;
      throw new Error(
        present === undefined
          ? `Tokenizer.fromFolder: the folder ${folder} does not exist (looked for ${tokenizerPath}).`
          : `Tokenizer.fromFolder: no tokenizer.json in ${folder} (looked for ${tokenizerPath}` +
              `${present.length ? `; found ${present.join(", ")}` : ""}). Only fast-tokenizer files are supported: ` +
              `save one with transformers' tokenizer.save_pretrained() (a fast tokenizer writes tokenizer.json).`,
      );
    }
    const configPath = join(folder, "tokenizer_config.json");
    const mapPath = join(folder, "special_tokens_map.json");
    const config = existsSync(configPath) ? readJson(configPath) : undefined;
    const specialTokensMap = existsSync(mapPath) ? readJson(mapPath) : undefined;
    return new Tokenizer({
      tokenizer: readJson(tokenizerPath),
      config,
      specialTokensMap,
      chatTemplate: readChatTemplate(folder, config),
      source: tokenizerPath,
    });
  }

  private registerAddedToken(entry: Json, id: number | undefined): void {
    const content = String(entry.content);
    const existing = this.addedByContent.get(content);
    if (existing) return;
    const resolvedId = id ?? this.model.tokenToId(content) ?? this.nextFreeId();
    const token: AddedToken = {
      id: resolvedId,
      content,
      single_word: !!entry.single_word,
      lstrip: !!entry.lstrip,
      rstrip: !!entry.rstrip,
      normalized: entry.normalized ?? !entry.special,
      special: !!entry.special,
    };
    this.addedTokens.push(token);
    this.addedByContent.set(content, token);
    this.addedById.set(resolvedId, token);
    if (token.special) this.specialContents.add(content);
  }

  private nextFreeId(): number {
    let maxAdded = -1;
    for (const token of this.addedTokens) maxAdded = Math.max(maxAdded, token.id);
    const size = this.model.vocabSize;
    return maxAdded >= size || size === 0 ? maxAdded + 1 : size;
  }

  private rebuildMatchers(): void {
    // tokenizers reports a normalized added token by its normalized form (id_to_token and decoding).
    this.addedTokenStrings.clear();
    for (const token of this.addedTokens) {
      if (token.normalized && this.normalizer) this.addedTokenStrings.set(token.id, this.normalizer(token.content));
    }
    this.rawMatcher = new AddedTokenMatcher(this.addedTokens.filter((t) => !t.normalized).map((token) => ({ token, pattern: token.content })));
    this.normalizedMatcher = new AddedTokenMatcher(
      this.addedTokens.filter((t) => t.normalized).map((token) => ({ token, pattern: this.normalizer ? this.normalizer(token.content) : token.content })),
    );
  }

  /** Adds tokens to the vocabulary (ids after the model's), like tokenizer.add_tokens / add_special_tokens. */
  addTokens(tokens: Array<string | Partial<AddedToken> & { content: string }>, special = false): number {
    const before = this.addedTokens.length;
    for (const t of tokens) {
      const entry = typeof t === "string" ? { content: t, special } : { special, ...t };
      this.registerAddedToken(entry, undefined);
    }
    this.rebuildMatchers();
    return this.addedTokens.length - before;
  }

  // ------------------------------------------------------------------------------------------
  // Encoding

  /** Ids of `text` through normalizer, pre-tokenizer and model, with added tokens matched first. */
  private encodeWithoutSpecials(text: string): number[] {
    const ids: number[] = [];
    for (const segment of this.rawMatcher.split(text)) {
      if (segment.id !== undefined) {
        ids.push(segment.id);
        continue;
      }
      if (segment.end <= segment.start) continue;
      const raw = text.slice(segment.start, segment.end);
      const normalized = this.normalizer ? this.normalizer(raw) : raw;
      for (const sub of this.normalizedMatcher.split(normalized)) {
        if (sub.id !== undefined) {
          ids.push(sub.id);
          continue;
        }
        if (sub.end <= sub.start) continue;
        const piece = { text: normalized.slice(sub.start, sub.end), atStart: segment.start === 0 && sub.start === 0 };
        const pieces = this.preTokenizer ? this.preTokenizer([piece]) : [piece];
        for (const p of pieces) for (const id of this.model.tokenize(p.text)) ids.push(id);
      }
    }
    return ids;
  }

  /** Token ids of `text`, like `tokenizer(text)["input_ids"]` in transformers. */
  encode(text: string, options: EncodeOptions = {}): number[] {
    const addSpecialTokens = options.addSpecialTokens ?? true;
    let ids = this.encodeWithoutSpecials(text);
    if (options.truncation) {
      const maxLength = options.maxLength ?? this.modelMaxLength;
      const room = maxLength - (addSpecialTokens && this.postProcessor ? this.postProcessor.addedTokenCount(false) : 0);
      if (room < 0) throw new Error(`truncation: maxLength ${maxLength} is smaller than the ${maxLength - room} special tokens added to each sequence`);
      if (ids.length > room) {
        ids = (options.truncationSide ?? this.truncationSide) === "left" ? ids.slice(ids.length - room) : ids.slice(0, room);
      }
    }
    return this.postProcessor ? this.postProcessor.process(ids, undefined, addSpecialTokens) : ids;
  }

  /** Encodes several texts with optional truncation and padding, like `tokenizer(texts, padding=..., ...)`. */
  encodeBatch(texts: string[], options: EncodeBatchOptions = {}): BatchEncoding {
    const sequences = texts.map((text) => this.encode(text, options));
    const padding = options.padding === true ? "longest" : options.padding || false;
    if (!padding) return { input_ids: sequences, attention_mask: sequences.map((ids) => ids.map(() => 1)) };
    const padId = this.padTokenId;
    if (padId === undefined) {
      throw new Error(
        `${this.source}: asked to pad but the tokenizer has no pad token. Set one in tokenizer_config.json ("pad_token") ` +
          `or pick an existing token, e.g. the EOS token.`,
      );
    }
    let target = padding === "max_length" ? (options.maxLength ?? this.modelMaxLength) : Math.max(0, ...sequences.map((s) => s.length));
    if (options.padToMultipleOf && target % options.padToMultipleOf !== 0) target += options.padToMultipleOf - (target % options.padToMultipleOf);
    const side = options.paddingSide ?? this.paddingSide;
    const input_ids: number[][] = [];
    const attention_mask: number[][] = [];
    for (const ids of sequences) {
      const missing = Math.max(0, target - ids.length);
      const pad = new Array<number>(missing).fill(padId);
      const zeros = new Array<number>(missing).fill(0);
      const ones = ids.map(() => 1);
      input_ids.push(side === "left" ? [...pad, ...ids] : [...ids, ...pad]);
      attention_mask.push(side === "left" ? [...zeros, ...ones] : [...ones, ...zeros]);
    }
    return { input_ids, attention_mask };
  }

  /** Token strings of `text` (`tokenizer.tokenize`), special tokens not added. */
  tokenize(text: string): string[] {
    return this.convertIdsToTokens(this.encodeWithoutSpecials(text));
  }

  // ------------------------------------------------------------------------------------------
  // Decoding

  decode(ids: number[], options: DecodeOptions = {}): string {
    const skip = options.skipSpecialTokens ?? false;
    const tokens: string[] = [];
    for (const id of ids) {
      const token = this.idToToken(id);
      if (token === undefined) continue;
      if (skip && this.isSpecialTokenId(id)) continue;
      tokens.push(token);
    }
    let text = this.decoder ? this.decoder(tokens).join("") : tokens.join(" ");
    if (options.cleanUpTokenizationSpaces ?? this.cleanUpTokenizationSpaces) text = cleanUpTokenization(text);
    return text;
  }

  batchDecode(sequences: number[][], options: DecodeOptions = {}): string[] {
    return sequences.map((ids) => this.decode(ids, options));
  }

  // ------------------------------------------------------------------------------------------
  // Vocabulary

  idToToken(id: number): string | undefined {
    const added = this.addedById.get(id);
    if (added) return this.addedTokenStrings.get(id) ?? added.content;
    return this.model.idToToken(id);
  }

  tokenToId(token: string): number | undefined {
    return this.addedByContent.get(token)?.id ?? this.model.tokenToId(token);
  }

  /** Like transformers: unknown tokens map to the unknown token's id (undefined when there is none). */
  convertTokensToIds(tokens: string): number | undefined;
  convertTokensToIds(tokens: string[]): Array<number | undefined>;
  convertTokensToIds(tokens: string | string[]): number | undefined | Array<number | undefined> {
    const one = (token: string) => this.tokenToId(token) ?? this.unkTokenId;
    return typeof tokens === "string" ? one(tokens) : tokens.map(one);
  }

  convertIdsToTokens(ids: number[], options: { skipSpecialTokens?: boolean } = {}): string[] {
    const out: string[] = [];
    for (const id of ids) {
      const token = this.idToToken(id);
      if (token === undefined) continue;
      if (options.skipSpecialTokens && this.specialContents.has(token)) continue;
      out.push(token);
    }
    return out;
  }

  /** Size of the model's vocabulary without added tokens (transformers' `tokenizer.vocab_size`). */
  get vocabSize(): number {
    return this.model.vocabSize;
  }

  /** Number of distinct tokens including added ones (transformers' `len(tokenizer)`). */
  get length(): number {
    const contents = new Set(this.model.vocab().keys());
    for (const token of this.addedTokens) contents.add(token.content);
    return contents.size;
  }

  /** token -> id for the whole vocabulary, added tokens included. */
  getVocab(): Map<string, number> {
    const vocab = new Map(this.model.vocab());
    for (const token of this.addedTokens) vocab.set(token.content, token.id);
    return vocab;
  }

  /** The added tokens (special or not), as tokenizer.json lists them plus those transformers adds. */
  get addedTokensList(): readonly AddedToken[] {
    return this.addedTokens;
  }

  /** Every special token string (the named ones and the additional ones). */
  get allSpecialTokens(): string[] {
    const all = [...Object.values(this.specialTokens), ...this.additionalSpecialTokens, ...Object.values(this.namedSpecialTokens)];
    return [...new Set(all.filter((t): t is string => t !== undefined))];
  }

  isSpecialTokenId(id: number): boolean {
    const token = this.addedById.get(id);
    return !!token && this.specialContents.has(token.content);
  }

  get bosToken(): string | undefined {
    return this.specialTokens.bos_token;
  }
  get eosToken(): string | undefined {
    return this.specialTokens.eos_token;
  }
  get unkToken(): string | undefined {
    return this.specialTokens.unk_token;
  }
  get padToken(): string | undefined {
    return this.specialTokens.pad_token;
  }
  get sepToken(): string | undefined {
    return this.specialTokens.sep_token;
  }
  get clsToken(): string | undefined {
    return this.specialTokens.cls_token;
  }
  get maskToken(): string | undefined {
    return this.specialTokens.mask_token;
  }
  private idOf(token: string | undefined): number | undefined {
    return token === undefined ? undefined : this.tokenToId(token);
  }
  get bosTokenId(): number | undefined {
    return this.idOf(this.bosToken);
  }
  get eosTokenId(): number | undefined {
    return this.idOf(this.eosToken);
  }
  get unkTokenId(): number | undefined {
    return this.idOf(this.unkToken);
  }
  get padTokenId(): number | undefined {
    return this.idOf(this.padToken);
  }
  get sepTokenId(): number | undefined {
    return this.idOf(this.sepToken);
  }
  get clsTokenId(): number | undefined {
    return this.idOf(this.clsToken);
  }
  get maskTokenId(): number | undefined {
    return this.idOf(this.maskToken);
  }

  /** Sets the pad token (e.g. to the EOS token when a tokenizer has none), like `tokenizer.pad_token = ...`. */
  setPadToken(token: string): void {
    if (this.tokenToId(token) === undefined) throw new Error(`setPadToken: ${JSON.stringify(token)} is not in the vocabulary of ${this.source}`);
    this.specialTokens.pad_token = token;
  }

  /** The special tokens as transformers passes them to chat templates (special_tokens_map). */
  get specialTokensMap(): Record<string, string | string[]> {
    const map: Record<string, string | string[]> = {};
    for (const key of SPECIAL_TOKEN_KEYS) {
      const value = this.specialTokens[key];
      if (value !== undefined) map[key] = value;
    }
    if (this.additionalSpecialTokens.length > 0) map.additional_special_tokens = [...this.additionalSpecialTokens];
    return map;
  }

  // ------------------------------------------------------------------------------------------
  // Chat templates

  /** Picks the template like transformers' get_chat_template: by name, "tool_use" when tools are given, else "default". */
  getChatTemplate(nameOrTemplate?: string, tools?: unknown[]): string {
    const templates = this.chatTemplate;
    if (templates !== undefined && typeof templates === "object") {
      if (nameOrTemplate !== undefined && nameOrTemplate in templates) return templates[nameOrTemplate];
      if (nameOrTemplate === undefined) {
        if (tools !== undefined && "tool_use" in templates) return templates.tool_use;
        if ("default" in templates) return templates.default;
        throw new Error(
          `${this.source}: this tokenizer has several chat templates (${Object.keys(templates).join(", ")}) and none is named "default": pass chatTemplate with one of these names.`,
        );
      }
      return nameOrTemplate;
    }
    if (nameOrTemplate !== undefined) return nameOrTemplate;
    if (templates === undefined) {
      throw new Error(
        `${this.source}: no chat template found (looked for chat_template.jinja, tokenizer_config.json "chat_template" and chat_template.json in the folder). ` +
          `Pass one with { chatTemplate: "..." }.`,
      );
    }
    return templates;
  }

  /** Renders a conversation with the tokenizer's chat template, like transformers' apply_chat_template. */
  applyChatTemplate(messages: ChatMessage[], options: ApplyChatTemplateOptions & { tokenize: true }): number[];
  applyChatTemplate(messages: ChatMessage[], options?: ApplyChatTemplateOptions): string;
  applyChatTemplate(messages: ChatMessage[], options: ApplyChatTemplateOptions = {}): string | number[] {
    const { addGenerationPrompt = false, tokenize = false, chatTemplate, tools, documents, continueFinalMessage = false, ...extra } = options;
    if (addGenerationPrompt && continueFinalMessage) {
      throw new Error("applyChatTemplate: continueFinalMessage and addGenerationPrompt cannot both be set: the first continues the last message, the second opens a new one.");
    }
    const template = this.getChatTemplate(chatTemplate, tools);
    let rendered = renderChatTemplate(template, {
      ...this.specialTokensMap,
      ...extra,
      messages,
      // transformers always passes these, as None when absent (so `tools is defined` holds).
      tools: tools ?? null,
      documents: documents ?? null,
      add_generation_prompt: addGenerationPrompt,
    });
    if (continueFinalMessage) rendered = trimAfterFinalMessage(rendered, messages);
    return tokenize ? this.encode(rendered, { addSpecialTokens: false }) : rendered;
  }
}

/** transformers' continue_final_message: cut the rendering right after the final message's content. */
function trimAfterFinalMessage(rendered: string, messages: ChatMessage[]): string {
  const last = messages[messages.length - 1];
  let finalMessage: unknown = last?.content;
  if (Array.isArray(finalMessage)) {
    const textBlock = [...finalMessage].reverse().find((block) => block && typeof block === "object" && "text" in block);
    if (!textBlock) throw new Error("continueFinalMessage: the final message has no text block to continue.");
    finalMessage = (textBlock as { text: string }).text;
  }
  const text = String(finalMessage ?? "");
  const stripped = pyStrip(text);
  const location = rendered.lastIndexOf(stripped);
  if (!stripped || location < 0) {
    throw new Error("continueFinalMessage: the final message does not appear in the rendered chat; the template may be altering it.");
  }
  const lstripped = pyLstrip(text);
  if (rendered.slice(location, location + lstripped.length) === text) return rendered.slice(0, location + lstripped.length);
  return rendered.slice(0, location + stripped.length);
}

const PY_SPACE = /[\s\x1c-\x1f\x85]/u;
function pyLstrip(text: string): string {
  let k = 0;
  while (k < text.length && PY_SPACE.test(text[k]) && text[k] !== "\ufeff") k++;
  return text.slice(k);
}
function pyStrip(text: string): string {
  let end = text.length;
  while (end > 0 && PY_SPACE.test(text[end - 1]) && text[end - 1] !== "\ufeff") end--;
  return pyLstrip(text.slice(0, end));
}

/**
 * The chat template(s) of a model folder, with transformers' precedence: chat_template.jinja (and the named
 * templates in additional_chat_templates/) over tokenizer_config.json's `chat_template`, then chat_template.json.
 */
export function readChatTemplate(folder: string, config?: Json): string | Record<string, string> | undefined {
  let template: string | Record<string, string> | undefined;
  const fromConfig = config?.chat_template;
  if (typeof fromConfig === "string") template = fromConfig;
  else if (Array.isArray(fromConfig)) {
    template = {};
    for (const entry of fromConfig) template[entry.name] = entry.template;
  }
  const jinjaPath = join(folder, "chat_template.jinja");
  if (existsSync(jinjaPath)) template = readFileSync(jinjaPath, "utf8");
  const jsonPath = join(folder, "chat_template.json");
  if (template === undefined && existsSync(jsonPath)) {
    const json = readJson(jsonPath);
    const value = json.chat_template;
    if (typeof value === "string") template = value;
    else if (Array.isArray(value)) {
      template = {};
      for (const entry of value) template[entry.name] = entry.template;
    }
  }
  const extraDir = join(folder, "additional_chat_templates");
  if (existsSync(extraDir)) {
    const named: Record<string, string> = typeof template === "string" ? { default: template } : { ...(template ?? {}) };
    for (const file of readdirSync(extraDir).sort()) {
      if (file.endsWith(".jinja")) named[file.slice(0, -".jinja".length)] = readFileSync(join(extraDir, file), "utf8");
    }
    template = named;
  }
  return template;
}
