// File routes (api/files/routes.ts): upload, download, list, remove, mkdir inside a sandbox.
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { listFilesQuery, mkdirBody, readFileQuery, removeFileQuery, writeFileQuery } from '../../files/schemas';
import { ErrorEnvelope, authErrors, idParams, json } from '../common';

const tags = ['files'];
const params = idParams('sandbox');

const fileErrors = {
  ...authErrors(409, 502, 503, 504),
  400: {
    description:
      'invalid_argument: a bad query or body, or a path that escapes the workspace (`..`, an absolute path ' +
      'outside it, a symlink pointing out)',
    content: json(ErrorEnvelope),
  },
  404: { description: 'not_found (no such sandbox for you) or path_not_found', content: json(ErrorEnvelope) },
};

const WrittenFile = z
  .object({
    path: z.string().openapi({ description: 'Absolute, as the sandbox sees it' }),
    size: z.number().int(),
    sha256: z.string(),
  })
  .openapi('WrittenFile');

const FileEntry = z
  .object({
    name: z.string(),
    type: z.enum(['file', 'directory', 'symlink', 'other']),
    size: z.number().int(),
    mode: z.string().openapi({ description: 'Permission bits in octal', example: '644' }),
    mtime: z.string().openapi({ format: 'date-time' }),
  })
  .openapi('FileEntry');

const FileList = z
  .object({
    path: z.string().openapi({ description: 'The directory, absolute as the sandbox sees it' }),
    entries: z.array(FileEntry),
    truncated: z.boolean().openapi({ description: 'More entries than `limit`' }),
  })
  .openapi('FileList');

const tooManyTransfers = {
  429: {
    description:
      'rate_limited: the owner already has HOURGLASS_MAX_TRANSFERS_PER_OWNER (8) uploads and downloads under way ' +
      '(`details.cap`: `transfers`); see Retry-After',
    headers: z.object({ 'Retry-After': z.string().optional() }),
    content: json(ErrorEnvelope),
  },
};

const bytes = z.string().openapi({ format: 'binary' });

export function registerFilePaths(registry: OpenAPIRegistry): void {
  registry.registerPath({
    method: 'put',
    path: '/v1/sandboxes/{id}/files',
    tags,
    summary: 'Write a file (the raw request body, any Content-Type, at most 100 MiB); parents must exist',
    request: {
      params,
      query: writeFileQuery,
      body: { required: true, content: { 'application/octet-stream': { schema: bytes } } },
    },
    responses: {
      200: { description: 'Written', content: json(WrittenFile) },
      ...fileErrors,
      413: { description: 'too_large: over 100 MiB; nothing was written', content: json(ErrorEnvelope) },
      ...tooManyTransfers,
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/v1/sandboxes/{id}/files',
    tags,
    summary: 'Read a file (its bytes), or a directory (a tar of it)',
    request: { params, query: readFileQuery },
    responses: {
      200: {
        description: 'The bytes',
        headers: z.object({
          'Content-Length': z.string(),
          'Hourglass-File-Kind': z.enum(['file', 'directory']),
          'Hourglass-Sha256': z.string().openapi({ description: 'Of the bytes sent (the tar, for a directory)' }),
        }),
        content: { 'application/octet-stream': { schema: bytes }, 'application/x-tar': { schema: bytes } },
      },
      ...fileErrors,
      413: {
        description: 'too_large: the file (or a directory’s tar) is over 100 MiB; nothing was sent',
        content: json(ErrorEnvelope),
      },
      ...tooManyTransfers,
    },
  });
  registry.registerPath({
    method: 'delete',
    path: '/v1/sandboxes/{id}/files',
    tags,
    summary: 'Remove a file, or a directory with recursive=true',
    request: { params, query: removeFileQuery },
    responses: {
      200: {
        description: 'Removed (existed: false when there was nothing there)',
        content: json(z.object({ path: z.string(), existed: z.boolean() }).openapi('RemovedFile')),
      },
      ...fileErrors,
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/v1/sandboxes/{id}/files/list',
    tags,
    summary: 'List a directory (default: the workspace)',
    request: { params, query: listFilesQuery },
    responses: { 200: { description: 'Its entries', content: json(FileList) }, ...fileErrors },
  });
  registry.registerPath({
    method: 'post',
    path: '/v1/sandboxes/{id}/files/mkdir',
    tags,
    summary: 'Create a directory',
    request: { params, body: { required: true, content: json(mkdirBody.openapi('MakeDirectoryRequest')) } },
    responses: {
      201: {
        description: 'Created',
        content: json(z.object({ path: z.string() }).openapi('MadeDirectory')),
      },
      ...fileErrors,
      413: { description: 'too_large: the body is over 1 MB', content: json(ErrorEnvelope) },
    },
  });
}
