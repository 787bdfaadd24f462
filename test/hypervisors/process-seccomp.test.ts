// The seccomp filter of process sandboxes, without a kernel: the assembler's bytes, and the policy's
// verdicts run through a small classic-BPF interpreter (the kernel's own rules: forward jumps,
// 32-bit loads from struct seccomp_data). process.test.ts checks the same filter in a real kernel.
import { describe, expect, it } from 'vitest';
import { BpfProgram, OPCODES, type BpfInstruction } from '../../hypervisors/process/seccomp-bpf';
import {
  ABIS,
  CLONE_NEWUSER,
  ENOSYS,
  EPERM,
  SECCOMP_RET_ALLOW,
  SECCOMP_RET_ERRNO,
  SECCOMP_RET_KILL_PROCESS,
  X32_SYSCALL_BIT,
  sandboxSeccompFilter,
  sandboxSeccompProgram,
} from '../../hypervisors/process/seccomp-policy';

/** Runs a program on one syscall, as the kernel would: returns the action word. */
function run(program: BpfInstruction[], call: { nr: number; arch: number; args?: number[] }): number {
  const data = Buffer.alloc(64); // struct seccomp_data
  data.writeInt32LE(call.nr | 0, 0);
  data.writeUInt32LE(call.arch, 4);
  (call.args ?? []).forEach((a, i) => data.writeBigUInt64LE(BigInt(a), 16 + 8 * i));
  let acc = 0;
  for (let pc = 0; pc < program.length; pc++) {
    const ins = program[pc]!;
    switch (ins.code) {
      case OPCODES.loadWord:
        acc = data.readUInt32LE(ins.k);
        break;
      case OPCODES.return:
        return ins.k;
      case OPCODES.jumpAlways:
        pc += ins.k;
        break;
      case OPCODES.jumpIfEqual:
        pc += acc === ins.k ? ins.jt : ins.jf;
        break;
      case OPCODES.jumpIfGreaterOrEqual:
        pc += acc >= ins.k ? ins.jt : ins.jf;
        break;
      case OPCODES.jumpIfAnyBit:
        pc += (acc & ins.k) !== 0 ? ins.jt : ins.jf;
        break;
      default:
        throw new Error(`unknown opcode ${ins.code}`);
    }
  }
  throw new Error('fell off the end of the program');
}

const abi = (name: string) => ABIS.find((a) => a.name === name)!;
const verdict = (name: string, nr: number, args: number[] = []) =>
  run(sandboxSeccompProgram().instructions(), { nr, arch: abi(name).auditArch, args });

describe('classic BPF assembler', () => {
  it('encodes struct sock_filter little-endian, with label jumps resolved to forward offsets', () => {
    const p = new BpfProgram().load(4).ifEqual(0xc000003e, 'ok').ret(0x80000000).label('ok').ret(0x7fff0000);
    expect(p.assemble().toString('hex')).toBe(
      [
        '2000' + '00' + '00' + '04000000', // ld [4]
        '1500' + '01' + '00' + '3e0000c0', // jeq #0xc000003e, +1, +0
        '0600' + '00' + '00' + '00000080', // ret #KILL_PROCESS
        '0600' + '00' + '00' + '0000ff7f', // ret #ALLOW
      ].join(''),
    );
  });

  it('refuses what the kernel would: unknown or backward labels, jumps past 255, bad operands', () => {
    expect(() => new BpfProgram().ifEqual(1, 'nowhere').ret(0).instructions()).toThrow(
      "BPF label 'nowhere' is not defined",
    );
    expect(() => new BpfProgram().label('top').load(0).ifEqual(1, 'top').ret(0).instructions()).toThrow(
      'goes backwards',
    );
    const far = new BpfProgram().load(0).ifEqual(1, 'end');
    for (let i = 0; i < 256; i++) far.ret(0);
    expect(() => far.label('end').ret(1).instructions()).toThrow('spans 256 instructions; at most 255');
    expect(() => new BpfProgram().ret(-1)).toThrow('not a 32-bit unsigned integer');
  });
});

describe('sandbox seccomp policy', () => {
  const errno = (e: number) => SECCOMP_RET_ERRNO | e;

  it('refuses new user namespaces through clone and unshare on every ABI, and allows other flags', () => {
    for (const a of ABIS) {
      expect(verdict(a.name, a.unshare, [CLONE_NEWUSER]), a.name).toBe(errno(EPERM));
      expect(verdict(a.name, a.unshare, [CLONE_NEWUSER | 0x20000]), a.name).toBe(errno(EPERM)); // with CLONE_NEWNS
      expect(verdict(a.name, a.clone, [CLONE_NEWUSER | 0x11]), a.name).toBe(errno(EPERM));
      // fork(): CLONE_CHILD_SETTID|CLEARTID|SIGCHLD
      expect(verdict(a.name, a.clone, [0x01200011]), a.name).toBe(SECCOMP_RET_ALLOW);
      // a mount namespace alone: caps decide
      expect(verdict(a.name, a.unshare, [0x20000]), a.name).toBe(SECCOMP_RET_ALLOW);
      expect(verdict(a.name, a.clone3), a.name).toBe(errno(ENOSYS));
    }
  });

  it('judges the flags by their low 32 bits, as the kernel does', () => {
    expect(verdict('x86_64', abi('x86_64').clone, [2 ** 32 + CLONE_NEWUSER])).toBe(errno(EPERM));
    expect(verdict('x86_64', abi('x86_64').clone, [2 ** 40])).toBe(SECCOMP_RET_ALLOW);
  });

  it('reads each ABI with its own numbers: an i386 syscall from a 64-bit process is caught too', () => {
    expect(verdict('i386', 310, [CLONE_NEWUSER])).toBe(errno(EPERM)); // unshare on i386
    expect(verdict('i386', 272, [CLONE_NEWUSER])).toBe(SECCOMP_RET_ALLOW); // 272 is fadvise64_64 there, not unshare
    expect(verdict('aarch64', 97, [CLONE_NEWUSER])).toBe(errno(EPERM));
    expect(verdict('arm', 337, [CLONE_NEWUSER])).toBe(errno(EPERM));
  });

  it(
    'denies x32 syscalls, kills unknown architectures, ' + 'refuses setns, keyrings, bpf and io_uring, allows the rest',
    () => {
      expect(verdict('x86_64', X32_SYSCALL_BIT | 272, [CLONE_NEWUSER])).toBe(errno(ENOSYS));
      expect(verdict('x86_64', X32_SYSCALL_BIT | 0)).toBe(errno(ENOSYS)); // even read
      expect(run(sandboxSeccompProgram().instructions(), { nr: 0, arch: 0x80000016 /* s390x */ })).toBe(
        SECCOMP_RET_KILL_PROCESS,
      );
      for (const a of ABIS) {
        for (const [name, nr] of Object.entries(a.refused)) {
          expect(verdict(a.name, nr), `${a.name} ${name}`).toBe(errno(EPERM));
        }
        for (const [name, nr] of Object.entries(a.absent)) {
          expect(verdict(a.name, nr), `${a.name} ${name}`).toBe(errno(ENOSYS));
        }
      }
      expect(verdict('x86_64', 0)).toBe(SECCOMP_RET_ALLOW); // read
      expect(verdict('x86_64', 59)).toBe(SECCOMP_RET_ALLOW); // execve
      expect(verdict('aarch64', 221)).toBe(SECCOMP_RET_ALLOW); // execve
    },
  );

  it('compiles to whole 8-byte instructions within the kernel limit', () => {
    const bytes = sandboxSeccompFilter();
    expect(bytes.length % 8).toBe(0);
    expect(bytes.length / 8).toBe(sandboxSeccompProgram().instructions().length);
    expect(bytes.length / 8).toBeLessThan(4096);
  });
});
