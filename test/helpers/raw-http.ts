// HTTP/1.1 by hand over a TCP socket, for requests that fetch and supertest will
// not send: paths exactly as written (%-escapes, dot segments, `;`, NUL), broken
// framing, bodies that stall. One request per connection (Connection: close).
import { connect, type Socket } from 'node:net';

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** Parsed body when it is JSON. */
  json: any;
  /** Milliseconds from sending the first byte to the end of the response. */
  ms: number;
}

export interface RawRequest {
  method?: string;
  /** The request target, sent byte for byte. */
  path: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Sends everything as is, without adding Host, Content-Length or Connection. */
  verbatim?: string | Buffer;
  /** Give up after this long (default 10 s): rejects. */
  timeoutMs?: number;
}

function parse(raw: Buffer, ms: number): RawResponse {
  const text = raw.toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  if (end < 0) throw new Error(`no complete response head in ${JSON.stringify(text.slice(0, 200))}`);
  const [statusLine, ...lines] = text.slice(0, end).split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '')?.[1]);
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  let body = raw.subarray(Buffer.byteLength(text.slice(0, end + 4), 'latin1'));
  if (headers['transfer-encoding'] === 'chunked') {
    const parts: Buffer[] = [];
    let offset = 0;
    for (;;) {
      const lineEnd = body.indexOf('\r\n', offset);
      if (lineEnd < 0) break;
      const size = parseInt(body.toString('latin1', offset, lineEnd), 16);
      if (!size) break;
      parts.push(body.subarray(lineEnd + 2, lineEnd + 2 + size));
      offset = lineEnd + 2 + size + 2;
    }
    body = Buffer.concat(parts);
  }
  const bodyText = body.toString('utf8');
  let json: unknown;
  try {
    json = JSON.parse(bodyText);
  } catch {
    json = undefined;
  }
  return { status, headers, body: bodyText, json, ms };
}

/** Opens a connection to `base` (http://host:port). */
export function openSocket(base: string): Promise<Socket> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port) }, () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Sends one request and reads the whole response (the server closes the connection after it). */
export async function rawRequest(base: string, request: RawRequest): Promise<RawResponse> {
  const socket = await openSocket(base);
  const body = request.body === undefined ? Buffer.alloc(0) : Buffer.from(request.body);
  const head =
    `${request.method ?? 'GET'} ${request.path} HTTP/1.1\r\n` +
    `Host: ${new URL(base).host}\r\nConnection: close\r\n` +
    Object.entries({ 'content-length': String(body.length), ...request.headers })
      .map(([name, value]) => `${name}: ${value}\r\n`)
      .join('') +
    '\r\n';
  const payload = request.verbatim !== undefined ? Buffer.from(request.verbatim) : Buffer.concat([Buffer.from(head, 'latin1'), body]);
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no complete response to ${request.method ?? 'GET'} ${request.path.slice(0, 80)} within ${request.timeoutMs ?? 10_000} ms`));
    }, request.timeoutMs ?? 10_000);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => {}); // a reset after the response still leaves the response
    socket.on('close', () => {
      clearTimeout(timer);
      try {
        resolve(parse(Buffer.concat(chunks), performance.now() - started));
      } catch (error) {
        reject(error as Error);
      }
    });
    socket.write(payload);
  });
}
