# The warm process of ansible-worker (see worker/warm.go): it imports
# Ansible once, in the playbook directory and with the environment a
# playbook gets, then forks one child per task that runs ansible-playbook's
# own main() with the task's argv. It runs nothing itself and has no thread,
# so every child starts from the same state as a fresh ansible-playbook.
#
# Usage: python3 ansible_worker_warm.py /path/to/ansible-playbook
# fd 3 is a Unix socket to the worker. Messages both ways are a 4-byte
# big-endian length and a JSON object; a request carries three descriptors
# (SCM_RIGHTS): the task's output pipe, its event pipe and the task's own
# socket, on which the task's supervisor reports {"pid"} then {"exit"}.
import json
import os
import re
import signal
import socket
import struct
import sys
import time

CTRL_FD = 3
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
# What the worker sends a task's playbook or its supervisor.
TASK_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


def send(sock, obj):
    body = json.dumps(obj).encode()
    sock.sendall(struct.pack(">I", len(body)) + body)


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def recv(sock):
    """One message and the descriptors that came with it; EOFError at the end."""
    data, ancdata, _, _ = sock.recvmsg(1, socket.CMSG_SPACE(16 * 4))
    if not data:
        raise EOFError
    fds = []
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.extend(struct.unpack("%di" % (len(payload) // 4), payload[: len(payload) - len(payload) % 4]))
    (size,) = struct.unpack(">I", data + recv_exact(sock, 3))
    return json.loads(recv_exact(sock, size)), fds


def preload():
    """What ansible-playbook imports and loads before it runs a play."""
    import ansible.cli.playbook  # noqa: F401
    import ansible.executor.module_common  # noqa: F401
    import ansible.executor.playbook_executor  # noqa: F401
    import ansible.executor.process.worker  # noqa: F401
    import ansible.executor.task_executor  # noqa: F401
    import ansible.executor.task_queue_manager  # noqa: F401
    import ansible.inventory.manager  # noqa: F401
    import ansible.parsing.dataloader  # noqa: F401
    import ansible.playbook.play  # noqa: F401
    import ansible.playbook.task  # noqa: F401
    import ansible.plugins.strategy  # noqa: F401
    import ansible.template  # noqa: F401
    import ansible.vars.manager  # noqa: F401
    from ansible.plugins import loader

    # Only Ansible's own plugins: one of the playbook directory or of the
    # configured plugin paths (this worker's callback among them) may do
    # things when imported, which must happen in the task, as cold.
    for plugins in (loader.callback_loader, loader.connection_loader, loader.strategy_loader, loader.action_loader,
                    loader.become_loader, loader.shell_loader, loader.inventory_loader, loader.vars_loader,
                    loader.filter_loader, loader.test_loader):
        for name in builtin_names(plugins.package):
            try:
                plugins.get(name, class_only=True)
            except Exception:
                pass  # the task meets the same error, if it uses it
    import ansible.playbook.handler_task_include  # noqa: F401
    import multiprocessing.popen_fork  # noqa: F401


def builtin_names(package):
    """The plugins of one of Ansible's plugin packages (ansible.plugins.X)."""
    import importlib

    directory = os.path.dirname(importlib.import_module(package).__file__)
    return sorted(n[:-3] for n in os.listdir(directory) if n.endswith(".py") and not n.startswith("_"))


def watched_paths(ansible_playbook):
    """What the imports read that a later change must not go unnoticed."""
    import ansible
    from ansible import constants as C

    paths = [
        os.environ.get("ANSIBLE_CONFIG", ""),
        os.path.join(os.getcwd(), "ansible.cfg"),
        os.path.expanduser("~/.ansible.cfg"),
        "/etc/ansible/ansible.cfg",
        C.config._config_file or "",
        ansible_playbook,
        sys.executable,
        os.path.join(os.path.dirname(ansible.__file__), "release.py"),
    ]
    for p in list(C.COLLECTIONS_PATHS) + list(C.DEFAULT_ROLES_PATH):
        paths += [p, os.path.join(p, "ansible_collections")]
    return sorted(set(p for p in paths if p))


def snapshot(paths):
    out = {}
    for p in paths:
        try:
            st = os.stat(p)
            out[p] = (st.st_ino, st.st_mtime_ns, st.st_size)
        except OSError:
            out[p] = None
    return out


def changed(before):
    now = snapshot(before)
    for p in sorted(before):
        if now[p] != before[p]:
            return p
    return ""


def children_of(root):
    tree = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry, "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        tree.setdefault(int(fields[1]), []).append(int(entry))
    out, queue = [], [root]
    while queue:
        for child in tree.get(queue.pop(), []):
            out.append(child)
            queue.append(child)
    return out


def kill_descendants():
    """SIGKILL every process below this one until none is left."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        pids = children_of(os.getpid())
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        reap()
        if not pids:
            return
        time.sleep(0.02)


def has_children():
    """Whether a child is left (running or not yet reaped), reaping the
    finished orphans first."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return False
        if pid == 0:
            return True


def reap():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def run_playbook(req, out_fd, ev_fd, supervisor, sites):
    """The task's ansible-playbook, in this forked child: ansible-playbook's
    own main() with the task's argv, directory and environment. It never
    returns (see exit_now)."""
    try:
        os.setpgid(0, 0)
        # Killed with its supervisor, as a cold start's playbook is.
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != supervisor:
            os._exit(137)
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, TASK_SIGNALS - {signal.SIGINT})
        os.dup2(out_fd, 1)
        os.dup2(out_fd, 2)
        os.dup2(ev_fd, 3)
        os.closerange(4, os.sysconf("SC_OPEN_MAX"))
        os.chdir(req["dir"])
        os.environ.clear()
        os.environ.update(dict(kv.split("=", 1) for kv in req["env"] if "=" in kv))
        renew_process_state(sites)
        sys.argv = list(req["argv"])
        sys.argv[0] = re.sub(r"(-script\.pyw|\.exe)?$", "", sys.argv[0])
        from ansible.cli.playbook import main
    except BaseException:
        import traceback

        traceback.print_exc()
        sys.stderr.flush()
        os._exit(127)
    try:
        # An interrupt that came while the task was being set up is raised
        # here: the task ends as Python ends on one, as a cold start does.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        code = main()
    except SystemExit as e:
        code = e.code
    except KeyboardInterrupt:
        import traceback

        traceback.print_exc()
        code = 128 + signal.SIGINT
    exit_now(code)


def exit_now(code):
    """Ends the task's process as the interpreter ends, but without tearing
    down the modules it inherited (nothing outside sees that; it takes time):
    non-daemon threads joined, atexit handlers run, output flushed."""
    import atexit
    import threading

    if code is None:
        code = 0
    elif not isinstance(code, int):
        sys.stderr.write("%s\n" % code)
        code = 1
    try:
        threading._shutdown()
    except Exception:
        pass
    atexit._run_exitfuncs()
    flush_files()
    os._exit(code & 0xFF)


def flush_files():
    """Flushes what the interpreter's teardown would: every open file
    object, the standard streams last."""
    import gc
    import io

    for obj in gc.get_objects():
        if isinstance(obj, io.IOBase) and obj not in (sys.stdout, sys.stderr):
            try:
                if not obj.closed and obj.writable():
                    obj.flush()
            except Exception:
                pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


def renew_process_state(sites):
    """What a fork shares with its parent that must be the task's own."""
    import atexit
    import random

    from ansible import constants as C
    from ansible.utils.path import cleanup_tmp_file

    random.seed()
    # The warm process's temporary directory is not the task's: the task
    # gets its own under its ANSIBLE_LOCAL_TEMP, removed when it ends.
    atexit.unregister(cleanup_tmp_file)
    C.DEFAULT_LOCAL_TMP = C.config.get_config_value("DEFAULT_LOCAL_TMP")
    renew_semaphores(sites)


def semaphore_sites():
    """Where the imports left multiprocessing locks: semaphores in shared
    memory, so one the warm process made (Ansible's module build locks)
    would be shared by every task it forks, and a task killed while holding
    it (cancel, timeout) would block all the later ones. Those an Ansible
    module keeps at its top level, alone or as the values of a dict: a list
    of (dict, key) found once here, renewed in each task (renew_semaphores)."""
    import multiprocessing.synchronize as mps

    sites = []
    for name, module in list(sys.modules.items()):
        if module is None or not (name == "ansible" or name.startswith("ansible.")):
            continue
        for attr, value in list(vars(module).items()):
            if isinstance(value, mps.SemLock):
                sites.append((vars(module), attr))
            elif isinstance(value, dict):
                sites += [(value, key) for key, item in value.items() if isinstance(item, mps.SemLock)]
    return sites


def renew_semaphores(sites):
    """Each task its own locks, as a cold start makes its own."""
    import multiprocessing
    import multiprocessing.synchronize as mps

    for where, key in sites:
        if isinstance(where.get(key), mps.RLock):
            where[key] = multiprocessing.RLock()
        elif isinstance(where.get(key), mps.Lock):
            where[key] = multiprocessing.Lock()


def supervise(req, fds, sites):
    """The task's supervisor: runs the playbook in a child, reports its pid
    and exit code on the task's socket, and leaves no process behind: it is
    a child subreaper, and kills everything below it when the playbook
    ends, when it gets SIGTERM or SIGHUP, and when the worker goes away
    (the task's socket closes). Never returns."""
    out_fd, ev_fd, job_fd = fds
    os.setpgid(0, 0)
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except Exception:
        pass
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    stop = []
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGINT, lambda *_: None)  # the playbook's group gets it
    signal.signal(signal.SIGTERM, lambda s, _: stop.append(s))
    signal.signal(signal.SIGHUP, lambda s, _: stop.append(s))
    signal.set_wakeup_fd(wake_w)
    parent = os.getpid()
    # A signal for the playbook (a cancel at once) that came before it
    # installed its own handlers would go to the handlers above: it stays
    # pending until the playbook is ready for it.
    signal.pthread_sigmask(signal.SIG_BLOCK, TASK_SIGNALS)
    pid = os.fork()
    if pid == 0:
        os.close(wake_r)
        os.close(wake_w)
        os.close(job_fd)
        run_playbook(req, out_fd, ev_fd, parent, sites)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, TASK_SIGNALS)
    try:
        os.setpgid(pid, pid)
    except OSError:
        pass
    os.close(out_fd)
    os.close(ev_fd)
    # Made after the fork: the playbook's child must not close it again.
    job = socket.socket(fileno=job_fd)
    send(job, {"pid": pid})
    code = wait_playbook(pid, job, wake_r, stop)
    if code is None:  # the worker went away
        kill_descendants()
        os._exit(1)
    if has_children():
        kill_descendants()
    try:
        send(job, {"exit": code})
    except OSError:
        pass
    os._exit(code & 0xFF)


def wait_playbook(pid, job, wake_r, stop):
    import select

    poller = select.poll()
    poller.register(wake_r, select.POLLIN)
    poller.register(job.fileno(), select.POLLIN)
    while True:
        if stop:
            kill_descendants()
            return 128 + stop[0]
        for fd, _ in poller.poll():
            if fd == wake_r:
                os.read(wake_r, 512)
            elif not job.recv(1):
                return None
        done, status = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            code = os.waitstatus_to_exitcode(status)
            return 128 - code if code < 0 else code


def serve(ctrl, before, sites):
    # The tasks' supervisors are reaped as they end (their CPU time then
    # counts in this process's, as a cold start's counts in the worker's).
    signal.signal(signal.SIGCHLD, lambda *_: reap())
    # What the imports made is never collected or walked again: pages stay
    # shared with the children, and a child's walk over its objects (see
    # flush_files) sees only its own.
    import gc

    gc.collect()
    gc.freeze()
    while True:
        try:
            req, fds = recv(ctrl)
        except EOFError:
            return
        why = changed(before)
        if why or len(fds) != 3:
            for fd in fds:
                os.close(fd)
            send(ctrl, {"stale": why or "a request without its three descriptors"})
            return
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            ctrl.close()
            try:
                supervise(req, fds, sites)
            finally:
                os._exit(70)  # supervise never returns
        for fd in fds:
            os.close(fd)
        send(ctrl, {"pid": pid})


def main():
    ansible_playbook = sys.argv[1]
    # The module search path of ansible-playbook itself, not this file's.
    sys.path[0] = os.path.dirname(os.path.realpath(ansible_playbook))
    ctrl = socket.socket(fileno=CTRL_FD)
    started = time.monotonic()
    # Whatever the imports print (warnings) would be missing from the tasks'
    # output: the worker does not use a warm process that printed.
    import tempfile

    capture, path = tempfile.mkstemp(dir=os.environ.get("ANSIBLE_LOCAL_TEMP"))
    os.unlink(path)
    os.dup2(capture, 1)
    os.dup2(capture, 2)
    try:
        preload()
        before = snapshot(watched_paths(ansible_playbook))
        sites = semaphore_sites()
    except BaseException:
        import traceback

        traceback.print_exc()
        before = None
    sys.stdout.flush()
    sys.stderr.flush()
    printed = os.pread(capture, 4096, 0).decode("utf-8", "replace")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    os.close(devnull)
    os.close(capture)
    import ansible.release

    send(ctrl, {"ready": before is not None, "printed": printed, "version": ansible.release.__version__,
                "seconds": round(time.monotonic() - started, 3), "watched": sorted(before or [])})
    if before is not None:
        serve(ctrl, before, sites)


if __name__ == "__main__":
    main()
