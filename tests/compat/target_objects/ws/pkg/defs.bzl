MyInfo = provider(fields = ["value"])

def _lib_impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".lib")
    ctx.actions.write(out, "lib %s\n" % ctx.label.name)
    return [
        DefaultInfo(files = depset([out]), runfiles = ctx.runfiles(files = ctx.files.data)),
        MyInfo(value = ctx.attr.value),
        OutputGroupInfo(extra = depset([out])),
    ]

lib = rule(
    implementation = _lib_impl,
    attrs = {
        "value": attr.string(),
        "data": attr.label_list(allow_files = True),
    },
)

def _single_impl(ctx):
    return MyInfo(value = "single " + ctx.label.name)

single = rule(implementation = _single_impl)

def _tool_impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".sh")
    ctx.actions.write(out, "#!/bin/sh\necho tool\n", is_executable = True)
    return [DefaultInfo(executable = out)]

tool = rule(implementation = _tool_impl, executable = True)

def _describe(dep):
    lines = [
        "str: " + str(dep),
        "label: " + str(dep.label),
        "type: " + type(dep),
        "files: " + ", ".join([f.basename for f in dep.files.to_list()]),
        "has MyInfo: %s" % (MyInfo in dep),
        "has DefaultInfo: %s" % (DefaultInfo in dep),
        "lacks MyInfo: %s" % (MyInfo not in dep),
    ]
    if MyInfo in dep:
        lines.append("value: " + dep[MyInfo].value)
    executable = dep.files_to_run.executable
    lines.append("executable: %s" % (executable.short_path if executable else None))
    lines.append("default runfiles: " + ", ".join(sorted([
        f.short_path for f in dep[DefaultInfo].default_runfiles.files.to_list()])))
    lines.append("data runfiles: " + ", ".join(sorted([
        f.short_path for f in dep.data_runfiles.files.to_list()])))
    if OutputGroupInfo in dep and hasattr(dep[OutputGroupInfo], "extra"):
        lines.append("output group: " + ", ".join([
            f.basename for f in dep[OutputGroupInfo].extra.to_list()]))
    return lines

def _inspect_impl(ctx):
    label = ctx.label
    lines = [
        "str: " + str(label),
        "percent: %s" % label,
        "percent tuple: %s and %s" % (label, "x"),
        "format: {}".format(label),
        "format named: {l}".format(l = label),
        "repr: %r" % label,
        "type: " + type(label),
        "name: " + label.name,
        "package: " + label.package,
        "workspace_name: [%s]" % label.workspace_name,
        "list: " + str([label]),
        "same: %s" % (label == Label("//pkg:inspect")),
        "file type: " + type(ctx.files.srcs[0]),
        "file str: " + str(ctx.files.srcs[0]),
        "depset type: " + type(depset([])),
    ]
    for dep in ctx.attr.deps:
        lines += ["", "dep %s" % dep.label.name] + _describe(dep)
    out = ctx.actions.declare_file(ctx.label.name + ".out")
    ctx.actions.write(out, "\n".join(lines) + "\n")
    return [DefaultInfo(files = depset([out]))]

inspect = rule(
    implementation = _inspect_impl,
    attrs = {
        "deps": attr.label_list(allow_files = True),
        "srcs": attr.label_list(allow_files = True),
    },
)
