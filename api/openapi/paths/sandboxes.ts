// /v1/sandboxes routes.
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';

export function registerSandboxPaths(_registry: OpenAPIRegistry): void {}
