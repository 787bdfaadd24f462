// /v1/codec routes (api/codec-routes.ts): Temporal's remote codec protocol, for the Temporal UI.
// Present only when the service runs with a payload codec (encryption) configured.
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { payloadsBody } from '../../codec-routes';
import { authErrors, json } from '../common';

const Payloads = z
  .object({
    payloads: z.array(
      z.object({
        metadata: z.record(z.string().openapi({ format: 'byte' })),
        data: z.string().openapi({ format: 'byte' }),
      }),
    ),
  })
  .openapi('Payloads');

export function registerCodecPaths(registry: OpenAPIRegistry): void {
  for (const op of ['encode', 'decode'] as const) {
    registry.registerPath({
      method: 'post',
      path: `/v1/codec/${op}`,
      tags: ['codec'],
      summary: `${op === 'encode' ? 'Encrypt' : 'Decrypt'} Temporal payloads (admins; proto3 JSON, base64 fields)`,
      description:
        'Browsers may call it from the configured Temporal UI origins only (CORS; a preflight needs no token). ' +
        'Bodies up to 16 MB. Only served when a payload codec is configured.',
      request: {
        headers: z.object({
          'X-Namespace': z
            .string()
            .optional()
            .openapi({ param: { description: 'Sent by the Temporal UI; ignored' } }),
        }),
        body: { required: true, content: json(payloadsBody.openapi('PayloadsRequest')) },
      },
      responses: { 200: { description: `The ${op}d payloads`, content: json(Payloads) }, ...authErrors(413) },
    });
  }
}
