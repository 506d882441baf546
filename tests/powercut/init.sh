#!/bin/sh
# The guest's init after /sbin/powercut-init (from build_image.sh) mounted the tools disk at
# /opt/queuectl: sets up /run and the loopback, starts the guest's own PostgreSQL when the round
# uses it, then runs guest.ts, which prints the "PC …" lines the host reads on the serial console.
# Kernel command line: pc.db=sqlite|postgres pc.sync=on|off pc.round=K pc.slow=S.
export PATH=/opt/queuectl/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8
export DENO_DIR=/opt/queuectl/deno_dir NO_COLOR=1
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
ip link set lo up
PC_db=sqlite PC_sync=on PC_round=0
for w in $(cat /proc/cmdline); do
  case "$w" in
    pc.db=*) PC_db=${w#pc.db=} ;;
    pc.sync=*) PC_sync=${w#pc.sync=} ;;
    pc.round=*) PC_round=${w#pc.round=} ;;
    pc.slow=*) PC_slow=${w#pc.slow=} ;;
  esac
done
export PC_db PC_sync PC_round PC_slow
if [ "$PC_db" = postgres ]; then
  ver=$(ls /etc/postgresql | head -1)
  export PATH="$PATH:/usr/lib/postgresql/$ver/bin" # pg_amcheck
  mkdir -p /run/postgresql && chown postgres:postgres /run/postgresql && chmod 2775 /run/postgresql
  # No postmaster runs at boot: a lock file left by the cut could name a live PID of this boot.
  rm -f "/var/lib/postgresql/$ver/main/postmaster.pid"
  # pg_createcluster picks the first port free on the machine that built the image.
  sed -i 's/^port = .*/port = 5432/' "/etc/postgresql/$ver/main/postgresql.conf"
  opts=""
  # The negative control: commits return before their WAL is flushed, and the server never
  # fsyncs, so acknowledged enqueues can be lost. (synchronous_commit=off alone still has the WAL
  # writer flush within 0.6 s, sooner than a slow guest prints an ack.)
  [ "$PC_sync" = off ] && opts="-c synchronous_commit=off -c fsync=off"
  pg_ctlcluster --skip-systemctl-redirect "$ver" main start -- -o "$opts" -t 600 >/dev/console 2>&1
  if ! pg_isready -q -h 127.0.0.1 -t 600; then
    echo "PC FATAL postgres did not start: $(tail -3 /var/log/postgresql/*.log | tr '\n' ' ')"
  fi
  export PC_pgver="$ver"
fi
cd /opt/queuectl/project
deno run --quiet --allow-read --allow-write --allow-env --allow-run --allow-sys=hostname \
  --allow-net=127.0.0.1:5432 tests/powercut/guest.ts
echo "PC EXIT $?"
while true; do sleep 3600; done
