#!/usr/bin/env bash
# Builds one libFuzzer target and runs it for a bounded time.
#
#   fuzz/run.sh [resp|frames]                 build, write seeds, fuzz for $FUZZ_SECONDS (default 60) seconds
#   FUZZ_SECONDS=600 fuzz/run.sh frames
#   fuzz/run.sh [resp|frames] --build-only    only build
#   fuzz/run.sh [resp|frames] --regressions   only re-run the kept cases once
#
# resp (default): the RESP command decoder. Seeds and every crash found land in Tests/RESPServerTests/FuzzCases/
# (crashes as crash-<sha1>), which FuzzRegressionTests re-checks in CI without libFuzzer.
# frames: the ReplicationSec frame decoder, handshake and record opener (FuzzSecureFrames); crashes land in
# fuzz/SecureFramesFailCases/ and are replayed first on every run; FrameFuzzTests runs the same checks in CI on a
# deterministic corpus.
# The growing working corpus stays in fuzz/corpus/ (git-ignored). Extra libFuzzer flags can be passed in
# FUZZ_FLAGS (e.g. FUZZ_FLAGS="-jobs=2").
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
target=resp
case "${1:-}" in
    resp|frames) target="$1"; shift ;;
esac
if [[ $target == resp ]]; then
    product=FuzzRESPDecoder
    cases="$root/Tests/RESPServerTests/FuzzCases"
    corpus="$here/corpus/RESPDecoder"
    extra_flags=(-dict="$here/resp.dict" -max_len=8192)
else
    product=FuzzSecureFrames
    cases="$here/SecureFramesFailCases"
    corpus="$here/corpus/SecureFrames"
    extra_flags=(-max_len=4096)
fi
configuration="${FUZZ_CONFIGURATION:-release}"
seconds="${FUZZ_SECONDS:-60}"

build() {
    (cd "$here" && swift build -c "$configuration" --product "$product" \
        -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library)
}

# Valid pipelines, inline commands and the edge cases of redis's tests/unit/protocol.tcl.
write_seeds() {
    mkdir -p "$cases" "$corpus"
    [[ $target == resp ]] || return 0
    seed() { printf "$2" > "$cases/seed-$1"; }
    seed ping-multibulk           '*1\r\n$4\r\nPING\r\n'
    seed set-get-pipeline         '*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n'
    seed mixed-pipeline           '*1\r\n$4\r\nPING\r\nGET k\r\n*0\r\n*2\r\n$3\r\nGET\r\n$0\r\n\r\nPING\n'
    seed binary-bulk              '*2\r\n$4\r\nECHO\r\n$4\r\n\000\r\n\377\r\n'
    seed mset-many                '*9\r\n$4\r\nMSET\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n$1\r\nc\r\n$1\r\n3\r\n$1\r\nd\r\n$1\r\n4\r\n'
    seed inline-quotes            'set k "hello world"\r\nget '"'"'k'"'"'\nECHO "\\x41\\x42\\n\\t\\"q"\r\n'
    seed inline-unbalanced        'ECHO "unterminated\r\n'
    seed inline-closing-quote     'ECHO "a"b\r\n'
    seed empty-query              '\r\n*-10\r\n*0\r\nPING\r\n'
    seed out-of-range-multibulk   '*3000000000\r\n'
    seed wrong-multibulk-header   '*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n'
    seed negative-bulk-length     '*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$-10\r\n'
    seed non-number-bulk          '*1\r\n$blabla\r\n'
    seed non-number-multibulk     '*blabla\r\n'
    seed out-of-range-bulk        '*1\r\n$2147483648\r\n'
    seed too-many-args            '*20\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n'
    seed big-bulk-small-limit     '*2\r\n$4\r\nECHO\r\n$40\r\n0123456789012345678901234567890123456789\r\n'
    seed long-inline-small-limit  'ECHO aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n'
    seed partial-frame            '*2\r\n$3\r\nGET\r\n$5\r\nhel'
    seed skipped-crlf-bytes       '*1\r\n$3\r\nabcXY*1\r\n$4\r\nPING\r\n'
    seed huge-numbers             '*9223372036854775807\r\n*1\r\n$-9223372036854775808\r\n'
    seed leading-zero             '*01\r\n$01\r\na\r\n'
}

regressions() {
    local binary="$1"
    local files=()
    for file in "$cases"/*; do [[ -f $file && $(basename "$file") != .gitkeep ]] && files+=("$file"); done
    [[ ${#files[@]} -eq 0 ]] || "$binary" -runs=0 "${files[@]}"
}

cd "$root"
# Swift's own crash backtracer and ASan get in each other's way; libFuzzer reports the crash itself.
export SWIFT_BACKTRACE=enable=no
build
binary="$here/.build/$configuration/$product"
case "${1:-}" in
    --build-only) exit 0 ;;
    --regressions) write_seeds; regressions "$binary"; exit 0 ;;
esac
write_seeds
# shellcheck disable=SC2086
"$binary" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "${extra_flags[@]}" \
    -artifact_prefix="$cases/" ${FUZZ_FLAGS:-} "$corpus" "$cases"
