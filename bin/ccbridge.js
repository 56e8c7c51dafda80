#!/usr/bin/env node
// The ccbridge command: runs cmd/ccbridge.ts through tsx.
import { register } from 'tsx/esm/api';

register();
await import('../cmd/ccbridge.ts');
