#!/usr/bin/env python3
"""A shadowcopy writer in Python, standard library only.

It speaks the protocol of docs/protocol.md: newline-delimited JSON-RPC 2.0 over the daemon's
writer.sock. It says hello, subscribes, answers Identify with a Writer Metadata Document in
the genuine Windows XML format (one file group: --path), answers every other event with ok
(or vetoes the one named by --veto), and logs each event it receives as one JSON line.

    python3 writer.py --socket-dir /run/shadowcopy --path /srv/app [--log events.jsonl]
"""
import argparse
import json
import os
import signal
import socket
import sys
import threading
import uuid
from datetime import datetime, timezone
from xml.etree import ElementTree
from xml.sax.saxutils import quoteattr

PROTOCOL_VERSION = 1
EVENTS = ["Identify", "PrepareForBackup", "PrepareForSnapshot", "Freeze", "Thaw", "PostSnapshot",
          "Abort", "BackupComplete", "BackupShutdown", "PreRestore", "PostRestore"]
# VSS_USAGE_TYPE 3 = USER_DATA, VSS_SOURCE_TYPE 3 = OTHER, VSS_APPLICATION_LEVEL 3 = FRONT_END.
USAGE_USER_DATA, SOURCE_OTHER, LEVEL_FRONT_END = 3, 3, 3
# VSS_FSBT_ALL_BACKUP_REQUIRED | VSS_FSBT_ALL_SNAPSHOT_REQUIRED: the default file-spec backup type.
DEFAULT_FILESPEC_BACKUP_TYPE = 0xF0F


class Connection:
    """One JSON-RPC 2.0 peer over a Unix socket, one message per line, both directions."""

    def __init__(self, path, on_request):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.reader = self.sock.makefile("rb")
        self.write_lock = threading.Lock()
        self.next_id = 1
        self.pending = {}  # our request id -> [threading.Event, response]
        self.on_request = on_request
        self.closed = threading.Event()
        threading.Thread(target=self._read_loop, daemon=True).start()

    def send(self, message):
        data = json.dumps(message, separators=(",", ":")).encode("utf-8") + b"\n"
        with self.write_lock:
            self.sock.sendall(data)

    def call(self, method, params):
        """Sends a request and waits for its response; raises on a JSON-RPC error."""
        with self.write_lock:
            request_id = self.next_id
            self.next_id += 1
        slot = [threading.Event(), None]
        self.pending[request_id] = slot
        self.send({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
        while not slot[0].wait(0.5):
            if self.closed.is_set():
                raise ConnectionError("the daemon closed the connection")
        response = slot[1]
        if "error" in response:
            err = response["error"]
            vss = (err.get("data") or {}).get("vssError", "")
            raise RuntimeError(f"{method}: {vss + ': ' if vss else ''}{err.get('message')} (code {err.get('code')})")
        return response["result"]

    def _read_loop(self):
        try:
            for line in self.reader:
                if not line.strip():
                    continue
                message = json.loads(line)
                if "method" in message and "id" in message:
                    # A request from the daemon (an event): answer it on its own thread, since
                    # events of different sessions may arrive while another one is handled.
                    threading.Thread(target=self._answer, args=(message,), daemon=True).start()
                elif "method" in message:
                    pass  # a notification, e.g. $/cancelRequest: we finish quickly anyway
                elif message.get("id") in self.pending:
                    slot = self.pending.pop(message["id"])
                    slot[1] = message
                    slot[0].set()
                elif "error" in message:
                    print(f"python-writer: the daemon reports: {message['error'].get('message')}", file=sys.stderr)
        finally:
            self.closed.set()

    def _answer(self, request):
        try:
            result = self.on_request(request["method"], request.get("params") or {})
            self.send({"jsonrpc": "2.0", "id": request["id"], "result": result})
        except Exception as e:  # noqa: BLE001 - any failure becomes a JSON-RPC error answer
            self.send({"jsonrpc": "2.0", "id": request["id"], "error": {"code": -32603, "message": str(e)}})


class PythonWriter:
    def __init__(self, args):
        self.args = args
        self.instance_id = None
        self.log_lock = threading.Lock()

    def metadata_xml(self, instance_id):
        """The Writer Metadata Document, genuine format (docs/xml.md): one selectable file group."""
        a = self.args
        return (
            '<WRITER_METADATA xmlns="x-schema:#VssWriterMetadataInfo" version="1.2">'
            f'<IDENTIFICATION writerId={quoteattr(a.writer_id)} instanceId={quoteattr(instance_id)}'
            f' friendlyName={quoteattr(a.name)} usage="USER_DATA" dataSource="OTHER" majorVersion="1" minorVersion="0"/>'
            '<RESTORE_METHOD method="RESTORE_IF_CAN_BE_REPLACED" writerRestore="never" rebootRequired="no"/>'
            '<BACKUP_LOCATIONS>'
            f'<FILE_GROUP componentName={quoteattr(a.component)} caption={quoteattr(a.component + " (Python)")}'
            ' restoreMetadata="no" notifyOnBackupComplete="no" selectable="yes" selectableForRestore="no" componentFlags="0">'
            f'<FILE_LIST path={quoteattr(a.path)} filespec="*" recursive="yes" filespecBackupType="{DEFAULT_FILESPEC_BACKUP_TYPE}"/>'
            '</FILE_GROUP></BACKUP_LOCATIONS></WRITER_METADATA>'
        )

    @staticmethod
    def components_of(bcd_xml):
        """Names of our components in the part of the BCD the daemon sent with the event."""
        if not bcd_xml:
            return None
        root = ElementTree.fromstring(bcd_xml)
        names = []
        for element in root.iter():
            if element.tag.split("}")[-1] == "COMPONENT":
                lp = element.get("logicalPath") or ""
                names.append(f"{lp}\\{element.get('componentName')}" if lp else element.get("componentName"))
        return names

    def log(self, params, answer):
        line = {
            "event": params.get("event"),
            "sessionId": params.get("sessionId"),
            "snapshotSetId": params.get("snapshotSetId"),
            "at": datetime.now(timezone.utc).isoformat(),
            "answer": answer,
            "instanceId": params.get("instanceId"),
        }
        components = self.components_of(params.get("bcdXml"))
        if components is not None:
            line["components"] = components
        text = json.dumps(line) + "\n"
        with self.log_lock:
            if self.args.log:
                with open(self.args.log, "a", encoding="utf-8") as f:
                    f.write(text)
            else:
                sys.stdout.write(text)
                sys.stdout.flush()

    def on_request(self, method, params):
        if method != "writer.event":
            raise ValueError(f"unknown method {method}")
        event = params.get("event")
        if event not in EVENTS:
            raise ValueError(f"unknown event {event}")
        if event == "Identify":
            # Stateless and deterministic: the same document every time.
            self.log(params, "ok")
            # The event names our instance id (an Identify may even overtake the subscribe answer).
            return {"ok": True, "metadataXml": self.metadata_xml(params["instanceId"])}
        if event == self.args.veto:
            self.log(params, "veto")
            return {"ok": False, "failure": {"hr": "VSS_E_WRITERERROR_RETRYABLE", "hrApplication": 0,
                                             "applicationMessage": f"python writer vetoes {event}"}}
        # A real writer would flush and hold its writes at Freeze and release them at Thaw;
        # Abort must be idempotent; BackupShutdown carries the set id (null GUID if no snapshot).
        self.log(params, "ok")
        return {"ok": True}

    def run(self):
        path = os.path.join(self.args.socket_dir, "writer.sock")
        conn = Connection(path, self.on_request)
        hello = conn.call("shadowcopy.hello", {"protocolVersion": PROTOCOL_VERSION, "role": "writer",
                                               "client": f"python-writer (pid {os.getpid()})"})
        if hello.get("protocolVersion") != PROTOCOL_VERSION:
            raise RuntimeError(f"the daemon speaks protocol version {hello.get('protocolVersion')}, this writer {PROTOCOL_VERSION}")
        subscription = {
            "writerId": self.args.writer_id,
            "writerName": self.args.name,
            "instanceName": self.args.instance_name,
            "usage": USAGE_USER_DATA,
            "sourceType": SOURCE_OTHER,
            "level": LEVEL_FRONT_END,
            "eventFlags": 0x6,
        }
        if self.args.freeze_timeout_ms:
            subscription["freezeTimeoutMs"] = self.args.freeze_timeout_ms
        self.instance_id = conn.call("writer.subscribe", subscription)["instanceId"]
        print(f"python-writer: subscribed as instance {self.instance_id}", file=sys.stderr, flush=True)
        conn.closed.wait()
        print("python-writer: the daemon closed the connection; exiting", file=sys.stderr)


def main():
    p = argparse.ArgumentParser(description="A shadowcopy writer in Python (standard library only)")
    p.add_argument("--socket-dir", default=os.environ.get("SHADOWCOPY_SOCKET_DIR", "/run/shadowcopy"))
    p.add_argument("--writer-id", default="7079c0de-0000-4000-8000-000000000001", type=lambda s: str(uuid.UUID(s)),
                   help="the writer class id (a GUID, constant for your product)")
    p.add_argument("--name", default="Python Writer")
    p.add_argument("--instance-name", default="")
    p.add_argument("--component", default="data")
    p.add_argument("--path", required=True, help="the directory the writer's file group covers (recursively)")
    p.add_argument("--freeze-timeout-ms", type=int, default=0)
    p.add_argument("--veto", choices=EVENTS[1:], help="veto this event (to see a failure)")
    p.add_argument("--log", help="append one JSON line per event here (default: stdout)")
    args = p.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        PythonWriter(args).run()
    except (OSError, RuntimeError, ConnectionError) as e:
        print(f"python-writer: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
