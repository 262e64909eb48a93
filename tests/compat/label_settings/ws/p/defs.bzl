ToolInfo = provider(fields = ["type"])

def _tool_impl(ctx):
    return [ToolInfo(type = ctx.label.name)]

tool = rule(implementation = _tool_impl)

def _report_impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".out")
    ctx.actions.write(out, "tool: %s\nhelper: %s\nmode: %s\n" % (
        ctx.attr._tool[ToolInfo].type,
        ctx.attr._helper[ToolInfo].type,
        ctx.attr.mode,
    ))
    return [DefaultInfo(files = depset([out]))]

report = rule(
    implementation = _report_impl,
    attrs = {
        "mode": attr.string(),
        "_tool": attr.label(default = ":tool"),
        "_helper": attr.label(default = ":helper"),
    },
)

def _to_wrench(settings, attr):
    return {"//p:helper": "//p:wrench", "//p:tool": "//p:hammer"}

_wrench = transition(
    implementation = _to_wrench,
    inputs = [],
    outputs = ["//p:helper", "//p:tool"],
)

def _transitioned_impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".out")
    ctx.actions.run_shell(
        inputs = ctx.files.dep,
        outputs = [out],
        command = "cat %s > %s" % (ctx.files.dep[0].path, out.path),
    )
    return [DefaultInfo(files = depset([out]))]

transitioned = rule(
    implementation = _transitioned_impl,
    attrs = {
        "dep": attr.label(cfg = _wrench),
        "_allowlist_function_transition": attr.label(
            default = "@bazel_tools//tools/allowlists/function_transition_allowlist",
        ),
    },
)
