// Query strings and bodies of the file routes (the OpenAPI document uses them too). Paths are only
// shaped here; the sandbox itself confines them to its workspace (escapes are 400s from there).
import '../openapi/extend-zod';
import { z } from 'zod';
import { queryFlag } from '../query-flag';

const filePath = z
  .string()
  .min(1, 'must not be empty')
  .refine((p) => Buffer.byteLength(p) <= 4096, 'at most 4096 bytes')
  .openapi({
    description: 'Relative to the sandbox’s workspace (/work, or /root in a VM), or an absolute path beneath it',
    example: 'src/main.py',
  });

export const writeFileQuery = z.object({
  path: filePath,
  mode: z
    .string()
    .regex(/^[0-7]{3,4}$/, 'permission bits in octal, e.g. 644')
    .optional()
    .transform((m) => (m === undefined ? undefined : parseInt(m, 8)))
    .openapi({ description: 'Permission bits in octal (default 644)', example: '755' }),
});

export const readFileQuery = z.object({ path: filePath });

export const removeFileQuery = z.object({
  path: filePath,
  recursive: queryFlag.openapi({ description: 'Remove a directory and everything in it' }),
});

export const listFilesQuery = z.object({
  path: filePath.optional().openapi({ description: 'A directory (default: the workspace)' }),
  limit: z.coerce.number().int().min(1).max(10_000).default(1000).openapi({ description: 'Entries at most' }),
});

export const mkdirBody = z
  .object({
    path: filePath,
    parents: z.boolean().default(false).openapi({ description: 'Create missing parents too (mkdir -p)' }),
  })
  .strict();
