#!/bin/sh
# bp's test wrapper: the program of every TestRunner action (Bazel's test-setup.sh).
#
#   sh test-setup.sh UNIT ROOTED LABEL EXECUTABLE [ARG...]
#
# Runs in the exec root (or a sandbox or remote input root standing in for it), and
# knows nothing of bp: everything comes from its arguments and environment.
#   UNIT        exec path of the directory of test.log, test.xml and test.outputs/
#   ROOTED      comma-separated names of the variables holding exec paths (TEST_TMPDIR,
#               HOME, ...), made absolute from the working directory; a variable the
#               user set is not among them and keeps its value
#   LABEL       the test's label, for the JUnit report
#   EXECUTABLE  exec path of the test program, run with the ARGs in its runfiles tree
#               (<EXECUTABLE>.runfiles/<TEST_WORKSPACE>), stdout and stderr to test.log
# Writes test.xml when the test did not, and exits with the test's exit code.
# POSIX sh only (dash).

unit=$1 rooted=$2 label=$3 exe=$4
shift 4
root=$(pwd -P)

saved_ifs=$IFS
IFS=,
for name in $rooted; do
    eval "value=\${$name-}"
    eval "$name=\$root/\$value"
    export "$name"
done
IFS=$saved_ifs

log=$root/$unit/test.log
xml=$root/$unit/test.xml
mkdir -p "$root/$unit/test.outputs"
case ",$rooted," in
    *,TEST_TMPDIR,*) rm -rf "$TEST_TMPDIR" ;;
esac
mkdir -p "$TEST_TMPDIR" "$HOME"

now() {
    t=$(date +%s.%N 2>/dev/null)
    case $t in
        *[!0-9.]* | '') t=$(date +%s) ;;
    esac
    echo "$t"
}

start=$(now)
work=$root/$exe.runfiles/${TEST_WORKSPACE:-__main__}
mkdir -p "$work"
if cd -P "$work"; then
    "$root/$exe" "$@" >"$log" 2>&1
    code=$?
else
    echo "bp could not enter the runfiles tree $work" >"$log"
    code=1
fi
end=$(now)
cd "$root" || exit 1
case ",$rooted," in
    *,TEST_TMPDIR,*) rm -rf "$TEST_TMPDIR" ;;
esac

utf8() {
    # what is not UTF-8 dropped (iconv, where there is one)
    if command -v iconv >/dev/null 2>&1; then iconv -c -f UTF-8 -t UTF-8; else cat; fi
}

escape() {
    # XML text: the markup characters escaped, control characters XML forbids dropped
    utf8 | tr -d '\000-\010\013\014\016-\037' | sed -e 's/&/\&amp;/g' \
        -e 's/</\&lt;/g' -e 's/>/\&gt;/g' -e 's/"/\&quot;/g'
}

if [ ! -s "$xml" ]; then
    duration=$(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.3f", e - s }')
    name=$(printf '%s' "$label" | escape)
    failures=0
    [ "$code" -eq 0 ] || failures=1
    {
        echo "<?xml version='1.0' encoding='UTF-8'?>"
        printf '<testsuites><testsuite name="%s" tests="1" failures="%s" errors="0" ' \
            "$name" "$failures"
        printf 'time="%s"><testcase name="%s" classname="%s" status="run" time="%s">' \
            "$duration" "$name" "$name" "$duration"
        if [ "$code" -ne 0 ]; then
            printf '<failure message="exited with %s" type="">' "$code"
            escape <"$log"
            printf '</failure>'
        fi
        printf '</testcase><system-out>'
        escape <"$log"
        printf '</system-out></testsuite></testsuites>\n'
    } >"$xml"
fi
exit "$code"
