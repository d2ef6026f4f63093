// Generative fine-tuning on conversations: next-token loss on the assistant's tokens only (labels -100 elsewhere),
// and a report that generates answers and parses them back to classes.
import { tensor, tidy, type Tensor } from "../torch/index.js";
import type { Module } from "../torch/nn/index.js";
import { ItemProgress, type DataSource, type LossOutput } from "../train/index.js";
import { generateAnswers, type VisionLanguageModel } from "../models/vlm.js";
import { promptMessages, referenceAnswer } from "../data/conversations.js";
import { answerReport, type ClassificationEvaluation } from "../eval/reports.js";
import { allSamples, batchesOf, type ConversationSample, type SampleBatch } from "./samples.js";
import { loadNamedTensors } from "./checkpoint_tensors.js";
import type { ReportOptions, Task, TaskReport } from "./task.js";

export interface SftTaskOptions {
  /** Token limit of one sample (default 2048). */
  maxLength?: number;
  /** Skip (and count) samples cut inside their image tokens instead of throwing. */
  skipTruncated?: boolean;
  /** Classes the report parses generated answers to (none: the report gives loss and token accuracy only). */
  labels?: string[];
  /** Tokens generated per answer in the report (default 16). */
  maxNewTokens?: number;
  priorityClasses?: string[];
}

interface EncodedConversation {
  ids: number[];
  labels: number[];
}

type SftBatch = SampleBatch<ConversationSample>;

/** Fine-tunes the VLM on conversations: next-token loss on the assistant's tokens only (labels -100 elsewhere). */
export class SftTask implements Task<SftBatch> {
  readonly kind = "generation";
  /** Samples skipped because their text would be cut inside the image tokens. */
  readonly skipped = new Set<string>();
  readonly #encoded = new Map<string, EncodedConversation | null>();
  readonly options: Required<Omit<SftTaskOptions, "priorityClasses">> & Pick<SftTaskOptions, "priorityClasses">;

  constructor(
    readonly vlm: VisionLanguageModel,
    options: SftTaskOptions = {},
  ) {
    this.options = {
      maxLength: options.maxLength ?? 2048,
      skipTruncated: options.skipTruncated ?? false,
      labels: options.labels ?? [],
      maxNewTokens: options.maxNewTokens ?? 16,
      priorityClasses: options.priorityClasses,
    };
  }

  trainableModules(): Module[] {
    return [this.vlm.model];
  }

  trainableModuleNames(): string[] {
    return ["model"];
  }

  /**
   * Token ids and labels of a conversation: the chat template's text, image placeholders expanded, and labels
   * equal to the ids on each assistant message (its end token included), -100 elsewhere. Null when skipped.
   */
  encode(sample: ConversationSample): EncodedConversation | null {
    const cached = this.#encoded.get(sample.key);
    if (cached !== undefined) return cached;
    const { tokenizer, imagePlaceholder } = this.vlm;
    const countPlaceholders = (text: string) => text.split(imagePlaceholder).length - 1;
    const expand = (text: string) => {
      const placeholders = countPlaceholders(text);
      return placeholders === 0 ? text : this.vlm.expandImagePlaceholders(text, sample.images.slice(0, placeholders));
    };
    const placeholderTotal = sample.messages.reduce((n, m) => n + countPlaceholders(m.content), 0);
    if (placeholderTotal !== sample.images.length) {
      throw new Error(`${sample.key}: the conversation has ${placeholderTotal} ${imagePlaceholder} placeholder(s) but ${sample.images.length} image(s)`);
    }
    // Render growing prefixes: the tokens each assistant message adds are its label span.
    const ids: number[] = [];
    const labels: number[] = [];
    let renderedTokens: number[] = [];
    for (let i = 0; i < sample.messages.length; i++) {
      const message = sample.messages[i];
      if (message.role === "assistant") {
        const cue = tokenizer.encode(expand(tokenizer.applyChatTemplate(sample.messages.slice(0, i), { addGenerationPrompt: true })), { addSpecialTokens: false });
        const extra = cue.slice(renderedTokens.length);
        ids.push(...extra);
        labels.push(...extra.map(() => -100));
        renderedTokens = cue;
      }
      const upTo = tokenizer.encode(expand(tokenizer.applyChatTemplate(sample.messages.slice(0, i + 1))), { addSpecialTokens: false });
      if (upTo.slice(0, renderedTokens.length).some((id, k) => id !== renderedTokens[k])) {
        throw new Error(`${sample.key}: the chat template's tokens for message ${i + 1} do not extend those before it; cannot place the assistant labels`);
      }
      const added = upTo.slice(renderedTokens.length);
      ids.push(...added);
      // the assistant's content and end token are learned; a trailing newline of the template is not
      const learnable = message.role === "assistant" ? assistantSpan(added, tokenizer.encode("\n", { addSpecialTokens: false })) : 0;
      labels.push(...added.map((id, k) => (k < learnable ? id : -100)));
      renderedTokens = upTo;
    }
    let result: EncodedConversation | null = { ids, labels };
    const maxLength = this.options.maxLength;
    if (ids.length > maxLength) {
      const lastImageToken = ids.lastIndexOf(this.vlm.imageTokenId);
      if (lastImageToken >= maxLength) {
        if (!this.options.skipTruncated) {
          throw new Error(
            `${sample.key}: ${ids.length} tokens, and data.max_length ${maxLength} would cut inside its image tokens (the last one is at ${lastImageToken}); ` +
              "raise max_length, use fewer frames, or set generation.skip_truncated: true to skip such samples",
          );
        }
        this.skipped.add(sample.key);
        result = null;
      } else {
        result = { ids: ids.slice(0, maxLength), labels: labels.slice(0, maxLength) };
      }
    }
    this.#encoded.set(sample.key, result);
    return result;
  }

  /** Right-padded ids, mask and labels of the batch's usable samples, with their images' inputs. */
  #collate(samples: ConversationSample[]): { input_ids: Tensor; attention_mask: Tensor; labels: Tensor; [media: string]: Tensor } | null {
    const used: ConversationSample[] = [];
    const rows: EncodedConversation[] = [];
    for (const sample of samples) {
      const encoded = this.encode(sample);
      if (encoded) {
        used.push(sample);
        rows.push(encoded);
      }
    }
    if (rows.length === 0) return null;
    const length = Math.max(...rows.map((r) => r.ids.length));
    const pad = this.vlm.tokenizer.padTokenId ?? 0;
    const device = this.vlm.device;
    const padded = (values: number[], fill: number) => [...values, ...new Array<number>(length - values.length).fill(fill)];
    const images = used.flatMap((s) => s.images);
    return {
      input_ids: tensor(rows.map((r) => padded(r.ids, pad)), { dtype: "int64", device }),
      attention_mask: tensor(rows.map((r) => padded(r.ids.map(() => 1), 0)), { dtype: "int64", device }),
      labels: tensor(rows.map((r) => padded(r.labels, -100)), { dtype: "int64", device }),
      // text-only conversations have no images to encode
      ...(images.length > 0 ? this.vlm.processImages(images) : {}),
    };
  }

  /** Loss, learned-token count and correct next-token predictions of a batch (null when every sample was skipped). */
  #score(samples: ConversationSample[]): { loss: Tensor; correct: number; total: number } | null {
    const inputs = this.#collate(samples);
    if (!inputs) return null;
    const out = this.vlm.forward(inputs);
    // token accuracy on the learned positions (logits at t predict t+1)
    const predicted = out.logits!.narrow(1, 0, out.logits!.shape[1] - 1).argmax(-1);
    const target = inputs.labels.narrow(1, 1, inputs.labels.shape[1] - 1);
    const learned = target.ne(-100);
    return { loss: out.loss!, correct: predicted.eq(target).logicalAnd(learned).sum().item(), total: learned.sum().item() };
  }

  loss(batch: SftBatch): LossOutput {
    const scored = this.#score(batch.samples);
    if (!scored) throw new Error(`every sample of this batch was skipped (${batch.samples.map((s) => s.key).join(", ")}); check data.max_length`);
    return scored;
  }

  evaluate(data: DataSource<SftBatch>, batchSize: number): Record<string, number> {
    let lossSum = 0;
    let tokens = 0;
    let correct = 0;
    for (const batch of batchesOf(data, batchSize)) {
      tidy(() => {
        const scored = this.#score(batch.samples);
        if (!scored) return;
        lossSum += scored.loss.item() * scored.total;
        tokens += scored.total;
        correct += scored.correct;
      });
    }
    return { loss: lossSum / Math.max(1, tokens), token_accuracy: correct / Math.max(1, tokens) };
  }

  /** Generated answers to each conversation's last user turn (greedy, maxNewTokens). */
  answers(samples: ConversationSample[], batchSize = 32, progress = false): string[] {
    this.vlm.model.eval();
    const answers: string[] = [];
    const bar = new ItemProgress("generating", samples.length, { enabled: progress });
    for (let start = 0; start < samples.length; start += batchSize) {
      const chunk = samples.slice(start, start + batchSize);
      const prompts = chunk.map((s) => ({ images: s.images, messages: promptMessages({ messages: s.messages }) }));
      answers.push(...generateAnswers(this.vlm, prompts, { maxNewTokens: this.options.maxNewTokens }));
      bar.advance(chunk.length);
    }
    bar.finish();
    return answers;
  }

  /**
   * With labels: generates an answer per sample, parses it to a class and writes report.json, report.txt,
   * confusion.csv/.png and answers.jsonl. Without: loss and token accuracy.
   */
  report(data: DataSource<SftBatch>, options: ReportOptions): ClassificationEvaluation | TaskReport {
    const batchSize = options.batchSize ?? 32;
    if (this.options.labels.length < 2) {
      this.vlm.model.eval();
      const metrics = this.evaluate(data, batchSize);
      return { split: options.split, metrics, text: `loss ${metrics.loss.toFixed(4)}, token accuracy ${(metrics.token_accuracy * 100).toFixed(1)}%\n` };
    }
    const samples = allSamples(data, batchSize);
    const answers = this.answers(samples, batchSize, options.progress ?? true);
    return answerReport(
      samples.map((s, i) => ({ source: s.key, labelIndex: s.labelIndex, reference: referenceAnswer(s), answer: answers[i] })),
      this.options.labels,
      { split: options.split, outDir: options.outDir, priorityClasses: this.options.priorityClasses },
    );
  }

  checkpointTensors(): Map<string, Tensor> {
    const tensors = new Map<string, Tensor>();
    for (const [name, p] of this.vlm.model.namedParameters()) if (p.requiresGrad) tensors.set(`model.${name}`, p);
    return tensors;
  }

  loadCheckpointTensors(tensors: Map<string, Tensor>): void {
    loadNamedTensors({ model: this.vlm.model }, tensors);
  }

  /** Nothing of its own to free: the model belongs to the caller. */
  dispose(): void {
    this.#encoded.clear();
  }
}

/** How many of an assistant message's tokens are learned: all but a trailing newline the template adds. */
function assistantSpan(added: number[], newline: number[]): number {
  if (newline.length > 0 && added.length >= newline.length && newline.every((id, k) => added[added.length - newline.length + k] === id)) {
    return added.length - newline.length;
  }
  return added.length;
}
