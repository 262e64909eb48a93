"""bp's core builtins, written in Starlark: rule(), attr, provider(), select(), Label().

Injected into every .bzl and BUILD file. Python natives (`_bp_*`) record declarations
and targets; they are bound by buildpy.lang.env. Knows no language or rule.
"""

def _attr(kind, kwargs):
    spec = {"__bp_attr__": kind}
    for key, value in kwargs.items():
        if key == "providers":
            value = _provider_ids(value)
        elif key in ("default", "values") and type(value) == "struct" and hasattr(value, "__bp_label__"):
            value = value.__bp_label__
        elif key == "default" and type(value) == "function":   # a computed default
            spec["_bp_computed"] = value
            continue
        elif key == "aspects":   # kept for the analysis; Python sees their names
            for a in value:
                if type(a) != "struct" or not hasattr(a, "_bp_aspect"):
                    fail("'aspects' takes aspect() values, got %s" % type(a))
            spec["_bp_aspects"] = value
            value = [a._bp_aspect for a in value]
        elif key == "cfg" and value != None and type(value) != "string":
            value = _transition_id(value, "attr.*(cfg = ...)")
        spec[key] = value
    return spec

def _provider_ids(providers):
    ids = []
    for p in providers:
        if type(p) == "list":
            ids.append(_provider_ids(p))
        elif type(p) == "function":
            ids.append(p(__bp_provider_id__ = True))
        else:
            ids.append(p)
    return ids

def _attr_string(**kwargs):
    return _attr("string", kwargs)

def _attr_string_list(**kwargs):
    return _attr("string_list", kwargs)

def _attr_int(**kwargs):
    return _attr("int", kwargs)

def _attr_int_list(**kwargs):
    return _attr("int_list", kwargs)

def _attr_bool(**kwargs):
    return _attr("bool", kwargs)

def _attr_label(**kwargs):
    return _attr("label", kwargs)

def _attr_label_list(**kwargs):
    return _attr("label_list", kwargs)

def _attr_output(**kwargs):
    return _attr("output", kwargs)

def _attr_output_list(**kwargs):
    return _attr("output_list", kwargs)

def _attr_string_dict(**kwargs):
    return _attr("string_dict", kwargs)

def _attr_string_list_dict(**kwargs):
    return _attr("string_list_dict", kwargs)

def _attr_label_keyed_string_dict(**kwargs):
    return _attr("label_keyed_string_dict", kwargs)

def _attr_string_keyed_label_dict(**kwargs):
    return _attr("string_keyed_label_dict", kwargs)

attr = struct(
    string = _attr_string,
    string_list = _attr_string_list,
    int = _attr_int,
    int_list = _attr_int_list,
    bool = _attr_bool,
    label = _attr_label,
    label_list = _attr_label_list,
    output = _attr_output,
    output_list = _attr_output_list,
    string_dict = _attr_string_dict,
    string_list_dict = _attr_string_list_dict,
    label_keyed_string_dict = _attr_label_keyed_string_dict,
    string_keyed_label_dict = _attr_string_keyed_label_dict,
)

_SCALARS = ["string", "int", "bool", "NoneType"]

def _json_plain(kwargs):
    """Whether JSON carries these values unchanged: scalars, and lists and string-keyed
    dicts of scalars (not select(), Labels, structs or functions)."""
    for value in kwargs.values():
        kind = type(value)
        if kind == "list":
            for item in value:
                if type(item) not in _SCALARS:
                    return False
        elif kind == "dict":
            for key, item in value.items():
                if type(key) != "string" or type(item) not in _SCALARS:
                    return False
        elif kind not in _SCALARS:
            return False
    return True

def _transition_id(value, what):
    if type(value) != "struct" or not hasattr(value, "_bp_transition"):
        fail("%s takes \"exec\", \"target\" or a transition(), got %s" % (what, type(value)))
    return "transition:%d" % value._bp_transition

def transition(implementation = None, inputs = [], outputs = []):
    """A configuration transition: `implementation(settings, attr)` returns the new values
    of the `outputs` settings from those of the `inputs` (`//command_line_option:...` and
    build settings)."""
    if type(implementation) != "function":
        _bp_declaration_error("transition() needs 'implementation', a function taking " +
                              "(settings, attr), not " + type(implementation), call_stack())
    return struct(
        _bp_transition = _bp_declare_transition(inputs, outputs, None, call_stack()),
        implementation = implementation,
    )

def analysis_test_transition(settings = {}):
    """The transition of an analysis test's target under test: fixed setting values."""
    return struct(
        _bp_transition = _bp_declare_transition([], list(settings.keys()), settings,
                                                call_stack()),
        implementation = None,
    )

def rule(implementation = None, attrs = {}, executable = False, test = False, doc = "",
         toolchains = [], provides = [], build_setting = None, cfg = None, outputs = None,
         **kwargs):
    """Declares a rule kind; the returned function declares a target of that kind."""
    if type(implementation) != "function":
        _bp_declaration_error("rule() needs 'implementation', a function taking ctx, not " +
                              type(implementation), call_stack())
    if build_setting != None:   # its value's default, as Bazel declares it
        if type(build_setting) != "struct" or not hasattr(build_setting, "_bp_setting_type"):
            _bp_declaration_error("rule() 'build_setting' must be a config.* value, such as " +
                                  "config.string(flag = True)", call_stack())
        attrs = dict(attrs)
        attrs["build_setting_default"] = _attr(build_setting._bp_setting_type, dict({
            "mandatory": True,
            "configurable": False,
            "doc": "The value of this setting when no flag or transition sets it.",
        }, **({"allow_files": True} if build_setting._bp_setting_type == "label" else {})))
        build_setting = [build_setting._bp_setting_type, build_setting.flag]
    aspects = {}   # attribute -> the aspects it applies to its dependencies
    computed = {}   # attribute -> the function that computes its default
    for name, spec in attrs.items():
        if type(spec) == "dict" and ("_bp_aspects" in spec or "_bp_computed" in spec):
            if "_bp_aspects" in spec:
                aspects[name] = spec["_bp_aspects"]
            if "_bp_computed" in spec:
                computed[name] = spec["_bp_computed"]
            attrs = dict(attrs)
            attrs[name] = {k: v for k, v in spec.items()
                           if k not in ("_bp_aspects", "_bp_computed")}
            if name in computed:
                attrs[name]["__bp_computed__"] = True
    if cfg != None and type(cfg) != "string":
        cfg = _transition_id(cfg, "rule(cfg = ...)")
    implicit = _implicit_outputs(outputs, attrs, call_stack())
    if implicit:   # each is an output attribute that the rule sets itself
        attrs = dict(attrs)
        for key, template in implicit.items():
            attrs[key] = _attr("output", {"doc": "An implicit output: " + template})
    rule_id = _bp_declare_rule(attrs, executable, test, doc, toolchains,
                               _provider_ids(provides), kwargs.keys(),
                               {"build_setting": build_setting, "cfg": cfg}, call_stack())

    def _bp_rule_instance(**kwargs):
        if "__bp_analyze__" in kwargs:
            return implementation(kwargs["__bp_analyze__"])
        if "__bp_declared__" in kwargs:   # for the analysis
            return struct(aspects = aspects, provides = provides)
        if "__bp_rule_id__" in kwargs:
            return rule_id
        if "__bp_export__" in kwargs:   # (global name, line of its assignment)
            name, line = kwargs["__bp_export__"]
            return _bp_export_rule(rule_id, name, line, call_stack())
        if implicit:
            kwargs = _with_implicit_outputs(kwargs, implicit, attrs, call_stack())
        if computed:
            kwargs = _with_computed_defaults(kwargs, computed, attrs, call_stack())
        if _json_plain(kwargs):  # one string crosses to Python instead of every value
            _bp_instantiate_json(json.encode([rule_id, kwargs]), call_stack())
        else:
            _bp_instantiate(rule_id, kwargs, call_stack())
        return None

    return _bp_rule_instance

def _implicit_outputs(outputs, attrs, stack):
    """rule(outputs = {"name": "%{name}.txt"}): Bazel's implicit outputs, by key."""
    if outputs == None:
        return {}
    if type(outputs) != "dict":
        _bp_declaration_error("rule() 'outputs' must be a dict of output names to " +
                              "templates such as \"%{name}.txt\" (a function is not " +
                              "supported)", stack)
    for key, template in outputs.items():
        if type(template) != "string":
            _bp_declaration_error("rule() 'outputs': the template of '%s' must be a string" %
                                  key, stack)
        if key in attrs:
            _bp_declaration_error("rule() 'outputs': '%s' is also an attribute" % key,
                                  stack)
    return outputs

def _with_implicit_outputs(kwargs, implicit, attrs, stack):
    """The target's attributes with its implicit outputs named: `%{name}` and `%{attr}`
    (a string attribute, or its default) replaced in each template."""
    kwargs = dict(kwargs)
    for key, template in implicit.items():
        if key in kwargs:
            _bp_declaration_error("'%s' is an implicit output of this rule; it cannot be " %
                                  key + "set", stack)
        out = []
        rest = template
        for _ in range(len(template)):
            start = rest.find("%{")
            end = rest.find("}", start)
            if start < 0 or end < 0:
                break
            name = rest[start + 2:end]
            value = kwargs.get(name, attrs.get(name, {}).get("default") if name != "name"
                               else None)
            if type(value) != "string":
                _bp_declaration_error("implicit output '%s': %%{%s} needs a string " %
                                      (key, name) + "attribute", stack)
            out.append(rest[:start] + value)
            rest = rest[end + 1:]
        kwargs[key] = "".join(out) + rest
    return kwargs

def _with_computed_defaults(kwargs, computed, attrs, stack):
    """A computed default is a function whose parameters name the attributes it reads,
    as in Bazel: called with their values (or defaults) when the target sets none."""
    kwargs = dict(kwargs)
    values = {}
    for name, function in computed.items():
        if name in kwargs:
            continue
        arguments = {}
        for parameter in _bp_function_parameters(str(function), stack):
            if parameter in kwargs:
                arguments[parameter] = kwargs[parameter]
            elif parameter in attrs and type(attrs[parameter]) == "dict":
                arguments[parameter] = attrs[parameter].get("default")
            else:
                arguments[parameter] = None
        value = function(**arguments)
        if value != None:
            values[name] = value
    if values:   # (private attributes: the target may not set them itself)
        kwargs["__bp_computed_defaults__"] = values
    return kwargs

def bp_export_rules(globals):
    """Run after a .bzl file, with its globals as (name, value, line assigned): a rule
    gets the name of the first global it is assigned to, as Bazel names it when the file
    is exported (a rule made by a factory function too). Returns the rules by name,
    private ones included, for the analysis to call."""
    rules = {}
    for name, value, line in globals:
        if type(value) == "function" and str(value).endswith("._bp_rule_instance"):
            value(__bp_export__ = (name, line))
            rules[name] = value
        elif type(value) == "function" and str(value).endswith("._bp_repository_rule"):
            value(__bp_export__ = name)
            rules[name] = value
        elif type(value) == "struct" and hasattr(value, "_bp_module_extension"):
            rules[name] = value
        elif type(value) == "struct" and hasattr(value, "_bp_transition"):
            _bp_export_transition(value._bp_transition, name, call_stack())
            rules[name] = value
        elif type(value) == "struct" and hasattr(value, "_bp_aspect"):
            _bp_export_aspect(value._bp_aspect, name, call_stack())
            rules[name] = value   # for --aspects=<file>%<name>
    return rules

_ASPECT_ATTR_TYPES = ("string", "bool", "int")
_ASPECT_LABEL_TYPES = ("label", "label_list")

def aspect(implementation = None, attr_aspects = [], attrs = {}, required_providers = [],
           required_aspect_providers = [], provides = [], requires = [], fragments = [],
           host_fragments = [], toolchains = [], doc = "", apply_to_generating_rules = False,
           incompatible_use_toolchain_transition = False, exec_compatible_with = [],
           exec_groups = None):
    """Declares an aspect: `implementation(target, ctx)` runs on each target that an
    attribute (`attr.label(aspects = [...])`) applies it to, and on their dependencies
    along `attr_aspects`; its providers join the target's, as its dependent sees it."""
    if type(implementation) != "function":
        _bp_declaration_error("aspect() needs 'implementation', a function taking " +
                              "(target, ctx), not " + type(implementation), call_stack())
    label_attrs = {}   # the private label attributes: the aspect's tools and data
    for name, spec in attrs.items():
        kind = spec.get("__bp_attr__") if type(spec) == "dict" else None
        if kind in _ASPECT_LABEL_TYPES and name.startswith("_"):
            label_attrs[name] = spec
            continue
        if kind not in _ASPECT_ATTR_TYPES:
            _bp_declaration_error(
                "aspect attribute '%s': an aspect's public attributes are string, bool " %
                name + "or int (not %s); only private ones (named _%s) may be labels" %
                (kind, name), call_stack())
        if not name.startswith("_") and kind == "string" and not spec.get("values"):
            _bp_declaration_error("aspect attribute '%s' must declare its 'values', as " %
                                  name + "Bazel requires of an aspect's public attributes",
                                  call_stack())
    for required in requires:
        if type(required) != "struct" or not hasattr(required, "_bp_aspect"):
            _bp_declaration_error("aspect() 'requires' takes aspect() values, got %s" %
                                  type(required), call_stack())
    wanted = required_providers
    if wanted and type(wanted[0]) != "list":
        wanted = [wanted]
    aspect_id = "aspect #%d" % _bp_next_id()
    _bp_declare_aspect(aspect_id, label_attrs, [r._bp_aspect for r in requires],
                       call_stack())
    return struct(
        _bp_aspect = aspect_id,
        implementation = implementation,
        attr_aspects = list(attr_aspects),
        attrs = {name: spec.get("default") for name, spec in attrs.items()
                 if name not in label_attrs},
        label_attrs = {name: struct(
            type = spec["__bp_attr__"],
            single = bool(spec.get("allow_single_file")),
            executable = bool(spec.get("executable")),
        ) for name, spec in label_attrs.items()},
        requires = list(requires),
        required_providers = wanted,
        provides = provides,
    )

def provider(doc = "", fields = None, init = None, _bp_positional = None):
    """Declares a provider; calling it makes an instance (a struct tagged with its id).
    `_bp_positional` names the field that a lone positional argument fills, for the
    providers that Bazel builds in (`TemplateVariableInfo({"CC": ...})`)."""
    if fields != None and type(fields) not in ("list", "dict"):
        _bp_declaration_error("provider() 'fields' must be a list or a dict of strings",
                              call_stack())
    field_names = fields.keys() if type(fields) == "dict" else fields
    provider_id = _bp_declare_provider(doc, field_names, call_stack())

    def _provider_instance(*args, **kwargs):
        if "__bp_provider_id__" in kwargs:
            return provider_id
        if args:
            if _bp_positional == None or len(args) != 1 or _bp_positional in kwargs:
                _bp_declaration_error("a provider takes keyword arguments only" if
                                      _bp_positional == None else
                                      "this provider takes one positional argument, " +
                                      _bp_positional, call_stack())
            kwargs[_bp_positional] = args[0]
        if field_names != None:
            for key in kwargs:
                if key not in field_names:
                    _bp_declaration_error(
                        "unexpected field '%s' for provider (fields: %s)" %
                        (key, ", ".join(field_names)),
                        call_stack(),
                    )
        return struct(_bp_key = _provider_instance, **kwargs)

    return _provider_instance

def select(conditions, no_match_error = ""):
    """A configurable value. It is a list holding one select so that `+` concatenates."""
    return [_bp_select(conditions, no_match_error, call_stack())]

_ORDERS = ("default", "postorder", "preorder", "topological")
_FOREVER = 2147483647  # Starlark has no while loop: bound loops by this

def depset(direct = None, order = "default", transitive = None):
    """A set of values in a fixed order that shares the depsets it is built from.

    `to_list()` visits every depset of the graph once, so it is linear in its size.
    """
    if order not in _ORDERS:
        fail("depset() order must be one of %s, not %r" % (", ".join(_ORDERS), order))
    children = []
    for t in transitive or []:
        if type(t) != "struct" or not hasattr(t, "_bp_node"):
            fail("depset() 'transitive' takes depsets, got %s" % type(t))
        if t.order != "default" and order != "default" and t.order != order:
            fail("Order mismatch: cannot add a %s depset to a %s depset" % (t.order, order))
        if t._bp_node.size:
            children.append(t._bp_node)
    items = list(direct or [])
    size = len(items)
    for child in children:
        size += child.size
    node = struct(id = _bp_next_id(), direct = items, children = children, size = size)
    return struct(_bp_node = node, order = order, to_list = _to_list_unrouted)

def _to_list_unrouted():
    fail("a depset's to_list can be called only as d.to_list() in bp, not through " +
         "another name or getattr()")

def bp_merge_unrouted(*args, **kwargs):
    fail("runfiles' merge and merge_all can be called only as r.merge(x) and " +
         "r.merge_all(xs) in bp, not through another name or getattr()")

def bp_merge(value, *args, **kwargs):
    """`x.merge(...)` as .bzl files call it (rewrite.py): runfiles' merge (bp's runfiles
    hold no function of their own); any other value's own `merge`."""
    if type(value) == "struct" and hasattr(value, "_bp_merge"):
        return value._bp_merge(value, *args, **kwargs)
    return value.merge(*args, **kwargs)

def bp_merge_all(value, *args, **kwargs):
    """`x.merge_all(...)`, as `bp_merge`."""
    if type(value) == "struct" and hasattr(value, "_bp_merge"):
        return value._bp_merge(value, *args, **kwargs)
    return value.merge_all(*args, **kwargs)

def bp_to_list(value):
    """`x.to_list()` as .bzl files call it (rewrite.py routes the call here): a depset's
    items, with no function made for each depset (each would cost memory, and more once
    frozen); any other value's own `to_list()`."""
    if type(value) == "struct" and hasattr(value, "_bp_node"):
        return _flatten(value._bp_node, value.order)
    return value.to_list()

def _flatten(root, order):
    out = {}
    if order == "preorder":
        stack = [root]
        seen = {root.id: True}
        for _ in range(_FOREVER):
            if not stack:
                break
            node = stack.pop()
            for item in node.direct:
                out[item] = True
            for i in range(len(node.children) - 1, -1, -1):
                child = node.children[i]
                if child.id not in seen:
                    seen[child.id] = True
                    stack.append(child)
        return list(out.keys())
    visits = _postorder(root, order == "topological")
    if order == "topological":
        visits = reversed(visits)
    for node in visits:
        for item in node.direct:
            out[item] = True
    return list(out.keys())

def _postorder(root, right_to_left):
    """The depset nodes under `root`, each after its children, each once."""
    visits = []
    seen = {root.id: True}
    stack = [[root, 0]]
    for _ in range(_FOREVER):
        if not stack:
            break
        top = stack[-1]
        node, index = top[0], top[1]
        if index < len(node.children):
            top[1] = index + 1
            child = node.children[len(node.children) - 1 - index] if right_to_left else \
                node.children[index]
            if child.id not in seen:
                seen[child.id] = True
                stack.append([child, 0])
        else:
            stack.pop()
            visits.append(node)
    return visits

# Characters that never need quoting in a shell word (Python's shlex.quote keeps the same).
_SHELL_SAFE = ("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789" +
               "@%+=:,./-_")

def shell_quote(text):
    """`text` as one shell word: unchanged if it needs no quoting, else in single quotes.
    Every file path bp substitutes into a shell command goes through this, so that no
    file name (labels may hold `$ ( ) ; | &` and spaces) runs as shell code."""
    if text and not text.lstrip(_SHELL_SAFE):
        return text
    return "'" + text.replace("'", "'\"'\"'") + "'"

def Label(text):
    return struct(**_bp_label(text, call_stack()))

def print(*args, sep = " "):
    _bp_print(sep.join([bp_str(a) for a in args]), call_stack())

def glob(include = [], exclude = [], exclude_directories = 1, allow_empty = True):
    return _bp_glob(include, exclude, exclude_directories, allow_empty, call_stack())

def package(**kwargs):
    _bp_package(kwargs, call_stack())

def exports_files(srcs, visibility = None, licenses = None):
    _bp_exports_files(srcs, visibility, call_stack())

def package_group(name, packages = [], includes = []):
    _bp_package_group(name, packages, includes, call_stack())

def package_name():
    return _bp_package_name(call_stack())

def repository_name():
    return _bp_repository_name(call_stack())

def existing_rule(name):
    return _bp_existing_rule(name, call_stack())

def existing_rules():
    return _bp_existing_rules(call_stack())

def licenses(license_types):
    pass

def host_info():
    """The machine bp runs on: struct(os = "linux", cpu = "x86_64")."""
    return struct(**_bp_host_info(call_stack()))

def workspace(name):
    _bp_workspace(name, call_stack())

def register_toolchains(*toolchains):
    _bp_register("toolchains", toolchains, call_stack())

def register_execution_platforms(*platforms):
    _bp_register("execution_platforms", platforms, call_stack())

def _plain(value):
    """An attribute value of a repository as Python takes it: Labels as text."""
    kind = type(value)
    if kind == "struct" and hasattr(value, "__bp_label__"):
        return value.__bp_label__
    if kind in ("list", "tuple"):
        return [_plain(v) for v in value]
    if kind == "dict":
        return {_plain(k): _plain(v) for k, v in value.items()}
    return value

def local_repository(name, path, repo_mapping = {}):
    _bp_define_repository("local_repository", name, dict(path = path), call_stack())

def new_local_repository(name, path, build_file = None, build_file_content = None,
                         workspace_file = None, workspace_file_content = None,
                         repo_mapping = {}):
    attrs = dict(path = path, build_file = _plain(build_file),
                 build_file_content = build_file_content,
                 workspace_file_content = workspace_file_content)
    _bp_define_repository("new_local_repository", name,
                          {k: v for k, v in attrs.items() if v != None}, call_stack())

def bind(name, actual = None):
    _bp_bind(name, _plain(actual), call_stack())

def repository_rule(implementation = None, attrs = {}, local = False, environ = [],
                    configure = False, remotable = False, doc = ""):
    """Declares a repository rule: called in WORKSPACE (or a macro it calls) with a name
    and attributes, it defines a repository, which `implementation(repository_ctx)`
    makes when a build first needs it."""
    if type(implementation) != "function":
        _bp_declaration_error("repository_rule() needs 'implementation', a function " +
                              "taking repository_ctx, not " + type(implementation),
                              call_stack())
    rule_id = _bp_declare_repository_rule(attrs, local, environ, configure, call_stack())

    def _bp_repository_rule(**kwargs):
        if "__bp_implementation__" in kwargs:
            return struct(implementation = implementation, attrs = attrs)
        if "__bp_export__" in kwargs:
            return _bp_export_repository_rule(rule_id, kwargs["__bp_export__"], call_stack())
        _bp_define_repository(rule_id, kwargs.pop("name", None), _plain(kwargs), call_stack())

    return _bp_repository_rule

DefaultInfo = provider(
    doc = "The files a target produces and the runfiles it needs.",
    fields = ["files", "runfiles", "data_runfiles", "default_runfiles", "executable",
              "files_to_run"],
)
OutputGroupInfo = provider(doc = "Named groups of output files.")
RunEnvironmentInfo = provider(
    doc = "Environment for `bp run` and `bp test` of an executable target.",
    fields = ["environment", "inherited_environment"],
)
ToolchainInfo = provider(doc = "What a toolchain gives the rules that use it (any fields).")
TemplateVariableInfo = provider(
    doc = "Make variables (such as CC) that a toolchain defines for genrule and ctx.var.",
    fields = ["variables"],
    _bp_positional = "variables",
)
AnalysisFailureInfo = provider(
    doc = "What an analysis test's target under test gives when its analysis failed " +
          "(with //command_line_option:allow_analysis_failures): its `causes`, a depset " +
          "of struct(label, message).",
    fields = ["causes"],
)
AnalysisTestResultInfo = provider(
    doc = "The verdict of an analysis test: `success`, and a `message` to show.",
    fields = ["success", "message"],
)
ConstraintValueInfo = provider(
    doc = "What a constraint_value target gives: its `label`.",
    fields = ["label"],
)
PlatformInfo = provider(doc = "What a platform target gives: its `label`.", fields = ["label"])
ExecutionInfo = provider(
    doc = "Execution requirements of a rule's actions or test (`requirements`, a dict).",
    fields = ["requirements", "exec_group"],
)
InstrumentedFilesInfo = provider(
    doc = "The files coverage would instrument (recorded; bp has no coverage yet).",
    fields = ["instrumented_files", "metadata_files"],
)

def _toolchain_type(name, mandatory = True):
    if not mandatory:
        _bp_declaration_error("optional toolchains (mandatory = False) are not supported " +
                              "yet; require the toolchain type", call_stack())
    return name

def _test_environment(environment, inherited_environment = []):
    return RunEnvironmentInfo(environment = environment,
                              inherited_environment = inherited_environment)

def _instrumented_files_info(ctx, source_attributes = [], dependency_attributes = [],
                             extensions = None, metadata_files = []):
    files = []
    for name in source_attributes:
        files += getattr(ctx.files, name, None) or []
    if extensions != None:
        files = [f for f in files if f.extension in extensions]
    return InstrumentedFilesInfo(instrumented_files = depset(files),
                                 metadata_files = depset(metadata_files))

# ---- Bazel's value types, as bp's structs -----------------------------------------------
# A Label, a Target, a File and a depset are structs here (see buildpy/lang/rewrite.py):
# .bzl files see `str`, `repr` and `type` as the three functions below, and their
# `x[k]`, `k in x`, `a % b` and `s.format(...)` are routed through the bp_* helpers.

def _kind(value):
    """Bazel's name of the type of one of bp's structs, or None for a plain struct."""
    if hasattr(value, "__bp_label__"):
        return "Label"
    if hasattr(value, "_bp_path"):
        return "path"
    if hasattr(value, "_bp_providers"):
        return "Target"
    if hasattr(value, "_bp_node"):
        return "depset"
    if hasattr(value, "is_source") and hasattr(value, "short_path"):
        return "File"
    return None

def bp_type(value):
    kind = type(value)
    if kind == "struct":
        return _kind(value) or kind
    return kind

def bp_dir(value):
    """dir(): a plain struct also lists the to_json and to_proto of Bazel's structs."""
    names = dir(value)
    if type(value) == "struct" and _kind(value) == None:
        names = sorted(names + ["to_json", "to_proto"])
    return names

def bp_str(value):
    if type(value) == "struct":
        kind = _kind(value)
        if kind == "Label":
            return value.__bp_label__
        if kind == "path":
            return value._bp_path
        if kind != None:
            return bp_repr(value)
    elif type(value) != "string":
        return bp_repr(value)
    return str(value)

def bp_repr(value):
    kind = type(value)
    if kind == "struct":
        kind = _kind(value)
        if kind == "Label":
            return "Label(%r)" % value.__bp_label__
        if kind == "path":
            return repr(value._bp_path)
        if kind == "Target":
            return "<%s %s>" % (getattr(value, "_bp_kind", "target"), value.label.__bp_label__)
        if kind == "File":
            return "<%s file %s>" % ("source" if value.is_source else "generated",
                                      value.short_path)
        if kind == "depset":
            return "depset([%s])" % ", ".join([bp_repr(v) for v in bp_to_list(value)])
        if kind == None and _holds_bp_values(value):
            return "struct(%s)" % ", ".join(["%s = %s" % (k, bp_repr(getattr(value, k)))
                                             for k in dir(value)])
    elif kind in ("list", "tuple") and _holds_bp_values(value):
        inner = ", ".join([bp_repr(v) for v in value])
        return "[%s]" % inner if kind == "list" else \
            "(%s%s)" % (inner, "," if len(value) == 1 else "")
    elif kind == "dict" and _holds_bp_values(value):
        return "{%s}" % ", ".join(["%s: %s" % (bp_repr(k), bp_repr(v))
                                   for k, v in value.items()])
    return repr(value)

def _holds_bp_values(value):
    kind = type(value)
    if kind == "struct":
        items = [getattr(value, k) for k in dir(value)]
    elif kind == "dict":
        items = list(value.keys()) + list(value.values())
    elif kind in ("list", "tuple"):
        items = value
    else:
        return False
    for item in items:
        if type(item) == "struct" and (_kind(item) != None or _holds_bp_values(item)):
            return True
        if type(item) in ("list", "tuple", "dict") and _holds_bp_values(item):
            return True
    return False

def _formatted(value):
    """A value ready for % or format(): one of bp's structs (or a container of them) as
    a struct holding what str() and repr() give; any other value unchanged."""
    kind = type(value)
    if kind == "struct" and (_kind(value) != None or _holds_bp_values(value)) or \
            kind in ("list", "tuple", "dict") and _holds_bp_values(value):
        return struct(_bp_shown = bp_str(value), _bp_shown_repr = bp_repr(value))
    return value

def _is_shown(value):
    return type(value) == "struct" and hasattr(value, "_bp_shown")

def _shown_text(value):
    shown = _formatted(value)
    return shown._bp_shown if _is_shown(shown) else value

def bp_mod(left, right):
    if type(left) != "string":
        return left % right
    if type(right) == "dict":
        return left % {k: _shown_text(v) for k, v in right.items()}
    values = [_formatted(v) for v in right] if type(right) == "tuple" else [_formatted(right)]
    if not [v for v in values if _is_shown(v)]:
        return left % right
    return _percent(left, values)

def _percent(text, values):
    """`text % tuple(values)` where some values are shown by bp: %s and %r take their
    text; every other directive goes to Starlark as written."""
    out = []
    index = 0
    rest = text
    for _ in range(len(text) + 1):
        at = rest.find("%")
        if at < 0 or at + 1 >= len(rest):
            out.append(rest)
            break
        out.append(rest[:at])
        directive = rest[at + 1]
        rest = rest[at + 2:]
        if directive == "%":
            out.append("%")
            continue
        if index >= len(values):
            fail("not enough arguments for format pattern")
        value = values[index]
        index += 1
        if _is_shown(value):
            out.append(value._bp_shown if directive == "s" else value._bp_shown_repr
                       if directive == "r" else ("%" + directive) % value._bp_shown)
        else:
            out.append(("%" + directive) % (value,))
    if index < len(values):
        fail("too many arguments for format pattern")
    return "".join(out)

def bp_format(text, *args, **kwargs):
    return text.format(*[_shown_text(v) for v in args],
                       **{k: _shown_text(v) for k, v in kwargs.items()})

def _holds_select(value):
    if type(value) != "list":
        return False
    for item in value:
        if type(item) == "opaque_python_object":
            return True
    return False

def bp_add(left, right):
    """`+` when a select() is an operand: a string joins the select()'s parts (Starlark
    has no string + list), to be concatenated once the select() is resolved."""
    if (type(left) == "string" or type(right) == "string") and \
            (_holds_select(left) or _holds_select(right)):
        return (left if type(left) == "list" else [left]) + \
               (right if type(right) == "list" else [right])
    return left + right

def bp_at(container, key):
    if type(container) == "struct":
        providers = getattr(container, "_bp_providers", None)
        if providers != None:
            return _provider_of(container, providers, key)
    return container[key]

def bp_in(key, container):
    if type(container) == "struct":
        providers = getattr(container, "_bp_providers", None)
        if providers != None:
            _check_provider_key(key, "in")
            return key in providers
    return key in container

def bp_not_in(key, container):
    return not bp_in(key, container)

def bp_target_providers(target):
    """The providers of a Target, keyed by provider (for rules such as alias)."""
    return target._bp_providers

def _check_provider_key(key, operation):
    if type(key) != "function":
        fail("Type Target only supports %s by object constructors, got %s instead" %
             ("indexing" if operation == "[]" else "querying", bp_type(key)))

def _provider_of(target, providers, key):
    _check_provider_key(key, "[]")
    if key not in providers:
        fail("%s doesn't contain declared provider '%s'" %
             (bp_repr(target), _bp_provider_name(key(__bp_provider_id__ = True))))
    return providers[key]

def _setting(kind):
    def make(flag = False, allow_multiple = False, repeatable = False):
        return struct(_bp_setting_type = kind, flag = flag)

    return make

# The build setting of label_flag and label_setting (Bazel has no config.label): its
# value is a target, which the setting stands for.
bp_label_setting = _setting("label")

# `build_setting = config.string(flag = True)`: the type of a build setting's value.
config = struct(
    string = _setting("string"),
    bool = _setting("bool"),
    int = _setting("int"),
    string_list = _setting("string_list"),
)

# Bazel's namespaces of built-in providers and helpers, as far as bp has them.
platform_common = struct(ToolchainInfo = ToolchainInfo,
                         TemplateVariableInfo = TemplateVariableInfo,
                         ConstraintValueInfo = ConstraintValueInfo,
                         PlatformInfo = PlatformInfo)
config_common = struct(toolchain_type = _toolchain_type)
def _execution_info(requirements = {}, exec_group = "test"):
    return ExecutionInfo(requirements = requirements, exec_group = exec_group)

testing = struct(TestEnvironment = _test_environment, ExecutionInfo = _execution_info)
coverage_common = struct(instrumented_files_info = _instrumented_files_info)

# The natives of BUILD files, also reachable as `native.<name>` from .bzl files.
BUILD_NATIVES = {
    "glob": glob,
    "package": package,
    "exports_files": exports_files,
    "package_group": package_group,
    "package_name": package_name,
    "repository_name": repository_name,
    "existing_rule": existing_rule,
    "existing_rules": existing_rules,
    "licenses": licenses,
    "host_info": host_info,
}

# What WORKSPACE files see.
WORKSPACE_NATIVES = {
    "workspace": workspace,
    "register_toolchains": register_toolchains,
    "register_execution_platforms": register_execution_platforms,
}

def module_extension(implementation = None, tag_classes = {}, doc = "", environ = [],
                     os_dependent = False, arch_dependent = False):
    """Declares a module extension: MODULE.bazel files use it (use_extension), give it
    tags, and import the repositories its implementation(module_ctx) defines."""
    if type(implementation) != "function":
        _bp_declaration_error("module_extension() needs 'implementation', a function " +
                              "taking module_ctx, not " + type(implementation), call_stack())
    return struct(_bp_module_extension = True, implementation = implementation,
                  tag_classes = tag_classes)

def tag_class(attrs = {}, doc = ""):
    return struct(_bp_tag_class = True, attrs = attrs)

def module(name = "", version = "", compatibility_level = 0, repo_name = "",
           bazel_compatibility = []):
    _bp_module(name, version, compatibility_level, repo_name, call_stack())

def bazel_dep(name, version = "", max_compatibility_level = -1, repo_name = "",
              dev_dependency = False):
    _bp_bazel_dep(name, version, repo_name or name, dev_dependency, call_stack())

def local_path_override(module_name, path):
    _bp_override("local_path", module_name, dict(path = path), call_stack())

def archive_override(module_name, urls = [], integrity = "", strip_prefix = "", patches = [],
                     patch_cmds = [], patch_strip = 0):
    _bp_override("archive", module_name, dict(
        urls = [urls] if type(urls) == "string" else urls, integrity = integrity,
        strip_prefix = strip_prefix, patches = _plain(patches), patch_cmds = patch_cmds,
        patch_strip = patch_strip), call_stack())

def git_override(module_name, remote, commit = "", patches = [], patch_cmds = [],
                 patch_strip = 0, init_submodules = False, strip_prefix = "", tag = "",
                 branch = ""):
    _bp_override("git", module_name, dict(
        remote = remote, commit = commit, tag = tag, branch = branch,
        patches = _plain(patches), patch_cmds = patch_cmds, patch_strip = patch_strip,
        init_submodules = init_submodules, strip_prefix = strip_prefix), call_stack())

def single_version_override(module_name, version = "", registry = "", patches = [],
                            patch_cmds = [], patch_strip = 0):
    _bp_override("single_version", module_name, dict(version = version, registry = registry),
                 call_stack())

def multiple_version_override(module_name, versions, registry = ""):
    _bp_declaration_error("multiple_version_override() is not supported by bp: each " +
                          "module has one version", call_stack())

def use_extension(extension_bzl_file, extension_name, dev_dependency = False, isolate = False):
    usage = _bp_use_extension(extension_bzl_file, extension_name, dev_dependency,
                              call_stack())

    def _tag(tag):
        def record(**kwargs):
            _bp_extension_tag(usage["id"], tag, _plain(kwargs), call_stack())
        return record

    return struct(_bp_extension_usage = usage["id"],
                  **{tag: _tag(tag) for tag in usage["tags"]})

def use_repo(extension_proxy, *args, **kwargs):
    if type(extension_proxy) != "struct" or not hasattr(extension_proxy, "_bp_extension_usage"):
        _bp_declaration_error("use_repo() takes what use_extension() returned first",
                              call_stack())
    _bp_use_repo(extension_proxy._bp_extension_usage, list(args), kwargs, call_stack())

def use_repo_rule(repo_rule_bzl_file, repo_rule_name):
    rule_id = _bp_use_repo_rule(repo_rule_bzl_file, repo_rule_name, call_stack())

    def _bp_repo_rule_proxy(name, **kwargs):
        _bp_define_repository(rule_id, name, _plain(kwargs), call_stack())

    return _bp_repo_rule_proxy

# what `native` also holds, for the macros that WORKSPACE calls (not globals of BUILD files);
# bazel_version is the Bazel whose rule API bp follows (bazel-skylib's versions.check reads it)
WORKSPACE_NATIVES = {
    "bazel_version": "7.4.1",
    "local_repository": local_repository,
    "new_local_repository": new_local_repository,
    "bind": bind,
    "register_toolchains": register_toolchains,
    "register_execution_platforms": register_execution_platforms,
}

def build_native_names():
    return sorted(BUILD_NATIVES.keys())
