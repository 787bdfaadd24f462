// Wraps a driver so a share of create/destroy calls fail with a retryable error, after or before
// doing the work (a crash either side of the hypervisor call). For chaos runs only
// (HOURGLASS_FAULT_RATE); the lifecycle's retries must absorb every one of them.
import { HypervisorError } from './errors';
import type { Hypervisor, OpContext, SandboxSpec } from './types';

export function withInjectedFaults(inner: Hypervisor, rate: number, random: () => number = Math.random): Hypervisor {
  const maybeFail = (op: string, id: string) => {
    if (random() < rate) throw new HypervisorError(`injected fault: ${op} ${id} failed (chaos)`, 'injected', false);
  };
  return Object.assign(Object.create(inner) as Hypervisor, {
    name: inner.name,
    async create(spec: SandboxSpec, ctx?: OpContext) {
      maybeFail('create (before)', spec.id);
      const info = await inner.create(spec, ctx);
      maybeFail('create (after)', spec.id);
      return info;
    },
    async destroy(id: string, ctx?: OpContext) {
      maybeFail('destroy (before)', id);
      const result = await inner.destroy(id, ctx);
      maybeFail('destroy (after)', id);
      return result;
    },
  });
}
