#!/usr/bin/env bash
# Side-by-side load comparison on loopback: RelayMta against Postfix, both relaying everything to
# smtp-sink, and smtp-sink alone as the non-durable ceiling (smtp-source straight into smtp-sink).
# smtp-source drives each at the same concurrency and message size; every run is timed until
# smtp-source is done (accepted messages/s) and until the sink has counted every acknowledged
# message (end-to-end messages/s). Details, and what every figure means: benchmarks/compare/README.md.
#
#   sudo benchmarks/compare.sh                 # 3 runs each, the medians; about 30 minutes
#   sudo QUICK=1 benchmarks/compare.sh         # smoke test: one run each, fewer messages
#   sudo SESSIONS="10 100" RUNS=5 benchmarks/compare.sh
#
# Environment (defaults in brackets; QUICK=1 changes RUNS, MESSAGES, LARGE_MESSAGES and WARMUP):
#   RUNS [3; QUICK 1]             runs of each server and setting; the table shows medians
#   SESSIONS ["1 10 100 500"]     concurrent smtp-source sessions for the small sizes
#   SIZE ["1024 102400"]          message payload sizes in bytes (smtp-source -l); "1k" works too
#   LARGE_SIZE [65536]            sizes from this on are "large": LARGE_SESSIONS and LARGE_MESSAGES
#   LARGE_SESSIONS ["100"]        sessions for the large sizes
#   MESSAGES [20000; QUICK 2000]  messages per run for the small sizes
#   LARGE_MESSAGES [2000; QUICK 200]   messages per run for the large sizes
#   WARMUP_RELAYMTA [40000; QUICK 10000]  messages sent (WARMUP_SESSIONS sessions, 1 KiB) to RelayMta
#                                 after its start, before each measured run: its tiered JIT needs
#                                 ~5-8 s of load to settle (see compare/README.md); 0 = none
#   WARMUP_POSTFIX [2000; QUICK 1000]     the same for Postfix (it has no JIT; this spawns its processes)
#   WARMUP [unset]                sets both of the above
#   WARMUP_SESSIONS [100]         sessions of the warm-up load
#   SERVERS ["smtp-sink RelayMta Postfix"]   which of them to run
#   OUT [benchmarks/compare/out]  where runs.csv, summary.csv, summary.md and the charts go
#   SKIP_BUILD [0]                1 = use the existing Release build of src/RelayMta
#   SOURCE_OPTS ["-d -N"]         extra smtp-source options: -d sends every message of a session
#                                 over one connection, -N numbers the recipients
#   RUN_TIMEOUT [600]             seconds one smtp-source run may take (then it is killed)
#   DRAIN_TIMEOUT [300]           seconds to wait for the sink to count every acknowledged message
#   START_TIMEOUT [90]            seconds a server may take to start
#   SAMPLE_INTERVAL [1]           seconds between memory (PSS) samples; one more is taken at the end
#   KEEP_WORK [0]                 1 = keep the temporary directory (spools, logs) for a look
#   REPORT_ONLY [0]               1 = only summarise OUT/runs.csv again (table, summary, chart)
#
# Needs root (Postfix's master and smtp-sink -u), the .NET 10 SDK, Debian's postfix package (it is
# installed when missing, preseeded "No configuration", so no system MTA is set up or started) and
# gnuplot for the chart (installed when missing; without it there is no chart). Every process it
# starts is stopped by pid on exit; it uses no address outside 127.0.0.1.
set -euo pipefail
export LC_ALL=C
PATH=$PATH:/usr/sbin:/sbin

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd -- "$SCRIPT_DIR/.." && pwd)
HERE=$SCRIPT_DIR/compare
DLL=$REPO/src/RelayMta/bin/Release/net10.0/RelayMta.dll

QUICK=${QUICK:-0}
if [[ $QUICK == 1 ]]; then
    def_runs=1 def_messages=2000 def_large=200 def_warm_relay=10000 def_warm_postfix=1000
else
    def_runs=3 def_messages=20000 def_large=2000 def_warm_relay=40000 def_warm_postfix=2000
fi
RUNS=${RUNS:-$def_runs}
SESSIONS=${SESSIONS:-"1 10 100 500"}
SIZE=${SIZE:-${SIZES:-"1024 102400"}}
LARGE_SIZE=${LARGE_SIZE:-65536}
LARGE_SESSIONS=${LARGE_SESSIONS:-100}
MESSAGES=${MESSAGES:-$def_messages}
LARGE_MESSAGES=${LARGE_MESSAGES:-$def_large}
WARMUP_RELAYMTA=${WARMUP_RELAYMTA:-${WARMUP:-$def_warm_relay}}
WARMUP_POSTFIX=${WARMUP_POSTFIX:-${WARMUP:-$def_warm_postfix}}
WARMUP_SESSIONS=${WARMUP_SESSIONS:-100}
SERVERS=${SERVERS:-"smtp-sink RelayMta Postfix"}
OUT=${OUT:-$HERE/out}
SKIP_BUILD=${SKIP_BUILD:-0}
SOURCE_OPTS=${SOURCE_OPTS:-"-d -N"}
RUN_TIMEOUT=${RUN_TIMEOUT:-600}
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-300}
START_TIMEOUT=${START_TIMEOUT:-90}
SAMPLE_INTERVAL=${SAMPLE_INTERVAL:-1}
KEEP_WORK=${KEEP_WORK:-0}
REPORT_ONLY=${REPORT_ONLY:-0}

SENDER=bench@example.org          # neither server's own domain: everything is relayed
RECIPIENT=rcpt@example.net
SINK_MAX_CONNECTIONS=1024         # smtp-sink -m (its default, 256, would cap the ceiling at 500)
SINK_BACKLOG=1024
SETTLE=1                          # seconds after the sink count is reached, to catch late extras

die() { printf 'compare.sh: %s\n' "$*" >&2; exit 1; }
say() {
    printf '%s\n' "$*"
    if [[ -d $OUT ]]; then printf '%s\n' "$*" >>"$OUT/progress.log"; fi
}

is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }
for v in RUNS MESSAGES LARGE_MESSAGES WARMUP_RELAYMTA WARMUP_POSTFIX WARMUP_SESSIONS LARGE_SIZE RUN_TIMEOUT DRAIN_TIMEOUT START_TIMEOUT; do
    is_uint "${!v}" || die "$v must be a whole number (got '${!v}')"
done
((RUNS >= 1)) || die "RUNS must be at least 1"
for s in $SESSIONS $LARGE_SESSIONS; do
    if ! is_uint "$s" || ((s < 1)); then die "SESSIONS and LARGE_SESSIONS are whole numbers >= 1 (got '$s')"; fi
done
[[ $SAMPLE_INTERVAL =~ ^[0-9]*\.?[0-9]+$ ]] || die "SAMPLE_INTERVAL must be a number of seconds"
for s in $SERVERS; do
    case $s in smtp-sink | RelayMta | Postfix) ;; *) die "SERVERS: unknown server '$s'" ;; esac
done

# "1024", "1k", "1KiB", "100k" -> bytes in REPLY
parse_size() {
    local s=${1,,} mult=1
    case $s in
        *kib) s=${s%kib} mult=1024 ;;
        *k) s=${s%k} mult=1024 ;;
        *mib) s=${s%mib} mult=1048576 ;;
        *m) s=${s%m} mult=1048576 ;;
    esac
    if ! is_uint "$s" || ((s == 0)); then die "SIZE: not a size: '$1'"; fi
    REPLY=$((s * mult))
}
human_size() {
    if (($1 % 1048576 == 0)); then REPLY="$(($1 / 1048576)) MiB"
    elif (($1 % 1024 == 0)); then REPLY="$(($1 / 1024)) KiB"
    else REPLY="$1 B"; fi
}
SIZE_LIST=()
for s in $SIZE; do parse_size "$s"; SIZE_LIST+=("$REPLY"); done
((${#SIZE_LIST[@]} > 0)) || die "SIZE is empty"
wants() { [[ " $SERVERS " == *" $1 "* ]]; }

mkdir -p "$OUT"
OUT=$(cd -- "$OUT" && pwd)

# ---------------------------------------------------------------------------------------------
# Reports: runs.csv -> summary.csv, summary.md, the printed table, the charts

print_report() {
    [[ -s $OUT/runs.csv ]] || die "no runs in $OUT/runs.csv"
    awk -F, -f "$HERE/summarize.awk" "$OUT/runs.csv" >"$OUT/summary.csv"
    local table
    table=$(awk -F, -v fmt=text -f "$HERE/table.awk" "$OUT/summary.csv")
    {
        echo "# RelayMta vs Postfix: loopback load comparison"
        echo
        echo "Produced by \`benchmarks/compare.sh\`; medians of the runs, ratios are RelayMta/Postfix"
        echo "from the same run (then the median). Raw runs: \`runs.csv\`; medians: \`summary.csv\`."
        echo
        awk -F, -v fmt=md -f "$HERE/table.awk" "$OUT/summary.csv"
        echo
        echo "Columns: *accepted/s* = messages acknowledged by the server / smtp-source wall time;"
        echo "*end-to-end/s* = the same messages / time until smtp-sink had counted all of them;"
        echo "*peak MiB* = RelayMta: VmHWM of its process; Postfix: peak over samples of the summed PSS"
        echo "of the instance's processes; smtp-sink: its VmHWM. *peak PSS MiB* = the sampled summed PSS"
        echo "for every server (the like-for-like memory figure). *CPU s* = utime+stime of the server's"
        echo "processes from the start of smtp-source until the sink had everything (plus ${SETTLE} s), Postfix"
        echo "including reaped children (master's cutime/cstime). *mismatches* = runs where the sink's"
        echo "count differed from the number smtp-source saw acknowledged. *busy%(others)* = how busy the"
        echo "whole machine was during the run (all cores), and in brackets the part that was not this"
        echo "benchmark (other users of a shared machine): high figures there mean noisy results."
        echo
        if [[ -f $OUT/environment.txt ]]; then
            echo '```'
            cat "$OUT/environment.txt"
            echo '```'
        fi
    } >"$OUT/summary.md"
    echo
    echo "Medians of $(awk -F, 'NR > 1 { print $3 }' "$OUT/runs.csv" | sort -n | tail -1) run(s); ratios are RelayMta/Postfix from the same run (median of the ratios)."
    echo "peak MiB: RelayMta VmHWM, Postfix summed PSS of its processes (sampled), smtp-sink VmHWM;"
    echo "peak PSS MiB: sampled summed PSS for all; CPU s: server processes only (Postfix incl. reaped children);"
    echo "busy%(others): machine CPU use during the run, all cores, and (in brackets) the share used by other processes."
    echo
    printf '%s\n' "$table"
    echo
    local loads
    loads=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) { if ($i == "load1") c = i; if ($i == "others_busy_pct") o = i }; next }
        c { n++; s += $c; if (n == 1 || $c < lo) lo = $c; if ($c > hi) hi = $c }
        o && $o != "NA" { m++; os += $o; if ($o > ohi) ohi = $o }
        END {
            if (n) printf "load average (1 min) before each run: min %.2f, mean %.2f, max %.2f\n", lo, s / n, hi
            if (m) printf "CPU used by other processes during the runs: mean %.0f%%, max %.0f%% of the machine\n", os / m, ohi
        }' "$OUT/runs.csv")
    [[ -z $loads ]] || printf '%s\n' "$loads"
    echo "Files: $OUT/summary.md, $OUT/summary.csv, $OUT/runs.csv"
    make_charts
}

make_charts() {
    if ! command -v gnuplot >/dev/null 2>&1; then
        echo "gnuplot is missing; installing gnuplot-nox (Debian) for the chart"
        if ! apt_install gnuplot-nox || ! command -v gnuplot >/dev/null 2>&1; then
            echo "no chart: gnuplot could not be installed (see $OUT/apt.log)"
            return 0
        fi
    fi
    local term=png
    if gnuplot -e 'set terminal pngcairo' </dev/null >/dev/null 2>&1; then term=pngcairo; fi
    local size first="" made=0 sizes=()
    mapfile -t sizes < <(awk -F, 'NR > 1 && $3 != "RelayMta/Postfix" { print $1 }' "$OUT/summary.csv" | sort -nu)
    for size in "${sizes[@]}"; do
        local dat=$OUT/chart-$size.dat png=$OUT/chart-$size.png
        awk -F, -v size="$size" '
            NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
            $1 == size {
                s = $2; if (!(s in seen)) { seen[s] = 1; list[++n] = s }
                v = $col["accepted_per_s"]; e = $col["e2e_per_s"]
                if (v == "NA" || v == "") v = "?"
                if (e == "NA" || e == "") e = "?"
                if ($3 == "smtp-sink") ceil[s] = e
                if ($3 == "RelayMta") { ra[s] = v; re[s] = e }
                if ($3 == "Postfix") { pa[s] = v; pe[s] = e }
            }
            function g(x) { return x == "" ? "?" : x }
            END {
                print "# sessions ceiling relay_accepted relay_e2e postfix_accepted postfix_e2e"
                for (i = 1; i <= n; i++) { s = list[i]; print s, g(ceil[s]), g(ra[s]), g(re[s]), g(pa[s]), g(pe[s]) }
            }' "$OUT/summary.csv" | { read -r header; echo "$header"; sort -n; } >"$dat"
        local points
        points=$(grep -vc '^#' "$dat" || true)
        human_size "$size"
        local label=$REPLY
        if ((points < 2)); then
            echo "no chart for $label: it was run at one concurrency only (see the table)"
            continue
        fi
        if gnuplot -e "datafile='$dat'; outfile='$png'; subtitle='$label messages'; term='$term'" \
            "$HERE/chart.gp" >"$OUT/gnuplot.log" 2>&1; then
            made=$((made + 1))
            [[ -n $first ]] || first=$png
            echo "Chart ($label): $png"
        else
            echo "chart for $label failed (see $OUT/gnuplot.log)"
        fi
    done
    if [[ -n $first ]]; then cp -f "$first" "$OUT/chart.png"; echo "Chart: $OUT/chart.png"; fi
    ((made > 0)) || echo "no chart drawn"
}

apt_install() {
    command -v apt-get >/dev/null 2>&1 || return 1
    local log=$OUT/apt.log
    if DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y --no-install-recommends "$@" >>"$log" 2>&1; then
        return 0
    fi
    timeout 600 apt-get update >>"$log" 2>&1 || true
    DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y --no-install-recommends "$@" >>"$log" 2>&1
}

if [[ $REPORT_ONLY == 1 ]]; then
    print_report
    exit 0
fi

# ---------------------------------------------------------------------------------------------
# Preflight: root, tools, the build

((EUID == 0)) || die "run as root: Postfix's master must start as root and smtp-sink needs -u"
((BASH_VERSINFO[0] >= 5)) || die "bash 5 or later is needed (EPOCHREALTIME)"
: >"$OUT/progress.log"
if ! command -v ss >/dev/null 2>&1; then
    say "ss is missing: installing iproute2 (Debian)"
    apt_install iproute2 || die "ss is missing and iproute2 could not be installed (see $OUT/apt.log)"
fi
for c in awk sed ss timeout mktemp tail getconf; do
    command -v "$c" >/dev/null 2>&1 || die "'$c' is missing (Debian: coreutils, mawk, sed, iproute2, libc-bin)"
done

rm -f "$OUT/runs.csv" "$OUT/summary.csv" "$OUT/summary.md" "$OUT"/chart*.png "$OUT"/chart*.dat
mkdir -p "$OUT/logs"
rm -f "$OUT"/logs/*.txt

need_postfix=0
for c in postfix postconf smtp-source smtp-sink; do
    command -v "$c" >/dev/null 2>&1 || need_postfix=1
done
if ((need_postfix)); then
    say "Postfix (postfix, smtp-source, smtp-sink) is missing: installing Debian's postfix package,"
    say "preseeded 'No configuration' so that no system MTA is configured or started"
    command -v apt-get >/dev/null 2>&1 || die "apt-get is not available: install Postfix 3.x yourself"
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    apt_install postfix || die "apt-get install postfix failed (see $OUT/apt.log)"
    for c in postfix postconf smtp-source smtp-sink; do
        command -v "$c" >/dev/null 2>&1 || die "'$c' still missing after installing postfix"
    done
fi
id postfix >/dev/null 2>&1 || die "there is no 'postfix' user (is the postfix package installed?)"
getent group postdrop >/dev/null 2>&1 || die "there is no 'postdrop' group (is the postfix package installed?)"

if wants RelayMta; then
    command -v dotnet >/dev/null 2>&1 || die "dotnet is missing: RelayMta needs the .NET 10 SDK"
    export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
    if [[ $SKIP_BUILD != 1 ]]; then
        say "building RelayMta (dotnet build src/RelayMta -c Release)"
        if ! (cd "$REPO" && timeout 900 dotnet build src/RelayMta -c Release) >"$OUT/build.log" 2>&1; then
            tail -30 "$OUT/build.log" >&2
            die "the build failed (full log: $OUT/build.log)"
        fi
    fi
    [[ -f $DLL ]] || die "$DLL is missing: build it (dotnet build src/RelayMta -c Release) or unset SKIP_BUILD"
fi

# More descriptors: up to 500 sessions through smtp-source, the servers and smtp-sink.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
CLK_TCK=$(getconf CLK_TCK)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/relaymta-compare.XXXXXX")
chmod 755 "$WORK"   # Postfix daemons (user postfix) must reach their queue and data directories

# RelayMta runs from a copy of the build, so that a rebuild of the work tree during the benchmark
# (another build, another engineer) cannot change the binary between runs.
RUN_DLL=$DLL
if wants RelayMta; then
    cp -a "$(dirname -- "$DLL")" "$WORK/relaymta-bin"
    RUN_DLL=$WORK/relaymta-bin/RelayMta.dll
fi

# ---------------------------------------------------------------------------------------------
# Processes we started: pid -> a word its command line must contain. Only these are ever signalled.

declare -A STARTED=()
declare -A PF_MASTER=()   # config dir of a running Postfix instance -> its master's pid

track() { STARTED[$1]=$2; }
untrack() { unset "STARTED[$1]"; }
is_ours_alive() {
    local pid=$1 want=${STARTED[$1]:-} args=()
    [[ -n $want && -r /proc/$pid/cmdline ]] || return 1
    { mapfile -d '' -t args </proc/"$pid"/cmdline; } 2>/dev/null || return 1
    [[ " ${args[*]} " == *"$want"* ]]
}
# stop_pid PID GRACE_SECONDS: SIGTERM, then SIGKILL after the grace time; only a tracked pid.
stop_pid() {
    local pid=$1 grace=${2:-10} i
    if is_ours_alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < grace * 10; i++)); do
            is_ours_alive "$pid" || break
            sleep 0.1
        done
        if is_ours_alive "$pid"; then
            say "  (pid $pid did not stop within ${grace}s: SIGKILL)"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    wait "$pid" 2>/dev/null || true
    untrack "$pid"
}
# Is PID the master of the Postfix instance with config dir DIR? (master inherits MAIL_CONFIG)
is_pf_master() {
    local pid=$1 dir=$2 env=()
    [[ -r /proc/$pid/environ ]] || return 1
    { mapfile -d '' -t env </proc/"$pid"/environ; } 2>/dev/null || return 1
    local e
    for e in "${env[@]}"; do [[ $e == "MAIL_CONFIG=$dir" ]] && return 0; done
    return 1
}
# Processes of the instance with config dir DIR (Postfix passes MAIL_CONFIG to every daemon).
pf_instance_pids() {
    grep -lzsx "MAIL_CONFIG=$1" /proc/[0-9]*/environ 2>/dev/null | sed -n 's|^/proc/\([0-9]*\)/environ$|\1|p' || true
}
stop_postfix() {
    local etc=$1 master=${PF_MASTER[$1]:-} i
    timeout 60 postfix -c "$etc" stop >/dev/null 2>&1 || true
    if [[ -n $master ]]; then
        for ((i = 0; i < 300; i++)); do
            is_pf_master "$master" "$etc" || break
            sleep 0.1
        done
        if is_pf_master "$master" "$etc"; then
            say "  (Postfix master $master did not stop: SIGKILL)"
            kill -KILL "$master" 2>/dev/null || true
        fi
    fi
    # Its daemons leave once the master is gone; wait for them (they are not signalled).
    for ((i = 0; i < 150; i++)); do
        [[ -n $(pf_instance_pids "$etc") ]] || break
        sleep 0.1
    done
    unset "PF_MASTER[$etc]"
}

cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM
    local d p
    for d in "${!PF_MASTER[@]}"; do stop_postfix "$d"; done
    for p in "${!STARTED[@]}"; do stop_pid "$p" 5; done
    if [[ $KEEP_WORK == 1 ]]; then
        echo "kept the work directory: $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------------
# Ports, readiness

# nap SECONDS: sleep without a fork (read with a time-out on a pipe nobody writes to)
exec {NAP_FD}<> <(:)
nap() { read -r -t "$1" -u "$NAP_FD" _ || true; }

declare -A USED_PORTS=()
# free_port VAR: a port in 20000-31999 (below the ephemeral range) nobody listens on or uses.
free_port() {
    local p i
    for ((i = 0; i < 500; i++)); do
        p=$((20000 + RANDOM % 12000))
        [[ -z ${USED_PORTS[$p]:-} ]] || continue
        if [[ -z $(ss -Htan "( sport = :$p or dport = :$p )" 2>/dev/null) ]]; then
            USED_PORTS[$p]=1
            printf -v "$1" '%s' "$p"
            return 0
        fi
    done
    die "no free loopback port found"
}
is_listening() { [[ -n $(ss -Hltn "sport = :$1" 2>/dev/null) ]]; }
# wait_listen PORT SECONDS [PID]: until 127.0.0.1:PORT listens; fails when PID has gone.
wait_listen() {
    local port=$1 deadline=$((EPOCHSECONDS + $2)) pid=${3:-}
    while ((EPOCHSECONDS < deadline)); do
        is_listening "$port" && return 0
        if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then return 1; fi
        sleep 0.1
    done
    return 1
}
listen_backlog() { ss -Hltn "sport = :$1" 2>/dev/null | awk 'NR == 1 { print $3 }'; }

http_get() { # PORT PATH -> body on stdout (curl when there is one, else bash's /dev/tcp)
    if command -v curl >/dev/null 2>&1; then
        timeout 10 curl -sf "http://127.0.0.1:$1$2"
    else
        # shellcheck disable=SC2016
        timeout 10 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
            printf "GET %s HTTP/1.0\r\nHost: 127.0.0.1:%s\r\n\r\n" "$2" "$1" >&3
            sed "1,/^\r\{0,1\}$/d" <&3' _ "$1" "$2"
    fi
}

# ---------------------------------------------------------------------------------------------
# Measurements

# tree_pids ROOT -> TREE: ROOT and all its descendants (from /proc/PID/task/TID/children).
tree_pids() {
    TREE=("$1")
    local i=0 p f kids
    while ((i < ${#TREE[@]})); do
        p=${TREE[i]}
        i=$((i + 1))
        for f in /proc/"$p"/task/*/children; do
            [[ -r $f ]] || continue
            kids=()
            { read -r -a kids <"$f"; } 2>/dev/null || true
            ((${#kids[@]} == 0)) || TREE+=("${kids[@]}")
        done
    done
}
# cpu_ticks ROOT -> CPU_TICKS: utime+stime+cutime+cstime summed over ROOT and its descendants.
# Children that exit are counted by their parent's cutime/cstime once reaped, so the difference of
# two readings is the CPU used in between, whatever processes came and went.
cpu_ticks() {
    tree_pids "$1"
    local p s rest f total=0
    for p in "${TREE[@]}"; do
        s=""
        { read -r s <"/proc/$p/stat"; } 2>/dev/null || true
        [[ -n $s ]] || continue
        rest=${s##*) }
        read -r -a f <<<"$rest"
        total=$((total + f[11] + f[12] + f[13] + f[14]))
    done
    CPU_TICKS=$total
}
# self_ticks -> SELF_TICKS: this shell's CPU, with its reaped children (smtp-source, tail, awk...)
self_ticks() {
    local s rest f
    read -r s </proc/$$/stat
    rest=${s##*) }
    read -r -a f <<<"$rest"
    SELF_TICKS=$((f[11] + f[12] + f[13] + f[14]))
}
# cpu_busy -> BUSY_TICKS, ALL_TICKS: the whole machine's busy and total CPU time (/proc/stat)
cpu_busy() {
    local label user nice system idle iowait irq softirq steal _
    read -r label user nice system idle iowait irq softirq steal _ </proc/stat
    BUSY_TICKS=$((user + nice + system + irq + softirq + steal))
    ALL_TICKS=$((BUSY_TICKS + idle + iowait))
}
vm_hwm_kib() { # PID -> VmHWM in KiB (NA when gone)
    local k v
    while read -r k v _; do
        if [[ $k == VmHWM: ]]; then echo "$v"; return 0; fi
    done 2>/dev/null <"/proc/$1/status" || true
    echo NA
}
# sampler ROOT OUTFILE STOPFILE: every SAMPLE_INTERVAL, the summed PSS (KiB) of ROOT's process
# tree; OUTFILE holds "peak samples".
# (smaps_rollup costs the kernel a walk of each process's memory map: ~0.5 ms a process, so for
# Postfix's ~130 processes a sample every 0.25 s took 13% of a core; hence 1 s by default.)
pss_sum() { # ROOT -> PSS_SUM (KiB)
    local p files=()
    tree_pids "$1"
    for p in "${TREE[@]}"; do files+=("/proc/$p/smaps_rollup"); done
    PSS_SUM=$({ cat "${files[@]}" 2>/dev/null || true; } | awk '$1 == "Pss:" { s += $2 } END { print s + 0 }')
}
sampler() {
    local root=$1 out=$2 stop=$3 peak=0 n=0
    while [[ ! -e $stop ]] && [[ -d /proc/$root ]]; do
        pss_sum "$root"
        if ((PSS_SUM > peak)); then peak=$PSS_SUM; fi
        n=$((n + 1))
        printf '%s %s\n' "$peak" "$n" >"$out"
        nap "$SAMPLE_INTERVAL"
    done
}

# The sink's -c output is "sess=N quit=N mesg=N\r", one record per update; only the last
# complete record matters, so read the file's end (reading every record in bash is too slow: it
# would add tens of milliseconds per thousand messages to the end-to-end time).
SINK_OUT="" SINK_MESG=0
sink_poll() {
    local data
    data=$(tail -c 160 "$SINK_OUT" 2>/dev/null) || return 0
    if [[ $data == *$'\r' ]]; then data=${data%$'\r'}; else data=${data%$'\r'*}; fi
    data=${data##*$'\r'}
    if [[ $data =~ mesg=([0-9]+) ]]; then SINK_MESG=${BASH_REMATCH[1]}; fi
}
# wait_sink COUNT SECONDS: until the sink has counted COUNT messages -> T_REACHED; 1 on time-out.
# Polls every 10 ms without forking (nap), so the time is not skewed on a loaded machine.
wait_sink() {
    local target=$1 deadline=$((EPOCHSECONDS + $2)) polls=0
    while :; do
        sink_poll
        if ((SINK_MESG >= target)); then T_REACHED=$EPOCHREALTIME; return 0; fi
        ((EPOCHSECONDS < deadline)) || return 1
        polls=$((polls + 1))
        if ((polls % 50 == 0)) && ! is_ours_alive "$SINK_PID"; then return 1; fi
        nap 0.01
    done
}
start_sink() { # DIR PORT -> SINK_PID, SINK_OUT
    local dir=$1 port=$2
    : >"$dir/sink.out"
    smtp-sink -u postfix -c -m "$SINK_MAX_CONNECTIONS" "127.0.0.1:$port" "$SINK_BACKLOG" \
        </dev/null >"$dir/sink.out" 2>"$dir/sink.err" &
    SINK_PID=$!
    track "$SINK_PID" smtp-sink
    wait_listen "$port" 20 "$SINK_PID" || { cat "$dir/sink.err" >&2; die "smtp-sink did not start on 127.0.0.1:$port"; }
    SINK_OUT=$dir/sink.out SINK_MESG=0
}
stop_sink() { stop_pid "$SINK_PID" 5; }

# run_source PREFIX PORT SESSIONS MESSAGES SIZE -> SRC_RC, SRC_ACKED (smtp-source -c counts every
# completed DATA; it stops at the first reply that is not the expected success)
run_source() {
    local prefix=$1 opts=()
    read -r -a opts <<<"$SOURCE_OPTS"
    # in the background and waited for, so that a signal to this script is handled at once
    timeout -k 5 "$RUN_TIMEOUT" smtp-source -c "${opts[@]}" -s "$3" -m "$4" -l "$5" \
        -M bench-client.localdomain -f "$SENDER" -t "$RECIPIENT" "127.0.0.1:$2" \
        </dev/null >"$prefix.out" 2>"$prefix.err" &
    local pid=$!
    track "$pid" smtp-source
    SRC_RC=0
    wait "$pid" || SRC_RC=$?
    untrack "$pid"
    SRC_ACKED=$(tr '\r' '\n' <"$prefix.out" | awk '/^[0-9]+$/ { n = $1 } END { print n + 0 }')
}

# ---------------------------------------------------------------------------------------------
# The servers

start_relay() { # DIR SMTP_PORT ADMIN_PORT SINK_PORT -> RELAY_PID
    local dir=$1
    sed -e "s|@SMTP_PORT@|$2|g" -e "s|@ADMIN_PORT@|$3|g" -e "s|@SINK_PORT@|$4|g" -e "s|@RUN_DIR@|$dir|g" \
        "$HERE/relay.hocon.in" >"$dir/relay.hocon"
    if ! timeout 60 dotnet "$RUN_DLL" --config "$dir/relay.hocon" --check-config >"$dir/check.log" 2>&1; then
        cat "$dir/check.log" >&2
        die "RelayMta refused the generated configuration $dir/relay.hocon"
    fi
    (cd "$dir" && exec dotnet "$RUN_DLL" --config "$dir/relay.hocon") </dev/null >"$dir/relay.log" 2>&1 &
    RELAY_PID=$!
    track "$RELAY_PID" RelayMta.dll
    local deadline=$((EPOCHSECONDS + START_TIMEOUT))
    while ! grep -q "listening for SMTP on 127.0.0.1:$2" "$dir/relay.log" 2>/dev/null; do
        # kill -0, not is_ours_alive: until the background subshell has exec'd dotnet, its command
        # line is this script's. (Our own child, not yet waited for: its pid cannot be reused.)
        if ! kill -0 "$RELAY_PID" 2>/dev/null || ((EPOCHSECONDS >= deadline)); then
            tail -20 "$dir/relay.log" >&2
            die "RelayMta did not start (log above)"
        fi
        sleep 0.1
    done
    wait_listen "$2" 10 "$RELAY_PID" || die "RelayMta logged that it listens but 127.0.0.1:$2 does not"
}
stop_relay() { # -> RELAY_EXIT
    local i
    RELAY_EXIT=""
    if is_ours_alive "$RELAY_PID"; then
        kill -TERM "$RELAY_PID" 2>/dev/null || true
        for ((i = 0; i < 450; i++)); do
            is_ours_alive "$RELAY_PID" || break
            sleep 0.1
        done
    fi
    if is_ours_alive "$RELAY_PID"; then
        kill -KILL "$RELAY_PID" 2>/dev/null || true
        RELAY_EXIT="killed"
    fi
    local rc=0
    wait "$RELAY_PID" 2>/dev/null || rc=$?
    [[ ${RELAY_EXIT:-} == killed ]] || RELAY_EXIT=$rc
    untrack "$RELAY_PID"
}
metric() { # FILE NAME [LABEL...] -> the value of the first sample with those labels (0 if none)
    local file=$1 name=$2
    shift 2
    awk -v name="$name" -v labels="$*" '
        BEGIN { n = split(labels, want, " ") }
        $1 == name || index($1, name "{") == 1 {
            ok = 1
            for (i = 1; i <= n; i++) if (index($1, want[i]) == 0) ok = 0
            if (ok) { printf "%d\n", $2; found = 1; exit }
        }
        END { if (!found) print 0 }' "$file"
}

start_postfix() { # DIR SMTP_PORT SINK_PORT -> PF_ETC, PF_PID
    local dir=$1 pf=$1/postfix
    PF_ETC=$pf/etc
    mkdir -p "$PF_ETC" "$pf/queue" "$pf/data"
    chmod 755 "$pf"
    chown postfix:postfix "$pf/data"
    sed -e "s|@SMTP_PORT@|$2|g" "$HERE/postfix-master.cf.in" >"$PF_ETC/master.cf"
    : >"$PF_ETC/main.cf"
    local settings=() line
    while IFS= read -r line; do
        [[ $line =~ ^[[:space:]]*(#|$) ]] && continue
        line=${line//@QUEUE_DIR@/$pf/queue}
        line=${line//@DATA_DIR@/$pf/data}
        line=${line//@SINK_PORT@/$3}
        line=${line//@MAILLOG@/$dir/maillog}
        line=${line//@RUN_DIR@/$dir}
        settings+=("$line")
    done <"$HERE/postfix-main.cf.in"
    postconf -c "$PF_ETC" -e "${settings[@]}"
    : >"$dir/maillog"
    # postfix(1) reports its errors to the log (maillog_file), not to a non-tty stderr
    if ! timeout 120 postfix -c "$PF_ETC" check >"$dir/postfix-start.log" 2>&1 ||
        ! timeout 120 postfix -c "$PF_ETC" start >>"$dir/postfix-start.log" 2>&1; then
        cat "$dir/postfix-start.log" "$dir/maillog" >&2
        die "the Postfix instance in $PF_ETC did not start (log above)"
    fi
    local deadline=$((EPOCHSECONDS + START_TIMEOUT)) pidfile=$pf/queue/pid/master.pid
    PF_PID=""
    while ((EPOCHSECONDS < deadline)); do
        if [[ -s $pidfile ]]; then
            read -r PF_PID <"$pidfile" || true
            if [[ -n $PF_PID ]] && is_pf_master "$PF_PID" "$PF_ETC"; then break; fi
            PF_PID=""
        fi
        sleep 0.1
    done
    [[ -n $PF_PID ]] || { cat "$dir/maillog" >&2; die "no Postfix master for $PF_ETC"; }
    PF_MASTER[$PF_ETC]=$PF_PID
    wait_listen "$2" 20 || { cat "$dir/maillog" >&2; die "Postfix does not listen on 127.0.0.1:$2"; }
}

# ---------------------------------------------------------------------------------------------
# One run: a fresh sink, a fresh server, a warm-up, then the measured load.

csv_field() { local s=${1//,/;}; s=${s//$'\n'/ }; printf '%s' "$s"; }

run_one() { # SERVER SIZE SESSIONS MESSAGES RUN
    local server=$1 size=$2 sessions=$3 messages=$4 run=$5
    human_size "$size"
    local label="$REPLY s=$sessions run $run/$RUNS"
    local dir
    dir=$(mktemp -d "$WORK/run.XXXXXX")
    chmod 755 "$dir"
    local load1 _rest
    read -r load1 _rest </proc/loadavg
    local notes=() sink_port port root mem_kind
    free_port sink_port
    start_sink "$dir" "$sink_port"
    case $server in
        smtp-sink)
            port=$sink_port root=$SINK_PID mem_kind=VmHWM ;;
        RelayMta)
            local admin_port
            free_port port
            free_port admin_port
            start_relay "$dir" "$port" "$admin_port" "$sink_port"
            root=$RELAY_PID mem_kind=VmHWM ;;
        Postfix)
            free_port port
            start_postfix "$dir" "$port" "$sink_port"
            root=$PF_PID mem_kind=PSS ;;
    esac
    if [[ -z ${BACKLOG_SEEN[$server]:-} ]]; then
        BACKLOG_SEEN[$server]=1
        echo "$server: listen backlog of its SMTP socket (ss Send-Q): $(listen_backlog "$port")" >>"$OUT/environment.txt"
    fi

    # Warm-up (not for the sink alone): a small load after the start, drained before measuring.
    local baseline=0 warm_acked=0 warmup=0
    case $server in RelayMta) warmup=$WARMUP_RELAYMTA ;; Postfix) warmup=$WARMUP_POSTFIX ;; esac
    if ((warmup > 0)); then
        run_source "$dir/warmup" "$port" "$WARMUP_SESSIONS" "$warmup" 1024
        warm_acked=$SRC_ACKED
        ((SRC_RC == 0)) || notes+=("warm-up: smtp-source exit $SRC_RC: $(head -c 200 "$dir/warmup.err")")
        wait_sink "$SRC_ACKED" 120 || notes+=("warm-up: the sink counted $SINK_MESG of $SRC_ACKED")
        baseline=$SINK_MESG
    fi

    # The measured run
    cpu_ticks "$root"
    local cpu0=$CPU_TICKS sinkc0=0
    if [[ $server != smtp-sink ]]; then cpu_ticks "$SINK_PID"; sinkc0=$CPU_TICKS; fi
    self_ticks
    local self0=$SELF_TICKS
    cpu_busy
    local busy0=$BUSY_TICKS all0=$ALL_TICKS
    rm -f "$dir/sampler.stop"
    sampler "$root" "$dir/sampler.peak" "$dir/sampler.stop" &
    local sampler_pid=$!
    track "$sampler_pid" "$(basename "$0")"
    local t0=$EPOCHREALTIME
    run_source "$dir/source" "$port" "$sessions" "$messages" "$size"
    local t1=$EPOCHREALTIME src_rc=$SRC_RC acked=$SRC_ACKED
    ((src_rc == 0)) || notes+=("smtp-source exit $src_rc: $(tr '\n' ' ' <"$dir/source.err" | head -c 300)")
    ((src_rc != 0 || acked == messages)) || notes+=("smtp-source exited 0 but counted $acked of $messages")
    local t2=NA
    if wait_sink $((baseline + acked)) "$DRAIN_TIMEOUT"; then t2=$T_REACHED; else
        notes+=("the sink had not counted all acknowledged messages after ${DRAIN_TIMEOUT}s")
    fi
    sleep "$SETTLE"
    sink_poll
    local sink_count=$((SINK_MESG - baseline))
    cpu_ticks "$root"
    local cpu1=$CPU_TICKS sinkc1=0
    if [[ $server != smtp-sink ]]; then cpu_ticks "$SINK_PID"; sinkc1=$CPU_TICKS; fi
    cpu_ticks "$sampler_pid"
    local sampler_ticks=$CPU_TICKS
    self_ticks
    local self1=$SELF_TICKS
    cpu_busy
    # The machine's busy share in the window, and the part of it that was not this benchmark
    # (server, sink, smtp-source, sampler, this script): other users of a shared machine.
    local ours=$((cpu1 - cpu0 + sinkc1 - sinkc0 + self1 - self0 + sampler_ticks)) busy_pct others_pct
    busy_pct=$(awk -v b=$((BUSY_TICKS - busy0)) -v a=$((ALL_TICKS - all0)) 'BEGIN { if (a > 0) printf "%.0f", 100 * b / a; else print "NA" }')
    others_pct=$(awk -v b=$((BUSY_TICKS - busy0)) -v o="$ours" -v a=$((ALL_TICKS - all0)) 'BEGIN { if (a > 0) { x = 100 * (b - o) / a; printf "%.0f", x < 0 ? 0 : x } else print "NA" }')
    pss_sum "$root"   # a last sample, for runs shorter than the sampling interval
    local pss_end=$PSS_SUM
    touch "$dir/sampler.stop"
    local i
    for ((i = 0; i < 50; i++)); do is_ours_alive "$sampler_pid" || break; sleep 0.1; done
    stop_pid "$sampler_pid" 1
    local peak_pss=NA _n
    if [[ -s $dir/sampler.peak ]]; then read -r peak_pss _n <"$dir/sampler.peak" || true; fi
    if [[ $peak_pss == NA ]] || ((pss_end > peak_pss)); then peak_pss=$pss_end; fi
    [[ $peak_pss != 0 ]] || peak_pss=NA
    local hwm
    hwm=$(vm_hwm_kib "$root")
    local peak_mem=$hwm
    [[ $mem_kind != PSS ]] || peak_mem=$peak_pss

    # What the server says, then stop it and the sink
    local tag
    tag="$server-$size-s$sessions-r$run"
    local problems=$OUT/logs/$tag.txt
    case $server in
        RelayMta)
            # totals since its start (warm-up included) against the sink's total
            http_get "$admin_port" /metrics >"$dir/metrics.txt" || true
            local accepted sent queued
            accepted=$(metric "$dir/metrics.txt" relaymta_messages_accepted_total)
            sent=$(metric "$dir/metrics.txt" relaymta_deliveries_total 'result="sent"')
            queued=$(metric "$dir/metrics.txt" relaymta_queue_messages)
            if [[ -s $dir/metrics.txt ]]; then
                ((accepted == warm_acked + acked)) || notes+=("RelayMta /metrics: $accepted accepted vs $((warm_acked + acked)) acknowledged (warm-up included)")
                ((sent == SINK_MESG)) || notes+=("RelayMta /metrics: $sent sent vs $SINK_MESG counted by the sink (warm-up included)")
                ((queued == 0)) || notes+=("RelayMta queue not empty after the run: $queued message(s)")
            else
                notes+=("no /metrics from RelayMta")
            fi
            stop_relay
            [[ $RELAY_EXIT == 0 ]] || notes+=("RelayMta exited with $RELAY_EXIT after SIGTERM")
            local bad
            bad=$(grep -cE ' (warn|fail|crit):|status=(deferred|bounced)|Exception' "$dir/relay.log" || true)
            if ((bad > 0)); then
                notes+=("RelayMta log: $bad warn/fail/crit/deferred/bounced line(s)")
                {
                    echo "== RelayMta log lines: warn, fail, crit, deferred, bounced, exceptions (first 200)"
                    grep -E ' (warn|fail|crit):|status=(deferred|bounced)|Exception' "$dir/relay.log" | head -200
                } >>"$problems"
            fi
            ;;
        Postfix)
            local pf_sent remaining
            pf_sent=$(grep -c 'status=sent' "$dir/maillog" || true)
            ((pf_sent == SINK_MESG)) || notes+=("Postfix logged $pf_sent status=sent vs $SINK_MESG counted by the sink (warm-up included)")
            remaining=$(find "$dir/postfix/queue/incoming" "$dir/postfix/queue/active" "$dir/postfix/queue/deferred" \
                "$dir/postfix/queue/hold" -type f 2>/dev/null | wc -l)
            ((remaining == 0)) || notes+=("Postfix queue not empty after the run: $remaining file(s)")
            stop_postfix "$PF_ETC"
            local bad
            bad=$(grep -cE 'warning:|fatal:|panic:|error:|status=(deferred|bounced)|reject:' "$dir/maillog" || true)
            if ((bad > 0)); then
                notes+=("Postfix log: $bad warning/fatal/panic/deferred/bounced/reject line(s)")
                {
                    echo "== Postfix log lines: warning, fatal, panic, error, deferred, bounced, reject (first 200)"
                    grep -E 'warning:|fatal:|panic:|error:|status=(deferred|bounced)|reject:' "$dir/maillog" | head -200
                } >>"$problems"
            fi
            ;;
    esac
    stop_sink
    if [[ -s $dir/source.err ]]; then
        { echo "== smtp-source stderr"; head -50 "$dir/source.err"; } >>"$problems"
    fi
    if [[ -s $dir/sink.err ]]; then
        { echo "== smtp-sink stderr"; head -50 "$dir/sink.err"; } >>"$problems"
    fi

    # The figures
    local mismatch=0
    ((sink_count == acked)) || {
        mismatch=1
        notes+=("MISMATCH: smtp-source saw $acked acknowledged, the sink counted $sink_count")
    }
    local cpu_s accepted_s e2e_s acc_rate e2e_rate
    cpu_s=$(awk -v a="$cpu0" -v b="$cpu1" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", (b - a) / hz }')
    accepted_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    acc_rate=$(awk -v n="$acked" -v s="$accepted_s" 'BEGIN { if (s > 0 && n > 0) printf "%.1f", n / s; else print "NA" }')
    if [[ $t2 != NA ]]; then
        e2e_s=$(awk -v a="$t0" -v b="$t2" 'BEGIN { printf "%.3f", b - a }')
        e2e_rate=$(awk -v n="$acked" -v s="$e2e_s" 'BEGIN { if (s > 0 && n > 0) printf "%.1f", n / s; else print "NA" }')
    else
        e2e_s=NA e2e_rate=NA
    fi
    local note_text=""
    if ((${#notes[@]} > 0)); then
        note_text=$(printf '%s | ' "${notes[@]}")
        note_text=${note_text% | }
        { echo "== notes"; printf '%s\n' "${notes[@]}"; } >>"$problems"
    fi
    printf '%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s\n' \
        "$size" "$sessions" "$run" "$server" "$messages" "$acked" "$sink_count" "$src_rc" \
        "$accepted_s" "$e2e_s" "$acc_rate" "$e2e_rate" "$peak_mem" "$mem_kind" "$peak_pss" \
        "$cpu_s" "$mismatch" "$load1" "$busy_pct" "$others_pct" \
        "$(awk -v t="$sampler_ticks" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", t / hz }')" "$(csv_field "$note_text")" >>"$OUT/runs.csv"
    local mem_mib pss_mib
    mem_mib=$(awk -v k="$peak_mem" 'BEGIN { if (k == "NA") print "NA"; else printf "%.0f", k / 1024 }')
    pss_mib=$(awk -v k="$peak_pss" 'BEGIN { if (k == "NA") print "NA"; else printf "%.0f", k / 1024 }')
    say "$(printf '  %-9s %-22s acked %6s in %7ss = %8s/s | sink %6s after %7ss = %8s/s | peak %4s MiB (PSS %4s) | CPU %6ss | busy %3s%% (others %3s%%)' \
        "$server" "$label" "$acked" "$accepted_s" "$acc_rate" "$sink_count" "$e2e_s" "$e2e_rate" "$mem_mib" "$pss_mib" "$cpu_s" "$busy_pct" "$others_pct")"
    local n
    for n in "${notes[@]}"; do say "      ! $n"; done
    if [[ $KEEP_WORK != 1 ]]; then rm -rf "$dir"; fi
}

# ---------------------------------------------------------------------------------------------
# The environment, then every run

declare -A BACKLOG_SEEN=()
{
    echo "date:        $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "machine:     $(nproc) cores, $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo), $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
    echo "kernel:      $(uname -sr)"
    echo "work dir:    a temporary directory (${TMPDIR:-/tmp}) on $(df -PT "$WORK" | awk 'NR == 2 { print $2 " (" $1 ")" }')"
    echo "load before: $(uptime)"
    if wants RelayMta; then
        echo "RelayMta:    $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')$( [[ -z $(git -C "$REPO" status --porcelain -- src 2>/dev/null) ]] || echo ' (src modified)'), Release, .NET $(dotnet --version 2>/dev/null); RelayMta.dll $(date -u -r "$DLL" '+%H:%M:%S UTC'), run from a copy"
    fi
    if wants RelayMta && [[ -n $(git -C "$REPO" status --porcelain -- src 2>/dev/null) ]]; then
        echo "             uncommitted changes in src/ at build time:"
        git -C "$REPO" status --porcelain -- src 2>/dev/null | sed 's/^/               /'
    fi
    echo "Postfix:     $(postconf -d -h mail_version 2>/dev/null) (Debian package; smtp-source, smtp-sink from it)"
    echo "load:        smtp-source -c $SOURCE_OPTS -s SESSIONS -m MESSAGES -l SIZE, -f $SENDER -t $RECIPIENT; warm-up before each measured run: RelayMta $WARMUP_RELAYMTA, Postfix $WARMUP_POSTFIX messages ($WARMUP_SESSIONS sessions, 1 KiB)"
    echo "settings:    sizes ${SIZE_LIST[*]} bytes; sessions $SESSIONS (below $LARGE_SIZE bytes, $MESSAGES messages), $LARGE_SESSIONS (from $LARGE_SIZE bytes, $LARGE_MESSAGES messages); $RUNS run(s)"
    echo "Postfix defaults that matter here (not overridden; postconf -d):"
    for p in default_process_limit default_destination_concurrency_limit smtp_connection_cache_on_demand in_flow_delay qmgr_message_active_limit; do
        echo "  $p = $(postconf -d -h "$p" 2>/dev/null)"
    done
    echo "  durability: cleanup fsyncs each queue file before smtpd answers 250 (always)"
    echo "  default_process_limit caps smtpd at that many sessions served at once; further sessions wait in the listen queue"
    echo "Postfix changes (benchmarks/compare/postfix-*.in): loopback only, relayhost = smtp-sink, mynetworks = 127.0.0.0/8,"
    echo "  no local delivery, no chroot, smtpd_peername_lookup = no, maillog_file instead of syslog"
    echo "RelayMta (benchmarks/compare/relay.hocon.in): defaults plus smarthost = smtp-sink, spool in the work dir (fsync always on),"
    echo "  per-IP limits raised; outbound.max-connections-per-destination = 20 (default), as Postfix's concurrency limit"
} >"$OUT/environment.txt"
cat "$OUT/environment.txt"
echo

echo "size_bytes,sessions,run,server,messages,acked,sink_count,source_rc,accepted_seconds,e2e_seconds,accepted_per_s,e2e_per_s,peak_mem_kib,peak_mem_kind,peak_pss_kib,cpu_seconds,mismatch,load1,machine_busy_pct,others_busy_pct,sampler_cpu_seconds,notes" >"$OUT/runs.csv"

for size in "${SIZE_LIST[@]}"; do
    if ((size >= LARGE_SIZE)); then
        read -r -a sess_list <<<"$LARGE_SESSIONS"
        messages=$LARGE_MESSAGES
    else
        read -r -a sess_list <<<"$SESSIONS"
        messages=$MESSAGES
    fi
    for sessions in "${sess_list[@]}"; do
        human_size "$size"
        say "== $REPLY messages, $sessions session(s), $messages messages per run"
        for ((run = 1; run <= RUNS; run++)); do
            # the sink alone first, then both servers, their order alternating between runs
            order=(smtp-sink RelayMta Postfix)
            ((run % 2 == 1)) || order=(smtp-sink Postfix RelayMta)
            for server in "${order[@]}"; do
                wants "$server" || continue
                run_one "$server" "$size" "$sessions" "$messages" "$run"
            done
        done
    done
done

echo "load after:  $(uptime)" >>"$OUT/environment.txt"
say "load after: $(uptime)"
print_report
