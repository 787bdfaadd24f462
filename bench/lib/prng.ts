// A seeded PRNG (mulberry32), so a chaos run or a random fault schedule can be replayed from its seed.

/** Uniform floats in [0, 1), the same sequence for the same seed. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Draws from one random source: a float in [0, 1), a float in [a, b), an integer in [a, b]. */
export interface Dice {
  next: () => number;
  uniform: (range: readonly [number, number]) => number;
  int: (range: readonly [number, number]) => number;
}

export function diceFrom(next: () => number): Dice {
  return {
    next,
    uniform: ([a, b]) => a + (b - a) * next(),
    int: ([a, b]) => Math.floor(a + (b - a + 1) * next()),
  };
}
