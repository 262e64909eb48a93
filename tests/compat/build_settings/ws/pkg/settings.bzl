BuildSettingInfo = provider(fields = ["value"])

def _impl(ctx):
    allowed = getattr(ctx.attr, "values", [])
    if allowed and ctx.build_setting_value not in allowed:
        fail("%s: %r is not one of %s" % (ctx.label, ctx.build_setting_value, allowed))
    return BuildSettingInfo(value = ctx.build_setting_value)

string_flag = rule(
    implementation = _impl,
    build_setting = config.string(flag = True),
    attrs = {"values": attr.string_list()},
)
bool_flag = rule(implementation = _impl, build_setting = config.bool(flag = True))
int_flag = rule(implementation = _impl, build_setting = config.int(flag = True))
string_list_flag = rule(implementation = _impl, build_setting = config.string_list(flag = True))
int_setting = rule(implementation = _impl, build_setting = config.int(flag = False))

def _show_impl(ctx):
    lines = ["mode: " + ctx.attr.mode]
    for dep in ctx.attr.settings:
        value = dep[BuildSettingInfo].value
        lines.append("%s = %r (%s)" % (dep.label.name, value, type(value)))
    out = ctx.actions.declare_file(ctx.label.name + ".out")
    ctx.actions.write(out, "\n".join(lines) + "\n")
    return [DefaultInfo(files = depset([out]))]

show = rule(
    implementation = _show_impl,
    attrs = {"settings": attr.label_list(), "mode": attr.string()},
)
