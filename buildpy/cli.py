"""The `bp` command line: click commands, rc-file defaults, errors to exit codes.

Parses flags and prints results; the work itself happens in session.py and the phases.
Heavy modules are imported inside commands so that `bp --help` starts fast.
"""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path

import click

from buildpy import __version__

EXIT_OK = 0
EXIT_BUILD_FAILED = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 3
EXIT_INTERRUPTED = 8
EXIT_ENVIRONMENT = 36
EXIT_INTERNAL = 37

OUTPUT_FORMATS = ("label", "label_kind", "build", "graph", "json", "streamed_jsonproto",
                  "minrank", "maxrank", "package", "location")
ORDERS = ("no", "deps", "auto", "full")
CQUERY_FORMATS = ("label", "label_kind", "json", "graph", "files", "starlark")
AQUERY_FORMATS = ("text", "summary", "commands", "jsonproto", "inputs", "outputs",
                  "mnemonic", "key")
COMPILATION_MODES = ("fastbuild", "dbg", "opt")
STRATEGY_NAMES = ("local", "sandboxed", "linux-sandbox")
_GLOBAL_WITH_VALUE = ("-C", "--workspace", "--bprc")
_GLOBAL_FLAGS = ("--nohome_rc", "--noworkspace_rc")


class Options:
    def __init__(self, workspace: str | None):
        self.workspace = workspace


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="bp",
                      message="%(prog)s %(version)s")
@click.option("-C", "--workspace", "workspace", metavar="DIR",
              help="Run as if started in DIR (the workspace root or a directory in it).")
@click.option("--bprc", metavar="FILE", multiple=True,
              help="Read default flags from FILE too (after the standard rc files).")
@click.option("--nohome_rc", is_flag=True, help="Do not read ~/.bprc.")
@click.option("--noworkspace_rc", is_flag=True, help="Do not read the workspace's .bprc.")
@click.pass_context
def cli(ctx: click.Context, workspace: str | None, bprc, nohome_rc, noworkspace_rc) -> None:
    """bp: a Bazel-like build tool for monorepos.

    Targets are named by labels (//pkg:name) and patterns (//..., //pkg:all).
    Default flags come from .bprc files, as .bazelrc does for Bazel.
    """
    ctx.obj = Options(workspace)


def _remember(key: str):
    """A callback keeping an option's value in the context's meta."""
    def remember(ctx: click.Context, _param, value) -> None:
        ctx.meta[key] = value
    return remember


def _repository_options(command):
    """The flags that say where external repositories come from (every command that
    loads packages)."""
    options = [
        click.option("--repository_cache", metavar="DIR", expose_value=False,
                     callback=_remember("bp.repository_cache"),
                     help="Where downloads are kept by SHA-256, for every workspace "
                          "(default: ~/.cache/bp/repository_cache; empty: none)."),
        click.option("--distdir", metavar="DIR", multiple=True, expose_value=False,
                     callback=_remember("bp.distdir"),
                     help="A directory of archives to take downloads from, by file name "
                          "(checked by digest; repeatable)."),
        click.option("--registry", metavar="URL", multiple=True, expose_value=False,
                     callback=_remember("bp.registry"),
                     help="A Bzlmod registry (https:// or file://), tried in order "
                          "(default: https://bcr.bazel.build)."),
        click.option("--override_repository", metavar="NAME=PATH", multiple=True,
                     expose_value=False, callback=_remember("bp.override_repository"),
                     help="Use the directory PATH as repository @NAME (repeatable)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _repo_options():
    """The repository flags of the current command."""
    from buildpy.core.errors import UserError
    from buildpy.external.repository import RepoOptions

    meta = click.get_current_context().meta
    cache = meta.get("bp.repository_cache")
    overrides = []
    for text in meta.get("bp.override_repository") or ():
        name, equals, path = text.partition("=")
        if not equals or not name or not path:
            raise UserError(f"invalid --override_repository '{text}': expected NAME=PATH",
                            hint="for example --override_repository=rules_foo=/src/rules_foo")
        overrides.append((name.lstrip("@"), Path(path).expanduser().resolve()))
    return RepoOptions(repository_cache=Path(cache).expanduser() if cache else None,
                       cache_off=cache == "",
                       distdirs=tuple(Path(d).expanduser() for d in meta.get("bp.distdir")
                                      or ()),
                       overrides=tuple(overrides),
                       registries=tuple(meta.get("bp.registry") or ()))


def _target_query_options(command):
    """The flags of the commands that evaluate a query over the target graph (bp query,
    bp graph), with the repository flags."""
    options = [
        click.option("--implicit_deps/--noimplicit_deps", default=True,
                     help="Follow implicit dependencies (private attributes such as "
                          "toolchains)."),
        click.option("-k", "--keep_going/--nokeep_going", default=False,
                     help="Print the partial result and the errors of broken packages "
                          "(exit 3)."),
        click.option("--query_file", type=click.Path(dir_okay=False), metavar="FILE",
                     help="Read the expression from FILE instead of the command line."),
        click.option("--universe_scope", default="", metavar="PATTERNS",
                     help="Comma-separated patterns whose closure is the universe of "
                          "allrdeps() and rbuildfiles()."),
        click.option("--loading_timeout", type=float, default=60.0, show_default=True,
                     help="Seconds a single BUILD or .bzl file may take to evaluate."),
        _repository_options,
    ]
    for option in reversed(options):
        command = option(command)
    return command


@cli.command()
@click.argument("expression", nargs=-1)
@click.option("--output", type=click.Choice(OUTPUT_FORMATS), default="label",
              show_default=True, help="How to print the result.")
@click.option("--order_output", type=click.Choice(ORDERS), default="auto", show_default=True,
              help="auto: sorted (path order for somepath); deps/full: dependents before "
                   "dependencies; no: unordered.")
@click.option("--graph:factored/--nograph:factored", "graph_factored", default=True,
              help="In --output=graph, merge nodes with the same neighbours.")
@_target_query_options
@click.pass_obj
def query(options: Options, expression: tuple[str, ...], output: str, order_output: str,
          implicit_deps: bool, keep_going: bool, query_file: str | None,
          universe_scope: str, graph_factored: bool, loading_timeout: float) -> None:
    """Answer EXPRESSION over the target graph (Bazel's query language).

    \b
      bp query 'deps(//app:server)'
      bp query 'rdeps(//..., //lib:util)' --output=label_kind
      bp query '//app:server | deps | kind "cc_.*" | except //third_party/...'
      bp query -- '//... -//tests/...'

    Words are target patterns (//..., //pkg:all, //pkg:*); see docs/query.md for the
    functions, the operators and the | pipeline syntax.
    """
    from buildpy.session import run_query

    size, errors = run_query(
        options.workspace, expression, repos=_repo_options(), query_file=query_file,
        output=output,
        order=order_output, implicit_deps=implicit_deps, keep_going=keep_going,
        universe_scope=universe_scope, factored=graph_factored,
        loading_timeout=loading_timeout, out=sys.stdout)
    _finish_query(size, errors)


@cli.command()
@click.argument("expression", nargs=-1)
@click.option("--format", "graph_format", type=click.Choice(("dot", "html")), default="dot",
              show_default=True,
              help="dot: Graphviz DOT; html: one self-contained page to explore the graph in "
                   "a browser (pan, zoom, search, a target's attributes and dependents).")
@click.option("--output_file", type=click.Path(dir_okay=False, writable=True), metavar="FILE",
              help="Write the graph to FILE instead of standard output.")
@_target_query_options
@click.pass_obj
def graph(options: Options, expression: tuple[str, ...], graph_format: str,
          output_file: str | None, implicit_deps: bool, keep_going: bool,
          query_file: str | None, universe_scope: str, loading_timeout: float) -> None:
    """The dependency graph of the targets EXPRESSION returns (as in bp query).

    \b
      bp graph 'deps(//app:server)' | dot -Tsvg > deps.svg
      bp graph 'rdeps(//..., //lib:util)' --format=html --output_file=rdeps.html

    Only edges between targets of the result are drawn.
    """
    import io

    from buildpy.session import run_graph

    text = io.StringIO()
    size, errors = run_graph(
        options.workspace, expression, repos=_repo_options(), query_file=query_file,
        format=graph_format, implicit_deps=implicit_deps, keep_going=keep_going,
        universe_scope=universe_scope, loading_timeout=loading_timeout, out=text)
    if output_file is None:
        sys.stdout.write(text.getvalue())
    else:
        _write_output_file(output_file, text.getvalue())
        click.echo(f"INFO: wrote the graph of {size} target{'s' * (size != 1)} to "
                   f"{output_file}", err=True)
    _finish_query(size, errors)


def _write_output_file(path: str, text: str) -> None:
    """Write `text` to the user's --output_file; an OSError as an EnvError naming it."""
    from buildpy.core.errors import EnvError

    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as error:
        raise EnvError(f"cannot write --output_file '{path}': {error.strerror}") from None


def _configuration_options(command):
    """The flags that choose a configuration (shared by cquery, config and build)."""
    command = _repository_options(command)
    options = [
        click.option("--platforms", "platforms", metavar="LABEL", multiple=True,
                     help="The target platform (a platform() target); default: the host."),
        click.option("-c", "--compilation_mode", type=click.Choice(COMPILATION_MODES),
                     default="fastbuild", show_default=True, help="How to compile."),
        click.option("--define", "defines", metavar="NAME=VALUE", multiple=True,
                     help="A value for config_setting's define_values (repeatable)."),
        click.option("--host_platform", default="@platforms//:host",
                     show_default=True, metavar="LABEL",
                     help="The platform bp runs on: the last execution platform."),
        click.option("--extra_execution_platforms", multiple=True, metavar="PATTERN",
                     help="Execution platforms to consider before the registered ones."),
        click.option("--extra_toolchains", multiple=True, metavar="PATTERN",
                     help="Toolchains to consider before the registered ones."),
        click.option("--stamp/--nostamp", default=False, expose_value=False,
                     callback=_remember("bp.stamp"),
                     help="Stamp: bp-out/stable-status.txt and volatile-status.txt hold the "
                          "host, user, time and --workspace_status_command's keys "
                          "(//command_line_option:stamp is set); default: fixed contents."),
        click.option("--experimental_allow_unresolved_symlinks/"
                     "--noexperimental_allow_unresolved_symlinks", default=False,
                     expose_value=False, callback=_remember("bp.unresolved_symlinks"),
                     help="Allow ctx.actions.declare_symlink: outputs that are symbolic "
                          "links, kept as links (their text, not what they name)."),
        click.option("--copt", metavar="FLAG", multiple=True, expose_value=False,
                     callback=_remember("bp.copt"),
                     help="A flag for every C and C++ compile, after the toolchain's and "
                          "before the target's copts (repeatable; one argument each)."),
        click.option("--cxxopt", metavar="FLAG", multiple=True, expose_value=False,
                     callback=_remember("bp.cxxopt"),
                     help="A flag for C++ compiles only, after --copt (repeatable)."),
        click.option("--conlyopt", metavar="FLAG", multiple=True, expose_value=False,
                     callback=_remember("bp.conlyopt"),
                     help="A flag for C compiles only, after --copt (repeatable)."),
        click.option("--linkopt", metavar="FLAG", multiple=True, expose_value=False,
                     callback=_remember("bp.linkopt"),
                     help="A flag for every C++ link, after the targets' linkopts "
                          "(repeatable)."),
        # `--//pkg:flag=value` (a user-defined build setting) arrives as this option
        click.option(_SETTING_OPTION, multiple=True, hidden=True, expose_value=False,
                     callback=_remember_settings),
    ]
    for option in reversed(options):
        command = option(command)
    return command


_SETTING_OPTION = "--bp_setting"


def _starlark_flag(arg: str) -> str | None:
    """A build-setting flag as Bazel writes it, `--//pkg:flag=value` (`--@repo//...`
    too; alone it means true, and `--no//pkg:flag` false), as the hidden option
    `--bp_setting=//pkg:flag=value`; None for any other argument."""
    if arg.startswith(("--no//", "--no@")) and "=" not in arg:
        return f"{_SETTING_OPTION}={arg[4:]}=false"
    if arg.startswith(("--//", "--@")):
        name, equals, value = arg[2:].partition("=")
        return f"{_SETTING_OPTION}={name}={value if equals else 'true'}"
    return None


def _remember_settings(ctx: click.Context, _param, values) -> None:
    ctx.meta["bp.build_settings"] = tuple(tuple(v.split("=", 1)) for v in values)


def _remember_list(key: str):
    """A callback keeping a repeatable, comma-separated option in the context's meta."""
    def remember(ctx: click.Context, _param, values) -> None:
        ctx.meta[key] = tuple(v for value in values for v in value.split(",") if v)
    return remember


def _build_options(platforms, compilation_mode, defines, host_platform,
                   extra_execution_platforms, extra_toolchains):
    from buildpy.config.configuration import BuildOptions

    split = lambda values: tuple(v for value in values for v in value.split(",") if v)  # noqa
    return BuildOptions(
        platforms=split(platforms), compilation_mode=compilation_mode,
        defines=BuildOptions.parse_defines(defines), host_platform=host_platform,
        extra_execution_platforms=split(extra_execution_platforms),
        extra_toolchains=split(extra_toolchains),
        build_settings=click.get_current_context().meta.get("bp.build_settings", ()),
        aspects=click.get_current_context().meta.get("bp.aspects", ()),
        output_groups=click.get_current_context().meta.get("bp.output_groups", ()),
        stamp=bool(click.get_current_context().meta.get("bp.stamp")),
        allow_unresolved_symlinks=bool(
            click.get_current_context().meta.get("bp.unresolved_symlinks")),
        **{f"{name}s": tuple(click.get_current_context().meta.get(f"bp.{name}", ()))
           for name in ("copt", "cxxopt", "conlyopt", "linkopt")})


@cli.command()
@click.argument("expression", nargs=-1)
@_configuration_options
@click.option("--output", type=click.Choice(CQUERY_FORMATS), default="label",
              show_default=True, help="How to print the result.")
@click.option("--starlark:expr", "starlark_expr", default="str(target.label)",
              metavar="EXPR", help="With --output=starlark: an expression of `target`.")
@click.option("--order_output", type=click.Choice(ORDERS), default="auto", show_default=True)
@click.option("--implicit_deps/--noimplicit_deps", default=True,
              help="Follow implicit dependencies (private attributes and toolchains).")
@click.option("-k", "--keep_going/--nokeep_going", default=False)
@click.option("--query_file", type=click.Path(dir_okay=False), metavar="FILE")
@click.option("--loading_timeout", type=float, default=60.0, show_default=True)
@click.pass_obj
def cquery(options: Options, expression, platforms, compilation_mode, defines,
           host_platform, extra_execution_platforms, extra_toolchains, output,
           starlark_expr, order_output, implicit_deps, keep_going, query_file,
           loading_timeout) -> None:
    """Answer EXPRESSION over the configured target graph.

    Every select() is resolved for the configuration (--platforms, -c, --define);
    targets print with their configuration, like //app:hello (3f2c1e9). Wildcard
    patterns skip targets incompatible with the target platform.

    \b
      bp cquery 'deps(//app:hello)' --platforms=//platforms:linux_arm64
      bp cquery //lib/strutil --output=starlark --starlark:expr='target.attr.defines'
      bp cquery 'config(//app:hello, exec)'
    """
    from buildpy.session import run_cquery

    build = _build_options(platforms, compilation_mode, defines, host_platform,
                           extra_execution_platforms, extra_toolchains)
    size, errors = run_cquery(
        options.workspace, expression, build, repos=_repo_options(),
        query_file=query_file, output=output,
        starlark_expr=starlark_expr, order=order_output, implicit_deps=implicit_deps,
        keep_going=keep_going, loading_timeout=loading_timeout, out=sys.stdout)
    _finish_query(size, errors)


@cli.command()
@click.argument("expression", nargs=-1)
@_configuration_options
@click.option("--output", type=click.Choice(AQUERY_FORMATS), default="text",
              show_default=True, help="How to print the actions.")
@click.option("--include_commandline/--noinclude_commandline", default=True,
              help="Print each action's command line.")
@click.option("--include_artifacts/--noinclude_artifacts", default=True,
              help="Print each action's inputs and outputs.")
@click.option("-k", "--keep_going/--nokeep_going", default=False)
@click.option("--query_file", type=click.Path(dir_okay=False), metavar="FILE")
@click.option("--loading_timeout", type=float, default=60.0, show_default=True)
@click.pass_obj
def aquery(options: Options, expression, platforms, compilation_mode, defines, host_platform,
           extra_execution_platforms, extra_toolchains, output, include_commandline,
           include_artifacts, keep_going, query_file, loading_timeout) -> None:
    """Print the actions of the targets EXPRESSION picks (after analysis).

    The query language of bp cquery, plus inputs(regex, x), outputs(regex, x) and
    mnemonic(regex, x), which keep the actions whose inputs, outputs or mnemonic
    match. In a pipeline, a last `emit FIELD` stage chooses what is printed
    (text, summary, commands, jsonproto, inputs, outputs, mnemonic, key).

    \b
      bp aquery 'deps(//app:hello)' --output=commands
      bp aquery 'mnemonic(CppCompile, deps(//app:hello))'
      bp aquery '//app:hello | deps | inputs ".*\\.c" | emit commands'
    """
    from buildpy.session import run_aquery

    build = _build_options(platforms, compilation_mode, defines, host_platform,
                           extra_execution_platforms, extra_toolchains)
    count, errors = run_aquery(
        options.workspace, expression, build, repos=_repo_options(),
        query_file=query_file, output=output,
        include_commandline=include_commandline, include_artifacts=include_artifacts,
        keep_going=keep_going, loading_timeout=loading_timeout, out=sys.stdout)
    _finish_query(count, errors)


@cli.command()
@click.argument("configuration", required=False)
@_configuration_options
@click.pass_obj
def config(options: Options, configuration, platforms, compilation_mode, defines,
           host_platform, extra_execution_platforms, extra_toolchains) -> None:
    """List the configurations of a build, or show one CONFIGURATION's settings.

    The configurations are the target configuration chosen by the flags and the exec
    configurations of the execution platforms (tools build in those).
    """
    from buildpy.core.errors import UserError
    from buildpy.session import list_configurations

    build = _build_options(platforms, compilation_mode, defines, host_platform,
                           extra_execution_platforms, extra_toolchains)
    configs = list_configurations(options.workspace, build, repos=_repo_options())
    if configuration is None:
        click.echo("Available configurations:")
        for item in configs:
            kind = "exec" if item.is_exec else "target"
            click.echo(f"{item.hash} {kind:6} {item.platform} {item.compilation_mode}")
        return
    found = [c for c in configs if c.hash.startswith(configuration)]
    if len(found) != 1:
        raise UserError(f"no configuration '{configuration}' among "
                        f"{', '.join(c.hash for c in configs)}",
                        hint="run bp config with the same flags to list them")
    import json
    click.echo(f"Configuration {found[0].hash}:")
    for key, value in found[0].settings().items():
        click.echo(f"  {key}: {json.dumps(value)}")


def _execution_options(command):
    """The flags of commands that build (build, run, and later test)."""
    options = [
        click.option("-j", "--jobs", type=int, default=None, metavar="N",
                     help="Run at most N actions at once (default: the number of cores)."),
        click.option("-k", "--keep_going/--nokeep_going", default=False,
                     help="Keep building what does not depend on a failure."),
        click.option("--verbose_failures/--noverbose_failures", default=False,
                     help="Print the command of a failed action."),
        click.option("-s", "--subcommands/--nosubcommands", default=False,
                     help="Print each command before it runs."),
        click.option("--color", type=click.Choice(["yes", "no", "auto"]), default="auto",
                     show_default=True),
        click.option("--curses", type=click.Choice(["yes", "no", "auto"]), default="auto",
                     show_default=True, help="A live progress display (auto: on a terminal)."),
        click.option("--spawn_strategy", type=click.Choice(STRATEGY_NAMES), default=None,
                     help="How actions run: in the exec root, in a sandbox directory, or "
                     "under bubblewrap (default: linux-sandbox where bubblewrap works, "
                     "else sandboxed)."),
        click.option("--strategy", "strategies", multiple=True, metavar="MNEMONIC=STRATEGY",
                     help="The strategy for one kind of action, e.g. CppCompile=local."),
        click.option("--disk_cache", type=click.Path(file_okay=False), default=None,
                     metavar="DIR", help="The cache directory (default: $XDG_CACHE_HOME/bp)."),
        _disk_cache_max_size_option,
        click.option("--block_for_lock/--noblock_for_lock", default=True,
                     help="Wait for another bp command in this workspace (or fail)."),
        click.option("--sandbox_debug/--nosandbox_debug", default=False,
                     help="Keep sandboxes and print how to enter them."),
        click.option("--analysis_server", type=click.Choice(["auto", "yes", "no"]),
                     default="auto", show_default=True, expose_value=False,
                     envvar="BP_ANALYSIS_SERVER", show_envvar=True,
                     callback=_remember("bp.analysis_server"),
                     help="Keep the analysis in a server after a build analyzed, so that the "
                          "next build of the same command, after BUILD files changed, "
                          "analyzes only what changed (auto: when the build has 1,000 "
                          "rule targets or more)."),
        click.option("--max_idle_secs", type=click.IntRange(min=1), default=3 * 3600,
                     show_default=True, expose_value=False, metavar="N",
                     callback=_remember("bp.max_idle_secs"),
                     help="How long the analysis server waits for a build before it exits."),
        click.option("--reuse_sandbox_directories/--noreuse_sandbox_directories",
                     default=True, expose_value=False,
                     callback=_remember("bp.reuse_sandbox_directories"),
                     help="Run each action in a sandbox directory an earlier action used, "
                          "emptied (default), rather than in a new one."),
        click.option("--sandbox_add_mount_pair", "mount_pairs", multiple=True,
                     metavar="SRC[:DST]", help="Make a host path visible in linux-sandbox."),
        click.option("--tracing", type=click.Choice(["never", "warn", "error"]),
                     default="never", show_default=True,
                     help="Report files actions read without declaring them (strace)."),
        click.option("--workspace_status_command", default="", metavar="PROGRAM",
                     expose_value=False, callback=_remember("bp.workspace_status_command"),
                     help="With --stamp: run in the workspace root before the build; each "
                          "`KEY VALUE` line goes to bp-out/stable-status.txt (STABLE_ keys) "
                          "or bp-out/volatile-status.txt."),
        click.option("--embed_label", default="", metavar="LABEL", expose_value=False,
                     callback=_remember("bp.embed_label"),
                     help="BUILD_EMBED_LABEL of bp-out/stable-status.txt."),
        click.option("--explain", metavar="FILE", expose_value=False,
                     callback=_remember("bp.explain"),
                     help="Write why each action of the build ran, or which cache it "
                          "came from, to FILE (as bp why says it)."),
        click.option("--profile", metavar="FILE", expose_value=False,
                     callback=_remember("bp.profile"),
                     help="Write a trace of the command (its phases, each action on its "
                          "lane, the critical path) to FILE, in Chrome's trace format "
                          "(open it in Perfetto or chrome://tracing)."),
        click.option("--build_event_json_file", metavar="FILE", expose_value=False,
                     callback=_remember("bp.build_event_json_file"),
                     help="Write the command's build events (Bazel's Build Event "
                          "Protocol) to FILE as JSON, one event per line."),
        click.option("--build_event_publish_all_actions/"
                     "--nobuild_event_publish_all_actions", default=False,
                     expose_value=False, callback=_remember("bp.publish_all_actions"),
                     help="Report every action in the build events, not only the "
                          "failed ones."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _remote_options(command):
    """The REAPI flags of commands that build (Bazel's names)."""
    options = [
        click.option("--remote", "remote_shorthand", is_flag=True,
                     help="Build remotely: --config=remote when a .bprc has a `remote` "
                          "config, else on the cluster of `bp remote up`."),
        click.option("--remote_executor", default=None, metavar="URL",
                     help="Run actions on this REAPI server (grpc://, grpcs://, unix:)."),
        click.option("--remote_cache", default=None, metavar="URL",
                     help="Look results up in (and upload local results to) this REAPI "
                          "cache; actions run locally."),
        click.option("--remote_instance_name", default="", metavar="NAME"),
        click.option("--remote_header", multiple=True, metavar="NAME=VALUE",
                     help="A gRPC header for every remote call (never printed)."),
        click.option("--remote_timeout", type=float, default=60.0, show_default=True,
                     metavar="SECONDS", help="The deadline of each remote call."),
        click.option("--remote_retries", type=click.IntRange(0, 100), default=5,
                     show_default=True, help="Retries of a remote call that failed "
                     "UNAVAILABLE, RESOURCE_EXHAUSTED or DEADLINE_EXCEEDED (with backoff)."),
        click.option("--remote_local_fallback/--noremote_local_fallback", default=False,
                     help="Run an action locally when the remote executor fails."),
        click.option("--remote_upload_local_results/--noremote_upload_local_results",
                     default=True, show_default=True,
                     help="Upload the results of actions run locally to the remote cache."),
        click.option("--remote_accept_cached/--noremote_accept_cached", default=True,
                     show_default=True, help="Use results from the remote cache."),
        click.option("--tls_certificate", default=None, metavar="FILE",
                     help="The CA certificate that signs a grpcs:// server's."),
        click.option("--remote_download_minimal", is_flag=True,
                     help="Leave the outputs of remote actions on the server, unless a "
                          "local action needs them or they are what the command asked for."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _remote(flags: dict, disk_cache):
    """RemoteOptions from the remote flags, or None when no remote is asked for."""
    from buildpy.core.errors import UserError

    executor, cache = flags["remote_executor"], flags["remote_cache"]
    if flags["remote_shorthand"] and not executor:
        from buildpy.execution.local import default_cache_dir
        from buildpy.remote.cluster import local_endpoint

        executor = local_endpoint(Path(disk_cache).resolve() if disk_cache
                                  else default_cache_dir())
        if executor is None:
            raise UserError("--remote: no remote endpoint is configured",
                            hint="start a local cluster with `bp remote up`, or add "
                                 "`build:remote --remote_executor=grpc://HOST:PORT` to .bprc")
    if not executor and not cache:
        return None
    from buildpy.remote.execution import RemoteOptions, parse_header

    return RemoteOptions(
        executor=executor, cache=cache, instance=flags["remote_instance_name"],
        headers=tuple(parse_header(h) for h in flags["remote_header"]),
        timeout=flags["remote_timeout"], retries=flags["remote_retries"],
        local_fallback=flags["remote_local_fallback"],
        upload_local_results=flags["remote_upload_local_results"],
        accept_cached=flags["remote_accept_cached"],
        tls_certificate=flags["tls_certificate"],
        download_minimal=flags["remote_download_minimal"])


_disk_cache_max_size_option = click.option(
    "--disk_cache_max_size", default="10G", show_default=True, metavar="SIZE",
    help="Bound the disk cache: least recently used blobs go when a build ends with the "
    "cache over SIZE (bytes, or with a K, M, G or T suffix; 0: no bound).")


def _max_size(text: str) -> int:
    from buildpy.core.errors import UserError
    from buildpy.execution.eviction import parse_size

    try:
        return parse_size(text)
    except ValueError:
        raise UserError(f"invalid --disk_cache_max_size '{text}'",
                        hint="write a number of bytes, with an optional K, M, G or T suffix "
                             "(powers of 1024), e.g. --disk_cache_max_size=10G; 0 for no "
                             "bound") from None


def _execution(jobs, keep_going, spawn_strategy, strategies, disk_cache, disk_cache_max_size,
               block_for_lock, sandbox_debug, mount_pairs, tracing, remote_flags=None):
    import os

    from buildpy.core.errors import UserError
    from buildpy.execution.local import ExecutionOptions
    from buildpy.execution.status import StatusOptions

    meta = click.get_current_context().meta
    per_mnemonic = {}
    for item in strategies:
        mnemonic, equals, name = item.partition("=")
        if not equals or name not in STRATEGY_NAMES:
            raise UserError(f"invalid --strategy '{item}'",
                            hint="write --strategy=MNEMONIC=" + "|".join(STRATEGY_NAMES))
        per_mnemonic[mnemonic] = name
    return ExecutionOptions(
        jobs=jobs or os.cpu_count() or 1, keep_going=keep_going,
        spawn_strategy=spawn_strategy, strategies=per_mnemonic,
        disk_cache=Path(disk_cache).resolve() if disk_cache else None,
        disk_cache_max_size=_max_size(disk_cache_max_size), block_for_lock=block_for_lock,
        sandbox_debug=sandbox_debug, sandbox_mount_pairs=tuple(mount_pairs), tracing=tracing,
        reuse_sandbox_directories=meta.get("bp.reuse_sandbox_directories", True),
        remote=_remote(remote_flags, disk_cache) if remote_flags else None,
        status=StatusOptions(stamp=bool(meta.get("bp.stamp")),
                             command=meta.get("bp.workspace_status_command") or "",
                             embed_label=meta.get("bp.embed_label") or ""),
        explain=Path(meta["bp.explain"]).resolve() if meta.get("bp.explain") else None,
        profile=Path(meta["bp.profile"]).resolve() if meta.get("bp.profile") else None,
        build_event_json_file=Path(meta["bp.build_event_json_file"]).resolve()
        if meta.get("bp.build_event_json_file") else None,
        publish_all_actions=bool(meta.get("bp.publish_all_actions")),
        analysis_server=meta.get("bp.analysis_server", "auto"),
        max_idle_secs=meta.get("bp.max_idle_secs", 3 * 3600))


def _progress(curses: str, color: str, subcommands: bool, verbose_failures: bool):
    from buildpy.execution.progress import PlainProgress, RichProgress

    live = curses == "yes" or (curses == "auto" and sys.stderr.isatty())
    if live:
        return RichProgress(sys.stderr, subcommands, verbose_failures,
                            color=color != "no")
    return PlainProgress(sys.stderr, subcommands, verbose_failures)


def _run_build(options, patterns, build_flags, execution_flags, only_executable=False,
               build_runfile_links=True, show_result=1, remote_flags=None, state=None):
    from buildpy.session import run_build

    (platforms, compilation_mode, defines, host_platform, extra_execution_platforms,
     extra_toolchains) = build_flags
    (jobs, keep_going, verbose_failures, subcommands, color, curses, spawn_strategy,
     strategies, disk_cache, disk_cache_max_size, block_for_lock, sandbox_debug, mount_pairs,
     tracing) = execution_flags
    build = _build_options(platforms, compilation_mode, defines, host_platform,
                           extra_execution_platforms, extra_toolchains)
    execution = _execution(jobs, keep_going, spawn_strategy, strategies, disk_cache,
                           disk_cache_max_size, block_for_lock, sandbox_debug, mount_pairs,
                           tracing, remote_flags)
    progress = _progress(curses, color, subcommands, verbose_failures)
    return run_build(options.workspace, list(patterns), build, execution, progress=progress,
                     repos=_repo_options(),
                     err=sys.stderr, only_executable=only_executable,
                     build_runfile_links=build_runfile_links, show_result=show_result,
                     state=state)


_WATCH_HELP = ("Watch mode: after the first build, build again after every change to a "
               "file the build depends on (BUILD and .bzl files, sources, globbed "
               "directories), until Ctrl-C.")


def _watch(options, iteration, idle=lambda: None) -> int:
    """Run `iteration(state)` (an exit code) in watch mode: 0 when Ctrl-C stops the
    watch while it waits, 8 when it interrupts a build."""
    from buildpy.session import workspace_root
    from buildpy.watch import watch

    return watch(workspace_root(options.workspace), iteration, err=sys.stderr,
                 report_error=lambda error: print_errors([error]), idle=idle)


@cli.command()
@click.argument("patterns", nargs=-1, required=True)
@_configuration_options
@_execution_options
@_remote_options
@click.option("--build_runfile_links/--nobuild_runfile_links", default=True,
              show_default=True, help="Link the runfiles trees of the executables built "
              "(bp run and bp test link the ones they need either way).")
@click.option("--aspects", multiple=True, metavar="FILE%NAME", expose_value=False,
              callback=_remember_list("bp.aspects"),
              help="Aspects to apply to the requested targets, such as "
                   "//tools:lint.bzl%lint_aspect (repeatable, comma-separated).")
@click.option("--output_groups", multiple=True, metavar="GROUPS", expose_value=False,
              callback=_remember_list("bp.output_groups"),
              help="The output groups to build: `a,b` instead of the default files, "
                   "`+a` in addition to them, `-a` without them.")
@click.option("--show_result", type=click.IntRange(min=0), default=1, show_default=True,
              metavar="N", help="List each target's output files when the build has at "
              "most N targets (0: never).")
@click.option("--watch", is_flag=True, help=_WATCH_HELP)
@click.pass_obj
def build(options: Options, patterns, platforms, compilation_mode, defines, host_platform,
          extra_execution_platforms, extra_toolchains, jobs, keep_going, verbose_failures,
          subcommands, color, curses, spawn_strategy, strategies, disk_cache,
          disk_cache_max_size, block_for_lock, sandbox_debug, mount_pairs, tracing,
          build_runfile_links, show_result, watch, **remote_flags) -> None:
    """Build the targets PATTERNS match, running only the actions whose key changed.

    Outputs go to bp-out/<configuration>/bin/<package>/ (bp-bin points at the default
    configuration's); each executable's runfiles go to <executable>.runfiles/. Exit
    codes: 0 built, 1 build failed, 2 bad command line or BUILD file, 8 interrupted,
    36 environment problem, 37 internal error.
    """
    def once(state=None):
        return _run_build(options, patterns, (platforms, compilation_mode, defines,
                                              host_platform, extra_execution_platforms,
                                              extra_toolchains),
                          (jobs, keep_going, verbose_failures, subcommands, color, curses,
                           spawn_strategy, strategies, disk_cache, disk_cache_max_size,
                           block_for_lock, sandbox_debug, mount_pairs, tracing),
                          build_runfile_links=build_runfile_links, show_result=show_result,
                          remote_flags=remote_flags, state=state)

    if watch:
        raise SystemExit(_watch(options, lambda state: once(state).code))
    outcome = once()
    if outcome.code:
        raise SystemExit(outcome.code)


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("target")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@_configuration_options
@_execution_options
@click.option("--watch", is_flag=True, help=_WATCH_HELP + " The program is stopped (its "
              "process group: SIGTERM, then SIGKILL) and started again after each "
              "successful build.")
@click.pass_obj
def run(options: Options, target, args, platforms, compilation_mode, defines, host_platform,
        extra_execution_platforms, extra_toolchains, jobs, keep_going, verbose_failures,
        subcommands, color, curses, spawn_strategy, strategies, disk_cache,
        disk_cache_max_size, block_for_lock, sandbox_debug, mount_pairs, tracing,
        watch) -> None:
    """Build TARGET, then run it with ARGS (after --) in the current directory.

    The program runs in its runfiles tree (`<program>.runfiles/<workspace name>`), as
    with `bazel run`, and sees RUNFILES_DIR and BUILD_WORKSPACE_DIRECTORY /
    BUILD_WORKING_DIRECTORY (where bp was started); its exit code is bp's.
    """
    import subprocess

    from buildpy.core.errors import UserError

    def once(state=None):
        return _run_build(options, [target], (platforms, compilation_mode, defines,
                                              host_platform, extra_execution_platforms,
                                              extra_toolchains),
                          (jobs, keep_going, verbose_failures, subcommands, color, curses,
                           spawn_strategy, strategies, disk_cache, disk_cache_max_size,
                           block_for_lock, sandbox_debug, mount_pairs, tracing),
                          only_executable=True, state=state)

    if watch:
        raise SystemExit(_run_watched(options, target, args, once))
    outcome = once()
    if outcome.code:
        raise SystemExit(outcome.code)
    label, program, env, cwd = _program(target, outcome)
    click.echo(f"INFO: Running {label}", err=True)
    try:
        code = subprocess.run([str(program), *args], env=env, cwd=cwd).returncode
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    except OSError as error:
        hint = "a script needs a #! line" if error.errno == 8 else None
        raise UserError(f"cannot run {label} ({program.relative_to(outcome.workspace)}): "
                        f"{error.strerror}", hint=hint) from None
    raise SystemExit(code)


def _program(target: str, outcome):
    """The one executable `bp run TARGET` built: its label, path, environment and
    working directory (its runfiles tree)."""
    from buildpy.core.errors import UserError

    if len(outcome.executables) != 1:
        raise UserError(f"'{target}' is not an executable target",
                        hint="bp run needs one *_binary, *_test or executable rule")
    (label, result), = outcome.executables.items()
    program = outcome.workspace / result.executable
    env = dict(os.environ, RUNFILES_DIR=f"{program}.runfiles",
               BUILD_WORKSPACE_DIRECTORY=str(outcome.workspace),
               BUILD_WORKING_DIRECTORY=os.getcwd(), **dict(result.environment))
    tree = Path(f"{program}.runfiles") / outcome.workspace_name
    return label, program, env, tree if tree.is_dir() else None


def _run_watched(options, target: str, args, once) -> int:
    """`bp run --watch`: the program started after the first successful build, and
    started again (the old one stopped) after each successful rebuild."""
    from buildpy.core.errors import UserError
    from buildpy.watch import Program

    program = Program(sys.stderr)

    def iteration(state) -> int:
        outcome = once(state)
        if outcome.code == 0:
            label, path, env, cwd = _program(target, outcome)
            program.stop()
            click.echo(f"INFO: Running {label}", err=True)
            try:
                program.start([str(path), *args], env, cwd)
            except OSError as error:
                raise UserError(f"cannot run {label} ({path.relative_to(outcome.workspace)}"
                                f"): {error.strerror}") from None
        return outcome.code

    try:
        return _watch(options, iteration, idle=program.check)
    finally:
        program.stop()


@cli.command()
@click.argument("patterns", nargs=-1, required=True)
@_configuration_options
@_execution_options
@_remote_options
@click.option("--test_output", type=click.Choice(["summary", "errors", "all", "streamed"]),
              default="summary", show_default=True, help="Which test logs to print.")
@click.option("--test_timeout", type=float, default=None, metavar="SECONDS",
              help="Kill every test after this long (default: from its size/timeout).")
@click.option("--flaky_test_attempts", type=int, default=None, metavar="N",
              help="Attempts per test (default: 3 for flaky = True, else 1).")
@click.option("--runs_per_test", type=int, default=1, show_default=True)
@click.option("--test_filter", default=None, help="Passed to tests as TESTBRIDGE_TEST_ONLY.")
@click.option("--test_tag_filters", default="", metavar="TAGS",
              help="Comma-separated: run tests with one of these tags, none of the -tags.")
@click.option("--test_size_filters", default="", metavar="SIZES")
@click.option("--test_lang_filters", default="", metavar="LANGS", help="cc, sh, py, ...")
@click.option("--test_env", multiple=True, metavar="NAME[=VALUE]",
              help="An environment variable for tests (from bp's environment without =).")
@click.option("--test_arg", multiple=True, metavar="ARG", help="An extra test argument.")
@click.option("--cache_test_results", type=click.Choice(["yes", "no", "auto"]),
              default="auto", show_default=True)
@click.option("--nocache_test_results", is_flag=True, help="Run every test again.")
@click.option("--watch", is_flag=True, help=_WATCH_HELP)
@click.pass_obj
def test(options: Options, patterns, platforms, compilation_mode, defines, host_platform,
         extra_execution_platforms, extra_toolchains, jobs, keep_going, verbose_failures,
         subcommands, color, curses, spawn_strategy, strategies, disk_cache,
         disk_cache_max_size, block_for_lock, sandbox_debug, mount_pairs, tracing, test_output,
         test_timeout, flaky_test_attempts,
         runs_per_test, test_filter, test_tag_filters, test_size_filters, test_lang_filters,
         test_env, test_arg, cache_test_results, nocache_test_results, watch,
         **remote_flags) -> None:
    """Build the targets PATTERNS match and run their tests (test_suites expanded).

    Tests run in their runfiles tree with Bazel's test environment (TEST_TMPDIR,
    TEST_SRCDIR, XML_OUTPUT_FILE, TEST_SHARD_INDEX, ...); logs and JUnit XML go to
    bp-out/testlogs/<package>/<name>/. Passing results are cached by content.
    Exit codes: 0 all passed, 1 build failed, 3 some tests failed, 4 no tests found.
    """
    from buildpy.session import TestOptions, run_test

    build_options = _build_options(platforms, compilation_mode, defines, host_platform,
                                   extra_execution_platforms, extra_toolchains)
    execution = _execution(jobs, keep_going, spawn_strategy, strategies, disk_cache,
                           disk_cache_max_size, block_for_lock, sandbox_debug, mount_pairs,
                           tracing, remote_flags)
    split = lambda text: tuple(t for t in text.split(",") if t)  # noqa: E731
    test_options = TestOptions(
        test_output=test_output, timeout=test_timeout, flaky_attempts=flaky_test_attempts,
        runs_per_test=runs_per_test, test_filter=test_filter,
        tag_filters=split(test_tag_filters), size_filters=split(test_size_filters),
        lang_filters=split(test_lang_filters), test_env=tuple(test_env),
        test_args=tuple(test_arg),
        cache_results=not nocache_test_results and cache_test_results != "no")
    def once(state=None) -> int:
        return run_test(options.workspace, list(patterns), build_options, execution,
                        test_options, repos=_repo_options(),
                        progress=_progress(curses, color, subcommands, verbose_failures),
                        err=sys.stderr, out=sys.stdout, state=state)

    code = _watch(options, once) if watch else once()
    if code:
        raise SystemExit(code)


@cli.command()
@click.option("--expunge", is_flag=True,
              help="Also remove this workspace's state (file digests) and exec root.")
@click.option("--gc", "trim", is_flag=True,
              help="Only trim the shared disk cache to --disk_cache_max_size now (once no "
              "build uses it); the outputs stay.")
@click.option("--disk_cache", type=click.Path(file_okay=False), default=None, metavar="DIR")
@_disk_cache_max_size_option
@click.option("--block_for_lock/--noblock_for_lock", default=True,
              help="Wait for a running bp command (or fail).")
@click.pass_obj
def clean(options: Options, expunge: bool, trim: bool, disk_cache, disk_cache_max_size,
          block_for_lock: bool) -> None:
    """Remove the outputs (bp-out/). The shared cache stays, so the next build restores
    unchanged outputs from it without running actions. Waits for a bp command running in
    the workspace first."""
    from buildpy.core.errors import UserError
    from buildpy.execution.eviction import format_size
    from buildpy.execution.local import clean as clean_outputs
    from buildpy.execution.local import trim_cache
    from buildpy.session import workspace_root

    def say(text: str) -> None:
        click.echo(f"INFO: {text}", err=True)

    cache_dir = Path(disk_cache).resolve() if disk_cache else None
    if trim:
        if expunge:
            raise UserError("--gc and --expunge do not go together",
                            hint="run bp clean --expunge, then bp clean --gc")
        done = trim_cache(cache_dir, _max_size(disk_cache_max_size), block_for_lock, say)
        say(f"the disk cache holds {format_size(done.total)}: removed {done.blobs} blobs "
            f"({format_size(done.freed)}) and {done.entries} action cache entries")
        return
    root = workspace_root(options.workspace)
    if expunge:   # (as Bazel's: the server goes too)
        from buildpy import server

        server.shutdown(root)
    for path in clean_outputs(root, expunge, cache_dir, block_for_lock, say):
        say(f"removed {path}")


@cli.command()
@click.pass_obj
def shutdown(options: Options) -> None:
    """Stop this workspace's analysis server (the analysis a build keeps for the next
    one; see --analysis_server), freeing its memory."""
    from buildpy import server
    from buildpy.session import workspace_root

    if server.shutdown(workspace_root(options.workspace)):
        click.echo("INFO: the analysis server stopped", err=True)


@cli.command()
@click.argument("patterns", nargs=-1)
@_repository_options
@click.pass_obj
def fetch(options: Options, patterns) -> None:
    """Fetch the external repositories that PATTERNS need (every repository that
    WORKSPACE defines, without PATTERNS), into bp-out/external and the repository cache,
    so that later builds work offline."""
    from buildpy.session import run_fetch

    for name in run_fetch(options.workspace, list(patterns), repos=_repo_options()):
        click.echo(f"INFO: @{name} is ready", err=True)


@cli.command()
@click.option("--configure", is_flag=True,
              help="Only the repositories whose rule says configure = True.")
@click.option("--only", multiple=True, metavar="NAME", help="Only repository NAME.")
@_repository_options
@click.pass_obj
def sync(options: Options, configure: bool, only) -> None:
    """Fetch the external repositories that WORKSPACE defines again, even those whose
    definition has not changed."""
    from buildpy.session import run_sync

    for name in run_sync(options.workspace, repos=_repo_options(),
                         configure=configure, only=tuple(n.lstrip("@") for n in only)):
        click.echo(f"INFO: fetched @{name}", err=True)


@cli.command()
@click.argument("what")
@click.pass_obj
def why(options: Options, what: str) -> None:
    """Why the last build ran each action of WHAT (a target, or an output file): what
    changed since the action's run before (an input's digest, the command line, the
    environment, a tool, the content it writes), or which cache it came from."""
    from buildpy.session import explain_last_build

    for line in explain_last_build(options.workspace, what):
        click.echo(line)


@cli.command("log")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per action.")
@click.pass_obj
def log(options: Options, as_json: bool) -> None:
    """Every action of the last build: how each was satisfied (ran locally, in a sandbox
    or remotely; a local or remote cache hit; up to date, nothing to do), how long it
    took, and why."""
    import json

    from buildpy.execution.explain import one_line
    from buildpy.session import build_log

    for entry in build_log(options.workspace):
        if as_json:
            click.echo(json.dumps(entry, sort_keys=True))
            continue
        reason = one_line(entry["reasons"][0]) if entry["reasons"] else ""
        click.echo(f"{entry['how']:<14} {entry['duration']:7.2f} s  {entry['label']} "
                   f"{entry['mnemonic']} {entry['output']}: {reason}")


@cli.group("mod")
def mod() -> None:
    """The Bzlmod module graph (MODULE.bazel)."""


@mod.command("graph")
@_repository_options
@click.pass_obj
def mod_graph(options: Options) -> None:
    """Print the resolved module graph, from the root module."""
    from buildpy.session import module_graph

    for line in module_graph(options.workspace, repos=_repo_options()):
        click.echo(line)


@mod.command("deps")
@click.argument("modules", nargs=-1, required=True)
@_repository_options
@click.pass_obj
def mod_deps(options: Options, modules) -> None:
    """Print the dependencies of MODULES (names, as in bazel_dep), as a tree."""
    from buildpy.session import module_graph

    for line in module_graph(options.workspace, repos=_repo_options(),
                             start=tuple(m.split("@", 1)[0] for m in modules)):
        click.echo(line)


@cli.command("help")
@click.argument("command", required=False)
@click.pass_context
def help_command(ctx: click.Context, command: str | None) -> None:
    """Show help for bp or for one COMMAND."""
    group = ctx.parent.command
    if command is None:
        click.echo(group.get_help(ctx.parent))
        return
    sub = group.get_command(ctx, command)
    if sub is None:
        from buildpy.core.errors import UserError, did_you_mean
        raise UserError(f"unknown command '{command}'"
                        f"{did_you_mean(command, group.list_commands(ctx))}",
                        hint="'bp help' lists the commands")
    with click.Context(sub, info_name=command, parent=ctx.parent) as sub_ctx:
        click.echo(sub.get_help(sub_ctx))


@cli.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script for SHELL.

    Enable it with, for bash: eval "$(bp completion bash)".
    """
    from click.shell_completion import get_completion_class

    completer = get_completion_class(shell)(cli, {}, "bp", "_BP_COMPLETE")
    click.echo(completer.source())


@cli.group()
def remote() -> None:
    """A local remote-execution cluster (BuildGrid, PostgreSQL, bp workers) for
    `bp build --remote`: `up`, `status`, `down`."""


@remote.command("up")
@click.option("--workers", type=click.IntRange(0, 64), default=2, show_default=True,
              help="How many `bp worker`s run the actions.")
def remote_up(workers: int) -> None:
    """Start the local cluster in the background (once: it keeps running after bp exits).
    The first time installs BuildGrid into bp's cache (about 30 s)."""
    from buildpy.execution.local import default_cache_dir
    from buildpy.remote.cluster import local_directory, local_up

    cache_dir = default_cache_dir()
    endpoint, already = local_up(cache_dir, workers,
                                 lambda text: click.echo(f"INFO: {text}", err=True))
    if already:
        click.echo(f"bp remote: already up at {endpoint}")
    else:
        click.echo(f"bp remote: up at {endpoint} ({workers} workers; logs in "
                   f"{local_directory(cache_dir)})")
    click.echo(f"use it with: bp build --remote //...  (or --remote_executor={endpoint})")
    click.echo("stop it with: bp remote down")


@remote.command("status")
def remote_status() -> None:
    """Show the local cluster: endpoint and processes. Exit 0 if it is up, 3 if not."""
    from buildpy.execution.local import default_cache_dir
    from buildpy.remote.cluster import local_status

    status = local_status(default_cache_dir())
    if status is None:
        click.echo("bp remote: down (start it with: bp remote up)")
        raise click.exceptions.Exit(EXIT_PARTIAL)
    click.echo(f"bp remote: {'up' if status.up else 'down'} at {status.endpoint}")
    for name, pid, alive in status.processes:
        click.echo(f"  {name:<10} pid {pid:<8} {'running' if alive else 'gone'}")
    if status.jobs is not None:
        click.echo(f"  jobs: {status.jobs[0]} queued, {status.jobs[1]} executing")
    click.echo(f"  logs in {status.directory}")
    if not status.up:
        click.echo("its server is gone: bp remote down, then bp remote up")
        raise click.exceptions.Exit(EXIT_PARTIAL)


@remote.command("down")
def remote_down() -> None:
    """Stop the local cluster (every process it started); its logs stay."""
    from buildpy.execution.local import default_cache_dir
    from buildpy.remote.cluster import local_down

    before = local_down(default_cache_dir())
    if before is None:
        click.echo("bp remote: was not running")
        return
    running = sum(alive for _, _, alive in before.processes)
    click.echo(f"bp remote: down (stopped {running} processes; logs in {before.directory})")


@cli.command()
@click.option("--server", required=True, metavar="ADDRESS",
              help="The BuildGrid server: grpc://HOST:PORT, grpcs://HOST:PORT or unix:PATH.")
@click.option("--instance", default="", metavar="NAME", help="The instance name to serve.")
@click.option("--bot-id", default=None, metavar="ID",
              help="A stable name for this bot (default: host and pid); restarting with the "
                   "same id hands back its unfinished work at once.")
@click.option("--concurrency", type=click.IntRange(1, 256), default=os.cpu_count() or 1,
              show_default=True, help="Actions run at once.")
@click.option("--work-dir", default=None, metavar="DIR",
              help="Where each action gets its fresh directory (default: a temporary one).")
@click.option("--sandbox", is_flag=True, help="Run each action under bubblewrap.")
def worker(server, instance, bot_id, concurrency, work_dir, sandbox) -> None:
    """Serve a BuildGrid server as a bot: run the actions it leases (REAPI), until
    SIGTERM (which lets running actions finish) or a second signal."""
    from buildpy.remote.worker import Worker, run_worker

    raise click.exceptions.Exit(run_worker(Worker(
        server, instance=instance, bot_id=bot_id, concurrency=concurrency,
        work_dir=work_dir, sandbox=sandbox)))


def _finish_query(size: int, errors) -> None:
    """Say when a query found nothing; report kept-going errors with exit code 3."""
    if size == 0:
        click.echo("INFO: Empty results", err=True)
    if errors:
        print_errors(errors)
        raise SystemExit(EXIT_PARTIAL)


def print_errors(errors) -> None:
    for error in errors:
        for single in getattr(error, "errors", (error,)):
            click.echo(f"ERROR: {single.render()}", err=True)


def _expand_rc(argv: list[str]) -> tuple[list[str], list]:
    """Insert the rc files' default flags for the command named in `argv`; returns the
    arguments and, for each flag from an rc file, (flag, its RcLine) to name in errors."""
    from buildpy.core.errors import UserError
    from buildpy.core.rc import read_rc_files
    from buildpy.core.workspace import find_workspace_root

    index, workspace_dir, extra, home, workspace_rc = 0, None, [], True, True
    while index < len(argv):
        arg = argv[index]
        name, eq, value = arg.partition("=")
        if name in _GLOBAL_WITH_VALUE:
            if not eq:
                index += 1
                value = argv[index] if index < len(argv) else ""
            if name == "--bprc":
                extra.append(Path(value))
            else:
                workspace_dir = value
        elif arg in _GLOBAL_FLAGS:
            home = home and arg != "--nohome_rc"
            workspace_rc = workspace_rc and arg != "--noworkspace_rc"
        elif arg.startswith("-C") and len(arg) > 2:
            workspace_dir = arg[2:]
        elif not arg.startswith("-"):
            break
        index += 1
    if index >= len(argv):
        return argv, []
    command_name = argv[index]
    command = cli.commands.get(command_name)
    if command is None:
        return argv, []
    try:
        root = find_workspace_root(Path(workspace_dir) if workspace_dir else Path.cwd())
    except UserError:
        root = None
    paths = []
    if workspace_rc and root is not None:   # .bprc after .bazelrc: its lines win
        paths += [root / ".bazelrc", root / ".bprc"]
    if home:
        paths.append(Path.home() / ".bprc")
    rc = read_rc_files(paths + extra, root)
    known = _option_names(command)
    origins: list = []
    defaults = _filter(rc.lines_for(command_name), known, command_name, origins)
    rest = argv[index + 1:]
    expanded: list[str] = []
    position = 0
    while position < len(rest):
        arg = rest[position]
        if arg == "--":
            expanded.extend(rest[position:])
            break
        if _SETTING_OPTION in known:
            arg = _starlark_flag(arg) or arg
        if arg == "--remote" and rc.has_config("remote"):
            arg = "--config=remote"   # else the flag names the local cluster
        if arg == "--config" or arg.startswith("--config="):
            if arg == "--config":
                position += 1
                config = rest[position] if position < len(rest) else ""
            else:
                config = arg.split("=", 1)[1]
            if not rc.has_config(config):
                raise UserError(f"config value '{config}' is not defined in any .bprc file",
                                hint=f"add lines such as '{command_name}:{config} --flag' "
                                     "to .bprc")
            expanded.extend(_filter(rc.lines_for(command_name, config), known, command_name,
                                    origins))
        else:
            expanded.append(arg)
        position += 1
    return argv[: index + 1] + defaults + expanded, origins


def _option_names(command: click.Command) -> set[str]:
    names = set()
    for param in command.params:
        names.update(getattr(param, "opts", ()))
        names.update(getattr(param, "secondary_opts", ()))
    return names


def _filter(lines: list, known: set[str], command: str, origins: list) -> list[str]:
    """Drop inherited flags (`common`, `build` for cquery, ...) that the command does not
    take; flags in the command's own section must all be valid (else a UserError at
    their rc line), except in a .bazelrc, written for Bazel, where bp warns and drops
    what it does not know (with its value, when that is the next word). Each flag kept
    is added to `origins` with its line."""
    from buildpy.core.errors import UserError, did_you_mean

    out = []
    dropped = None   # the line of a flag just dropped, whose value may follow
    for section, arg, line in lines:
        if _SETTING_OPTION in known:
            arg = _starlark_flag(arg) or arg
        name = arg.split("=", 1)[0]
        if dropped is line and not arg.startswith("-"):
            dropped = None
            continue   # the value of an unknown `--flag value`
        dropped = None
        valid = not arg.startswith("-") or name in known or (
            not name.startswith("--") and name[:2] in known)   # -j8, -k
        if not valid and (section != command or line.bazel):
            if section == command:
                print(f"WARNING: {line.at(arg)}: bp {command} does not know the option "
                      f"'{name}'; ignoring it", file=sys.stderr)
            dropped = line if "=" not in arg else None
            continue
        if not valid:
            raise UserError(f"unknown option '{name}' for bp {command}"
                            f"{did_you_mean(name, sorted(known))}",
                            location=line.at(arg), source_line=line.source,
                            hint=f"fix that line of {line.location.path} (bp help {command} "
                                 "lists the options)")
        out.append(arg)
        origins.append((arg, line))
    return out


def _rc_usage_error(error: click.ClickException, origins: list):
    """A UserError at the rc line whose flag `error` (click's) is about; None when the
    flag did not come from an rc file."""
    from buildpy.core.errors import UserError

    param = getattr(error, "param", None)
    names = set(getattr(param, "opts", ()) or ()) | set(
        getattr(param, "secondary_opts", ()) or ())
    if getattr(error, "option_name", None):
        names.add(error.option_name)
    message = error.format_message()
    for arg, line in reversed(origins):   # (the last one given is the one used)
        name, equals, value = arg.partition("=")
        if name in names and (not equals or f"'{value}'" in message or value in message):
            return UserError(message[:1].lower() + message[1:], location=line.at(arg),
                             source_line=line.source,
                             hint=f"fix that line of {line.location.path}")
    return None


def main(argv: list[str] | None = None) -> None:
    """Run one bp command in this process; exits with Bazel's exit codes."""
    collecting = gc.isenabled()
    try:
        code = _command(list(sys.argv[1:] if argv is None else argv))
    finally:
        if collecting:
            gc.enable()
    sys.exit(code)


def _command(args: list[str]) -> int:
    """Run one command with the cyclic collector off, and return its exit code.

    One command builds a large graph of objects without cycles to collect; the
    collector's passes over it cost a fifth of a cold query. The caller turns it back on
    if the process goes on (its first pass then visits everything the command left).
    """
    from buildpy.core.errors import BpError
    from buildpy.core.signals import stop_signals_interrupt

    gc.disable()
    origins: list = []   # (flag, RcLine) of the flags from rc files
    try:
        args, origins = _expand_rc(args)
        with stop_signals_interrupt():   # SIGTERM, SIGHUP: as Ctrl-C, so exit 8
            code = cli.main(args=args, prog_name="bp", standalone_mode=False)
    except BpError as error:
        print_errors([error])
        code = error.exit_code
    except click.exceptions.Exit as done:
        code = done.exit_code
    except click.ClickException as error:
        from_rc = _rc_usage_error(error, origins)
        if from_rc is None:
            error.show()
        else:
            print_errors([from_rc])
        code = EXIT_USAGE
    except (KeyboardInterrupt, click.exceptions.Abort):
        click.echo("ERROR: interrupted", err=True)
        code = EXIT_INTERRUPTED
    except BrokenPipeError:
        code = EXIT_OK
    except BaseException as error:   # a Rust panic (PanicException) is no Exception
        if not isinstance(error, Exception) and type(error).__name__ != "PanicException":
            raise   # SystemExit, GeneratorExit: not errors
        if _interrupted(error):
            click.echo("ERROR: interrupted", err=True)
            return EXIT_INTERRUPTED
        environment = _environment_error(error)
        if environment is None:   # a bug of ours: say so, with the traceback to report
            import traceback
            click.echo("INTERNAL ERROR (a bug in bp; please report it with this output):",
                       err=True)
            traceback.print_exc()
            return EXIT_INTERNAL
        print_errors([environment])
        code = environment.exit_code
    return code if isinstance(code, int) else EXIT_OK


def _interrupted(error: BaseException) -> bool:
    """Whether `error` stands for a Ctrl-C: Python wraps an exception raised in some
    hooks (a dataclass field's `__set_name__` while a module is imported) in a
    RuntimeError whose cause is the KeyboardInterrupt."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, KeyboardInterrupt):
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False


def _environment_error(error: Exception):
    """The EnvError (exit 36) for an error of the environment that no nearer code
    reported (a full disk, a read-only file system, a file bp may not write), naming the
    file; None for anything else (a bug of ours)."""
    import sqlite3

    from buildpy.core.errors import NO_SPACE_HINT, EnvError, environment_error

    if isinstance(error, sqlite3.OperationalError) and "disk is full" in str(error):
        return EnvError("cannot write bp's state: no space left on the device",
                        hint=NO_SPACE_HINT)
    return environment_error(error) if isinstance(error, OSError) else None


def entry_point() -> None:
    """The `bp` console script: one command, then exit without tearing the interpreter
    down, and with the cyclic collector still off.

    Freeing a large target or action graph object by object takes a good part of a
    second, and so would the collector's first pass over it; the operating system
    reclaims the memory at once. Output is flushed first.
    """
    try:
        code = _command(sys.argv[1:])
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else EXIT_OK
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, OSError):
            pass
    os._exit(code)
