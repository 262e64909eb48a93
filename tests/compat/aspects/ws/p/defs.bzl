NamesInfo = provider(fields = ["names"])
MarkInfo = provider(fields = [])

def _names_impl(target, ctx):
    names = ["%s %s sep=%s" % (target.label, ctx.rule.kind, ctx.attr.sep)]
    for dep in getattr(ctx.rule.attr, "deps", []):
        names += dep[NamesInfo].names
    actions = ["  %s -> %s" % (a.mnemonic, [f.basename for f in a.outputs.to_list()])
               for a in target.actions]
    out = ctx.actions.declare_file(ctx.label.name + ".names.out")
    ctx.actions.write(out, "\n".join(names) + "\n")
    return [NamesInfo(names = names + actions), OutputGroupInfo(names = depset([out]))]

names_aspect = aspect(
    implementation = _names_impl,
    attr_aspects = ["deps"],
    attrs = {"sep": attr.string(values = [",", ";"], default = ",")},
)

def _marked_impl(target, ctx):
    return [NamesInfo(names = ["marked " + str(target.label)])]

marked_aspect = aspect(implementation = _marked_impl, required_providers = [MarkInfo])

def _lib_impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".txt")
    ctx.actions.write(out, ctx.label.name)
    providers = [DefaultInfo(files = depset([out]))]
    if ctx.attr.mark:
        providers.append(MarkInfo())
    return providers

lib = rule(implementation = _lib_impl, attrs = {
    "deps": attr.label_list(),
    "mark": attr.bool(),
})

marked_lib = rule(
    implementation = _lib_impl,
    attrs = {"deps": attr.label_list(), "mark": attr.bool(default = True)},
    provides = [MarkInfo],
)

def _collect_impl(ctx):
    lines = []
    files = []
    for dep in ctx.attr.deps:
        lines += dep[NamesInfo].names
        files += dep[OutputGroupInfo].names.to_list()
    for dep in ctx.attr.marked:
        lines += dep[NamesInfo].names if NamesInfo in dep else ["unmarked " + str(dep.label)]
    out = ctx.actions.declare_file(ctx.label.name + ".out")
    ctx.actions.write(out, "\n".join(lines) + "\n")
    listing = ctx.actions.declare_file(ctx.label.name + ".files.out")
    ctx.actions.run_shell(
        outputs = [listing],
        inputs = files,
        command = "cat %s > %s" % (" ".join([f.path for f in files]), listing.path),
    )
    return [DefaultInfo(files = depset([out, listing]))]

collect = rule(implementation = _collect_impl, attrs = {
    "deps": attr.label_list(aspects = [names_aspect]),
    "marked": attr.label_list(aspects = [marked_aspect]),
    "sep": attr.string(default = ";"),
})

def _count_impl(target, ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".count.out")
    ctx.actions.write(out, "%s: %d actions, kind %s\n" % (
        target.label,
        len(target.actions),
        ctx.rule.kind,
    ))
    return [OutputGroupInfo(counts = depset([out]))]

count_aspect = aspect(implementation = _count_impl)
