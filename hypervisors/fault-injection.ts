// Wraps a driver so a share of create/destroy calls fail with a retryable error, after or before
// doing the work (a crash either side of the hypervisor call). For chaos runs only
// (HOURGLASS_FAULT_RATE); the lifecycle's retries must absorb every one of them.
import { HypervisorError } from './errors';
import type { Hypervisor, OpContext, SandboxSpec } from './types';

export function withInjectedFaults(inner: Hypervisor, rate: number, random: () => number = Math.random): Hypervisor {
  // One draw per call, so `rate` is the share of calls that fail: half before the work, half after.
  const faultPoint = (): 'before' | 'after' | null => {
    const r = random();
    return r < rate / 2 ? 'before' : r < rate ? 'after' : null;
  };
  const fail = (op: string, when: string, id: string): never => {
    throw new HypervisorError(`injected fault: ${op} (${when}) ${id} failed (chaos)`, 'injected', false);
  };
  return Object.assign(Object.create(inner) as Hypervisor, {
    name: inner.name,
    async create(spec: SandboxSpec, ctx?: OpContext) {
      const fault = faultPoint();
      if (fault === 'before') fail('create', fault, spec.id);
      const info = await inner.create(spec, ctx);
      if (fault === 'after') fail('create', fault, spec.id);
      return info;
    },
    async destroy(id: string, ctx?: OpContext) {
      const fault = faultPoint();
      if (fault === 'before') fail('destroy', fault, id);
      const result = await inner.destroy(id, ctx);
      if (fault === 'after') fail('destroy', fault, id);
      return result;
    },
  });
}
