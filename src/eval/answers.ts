// Maps a generated answer back to a class label so that generation can be scored like a classifier:
// exact match, then normalised match, then the closest class name within an edit-distance budget.
export type AnswerMatch = "exact" | "normalised" | "closest" | "unparseable";

const ARTICLES = /\b(a|an|the)\b/g;

/** Lower case, no punctuation, no articles, single spaces. */
export function normaliseAnswer(text: string): string {
  return text.toLowerCase().normalize("NFKC").replace(/[^\p{L}\p{N}\s]/gu, " ").replace(ARTICLES, " ").replace(/\s+/g, " ").trim();
}

/** Levenshtein distance (also behind the configuration's "did you mean" suggestions). */
export function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) current.push(Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1)));
    previous = current;
  }
  return previous[b.length];
}

/**
 * The class an answer names. A normalised answer that contains exactly one class name also counts as
 * normalised ("it is a red circle." -> "red circle"); the closest class must be within maxDistanceRatio of the
 * longer string's length and strictly closer than the runner-up, else the answer is unparseable.
 */
export function parseAnswerToLabel(text: string, labels: string[], maxDistanceRatio = 0.34): { label: string | null; index: number; how: AnswerMatch } {
  const exact = labels.indexOf(text.trim());
  if (exact >= 0) return { label: labels[exact], index: exact, how: "exact" };
  const answer = normaliseAnswer(text);
  const normalised = labels.map(normaliseAnswer);
  const equal = normalised.indexOf(answer);
  if (equal >= 0) return { label: labels[equal], index: equal, how: "normalised" };
  const contained = normalised.map((l, i) => [l, i] as const).filter(([l]) => l && ` ${answer} `.includes(` ${l} `));
  // the longest contained name wins when names nest ("red circle" over "circle"); two unrelated names are ambiguous
  const longest = contained.sort((x, y) => y[0].length - x[0].length);
  if (longest.length === 1 || (longest.length > 1 && longest.slice(1).every(([l]) => longest[0][0].includes(l)))) {
    return { label: labels[longest[0][1]], index: longest[0][1], how: "normalised" };
  }
  const distances = normalised.map((l) => editDistance(answer, l)).map((d, i) => ({ d, i })).sort((x, y) => x.d - y.d);
  const best = distances[0];
  if (best && best.d <= maxDistanceRatio * Math.max(answer.length, normalised[best.i].length) && (distances.length < 2 || distances[1].d > best.d)) {
    return { label: labels[best.i], index: best.i, how: "closest" };
  }
  return { label: null, index: -1, how: "unparseable" };
}
