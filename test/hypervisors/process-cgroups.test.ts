// Cgroup layout and detection as plain logic. cgroup v2 cannot run on these machines (their v2
// mount has no controllers), so its paths and files are checked here as data, not against a
// kernel; v1 runs for real in process-limits.test.ts.
import { describe, expect, it } from 'vitest';
import { detectCgroups, type CgroupProbe } from '../../hypervisors/process/cgroups-detect';
import {
  cgroupPlan,
  cgroupProcsFiles,
  enforcedCgroupLimits,
  type CgroupRecord,
} from '../../hypervisors/process/cgroups-plan';
import { describeSandbox } from '../../hypervisors/process/describe';
import { parseMountinfo } from '../../hypervisors/process/mountinfo';
import type { SandboxRecord } from '../../hypervisors/process/record';

// /proc/self/mountinfo lines as these machines print them (hybrid: v1 controllers, empty v2).
const HYBRID = `
30 23 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
32 30 0:28 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 30 0:30 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
37 30 0:33 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
38 30 0:34 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
39 30 0:35 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`;
// A systemd host on the unified hierarchy.
const UNIFIED =
  '29 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - ' +
  'cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n';

const probe = (over: Partial<CgroupProbe> = {}): CgroupProbe => ({
  v2Controllers: (m) =>
    m === '/sys/fs/cgroup/unified' ? ['hugetlb'] : ['cpuset', 'cpu', 'io', 'memory', 'hugetlb', 'pids'],
  writable: () => true,
  prepareV2Parent: () => {},
  ...over,
});

describe('mountinfo', () => {
  it('parses mount points, types and super options, including optional fields and escaped spaces', () => {
    const [m] = parseMountinfo(
      '36 35 98:0 / /var/lib/my\\040state rw,noatime master:1 shared:2 - ext4 /dev/loop7 rw,errors=continue\n',
    );
    expect(m).toEqual({
      device: '98:0',
      root: '/',
      mountPoint: '/var/lib/my state',
      fsType: 'ext4',
      source: '/dev/loop7',
      superOptions: ['rw', 'errors=continue'],
    });
    expect(
      parseMountinfo(HYBRID)
        .filter((e) => e.fsType === 'cgroup')
        .map((e) => e.superOptions.at(-1)),
    ).toEqual(['cpu', 'cpuacct', 'memory', 'pids', 'name=systemd']);
  });
});

describe('cgroup detection', () => {
  it('uses v1 on a hybrid host whose v2 mount has no memory or pids controller', () => {
    expect(detectCgroups(parseMountinfo(HYBRID), 'hourglass/abcd', probe())).toEqual({
      version: 1,
      mounts: { cpu: '/sys/fs/cgroup/cpu', memory: '/sys/fs/cgroup/memory', pids: '/sys/fs/cgroup/pids' },
    });
  });

  it('prefers v2 when the unified hierarchy has the controllers and the parent can be prepared', () => {
    const prepared: string[] = [];
    const support = detectCgroups(
      parseMountinfo(UNIFIED),
      'hourglass/abcd',
      probe({ prepareV2Parent: (m, p, c) => void prepared.push(`${m} ${p} ${c}`) }),
    );
    expect(support).toEqual({ version: 2, mount: '/sys/fs/cgroup', controllers: ['memory', 'pids', 'cpu'] });
    expect(prepared).toEqual(['/sys/fs/cgroup hourglass/abcd memory,pids,cpu']);
  });

  it('says why not when v2 cannot hand controllers down and no v1 hierarchy exists', () => {
    const support = detectCgroups(
      parseMountinfo(UNIFIED),
      'hourglass/abcd',
      probe({
        prepareV2Parent: () => {
          throw new Error(
            'cannot enable memory in /sys/fs/cgroup/cgroup.subtree_control: /sys/fs/cgroup holds processes of its own',
          );
        },
      }),
    );
    expect(support).toEqual({
      version: null,
      reason:
        'cgroup v2 at /sys/fs/cgroup unusable: cannot enable memory in /sys/fs/cgroup/cgroup.subtree_control: ' +
        '/sys/fs/cgroup holds processes of its own',
    });
  });

  it('says why not when nothing is writable, or nothing is mounted', () => {
    expect(detectCgroups(parseMountinfo(HYBRID), 'hourglass/abcd', probe({ writable: () => false }))).toMatchObject({
      version: null,
      reason: expect.stringMatching(
        new RegExp(
          String.raw`cgroup v1 hierarchies not writable by uid \d+: ` +
            '/sys/fs/cgroup/cpu, /sys/fs/cgroup/memory, /sys/fs/cgroup/pids',
        ),
      ),
    });
    expect(detectCgroups([], 'hourglass', probe())).toEqual({
      version: null,
      reason: 'no cgroup filesystem is mounted',
    });
  });
});

describe('cgroup plans', () => {
  const limits = { memoryMiB: 512, pids: 256, cpus: 1.5 };

  it('v1: one directory per hierarchy, memsw equal to the memory limit (no swap), a CFS quota for cpus', () => {
    const record: CgroupRecord = {
      version: 1,
      path: 'hourglass/abcd/sbx-1',
      mounts: { memory: '/sys/fs/cgroup/memory', pids: '/sys/fs/cgroup/pids', cpu: '/sys/fs/cgroup/cpu' },
    };
    expect(cgroupPlan(record, limits)).toEqual({
      mkdirs: [
        '/sys/fs/cgroup/memory/hourglass/abcd/sbx-1',
        '/sys/fs/cgroup/pids/hourglass/abcd/sbx-1',
        '/sys/fs/cgroup/cpu/hourglass/abcd/sbx-1',
      ],
      writes: [
        { file: '/sys/fs/cgroup/memory/hourglass/abcd/sbx-1/memory.limit_in_bytes', value: '536870912' },
        {
          file: '/sys/fs/cgroup/memory/hourglass/abcd/sbx-1/memory.memsw.limit_in_bytes',
          value: '536870912',
          ifPresent: true,
        },
        { file: '/sys/fs/cgroup/pids/hourglass/abcd/sbx-1/pids.max', value: '256' },
        { file: '/sys/fs/cgroup/cpu/hourglass/abcd/sbx-1/cpu.cfs_period_us', value: '100000' },
        { file: '/sys/fs/cgroup/cpu/hourglass/abcd/sbx-1/cpu.cfs_quota_us', value: '150000' },
      ],
    });
    expect(cgroupProcsFiles(record)).toEqual([
      '/sys/fs/cgroup/memory/hourglass/abcd/sbx-1/cgroup.procs',
      '/sys/fs/cgroup/pids/hourglass/abcd/sbx-1/cgroup.procs',
      '/sys/fs/cgroup/cpu/hourglass/abcd/sbx-1/cgroup.procs',
    ]);
  });

  it('v1 co-mounted controllers share one directory; a missing controller enforces nothing', () => {
    const record: CgroupRecord = { version: 1, path: 'h/x', mounts: { memory: '/cg/mem+pids', pids: '/cg/mem+pids' } };
    expect(cgroupProcsFiles(record)).toEqual(['/cg/mem+pids/h/x/cgroup.procs']);
    expect(enforcedCgroupLimits(record, limits)).toEqual({ memoryMiB: 512, pids: 256 });
  });

  it(
    'v2: controllers handed down from the root through every parent, ' + 'limits and the only process list in the leaf',
    () => {
      const record: CgroupRecord = {
        version: 2,
        path: 'hourglass/abcd/sbx-1',
        mount: '/sys/fs/cgroup',
        controllers: ['memory', 'pids', 'cpu'],
      };
      const enable = (dir: string) =>
        ['memory', 'pids', 'cpu'].map((c) => ({ file: `${dir}/cgroup.subtree_control`, value: `+${c}` }));
      expect(cgroupPlan(record, limits)).toEqual({
        mkdirs: ['/sys/fs/cgroup/hourglass', '/sys/fs/cgroup/hourglass/abcd', '/sys/fs/cgroup/hourglass/abcd/sbx-1'],
        writes: [
          ...enable('/sys/fs/cgroup'),
          ...enable('/sys/fs/cgroup/hourglass'),
          ...enable('/sys/fs/cgroup/hourglass/abcd'),
          { file: '/sys/fs/cgroup/hourglass/abcd/sbx-1/memory.max', value: '536870912' },
          { file: '/sys/fs/cgroup/hourglass/abcd/sbx-1/memory.swap.max', value: '0', ifPresent: true },
          { file: '/sys/fs/cgroup/hourglass/abcd/sbx-1/pids.max', value: '256' },
          { file: '/sys/fs/cgroup/hourglass/abcd/sbx-1/cpu.max', value: '150000 100000' },
        ],
      });
      expect(cgroupProcsFiles(record)).toEqual(['/sys/fs/cgroup/hourglass/abcd/sbx-1/cgroup.procs']);
    },
  );

  it(
    'caps the processes of all sandboxes together on the top parent, ' + 'in v1 and (after handing pids down) in v2',
    () => {
      const v1: CgroupRecord = { version: 1, path: 'hourglass/abcd/sbx-1', mounts: { pids: '/sys/fs/cgroup/pids' } };
      expect(cgroupPlan(v1, limits, 16384).writes[0]).toEqual({
        file: '/sys/fs/cgroup/pids/hourglass/pids.max',
        value: '16384',
      });
      const v2: CgroupRecord = {
        version: 2,
        path: 'hourglass/abcd/sbx-1',
        mount: '/sys/fs/cgroup',
        controllers: ['memory', 'pids'],
      };
      const writes = cgroupPlan(v2, limits, 16384).writes.map((w) => `${w.file}=${w.value}`);
      // after the 3 × 2 subtree_control writes
      expect(writes.indexOf('/sys/fs/cgroup/hourglass/pids.max=16384')).toBe(6);
      expect(
        cgroupPlan({ ...v1, mounts: { memory: '/sys/fs/cgroup/memory' } }, limits, 16384).writes.map((w) => w.file),
      ).not.toContain('/sys/fs/cgroup/pids/hourglass/pids.max');
    },
  );

  it('v2 without the cpu controller leaves cpus unenforced', () => {
    const record: CgroupRecord = { version: 2, path: 'h/x', mount: '/sys/fs/cgroup', controllers: ['memory', 'pids'] };
    expect(enforcedCgroupLimits(record, limits)).toEqual({ memoryMiB: 512, pids: 256 });
    expect(cgroupPlan(record, limits).writes.map((w) => w.file)).not.toContain('/sys/fs/cgroup/h/x/cpu.max');
  });
});

describe('isolation text where no cgroup can be used', () => {
  it('says there are no cgroup limits and why, and leaves them out of the enforced limits', () => {
    const record: SandboxRecord = {
      id: 's',
      labels: {},
      createdAt: '',
      isolation: '',
      mode: 'bubblewrap',
      network: 'none',
      limits: { tmpMiB: 64, diskMiB: 1024 },
    };
    expect(describeSandbox(record, 'cgroup v1 hierarchies not writable by uid 1000: /sys/fs/cgroup/pids', 0)).toBe(
      'bubblewrap (pid, mount, ipc, uts, net, cgroup namespaces; uid 65534, no capabilities, no user namespaces); ' +
        'no cgroup limits (cgroup v1 hierarchies not writable by uid 1000: /sys/fs/cgroup/pids); ' +
        '/tmp 64 MiB; workspace 1024 MiB; ' +
        'network: none (own namespace, loopback only)',
    );
    expect(
      describeSandbox(
        { ...record, mode: 'none', network: 'host', limits: {} },
        'no cgroup filesystem is mounted',
        1000,
      ),
    ).toBe(
      "none (no namespaces: commands run on the host as the worker's uid 1000); " +
        'no cgroup limits (no cgroup filesystem is mounted); ' +
        "/tmp: the host's, not limited; workspace: no quota; network: the host's (not isolated)",
    );
  });
});
