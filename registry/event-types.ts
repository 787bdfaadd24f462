// Event type names, `sandbox.<state lowercased>` (`sandbox.running`, `sandbox.expired`): what an SSE
// frame's `event:` and a webhook's `hourglass-event` carry. Both directions live here so they agree.
import { SANDBOX_STATES, type SandboxState } from '../workflows/states';

const PREFIX = 'sandbox.';

/** The event type for entering a state. */
export function eventType(state: SandboxState): string {
  return `${PREFIX}${state.toLowerCase()}`;
}

/** Every event type, one per state, in the state machine's order. */
export const EVENT_TYPES: readonly string[] = SANDBOX_STATES.map(eventType);

/** The state an event type names (`sandbox.expired` → EXPIRED); undefined for anything else. */
export function stateOfEventType(type: string): SandboxState | undefined {
  return SANDBOX_STATES.find((s) => eventType(s) === type);
}
