#!/usr/bin/env bash
# Fuzz one target of src/RelayMta.Protocol with AFL++ and SharpFuzz for a bounded time.
#
#   tests/RelayMta.Fuzz/fuzz/run.sh TARGET [SECONDS] [FINDINGS_DIR]
#
# TARGET is one of: command line data reply stuff header (see `--list` of the harness).
# SECONDS defaults to 60; afl-fuzz stops by itself after that (-V). FINDINGS_DIR defaults to
# $RELAYMTA_FUZZ_HOME/findings/TARGET, outside the repository, where RELAYMTA_FUZZ_HOME defaults
# to ~/.cache/relaymta-fuzz; a second run into the same folder resumes from its queue.
#
# It installs what is missing (afl++ from apt, the dotnet tool SharpFuzz.CommandLine into
# $RELAYMTA_FUZZ_HOME/tools), publishes tests/RelayMta.Fuzz into $RELAYMTA_FUZZ_HOME/build/TARGET,
# instruments RelayMta.Protocol.dll there, writes the target's seeds and AFL dictionary, runs
# afl-fuzz, prints the statistics and replays every crash and hang it saved. Exit status: 0 when
# nothing was found, 1 when afl-fuzz saved crashes or hangs, 2 on a usage or setup error.
#
# Environment: FUZZ_TIMEOUT_MS (per input, default 5000), FUZZ_EXTRA_AFL_ARGS (appended to afl-fuzz).
set -euo pipefail

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[[ $# -ge 1 && $1 != -h && $1 != --help ]] || usage
target=$1
seconds=${2:-60}
[[ $seconds =~ ^[0-9]+$ && $seconds -gt 0 ]] || { echo "SECONDS must be a positive integer" >&2; exit 2; }
case $target in command|line|data|reply|stuff|header) ;; *) echo "unknown target '$target'" >&2; usage ;; esac

here=$(cd "$(dirname "$0")" && pwd)
project=$(cd "$here/.." && pwd)/RelayMta.Fuzz.csproj
home=${RELAYMTA_FUZZ_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/relaymta-fuzz}
findings=${3:-$home/findings/$target}
tools=$home/tools
build=$home/build/$target
seeds=$home/seeds/$target
dict=$home/dict/$target.dict
sharpfuzz_version=2.3.0
mkdir -p "$home" "$tools" "$(dirname "$findings")" "$home/dict"

# --- what is missing -------------------------------------------------------------------------
if ! command -v afl-fuzz >/dev/null; then
  echo "== installing afl++ (apt)"
  if [[ $(id -u) -eq 0 ]]; then sudo=""; elif command -v sudo >/dev/null; then sudo=sudo; else
    echo "afl-fuzz is missing and there is no root or sudo to install afl++" >&2; exit 2; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq afl++ >/dev/null
fi
if [[ ! -x $tools/sharpfuzz ]]; then
  echo "== installing SharpFuzz.CommandLine $sharpfuzz_version into $tools"
  dotnet tool install SharpFuzz.CommandLine --version "$sharpfuzz_version" --tool-path "$tools" >/dev/null
fi

# --- build and instrument ----------------------------------------------------------------------
# Publishing writes the project's obj/ folder: runs started side by side take turns here.
exec 9>"$home/build.lock"
flock 9
echo "== publishing $project into $build"
rm -rf "$build"
dotnet publish "$project" -c Release -o "$build" --nologo -v quiet
# An uninstrumented copy replays findings: instrumented code needs afl-fuzz's shared memory.
rm -rf "$build.plain"
cp -r "$build" "$build.plain"
echo "== instrumenting RelayMta.Protocol.dll"
"$tools/sharpfuzz" "$build/RelayMta.Protocol.dll"
flock -u 9

harness=(dotnet "$build/RelayMta.Fuzz.dll" "$target")
replay=(dotnet "$build.plain/RelayMta.Fuzz.dll" "$target")
rm -rf "$seeds"
"${harness[@]}" --write-seeds "$seeds"
"${harness[@]}" --write-dict "$dict"

# --- fuzz ----------------------------------------------------------------------------------------
export AFL_SKIP_BIN_CHECK=1                     # the target binary is dotnet; SharpFuzz instruments the IL
export AFL_SKIP_CPUFREQ=1
export AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1  # core_pattern may pipe to a crash handler
export AFL_TRY_AFFINITY=1                       # bind to a free core if there is one, run anyway if not
export AFL_FORKSRV_INIT_TMOUT=60000             # the .NET runtime takes a moment to start
export AFL_AUTORESUME=1                         # an existing findings folder is resumed, not refused
export AFL_NO_UI=1
export DOTNET_TieredPGO=0

echo "== afl-fuzz on '$target' for $seconds s; findings in $findings"
# shellcheck disable=SC2086
# afl-fuzz's full output goes to $findings.log; its per-test-case chatter is left out here.
afl-fuzz -i "$seeds" -o "$findings" -x "$dict" -t "${FUZZ_TIMEOUT_MS:-5000}" -m none -V "$seconds" \
  ${FUZZ_EXTRA_AFL_ARGS:-} -- "${harness[@]}" </dev/null 2>&1 | tee "$findings.log" | grep --line-buffered -v 'Fuzzing test case' || true

# --- report --------------------------------------------------------------------------------------
stats=$findings/default/fuzzer_stats
if [[ ! -f $stats ]]; then echo "afl-fuzz wrote no statistics (see its output above)" >&2; exit 2; fi
echo "== statistics ($stats)"
grep -E '^(run_time|execs_done|execs_per_sec|corpus_count|bitmap_cvg|edges_found|total_edges|saved_crashes|saved_hangs|stability) ' "$stats" || true
crashes=$(find "$findings/default/crashes" -type f -name 'id:*' 2>/dev/null | wc -l)
hangs=$(find "$findings/default/hangs" -type f -name 'id:*' 2>/dev/null | wc -l)
if [[ $crashes -gt 0 || $hangs -gt 0 ]]; then
  echo "== $crashes crash(es), $hangs hang(s); replaying them"
  for dir in "$findings/default/crashes" "$findings/default/hangs"; do
    [[ -n $(find "$dir" -type f -name 'id:*' 2>/dev/null) ]] && timeout 600 "${replay[@]}" --replay "$dir" || true
  done
  echo "minimise one with: AFL_SKIP_BIN_CHECK=1 afl-tmin -i FILE -o FILE.min -t 5000 -m none -- ${harness[*]}"
  echo "replay one with:   ${replay[*]} --replay FILE"
  exit 1
fi
echo "== no crash, no hang"
