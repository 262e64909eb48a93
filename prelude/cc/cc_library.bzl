"""Analysis of `cc_library` targets: compile, archive, and pass `CcInfo` on; the
attributes and docs are declared in rules.bzl."""

load(
    ":compile.bzl",
    "cc_toolchain",
    "compile",
    "compile_info",
    "expand_flags",
    "split_files",
    "uses_cxx",
    "virtual_includes",
    "with_deps",
)
load(":link.bzl", "archive")
load(":providers.bzl", "make_cc_info")

def cc_library_impl(ctx):
    """Objects from `srcs` in `lib<name>.a`; headers, include dirs, defines, archives and
    linkopts for dependents in `CcInfo`. `implementation_deps` are compiled against
    but only their archives and linkopts are passed on."""
    toolchain = cc_toolchain(ctx)
    srcs = split_files(ctx, "srcs")
    public = split_files(ctx, "hdrs", allow_compiled = False).headers
    textual = split_files(ctx, "textual_hdrs", allow_compiled = False).headers
    headers = public + srcs.headers + textual
    deps = ctx.attr.deps
    implementation_deps = ctx.attr.implementation_deps
    if ctx.attr.linkstamp != None:
        fail("'linkstamp' is not supported by bp yet")
    if ctx.attr.nocopts:
        fail("'nocopts' is not supported (Bazel removed it too); remove the flags from " +
             "'copts' instead")

    virtual = virtual_includes(ctx, public)
    if virtual != None:
        info = compile_info(ctx, headers + virtual.headers, deps, [virtual.include_dir])
    else:
        info = compile_info(ctx, headers, deps)
    objects = compile(ctx, toolchain, srcs.sources, with_deps(info, implementation_deps))
    objects += srcs.objects

    own = []
    if objects:
        own.append(archive(ctx, toolchain, objects, ctx.attr.alwayslink))
    own += srcs.libraries
    cc_info = make_cc_info(
        ctx.label,
        info.headers,
        info.include_dirs,
        info.defines,
        own,
        expand_flags(ctx, "linkopts"),
        deps + implementation_deps,
        uses_cxx(srcs.sources, deps + implementation_deps),
        direct_headers = public,
    )
    runfiles = ctx.runfiles(files = ctx.files.data).merge_all(
        [d[DefaultInfo].runfiles for d in deps + implementation_deps + ctx.attr.data],
    )
    return [DefaultInfo(files = depset(own or headers), runfiles = runfiles), cc_info]
