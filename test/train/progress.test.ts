// Console output: a bar redrawn in place on a TTY (loss, accuracy, lr, samples/s, ETA), plain lines elsewhere.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ConsoleProgress, ItemProgress, formatDuration } from "../../src/train/index.js";

function fakeStream(isTTY: boolean) {
  const writes: string[] = [];
  const stream = { isTTY, columns: 200, write: (s: string) => (writes.push(s), true) } as unknown as NodeJS.WriteStream;
  return { stream, writes };
}

const state = { step: 5, totalSteps: 20, epoch: 0.5, loss: 0.123456, accuracy: 0.875, lr: 2e-4, samplesPerSecond: 312.54, etaSeconds: 3725 };

test("TTY: the bar line is redrawn with \\r; event lines go above it and the bar comes back", () => {
  const { stream, writes } = fakeStream(true);
  const progress = new ConsoleProgress({ enabled: true, stream });
  progress.update(state);
  assert.equal(writes.length, 1);
  assert.match(writes[0], /^\r\x1b\[2Kepoch 0\.50 █{6}░{18} 5\/20  loss 0\.1235  acc 0\.875  lr 2\.00e-4  312\.5 samples\/s  ETA 1:02:05$/);
  progress.stepLine(state);
  assert.equal(writes.length, 1, "no step lines under a bar");
  progress.line("eval step 5: accuracy 0.9");
  assert.deepEqual(writes.slice(1), ["\r\x1b[2K", "eval step 5: accuracy 0.9\n", writes[0].slice(5)]);
  progress.finish();
  assert.equal(writes.at(-1), "\n");
});

test("not a TTY (or a log callback): one plain line per logged step, no control characters", () => {
  const { stream, writes } = fakeStream(false);
  const progress = new ConsoleProgress({ enabled: true, stream });
  progress.update(state);
  progress.stepLine(state);
  assert.deepEqual(writes, ["step 5/20  epoch 0.50  loss 0.1235  acc 0.875  lr 2.00e-4  312.5 samples/s  ETA 1:02:05\n"]);
  const lines: string[] = [];
  const quiet = new ConsoleProgress({ enabled: false, log: (l) => lines.push(l) });
  quiet.stepLine(state);
  quiet.line("warning: x");
  assert.deepEqual(lines, ["warning: x"]);
  assert.deepEqual([formatDuration(59.6), formatDuration(61), formatDuration(Infinity)], ["1:00", "1:01", "?"]);
});

test("an 80-column terminal keeps the ETA on the training bar: it moves next to the step count", () => {
  const { stream, writes } = fakeStream(true);
  (stream as unknown as { columns: number }).columns = 80;
  new ConsoleProgress({ enabled: true, stream }).update(state);
  const line = writes[0].replace("\r\x1b[2K", "");
  assert.ok(line.length <= 79, line);
  assert.match(line, /^epoch 0\.50 █{6}░{18} 5\/20  ETA 1:02:05  loss 0\.1235/);
});

test("ItemProgress: a bar with count and ETA on a terminal (within 80 columns), nothing on a pipe; finish clears it", () => {
  const { stream, writes } = fakeStream(true);
  (stream as unknown as { columns: number }).columns = 80;
  const bar = new ItemProgress("features", 40, { stream });
  bar.advance(10);
  bar.advance(30);
  assert.equal(writes.length, 2);
  assert.match(writes[0], /^\r\x1b\[2Kfeatures █{5}░{15} 10\/40  ETA \S+  [\d.]+\/s$/);
  assert.match(writes[1], /features █{20} 40\/40  ETA 0:00/);
  assert.ok(writes.every((w) => w.length - 5 <= 79));
  bar.finish();
  assert.equal(writes.at(-1), "\r\x1b[2K");
  const pipe = fakeStream(false);
  const quiet = new ItemProgress("scoring", 10, { stream: pipe.stream });
  quiet.advance(5);
  quiet.finish();
  assert.deepEqual(pipe.writes, []);
  const off = fakeStream(true);
  new ItemProgress("generating", 10, { stream: off.stream, enabled: false }).advance(3);
  assert.deepEqual(off.writes, []);
});
