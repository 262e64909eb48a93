load("//tools:count.bzl", "CountInfo", "count_aspect")

def _lib_impl(ctx):
    return [DefaultInfo(files = depset(ctx.files.srcs))]

lib = rule(
    implementation = _lib_impl,
    attrs = {
        "srcs": attr.label_list(allow_files = True),
        "deps": attr.label_list(),
    },
)

def _collect_impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".out")
    reports = depset(transitive = [d[CountInfo].reports for d in ctx.attr.deps])
    ctx.actions.run_shell(
        inputs = reports,
        outputs = [out],
        command = "cat %s > %s" % (" ".join([r.path for r in reports.to_list()]), out.path),
    )
    return [DefaultInfo(files = depset([out]))]

collect = rule(
    implementation = _collect_impl,
    attrs = {"deps": attr.label_list(aspects = [count_aspect])},
)
