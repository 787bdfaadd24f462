import type { NextFunction, Request, Response } from 'express';

/** Express 4 does not forward rejected promises to the error handler by itself. */
export const wrap =
  (fn: (req: Request, res: Response) => Promise<unknown>) => (req: Request, res: Response, next: NextFunction) =>
    fn(req, res).catch(next);
