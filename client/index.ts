// hourglass/client: the typed client of the Hourglass REST API.
export { HourglassClient } from './client';
export { HourglassApiError } from './errors';
export type { ClientOptions } from './http';
export type { FileDownload } from './files';
export type { SseMessage } from './sse';
export type * from './types';
