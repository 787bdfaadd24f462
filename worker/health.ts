// What /healthz answers: an embedded service known to be down fails at once (its supervisor saw
// it die); otherwise one query to the registry and one health call to Temporal, each with a short
// deadline, so a dead dependency is a 503 within 2 s instead of a hanging request.
import type { Connection } from '@temporalio/client';
import type pg from 'pg';
import type { Supervisor } from './supervisor';

const CHECK_DEADLINE_MS = 900;

export interface HealthDeps {
  pool: pg.Pool;
  connection: Connection;
  supervisors: readonly Supervisor[];
}

/**
 * /healthz needs no token, so a flood of it must not become a flood of registry queries: one check
 * at a time, shared by everyone asking meanwhile, and an answer reused for CACHE_MS. A supervisor
 * that saw its service die is asked every time (that costs nothing).
 */
const CACHE_MS = 500;

export function createHealthCheck(deps: HealthDeps): () => Promise<Record<string, unknown>> {
  const check = checkOnce(deps);
  let last: { at: number; answer: Promise<Record<string, unknown>> } | undefined;
  return async () => {
    throwIfAnyDown(deps.supervisors);
    if (!last || Date.now() - last.at > CACHE_MS) last = { at: Date.now(), answer: check() };
    return last.answer;
  };
}

function checkOnce(deps: HealthDeps): () => Promise<Record<string, unknown>> {
  return async () => {
    // A service that dies while the checks run would only show as their deadline: watch for it.
    const watch = watchSupervisors(deps.supervisors);
    try {
      await Promise.race([
        watch.down,
        Promise.all([
          withDeadline(deps.pool.query('SELECT 1'), 'registry (PostgreSQL)'),
          deps.connection
            .withDeadline(Date.now() + CHECK_DEADLINE_MS, () => deps.connection.healthService.check({}))
            .catch((err: Error) => {
              throw new Error(`Temporal: ${err.message}`);
            }),
        ]),
      ]);
    } finally {
      watch.stop();
    }
    return { registry: 'ok', temporal: 'ok' };
  };
}

function throwIfAnyDown(supervisors: readonly Supervisor[]): void {
  const down = supervisors.map((s) => s.state()).filter((s) => !s.up);
  if (down.length) {
    throw new Error(
      down
        .map(
          (s) =>
            `embedded ${s.name} is down${s.downSince ? ` since ${s.downSince}` : ''} ` +
            `(${s.lastError ?? s.status}); restarting`,
        )
        .join('; '),
    );
  }
}

function watchSupervisors(supervisors: readonly Supervisor[]): { down: Promise<never>; stop(): void } {
  let timer: NodeJS.Timeout | undefined;
  const down = new Promise<never>((_, reject) => {
    if (!supervisors.length) return;
    timer = setInterval(() => {
      try {
        throwIfAnyDown(supervisors);
      } catch (err) {
        reject(err);
      }
    }, 50);
  });
  return { down, stop: () => clearInterval(timer) };
}

async function withDeadline<T>(work: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what} did not answer within ${CHECK_DEADLINE_MS} ms`)),
      CHECK_DEADLINE_MS,
    );
  });
  try {
    return await Promise.race([
      work.catch((err: Error) => Promise.reject(new Error(`${what}: ${err.message}`))),
      deadline,
    ]);
  } finally {
    clearTimeout(timer);
  }
}
