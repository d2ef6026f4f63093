// Run files are YAML 1.2, read by the `yaml` package (core schema: 1e-4 is a number, yes is a string; anchors,
// aliases, `<<` merge keys, block scalars and multi-line flow collections all work). This module adds what the
// run-file checks need on top: the line of every key and list item, errors as file:line(:column), duplicate keys
// refused, and values limited to plain data (no !!binary, !!set, custom tags), so a run file means what it says.
import { LineCounter, isAlias, isMap, isScalar, isSeq, parseDocument, stringify, Scalar, type Document, type Node, type Pair } from "yaml";

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
    readonly column?: number,
  ) {
    super(`${file}:${line}${column !== undefined ? `:${column}` : ""}: ${message}`);
  }
}

const OPTIONS = { version: "1.2", schema: "core", merge: true, prettyErrors: false } as const;

// A run file is a few hundred nodes; this bounds what aliases may expand to (an alias of an alias of ... grows fast).
const MAX_EXPANDED_NODES = 100_000;

const MAP_TAG = "tag:yaml.org,2002:map";
const SEQ_TAG = "tag:yaml.org,2002:seq";

/** `<<` as the package reads it with merge on: a plain (unquoted) << key, which it composes as a symbol. */
function isMergeKey(key: unknown): boolean {
  if (!isScalar(key)) return false;
  const v = key.value;
  return (typeof v === "symbol" && v.description === "<<") || (v === "<<" && (!key.type || key.type === Scalar.PLAIN));
}

/** tag:yaml.org,2002:binary -> !!binary, as it is written. */
const shortTag = (tag: string) => tag.replace(/^tag:yaml\.org,2002:/, "!!");

/** Parses a YAML document; `file` names the source in errors ("run.yaml:7: ..."). */
export function parseYaml(source: string, file = "run.yaml"): YamlDocument {
  const lineCounter = new LineCounter();
  // duplicate keys are found below, so that the error can name the first one's line too
  const doc = parseDocument(source, { ...OPTIONS, lineCounter, uniqueKeys: false });
  const lineAt = (offset: number) => lineCounter.linePos(offset).line;
  const problem = doc.errors[0] ?? doc.warnings[0];
  if (problem) {
    const { line, col } = lineCounter.linePos(problem.pos[0]);
    // the package's own wording points at its API here, not at the file
    const message = problem.code === "MULTIPLE_DOCS" ? "only one YAML document per file is supported" : problem.message;
    throw new YamlError(file, line, message, col);
  }
  const lines = new Map<string, number>();
  if (doc.contents === null) return { value: null, lines };
  collectLines(doc, doc.contents, lines, file, lineAt);
  let value: unknown;
  try {
    value = doc.toJS();
  } catch (error) {
    throw new YamlError(file, lineAt(doc.contents.range?.[0] ?? 0), (error as Error).message);
  }
  return { value: value as YamlValue, lines };
}

/**
 * Walks the document the way toJS() will read it, recording the line of each key path and refusing what is not
 * plain data. Keys and items reached through an alias or a merge key get the lines where their text is (the anchor).
 */
function collectLines(doc: Document, root: Node, lines: Map<string, number>, file: string, lineAt: (offset: number) => number): void {
  const join = (path: string, key: string | number) => (path === "" ? String(key) : `${path}.${key}`);
  // every node that came from parsing has a range
  const start = (node: Node | null | undefined) => node?.range?.[0] ?? 0;
  const fail = (node: Node | null | undefined, message: string): never => {
    throw new YamlError(file, lineAt(start(node)), message);
  };
  const open = new Set<Node>();
  let expanded = 0;

  const resolve = (node: Node): Node => {
    if (!isAlias(node)) return node;
    const target = node.resolve(doc);
    if (!target) return fail(node, `unknown alias *${node.source} (its anchor &${node.source} must come before it)`);
    if (open.has(target)) fail(node, `alias *${node.source} refers to a collection that contains it`);
    return target;
  };

  /** The maps that a `<<` value merges in, in the order their keys take priority. */
  const mergeSources = (pair: Pair): Node[] => {
    const value = pair.value as Node | null;
    const items = value && isSeq(value) ? (value.items as Node[]) : [value];
    return items.map((item) => {
      const source = item ? resolve(item) : null;
      if (!source || !isMap(source)) fail(item ?? (pair.key as Node), "a merge key (<<) takes a map, an alias of a map, or a list of them");
      return source!;
    });
  };

  const walk = (node: Node, path: string): void => {
    if (++expanded > MAX_EXPANDED_NODES) fail(node, `the document expands to more than ${MAX_EXPANDED_NODES} nodes through its aliases`);
    node = resolve(node);
    if (isScalar(node)) {
      const v = node.value;
      if (v !== null && typeof v !== "boolean" && typeof v !== "number" && typeof v !== "string") fail(node, `${node.tag ? shortTag(node.tag) : "this"} values are not supported in run files`);
      return;
    }
    if (isSeq(node)) {
      if (node.tag && node.tag !== SEQ_TAG) fail(node, `${shortTag(node.tag)} values are not supported in run files`);
      open.add(node);
      node.items.forEach((item, i) => {
        lines.set(join(path, i), lineAt(start(item as Node)));
        walk(item as Node, join(path, i));
      });
      open.delete(node);
      return;
    }
    if (!isMap(node)) return;
    open.add(node);
    for (const { key, keyNode, value } of entries(node)) {
      lines.set(join(path, key), lineAt(start(keyNode)));
      if (value !== null) walk(value, join(path, key));
    }
    open.delete(node);
  };

  /**
   * A map's keys as toJS() reads them: the keys written in it first, then those of its `<<` maps (recursively) that
   * it does not set itself, the first merged map winning, each with the node where its text is.
   */
  const entries = (node: Node): { key: string; keyNode: Node; value: Node | null }[] => {
    if (!isMap(node)) return [];
    if (node.tag && node.tag !== MAP_TAG) fail(node, `${shortTag(node.tag)} values are not supported in run files`);
    const written = new Map<string, number>();
    const out: { key: string; keyNode: Node; value: Node | null }[] = [];
    const merged: Node[] = [];
    for (const pair of node.items) {
      const keyNode = pair.key as Node | null;
      if (isMergeKey(keyNode)) {
        merged.push(...mergeSources(pair));
        continue;
      }
      const at = keyNode ?? (pair.value as Node | null) ?? node;
      if (keyNode && !isScalar(keyNode)) fail(at, "a key must be a name, not a list or a map");
      const name = keyNode ? (keyNode as Scalar).value : null;
      if (name === null || name === "") fail(at, "empty key");
      const key = String(name);
      if (written.has(key)) fail(at, `duplicate key '${key}' (first at line ${written.get(key)})`);
      written.set(key, lineAt(start(at)));
      out.push({ key, keyNode: at, value: pair.value as Node | null });
    }
    const taken = new Set(written.keys());
    for (const source of merged) {
      if (open.has(source)) fail(source, "a merge key (<<) merges a map into itself");
      open.add(source);
      for (const entry of entries(source)) {
        if (taken.has(entry.key)) continue;
        taken.add(entry.key);
        out.push(entry);
      }
      open.delete(source);
    }
    return out;
  };

  walk(root, "");
}

/** Writes a value as block YAML (quoting strings that would read back as something else); parseYaml reads it back equal. */
export function stringifyYaml(value: YamlValue): string {
  // no line folding (long regexes and prompts stay on one line), and no anchors for repeated objects
  return stringify(value, { version: "1.2", schema: "core", lineWidth: 0, aliasDuplicateObjects: false });
}
