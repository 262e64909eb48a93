"""@bazel_tools//tools/cpp:compiler: the C++ compiler's name as a build setting."""

def _compiler_flag_impl(ctx):
    return []

compiler_flag = rule(
    implementation = _compiler_flag_impl,
    build_setting = config.string(flag = True),
)
