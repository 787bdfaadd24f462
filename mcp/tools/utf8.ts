// Cutting UTF-8 bytes without leaving half a character at the cut.

/** Drops a UTF-8 sequence cut short at the end. */
export function trimPartialEnd(b: Buffer): Buffer {
  for (let i = b.length - 1, back = 0; i >= 0 && back < 4; i--, back++) {
    const byte = b[i]!;
    if ((byte & 0xc0) === 0x80) continue; // continuation byte
    const need = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1;
    return back + 1 < need ? b.subarray(0, i) : b;
  }
  return b;
}

/** Drops continuation bytes at the start (the rest of a character cut off before it). */
export function trimPartialStart(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length && i < 3 && (b[i]! & 0xc0) === 0x80) i++;
  return b.subarray(i);
}
