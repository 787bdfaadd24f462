// A yes/no query parameter, one spelling everywhere: true/false or 1/0 (absent: undefined, so a
// route can fall back to a header, e.g. Accept: text/event-stream).
import './openapi/extend-zod';
import { z } from 'zod';

export const queryFlag = z
  .enum(['true', 'false', '1', '0'])
  .optional()
  .transform((v) => (v === undefined ? undefined : v === 'true' || v === '1'));
