#!/usr/bin/env node
// Runs the TypeScript CLI directly through tsx, so the repo needs no build step before use (the published
// package's bin is the built dist/bin.js instead).
import { register } from 'tsx/esm/api';

register();
await import('../src/bin.ts');
