#!/bin/sh
# Run every busted spec under lua5.4 and close with "N passed, N failed".
# MMFUSE_CPATH selects the build (./build/?.so or ./build-asan/?.so); the Lua
# path, the spec pattern and the spec folder come from .busted (the one place
# they are written; plain `lua5.4 /usr/bin/busted` reads it too).
# Extra arguments go to busted (e.g. a single spec file).
cd "$(dirname "$0")/.." || exit 2
LUA=${LUA:-lua5.4}
exec $LUA /usr/bin/busted --cpath="${MMFUSE_CPATH:-./build/?.so}" -o ./spec/support/summary.lua "$@"
