_MODES = {
    "loud": Label("//p:loud.txt"),
    "quiet": Label("//p:quiet.txt"),
}

def _pick(mode):
    return _MODES[mode]

def _script_impl(ctx):
    ctx.actions.write(
        ctx.outputs.executable,
        "#!/bin/sh\ncat %s\n" % ctx.file._words.short_path,
        is_executable = True,
    )
    report = ctx.actions.declare_file(ctx.label.name + ".out")
    ctx.actions.write(report, "mode %s uses %s; executable %s\n" % (
        ctx.attr.mode,
        ctx.file._words.basename,
        ctx.outputs.executable.basename,
    ))
    return [DefaultInfo(
        files = depset([ctx.outputs.executable, report]),
        runfiles = ctx.runfiles(files = [ctx.file._words]),
    )]

script = rule(
    implementation = _script_impl,
    executable = True,
    attrs = {
        "mode": attr.string(default = "quiet"),
        "_words": attr.label(default = _pick, allow_single_file = True),
    },
)
