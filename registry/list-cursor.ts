// The list's page cursor: the (created_at, id) of the last row shown, opaque to callers. Only what
// encodeCursor writes decodes; anything else is refused before it reaches SQL.

/** The cursor a list answer hands out for the page after `createdAt`/`id`. */
export function encodeCursor(createdAt: string, id: string): string {
  return Buffer.from(JSON.stringify([createdAt, id])).toString('base64url');
}

export class InvalidCursorError extends Error {}

// Exactly what encodeCursor writes.
const CURSOR_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const CURSOR_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** The (created_at, id) a cursor names; InvalidCursorError (a 400) for anything else. */
export function decodeCursor(cursor: string): [string, string] {
  try {
    if (/^[A-Za-z0-9_-]{1,400}$/.test(cursor)) {
      const v = JSON.parse(Buffer.from(cursor, 'base64url').toString());
      // A real instant (2024-02-31 parses, and round-trips to March) in PostgreSQL's range.
      const realTime =
        CURSOR_TIME.test(v?.[0]) &&
        !Number.isNaN(Date.parse(v[0])) &&
        new Date(v[0]).toISOString() === v[0] &&
        v[0] >= '1970';
      if (Array.isArray(v) && v.length === 2 && realTime && CURSOR_ID.test(v[1])) {
        return [v[0], v[1]];
      }
    }
  } catch {
    /* fall through */
  }
  throw new InvalidCursorError('cursor: not a cursor this API returned (pass nextCursor from a list answer as it is)');
}
