#!/bin/sh
# Run redis-server as the redis user in /data, reachable from the container network.
set -eu
if [ "${1:-}" = redis-server ]; then
  shift
  chown -R redis:redis /data
  exec runuser -u redis -- redis-server --protected-mode no --dir /data "$@"
fi
exec "$@"
