// The data plane at scale on the process driver, through the real API and the typed client
// (client/): N sandboxes each running a background command (a ticker printing a line every 5 s),
// and while those run: M streamed execs of `seq 1 <lines>` at once (time to the first stdout
// event, to `exit`, and that every line arrived, in order), K uploads then K downloads of a file
// at once (MiB/s each and in aggregate, sha256 checked both ways); then every background command
// killed (kill latency, each must end `killed`). Per phase: what the service's processes spent in
// CPU and hold in memory, and the rows left in exec_output / transfer_chunks (the latter should be
// none). The stack's clean-up destroys the sandboxes.
// Usage: npm run bench:data-plane-scale -- [n=1000] [--concurrency 32] [--streams 100] [--lines 10000]
//          [--files 20] [--file-mib 10] [--timeout 300]
//   --concurrency: creates, background starts, polls and kills at once; --streams: concurrent
//   streamed execs (one per sandbox; the API allows 100 exec streams per owner); --files: sandboxes
//   moving a file at once; --timeout: seconds a phase may wait (all running, a stream, a file).
//   Quick run: `npm run bench:data-plane-scale -- 50 --streams 10 --files 5`.
//   Each running command holds one of the worker's exec slots (HOURGLASS_EXEC_CONCURRENCY, default
//   1000): the bench sets it to N + streams + 16 unless the environment sets it (with N at or above
//   it, the commands past it never start and streams get no byte: the bench warns).
// Starts its own stack (embedded Temporal and PostgreSQL on free ports, its own state dir);
// HOURGLASS_* settings in the environment pass through to it.
import { readFileSync } from 'node:fs';
import { HourglassClient } from '../client/index';
import { Failures } from './lib/api';
import { parseParams } from './lib/args';
import { cpuSpent, isService, reading, type Part } from './lib/cpu';
import { addFailure, download, seqOutput, streamedRun, upload, type StreamedRun } from './lib/data-plane-ops';
import { heading, line, log, table } from './lib/output';
import { abort, forEachLimit } from './lib/pool';
import { classify } from './lib/processes';
import { StateWatcher } from './lib/registry';
import { runBench } from './lib/run';
import { createRunning, warmUp } from './lib/sandboxes';
import { sleep } from './lib/stack';
import { streamStages, type StreamStages } from './lib/stream-stages';
import { connectClient } from './lib/temporal';
import { rate, summarize, type Summary } from './lib/stats';

const USAGE =
  'usage: npm run bench:data-plane-scale -- [n=1000] [--concurrency 32] [--streams 100] [--lines 10000] ' +
  '[--files 20] [--file-mib 10] [--timeout 300]';
const params = parseParams(
  USAGE,
  { n: 1000, concurrency: 32, streams: 100, lines: 10_000, files: 20, fileMib: 10, timeout: 300 },
  ['n'],
);
const TTL = 6 * 3600; // outlives any run: every lease here ends by destroy
const TICKER = ['sh', '-c', 'i=0; while :; do i=$((i+1)); echo tick $i; sleep 5; done'];
const MiB = 1024 * 1024;

const LATENCY_HEADERS = ['step', 'ok', 'failed', 'wall s', 'per s', 'p50 ms', 'p95 ms', 'p99 ms', 'max ms'];
const latencyRow = (step: string, s: Summary, failed: number, wallMs: number) => [
  step,
  s.n,
  failed,
  wallMs / 1000,
  rate(s.n, wallMs),
  s.p50,
  s.p95,
  s.p99,
  s.max,
];

await runBench('data-plane-scale', params, async (bench) => {
  const { n, concurrency: c } = params;
  const timeoutMs = params.timeout * 1000;
  // Each running command holds an exec slot: raised to fit, like the owner quota, unless set.
  process.env.HOURGLASS_EXEC_CONCURRENCY ||= String(n + params.streams + 16);
  const slots = Number(process.env.HOURGLASS_EXEC_CONCURRENCY);
  if (n >= slots) {
    log(
      `warning: ${n} background commands ≥ ${slots} exec slots (HOURGLASS_EXEC_CONCURRENCY): those past the ` +
        'slots are accepted (202, state running) but do not start, and no stream gets a byte until a kill',
    );
  } else if (n + params.streams > slots) {
    log(`warning: ${slots - n} exec slots left beside the background commands: streams past them queue`);
  }
  const stack = await bench.startStack({ sandboxes: n });
  const client = new HourglassClient({ baseUrl: stack.api.baseUrl, token: stack.api.token });
  const watcher = new StateWatcher(stack.registry);
  bench.onCleanup(() => watcher.stop());
  await warmUp(stack.api, watcher);
  watcher.stop();
  const failures = new Failures();
  const leader = stack.leader.pid!;

  // What each phase cost the stack's processes: CPU between readings, memory at each phase's end.
  const phases: { phase: string; wallMs: number; cpu: Record<Part, number>; rssMiB: Record<Part, number> }[] = [];
  let mark = { at: performance.now(), reading: reading(stack.stateDir, leader) };
  const endPhase = (phase: string) => {
    const now = { at: performance.now(), reading: reading(stack.stateDir, leader) };
    const cpu = cpuSpent(mark.reading, now.reading);
    phases.push({ phase, wallMs: now.at - mark.at, cpu, rssMiB: now.reading.rssMiB });
    mark = now;
  };

  // 1. N sandboxes, each with a lease that outlives the run.
  const ids: string[] = [];
  const createMs: number[] = [];
  let started = performance.now();
  await forEachLimit([...Array(n).keys()], c, async () => {
    const created = await createRunning(
      stack.api,
      { ttlSeconds: TTL, labels: { bench: 'data-plane-scale' } },
      failures,
    );
    if (!created) return;
    ids.push(created.id);
    createMs.push(created.ms);
    if (ids.length % Math.max(1, Math.round(n / 10)) === 0) log(`${ids.length}/${n} RUNNING`);
  });
  const createWallMs = performance.now() - started;
  if (!ids.length) throw new Error(`no sandbox was created: ${JSON.stringify(failures.examples)}`);
  // The data plane's first use (its task queue, the client's connections) is in no figure.
  for await (const _ of client.execStream(ids[0]!, { command: ['echo', 'warm'] })) void _;
  await client.writeFile(ids[0]!, 'warm.txt', 'warm');
  await client.readFileBuffer(ids[0]!, 'warm.txt');
  endPhase('create');

  // 2. A background ticker in each: the 202; meanwhile, polled until GET says running (the API) and
  // its first line is stored (the registry, one query per round: none of that through the API).
  const bg = new Map<string, { execId: string; postedAt: number }>();
  const postedAt = new Map<string, number>();
  const acceptMs: number[] = [];
  const seenRunning = new Map<string, number>();
  const seenOutput = new Map<string, number>();
  const endedEarly: Record<string, number> = {};
  const deadline = performance.now() + timeoutMs;
  let startsDone = false;
  let polls = 0;
  const polling = () => !abort.requested && performance.now() < deadline;
  const waitingFor = (seen: Map<string, number>) => [...bg].filter(([id]) => !seen.has(id));
  const pollOutput = async () => {
    while (polling() && !(startsDone && !waitingFor(seenOutput).length)) {
      const waiting = waitingFor(seenOutput);
      // Its first line, or its end without one (it would otherwise be waited for until the timeout).
      const { rows } = await stack.registry.query<{ sandbox_id: string; printed: boolean; error: string | null }>(
        `SELECT e.sandbox_id, e.error,
                EXISTS (SELECT 1 FROM exec_output o
                         WHERE o.sandbox_id = e.sandbox_id AND o.exec_id = e.exec_id AND o.seq = 1) AS printed
           FROM execs e
          WHERE (e.sandbox_id, e.exec_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))
            AND (e.finished_at IS NOT NULL OR EXISTS (SELECT 1 FROM exec_output o
                  WHERE o.sandbox_id = e.sandbox_id AND o.exec_id = e.exec_id AND o.seq = 1))`,
        [waiting.map(([id]) => id), waiting.map(([, e]) => e.execId)],
      );
      const now = performance.now();
      for (const r of rows) {
        if (r.printed) {
          if (!seenOutput.has(r.sandbox_id)) seenOutput.set(r.sandbox_id, now);
        } else {
          failures.add('background ended before its first line', new Error(r.error ?? 'no error'));
          bg.delete(r.sandbox_id);
        }
      }
      await sleep(100);
    }
  };
  const pollRunning = async () => {
    let lastLog = performance.now();
    while (polling() && !(startsDone && !waitingFor(seenRunning).length)) {
      await forEachLimit(waitingFor(seenRunning), c, async ([id, e]) => {
        try {
          polls++;
          const rec = await client.getExec(id, e.execId);
          if (rec.state === 'running') {
            seenRunning.set(id, performance.now());
          } else {
            endedEarly[rec.state] = (endedEarly[rec.state] ?? 0) + 1;
            failures.add(`background ended before the kill (${rec.state})`, new Error(rec.error ?? 'no error'));
            bg.delete(id);
          }
        } catch (err) {
          addFailure(failures, 'GET exec', err);
        }
      });
      if (performance.now() - lastLog > 10_000) {
        lastLog = performance.now();
        log(`background: ${seenRunning.size}/${bg.size} running, ${seenOutput.size} with their first line`);
      }
      await sleep(100);
    }
  };
  started = performance.now();
  const pollers = Promise.all([pollOutput(), pollRunning()]);
  await forEachLimit(ids, c, async (id) => {
    const t0 = performance.now();
    try {
      const r = await client.startBackground(id, { command: TICKER });
      acceptMs.push(performance.now() - t0);
      bg.set(id, { execId: r.execId, postedAt: t0 });
      postedAt.set(id, t0);
    } catch (err) {
      addFailure(failures, 'background start', err);
    }
  });
  const lastAcceptedAt = performance.now();
  const bgWallMs = lastAcceptedAt - started;
  startsDone = true;
  await pollers;
  const since = (m: Map<string, number>) => [...m].map(([id, at]) => at - postedAt.get(id)!);
  const allRunningMs = seenRunning.size ? Math.max(...seenRunning.values()) - started : NaN;
  const allOutputMs = seenOutput.size ? Math.max(...seenOutput.values()) - started : NaN;
  log(`background: ${seenRunning.size}/${bg.size} running, ${seenOutput.size} with output (${polls} GETs)`);
  endPhase('background start');

  // 3. While they run: M streamed execs at once, one per sandbox.
  const expected = seqOutput(params.lines);
  const streamTargets = [...bg.keys()].slice(0, params.streams);
  const runs: StreamedRun[] = [];
  started = performance.now();
  await Promise.all(
    streamTargets.map(async (id) => {
      try {
        runs.push(await streamedRun(client, id, ['seq', '1', String(params.lines)], expected, timeoutMs));
      } catch (err) {
        addFailure(failures, 'stream', err);
      }
    }),
  );
  const streamWallMs = performance.now() - started;
  const streamBad = {
    incomplete: runs.filter((r) => !r.complete).length,
    outOfOrder: runs.filter((r) => !r.ordered).length,
    nonZeroExit: runs.filter((r) => r.exitCode !== 0).length,
  };
  const streamedBytes = runs.reduce((a, r) => a + r.bytes, 0);
  endPhase('streams');
  // Where their first byte's wait went, from each sandbox's history (read after the phase: not in its CPU).
  const temporal = await connectClient(stack);
  const stages: StreamStages[] = [];
  for (const r of runs) {
    const st = await streamStages(temporal.client, r.sandboxId, r.postedAt, r.firstByteAt).catch(() => undefined);
    if (st) stages.push(st);
  }
  await temporal.close();

  // 4. K uploads at once, then K downloads at once, of a seeded file, checked by sha256.
  const size = params.fileMib * MiB;
  const fileTargets = [...bg.keys()].slice(0, params.files);
  const up: { id: string; ms: number; sha256: string }[] = [];
  const down: { firstByteMs: number; ms: number }[] = [];
  let shaMismatch = 0;
  started = performance.now();
  await Promise.all(
    fileTargets.map(async (id, i) => {
      try {
        const u = await upload(client, id, 'bench.bin', `data-plane-scale-${i}`, size);
        if (!u.same) shaMismatch++;
        up.push({ id, ms: u.ms, sha256: u.sha256 });
      } catch (err) {
        addFailure(failures, 'upload', err);
      }
    }),
  );
  const upWallMs = performance.now() - started;
  started = performance.now();
  await Promise.all(
    up.map(async ({ id, sha256 }) => {
      try {
        const d = await download(client, id, 'bench.bin');
        if (d.sha256 !== sha256 || d.bytes !== size) shaMismatch++;
        down.push({ firstByteMs: d.firstByteMs, ms: d.ms });
      } catch (err) {
        addFailure(failures, 'download', err);
      }
    }),
  );
  const downWallMs = performance.now() - started;
  const mibPerS = (ms: number) => size / MiB / (ms / 1000);
  endPhase('files');

  // 5. Kill every background command: the answer comes once it has ended; each must be `killed`.
  const bgIds = [...bg].map(([id, e]) => ({ id, execId: e.execId }));
  const execIdsOf = () => [bgIds.map((b) => b.id), bgIds.map((b) => b.execId)];
  const openQuery = `SELECT count(*) FILTER (WHERE finished_at IS NULL) AS open FROM execs
    WHERE (sandbox_id, exec_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))`;
  const runningBeforeKill = Number((await stack.registry.query(openQuery, execIdsOf())).rows[0].open);
  const killMs: number[] = [];
  const endedAs: Record<string, number> = {};
  started = performance.now();
  await forEachLimit(bgIds, c, async ({ id, execId }) => {
    const t0 = performance.now();
    try {
      const rec = await client.killExec(id, execId);
      killMs.push(performance.now() - t0);
      endedAs[rec.state] = (endedAs[rec.state] ?? 0) + 1;
      if (rec.state !== 'killed') failures.add(`kill answered state ${rec.state}`, new Error(rec.error ?? ''));
    } catch (err) {
      addFailure(failures, 'kill', err);
    }
  });
  const killWallMs = performance.now() - started;
  const runningAfterKill = Number((await stack.registry.query(openQuery, execIdsOf())).rows[0].open);
  endPhase('kill');

  // 6. The service's processes, and the data plane's rows left in the registry.
  const hourglass = classify(stack.stateDir, leader).get('hourglass')!.filter(isService);
  const peaks = hourglass.map((p) => ({
    pid: p.pid,
    command: p.argv.slice(0, 6).join(' ').slice(0, 80),
    peakRssMiB: peakRssMiB(p.pid),
  }));
  const count = async (sql: string) => (await stack.registry.query(sql)).rows[0] as Record<string, string>;
  const rowsLeft = {
    execOutput: await count(`SELECT count(*) AS rows, coalesce(sum(octet_length(data)), 0) AS bytes FROM exec_output`),
    transfers: await count(`SELECT count(*) AS rows FROM transfers`),
    transferChunks: await count(`SELECT count(*) AS rows FROM transfer_chunks`),
  };

  // The report.
  const s = {
    create: summarize(createMs),
    accept: summarize(acceptMs),
    running: summarize(since(seenRunning)),
    firstLine: summarize(since(seenOutput)),
    streamFirstByte: summarize(runs.map((r) => r.firstByteMs)),
    streamExit: summarize(runs.map((r) => r.exitMs)),
    stage: (k: keyof StreamStages) => summarize(stages.map((st) => st[k])),
    upload: summarize(up.map((u) => mibPerS(u.ms))),
    download: summarize(down.map((d) => mibPerS(d.ms))),
    downloadFirstByte: summarize(down.map((d) => d.firstByteMs)),
    kill: summarize(killMs),
  };
  const fails = (prefix: string) =>
    Object.entries(failures.counts).reduce((a, [k, v]) => (k.startsWith(prefix) ? a + v : a), 0);
  heading(
    `data plane at scale: ${ids.length} sandboxes with a background command each (process driver, ${slots} exec slots)`,
  );
  table(LATENCY_HEADERS, [
    latencyRow('create → RUNNING', s.create, n - ids.length, createWallMs),
    latencyRow('background exec: POST → 202', s.accept, fails('background start'), bgWallMs),
    latencyRow('  POST → GET says running', s.running, bg.size - seenRunning.size, allRunningMs),
    latencyRow('  POST → its first line stored', s.firstLine, bg.size - seenOutput.size, allOutputMs),
  ]);
  line(
    `all ${seenRunning.size} running ${(allRunningMs / 1000).toFixed(1)} s after the first POST ` +
      `(${((Math.max(...seenRunning.values(), lastAcceptedAt) - lastAcceptedAt) / 1000).toFixed(1)} s after ` +
      `the last 202; polled while they started: GETs ${c} at a time, rounds ≥ 100 ms apart); ended before the kill: ` +
      `${JSON.stringify(endedEarly)}\n`,
  );
  heading(`${streamTargets.length} streamed execs of \`seq 1 ${params.lines}\` at once, among them`);
  table(LATENCY_HEADERS, [
    latencyRow('POST → first stdout event', s.streamFirstByte, fails('stream'), streamWallMs),
    latencyRow('POST → exit event', s.streamExit, fails('stream'), streamWallMs),
    latencyRow(
      '  first byte: POST → workflow task scheduled',
      s.stage('taskScheduledMs'),
      runs.length - stages.length,
      NaN,
    ),
    latencyRow('  → a worker took the task', s.stage('taskStartedMs'), runs.length - stages.length, NaN),
    latencyRow('  → update accepted', s.stage('acceptedMs'), runs.length - stages.length, NaN),
    latencyRow('  → activity scheduled', s.stage('scheduledMs'), runs.length - stages.length, NaN),
    latencyRow('  → a worker took the activity', s.stage('pickedUpMs'), runs.length - stages.length, NaN),
    latencyRow('  → first stdout event', s.stage('toFirstByteMs'), runs.length - stages.length, NaN),
  ]);
  line(
    `complete and in order: ${runs.length - streamBad.incomplete - streamBad.outOfOrder}/${streamTargets.length}; ` +
      `incomplete ${streamBad.incomplete}, out of order ${streamBad.outOfOrder}, exit ≠ 0 ${streamBad.nonZeroExit}, ` +
      `failed ${fails('stream')}; ${(streamedBytes / MiB).toFixed(1)} MiB of stdout in ` +
      `${(streamWallMs / 1000).toFixed(1)} s (${(streamedBytes / MiB / (streamWallMs / 1000)).toFixed(2)} MiB/s ` +
      'in aggregate)\n',
  );
  heading(`${fileTargets.length} files of ${params.fileMib} MiB at once, up then down`);
  table(
    ['direction', 'ok', 'failed', 'min MiB/s', 'p50 MiB/s', 'max MiB/s', 'aggregate MiB/s', 'wall s'],
    [
      [
        'upload (PUT)',
        up.length,
        fails('upload'),
        s.upload.min,
        s.upload.p50,
        s.upload.max,
        (up.length * size) / MiB / (upWallMs / 1000),
        upWallMs / 1000,
      ],
      [
        'download (GET)',
        down.length,
        fails('download'),
        s.download.min,
        s.download.p50,
        s.download.max,
        (down.length * size) / MiB / (downWallMs / 1000),
        downWallMs / 1000,
      ],
    ],
  );
  line(
    `download, GET → its answer's headers (the worker has copied the whole file by then): ` +
      `p50 ${s.downloadFirstByte.p50} ms, max ${s.downloadFirstByte.max} ms; ` +
      `sha256 or size differing: ${shaMismatch}\n`,
  );
  heading(`kill of ${bgIds.length} background commands, ${c} at a time`);
  table(LATENCY_HEADERS, [latencyRow('POST kill → answer', s.kill, fails('kill'), killWallMs)]);
  line(
    `running before the kill ${runningBeforeKill}/${bgIds.length}, after ${runningAfterKill}; ` +
      `ended as ${JSON.stringify(endedAs)}\n`,
  );
  heading('what each phase cost the stack: CPU s (share of one core), RSS at its end (MiB, summed over processes)');
  const cpuCell = (p: (typeof phases)[number], k: Part) =>
    `${p.cpu[k]} (${Math.round((p.cpu[k] / (p.wallMs / 1000)) * 100)} %)`;
  table(
    [
      'phase',
      'wall s',
      'service CPU',
      'commands CPU',
      'postgres CPU',
      'temporal CPU',
      'service RSS',
      'commands RSS',
      'postgres RSS',
    ],
    phases.map((p) => [
      p.phase,
      p.wallMs / 1000,
      cpuCell(p, 'service'),
      cpuCell(p, 'commands'),
      cpuCell(p, 'postgres'),
      cpuCell(p, 'temporal'),
      p.rssMiB.service,
      p.rssMiB.commands,
      p.rssMiB.postgres,
    ]),
  );
  line(
    "service: the node process (`dev`: API and worker in one), the process driver's spawner, esbuild; " +
      'commands: what the spawner runs for the sandboxes (bwrap, sh, sleep, seq …)',
  );
  line(
    `service processes: ` + `${peaks.map((p) => `${p.pid} peak RSS ${p.peakRssMiB} MiB (${p.command})`).join('; ')}`,
  );
  line(
    `registry rows left before the destroy: exec_output ${rowsLeft.execOutput.rows} ` +
      `(${(Number(rowsLeft.execOutput.bytes) / 1024).toFixed(0)} KiB), transfers ${rowsLeft.transfers.rows}, ` +
      `transfer_chunks ${rowsLeft.transferChunks.rows}\n`,
  );
  if (failures.total) {
    table(
      ['failure or refusal', 'count', 'example'],
      Object.entries(failures.counts).map(([k, v]) => [k, v, (failures.examples[k] ?? '').slice(0, 200)]),
    );
  }
  return {
    sandboxes: ids.length,
    execSlots: slots,
    ms: s,
    wallMs: {
      create: Math.round(createWallMs),
      backgroundAccept: Math.round(bgWallMs),
      allRunning: Math.round(allRunningMs),
      allFirstLine: Math.round(allOutputMs),
      streams: Math.round(streamWallMs),
      uploads: Math.round(upWallMs),
      downloads: Math.round(downWallMs),
      kills: Math.round(killWallMs),
    },
    background: { started: bg.size, running: seenRunning.size, withOutput: seenOutput.size, endedEarly },
    streams: { asked: streamTargets.length, ended: runs.length, ...streamBad, bytes: streamedBytes },
    files: { asked: fileTargets.length, uploaded: up.length, downloaded: down.length, shaMismatch },
    kill: { runningBeforeKill, runningAfterKill, endedAs },
    phases,
    peaks,
    rowsLeft,
    failures: failures.counts,
  };
});

/** VmHWM: the most a process has held resident since it started, MiB. */
function peakRssMiB(pid: number): number {
  try {
    const kib = Number(/^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
    return Math.round(kib / 102.4) / 10;
  } catch {
    return NaN;
  }
}
