// The codec endpoint (Temporal's remote codec protocol): lets the Temporal Web UI and
// `temporal workflow show --codec-endpoint …` show encrypted payloads in the clear. It decrypts
// anything, so it is for admins only, and browsers may call it only from the configured UI origins.
import { Router, type RequestHandler } from 'express';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { z } from 'zod';
import { principalOf, requireAdmin } from './auth';
import { ApiError } from './errors';
import { wrap } from './wrap';

const base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'must be base64');
// Proto3 JSON leaves out empty fields: an empty Payloads arrives as {}.
export const payloadsBody = z.object({
  payloads: z
    .array(z.object({ metadata: z.record(base64).default({}), data: base64.default('') }))
    .max(1000)
    .default([]),
});

export function codecRoutes(codec: PayloadCodec): Router {
  const r = Router();
  for (const op of ['encode', 'decode'] as const) {
    r.post(
      `/${op}`,
      wrap(async (req, res) => {
        requireAdmin(principalOf(req), `the codec endpoint (${op})`);
        const { payloads } = payloadsBody.parse(req.body ?? {});
        let out: Payload[];
        try {
          out = await codec[op](payloads.map(fromJson));
        } catch (err) {
          throw new ApiError(400, 'invalid_argument', `payloads: cannot ${op} (${(err as Error).message})`);
        }
        res.json({ payloads: out.map(toJson) });
      }),
    );
  }
  return r;
}

/**
 * The UI calls from its own origin, with X-Namespace and content-type: a preflighted request,
 * answered before auth (a preflight carries no token).
 */
export function codecCors(origins: string[]): RequestHandler {
  return (req, res, next) => {
    const origin = req.get('origin');
    if (origin && origins.includes(origin)) {
      res.set({
        'Access-Control-Allow-Origin': origin,
        'Access-Control-Allow-Methods': 'POST, OPTIONS',
        'Access-Control-Allow-Headers': 'Content-Type, X-Namespace, Authorization',
        'Access-Control-Allow-Credentials': 'true',
        Vary: 'Origin',
      });
    }
    if (req.method === 'OPTIONS') {
      res.status(origin && origins.includes(origin) ? 204 : 403).end();
      return;
    }
    next();
  };
}

function fromJson(p: { metadata: Record<string, string>; data: string }): Payload {
  return {
    metadata: Object.fromEntries(Object.entries(p.metadata).map(([k, v]) => [k, Buffer.from(v, 'base64')])),
    data: Buffer.from(p.data, 'base64'),
  };
}

function toJson(p: Payload): { metadata: Record<string, string>; data: string } {
  return {
    metadata: Object.fromEntries(
      Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')]),
    ),
    data: Buffer.from(p.data ?? new Uint8Array()).toString('base64'),
  };
}
