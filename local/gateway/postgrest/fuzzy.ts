/**
 * PostgREST's "Perhaps you meant …" hints (src/PostgREST/Error.hs noRpcHint, getFuzzyHint),
 * which use the fuzzyset library: strings are normalised (lower case; only letters, digits,
 * commas and spaces kept), candidates are those sharing a 2- or 3-gram with the query, and
 * each is scored 1 - Levenshtein distance / the longer length. The best candidate at or
 * above the minimum score wins (0.75 for function names, 0.33 for parameter lists).
 */

const normalise = (s: string) => s.toLowerCase().replace(/[^a-z0-9\u00C0-\u00FF, ]+/g, "");

function grams(s: string, size: number): Set<string> {
  const padded = `-${s}-`;
  const out = new Set<string>();
  for (let i = 0; i + size <= padded.length; i++) out.add(padded.slice(i, i + size));
  return out;
}

function levenshtein(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const next = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = row[j];
      row[j] = next;
    }
  }
  return row[b.length];
}

/** The candidate closest to `query`, if it scores at least `minScore`. */
export function closest(query: string, candidates: string[], minScore: number): string | null {
  const q = normalise(query);
  let best: { value: string; score: number } | null = null;
  for (const size of [3, 2]) {
    const qg = grams(q, size);
    for (const c of candidates) {
      const n = normalise(c);
      if (![...grams(n, size)].some((g) => qg.has(g))) continue;
      const longer = Math.max(q.length, n.length);
      const score = longer === 0 ? 1 : 1 - levenshtein(q, n) / longer;
      if (score >= minScore && (!best || score > best.score)) best = { value: c, score };
    }
    if (best) return best.value;
  }
  return null;
}

/** PostgREST's hint for a function that is not found, or null. */
export function noRpcHint(schema: string, name: string, keys: string[], allNames: string[], overloads: string[][]): string | null {
  const list = (names: string[]) => `(${[...names].sort().join(", ")})`;
  const found = overloads.length === 0
    ? closest(name, allNames, 0.75)
    : (() => {
      const params = closest(list(keys), overloads.map(list), 0.33);
      return params === null ? null : `${name}${params}`;
    })();
  return found === null ? null : `Perhaps you meant to call the function ${schema}.${found}`;
}
