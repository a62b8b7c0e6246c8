#!/bin/sh
# Install what building, running and testing shepherd needs on Debian 12 (bookworm).
# Run as root, or as a user with sudo.
set -eu
pkgs="build-essential autoconf automake autoconf-archive libtool pkg-config
libpq-dev libjansson-dev libyaml-dev libcurl4-openssl-dev libreadline-dev libssl-dev
libmicrohttpd-dev libgnutls28-dev zlib1g-dev libcriterion-dev
postgresql postgresql-client util-linux passwd
curl jq openssl python3 iproute2 procps clang clang-format
gettext locales groff-base man-db zsh fish"
# gettext: xgettext, msgfmt and friends, for 'make update-pot', installing catalogues and the
# translation test (t0003); locales: the locale definitions t0003 builds a locale from;
# groff-base and man-db: the man pages are checked by rendering them (t0002); zsh and fish: the
# generated completion scripts for them are run against the daemon (t0640).
# The tests need a kubectl: Debian's, unless one is installed already (another package's
# /usr/bin/kubectl would collide with it).
command -v kubectl >/dev/null 2>&1 || pkgs="$pkgs kubernetes-client"
if [ "$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi
missing=
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "installing:$missing"
	$sudo apt-get update -qq
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing
fi
# The postgresql package starts a cluster of its own; shepherd never uses it (the daemon runs
# its own server, the tests throwaway ones), so it is left as Debian configured it.
