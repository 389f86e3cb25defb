#!/usr/bin/python3
"""robot_bridge: a robot's side of omnid, in one file.

Publishes IMU samples on sensor/<robot>/imu (sensor_msgs/Imu fields, ns timestamps,
SI units), listens to what omnid publishes for this robot on omni/<robot>/...
(embeddings, answers to standing queries), then asks omnid a question and streams
the answer. The IMU here is synthetic (a robot turning at 0.3 rad/s while its body
sways); a real bridge would read its driver or a ROS 2 topic instead.

    clients/python/examples/robot_bridge.py --robot r1 --seconds 2 \\
        --question "is the robot turning?"
"""

import argparse
import math
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import omni_client as oc  # noqa: E402


def synthetic_imu(t):
    """Angular velocity (rad/s) and linear acceleration (m/s^2) at time t (s)."""
    sway = 0.2 * math.sin(2 * math.pi * 1.5 * t)
    return (0.0, 0.0, 0.3), (sway, 0.0, 9.81 + 0.05 * math.cos(2 * math.pi * 1.5 * t))


def run(args, out=sys.stdout):
    """Returns a summary dict: samples sent, messages received per topic, answer text."""
    summary = {"sent": 0, "received": {}, "answer": "", "error": None}
    keys = {"server_key": args.server_key, "client_key": args.key}
    pub = oc.Publisher(args.sensor_endpoint, **keys)
    sub = oc.Subscriber([f"omni/{args.robot}/"], args.pub_endpoint, **keys)
    client = oc.Client(args.endpoint, timeout=args.timeout, **keys)
    try:
        # PUB/SUB drop messages until the connections are up ("slow joiner").
        time.sleep(0.2)
        topic = f"sensor/{args.robot}/imu"
        period = 1.0 / args.rate
        t0 = time.monotonic()
        next_t = t0
        while time.monotonic() - t0 < args.seconds:
            gyro, accel = synthetic_imu(time.monotonic() - t0)
            pub.publish(topic, oc.imu_message(oc.now_ns(), f"{args.robot}/imu_link", gyro, accel))
            summary["sent"] += 1
            next_t += period
            # read what omnid published while waiting for the next sample
            while True:
                msg = sub.recv(timeout=max(0.0, next_t - time.monotonic()))
                if msg is None:
                    break
                summary["received"][msg[0]] = summary["received"].get(msg[0], 0) + 1
        for t, n in sorted(summary["received"].items()):
            print(f"{t}: {n} messages", file=out)

        print(f"Q: {args.question}\nA: ", end="", file=out, flush=True)
        try:
            for r in client.request("ask", {"question": args.question, "robot": args.robot,
                                            "sources": [topic]}):
                if r.type == "token":
                    summary["answer"] += r["text"]
                    print(r["text"], end="", file=out, flush=True)
            print(file=out)
        except oc.OmniError as e:
            summary["error"] = e.code
            print(f"\nomnid: {e}", file=out)
    finally:
        client.close()
        sub.close()
        pub.close()
    return summary


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--robot", default="r1", help="robot name in the topics (default r1)")
    ap.add_argument("--endpoint", default=os.environ.get("OMNID_ENDPOINT", oc.ENDPOINT))
    ap.add_argument("--pub-endpoint", default=oc.PUB_ENDPOINT, help="omnid's XPUB")
    ap.add_argument("--sensor-endpoint", default=oc.SENSOR_ENDPOINT, help="omnid's sensor SUB")
    ap.add_argument("--rate", type=float, default=100.0, help="IMU samples per second")
    ap.add_argument("--seconds", type=float, default=2.0, help="how long to publish")
    ap.add_argument("--question", default="What is the robot doing?")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for omnid")
    ap.add_argument("--server-key", help="CURVE: omnid's public key file (or $OMNID_SERVER_KEY)")
    ap.add_argument("--key", help="CURVE: this robot's secret key file (or $OMNID_KEY)")
    args = ap.parse_args(argv)
    if args.rate <= 0 or args.seconds < 0:
        ap.error("--rate must be > 0 and --seconds >= 0")
    summary = run(args)
    return 0 if summary["error"] is None else 1


if __name__ == "__main__":
    sys.exit(main())
