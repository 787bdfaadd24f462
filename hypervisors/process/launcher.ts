// The first step of every process a sandbox gets (holder, command, slirp4netns), run on the host:
// a tiny bash script that closes every inherited descriptor above 2, joins the sandbox's cgroups,
// opens the descriptors the program expects, and execs it. Joining here, before exec, is what
// puts commands under the limits: nsenter'd processes are not children of the sandbox's holder,
// so they inherit neither its cgroup nor its seccomp filter.

export interface LaunchOptions {
  /** cgroup.procs files: the launcher writes its own pid there, so everything it execs is inside. */
  joinCgroups?: string[];
  /** Files opened on these descriptors (3–9) once inherited ones are closed. */
  open?: { fd: number; file: string; mode: 'read' | 'write' }[];
  /**
   * oom_score_adj for the program and its children. Raising it needs no privilege (lowering needs
   * CAP_SYS_RESOURCE, which some hosts withhold even from root).
   */
  oomScoreAdj?: number;
  /** argv[0] the program sees, to find it again in /proc. */
  argv0?: string;
}

// bash, not sh: dash cannot name descriptors above 9 in a redirection, and an inherited one can be
// any number (`exec 200>>file; npm start`). The glob lists bash's own descriptors.
const SCRIPT = `
for fd in /proc/self/fd/*; do fd=\${fd##*/}; if ((fd > 2)); then eval "exec \${fd}>&-"; fi; done
name=
while [[ $1 != -- ]]; do
  case $1 in
    join:*) echo $$ >"\${1#join:}" || { echo "hourglass: cannot join cgroup \${1#join:}" >&2; exit 125; } ;;
    read:*) f=\${1#read:}; eval "exec \${f%%:*}<\\"\\\${f#*:}\\"" || exit 125 ;;
    write:*) f=\${1#write:}; eval "exec \${f%%:*}>\\"\\\${f#*:}\\"" || exit 125 ;;
    oom:*) echo "\${1#oom:}" >/proc/self/oom_score_adj || exit 125 ;;
    name:*) name=\${1#name:} ;;
    *) echo "hourglass: bad launcher option $1" >&2; exit 125 ;;
  esac
  shift
done
shift
if [[ -n $name ]]; then exec -a "$name" "$@"; fi
exec "$@"
`;

export function launchArgv(opts: LaunchOptions, argv: string[]): string[] {
  const directives: string[] = [];
  for (const file of opts.joinCgroups ?? []) directives.push(`join:${file}`);
  for (const o of opts.open ?? []) {
    if (!Number.isInteger(o.fd) || o.fd < 3 || o.fd > 9) throw new Error(`launcher descriptors are 3–9 (got ${o.fd})`);
    directives.push(`${o.mode}:${o.fd}:${o.file}`);
  }
  if (opts.oomScoreAdj !== undefined) directives.push(`oom:${Math.trunc(opts.oomScoreAdj)}`);
  if (opts.argv0) directives.push(`name:${opts.argv0}`);
  return ['bash', '--norc', '--noprofile', '-c', SCRIPT, 'hourglass-launch', ...directives, '--', ...argv];
}
