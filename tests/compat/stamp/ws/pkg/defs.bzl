def _file_fields(f):
    return "%s|%s|%s|%s|%s|%s\n" % (f.short_path, f.basename, f.extension, f.is_source,
                                    f.owner, f.is_directory)

def _impl(ctx):
    stable = ctx.actions.declare_file(ctx.label.name + ".stable.out")
    ctx.actions.run_shell(
        inputs = [ctx.info_file],
        outputs = [stable],
        command = "grep -E '^(STABLE_|BUILD_EMBED_LABEL)' %s > %s" % (
            ctx.info_file.path, stable.path),
    )
    volatile = ctx.actions.declare_file(ctx.label.name + ".volatile.out")
    ctx.actions.run_shell(
        inputs = [ctx.version_file],
        outputs = [volatile],
        command = "grep ^BUILD_SCM_ %s > %s" % (ctx.version_file.path, volatile.path),
    )
    fields = ctx.actions.declare_file(ctx.label.name + ".fields.out")
    ctx.actions.write(fields, _file_fields(ctx.info_file) + _file_fields(ctx.version_file))
    return [DefaultInfo(files = depset([stable, volatile, fields]))]

status = rule(implementation = _impl)
