#!/bin/sh
# Install the Debian packages named as arguments, only those missing.
missing=""
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "mmfuse: missing Debian packages:$missing" >&2
  echo "mmfuse: run as root (or: sudo apt-get install$missing)" >&2
  exit 1
fi
echo "mmfuse: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null || { echo "mmfuse: apt-get update failed" >&2; exit 1; }
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null || { echo "mmfuse: apt-get install$missing failed" >&2; exit 1; }
