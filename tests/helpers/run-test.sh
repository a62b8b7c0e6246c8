#!/bin/sh
# The automake LOG_COMPILER: unit tests run directly; every other test gets its own throwaway
# PostgreSQL from with-postgres.sh (shell tests are run with bash).
here=$(cd "$(dirname "$0")" && pwd)
case "$1" in
*/unit/*) exec "$@" ;;
*.sh) exec "$here/with-postgres.sh" bash "$@" ;;
*) exec "$here/with-postgres.sh" "$@" ;;
esac
