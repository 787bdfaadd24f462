// The end of a log file, flattened to one line for an error message.
import { open, stat } from 'node:fs/promises';

/** The last `bytes` of the file with lines joined by " | "; '' when it cannot be read. */
export async function tail(file: string, bytes = 600): Promise<string> {
  try {
    const size = (await stat(file)).size;
    const fh = await open(file, 'r');
    try {
      const buf = Buffer.alloc(Math.min(bytes, size));
      await fh.read(buf, 0, buf.length, Math.max(0, size - buf.length));
      return buf
        .toString('utf8')
        .trim()
        .replace(/\s*\n\s*/g, ' | ');
    } finally {
      await fh.close();
    }
  } catch {
    return '';
  }
}
