// The registry of named collectors (spec exporter.md §1.1). Each collector lives in its own file.

import type { CollectorDefinition } from '../collector.js';
import { cpu } from './cpu.js';
import { ipmiDcmi } from './ipmi_dcmi.js';

export const COLLECTORS: readonly CollectorDefinition[] = [cpu, ipmiDcmi];
