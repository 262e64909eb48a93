# Offline stand-ins for the external repositories that Bazel 4.2's @bazel_tools
# would download (see docs/bazel-peer.md). Sourced by the scripts that record
# Bazel's answers; they define die().
#
#   offline_repos DIR   builds DIR/rules_cc and DIR/remote_coverage_tools, finds or
#                       unpacks rules_java, and sets rules_java and the array
#                       offline_overrides (the --override_repository flags).

offline_repos() {
    local tmp=$1
    # rules_cc: Bazel's own @bazel_tools BUILD files load these names from
    # @rules_cc//cc:defs.bzl; forward each one to the native rule.
    mkdir -p "$tmp/rules_cc/cc"
    touch "$tmp/rules_cc/WORKSPACE" "$tmp/rules_cc/BUILD" "$tmp/rules_cc/cc/BUILD"
    for r in cc_library cc_binary cc_test cc_toolchain cc_toolchain_suite cc_proto_library objc_library; do
        printf 'def %s(**kwargs):\n    native.%s(**kwargs)\n\n' "$r" "$r"
    done >"$tmp/rules_cc/cc/defs.bzl"

    # remote_coverage_tools: @bazel_tools//tools/test aliases two of its targets,
    # and sh_test's implicit dependencies reach those aliases.
    mkdir -p "$tmp/remote_coverage_tools"
    touch "$tmp/remote_coverage_tools/WORKSPACE"
    cat >"$tmp/remote_coverage_tools/BUILD" <<'EOF'
package(default_visibility = ["//visibility:public"])

filegroup(name = "coverage_report_generator")

filegroup(name = "lcov_merger")
EOF

    # rules_java: Debian's bazel-rules-java, unpacked without installing it.
    if [[ -n ${RULES_JAVA_DIR:-} ]]; then
        rules_java=$RULES_JAVA_DIR
    elif [[ -f /usr/share/bazel/rules/java/java/defs.bzl ]]; then
        rules_java=/usr/share/bazel/rules/java # the package is installed
    else
        (cd "$tmp" && apt-get download bazel-rules-java >/dev/null 2>&1) ||
            die "could not fetch Debian's bazel-rules-java (apt-get download bazel-rules-java)"
        dpkg -x "$tmp"/bazel-rules-java_*.deb "$tmp/rules_java_deb"
        rules_java=$tmp/rules_java_deb/usr/share/bazel/rules/java
    fi
    [[ -f $rules_java/java/defs.bzl ]] || die "no java/defs.bzl in $rules_java"

    offline_overrides=(
        --override_repository=rules_cc="$tmp/rules_cc"
        --override_repository=rules_java="$rules_java"
        --override_repository=remote_coverage_tools="$tmp/remote_coverage_tools"
    )
}
