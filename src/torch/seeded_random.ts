// A seeded generator for work that must not draw from (or disturb) torch's generators: data order, splits,
// synthetic data, reference values in checks. The same numbers on every platform and Node version.

/** mulberry32: uniform numbers in [0, 1) from a 32-bit seed; the whole state is one 32-bit integer. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** 0..length-1 shuffled by Fisher-Yates with `random`. */
export function shuffledIndices(length: number, random: () => number): number[] {
  const order = Array.from({ length }, (_, i) => i);
  for (let i = length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}
