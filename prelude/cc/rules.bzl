"""Declarations of the C and C++ rules (cc_library, cc_binary, cc_test, cc_toolchain); no
build logic here."""

load(":cc_binary.bzl", "cc_binary_impl")
load(":cc_import.bzl", "cc_import_impl")
load(":cc_library.bzl", "cc_library_impl")
load(":cc_test.bzl", "cc_test_impl")
load(":cc_toolchain.bzl", "cc_toolchain_impl", "current_cc_toolchain_impl")
load(":compile.bzl", "CC_TOOLCHAIN_TYPE")
load(":providers.bzl", "CcInfo")

def _compile_attrs():
    """Attributes shared by every C++ rule: what to compile and how."""
    return {
        "srcs": attr.label_list(
            allow_files = True,
            doc = "Sources and private headers to compile (.c, .cc, .cpp, .h, .S, ...), " +
                  "plus prebuilt objects and libraries (.o, .a, .so, ...) to link in.",
        ),
        "deps": attr.label_list(
            providers = [CcInfo],
            doc = "Libraries (usually `cc_library` targets) to compile against and link in.",
        ),
        "data": attr.label_list(
            allow_files = True,
            doc = "Files needed at run time; they appear in the runfiles of the target and " +
                  "of whatever links it in.",
        ),
        "copts": attr.string_list(
            doc = "Extra compiler flags for this target's sources only; `$(...)` variables " +
                  "are expanded.",
        ),
        "defines": attr.string_list(
            doc = "Preprocessor macros (`NAME` or `NAME=value`) set for this target and " +
                  "every target that depends on it.",
        ),
        "local_defines": attr.string_list(
            doc = "Preprocessor macros set for this target's sources only.",
        ),
        "includes": attr.string_list(
            doc = "Directories, relative to the package, added to the include path of this " +
                  "target and of its dependents.",
        ),
        "linkopts": attr.string_list(
            doc = "Extra linker flags; those of libraries are passed on to the binaries " +
                  "that link them.",
        ),
        "nocopts": attr.string(
            doc = "Regular expression; compiler flags that match it are dropped for this " +
                  "target's sources. Removed from Bazel; kept so old BUILD files load, " +
                  "but setting it is an error when the target is built.",
        ),
        "win_def_file": attr.label(
            allow_single_file = [".def"],
            doc = "Windows module-definition file passed to the linker when building a DLL.",
        ),
        "toolchains": attr.label_list(
            doc = "Targets that supply Make variables for expansion in `copts` and " +
                  "`linkopts`.",
        ),
    }

def _linked_attrs(linkstatic, stamp):
    """Attributes of the C++ rules that link an executable, with their own defaults."""
    attrs = _compile_attrs()
    attrs.update({
        "linkstatic": attr.bool(
            default = linkstatic,
            doc = "Link C++ dependencies statically (from their .a files) where possible, " +
                  "instead of against their shared libraries.",
        ),
        "linkshared": attr.bool(
            doc = "Produce a shared library instead of an executable; name the target " +
                  "`libfoo.so` (or `foo.dll`) to match. Not supported by bp yet: " +
                  "setting it is an error.",
        ),
        "malloc": attr.label(
            providers = [CcInfo],
            doc = "A `cc_library` that provides the memory allocator; unset means the " +
                  "toolchain's default allocator.",
        ),
        "additional_linker_inputs": attr.label_list(
            allow_files = True,
            doc = "Extra files given to the linker, for example a linker script named in " +
                  "`linkopts` with `$(location ...)`.",
        ),
        "stamp": attr.int(
            default = stamp,
            values = [-1, 0, 1],
            doc = "Whether to embed build information (time, user, revision): 1 always, " +
                  "0 never, -1 only when built with `--stamp`.",
        ),
        "dynamic_deps": attr.label_list(
            doc = "Shared libraries (`cc_shared_library`) to link against dynamically " +
                  "instead of linking their code in. Not supported by bp yet: setting it " +
                  "is an error.",
        ),
    })
    return attrs

def _library_attrs():
    """Attributes of `cc_library`: the common ones plus headers and archive options."""
    attrs = _compile_attrs()
    attrs.update({
        "hdrs": attr.label_list(
            allow_files = True,
            doc = "Public headers, which both this library's sources and its dependents " +
                  "may include.",
        ),
        "textual_hdrs": attr.label_list(
            allow_files = True,
            doc = "Headers that may be included but are not compiled on their own, such as " +
                  "fragments meant to be included several times.",
        ),
        "implementation_deps": attr.label_list(
            providers = [CcInfo],
            doc = "Libraries needed by this library's sources but whose headers are not " +
                  "passed on to dependents.",
        ),
        "linkstatic": attr.bool(
            doc = "Build only the static archive, never a shared library, for this library.",
        ),
        "alwayslink": attr.bool(
            doc = "Link every object of this library into binaries that depend on it, even " +
                  "objects no symbol refers to (for self-registering code).",
        ),
        "strip_include_prefix": attr.string(
            doc = "Prefix removed from the paths of `hdrs` when dependents include them; " +
                  "relative to the package unless it starts with `/`.",
        ),
        "include_prefix": attr.string(
            doc = "Prefix added to the paths of `hdrs` (after `strip_include_prefix`) when " +
                  "dependents include them.",
        ),
        "linkstamp": attr.label(
            allow_single_file = True,
            doc = "A source compiled with build information and linked into every binary " +
                  "that depends on this library. Not supported by bp yet: setting it is " +
                  "an error.",
        ),
    })
    return attrs

def _binary_attrs():
    """Attributes of `cc_binary`: static linking and stamping only on request."""
    attrs = _linked_attrs(linkstatic = True, stamp = -1)
    attrs.update({
        "output_licenses": attr.string_list(
            doc = "Licenses that apply to the outputs when the binary is used as a tool.",
        ),
    })
    return attrs

cc_library = rule(
    implementation = cc_library_impl,
    doc = "A C or C++ library: compiled once, and linked into the binaries and tests that " +
          "depend on it. Its public headers are listed in `hdrs`.",
    attrs = _library_attrs(),
    toolchains = [CC_TOOLCHAIN_TYPE],
)

# what Bazel's cc_binary and cc_test also make, when asked for
_IMPLICIT_OUTPUTS = {"stripped": "%{name}.stripped", "dwp": "%{name}.dwp"}

cc_binary = rule(
    implementation = cc_binary_impl,
    executable = True,
    doc = "A C or C++ program (or, with `linkshared`, a shared library) linked from its " +
          "sources and dependencies.",
    attrs = _binary_attrs(),
    toolchains = [CC_TOOLCHAIN_TYPE],
    outputs = _IMPLICIT_OUTPUTS,
)

cc_test = rule(
    implementation = cc_test_impl,
    test = True,
    doc = "A C or C++ program run as a test by `bp test`; exit code zero means it passed.",
    attrs = _linked_attrs(linkstatic = False, stamp = 0),
    toolchains = [CC_TOOLCHAIN_TYPE],
    outputs = _IMPLICIT_OUTPUTS,
)

cc_toolchain = rule(
    implementation = cc_toolchain_impl,
    doc = "The C and C++ tools for one target platform: the commands to run and the flags " +
          "every compile and link gets. Register it with `toolchain()` under " +
          "`@toolchains//cc:toolchain_type`. Simpler than Bazel's rule of the same name: " +
          "tools are commands looked up on `PATH` (or absolute paths), not targets.",
    attrs = {
        "cc": attr.string(
            default = "gcc",
            doc = "The C compiler command, e.g. `gcc`, `clang` or a cross compiler such as " +
                  "`aarch64-linux-gnu-gcc`.",
        ),
        "cxx": attr.string(
            default = "g++",
            doc = "The C++ compiler command.",
        ),
        "ar": attr.string(
            default = "ar",
            doc = "The archiver that makes static libraries (`.a`).",
        ),
        "ld": attr.string(
            doc = "The command that links executables and shared libraries; empty means " +
                  "link with `cc` (or `cxx` when C++ sources are linked in).",
        ),
        "strip": attr.string(
            default = "strip",
            doc = "The command that removes symbols from linked outputs.",
        ),
        "compile_flags": attr.string_list(
            doc = "Flags given to every compile with this toolchain, before the target's " +
                  "own `copts`.",
        ),
        "link_flags": attr.string_list(
            doc = "Flags given to every link with this toolchain, before the target's own " +
                  "`linkopts`.",
        ),
        "cpu": attr.string(
            doc = "The CPU the tools produce code for, named as in `@platforms//cpu` " +
                  "(`x86_64`, `arm64`, ...).",
        ),
        "os": attr.string(
            doc = "The operating system the tools produce code for, named as in " +
                  "`@platforms//os` (`linux`, `macos`, ...).",
        ),
    },
)

cc_import = rule(
    implementation = cc_import_impl,
    doc = "A prebuilt C or C++ library (static, shared or interface) and its headers, " +
          "for cc_library, cc_binary and cc_test targets to depend on.",
    attrs = {
        "hdrs": attr.label_list(
            allow_files = True,
            doc = "The library's public headers.",
        ),
        "static_library": attr.label(
            allow_single_file = [".a", ".lib", ".lo"],
            doc = "A static archive; linked in preference to `shared_library`.",
        ),
        "pic_static_library": attr.label(
            allow_single_file = [".pic.a", ".a", ".pic.lo", ".lo"],
            doc = "A static archive of position-independent code.",
        ),
        "shared_library": attr.label(
            allow_single_file = True,
            doc = "A shared library (`.so`, `.dylib`); binaries load it at run time from " +
                  "their runfiles' copy.",
        ),
        "interface_library": attr.label(
            allow_single_file = [".ifso", ".tbd", ".lib", ".so", ".dylib"],
            doc = "An interface library to link against instead of `shared_library`.",
        ),
        "system_provided": attr.bool(
            doc = "The shared library is found on the system at run time; only " +
                  "`interface_library` is linked against.",
        ),
        "alwayslink": attr.bool(
            doc = "Link every object of `static_library` into binaries, even objects no " +
                  "symbol refers to.",
        ),
        "includes": attr.string_list(
            doc = "Directories, relative to the package, added to dependents' include path.",
        ),
        "strip_include_prefix": attr.string(
            doc = "Prefix removed from the paths of `hdrs` when dependents include them.",
        ),
        "include_prefix": attr.string(
            doc = "Prefix added to the paths of `hdrs` when dependents include them.",
        ),
        "linkopts": attr.string_list(
            doc = "Linker flags for the binaries that link this library.",
        ),
        "deps": attr.label_list(
            providers = [CcInfo],
            doc = "Libraries this one needs.",
        ),
        "data": attr.label_list(
            allow_files = True,
            doc = "Files needed at run time.",
        ),
    },
)

current_cc_toolchain = rule(
    implementation = current_cc_toolchain_impl,
    doc = "The C++ toolchain resolved for the target platform, as Bazel's " +
          "`@bazel_tools//tools/cpp:current_cc_toolchain` gives it (cc_common.CcToolchainInfo).",
    toolchains = [CC_TOOLCHAIN_TYPE],
)
