# Shared set-up for test/run and test/demo: packages, build, a scratch
# directory owned by an unprivileged user, TLS material, the Telnyx
# stand-in and a throwaway PostgreSQL cluster.  Sourced, not run.

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_MAJOR=${PG_MAJOR:-15}
# What the build and the tests need with any PostgreSQL ...
PACKAGES="libcurl4-openssl-dev libssl-dev pkg-config make gcc libipc-run-perl openssl python3 curl"
# ... and Debian's PostgreSQL, unless PG_CONFIG names another installation.
DEBIAN_PG_CONFIG=/usr/lib/postgresql/$PG_MAJOR/bin/pg_config
if [ -z "${PG_CONFIG:-}" ] || [ "$PG_CONFIG" = "$DEBIAN_PG_CONFIG" ]; then
	PACKAGES="postgresql-$PG_MAJOR postgresql-server-dev-$PG_MAJOR $PACKAGES"
fi
CLEANUP=()

log() { printf '== %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Install what is missing (as root), or say what to install.
need_packages() {
	local missing=()
	for p in $PACKAGES; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		die "missing packages: ${missing[*]} (install them with apt-get as root)"
	fi
	log "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null || die "apt-get update failed"
	apt-get install -y -qq "${missing[@]}" >/dev/null || die "apt-get install failed"
}

pg_setup_paths() {
	PG_CONFIG=${PG_CONFIG:-$DEBIAN_PG_CONFIG}
	[ -x "$PG_CONFIG" ] || die "no pg_config at $PG_CONFIG"
	PG_VERSION_STRING=$("$PG_CONFIG" --version)
	PGBIN=$("$PG_CONFIG" --bindir)
	PGXS_DIR=$(dirname "$(dirname "$(dirname "$("$PG_CONFIG" --pgxs)")")")
	PG_REGRESS="$PGXS_DIR/src/test/regress/pg_regress"
	PG_TAP_LIB="$PGXS_DIR/src/test/perl"
	export PG_CONFIG PGBIN PG_REGRESS
}

# pg_regress, and the TAP modules when "tap" is given: Debian's
# postgresql-server-dev package has them; a build from source installs
# them only when asked to.
need_test_tools() {
	[ -x "$PG_REGRESS" ] \
		|| die "no pg_regress at $PG_REGRESS (in PostgreSQL's source tree: make -C src/test/regress install)"
	[ "${1:-}" != tap ] || [ -f "$PG_TAP_LIB/PostgreSQL/Test/Cluster.pm" ] \
		|| die "no PostgreSQL::Test::Cluster under $PG_TAP_LIB (in PostgreSQL's source tree, configured with --enable-tap-tests: make -C src/test/perl install)"
}

# Build with warnings as errors and install.  Needs write access to the
# PostgreSQL installation (root on Debian).
build_install() {
	log "building and installing telnyx_orders"
	make -C "$TOP" -s clean PG_CONFIG="$PG_CONFIG" >/dev/null
	make -C "$TOP" -s -j"$(nproc)" WERROR=-Werror PG_CONFIG="$PG_CONFIG" || die "build failed"
	# into Debian's own directories only while test/package is not using them
	local lock=
	[ "$("$PG_CONFIG" --pkglibdir)" = "/usr/lib/postgresql/$PG_MAJOR/lib" ] &&
		lock=/run/lock/telnyx_orders-debian-install.lock
	${lock:+flock -w 1200 "$lock"} make -C "$TOP" -s install PG_CONFIG="$PG_CONFIG" >/dev/null || die "install failed"
}

# Run a command as the unprivileged user that owns the scratch directory:
# from the current directory if that user can enter it, else from the
# scratch directory.
as_user() {
	if [ "$(id -u)" -eq 0 ]; then
		(runuser -u "$RUN_USER" -- test -x "$PWD" || cd "${SCRATCH:-/}"
		 runuser -u "$RUN_USER" -- env PATH="$PATH" "$@")
	else
		"$@"
	fi
}

# A scratch directory the unprivileged user owns, holding copies of what
# the unprivileged steps read (the clone may sit where that user cannot).
make_scratch() {
	RUN_USER=${RUN_USER:-postgres}
	[ "$(id -u)" -eq 0 ] || RUN_USER=$(id -un)
	SCRATCH=$(mktemp -d /tmp/telnyx_orders.XXXXXX)
	log "scratch directory $SCRATCH (removed at the end)"
	CLEANUP+=("rm -rf '$SCRATCH'")
	# a stand-in of a TAP test that was stopped before its end
	CLEANUP+=("pkill -f '$SCRATCH/test/telnyx_standin.py' 2>/dev/null")
	cp -r "$TOP/sql" "$TOP/expected" "$TOP/test" "$TOP/README.md" "$TOP/docs" "$SCRATCH/"
	# the documentation's test compares the reference with the SQLSTATEs and
	# settings the sources define
	mkdir -p "$SCRATCH/src" && cp "$TOP"/src/*.[ch] "$SCRATCH/src/"
	mkdir -p "$SCRATCH/tls"
	[ "$(id -u)" -eq 0 ] && chown -R "$RUN_USER" "$SCRATCH"
	chmod 700 "$SCRATCH"
	export PATH="$SCRATCH/test:$PGBIN:$PATH"
}

# A CA, a server certificate for 127.0.0.1 and localhost signed by it,
# an unrelated CA that must not be trusted, and an Ed25519 key pair for
# webhook signatures.
make_tls() {
	local d="$SCRATCH/tls"
	as_user sh -c "
		cd '$d' &&
		openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj '/CN=telnyx_orders test CA' &&
		openssl req -x509 -newkey rsa:2048 -nodes -keyout other-ca.key -out other-ca.crt -days 2 -subj '/CN=untrusted CA' &&
		openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj '/CN=127.0.0.1' &&
		printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > server.ext &&
		openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 2 -extfile server.ext &&
		openssl req -newkey rsa:2048 -nodes -keyout wrong-name.key -out wrong-name.csr -subj '/CN=elsewhere.invalid' &&
		printf 'subjectAltName=DNS:elsewhere.invalid\n' > wrong-name.ext &&
		openssl x509 -req -in wrong-name.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out wrong-name.crt -days 2 -extfile wrong-name.ext &&
		openssl genpkey -algorithm ed25519 -out webhook.pem &&
		openssl pkey -in webhook.pem -pubout -outform DER | tail -c 32 | base64 > webhook.pub
	" >/dev/null 2>&1 || die "could not make TLS certificates and the webhook key"
	# the webhook signing key pair: the stand-in signs, the database checks
	TELNYX_TEST_WEBHOOK_PUBLIC_KEY=$(cat "$d/webhook.pub")
	export TELNYX_TEST_WEBHOOK_PUBLIC_KEY
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Start the stand-in; export its URLs and the key it accepts, and a file
# holding that key for the cluster (mode 0600, the unprivileged user's: the
# server reads it as that user).
start_standin() {
	local seconds=${1:-2}
	TELNYX_TEST_KEY="KEY$(openssl rand -hex 16)"
	as_user sh -c "exec python3 '$SCRATCH/test/telnyx_standin.py' \
		--cert '$SCRATCH/tls/server.crt' --key '$SCRATCH/tls/server.key' \
		--api-key '$TELNYX_TEST_KEY' --process-seconds $seconds \
		--webhook-key '$SCRATCH/tls/webhook.pem' \
		--wrong-name-cert '$SCRATCH/tls/wrong-name.crt' --wrong-name-key '$SCRATCH/tls/wrong-name.key' \
		--ports-file '$SCRATCH/standin.ports'" >"$SCRATCH/standin.log" 2>&1 &
	STANDIN_PID=$!
	CLEANUP+=("kill $STANDIN_PID 2>/dev/null")
	for _ in $(seq 100); do
		[ -f "$SCRATCH/standin.ports" ] && break
		sleep 0.1
	done
	[ -f "$SCRATCH/standin.ports" ] || die "the stand-in did not start: $(cat "$SCRATCH/standin.log")"
	local http https wrong pid
	# the stand-in itself, not the subshell that started it, is stopped at the end
	pid=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['pid'])" "$SCRATCH/standin.ports")
	CLEANUP+=("kill $pid 2>/dev/null")
	http=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['http'])" "$SCRATCH/standin.ports")
	https=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['https'])" "$SCRATCH/standin.ports")
	wrong=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['https_wrong_name'])" "$SCRATCH/standin.ports")
	export TELNYX_TEST_KEY
	export TELNYX_STANDIN_URL="http://127.0.0.1:$http"
	export TELNYX_TEST_HTTP_URL="http://127.0.0.1:$http/v2"
	export TELNYX_TEST_HTTPS_URL="https://127.0.0.1:$https/v2"
	export TELNYX_TEST_LOCALHOST_URL="https://localhost:$https/v2"
	# a certificate the CA signed for another host name
	export TELNYX_TEST_WRONG_NAME_URL="https://127.0.0.1:$wrong/v2"
	export TELNYX_TEST_CA="$SCRATCH/tls/ca.crt"
	export TELNYX_TEST_OTHER_CA="$SCRATCH/tls/other-ca.crt"
	export TELNYX_TEST_CLOSED_URL="https://127.0.0.1:$(free_port)/v2"
	TELNYX_TEST_KEY_FILE="$SCRATCH/tls/telnyx.key"
	as_user sh -c "umask 077 && printf '%s\\n' '$TELNYX_TEST_KEY' > '$TELNYX_TEST_KEY_FILE'" \
		|| die "could not write the key file"
	export TELNYX_TEST_KEY_FILE
}

# A throwaway cluster configured to order from the stand-in over TLS.
start_cluster() {
	PGDATA="$SCRATCH/data"
	PGPORT=$(free_port)
	PGHOST="$SCRATCH"
	export PGDATA PGPORT PGHOST
	as_user "$PGBIN/initdb" -D "$PGDATA" -A trust --no-sync >"$SCRATCH/initdb.log" 2>&1 \
		|| die "initdb failed: $(tail -5 "$SCRATCH/initdb.log")"
	as_user sh -c "cat >> '$PGDATA/postgresql.conf'" <<CONF
listen_addresses = ''
port = $PGPORT
unix_socket_directories = '$SCRATCH'
fsync = off
shared_preload_libraries = 'telnyx_orders'
max_worker_processes = 16
max_prepared_transactions = 4
telnyx.api_key_file = '$TELNYX_TEST_KEY_FILE'
telnyx.api_base_url = '$TELNYX_TEST_HTTPS_URL'
telnyx.ca_file = '$TELNYX_TEST_CA'
CONF
	as_user "$PGBIN/pg_ctl" -D "$PGDATA" -l "$SCRATCH/postgres.log" -w start >/dev/null \
		|| die "PostgreSQL did not start: $(tail -5 "$SCRATCH/postgres.log")"
	CLEANUP+=("as_user '$PGBIN/pg_ctl' -D '$PGDATA' -m immediate stop >/dev/null 2>&1")
}

# Copy a failure's evidence (a file or directory) where it outlives the
# scratch directory: test/output/NAME in the tree, or a new directory in
# /tmp when the tree is not writable by the user who runs the script.
# Prints where it went.
keep_evidence() {
	local src=$1 name=$2 keep=$TOP/test/output
	mkdir -p "$keep" 2>/dev/null && [ -w "$keep" ] || keep=$(mktemp -d /tmp/telnyx_orders-output.XXXXXX)
	rm -rf "${keep:?}/$name" && cp -r "$src" "$keep/$name" && echo "$keep/$name"
}

# Stop what the script started, now, and say whether anything it started
# is still running (a process whose command line names the scratch
# directory: servers, stand-ins, TAP tests' clusters).  Returns 1, listing
# them, if something outlived the cleanup by 10 seconds.
stop_all_and_check() {
	local scratch=${SCRATCH:-}
	cleanup
	CLEANUP=()
	[ -n "$scratch" ] || return 0
	for _ in $(seq 100); do
		pgrep -f "$scratch" >/dev/null || return 0
		sleep 0.1
	done
	echo "processes left behind:"
	pgrep -af "$scratch"
	return 1
}

cleanup() {
	local i
	for ((i = ${#CLEANUP[@]} - 1; i >= 0; i--)); do
		eval "${CLEANUP[$i]}" || true
	done
}
trap cleanup EXIT
