// The proxmox driver against the PVE API simulator (test/pve-sim): the lifecycle, idempotency,
// never touching foreign VMs, and each failure mode of docs/proxmox-api.md §10. What every driver
// guarantees (exec results, timeouts, destroy) is in proxmox-contract.test.ts.
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { driverSettings } from '../../config/drivers';
import { BadSpecError, BusyError, HypervisorError, NotFoundError, NotReadyError } from '../../hypervisors/errors';
import { createProxmoxHypervisor, ProxmoxHypervisor, type ProxmoxOptions } from '../../hypervisors/proxmox/driver';
import { deploymentTag, idTag, sandboxIdFromTag, vmDescription, vmName } from '../../hypervisors/proxmox/identity';
import { pveText, startPveSimulator, type PveSimulator } from '../pve-sim/index';

const newId = () => `sb-${randomUUID().slice(0, 8)}`;
const spec = (id: string, extra: Partial<Parameters<ProxmoxHypervisor['create']>[0]> = {}) => ({
  id,
  labels: { suite: 'proxmox' },
  ...extra,
});

function driverFor(sim: PveSimulator, overrides: Partial<ProxmoxOptions> = {}): ProxmoxHypervisor {
  return new ProxmoxHypervisor({
    url: sim.url,
    token: sim.token,
    node: sim.node,
    templates: sim.templateIds,
    deployment: 'suite',
    retryDelaysMs: [20, 50, 100],
    ...overrides,
  });
}

/** The rejection of a promise, for assertions on its class and fields. */
async function failureOf(promise: Promise<unknown>): Promise<HypervisorError> {
  try {
    await promise;
  } catch (err) {
    return err as HypervisorError;
  }
  throw new Error('expected a rejection');
}

const vmsOf = (sim: PveSimulator, id: string) =>
  sim.vms().filter((vm) => vm.tags.includes(idTag(id)) || vm.description?.includes(`hourglass-sandbox-id: ${id}\n`));

describe('proxmox driver: lifecycle', () => {
  let sim: PveSimulator;
  let hv: ProxmoxHypervisor;
  beforeAll(async () => {
    sim = await startPveSimulator({ taskMs: [20, 200], agentBootMs: 300, authFailureDelayMs: 20 });
    hv = driverFor(sim);
  });
  afterAll(async () => {
    await hv.close();
    await sim.close();
  });

  it('creates, runs commands, stops, starts and destroys a sandbox', async () => {
    const id = newId();
    const progress: string[] = [];
    const info = await hv.create(spec(id, { limits: { cpus: 2, memoryMiB: 1024 } }), {
      progress: (p) => progress.push(p),
    });
    expect(info).toMatchObject({ id, driver: 'proxmox', state: 'running' });
    const [vm] = vmsOf(sim, id);
    expect(vm).toMatchObject({ status: 'running', name: `hg-${id}`, template: false });
    expect(vm!.tags).toEqual(['hg-dep.suite', 'hg-id.' + id, 'hourglass']);
    expect(vm!.config.scsi0).toMatch(/^local-lvm:base-9000-disk-0\//); // a linked clone
    expect(vm!.config.memory).toBe('1024');
    expect(vm!.lock).toBeUndefined();
    expect(progress.some((p) => p.includes('cloning template default (9000)'))).toBe(true);

    const waitProgress: string[] = [];
    await hv.waitReady(id, 10_000, { progress: (p) => waitProgress.push(p) });
    expect(waitProgress.some((p) => p.includes('QEMU guest agent is not running'))).toBe(true);

    const echo = await hv.exec(id, { command: ['echo', 'hello from the guest'] });
    expect(echo).toMatchObject({ exitCode: 0, stdout: 'hello from the guest\n', stderr: '', timedOut: false });
    const pwd = await hv.exec(id, { command: ['pwd'] });
    expect(pwd.stdout).toBe('/root\n'); // each VM has its own "disk": the simulator's vm-<vmid>/root

    await hv.stop(id);
    expect((await hv.describe(id))?.state).toBe('stopped');
    const whileStopped = await failureOf(hv.exec(id, { command: ['true'] }));
    expect(whileStopped).toBeInstanceOf(BusyError);
    expect(whileStopped.message).toContain(`VM ${info.details.vmid} is not running`);

    await hv.start(id);
    await hv.start(id); // "VM N already running" is a task exitstatus, and fine
    await hv.waitReady(id, 10_000);
    expect((await hv.exec(id, { command: ['echo', 'back'] })).stdout).toBe('back\n');
    expect(await hv.describe(id)).toMatchObject({
      id,
      state: 'running',
      details: { vmid: info.details.vmid, node: 'pve' },
    });

    expect(await hv.destroy(id)).toEqual({ existed: true });
    expect(vmsOf(sim, id)).toEqual([]);
  });

  it('waits on every task UPID it starts', async () => {
    const id = newId();
    const before = sim.requests().length;
    await hv.create(spec(id));
    await hv.destroy(id);
    const requests = sim.requests().slice(before);
    const polled = requests.filter((r) => /\/tasks\/UPID:.*\/status$/.test(r.path));
    const started = requests.filter((r) => /\/(clone|status\/(start|stop))$/.test(r.path) || r.method === 'DELETE');
    expect(polled.length).toBeGreaterThanOrEqual(started.length); // clone, start, stop, destroy
    expect(requests.find((r) => r.path.endsWith('/clone'))?.status).toBe(200);
  });

  it('is idempotent by sandbox id', async () => {
    const id = newId();
    const first = await hv.create(spec(id));
    const second = await hv.create(spec(id));
    expect(second.details.vmid).toBe(first.details.vmid);
    expect(vmsOf(sim, id)).toHaveLength(1);
    await hv.destroy(id);
  });

  it('finishes a create that crashed between clone and tagging', async () => {
    const id = newId();
    const flock = sim.inject({ op: 'config', kind: 'lock-timeout', times: Infinity, delayMs: 5 });
    const failure = await failureOf(hv.create(spec(id)));
    flock.clear();
    expect(failure).toBeInstanceOf(BusyError);
    expect(failure.permanent).toBe(false);
    expect(failure.message).toMatch(/can't lock file '\/var\/lock\/qemu-server\/lock-\d+\.conf' - got timeout/);
    const [untagged] = vmsOf(sim, id);
    expect(untagged?.tags).toEqual([]); // cloned, recognisable only by name + description

    const info = await hv.create(spec(id));
    expect(info.details.vmid).toBe(untagged!.vmid);
    expect(vmsOf(sim, id)).toHaveLength(1);
    expect(vmsOf(sim, id)[0]!.tags).toContain('hourglass');
    await hv.destroy(id);
  });

  it('adopts its clone when the clone answer is lost (596)', async () => {
    const id = newId();
    sim.inject({ op: 'clone', kind: 'lose-response', message: pveText.connectionTimedOut });
    const info = await hv.create(spec(id));
    expect(vmsOf(sim, id).map((vm) => vm.vmid)).toEqual([info.details.vmid]);
    await hv.destroy(id);
  });

  it('builds from the environment', async () => {
    const settings = driverSettings('proxmox', { ...sim.env, HOURGLASS_PVE_INSECURE_TLS: '1' });
    const fromEnv = createProxmoxHypervisor(settings, '/tmp/unused');
    expect(fromEnv.name).toBe('proxmox');
    expect(Array.isArray(await fromEnv.list())).toBe(true);
    await fromEnv.close?.();
  });

  it('encodes any sandbox id losslessly in a valid PVE tag', () => {
    for (const id of ['sb-1', 'Sandbox_ÜNICODE 42', 'a.b-c', 'x;y,z']) {
      const tag = idTag(id);
      expect(tag).toMatch(/^[a-z0-9_][a-z0-9_\-+.]*$/);
      expect(sandboxIdFromTag(tag)).toBe(id);
    }
  });
});

describe('proxmox driver: foreign VMs', () => {
  let sim: PveSimulator;
  let hv: ProxmoxHypervisor;
  const id = newId();
  beforeAll(async () => {
    sim = await startPveSimulator({ taskMs: [20, 100], agentBootMs: 100 });
    sim.addVm({ vmid: 500, name: 'prod-db', tags: 'prod', running: true });
    sim.addVm({ vmid: 501, name: `hg-${id}` }); // our name, but not our description
    sim.addVm({ vmid: 502, name: 'someone-elses', tags: 'hourglass', running: true }); // our owner tag only
    sim.addVm({ vmid: 503, name: 'lookalike', tags: `hourglass;${idTag('other-sandbox')}`, template: true });
    // Another Hourglass deployment on the same cluster, with a sandbox of the very same id: tagged,
    // and a clone it has not tagged yet.
    sim.addVm({ vmid: 504, name: vmName(id), tags: `hourglass;${deploymentTag('other')};${idTag(id)}`, running: true });
    sim.addVm({ vmid: 505, name: vmName(id), description: vmDescription(id, 'other', 'default', {}) });
    hv = driverFor(sim);
  });
  afterAll(async () => {
    await hv.close();
    await sim.close();
  });

  it('lists only its own sandboxes and never changes anything else', async () => {
    const info = await hv.create(spec(id));
    expect(info.details.vmid).not.toBe(501);
    const listed = await hv.list();
    expect(listed.map((vm) => vm.id)).toEqual([id]);
    expect(listed[0]).toMatchObject({ driver: 'proxmox', state: 'running', details: { vmid: info.details.vmid } });

    expect(await hv.destroy('prod-db')).toEqual({ existed: false });
    expect(await hv.describe('someone-elses')).toBeNull();
    expect(await hv.destroy(id)).toEqual({ existed: true });

    const foreign = [500, 501, 502, 503, 504, 505, 9000, 9001];
    expect(
      sim
        .vms()
        .map((vm) => vm.vmid)
        .sort(),
    ).toEqual(foreign);
    const writes = sim.requests().filter((r) => r.method !== 'GET');
    const touched = writes.filter((r) =>
      foreign.some((vmid) => r.path.includes(`/qemu/${vmid}/`) || r.path.endsWith(`/qemu/${vmid}`)),
    );
    expect(touched.map((r) => `${r.method} ${r.path}`)).toEqual([`POST /nodes/pve/qemu/9000/clone`]);
  });
});

// Every failure mode runs against both error shapes: the text only in the reason phrase (PVE < 8.4)
// and the 8.4 body with `message` (proxmox-api.md §0).
describe.each([
  { shape: 'reason phrase only (PVE < 8.4)', messageField: false },
  { shape: 'message body field (PVE 8.4)', messageField: true },
])('proxmox driver: failure modes, $shape', ({ messageField }) => {
  let sim: PveSimulator;
  let hv: ProxmoxHypervisor;
  beforeAll(async () => {
    sim = await startPveSimulator({ taskMs: [20, 100], agentBootMs: 100, messageField, authFailureDelayMs: 20 });
    hv = driverFor(sim);
  });
  afterEach(() => sim.clearFaults());
  afterAll(async () => {
    await hv.close();
    await sim.close();
  });

  it('clone task failure: retryable, exact exitstatus, nothing left behind', async () => {
    const id = newId();
    sim.inject({ op: 'clone', kind: 'task-error', message: `clone failed: ${pveText.storageLockTimeout}` });
    const failure = await failureOf(hv.create(spec(id)));
    expect(failure).toBeInstanceOf(HypervisorError);
    expect(failure.permanent).toBe(false);
    expect(failure.message).toContain(
      "clone failed: can't lock file '/var/lock/pve-manager/pve-storage-local-lvm' - got timeout",
    );
    expect(vmsOf(sim, id)).toEqual([]);
    await hv.create(spec(id)); // the activity's retry
    expect(vmsOf(sim, id)).toHaveLength(1);
    await hv.destroy(id);
  });

  it('config flock timeout: retried inside the driver', async () => {
    const id = newId();
    sim.inject({ op: 'config', kind: 'lock-timeout', delayMs: 10 });
    await hv.create(spec(id));
    expect(vmsOf(sim, id)[0]?.tags).toContain('hourglass');
    await hv.destroy(id);
  });

  it('persistent lock: BusyError with `VM is locked (backup)`, fine once it clears', async () => {
    const id = newId();
    const { details } = await hv.create(spec(id));
    const vmid = details.vmid as number;
    sim.setLock(vmid, 'backup');
    const failure = await failureOf(hv.stop(id));
    expect(failure).toBeInstanceOf(BusyError);
    expect(failure.permanent).toBe(false);
    expect(failure.message).toContain('VM is locked (backup)');
    setTimeout(() => sim.setLock(vmid, undefined), 60);
    await hv.stop(id); // retried until the backup ends
    sim.setLock(vmid, 'snapshot');
    expect((await failureOf(hv.destroy(id))).message).toContain('VM is locked (snapshot)');
    sim.setLock(vmid, 'suspended'); // suspended to disk: off, and destroyable
    expect(await hv.destroy(id)).toEqual({ existed: true });
    expect(vmsOf(sim, id)).toEqual([]);
  });

  it('guest agent not running: waitReady polls, then NotReadyError with the reason', async () => {
    const id = newId();
    await hv.create(spec(id));
    sim.inject({ op: 'agent-ping', kind: 'agent-down', times: 3 });
    await hv.waitReady(id, 5_000);
    sim.inject({ op: 'agent-ping', kind: 'agent-down', times: Infinity });
    const failure = await failureOf(hv.waitReady(id, 400));
    expect(failure).toBeInstanceOf(NotReadyError);
    expect(failure.message).toContain('QEMU guest agent is not running');
    await hv.destroy(id);
  });

  it('no guest agent configured: NotReadyError at once', async () => {
    sim.addVm({ vmid: 9100, name: 'tmpl-bare', template: true, agent: false });
    const bare = driverFor(sim, { templates: { bare: 9100 } });
    const id = newId();
    await bare.create(spec(id));
    const started = Date.now();
    const failure = await failureOf(bare.waitReady(id, 10_000));
    expect(failure).toBeInstanceOf(NotReadyError);
    expect(failure.message).toContain('No QEMU guest agent configured');
    expect(Date.now() - started).toBeLessThan(2_000);
    await bare.destroy(id);
    await bare.close();
  });

  it('exec: hang → timedOut 124, QMP timeout → retryable, lost answer → exec_result_lost', async () => {
    const id = newId();
    const { details } = await hv.create(spec(id));
    await hv.waitReady(id, 5_000);

    sim.inject({ op: 'agent-exec', kind: 'exec-hang' });
    expect(await hv.exec(id, { command: ['true'], timeoutSeconds: 0.3 })).toMatchObject({
      exitCode: 124,
      timedOut: true,
    });

    sim.inject({ op: 'agent-exec', kind: 'qmp-timeout' });
    const qmp = await failureOf(hv.exec(id, { command: ['true'] }));
    expect(qmp.permanent).toBe(false);
    expect(qmp.message).toContain(`VM ${details.vmid} qmp command 'guest-exec' failed - got timeout`);

    // The exited:1 answer is lost in transit; qemu-ga has already forgotten the pid (proxmox-api.md §8).
    sim.inject({ op: 'agent-exec-status', kind: 'lose-response', delayMs: 300, message: pveText.brokenPipe });
    const lost = await failureOf(hv.exec(id, { command: ['true'] }));
    expect(lost.code).toBe('exec_result_lost');
    expect(lost.permanent).toBe(false);
    expect(lost.message).toContain("qmp command 'guest-exec-status' failed - Invalid parameter 'pid'");

    // A lost answer while still running is harmless: the next poll gets the result.
    sim.inject({ op: 'agent-exec-status', kind: 'http', status: 596, message: pveText.brokenPipe });
    expect((await hv.exec(id, { command: ['sh', '-c', 'sleep 0.2; echo done'] })).stdout).toBe('done\n');
    await hv.destroy(id);
  });

  it('state conflicts: already running is fine, destroy of a restarted VM stops it again', async () => {
    const id = newId();
    const { details } = await hv.create(spec(id));
    await hv.start(id);
    sim.inject({ op: 'destroy', kind: 'http', message: pveText.runningDestroyFailed(details.vmid as number) });
    expect(await hv.destroy(id)).toEqual({ existed: true });
    expect(vmsOf(sim, id)).toEqual([]);
  });

  it('missing VM: "does not exist" is recognised from either error shape', async () => {
    const id = newId();
    const { details } = await hv.create(spec(id));
    const vmid = details.vmid as number;
    // The VM vanishes between lookup and delete (another actor destroyed it).
    sim.inject({ op: 'stop', kind: 'http', message: pveText.configMissing('pve', vmid) });
    expect(await hv.destroy(id)).toEqual({ existed: true });
    sim.inject({ op: 'shutdown', kind: 'http', message: pveText.configMissing('pve', vmid) });
    const failure = await failureOf(hv.stop(id));
    expect(failure).toBeInstanceOf(NotFoundError);
    expect(failure.message).toContain(`Configuration file 'nodes/pve/qemu-server/${vmid}.conf' does not exist`);
    await hv.destroy(id);
    expect(await failureOf(hv.start(id))).toBeInstanceOf(NotFoundError);
  });

  it('permission denied on clone: permanent, exact text', async () => {
    sim.inject({ op: 'clone', kind: 'http', status: 403, message: pveText.permission('/vms/9000', 'VM.Clone') });
    const failure = await failureOf(hv.create(spec(newId())));
    expect(failure.permanent).toBe(true);
    expect(failure.code).toBe('forbidden');
    expect(failure.message).toContain('Permission check failed (/vms/9000, VM.Clone)');
  });

  it('a VM the token cannot audit is refused and cleaned up, not leaked', async () => {
    const answer = (await (
      await fetch(`${sim.url}/cluster/nextid`, { headers: { authorization: `PVEAPIToken=${sim.token}` } })
    ).json()) as { data: string };
    const nextFree = Number(answer.data);
    sim.hideFromResources(nextFree);
    const failure = await failureOf(hv.create(spec(newId())));
    sim.hideFromResources(nextFree, false);
    expect(failure).toMatchObject({ code: 'forbidden', permanent: true });
    expect(failure.message).toContain(`VM ${nextFree} is not visible in /cluster/resources`);
    expect(sim.vms().some((vm) => vm.vmid === nextFree)).toBe(false);
  });

  it('bad API token: permanent, with the 401 reason', async () => {
    const secret = sim.token.split('=').slice(1).join('=');
    const wrongSecret = driverFor(sim, { token: sim.token.replace(secret, randomUUID()) });
    const failure = await failureOf(wrongSecret.list());
    expect(failure).toMatchObject({ code: 'unauthorized', permanent: true });
    expect(failure.message).toContain('401 invalid token value!');
    const wrongToken = driverFor(sim, { token: `hourglass@pve!other=${secret}` });
    expect((await failureOf(wrongToken.list())).message).toContain("no such token 'other' for user 'hourglass@pve'");
    await wrongSecret.close();
    await wrongToken.close();
  });

  it('595/596, TCP resets and lost quorum: retried, then a retryable error with the text', async () => {
    // The client repeats a GET three times: one 595, one 596 and one TCP reset are absorbed.
    sim.inject({ op: 'resources', kind: 'http', status: 595, message: pveText.proxyConnect });
    sim.inject({ op: 'resources', kind: 'http', status: 596, message: pveText.connectionTimedOut });
    sim.inject({ op: 'resources', kind: 'reset' });
    expect(Array.isArray(await hv.list())).toBe(true);

    sim.inject({ op: 'resources', kind: 'http', status: 595, message: pveText.proxyConnect, times: Infinity });
    const down = await failureOf(hv.list());
    expect(down).toBeInstanceOf(HypervisorError);
    expect(down.permanent).toBe(false);
    expect(down.message).toContain('595 Errors during connection establishment, proxy handshake: Connection refused');
    sim.clearFaults();

    const id = newId();
    await hv.create(spec(id));
    await hv.stop(id);
    sim.inject({ op: 'start', kind: 'http', message: pveText.noQuorum });
    await hv.start(id); // retried inside the driver
    await hv.stop(id);
    sim.inject({ op: 'start', kind: 'http', message: pveText.noQuorum, times: Infinity });
    const noQuorum = await failureOf(hv.start(id));
    expect(noQuorum.permanent).toBe(false);
    expect(noQuorum.message).toContain('cluster not ready - no quorum?');
    sim.clearFaults();
    await hv.destroy(id);
  });

  it('`WARNINGS: 1` is success', async () => {
    const id = newId();
    sim.inject({ op: 'clone', kind: 'task-warnings' });
    sim.inject({ op: 'start', kind: 'task-warnings', warnings: 2 });
    const progress: string[] = [];
    await hv.create(spec(id), { progress: (p) => progress.push(p) });
    expect(progress).toContain('qmclone task finished with WARNINGS: 1');
    expect(progress).toContain('qmstart task finished with WARNINGS: 2');
    await hv.destroy(id);
  });

  it('nextid race: takes the next id and leaves the other client’s VM alone', async () => {
    const id = newId();
    sim.inject({ op: 'nextid', kind: 'nextid-race' });
    const before = new Set(sim.vms().map((vm) => vm.vmid));
    const info = await hv.create(spec(id));
    const raced = sim.vms().find((vm) => !before.has(vm.vmid) && vm.name?.startsWith('other-client-'));
    expect(raced).toBeDefined();
    expect(info.details.vmid).not.toBe(raced!.vmid);
    await hv.destroy(id);
    expect(sim.vms().find((vm) => vm.vmid === raced!.vmid)).toMatchObject({ tags: [], status: 'stopped' });
  });

  it('unknown, missing and non-template templates: BadSpecError', async () => {
    expect(await failureOf(hv.create(spec(newId(), { template: 'nope' })))).toBeInstanceOf(BadSpecError);
    const ghost = driverFor(sim, { templates: { ghost: 7777, plain: 500 } });
    sim.addVm({ vmid: 500, name: 'plain-vm' });
    const missing = await failureOf(ghost.create(spec(newId(), { template: 'ghost' })));
    expect(missing).toBeInstanceOf(BadSpecError);
    expect(missing.message).toContain("Configuration file 'nodes/pve/qemu-server/7777.conf' does not exist");
    const notTemplate = await failureOf(ghost.create(spec(newId(), { template: 'plain' })));
    expect(notTemplate).toBeInstanceOf(BadSpecError);
    expect(notTemplate.message).toContain(
      "Linked clone feature is not supported for 'local-lvm:vm-500-disk-0' (scsi0)",
    );
    expect(await failureOf(hv.create(spec(newId(), { limits: { cpus: 0 } })))).toBeInstanceOf(BadSpecError);
    await ghost.close();
  });
});

describe('proxmox driver: stale /cluster/resources and random failures', () => {
  let sim: PveSimulator;
  beforeAll(async () => {
    sim = await startPveSimulator({ taskMs: [20, 100], agentBootMs: 100, resourcesLagMs: 60_000 });
  });
  afterAll(() => sim.close());

  it('handles `status: unknown` with no name for fresh VMs', async () => {
    const hv = driverFor(sim);
    const id = newId();
    await hv.create(spec(id));
    expect((await hv.list()).find((vm) => vm.id === id)?.state).toBe('unknown');
    expect((await hv.describe(id))?.state).toBe('running'); // status/current is live
    expect((await hv.create(spec(id))).details.vmid).toBe(vmsOf(sim, id)[0]!.vmid);
    expect(await hv.destroy(id)).toEqual({ existed: true });
    await hv.close();
  });

  it('survives a 10 % rate of 595s through the whole lifecycle', async () => {
    const hv = driverFor(sim);
    const id = newId();
    sim.setRandomFailures({ rate: 0.1, seed: 7 });
    try {
      await hv.create(spec(id));
      await hv.waitReady(id, 10_000);
      expect((await hv.exec(id, { command: ['echo', 'ok'] })).stdout).toBe('ok\n');
      await hv.stop(id);
      await hv.start(id);
      expect(await hv.destroy(id)).toEqual({ existed: true });
    } finally {
      sim.setRandomFailures(undefined);
      await hv.close();
    }
    expect(sim.requests().some((r) => r.status === 595)).toBe(true);
  });
});

describe('pve simulator wire conventions', () => {
  let sim: PveSimulator;
  let auth: Record<string, string>;
  beforeAll(async () => {
    sim = await startPveSimulator({ messageField: false, authFailureDelayMs: 20, agentBootMs: 1_000 });
    auth = { authorization: `PVEAPIToken=${sim.token}` };
  });
  afterAll(() => sim.close());

  const call = async (method: string, path: string, body?: string, type = 'application/x-www-form-urlencoded') => {
    const res = await fetch(`${sim.url}${path}`, { method, headers: { ...auth, 'content-type': type }, body });
    const text = await res.text();
    return { status: res.status, reason: res.statusText, body: text ? JSON.parse(text) : undefined, text };
  };

  const finished = async (upid: string) => {
    let status;
    do status = (await call('GET', `/nodes/pve/tasks/${encodeURIComponent(upid)}/status`)).body.data;
    while (status.status === 'running');
    return status;
  };

  it('answers PVE-shaped envelopes and errors', async () => {
    expect((await call('GET', '/cluster/nextid')).body).toEqual({ data: expect.stringMatching(/^\d+$/) });
    const boolean = await call('POST', '/nodes/pve/qemu/9000/clone', 'newid=4242&full=true');
    expect(boolean).toMatchObject({
      status: 400,
      reason: 'Parameter verification failed.',
      body: { data: null, errors: { full: "type check ('boolean') failed - got 'true'" } },
    });
    const missing = await call('GET', '/nodes/pve/qemu/9000/agent/exec-status');
    expect(missing.body.errors).toEqual({ pid: 'property is missing and it is not optional' });
    expect(await call('GET', '/nodes/pve/foo')).toMatchObject({
      status: 501,
      reason: "Method 'GET /nodes/pve/foo' not implemented",
      body: { data: null },
    });
    const unauth = await fetch(`${sim.url}/cluster/nextid`);
    expect([unauth.status, unauth.statusText, await unauth.text()]).toEqual([401, 'No ticket', '']);
  });

  it('runs tasks with real-format UPIDs, JSON bodies and normalised tags', async () => {
    const clone = await call(
      'POST',
      '/nodes/pve/qemu/9000/clone',
      JSON.stringify({ newid: 4242, full: false, name: 'wire-test' }),
      'application/json',
    );
    const upid = clone.body.data as string;
    expect(upid).toMatch(/^UPID:pve:[0-9A-F]{8}:[0-9A-F]{8}:[0-9A-F]{8}:qmclone:9000:hourglass@pve!ci:$/);
    expect(
      (await call('GET', '/cluster/resources?type=vm')).body.data.find((r: { vmid: number }) => r.vmid === 4242),
    ).toMatchObject({ lock: 'clone', type: 'qemu' });
    expect(await finished(upid)).toMatchObject({
      exitstatus: 'OK',
      type: 'qmclone',
      id: '9000',
      user: 'hourglass@pve',
      tokenid: 'ci',
    });
    const log = (await call('GET', `/nodes/pve/tasks/${encodeURIComponent(upid)}/log`)).body;
    expect(log.data.at(-1)).toEqual({ n: log.total, t: 'TASK OK' });
    expect((await call('POST', '/nodes/pve/qemu/9000/clone', 'newid=4242')).reason).toBe(
      'unable to create VM 4242: config file already exists',
    );

    await call('PUT', '/nodes/pve/qemu/4242/config', 'tags=Zeta,alpha;beta%20alpha');
    expect((await call('GET', '/nodes/pve/qemu/4242/config')).body.data).toMatchObject({
      tags: 'alpha;beta;zeta',
      memory: '2048',
    });
    const bad = await call('GET', '/nodes/pve/tasks/UPID:nope/status');
    expect(bad.body.errors).toEqual({ upid: 'unable to parse worker upid' });
    expect((await call('DELETE', '/nodes/pve/qemu/4242?purge=1')).status).toBe(200);
  });

  it('guest exec-status forgets a pid after one exited answer, like qemu-ga', async () => {
    await finished((await call('POST', '/nodes/pve/qemu/9000/clone', 'newid=4343&full=0')).body.data);
    await finished((await call('POST', '/nodes/pve/qemu/4343/status/start')).body.data);
    expect((await call('POST', '/nodes/pve/qemu/4343/agent/exec', 'command=echo&command=hi')).reason).toBe(
      'QEMU guest agent is not running',
    );
    await new Promise((r) => setTimeout(r, 1_000));
    const { pid } = (await call('POST', '/nodes/pve/qemu/4343/agent/exec', 'command=echo&command=hi')).body.data;
    let answer;
    do answer = (await call('GET', `/nodes/pve/qemu/4343/agent/exec-status?pid=${pid}`)).body.data;
    while (answer.exited === 0);
    expect(answer).toEqual({ exited: 1, exitcode: 0, 'out-data': 'hi\n', 'err-data': '' });
    expect((await call('GET', `/nodes/pve/qemu/4343/agent/exec-status?pid=${pid}`)).reason).toBe(
      "VM 4343 qmp command 'guest-exec-status' failed - Invalid parameter 'pid'",
    );
    expect((await call('DELETE', '/nodes/pve/qemu/4343')).reason).toBe('VM 4343 is running - destroy failed');
    expect((await call('POST', '/nodes/pve/qemu/4343/status/suspend')).status).toBe(200);
  });
});
