// Generated answers mapped back to class labels.
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseAnswerToLabel, editDistance, normaliseAnswer } from "../../src/eval/answers.js";

const labels = ["red circle", "blue square", "circle", "green triangle"];

test("exact, normalised, contained, closest and unparseable answers", () => {
  assert.deepEqual(parseAnswerToLabel("blue square", labels), { label: "blue square", index: 1, how: "exact" });
  assert.deepEqual(parseAnswerToLabel("  The Blue Square. ", labels), { label: "blue square", index: 1, how: "normalised" });
  assert.deepEqual(parseAnswerToLabel("It is a red circle!", labels), { label: "red circle", index: 0, how: "normalised" });
  assert.deepEqual(parseAnswerToLabel("green triangel", labels), { label: "green triangle", index: 3, how: "closest" });
  assert.deepEqual(parseAnswerToLabel("a blue square or a green triangle", labels), { label: null, index: -1, how: "unparseable" });
  assert.deepEqual(parseAnswerToLabel("no idea", labels), { label: null, index: -1, how: "unparseable" });
});

test("helpers: edit distance and normalisation", () => {
  assert.equal(editDistance("kitten", "sitting"), 3);
  assert.equal(editDistance("", "abc"), 3);
  assert.equal(normaliseAnswer("The Cat, sat!"), "cat sat");
});
