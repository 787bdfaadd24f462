// Query strings and headers of the exec routes (the OpenAPI document uses them too).
import '../openapi/extend-zod';
import { z } from 'zod';
import { queryFlag } from '../query-flag';
import { ID_PATTERN } from '../schemas';

/** An exec id as the API hands them out (a UUID, or k-<hex> from an Idempotency-Key). */
export const execIdParams = z.object({
  id: z
    .string()
    .regex(ID_PATTERN)
    .openapi({ param: { description: 'The sandbox id' }, example: 'sbx-1a2b3c4d' }),
  execId: z
    .string()
    .regex(ID_PATTERN)
    .openapi({ param: { description: 'The exec id (Hourglass-Exec-Id, or the background answer’s execId)' } }),
});

/** An output seq: what `id:` carries and Last-Event-ID sends back. */
export const outputSeq = z.coerce.number().int().min(0).max(2_147_483_647);

export const outputQuery = z.object({
  follow: queryFlag.openapi({ description: 'Stream Server-Sent Events until the exec ends, instead of one JSON page' }),
  after: outputSeq.default(0).openapi({ description: 'Output after this seq (Last-Event-ID wins when following)' }),
  limit: z.coerce.number().int().min(1).max(1000).default(500).openapi({ description: 'JSON page size' }),
});

export const lastSeqHeader = z.object({
  'Last-Event-ID': z
    .string()
    .regex(/^\d{1,10}$/)
    .optional()
    .openapi({ param: { description: 'Resume after this output seq (EventSource sends it on reconnect)' } }),
});
