def _generated_impl(repository_ctx):
    repository_ctx.file("WORKSPACE", "workspace(name = \"%s\")\n" % repository_ctx.name)
    repository_ctx.file("data.txt", repository_ctx.attr.greeting + "\n")
    repository_ctx.template("BUILD.bazel", repository_ctx.attr._template, {
        "{NAME}": repository_ctx.attr.name,
    })

generated = repository_rule(
    implementation = _generated_impl,
    attrs = {
        "greeting": attr.string(mandatory = True),
        "_template": attr.label(default = "//pkg:BUILD.generated"),
    },
)
