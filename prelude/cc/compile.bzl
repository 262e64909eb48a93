"""Compiling C and C++: sorts a target's files by kind, gathers what its sources compile
against (headers, include directories, defines) and declares one CppCompile action per
source. Knows nothing of archives or linking (link.bzl)."""

load(":providers.bzl", "cc_info_of")

# The toolchain type every C++ rule declares; ctx.toolchains is keyed by it.
CC_TOOLCHAIN_TYPE = "@toolchains//cc:toolchain_type"

_C_EXTENSIONS = ["c", "S", "s"]
_CXX_EXTENSIONS = ["cc", "cpp", "cxx", "c++", "C"]
_HEADER_EXTENSIONS = ["h", "hh", "hpp", "hxx", "h++", "H", "inc", "inl", "ipp", "tcc"]
_LIBRARY_EXTENSIONS = ["a", "lo", "so", "dylib"]

# Flags each compilation mode (-c) adds, before the target's own copts.
_MODE_FLAGS = {
    "fastbuild": ["-O0", "-g0"],
    "dbg": ["-O0", "-g"],
    "opt": ["-O2", "-DNDEBUG"],
}

def cc_toolchain(ctx):
    """The `ToolchainInfo` of the C++ toolchain resolved for this target."""
    return ctx.toolchains[CC_TOOLCHAIN_TYPE]

# ---- files ------------------------------------------------------------------------------

def split_files(ctx, attr_name, allow_compiled = True):
    """The files of a label-list attribute by kind: struct(sources, headers, objects,
    libraries). Headers only, when `allow_compiled` is False (`hdrs`)."""
    sources, headers, objects, libraries = [], [], [], []
    for f in getattr(ctx.files, attr_name):
        ext = f.extension
        if ext in _HEADER_EXTENSIONS:
            headers.append(f)
        elif not allow_compiled:
            _misplaced(attr_name, f, _HEADER_EXTENSIONS)
        elif ext in _C_EXTENSIONS or ext in _CXX_EXTENSIONS:
            sources.append(f)
        elif ext == "o":
            objects.append(f)
        elif ext in _LIBRARY_EXTENSIONS or ".so." in f.basename:
            libraries.append(f)
        else:
            _misplaced(attr_name, f, _C_EXTENSIONS + _CXX_EXTENSIONS + _HEADER_EXTENSIONS +
                                     ["o"] + _LIBRARY_EXTENSIONS)
    return struct(sources = sources, headers = headers, objects = objects,
                  libraries = libraries)

def _misplaced(attr_name, f, allowed):
    fail("'%s' in '%s' is not a file this attribute takes (expected .%s)" %
         (f.short_path, attr_name, ", .".join(allowed)))

def uses_cxx(sources, deps):
    """Whether C++ code is linked in: any of `sources` is C++, or any of `deps` says so."""
    for src in sources:
        if src.extension in _CXX_EXTENSIONS:
            return True
    for dep in deps:
        if getattr(cc_info_of(dep), "uses_cxx", False):
            return True
    return False

def _repo_relative(f):
    """`pkg/a.c` for `pkg/a.c`, `bp-out/.../bin/pkg/a.c` and `../repo/pkg/a.c`."""
    path = f.short_path
    if path.startswith("../"):
        path = path.split("/", 2)[2]
    return path

def _package_dir(ctx):
    """The package's directory below the exec root (`external/<repo>/...` elsewhere)."""
    return _join(ctx.label.workspace_root, ctx.label.package)

def _join(a, b):
    """`a/b`, where an empty or `.` part drops out (`.` if both do)."""
    if not a or a == ".":
        return b or "."
    if not b or b == ".":
        return a
    return a + "/" + b

def _normalize(path):
    """`a/./b/../c` -> `a/c`; `.` for the empty path; `..` parts that remain stay."""
    parts = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == ".." and parts and parts[-1] != "..":
            parts.pop()
        else:
            parts.append(part)
    return "/".join(parts) or "."

# ---- flags --------------------------------------------------------------------------------

def _make_variables(ctx):
    """Make variables from the `toolchains` attribute (ctx.var has the resolved ones)."""
    variables = {}
    for target in ctx.attr.toolchains:
        if TemplateVariableInfo in target:
            variables.update(target[TemplateVariableInfo].variables)
    return variables

def expand(ctx, attr_name, value):
    """One attribute string with `$(location ...)` and Make variables expanded."""
    text = ctx.expand_location(value)
    return ctx.expand_make_variables(attr_name, text, _make_variables(ctx))

def expand_flags(ctx, attr_name):
    """A flag-list attribute (`copts`, `linkopts`), expanded and split like a shell."""
    flags = []
    for value in getattr(ctx.attr, attr_name):
        flags += _shell_split(attr_name, expand(ctx, attr_name, value))
    return flags

def _shell_split(attr_name, text):
    """Words as a Bourne shell splits them: blanks separate words, quotes group them
    (and are removed), and a backslash outside single quotes takes the next character
    literally. Bazel tokenizes `copts` and `linkopts` the same way."""
    words, word = [], []
    in_word, quote, escaped = False, None, False
    for i in range(len(text)):
        c = text[i]
        if escaped:
            word.append(c)
            escaped = False
        elif quote == "'":
            if c == "'":
                quote = None
            else:
                word.append(c)
        elif c == "\\":
            escaped, in_word = True, True
        elif quote == "\"":
            if c == "\"":
                quote = None
            else:
                word.append(c)
        elif c in ("'", "\""):
            quote, in_word = c, True
        elif c in (" ", "\t", "\n"):
            if in_word:
                words.append("".join(word))
            word, in_word = [], False
        else:
            word.append(c)
            in_word = True
    if quote != None or escaped:
        fail("unterminated quote or trailing backslash in '%s': %r" % (attr_name, text))
    if in_word:
        words.append("".join(word))
    return words

# ---- what sources compile against ------------------------------------------------------

def include_dirs(ctx):
    """The `includes` attribute as `-I` directories: each relative to the package, in
    its source form and below the bin directory (for generated headers)."""
    base = _package_dir(ctx)
    dirs = []
    for d in ctx.attr.includes:
        path = _normalize(_join(base, d))
        if d.startswith("/") or path == ".." or path.startswith("../"):
            fail("'%s' in 'includes' must be a directory inside the repository, " % d +
                 "relative to the package")
        dirs += [path, _join(ctx.bin_dir.path, path)]
    return dirs

def virtual_includes(ctx, headers):
    """For `strip_include_prefix` and `include_prefix`: links to `headers` under the
    include paths dependents write, below `_virtual_includes/<name>`. Returns
    struct(headers, include_dir), or None when neither attribute is set."""
    strip = ctx.attr.strip_include_prefix
    prefix = _normalize(ctx.attr.include_prefix)
    if not strip and prefix == ".":
        return None
    if strip.startswith("/"):
        strip = _normalize(strip[1:])
    else:
        strip = _normalize(_join(ctx.label.package, strip))
    root = "_virtual_includes/" + ctx.label.name
    links = []
    for header in headers:
        path = _repo_relative(header)
        if strip != ".":
            if not path.startswith(strip + "/"):
                fail("header '%s' is not under strip_include_prefix '%s'" %
                     (header.short_path, strip))
            path = path[len(strip) + 1:]
        link = ctx.actions.declare_file(root + "/" + _join(prefix, path))
        ctx.actions.symlink(output = link, target_file = header)
        links.append(link)
    return struct(headers = links,
                  include_dir = _join(ctx.bin_dir.path, _join(_package_dir(ctx), root)))

def compile_info(ctx, headers, deps, extra_include_dirs = []):
    """The target's headers, include dirs and defines joined with those of `deps`:
    struct(headers, include_dirs, defines), each a depset. For a library this is the
    part its dependents inherit."""
    infos = [cc_info_of(d) for d in deps]
    return struct(
        headers = depset(headers, transitive = [i.headers for i in infos]),
        include_dirs = depset(include_dirs(ctx) + extra_include_dirs,
                              transitive = [i.include_dirs for i in infos],
                              order = "preorder"),
        defines = depset([expand(ctx, "defines", d) for d in ctx.attr.defines],
                         transitive = [i.defines for i in infos]),
    )

def with_deps(info, deps):
    """`info` plus what `deps` (such as `implementation_deps`) give the sources only."""
    infos = [cc_info_of(d) for d in deps]
    if not infos:
        return info
    return struct(
        headers = depset(transitive = [info.headers] + [i.headers for i in infos]),
        include_dirs = depset(transitive = [info.include_dirs] +
                                           [i.include_dirs for i in infos],
                              order = "preorder"),
        defines = depset(transitive = [info.defines] + [i.defines for i in infos]),
    )

# ---- compile actions ---------------------------------------------------------------------

def _quote_dirs(ctx):
    """`-iquote` directories: the repository root, as sources and as generated files."""
    root = ctx.label.workspace_root or "."
    return [root, _join(ctx.bin_dir.path, root)]

def _object_paths(ctx, sources):
    """`_objs/<name>/<stem>.o` for each source, the stem relative to the package;
    sources whose stems collide (`a.c`, `a.cc`) get `_objs/<name>/<n>/<stem>.o`."""
    stems = []
    for src in sources:
        path = _repo_relative(src)
        package = ctx.label.package
        if package and path.startswith(package + "/"):
            path = path[len(package) + 1:]
        elif package:
            path = src.basename
        stems.append(path[:-len(src.extension) - 1])
    counts = {}
    for stem in stems:
        counts[stem] = counts.get(stem, 0) + 1
    paths, seen = [], {}
    for stem in stems:
        if counts[stem] > 1:
            seen[stem] = seen.get(stem, -1) + 1
            stem = "%d/%s" % (seen[stem], stem)
        paths.append("_objs/%s/%s.o" % (ctx.label.name, stem))
    return paths

def compile(ctx, toolchain, sources, info):
    """One CppCompile action per source; returns the object Files in source order.

    `info` (from compile_info) gives the headers (action inputs), `-I` directories and
    `-D` defines; `local_defines` and `copts` are this target's own. The command line's
    flags come where Bazel puts them: after the toolchain's, includes and defines,
    `--copt`, then `--conlyopt` (C) or `--cxxopt` (C++), then the target's `copts`.
    """
    copts = expand_flags(ctx, "copts")
    cpp = ctx.fragments.cpp
    local_defines = [expand(ctx, "local_defines", d) for d in ctx.attr.local_defines]
    mode_flags = _MODE_FLAGS.get(ctx.configuration.compilation_mode, [])
    quote_dirs = _quote_dirs(ctx)
    objects = []
    for i, path in enumerate(_object_paths(ctx, sources)):
        src = sources[i]
        obj = ctx.actions.declare_file(path)
        args = ctx.actions.args()
        args.add_all(toolchain.compile_flags)
        args.add_all(mode_flags)
        args.add_all(quote_dirs, before_each = "-iquote")
        args.add_all(info.include_dirs, format_each = "-I%s")
        args.add_all(info.defines, format_each = "-D%s")
        args.add_all(local_defines, format_each = "-D%s")
        args.add_all(cpp.copts)
        if src.extension == "c":
            args.add_all(cpp.conlyopts)
        elif src.extension in _CXX_EXTENSIONS:
            args.add_all(cpp.cxxopts)
        args.add_all(copts)
        args.add("-c", src)
        args.add("-o", obj)
        ctx.actions.run(
            executable = toolchain.cxx if src.extension in _CXX_EXTENSIONS else toolchain.cc,
            arguments = [args],
            inputs = depset([src], transitive = [info.headers]),
            outputs = [obj],
            mnemonic = "CppCompile",
            progress_message = "Compiling %s" % src.short_path,
            use_default_shell_env = True,
        )
        objects.append(obj)
    return objects
