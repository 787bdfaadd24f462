// /v1/codec routes.
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';

export function registerCodecPaths(_registry: OpenAPIRegistry): void {}
