def _impl(ctx):
    ctx.actions.write(ctx.outputs.out, "%s in %s\n" % (ctx.label.name, ctx.attr.lang))
    ctx.actions.write(ctx.outputs.listing, "listing of %s\n" % ctx.outputs.out.basename)
    return []

report = rule(
    implementation = _impl,
    attrs = {"lang": attr.string(default = "en")},
    outputs = {
        "out": "%{name}.out",
        "listing": "%{name}-%{lang}.list.out",
    },
)

def _use_impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".out")
    ctx.actions.run_shell(
        inputs = ctx.files.srcs,
        outputs = [out],
        command = "cat %s > %s" % (" ".join([f.path for f in ctx.files.srcs]), out.path),
    )
    return [DefaultInfo(files = depset([out]))]

use = rule(implementation = _use_impl, attrs = {"srcs": attr.label_list(allow_files = True)})
