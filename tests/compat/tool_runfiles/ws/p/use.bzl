"""Actions that run tools with runfiles: the tool's tree is beside it, as in Bazel."""

def _use_tools_impl(ctx):
    shouted = ctx.actions.declare_file("shouted.out")
    ctx.actions.run(
        executable = ctx.executable._shout,
        arguments = ["run", shouted.path],
        outputs = [shouted],
        mnemonic = "Shout",
    )
    shell = ctx.actions.declare_file("shell.out")
    ctx.actions.run_shell(
        command = "%s run_shell > %s" % (ctx.executable._shout.path, shell.path),
        tools = [ctx.executable._shout],
        outputs = [shell],
    )
    via_files_to_run = ctx.actions.declare_file("files_to_run.out")
    ctx.actions.run_shell(
        command = "$1 files_to_run > $2",
        arguments = [ctx.executable._shout.path, via_files_to_run.path],
        tools = [ctx.attr._shout[DefaultInfo].files_to_run],
        outputs = [via_files_to_run],
    )
    linked = ctx.actions.declare_file("linked.out")
    ctx.actions.run_shell(
        command = "%s linked > %s" % (ctx.executable._linked.path, linked.path),
        tools = [ctx.executable._linked],
        outputs = [linked],
    )
    return [DefaultInfo(files = depset([shouted, shell, via_files_to_run, linked]))]

use_tools = rule(
    implementation = _use_tools_impl,
    attrs = {
        "_shout": attr.label(default = "//tools:shout", executable = True, cfg = "exec"),
        "_linked": attr.label(default = "//tools:linked", executable = True, cfg = "exec"),
    },
)
