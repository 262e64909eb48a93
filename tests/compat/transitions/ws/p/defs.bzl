BuildSettingInfo = provider(fields = ["value"])

def _flag_impl(ctx):
    return BuildSettingInfo(value = ctx.build_setting_value)

string_flag = rule(implementation = _flag_impl, build_setting = config.string(flag = True))
int_setting = rule(implementation = _flag_impl, build_setting = config.int())

ShowInfo = provider(fields = ["lines"])

def _show_impl(ctx):
    lines = ["%s: color=%s level=%s mode=%s cpu=%s" % (
        ctx.label.name,
        ctx.attr._color[BuildSettingInfo].value,
        ctx.attr._level[BuildSettingInfo].value,
        ctx.var["COMPILATION_MODE"],
        ctx.var["TARGET_CPU"],
    )]
    for dep in ctx.attr.deps:
        lines += ["  " + line for line in dep[ShowInfo].lines]
    return [ShowInfo(lines = lines)]

_show_attrs = {
    "deps": attr.label_list(),
    "_color": attr.label(default = "//p:color"),
    "_level": attr.label(default = "//p:level"),
}

show = rule(implementation = _show_impl, attrs = _show_attrs)

def _paint_impl(settings, attr):
    return {
        "//p:color": attr.paint,
        "//p:level": settings["//p:level"] + 1,
    }

paint = transition(
    implementation = _paint_impl,
    inputs = ["//p:level"],
    outputs = ["//p:color", "//p:level"],
)

def _opt_impl(settings, attr):
    return {"//command_line_option:compilation_mode": "opt"}

to_opt = transition(
    implementation = _opt_impl,
    inputs = [],
    outputs = ["//command_line_option:compilation_mode"],
)

painted = rule(
    implementation = _show_impl,
    attrs = dict(
        _show_attrs,
        paint = attr.string(),
        _allowlist_function_transition = attr.label(
            default = "@bazel_tools//tools/allowlists/function_transition_allowlist",
        ),
    ),
    cfg = paint,
)

def _top_impl(ctx):
    lines = []
    for dep in ctx.attr.deps + ctx.attr.opt_deps:
        lines += dep[ShowInfo].lines
    out = ctx.actions.declare_file(ctx.label.name + ".out")
    ctx.actions.write(out, "\n".join(lines) + "\n")
    return [DefaultInfo(files = depset([out]))]

top = rule(implementation = _top_impl, attrs = {
    "deps": attr.label_list(),
    "opt_deps": attr.label_list(cfg = to_opt),
    "_allowlist_function_transition": attr.label(
        default = "@bazel_tools//tools/allowlists/function_transition_allowlist",
    ),
})
