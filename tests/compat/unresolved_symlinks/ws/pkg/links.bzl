def _made_impl(ctx):
    data = ctx.actions.declare_file(ctx.label.name + ".data")
    ctx.actions.write(data, ctx.attr.text + "\n")
    near = ctx.actions.declare_symlink(ctx.label.name + ".near")
    far = ctx.actions.declare_symlink(ctx.label.name + ".far")
    ctx.actions.run_shell(
        outputs = [near, far],
        command = "ln -s %s %s && ln -s ../nowhere/at/all %s" % (data.basename, near.path, far.path),
        mnemonic = "MakeLinks",
    )
    return [DefaultInfo(files = depset([data, near, far]))]

made = rule(implementation = _made_impl, attrs = {"text": attr.string()})

def _read_impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".out")
    lines = []
    for f in ctx.files.srcs:
        if f.basename.endswith(".near"):
            lines.append("echo %s: $(readlink %s) $(cat %s)" % (f.basename, f.path, f.path))
        elif f.basename.endswith(".far"):
            lines.append("echo %s: $(readlink %s)" % (f.basename, f.path))
        else:
            lines.append("echo %s: is_directory=%s" % (f.basename, f.is_directory))
    ctx.actions.run_shell(
        inputs = ctx.files.srcs,
        outputs = [out],
        command = "(%s) > %s" % ("; ".join(lines), out.path),
    )
    return [DefaultInfo(files = depset([out]))]

read = rule(implementation = _read_impl, attrs = {"srcs": attr.label_list()})
