"""A stand-in for AetherMagic for Python, for interop tests.

It puts on the broker what the Python library puts there (see
/work/shared/PROTOCOL.md) and is as unforgiving as the library where that
matters: a malformed payload makes it crash, as the library would.

Modes:
  worker  serve one task through the shared group and report each task
  caller  send tasks and report every status and complete received
  raw     publish one arbitrary payload to one topic, then exit

It prints one JSON object a line on stdout (flushed at once) and logs to
stderr. Exit codes: 0 done, 2 bad arguments, 3 crash on a malformed
payload, 4 timeout, 5 no connection to the broker.

Run it with Debian's interpreter, which has paho-mqtt 1.6:
  /usr/bin/python3 test/python/aether_peer.py worker --port 1883 \
      --job worker --task collect
"""

import argparse
import json
import logging
import os
import queue
import secrets
import socket
import sys
import threading
import time

try:
    import paho.mqtt.client as mqtt
except ImportError:
    sys.stderr.write(
        "aether_peer needs paho-mqtt 1.6: install it with "
        "`apt-get install -y python3-paho-mqtt` and run /usr/bin/python3.\n"
    )
    sys.exit(5)

EXIT_OK = 0
EXIT_CRASH = 3
EXIT_TIMEOUT = 4
EXIT_NO_BROKER = 5

SUBACK_FAILURE = 128
MAX_STEPS = 10_000
MAX_SLEEP_MS = 60_000
RAW_EXCERPT_CHARS = 500
FLUSH_TIMEOUT_S = 2.0

# The status word each reply action may carry (PROTOCOL.md, Payload).
REPLY_STATUSES = {"status": {"progress"}, "complete": {"succeed", "failed"}}

log = logging.getLogger("aether_peer")
stdout_lock = threading.Lock()


def emit(event, **fields):
    """Prints one event line; performer threads print too, hence the lock."""
    line = json.dumps({"event": event, **fields})
    with stdout_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def crash(reason, message=None):
    """Ends the process as the library's unhandled exception would.

    os._exit skips the MQTT DISCONNECT, so the broker sees a dropped
    connection, as with a real crash.
    """
    fields = describe_message(message) if message is not None else {}
    emit("crash", reason=reason, **fields)
    log.error("crash: %s", reason)
    os._exit(EXIT_CRASH)


def describe_message(message):
    raw = message.payload.decode("utf-8", errors="replace")
    return {"topic": message.topic, "raw": raw[:RAW_EXCERPT_CHARS]}


def parse_object(message):
    """Decodes a payload, crashing unless it is a UTF-8 JSON object."""
    try:
        fulldata = json.loads(message.payload.decode("utf-8"))
    except ValueError as error:
        crash(f"payload is not UTF-8 JSON ({error})", message)

    if not isinstance(fulldata, dict):
        kind = type(fulldata).__name__
        crash(f"payload is a JSON {kind}, not an object", message)
    return fulldata


def is_integer(value):
    # bool is an int subclass in Python, and true is no progress value.
    return isinstance(value, int) and not isinstance(value, bool)


def reply_problems(fulldata, topic_action):
    """Lists how a status or complete payload breaks PROTOCOL.md."""
    problems = [
        f"`{field}` is not a string"
        for field in ("host", "client", "action", "status")
        if not isinstance(fulldata.get(field), str)
    ]

    progress = fulldata.get("progress")
    if not is_integer(progress) or not 0 <= progress <= 100:
        problems.append(f"`progress` {progress!r} is not an integer 0-100")
    elif topic_action == "complete" and progress != 100:
        problems.append(f"`progress` of a complete is {progress}, not 100")

    if "data" not in fulldata:
        problems.append("`data` is missing")

    action = fulldata.get("action")
    if action != topic_action:
        problems.append(f"`action` {action!r} is not {topic_action!r}")

    allowed = REPLY_STATUSES.get(topic_action, set())
    if fulldata.get("status") not in allowed:
        problems.append(
            f"`status` {fulldata.get('status')!r} is not one of "
            f"{sorted(allowed)}"
        )
    return problems


class TaskInputError(Exception):
    pass


def read_task_input(data):
    """Reads the worker's instructions; any other input field is ignored."""
    spec = data if isinstance(data, dict) else {}
    steps = spec.get("steps", 2)
    sleep_ms = spec.get("sleep_ms", 0)

    if not is_integer(steps) or not 0 <= steps <= MAX_STEPS:
        raise TaskInputError(f"steps must be an integer 0-{MAX_STEPS}")
    if not is_integer(sleep_ms) or not 0 <= sleep_ms <= MAX_SLEEP_MS:
        raise TaskInputError(f"sleep_ms must be an integer 0-{MAX_SLEEP_MS}")

    return steps, sleep_ms, spec.get("fail") is True, spec.get("echo")


class Peer:
    """One MQTT connection; paho's thread only queues, the main thread acts.

    Keeping every decision on the main thread makes a crash (os._exit) and
    the exit code come from one place.
    """

    def __init__(self, args):
        self.args = args
        self.hostname = socket.gethostname()
        self.inbox = queue.Queue()
        self.exit_code = None
        self.last_publish = None
        self.client = self.create_client()

    def create_client(self):
        client = mqtt.Client(
            client_id=self.args.client_id,
            clean_session=True,
            protocol=mqtt.MQTTv311,
        )
        if self.args.username is not None:
            client.username_pw_set(self.args.username, self.args.password)

        put = self.inbox.put
        client.on_connect = lambda c, u, flags, rc: put(("connect", rc))
        client.on_disconnect = lambda c, u, rc: put(("disconnect", rc))
        client.on_subscribe = lambda c, u, mid, qos: put(("suback", mid, qos))
        client.on_message = lambda c, u, message: put(("message", message))
        return client

    def run(self):
        try:
            self.client.connect(self.args.host, self.args.port, keepalive=60)
        except OSError as error:
            return self.fail_connection(f"cannot connect: {error}")
        self.client.loop_start()

        deadline = time.monotonic() + self.args.seconds
        while self.exit_code is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.exit_code = self.on_deadline()
                break
            try:
                item = self.inbox.get(timeout=remaining)
            except queue.Empty:
                continue
            self.dispatch(*item)

        self.close()
        return self.exit_code

    def dispatch(self, kind, *details):
        if kind == "connect":
            self.on_connect(*details)
        elif kind == "disconnect":
            # paho reconnects by itself; on_connect then subscribes again.
            emit("disconnected", rc=details[0])
        elif kind == "suback":
            self.on_suback(*details)
        elif kind == "message":
            self.on_message(*details)
        elif kind == "finished":
            self.on_finished(*details)

    def on_connect(self, rc):
        if rc != 0:
            reason = mqtt.connack_string(rc)
            self.exit_code = self.fail_connection(f"refused: {reason}")
            return

        self.set_no_delay()
        log.info("connected to %s:%s", self.args.host, self.args.port)
        self.publish(self.online_topic(), "online", "connected", 100, {})
        emit("connected", client=self.args.client_id, host=self.hostname)
        self.on_connected()

    def set_no_delay(self):
        # The library leaves Nagle on; off, tests run in milliseconds
        # instead of tens of them (88 ms a QoS 1 round trip with Nagle,
        # measured). --nagle keeps it on.
        sock = self.client.socket()
        if sock is not None and not self.args.nagle:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def fail_connection(self, reason):
        emit("error", reason=reason)
        log.error("%s (broker %s:%s)", reason, self.args.host, self.args.port)
        return EXIT_NO_BROKER

    def close(self):
        # Exits that end a test must not lose the last complete: QoS 0 is
        # "published" once it is written to the socket.
        if self.last_publish is not None:
            try:
                self.last_publish.wait_for_publish(timeout=FLUSH_TIMEOUT_S)
            except (RuntimeError, ValueError) as error:
                log.warning("last publish not flushed: %s", error)
        self.client.disconnect()
        self.client.loop_stop()

    def publish(self, topic, action, status, progress, data):
        payload = json.dumps(
            {
                "host": self.hostname,
                "client": self.args.client_id,
                "action": action,
                "status": status,
                "progress": progress,
                "data": data,
            }
        )
        self.last_publish = self.client.publish(topic, payload, 0, False)
        log.debug("sent %s %s", topic, payload)

    def online_topic(self):
        return (
            f"{self.args.union}/system/online/{self.hostname}/"
            f"{self.args.client_id}/online"
        )

    def task_base(self):
        a = self.args
        return f"{a.union}/{a.job}/{a.task}/{a.context}"

    def on_connected(self):
        pass

    def on_suback(self, mid, granted):
        pass

    def on_message(self, message):
        log.info("ignored message on %s", message.topic)

    def on_finished(self, tid):
        pass

    def on_deadline(self):
        emit("timeout", seconds=self.args.seconds)
        return EXIT_TIMEOUT


class Worker(Peer):
    """Serves the task through the shared group, as a library worker does."""

    def __init__(self, args):
        super().__init__(args)
        self.own_tid = secrets.token_hex(4)
        self.subscribe_mid = None
        self.accepted = 0
        self.finished = 0

    def perform_filter(self):
        plain = f"{self.task_base()}/+/perform"
        if self.args.no_share:
            return plain
        # `workgroup` is a literal in the library (PROTOCOL.md, Topics).
        default_group = f"{self.args.union}_{self.args.job}_workgroup"
        group = self.args.group or default_group
        return f"$share/{group}/{plain}"

    def on_connected(self):
        # After a reconnect, a worker that took its last task stays out.
        if not self.is_full():
            topic = self.perform_filter()
            _, self.subscribe_mid = self.client.subscribe(topic, 0)

    def on_suback(self, mid, granted):
        if mid != self.subscribe_mid:
            return
        if granted[0] == SUBACK_FAILURE:
            self.exit_code = self.fail_connection("subscription refused")
            return

        idle_topic = f"{self.task_base()}/{self.own_tid}/idle"
        self.publish(idle_topic, "idle", "online", 100, {})
        log.info("serving %s", self.perform_filter())
        emit("ready", client=self.args.client_id, filter=self.perform_filter())

    def on_message(self, message):
        log.debug("received %s %r", message.topic, message.payload)
        fulldata = parse_object(message)
        required = ("data", "status", "progress")
        missing = [field for field in required if field not in fulldata]
        if missing:
            crash(f"perform payload lacks {', '.join(missing)}", message)

        # The library trusts the payload's action over the topic's.
        levels = message.topic.split("/")
        tid = levels[-2]
        action = fulldata.get("action", levels[-1])
        if action != "perform":
            emit("ignored", tid=tid, reason=f"action is {action!r}")
            return
        if self.is_full():
            emit("ignored", tid=tid, reason="max tasks already accepted")
            return

        emit("received", tid=tid, payload=fulldata)
        self.accept(tid, fulldata["data"])

    def is_full(self):
        limit = self.args.max_tasks
        return limit is not None and self.accepted >= limit

    def accept(self, tid, data):
        base = f"{self.task_base()}/{tid}"
        self.publish(f"{base}/status", "status", "progress", 0, {})
        self.accepted += 1

        # Leave the group at once so that later tasks go to other members.
        if self.is_full():
            self.client.unsubscribe(self.perform_filter())

        threading.Thread(
            target=self.perform, args=(tid, base, data), daemon=True
        ).start()

    def perform(self, tid, base, data):
        try:
            steps, sleep_ms, fail, echo = read_task_input(data)
        except TaskInputError as error:
            self.complete(tid, base, data, "failed", {"message": str(error)})
            return

        for step in range(1, steps + 1):
            time.sleep(sleep_ms / 1000)
            # n steps share 0-99: only the complete says 100.
            progress = step * 100 // (steps + 1)
            partial = {"step": step}
            topic = f"{base}/status"
            self.publish(topic, "status", "progress", progress, partial)

        if fail:
            output = {"message": "requested failure"}
            self.complete(tid, base, data, "failed", output)
        else:
            worker = self.args.client_id
            output = {"echo": echo, "worker": worker, "input": data}
            self.complete(tid, base, data, "succeed", output)

    def complete(self, tid, base, data, status, output):
        self.publish(f"{base}/complete", "complete", status, 100, output)
        emit("performed", tid=tid, input=data, status=status)
        self.inbox.put(("finished", tid))

    def on_finished(self, tid):
        self.finished += 1
        limit = self.args.max_tasks
        if limit is not None and self.finished >= limit:
            emit("done", tasks=self.finished)
            self.exit_code = EXIT_OK

    def on_deadline(self):
        if self.args.max_tasks is None:
            emit("lifetime", tasks=self.finished)
            return EXIT_OK
        return super().on_deadline()


class Caller(Peer):
    """Sends tasks and waits for each complete, as a library caller does."""

    def __init__(self, args):
        super().__init__(args)
        self.tids = [secrets.token_hex(4) for _ in range(args.count)]
        self.pending = set(self.tids)
        self.subscribe_mid = None
        self.has_sent = False

    def reply_filters(self):
        base = self.task_base()
        if self.args.style == "0.0":
            return [f"{base}/+/status", f"{base}/+/complete"]
        return [
            f"{base}/{tid}/{action}"
            for tid in self.tids
            for action in ("status", "complete")
        ]

    def on_connected(self):
        filters = [(topic, 0) for topic in self.reply_filters()]
        _, self.subscribe_mid = self.client.subscribe(filters)

    def on_suback(self, mid, granted):
        if mid != self.subscribe_mid or self.has_sent:
            return
        if SUBACK_FAILURE in granted:
            self.exit_code = self.fail_connection("subscription refused")
            return

        # Only now: a reply sent before the SUBACK would be lost.
        self.has_sent = True
        for tid in self.tids:
            topic = f"{self.task_base()}/{tid}/perform"
            self.publish(topic, "perform", "initialized", 0, self.args.input)
            emit("sent", tid=tid, topic=topic)

    def on_message(self, message):
        log.debug("received %s %r", message.topic, message.payload)
        levels = message.topic.split("/")
        topic_action, tid = levels[-1], levels[-2]

        # Checked before the tid filter: a 0.0 caller parses every reply
        # under its `+` filter, its own or not.
        fulldata = parse_object(message)
        problems = reply_problems(fulldata, topic_action)
        if problems:
            crash(f"malformed {topic_action}: {'; '.join(problems)}", message)

        if tid not in self.tids:
            log.info("reply for another caller's tid %s", tid)
            return

        emit(topic_action, tid=tid, payload=fulldata)
        if topic_action == "complete":
            self.pending.discard(tid)
        if not self.pending:
            emit("done", tids=self.tids)
            self.exit_code = EXIT_OK

    def on_deadline(self):
        pending = sorted(self.pending)
        emit("timeout", seconds=self.args.seconds, pending=pending)
        return EXIT_TIMEOUT


class Raw(Peer):
    """Publishes one payload as given, for malformed-message tests."""

    def on_connected(self):
        if self.args.payload_hex is not None:
            payload = bytes.fromhex(self.args.payload_hex)
        else:
            payload = self.args.payload.encode("utf-8")

        self.last_publish = self.client.publish(self.args.topic, payload, 0)
        emit("published", topic=self.args.topic, bytes=len(payload))
        self.exit_code = EXIT_OK


def topic_level(text):
    """argparse type: one topic level, as the library never escapes them."""
    if text == "" or any(char in text for char in "/+#"):
        raise argparse.ArgumentTypeError(
            f"{text!r} must be one non-empty topic level without / + #"
        )
    return text


def json_value(text):
    try:
        return json.loads(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not JSON: {error}") from error


def positive_number(text):
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be above 0")
    return value


def common_arguments(task_names_required):
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--host", default="127.0.0.1")
    common.add_argument("--port", type=int, required=True)
    common.add_argument("--username")
    common.add_argument("--password")
    common.add_argument("--union", type=topic_level, default="default")
    common.add_argument("--job", type=topic_level,
                        required=task_names_required)
    common.add_argument("--task", type=topic_level,
                        required=task_names_required)
    common.add_argument("--context", type=topic_level, default="x")
    common.add_argument("--client-id", type=topic_level,
                        default=secrets.token_hex(4))
    common.add_argument("--nagle", action="store_true",
                        help="leave Nagle on, as the library does")
    common.add_argument("--verbose", action="store_true")
    return common


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    modes = parser.add_subparsers(dest="mode", required=True)
    named = common_arguments(task_names_required=True)

    worker = modes.add_parser("worker", parents=[named])
    worker.add_argument("--group", type=topic_level)
    worker.add_argument("--no-share", action="store_true")
    worker.add_argument("--max-tasks", type=int)
    worker.add_argument("--seconds", type=positive_number, default=60)

    caller = modes.add_parser("caller", parents=[named])
    caller.add_argument("--count", type=int, default=1)
    caller.add_argument("--input", type=json_value, default={})
    caller.add_argument("--style", choices=["0.2", "0.0"], default="0.2")
    caller.add_argument("--seconds", type=positive_number, default=30)

    raw = modes.add_parser("raw", parents=[common_arguments(False)])
    raw.add_argument("--topic", required=True)
    content = raw.add_mutually_exclusive_group(required=True)
    content.add_argument("--payload")
    content.add_argument("--payload-hex")
    raw.add_argument("--seconds", type=positive_number, default=10)

    args = parser.parse_args(argv)
    if args.mode == "caller" and args.count < 1:
        parser.error("--count must be 1 or more")
    if args.mode == "worker" and args.max_tasks is not None:
        if args.max_tasks < 1:
            parser.error("--max-tasks must be 1 or more")
    return args


def main(argv):
    args = parse_arguments(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.DEBUG if args.verbose else logging.INFO,
        format=f"%(asctime)s aether_peer {args.mode} {args.client_id} "
        "%(levelname)s %(message)s",
    )

    peer_class = {"worker": Worker, "caller": Caller, "raw": Raw}[args.mode]
    return peer_class(args).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
