// PVE error shapes and the exact message texts the simulator answers with (proxmox-api.md §0, §9).

/** Thrown by handlers; the server turns it into PVE's status line + body. */
export class PveError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** Per-parameter errors of a 400 `Parameter verification failed.` */
    readonly errors?: Record<string, string>,
  ) {
    super(message);
  }
}

/** A handler `die`: HTTP 500 with the text as reason phrase (proxmox-api.md §0). */
export const die = (message: string) => new PveError(500, message);

/** 400 `Parameter verification failed.` with PVE's `errors` map. */
export const paramError = (errors: Record<string, string>) =>
  new PveError(400, 'Parameter verification failed.', errors);

/** Texts PVE uses verbatim; kept in one place so tests and handlers agree. */
export const pveText = {
  configMissing: (node: string, vmid: number) =>
    `Configuration file 'nodes/${node}/qemu-server/${vmid}.conf' does not exist`,
  configExists: (vmid: number) => `unable to create VM ${vmid}: config file already exists`,
  locked: (lock: string) => `VM is locked (${lock})`,
  flockTimeout: (vmid: number) => `can't lock file '/var/lock/qemu-server/lock-${vmid}.conf' - got timeout`,
  storageLockTimeout: "can't lock file '/var/lock/pve-manager/pve-storage-local-lvm' - got timeout",
  alreadyRunning: (vmid: number) => `VM ${vmid} already running`,
  notRunning: (vmid: number) => `VM ${vmid} not running`,
  agentVmNotRunning: (vmid: number) => `VM ${vmid} is not running`,
  runningDestroyFailed: (vmid: number) => `VM ${vmid} is running - destroy failed`,
  stopMissing: (node: string, vmid: number) => `unable to find configuration file for VM ${vmid} on node '${node}'`,
  noAgentConfigured: 'No QEMU guest agent configured',
  agentNotRunning: 'QEMU guest agent is not running',
  qmpFailed: (vmid: number, command: string, detail: string) =>
    `VM ${vmid} qmp command '${command}' failed - ${detail}`,
  noQuorum: 'cluster not ready - no quorum?',
  /** encode_base64 of a parameter with a character above U+00FF (exec input-data, file-write content). */
  wideCharacter: 'Wide character in subroutine entry at /usr/share/perl5/PVE/QemuServer/Agent.pm line 150.',
  /** pveproxy refuses a POST/PUT body over $limit_max_post (64 KiB before pve-http-server 5.2.1). */
  bodyTooLarge: 'for data too large',
  proxyConnect: 'Errors during connection establishment, proxy handshake: Connection refused',
  brokenPipe: 'Broken pipe',
  connectionTimedOut: 'Connection timed out',
  permission: (path: string, priv: string) => `Permission check failed (${path}, ${priv})`,
  notImplemented: (method: string, path: string) => `Method '${method} ${path}' not implemented`,
  missingProperty: 'property is missing and it is not optional',
  notInSchema: 'property is not defined in schema and the schema does not allow additional properties',
  typeCheck: (type: string, got: string) => `type check ('${type}') failed - got '${got}'`,
  notDnsName: 'invalid format - value does not look like a valid DNS name',
} as const;
