"""Making libraries and programs from objects: the CppArchive and CppLink actions and the
link inputs (`CcInfo.libraries`, `CcInfo.linkopts`) they pass on. Knows nothing of
sources or headers (compile.bzl)."""

load(":providers.bzl", "CcInfo")

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
    return depset(direct, transitive = [d[CcInfo].libraries for d in deps],
                  order = "topological")

def linkopts(flags, deps):
    """`CcInfo.linkopts`: this target's `flags` as one tuple, then those of `deps`."""
    return depset([tuple(flags)] if flags else [],
                  transitive = [d[CcInfo].linkopts for d in deps], order = "topological")

def _gnu_library_args(library):
    """A library on a GNU ld command line; `alwayslink` archives (`.lo`) linked whole."""
    if library.extension == "lo":
        return ["-Wl,--whole-archive", library, "-Wl,--no-whole-archive"]
    return library

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
    <linkopts>`, where the driver is the toolchain's `ld`, or else `cxx` when C++ code
    is linked in (for its runtime), or else `cc`.
    """
    out = ctx.actions.declare_file(ctx.label.name)
    args = ctx.actions.args()
    args.add("-o", out)
    args.add_all(objects)
    args.add_all(libraries, map_each = _apple_library_args if toolchain.os == "macos" else
                                       _gnu_library_args)
    args.add_all(toolchain.link_flags)
    args.add_all(linkopts, map_each = _flags_of)
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
