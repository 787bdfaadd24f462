// A tiny assembler for classic BPF, the instruction set seccomp filters are written in
// (Documentation/networking/filter.rst, <linux/filter.h>). No maintained npm library does this.
//
// A program is a list of steps; jumps name labels instead of counting instructions. Classic BPF
// only jumps forward, conditional jumps by at most 255 instructions: assemble() checks both.
import os from 'node:os';

/** One `struct sock_filter`: 16-bit opcode, two 8-bit jump offsets, 32-bit operand. */
export interface BpfInstruction {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

// Opcode parts from <linux/bpf_common.h>.
const BPF_LD = 0x00;
const BPF_JMP = 0x05;
const BPF_RET = 0x06;
const BPF_W = 0x00; // 32-bit word
const BPF_ABS = 0x20; // load from a fixed offset of the input (here: struct seccomp_data)
const BPF_K = 0x00; // operand is the constant k
const BPF_JA = 0x00;
const BPF_JEQ = 0x10;
const BPF_JGE = 0x30;
const BPF_JSET = 0x40;

export const OPCODES = {
  loadWord: BPF_LD | BPF_W | BPF_ABS, // 0x20: A = input[k]
  jumpAlways: BPF_JMP | BPF_JA, // 0x05: pc += k
  jumpIfEqual: BPF_JMP | BPF_JEQ | BPF_K, // 0x15: pc += (A == k) ? jt : jf
  jumpIfGreaterOrEqual: BPF_JMP | BPF_JGE | BPF_K, // 0x35: pc += (A >= k) ? jt : jf (unsigned)
  jumpIfAnyBit: BPF_JMP | BPF_JSET | BPF_K, // 0x45: pc += (A & k) ? jt : jf
  return: BPF_RET | BPF_K, // 0x06: return k
} as const;

/** The kernel refuses longer programs (BPF_MAXINSNS). */
const MAX_INSTRUCTIONS = 4096;

/** Where a conditional jump goes: a label, or null for the next instruction. */
type Target = string | null;
type Condition = 'equal' | 'greaterOrEqual' | 'anyBit';

type Step =
  | { kind: 'load'; offset: number }
  | { kind: 'return'; value: number }
  | { kind: 'jump'; to: string }
  | { kind: 'branch'; condition: Condition; k: number; ifTrue: Target; ifFalse: Target }
  | { kind: 'label'; name: string };

const CONDITION_OPCODE: Record<Condition, number> = {
  equal: OPCODES.jumpIfEqual,
  greaterOrEqual: OPCODES.jumpIfGreaterOrEqual,
  anyBit: OPCODES.jumpIfAnyBit,
};

export class BpfProgram {
  private readonly steps: Step[] = [];

  /** A = the 32-bit word at `offset` of the filter's input. */
  load(offset: number): this {
    return this.push({ kind: 'load', offset: u32(offset) });
  }

  ret(value: number): this {
    return this.push({ kind: 'return', value: u32(value) });
  }

  jump(to: string): this {
    return this.push({ kind: 'jump', to });
  }

  /** Jumps to `ifTrue` when A == k, else to `ifFalse` (null = fall through). */
  ifEqual(k: number, ifTrue: Target, ifFalse: Target = null): this {
    return this.push({ kind: 'branch', condition: 'equal', k: u32(k), ifTrue, ifFalse });
  }

  /** Unsigned A >= k. */
  ifGreaterOrEqual(k: number, ifTrue: Target, ifFalse: Target = null): this {
    return this.push({ kind: 'branch', condition: 'greaterOrEqual', k: u32(k), ifTrue, ifFalse });
  }

  /** (A & k) != 0. */
  ifAnyBit(k: number, ifTrue: Target, ifFalse: Target = null): this {
    return this.push({ kind: 'branch', condition: 'anyBit', k: u32(k), ifTrue, ifFalse });
  }

  label(name: string): this {
    return this.push({ kind: 'label', name });
  }

  /** Resolves labels into forward offsets. */
  instructions(): BpfInstruction[] {
    const at = new Map<string, number>();
    let count = 0;
    for (const step of this.steps) {
      if (step.kind !== 'label') count++;
      else if (at.has(step.name)) throw new Error(`BPF label '${step.name}' defined twice`);
      else at.set(step.name, count);
    }
    if (count > MAX_INSTRUCTIONS) {
      throw new Error(`BPF program has ${count} instructions; the kernel takes at most ${MAX_INSTRUCTIONS}`);
    }

    const out: BpfInstruction[] = [];
    const offsetTo = (target: Target, max: number): number => {
      if (target === null) return 0;
      const index = at.get(target);
      if (index === undefined) throw new Error(`BPF label '${target}' is not defined`);
      const offset = index - (out.length + 1); // relative to the next instruction
      if (offset < 0) throw new Error(`BPF jump to '${target}' goes backwards; classic BPF only jumps forward`);
      if (offset > max) throw new Error(`BPF jump to '${target}' spans ${offset} instructions; at most ${max}`);
      return offset;
    };
    for (const step of this.steps) {
      switch (step.kind) {
        case 'label':
          break;
        case 'load':
          out.push({ code: OPCODES.loadWord, jt: 0, jf: 0, k: step.offset });
          break;
        case 'return':
          out.push({ code: OPCODES.return, jt: 0, jf: 0, k: step.value });
          break;
        case 'jump':
          out.push({ code: OPCODES.jumpAlways, jt: 0, jf: 0, k: offsetTo(step.to, 0xffffffff) });
          break;
        case 'branch':
          out.push({
            code: CONDITION_OPCODE[step.condition],
            jt: offsetTo(step.ifTrue, 255),
            jf: offsetTo(step.ifFalse, 255),
            k: step.k,
          });
          break;
      }
    }
    return out;
  }

  /** The bytes of a `struct sock_filter[]` in this machine's byte order, as `bwrap --seccomp FD` reads them. */
  assemble(): Buffer {
    const instructions = this.instructions();
    const buf = Buffer.alloc(instructions.length * 8);
    const le = os.endianness() === 'LE';
    instructions.forEach((ins, i) => {
      const o = i * 8;
      if (le) {
        buf.writeUInt16LE(ins.code, o);
        buf.writeUInt32LE(ins.k, o + 4);
      } else {
        buf.writeUInt16BE(ins.code, o);
        buf.writeUInt32BE(ins.k, o + 4);
      }
      buf.writeUInt8(ins.jt, o + 2);
      buf.writeUInt8(ins.jf, o + 3);
    });
    return buf;
  }

  private push(step: Step): this {
    this.steps.push(step);
    return this;
  }
}

function u32(n: number): number {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) {
    throw new Error(`BPF operand ${n} is not a 32-bit unsigned integer`);
  }
  return n;
}
