// Paths of the GPU fixtures shared by the GPU and k8s tests.

import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

export const GPU_FIXTURES = resolve(import.meta.dirname, '../../../fixtures/gpu');
export const fixture = (rel: string): string => resolve(GPU_FIXTURES, rel);
export const readFixture = (rel: string): string => readFileSync(fixture(rel), 'utf8');
