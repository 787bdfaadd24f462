// Gives every zod schema `.openapi(...)` (names and examples for the document). Imported first by
// api/schemas.ts, so it runs before any schema is built. It only adds metadata: validation is unchanged.
import { extendZodWithOpenApi } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';

extendZodWithOpenApi(z);
