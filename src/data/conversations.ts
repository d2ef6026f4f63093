// Conversation datasets for generative fine-tuning, in the formats people have, as JSON Lines or one JSON array:
// LLaVA's / ShareGPT's {image | images | video, conversations: [{from: human | gpt | system, value}]}, the messages
// format {messages: [{role, content: "text" | [{type: "image", image?}, {type: "text", text}]}], images?}, and
// LLaMA-Factory's alpaca format {instruction, input?, output, system?, images?}.
// Each row becomes messages with one image placeholder per image; an optional "label" names its class.
import { existsSync } from "node:fs";
import { BadRecord, forEachJsonlRow, type SkippedRecord } from "./records.js";

/** One turn of a conversation, with one image placeholder in the text per image. */
export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
  [key: string]: unknown;
}

export interface ConversationRecord {
  /** "file:line". */
  source: string;
  images?: string[];
  video?: string;
  messages: ChatMessage[];
  /** The class this conversation's answer names, when the row gives one ("label") or labels can parse it. */
  label?: string;
}

const ROLES: Record<string, ChatMessage["role"]> = { human: "user", user: "user", gpt: "assistant", assistant: "assistant", system: "system" };

/** Reads a JSONL file of conversations; every bad row is an error naming file:line, or skipped with skipBad. */
export function readConversationRecords(
  path: string,
  options: { imageToken?: string; skipBad?: boolean; baseDir?: string } = {},
): { records: ConversationRecord[]; skipped: SkippedRecord[] } {
  const imageToken = options.imageToken ?? "<image>";
  const records: ConversationRecord[] = [];
  const skipped: SkippedRecord[] = [];
  forEachJsonlRow(path, options, skipped, (row, source, at) => {
    const record: ConversationRecord = { source, messages: [] };
    const imagesFromParts: string[] = [];
    if (Array.isArray(row.conversations)) {
      for (const [k, turn] of (row.conversations as Record<string, unknown>[]).entries()) {
        const role = ROLES[String(turn?.from ?? turn?.role)];
        if (!role || typeof (turn.value ?? turn.content) !== "string") throw new BadRecord(`conversations[${k}] needs "from" (human, gpt, system) and a string "value"`);
        record.messages.push({ role, content: String(turn.value ?? turn.content) });
      }
    } else if (Array.isArray(row.messages)) {
      for (const [k, message] of (row.messages as Record<string, unknown>[]).entries()) {
        const role = ROLES[String(message?.role)];
        if (!role) throw new BadRecord(`messages[${k}].role must be user, assistant or system`);
        const content = message.content;
        if (typeof content === "string") {
          record.messages.push({ role, content });
        } else if (Array.isArray(content)) {
          const text = (content as Record<string, unknown>[]).map((part, p) => {
            if (part?.type === "image") {
              const file = part.image ?? part.path ?? part.url;
              if (typeof file === "string") imagesFromParts.push(file);
              return imageToken;
            }
            if (part?.type === "text" && typeof part.text === "string") return part.text;
            throw new BadRecord(`messages[${k}].content[${p}] must be {type: "image"} or {type: "text", text}`);
          });
          record.messages.push({ role, content: text.join("") });
        } else {
          throw new BadRecord(`messages[${k}].content must be a string or a list of parts`);
        }
      }
    } else if (typeof row.instruction === "string") {
      // LLaMA-Factory's alpaca format: instruction (+ input) asked, output answered, an optional system prompt
      if (typeof row.output !== "string") throw new BadRecord('an alpaca row needs a string "output" beside its "instruction"');
      if (typeof row.system === "string" && row.system !== "") record.messages.push({ role: "system", content: row.system });
      const input = typeof row.input === "string" && row.input !== "" ? `\n${row.input}` : "";
      record.messages.push({ role: "user", content: row.instruction + input }, { role: "assistant", content: row.output });
    } else {
      throw new BadRecord('a conversation row needs "conversations" (LLaVA / ShareGPT format), "messages", or "instruction" and "output" (alpaca format)');
    }
    if (!record.messages.some((m) => m.role === "assistant")) throw new BadRecord("the conversation has no assistant answer to learn");
    const listed = row.image !== undefined ? [row.image] : Array.isArray(row.images) ? row.images : imagesFromParts.length ? imagesFromParts : undefined;
    if (row.video !== undefined) {
      if (typeof row.video !== "string") throw new BadRecord('"video" must be a path');
      record.video = at(row.video);
      if (!existsSync(record.video)) throw new BadRecord(`video not found: ${record.video}`);
    } else if (listed) {
      if (listed.some((p) => typeof p !== "string")) throw new BadRecord('"image" must be a path and "images" a list of paths');
      record.images = (listed as string[]).map(at);
      for (const image of record.images) if (!existsSync(image)) throw new BadRecord(`image file not found: ${image}`);
    }
    const placeholders = record.messages.reduce((n, m) => n + m.content.split(imageToken).length - 1, 0);
    const imageCount = record.images?.length ?? 0;
    if (record.images && placeholders === 0) {
      // LLaVA rows sometimes leave the placeholder out: the images go before the first user text
      const first = record.messages.find((m) => m.role === "user");
      if (first) first.content = `${imageToken.repeat(imageCount)}\n${first.content}`;
    } else if (record.images && placeholders !== imageCount) {
      throw new BadRecord(`${placeholders} ${imageToken} placeholder(s) for ${imageCount} image(s)`);
    }
    if (typeof row.label === "string") record.label = row.label;
    records.push(record);
  });
  return { records, skipped };
}

/** The final assistant message: the reference answer generation is scored against. */
export function referenceAnswer(record: Pick<ConversationRecord, "messages">): string {
  const answers = record.messages.filter((m) => m.role === "assistant");
  return answers[answers.length - 1].content;
}

/** The messages up to (not including) the final assistant answer: the prompt for generation. */
export function promptMessages(record: Pick<ConversationRecord, "messages">): ChatMessage[] {
  const last = record.messages.map((m) => m.role).lastIndexOf("assistant");
  return record.messages.slice(0, last);
}
