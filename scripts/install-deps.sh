#!/usr/bin/env bash
# Installs the Debian packages the build needs (libsystemd-dev, pkg-config for the journald source)
# and the ones the tests drive for real (firewalls in network namespaces, rsyslog,
# logrotate, ulogd2 holding an NFLOG group, ping, a real systemd that systemd-nspawn boots in a root
# file system mmdebstrap builds) when any is missing. Needs root for apt-get; without root it only says what is missing.
set -euo pipefail

# command:package pairs; a package is installed when its command is missing.
needs=(ip:iproute2 iptables:iptables nft:nftables rsyslogd:rsyslog logrotate:logrotate pkg-config:pkg-config
  journalctl:systemd /lib/systemd/systemd-journald:systemd /lib/systemd/systemd-journal-remote:systemd-journal-remote
  kubectl:kubectl systemd-analyze:systemd ulogd:ulogd2 ping:iputils-ping
  systemd-nspawn:systemd-container mmdebstrap:mmdebstrap)
missing=()
for need in "${needs[@]}"; do
  command -v "${need%%:*}" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "${need%%:*}" >/dev/null 2>&1 \
    || missing+=("${need##*:}")
done
[ -f /usr/include/systemd/sd-journal.h ] || missing+=(libsystemd-dev)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: not root; missing packages (tests that need them will skip): ${missing[*]}" >&2
  exit 0
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq || echo "install-deps: apt-get update failed; trying the installed lists" >&2
# One package at a time: a package this machine's sources lack must not stop the others. What stays
# missing is named here, and the tests that need it say so (and fail in CI).
for package in $(printf '%s\n' "${missing[@]}" | sort -u); do
  apt-get install -y -qq --no-install-recommends "$package" >/dev/null \
    || echo "install-deps: could not install $package" >&2
done
