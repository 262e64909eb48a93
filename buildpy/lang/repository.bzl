"""bp's repository_ctx, written in Starlark: what a repository rule's implementation
gets. Each operation crosses to Python (`_bp_repo(fetch id, operation, arguments, call_stack())`,
buildpy/external/context.py) in the directory of the repository being fetched.

Knows Bazel's repository_ctx API; not downloads, archives nor files.
"""

_EMPTY = {"string": "", "string_list": [], "int": 0, "bool": False, "label": None,
          "label_list": [], "string_dict": {}, "string_list_dict": {},
          "label_keyed_string_dict": {}}

def _label_text(value):
    """A label attribute's text, absolute: `//pkg:f` names the main repository."""
    if value.startswith("//"):
        return "@" + value
    if value.startswith(":"):
        return "@//" + value
    return value

def _label(text):
    return struct(**_bp_label(_label_text(text), call_stack()))

def _attr_value(kind, value):
    if value == None:
        return None
    if kind == "label":
        return _label(value)
    if kind == "label_list":
        return [_label(v) for v in value]
    if kind == "label_keyed_string_dict":
        return {_label(k): v for k, v in value.items()}
    return value

def _path(cid, described):
    """A `path` value: str() gives the absolute path."""
    def get_child(*names):
        return _path(cid, _bp_repo(cid, "path", {"path": "/".join([described["path"]] + list(names))}, call_stack()))

    def readdir():
        return [_path(cid, d) for d in _bp_repo(cid, "readdir", {"path": described["path"]}, call_stack())]

    parent = described["dirname"]
    return struct(
        _bp_path = described["path"],
        basename = described["basename"],
        dirname = struct(_bp_path = parent, basename = parent.rsplit("/", 1)[-1]) if parent != described["path"] else None,
        exists = described["exists"],
        is_dir = described["is_dir"],
        get_child = get_child,
        readdir = readdir,
        realpath = described["realpath"],
    )

def _text(cid, value):
    """A path argument as text: a path value, a Label (its file, fetching its repository
    if need be), or a string (relative to the repository's directory)."""
    if type(value) == "struct" and hasattr(value, "_bp_path"):
        return value._bp_path
    if type(value) == "struct" and hasattr(value, "__bp_label__"):
        return _bp_repo(cid, "label_path", {"label": value.__bp_label__}, call_stack())
    if type(value) != "string":
        fail("expected a path, a Label or a string, got %s" % type(value))
    return value

def _urls(url):
    if type(url) == "string":
        return [url]
    return [str(u) for u in url]

def repository_ctx(cid, name, attrs, workspace_root):
    """The ctx of one fetch (`cid`) of repository `name`."""

    def path(p):
        return _path(cid, _bp_repo(cid, "path", {"path": _text(cid, p)}, call_stack()))

    def read(p, watch = "auto"):
        return _bp_repo(cid, "read", {"path": _text(cid, p)}, call_stack())

    def file(p, content = "", executable = True, legacy_utf8 = True):
        _bp_repo(cid, "file", {"path": _text(cid, p), "content": content,
                               "executable": executable}, call_stack())

    def template(p, template, substitutions = {}, executable = True, watch_template = "auto"):
        _bp_repo(cid, "template", {"path": _text(cid, p), "template": _text(cid, template),
                                   "substitutions": substitutions, "executable": executable}, call_stack())

    def symlink(target, link_name):
        _bp_repo(cid, "symlink", {"target": _text(cid, target),
                                  "link_name": _text(cid, link_name)}, call_stack())

    def delete(p):
        return _bp_repo(cid, "delete", {"path": _text(cid, p)}, call_stack())

    def download(url, output = "", sha256 = "", executable = False, allow_fail = False,
                 canonical_id = "", auth = {}, headers = {}, integrity = "", block = True):
        return struct(**_bp_repo(cid, "download", {
            "url": _urls(url), "output": _text(cid, output), "sha256": sha256,
            "executable": executable, "integrity": integrity}, call_stack()))

    def download_and_extract(url, output = "", sha256 = "", type = "", stripPrefix = "",
                             allow_fail = False, canonical_id = "", auth = {}, headers = {},
                             integrity = "", rename_files = {}, strip_prefix = "",
                             block = True):
        return struct(**_bp_repo(cid, "download_and_extract", {
            "url": _urls(url), "output": _text(cid, output), "sha256": sha256,
            "type": type, "strip_prefix": strip_prefix or stripPrefix,
            "integrity": integrity}, call_stack()))

    def extract(archive, output = "", stripPrefix = "", rename_files = {}, strip_prefix = "",
                watch_archive = "auto", type = ""):
        _bp_repo(cid, "extract", {"archive": _text(cid, archive), "output": _text(cid, output),
                                  "strip_prefix": strip_prefix or stripPrefix, "type": type}, call_stack())

    def execute(arguments, timeout = 600, environment = {}, quiet = True,
                working_directory = ""):
        args = [_text(cid, a) if type(a) == "struct" else str(a) for a in arguments]
        return struct(**_bp_repo(cid, "execute", {
            "arguments": args, "timeout": timeout, "environment": environment,
            "quiet": quiet, "working_directory": working_directory}, call_stack()))

    def which(program):
        found = _bp_repo(cid, "which", {"program": program}, call_stack())
        return _path(cid, found) if found != None else None

    def patch(patch_file, strip = 0, watch_patch = "auto"):
        _bp_repo(cid, "patch", {"patch_file": _text(cid, patch_file), "strip": strip}, call_stack())

    def report_progress(status = ""):
        _bp_repo(cid, "report_progress", {"status": status}, call_stack())

    def getenv(name, default = None):
        return environ.get(name, default)

    def watch(p):
        pass

    environ = _bp_repo(cid, "environ", {}, call_stack())
    return struct(
        name = name,
        attr = struct(name = name, **attrs),
        path = path,
        read = read,
        file = file,
        template = template,
        symlink = symlink,
        delete = delete,
        download = download,
        download_and_extract = download_and_extract,
        extract = extract,
        execute = execute,
        which = which,
        patch = patch,
        report_progress = report_progress,
        getenv = getenv,
        watch = watch,
        workspace_root = path(workspace_root),
        os = struct(name = "linux", arch = _bp_repo(cid, "arch", {}, call_stack()), environ = environ),
    )

def _values(specs, given, convert):
    """Attribute values: those `given`, else each spec's default (or its type's empty
    value), each passed through `convert(kind, value)`."""
    values = {}
    for key, spec in specs.items():
        kind = spec.get("__bp_attr__", "string")
        if key in given:
            value = given[key]
        elif "default" in spec:
            value = spec["default"]
        else:
            value = _EMPTY.get(kind)
        values[key] = convert(kind, value)
    return values

def fetch(rule, name, given, cid, workspace_root):
    """Run repository rule `rule` (the value a .bzl file exports) for repository `name`
    with the attributes `given` (as WORKSPACE wrote them)."""
    declared = rule(__bp_implementation__ = True)
    attrs = _values(declared.attrs, given, _attr_value)
    return declared.implementation(repository_ctx(cid, name, attrs, workspace_root))

def _tag_value(kind, value, module):
    """A tag attribute's value; labels are relative to the module that wrote them."""
    if value != None and kind in ("label", "label_list") and module != "":
        rebase = lambda v: "@" + module + v if v.startswith("//") else v
        value = rebase(value) if kind == "label" else [rebase(v) for v in value]
    return _attr_value(kind, value)

def run_extension(extension, modules, cid, workspace_root):
    """Run module extension `extension` for `modules` (each a dict: name, version,
    is_root, repo (its repository's name), tags as [tag name, attributes, dev])."""
    classes = extension.tag_classes
    module_values = []
    for m in modules:
        tags = {name: [] for name in classes}
        for tag, given, dev in m["tags"]:
            if tag not in classes:
                fail("module '%s' uses tag '%s', which this extension does not define (it has %s)" %
                     (m["name"], tag, ", ".join(sorted(classes.keys())) or "none"))
            values = _values(classes[tag].attrs, given,
                             lambda kind, value: _tag_value(kind, value, m["repo"]))
            for key in given:
                if key not in values:
                    fail("tag '%s' of module '%s' has no attribute '%s'" % (tag, m["name"], key))
            tags[tag].append(struct(_bp_dev = dev, **values))
        module_values.append(struct(name = m["name"], version = m["version"],
                                    is_root = m["is_root"], tags = struct(**tags)))
    ctx = repository_ctx(cid, "extension", {}, workspace_root)

    def is_dev_dependency(tag):
        return tag._bp_dev

    def extension_metadata(**kwargs):
        return None

    module_ctx = struct(
        modules = module_values,
        path = ctx.path,
        read = ctx.read,
        file = ctx.file,
        template = ctx.template,
        symlink = ctx.symlink,
        delete = ctx.delete,
        download = ctx.download,
        download_and_extract = ctx.download_and_extract,
        extract = ctx.extract,
        execute = ctx.execute,
        which = ctx.which,
        report_progress = ctx.report_progress,
        getenv = ctx.getenv,
        watch = ctx.watch,
        os = ctx.os,
        is_dev_dependency = is_dev_dependency,
        extension_metadata = extension_metadata,
        root_module_has_non_dev_dependency = True,
    )
    return extension.implementation(module_ctx)
