#!/usr/bin/python3
"""A stand-in for omnid's front door (ROUTER), published streams (XPUB) and sensor
bus (SUB) on loopback, speaking protocol v1 from its description in docs/PROTOCOL.md
(not from the C library), so client tests need no daemon.

Ops: health, status, metrics, probe (url or media frame; urls "fail:..." answer
ENOENT, "garbage:..." a result without its map, "steps:..." three progress replies
before the result, "slow:..." one progress and then nothing), ask (progress, tokens,
done), embed (embedding with a frame), garbage (a malformed reply), sleep (never
answers); anything else is EUNSUPPORTED. Each IMU sample on sensor/<robot>/imu is
answered on the XPUB with omni/<robot>/embedding/imu."""

import struct
import threading

import msgpack
import zmq


def pack(o):
    return msgpack.packb(o, use_bin_type=True)


class FakeOmnid(threading.Thread):
    def __init__(self, curve_secret=None):
        super().__init__(daemon=True)
        self.ctx = zmq.Context()
        self.front = self.ctx.socket(zmq.ROUTER)
        if curve_secret:            # no ZAP handler: any client key is accepted
            self.front.curve_server = True
            self.front.curve_secretkey = curve_secret
        self.pub = self.ctx.socket(zmq.XPUB)
        self.sensors = self.ctx.socket(zmq.SUB)
        self.sensors.setsockopt(zmq.SUBSCRIBE, b"sensor/")
        for s in (self.front, self.pub, self.sensors):
            s.setsockopt(zmq.LINGER, 0)
        port = self.front.bind_to_random_port("tcp://127.0.0.1")
        self.endpoint = f"tcp://127.0.0.1:{port}"
        self.pub_endpoint = f"tcp://127.0.0.1:{self.pub.bind_to_random_port('tcp://127.0.0.1')}"
        self.sensor_endpoint = f"tcp://127.0.0.1:{self.sensors.bind_to_random_port('tcp://127.0.0.1')}"
        self.requests = []          # (frame-0 map, payload frames) as received
        self.sensor_msgs = []       # (topic, map)
        self.subscriptions = []     # topics clients subscribed to on the XPUB
        self.draining = False       # health answers status "draining" when set
        self._halt = threading.Event()

    def stop(self):
        self._halt.set()
        self.join(5)
        for s in (self.front, self.pub, self.sensors):
            s.close(0)
        self.ctx.term()

    def run(self):
        poller = zmq.Poller()
        for s in (self.front, self.pub, self.sensors):
            poller.register(s, zmq.POLLIN)
        while not self._halt.is_set():
            for s, _ in poller.poll(50):
                if s is self.front:
                    self._request(self.front.recv_multipart())
                elif s is self.pub:
                    ev = self.pub.recv()
                    if ev and ev[0] == 1:
                        self.subscriptions.append(ev[1:].decode())
                else:
                    self._sensor(self.sensors.recv_multipart())

    def _send(self, ident, body, frames=()):
        self.front.send_multipart([ident, pack(body)] + list(frames))

    def _request(self, parts):
        ident, head, frames = parts[0], parts[1], parts[2:]
        try:
            req = msgpack.unpackb(head, raw=False)
            rid, op, args = req["id"], req["op"], req.get("args", {})
            assert req["v"] == 1 and isinstance(rid, int)
        except Exception as e:
            self._send(ident, {"id": 0, "seq": 0, "type": "error", "code": "EFORMAT",
                               "message": f"bad request: {e}"})
            return
        self.requests.append((req, frames))
        seq = iter(range(1000))

        def reply(typ, frames=(), **fields):
            self._send(ident, {"id": rid, "seq": next(seq), "type": typ, **fields}, frames)

        def done(**usage):
            reply("done", timings={"total": 1.5}, usage=usage)

        if op == "health":
            reply("result", result={"status": "draining" if self.draining else "ok",
                                    "version": "fake-1", "uptime_ms": 12})
            done()
        elif op == "status":
            reply("result", result={"state": "ready",
                                    "stages": [{"name": "ingest", "workers": 1, "queued": 0}]})
            done()
        elif op == "metrics":
            reply("result", result={"requests": len(self.requests)})
            done()
        elif op == "probe":
            if "media" in args:
                data = frames[args["media"]["frame"] - 1]
                reply("result", result={"bytes": len(data), "name": args.get("name", ""),
                                        "magic": data[:4].hex()})
            elif args.get("url", "").startswith("fail:"):
                reply("error", code="ENOENT", message=f"probe: cannot open '{args['url']}'")
                return
            elif args.get("url", "").startswith("garbage:"):
                self.front.send_multipart([ident, pack({"id": rid, "seq": 0, "type": "result"})])
                return
            elif args.get("url", "").startswith("steps:"):
                for i in range(1, 4):
                    reply("progress", stage="decode", current=i, total=3)
                reply("result", result={"url": args["url"]})
            elif args.get("url", "").startswith("slow:"):
                reply("progress", stage="probe", current=1, total=2)
                return
            elif "url" in args:
                reply("result", result={"url": args["url"], "streams": [{"index": 0, "codec": "h264"}]})
            else:
                reply("error", code="EINVAL", message="probe: args.url or args.media is required")
                return
            done()
        elif op == "ask":
            reply("progress", stage="encode", current=1, total=2)
            reply("progress", stage="encode", current=2, total=2)
            for i, t in enumerate(["Hello", ", ", "robot"]):
                reply("token", text=t, token=100 + i)
            done(tokens_out=3)
        elif op == "embed":
            vec = struct.pack("<4f", 0.5, -0.5, 0.5, -0.5)
            reply("embedding", [vec], modality="text",
                  tensor={"dtype": "f32", "shape": [4], "frame": 1})
            done()
        elif op == "garbage":
            self.front.send_multipart([ident, b"\x93\x01"])
        elif op == "sleep":
            pass
        else:
            reply("error", code="EUNSUPPORTED", message=f"op: unknown op '{op}'")

    def _sensor(self, parts):
        topic = parts[0].decode()
        msg = msgpack.unpackb(parts[1], raw=False)
        self.sensor_msgs.append((topic, msg))
        robot = topic.split("/")[1]
        self.pub.send_multipart([f"omni/{robot}/embedding/imu".encode(),
                                 pack({"stamp_ns": msg["header"]["stamp_ns"], "modality": "imu",
                                       "tensor": {"dtype": "f32", "shape": [2],
                                                  "data": struct.pack("<2f", 1.0, 0.0)}})])
