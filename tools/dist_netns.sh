#!/bin/sh
# Two "hosts" on one machine for trying mmfuse.dist across machines: two network namespaces
# joined by a veth pair (10.77.0.1 and 10.77.0.2), and a stand-in for ssh that starts Open
# MPI's daemon in the namespace of the address it is given. Needs root (ip netns).
#   sh tools/dist_netns.sh up                    create the namespaces mmA, mmB and the link
#   sh tools/dist_netns.sh run CMD ARGS...       mpirun -np 2, one process per "host", TCP only
#   sh tools/dist_netns.sh down                  remove them
# The processes share the file system (as hosts with a shared data directory do), not the
# network: Open MPI's shared-memory transport is left out, so every byte goes over TCP.
set -eu
DIR=${TMPDIR:-/tmp}/mmfuse-netns
case ${1:-} in
up)
  ip netns add mmA
  ip netns add mmB
  ip link add vmA type veth peer name vmB
  ip link set vmA netns mmA
  ip link set vmB netns mmB
  ip -n mmA addr add 10.77.0.1/24 dev vmA
  ip -n mmB addr add 10.77.0.2/24 dev vmB
  for ns in mmA mmB; do
    ip -n $ns link set lo up
  done
  ip -n mmA link set vmA up
  ip -n mmB link set vmB up
  mkdir -p "$DIR"
  printf '10.77.0.1 slots=1\n10.77.0.2 slots=1\n' >"$DIR/hosts"
  cat >"$DIR/rsh" <<'RSH'
#!/bin/sh
# in place of ssh: the command in the network namespace of the "host" address
while [ "${1#-}" != "$1" ]; do shift; done
host=$1
shift
case $host in
10.77.0.1) ns=mmA ;;
10.77.0.2) ns=mmB ;;
*) echo "dist_netns.sh: unknown host $host" >&2; exit 255 ;;
esac
exec ip netns exec "$ns" sh -c "$*"
RSH
  chmod +x "$DIR/rsh"
  ;;
run)
  shift
  exec ip netns exec mmA mpirun --allow-run-as-root -np 2 --hostfile "$DIR/hosts" \
    --mca plm_rsh_agent "$DIR/rsh" --mca btl tcp,self \
    --mca btl_tcp_if_include 10.77.0.0/24 --mca oob_tcp_if_include 10.77.0.0/24 \
    -x LUA_CPATH -x MMFUSE_CPATH -wdir "$(pwd)" "$@"
  ;;
down)
  ip netns del mmA 2>/dev/null || true
  ip netns del mmB 2>/dev/null || true
  rm -rf "$DIR"
  ;;
*)
  echo "usage: sh tools/dist_netns.sh up | run CMD ARGS... | down" >&2
  exit 2
  ;;
esac
