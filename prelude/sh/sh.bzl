"""Analysis of the shell rules' targets; the attributes and docs are declared in rules.bzl."""

def _runfiles(ctx, extra):
    runfiles = ctx.runfiles(files = extra + ctx.files.srcs + ctx.files.data)
    return runfiles.merge_all([d[DefaultInfo].runfiles for d in ctx.attr.deps + ctx.attr.data])

def _executable(ctx):
    if len(ctx.files.srcs) != 1:
        fail("%s needs exactly one file in 'srcs', got %d" %
             (ctx.label.name, len(ctx.files.srcs)))
    out = ctx.actions.declare_file(ctx.label.name)
    ctx.actions.symlink(output = out, target_file = ctx.files.srcs[0], is_executable = True)
    return [DefaultInfo(files = depset([out]), executable = out,
                        runfiles = _runfiles(ctx, [out]))]

def sh_binary_impl(ctx):
    """An executable link to the script, with its dependencies in the runfiles."""
    return _executable(ctx)

def sh_library_impl(ctx):
    """Scripts for sh_binary and sh_test to depend on: files plus runfiles."""
    return [DefaultInfo(files = depset(ctx.files.srcs), runfiles = _runfiles(ctx, []))]

def sh_test_impl(ctx):
    """A test: like sh_binary; bp test runs it."""
    return _executable(ctx)
