// GET /v1/events and GET /v1/sandboxes/:id/events?follow=true: the event feed as a JSON page or
// a Server-Sent Events stream. Mounted on /v1 before the sandbox routes: a sandbox's events
// without follow fall through to their JSON list there.
import { Router, type Request, type RequestHandler, type Response } from 'express';
import { compareIds, latestEventId, readFeedPage } from '../../registry/event-feed';
import { principalOf } from '../auth';
import { ApiError } from '../errors';
import { checkIdParam } from '../request-params';
import type { SandboxService } from '../sandboxes/service';
import { wrap } from '../wrap';
import { follow, type FollowRequest } from './follow';
import { StreamLimitError, type EventHub } from './hub';
import { eventId, eventsQuery, sandboxEventsQuery } from './schemas';

export function eventRoutes(hub: EventHub, service: SandboxService): Router {
  const feed = wrap(async (req, res) => {
    const q = eventsQuery.parse(req.query);
    const p = principalOf(req);
    const filter = {
      owner: p.role === 'admin' ? q.owner : p.owner,
      states: q.state,
      labels: q.label,
      sessionId: q.session,
    };
    if (!wantsStream(req, q.follow)) {
      await refuseFutureId(hub, 'after', q.after);
      const page = await readFeedPage(hub.pool, q.after ?? '0', filter, q.limit);
      res.json({ items: page.events, nextAfter: page.through });
      return;
    }
    const start = resumePoint(req, q.after);
    await refuseFutureId(hub, start?.field, start?.id);
    const after = start?.id ?? (await latestEventId(hub.pool));
    await followOrRefuse(hub, res, { owner: p.owner, filter, after });
  });

  const sandboxStream = async (req: Request, res: Response) => {
    const q = sandboxEventsQuery.parse(req.query);
    const p = principalOf(req);
    const id = req.params.id!;
    // The same rule as GET /:id (another owner's sandbox is a 404); its events tell whether it has ended.
    const events = await service.events(p, id);
    const start = resumePoint(req, q.after);
    await refuseFutureId(hub, start?.field, start?.id);
    const after = start?.id ?? '0';
    const destroyed = events.some((e) => e.to === 'DESTROYED');
    if (destroyed && events.every((e) => compareIds(e.id, after) <= 0)) {
      // Destroyed and the client has every event: nothing more can come. 204 tells EventSource
      // to stop reconnecting.
      res.status(204).end();
      return;
    }
    await followOrRefuse(hub, res, {
      owner: p.owner,
      filter: { sandboxId: id },
      after,
      isLast: (e) => e.to === 'DESTROYED',
      lastSeen: destroyed,
    });
  };
  const sandboxFeed: RequestHandler = (req, res, next) => {
    try {
      if (!wantsStream(req, sandboxEventsQuery.parse(req.query).follow)) return next();
    } catch (err) {
      return next(err);
    }
    sandboxStream(req, res).catch(next);
  };

  const r = Router();
  checkIdParam(r, 'sandbox');
  r.get('/events', feed);
  r.get('/sandboxes/:id/events', sandboxFeed);
  return r;
}

async function followOrRefuse(hub: EventHub, res: Response, req: FollowRequest): Promise<void> {
  try {
    await follow(hub, res, req);
  } catch (err) {
    if (!(err instanceof StreamLimitError)) throw err;
    const { max } = err;
    if (err.scope === 'process') {
      // Not the caller's doing: another API instance (or this one, a little later) can take it.
      throw new ApiError(503, 'unavailable', `this API instance has ${max} event streams open; try again`, { max }, 5);
    }
    throw new ApiError(429, 'rate_limited', `at most ${max} event streams per owner; close one first`, { max }, 5);
  }
}

/**
 * A resume point past the newest event id would wait forever (nothing reaches an id that is not
 * handed out yet: a client's id from another database, or a restored backup): a 400 naming it.
 */
async function refuseFutureId(hub: EventHub, field: string | undefined, id: string | undefined): Promise<void> {
  if (id === undefined || id === '0') return;
  const newest = await latestEventId(hub.pool);
  if (compareIds(id, newest) <= 0) return;
  throw new ApiError(400, 'invalid_argument', `${field}: ${id} is past the newest event id (${newest})`, { newest });
}

/** `follow=true`, or (follow not given) an EventSource's Accept header. */
function wantsStream(req: Request, followParam: boolean | undefined): boolean {
  if (followParam) return true;
  return req.query.follow === undefined && (req.get('accept') ?? '').includes('text/event-stream');
}

/** Where a stream starts: Last-Event-ID, which EventSource sends on reconnect, wins over `?after=`. */
function resumePoint(req: Request, after: string | undefined): { field: string; id: string } | undefined {
  const header = req.get('last-event-id');
  if (header === undefined || header === '') return after === undefined ? undefined : { field: 'after', id: after };
  const parsed = eventId.safeParse(header.trim());
  if (parsed.success) return { field: 'Last-Event-ID', id: parsed.data };
  throw new ApiError(400, 'invalid_argument', `Last-Event-ID: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
}
