"""Analysis of `cc_binary` targets, and the executable half shared with `cc_test`:
compile, then link with every library of the dependencies; the attributes and docs are
declared in rules.bzl."""

load(":compile.bzl", "cc_toolchain", "compile", "compile_info", "expand", "expand_flags",
     "split_files", "uses_cxx")
load(":link.bzl", "libraries", "link", "linkopts")
load("<builtins>", "shell_quote")

def cc_executable(ctx):
    """Compiles `srcs` and links them with the archives of `deps` (and `malloc`) into
    the executable `<name>`; its runfiles hold it, `data`, and the runfiles of both."""
    if ctx.attr.linkshared:
        fail("'linkshared' (a shared library) is not supported by bp yet")
    if ctx.attr.dynamic_deps:
        fail("'dynamic_deps' is not supported by bp yet")
    if ctx.attr.nocopts:
        fail("'nocopts' is not supported (Bazel removed it too); remove the flags from " +
             "'copts' instead")
    toolchain = cc_toolchain(ctx)
    srcs = split_files(ctx, "srcs")
    deps = ctx.attr.deps
    link_deps = deps + ([ctx.attr.malloc] if ctx.attr.malloc != None else [])

    info = compile_info(ctx, srcs.headers, deps)
    objects = compile(ctx, toolchain, srcs.sources, info) + srcs.objects
    out = link(
        ctx,
        toolchain,
        objects,
        libraries(srcs.libraries, link_deps),
        linkopts(expand_flags(ctx, "linkopts"), link_deps),
        uses_cxx(srcs.sources, link_deps),
        extra_inputs = ctx.files.additional_linker_inputs,
    )
    _implicit_outputs(ctx, toolchain, out)
    runfiles = ctx.runfiles(files = [out] + ctx.files.data).merge_all(
        [d[DefaultInfo].runfiles for d in link_deps + ctx.attr.data],
    )
    providers = [DefaultInfo(files = depset([out]), executable = out, runfiles = runfiles)]
    if ctx.attr.env:
        environment = {k: expand(ctx, "env", v) for k, v in ctx.attr.env.items()}
        providers.append(RunEnvironmentInfo(environment = environment))
    return providers

def _implicit_outputs(ctx, toolchain, out):
    """`<name>.stripped` (the program without debug symbols, by the toolchain's `strip`)
    and `<name>.dwp` (empty: bp does not split debug info), built only when asked for,
    as Bazel's implicit outputs of cc_binary and cc_test."""
    ctx.actions.run_shell(
        outputs = [ctx.outputs.stripped],
        inputs = [out],
        command = "%s -S -p -o %s %s" % (toolchain.strip or "strip",
                                         shell_quote(ctx.outputs.stripped.path),
                                         shell_quote(out.path)),
        mnemonic = "CcStrip",
        progress_message = "Stripping %{output}",
    )
    ctx.actions.write(ctx.outputs.dwp, "")

def cc_binary_impl(ctx):
    """A program: see cc_executable."""
    return cc_executable(ctx)
