#!/usr/bin/env bash
# A throwaway OpenSSH server on loopback for the Git-over-SSH tests.
#
#   sshd.sh install     install Debian's openssh-server when /usr/sbin/sshd is missing (as root)
#   sshd.sh prepare DIR make a host key, a client key (DIR/client_key) and DIR/sshd_config for a
#                       free 127.0.0.1 port and the current user; prints the port. Tests run
#                       `/usr/sbin/sshd -D -f DIR/sshd_config` themselves and stop it.
#   sshd.sh start DIR   prepare, then start sshd in the background (manual use); prints the port
#   sshd.sh stop DIR    stop the sshd started in DIR
set -euo pipefail

SSHD=/usr/sbin/sshd
die() { echo "sshd.sh: $*" >&2; exit 1; }

install() {
  [ -x "$SSHD" ] && return 0
  [ "$(id -u)" = 0 ] || die "$SSHD is missing; install Debian's openssh-server (needs root)"
  echo "sshd.sh: installing openssh-server" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server) >&2 \
    || die "apt-get install openssh-server failed"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

prepare() {
  local dir="$1"; [ -n "$dir" ] || die "usage: sshd.sh prepare DIR"
  install
  mkdir -p "$dir"; dir="$(cd "$dir" && pwd)"
  [ "$(id -u)" = 0 ] && mkdir -p /run/sshd
  ssh-keygen -q -t ed25519 -N '' -C test-host -f "$dir/host_key"
  ssh-keygen -q -t ed25519 -N '' -C test-client -f "$dir/client_key"
  cp "$dir/client_key.pub" "$dir/authorized_keys"
  local port; port="$(free_port)"
  cat > "$dir/sshd_config" <<CONF
Port $port
ListenAddress 127.0.0.1
HostKey $dir/host_key
AuthorizedKeysFile $dir/authorized_keys
PidFile $dir/sshd.pid
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
AllowUsers $(id -un)
LogLevel VERBOSE
CONF
  echo "$port"
}

start() {
  local dir="$1"; [ -n "$dir" ] || die "usage: sshd.sh start DIR"
  local port; port="$(prepare "$dir")"; dir="$(cd "$dir" && pwd)"
  "$SSHD" -f "$dir/sshd_config" -E "$dir/sshd.log" || { cat "$dir/sshd.log" >&2; die "sshd did not start"; }
  for _ in $(seq 1 100); do
    if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$port),1)" 2>/dev/null; then
      echo "$port"; return 0
    fi
    sleep 0.1
  done
  cat "$dir/sshd.log" >&2
  die "sshd not listening on 127.0.0.1:$port"
}

stop() {
  local dir="$1"
  [ -f "$dir/sshd.pid" ] && kill "$(cat "$dir/sshd.pid")" 2>/dev/null || true
}

cmd="${1:-}"; shift || true
case "$cmd" in
  install) install ;;
  prepare) prepare "$@" ;;
  start) start "$@" ;;
  stop) stop "$@" ;;
  *) die "usage: sshd.sh install|prepare DIR|start DIR|stop DIR" ;;
esac
