// The UI's static files (stylesheet, script, icon) from ./assets, held in memory and served with content-hashed URLs: no CDN, no internet needed.
import crypto from 'node:crypto';
import fs from 'node:fs';
import type { FastifyInstance } from 'fastify';

const TYPES: Record<string, string> = { css: 'text/css; charset=utf-8', js: 'text/javascript; charset=utf-8', svg: 'image/svg+xml' };
const NAMES = ['mailgate.css', 'mailgate.js', 'favicon.svg'] as const;
type AssetName = (typeof NAMES)[number];

interface Asset {
  body: Buffer;
  type: string;
  hash: string;
}

// src/web and dist/web are both two levels below the project root, where assets/ lives.
const ASSET_DIR = new URL('../../assets/', import.meta.url);
let assets: Map<string, Asset> | undefined;

function load(): Map<string, Asset> {
  assets ??= new Map(
    NAMES.map((name) => {
      const body = fs.readFileSync(new URL(name, ASSET_DIR));
      return [name, { body, type: TYPES[name.split('.').pop()!]!, hash: crypto.createHash('sha256').update(body).digest('hex').slice(0, 12) }];
    }),
  );
  return assets;
}

/** `/assets/mailgate.css?v=<hash>`: a new file gets a new URL, so browsers may cache each for a year. */
export function assetUrl(name: AssetName): string {
  return `/assets/${name}?v=${load().get(name)!.hash}`;
}

export function registerAssetRoutes(app: FastifyInstance): void {
  load();
  app.get<{ Params: { name: string }; Querystring: { v?: string } }>('/assets/:name', async (request, reply) => {
    const asset = load().get(request.params.name);
    if (!asset) return reply.status(404).type('text/plain').send('not found');
    return reply
      .type(asset.type)
      .header('cache-control', request.query.v === asset.hash ? 'public, max-age=31536000, immutable' : 'no-cache')
      .header('x-content-type-options', 'nosniff')
      .send(asset.body);
  });
}
