// Input that could never be stored or passed on faithfully is refused at the door, naming the
// field: PostgreSQL text and jsonb reject NUL, jsonb rejects lone surrogates, argv and env cannot
// hold NUL, and a lone surrogate turns into U+FFFD on its way to UTF-8. Checked once, here, for
// every route, so no handler has to remember it.
import type { RequestHandler } from 'express';
import { ApiError } from './errors';

/** Only UTF-8 JSON is read: another charset would be decoded into something the client did not send. */
export const utf8BodiesOnly: RequestHandler = (req, _res, next) => {
  const type = req.get('content-type');
  const charset = type ? /;\s*charset\s*=\s*"?([^";\s]+)"?/i.exec(type)?.[1]?.toLowerCase() : undefined;
  if (charset && charset !== 'utf-8' && charset !== 'utf8') {
    return next(new ApiError(400, 'invalid_argument', `unsupported charset '${charset}': send the body as UTF-8 JSON`));
  }
  next();
};

/** Refuses a body or query string holding a NUL character or a lone surrogate anywhere (keys included). */
export const cleanStrings: RequestHandler = (req, _res, next) => {
  const bad = findBadString(req.body, '') ?? findBadString(req.query, 'query');
  if (bad) return next(new ApiError(400, 'invalid_argument', `${bad.path}: ${bad.problem}`, { field: bad.path }));
  next();
};

export function stringProblem(s: string): string | undefined {
  if (s.includes('\0')) return 'contains a NUL character (U+0000), which cannot be stored or passed on';
  if (!s.isWellFormed()) return 'contains a lone surrogate, which is not valid Unicode';
  return undefined;
}

/** The first bad string in a JSON-like value, walked without recursion (bodies may nest deeply). */
export function findBadString(value: unknown, root: string): { path: string; problem: string } | undefined {
  const stack: [unknown, string][] = [[value, root]];
  while (stack.length) {
    const [v, path] = stack.pop()!;
    if (typeof v === 'string') {
      const problem = stringProblem(v);
      if (problem) return { path: path || 'body', problem };
    } else if (Array.isArray(v)) {
      v.forEach((item, i) => stack.push([item, join(path, String(i))]));
    } else if (v && typeof v === 'object') {
      for (const [k, item] of Object.entries(v)) {
        const problem = stringProblem(k);
        if (problem) return { path: `${path || 'body'} key '${k.replace(/[^\x20-\x7e]/g, '?')}'`, problem };
        stack.push([item, join(path, k)]);
      }
    }
  }
  return undefined;
}

const join = (path: string, key: string) => (path ? `${path}.${key}` : key);
