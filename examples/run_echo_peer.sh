#!/bin/bash
# Runs examples/echo_peer.c both ways on the host: "serve" and "ask" as two peers of a real
# ivshmem-server (in a guest, "ask" would use /dev/ivshmem0). Leaves nothing behind.
# Usage: run_echo_peer.sh ECHO_PEER IVSHMEM_SERVER IVSHMEM
set -u
echo_peer=$1 server=$2 cli=$3
dir=$(mktemp -d)
spid= epid=
cleanup() {
	[ -n "$epid" ] && kill "$epid" 2>/dev/null && wait "$epid" 2>/dev/null
	[ -n "$spid" ] && kill "$spid" 2>/dev/null && wait "$spid" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT
"$server" -F --memfd -l 1M -n 1 -S "$dir/sock" 2>"$dir/server.log" &
spid=$!
# The socket exists from bind() on, before listen(): wait for the server's own word (bounded).
for _ in $(seq 200); do grep -q "listening on" "$dir/server.log" && break; sleep 0.05; done
grep -q "listening on" "$dir/server.log" || { echo "server did not start"; cat "$dir/server.log"; exit 1; }
"$cli" format "server:$dir/sock" --name echo --channel echo >/dev/null || exit 1
"$echo_peer" serve "server:$dir/sock" 1 &
epid=$!
out=$(timeout 60 "$echo_peer" ask "server:$dir/sock" hello) || { echo "ask failed"; exit 1; }
[ "$out" = "echo: hello" ] || { echo "ask got '$out'"; exit 1; }
timeout 60 tail --pid="$epid" -f /dev/null
wait "$epid"; rc=$?
epid=
[ "$rc" = 0 ] || { echo "serve exited $rc"; exit 1; }
echo "echo_peer: ok"
