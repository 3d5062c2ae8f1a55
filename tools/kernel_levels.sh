#!/bin/sh
# Print the kernel levels (csrc/core/cpu.h) this CPU runs, lowest first, one per line:
# "generic", then "avx2" and "avx512" where the CPU has them. MMFUSE_CPATH selects the build.
cd "$(dirname "$0")/.." || exit 2
MMFUSE_KERNEL= ${LUA:-lua5.4} -e '
package.cpath = (os.getenv("MMFUSE_CPATH") or "./build/?.so") .. ";" .. package.cpath
local best = require("mmfuse.core").cpu().hw_best
for _, l in ipairs { "generic", "avx2", "avx512" } do
  print(l)
  if l == best then break end
end'
