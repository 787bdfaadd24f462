// /v1/sessions routes.
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';

export function registerSessionPaths(_registry: OpenAPIRegistry): void {}
