"""The provider C and C++ libraries hand to what depends on them, and Bazel's `cc_common`
for rules that read or make it; no build logic here.

`CcInfo` and `cc_common` are globals of every .bzl file, as in Bazel; rules may also
`load("@prelude//cc:providers.bzl", "CcInfo")`.
"""

CcInfo = provider(
    doc = "What compiling against and linking with a C or C++ library needs.",
    fields = {
        "compilation_context": "Bazel's view of the headers, include directories and " +
                               "defines (see cc_common.create_compilation_context).",
        "linking_context": "Bazel's view of the libraries and link flags: `linker_inputs`, " +
                           "a depset of LinkerInputs (`owner`, `libraries`, " +
                           "`user_link_flags`, `additional_inputs`).",
        "headers": "depset of Files: every header the library's dependents may reach " +
                   "through an #include (public, private and textual headers, of the " +
                   "library and of its dependencies); compile actions take them as inputs.",
        "include_dirs": "depset of strings: directories for `-I`, each in its source " +
                        "form and its generated-file form (under the bin directory).",
        "defines": "depset of strings: `NAME` or `NAME=value` macros for `-D`, the " +
                   "library's own `defines` and its dependencies'.",
        "libraries": "depset of Files in link order, dependents before dependencies " +
                     "(`order = \"topological\"`): static archives (`.a`, or `.lo` for " +
                     "`alwayslink` ones, linked whole) and prebuilt libraries.",
        "linkopts": "depset of tuples in link order (`order = \"topological\"`): each " +
                    "library's linker flags, kept together so that repeated pairs such " +
                    "as `-framework X` survive deduplication.",
        "uses_cxx": "True when C++ code is linked in with the library (its own sources " +
                    "or a dependency's): binaries then link with the toolchain's `cxx`, " +
                    "which brings in the C++ runtime.",
    },
)

_EMPTY = depset([])

def library_to_link(library, alwayslink = False):
    """Bazel's LibraryToLink for one library File, by its kind."""
    shared = library.extension in ("so", "dylib") or ".so." in library.basename
    static = library.extension in ("a", "lo", "lib")
    return struct(
        static_library = library if static else None,
        pic_static_library = None,
        dynamic_library = library if shared else None,
        interface_library = library if library.extension in ("ifso", "tbd") else None,
        resolved_symlink_dynamic_library = library if shared else None,
        objects = (),
        pic_objects = (),
        alwayslink = alwayslink or library.extension == "lo",
    )

def make_cc_info(owner, headers, include_dirs, defines, own_libraries, own_flags, deps,
                 uses_cxx, direct_headers = []):
    """A library's CcInfo, in bp's fields and Bazel's contexts, from its own parts and
    its dependencies' (targets with CcInfo): `headers`, `include_dirs` and `defines` are
    depsets that already hold the dependencies'; the others are this library's only."""
    infos = [cc_info_of(d) for d in deps]
    own = [tuple(own_flags)] if own_flags else []
    linker_inputs = depset(
        [_linker_input(owner, [library_to_link(f) for f in own_libraries], own_flags)],
        transitive = [i.linking_context.linker_inputs for i in infos],
        order = "topological",
    )
    return CcInfo(
        headers = headers,
        include_dirs = include_dirs,
        defines = defines,
        libraries = depset(own_libraries, transitive = [i.libraries for i in infos],
                           order = "topological"),
        linkopts = depset(own, transitive = [i.linkopts for i in infos],
                          order = "topological"),
        uses_cxx = uses_cxx,
        # (as in Bazel, the `includes` attribute's directories are system includes)
        compilation_context = _compilation_context(headers, direct_headers, _EMPTY, defines,
                                                   system_includes = include_dirs),
        linking_context = struct(linker_inputs = linker_inputs),
    )

def cc_info_of(target_or_info):
    """A target's CcInfo (or a CcInfo) with bp's fields, also when a rule made it from
    Bazel's contexts alone (`CcInfo(compilation_context = ..., linking_context = ...)`)."""
    info = target_or_info
    if hasattr(info, "_bp_providers"):   # a target
        info = target_or_info[CcInfo]
    if getattr(info, "headers", None) != None:
        return info
    compilation = getattr(info, "compilation_context", None) or \
                  _compilation_context(_EMPTY, [], _EMPTY, _EMPTY)
    linking = getattr(info, "linking_context", None) or struct(linker_inputs = _EMPTY)
    libraries, flags = [], []
    for linker_input in linking.linker_inputs.to_list():
        for library in linker_input.libraries:
            chosen = library.static_library or library.pic_static_library or \
                     library.dynamic_library or library.interface_library
            if chosen != None:
                libraries.append(chosen)
        if linker_input.user_link_flags:
            flags.append(tuple(linker_input.user_link_flags))
    return CcInfo(
        headers = compilation.headers,
        include_dirs = depset(transitive = [compilation.includes, compilation.quote_includes,
                                            compilation.system_includes],
                              order = "preorder"),
        defines = compilation.defines,
        libraries = depset(libraries, order = "topological"),
        linkopts = depset(flags, order = "topological"),
        uses_cxx = True,
        compilation_context = compilation,
        linking_context = linking,
    )

def _compilation_context(headers, direct_headers, includes, defines,
                         quote_includes = _EMPTY, system_includes = _EMPTY,
                         framework_includes = _EMPTY, local_defines = _EMPTY):
    return struct(
        headers = headers,
        direct_headers = list(direct_headers),
        direct_public_headers = list(direct_headers),
        direct_private_headers = [],
        direct_textual_headers = [],
        includes = includes,
        quote_includes = quote_includes,
        system_includes = system_includes,
        framework_includes = framework_includes,
        defines = defines,
        local_defines = local_defines,
    )

def _linker_input(owner, libraries, user_link_flags, additional_inputs = []):
    # tuples, not lists: a LinkerInput is an element of depsets, so it must be hashable
    return struct(owner = owner, libraries = tuple(libraries),
                  user_link_flags = tuple(user_link_flags),
                  additional_inputs = tuple(additional_inputs))

def _depset_of(value, what):
    if value == None:
        return _EMPTY
    if type(value) == "list":
        return depset(value)
    if type(value) == "depset":
        return value
    fail("cc_common: '%s' must be a depset or a list, got %s" % (what, type(value)))

def _create_compilation_context(headers = None, system_includes = None, includes = None,
                                quote_includes = None, framework_includes = None,
                                defines = None, local_defines = None, **kwargs):
    return _compilation_context(
        _depset_of(headers, "headers"),
        _depset_of(headers, "headers").to_list(),
        _depset_of(includes, "includes"),
        _depset_of(defines, "defines"),
        quote_includes = _depset_of(quote_includes, "quote_includes"),
        system_includes = _depset_of(system_includes, "system_includes"),
        framework_includes = _depset_of(framework_includes, "framework_includes"),
        local_defines = _depset_of(local_defines, "local_defines"),
    )

def _create_linker_input(owner = None, libraries = None, user_link_flags = None,
                         additional_inputs = None, **kwargs):
    flags = user_link_flags
    if type(flags) == "depset":
        flags = flags.to_list()
    return _linker_input(owner, _depset_of(libraries, "libraries").to_list(), flags or [],
                         _depset_of(additional_inputs, "additional_inputs").to_list())

def _create_linking_context(linker_inputs = None, **kwargs):
    return struct(linker_inputs = _depset_of(linker_inputs, "linker_inputs"))

def _create_library_to_link(actions = None, feature_configuration = None,
                            cc_toolchain = None, static_library = None,
                            pic_static_library = None, dynamic_library = None,
                            interface_library = None, alwayslink = False, **kwargs):
    return struct(
        static_library = static_library,
        pic_static_library = pic_static_library,
        dynamic_library = dynamic_library,
        interface_library = interface_library,
        resolved_symlink_dynamic_library = dynamic_library,
        objects = (),
        pic_objects = (),
        alwayslink = alwayslink,
    )

def _merge_cc_infos(direct_cc_infos = [], cc_infos = []):
    infos = [cc_info_of(i) for i in direct_cc_infos + cc_infos]
    contexts = [i.compilation_context for i in infos]
    return CcInfo(
        headers = depset(transitive = [i.headers for i in infos]),
        include_dirs = depset(transitive = [i.include_dirs for i in infos],
                              order = "preorder"),
        defines = depset(transitive = [i.defines for i in infos]),
        libraries = depset(transitive = [i.libraries for i in infos], order = "topological"),
        linkopts = depset(transitive = [i.linkopts for i in infos], order = "topological"),
        uses_cxx = bool([i for i in infos if i.uses_cxx]),
        compilation_context = _compilation_context(
            depset(transitive = [c.headers for c in contexts]),
            [h for c in contexts for h in c.direct_headers],
            depset(transitive = [c.includes for c in contexts], order = "preorder"),
            depset(transitive = [c.defines for c in contexts]),
            quote_includes = depset(transitive = [c.quote_includes for c in contexts]),
            system_includes = depset(transitive = [c.system_includes for c in contexts]),
            framework_includes = depset(transitive = [c.framework_includes
                                                      for c in contexts]),
        ),
        linking_context = struct(linker_inputs = depset(
            transitive = [i.linking_context.linker_inputs for i in infos],
            order = "topological",
        )),
    )

CcToolchainInfo = provider(
    doc = "Bazel's view of a C++ toolchain (find_cpp_toolchain): bp's tools are commands " +
          "looked up on PATH, so the `*_executable` fields are command names.",
    fields = ["compiler", "compiler_executable", "cpu", "ar_executable", "ld_executable",
              "nm_executable", "objcopy_executable", "objdump_executable",
              "strip_executable", "preprocessor_executable", "gcov_executable", "all_files",
              "sysroot", "built_in_include_directories", "target_gnu_system_name", "libc",
              "toolchain_id"],
)

# Bazel's other C++ globals, which rule sets (rules_cc's defs.bzl) re-export: accepted,
# and made by bp's rules never
DebugPackageInfo = provider(
    doc = "A binary's debug information package (Bazel's; bp makes none).",
    fields = ["target_label", "stripped_file", "unstripped_file", "dwp_file"],
)

CcToolchainConfigInfo = provider(
    doc = "A cc_toolchain_config's result (Bazel's; bp's C++ toolchain has its own form).",
    fields = [],
)

def cc_toolchain_info(toolchain):
    """CcToolchainInfo for bp's C++ toolchain (its ToolchainInfo)."""
    return CcToolchainInfo(
        compiler = "clang" if "clang" in toolchain.cc else "gcc",
        compiler_executable = toolchain.cc,
        cpu = toolchain.cpu,
        ar_executable = toolchain.ar,
        ld_executable = toolchain.ld or toolchain.cc,
        nm_executable = "nm",
        objcopy_executable = "objcopy",
        objdump_executable = "objdump",
        strip_executable = toolchain.strip,
        preprocessor_executable = "cpp",
        gcov_executable = "gcov",
        all_files = depset([]),
        sysroot = None,
        built_in_include_directories = [],
        target_gnu_system_name = "local",
        libc = "local",
        toolchain_id = "bp",
    )

def _configure_features(ctx = None, cc_toolchain = None, language = None,
                        requested_features = [], unsupported_features = []):
    """A FeatureConfiguration: bp's C++ rules have no features to configure, so it only
    records what was asked."""
    return struct(requested_features = tuple(requested_features),
                  unsupported_features = tuple(unsupported_features))

def _is_enabled(feature_configuration = None, feature_name = ""):
    return feature_name in getattr(feature_configuration, "requested_features", ())

def _unsupported(name):
    def refuse(*args, **kwargs):
        fail("cc_common.%s is not supported by bp: bp reads and makes CcInfo " % name +
             "(create_compilation_context, create_linking_context, create_linker_input, " +
             "create_library_to_link, merge_cc_infos), but compiles and links only " +
             "through its cc rules")

    return refuse

# Bazel's cc_common, as far as reading and making CcInfo goes.
cc_common = struct(
    CcToolchainInfo = CcToolchainInfo,
    create_compilation_context = _create_compilation_context,
    create_linking_context = _create_linking_context,
    create_linker_input = _create_linker_input,
    create_library_to_link = _create_library_to_link,
    merge_cc_infos = _merge_cc_infos,
    configure_features = _configure_features,
    is_enabled = _is_enabled,
    compile = _unsupported("compile"),
    link = _unsupported("link"),
    create_linking_context_from_compilation_outputs = _unsupported(
        "create_linking_context_from_compilation_outputs",
    ),
    get_tool_for_action = _unsupported("get_tool_for_action"),
    get_memory_inefficient_command_line = _unsupported("get_memory_inefficient_command_line"),
    get_environment_variables = _unsupported("get_environment_variables"),
    create_compile_variables = _unsupported("create_compile_variables"),
    create_link_variables = _unsupported("create_link_variables"),
)
