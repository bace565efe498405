// Request and response plumbing for the mock engine, with llama-server's error envelope.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { MockEngineError } from './mock-completion-request';

const MAX_BODY_BYTES = 1024 * 1024;
export const LOADING_ERROR: MockEngineError = {
  status: 503,
  body: { error: { code: 503, message: 'Loading model', type: 'unavailable_error' } },
};
export const NOT_FOUND_ERROR: MockEngineError = {
  status: 404,
  body: { error: { code: 404, message: 'File Not Found', type: 'not_found_error' } },
};

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

export function readJsonBody(req: IncomingMessage): Promise<{ ok: true; value: unknown } | { ok: false; error: MockEngineError }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    req.on('error', () => resolve({ ok: false, error: { status: 400, body: { error: { code: 400, message: 'request aborted', type: 'invalid_request_error' } } } }));
    req.on('end', () => {
      if (size > MAX_BODY_BYTES) {
        resolve({ ok: false, error: { status: 413, body: { error: { code: 413, message: 'request too large', type: 'invalid_request_error' } } } });
        return;
      }
      try {
        resolve({ ok: true, value: JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown });
      } catch {
        resolve({ ok: false, error: { status: 400, body: { error: { code: 400, message: 'invalid JSON body', type: 'invalid_request_error' } } } });
      }
    });
  });
}
