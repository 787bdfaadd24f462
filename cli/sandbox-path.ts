// `sandbox cp` operands: `<sandbox-id>:<path>` names a path in a sandbox, anything else a local one
// (`-` is this process's stdin or stdout). `./x:y` or `/x:y` stay local.
import { ID_PATTERN } from '../api/schemas';

export type Operand = { sandbox: string; path: string } | { local: string };

export function parseOperand(s: string): Operand {
  const colon = s.indexOf(':');
  if (colon > 0 && !s.startsWith('.') && !s.startsWith('/')) {
    const id = s.slice(0, colon);
    if (ID_PATTERN.test(id)) return { sandbox: id, path: s.slice(colon + 1) || '.' };
  }
  return { local: s };
}
