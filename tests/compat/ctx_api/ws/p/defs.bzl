def _tool_impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".sh")
    ctx.actions.write(out, "#!/bin/sh\necho tool\n", is_executable = True)
    data = ctx.actions.declare_file(ctx.label.name + ".data")
    ctx.actions.write(data, "data\n")
    return [DefaultInfo(executable = out, runfiles = ctx.runfiles(files = [data]))]

tool = rule(implementation = _tool_impl, executable = True)

def _inspect_impl(ctx):
    linux = ctx.attr._linux[platform_common.ConstraintValueInfo]
    windows = ctx.attr._windows[platform_common.ConstraintValueInfo]
    inputs, manifests = ctx.resolve_tools(tools = [ctx.attr.tool])
    lines = [
        "linux: %s" % ctx.target_platform_has_constraint(linux),
        "windows: %s" % ctx.target_platform_has_constraint(windows),
        "tool in inputs: %s" % ("t.sh" in [f.basename for f in inputs.to_list()]),
        "own output: " + ctx.expand_location("$(rootpath report.out)"),
        "tool: " + ctx.expand_location("$(rootpath :t)", [ctx.attr.tool]),
        "executable: " + ctx.executable.tool.basename,
        "files_to_run: " + ctx.attr.tool.files_to_run.executable.basename,
    ]
    ctx.actions.write(ctx.outputs.report, "\n".join(lines) + "\n")
    return []

inspect = rule(implementation = _inspect_impl, attrs = {
    "report": attr.output(),
    "tool": attr.label(executable = True, cfg = "target"),
    "_linux": attr.label(default = "@platforms//os:linux"),
    "_windows": attr.label(default = "@platforms//os:windows"),
})

def _run_impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".out")
    ctx.actions.run_shell(
        outputs = [out],
        tools = [ctx.attr.tool.files_to_run],
        command = "%s > %s" % (ctx.executable.tool.path, out.path),
    )
    return [DefaultInfo(files = depset([out]))]

run = rule(implementation = _run_impl, attrs = {
    "tool": attr.label(executable = True, cfg = "exec"),
})
