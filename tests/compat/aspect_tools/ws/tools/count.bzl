"""An aspect with private label attributes: a tool it runs and a data file it reads."""

CountInfo = provider(fields = ["reports"])

def _count_impl(target, ctx):
    reports = []
    for dep in getattr(ctx.rule.attr, "deps", []):
        reports.append(dep[CountInfo].reports)
    srcs = getattr(ctx.rule.files, "srcs", [])
    mine = []
    if srcs:
        report = ctx.actions.declare_file(target.label.name + ".count")
        ctx.actions.run(
            executable = ctx.executable._counter,
            arguments = [report.path, target.label.name] + [f.path for f in srcs],
            inputs = srcs,
            outputs = [report],
        )
        mine = [report]
    all_reports = depset(mine, transitive = reports)
    summary = ctx.actions.declare_file(target.label.name + ".summary.out")
    ctx.actions.run_shell(
        inputs = depset([ctx.file._banner], transitive = [all_reports]),
        outputs = [summary],
        command = "cat %s %s > %s" % (
            ctx.file._banner.path,
            " ".join([r.path for r in all_reports.to_list()]),
            summary.path,
        ),
    )
    return [
        CountInfo(reports = all_reports),
        OutputGroupInfo(counts = depset([summary])),
    ]

count_aspect = aspect(
    implementation = _count_impl,
    attr_aspects = ["deps"],
    attrs = {
        "_counter": attr.label(
            default = "//tools:count",
            executable = True,
            cfg = "exec",
        ),
        "_banner": attr.label(
            default = "//tools:banner.txt",
            allow_single_file = True,
        ),
    },
)
