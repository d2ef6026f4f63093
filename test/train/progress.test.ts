// Console output: a bar redrawn in place on a TTY (loss, accuracy, lr, samples/s, ETA), plain lines elsewhere.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ConsoleProgress, formatDuration } from "../../src/train/index.js";

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
