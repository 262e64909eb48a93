def _linked_tool_impl(ctx):
    script = ctx.actions.declare_file(ctx.label.name + ".sh")
    ctx.actions.write(script, "\n".join([
        "#!/bin/bash",
        "set -euo pipefail",
        "tree=\"$0.runfiles\"",
        "cat \"$tree/compat/renamed/greeting.txt\"",
        "cat \"$tree/at_the_root/greeting.txt\"",
        "RUNFILES_DIR=\"$tree\" \"$tree/compat/%s\" \"$1\"" % ctx.executable.inner.short_path,
        "cd \"$tree\" && ls compat/renamed at_the_root",
        "",
    ]), is_executable = True)
    runfiles = ctx.runfiles(
        symlinks = {"renamed/greeting.txt": ctx.file.greeting},
        root_symlinks = {"at_the_root/greeting.txt": ctx.file.greeting},
    ).merge(ctx.attr.inner[DefaultInfo].default_runfiles)
    return [DefaultInfo(executable = script, runfiles = runfiles)]

linked_tool = rule(
    implementation = _linked_tool_impl,
    executable = True,
    attrs = {
        "greeting": attr.label(allow_single_file = True),
        "inner": attr.label(executable = True, cfg = "exec"),
    },
)
