"""The program a linux-sandbox slot runs inside its bubblewrap: it makes each action's
namespaces and starts the action, one action at a time, for as long as the build lasts.

It is not imported by bp: `sandboxslots.py` runs this file's source with `python -I -S -c`
inside one bubblewrap per slot, so it imports the standard library only, and all of it
before the first action (an action's setup unmounts the host view it was loaded from).

The slot's bubblewrap gives what every action shares: the user, network, UTS, cgroup and
PID namespaces (the helper is the PID namespace's first process), the read-only system
directories, /dev (read-only), /proc and the mount pairs, plus in its /tmp the sources of
the actions' mounts (`SOURCES`): the host's tree read-only and the sandbox base writable.
For each request (a length, then that many bytes of JSON, with the action's stdout and
stderr descriptors attached) the helper makes new mount and IPC namespaces for itself
and lays out in them the tree bubblewrap would have made for the action alone: a new
/tmp and /dev/shm, a tmpfs at the sandbox base holding the sandbox directory, the
outputs' directories bound writable from it, each declared input bound read-only (from
the host's tree, read-only itself), the declared symlinks; then it unmounts the sources,
starts the action there with posix_spawn (a vfork: no copy of a Python process's pages,
which as a fork, with the copies its reference counts then make and the teardown of the
copy, cost more than a millisecond an action here) in a session of its own, and goes
back to its own namespaces. As the PID namespace's first process it reaps the action and
every process the action leaves; when the action has ended, what it left is killed
(as when the first process of a PID namespace of the action's own ends), so each action
finds only the helper and itself in /proc. The helper answers each request with the
action's exit code (128 + the signal for a signal), as one line; its first line says that
it can make the namespaces (`READY`), or why not.
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
MS_NOSUID = 2
MS_NODEV = 4
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
    """The action's tree, in new mount and IPC namespaces of this process's own (`_run`
    leaves them again)."""
    _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWIPC), "unshare", "")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    # the sources, reached through a descriptor once the action's /tmp covers them
    held = os.open(SOURCES, os.O_PATH | os.O_CLOEXEC)
    try:
        sources = "/proc/self/fd/%d" % held
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
    finally:
        os.close(held)


def _code(status: int) -> int:
    """An exit code as bubblewrap gives it: 128 + the signal for a signal."""
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


def _spawnp(argv: list[str], env: dict[str, str], actions) -> int | OSError:
    """Start argv[0] in a session of its own as C's execvp finds and runs it (bubblewrap's
    way): looked up on the action's PATH (a denied candidate remembered, the search going
    on), a file without a #! line run by /bin/sh. `actions`: posix_spawn's file actions.
    Returns its pid, or why it could not."""
    program = argv[0]
    paths = [program] if "/" in program else \
        [os.path.join(d or ".", program) for d in env.get("PATH", "/bin:/usr/bin").split(":")]
    failed = denied = None
    for path in paths:
        started = _posix_spawn(path, argv, env, actions)
        if isinstance(started, int):
            return started
        failed = started
        if started.errno == errno.ENOEXEC:
            return _posix_spawn("/bin/sh", ["/bin/sh", path, *argv[1:]], env, actions)
        if started.errno == errno.EACCES:
            denied = started
        elif started.errno not in (errno.ENOENT, errno.ENOTDIR, errno.ESTALE):
            return started
    return denied or failed


_SETSIGDEF, _SETSID = 0x04, 0x80
# the signals an action starts with at their default: all but those bp itself ignored
# (a bp started in the background ignores SIGINT and SIGQUIT, and so does what it starts
# under the other strategies); a sigset_t, signal n at bit n - 1
_DEFAULTS = ctypes.create_string_buffer(b"\xff" * 128)


def _keep_ignored(signals: list[int]) -> None:
    for number in signals:
        byte, bit = divmod(number - 1, 8)
        _DEFAULTS[byte] = _DEFAULTS[byte][0] & ~(1 << bit)


def _posix_spawn(path: str, argv: list[str], env: dict[str, str], actions) -> int | OSError:
    """posix_spawn (vfork and exec: no copy of this process's pages) in a new session,
    every signal at its default but those bp ignores (as a process bp starts gets them;
    Python's own posix_spawn cannot name glibc's two internal signals, which its child
    would then ignore)."""
    attr = ctypes.create_string_buffer(1024)   # (a posix_spawnattr_t is 336 bytes)
    _libc.posix_spawnattr_init(attr)
    _libc.posix_spawnattr_setflags(attr, ctypes.c_short(_SETSIGDEF | _SETSID))
    _libc.posix_spawnattr_setsigdefault(attr, _DEFAULTS)
    words = [word.encode() for word in argv]
    pairs = [f"{name}={value}".encode() for name, value in env.items()]
    pid = ctypes.c_int()
    error = _libc.posix_spawn(ctypes.byref(pid), path.encode(), actions, attr,
                              (ctypes.c_char_p * (len(words) + 1))(*words, None),
                              (ctypes.c_char_p * (len(pairs) + 1))(*pairs, None))
    _libc.posix_spawnattr_destroy(attr)
    return OSError(error, os.strerror(error)) if error else pid.value


def _start(request: dict, streams: tuple[int, int, int], home: tuple[int, int]) -> int:
    """The action's namespaces and tree, made in this process, and the action started in
    them, its standard streams `streams`; this process goes back to its own namespaces
    (`home`: descriptors of its mount and IPC namespaces). Returns the action's pid, or
    the exit code bubblewrap gives (negated; said on the action's stderr) when its tree
    could not be made or it could not start."""
    err = streams[2]
    try:
        _lay_out(request)
        try:
            os.chdir(request["cwd"])
        except OSError as error:
            os.write(err, f"bwrap: Can't chdir to {request['cwd']}: {error.strerror}\n".encode())
            return -1
        actions = ctypes.create_string_buffer(1024)   # (a posix_spawn_file_actions_t: 80)
        _libc.posix_spawn_file_actions_init(actions)
        try:
            for fd, standard in zip(streams, (0, 1, 2)):
                _libc.posix_spawn_file_actions_adddup2(actions, fd, standard)
            action = _spawnp(request["argv"], request["env"], actions)
        finally:
            _libc.posix_spawn_file_actions_destroy(actions)
        if isinstance(action, OSError):
            os.write(err, f"bwrap: execvp {request['argv'][0]}: {action.strerror}\n".encode())
            return -1
        return action
    except OSError as error:
        os.write(err, f"linux-sandbox: cannot make the action's sandbox: {error}\n".encode())
        return -SETUP_FAILED
    finally:   # (entering a mount namespace also sets the root and cwd to its root)
        for fd, kind in zip(home, (CLONE_NEWNS, CLONE_NEWIPC)):
            _check(_libc.setns(fd, kind), "setns", "")


def _reap(action: int) -> int:
    """The action's exit code, once it has ended and every process it left has been
    killed and reaped (each is this process's child by then: it is the PID namespace's
    first process)."""
    while True:
        pid, status = os.wait()
        if pid == action:
            code = _code(status)
            break
    try:
        while os.waitpid(-1, os.WNOHANG) != (0, 0):   # (what has ended)
            pass
        os.kill(-1, signal.SIGKILL)   # what is left still runs: all but this process
        while True:
            os.wait()
    except (ChildProcessError, ProcessLookupError):   # (nothing left)
        return code


def _run(request: dict, out: int, err: int, null: int, home: tuple[int, int]) -> int:
    """Runs one request's action: its exit code."""
    for fd in (out, err):   # (the action gets them as 1 and 2 only)
        os.set_inheritable(fd, False)
    started = _start(request, (null, out, err), home)
    os.close(out)
    os.close(err)
    return -started if started <= 0 else _reap(started)


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
        os._exit(_libc.unshare(CLONE_NEWNS | CLONE_NEWIPC) and
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
    home = tuple(os.open(f"/proc/self/ns/{name}", os.O_RDONLY | os.O_CLOEXEC)
                 for name in ("mnt", "ipc"))
    null = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
    while True:
        received = _receive(channel)
        if received is None:
            return
        request, (out, err) = received
        channel.sendall(b"%d\n" % _run(request, out, err, null, home))


if __name__ == "__main__":
    _keep_ignored([int(n) for n in sys.argv[2].split(",") if n])
    main(int(sys.argv[1]))
    os._exit(0)   # (nothing to tear down: bp waits for this at the end of its build)
