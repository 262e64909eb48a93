"""bp's analysis, in Starlark: for each configured target of the plan, build `ctx`, run
the rule's implementation, and keep the providers it returns.

Python sends the plan (plain data) and records declared files, actions and results
through natives; no Starlark value ever crosses back to Python. Knows no rule.
"""

load(
    "<builtins>",
    "AnalysisFailureInfo",
    "AnalysisTestResultInfo",
    "DefaultInfo",
    "ExecutionInfo",
    "OutputGroupInfo",
    "RunEnvironmentInfo",
    "TemplateVariableInfo",
    "ToolchainInfo",
    "bp_repr",
    "bp_target_providers",
    "bp_merge_unrouted",
    "bp_to_list",
    "depset",
    "shell_quote",
)

_FOREVER = 2147483647
_UNBOUND = struct(_bp_unbound = True)

def analysis_state(rule_infos, configs, workspace_name, cli_aspects):
    """What `analyze` keeps between parts of the plan: the targets analyzed so far, and
    what the targets of each rule kind (`rule_infos`) and configuration share; and, when
    a rule or the command line (`cli_aspects`) applies aspects, what they read of each
    rule target (otherwise that is not kept: it would hold every ctx till the end)."""
    return {
        "targets": {},
        "rule_infos": rule_infos,
        "bases": [_rule_base(info) for info in rule_infos],
        "configs": configs,
        "workspace_name": workspace_name,
        "for_aspects": cli_aspects or bool([i for i in rule_infos if i["aspects"]]),
        "entries": {},   # rule targets' entries, rule views and actions, for aspects
        "rule_views": {},
        "actions": {},
        "aspect_results": {},
        "moved": {},   # analyze_again: the targets whose providers changed
        "parts": [],   # the frozen `targets` of the parts of the plan before (part_state)
    }

def analyze(rules, state, plan):
    """Runs every entry of this part of the plan (dependencies first). `rules` maps rule
    ids to rules."""
    targets, rule_infos, bases = state["targets"], state["rule_infos"], state["bases"]
    for entry in plan:
        if entry["id"] in targets:   # analyzed (or failed) before this part ran again
            continue
        if entry["kind"] == "file":  # cannot fail: no need to say which target runs
            targets[entry["id"]] = _file_target(entry)
        else:
            _bp_analysis_start(entry["id"])
            rule = entry["rule"]
            targets[entry["id"]] = _analyze_rule(rules[rule], rule_infos[rule], bases[rule],
                                                 entry, state)

def analyze_again(rules, state, plan):
    """A later analysis in the same state (a long-lived bp, watch mode): runs the entries
    of this part of the plan that are new, whose inputs to analysis changed
    (`entry["changed"]`), or that depend on a target whose providers changed (`moved`);
    keeps the others' providers. A target analyzed again whose providers come out the
    same as before does not make its dependents run (early cutoff)."""
    targets, rule_infos, bases = state["targets"], state["rule_infos"], state["bases"]
    moved = state["moved"]
    for entry in plan:
        tid = entry["id"]
        old = targets.get(tid)
        if old != None and not entry["changed"] and \
           not [d for d in entry["inputs"] if d in moved]:
            continue
        if entry["kind"] == "file":
            new = _file_target(entry)
        else:
            _bp_analysis_again(tid)
            rule = entry["rule"]
            new = _analyze_rule(rules[rule], rule_infos[rule], bases[rule], entry, state)
        targets[tid] = new
        if old == None or not _same(old, new):
            moved[tid] = True
            _bp_analysis_moved(tid)

def again(state, more):
    """The rule kinds and configurations that a later analysis in the same state adds
    (`more["rules"]`, `more["configs"]`)."""
    state["rule_infos"].extend(more["rules"])
    state["bases"].extend([_rule_base(info) for info in more["rules"]])
    state["configs"].extend(more["configs"])
    state["moved"] = {}

def part_state(base, needed, size):
    """The state of a part of the plan that runs in a module of its own, after the part
    whose state (`base`) is frozen: its `targets` holds the targets of the parts before
    that this part's entries read (`needed`: target ids; a target's part is its id
    divided by the `size` of a part), and the ones it analyzes."""
    parts = base["parts"] + [base["targets"]]
    state = dict(base)
    state["parts"] = parts
    state["targets"] = {tid: parts[tid // size][tid] for tid in needed}
    return state

def state_again(base):
    """The state of the later analyses of a long-lived bp: the first analysis's (`base`,
    frozen) copied at its top level only. What they change then lives in a heap of its
    own, small: Starlark's collector walks every value not frozen whenever a program
    runs, and the first analysis's values are most of them."""
    state = dict(base)
    for name in ("entries", "rule_views", "actions", "aspect_results", "moved"):
        state[name] = dict(base[name])
    state["targets"] = {}
    for part in base["parts"] + [base["targets"]]:   # (each part's targets: part_state)
        state["targets"].update(part)
    state["parts"] = []
    for name in ("rule_infos", "bases", "configs"):
        state[name] = list(base[name])
    return state

def _same(a, b):
    """Are two values the same for whoever reads them? Depsets by their contents (a node
    shared by both is not walked), Targets by their providers, runfiles by their files and
    links; any other function only if it is the same function (a closure made again
    counts as changed: that costs a needless analysis, never a wrong one)."""
    stack = [(a, b, False)]   # (x, y, both are depset nodes)
    seen = {}
    for _ in range(_FOREVER):
        if not stack:
            return True
        x, y, nodes = stack.pop()
        if nodes:
            if x.id == y.id or (x.id, y.id) in seen:   # the same node, or compared
                continue
            seen[(x.id, y.id)] = True
            if x.size != y.size or len(x.children) != len(y.children):
                return False
            stack.append((x.direct, y.direct, False))
            stack.extend([(c, d, True) for c, d in zip(x.children, y.children)])
            continue
        kind = type(x)
        if kind != type(y):
            return False
        if kind in ("list", "tuple"):
            if len(x) != len(y):
                return False
            stack.extend([(c, d, False) for c, d in zip(x, y)])
        elif kind == "dict":
            if list(x.keys()) != list(y.keys()):
                return False
            stack.extend([(x[k], y[k], False) for k in x])
        elif kind == "struct":
            fields = dir(x)
            if fields != dir(y):
                return False
            if "_bp_node" in fields and "to_list" in fields:   # a depset
                if x.order != y.order:
                    return False
                stack.append((x._bp_node, y._bp_node, True))
                continue
            skip = []
            if "merge_all" in fields and "root_symlinks" in fields:   # runfiles
                skip = ["merge", "merge_all", "_bp_merge"]
            stack.extend([(getattr(x, f), getattr(y, f), False) for f in fields
                          if f not in skip])
        elif x != y:
            return False
    return False

def fail_target(state, tid, label_data, message, again):
    """A target whose analysis failed where its configuration allows it (an analysis
    test's target under test): it gives its dependents AnalysisFailureInfo; `again`, in a
    later analysis (analyze_again), where its dependents must then run again too.
    (Targets left out after a failure under --keep_going are left out of the plan's
    later runs by the Analyzer.)"""
    label = _label(label_data)
    state["targets"][tid] = _target(label, {
        DefaultInfo: _default_info(depset([]), None, _NO_RUNFILES),
        AnalysisFailureInfo: AnalysisFailureInfo(
            causes = depset([struct(label = label, message = message)]),
        ),
    })
    if again:
        state["moved"][tid] = True
        _bp_analysis_moved(tid)

def _rule_base(info):
    """The ctx values of a target that sets no attribute and has no dependencies."""
    attr, file, executable = dict(info["defaults"]), {}, {}
    for name, spec in info["label_attrs"].items():
        if spec["type"] == "label":
            attr[name] = None
        else:
            attr[name] = [] if spec["type"] == "label_list" else {}
        if spec["single"]:
            file[name] = None
        if spec["executable"]:
            executable[name] = None
    for name, single in info["outputs"].items():
        attr[name] = None if single else []
    return struct(
        attr = attr,
        mutable = [name for name, value in attr.items() if type(value) in ("list", "dict")],
        file_attrs = info["label_attrs"].keys(),
        file = file,
        executable = executable,
    )

def _copy(value):
    return list(value) if type(value) == "list" else dict(value)

# ---- values ---------------------------------------------------------------------------

def _label(data):
    return struct(**data)

def _file(data):
    return struct(
        path = data["path"],
        short_path = data["short_path"],
        basename = data["basename"],
        dirname = data["dirname"],
        extension = data["extension"],
        is_source = data["is_source"],
        is_directory = data["is_directory"],
        is_symlink = data["is_symlink"],
        root = struct(path = data["root"]),
        owner = _label(data["owner"]),
    )

def _file_target(entry):
    """A file's Target: as in Bazel, the file is its own executable, with no runfiles."""
    file = _file(entry["file"])
    info = _default_info(depset([file]), file, _NO_RUNFILES)
    kind = "input file target" if file.is_source else "generated file"
    return _target(file.owner, {DefaultInfo: info}, {"_bp_kind": kind})

def _default_info(files, executable, runfiles, manifest = None):
    return DefaultInfo(files = files, executable = executable, runfiles = runfiles,
                       default_runfiles = runfiles, data_runfiles = runfiles,
                       files_to_run = struct(executable = executable,
                                             runfiles_manifest = manifest,
                                             _bp_runfiles = runfiles))

def _manifest_of(executable):
    """The MANIFEST of an executable's runfiles tree (`<executable>.runfiles/`): an action
    that has it among its inputs or tools runs with the tree beside the executable."""
    return _file_at(executable.path + ".runfiles/MANIFEST",
                    executable.short_path + ".runfiles/MANIFEST", executable.root,
                    executable.owner)

def _file_at(path, short_path, root, owner):
    """A generated File that bp makes itself (not one Python declared): its name's parts
    come from `path`."""
    basename = path.rsplit("/", 1)[-1]
    return struct(
        path = path,
        short_path = short_path,
        basename = basename,
        dirname = path.rsplit("/", 1)[0],
        extension = basename.rsplit(".", 1)[1] if "." in basename else "",
        is_source = False,
        is_directory = False,
        is_symlink = False,
        root = root,
        owner = owner,
    )

def _target(label, providers, legacy = {}):
    """A Target as rules see it (a dependency in ctx.attr): Bazel's fields, with its
    providers in `_bp_providers`, which bp's `dep[P]` and `P in dep` read. (A field, not
    a function: a function made for each target costs memory, and more once frozen.)"""
    default, groups = providers[DefaultInfo], providers.get(OutputGroupInfo)
    return struct(
        label = label,
        files = default.files,
        files_to_run = default.files_to_run,
        default_runfiles = default.default_runfiles,
        data_runfiles = default.data_runfiles,
        output_groups = groups if groups != None else OutputGroupInfo(),
        _bp_providers = providers,
        **legacy
    )

_NO_LINKS = depset([])

def _runfiles_of(files, transitive = []):
    if not transitive and files.order == "default":   # (a depset of it alone: the same)
        return _runfiles(files, _NO_LINKS, _NO_LINKS)
    return _runfiles(depset(transitive = [files] + transitive), _NO_LINKS, _NO_LINKS)

def _runfiles(files, symlinks, root_symlinks):
    """Bazel's runfiles: files at their own runfiles paths; `symlinks` (SymlinkEntry
    values: `path`, `target_file`) at paths below the main workspace's directory;
    `root_symlinks` at paths below the tree's root."""

    # No function made for each runfiles (each would cost memory, and more once
    # frozen): .bzl files' `r.merge(x)` and `r.merge_all(xs)` reach `_merged` through
    # bp_merge and bp_merge_all (rewrite.py), and bp's own code calls it.
    return struct(files = files, symlinks = symlinks, root_symlinks = root_symlinks,
                  empty_filenames = _NO_LINKS, merge = bp_merge_unrouted,
                  merge_all = bp_merge_unrouted, _bp_merge = _merged)

def _merged(runfiles, others):
    """`runfiles.merge(other)` and `runfiles.merge_all(others)` (a runfiles is never a
    list)."""
    if type(others) not in ("list", "tuple"):
        others = [others]
    return _runfiles(
        depset(transitive = [runfiles.files] + [o.files for o in others]),
        _links_union(runfiles.symlinks, [o.symlinks for o in others]),
        _links_union(runfiles.root_symlinks, [o.root_symlinks for o in others]),
    )

_NO_RUNFILES = _runfiles(_NO_LINKS, _NO_LINKS, _NO_LINKS)

def _links_union(first, others):
    others = [o for o in others if o._bp_node.size]
    if not others:
        return first
    if not first._bp_node.size and len(others) == 1:
        return others[0]
    return depset(transitive = [first] + others)

def _symlink_entries(links, what, fail_here):
    """`symlinks` or `root_symlinks` of ctx.runfiles(): a dict of path to File, or a
    depset of SymlinkEntry values."""
    if type(links) == "struct" and hasattr(links, "to_list"):
        return links
    if type(links) != "dict":
        fail_here("runfiles() '%s' must be a dict of paths to Files, got %s" %
                  (what, type(links)))
    entries = []
    for path, file in links.items():
        if type(path) != "string" or not path or path.startswith("/") or \
           ".." in path.split("/"):
            fail_here("runfiles() '%s': %r is not a relative path inside the runfiles " %
                      (what, path) + "tree")
        if type(file) != "struct" or not hasattr(file, "is_source"):
            fail_here("runfiles() '%s': the value of '%s' must be a File, got %s" %
                      (what, path, bp_repr(file)))
        entries.append(struct(path = path, target_file = file))
    return depset(entries) if entries else _NO_LINKS

def _tree_links(runfiles, workspace_name):
    """A runfiles tree's links that are not at their files' own paths: [name in the
    tree, exec path], the root symlinks last (they win, as in Bazel)."""
    if not runfiles.symlinks._bp_node.size and not runfiles.root_symlinks._bp_node.size:
        return []   # (most trees: no flattening)
    links = [[workspace_name + "/" + e.path, e.target_file.path]
             for e in bp_to_list(runfiles.symlinks)]
    return links + [[e.path, e.target_file.path] for e in bp_to_list(runfiles.root_symlinks)]

def _provider_name(p):
    return _bp_provider_name(p(__bp_provider_id__ = True))

# ---- one target ---------------------------------------------------------------------

def _analyze_rule(rule_fn, info, base, entry, state):
    tid = entry["id"]
    targets = state["targets"]
    config, workspace_name = state["configs"][entry["cfg"]], state["workspace_name"]
    kind = rule_fn(__bp_declared__ = True)   # what the rule() call declared
    aspects = kind.aspects

    def fail_here(message):
        _bp_analysis_error(tid, message, call_stack())

    def dep_of(name, dep_id):
        if name in aspects:
            tools = entry.get("aspect_tools", {})
            return _with_aspects(state, dep_id,
                                 [_parameters(a, attr, tools) for a in aspects[name]],
                                 fail_here)
        return targets[dep_id]

    given = entry["attrs"]
    attr = dict(base.attr)
    attr.update(given)
    for name in base.mutable:  # no target may change another's values
        if name not in given:
            attr[name] = _copy(attr[name])
    files = {name: [] for name in base.file_attrs}
    file, executable = dict(base.file), dict(base.executable)
    tool_runs = {}   # executables of `executable = True` attributes: their files_to_run
    deps_by_label = {}
    label_attrs = info["label_attrs"]
    splits, split_attr = entry.get("splits", {}), {}
    for name, value in entry["deps"].items():
        spec = label_attrs[name]
        if name in splits:   # a split transition's: every branch's, and each by its key
            deps = [dep_of(name, i) for i in value]
            attr[name] = deps
            split_attr[name] = {
                key: [dep_of(name, i) for i in ids] if spec["type"] == "label_list"
                else dep_of(name, ids[0])
                for key, ids in splits[name]
            }
        elif spec["type"] == "label":
            deps = [dep_of(name, value)]
            attr[name] = deps[0]
        elif spec["type"] == "label_list":
            deps = [dep_of(name, i) for i in value]
            attr[name] = deps
        else:  # label-keyed dicts, sent as [id, value] pairs: keys are the labels' targets
            deps = [dep_of(name, i) for i, _ in value]
            attr[name] = {targets[i].label: v for i, v in value}
        for dep in deps:
            deps_by_label[dep.label.__bp_label__] = dep
            if spec["providers"]:
                _check_providers(dep, spec["providers"], name, fail_here)
        dep_files = []
        for dep in deps:
            dep_files += bp_to_list(dep.files)
        files[name] = dep_files
        if spec["single"]:
            if name in splits:   # the first branch's file, as ctx.executable's
                dep_files = bp_to_list(deps[0].files)
            if len(dep_files) != 1:
                fail_here("attribute '%s' needs a single file, but '%s' has %d" %
                          (name, deps[0].label.__bp_label__,
                           len(dep_files)))
            file[name] = dep_files[0]
        if spec["executable"]:
            executable[name] = _executable_of(deps[0], name, fail_here)
            if deps[0].files_to_run.runfiles_manifest != None:
                tool_runs[executable[name].path] = deps[0].files_to_run
    outputs = {}
    for name, single in info["outputs"].items():
        declared = [_file(d) for d in entry["outputs"].get(name, [])]
        if single:
            outputs[name] = declared[0] if declared else None
        else:
            outputs[name] = declared
        attr[name] = outputs[name]
    for value in outputs.values():   # $(location) may name the target's own outputs
        for out in (value if type(value) == "list" else [value] if value != None else []):
            key = out.owner.__bp_label__
            if key not in deps_by_label:
                deps_by_label[key] = struct(files = depset([out]),
                                            files_to_run = struct(executable = None))
    toolchains = {}
    var = dict(config["var"])
    for type_label, dep_id in entry["toolchains"].items():
        dep = targets[dep_id]
        providers = bp_target_providers(dep)
        resolved = providers.get(ToolchainInfo, dep)
        toolchains[type_label] = resolved
        if type_label.startswith("//"):   # also as the main repository's own name says
            toolchains["@" + type_label] = resolved
            toolchains["@" + workspace_name + type_label] = resolved
        if TemplateVariableInfo in providers:
            var.update(providers[TemplateVariableInfo].variables)
    actions = []
    ctx = _make_ctx(entry, config, workspace_name, attr, files, file, executable, outputs,
                    toolchains, var, deps_by_label, fail_here, actions,
                    executable_rule = info["executable"] or info["test"], tool_runs = tool_runs,
                    split_attr = split_attr)
    result = rule_fn(__bp_analyze__ = ctx)
    if state["for_aspects"]:
        state["entries"][tid] = entry
        state["rule_views"][tid] = struct(attr = attr, files = files, file = file,
                                          executable = executable, kind = entry["kind"],
                                          provides = kind.provides)
        state["actions"][tid] = actions
    return _collect(info, entry["id"], result, outputs, ctx, fail_here)

# ---- aspects -------------------------------------------------------------------------------

def _merged_groups(first, second, fail_here):
    groups = {name: getattr(first, name) for name in dir(first) if name != "_bp_key"}
    for name in dir(second):
        if name == "_bp_key":
            continue
        if name in groups:
            fail_here("output group '%s' is provided twice" % name)
        groups[name] = getattr(second, name)
    return OutputGroupInfo(**groups)

def cli_aspect(exported, name, text):
    """The aspect `--aspects=<file>%<name>` names (`exported`: that file's exports)."""
    value = exported.get(name)
    if type(value) != "struct" or not hasattr(value, "_bp_aspect"):
        fail("--aspects=%s: the file exports no aspect named '%s'" % (text, name))
    return value

def top_level(state, aspects, ids, groups, tools):
    """Apply the command line's aspects to the requested targets `ids` (`tools`: the
    targets of their label attributes, {aspect id: {attribute: [ids]}}), and tell which
    of their files --output_groups wants (`name` instead of the default files, `+name`
    in addition, `-name` without)."""
    explicit = [g for g in groups if not g.startswith(("+", "-"))]
    selected = {g: True for g in (explicit or ["default"])}
    for g in groups:
        if g.startswith("+"):
            selected[g[1:]] = True
        elif g.startswith("-"):
            selected.pop(g[1:], None)
    for tid in ids:
        target = state["targets"].get(tid)
        if target == None:   # its analysis failed (-k)
            continue
        if aspects:
            target = _with_aspects(state, tid, [_parameters(a, {}, tools) for a in aspects],
                                   fail)
        providers = bp_target_providers(target)
        files = []
        for name in selected:
            if name == "default":
                files += bp_to_list(target.files)
            elif OutputGroupInfo in providers:
                files += bp_to_list(getattr(providers[OutputGroupInfo], name, depset()))
        _bp_requested_files(tid, json.encode([f.path for f in files]))

def _parameters(a, attr, tools):
    """Aspect `a` with its parameters: its public attributes take the values of the
    requesting rule's attributes of the same name, as in Bazel; its label attributes'
    targets are in `tools` ({aspect id: {attribute: [ids]}}); and the aspects it
    requires, with theirs."""
    values = {name: attr.get(name, default) if not name.startswith("_") else default
              for name, default in a.attrs.items()}
    own = tools.get(a._bp_aspect, {})
    return struct(aspect = a, attr = values, tools = own,
                  key = a._bp_aspect + json.encode(values),   # (its tools are the same)
                  required = [_parameters(r, attr, tools) for r in a.requires])

def _with_required(aspects):
    """`aspects` (with parameters), each after the aspects it requires, each once."""
    out, seen = [], {}
    pending = list(aspects)
    for _ in range(_FOREVER):
        if not pending:
            break
        applied = pending[0]
        waiting = [r for r in applied.required if r.key not in seen]
        if waiting:   # its required aspects first
            pending = waiting + pending
            continue
        pending = pending[1:]
        if applied.key not in seen:
            seen[applied.key] = True
            out.append(applied)
    return out

def _with_aspects(state, tid, aspects, fail_here):
    """A dependency as an attribute with `aspects` (each with its parameters) gives it:
    its providers and those of each aspect applied to it, and of the aspects they
    require (aspects apply to rule targets only)."""
    target = state["targets"][tid]
    if tid not in state["entries"]:
        return target
    providers = dict(bp_target_providers(target))
    for applied in _with_required(aspects):
        for key, value in _aspect_providers(state, tid, applied, fail_here).items():
            if key == OutputGroupInfo and key in providers:   # output groups merge
                value = _merged_groups(providers[key], value, fail_here)
            elif key in providers:
                fail_here("%s and %s applied to it both provide %s" %
                          (bp_repr(target), applied.aspect._bp_aspect, _provider_name(key)))
            providers[key] = value
    return _target(target.label, providers)

def _aspect_providers(state, tid, applied, fail_here):
    """The providers of an aspect (with its parameters) on rule target `tid`, computed
    once (after the same aspect on the dependencies it propagates to, along
    `attr_aspects`)."""
    a = applied.aspect
    key = "%d %s" % (tid, applied.key)
    if key in state["aspect_results"]:
        return state["aspect_results"][key]
    target, entry, view = state["targets"][tid], state["entries"][tid], state["rule_views"][tid]
    if a.required_providers and not [wanted for wanted in a.required_providers
                                     if not [p for p in wanted if p not in view.provides]]:
        # as in Bazel, the rule must declare them (`provides`), not merely return them
        state["aspect_results"][key] = {}
        return {}
    rule_attr = dict(view.attr)
    label_attrs = state["rule_infos"][entry["rule"]]["label_attrs"]
    names = entry["deps"].keys() if "*" in a.attr_aspects else a.attr_aspects
    for name in names:
        value = entry["deps"].get(name)
        if value == None:
            continue
        kind = label_attrs[name]["type"]
        if kind == "label":
            rule_attr[name] = _with_aspects(state, value, [applied], fail_here)
        elif kind == "label_list":
            rule_attr[name] = [_with_aspects(state, i, [applied], fail_here) for i in value]

    def aspect_fail(message):
        fail_here("in %s on %s: %s" % (a._bp_aspect, bp_repr(target), message))

    config = state["configs"][entry["cfg"]]
    actions = []
    attr, files, file, executable, tool_runs = _aspect_tools(state, applied, aspect_fail)
    ctx = _make_ctx(entry, config, state["workspace_name"], attr, files, file, executable,
                    {}, {}, dict(config["var"]), {}, aspect_fail, actions, dict(
                        rule = struct(attr = struct(**rule_attr), kind = view.kind,
                                      files = struct(**view.files),
                                      file = struct(**view.file),
                                      executable = struct(**view.executable)),
                    ), tool_runs = tool_runs)
    fields = {name: getattr(target, name) for name in dir(target)}
    fields["actions"] = state["actions"][tid]
    if applied.required:   # the providers of the aspects it requires, on this target
        fields["_bp_providers"] = _with_aspects(state, tid, applied.required,
                                                fail_here)._bp_providers
    result = a.implementation(struct(**fields), ctx)
    if result == None:
        result = []
    elif type(result) == "struct":
        result = [result]
    providers = {}
    for p in result:
        if type(p) != "struct" or not hasattr(p, "_bp_key"):
            aspect_fail("the implementation returned %s, which is not a provider" % bp_repr(p))
        providers[p._bp_key] = p
    state["aspect_results"][key] = providers
    return providers

def _aspect_tools(state, applied, fail_here):
    """An aspect's ctx.attr, ctx.files, ctx.file and ctx.executable, with its label
    attributes' targets; and the files_to_run of its executables (their runfiles)."""
    attr, files, file, executable, tool_runs = dict(applied.attr), {}, {}, {}, {}
    for name, spec in applied.aspect.label_attrs.items():
        deps = [state["targets"][i] for i in applied.tools.get(name, [])]
        if spec.type == "label":
            attr[name] = deps[0] if deps else None
        else:
            attr[name] = deps
        dep_files = []
        for dep in deps:
            dep_files += bp_to_list(dep.files)
        files[name] = dep_files
        if spec.single:
            file[name] = dep_files[0] if dep_files else None
        if spec.executable:
            executable[name] = _executable_of(deps[0], name, fail_here) if deps else None
            if deps and deps[0].files_to_run.runfiles_manifest != None:
                tool_runs[executable[name].path] = deps[0].files_to_run
    return attr, files, file, executable, tool_runs

def _check_providers(dep, alternatives, name, fail_here):
    """The dependency must have every provider of at least one alternative list."""
    have = [_bp_provider_id_of(k) for k in bp_target_providers(dep).keys()]
    for wanted in alternatives:
        missing = [p for p in wanted if p not in have]
        if not missing:
            return
    fail_here("in '%s': '%s' does not have mandatory provider '%s'" %
              (name, dep.label.__bp_label__, _bp_provider_name(missing[0])))

def _bp_provider_id_of(p):
    return p(__bp_provider_id__ = True)

def _executable_of(dep, name, fail_here):
    if dep.files_to_run.executable != None:
        return dep.files_to_run.executable
    listed = bp_to_list(dep.files)
    if len(listed) == 1:
        return listed[0]
    fail_here("attribute '%s' needs an executable, but '%s' provides none" %
              (name, dep.label.__bp_label__))

def _legacy_providers(result):
    """The providers of a struct returned as Bazel 4.2 still accepts it: its `providers`
    list, with a DefaultInfo made of its `files`, `runfiles` and `executable` when the
    list has none."""
    providers = list(getattr(result, "providers", None) or [])
    if not [p for p in providers if getattr(p, "_bp_key", None) == DefaultInfo]:
        fields = {}
        for name in ("files", "runfiles", "executable", "default_runfiles"):
            if getattr(result, name, None) != None:
                fields[name] = getattr(result, name)
        if fields:
            providers.append(DefaultInfo(**fields))
    return providers

# The fields of a legacy struct that are not providers of their own name.
_NOT_LEGACY_PROVIDERS = ("providers", "files", "runfiles", "executable", "default_runfiles",
                         "data_runfiles", "label", "files_to_run", "output_groups",
                         "instrumented_files")

def _collect(info, tid, result, outputs, ctx, fail_here):
    legacy = {}
    if result == None:
        result = []
    if type(result) == "struct" and hasattr(result, "_bp_key"):   # one provider alone
        result = [result]
    elif type(result) == "struct":   # the legacy form: struct(files = ..., providers = [...])
        legacy = {name: getattr(result, name) for name in dir(result)
                  if name not in _NOT_LEGACY_PROVIDERS}
        result = _legacy_providers(result)
    if type(result) not in ("list", "tuple"):
        fail_here("the implementation of %s must return a list of providers, not %s" %
                  (info["kind"], type(result)))
    target = {}
    for p in result:
        if type(p) != "struct" or not hasattr(p, "_bp_key"):
            fail_here("the implementation of %s returned %r, which is not a provider" %
                      (info["kind"], p))
        if p._bp_key in target:
            fail_here("the implementation of %s returned %s twice" %
                      (info["kind"], _provider_name(p._bp_key)))
        target[p._bp_key] = p
    if DefaultInfo not in target:
        declared = []
        for value in outputs.values():
            if type(value) == "list":
                declared += value
            elif value != None:
                declared.append(value)
        target[DefaultInfo] = DefaultInfo(files = depset(declared))
    default = target[DefaultInfo]
    executable = getattr(default, "executable", None) or ctx._bp_predeclared_executable()
    files = getattr(default, "files", None)
    if executable == None and info["test"] and AnalysisTestResultInfo in target:
        executable = _analysis_test_script(ctx, target[AnalysisTestResultInfo])
        files = depset([executable])
    if files == None:   # as in Bazel, an executable is built by default
        files = depset([executable] if executable != None else [])
    if info["executable"] and executable == None:
        fail_here("%s is an executable rule, so DefaultInfo must name its executable" %
                  info["kind"])
    runfiles = getattr(default, "runfiles", None) or getattr(default, "default_runfiles", None)
    if runfiles == None:
        runfiles = _runfiles_of(files)
    manifest = None
    if executable != None:   # and it is always in its own runfiles
        runfiles = _merged(_runfiles_of(depset([executable])), runfiles)
        manifest = _manifest_of(executable) if not executable.is_source else None
    target[DefaultInfo] = _default_info(files, executable, runfiles, manifest)
    test = None
    if info["test"]:  # its args (paths shell-quoted, to be split) and env, expanded
        test = [
            [ctx._bp_expand_test(a, True) for a in (getattr(ctx.attr, "args", None) or [])],
            {k: ctx._bp_expand_test(v, False)
             for k, v in (getattr(ctx.attr, "env", None) or {}).items()},
            # testing.ExecutionInfo: the test action's execution requirements
            {str(k): str(v) for k, v in (getattr(target[ExecutionInfo], "requirements",
                                                  None) or {}).items()}
            if ExecutionInfo in target else {},
        ]
    _bp_analysis_result(tid, json.encode([
        [f.path for f in bp_to_list(files)],
        executable.path if executable != None else None,
        [f.path for f in bp_to_list(runfiles.files)] if executable != None else [],
        _environment(target),
        test,
        _tree_links(runfiles, ctx.workspace_name) if executable != None else [],
    ]))
    return _target(ctx.label, target, legacy)

def _analysis_test_script(ctx, verdict):
    """An analysis test's executable: it prints the verdict's message and passes or
    fails as the verdict says."""
    script = ctx.actions.declare_file(ctx.label.name)
    message = getattr(verdict, "message", "") or ""
    ctx.actions.write(script, "\n".join([
        "#!/bin/sh",
        "cat <<'BP_ANALYSIS_TEST_MESSAGE'",
        message,
        "BP_ANALYSIS_TEST_MESSAGE",
        "exit %d" % (0 if verdict.success else 1),
    ]) + "\n", is_executable = True)
    return script

def _environment(target):
    if RunEnvironmentInfo in target:
        return dict(getattr(target[RunEnvironmentInfo], "environment", None) or {})
    return {}

# ---- ctx ---------------------------------------------------------------------------------

def _make_ctx(entry, config, workspace_name, attr, files, file, executable, outputs, toolchains,
              var, deps_by_label, fail_here, actions, extra = {}, executable_rule = False,
              tool_runs = {}, split_attr = {}):
    """A rule's ctx (or, with `extra = {"rule": ...}`, an aspect's); its actions are
    also appended to `actions` as Bazel's Action values. An executable rule's ctx has
    Bazel's predeclared `ctx.outputs.executable` (`<name>`), declared once an action
    writes it (a rule that declares a file of that name itself is not refused)."""
    tid = entry["id"]
    label = _label(entry["label"])
    out_dir = entry["out_dir"]
    predeclared = [None, False]   # ctx.outputs.executable, and whether it is declared
    if executable_rule and "executable" not in outputs:
        predeclared[0] = _predeclared_file(out_dir + "/" + label.name, config["bin_dir"],
                                           entry["label"])
        outputs = dict(outputs, executable = predeclared[0])

    def predeclared_executable():
        return predeclared[0] if predeclared[1] else None

    def declare(name, sibling, kind):
        if type(name) != "string" or not name:
            fail_here("declare_%s() needs a file name, got %r" % (kind, name))
        base = sibling.dirname if sibling != None else out_dir
        declared = _file(_bp_declare(tid, base + "/" + name, kind, call_stack()))
        if predeclared[0] != None and declared.path == predeclared[0].path:
            predeclared[1] = True   # the rule declared `<name>` itself: the same file
        return declared

    def declare_file(filename, sibling = None):
        return declare(filename, sibling, "file")

    def declare_directory(filename, sibling = None):
        return declare(filename, sibling, "directory")

    def declare_symlink(filename, sibling = None):
        if not config["options"]["experimental_allow_unresolved_symlinks"]:
            fail_here("actions.declare_symlink() is not allowed; use the " +
                      "--experimental_allow_unresolved_symlinks command line option")
        return declare(filename, sibling, "symlink")

    def record(kind, outputs, mnemonic, progress_message, data, inputs = []):
        if type(outputs) != "list" or not outputs:
            fail_here("%s() needs a non-empty list of output Files" % kind)
        for o in outputs:
            if predeclared[0] != None and not predeclared[1] and o == predeclared[0]:
                _bp_declare(tid, o.path, "file", call_stack())
                predeclared[1] = True
            if type(o) != "struct" or not hasattr(o, "is_source") or o.is_source:
                fail_here("%s(): outputs must be Files that this target declared, got %r" %
                          (kind, o))
        message = (progress_message or "").replace("%{label}", label.__bp_label__)
        message = message.replace("%{output}", outputs[0].path)
        actions.append(struct(
            mnemonic = mnemonic,
            argv = data.get("argv"),
            content = data.get("content"),
            env = data.get("env", {}),
            substitutions = data.get("substitutions", {}),
            outputs = depset(outputs),
            inputs = depset(inputs),
        ))
        _bp_action(tid, json.encode(dict(  # one text crosses to Python, not every value
            kind = kind,
            mnemonic = mnemonic,
            progress_message = message,
            outputs = [o.path for o in outputs],
            **data
        )), call_stack())

    params_count = [0]

    def expand_arguments(arguments, inputs):
        """Arguments as strings; an args() with use_param_file goes into a params file."""
        out = []
        for a in arguments:
            if type(a) == "struct" and hasattr(a, "_bp_args") and a.param_file() != None:
                params_count[0] += 1
                params = declare("%s-%d.params" % (label.name, params_count[0]), None, "file")
                record("write", [params], "FileWrite", "Writing %s" % params.short_path,
                       dict(content = "\n".join(a.expand()) + "\n", is_executable = False))
                out.append(a.param_file() % params.path)
                inputs.append(params.path)
            else:
                out += _arguments([a], fail_here)
        return out

    def run(outputs, executable, arguments = [], inputs = [], tools = [], env = {},
            mnemonic = "Action", progress_message = "", execution_requirements = {},
            use_default_shell_env = False, input_manifests = None, resource_set = None,
            toolchain = None, exec_group = None):
        tool_files = _tool_paths(tools, tool_runs, fail_here)
        if type(executable) == "struct" and hasattr(executable, "is_source"):
            executable = tool_runs.get(executable.path, executable)
        if type(executable) == "struct" and hasattr(executable, "_bp_runfiles"):
            tool_files += _paths([executable], fail_here)   # files_to_run: with runfiles
            executable = executable.executable
        program = executable.path if type(executable) == "struct" else executable
        if type(executable) == "struct":
            tool_files.append(executable.path)
        input_files = _files_in(inputs, fail_here)
        input_paths = [f.path for f in input_files]
        argv = [program] + expand_arguments(arguments, input_paths)
        record("run", outputs, mnemonic, progress_message, inputs = input_files, data = dict(
            argv = argv,
            inputs = input_paths,
            tools = tool_files,
            env = {k: str(v) for k, v in env.items()},
            execution_requirements = {k: str(v) for k, v in execution_requirements.items()},
            use_default_shell_env = use_default_shell_env,
        ))

    def run_shell(outputs, command, arguments = [], inputs = [], tools = [], env = {},
                  mnemonic = "Action", progress_message = "", execution_requirements = {},
                  use_default_shell_env = False, input_manifests = None, resource_set = None,
                  toolchain = None, exec_group = None):
        input_files = _files_in(inputs, fail_here)
        input_paths = [f.path for f in input_files]
        if type(command) == "list":
            argv = [str(c) for c in command]
        else:
            argv = ["/bin/bash", "-c", command, ""] + expand_arguments(arguments, input_paths)
        record("run", outputs, mnemonic, progress_message, inputs = input_files, data = dict(
            argv = argv,
            inputs = input_paths,
            tools = _tool_paths(tools, tool_runs, fail_here),
            env = {k: str(v) for k, v in env.items()},
            execution_requirements = {k: str(v) for k, v in execution_requirements.items()},
            use_default_shell_env = use_default_shell_env,
        ))

    def write(output, content, is_executable = False):
        if type(content) == "struct" and hasattr(content, "_bp_args"):
            content = "\n".join(_arguments([content], fail_here))
        if type(content) != "string":
            fail_here("write() content must be a string or args(), got %s" % type(content))
        record("write", [output], "FileWrite", "Writing %s" % output.short_path,
               dict(content = content, is_executable = is_executable))

    def expand_template(template, output, substitutions = {}, is_executable = False):
        record("template", [output], "TemplateExpand", "Expanding %s" % template.short_path,
               dict(inputs = [template.path], substitutions = dict(substitutions),
                    is_executable = is_executable))

    def symlink(output, target_file = None, target_path = None, is_executable = False,
                progress_message = None):
        if (target_file == None) == (target_path == None):
            fail_here("symlink() needs exactly one of target_file and target_path")
        message = progress_message or "Linking %s" % output.short_path
        if target_path != None:
            if not getattr(output, "is_symlink", False):
                fail_here("symlink() with \"target_path\" param requires that \"output\" " +
                          "be declared as a symlink, not a file or directory (use " +
                          "ctx.actions.declare_symlink())")
            if is_executable:
                fail_here("\"is_executable\" cannot be True when using \"target_path\"")
            if type(target_path) != "string" or not target_path:
                fail_here("symlink() target_path must be a non-empty string, got %r" %
                          (target_path,))
            record("symlink", [output], "UnresolvedSymlink", message,
                   dict(target = target_path))
            return
        if getattr(output, "is_symlink", False):
            fail_here("symlink() with \"target_file\" param requires that \"output\" be " +
                      "declared as a file or directory, not a symlink (did you mean to use " +
                      "declare_file() or declare_directory() instead of declare_symlink()?)")
        record("symlink", [output], "Symlink", message,
               dict(inputs = [target_file.path], target = target_file.path,
                    is_executable = is_executable))

    def runfiles(files = [], transitive_files = None, collect_data = False,
                 collect_default = False, symlinks = {}, root_symlinks = {}):
        transitive = [transitive_files] if transitive_files != None else []
        names = []
        if collect_data or collect_default:
            names += ["data"]
        if collect_default:
            names += ["srcs", "deps"]
        collected = []   # the runfiles of those attributes' targets, in order
        for name in names:
            value = attr.get(name)
            deps = value if type(value) == "list" else ([value] if value != None else [])
            for dep in deps:
                if type(dep) == "struct" and hasattr(dep, "_bp_kind"):   # a file: itself
                    collected.append(_runfiles_of(dep.files))
                elif type(dep) == "struct" and hasattr(dep, "_bp_providers"):
                    collected.append(dep.default_runfiles)
        made = _runfiles(depset(transitive = [depset(files)] + transitive),
                         _symlink_entries(symlinks, "symlinks", fail_here),
                         _symlink_entries(root_symlinks, "root_symlinks", fail_here))
        return _merged(made, collected) if collected else made

    def expand_location(input, targets = [], short_paths = False):
        extra = {t.label.__bp_label__: t for t in targets}
        return _expand_locations(tid, input, dict(deps_by_label, **extra), fail_here)

    def expand_make_variables(attribute_name, command, additional_substitutions = {}):
        return _expand_make(command, dict(var, **additional_substitutions), fail_here)

    def expand_command(attribute_name, command, additional_substitutions = {}):
        """Make variables and $(location ...) in one pass, as Bazel expands a genrule's
        command: a path that holds '$' is never read again as a variable."""
        def locate(function, label_text):
            return _location(tid, function, label_text, deps_by_label, fail_here)
        return _expand_make(command, dict(var, **additional_substitutions), fail_here,
                            locate)

    def args():
        return _new_args()

    def resolve_tools(tools = []):
        """The inputs that running `tools` (targets) needs: their executables and
        runfiles; and no input manifests (bp lays runfiles out as trees)."""
        files = []
        for tool in tools:
            files += _files_in([tool.files_to_run], fail_here)
        return depset(files), []

    def resolve_command(command = "", attribute = None, expand_locations = False,
                        make_variables = None, tools = [], label_dict = {},
                        execution_requirements = {}):
        """Bazel's older helper: (inputs, the command as bash argv, input manifests)."""
        inputs, manifests = resolve_tools(tools)
        if expand_locations:
            command = expand_location(command, tools)
        if make_variables != None:
            command = _expand_make(command, dict(var, **make_variables), fail_here)
        return bp_to_list(inputs), ["/bin/bash", "-c", command], manifests

    def expand_test(text, quote):
        """A test's args or env value, as Bazel expands them: $(location ...) as paths
        from its runfiles tree's workspace directory (where the test runs), and Make
        variables (`$$` is a `$`)."""
        def locate(function, label_text):
            return _location(tid, function, label_text, deps_by_label, fail_here, True, quote)
        return _expand_make(text, var, fail_here, locate)

    extra = dict(extra)
    if "build_setting_value" in entry:   # only a build setting's ctx has one, as in Bazel
        extra["build_setting_value"] = entry["build_setting_value"]
    options = config["options"]

    def minimum_os_version():
        return options["minimum_os_version"]

    def target_platform_has_constraint(constraint_value):
        """Whether the target platform has `constraint_value` (its ConstraintValueInfo)."""
        return constraint_value.label.__bp_label__ in config["constraints"]

    return struct(
        label = label,
        attr = struct(**attr),
        split_attr = struct(**split_attr),
        fragments = struct(cpp = struct(  # the fields of Bazel's cpp fragment that bp has
            minimum_os_version = minimum_os_version,
            copts = options["copt"],
            cxxopts = options["cxxopt"],
            conlyopts = options["conlyopt"],
            linkopts = options["linkopt"],
            compiler = options["compiler"],
        )),
        files = struct(**files),
        file = struct(**file),
        executable = struct(**executable),
        outputs = struct(**outputs),
        toolchains = toolchains,
        var = var,
        configuration = struct(default_shell_env = {}, **config["config"]),
        bin_dir = struct(path = config["bin_dir"]),
        genfiles_dir = struct(path = config["bin_dir"]),
        workspace_name = workspace_name,
        build_file_path = entry["build_file_path"],
        info_file = _status_file("stable-status.txt"),
        version_file = _status_file("volatile-status.txt"),
        features = list(attr.get("features", [])),
        disabled_features = [],
        runfiles = runfiles,
        target_platform_has_constraint = target_platform_has_constraint,
        resolve_tools = resolve_tools,
        resolve_command = resolve_command,
        expand_location = expand_location,
        expand_make_variables = expand_make_variables,
        _bp_expand_command = expand_command,  # for genrule; not in Bazel's ctx
        _bp_predeclared_executable = predeclared_executable,
        _bp_expand_test = expand_test,  # for test args and env; not in Bazel's ctx
        actions = struct(
            declare_file = declare_file,
            declare_directory = declare_directory,
            declare_symlink = declare_symlink,
            run = run,
            run_shell = run_shell,
            write = write,
            expand_template = expand_template,
            symlink = symlink,
            args = args,
        ),
        **extra
    )

def _status_file(name):
    """ctx.info_file or ctx.version_file: a file of bp-out itself (Bazel's bazel-out), which
    bp writes before the build's actions run (see docs/execution.md); no target owns it."""
    return _file_at("bp-out/" + name, name, struct(path = "bp-out"), None)

def _predeclared_file(path, root, owner):
    """A File of this target's that no action has declared yet."""
    relative = path[len(root) + 1:]
    if relative.startswith("external/"):
        relative = "../" + relative[len("external/"):]
    return _file_at(path, relative, struct(path = root), _label(owner))

def _paths(values, fail_here):
    return [f.path for f in _files_in(values, fail_here)]

def _tool_paths(tools, tool_runs, fail_here):
    """The paths of an action's `tools`: as in Bazel, a tool that is the executable of an
    `executable = True` attribute's target (`tool_runs` maps their paths to the targets'
    files_to_run) comes with its runfiles tree."""
    if type(tools) == "struct" and hasattr(tools, "to_list"):
        tools = bp_to_list(tools)
    if tool_runs and type(tools) == "list":
        tools = [tool_runs.get(t.path, t) if type(t) == "struct" and hasattr(t, "is_source")
                 else t for t in tools]
    return _paths(tools, fail_here)

def _files_in(values, fail_here):
    """The Files of a list of Files and depsets of Files (or of one depset)."""
    if values == None:
        return []
    if type(values) == "struct" and hasattr(values, "to_list"):
        values = bp_to_list(values)
    out = []
    for v in values:
        if type(v) == "struct" and hasattr(v, "path"):
            out.append(v)
        elif type(v) == "struct" and hasattr(v, "to_list"):
            out += _files_in(v, fail_here)
        elif type(v) == "struct" and hasattr(v, "_bp_runfiles"):   # a dep's files_to_run
            out += ([v.executable] if v.executable != None else []) + \
                   bp_to_list(v._bp_runfiles.files) + \
                   [e.target_file for e in bp_to_list(v._bp_runfiles.symlinks)] + \
                   [e.target_file for e in bp_to_list(v._bp_runfiles.root_symlinks)] + \
                   ([v.runfiles_manifest] if v.runfiles_manifest != None else [])
        else:
            fail_here("expected Files (or depsets of Files), got %r" % (v,))
    return out

# ---- make variables and locations --------------------------------------------------------

_LOCATION_FUNCTIONS = ("location", "locations", "execpath", "execpaths", "rootpath",
                       "rootpaths")

def _expand_locations(tid, text, deps_by_label, fail_here, short = False, quote = True):
    out = []
    rest = text
    for _ in range(_FOREVER):
        start = rest.find("$(")
        if start < 0:
            break
        end = rest.find(")", start)
        inner = rest[start + 2:end] if end > 0 else ""
        parts = inner.split(" ", 1)
        if end < 0 or parts[0] not in _LOCATION_FUNCTIONS or len(parts) != 2:
            out.append(rest[:start + 2])
            rest = rest[start + 2:]
            continue
        out.append(rest[:start])
        out.append(_location(tid, parts[0], parts[1].strip(), deps_by_label, fail_here,
                             short, quote))
        rest = rest[end + 1:]
    out.append(rest)
    return "".join(out)

def _location(tid, function, label_text, deps_by_label, fail_here, short = False,
              quote = True):
    key = _bp_canonical_label(tid, label_text, call_stack())
    dep = deps_by_label.get(key)
    if dep == None:
        fail_here("label '%s' in $(%s) is not a declared prerequisite of this rule" %
                  (label_text, function))
    files = bp_to_list(dep.files)
    executable = dep.files_to_run.executable
    if executable != None and function in ("location", "execpath", "rootpath"):
        files = [executable]
    if not files:
        fail_here("label '%s' in $(%s) expands to no files" % (label_text, function))
    if not function.endswith("s") and len(files) != 1:
        fail_here("label '%s' in $(%s) expands to %d files; use $(%ss %s) instead" %
                  (label_text, function, len(files), function, label_text))
    short = short or function.startswith("rootpath")
    paths = [f.short_path if short else f.path for f in files]
    return " ".join([shell_quote(p) for p in paths] if quote else paths)

def _expand_make(text, variables, fail_here, locate = None):
    out = []
    i = 0
    for _ in range(_FOREVER):
        dollar = text.find("$", i)
        if dollar < 0:
            out.append(text[i:])
            break
        out.append(text[i:dollar])  # the text up to the next $, in one piece
        i = dollar
        nxt = text[i + 1] if i + 1 < len(text) else ""
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "(":
            end = text.find(")", i)
            if end < 0:
                fail_here("unterminated $( in %r" % text)
            name = text[i + 2:end]
            call = name.split(" ", 1)
            if locate != None and call[0] in _LOCATION_FUNCTIONS and len(call) == 2:
                out.append(locate(call[0], call[1].strip()))
                i = end + 1
                continue
            if name not in variables:
                fail_here("$(%s) not defined; known variables: %s" %
                          (name, ", ".join(sorted(variables.keys()))))
            out.append(variables[name])
            i = end + 1
        elif nxt in variables:
            out.append(variables[nxt])
            i += 2
        else:
            fail_here("'$%s' is not a variable; write '$$' for a literal '$'" % nxt)
    return "".join(out)

# ---- args() ------------------------------------------------------------------------------

def _new_args():
    items = []
    param = {}

    def add(arg_name_or_value, value = _UNBOUND, format = None, map_each = None):
        if value == _UNBOUND:
            items.append(("one", None, arg_name_or_value, format, map_each))
        else:
            items.append(("one", arg_name_or_value, value, format, map_each))
        return this

    def add_all(arg_name_or_values, values = _UNBOUND, map_each = None, format_each = None,
                before_each = None, omit_if_empty = True, uniquify = False,
                expand_directories = True, terminate_with = None, allow_closure = False):
        name = None
        if values == _UNBOUND:
            values = arg_name_or_values
        else:
            name = arg_name_or_values
        items.append(("all", name, values, dict(map_each = map_each, format_each = format_each,
                                                before_each = before_each,
                                                omit_if_empty = omit_if_empty,
                                                uniquify = uniquify,
                                                terminate_with = terminate_with)))
        return this

    def add_joined(arg_name_or_values, values = _UNBOUND, join_with = " ", map_each = None,
                   format_each = None, format_joined = None, omit_if_empty = True,
                   uniquify = False, expand_directories = True, allow_closure = False):
        name = None
        if values == _UNBOUND:
            values = arg_name_or_values
        else:
            name = arg_name_or_values
        items.append(("joined", name, values, dict(map_each = map_each,
                                                   format_each = format_each,
                                                   join_with = join_with,
                                                   format_joined = format_joined,
                                                   omit_if_empty = omit_if_empty,
                                                   uniquify = uniquify)))
        return this

    def use_param_file(param_file_arg, use_always = False):
        param["arg"] = param_file_arg
        param["always"] = use_always
        return this

    def set_param_file_format(format):
        param["format"] = format
        return this

    def expand():
        out = []
        for item in items:
            out += _expand_item(item)
        return out

    def param_file():
        """The param-file flag format when the arguments go to a params file, else None.
        bp always uses the params file once use_param_file() was called."""
        return param.get("arg")

    this = struct(_bp_args = True, add = add, add_all = add_all, add_joined = add_joined,
                  use_param_file = use_param_file, param_file = param_file,
                  set_param_file_format = set_param_file_format, expand = expand)
    return this

def _as_string(value):
    if type(value) == "struct" and hasattr(value, "path") and hasattr(value, "is_source"):
        return value.path
    if type(value) == "struct" and hasattr(value, "__bp_label__"):
        return value.__bp_label__
    return str(value)

def _values(values):
    if type(values) == "struct" and hasattr(values, "to_list"):
        return bp_to_list(values)
    return list(values)

def _mapped(values, options):
    out = []
    for v in _values(values):
        if options.get("map_each") != None:
            mapped = options["map_each"](v)
            if mapped == None:
                continue
            out += mapped if type(mapped) == "list" else [mapped]
        else:
            out.append(v)
    out = [_as_string(v) for v in out]
    if options.get("uniquify"):
        out = list({v: True for v in out}.keys())
    if options.get("format_each") != None:
        out = [options["format_each"] % v for v in out]
    return out

def _expand_item(item):
    kind = item[0]
    if kind == "one":
        _, name, value, format, map_each = item
        if map_each != None:
            value = map_each(value)
        text = _as_string(value)
        if format != None:
            text = format % text
        return [name, text] if name != None else [text]
    _, name, values, options = item
    strings = _mapped(values, options)
    if not strings and options.get("omit_if_empty", True):
        return []
    prefix = [name] if name != None else []
    if kind == "joined":
        joined = options["join_with"].join(strings)
        if options.get("format_joined") != None:
            joined = options["format_joined"] % joined
        return prefix + [joined]
    out = prefix
    for s in strings:
        if options.get("before_each") != None:
            out.append(options["before_each"])
        out.append(s)
    if options.get("terminate_with") != None:
        out.append(options["terminate_with"])
    return out

def _arguments(arguments, fail_here):
    out = []
    for a in arguments:
        if type(a) == "struct" and hasattr(a, "_bp_args"):
            out += a.expand()
        elif type(a) == "string":
            out.append(a)
        elif type(a) == "struct" and hasattr(a, "path"):
            out.append(a.path)
        else:
            fail_here("arguments must be strings, Files or args(), got %r" % (a,))
    return out
