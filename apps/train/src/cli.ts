#!/usr/bin/env node
import { runCli } from './program.js';

const code = await runCli(process.argv.slice(2));
// After a failure, workers or sockets of the run may still be open (prefetch, FSDP peers): exit, never hang.
if (code !== 0) process.exit(code);
process.exitCode = code;
