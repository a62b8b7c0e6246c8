# The Kubernetes API simulator for shell tests; source it after lib.sh.
#   start_kubesim [kubesim args...]  TLS (certificates under $T) and a random token; exports
#                                    KUBESIM_URL, KUBESIM_TOKEN, KUBESIM_CA, writes $T/kubeconfig
#   kubesim_ctl PATH [JSON]          the control API: POST (GET for stats); PATH is /_sim/x or x
#   kube METHOD PATH [curl args...]  curl against the simulator; the status is then $(kcode)
# The simulator stops with the daemon (finish, or lib.sh's EXIT trap).
: "${top_srcdir:?}" "${top_builddir:?}"
: "${KUBESIM:=$top_builddir/tests/kubesim/kubesim}"
KUBESIM_PID=

start_kubesim() {
	local certs="$T/kubesim-certs" port= i=0
	if [ ! -f "$certs/server.crt" ]; then
		sh "$top_srcdir/tests/helpers/make-certs.sh" "$certs" || return 1
	fi
	KUBESIM_TOKEN=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
	rm -f "$T/kubesim.port"
	"$KUBESIM" --listen 127.0.0.1:0 --port-file "$T/kubesim.port" --tls-cert "$certs/server.crt" \
		--tls-key "$certs/server.key" --token "$KUBESIM_TOKEN" --exit-with-parent "$@" \
		>>"$T/kubesim.log" 2>&1 &
	KUBESIM_PID=$!
	while [ ! -s "$T/kubesim.port" ]; do
		if ! kill -0 "$KUBESIM_PID" 2>/dev/null || [ $i -ge 100 ]; then
			echo "# kubesim did not start"
			tail -n 20 "$T/kubesim.log"
			KUBESIM_PID=
			return 1
		fi
		sleep 0.1
		i=$((i + 1))
	done
	port=$(cat "$T/kubesim.port")
	export KUBESIM_URL="https://127.0.0.1:$port" KUBESIM_TOKEN KUBESIM_CA="$certs/ca.crt"
	(
		umask 077
		cat >"$T/kubeconfig" <<-EOF
			apiVersion: v1
			kind: Config
			clusters:
			- name: sim
			  cluster:
			    server: $KUBESIM_URL
			    certificate-authority-data: $(base64 -w0 <"$KUBESIM_CA")
			users:
			- name: sim
			  user:
			    token: $KUBESIM_TOKEN
			contexts:
			- name: sim
			  context:
			    cluster: sim
			    user: sim
			current-context: sim
		EOF
	)
}

stop_kubesim() {
	[ -n "$KUBESIM_PID" ] || return 0
	kill -TERM "$KUBESIM_PID" 2>/dev/null
	wait "$KUBESIM_PID" 2>/dev/null
	KUBESIM_STATUS=$?
	KUBESIM_PID=
}

kubesim_ctl() {
	local path=$1 body=${2:-'{}'} method=POST
	case "$path" in
	/*) ;;
	*) path="/_sim/$path" ;;
	esac
	[ "$path" = /_sim/stats ] && { method=GET; body=; }
	curl -sS --cacert "$KUBESIM_CA" -H "Authorization: Bearer $KUBESIM_TOKEN" -X "$method" \
		-H 'Content-Type: application/json' ${body:+--data "$body"} "$KUBESIM_URL$path"
}

kube() {
	local method=$1 path=$2
	shift 2
	curl -sS -o "$T/kbody" -w '%{http_code}' --cacert "$KUBESIM_CA" \
		-H "Authorization: Bearer $KUBESIM_TOKEN" -X "$method" "$KUBESIM_URL$path" "$@" \
		>"$T/kcode"
	cat "$T/kbody"
}
kcode() { cat "$T/kcode"; }

# lib.sh stops the daemon in finish and in its EXIT trap: stop the simulator there too.
eval "_kubesim_lib_stop_daemon() $(declare -f stop_daemon | tail -n +2)"
stop_daemon() {
	stop_kubesim
	_kubesim_lib_stop_daemon "$@"
}
