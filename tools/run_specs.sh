#!/bin/sh
# Run every busted spec under lua5.4 and close with "N passed, N failed".
# MMFUSE_CPATH selects the build (./build/?.so or ./build-asan/?.so).
# Extra arguments go to busted (e.g. a single spec file).
cd "$(dirname "$0")/.." || exit 2
LUA=${LUA:-lua5.4}
CPATH_DIR=${MMFUSE_CPATH:-./build/?.so}
if [ $# -eq 0 ]; then set -- spec; fi
exec $LUA /usr/bin/busted --lpath='./lua/?.lua;./lua/?/init.lua;./spec/support/?.lua' \
  --cpath="$CPATH_DIR" -o ./spec/support/summary.lua --pattern=_spec "$@"
