# Shared shell helpers for scripts/*.sh: logging, bounded waits, apt.
# shellcheck shell=bash

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# bounded SECONDS CMD...: every external wait has a ceiling.
bounded() { timeout --kill-after=10 "$@"; }

need_root() {
	[ "$(id -u)" = 0 ] || die "$1 needs root (it installs Debian packages with apt-get); run it as root or with sudo"
}

APT_OPTS=(-o Acquire::Retries=2 -o Acquire::http::Timeout=30 -o Acquire::https::Timeout=30
	  -o DPkg::Lock::Timeout=300 -o APT::Sandbox::User=root)
# Extra apt options from the environment (the tests use it to simulate an unreachable mirror).
# shellcheck disable=SC2206
[ -n "${IVSHMEM_APT_EXTRA_OPTS:-}" ] && APT_OPTS+=($IVSHMEM_APT_EXTRA_OPTS)

# Refresh the package index once per run, failing clearly when the mirror is unreachable.
apt_index_ready() {
	[ -n "${IVSHMEM_APT_UPDATED:-}" ] && return 0
	need_root "fetching packages"
	log "apt-get update"
	local err
	err=$(mktemp)
	local rc=0
	bounded 600 apt-get "${APT_OPTS[@]}" update >/dev/null 2>"$err" || rc=$?
	# Only Debian's own mirror matters; a broken third-party source is a warning.
	local debian_errors
	debian_errors=$(grep -E '^(E|W|Err):.*(Failed to fetch|Unable to connect|Could not resolve|Temporary failure).*debian' "$err" | head -n 5 || true)
	if [ $rc != 0 ] || [ -n "$debian_errors" ]; then
		local why
		why=${debian_errors:-$(grep -E '^(E|W|Err):' "$err" | head -n 5 || true)}
		rm -f "$err"
		die "cannot reach the Debian package mirror (apt-get update failed or timed out, exit $rc):
${why:-  (no message; is the network up?)}
  check /etc/apt/sources.list* and the network, then run this again"
	fi
	grep -E '^(E|W|Err):' "$err" | sed 's/^/warning: apt-get update: /' >&2 || true
	rm -f "$err"
	export IVSHMEM_APT_UPDATED=1
}

# apt_install PKG...: install what is missing, naming any package that cannot be had.
apt_install() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	apt_index_ready
	for p in "${missing[@]}"; do
		apt-cache show "$p" >/dev/null 2>&1 ||
			die "package '$p' is not available from the configured Debian mirror (apt-cache show $p found nothing)"
	done
	log "apt-get install ${missing[*]}"
	local err
	err=$(mktemp)
	if ! DEBIAN_FRONTEND=noninteractive bounded 1800 apt-get "${APT_OPTS[@]}" install -y -q \
		--no-install-recommends "${missing[@]}" >/dev/null 2>"$err"; then
		local why
		why=$(grep -E '^(E|Err):' "$err" | head -n 5 || true)
		rm -f "$err"
		die "apt-get install ${missing[*]} failed:
${why:-  (see apt-get output)}"
	fi
	rm -f "$err"
}
