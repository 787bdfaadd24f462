// The API's request schemas (api/schemas.ts): what each route accepts (and fills in), what it
// refuses, and the message the client reads — through the API's own error mapping (api/errors.ts).
import type { Request, Response } from 'express';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ZodType } from 'zod';
import { errorHandler } from '../../api/errors';
import {
  ID_PATTERN,
  bulkDestroyBody,
  createJobBody,
  createSandboxBody,
  createSessionBody,
  destroyBody,
  execBody,
  listQuery,
  pruneBody,
  renewBody,
} from '../../api/schemas';

/** What a client gets back when `input` is refused: the status and the JSON error's code and message. */
function refusal(schema: ZodType, input: unknown): { status: number; code: string; message: string } {
  const parsed = schema.safeParse(input);
  if (parsed.success) throw new Error(`accepted ${JSON.stringify(input)?.slice(0, 100)}`);
  const answer = { status: 0, code: '', message: '' };
  const res = {
    status: (status: number) => ((answer.status = status), res),
    json: (body: { error: { code: string; message: string } }) => {
      answer.code = body.error.code;
      answer.message = body.error.message;
      return res;
    },
    set: () => res,
  };
  const req = { method: 'POST', path: '/v1/test' };
  errorHandler(parsed.error, req as Request, res as unknown as Response, () => {});
  return answer;
}
const message = (schema: ZodType, input: unknown) => refusal(schema, input).message;

describe('refusals', () => {
  it('are 400 invalid_argument, the message naming the field first', () => {
    expect(refusal(createSandboxBody, { ttlSeconds: 0 })).toEqual({
      status: 400,
      code: 'invalid_argument',
      message: 'ttlSeconds: must be greater than 0',
    });
  });

  it('name the whole body for an unknown field (every body is strict)', () => {
    expect(message(createSandboxBody, { ttlSeconds: 60, ttl: 60 })).toBe("body: Unrecognized key(s) in object: 'ttl'");
    expect(message(execBody, { command: ['ls'], cwd: '/' })).toBe("body: Unrecognized key(s) in object: 'cwd'");
    expect(message(renewBody, { ttlSeconds: 60, wait: true })).toBe("body: Unrecognized key(s) in object: 'wait'");
    expect(message(destroyBody, { force: true, now: 1 })).toBe("body: Unrecognized key(s) in object: 'now'");
    expect(message(createSessionBody, { heartbeatTimeoutSeconds: 5, x: 1 })).toBe(
      "body: Unrecognized key(s) in object: 'x'",
    );
  });
});

describe('createSandboxBody', () => {
  it('needs only ttlSeconds; labels default to none and the call waits until RUNNING', () => {
    expect(createSandboxBody.parse({ ttlSeconds: 60 })).toEqual({ ttlSeconds: 60, labels: {}, wait: true });
  });

  it('keeps what it knows', () => {
    const body = {
      driver: 'qemu',
      template: 'ubuntu',
      ttlSeconds: 60,
      maxLifetimeSeconds: 3600,
      readyTimeoutSeconds: 120,
      labels: { team: 'a', 'app.io/name': 'b' },
      limits: { cpus: 0.5, memoryMiB: 512 },
      sessionId: 'ses-1',
      wait: false,
    };
    expect(createSandboxBody.parse(body)).toEqual(body);
  });

  it.each([
    [{}, 'ttlSeconds: Required'],
    [{ ttlSeconds: '60' }, 'ttlSeconds: Expected number, received string'],
    [{ ttlSeconds: 1.5 }, 'ttlSeconds: must be a whole number of seconds'],
    [{ ttlSeconds: -5 }, 'ttlSeconds: must be greater than 0'],
    [{ ttlSeconds: 30 * 24 * 3600 + 1 }, 'ttlSeconds: Number must be less than or equal to 2592000'],
    [
      { ttlSeconds: 60, maxLifetimeSeconds: 366 * 24 * 3600 + 1 },
      'maxLifetimeSeconds: Number must be less than or equal to 31622400',
    ],
    [{ ttlSeconds: 60, readyTimeoutSeconds: 3601 }, 'readyTimeoutSeconds: Number must be less than or equal to 3600'],
    [{ ttlSeconds: 60, driver: '' }, 'driver: String must contain at least 1 character(s)'],
    [{ ttlSeconds: 60, labels: { 'a b': 'x' } }, 'labels.a b: label keys are 1-63 of [A-Za-z0-9_./-]'],
    [{ ttlSeconds: 60, labels: { a: 'x'.repeat(257) } }, 'labels.a: String must contain at most 256 character(s)'],
    [{ ttlSeconds: 60, sessionId: '../etc' }, 'sessionId: not an id (1-128 of [A-Za-z0-9_.@-])'],
    [{ ttlSeconds: 60, limits: { cpus: 0 } }, 'limits.cpus: must be at least 0.01'],
    [{ ttlSeconds: 60, limits: { memoryMiB: 0 } }, 'limits.memoryMiB: must be greater than 0'],
    [{ ttlSeconds: 60, limits: { gpus: 1 } }, "limits: Unrecognized key(s) in object: 'gpus'"],
    [{ ttlSeconds: 60, wait: 'yes' }, 'wait: Expected boolean, received string'],
  ])('refuses %j: "%s"', (body, expected) => {
    expect(message(createSandboxBody, body)).toBe(expected);
  });

  it('at most 64 labels', () => {
    const labels = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, 'v']));
    expect(createSandboxBody.parse({ ttlSeconds: 60, labels: labels(64) }).labels).toEqual(labels(64));
    expect(message(createSandboxBody, { ttlSeconds: 60, labels: labels(65) })).toBe('labels: at most 64 labels');
  });

  it('any whole number of seconds from 1 to 30 days is a ttl; anything else is refused naming ttlSeconds', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 30 * 24 * 3600 }), (ttl) => {
        expect(createSandboxBody.parse({ ttlSeconds: ttl }).ttlSeconds).toBe(ttl);
      }),
    );
    const notATtl = fc.oneof(
      fc.integer({ max: 0 }),
      fc.integer({ min: 30 * 24 * 3600 + 1 }),
      fc.double({ noInteger: true }),
      fc.string(),
      fc.boolean(),
      fc.constant(null),
    );
    fc.assert(
      fc.property(notATtl, (ttl) => {
        expect(message(createSandboxBody, { ttlSeconds: ttl })).toMatch(/^ttlSeconds: /);
      }),
    );
  });

  it('label keys: 1-63 of [A-Za-z0-9_./-], nothing else', () => {
    fc.assert(
      // "__proto__" aside: zod's record drops it silently (its output is a plain object).
      fc.property(
        fc.stringMatching(/^[A-Za-z0-9_./-]{1,63}$/).filter((k) => k !== '__proto__'),
        (key) => {
          expect(createSandboxBody.parse({ ttlSeconds: 60, labels: { [key]: 'v' } }).labels).toEqual({ [key]: 'v' });
        },
      ),
    );
    const badKey = fc.string({ minLength: 1, maxLength: 80 }).filter((k) => !/^[A-Za-z0-9_./-]{1,63}$/.test(k));
    fc.assert(
      fc.property(badKey, (key) => {
        expect(message(createSandboxBody, { ttlSeconds: 60, labels: { [key]: 'v' } })).toBe(
          `labels.${key}: label keys are 1-63 of [A-Za-z0-9_./-]`,
        );
      }),
    );
  });
});

describe('ids (sessionId, owner, bulk ids)', () => {
  it('1-128 of [A-Za-z0-9_.@-], starting with a letter or digit: nothing that could reach a path or SQL oddly', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$/), (id) => {
        expect(ID_PATTERN.test(id)).toBe(true);
        expect(createSandboxBody.parse({ ttlSeconds: 60, sessionId: id }).sessionId).toBe(id);
      }),
    );
    const notAnId = fc.oneof(
      fc.string().filter((s) => /[^A-Za-z0-9_.@-]/.test(s)),
      fc.stringMatching(/^[_.@-][A-Za-z0-9_.@-]{0,20}$/),
      fc.stringMatching(/^[A-Za-z0-9]{129,140}$/),
      fc.constant(''),
    );
    fc.assert(
      fc.property(notAnId, (id) => {
        expect(ID_PATTERN.test(id)).toBe(false);
        expect(message(createSandboxBody, { ttlSeconds: 60, sessionId: id })).toBe(
          'sessionId: not an id (1-128 of [A-Za-z0-9_.@-])',
        );
        expect(message(bulkDestroyBody, { ids: ['sbx-ok', id] })).toBe('ids.1: not an id (1-128 of [A-Za-z0-9_.@-])');
      }),
    );
  });
});

describe('execBody', () => {
  it('a program and its arguments, with optional timeout and env', () => {
    const body = { command: ['sh', '-c', 'echo $X'], timeoutSeconds: 10, env: { X: '1', _Y2: '' } };
    expect(execBody.parse(body)).toEqual(body);
  });

  it.each([
    [{}, 'command: Required'],
    [{ command: [] }, 'command: must name a program'],
    [{ command: [''] }, 'command: the program (first element) must be a name, not empty or NAME=VALUE'],
    [{ command: ['FOO=bar', 'ls'] }, 'command: the program (first element) must be a name, not empty or NAME=VALUE'],
    [{ command: 'ls -l' }, 'command: Expected array, received string'],
    [{ command: ['ls'], timeoutSeconds: 3601 }, 'timeoutSeconds: Number must be less than or equal to 3600'],
    [{ command: ['ls'], env: { '1X': 'y' } }, 'env.1X: env names are 1-128 of [A-Za-z_][A-Za-z0-9_]*'],
    [{ command: ['ls'], env: { 'A-B': 'y' } }, 'env.A-B: env names are 1-128 of [A-Za-z_][A-Za-z0-9_]*'],
  ])('refuses %j: "%s"', (body, expected) => {
    expect(message(execBody, body)).toBe(expected);
  });

  it('an argument or env value must fit the kernel limit for one string (128 KiB, NUL included)', () => {
    const under = 'x'.repeat(128 * 1024 - 1);
    expect(execBody.parse({ command: ['echo', under] }).command[1]).toBe(under);
    const limit = 'must be under 128 KiB (the kernel limit for one argument)';
    expect(message(execBody, { command: ['echo', 'a', `${under}x`] })).toBe(`command.2: ${limit}`);
    // Bytes, not characters: 43,691 × 3 bytes ≥ 128 KiB.
    expect(message(execBody, { command: ['echo', '€'.repeat(43_691)] })).toBe(`command.1: ${limit}`);
    expect(message(execBody, { command: ['env'], env: { BIG: `${under}x` } })).toBe(`env.BIG: ${limit}`);
  });
});

describe('renew, destroy, prune, session, job bodies', () => {
  it('renew: ttlSeconds, by update unless async', () => {
    expect(renewBody.parse({ ttlSeconds: 60 })).toEqual({ ttlSeconds: 60, async: false });
    expect(renewBody.parse({ ttlSeconds: 60, async: true })).toEqual({ ttlSeconds: 60, async: true });
    expect(message(renewBody, { ttlSeconds: 0 })).toBe('ttlSeconds: must be greater than 0');
  });

  it('destroy: no body at all is a plain destroy; a reason is at most 500 characters', () => {
    expect(destroyBody.parse(undefined)).toEqual({ force: false });
    expect(destroyBody.parse({ force: true, reason: 'done' })).toEqual({ force: true, reason: 'done' });
    expect(message(destroyBody, { reason: 'x'.repeat(501) })).toBe(
      'reason: String must contain at most 500 character(s)',
    );
  });

  it('prune: a real run unless dryRun; olderThanSeconds ≥ 0', () => {
    expect(pruneBody.parse(undefined)).toEqual({ dryRun: false });
    expect(pruneBody.parse({ dryRun: true, olderThanSeconds: 0 })).toEqual({ dryRun: true, olderThanSeconds: 0 });
    expect(message(pruneBody, { olderThanSeconds: -1 })).toBe(
      'olderThanSeconds: Number must be greater than or equal to 0',
    );
  });

  it('bulk destroy: ids or a label filter, or both', () => {
    expect(bulkDestroyBody.parse({ label: 'team=a' })).toEqual({ label: ['team', 'a'], force: false });
    expect(bulkDestroyBody.parse({ ids: ['sbx-1'] })).toEqual({ ids: ['sbx-1'], force: false });
    expect(message(bulkDestroyBody, {})).toBe('ids: give ids or label (or both)');
    expect(message(bulkDestroyBody, { ids: [] })).toBe('ids: give ids or label (or both)');
    expect(message(bulkDestroyBody, { ids: Array.from({ length: 1001 }, (_, i) => `sbx-${i}`) })).toBe(
      'ids: Array must contain at most 1000 element(s)',
    );
  });

  it('session: a heartbeat timeout of at most 7 days', () => {
    expect(createSessionBody.parse({ heartbeatTimeoutSeconds: 30 })).toEqual({ heartbeatTimeoutSeconds: 30 });
    expect(message(createSessionBody, {})).toBe('heartbeatTimeoutSeconds: Required');
    expect(message(createSessionBody, { heartbeatTimeoutSeconds: 7 * 24 * 3600 + 1 })).toBe(
      'heartbeatTimeoutSeconds: Number must be less than or equal to 604800',
    );
  });

  it('job: 1 to 100 commands, each a program like exec', () => {
    expect(createJobBody.parse({ ttlSeconds: 60, commands: [['make']] })).toEqual({
      ttlSeconds: 60,
      commands: [['make']],
      keepalive: false,
      labels: {},
    });
    expect(message(createJobBody, { ttlSeconds: 60, commands: [] })).toBe('commands: give at least one command');
    expect(message(createJobBody, { ttlSeconds: 60, commands: [['make'], []] })).toBe(
      'commands.1: must name a program',
    );
    expect(message(createJobBody, { ttlSeconds: 60, commands: Array(101).fill(['true']) })).toBe(
      'commands: Array must contain at most 100 element(s)',
    );
  });
});

describe('listQuery (the query string of GET /v1/sandboxes)', () => {
  it('defaults: 50 per page, no filter', () => {
    expect(listQuery.parse({})).toEqual({ limit: 50 });
  });

  it('state: comma-separated or repeated, empty parts ignored', () => {
    expect(listQuery.parse({ state: 'RUNNING,STOPPED' }).state).toEqual(['RUNNING', 'STOPPED']);
    expect(listQuery.parse({ state: ['RUNNING', 'EXPIRED'] }).state).toEqual(['RUNNING', 'EXPIRED']);
    expect(listQuery.parse({ state: 'RUNNING,' }).state).toEqual(['RUNNING']);
    expect(message(listQuery, { state: 'RUNNING,running' })).toMatch(/^state\.1: Invalid enum value\. .*'running'$/);
  });

  it('label: key=value, repeated for several; the value may hold "="', () => {
    expect(listQuery.parse({ label: 'team=a' }).label).toEqual({ team: 'a' });
    expect(listQuery.parse({ label: ['team=a', 'expr=x=1'] }).label).toEqual({ team: 'a', expr: 'x=1' });
    expect(listQuery.parse({ label: 'empty=' }).label).toEqual({ empty: '' });
    expect(refusal(listQuery, { label: 'team' }).status).toBe(400);
    expect(message(listQuery, { label: 'team' })).toMatch(/^label: /);
  });

  it('limit: a number from 1 to 500, from its query-string text', () => {
    expect(listQuery.parse({ limit: '500' }).limit).toBe(500);
    expect(message(listQuery, { limit: '0' })).toBe('limit: Number must be greater than or equal to 1');
    expect(message(listQuery, { limit: '501' })).toBe('limit: Number must be less than or equal to 500');
    expect(message(listQuery, { limit: 'ten' })).toBe('limit: Expected number, received nan');
    expect(message(listQuery, { owner: 'a/b' })).toBe('owner: not an id (1-128 of [A-Za-z0-9_.@-])');
  });
});
