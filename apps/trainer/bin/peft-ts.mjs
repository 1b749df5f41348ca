#!/usr/bin/env node
// Runs the TypeScript CLI directly through tsx, so the repo needs no build step before use.
import { register } from 'tsx/esm/api';

register();
await import('../src/bin.ts');
