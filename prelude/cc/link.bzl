"""Making libraries and programs from objects: the CppArchive and CppLink actions and the
link inputs (`CcInfo.libraries`, `CcInfo.linkopts`) they pass on. Knows nothing of
sources or headers (compile.bzl)."""

load(":providers.bzl", "cc_info_of")

def archive(ctx, toolchain, objects, alwayslink = False):
    """`lib<name>.a` from `objects` (`lib<name>.lo` when `alwayslink`: linked whole)."""
    out = ctx.actions.declare_file("lib%s.%s" % (ctx.label.name, "lo" if alwayslink else "a"))
    args = ctx.actions.args()

    # r: insert, c: create quietly, s: write an index; D: zero timestamps and owners so
    # the archive is reproducible (GNU ar only; Apple's ar does not know it).
    args.add("rcs" if toolchain.os == "macos" else "rcsD")
    args.add(out)
    args.add_all(objects)
    ctx.actions.run(
        executable = toolchain.ar,
        arguments = [args],
        inputs = objects,
        outputs = [out],
        mnemonic = "CppArchive",
        progress_message = "Archiving %s" % out.short_path,
        use_default_shell_env = True,
    )
    return out

def libraries(direct, deps):
    """`CcInfo.libraries`: `direct` (this target's), then those of `deps`, dependents
    before dependencies."""
    return depset(direct, transitive = [cc_info_of(d).libraries for d in deps],
                  order = "topological")

def linkopts(flags, deps):
    """`CcInfo.linkopts`: this target's `flags` as one tuple, then those of `deps`."""
    return depset([tuple(flags)] if flags else [],
                  transitive = [cc_info_of(d).linkopts for d in deps], order = "topological")

def _is_shared(library):
    return library.extension in ("so", "dylib") or ".so." in library.basename

def _gnu_library_args(library):
    """A library on a GNU ld command line; `alwayslink` archives (`.lo`) linked whole; a
    shared library by its directory and name, so that the program needs it by name (not
    by this path) and finds it through its rpath."""
    if library.extension == "lo":
        return ["-Wl,--whole-archive", library, "-Wl,--no-whole-archive"]
    if _is_shared(library):
        return ["-L" + library.dirname, "-l:" + library.basename]
    return library

def _relative(start, target):
    """The relative path from directory `start` to directory `target` (exec paths)."""
    a, b = start.split("/"), target.split("/")
    common = 0
    for i in range(min(len(a), len(b))):
        if a[i] != b[i]:
            break
        common = i + 1
    return "/".join([".."] * (len(a) - common) + b[common:]) or "."

def _rpaths(out, libraries):
    """`-rpath` flags by which program `out` finds its shared libraries at run time,
    relative to itself (`$ORIGIN`), wherever the output tree is."""
    dirs = {}
    for library in libraries.to_list():
        if _is_shared(library) and not library.is_source:
            dirs[library.dirname] = True
    return ["-Wl,-rpath,$ORIGIN/" + _relative(out.dirname, d) for d in dirs]

def _apple_library_args(library):
    """A library on an Apple ld64 command line; `.lo` archives linked whole."""
    if library.extension == "lo":
        return ["-Wl,-force_load," + library.path]
    return library

def _flags_of(group):
    return list(group)

def link(ctx, toolchain, objects, libraries, linkopts, uses_cxx, extra_inputs = []):
    """The CppLink action making the executable `<name>`; returns its File.

    The command is `<driver> -o <name> <objects> <libraries> <toolchain link_flags>
    <linkopts> <--linkopt flags>` (Bazel's order), where the driver is the toolchain's
    `ld`, or else `cxx` when C++ code is linked in (for its runtime), or else `cc`.
    """
    out = ctx.actions.declare_file(ctx.label.name)
    args = ctx.actions.args()
    args.add("-o", out)
    args.add_all(objects)
    args.add_all(libraries, map_each = _apple_library_args if toolchain.os == "macos" else
                                       _gnu_library_args)
    args.add_all(toolchain.link_flags)
    if toolchain.os != "macos":
        args.add_all(_rpaths(out, libraries))
    args.add_all(linkopts, map_each = _flags_of)
    args.add_all(ctx.fragments.cpp.linkopts)
    ctx.actions.run(
        executable = toolchain.ld or (toolchain.cxx if uses_cxx else toolchain.cc),
        arguments = [args],
        inputs = depset(objects + extra_inputs, transitive = [libraries]),
        outputs = [out],
        mnemonic = "CppLink",
        progress_message = "Linking %s" % out.short_path,
        use_default_shell_env = True,
    )
    return out
