// `sandbox cp` operands: `<sandbox-id>:<path>` names a path in a sandbox, anything else a local one
// (`-` is this process's stdin or stdout). `./x:y` or `/x:y` stay local.

/** The API's ID_PATTERN (api/schemas.ts; test/cli.test.ts checks they agree), not imported: it loads for seconds. */
export const SANDBOX_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$/;

export type Operand = { sandbox: string; path: string } | { local: string };

export function parseOperand(s: string): Operand {
  const colon = s.indexOf(':');
  if (colon > 0 && !s.startsWith('.') && !s.startsWith('/')) {
    const id = s.slice(0, colon);
    if (SANDBOX_ID_PATTERN.test(id)) return { sandbox: id, path: s.slice(colon + 1) || '.' };
  }
  return { local: s };
}
