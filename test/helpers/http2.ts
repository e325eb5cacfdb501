// One HTTP/2 request on an open client session, for the tests of servers that speak HTTP/2.

import type { ClientHttp2Session, OutgoingHttpHeaders } from 'node:http2';

/** Sends a request with `headers` (at least `:path`) and collects the status and the UTF-8 body. */
export function http2Get(
  session: ClientHttp2Session,
  headers: OutgoingHttpHeaders,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers);
    let status = 0;
    let body = '';
    stream.on('response', (h) => {
      status = Number(h[':status']);
    });
    stream.setEncoding('utf8');
    stream.on('data', (d) => {
      body += d;
    });
    stream.on('end', () => resolve({ status, body }));
    stream.on('error', reject);
  });
}
