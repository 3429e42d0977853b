#!/usr/bin/env node
// The file npm and pnpm link as `patch-backup`. It is committed, not built, so the link can be
// made by the first `pnpm install` of a fresh clone, before any build (workspace packages depend
// on this one); the command itself is the build's dist/bin.js.
import '../dist/bin.js'
