"""Analysis of `filegroup` targets; the attributes are declared in rules.bzl."""

def filegroup_impl(ctx):
    """The files of `srcs` under one name; `data` goes to the runfiles."""
    files = depset(ctx.files.srcs)
    return [DefaultInfo(files = files, runfiles = ctx.runfiles(files = ctx.files.srcs,
                                                               collect_data = True))]
