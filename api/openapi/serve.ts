// Serves /openapi.json and the /docs page (Swagger UI from the swagger-ui-dist package, never a
// CDN, so it works offline). Public and cacheable: the document describes the API, it holds no data.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import express, { Router } from 'express';
import { buildOpenApiDocument } from './document';

/** Only these files of swagger-ui-dist are served: not its index.html nor its petstore initializer. */
const SWAGGER_ASSETS = new Set(['/swagger-ui.css', '/swagger-ui-bundle.js', '/favicon-32x32.png']);

/**
 * The page runs only scripts from this server: no inline script, no eval, nothing from elsewhere.
 * Styles may be inline (Swagger UI injects some, swagger-api/swagger-ui#10655; a style runs no code),
 * its CSS uses data: images, and "Try it out" calls this same origin.
 */
const DOCS_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const CACHE = 'public, max-age=300';

export function openApiRoutes(): Router {
  const document = JSON.stringify(buildOpenApiDocument());
  const page = readFileSync(new URL('./docs-page/index.html', import.meta.url), 'utf8');
  const init = readFileSync(new URL('./docs-page/init.js', import.meta.url), 'utf8');
  const swaggerDir = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));

  const r = Router();
  r.get('/openapi.json', (_req, res) => {
    res.set('Cache-Control', CACHE).type('application/json').send(document);
  });
  r.get('/docs', (_req, res) => {
    res.set({ 'Cache-Control': CACHE, 'Content-Security-Policy': DOCS_CSP }).type('html').send(page);
  });
  r.get('/docs/init.js', (_req, res) => {
    res.set('Cache-Control', CACHE).type('application/javascript').send(init);
  });
  const assets = express.static(swaggerDir, { index: false, maxAge: '1d', fallthrough: true });
  r.use('/docs/assets', (req, res, next) =>
    SWAGGER_ASSETS.has(req.path) && (req.method === 'GET' || req.method === 'HEAD') ? assets(req, res, next) : next(),
  );
  return r;
}
