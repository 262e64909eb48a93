"""Analysis of `cc_import` targets: a prebuilt library (and its headers) as `CcInfo` for
dependents to compile against and link; the attributes are declared in rules.bzl."""

load(":compile.bzl", "include_dirs", "split_files", "virtual_includes")
load(":providers.bzl", "cc_info_of", "make_cc_info")

def cc_import_impl(ctx):
    """The library dependents link: the static one when there is one (an `alwayslink`
    one whole), else the shared (or interface) one. A shared library is copied to
    `_solib/` beside the package's outputs, where binaries find it at run time (they
    link it with an rpath relative to themselves), and it is in the runfiles."""
    deps = ctx.attr.deps
    hdrs = split_files(ctx, "hdrs", allow_compiled = False).headers
    virtual = virtual_includes(ctx, hdrs)
    headers = hdrs + (virtual.headers if virtual != None else [])
    dirs = include_dirs(ctx) + ([virtual.include_dir] if virtual != None else [])
    static = ctx.file.static_library or ctx.file.pic_static_library
    shared = ctx.file.shared_library
    interface = ctx.file.interface_library
    if ctx.attr.system_provided and shared != None:
        fail("cc_import %s: 'shared_library' should not be set when 'system_provided' " %
             ctx.label.name + "is True (the system provides it at run time)")
    if not ctx.attr.system_provided and interface != None and shared == None:
        fail("cc_import %s: 'interface_library' needs 'shared_library' (or " %
             ctx.label.name + "system_provided = True)")
    own, runtime = [], []
    if static != None:
        if ctx.attr.alwayslink:   # link.bzl links a `.lo` archive whole
            whole = ctx.actions.declare_file("lib%s.lo" % ctx.label.name)
            ctx.actions.symlink(output = whole, target_file = static)
            own.append(whole)
        else:
            own.append(static)
    elif shared != None:
        copy = ctx.actions.declare_file("_solib/" + shared.basename)
        ctx.actions.symlink(output = copy, target_file = shared, is_executable = True)
        own.append(copy)
        runtime.append(copy)
    elif interface != None:   # system_provided: linked against, found on the system
        own.append(interface)
    infos = [cc_info_of(d) for d in deps]
    cc_info = make_cc_info(
        ctx.label,
        depset(headers, transitive = [i.headers for i in infos]),
        depset(dirs, transitive = [i.include_dirs for i in infos], order = "preorder"),
        depset(transitive = [i.defines for i in infos]),
        own,
        ctx.attr.linkopts,
        deps,
        True,   # a prebuilt library may well need the C++ runtime
        direct_headers = hdrs,
    )
    runfiles = ctx.runfiles(files = runtime + ctx.files.data).merge_all(
        [d[DefaultInfo].runfiles for d in deps + ctx.attr.data],
    )
    return [DefaultInfo(files = depset(own + hdrs), runfiles = runfiles), cc_info]
