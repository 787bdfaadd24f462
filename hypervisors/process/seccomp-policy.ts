// The seccomp filter every process sandbox command runs under: no new user namespaces (a user
// namespace hands an unprivileged process every capability inside it, the door to most kernel
// exploits), a few more kernel surfaces a sandbox has no use for, and nothing else changed.
import { BpfProgram } from './seccomp-bpf';

// <linux/seccomp.h> return actions. ERRNO's low 16 bits are the errno the syscall returns.
export const SECCOMP_RET_KILL_PROCESS = 0x80000000;
export const SECCOMP_RET_ERRNO = 0x00050000;
export const SECCOMP_RET_ALLOW = 0x7fff0000;
export const EPERM = 1;
export const ENOSYS = 38;

export const CLONE_NEWUSER = 0x10000000;

// Offsets in struct seccomp_data { int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6]; }.
// Both supported hosts are little-endian, so an argument's low 32 bits come first.
export const DATA_NR = 0;
export const DATA_ARCH = 4;
export const DATA_ARG0_LOW = 16;

/** x32 syscalls arrive with arch x86_64 and this bit set in nr (__X32_SYSCALL_BIT). */
export const X32_SYSCALL_BIT = 0x40000000;

/** Syscall numbers of one ABI, from the kernel's syscall tables. */
export interface SyscallAbi {
  name: string;
  /** AUDIT_ARCH_* (<linux/audit.h>): EM_* | 64-bit flag | little-endian flag. */
  auditArch: number;
  clone: number;
  clone3: number;
  unshare: number;
  /** Refused with EPERM. */
  refused: Record<string, number>;
  /** Refused with ENOSYS, so programs take their "old kernel" path. */
  absent: Record<string, number>;
}

const IO_URING = { io_uring_setup: 425, io_uring_enter: 426, io_uring_register: 427 };

// Each ABI a process on a supported host can enter the kernel with. A 64-bit x86 process can also
// make i386 syscalls (int 0x80) and an aarch64 one may run arm32 code: each is filtered with its
// own numbers, or a filter on the 64-bit numbers alone is bypassed.
export const ABIS: SyscallAbi[] = [
  {
    name: 'x86_64',
    auditArch: 0xc000003e,
    clone: 56,
    clone3: 435,
    unshare: 272,
    refused: {
      setns: 308,
      keyctl: 250,
      add_key: 248,
      request_key: 249,
      bpf: 321,
      perf_event_open: 298,
      userfaultfd: 323,
    },
    absent: IO_URING,
  },
  {
    name: 'i386',
    auditArch: 0x40000003,
    clone: 120,
    clone3: 435,
    unshare: 310,
    refused: {
      setns: 346,
      keyctl: 288,
      add_key: 286,
      request_key: 287,
      bpf: 357,
      perf_event_open: 336,
      userfaultfd: 374,
    },
    absent: IO_URING,
  },
  {
    name: 'aarch64',
    auditArch: 0xc00000b7,
    clone: 220,
    clone3: 435,
    unshare: 97,
    refused: {
      setns: 268,
      keyctl: 219,
      add_key: 217,
      request_key: 218,
      bpf: 280,
      perf_event_open: 241,
      userfaultfd: 282,
    },
    absent: IO_URING,
  },
  {
    name: 'arm',
    auditArch: 0x40000028,
    clone: 120,
    clone3: 435,
    unshare: 337,
    refused: {
      setns: 375,
      keyctl: 311,
      add_key: 309,
      request_key: 310,
      bpf: 386,
      perf_event_open: 364,
      userfaultfd: 388,
    },
    absent: IO_URING,
  },
];

/**
 * Builds the filter:
 * - unknown architecture: kill the process (its syscall numbers mean nothing to this filter);
 * - x32 syscalls: ENOSYS (a second syscall table the filter would otherwise have to mirror);
 * - clone3: ENOSYS — its flags sit in a struct behind a pointer a filter cannot read; glibc then
 *   falls back to clone, whose flags it can;
 * - clone / unshare with CLONE_NEWUSER: EPERM (only the low 32 bits of flags count: the kernel
 *   truncates clone's flags to int, and CLONE_NEWUSER is bit 28);
 * - setns (joining someone else's namespace), the kernel keyrings (not namespaced: one uid's
 *   quota is shared by every sandbox), bpf, perf_event_open, userfaultfd: EPERM;
 * - io_uring: ENOSYS;
 * - everything else: allowed.
 */
export function sandboxSeccompProgram(abis: SyscallAbi[] = ABIS): BpfProgram {
  const p = new BpfProgram();
  p.load(DATA_ARCH);
  for (const abi of abis) p.ifEqual(abi.auditArch, abi.name);
  p.ret(SECCOMP_RET_KILL_PROCESS);

  for (const abi of abis) {
    const checkFlags = `${abi.name}:flags`;
    p.label(abi.name).load(DATA_NR);
    if (abi.name === 'x86_64') p.ifGreaterOrEqual(X32_SYSCALL_BIT, 'enosys');
    p.ifEqual(abi.clone3, 'enosys');
    p.ifEqual(abi.clone, checkFlags);
    p.ifEqual(abi.unshare, checkFlags);
    for (const nr of Object.values(abi.absent)) p.ifEqual(nr, 'enosys');
    for (const nr of Object.values(abi.refused)) p.ifEqual(nr, 'eperm');
    p.ret(SECCOMP_RET_ALLOW);
    p.label(checkFlags).load(DATA_ARG0_LOW).ifAnyBit(CLONE_NEWUSER, 'eperm');
    p.ret(SECCOMP_RET_ALLOW);
  }

  p.label('eperm').ret(SECCOMP_RET_ERRNO | EPERM);
  p.label('enosys').ret(SECCOMP_RET_ERRNO | ENOSYS);
  return p;
}

/** The compiled filter, as `bwrap --seccomp FD` reads it. */
export function sandboxSeccompFilter(): Buffer {
  return sandboxSeccompProgram().assemble();
}
