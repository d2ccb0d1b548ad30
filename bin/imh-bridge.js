#!/usr/bin/env node
// Runs the TypeScript CLI directly (tsx), so the CLI and the Worker share one source tree.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli.ts');
