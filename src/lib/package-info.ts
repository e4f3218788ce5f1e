// The service's own name and version (package.json), for GET /v2 and exported files.
import { readFileSync } from 'node:fs';

export const PACKAGE = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { name: string; version: string };
