// Search attributes mirror the sandbox state for the Temporal UI and visibility queries.
// They must be registered on the server (see worker/temporal-server.ts).
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const SandboxState = defineSearchAttributeKey('SandboxState', SearchAttributeType.KEYWORD);
export const SandboxDriver = defineSearchAttributeKey('SandboxDriver', SearchAttributeType.KEYWORD);
export const SandboxExpiresAt = defineSearchAttributeKey('SandboxExpiresAt', SearchAttributeType.DATETIME);
export const SandboxSession = defineSearchAttributeKey('SandboxSession', SearchAttributeType.KEYWORD);
/** The owner of a sandbox or session workflow (from the API token that created it). */
export const SandboxOwner = defineSearchAttributeKey('SandboxOwner', SearchAttributeType.KEYWORD);
/** Why the sandbox ended, one of a few fixed words (workflows/end-reasons.ts): the list filters by it. */
export const SandboxEndReason = defineSearchAttributeKey('SandboxEndReason', SearchAttributeType.KEYWORD);

export const ALL_SEARCH_ATTRIBUTES = [
  SandboxState,
  SandboxDriver,
  SandboxExpiresAt,
  SandboxSession,
  SandboxOwner,
  SandboxEndReason,
];
