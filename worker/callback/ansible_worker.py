# ansible-worker stdout callback.
#
# Shows exactly what the `default` stdout callback shows and, when the
# environment variable ANSIBLE_WORKER_EVENT_FD names an open file descriptor,
# also writes one JSON object per line to that descriptor for every job
# event, in the shape of ansible-runner's job events (ansible-runner 2.3.1's
# awx_display: the same events with the same fields, including those of
# forked workers). The ansible-worker Go service reads that side channel;
# see worker/callback.go.

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = '''
    name: ansible_worker
    type: stdout
    short_description: default output plus structured job events on a pipe
    version_added: historical
    description:
        - Displays the same text as the default stdout callback.
        - When ANSIBLE_WORKER_EVENT_FD is set to an open file descriptor, every
          playbook event is also written to it as one JSON object per line,
          with the event name, uuids, event data and the text displayed
          during the event.
    extends_documentation_fragment:
      - default_callback
      - result_format_callback
    requirements:
      - set as stdout callback (ANSIBLE_STDOUT_CALLBACK=ansible_worker)
'''

import contextlib
import datetime
import inspect
import json
import os
import sys
import threading
import uuid

from ansible import constants as C
from ansible.plugins.callback.default import CallbackModule as DefaultCallbackModule
from ansible.utils.color import stringc
from ansible.utils.display import Display

try:
    from ansible.module_utils.common.json import AnsibleJSONEncoder as _BaseEncoder
except ImportError:  # pragma: no cover - very old ansible
    _BaseEncoder = json.JSONEncoder

FD_ENV = 'ANSIBLE_WORKER_EVENT_FD'
CENSORED = "the output has been hidden due to the fact that 'no_log: true' was specified for this result"
EOF_LINE = b'{"event":"__eof__"}\n'

# Like ansible-runner, text displayed outside any callback event is an event
# of its own whose event_data marks the Display methods that displayed it
# (warning: true, verbose: true, ...); the first of these marks that is set
# names the event, else it is 'verbose'.
EVENT_MARKS = ('debug', 'verbose', 'deprecated', 'warning', 'system_warning', 'error')
# The Display methods that display through Display.display and get their
# mark (Display.verbose has its own wrapper: it marks more).
MARKED_METHODS = ('banner', 'debug', 'deprecated', 'error', 'system_warning', 'warning')

# The keyword argument of Display.display that carries an event of a forked
# worker to the main process, through Ansible's final queue (see
# _Channel.forward).
FORWARD_KW = '_ansible_worker_event'

_UTC = datetime.timezone.utc


def _now():
    return datetime.datetime.now(_UTC)


def _iso(ts):
    # ansible-runner 2.3.1 writes naive UTC (datetime.utcnow().isoformat()):
    # no offset. Always six fractional digits, so every timestamp has the
    # same layout (isoformat leaves them out when they are all 0).
    return ts.strftime('%Y-%m-%dT%H:%M:%S.%f')


class _Encoder(_BaseEncoder):
    """Ansible's encoder (vault values stay encrypted) that never gives up:
    whatever it does not know becomes its str()."""

    def default(self, o):
        try:
            return super(_Encoder, self).default(o)
        except Exception:
            pass
        if isinstance(o, (set, frozenset)):
            return list(o)
        try:
            return str(o)
        except Exception:
            return '<unprintable %s>' % type(o).__name__


_SCALARS = (str, int, bool, type(None))


def _sanitize(value, depth=0):
    """Plain-JSON copy of value, for when the fast encoding failed (bad keys,
    cycles, NaN)."""
    if depth > 64:
        return '<too deep>'
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float('inf'), float('-inf')) else str(value)
    if isinstance(value, dict) or hasattr(value, 'items'):
        try:
            items = list(value.items())
        except Exception:
            return str(value)
        out = {}
        for k, v in items:
            if not isinstance(k, str):
                k = str(k)
            out[k] = _sanitize(v, depth + 1)
        return out
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_sanitize(v, depth + 1) for v in value]
    try:
        return _sanitize(_Encoder().default(value), depth + 1)
    except Exception:
        return '<unprintable %s>' % type(value).__name__


def _dumps(obj):
    try:
        return json.dumps(obj, cls=_Encoder, separators=(',', ':'), allow_nan=False)
    except Exception:
        return json.dumps(_sanitize(obj), separators=(',', ':'), allow_nan=False)


def _display_arg(args, kwargs, index, name, default):
    # Display.display(self, msg, color=None, stderr=False, screen_only=False, log_only=False, newline=True)
    return args[index] if len(args) > index else kwargs.get(name, default)


def _shown_text(args, kwargs):
    """The text Display.display writes for these arguments, colours
    included, or None when it only logs. Computed as Display.display does."""
    if _display_arg(args, kwargs, 4, 'log_only', False):
        return None
    msg = _display_arg(args, kwargs, 0, 'msg', '')
    color = _display_arg(args, kwargs, 1, 'color', None)
    newline = _display_arg(args, kwargs, 5, 'newline', True)
    if not isinstance(msg, str):
        msg = str(msg)
    has_newline = msg.endswith('\n')
    if has_newline:
        msg = msg[:-1]
    if color:
        msg = stringc(msg, color)  # plain text unless Ansible uses colours
    if has_newline or newline:
        msg += '\n'
    return msg


class _Event(object):
    """A callback event being recorded: the JSON object without its stdout
    and closing brace (head), and the text displayed so far (parts)."""
    __slots__ = ('head', 'parts')

    def __init__(self, head=None):
        self.head = head
        self.parts = []


class _Channel(object):
    """The side channel, shared by the patched Display and the callback
    object. Everything that touches `current` or writes runs under `lock`, so
    the main thread and the strategy's results thread never interleave
    events (ansible calls callbacks and Display from both).

    Forked workers inherit this object along with the patched Display: they
    never write or take the lock (another thread may have held it at the
    fork); they forward their events to the main process (see forward)."""

    def __init__(self, fd):
        self.fd = fd
        self.pid = os.getpid()
        self.lock = threading.RLock()
        self.current = None      # the open callback _Event
        self.context = dict      # callable returning the context keys
        self.local = threading.local()  # .marks: those of the Display methods running in this thread
        self.reported = False
        try:
            self.max_res = int(os.environ.get('MAX_EVENT_RES', '700000'))
        except ValueError:
            self.max_res = 700000

    def usable(self):
        """In the main process, with the channel open."""
        return self.fd is not None and os.getpid() == self.pid

    def forked(self):
        """In a process forked from the main one while the channel was open."""
        return self.fd is not None and os.getpid() != self.pid

    def marks(self):
        return getattr(self.local, 'marks', None) or {}

    @contextlib.contextmanager
    def marked(self, marks):
        saved = self.marks()
        merged = dict(saved)
        merged.update(marks)
        self.local.marks = merged
        try:
            yield
        finally:
            self.local.marks = saved

    def report(self, exc):
        if self.reported:
            return
        self.reported = True
        try:
            sys.stderr.write('[ansible_worker callback] event channel error (output continues): %r\n' % (exc,))
            sys.stderr.flush()
        except Exception:
            pass

    def write(self, data):
        if self.fd is None:
            return
        try:
            view = memoryview(data)
            while view:
                n = os.write(self.fd, view)
                view = view[n:]
        except Exception as exc:
            # The reader is gone: stop writing, keep the playbook running.
            self.fd = None
            self.report(exc)

    def res_too_big(self, res):
        # ansible-runner's rule: len(str(res)) > MAX_EVENT_RES. str() counts
        # a non-ASCII character once, where the escaped JSON has 6 bytes.
        try:
            size = len(str(res))
        except Exception:
            size = len(_dumps(res))
        return size > self.max_res

    def head(self, name, event_data, verbosity=None, res=None, has_res=False, pid=None):
        """Encode everything but stdout; event_data must hold 'uuid'."""
        uid = event_data['uuid']
        obj = {'event': name, 'uuid': uid}
        for key in ('task_uuid', 'play_uuid', 'playbook_uuid'):
            parent = event_data.get(key)
            if parent and parent != uid:
                obj['parent_uuid'] = parent
                break
        obj['pid'] = self.pid if pid is None else pid
        obj['created'] = _iso(_now())
        if verbosity is not None:
            obj['verbosity'] = verbosity
        obj['event_data'] = event_data  # last key: res is spliced in below
        text = _dumps(obj)
        if not has_res:
            return text[:-1]
        res_json = '{}' if self.res_too_big(res) else _dumps(res)
        # text ends with the '}' of event_data then the outer '}'.
        return text[:-2] + ',"res":' + res_json + '}'

    def display_head(self, pid=None):
        """The head of an event for text displayed outside any callback
        event, as ansible-runner makes it: the context, the marks of the
        Display methods running (the verbosity goes to the top level), a
        uuid of its own, the name from the marks."""
        data = dict(self.context())
        verbosity = None
        for key, value in self.marks().items():
            if key == 'verbosity':
                verbosity = value
            else:
                data[key] = value
        data['uuid'] = str(uuid.uuid4())
        name = next((k for k in EVENT_MARKS if data.get(k)), 'verbose')
        return self.head(name, data, verbosity=verbosity, pid=pid)

    def forward(self, display, args, kwargs):
        """In a forked worker, about to display: the event ansible-runner
        records for it in the worker itself (the worker's pid, the task
        context, the marks, no text: the text is displayed, and recorded,
        by the main process). It goes to the main process through Ansible's
        final queue, as the text does, so it arrives before the text and
        only the main process writes to the channel."""
        if _display_arg(args, kwargs, 4, 'log_only', False):
            return
        queue = getattr(display, '_final_q', None)
        if queue is None:
            return  # not a task worker: its text goes straight to the output
        line = self.display_head(pid=os.getpid()) + ',"stdout":""}\n'
        if _names_method(queue):
            queue.send_display('display', '', **{FORWARD_KW: line})
        else:
            queue.send_display('', **{FORWARD_KW: line})

    def finish(self, ev):
        if ev.head is None:
            return
        line = ev.head + ',"stdout":' + json.dumps(''.join(ev.parts)) + '}\n'
        self.write(line.encode('utf-8', 'surrogatepass'))


_STATE_ATTR = '_ansible_worker_channel'


_NAMES_METHOD = {}


def _names_method(queue):
    """Whether the queue's send_display takes the name of the Display
    method to call first (ansible-core 2.16 and later); in 2.14 the main
    process always calls Display.display with the arguments."""
    kind = type(queue)
    if kind not in _NAMES_METHOD:
        try:
            params = list(inspect.signature(queue.send_display).parameters)
        except (TypeError, ValueError):
            params = []
        _NAMES_METHOD[kind] = bool(params) and params[0] == 'method'
    return _NAMES_METHOD[kind]


# With the side channel on, captured text already travels inside the events:
# it goes only to Ansible's log file, not to stdout as well, unless
# ANSIBLE_WORKER_MIRROR=1 asks for both.
_MIRROR = os.environ.get('ANSIBLE_WORKER_MIRROR') == '1'


def _captured(orig, self, args, kwargs):
    if _MIRROR:
        return orig(self, *args, **kwargs)
    if len(args) > 4:
        args = args[:4] + (True,) + args[5:]
    else:
        kwargs = dict(kwargs, log_only=True)
    return orig(self, *args, **kwargs)


def _wrap_display(orig):
    def display(self, *args, **kwargs):
        ch = getattr(Display, _STATE_ATTR)
        forwarded = kwargs.pop(FORWARD_KW, None)
        if forwarded is not None:
            # A worker's event (see _Channel.forward), nothing to display.
            if ch.usable():
                with ch.lock:
                    ch.write(forwarded.encode('utf-8', 'surrogatepass'))
            return None
        if ch.forked():
            try:
                ch.forward(self, args, kwargs)
            except Exception as exc:
                ch.report(exc)
            return orig(self, *args, **kwargs)
        if not ch.usable():
            return orig(self, *args, **kwargs)
        with ch.lock:
            try:
                text = _shown_text(args, kwargs)
            except Exception:
                text = None
            if text is None:
                return orig(self, *args, **kwargs)
            ev = ch.current
            if ev is not None:
                if ev.head is None:
                    # A callback event whose data could not be built.
                    try:
                        ev.head = ch.display_head()
                    except Exception as exc:
                        ch.report(exc)
                ev.parts.append(text)
                return _captured(orig, self, args, kwargs)
            # Displayed outside any callback event: an event of its own.
            ev = _Event()
            try:
                ev.head = ch.display_head()
            except Exception as exc:
                ch.report(exc)
            ev.parts.append(text)
            ch.current = ev
            try:
                return _captured(orig, self, args, kwargs)
            finally:
                ch.current = None
                ch.finish(ev)
    display.__name__ = orig.__name__
    display.__doc__ = orig.__doc__
    return display


def _wrap_marked(name, orig):
    def method(self, *args, **kwargs):
        ch = getattr(Display, _STATE_ATTR)
        # Ansible calls debug all the time; it displays only with
        # ANSIBLE_DEBUG.
        if ch.fd is None or (name == 'debug' and not C.DEFAULT_DEBUG):
            return orig(self, *args, **kwargs)
        with ch.marked({name: True}):
            return orig(self, *args, **kwargs)
    method.__name__ = orig.__name__
    method.__doc__ = orig.__doc__
    return method


def _wrap_verbose(orig):
    def verbose(self, msg, host=None, caplevel=2):
        ch = getattr(Display, _STATE_ATTR)
        if ch.fd is None or self.verbosity <= caplevel:
            return orig(self, msg, host=host, caplevel=caplevel)  # displays nothing
        marks = {'verbose': True, 'verbosity': caplevel + 1}
        if host is not None:
            marks['remote_addr'] = host
        with ch.marked(marks):
            return orig(self, msg, host=host, caplevel=caplevel)
    verbose.__name__ = orig.__name__
    verbose.__doc__ = orig.__doc__
    return verbose


def _open_channel():
    """Set up the channel once per process, however often ansible loads this
    module. Returns None when no event fd was given."""
    ch = getattr(Display, _STATE_ATTR, None)
    if ch is not None:
        return ch
    raw = os.environ.pop(FD_ENV, None)  # not for modules or nested runs
    if not raw:
        return None
    try:
        fd = int(raw)
        os.fstat(fd)
    except (ValueError, OSError) as exc:
        sys.stderr.write('[ansible_worker callback] %s=%r is not an open descriptor (%s); events disabled\n' % (FD_ENV, raw, exc))
        return None
    try:
        os.set_inheritable(fd, False)  # lingering children (ssh masters) must not hold the pipe
        os.set_blocking(fd, True)
    except OSError:
        pass
    ch = _Channel(fd)
    setattr(Display, _STATE_ATTR, ch)
    Display.display = _wrap_display(Display.display)
    for name in MARKED_METHODS:
        method = getattr(Display, name, None)
        if method is not None:
            setattr(Display, name, _wrap_marked(name, method))
    Display.verbose = _wrap_verbose(Display.verbose)
    return ch


_CHANNEL = _open_channel()


def _censor(res):
    """The result as recorded in the event: no_log censored, no ansible_env.
    Copies instead of changing the result the display uses."""
    if not isinstance(res, dict):
        return res
    if res.get('_ansible_no_log', False):
        return {'censored': CENSORED}
    results = res.get('results')
    if isinstance(results, list) and results:
        res = dict(res)
        res['results'] = [
            {'censored': CENSORED} if isinstance(item, dict) and item.get('_ansible_no_log', False) else item
            for item in results
        ]
    facts = res.get('ansible_facts')
    if isinstance(facts, dict) and 'ansible_env' in facts:
        res = dict(res)
        facts = dict(facts)
        facts.pop('ansible_env', None)
        res['ansible_facts'] = facts
    return res


class CallbackModule(DefaultCallbackModule):
    '''
    The default stdout callback, plus every event on the ansible-worker
    side channel.
    '''

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'stdout'
    CALLBACK_NAME = 'ansible_worker'

    def __init__(self):
        super(CallbackModule, self).__init__()
        self._ch = _CHANNEL
        self._playbook_ctx = {}
        self._play_ctx = {}
        self._task_ctx = {}
        self._host_start = {}
        self._seen_tasks = {}
        self._seen_plays = {}
        if self._ch is not None:
            self._ch.context = self._context

    # -- context -----------------------------------------------------------

    def _context(self, task_ctx=None):
        ctx = dict(self._playbook_ctx)
        ctx.update(self._play_ctx)
        ctx.update(self._task_ctx if task_ctx is None else task_ctx)
        return ctx

    @staticmethod
    def _task_context(task):
        ctx = {
            'task': task.name or task.action,
            'task_uuid': str(task._uuid),
            'task_action': task.action,
            'resolved_action': getattr(task, 'resolved_action', task.action),
            'task_args': '',  # never the args: they may hold secrets
        }
        try:
            ctx['task_path'] = task.get_path()
        except Exception:
            pass
        role = getattr(task, '_role', None)
        if role:
            name = role._role_name
            try:
                resolved = role.get_name()
                if resolved != name:
                    ctx['resolved_role'] = resolved
            except Exception:
                pass
        else:
            name = getattr(task, 'role_name', '')
        if name:
            ctx['role'] = name
        return ctx

    @staticmethod
    def _play_pattern(play):
        hosts = getattr(play, 'hosts', '')
        if isinstance(hosts, list):
            return ','.join(hosts)
        return hosts or ''

    @staticmethod
    def _unique(seen, uid):
        # free strategy and serial batches repeat uuids: keep event uuids unique.
        count = seen.get(uid, 0) + 1
        seen[uid] = count
        return uid if count == 1 else '%s_%d' % (uid, count)

    # -- event recording ---------------------------------------------------

    def _emit(self, name, data_fn, task, func, *args):
        """Run func (the default callback's method) as event `name`.

        data_fn builds the event's own event_data (and may update the
        context); task, when given, replaces the task context. Both run only
        when the channel is in use, and inside the guard: a plugin bug costs
        at most the event's data, never the default output or the run."""
        ch = self._ch
        if ch is None or not ch.usable():
            return func(*args)
        with ch.lock:
            ev = _Event()
            try:
                ev.head = self._head(name, data_fn() if data_fn is not None else {}, task)
            except Exception as exc:
                ch.report(exc)
                try:
                    fallback = self._context()
                    fallback['uuid'] = str(uuid.uuid4())
                    ev.head = ch.head(name, fallback)
                except Exception:
                    ev.head = None
            prev = ch.current
            ch.current = ev
            try:
                return func(*args)
            finally:
                ch.current = prev
                ch.finish(ev)

    def _head(self, name, data, task):
        task_ctx = self._task_context(task) if task is not None else None
        event_data = self._context(task_ctx)
        has_res = 'res' in data
        res = data.pop('res', None)
        event_data.update(data)
        if not event_data.get('uuid'):
            event_data['uuid'] = str(uuid.uuid4())
        if has_res:
            res = _censor(res)
        return self._ch.head(name, event_data, res=res, has_res=has_res)

    def _timing(self, result, final):
        key = (result._host.get_name(), str(result._task._uuid))
        start = self._host_start.pop(key, None) if final else self._host_start.get(key)
        if start is None:
            return None, None, None
        end = _now()
        return _iso(start), _iso(end), (end - start).total_seconds()

    def _result_data(self, result, timing=True, loop=True, res=True):
        data = {
            'host': result._host.get_name(),
            'remote_addr': result._host.address,
        }
        if res:
            data['res'] = result._result
        if timing:
            data['start'], data['end'], data['duration'] = self._timing(result, True)
        if loop:
            data['event_loop'] = getattr(result._task, 'loop_with', None)
        return data

    def _result_event(self, name, result, func, *args, **opts):
        return self._emit(name, lambda: self._result_data(result, **opts), result._task, func, result, *args)

    def _item_event(self, name, result, func):
        def data():
            return {'host': result._host.get_name(), 'res': result._result}
        return self._emit(name, data, result._task, func, result)

    def _async_event(self, name, result, func):
        def data():
            return {
                'host': result._host.get_name(),
                'res': result._result,
                'jid': result._result.get('ansible_job_id'),
            }
        return self._emit(name, data, result._task, func, result)

    # -- playbook level ----------------------------------------------------

    def v2_playbook_on_start(self, playbook):
        def data():
            playbook_uuid = str(uuid.uuid4())
            self._playbook_ctx = {
                'playbook': getattr(playbook, '_file_name', '???'),
                'playbook_uuid': playbook_uuid,
            }
            self._play_ctx = {}
            self._task_ctx = {}
            return {'uuid': playbook_uuid}
        return self._emit('playbook_on_start', data, None,
                          super(CallbackModule, self).v2_playbook_on_start, playbook)

    def v2_playbook_on_play_start(self, play):
        def data():
            pattern = self._play_pattern(play)
            name = play.get_name().strip() or pattern
            play_uuid = self._unique(self._seen_plays, str(play._uuid))
            self._play_ctx = {'play': name, 'play_uuid': play_uuid, 'play_pattern': pattern}
            self._task_ctx = {}
            return {'name': name, 'pattern': pattern, 'uuid': play_uuid}
        return self._emit('playbook_on_play_start', data, None,
                          super(CallbackModule, self).v2_playbook_on_play_start, play)

    def _emit_task_start(self, task, is_conditional, dedup, func, *args):
        def data():
            uid = str(task._uuid)
            if dedup:
                uid = self._unique(self._seen_tasks, uid)
            self._task_ctx = self._task_context(task)
            return {'name': task.get_name(), 'is_conditional': is_conditional, 'uuid': uid}
        return self._emit('playbook_on_task_start', data, None, func, *args)

    def v2_playbook_on_task_start(self, task, is_conditional):
        return self._emit_task_start(task, is_conditional, True,
                                     super(CallbackModule, self).v2_playbook_on_task_start, task, is_conditional)

    def v2_playbook_on_handler_task_start(self, task):
        # Handlers are task starts with is_conditional true, like ansible-runner.
        return self._emit_task_start(task, True, False,
                                     super(CallbackModule, self).v2_playbook_on_handler_task_start, task)

    def v2_playbook_on_cleanup_task_start(self, task):
        return self._emit_task_start(task, True, False,
                                     super(CallbackModule, self).v2_playbook_on_cleanup_task_start, task)

    def v2_playbook_on_no_hosts_matched(self):
        return self._emit('playbook_on_no_hosts_matched', None, None,
                          super(CallbackModule, self).v2_playbook_on_no_hosts_matched)

    def v2_playbook_on_no_hosts_remaining(self):
        return self._emit('playbook_on_no_hosts_remaining', None, None,
                          super(CallbackModule, self).v2_playbook_on_no_hosts_remaining)

    def v2_playbook_on_notify(self, handler, host):
        def data():
            return {'host': host.get_name(), 'handler': handler.get_name()}
        return self._emit('playbook_on_notify', data, None,
                          super(CallbackModule, self).v2_playbook_on_notify, handler, host)

    def v2_playbook_on_include(self, included_file):
        def data():
            return {'included_file': getattr(included_file, '_filename', None)}
        return self._emit('playbook_on_include', data, None,
                          super(CallbackModule, self).v2_playbook_on_include, included_file)

    def v2_playbook_on_vars_prompt(self, varname, private=True, prompt=None, encrypt=None, confirm=False,
                                   salt_size=None, salt=None, default=None, unsafe=None):
        def data():
            return {
                'varname': varname, 'private': private, 'prompt': prompt, 'encrypt': encrypt,
                'confirm': confirm, 'salt_size': salt_size, 'salt': salt, 'default': default, 'unsafe': unsafe,
            }
        return self._emit('playbook_on_vars_prompt', data, None,
                          super(CallbackModule, self).v2_playbook_on_vars_prompt,
                          varname, private, prompt, encrypt, confirm, salt_size, salt, default, unsafe)

    def v2_playbook_on_stats(self, stats):
        def data():
            self._play_ctx = {}
            self._task_ctx = {}
            custom = getattr(stats, 'custom', None) or {}
            return {
                'changed': stats.changed,
                'dark': stats.dark,
                'failures': stats.failures,
                'ignored': getattr(stats, 'ignored', {}),
                'ok': stats.ok,
                'processed': stats.processed,
                'rescued': getattr(stats, 'rescued', {}),
                'skipped': stats.skipped,
                'artifact_data': custom.get('_run', {}),
            }
        try:
            return self._emit('playbook_on_stats', data, None,
                              super(CallbackModule, self).v2_playbook_on_stats, stats)
        finally:
            ch = self._ch
            if ch is not None and ch.usable():
                with ch.lock:
                    ch.write(EOF_LINE)

    # -- host level --------------------------------------------------------

    def v2_runner_on_start(self, host, task):
        def data():
            self._host_start[(host.get_name(), str(task._uuid))] = _now()
            return {'host': host.get_name()}
        return self._emit('runner_on_start', data, task,
                          super(CallbackModule, self).v2_runner_on_start, host, task)

    def v2_runner_on_ok(self, result):
        return self._result_event('runner_on_ok', result, super(CallbackModule, self).v2_runner_on_ok)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        def data():
            d = self._result_data(result)
            d['ignore_errors'] = ignore_errors
            return d
        return self._emit('runner_on_failed', data, result._task,
                          super(CallbackModule, self).v2_runner_on_failed, result, ignore_errors)

    def v2_runner_on_skipped(self, result):
        return self._result_event('runner_on_skipped', result,
                                  super(CallbackModule, self).v2_runner_on_skipped, res=False)

    def v2_runner_on_unreachable(self, result):
        return self._result_event('runner_on_unreachable', result,
                                  super(CallbackModule, self).v2_runner_on_unreachable, loop=False)

    def v2_runner_item_on_ok(self, result):
        return self._item_event('runner_item_on_ok', result, super(CallbackModule, self).v2_runner_item_on_ok)

    def v2_runner_item_on_failed(self, result):
        return self._item_event('runner_item_on_failed', result,
                                super(CallbackModule, self).v2_runner_item_on_failed)

    def v2_runner_item_on_skipped(self, result):
        return self._item_event('runner_item_on_skipped', result,
                                super(CallbackModule, self).v2_runner_item_on_skipped)

    def v2_runner_retry(self, result):
        return self._item_event('runner_retry', result, super(CallbackModule, self).v2_runner_retry)

    def v2_runner_on_async_poll(self, result):
        return self._async_event('runner_on_async_poll', result,
                                 super(CallbackModule, self).v2_runner_on_async_poll)

    def v2_runner_on_async_ok(self, result):
        return self._async_event('runner_on_async_ok', result, super(CallbackModule, self).v2_runner_on_async_ok)

    def v2_runner_on_async_failed(self, result):
        return self._async_event('runner_on_async_failed', result,
                                 super(CallbackModule, self).v2_runner_on_async_failed)

    def v2_on_file_diff(self, result):
        # ansible-runner's name for it.
        def data():
            return {'host': result._host.get_name(), 'diff': result._result.get('diff')}
        return self._emit('runner_on_file_diff', data, result._task,
                          super(CallbackModule, self).v2_on_file_diff, result)
