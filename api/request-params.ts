// Request parts every resource's routes read the same way: the Idempotency-Key header and the :id.
import type { Request, Router } from 'express';
import { ApiError } from './errors';
import { stringProblem } from './input-hygiene';
import { ID_PATTERN } from './schemas';

export const idempotencyKey = (req: Request) => {
  const key = req.get('idempotency-key');
  if (key !== undefined && (key.length === 0 || key.length > 200 || stringProblem(key))) {
    throw new ApiError(400, 'invalid_argument', 'Idempotency-Key header must be 1-200 characters of valid text');
  }
  return key;
};

/** Ids that no sandbox can have are a 400 before they reach the registry or Temporal. */
export function checkIdParam(router: Router, what: string): void {
  router.param('id', (_req, _res, next, id: string) =>
    next(ID_PATTERN.test(id) ? undefined : new ApiError(400, 'invalid_argument', `id: not a ${what} id`)),
  );
}
