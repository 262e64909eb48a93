"""The program a linux-sandbox slot runs inside its bubblewrap: it makes each action's
namespace and starts the action, one action at a time, for as long as the build lasts.

It is not imported by bp: `sandboxslots.py` runs this file's source with `python -I -S -c`
inside one bubblewrap per slot, so it imports the standard library only, and all of it
before the first action (an action's setup unmounts the host view it was loaded from).

The slot's bubblewrap gives what every action shares: the user, network, UTS and cgroup
namespaces, the read-only system directories, /dev (read-only) and the mount pairs, plus
in its /tmp the sources of the actions' mounts (`SOURCES`): the host's tree read-only and
the sandbox base writable. For each request (a length, then that many bytes
of JSON, with the action's stdout and stderr descriptors attached) the helper forks a
setup process that makes new mount, PID and IPC namespaces and lays out the tree
bubblewrap would have made for the action alone: a new /tmp and /dev/shm, a tmpfs at the
sandbox base holding the sandbox directory, the outputs' directories bound writable from
it, each declared input bound read-only (from the host's tree, read-only itself), the
declared symlinks; then it unmounts the two sources. It then forks the PID namespace's
init, which mounts that namespace's /proc and runs the action as its child in a new
session, as bubblewrap's own init does, and exits with the action's exit code (128 + the
signal for a signal). The helper answers each request with that code, as one line; its
first line says that it can make the namespaces (`READY`), or why not.
"""

import ctypes
import errno
import json
import os
import signal
import socket
import struct
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2

# In a tmpfs in the slot's /tmp (below each action's own /tmp): the host's tree, read-only
# (the inputs' sources), and the sandbox base, writable (the outputs' directories'
# sources); unmounted from each action's namespace at once, in one call (each unmount
# call waits for the kernel's RCU grace period, most of what it costs).
SOURCES = "/tmp/.bp"
HOST = SOURCES + "/host"
SANDBOXES = SOURCES + "/sandboxes"
SETUP_FAILED = 125      # the exit code when the action's tree could not be made
READY = b"ready\n"      # the helper's first line, once it can make namespaces

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str, path: str) -> None:
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what} {path}: {os.strerror(error)}")


def _mount(source, target: str, kind, flags: int, data=None) -> None:
    _check(_libc.mount(source and source.encode(), target.encode(),
                       kind and kind.encode(), ctypes.c_ulong(flags),
                       data and data.encode()), "mount", target)


def _tmpfs(path: str) -> None:
    _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755")


def _mount_point(path: str, is_dir: bool) -> None:
    os.makedirs(os.path.dirname(path), 0o755, exist_ok=True)
    if is_dir:
        os.makedirs(path, 0o755, exist_ok=True)
    else:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o444))


def _lay_out(request: dict) -> None:
    """The action's tree, in the setup process's own mount namespace."""
    _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC), "unshare", "")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    # the sources, reached through descriptors once the action's /tmp covers them
    sources = "/proc/self/fd/%d" % os.open(SOURCES, os.O_PATH | os.O_CLOEXEC)
    host = sources + HOST[len(SOURCES):]
    sandboxes = sources + SANDBOXES[len(SOURCES):] + "/"
    _tmpfs("/tmp")   # first: the sandbox base may be under /tmp
    _tmpfs("/dev/shm")
    os.makedirs(request["base"], 0o755, exist_ok=True)
    _tmpfs(request["base"])
    os.makedirs(request["root"], 0o755)
    for path in request["dirs"]:
        os.makedirs(path, 0o755, exist_ok=True)
    for source, target in request["binds"]:
        _mount_point(target, True)
        _mount(sandboxes + source, target, None, MS_BIND | MS_REC)
    for source, target, is_dir in request["inputs"]:
        _mount_point(target, is_dir)
        _mount(host + source, target, None, MS_BIND | MS_REC)
    for text, path in request["links"]:
        os.makedirs(os.path.dirname(path), 0o755, exist_ok=True)
        os.symlink(text, path)
    # gone from this namespace, even below its /tmp
    _check(_libc.umount2(sources.encode(), MNT_DETACH), "umount", SOURCES)


def _init(request: dict) -> None:
    """PID 1 of the action's namespace: its /proc, then the action, reaped with every
    orphan it leaves; exits with the action's code."""
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    action = os.fork()
    if action == 0:
        os.setsid()
        try:
            os.chdir(request["cwd"])
        except OSError as error:
            os.write(2, f"bwrap: Can't chdir to {request['cwd']}: {error.strerror}\n".encode())
            os._exit(1)
        for number in (signal.SIGPIPE, signal.SIGXFSZ):   # (Python ignores them)
            signal.signal(number, signal.SIG_DFL)
        error = _execvp(request["argv"], request["env"])
        os.write(2, f"bwrap: execvp {request['argv'][0]}: {error.strerror}\n".encode())
        os._exit(1)
    while True:
        pid, status = os.wait()
        if pid == action:
            break
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))


def _execvp(argv: list[str], env: dict[str, str]) -> OSError:
    """Run argv[0] as C's execvp does (bubblewrap's way): looked up on the action's PATH
    (a denied candidate remembered, the search going on), a file without a #! line run by
    /bin/sh; returns why it could not."""
    program = argv[0]
    paths = [program] if "/" in program else \
        [os.path.join(d or ".", program) for d in env.get("PATH", "/bin:/usr/bin").split(":")]
    failed = denied = None
    for path in paths:
        try:
            os.execve(path, argv, env)
        except OSError as error:
            failed = error
            if error.errno == errno.ENOEXEC:
                try:
                    os.execve("/bin/sh", ["/bin/sh", path, *argv[1:]], env)
                except OSError as shell:
                    return shell
            elif error.errno == errno.EACCES:
                denied = error
            elif error.errno not in (errno.ENOENT, errno.ENOTDIR, errno.ESTALE):
                return error
    return denied or failed


def _setup(request: dict, out: int, err: int) -> None:
    """The setup process: stdin /dev/null, the captures as stdout and stderr, the tree,
    then the namespace's init; exits with its code."""
    code = SETUP_FAILED
    try:
        null = os.open("/dev/null", os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(out, 1)
        os.dup2(err, 2)
        for fd in {null, out, err} - {0, 1, 2}:   # the action gets these three only
            os.close(fd)
        _lay_out(request)
        init = os.fork()
        if init == 0:
            try:
                _init(request)
            finally:
                os._exit(SETUP_FAILED)
        _, status = os.waitpid(init, 0)
        code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
    except OSError as error:
        os.write(2, f"linux-sandbox: cannot make the action's sandbox: {error}\n".encode())
    finally:
        os._exit(code)


def _receive(channel: socket.socket) -> tuple[dict, list[int]] | None:
    header, fds, _, _ = socket.recv_fds(channel, 8, 2)
    if not header:
        return None
    size, = struct.unpack("!Q", header)
    body = bytearray()
    while len(body) < size:
        chunk = channel.recv(size - len(body))
        if not chunk:
            return None
        body += chunk
    return json.loads(body), fds


def _can_make_namespaces() -> str:
    """"" when this process may make the namespaces each action needs, else why not."""
    probe = os.fork()
    if probe == 0:
        os._exit(_libc.unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC) and
                 ctypes.get_errno() or 0)
    _, status = os.waitpid(probe, 0)
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 0
    return code and f"cannot make namespaces: {os.strerror(code)}"


def main(fd: int) -> None:
    channel = socket.socket(fileno=fd)
    channel.set_inheritable(False)   # (no action sees it)
    refused = _can_make_namespaces()
    channel.sendall(f"{refused}\n".encode() if refused else READY)
    if refused:
        return
    while True:
        received = _receive(channel)
        if received is None:
            return
        request, (out, err) = received
        child = os.fork()
        if child == 0:
            _setup(request, out, err)
        os.close(out)
        os.close(err)
        _, status = os.waitpid(child, 0)
        channel.sendall(b"%d\n" % (os.WEXITSTATUS(status) if os.WIFEXITED(status)
                                   else 128 + os.WTERMSIG(status)))


if __name__ == "__main__":
    main(int(sys.argv[1]))
