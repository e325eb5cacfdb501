// ceems_k8s_admission_controller entry point (spec cli.md §4): flags, the web server behind its web
// config (the Kubernetes API server calls webhooks over HTTPS only), privileges, graceful shutdown.

import type { FlagSpec, ParsedFlags } from '../common/flags.js';
import { createPlainServer } from '../common/httpserver.js';
import type { Logger } from '../common/logger.js';
import { listenThenDrop, resolveRunAsUser } from '../common/privileges.js';
import {
  DEBUG_SERVER_FLAG,
  PRIVILEGE_FLAGS,
  RUN_AS_USER_FLAG,
  runServerProgram,
  SERVER_FLAGS,
  type Stoppable,
} from '../common/program.js';
import { webConfigFiles } from '../common/webconfig.js';
import { admissionHandler } from './http.js';

const PROGRAM = 'ceems_k8s_admission_controller';
const DESCRIPTION = 'CEEMS Kubernetes Admission Controller.';

export const FLAGS: readonly FlagSpec[] = [
  {
    name: 'web.listen-address',
    type: 'string',
    repeatable: true,
    default: [':9000'],
    help: 'Addresses on which admission controller listens to requests.',
  },
  {
    name: 'web.config.file',
    type: 'string',
    default: '',
    help: 'Path to configuration file that can enable TLS or authentication. See: https://github.com/prometheus/exporter-toolkit/blob/master/docs/web-configuration.md',
  },
  RUN_AS_USER_FLAG,
  ...SERVER_FLAGS,
  DEBUG_SERVER_FLAG,
  ...PRIVILEGE_FLAGS,
];

async function startController(flags: ParsedFlags, log: Logger): Promise<Stoppable> {
  const runAs = resolveRunAsUser(flags.string('security.run-as-user'));
  const webConfigFile = flags.string('web.config.file');
  const server = await createPlainServer(
    {
      listenAddresses: flags.strings('web.listen-address'),
      webConfigFile: webConfigFile || undefined,
      logger: log,
    },
    admissionHandler(log),
  );
  // bound and configured: it only answers reviews from here on, with no capability; the web config (TLS
  // certificates rotated by cert-manager) is re-read when it changes
  return listenThenDrop({
    listen: () => server.listen(),
    close: () => server.close(),
    runAs,
    readFiles: webConfigFile ? webConfigFiles(webConfigFile) : [],
    dropEnabled: flags.bool('security.drop-privileges'),
    log,
  });
}

export async function main(argv: string[]): Promise<number> {
  return runServerProgram(
    { name: PROGRAM, description: DESCRIPTION, flags: FLAGS, start: startController },
    argv,
  );
}
