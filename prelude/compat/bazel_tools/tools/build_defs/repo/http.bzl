"""http_archive, http_file and http_jar, as @bazel_tools//tools/build_defs/repo:http.bzl
defines them: downloaded through bp's repository cache, checked by sha256 or integrity."""

load(":utils.bzl", "PATCH_AND_BUILD_FILE_ATTRS", "patch", "update_attrs", "workspace_and_buildfile")

def _urls(ctx):
    urls = list(ctx.attr.urls)
    if ctx.attr.url:
        urls = [ctx.attr.url] + urls
    if not urls:
        fail("At least one of url and urls must be provided")
    return urls

_COMMON = {
    "url": attr.string(doc = "A URL of the file (tried before `urls`)."),
    "urls": attr.string_list(doc = "URLs of the file, tried in order."),
    "sha256": attr.string(doc = "The file's expected SHA-256."),
    "integrity": attr.string(doc = "The file's expected checksum, in Subresource Integrity form."),
    "netrc": attr.string(),
    "auth_patterns": attr.string_dict(),
    "canonical_id": attr.string(),
}

def _http_archive_impl(ctx):
    download = ctx.download_and_extract(
        _urls(ctx),
        ctx.attr.add_prefix,
        ctx.attr.sha256,
        ctx.attr.type,
        ctx.attr.strip_prefix,
        integrity = ctx.attr.integrity,
    )
    workspace_and_buildfile(ctx)
    for index, (url, integrity) in enumerate(ctx.attr.remote_patches.items()):
        name = ".bp-remote-patch-%d" % index
        ctx.download(url, name, integrity = integrity)
        ctx.patch(name, ctx.attr.remote_patch_strip)
        ctx.delete(name)
    patch(ctx)
    return update_attrs(ctx.attr, _ARCHIVE_ATTRS.keys(), {"sha256": download.sha256})

_ARCHIVE_ATTRS = dict(_COMMON, **PATCH_AND_BUILD_FILE_ATTRS)

_ARCHIVE_ATTRS.update({
    "strip_prefix": attr.string(doc = "A directory prefix to strip from the extracted files."),
    "add_prefix": attr.string(doc = "A directory prefix to add to the extracted files."),
    "type": attr.string(doc = "The archive type: zip, tar.gz, tar.xz, tar.bz2, tar.zst, ..."),
    "patches": attr.label_list(doc = "Patches applied after extraction."),
    "remote_patches": attr.string_dict(),
    "remote_patch_strip": attr.int(default = 0),
})

http_archive = repository_rule(implementation = _http_archive_impl, attrs = _ARCHIVE_ATTRS)

def _http_file_impl(ctx):
    urls = _urls(ctx)
    name = ctx.attr.downloaded_file_path or urls[0].split("/")[-1]
    if name.startswith("/") or ".." in name.split("/"):
        fail("downloaded_file_path must be a relative path within the repository, got " + name)
    download = ctx.download(urls, "file/" + name, ctx.attr.sha256,
                            ctx.attr.executable, integrity = ctx.attr.integrity)
    ctx.file("WORKSPACE", "workspace(name = \"{}\")\n".format(ctx.name))
    ctx.file("file/BUILD", "\n".join([
        "package(default_visibility = [\"//visibility:public\"])",
        "filegroup(",
        "    name = \"file\",",
        "    srcs = [\"{}\"],".format(name),
        ")",
        "",
    ]))
    return update_attrs(ctx.attr, _FILE_ATTRS.keys(), {"sha256": download.sha256})

_FILE_ATTRS = dict(_COMMON, **{
    "executable": attr.bool(doc = "Whether the file is executable."),
    "downloaded_file_path": attr.string(default = ""),
})

http_file = repository_rule(implementation = _http_file_impl, attrs = _FILE_ATTRS)

def _http_jar_impl(ctx):
    urls = _urls(ctx)
    name = ctx.attr.downloaded_file_name or urls[0].split("/")[-1]
    download = ctx.download(urls, "jar/" + name, ctx.attr.sha256, integrity = ctx.attr.integrity)
    ctx.file("WORKSPACE", "workspace(name = \"{}\")\n".format(ctx.name))
    ctx.file("jar/BUILD", "\n".join([
        "package(default_visibility = [\"//visibility:public\"])",
        "filegroup(name = \"file\", srcs = [\"{}\"])".format(name),
        "",
    ]))
    return update_attrs(ctx.attr, _JAR_ATTRS.keys(), {"sha256": download.sha256})

_JAR_ATTRS = dict(_COMMON, **{
    "downloaded_file_name": attr.string(default = ""),
})

http_jar = repository_rule(implementation = _http_jar_impl, attrs = _JAR_ATTRS)
