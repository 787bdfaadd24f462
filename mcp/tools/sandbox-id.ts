// The one argument every sandbox tool takes.
import { z } from 'zod';
import { ID_PATTERN } from '../../api/schemas';

export const sandboxId = z
  .string()
  .regex(ID_PATTERN, 'not a sandbox id')
  .describe('The sandbox id create_sandbox returned (e.g. "sbx-…")');
