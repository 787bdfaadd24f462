// /v1/jobs routes.
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';

export function registerJobPaths(_registry: OpenAPIRegistry): void {}
