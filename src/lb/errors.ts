// Error responses of the load balancer (spec lb.md §11): the API server's JSON envelope plus a newline,
// served as application/json [D-LB-10].

import type { ServerResponse } from 'node:http';

export const MESSAGES = {
  invalidCluster:
    'invalid cluster ID. Set cluster ID using X-Ceems-Cluster-Id header in Prometheus datasource.',
  noUser:
    'no user header found. Make sure to set send_user_header = true in [dataproxy] section of Grafana configuration file.',
  forbiddenResource: 'user do not have permissions to this resource',
  forbiddenMetrics: 'user do not have permissions to view unit metrics',
  unsupportedBody: 'unsupported request body',
} as const;

const STATUS = { bad_request: 400, bad_data: 400, unauthorized: 401, forbidden: 403 } as const;
export type ErrorType = keyof typeof STATUS;

export function errorBody(type: ErrorType, message: string): string {
  return `${JSON.stringify({ status: 'error', data: null, errorType: type, error: message })}\n`;
}

export function sendError(res: ServerResponse, type: ErrorType, message: string): void {
  const body = errorBody(type, message);
  res.writeHead(STATUS[type], {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}
