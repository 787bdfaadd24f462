// Files: write_file, read_file, list_files. Paths are the sandbox's own (relative to its workspace
// or absolute beneath it); the API refuses anything that would leave the workspace.
import { posix } from 'node:path';
import type { Readable } from 'node:stream';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { listFilesQuery, readFileQuery, writeFileQuery } from '../../api/files/schemas';
import { HourglassApiError, type HourglassClient } from '../../client';
import type { FileEntry } from '../../client';
import { failure, guarded, text } from './result';
import { trimPartialEnd } from './utf8';
import { sandboxId } from './sandbox-id';

/** read_file's answer unless the caller asks for more: a long source file, not a log or a binary. */
const DEFAULT_READ_BYTES = 64 * 1024;
/** An MCP message is a line of JSON in memory on both sides: no more than this in one answer. */
const MAX_READ_BYTES = 1024 * 1024;

const path = readFileQuery.shape.path.describe(
  'Path in the sandbox: relative to its workspace (/work, or /root in a VM), or absolute beneath it',
);

export function registerFileTools(server: McpServer, client: HourglassClient): void {
  server.registerTool(
    'write_file',
    {
      title: 'Write a file in a sandbox',
      description:
        'Creates or replaces a file in a sandbox (its parent directories are created). Give the content ' +
        'as text ("content", written as UTF-8) or as bytes in base64 ("contentBase64"), not both. ' +
        'Returns the absolute path, size and sha256.',
      inputSchema: {
        sandboxId,
        path,
        content: z.string().optional().describe("The file's text (UTF-8)"),
        contentBase64: z.string().base64().optional().describe("The file's bytes, base64-encoded"),
        mode: writeFileQuery.shape.mode.describe('Permission bits in octal, e.g. "755" for a script (default 644)'),
      },
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true },
    },
    guarded('write_file', async ({ sandboxId: id, path: p, content, contentBase64, mode }) => {
      if ((content === undefined) === (contentBase64 === undefined)) {
        return failure('invalid_argument: give either content (text) or contentBase64 (bytes), exactly one');
      }
      const data = content !== undefined ? Buffer.from(content, 'utf8') : Buffer.from(contentBase64!, 'base64');
      const write = () => client.writeFile(id, p, data, { mode });
      try {
        return text(JSON.stringify(await write()));
      } catch (err) {
        // The API writes into existing directories only; an agent expects `mkdir -p` semantics.
        if (!(err instanceof HourglassApiError && err.code === 'path_not_found')) throw err;
        await client.makeDirectory(id, posix.dirname(p), { parents: true });
        return text(JSON.stringify(await write()));
      }
    }),
  );

  server.registerTool(
    'read_file',
    {
      title: 'Read a file from a sandbox',
      description:
        'Reads a file from a sandbox. The first part of the answer is the content: the text itself when the ' +
        'file is UTF-8 text, else its bytes in base64; the second part says which (encoding), the size, ' +
        `the sha256 and whether it was cut: at most maxBytes (default ${DEFAULT_READ_BYTES / 1024} KiB) are ` +
        'returned. For a directory use list_files.',
      inputSchema: {
        sandboxId,
        path,
        maxBytes: z
          .number()
          .int()
          .positive()
          .max(MAX_READ_BYTES)
          .optional()
          .describe(`Return at most this many bytes (default ${DEFAULT_READ_BYTES}, at most ${MAX_READ_BYTES})`),
      },
      annotations: { readOnlyHint: true },
    },
    guarded('read_file', async ({ sandboxId: id, path: p, maxBytes = DEFAULT_READ_BYTES }) => {
      const file = await client.readFile(id, p);
      if (file.kind === 'directory') {
        file.stream.destroy();
        return failure(`invalid_argument: ${p} is a directory; list_files lists it`);
      }
      const bytes = await readAtMost(file.stream, maxBytes);
      const truncated = file.size > bytes.length;
      const asText = utf8Text(bytes, truncated);
      const meta = {
        path: p,
        encoding: asText === undefined ? 'base64' : 'utf-8',
        size: file.size,
        sha256: file.sha256,
        ...(truncated ? { truncated: `only the first ${bytes.length} of ${file.size} bytes are shown` } : {}),
      };
      return text(asText ?? bytes.toString('base64'), JSON.stringify(meta));
    }),
  );

  server.registerTool(
    'list_files',
    {
      title: 'List a directory in a sandbox',
      description:
        'Lists a directory in a sandbox (default: its workspace), one entry a line: type (d directory, ' +
        '- file, l symlink, ? other), octal mode, size in bytes, modification time, name.',
      inputSchema: {
        sandboxId,
        path: listFilesQuery.shape.path.describe('A directory (default: the workspace)'),
        limit: listFilesQuery.shape.limit.describe('At most this many entries (default 1000)'),
      },
      annotations: { readOnlyHint: true },
    },
    guarded('list_files', async ({ sandboxId: id, path: p, limit }) => {
      const listing = await client.listFiles(id, p, { limit });
      const more = listing.truncated ? ' (truncated: there are more; raise limit)' : '';
      const head = `${listing.path}: ${listing.entries.length} entries${more}`;
      return text([head, ...listing.entries.map(line)].join('\n'));
    }),
  );
}

const TYPE_LETTER: Record<FileEntry['type'], string> = { directory: 'd', file: '-', symlink: 'l', other: '?' };

function line(e: FileEntry): string {
  return `${TYPE_LETTER[e.type] ?? '?'} ${e.mode} ${e.size} ${e.mtime} ${e.name}${e.type === 'directory' ? '/' : ''}`;
}

/** The first `limit` bytes; the download stops there (a 100 MB file is not pulled through for 64 KiB). */
async function readAtMost(stream: Readable, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of stream) {
      const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
      chunks.push(b.subarray(0, limit - size));
      size += Math.min(b.length, limit - size);
      if (size >= limit) break;
    }
  } finally {
    stream.destroy();
  }
  return Buffer.concat(chunks);
}

/** The bytes as text when they are UTF-8 without NULs (a character cut by the limit is allowed); else undefined. */
function utf8Text(bytes: Buffer, truncated: boolean): string | undefined {
  if (bytes.includes(0)) return undefined;
  const whole = truncated ? trimPartialEnd(bytes) : bytes;
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(whole);
  } catch {
    return undefined;
  }
}
