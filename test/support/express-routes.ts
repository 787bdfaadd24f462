// Lists an express 4 app's routes as "METHOD /path" with OpenAPI-style params (`/v1/sandboxes/{id}`),
// by walking its router stack: routes, and routers mounted with app.use(path, router).
import type { Express } from 'express';

interface Layer {
  name: string;
  regexp: RegExp & { fast_slash?: boolean };
  route?: { path: string | RegExp; methods: Record<string, boolean> };
  handle: { stack?: Layer[] };
}

export function expressRoutes(app: Express): string[] {
  const router = (app as unknown as { _router?: { stack: Layer[] } })._router;
  if (!router) throw new Error('the app has no router (express 4 app._router): no routes at all?');
  return [...new Set(walk(router.stack, ''))].sort();
}

function walk(stack: Layer[], prefix: string): string[] {
  return stack.flatMap((layer) => {
    if (layer.route) {
      if (typeof layer.route.path !== 'string') throw new Error(`route with a regexp path under ${prefix || '/'}`);
      const path = toOpenApiPath(prefix + layer.route.path);
      return Object.keys(layer.route.methods)
        .filter((m) => m !== '_all')
        .map((m) => `${m.toUpperCase()} ${path}`);
    }
    if (layer.name === 'router' && layer.handle.stack) return walk(layer.handle.stack, prefix + mountPath(layer));
    return []; // middleware
  });
}

/** The path a router was mounted at, read back from the regexp express 4 made of it. */
function mountPath(layer: Layer): string {
  if (layer.regexp.fast_slash) return '';
  const m = /^\^((?:\\.|[^\\()[\]?*+|$^])*)\\\/\?\(\?=\\\/\|\$\)$/.exec(layer.regexp.source);
  if (!m) throw new Error(`cannot read a mount path back from ${layer.regexp}`);
  return m[1]!.replace(/\\(.)/g, '$1');
}

function toOpenApiPath(path: string): string {
  const trimmed = path.length > 1 ? path.replace(/\/+$/, '') : path;
  return trimmed.replace(/:([A-Za-z0-9_]+)/g, '{$1}') || '/';
}
