// Builds the resource manager of each configured cluster (spec §3.2, §11).

import type { ClusterConfig } from '../config.js';
import { K8sManager } from './k8s.js';
import { OpenstackManager } from './openstack.js';
import { SlurmManager } from './slurm.js';
import type { ManagerContext, ResourceManager } from './types.js';

export async function createManager(cluster: ClusterConfig, ctx: ManagerContext): Promise<ResourceManager> {
  switch (cluster.manager) {
    case 'slurm':
      if (cluster.web?.url)
        ctx.logger.warn(
          { cluster_id: cluster.id },
          'SLURM web.url (slurmrestd) is not implemented; using the CLI',
        );
      return SlurmManager.create(cluster, ctx);
    case 'openstack':
      return OpenstackManager.create(cluster, ctx);
    case 'k8s':
      return K8sManager.create(cluster, ctx);
  }
}
