#!/usr/bin/env bash
# fuzz/run.sh - builds the libFuzzer targets and runs each for a while.
#
#   FUZZ_SECONDS=60       time per target (libFuzzer -max_total_time)
#   FUZZ_BUILD_DIR=DIR    build directory (default: <source>/build-fuzz)
#   FUZZ_TARGETS="..."    subset of: fuzz_frame fuzz_config fuzz_jtext fuzz_drmaa
#   FUZZ_ARGS="..."       extra libFuzzer options (e.g. -jobs=2)
#   FUZZ_PARALLEL=N       targets run at once (default: the number of cores)
#
# The corpus grows in $FUZZ_BUILD_DIR/fuzz/corpus/<target> across runs; a
# small seed corpus of valid frames and configurations is written afresh
# each run. A crash, leak or timeout leaves its input in
# $FUZZ_BUILD_DIR/fuzz/artifacts/<target>/ and makes this script exit 1;
# reproduce it with: $FUZZ_BUILD_DIR/fuzz/<target> ARTIFACT
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$(dirname "$here")
build=${FUZZ_BUILD_DIR:-$src/build-fuzz}
secs=${FUZZ_SECONDS:-60}
targets=${FUZZ_TARGETS:-fuzz_frame fuzz_config fuzz_jtext fuzz_drmaa}

command -v clang >/dev/null || { echo "run.sh: clang is needed (libFuzzer)" >&2; exit 2; }

if [ ! -f "$build/build.ninja" ]; then
	CC=clang meson setup "$build" "$src" -Dfuzz=true
elif ! grep -q "fuzz_frame" "$build/build.ninja"; then
	meson configure "$build" -Dfuzz=true
fi
ninja_targets=()
for t in $targets; do ninja_targets+=("fuzz/$t"); done
ninja -C "$build" "${ninja_targets[@]}"

work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-fuzz-run.XXXXXX")
trap 'rm -rf "$work"' EXIT

# ---- seed corpus ----

# shellcheck disable=SC2059 # the formats are built from octal escapes
be32() {
	local n=$1
	printf "\\$(printf %03o $(((n >> 24) & 255)))\\$(printf %03o $(((n >> 16) & 255)))"
	printf "\\$(printf %03o $(((n >> 8) & 255)))\\$(printf %03o $((n & 255)))"
}
# frame JSON [BINARY]: one request frame
frame() {
	local j=$1 b=${2:-} jl bl
	jl=$(printf %s "$j" | LC_ALL=C wc -c)
	bl=$(printf %s "$b" | LC_ALL=C wc -c)
	printf 'FRY1\000\001\000\001'
	be32 $((jl + bl))
	be32 "$jl"
	printf %s "$j$b"
}

seeds_frame() {
	local d=$1 i=0
	local S='{"op":"submit","jobs":[{"argv":["true"],"working_directory":"/"}]}'
	local full='{"op":"submit","jobs":[{"argv":["sh","-c","echo hi"],"name":"n","working_directory":"/tmp","stdin_path":"/dev/null","stdout_path":"out","stderr_path":"/tmp/err","join_stderrout":false,"env":["A=1","B_2=x"],"referenced_input_files":["/"],"referenced_output_files":["o"],"disposal_timeout_hours":1,"cpus":1,"memory_mb":64,"walltime_s":10,"hold":true,"submission_key":"k1"}]}'
	local reqs=(
		'{"op":"hello","version":2,"client":"seed"}'
		'{"op":"ping"}'
		"$S"
		"$full"
		'{"op":"submit","jobs":[{"argv":["a"],"working_directory":"/"},{"argv":["b"],"working_directory":"/","cpus":2}]}'
		'{"op":"submit","jobs":[{"argv":["a"],"working_directory":"/","queue":"q","native_specification":"x"}]}'
		'{"op":"submit","jobs":[{"argv":["a\u0000ff"],"name":"r\u0000e9s","env":["X=\u000080"],"working_directory":"/","hold":true}]}'
		'{"op":"status","id":1}'
		'{"op":"info","id":1}'
		'{"op":"jobs"}'
		'{"op":"jobs","state":"queued_active","detail":true}'
		'{"op":"wait","ids":[1],"timeout":0}'
		'{"op":"wait","ids":[1,2],"timeout":-1}'
		'{"op":"control","id":1,"action":"stop"}'
		'{"op":"control","id":1,"action":"kill"}'
		'{"op":"dispose","id":1}'
		'{"op":"read","id":1,"stream":"stdout","offset":0,"max":100}'
		'{"op":"shutdown"}'
		'{"op":"nope","x":[1,2.5,null,true,"\u00e9"]}'
		'{"op":"transfer_send","key":"k","local_paths":["/x/a"],"disposal_hours":1,"files":[{"path":"a","type":"dir","mode":493,"mtime_ns":0},{"path":"a/b.txt","type":"file","size":3,"mode":420,"mtime_ns":1,"hash":"0123456789abcdef0123456789abcdef"}]}'
		'{"op":"transfer_put","id":1,"file":1,"offset":0}'
		'{"op":"transfer_send","key":"k2","local_paths":["/x/c"],"files":[{"path":"c","type":"file","size":3,"mode":420,"mtime_ns":1}]}'
		'{"op":"transfer_put","id":2,"file":0,"offset":3,"hash":"0123456789abcdef0123456789abcdef","copied_from":1,"prefix_hash":"0123456789abcdef0123456789abcdef"}'
		'{"op":"transfer_put","id":2,"file":0,"offset":0,"hash":"0123456789ABCDEF0123456789abcdef","copied_from":-1}'
		'{"op":"transfer_register","key":"r","local_paths":["/x/o"],"name":"o"}'
		'{"op":"transfer_manifest","server_path":"/x/t1/o"}'
		'{"op":"transfer_get","server_path":"/x/t1/a","file":1,"offset":0,"length":3}'
		'{"op":"transfer_info","server_path":"/x/../t1/a"}'
		'{"op":"transfers"}'
		'{"op":"transfer_cancel","server_path":"/x/t1/a","force":true}'
		'{"op":"transfer_retrieved","server_path":"/x/t1/a"}'
	)
	for r in "${reqs[@]}"; do
		frame "$r" >"$d/seed-$i"
		i=$((i + 1))
	done
	# stateful sequences: ids are relative to the input (see fuzz_frame.c)
	{
		frame '{"op":"hello","version":2,"client":"seed"}'
		frame "$S"
		frame '{"op":"status","id":1}'
		frame '{"op":"control","id":1,"action":"hold"}'
		frame '{"op":"control","id":1,"action":"release"}'
		frame '{"op":"control","id":1,"action":"stop"}'
		frame '{"op":"control","id":1,"action":"restart"}'
		frame '{"op":"info","id":1}'
		frame '{"op":"read","id":1,"stream":"stderr"}'
		frame '{"op":"wait","ids":[1],"timeout":5}'
		frame '{"op":"control","id":1,"action":"kill"}'
		frame '{"op":"wait","ids":[1]}'
		frame '{"op":"jobs","detail":true}'
		frame '{"op":"control","id":1,"action":"hold"}'
		frame '{"op":"dispose","id":1}'
		frame '{"op":"status","id":1}'
	} >"$d/seq-1"
	{
		frame "$full"
		frame "$full"
		frame '{"op":"dispose","id":1}'
		frame "$full"
		frame '{"op":"jobs","state":"user_on_hold"}'
	} >"$d/seq-2"
	# regression: an error message cut inside a UTF-8 character by the
	# engine's message buffer must still give a reply
	frame "{\"op\":\"ping\",\"a$(for _ in $(seq 600); do printf '\303\251'; done)\":1}" >"$d/regress-utf8-message"
	{
		frame '{"op":"ping"}' 'binary part'
		printf 'FRY1\000\002\000\001\000\000\000\002\000\000\000\002{}'
	} >"$d/seq-3"
}

seeds_config() {
	local d=$1
	printf '[local]\nslots = 4\n' >"$d/c1"
	printf '; comment\n[local]\nscheduler = local\nslots = 0\n\n[big]\nscheduler = slurm\nhost = hpc.example.org\nport = 22\nlogin = me\nqueue = short\ntransfer_root = /scratch/me\nremote_command = ferry\nssh_options = -o BatchMode=yes\npoll_interval = 2.5\npath_translation_files = a{/t}\n  b{/u}\n' >"$d/c2"
	printf '[grid]\nscheduler = drmaa\ndrmaa_library = /usr/lib/libdrmaa.so\n# x\n[grid]\nqueue = q\n' >"$d/c3"
	printf 'slots = 1\n' >"$d/c4"
	printf '[bad name]\nslots = x\n' >"$d/c5"
}

seeds_jtext() {
	local d=$1
	# stored specs as the engine writes them, and the forms the scan refuses
	printf '%s' '{"name":null,"queue":null,"native_specification":null,"submission_key":"k","disposal_timeout_hours":168,"cpus":1,"memory_mb":0,"walltime_s":0,"join_stderrout":false,"hold":true,"backend":"local","resource":"local","working_directory":"/tmp","stdin_path":null,"stdout_path":null,"stderr_path":null,"referenced_input_files":[],"referenced_output_files":[],"argv":["true","1"],"env":[]}' >"$d/spec"
	printf '%s' '{"argv":["a\"b\\c\n\u001F\u0000e9","\u00e9","é"],"name":"r\u0000e9s","env":["X=1"],"cpus":-0,"a":1.5,"b":[1,-12,true,null]}' >"$d/escapes"
	printf '%s' '{ "argv" : [ "x" ] , "cpus" : 01, "hold": 9223372036854775808}' >"$d/spaces"
	printf '%s' '{}' >"$d/empty"
	printf '\000\000\000\000\000\000\360\077' >"$d/real-1"
	printf 'r\351sum\351\001\177"\\' >"$d/bytes"
}

seeds_drmaa() {
	local d=$1
	# native specifications and path attributes as DRMAA clients write them
	printf '%s' '--cpus 2 --walltime 1:00:00 --queue q' >"$d/native"
	printf '%s' "--memory=2G --native '-A acct' --cpus=1" >"$d/native-eq"
	printf '%s' ':$drmaa_wd_ph$/out.$drmaa_incr_ph$' >"$d/path-wd"
	printf '%s' '$drmaa_hd_ph$/x/$drmaa_incr_ph$$drmaa_incr_ph$.err' >"$d/path-hd"
	printf '%s' 'host:/data/x' >"$d/path-host"
	printf '%s' 'rel/$drmaa_incr_ph$' >"$d/path-rel"
	printf '%s' '--tasks 4 --cpus-per-task=2 --nodes 1 --launcher mpi' >"$d/native-mpi"
}

# ---- dictionaries: names the parsers compare against ----

# shellcheck disable=SC2317 # called as dict_${t#fuzz_}
dict_frame() {
	local w
	for w in FRY1 op hello ping submit status info jobs wait control dispose read shutdown \
		version client ids id timeout action stop restart hold release kill stream stdout \
		stderr offset max state detail argv name working_directory stdin_path stdout_path \
		stderr_path join_stderrout env referenced_input_files referenced_output_files \
		disposal_timeout_hours cpus memory_mb walltime_s queue native_specification \
		submission_key queued_active user_on_hold running 'done' failed / /tmp /dev/null; do
		printf '"%s"\n' "$w"
	done
	printf '"\\"%s\\""\n' op id ids jobs argv working_directory
	printf '"%s"\n' true false null '[' ']' '{' '}' ':' ','
}

# shellcheck disable=SC2317
dict_jtext() {
	local w
	for w in argv name stdout_path env cpus hold a b; do
		printf '"\\"%s\\":"\n' "$w"
	done
	printf '"%s"\n' true false null '[' ']' '{' '}' ':' ',' '\\u0000' '\\u001F' '\\n' e+ 1.5
}

# shellcheck disable=SC2317
dict_drmaa() {
	local w
	for w in --cpus --memory --walltime --queue --native --tasks --cpus-per-task --nodes \
		--launcher mpi none = : / "'" '\"' '$drmaa_incr_ph$' '$drmaa_hd_ph$' \
		'$drmaa_wd_ph$' 1:00 59 G M; do
		printf '"%s"\n' "$w"
	done
}

# shellcheck disable=SC2317
dict_config() {
	local w
	for w in '[' ']' = ';' '#' local slurm drmaa scheduler slots host port login queue \
		transfer_root remote_command ssh_options drmaa_library poll_interval \
		path_translation_files '{' '}'; do
		printf '"%s"\n' "$w"
	done
}

# ---- run ----

# run_target T: runs one fuzzer; what it says goes to $work/T.out, and its
# exit says whether it found nothing
run_target() {
	local t=$1 exe corpus art seeds rc=0
	exe=$build/fuzz/$t
	corpus=$build/fuzz/corpus/$t
	art=$build/fuzz/artifacts/$t
	seeds=$work/seeds-$t
	mkdir -p "$corpus" "$art" "$seeds" "$work/tmp-$t"
	case $t in
	fuzz_frame) seeds_frame "$seeds" ;;
	fuzz_config) seeds_config "$seeds" ;;
	fuzz_jtext) seeds_jtext "$seeds" ;;
	fuzz_drmaa) seeds_drmaa "$seeds" ;;
	*) echo "run.sh: unknown target $t" >&2; return 2 ;;
	esac
	"dict_${t#fuzz_}" >"$work/$t.dict"
	echo "== $t: ${secs}s (corpus $corpus)"
	# shellcheck disable=SC2086
	TMPDIR=$work/tmp-$t "$exe" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$art/" -dict="$work/$t.dict" ${FUZZ_ARGS:-} \
		"$corpus" "$seeds" >"$work/$t.log" 2>&1 || rc=$?
	grep -E '^(#[0-9]+.*DONE|Done |stat::number_of_executed_units|stat::peak_rss_mb)' "$work/$t.log" || true
	if [ "$rc" -ne 0 ]; then
		echo "== $t: FAILED (exit $rc); last lines of its log:"
		tail -n 60 "$work/$t.log"
		find "$art" -type f -newer "$work/$t.dict" | sed 's|^|   artifact: |'
		return 1
	fi
	echo "== $t: ok"
}

# The targets run $parallel at a time (a core each: a fuzzer is one
# process), each for its full time; their outputs are printed in order.
parallel=${FUZZ_PARALLEL:-$(nproc)}
running=0
for t in $targets; do
	if [ "$running" -ge "$parallel" ]; then
		wait -n || true
		running=$((running - 1))
	fi
	{ run_target "$t" >"$work/$t.out" 2>&1; echo $? >"$work/$t.rc"; } &
	running=$((running + 1))
done
wait
status=0
for t in $targets; do
	if [ "$(cat "$work/$t.rc" 2>/dev/null)" = 0 ]; then
		cat "$work/$t.out"
	else
		cat "$work/$t.out" >&2
		status=1
	fi
done
exit $status
