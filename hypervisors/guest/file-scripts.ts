// The POSIX sh scripts the common file layer (sandbox-file-system.ts) runs inside a sandbox, and
// the parsing of what they print. They must run under dash with GNU coreutils (process sandboxes
// see the host's /usr) and under busybox 1.35 ash (the VM guests): only `readlink -f`, `stat -c`,
// `find -exec {} +`, `mktemp`, `tar -c`, `cat`, `mkdir`, `rm`, `mv`, `chmod`, `sh` and shell
// builtins. Every path is an argument, never part of the script text.
//
// Each script starts with GUARD: the symlink check, made by the same command that then acts, so
// what it checked is what it acts on (short of a race inside the sandbox, which can only reach
// what the sandbox itself may reach anyway).

/** Exit codes the scripts use to say why they refused; the detail is all they print on stderr. */
export const FileExit = {
  /** The path, or an ancestor, resolves outside the workspace: stderr is where it resolves to. */
  Escapes: 80,
  /** stderr is the path that does not exist (the path itself, or the parent it needs). */
  NotFound: 81,
  /** The path is the wrong kind for the operation: stderr says what it is. */
  WrongKind: 82,
  /** A directory's entries changed between listing and stat: list again. */
  Changed: 84,
  /** The workspace itself cannot be resolved from inside (missing, or an ancestor not searchable). */
  NoWorkspace: 85,
} as const;

/**
 * Arguments: $1 the workspace, $2 the (lexically confined) path. Defines `guard PATH`, which finds
 * PATH's deepest existing ancestor-or-self (a dangling symlink counts as existing), resolves it
 * with `readlink -f` and exits Escapes unless that lies in the workspace; it leaves the resolution in
 * $r. Whatever does not exist below it is plain names (no `..`: confinePath refused those).
 */
const GUARD = `export LC_ALL=C
W=$1; P=$2
WR=$(readlink -f -- "$W" && echo .) || exit ${FileExit.NoWorkspace}
WR=\${WR%.}; WR=\${WR%?}
guard() {
  a=$1
  while [ ! -e "$a" ] && [ ! -L "$a" ]; do a=\${a%/*}; [ -n "$a" ] || a=/; done
  r=$(readlink -f -- "$a" 2>/dev/null && echo .) ||
    { printf '%s (cannot be resolved)' "$a" >&2; exit ${FileExit.Escapes}; }
  r=\${r%.}; r=\${r%?}
  case "$r/" in "$WR"/*) ;; *) printf '%s' "$r" >&2; exit ${FileExit.Escapes} ;; esac
}
exists() { [ -e "$1" ] || [ -L "$1" ]; }
kind() { printf '%s' "$1" >&2; exit ${FileExit.WrongKind}; }
missing() { printf '%s' "$1" >&2; exit ${FileExit.NotFound}; }
guard "$P"
`;

/** Prints `f` or `d` then a newline then the resolved path (what to read). */
export const STAT_SCRIPT = `${GUARD}
[ -e "$P" ] || missing "$P"
if [ -d "$P" ]; then printf 'd\\n%s' "$r"
elif [ -f "$P" ]; then printf 'f\\n%s' "$r"
else kind 'is neither a regular file nor a directory'; fi
`;

/**
 * Streams the path: a file's bytes, or a directory as a tar of its contents (symlinks kept as
 * links). Its first stderr line says which (KIND_MARKER + f|d): stdout is the data.
 */
export const KIND_MARKER = 'hourglass-kind:';
export const STREAM_SCRIPT = `${GUARD}
[ -e "$P" ] || missing "$P"
if [ -d "$P" ]; then echo '${KIND_MARKER}d' >&2; cd -- "$r" && exec tar -cf - .
elif [ -f "$P" ]; then echo '${KIND_MARKER}f' >&2; exec cat -- "$r"
else kind 'is neither a regular file nor a directory'; fi
`;

/**
 * $3: where to put the tar of directory $2. Made beside the directory (inside the workspace's
 * disk, not a guest's RAM-backed /tmp); for the workspace itself, beside the workspace. Prints
 * the tar's path.
 */
export const TAR_TO_FILE_SCRIPT = `${GUARD}
[ -d "$P" ] || missing "$P"
D=\${r%/*}; [ -n "$D" ] || D=/
T=$(mktemp "$D/.hourglass-tar.XXXXXXXX" 2>/dev/null || mktemp) || exit 1
cd -- "$r" && tar -cf "$T" . || { rm -f "$T"; exit 1; }
printf '%s' "$T"
`;

/**
 * Before an upload: checks the target, makes an empty temporary file beside it (mktemp: mode
 * 600, created exclusively) and prints it. An existing target is replaced where it resolves to
 * (a symlink inside the workspace is written through).
 */
export const WRITE_PREPARE_SCRIPT = `${GUARD}
exists "$P" && P=$r
[ -d "$P" ] && kind 'is a directory'
D=\${P%/*}; [ -n "$D" ] || D=/
[ -e "$D" ] || missing "$D"
[ -d "$D" ] || kind "has a parent that is not a directory: $D"
T=$(mktemp "$D/.hourglass-upload.XXXXXXXX") || exit 1
printf '%s' "$T"
`;

/** $3 the temporary file, $4 the mode (octal): checks again, then chmod and rename; the temporary file never stays. */
export const WRITE_FINISH_SCRIPT = `T=$3; M=$4
trap 'rm -f -- "$T"' EXIT
${GUARD}
exists "$P" && P=$r
[ -d "$P" ] && kind 'is a directory'
chmod "$M" "$T" && mv -f -- "$T" "$P"
`;

/** Removes a temporary file left by a failed upload ($3). */
export const REMOVE_TEMP_SCRIPT = 'rm -f -- "$1"';

/**
 * Lists $2 (a directory's entries, or a file itself). Per batch of names (find hands them out in
 * batches that fit a command line: a directory of any size never makes one argv too long): a count
 * line, then each name NUL-terminated, then one `stat -c '%f %s %Y'` line each, in the same order
 * (hex mode, size, mtime). An unreadable directory lists as empty.
 */
export const LIST_SCRIPT = `${GUARD}
[ -e "$P" ] || missing "$P"
E='printf "%s\\n" "$#"; for f; do printf "%s\\0" "\${f#./}"; done
stat -c "%f %s %Y" -- "$@" 2>/dev/null'
if [ -d "$P" ]; then
  cd -- "$r" || exit 1
  [ -r . ] || exit 0
  find . -mindepth 1 -maxdepth 1 -exec sh -c "$E" sh {} + || exit ${FileExit.Changed}
else
  cd -- "\${r%/*}/" || exit 1
  sh -c "$E" sh "\${r##*/}" || exit ${FileExit.Changed}
fi
`;

/** $3: 1 for recursive. Prints `absent` or `removed`. A symlink is removed itself, never what it points to. */
export const REMOVE_SCRIPT = `${GUARD}
exists "$P" || { echo absent; exit 0; }
if [ -d "$P" ] && [ ! -L "$P" ]; then
  [ "$3" = 1 ] || kind 'is a directory (remove it with recursive)'
  rm -rf -- "$P"
else
  rm -f -- "$P"
fi && echo removed
`;

/** $3: 1 for parents (and an existing directory is fine). */
export const MKDIR_SCRIPT = `${GUARD}
if exists "$P"; then
  [ -d "$P" ] || kind 'exists and is not a directory'
  [ "$3" = 1 ] || kind 'already exists'
  exit 0
fi
if [ "$3" = 1 ]; then mkdir -p -- "$P"; else
  D=\${P%/*}; [ -n "$D" ] || D=/
  [ -d "$D" ] || missing "$D"
  mkdir -- "$P"
fi
`;

/** The argv that runs `script` with its arguments ($1, $2, …) under /bin/sh. */
export function scriptArgv(script: string, args: string[]): string[] {
  return ['/bin/sh', '-c', script, 'hourglass-files', ...args];
}

export interface RawEntry {
  /** The name's exact bytes. */
  name: Buffer;
  mode: number;
  size: number;
  mtimeSeconds: number;
}

/** Parses LIST_SCRIPT's output; throws when it is not what the script prints. */
export function parseListing(out: Buffer): RawEntry[] {
  const entries: RawEntry[] = [];
  let at = 0;
  const line = () => {
    const end = out.indexOf(0x0a, at);
    if (end < 0) throw new Error('listing: a line is cut short');
    const text = out.subarray(at, end).toString('latin1');
    at = end + 1;
    return text;
  };
  while (at < out.length) {
    const count = Number(line());
    if (!Number.isInteger(count) || count < 1) throw new Error(`listing: bad entry count at byte ${at}`);
    const names: Buffer[] = [];
    for (let i = 0; i < count; i++) {
      const end = out.indexOf(0, at);
      if (end < 0) throw new Error('listing: a name is cut short');
      names.push(out.subarray(at, end));
      at = end + 1;
    }
    for (const name of names) {
      const fields = line().split(' ');
      const [mode, size, mtime] = [parseInt(fields[0] ?? '', 16), Number(fields[1]), Number(fields[2])];
      if (fields.length !== 3 || ![mode, size, mtime].every(Number.isFinite)) {
        throw new Error(`listing: bad stat line for ${JSON.stringify(name.toString())}`);
      }
      entries.push({ name, mode, size, mtimeSeconds: mtime });
    }
  }
  return entries;
}
