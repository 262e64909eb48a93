FlavorInfo = provider(fields = ["value"])

def _flavor_impl(ctx):
    return [FlavorInfo(value = ctx.build_setting_value)]

flavor = rule(implementation = _flavor_impl, build_setting = config.string(flag = True))

DescInfo = provider(fields = ["text", "file"])

def _describe_impl(ctx):
    text = "%s: flavor=%s mode=%s" % (
        ctx.label.name,
        ctx.attr._flavor[FlavorInfo].value,
        ctx.var["COMPILATION_MODE"],
    )
    out = ctx.actions.declare_file(ctx.label.name + ".txt")
    ctx.actions.write(out, text + "\n")
    return [DescInfo(text = text, file = out), DefaultInfo(files = depset([out]))]

describe = rule(
    implementation = _describe_impl,
    attrs = {"_flavor": attr.label(default = ":flavor")},
)

def _by_dict(settings, attr):
    return {
        "sweet": {"//p:flavor": "sweet", "//command_line_option:compilation_mode": "opt"},
        "sour": {"//p:flavor": "sour", "//command_line_option:compilation_mode": "dbg"},
    }

by_dict = transition(
    implementation = _by_dict,
    inputs = [],
    outputs = ["//p:flavor", "//command_line_option:compilation_mode"],
)

def _by_list(settings, attr):
    return [
        {"//p:flavor": "first"},
        {"//p:flavor": "second"},
    ]

by_list = transition(
    implementation = _by_list,
    inputs = [],
    outputs = ["//p:flavor"],
)

def _multi_impl(ctx):
    lines = []
    for key in sorted(ctx.split_attr.deps.keys()):
        for dep in ctx.split_attr.deps[key]:
            lines.append("deps[%s] %s" % (key, dep[DescInfo].text))
    for key in sorted(ctx.split_attr.one.keys()):
        lines.append("one[%s] %s" % (key, ctx.split_attr.one[key][DescInfo].text))
    lines.append("attr.deps: %s" % [d[DescInfo].text for d in ctx.attr.deps])
    lines.append("attr.one: %s" % type(ctx.attr.one))
    lines.append("attr.one texts: %s" % [d[DescInfo].text for d in ctx.attr.one])
    lines.append("attr.plain: %s" % ctx.attr.plain[DescInfo].text)
    lines.append("files.deps: %d" % len(ctx.files.deps))
    lines.append("split_attr has plain: %s" % hasattr(ctx.split_attr, "plain"))
    out = ctx.actions.declare_file(ctx.label.name + ".out")
    ctx.actions.write(out, "\n".join(lines) + "\n")

    # the branches' files are in their own configurations' directories
    copied = ctx.actions.declare_file(ctx.label.name + "_files.out")
    ctx.actions.run_shell(
        inputs = ctx.files.deps,
        outputs = [copied],
        command = "cat %s > %s" % (" ".join([f.path for f in ctx.files.deps]), copied.path),
    )
    return [DefaultInfo(files = depset([out, copied]))]

multi = rule(
    implementation = _multi_impl,
    attrs = {
        "deps": attr.label_list(cfg = by_dict),
        "one": attr.label(cfg = by_list),
        "plain": attr.label(),
        "_allowlist_function_transition": attr.label(
            default = "@bazel_tools//tools/allowlists/function_transition_allowlist",
        ),
    },
)
