// PostgreSQL text and jsonb cannot hold NUL, and jsonb refuses lone surrogates: a write carrying
// either fails on every retry, so the row would never catch up. The API refuses such input, but
// text also comes from elsewhere (a job's output excerpts, a driver's error message): these make
// any string storable, replacing what cannot be stored with U+FFFD. Exact bytes live in bytea.

export function storableText(s: string): string;
export function storableText(s: string | null | undefined): string | null | undefined;
export function storableText(s: string | null | undefined): string | null | undefined {
  return typeof s === 'string' ? s.toWellFormed().replaceAll('\0', '\ufffd') : s;
}

/** JSON for a jsonb column, every string (keys included) made storable. */
export function storableJson(value: unknown): string {
  // The replacer sees each object before its members: rewriting its keys there covers them all.
  return JSON.stringify(value, (_key, v) => {
    if (typeof v === 'string') return storableText(v);
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [storableText(k), x]));
    }
    return v;
  });
}
